"""Exactly-once digest delivery under races and crashes, through real processes.

Each test runs `tension-monitor digest --send` as separate OS processes against one
store (SQLite and PostgreSQL) and a real SMTP server on 127.0.0.1 (aiosmtpd) whose
handler can hold a session open at a chosen moment, so a test can overlap three senders
or SIGKILL a sender right after the server's 250 to DATA, before QUIT.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import threading
from contextlib import ExitStack
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from monitor.app import App
from monitor.storage import schema
from monitor.storage.engine import make_engine
from tests.conftest import REPO
from tests.factories import SeedArticle, seed_articles
from tests.test_mailer import Inbox, serving, smtp_toml

UNTIL = (datetime.now(timezone.utc) - timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
WINDOW = ["--since", (UNTIL - timedelta(days=1)).isoformat(), "--until", UNTIL.isoformat()]


class SlowInbox(Inbox):
    """Accepts like Inbox, after ``data_delay`` seconds; with ``hold_quit`` it answers 250
    to DATA, then sits on QUIT (``quit_reached`` set) so the sender can be killed there."""

    def __init__(self, data_delay: float = 0.0, hold_quit: bool = False):
        super().__init__()
        self.data_delay, self.hold_quit = data_delay, hold_quit
        self.quit_reached = threading.Event()

    async def handle_DATA(self, server, session, envelope):
        await asyncio.sleep(self.data_delay)
        return await super().handle_DATA(server, session, envelope)

    async def handle_QUIT(self, server, session, envelope):
        if self.hold_quit:
            self.quit_reached.set()
            await asyncio.sleep(30)
        return "221 Bye"


@pytest.fixture
def server():
    with ExitStack() as stack:
        yield lambda inbox: stack.enter_context(serving(inbox))


def seeded_config(make_settings, store_url, port: int):
    settings = make_settings(smtp_toml(port, digest={"max_attempts": 1}), db_url=store_url)
    app = App(settings)
    seed_articles(app.engine, [
        SeedArticle("Microsoft and OpenAI rework revenue share", UNTIL - timedelta(hours=3), {"commercialization": 0.8},
                    source="Wire", url="https://news.example.com/revenue-share"),
    ])
    app.close()
    return str(settings.source_path)


def sender(config: str, *args: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "monitor", "--config", config, "digest", *args]
    return subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def rows(store_url: str) -> list:
    engine = make_engine(store_url)
    with engine.connect() as conn:
        found = conn.execute(select(schema.digests.c.status, schema.digests.c.attempts)).all()
        claims = conn.execute(select(schema.locks.c.name)).scalars().all()
    engine.dispose()
    return found, claims


def test_three_concurrent_sends_of_one_window_mail_one_message(make_settings, store_url, server):
    inbox = server(SlowInbox(data_delay=1.0))  # keeps the first sender inside DATA while the others arrive
    config = seeded_config(make_settings, store_url, inbox.port)
    procs = [sender(config, "--send", *WINDOW) for _ in range(3)]
    results = [(proc.wait(timeout=60), proc.stdout.read(), proc.stderr.read()) for proc in procs]
    assert [code for code, _out, _err in results] == [0, 0, 0], results
    outs = sorted(out.split(" ")[0] for _code, out, _err in results)
    assert outs.count("sent") == 1, results  # the others: "already sent" or "another process is sending"
    assert len(inbox.envelopes) == 1
    found, claims = rows(store_url)
    assert found == [("sent", 1)] and claims == []


def test_sigkill_after_the_250_then_a_resend_mails_one_message(make_settings, store_url, server):
    inbox = server(SlowInbox(hold_quit=True))
    config = seeded_config(make_settings, store_url, inbox.port)
    proc = sender(config, "--send", *WINDOW)
    try:
        assert inbox.quit_reached.wait(timeout=60), "the sender never reached QUIT"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL and len(inbox.envelopes) == 1
    inbox.hold_quit = False
    again = sender(config, "--send", *WINDOW)
    code, out = again.wait(timeout=60), again.stdout.read()
    assert code == 0 and out.startswith("already sent for this window"), (out, again.stderr.read())
    assert len(inbox.envelopes) == 1
    found, _claims = rows(store_url)
    assert found == [("sent", 1)]
