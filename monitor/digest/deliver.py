"""Delivering a digest: the digest row's state machine, exactly once per window.

States of a ``digests`` row (one per window, keyed by its fixed Message-ID):

    pending ──try──► sent        the server answered 250 to DATA (recorded before QUIT)
       │       └──► failed       every try refused or unreachable; a later send may retry
       │       └──► uncertain    the message went out, the reply never came: not retried
       └─ empty window, send_empty = false ──► skipped

Only the holder of the window's claim (a row ``digest <id>`` in ``locks``, one INSERT
that two processes cannot both win) may move a row out of pending/failed, so three
``digest --send`` of one window at once mail one message. A claim whose process died on
this host is taken over at once; elsewhere it goes stale after the whole send budget.

What "exactly once" can mean over SMTP: the server takes responsibility for a message
when it answers 250 to the final "." of DATA. We record ``sent`` the moment that reply
arrives, so a crash or a failing QUIT afterwards never causes a second copy. The one gap
SMTP leaves: if the connection dies after the final "." went out but before the reply,
the server may or may not have the message, and nothing in SMTP can tell. We then mark
the row ``uncertain`` and do not retry on our own (at most once rather than at least
once: a missing digest is noticed in `status` and on the web page; a duplicate can't be
taken back). The window counts as covered; `digest --resend ID` sends it again with the
same Message-ID, which lets mail clients recognise and fold the duplicate.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from pathlib import Path

from sqlalchemy import Engine

from monitor import mailer
from monitor.digest.content import Digest, build_digest
from monitor.digest.render import render, subject_for
from monitor.digest.window import DEFAULT_WINDOW, digest_window, last_send_time
from monitor.errors import InputError, MailError, StorageError
from monitor.records import DigestRecord, RenderedDigest
from monitor.settings import Settings
from monitor.storage import digests as store
from monitor.storage import locks
from monitor.storage import threads as thread_store

log = logging.getLogger(__name__)

RETRY_FAILED_AFTER = timedelta(minutes=15)  # the daemon retries a failed window no sooner than this
CLAIM_SLACK = timedelta(minutes=1)


@dataclass(frozen=True)
class SendOutcome:
    status: str  # sent | already_sent | uncertain | in_progress | skipped | nothing_new
    message_id: str
    recipients: list[str]
    attempts: int = 0  # SMTP tries made by this call
    refused: dict[str, str] | None = None  # recipients the server refused while accepting the others
    digest_id: int | None = None


# --- the state machine -------------------------------------------------------------


def send_rendered(
    engine: Engine,
    digest: RenderedDigest,
    settings: Settings,
    now: datetime,
    force: bool = False,
    sleep: Callable[[float], None] = time.sleep,
) -> SendOutcome:
    """Claim the window's row, send unless it is already sent (or forced), release the claim.

    Raises MailError (recorded on the row) when every try failed, the delivery became
    uncertain, or the settings cannot work."""
    msg = mailer.build_message(digest, settings, now)
    message_id = msg["Message-ID"]
    with engine.begin() as conn:
        digest_id = store.ensure_row(
            conn, window_start=digest.window_start, window_end=digest.window_end, message_id=message_id, now=now
        )
    claim, holder = f"digest {digest_id}", locks.this_process()
    try:
        locks.acquire(engine, claim, holder, now, _send_budget(settings))
    except StorageError:
        log.info("digest %s is being sent by another process; not sending it again", message_id)
        return SendOutcome("in_progress", message_id, [], digest_id=digest_id)
    try:
        return _send_claimed(engine, digest_id, digest, msg, settings, now, force, sleep)
    finally:
        locks.release(engine, claim, holder)


def _send_budget(settings: Settings) -> timedelta:
    """How long a claim may be held before another host may take it: every try at the
    SMTP timeout (connect, commands, data) and every backoff pause."""
    ds = settings.digest
    tries = ds.max_attempts * 4 * settings.smtp.timeout
    pauses = sum(ds.retry_base_seconds * 2 ** n for n in range(ds.max_attempts - 1))
    return timedelta(seconds=tries + pauses) + CLAIM_SLACK


def _send_claimed(engine, digest_id: int, digest: RenderedDigest, msg: EmailMessage, settings: Settings, now, force, sleep):
    message_id = msg["Message-ID"]
    recipients = list(settings.digest.recipients)
    with engine.begin() as conn:
        row = store.find_digest_by_id(conn, digest_id)
        if row is None:  # ensure_row made it in this call; only a bug or a hand-deleted row gets here
            raise LookupError(f"no digest with id {digest_id}")
        if row.status in ("sent", "uncertain") and not force:
            status = "already_sent" if row.status == "sent" else "uncertain"
            return SendOutcome(status, message_id, row.recipients, digest_id=digest_id)
        store.record_content(
            conn, digest_id, subject=digest.subject, recipients=recipients, html=digest.html, text=digest.text,
            relevant_count=digest.relevant_count, status=None if row.status == "sent" else "pending",
        )
        problem = mailer.config_problem(settings)
        if problem:
            store.record_attempt(conn, digest_id, now)
            store.record_failure(conn, digest_id, problem, final=True)
    if problem:
        log.error("digest %s not sent: %s", message_id, problem)
        raise MailError(problem)
    attempt, refused = _send_with_retries(engine, digest_id, msg, settings, now, sleep)
    log.info("digest %s sent to %d recipients (try %d)", message_id, len(recipients) - len(refused), attempt)
    return SendOutcome("sent", message_id, recipients, attempt, refused or None, digest_id)


def _send_with_retries(engine, digest_id: int, msg: EmailMessage, settings: Settings, now: datetime, sleep):
    """(the try that worked, refused recipients); each failure recorded; MailError after the last."""
    attempts = settings.digest.max_attempts
    where = f"{settings.smtp.host}:{settings.smtp.port}"

    def record_sent(refused: dict[str, str]) -> None:  # between the server's 250 and QUIT
        note = "refused: " + "; ".join(f"{a} {r}" for a, r in refused.items()) if refused else None
        with engine.begin() as conn:
            store.mark_sent(conn, digest_id, now, note)

    for attempt in range(1, attempts + 1):
        with engine.begin() as conn:
            store.record_attempt(conn, digest_id, now)
        try:
            return attempt, mailer.send_message(msg, settings.smtp, on_accepted=record_sent)
        except mailer.DeliveryUncertain as exc:
            with engine.begin() as conn:
                store.mark_uncertain(conn, digest_id, f"delivery uncertain: {exc}")
            log.error("digest %s may have been delivered (%s); not retried", msg["Message-ID"], exc)
            raise MailError(
                f"digest {digest_id} may have been delivered: the connection to {where} failed after the message "
                f"went out ({exc}); not retried, to avoid a second copy (`digest --resend {digest_id}` sends it again)"
            ) from None
        except mailer.SMTP_FAILURES as exc:
            error = mailer.one_line(exc)
            with engine.begin() as conn:
                store.record_failure(conn, digest_id, error, final=attempt == attempts)
            if attempt == attempts:
                log.error("digest %s not sent after %d tries: %s", msg["Message-ID"], attempts, error)
                raise MailError(f"digest not sent after {attempts} tries to {where}: {error}") from None
            delay = settings.digest.retry_base_seconds * 2 ** (attempt - 1)
            log.warning("digest %s try %d/%d failed (%s); next in %.0fs", msg["Message-ID"], attempt, attempts, error, delay)
            sleep(delay)
    raise AssertionError("max_attempts >= 1")


# --- entry points ------------------------------------------------------------------


def preview_digest(
    app, path: Path, now: datetime, since: datetime | None = None, until: datetime | None = None
) -> tuple[Digest, Path]:
    """Write the HTML (or, for a .eml path, the whole message) without sending."""
    start, end = digest_window(app.engine, now, since, until)
    scan_stories(app)
    digest = build_digest(app.engine, app.settings, app.taxonomy, start, end)
    rendered = render(digest)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".eml":
        mailer.write_eml(mailer.build_message(rendered, app.settings, now), path)
    else:
        path.write_text(rendered.html, encoding="utf-8")
    return digest, path


def send_digest_now(app, now: datetime, since=None, until=None, force: bool = False) -> tuple[Digest, SendOutcome]:
    """`digest --send`: build the window's digest and send it (once per window unless forced).

    Without --since/--until the window runs from the last digest sent; when nothing at
    all was fetched since then, a second plain --send would only mail "nothing moved"
    again, so it sends nothing (status "nothing_new"). --force re-sends the window that
    --since/--until name.
    """
    if force and since is None and until is None:
        raise InputError("digest: --force re-sends the window named by --since/--until; "
                         "to send a stored digest again use --resend [ID]")
    start, end = digest_window(app.engine, now, since, until)
    if since is None and until is None:
        with app.engine.connect() as conn:
            covered = store.last_sent_window_end(conn)
            fetched = store.window_totals(conn, start, end).fetched
        if covered is not None and covered == start and fetched == 0:
            digest = build_digest(app.engine, app.settings, app.taxonomy, start, end)
            return digest, SendOutcome("nothing_new", "", [])
    return _build_and_send(app, start, end, now, force)


def match_signposts(app, now: datetime | None = None) -> int:
    """Bring the signpost hits up to date with the store (recording alerts for new hits
    when they are on: whoever scans first records them); returns the hits added."""
    from monitor import alerts

    return alerts.match_signposts(app, now or datetime.now(timezone.utc))


def tension_series_for(app, last_day, days: int):
    """`index`, the trends page and export: the tension index per UTC day, threads up to date."""
    from monitor.digest.content import tension_series

    thread_store.scan(app.engine)
    with app.engine.connect() as conn:
        return tension_series(conn, app.taxonomy, last_day, days)


MAX_EXPORT_DAYS = 3650


def tension_by_day(app, since: datetime | None = None) -> dict:
    """UTC day -> tension index over the days the stored articles were published (export)."""
    with app.engine.connect() as conn:
        span = store.published_span(conn, since)
    if span is None:
        return {}
    first, last = (moment.astimezone(timezone.utc).date() for moment in span)
    days = min((last - first).days + 1, MAX_EXPORT_DAYS)
    return {point.day: point.value for point in tension_series_for(app, last, days)}


def scan_stories(app) -> None:
    """Before a digest is built: thread and match the stories tagged since the last scan."""
    thread_store.scan(app.engine)
    match_signposts(app)


def _build_and_send(app, start: datetime, end: datetime, now: datetime, force: bool = False):
    settings = app.settings
    scan_stories(app)
    digest = build_digest(app.engine, settings, app.taxonomy, start, end)
    if digest.empty and not settings.digest.send_empty:
        message_id = mailer.digest_message_id(start, end, settings.smtp.sender)
        with app.engine.begin() as conn:
            store.record_skipped(
                conn, window_start=start, window_end=end, message_id=message_id, subject=subject_for(digest), now=now
            )
        log.info("digest window %s..%s is empty; not sent (digest.send_empty = false)", start, end)
        return digest, SendOutcome("skipped", message_id, [])
    return digest, send_rendered(app.engine, render(digest), settings, now, force=force)


def send_due_digest(app, now: datetime) -> SendOutcome | None:
    """The scheduler's tick: send the digest for the latest send_at slot if it is due.

    Due when the slot has passed by at most grace_hours and no covered digest reaches
    it. The window ends at the slot itself, so every retry of it is the same window
    (same Message-ID); a failed window is retried on later ticks, at most every
    RETRY_FAILED_AFTER. Returns None when nothing was due (or sending failed).
    """
    settings = app.settings
    slot = last_send_time(settings, now)
    if now - slot > timedelta(hours=settings.digest.grace_hours):
        return None
    with app.engine.connect() as conn:
        covered = store.last_sent_window_end(conn)
        if covered is not None and covered >= slot:
            return None
        start = covered if covered is not None else slot - DEFAULT_WINDOW
        earlier = store.find_digest(conn, mailer.digest_message_id(start, slot, settings.smtp.sender))
    if earlier is not None and earlier.last_attempt_at is not None and now - earlier.last_attempt_at < RETRY_FAILED_AFTER:
        return None
    try:
        return _build_and_send(app, start, slot, now)[1]
    except MailError as exc:
        log.error("scheduled digest for %s not sent: %s", slot, exc)
        return None


def resend_digest(app, now: datetime, digest_id: int | None = None) -> tuple[DigestRecord, SendOutcome]:
    """`digest --resend [ID]`: mail a stored digest again exactly as it was rendered
    (subject, HTML, text, Message-ID), to today's recipients. Default: the last one sent."""
    with app.engine.connect() as conn:
        record = store.find_digest_by_id(conn, digest_id) if digest_id is not None else None
    if digest_id is None:
        record = store.last_sent_digest(app.engine)
        if record is None:
            raise InputError("digest --resend: no digest has been sent yet")
    elif record is None:
        raise InputError(f"digest --resend: no digest with id {digest_id} (see /digests on the web page)")
    html, text = store.digest_bodies(app.engine, record.id)
    if html is None or text is None:
        raise InputError(f"digest --resend: digest {record.id} ({record.status}) has no stored message to send")
    rendered = RenderedDigest(record.window_start, record.window_end, record.subject or "", html, text, record.relevant_count or 0)
    return record, send_rendered(app.engine, rendered, app.settings, now, force=True)
