"""A lease in the `locks` table, so two daemons never poll the same database at once.

The holder refreshes `heartbeat_at`; a lock whose heartbeat is older than
`stale_after` belongs to a daemon that died without releasing it and may be taken over.
A holder on this host whose process is gone is stale at once, so a daemon restarted
after `kill -9` does not wait out the lease. Works the same on SQLite and PostgreSQL:
every step is one conditional INSERT or UPDATE, which both serialise.
"""

from __future__ import annotations

import os
import re
import socket
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, delete, select, update

from monitor.errors import StorageError
from monitor.storage import schema
from monitor.storage.feeds import insert_ignoring_conflicts

locks = schema.locks
DAEMON_LOCK = "daemon"
_HOLDER = re.compile(r"^pid (\d+) on host (.+)$")


def this_process() -> str:
    """The holder string for this process, shown to a second daemon that is refused."""
    return f"pid {os.getpid()} on host {socket.gethostname()}"


def acquire(engine: Engine, name: str, holder: str, now: datetime, stale_after: timedelta) -> None:
    """Take the lock, or take over a stale one; StorageError if someone else holds it."""
    with engine.begin() as conn:
        if _insert_if_absent(conn, name, holder, now):
            return
        current = conn.execute(select(locks.c.holder).where(locks.c.name == name)).scalar()
        if current is None:  # released between our two statements
            if _insert_if_absent(conn, name, holder, now):
                return
        elif _takeable(conn, name, current, holder, now, stale_after):
            return
    raise StorageError(_refusal(engine, name))


def _takeable(conn: Connection, name: str, current: str, holder: str, now: datetime, stale_after: timedelta) -> bool:
    """Take the row over if it is ours, its process is dead, or its heartbeat is stale.
    The WHERE re-checks the holder, so of two daemons racing for a stale lock one wins."""
    if current == holder or holder_is_dead(current):
        condition = locks.c.holder == current
    else:
        condition = (locks.c.holder == current) & (locks.c.heartbeat_at < now - stale_after)
    statement = update(locks).where(locks.c.name == name, condition).values(holder=holder, acquired_at=now, heartbeat_at=now)
    return conn.execute(statement).rowcount == 1


def heartbeat(engine: Engine, name: str, holder: str, now: datetime) -> None:
    """Refresh the lease; StorageError if another process took it over meanwhile."""
    with engine.begin() as conn:
        kept = conn.execute(
            update(locks).where(locks.c.name == name, locks.c.holder == holder).values(heartbeat_at=now)
        ).rowcount
    if not kept:
        raise StorageError(f"lost the {name} lock: {_refusal(engine, name)}")


def release(engine: Engine, name: str, holder: str) -> None:
    with engine.begin() as conn:
        conn.execute(delete(locks).where(locks.c.name == name, locks.c.holder == holder))


def _insert_if_absent(conn: Connection, name: str, holder: str, now: datetime) -> bool:
    statement = insert_ignoring_conflicts(conn, locks)
    return conn.execute(statement, {"name": name, "holder": holder, "acquired_at": now, "heartbeat_at": now}).rowcount == 1


def holder_is_dead(holder: str) -> bool:
    """True when the holder is a process on this host that no longer exists."""
    match = _HOLDER.match(holder)
    if not match or match.group(2) != socket.gethostname():
        return False
    pid = int(match.group(1))
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # exists, owned by another user
    return False


def _refusal(engine: Engine, name: str) -> str:
    with engine.connect() as conn:
        row = conn.execute(select(locks).where(locks.c.name == name)).one_or_none()
    if row is None:
        return f"the {name} lock changed hands while we tried to take it; try again"
    return (
        f"another daemon ({row.holder}) holds the lock since {row.acquired_at:%Y-%m-%d %H:%M:%S} UTC "
        f"(last heartbeat {row.heartbeat_at:%H:%M:%S} UTC); stop it first, or wait until its lock goes stale"
    )
