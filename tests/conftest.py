"""Shared fixtures: real databases (SQLite file and the local PostgreSQL), settings.

`store_url` is parametrised over SQLite and PostgreSQL. Each PostgreSQL test gets its
own schema in database `test`, so tests never see each other's rows.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
REAL_FEEDS = REPO / "tests" / "feeds" / "real"  # public feeds in the wild, see SOURCES.md there
PG_BASE = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _postgres_available() -> bool:
    import sqlalchemy

    try:
        engine = sqlalchemy.create_engine(PG_BASE)
        with engine.connect():
            pass
        engine.dispose()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def postgres_ok() -> bool:
    ok = _postgres_available()
    if not ok and os.environ.get("CI"):
        pytest.fail(f"PostgreSQL is not reachable at {PG_BASE}; CI requires it")
    return ok


@pytest.fixture
def pg_url(postgres_ok):
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    if not postgres_ok:
        pytest.skip(f"PostgreSQL not reachable at {PG_BASE}")
    import sqlalchemy

    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(PG_BASE)
    with admin.begin() as conn:
        conn.execute(sqlalchemy.text(f'CREATE SCHEMA "{schema}"'))
    yield f"{PG_BASE}?options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(sqlalchemy.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'monitor.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request, tmp_path) -> str:
    """Run the test once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("pg_url")


@pytest.fixture
def engine(store_url):
    from monitor.storage.engine import open_store

    engine = open_store(store_url)
    yield engine
    engine.dispose()


def write_config(path: Path, body: str) -> Path:
    path.write_text(body, encoding="utf-8")
    return path


@pytest.fixture
def make_settings(tmp_path):
    """Settings from a TOML body, with root at the repo (taxonomy, models, entities) and
    the database in tmp_path unless the body sets [storage]."""
    from monitor.settings import load_settings

    def make(body: str = "", environ: dict | None = None, db_url: str | None = None):
        if "[storage]" not in body:
            body = f'[storage]\nurl = "{db_url or "sqlite:///" + str(tmp_path / "monitor.db")}"\n' + body
        if "root =" not in body:
            body = f'root = "{REPO}"\n' + body
        cfg = write_config(tmp_path / "monitor.toml", body)
        return load_settings(cfg, environ or {})

    return make
