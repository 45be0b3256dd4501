"""`tension-monitor worker` on the real PostgreSQL (issue 12, items 1 and 4): feed leases,
lease expiry, leader election, reconnection, and workers killed with SIGKILL."""

import signal
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy
from sqlalchemy import func, select
from werkzeug import Response

from monitor.records import FetchResult
from monitor.settings import Settings
from monitor.storage import articles as article_store
from monitor.storage import feeds as feed_store
from monitor.storage import schema
from monitor.storage.engine import open_store
from monitor.worker import FEEDS_PER_CLAIM, Leadership
from tests.conftest import PG_BASE, REPO
from tests.factories import FeedItem, rss_feed
from tests.test_cli_ingest import query
from tests.test_mailer import smtp  # noqa: F401 - the SMTP server fixture

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=timezone.utc)
LEASE = timedelta(minutes=5)


@pytest.fixture
def pg_engine(pg_url):
    engine = open_store(pg_url)
    yield engine
    engine.dispose()


def add_feeds(engine, n: int) -> None:
    feed_store.add_feeds(engine, [(f"Feed {i}", f"https://feeds.example.com/{i}.xml") for i in range(n)], NOW)


def test_two_workers_lease_different_due_feeds(pg_engine):
    add_feeds(pg_engine, 5)
    first = feed_store.claim_due_feeds(pg_engine, NOW, "worker a", LEASE, 3)
    second = feed_store.claim_due_feeds(pg_engine, NOW, "worker b", LEASE, 3)
    assert len(first) == 3 and len(second) == 2
    assert not {f.id for f in first} & {f.id for f in second}
    assert feed_store.claim_due_feeds(pg_engine, NOW, "worker c", LEASE, 3) == []  # all leased


def test_a_lease_expires_unless_renewed_and_a_stored_poll_ends_it(pg_engine):
    add_feeds(pg_engine, 2)
    [kept, lost] = feed_store.claim_due_feeds(pg_engine, NOW, "worker a", LEASE, 2)
    later = NOW + LEASE + timedelta(seconds=1)
    # worker a stores its poll of `kept`: the lease ends and the feed is next due in 30 minutes
    result = FetchResult(feed_id=kept.id, requested_url=kept.url, final_url=kept.url, status=304, not_modified=True,
                         etag='"v2"', elapsed_seconds=0.1)
    article_store.store_feed_run(pg_engine, kept.id, None, result, NOW, Settings(root=REPO))
    # worker a died holding `lost`: after the lease another worker gets it, not `kept`
    assert [f.id for f in feed_store.claim_due_feeds(pg_engine, later, "worker b", LEASE, 5)] == [lost.id]
    with pg_engine.connect() as conn:
        row = conn.execute(select(schema.feeds).where(schema.feeds.c.id == kept.id)).one()
    assert row.lease_holder is None and row.etag == '"v2"'
    # a heartbeat keeps a lease alive past its first expiry
    feed_store.renew_leases(pg_engine, "worker b", later + LEASE)
    assert feed_store.claim_due_feeds(pg_engine, later + LEASE - timedelta(seconds=1), "worker c", LEASE, 5) == []


def test_exactly_one_leader_and_a_new_one_when_it_goes(pg_engine):
    first, second = Leadership(pg_engine), Leadership(pg_engine)
    assert first.hold() and not second.hold()
    assert first.hold()  # still the leader on its next tick
    first.drop()  # the leader's connection is gone (process died, database restarted)
    assert second.hold() and not first.hold()
    second.drop()


# --- workers as processes ----------------------------------------------------------------


class WorkerProcess:
    def __init__(self, config: Path, log: Path):
        self.log = log
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "monitor", "--config", str(config), "worker", "--processes", "1"],
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=log.open("w"))

    def output(self) -> str:
        return self.log.read_text()

    def wait_for(self, predicate, what: str, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"worker never {what}:\n{self.output()}")
            time.sleep(0.2)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=120)


@pytest.fixture
def workers():
    started: list[WorkerProcess] = []
    yield started
    for worker in started:
        if worker.proc.poll() is None:
            worker.proc.kill()
            worker.proc.wait()


def worker_config(tmp_path: Path, db_url: str, feeds: str, name: str = "worker.toml") -> Path:
    config = tmp_path / name
    config.write_text(f'root = "{REPO}"\n[storage]\nurl = "{db_url}"\n[schedule]\ntick_seconds = 1\n'
                      f'lock_stale_seconds = 30\n{feeds}')
    return config


def count(db_url: str, statement) -> int:
    return query(db_url, statement)[0][0]


def test_a_worker_on_sqlite_refuses_with_one_line_and_creates_nothing(tmp_path):
    config = worker_config(tmp_path, f"sqlite:///{tmp_path / 'store.db'}", "")
    done = subprocess.run([sys.executable, "-m", "monitor", "--config", str(config), "worker"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        "error: `worker` needs PostgreSQL, but storage.url is sqlite; on one machine use `daemon`"]
    assert not (tmp_path / "store.db").exists()


def test_a_worker_reconnects_after_its_connections_are_terminated(tmp_path, httpserver, pg_url, workers):
    served = {"n": 0}

    def feed(_request):
        served["n"] += 1  # a new story on every poll
        items = [FeedItem(f"Story {n}", f"https://news.example.com/{n}") for n in range(served["n"])]
        return Response(rss_feed(items), content_type="application/rss+xml")

    httpserver.expect_request("/feed.xml").respond_with_handler(feed)
    app_name = f"tm_worker_{uuid.uuid4().hex[:8]}"
    db_url = f"{pg_url}&application_name={app_name}"
    feeds = f'[[feeds]]\nname = "Feed"\nurl = "{httpserver.url_for("/feed.xml")}"\ninterval_minutes = 1\n'
    worker = WorkerProcess(worker_config(tmp_path, db_url, feeds), tmp_path / "worker.log")
    workers.append(worker)
    worker.wait_for(lambda: count(pg_url, select(func.count()).select_from(schema.articles)) >= 1, "stored a story")

    # What a PostgreSQL restart does to a client: every connection of this worker dropped.
    admin = sqlalchemy.create_engine(PG_BASE)
    with admin.begin() as conn:
        ended = conn.execute(sqlalchemy.text(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = :name"),
            {"name": app_name}).scalar_one()
    admin.dispose()
    assert ended >= 1
    with open_store(pg_url).begin() as conn:  # make the feed due again, so the worker must write
        conn.execute(schema.feeds.update().values(next_poll_at=None))
    worker.wait_for(lambda: count(pg_url, select(func.count()).select_from(schema.articles)) >= 2,
                    "stored again after losing its connections")
    assert worker.proc.poll() is None and worker.stop() == 0
    assert "Traceback" not in worker.output(), worker.output()


def test_three_workers_one_killed_store_everything_once(tmp_path, httpserver, pg_url, workers):
    """The issue's scale: 300 loopback feeds, 3 workers, one SIGKILLed once it polls."""
    feeds_n, items = 300, 2
    lines = ""
    for f in range(feeds_n):
        body = rss_feed([FeedItem(f"Feed {f} story {i} about Microsoft and OpenAI", f"https://n.example/{f}/{i}",
                                  f"Feed {f} reports item {i}: Microsoft and OpenAI discuss Azure capacity {f * 31 + i}.")
                         for i in range(items)])
        httpserver.expect_request(f"/f{f}.xml").respond_with_data(body, content_type="application/rss+xml")
        lines += f'[[feeds]]\nname = "F{f}"\nurl = "{httpserver.url_for(f"/f{f}.xml")}"\n'
    config = worker_config(tmp_path, pg_url, lines)
    for n in range(3):
        workers.append(WorkerProcess(config, tmp_path / f"worker{n}.log"))
    victim = workers[0]
    victim.wait_for(lambda: "feed 'F" in victim.output(), "polled a feed")
    victim.proc.send_signal(signal.SIGKILL)
    victim.proc.wait()

    def done() -> bool:
        stored = count(pg_url, select(func.count()).select_from(schema.articles))
        untagged = count(pg_url, select(func.count()).where(schema.articles.c.tagged_at.is_(None)))
        return stored == feeds_n * items and untagged == 0

    workers[1].wait_for(done, "stored and tagged every item", timeout=400)
    for survivor in workers[1:]:
        assert survivor.stop() == 0
        assert "feed 'F" in survivor.output() and "Traceback" not in survivor.output(), survivor.output()
    assert count(pg_url, select(func.count(func.distinct(schema.articles.c.canonical_url)))) == feeds_n * items
    assert count(pg_url, select(func.count()).select_from(schema.article_scores)) == feeds_n * items * 13
    assert count(pg_url, select(func.count()).where(schema.feeds.c.last_poll_at.is_(None))) == 0
    assert count(pg_url, select(func.count()).where(schema.feeds.c.lease_holder.is_not(None))) == 0
    leaders = [w for w in workers[1:] if "leader: this worker" in w.output()]
    assert leaders  # a survivor took over the singletons (the victim may have led first)
    # Every feed polled once in this due cycle; only the victim's unfinished leases (one
    # claim at most) were polled again by the worker that took them over.
    requests: dict[str, int] = {}
    for request, _response in httpserver.log:
        requests[request.path] = requests.get(request.path, 0) + 1
    assert set(requests) == {f"/f{f}.xml" for f in range(feeds_n)}
    again = [path for path, n in requests.items() if n > 1]
    assert len(again) <= FEEDS_PER_CLAIM and all(requests[path] == 2 for path in again), again


def test_the_digest_is_sent_once_by_the_leader_and_not_again_after_it_dies(tmp_path, pg_url, workers, smtp):
    from tests.test_mailer import smtp_toml

    slot = datetime.now(timezone.utc) - timedelta(minutes=1)  # the send time has just passed
    digest = {"send_at": f"{slot:%H:%M}", "timezone": "UTC"}
    config = worker_config(tmp_path, pg_url, smtp_toml(smtp.port, digest))
    for n in range(3):
        workers.append(WorkerProcess(config, tmp_path / f"worker{n}.log"))
    workers[0].wait_for(lambda: len(smtp.envelopes) >= 1, "saw the digest sent", timeout=240)
    leaders = [w for w in workers if "leader: this worker" in w.output()]
    assert len(leaders) == 1
    leaders[0].proc.send_signal(signal.SIGKILL)
    leaders[0].proc.wait()
    survivors = [w for w in workers if w is not leaders[0]]
    survivors[0].wait_for(lambda: any("leader: this worker" in w.output() for w in survivors), "elected a new leader")
    time.sleep(3)  # a few ticks of the new leader
    assert len(smtp.envelopes) == 1
    for survivor in survivors:
        assert survivor.stop() == 0 and "Traceback" not in survivor.output(), survivor.output()
