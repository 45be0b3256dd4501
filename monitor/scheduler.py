"""The daemon: an APScheduler BlockingScheduler that ticks and asks the database what is due.

Nothing is scheduled per feed and nothing is pickled: each tick runs the same
`pipeline.run_cycle(only_due=True)` as `run --once`, and due times live in
`feeds.next_poll_at`. A restarted daemon simply carries on.

The daemon holds the `daemon` lock in the database (storage.locks) for as long as it
runs; SIGTERM or SIGINT let the tick in hand finish the feed it is storing, then the
lock is released and the process exits 0.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from datetime import datetime, timedelta, timezone

from monitor.errors import StorageError
from monitor.storage import locks

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Daemon:
    """The tick and heartbeat jobs, the stop request, and the lock they share."""

    def __init__(self, app, tagger=None):
        self.app, self.tagger = app, tagger
        self.holder = locks.this_process()
        self.stop_event = threading.Event()
        self.tick_running = threading.Lock()  # held while a tick runs, so shutdown can wait for it
        self.failed: str | None = None  # why the daemon stopped on its own (lost lock)

    def tick(self) -> None:
        """One cycle: refresh the lock, poll what is due, then send a digest if one is due."""
        from monitor import pipeline

        with self.tick_running:
            if self.stop_event.is_set() or not self.heartbeat():
                return
            now = utcnow()
            report = pipeline.run_cycle(self.app, now, only_due=True, stop_event=self.stop_event, tagger=self.tagger)
            if report.polled or report.tagged:
                log.info("tick: %d feeds polled, %d new articles, %d failures, %d tagged",
                         report.polled, report.new_articles, report.failures, report.tagged)
            if not self.stop_event.is_set():
                send_due_digest(self.app, utcnow())

    def heartbeat(self) -> bool:
        try:
            locks.heartbeat(self.app.engine, locks.DAEMON_LOCK, self.holder, utcnow())
            return True
        except StorageError as exc:
            # Another daemon took the lock (ours went stale): two pollers must never run.
            self.failed = str(exc)
            log.error("%s; stopping", exc)
            self.stop_event.set()
            return False


def send_due_digest(app, now: datetime) -> None:
    """digest.send_due_digest; a digest failure is logged and retried next tick, never
    fatal to polling."""
    from monitor import digest

    try:
        digest.send_due_digest(app, now)
    except Exception:
        log.exception("digest: sending failed; will retry on a later tick")


def run_daemon(app, processes: int = 1) -> int:
    """Take the lock, tick until SIGTERM/SIGINT, release the lock. Returns the exit code.
    Tagging runs in `processes` processes (started on the first batch, kept for the
    daemon's life)."""
    from monitor.tagpool import Tagger

    with Tagger(app, processes) as tagger:
        return _run_ticks(app, Daemon(app, tagger))


def _run_ticks(app, daemon: Daemon) -> int:
    from apscheduler.schedulers.blocking import BlockingScheduler

    settings = app.settings.schedule
    locks.acquire(app.engine, locks.DAEMON_LOCK, daemon.holder, utcnow(), timedelta(seconds=settings.lock_stale_seconds))
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        # Two "job executed successfully" lines a tick drown the per-feed poll lines.
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
    scheduler = BlockingScheduler(timezone=timezone.utc)
    _add_jobs(scheduler, daemon, settings)
    _stop_on_signals(scheduler, daemon.stop_event)
    log.info("daemon started (%s); ticking every %ds", daemon.holder, settings.tick_seconds)
    try:
        if not daemon.stop_event.is_set():
            scheduler.start()
    finally:
        daemon.stop_event.set()
        with daemon.tick_running:  # let the tick in hand finish the feed it is storing
            locks.release(app.engine, locks.DAEMON_LOCK, daemon.holder)
    log.info("daemon stopped%s", f": {daemon.failed}" if daemon.failed else "")
    return 1 if daemon.failed else 0


def _add_jobs(scheduler, daemon: Daemon, settings) -> None:
    # max_instances=1 + coalesce: a cycle longer than a tick delays the next tick
    # instead of stacking them; misfire grace drops ticks missed while suspended.
    common = {"max_instances": 1, "coalesce": True, "misfire_grace_time": settings.misfire_grace_seconds}
    scheduler.add_job(daemon.tick, "interval", seconds=settings.tick_seconds, next_run_time=utcnow(), id="tick", **common)
    # A long cycle (a cold start tagging thousands of articles) must not let the lock
    # look stale, so the heartbeat also runs on its own, between ticks.
    beat = max(10, settings.lock_stale_seconds // 4)
    scheduler.add_job(daemon.heartbeat, "interval", seconds=beat, id="heartbeat", **common)


def _stop_on_signals(scheduler, stop_event: threading.Event) -> None:
    """SIGTERM/SIGINT only set the stop event (safe in a signal handler); a watcher
    thread then shuts the scheduler down without waiting for the tick in hand."""

    def request_stop(signum, _frame):
        log.info("received %s: finishing the feed in hand, then exiting", signal.Signals(signum).name)
        stop_event.set()

    def watcher():
        from apscheduler.schedulers import SchedulerNotRunningError

        stop_event.wait()
        while True:  # a signal may arrive just before start(): retry until it runs
            try:
                scheduler.shutdown(wait=False)
                return
            except SchedulerNotRunningError:
                time.sleep(0.05)

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    threading.Thread(target=watcher, name="stop-watcher", daemon=True).start()

