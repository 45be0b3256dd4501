"""`tension-monitor worker`: any number of processes, on any number of machines, sharing
one PostgreSQL store. `daemon` stays the one-process mode (and the only one on SQLite).

Every tick a worker:
1. tries to be the leader: a session-level PostgreSQL advisory lock held on a
   connection of its own. Exactly one worker holds it; if that worker dies, its
   connection closes, the lock is free, and the next worker to tick takes it over. The
   leader runs the singletons: the config's feed list sync and the digest at `send_at`.
2. leases a batch of due feeds (storage.feeds.claim_due_feeds: SKIP LOCKED, then a lease
   with an expiry its heartbeat keeps moving), polls and stores them through the same
   pipeline as the daemon; each stored poll ends its feed's lease.
3. tags untagged articles (pipeline.tag_untagged: rows claimed with SKIP LOCKED inside
   the batch's transaction, so a worker that dies mid-batch releases them with its
   connection and another tags them).

A lost database (a restart, a dropped connection) fails the tick with one log line; the
next tick reconnects (the engine pings connections before use) and goes on.
"""

from __future__ import annotations

import logging
import signal
import threading
from datetime import datetime, timedelta, timezone

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError

from monitor.errors import ConfigError
from monitor.storage import feeds as feed_store
from monitor.storage import locks

log = logging.getLogger(__name__)

FEEDS_PER_CLAIM = 16  # feeds leased at a time: enough to keep the fetch pool busy, small enough to share
LEADER_KEY = "tension-monitor leader"


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Leadership:
    """The advisory lock, on one connection kept for as long as it is held. The key
    includes the schema, so stores in different schemas of one database elect apart."""

    def __init__(self, engine):
        self.engine, self.conn = engine, None

    def hold(self) -> bool:
        """True while this process is the leader (taking the lock when it is free)."""
        if self.conn is not None:
            try:
                self.conn.execute(text("SELECT 1"))
                return True
            except DBAPIError:
                log.warning("leader: lost the database connection, and with it the leadership")
                self.drop()
        conn = self.engine.connect()
        taken = conn.execute(text("SELECT pg_try_advisory_lock(hashtext(current_schema() || :key))"),
                             {"key": LEADER_KEY}).scalar()
        conn.commit()
        if taken:
            self.conn = conn
            log.info("leader: this worker runs the digest and the feed list sync")
            return True
        conn.close()
        return False

    def drop(self) -> None:
        if self.conn is not None:
            try:
                self.conn.invalidate()  # never hand a connection holding the lock back to the pool
            finally:
                self.conn = None


class Worker:
    def __init__(self, app, tagger):
        self.app, self.tagger = app, tagger
        self.holder = locks.this_process()
        self.stop_event = threading.Event()
        self.leadership = Leadership(app.engine)
        stale = app.settings.schedule.lock_stale_seconds
        self.lease = timedelta(seconds=stale)

    def tick(self) -> None:
        from monitor import pipeline

        now = utcnow()
        if self.leadership.hold():
            self.lead(now)
        self.release_dead_holders(now)
        report = pipeline.CycleReport()
        while not self.stop_event.is_set():  # lease and poll batches until nothing is due
            sources = feed_store.claim_due_feeds(self.app.engine, now, self.holder, self.lease, FEEDS_PER_CLAIM)
            if not sources:
                break
            report.due += len(sources)
            pipeline.poll_feeds(self.app, sources, now, report, None, self.stop_event)
        if not self.stop_event.is_set():
            report.tagged, report.tag_error = pipeline.tag_untagged(self.app, self.stop_event, tagger=self.tagger)
        if report.polled or report.tagged:
            log.info("tick: %d feeds polled, %d new articles, %d failures, %d tagged",
                     report.polled, report.new_articles, report.failures, report.tagged)

    def lead(self, now: datetime) -> None:
        from monitor.scheduler import send_due_digest

        feed_store.sync_config_feeds(self.app.engine, self.app.settings.feeds, now)
        send_due_digest(self.app, utcnow())

    def release_dead_holders(self, now: datetime) -> None:
        """Leases of a worker on this host whose process is gone end at once (it was
        killed); a worker on another host loses them when they expire."""
        dead = [holder for holder in feed_store.lease_holders(self.app.engine, now)
                if holder != self.holder and locks.holder_is_dead(holder)]
        if dead:
            log.warning("feeds leased by %s: that process is gone; they are due again", ", ".join(dead))
            feed_store.release_leases(self.app.engine, dead)

    def heartbeat(self) -> None:
        """Keep this worker's leases from expiring while a long tick runs."""
        beat = max(5.0, self.lease.total_seconds() / 4)
        while not self.stop_event.wait(beat):
            try:
                feed_store.renew_leases(self.app.engine, self.holder, utcnow() + self.lease)
            except DBAPIError as exc:
                log.warning("heartbeat: %s", _one_line(exc))

    def run(self) -> int:
        tick_seconds = self.app.settings.schedule.tick_seconds
        threading.Thread(target=self.heartbeat, name="lease-heartbeat", daemon=True).start()
        log.info("worker started (%s); ticking every %ds", self.holder, tick_seconds)
        try:
            while not self.stop_event.is_set():
                try:
                    self.tick()
                except (OperationalError, DBAPIError) as exc:
                    log.error("database unavailable: %s; retrying next tick", _one_line(exc))
                    self.leadership.drop()
                self.stop_event.wait(tick_seconds)
        finally:
            self.stop_event.set()
            self.leadership.drop()
            try:
                feed_store.release_leases(self.app.engine, [self.holder])
            except DBAPIError as exc:
                log.warning("could not release this worker's leases (they expire): %s", _one_line(exc))
        log.info("worker stopped")
        return 0


def _one_line(exc: Exception) -> str:
    return str(getattr(exc, "orig", exc)).strip().splitlines()[0]


def run_worker(app, processes: int) -> int:
    """Refuse SQLite, then tick until SIGTERM/SIGINT. Returns the exit code."""
    from monitor.tagpool import Tagger

    backend = app.settings.database_url.split(":", 1)[0].split("+", 1)[0]
    if backend != "postgresql":  # checked before the store is opened: nothing is created
        raise ConfigError(f"`worker` needs PostgreSQL, but storage.url is {backend}; "
                          "on one machine use `daemon`")
    feed_store.sync_config_feeds(app.engine, app.settings.feeds, utcnow())
    with Tagger(app, processes) as tagger:
        worker = Worker(app, tagger)
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: worker.stop_event.set())
        return worker.run()
