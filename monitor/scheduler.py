"""The daemon: an APScheduler BlockingScheduler that ticks and asks the database what is due.

Nothing is scheduled per feed and nothing is pickled: each tick runs the same
`pipeline.run_cycle(only_due=True)` as `run --once`, and due times live in
`feeds.next_poll_at`. A restarted daemon simply carries on.

The daemon holds the `daemon` lock in the database (storage.locks) for as long as it
runs; SIGTERM or SIGINT let the tick in hand finish the feed it is storing (a fetch
still in flight gets a few seconds), then the lock is released and the process exits 0,
within 10 s whatever was in flight.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from datetime import datetime, timedelta, timezone

from monitor.errors import StorageError
from monitor.storage import locks

log = logging.getLogger(__name__)

# After SIGTERM: the tick in hand may take TICK_STOP_WAIT, releasing the lock
# LOCK_RELEASE_WAIT, so the process is gone within 10 s whatever was in flight.
TICK_STOP_WAIT = 5.0
LOCK_RELEASE_WAIT = 1.5


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
            started = time.monotonic()
            report = pipeline.run_cycle(self.app, now, only_due=True, stop_event=self.stop_event, tagger=self.tagger)
            _log_if_slow(time.monotonic() - started, self.app.settings.schedule.tick_seconds)
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


def _log_if_slow(seconds: float, interval: int) -> None:
    if seconds > interval:
        log.info("slow tick: the cycle took %.1f s, longer than schedule.tick_seconds (%d s); "
                 "the ticks due meanwhile were skipped and the next one starts on schedule", seconds, interval)


def _skipped_tick_filter(record: logging.LogRecord) -> bool:
    # APScheduler warns "maximum number of running instances reached" for each tick that
    # falls due while one runs (max_instances=1 is what we want); the slow tick line says
    # what happened in our words, once.
    return "maximum number of running instances reached" not in record.getMessage()


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
    # A tick longer than the interval is reported by the tick itself (see Daemon.tick).
    logging.getLogger("apscheduler.scheduler").addFilter(_skipped_tick_filter)
    scheduler = BlockingScheduler(timezone=timezone.utc)
    _add_jobs(scheduler, daemon, settings)
    _stop_on_signals(scheduler, daemon.stop_event)
    log.info("daemon started (%s); ticking every %ds", daemon.holder, settings.tick_seconds)
    try:
        if not daemon.stop_event.is_set():
            scheduler.start()
    finally:
        daemon.stop_event.set()
        # Let the tick in hand finish the feed it is storing (fetches in flight get
        # fetch.STOP_GRACE seconds), but never longer than TICK_STOP_WAIT.
        finished = daemon.tick_running.acquire(timeout=TICK_STOP_WAIT)
        released = release_lock(app, daemon.holder)
        if finished:
            daemon.tick_running.release()
    if not finished:
        _exit_now(f"the tick in hand did not stop within {TICK_STOP_WAIT:g} s; exiting without it "
                  "(its open transaction rolls back, its articles are stored by the next run)")
    if not released:
        _exit_now("could not release the daemon lock in time (the database is busy); "
                  "the next daemon on this host takes it at once")
    log.info("daemon stopped%s", f": {daemon.failed}" if daemon.failed else "")
    return 1 if daemon.failed else 0


def release_lock(app, holder: str) -> bool:
    """Release the daemon lock, waiting at most LOCK_RELEASE_WAIT: a database locked by
    someone else (SQLite's busy timeout is 30 s) must not hold up the exit. A lock left
    behind by a dead process on this host is taken over at once by the next daemon."""
    from monitor.timebox import call_with_timeout

    try:
        call_with_timeout(lambda: locks.release(app.engine, locks.DAEMON_LOCK, holder), LOCK_RELEASE_WAIT, "release lock")
        return True
    except TimeoutError:
        return False
    except Exception:
        log.exception("daemon: releasing the lock failed")
        return False


def _exit_now(reason: str) -> None:
    """Exit without joining the worker threads still busy (a service manager's stop
    timeout must not be reached); the database keeps only committed transactions."""
    log.warning("daemon stopped: %s", reason)
    logging.shutdown()
    os._exit(0)


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

