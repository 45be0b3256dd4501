"""The stage order for one poll cycle, and nothing else.

due feeds -> fetch (threads) -> per result, as it completes: parse + MinHash signatures
(worker processes on big cycles) -> optional full text -> store (one transaction per
feed, in this thread) ; then tag what is still untagged.

Articles are committed before they are tagged, and tagging picks up every untagged
article, so a cycle killed between the two loses nothing: the next cycle tags them.
`run --once` and every daemon tick call `run_cycle`.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from monitor.errors import MonitorError
from monitor.records import ArticleRecord, FeedSource, FetchResult, ParsedFeed
from monitor.storage import articles as article_store
from monitor.storage import feeds as feed_store

log = logging.getLogger(__name__)

TAG_BATCH = 64  # articles per classify call: large enough for spaCy's nlp.pipe, small enough to commit often


@dataclass(frozen=True)
class FeedPoll:
    """What one feed's poll did, for the log line, the progress bar and the summary."""

    feed_id: int
    name: str
    status: int | None
    new: int
    duplicates: int
    seconds: float
    error: str | None = None


@dataclass
class CycleReport:
    due: int = 0  # feeds selected for this cycle
    polls: list[FeedPoll] = field(default_factory=list)
    tagged: int = 0
    tag_error: str | None = None  # tagging could not run (no model, no classify module)
    stopped: bool = False  # a stop request (SIGTERM) ended the cycle after the feed in hand

    @property
    def polled(self) -> int:
        return len(self.polls)

    @property
    def new_articles(self) -> int:
        return sum(poll.new for poll in self.polls)

    @property
    def failures(self) -> int:
        return sum(poll.error is not None for poll in self.polls)


Progress = Callable[[int, int, FeedPoll], None]  # (done, total, last poll)


def run_cycle(
    app,
    now: datetime,
    only_due: bool = True,
    tag: bool = True,
    progress: Progress | None = None,
    stop_event: threading.Event | None = None,
    tagger=None,
) -> CycleReport:
    """Poll due feeds (all active feeds when not only_due), store, then tag (in
    `tagger`'s processes when given: a tagpool.Tagger)."""
    settings, engine = app.settings, app.engine
    stop_event = stop_event or threading.Event()
    feed_store.sync_config_feeds(engine, settings.feeds, now)
    default_interval = timedelta(minutes=settings.schedule.poll_minutes)
    sources = feed_store.due_feeds(engine, now, default_interval, only_due=only_due)
    report = CycleReport(due=len(sources))
    poll_feeds(app, sources, now, report, progress, stop_event)
    if tag and not stop_event.is_set():
        report.tagged, report.tag_error = tag_untagged(app, stop_event, tagger=tagger)
        send_alerts(app, now)
    return report


def send_alerts(app, now: datetime) -> None:
    """Alerts for what this cycle stored (monitor/alerts.py); a problem there never ends the cycle."""
    from monitor.alerts import run_alerts

    try:
        run_alerts(app, now)
    except Exception:
        log.exception("alerts: not sent this cycle; they stay pending for the next")


def poll_feeds(app, sources: list[FeedSource], now: datetime, report: CycleReport, progress, stop_event) -> None:
    """Fetch concurrently, parse (in worker processes on a big cycle), and store each feed
    in this thread as it is ready: the store has one writer, and a stop request lands
    between two feeds."""
    if not sources or stop_event.is_set():
        report.stopped = stop_event.is_set()
        return
    from monitor.fetch import fetch_feeds

    by_id = {source.id: source for source in sources}
    recent = article_store.RecentSignatures()
    preparer = Preparer(len(sources), now, app.settings.fetch.max_items_per_feed)
    results = fetch_feeds(sources, app.settings.fetch, stop=stop_event)
    try:
        for result, prepared in preparer.in_completion_order(results, by_id):
            poll = poll_one(app, by_id[result.feed_id], result, prepared, now, recent, stop_event)
            report.polls.append(poll)
            if progress:
                progress(len(report.polls), len(sources), poll)
            if stop_event.is_set():
                report.stopped = True
                break
    finally:
        results.close()  # stops handing out fetches still queued
        preparer.close()


def poll_one(app, source: FeedSource, result: FetchResult, prepared: Future, now: datetime, recent, stop_event=None) -> FeedPoll:
    """Store one parsed fetch result. Any failure is this feed's alone: it is logged,
    recorded on the feed (so it backs off), and the cycle goes on."""
    started, parsed = time.monotonic(), None
    try:
        parsed, signatures = prepared.result()
        if parsed and source.full_text and not parsed.error:
            parsed = with_full_text(app, source, parsed, stop_event)
        outcome = article_store.store_feed_run(
            app.engine, source.id, parsed, result, now, app.settings, recent, signatures=signatures
        )
    except Exception as exc:  # a bug or a database hiccup in one feed must not end the cycle
        log.exception("feed %r: could not be processed", source.name)
        outcome = _record_crash(app, source, result, now, f"internal error: {type(exc).__name__}: {exc}")
    poll = FeedPoll(
        feed_id=source.id,
        name=source.name,
        status=result.status,
        new=len(outcome.new_ids),
        duplicates=outcome.duplicates,
        seconds=result.elapsed_seconds + time.monotonic() - started,
        error=outcome.error,
    )
    _log_poll(poll, result, parsed)
    return poll


# --- parsing, inline or in worker processes ----------------------------------------

PARALLEL_MIN_FEEDS = 16  # below this many feeds, starting worker processes costs more than it saves


def prepare(result: FetchResult, fetched_at: datetime, max_items: int, sign: bool) -> tuple[ParsedFeed | None, dict]:
    """Parse one fetch result and sign its articles (MinHash): pure CPU work, so on a big
    cycle it runs in worker processes while this process stores the previous feed.
    Returns (parsed or None for a 304 / failed fetch, {content_hash: signature})."""
    if not result.ok or result.not_modified:
        return None, {}
    from monitor.parse import parse_feed

    parsed = parse_feed(result, fetched_at, max_items)
    signatures = {a.content_hash: article_store.signature_of(a) for a in parsed.articles} if sign else {}
    return parsed, signatures


class Preparer:
    """Runs `prepare` inline on small cycles, in a process pool (one worker per CPU) on
    big ones, where parsing and MinHash would otherwise leave all but one core idle."""

    def __init__(self, feeds: int, now: datetime, max_items: int):
        self.now, self.max_items = now, max_items
        self.parallel = feeds >= PARALLEL_MIN_FEEDS and (os.cpu_count() or 1) > 1
        self._pool: ProcessPoolExecutor | None = None

    def submit(self, result: FetchResult, full_text: bool) -> Future:
        # Full-text feeds replace the text later, so their signatures are made at store time.
        args = (result, self.now, self.max_items, not full_text)
        if self.parallel and result.ok and not result.not_modified:
            return self._workers().submit(prepare, *args)
        future: Future = Future()
        try:
            future.set_result(prepare(*args))
        except Exception as exc:
            future.set_exception(exc)
        return future

    def in_completion_order(self, results, sources: dict[int, FeedSource]):
        """(result, prepared future) pairs as parsing completes; parsing overlaps fetching."""
        pending: dict[Future, FetchResult] = {}
        for result in results:
            pending[self.submit(result, sources[result.feed_id].full_text)] = result
            for future in [f for f in pending if f.done()]:
                yield pending.pop(future), future
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                yield pending.pop(future), future

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def _workers(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # forkserver: workers fork from a clean process that imported the parser once,
            # never from this one with its fetch threads and database connections.
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["monitor.parse", "monitor.dedupe", "monitor.pipeline"])
            self._pool = ProcessPoolExecutor(min(os.cpu_count() or 1, 4), context, initializer=_worker_setup)
        return self._pool


def _worker_setup() -> None:
    # Ctrl-C and a service manager's SIGTERM go to the whole process group; workers leave
    # the shutdown to the main process, which finishes the feed in hand first.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    threading.Thread(target=_exit_with_parent, name="parent-watch", daemon=True).start()


def _exit_with_parent() -> None:
    # A worker waits on its task queue forever, so if the main process is killed (kill -9,
    # OOM) nothing would end it: it watches the parent and exits with it.
    parent = multiprocessing.parent_process()
    while parent is not None and parent.is_alive():
        time.sleep(1)
    os._exit(0)


def _record_crash(app, source: FeedSource, result: FetchResult, now: datetime, error: str):
    try:
        return article_store.record_fetch_failure(app.engine, source.id, result, now, app.settings, error=error)
    except Exception:
        log.exception("feed %r: could not record the failure either", source.name)
        return article_store.StoreOutcome(error=error)


def _log_poll(poll: FeedPoll, result: FetchResult, parsed: ParsedFeed | None) -> None:
    for warning in (parsed.warnings if parsed else [])[:5]:
        log.info("feed %r: %s", poll.name, warning)
    status = "304 not modified" if result.not_modified else (poll.status if poll.status is not None else "no response")
    if poll.error:
        log.warning("feed %r: %s, failed in %.2fs: %s", poll.name, status, poll.seconds, poll.error)
    else:
        log.info("feed %r: %s, %d new, %d seen before, %.2fs", poll.name, status, poll.new, poll.duplicates, poll.seconds)


# --- full text -----------------------------------------------------------------


def with_full_text(app, source: FeedSource, parsed: ParsedFeed, stop_event: threading.Event | None = None) -> ParsedFeed:
    """Replace the feed's text with the article page's text, for items not yet stored
    (pages of known items are never fetched again). A failure keeps the feed's text;
    after a stop request the pages not yet fetched are skipped (feed text kept)."""
    known = article_store.known_canonical_urls(app.engine, [a.canonical_url for a in parsed.articles])
    fresh = [a for a in parsed.articles if a.canonical_url not in known]
    if not fresh:
        return parsed
    with ThreadPoolExecutor(max_workers=app.settings.fetch.concurrency) as pool:
        upgraded = dict(zip((a.canonical_url for a in fresh), pool.map(lambda a: _full_text(app, source, a, stop_event), fresh)))
    return replace(parsed, articles=[upgraded.get(a.canonical_url, a) for a in parsed.articles])


def _full_text(app, source: FeedSource, article: ArticleRecord, stop_event: threading.Event | None) -> ArticleRecord:
    from monitor.fetch import fetch_page
    from monitor.parse import extract_article_text

    if stop_event is not None and stop_event.is_set():
        return article
    try:
        final_url, html = fetch_page(article.url, app.settings.fetch, stop_event)
        text = extract_article_text(html, final_url)
    except MonitorError as exc:
        log.warning("feed %r: full text of %s failed, keeping the feed's text: %s", source.name, article.url, exc)
        return article
    # A page that yields less than the feed already gave (paywall, consent wall) is no upgrade.
    if not text or len(text) < len(article.text):
        log.warning("feed %r: no article text found at %s, keeping the feed's text", source.name, article.url)
        return article
    # content_hash stays the feed's: the identity must not change with the page.
    return replace(article, text=text)


# --- importing a file of past articles ------------------------------------------

IMPORT_BATCH = 500  # rows per store transaction: each commit is a resume point


@dataclass
class ImportReport:
    new: int = 0
    duplicates: int = 0  # already stored (an earlier import, a feed, or twice in the file)
    bad: list[tuple[int, str]] = field(default_factory=list)  # (line, problem)
    resumed: bool = False  # a previous import of this file stopped part-way (or finished)
    tagged: int = 0
    tag_error: str | None = None


def import_file(app, path, now: datetime, tagger=None, tag: bool = True,
                progress: Callable[[int, ImportReport], None] | None = None,
                tag_progress: Callable[[int], None] | None = None) -> ImportReport:
    """Store the articles of a JSONL/CSV file through the same path as a feed run
    (normalise, identity, near-duplicate clustering, links), batch by batch, then tag
    them. Streams the file; each committed batch records where to resume, so a re-run
    after a crash goes on from there and a re-import of a finished file adds nothing.
    `progress(bytes read, report)` after every batch."""
    from monitor.importer import fingerprint, read_rows

    feed_id, offset, previous = feed_store.import_feed(app.engine, str(path.resolve()), now)
    current = fingerprint(path)
    offset = offset if previous == current else 0  # a different file at this path: from the start
    report, recent = ImportReport(resumed=offset > 0), article_store.RecentSignatures()
    batch, end = [], offset
    for row in read_rows(path, start=offset):
        if row.error:
            report.bad.append((row.line, row.error))
        else:
            batch.append(row.record)
        end = row.end or end
        if len(batch) >= IMPORT_BATCH:
            _store_import_batch(app, (feed_id, end, current), batch, now, recent, report, progress)
            batch = []
    _store_import_batch(app, (feed_id, end, current), batch, now, recent, report, progress)
    if tag:
        report.tagged, report.tag_error = tag_untagged(app, tagger=tagger, progress=tag_progress)
    return report


def _store_import_batch(app, resume: tuple[int, int, str], batch, now, recent, report: ImportReport, progress) -> None:
    feed_id, end, file_fingerprint = resume
    outcome = article_store.store_imported(app.engine, feed_id, batch, now, recent, end, file_fingerprint)
    report.new += len(outcome.new_ids)
    report.duplicates += outcome.duplicates
    if progress:
        progress(end, report)


# --- tagging -------------------------------------------------------------------


def tag_untagged(app, stop_event: threading.Event | None = None, batch_size: int = TAG_BATCH,
                 tagger=None, progress: Callable[[int], None] | None = None) -> tuple[int, str | None]:
    """Tag every untagged article in batches, one transaction per batch: claim the
    batch (other processes skip claimed rows on PostgreSQL), tag it (in `tagger`'s
    processes, several batches in flight), save it, commit. Returns (tagged, error); an
    error (e.g. no usable model) leaves articles for the next cycle."""
    from monitor.tagpool import Tagger

    tagger = tagger or Tagger(app, 1)
    in_flight: deque[_ClaimedBatch] = deque()
    tagged, last_id = 0, 0
    try:
        while True:
            while len(in_flight) < tagger.window and not (stop_event and stop_event.is_set()):
                claimed = _ClaimedBatch.claim(app.engine, batch_size, last_id, tagger)
                if claimed is None:
                    break
                last_id = claimed.batch[-1].id  # never loop on articles that stay untagged
                in_flight.append(claimed)
            if not in_flight:
                break
            tagged += in_flight.popleft().save()
            if progress:
                progress(tagged)
    except MonitorError as exc:
        log.error("tagging stopped: %s (untagged articles are tagged next cycle)", exc)
        return tagged, str(exc)
    finally:
        for claimed in in_flight:  # an error or a stop: release the claims unsaved
            claimed.release()
    return tagged, None


class _ClaimedBatch:
    """Untagged articles claimed in an open transaction (their row locks are the claim),
    being tagged; saved and committed in that same transaction."""

    def __init__(self, conn, transaction, batch, future: Future):
        self.conn, self.transaction, self.batch, self.future = conn, transaction, batch, future

    @classmethod
    def claim(cls, engine, batch_size: int, after_id: int, tagger) -> _ClaimedBatch | None:
        from monitor.storage import tags

        conn = engine.connect()
        try:
            transaction = conn.begin()
            batch = tags.claim_untagged(conn, batch_size, after_id=after_id)
            if batch:
                return cls(conn, transaction, batch, tagger.submit([(row.title, row.text) for row in batch]))
        except BaseException:
            conn.close()
            raise
        conn.close()
        return None

    def save(self) -> int:
        from monitor.storage import tags

        try:
            results = self.future.result()
            tags.save_tags_batch(self.conn, [tags.Tagged(row.id, result, row.published_at)
                                             for row, result in zip(self.batch, results)])
            self.transaction.commit()
        finally:
            self.conn.close()  # rolls back when the commit did not happen
        return len(self.batch)

    def release(self) -> None:
        self.future.cancel()
        self.conn.close()
