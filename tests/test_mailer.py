"""Sending the digest to a real SMTP server (aiosmtpd on 127.0.0.1, started here).

The `smtp` fixture is also imported by test_digest.py and test_cli_digest.py.
"""

from __future__ import annotations

import email
import json
import shutil
import subprocess
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email import policy

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from sqlalchemy import select

from monitor import digest as dg
from monitor import mailer
from monitor.app import App
from monitor.errors import MailError
from monitor.records import RenderedDigest
from monitor.storage import digests as store
from monitor.storage import schema
from tests.factories import SeedArticle, seed_articles

NOW = datetime(2026, 6, 10, 6, 0, tzinfo=timezone.utc)
RECIPIENTS = ["analyst@example.com", "desk@example.org"]


class LoopbackController(Controller):
    """aiosmtpd on 127.0.0.1 and a free port chosen by the OS."""

    def __init__(self, handler, **kwargs):
        super().__init__(handler, hostname="127.0.0.1", port=0, **kwargs)

    def _trigger_server(self):
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


@dataclass
class Inbox:
    """The SMTP handler: collects accepted envelopes; ``mode`` makes it refuse or drop."""

    mode: str = "accept"  # accept | refuse (554 to DATA) | drop (close the connection at DATA)
    refuse_rcpt: set[str] = field(default_factory=set)
    envelopes: list = field(default_factory=list)
    port: int = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse_rcpt:
            return "550 5.1.1 No such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.mode == "refuse":
            return "554 5.7.1 Message rejected"
        if self.mode == "drop":
            server.transport.close()
            return "250 OK"
        self.envelopes.append(envelope)
        return "250 OK"

    @property
    def messages(self):
        return [email.message_from_bytes(e.original_content, policy=policy.default) for e in self.envelopes]


@contextmanager
def serving(inbox: Inbox):
    """A real SMTP server on 127.0.0.1 handing to ``inbox`` (its port set) while inside."""
    controller = LoopbackController(inbox)
    controller.start()
    inbox.port = controller.port
    try:
        yield inbox
    finally:
        controller.stop()


@pytest.fixture
def smtp():
    with serving(Inbox()) as inbox:
        yield inbox


def smtp_toml(port: int, digest: dict | None = None, smtp: dict | None = None) -> str:
    """[digest] and [smtp] for the test server; ``digest``/``smtp`` override keys."""
    digest = {"recipients": RECIPIENTS, "retry_base_seconds": 0, "max_attempts": 3, **(digest or {})}
    smtp = {"host": "127.0.0.1", "port": port, "sender": "monitor@example.net", "timeout": 10, **(smtp or {})}
    lines = ["[digest]"] + [f"{k} = {json.dumps(v)}" for k, v in digest.items()]
    lines += ["[smtp]"] + [f"{k} = {json.dumps(v)}" for k, v in smtp.items()]
    return "\n".join(lines) + "\n"


@pytest.fixture
def make_app(make_settings, store_url):
    apps = []

    def make(port: int, digest: dict | None = None, smtp: dict | None = None, environ: dict | None = None) -> App:
        app = App(make_settings(smtp_toml(port, digest, smtp), environ=environ, db_url=store_url))
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.close()


def seed_window(app: App, titles=("Azure capacity deal strains partnership",)) -> list[int]:
    items = [
        SeedArticle(title, NOW - timedelta(hours=2 + i), {"cloud": 0.8}, source="Wire", url=f"https://news.example.com/a/{i}")
        for i, title in enumerate(titles)
    ]
    return seed_articles(app.engine, items)


def digest_row(app: App):
    with app.engine.connect() as conn:
        return conn.execute(select(schema.digests)).one()


# --- the message ---------------------------------------------------------------------


def test_message_arrives_once_with_text_and_html(smtp, make_app):
    app = make_app(smtp.port)
    seed_window(app, ["Microsoft trims OpenAI compute commitment", "Stargate site chosen in Texas"])
    built, outcome = dg.send_digest_now(app, NOW)
    assert outcome.status == "sent" and outcome.attempts == 1
    assert len(smtp.envelopes) == 1
    envelope = smtp.envelopes[0]
    assert sorted(envelope.rcpt_tos) == sorted(RECIPIENTS) and envelope.mail_from == "monitor@example.net"
    msg = smtp.messages[0]
    assert msg.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in msg.iter_parts()] == ["text/plain", "text/html"]
    assert msg["Subject"] == dg.subject_for(built) and msg["Subject"].startswith("Tension Monitor: 2 stories")
    assert [a.addr_spec for a in msg["To"].addresses] == RECIPIENTS
    assert msg["Message-ID"] == mailer.digest_message_id(built.window_start, built.window_end, "monitor@example.net")
    html = msg.get_body(("html",)).get_content()
    text = msg.get_body(("plain",)).get_content()
    for i in (0, 1):
        assert f'href="https://news.example.com/a/{i}"' in html
        assert f"https://news.example.com/a/{i}" in text
    row = digest_row(app)
    assert row.status == "sent" and row.attempts == 1 and row.sent_at == NOW and row.last_error is None


def test_hostile_title_arrives_escaped_and_intact(smtp, make_app):
    app = make_app(smtp.port)
    hostile = "<script>alert(1)</script> Microsoft & OpenAI \"AGI\" clause " + "é" + "x" * 1950
    assert len(hostile) > 2000
    seed_window(app, [hostile])
    dg.send_digest_now(app, NOW)
    msg = smtp.messages[0]
    html = msg.get_body(("html",)).get_content()
    text = msg.get_body(("plain",)).get_content()
    assert "<script>" not in html
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt; Microsoft &amp; OpenAI \"AGI\" clause é" + "x" * 1950
    assert escaped in html
    assert f"* {hostile}\r\n" in text  # the long line survives transfer encoding, unwrapped


def test_refused_leaves_unsent_and_a_later_try_sends_once(smtp, make_app):
    app = make_app(smtp.port)
    seed_window(app)
    smtp.mode = "refuse"
    with pytest.raises(MailError, match="554"):
        dg.send_digest_now(app, NOW, until=NOW)
    row = digest_row(app)
    assert row.status == "failed" and row.attempts == 3 and "554" in row.last_error and row.sent_at is None
    assert smtp.envelopes == []
    assert store.last_sent_digest(app.engine) is None
    smtp.mode = "accept"
    _built, outcome = dg.send_digest_now(app, NOW + timedelta(minutes=5), until=NOW)
    assert outcome.status == "sent" and len(smtp.envelopes) == 1
    _built, again = dg.send_digest_now(app, NOW + timedelta(minutes=6), since=row.window_start, until=NOW)
    assert again.status == "already_sent" and len(smtp.envelopes) == 1
    row = digest_row(app)
    assert row.status == "sent" and row.attempts == 4


def test_a_drop_after_the_message_went_out_is_uncertain_and_never_retried_on_its_own(smtp, make_app):
    app = make_app(smtp.port)
    seed_window(app)
    smtp.mode = "drop"  # the server closes the connection instead of answering the final "."
    with pytest.raises(MailError, match="may have been delivered.*--resend"):
        dg.send_digest_now(app, NOW)
    row = digest_row(app)
    assert row.status == "uncertain" and row.attempts == 1 and "SMTPServerDisconnected" in row.last_error
    smtp.mode = "accept"
    since = row.window_start
    _built, again = dg.send_digest_now(app, NOW, since=since, until=NOW)
    assert again.status == "uncertain" and smtp.envelopes == []  # no second copy on its own
    assert dg.digest_window(app.engine, NOW + timedelta(hours=1))[0] == NOW  # the window counts as covered
    _record, resent = dg.resend_digest(app, NOW, row.id)
    assert resent.status == "sent" and len(smtp.envelopes) == 1
    assert smtp.messages[0]["Message-ID"] == row.message_id and digest_row(app).status == "sent"


def test_no_server_listening_is_a_failure_with_backoff(make_app):
    import socket

    with socket.socket() as probe:  # a port on 127.0.0.1 that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = make_app(port, digest={"retry_base_seconds": 2.5})
    seed_window(app)
    start, end = dg.digest_window(app.engine, NOW)
    rendered = dg.render(dg.build_digest(app.engine, app.settings, app.taxonomy, start, end))
    delays = []
    with pytest.raises(MailError, match="not sent after 3 tries"):
        dg.send_rendered(app.engine, rendered, app.settings, NOW, sleep=delays.append)
    assert delays == [2.5, 5.0]  # retry_base_seconds, doubling; none after the last try
    row = digest_row(app)
    assert row.status == "failed" and row.attempts == 3 and "Connection refused" in row.last_error


def test_force_sends_the_same_window_again_with_the_same_message_id(smtp, make_app):
    app = make_app(smtp.port)
    seed_window(app)
    since, until = NOW - timedelta(days=1), NOW
    dg.send_digest_now(app, NOW, since=since, until=until)
    _built, outcome = dg.send_digest_now(app, NOW, since=since, until=until, force=True)
    assert outcome.status == "sent" and len(smtp.envelopes) == 2
    assert smtp.messages[0]["Message-ID"] == smtp.messages[1]["Message-ID"]
    smtp.mode = "refuse"  # a forced resend that fails does not make a delivered window look unsent
    with pytest.raises(MailError):
        dg.send_digest_now(app, NOW, since=since, until=until, force=True)
    row = digest_row(app)
    assert row.status == "sent" and "554" in row.last_error and row.attempts == 5
    assert store.last_sent_digest(app.engine).id == row.id


def test_partly_refused_recipients_still_count_as_sent(smtp, make_app):
    app = make_app(smtp.port)
    seed_window(app)
    smtp.refuse_rcpt = {RECIPIENTS[1]}
    _built, outcome = dg.send_digest_now(app, NOW)
    assert outcome.status == "sent" and list(outcome.refused) == [RECIPIENTS[1]]
    assert smtp.envelopes[0].rcpt_tos == [RECIPIENTS[0]]
    row = digest_row(app)
    assert row.status == "sent" and RECIPIENTS[1] in row.last_error


def test_no_recipients_is_a_clear_error(smtp, make_app):
    app = make_app(smtp.port)
    app.settings.digest.recipients = []
    with pytest.raises(MailError, match="digest.recipients is empty"):
        dg.send_digest_now(app, NOW)


# --- building the message without sending --------------------------------------------


def _rendered(start=NOW - timedelta(days=1), end=NOW) -> RenderedDigest:
    return RenderedDigest(start, end, "Subject ünïcode", "<p>html</p>", "text\n", 1)


def test_message_id_is_deterministic_per_window(make_settings):
    settings = make_settings(smtp_toml(25))
    first = mailer.build_message(_rendered(), settings, NOW)
    again = mailer.build_message(_rendered(), settings, NOW + timedelta(hours=1))
    other = mailer.build_message(_rendered(end=NOW + timedelta(hours=1)), settings, NOW)
    assert first["Message-ID"] == again["Message-ID"] == "<digest.20260609T060000Z.20260610T060000Z@example.net>"
    assert other["Message-ID"] != first["Message-ID"]
    assert first["Date"] == "Wed, 10 Jun 2026 06:00:00 +0000"


def test_write_eml_round_trips(tmp_path, make_settings):
    settings = make_settings(smtp_toml(25))
    path = mailer.write_eml(mailer.build_message(_rendered(), settings, NOW), tmp_path / "out" / "d.eml")
    msg = email.message_from_bytes(path.read_bytes(), policy=policy.default)
    assert msg["Subject"] == "Subject ünïcode"
    assert msg.get_body(("html",)).get_content() == "<p>html</p>\n"
    assert msg.get_body(("plain",)).get_content() == "text\n"


# --- authentication and TLS ----------------------------------------------------------


class Authenticator:
    def __init__(self):
        self.seen = []

    def __call__(self, server, session, envelope, mechanism, auth_data):
        self.seen.append((auth_data.login, auth_data.password))
        ok = auth_data.login == b"monitor" and auth_data.password == b"s3cret"
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 itself


@pytest.fixture
def auth_smtp():
    inbox, authenticator = Inbox(), Authenticator()
    controller = LoopbackController(inbox, authenticator=authenticator, auth_require_tls=False)
    controller.start()
    inbox.port = controller.port
    yield inbox, authenticator
    controller.stop()


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_login_uses_the_password_from_the_environment(auth_smtp, make_app):
    inbox, authenticator = auth_smtp
    login = {"username": "monitor", "password_env": "DIGEST_TEST_PW"}
    app = make_app(inbox.port, smtp=login, environ={"DIGEST_TEST_PW": "s3cret"})
    seed_window(app)
    dg.send_digest_now(app, NOW)
    assert authenticator.seen == [(b"monitor", b"s3cret")] and len(inbox.envelopes) == 1


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_wrong_password_is_a_recorded_failure(auth_smtp, make_app):
    inbox, _authenticator = auth_smtp
    login = {"username": "monitor", "password_env": "DIGEST_TEST_PW"}
    app = make_app(inbox.port, smtp=login, environ={"DIGEST_TEST_PW": "wrong"})
    seed_window(app)
    with pytest.raises(MailError, match="535"):
        dg.send_digest_now(app, NOW)
    assert digest_row(app).status == "failed" and inbox.envelopes == []


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1 (Debian's openssl), trusted via SSL_CERT_FILE."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return cert, key


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_tls_modes(security, certificate, make_app, monkeypatch):
    import ssl

    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    inbox = Inbox()
    if security == "ssl":
        controller = LoopbackController(inbox, ssl_context=context)
    else:
        controller = LoopbackController(inbox, tls_context=context, require_starttls=True)
    controller.start()
    try:
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        app = make_app(controller.port, smtp={"security": security})
        seed_window(app)
        _built, outcome = dg.send_digest_now(app, NOW)
        assert outcome.status == "sent" and len(inbox.envelopes) == 1
    finally:
        controller.stop()


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_plain_client_against_a_server_requiring_starttls_fails(certificate, make_app):
    import ssl

    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    inbox = Inbox()
    controller = LoopbackController(inbox, tls_context=context, require_starttls=True)
    controller.start()
    try:
        app = make_app(controller.port)
        seed_window(app)
        with pytest.raises(MailError, match="530"):
            dg.send_digest_now(app, NOW)
        assert inbox.envelopes == []
    finally:
        controller.stop()
