"""Mail a rendered digest: build the MIME message, send it over SMTP, or write an .eml.

Building is separate from sending (a preview writes the very message that would be
sent). ``send_digest`` is the one place that records what happened: the window's row
in ``digests`` is ``pending`` while trying and becomes ``sent`` only after the server
accepted the message; a window already sent is not sent again unless forced.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

from sqlalchemy import Engine

from monitor.errors import MailError
from monitor.records import RenderedDigest
from monitor.settings import Settings, SmtpSettings
from monitor.storage import digests as store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SendOutcome:
    status: str  # sent | already_sent | skipped | nothing_new
    message_id: str
    recipients: list[str]
    attempts: int = 0  # SMTP tries made by this call
    refused: dict[str, str] | None = None  # recipients the server refused while accepting the others


def digest_message_id(window_start: datetime, window_end: datetime, sender: str) -> str:
    """The same Message-ID for the same window, so a retried or re-forced digest is recognisable."""
    domain = sender.rpartition("@")[2].strip(" >") or "tension-monitor.invalid"
    stamp = "{:%Y%m%dT%H%M%SZ}"
    start = stamp.format(window_start.astimezone(timezone.utc))
    end = stamp.format(window_end.astimezone(timezone.utc))
    return f"<digest.{start}.{end}@{domain}>"


def build_message(digest: RenderedDigest, settings: Settings, now: datetime | None = None) -> EmailMessage:
    """multipart/alternative (text, then HTML) addressed to every recipient."""
    now = now or datetime.now(timezone.utc)
    msg = EmailMessage()
    msg["Subject"] = digest.subject
    msg["From"] = settings.smtp.sender
    msg["To"] = ", ".join(settings.digest.recipients)
    msg["Date"] = format_datetime(now.astimezone(timezone.utc))
    msg["Message-ID"] = digest_message_id(digest.window_start, digest.window_end, settings.smtp.sender)
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: vacation responders stay quiet
    msg.set_content(digest.text, subtype="plain", charset="utf-8")
    msg.add_alternative(digest.html, subtype="html", charset="utf-8")
    return msg


def write_eml(msg: EmailMessage, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(msg.as_bytes())
    return path


def send_message(msg: EmailMessage, smtp: SmtpSettings) -> dict[str, str]:
    """Hand the message to the SMTP server; returns the recipients it refused (if it took the rest).

    Raises smtplib.SMTPException or OSError when the server did not accept the message.
    """
    context = ssl.create_default_context()
    client: smtplib.SMTP
    if smtp.security == "ssl":
        client = smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=smtp.timeout, context=context)
    else:
        client = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout)
    try:
        if smtp.security == "starttls":
            client.starttls(context=context)
        if smtp.username:
            if smtp.password is None:
                raise MailError(f"smtp.username is set but ${smtp.password_env} is empty")
            client.login(smtp.username, smtp.password.get_secret_value())
        refused = client.send_message(msg)
    except BaseException:
        client.close()
        raise
    _quit_quietly(client)  # accepted: a failing QUIT does not undo that
    return {address: f"{code} {reply.decode(errors='replace')}" for address, (code, reply) in refused.items()}


def _quit_quietly(client: smtplib.SMTP) -> None:
    try:
        client.quit()
    except (smtplib.SMTPException, OSError):
        client.close()


def config_problem(settings: Settings) -> str | None:
    """Why no digest can be sent with these settings, or None."""
    if not settings.digest.recipients:
        return "digest.recipients is empty: nobody to send the digest to"
    if settings.smtp.username and settings.smtp.password is None:
        return f"smtp.username is set but ${settings.smtp.password_env} is empty"
    return None


def send_digest(
    engine: Engine,
    digest: RenderedDigest,
    settings: Settings,
    now: datetime,
    force: bool = False,
    sleep: Callable[[float], None] = time.sleep,
) -> SendOutcome:
    """Record the window as pending, try up to digest.max_attempts with exponential backoff,
    mark it sent once the server accepted. Raises MailError (recorded on the row) when
    every try failed or the settings cannot work."""
    msg = build_message(digest, settings, now)
    message_id = msg["Message-ID"]
    recipients = list(settings.digest.recipients)
    with engine.begin() as conn:
        previous = store.find_digest(conn, message_id)
        if previous is not None and previous.status == "sent" and not force:
            return SendOutcome("already_sent", message_id, previous.recipients)
        digest_id = store.record_pending(
            conn, window_start=digest.window_start, window_end=digest.window_end, message_id=message_id,
            subject=digest.subject, recipients=recipients, html=digest.html, text=digest.text,
            relevant_count=digest.relevant_count, now=now,
        )
        problem = config_problem(settings)
        if problem:
            store.record_attempt(conn, digest_id, now)
            store.record_failure(conn, digest_id, problem, final=True)
    if problem:
        log.error("digest %s not sent: %s", message_id, problem)
        raise MailError(problem)
    attempt, refused = _send_with_retries(engine, digest_id, msg, settings, now, sleep)
    note = "refused: " + "; ".join(f"{a} {r}" for a, r in refused.items()) if refused else None
    with engine.begin() as conn:
        store.mark_sent(conn, digest_id, now, note)
    log.info("digest %s sent to %d recipients (try %d)", message_id, len(recipients) - len(refused), attempt)
    return SendOutcome("sent", message_id, recipients, attempt, refused or None)


def _send_with_retries(engine, digest_id: int, msg: EmailMessage, settings: Settings, now: datetime, sleep):
    """(the try that worked, refused recipients); each failure recorded; MailError after the last."""
    attempts = settings.digest.max_attempts
    for attempt in range(1, attempts + 1):
        with engine.begin() as conn:
            store.record_attempt(conn, digest_id, now)
        try:
            return attempt, send_message(msg, settings.smtp)
        except (smtplib.SMTPException, OSError) as exc:
            error = _one_line(exc)
            with engine.begin() as conn:
                store.record_failure(conn, digest_id, error, final=attempt == attempts)
            if attempt == attempts:
                log.error("digest %s not sent after %d tries: %s", msg["Message-ID"], attempts, error)
                where = f"{settings.smtp.host}:{settings.smtp.port}"
                raise MailError(f"digest not sent after {attempts} tries to {where}: {error}") from None
            delay = settings.digest.retry_base_seconds * 2 ** (attempt - 1)
            log.warning("digest %s try %d/%d failed (%s); next in %.0fs", msg["Message-ID"], attempt, attempts, error, delay)
            sleep(delay)
    raise AssertionError("max_attempts >= 1")


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        detail = f"{exc.smtp_code} {text}"
    elif isinstance(exc, smtplib.SMTPRecipientsRefused):
        detail = "all recipients refused: " + ", ".join(
            f"{address} {code}" for address, (code, _reply) in exc.recipients.items()
        )
    else:
        detail = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {' '.join(detail.split())}"
