"""Bad input a user can give the CLI: one line naming the problem, a non-zero exit, no
traceback, and nothing created in a file that is not ours (the real entry point, in-process)."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import pytest
import sqlalchemy

from tests.conftest import REPO
from tests.factories import SeedArticle, seed_articles
from tests.test_cli_tagging import one_error_line, run  # noqa: F401 (fixture)


def write(path: Path, body: bytes | str) -> str:
    path.write_bytes(body if isinstance(body, bytes) else body.encode())
    return str(path)


def sqlite_config(tmp_path: Path, db: Path) -> str:
    return write(tmp_path / "monitor.toml", f'root = "{REPO}"\n[storage]\nurl = "sqlite:///{db}"\n')


@pytest.mark.parametrize("body, expected", [
    (b'root = "."\n# caf\xe9\n', "not UTF-8 text (invalid byte at offset 16)"),
    (b"root = 5\n", "root: must be a path in quotes, not 5"),
    (b"smtp = 5\n", "smtp: Input should be a valid dictionary"),
    (b"web = 5\n", "web: Input should be a valid dictionary"),
])
def test_bad_config_file_is_one_line_naming_file_and_key(run, tmp_path, body, expected):
    config = write(tmp_path / "bad.toml", body)
    code, out, err = run("--config", config, "status")
    assert code == 2 and out == ""
    assert one_error_line(err).startswith(f"error: {config}: {expected}")


def test_sqlite_path_under_a_regular_file(run, tmp_path):
    (tmp_path / "afile").write_text("not a folder")
    code, _, err = run("--config", sqlite_config(tmp_path, tmp_path / "afile" / "monitor.db"), "status")
    assert code != 0
    assert one_error_line(err).endswith(f"cannot create the folder {tmp_path / 'afile'}: {tmp_path / 'afile'} is a file, not a folder")


def test_foreign_sqlite_database_is_refused_and_left_byte_for_byte_unchanged(run, tmp_path):
    db = tmp_path / "notes.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
        conn.execute("INSERT INTO notes (body) VALUES ('mine')")
    before = db.read_bytes()
    code, _, err = run("--config", sqlite_config(tmp_path, db), "run", "--once")
    assert code != 0
    assert "not a Tension Monitor database (it has tables notes and no alembic_version)" in one_error_line(err)
    assert db.read_bytes() == before and not Path(f"{db}-wal").exists()


def test_database_at_an_unknown_schema_revision_is_refused(run, tmp_path):
    db = tmp_path / "monitor.db"
    config = sqlite_config(tmp_path, db)
    assert run("--config", config, "status")[0] == 0
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999_from_the_future'")
    code, _, err = run("--config", config, "status")
    assert code != 0
    assert "schema revision '9999_from_the_future' is unknown to this version" in one_error_line(err)


def test_a_file_that_is_not_a_database(run, tmp_path):
    db = tmp_path / "monitor.db"
    db.write_text("hello\n")
    code, _, err = run("--config", sqlite_config(tmp_path, db), "status")
    assert code != 0 and one_error_line(err).endswith("cannot connect: file is not a database")
    assert db.read_text() == "hello\n"


def test_foreign_postgresql_schema_gets_no_tables(run, tmp_path, pg_url):
    engine = sqlalchemy.create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text("CREATE TABLE invoices (id serial PRIMARY KEY)"))
    config = write(tmp_path / "monitor.toml", f'root = "{REPO}"\n[storage]\nurl = "{pg_url}"\n')
    code, _, err = run("--config", config, "status")
    assert code != 0 and "not a Tension Monitor database (it has tables invoices" in one_error_line(err)
    assert set(sqlalchemy.inspect(engine).get_table_names()) == {"invoices"}
    engine.dispose()


def test_label_with_an_id_beyond_64_bits(run, tmp_path):
    code, _, err = run("--config", sqlite_config(tmp_path, tmp_path / "m.db"), "label", "99999999999999999999999", "--add", "cloud")
    assert code == 2 and one_error_line(err) == "error: no article with id 99999999999999999999999"


@pytest.fixture
def seeded_config(tmp_path) -> str:
    from monitor.storage.engine import open_store

    db = tmp_path / "m.db"
    engine = open_store(f"sqlite:///{db}")
    seed_articles(engine, [SeedArticle("OpenAI adds Oracle capacity", datetime.now(timezone.utc), {"cloud": 0.9})])
    engine.dispose()
    return sqlite_config(tmp_path, db)


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_export_into_a_missing_folder_and_onto_a_full_disk(run, seeded_config, tmp_path, fmt):
    missing = tmp_path / "no" / "such" / "out.jsonl"
    code, _, err = run("--config", seeded_config, "export", "--format", fmt, "--output", str(missing))
    assert code == 2 and one_error_line(err) == f"error: export: cannot write to {missing}: No such file or directory"
    code, _, err = run("--config", seeded_config, "export", "--format", fmt, "--output", "/dev/full")
    assert code == 2 and one_error_line(err) == "error: export: cannot write to /dev/full: No space left on device"


@pytest.mark.parametrize("target, reason", [
    ("afile/digest.html", "{tmp}/afile is a file, not a folder"),
    ("/dev/full", "No space left on device"),
    ("/proc/digest.html", "No such file or directory"),  # procfs takes no new files, even from root
])
def test_digest_preview_to_an_unwritable_path(run, seeded_config, tmp_path, target, reason):
    (tmp_path / "afile").write_text("x")
    path = tmp_path / target
    code, _, err = run("--config", seeded_config, "digest", "--preview", str(path))
    assert code == 2
    assert one_error_line(err) == f"error: digest --preview {path}: cannot write: {reason.format(tmp=tmp_path)}"
