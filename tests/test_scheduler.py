"""The daemon lock (SQLite and PostgreSQL) and the daemon itself, run as a real process."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select
from werkzeug import Response

from monitor.errors import StorageError
from monitor.storage import locks, schema
from monitor.storage.engine import open_store
from tests.conftest import REPO
from tests.factories import FeedItem, rss_feed

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=timezone.utc)
STALE = timedelta(minutes=5)
HOST = socket.gethostname()


def test_a_second_holder_is_refused_with_who_and_since(engine):
    locks.acquire(engine, "daemon", f"pid 4242 on host {HOST}-elsewhere", NOW, STALE)
    with pytest.raises(StorageError) as err:
        locks.acquire(engine, "daemon", locks.this_process(), NOW + timedelta(minutes=1), STALE)
    assert f"another daemon (pid 4242 on host {HOST}-elsewhere) holds the lock since 2026-11-24 09:00:00" in str(err.value)


def test_a_stale_lock_is_taken_over_and_the_old_holder_notices(engine):
    old = f"pid 4242 on host {HOST}-elsewhere"
    locks.acquire(engine, "daemon", old, NOW, STALE)
    locks.heartbeat(engine, "daemon", old, NOW + timedelta(minutes=4))
    with pytest.raises(StorageError):  # heartbeat kept it fresh
        locks.acquire(engine, "daemon", locks.this_process(), NOW + timedelta(minutes=8), STALE)
    locks.acquire(engine, "daemon", locks.this_process(), NOW + timedelta(minutes=10), STALE)
    with pytest.raises(StorageError, match="lost the daemon lock"):
        locks.heartbeat(engine, "daemon", old, NOW + timedelta(minutes=11))


def test_a_lock_of_a_dead_local_process_is_taken_at_once(engine):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    locks.acquire(engine, "daemon", f"pid {dead.stdout.strip()} on host {HOST}", NOW, STALE)
    locks.acquire(engine, "daemon", locks.this_process(), NOW + timedelta(seconds=5), STALE)


def test_release_lets_the_next_daemon_in(engine):
    locks.acquire(engine, "daemon", "pid 1 on host a", NOW, STALE)
    locks.release(engine, "daemon", "pid 1 on host a")
    locks.acquire(engine, "daemon", "pid 2 on host b", NOW, STALE)


# --- the daemon as a process ---------------------------------------------------------------


class Daemon:
    """`tension-monitor daemon` in a subprocess, its stderr in a file we can wait on."""

    def __init__(self, config: Path, log: Path):
        self.log = log
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "monitor", "--config", str(config), "daemon"],
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=log.open("w"),
        )

    def output(self) -> str:
        return self.log.read_text()

    def wait_for(self, text: str, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"daemon never logged {text!r}:\n{self.output()}")
            time.sleep(0.1)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=180)


def daemon_config(tmp_path: Path, db_url: str, feeds: str = "") -> Path:
    config = tmp_path / "daemon.toml"
    config.write_text(f'root = "{REPO}"\n[storage]\nurl = "{db_url}"\n[schedule]\ntick_seconds = 1\n{feeds}')
    return config


@pytest.fixture
def daemons():
    started = []
    yield started
    for daemon in started:
        if daemon.proc.poll() is None:
            daemon.proc.kill()
            daemon.proc.wait()


def test_a_second_daemon_on_the_same_database_refuses_to_start(tmp_path, store_url, daemons):
    config = daemon_config(tmp_path, store_url)
    first = Daemon(config, tmp_path / "first.log")
    daemons.append(first)
    first.wait_for("daemon started")
    second = subprocess.run([sys.executable, "-m", "monitor", "--config", str(config), "daemon"],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    last_line = second.stderr.strip().splitlines()[-1]
    assert second.returncode != 0 and "Traceback" not in second.stderr
    assert last_line.startswith(f"error: another daemon (pid {first.proc.pid} on host {HOST}) holds the lock since")
    assert first.stop() == 0


def test_sigterm_finishes_the_feed_in_hand_and_exits_cleanly(tmp_path, httpserver, daemons):
    in_hand = threading.Event()

    def slow_feed(request):
        in_hand.set()
        time.sleep(2)  # the daemon is told to stop while this feed is being fetched
        return Response(rss_feed([FeedItem(f"Story {n}", f"https://n.example/{n}") for n in range(3)]),
                        content_type="application/rss+xml")

    httpserver.expect_request("/slow.xml").respond_with_handler(slow_feed)
    db_url = f"sqlite:///{tmp_path / 'daemon.db'}"
    feeds = f'[[feeds]]\nname = "Slow"\nurl = "{httpserver.url_for("/slow.xml")}"\n'
    daemon = Daemon(daemon_config(tmp_path, db_url, feeds), tmp_path / "daemon.log")
    daemons.append(daemon)
    assert in_hand.wait(180), daemon.output()
    daemon.proc.send_signal(signal.SIGTERM)

    assert daemon.stop() == 0, daemon.output()
    assert "received SIGTERM" in daemon.output() and "Traceback" not in daemon.output()
    engine = open_store(db_url)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(schema.articles)).scalar_one() == 3
        assert conn.execute(select(func.count()).select_from(schema.locks)).scalar_one() == 0  # released
    engine.dispose()


def test_daemon_log_is_one_line_per_poll_and_names_a_slow_tick(tmp_path, httpserver, daemons):
    def slow_feed(request):
        time.sleep(2.5)  # longer than the 1 s tick: two or three ticks fall due meanwhile
        return Response(rss_feed([FeedItem("Story", "https://n.example/1")]), content_type="application/rss+xml")

    httpserver.expect_request("/slow.xml").respond_with_handler(slow_feed)
    feeds = f'[[feeds]]\nname = "Slow"\nurl = "{httpserver.url_for("/slow.xml")}"\n'
    daemon = Daemon(daemon_config(tmp_path, f"sqlite:///{tmp_path / 'd.db'}", feeds), tmp_path / "daemon.log")
    daemons.append(daemon)
    daemon.wait_for("slow tick")
    assert daemon.stop() == 0
    log = daemon.output()
    assert len([line for line in log.splitlines() if "feed 'Slow'" in line]) == 1
    assert "maximum number of running instances" not in log
    assert "HTTP Request" not in log and "apscheduler" not in log  # library chatter stays below WARNING

def test_sigterm_stops_the_daemon_within_10_s_while_a_server_trickles_headers(tmp_path, httpserver, daemons):
    from tests.hostile import SlowHeaderServer

    slow = SlowHeaderServer(interval=2.0)  # would hold each poll for the whole 60 s deadline
    httpserver.expect_request("/good.xml").respond_with_data(
        rss_feed([FeedItem("Good story", "https://n.example/good")]), content_type="application/rss+xml")
    db_url = f"sqlite:///{tmp_path / 'daemon.db'}"
    feeds = "".join(f'[[feeds]]\nname = "Slow {n}"\nurl = "{slow.url(f"/slow{n}.xml")}"\n' for n in range(3))
    feeds += f'[[feeds]]\nname = "Good"\nurl = "{httpserver.url_for("/good.xml")}"\n'
    config = daemon_config(tmp_path, db_url, "[fetch]\ntotal_timeout = 60\nread_timeout = 30\n" + feeds)
    daemon = Daemon(config, tmp_path / "daemon.log")
    daemons.append(daemon)
    try:
        deadline = time.monotonic() + 180
        while slow.connections < 3 and time.monotonic() < deadline and daemon.proc.poll() is None:
            time.sleep(0.1)
        assert slow.connections == 3, daemon.output()
        time.sleep(1)  # well inside the headers
        signalled = time.monotonic()
        daemon.proc.send_signal(signal.SIGTERM)
        code = daemon.proc.wait(timeout=30)
        stopped_after = time.monotonic() - signalled
    finally:
        slow.close()
    assert code == 0, daemon.output()
    print(f"daemon stopped {stopped_after:.1f} s after SIGTERM")
    assert stopped_after < 10, stopped_after
    assert "Traceback" not in daemon.output()
    engine = open_store(db_url)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(schema.locks)).scalar_one() == 0  # released
        titles = conn.execute(select(schema.articles.c.title)).scalars().all()
    engine.dispose()
    assert titles == ["Good story"]  # the good feed was not held up by the slow ones


def test_sigterm_exits_within_10_s_even_when_the_database_is_locked_and_the_next_daemon_starts(tmp_path, httpserver, daemons):
    """The tick in hand blocks on a SQLite write lock held by someone else (busy timeout
    30 s): the daemon leaves it behind, exits 0 within 10 s, and loses nothing it had
    committed; a new daemon takes the lock at once."""
    import sqlite3

    in_hand, go = threading.Event(), threading.Event()

    def held_feed(request):
        in_hand.set()
        go.wait(60)
        return Response(rss_feed([FeedItem("Held story", "https://n.example/held")]), content_type="application/rss+xml")

    httpserver.expect_request("/held.xml").respond_with_handler(held_feed)
    db = tmp_path / "daemon.db"
    feeds = f'[[feeds]]\nname = "Held"\nurl = "{httpserver.url_for("/held.xml")}"\n'
    config = daemon_config(tmp_path, f"sqlite:///{db}", feeds)
    daemon = Daemon(config, tmp_path / "daemon.log")
    daemons.append(daemon)
    assert in_hand.wait(180), daemon.output()
    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # every write of the daemon now waits
    try:
        go.set()
        time.sleep(1.5)  # the feed has arrived; storing it is stuck on the lock
        signalled = time.monotonic()
        daemon.proc.send_signal(signal.SIGTERM)
        code = daemon.proc.wait(timeout=60)
        stopped_after = time.monotonic() - signalled
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    print(f"daemon stopped {stopped_after:.1f} s after SIGTERM with the database locked")
    assert code == 0 and stopped_after < 10, (stopped_after, daemon.output())
    assert "Traceback" not in daemon.output() and "exiting without it" in daemon.output()

    again = Daemon(config, tmp_path / "again.log")
    daemons.append(again)
    again.wait_for("feed 'Held': 200, 1 new")  # the lock is taken over at once, the feed stored now
    assert again.stop() == 0, again.output()
