"""`run --once` against every hostile answer at once, on 127.0.0.1, as a real process.

Served: a double-gzip bomb (1.8 KB that is 1 GiB of zeros), a single-gzip bomb (1 MB on
the wire, 1 GiB decoded), a server trickling one header line every 2 s, a 429 with
`Retry-After: 99999999999999999`, a full-text feed whose article pages are those same
bombs and that slow server, and one good feed. Asserted: the child's peak RSS, its
wall time against the configured deadline, no traceback, the good feed stored, the 429
feed pushed out by exactly the backoff cap and not polled again by the next run.
"""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from monitor.storage import schema
from monitor.storage.engine import open_store
from tests.conftest import REPO
from tests.factories import FeedItem, rss_feed
from tests.hostile import SlowHeaderServer, double_gzip_bomb
from tests.test_fetch import FeedServer, serve

TOTAL_TIMEOUT = 8  # fetch.total_timeout in the config below
BACKOFF_CAP_MINUTES = 60
PEAK_RSS_LIMIT_MB = 600
HARD_KILL_SECONDS = 180  # a hung child is killed (and fails the test) rather than hanging the suite


@pytest.fixture
def hostile(tmp_path):
    """Every hostile server, a config pointing at them, and the database path."""
    feeds = FeedServer()
    feeds.thread.start()
    slow = SlowHeaderServer(interval=2.0)
    bomb2 = double_gzip_bomb()
    bomb1 = gzip.decompress(bomb2)  # one layer: ~1 MB of gzip, 1 GiB of zeros inside
    page_links = [feeds.url("/page-bomb2"), feeds.url("/page-bomb1"), slow.url("/page")]
    feeds.routes.update({
        "/good.xml": serve(rss_feed([FeedItem(f"Good story {n}", f"https://good.example/{n}") for n in range(3)])),
        "/bomb2.xml": serve(bomb2, headers={"Content-Encoding": "gzip, gzip"}),
        "/bomb1.xml": serve(bomb1, headers={"Content-Encoding": "gzip"}),
        "/busy.xml": serve(b"", 429, {"Retry-After": "99999999999999999"}),
        "/fulltext.xml": serve(rss_feed([FeedItem(f"Page {n}", link) for n, link in enumerate(page_links)])),
        "/page-bomb2": serve(bomb2, headers={"Content-Encoding": "gzip, gzip", "Content-Type": "text/html"}),
        "/page-bomb1": serve(bomb1, headers={"Content-Encoding": "gzip", "Content-Type": "text/html"}),
    })
    entries = [("Good", feeds.url("/good.xml"), False), ("Double gzip", feeds.url("/bomb2.xml"), False),
               ("Single gzip", feeds.url("/bomb1.xml"), False), ("Slow headers", slow.url("/feed.xml"), False),
               ("Busy", feeds.url("/busy.xml"), False), ("Full text", feeds.url("/fulltext.xml"), True)]
    db = tmp_path / "monitor.db"
    config = tmp_path / "monitor.toml"
    config.write_text(
        f'root = "{REPO}"\n[storage]\nurl = "sqlite:///{db}"\n'
        f"[fetch]\ntotal_timeout = {TOTAL_TIMEOUT}\nread_timeout = 5\nconnect_timeout = 2\n"
        f"backoff_max_minutes = {BACKOFF_CAP_MINUTES}\nallow_private_addresses = true\n"
        + "".join(f'[[feeds]]\nname = "{name}"\nurl = "{url}"\nfull_text = {str(full).lower()}\n'
                  for name, url, full in entries)
    )
    yield config, db, feeds
    slow.close()
    feeds.release.set()
    feeds.httpd.shutdown()
    feeds.httpd.server_close()


# Linux keeps a process's peak RSS across fork and exec, so a child forked straight from
# this (large) pytest process would report pytest's size. A small launcher forks the
# monitor instead and writes the monitor's own peak (its RUSAGE_CHILDREN) to a file.
LAUNCHER = """
import resource, subprocess, sys
code = subprocess.call(sys.argv[2:])
with open(sys.argv[1], "w") as out:
    out.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(code)
"""


def run_once(config, name: str) -> tuple[int, str, float, float]:
    """`tension-monitor run --once` as a child: (exit code, output, wall seconds, peak RSS MB
    of the monitor process itself)."""
    log, peak = config.parent / f"{name}.log", config.parent / f"{name}.peak"
    started = time.monotonic()
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-c", LAUNCHER, str(peak), sys.executable, "-m", "monitor",
                                 "--config", str(config), "run", "--once"],
                                cwd=REPO, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    guard = threading.Timer(HARD_KILL_SECONDS, lambda: os.killpg(proc.pid, signal.SIGKILL))
    guard.start()
    try:
        proc.wait()
    finally:
        guard.cancel()
    wall = time.monotonic() - started
    peak_kib = int(peak.read_text()) if peak.exists() else 0
    return proc.returncode, log.read_text(), wall, peak_kib / 1024  # ru_maxrss is in KiB on Linux


def test_run_once_survives_every_hostile_answer_within_memory_and_time(hostile):
    config, db, feeds = hostile
    before = datetime.now(timezone.utc)
    code, output, wall, peak_mb = run_once(config, "first")
    after = datetime.now(timezone.utc)
    print(f"run --once: exit {code}, {wall:.1f} s wall, peak RSS {peak_mb:.0f} MB")

    assert "Traceback" not in output, output
    assert code == 0, output
    assert peak_mb < PEAK_RSS_LIMIT_MB, output
    assert wall < TOTAL_TIMEOUT + 15, output
    assert "refusing stacked Content-Encoding gzip, gzip" in output
    assert "body exceeds 15 MiB cap" in output
    assert f"gave up after {TOTAL_TIMEOUT} s (total timeout)" in output

    engine = open_store(f"sqlite:///{db}")
    with engine.connect() as conn:
        titles = set(conn.execute(select(schema.articles.c.title)).scalars())
        state = {row.name: row for row in conn.execute(select(schema.feeds))}
    engine.dispose()
    assert {f"Good story {n}" for n in range(3)} <= titles
    assert {f"Page {n}" for n in range(3)} <= titles  # full text failed: the feed's own text is kept
    cap = timedelta(minutes=BACKOFF_CAP_MINUTES)
    busy = state["Busy"]
    assert busy.last_status == 429 and "HTTP 429" in busy.last_error
    assert before + cap <= busy.next_poll_at <= after + cap  # the clamp, not 3 billion years, not every tick
    for name in ("Double gzip", "Single gzip", "Slow headers"):
        assert state[name].last_error and state[name].next_poll_at > after, name  # failed, backed off, saved

    polls_of_busy = len(feeds.headers_for("/busy.xml"))
    code, output, _, _ = run_once(config, "second")
    assert code == 0 and "Traceback" not in output, output
    assert len(feeds.headers_for("/busy.xml")) == polls_of_busy == 1  # not polled again before its clamp
