from pathlib import Path

import pytest

from monitor.errors import ConfigError
from monitor.settings import load_settings, settings_for_display


def test_repo_configs_load_and_root_is_repo():
    repo = Path(__file__).resolve().parent.parent
    for name in ("monitor.toml", "demo.toml"):
        settings = load_settings(repo / "config" / name, {})
        assert settings.root == repo
        assert settings.feeds, f"{name} lists no feeds"


def test_unknown_key_names_file_and_key(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[schedule]\npoll_minuts = 5\n")
    with pytest.raises(ConfigError) as err:
        load_settings(cfg, {})
    assert str(err.value) == f"{cfg}: schedule.poll_minuts: unknown key"


def test_bad_value_names_key_and_problem(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[smtp]\nsecurity = "tls"\n')
    with pytest.raises(ConfigError) as err:
        load_settings(cfg, {})
    assert "smtp.security" in str(err.value) and "none" in str(err.value)


def test_bad_timezone_and_feed_url(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[digest]\ntimezone = "Mars/Olympus"\n')
    with pytest.raises(ConfigError, match="digest.timezone: unknown time zone"):
        load_settings(cfg, {})
    cfg.write_text('[[feeds]]\nname = "x"\nurl = "ftp://example.com/feed"\n')
    with pytest.raises(ConfigError, match=r"feeds.0.url: must start with"):
        load_settings(cfg, {})


def test_invalid_toml_and_missing_file(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[storage\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(cfg, {})
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "missing.toml", {})


def test_password_only_from_env_and_masked(tmp_path):
    cfg = tmp_path / "m.toml"
    cfg.write_text('[smtp]\npassword_env = "MY_SMTP_PW"\n[storage]\nurl = "postgresql+psycopg://u:hunter2@db/x"\n')
    settings = load_settings(cfg, {"MY_SMTP_PW": "s3cret"})
    assert settings.smtp.password.get_secret_value() == "s3cret"
    shown = str(settings_for_display(settings))
    assert "s3cret" not in shown and "hunter2" not in shown
    cfg.write_text('[smtp]\npassword = "inline"\n')
    with pytest.raises(ConfigError, match="smtp.password: secrets are not read from the file"):
        load_settings(cfg, {})


def test_relative_sqlite_and_file_feeds_resolve_against_root(tmp_path):
    (tmp_path / "config").mkdir()
    cfg = tmp_path / "config" / "m.toml"
    cfg.write_text('[storage]\nurl = "sqlite:///data/x.db"\n[[feeds]]\nname = "d"\nurl = "file:feeds/a.xml"\n')
    settings = load_settings(cfg, {})
    assert settings.database_url == f"sqlite:///{tmp_path}/data/x.db"
    assert settings.feeds[0].url == (tmp_path / "feeds" / "a.xml").as_uri()
