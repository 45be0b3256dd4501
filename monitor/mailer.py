"""Turn a message into SMTP: build the MIME message, hand it to a server, or write an .eml.

Touches no database. Building is separate from sending (a preview writes the very
message that would be sent). ``send_message`` tells its caller the moment the server
answered 250 to DATA (``on_accepted``), before QUIT, so the caller can record the
delivery before anything else can go wrong; and it tells an ambiguous failure (the
connection died after the whole message went out but before the server's reply:
``DeliveryUncertain``) from one where the server certainly does not have the message.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Callable
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

from monitor.errors import MailError
from monitor.records import RenderedDigest
from monitor.settings import Settings, SmtpSettings


SMTP_FAILURES = (smtplib.SMTPException, OSError)  # the server did not take the message


class DeliveryUncertain(Exception):
    """The whole message went out, then the connection failed before the server's reply:
    the server may or may not have accepted it. ``__cause__`` is the SMTP/socket error."""


def digest_message_id(window_start: datetime, window_end: datetime, sender: str) -> str:
    """The same Message-ID for the same window, so a retried or re-forced digest is recognisable."""
    domain = domain_of(sender)
    stamp = "{:%Y%m%dT%H%M%SZ}"
    start = stamp.format(window_start.astimezone(timezone.utc))
    end = stamp.format(window_end.astimezone(timezone.utc))
    return f"<digest.{start}.{end}@{domain}>"


def build_message(digest: RenderedDigest, settings: Settings, now: datetime | None = None) -> EmailMessage:
    """multipart/alternative (text, then HTML) addressed to every recipient."""
    message_id = digest_message_id(digest.window_start, digest.window_end, settings.smtp.sender)
    return compose(digest.subject, digest.text, digest.html, settings.smtp.sender, settings.digest.recipients, message_id, now)


def compose(
    subject: str, text: str, html: str, sender: str, recipients: list[str], message_id: str, now: datetime | None = None
) -> EmailMessage:
    """A multipart/alternative message (text, then HTML) with a fixed Message-ID."""
    now = now or datetime.now(timezone.utc)
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Date"] = format_datetime(now.astimezone(timezone.utc))
    msg["Message-ID"] = message_id
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: vacation responders stay quiet
    msg.set_content(text, subtype="plain", charset="utf-8")
    msg.add_alternative(html, subtype="html", charset="utf-8")
    return msg


def domain_of(sender: str) -> str:
    return sender.rpartition("@")[2].strip(" >") or "tension-monitor.invalid"


def write_eml(msg: EmailMessage, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(msg.as_bytes())
    return path


class _TracksFinalDot:
    """Notes when the message's terminating "." has gone out inside DATA: from then on a
    lost connection leaves the server's acceptance unknown."""

    final_dot_sent = False

    def send(self, s):
        super().send(s)
        # smtplib.SMTP.data sends commands as str and the quoted message, ending in
        # CRLF "." CRLF, as one bytes object.
        if isinstance(s, bytes) and s.endswith(b"\r\n.\r\n"):
            self.final_dot_sent = True


class _Client(_TracksFinalDot, smtplib.SMTP):
    pass


class _SslClient(_TracksFinalDot, smtplib.SMTP_SSL):
    pass


def send_message(
    msg: EmailMessage, smtp: SmtpSettings, on_accepted: Callable[[dict[str, str]], None] | None = None
) -> dict[str, str]:
    """Hand the message to the SMTP server; returns the recipients it refused (if it took the rest).

    ``on_accepted(refused)`` runs right after the server's 250 to DATA and before QUIT.
    Raises DeliveryUncertain when the connection failed after the message went out but
    before the reply; smtplib.SMTPException or OSError when the server did not accept it.
    """
    context = ssl.create_default_context()
    client: smtplib.SMTP
    if smtp.security == "ssl":
        client = _SslClient(smtp.host, smtp.port, timeout=smtp.timeout, context=context)
    else:
        client = _Client(smtp.host, smtp.port, timeout=smtp.timeout)
    try:
        if smtp.security == "starttls":
            client.starttls(context=context)
        if smtp.username:
            if smtp.password is None:
                raise MailError(f"smtp.username is set but ${smtp.password_env} is empty")
            client.login(smtp.username, smtp.password.get_secret_value())
        refused = client.send_message(msg)
    except SMTP_FAILURES as exc:
        client.close()
        if client.final_dot_sent and not isinstance(exc, smtplib.SMTPResponseException):
            raise DeliveryUncertain(one_line(exc)) from exc
        raise
    except BaseException:
        client.close()
        raise
    refused_text = {address: f"{code} {reply.decode(errors='replace')}" for address, (code, reply) in refused.items()}
    if on_accepted is not None:
        on_accepted(refused_text)
    _quit_quietly(client)  # accepted: a failing QUIT does not undo that
    return refused_text


def _quit_quietly(client: smtplib.SMTP) -> None:
    try:
        client.quit()
    except SMTP_FAILURES:
        client.close()


def config_problem(settings: Settings) -> str | None:
    """Why no digest can be sent with these settings, or None."""
    if not settings.digest.recipients:
        return "digest.recipients is empty: nobody to send the digest to"
    if settings.smtp.username and settings.smtp.password is None:
        return f"smtp.username is set but ${settings.smtp.password_env} is empty"
    return None


def one_line(exc: BaseException) -> str:
    """An SMTP or socket error as one log/CLI line: type, code and text."""
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
