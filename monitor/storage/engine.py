"""Create the engine and bring the schema up to date with Alembic."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from monitor.errors import StorageError
from monitor.textio import write_problem

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def make_engine(url: str, echo: bool = False, sqlite_pragmas: bool = True) -> Engine:
    """An engine with SQLite made safe for a daemon and a web page at once."""
    if url.startswith("sqlite:///") and ":memory:" not in url:
        _make_folder(url, Path(url.removeprefix("sqlite:///")).parent)
    try:
        engine = create_engine(url, echo=echo, pool_pre_ping=True, future=True)
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        from monitor.settings import mask_url_password

        shown = mask_url_password(url)  # the message may quote the URL: never its password
        raise StorageError(f"storage.url {shown!r}: {str(exc).replace(url, shown)}") from None
    if engine.dialect.name == "sqlite" and sqlite_pragmas:
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _make_folder(url: str, folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"storage.url {url!r}: cannot create the folder {folder}: {write_problem(exc, folder / 'x')}") from None


def _sqlite_pragmas(dbapi_connection: Any, _record: object) -> None:
    # WAL lets the web page read while the daemon writes; busy_timeout waits instead of
    # failing on a brief lock; foreign keys are off by default in SQLite.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _alembic_config(engine: Engine) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


def migrate(engine: Engine) -> None:
    """Apply every pending migration (called on start by every command that stores,
    after open_store checked that the database is ours)."""
    from alembic import command

    try:
        command.upgrade(_alembic_config(engine), "head")
    except OperationalError as exc:
        raise StorageError(f"{_safe_url(engine)}: cannot migrate: {exc.orig}") from None


def check_schema_is_ours(engine: Engine) -> None:
    """StorageError for a database with tables but no Alembic version table (another
    program's), or at a revision this version does not know (a newer release's, or
    another Alembic project's). An empty database is ours to create."""
    tables = table_names(engine)
    if not tables:
        return
    if "alembic_version" not in tables:
        shown = ", ".join(sorted(tables)[:3]) + (", ..." if len(tables) > 3 else "")
        raise StorageError(f"{_safe_url(engine)}: not a Tension Monitor database (it has tables {shown} and no "
                           "alembic_version); nothing was changed in it. Point storage.url at a new or empty database")
    revision = current_revision(engine)
    if revision is not None and revision not in known_revisions(engine):
        raise StorageError(f"{_safe_url(engine)}: schema revision {revision!r} is unknown to this version of Tension "
                           "Monitor (written by a newer version or another program); nothing was changed in it")


def known_revisions(engine: Engine) -> set[str]:
    from alembic.script import ScriptDirectory

    return {script.revision for script in ScriptDirectory.from_config(_alembic_config(engine)).walk_revisions()}


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision(engine: Engine) -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config(engine)).get_current_head()
    if head is None:
        raise StorageError(f"no migrations in {MIGRATIONS_DIR}")
    return head


def open_store(url: str, echo: bool = False) -> Engine:
    """make_engine + migrate, with one clear line when the database is unreachable or is
    not ours. The check runs on a plain connection first: not even SQLite's journal mode
    is changed in a database that is refused."""
    probe = make_engine(url, sqlite_pragmas=False)
    try:
        _connect_check(probe)
        check_schema_is_ours(probe)
    finally:
        probe.dispose()
    engine = make_engine(url, echo=echo)
    _connect_check(engine)
    migrate(engine)
    return engine


def _connect_check(engine: Engine) -> None:
    try:
        with engine.connect() as connection:
            inspect(connection).get_table_names()  # SQLite reads the file only now
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        raise StorageError(f"{_safe_url(engine)}: cannot connect: {reason}") from None


def table_names(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def _safe_url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)
