"""Finding and showing the config as a user does: real processes in empty folders, with
HOME and the XDG folders pointing at empty places (nothing from this machine leaks in)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
CLASSIFY_TEXT = (
    "OpenAI signs multibillion-dollar compute deal with Oracle. OpenAI has agreed to buy data center "
    "capacity from Oracle, loosening its dependence on Microsoft's Azure, once its exclusive cloud provider."
)


@pytest.fixture
def user(tmp_path):
    """Run `tension-monitor ARGS` from an empty folder with an empty HOME and XDG folders."""
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("XDG_", "TENSION_MONITOR_"))}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / "cfg"), XDG_DATA_HOME=str(home / "data"))

    def run(*args: str, stdin: str | None = None, extra_env: dict | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "monitor", *args], cwd=work, input=stdin, capture_output=True,
                              text=True, timeout=300, env={**env, **(extra_env or {})})

    run.home, run.work = home, work
    return run


def test_classify_needs_no_config_and_leaves_the_folder_empty(user):
    done = user("classify", "-", "--json", stdin=CLASSIFY_TEXT)
    assert done.returncode == 0, done.stderr
    assert '"cloud"' in done.stdout
    assert list(user.work.iterdir()) == []


def test_config_show_loads_back_the_same_and_masks_every_secret(user):
    # A typo in the port makes the URL unparseable: the password must still be masked.
    (user.work / "in.toml").write_text('[storage]\nurl = "postgresql+psycopg://u:hunter2@db:54x2/x"\n'
                                      '[[feeds]]\nname = "a"\nurl = "https://example.com/rss"\n')
    secrets = {"TENSION_MONITOR_SMTP_PASSWORD": "s3cret-pw", "TENSION_MONITOR_WEB_TOKEN": "tok3n"}
    first = user("config", "show", "--config", "in.toml", extra_env=secrets)
    assert first.returncode == 0, first.stderr
    (user.work / "c.toml").write_text(first.stdout)
    second = user("--config", "c.toml", "config", "show", extra_env=secrets)
    assert second.returncode == 0, second.stderr
    assert second.stdout == first.stdout
    for secret in ("hunter2", "s3cret-pw", "tok3n"):
        assert secret not in first.stdout + first.stderr
    assert "null" not in first.stdout


def test_config_after_the_command_and_status_json(user):
    (user.work / "m.toml").write_text('[storage]\nurl = "sqlite:///m.db"\n')
    done = user("status", "--config", "m.toml", "--json")
    assert done.returncode == 0, done.stderr
    assert (user.work / "m.db").exists()  # relative to the config's own folder


def test_init_writes_a_starter_config_found_from_any_folder(user):
    done = user("init")
    target = user.home / "cfg" / "tension-monitor" / "config.toml"
    assert done.returncode == 0 and str(target) in done.stdout
    assert "OpenAI News" in target.read_text()
    again = user("init")
    assert again.returncode == 2 and "already exists" in again.stderr
    shown = user("config", "show")
    assert shown.returncode == 0 and f"# from {target}" in shown.stderr
    assert 'name = "OpenAI News"' in shown.stdout
    assert f'url = "sqlite:///{user.home}/data/tension-monitor/monitor.db"' in shown.stdout
    # An explicit path is written there.
    assert user("init", "here.toml").returncode == 0 and (user.work / "here.toml").is_file()


def test_a_missing_named_config_is_one_line_and_exit_2(user):
    done = user("--config", "nope.toml", "status")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == ["error: nope.toml: config file not found (use --config or TENSION_MONITOR_CONFIG)"]



def test_piped_status_is_one_line_per_feed_and_honours_columns(user):
    long_name = "A rather long feed name that a narrow table would fold over several lines"
    (user.work / "feed.xml").write_bytes((REPO / "config" / "demo-feeds" / "wire-tech.xml").read_bytes())
    (user.work / "m.toml").write_text(f'[storage]\nurl = "sqlite:///m.db"\n[[feeds]]\nname = "{long_name}"\n'
                                      'url = "file:feed.xml"\n[[feeds]]\nname = "gone"\nurl = "file:missing.xml"\n')
    assert user("--config", "m.toml", "run", "--once").returncode == 0
    piped = user("--config", "m.toml", "status")
    assert piped.returncode == 0, piped.stderr
    rows = [line for line in piped.stdout.splitlines() if long_name in line or line.lstrip().startswith("gone")]
    assert len(rows) == 2 and "missing.xml" in rows[1]  # each feed whole on one line, error included
    narrow = user("--config", "m.toml", "status", extra_env={"COLUMNS": "70"})
    assert narrow.returncode == 0 and max(len(line) for line in narrow.stdout.splitlines()) <= 70


def test_evaluate_needs_no_config(user):
    data = REPO / "tests" / "fixtures" / "eval-small.jsonl"
    done = user("evaluate", "--data", str(data), "--json")
    assert done.returncode == 0, done.stderr
    metrics = json.loads(done.stdout)
    assert metrics["n"] == 6 and len(metrics["per_label"]) == 13
    assert metrics["relevance_f1"] >= 0.8  # four clear partnership stories, two clearly off-topic
    assert list(user.work.iterdir()) == []


def test_a_malformed_store_url_never_prints_its_password(user):
    (user.work / "m.toml").write_text('[storage]\nurl = "postgresql+psycopg://u:hunter2@db:54x2/x"\n')
    done = user("--config", "m.toml", "status")
    assert done.returncode != 0 and "storage.url" in done.stderr
    assert "hunter2" not in done.stderr and "Traceback" not in done.stderr
