"""Alerts: a run that stores a signpost story sends one alert, once, even across a SIGKILL;
webhook delivery to a loopback HTTP server; rate limit; spikes; the /alerts page.

The run tests go through the real pipeline (feed file -> store -> spaCy + classifier ->
signposts) and a real SMTP server on 127.0.0.1 (aiosmtpd).
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from monitor.alerts import run_alerts
from monitor.app import App
from monitor.pipeline import run_cycle
from monitor.storage import schema
from monitor.storage.engine import make_engine
from tests.conftest import REPO
from tests.factories import FeedItem, SeedArticle, rss_feed, seed_articles
from tests.test_mailer import Inbox, serving

BUYOUT = FeedItem(
    "Microsoft offers to buy OpenAI outright", "https://news.example.com/buyout",
    "Microsoft has offered to buy OpenAI outright, according to people familiar with the talks. The offer would "
    "give Microsoft full control of the ChatGPT maker.",
    published=datetime.now(timezone.utc).strftime("%a, %d %b %Y %H:%M:%S GMT"),
)
MS, OA = ("Microsoft", "ORG", "microsoft"), ("OpenAI", "ORG", "openai")


class HoldingInbox(Inbox):
    """With ``hold`` set, DATA waits (the message not yet accepted) so a sender can be killed."""

    def __init__(self):
        super().__init__()
        self.hold = False
        self.holding = threading.Event()

    async def handle_DATA(self, server, session, envelope):
        if self.hold:
            self.holding.set()
            await asyncio.sleep(30)
            return "451 4.3.0 Try again later"
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def inbox():
    with serving(HoldingInbox()) as inbox:
        yield inbox


def alert_config(tmp_path, port: int, extra: str = "") -> str:
    feed = tmp_path / "feed.xml"
    feed.write_bytes(rss_feed([BUYOUT]))
    config = tmp_path / "monitor.toml"
    config.write_text(
        f'root = "{REPO}"\n[storage]\nurl = "sqlite:///{tmp_path / "monitor.db"}"\n'
        f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nsender = "monitor@example.net"\ntimeout = 10\n'
        f'[alerts]\nrecipients = ["desk@example.com"]\n{extra}'
        f'[[feeds]]\nname = "Wire"\nurl = "file://{feed}"\n'
    )
    return str(config)


def run_once(config: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "monitor", "--config", config, "run", "--once"], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def alert_rows(tmp_path) -> list:
    engine = make_engine(f"sqlite:///{tmp_path / 'monitor.db'}")
    with engine.connect() as conn:
        rows = conn.execute(select(schema.alerts.c.kind, schema.alerts.c.channel, schema.alerts.c.status)).all()
    engine.dispose()
    return [tuple(row) for row in rows]


def test_a_run_that_stores_a_signpost_story_sends_one_alert_and_the_next_run_none(tmp_path, inbox):
    config = alert_config(tmp_path, inbox.port)
    for _ in range(2):
        proc = run_once(config)
        assert proc.wait(timeout=180) == 0, proc.stderr.read()
    assert len(inbox.envelopes) == 1
    msg = inbox.messages[0]
    assert msg["Subject"].strip() == "Tension Monitor alert: Acquisition signpost: A buyout offer for OpenAI"
    assert msg["To"] == "desk@example.com"
    text = msg.get_body(("plain",)).get_content()
    assert "https://news.example.com/buyout" in text and "Microsoft offers to buy OpenAI outright" in text
    assert 'href="https://news.example.com/buyout"' in msg.get_body(("html",)).get_content()
    assert alert_rows(tmp_path) == [("signpost", "email", "sent")]


def test_sigkill_between_store_and_send_then_a_rerun_sends_exactly_one(tmp_path, inbox):
    config = alert_config(tmp_path, inbox.port)
    inbox.hold = True
    proc = run_once(config)
    try:
        assert inbox.holding.wait(timeout=180), "the run never reached the mail server"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    assert inbox.envelopes == [] and alert_rows(tmp_path) == [("signpost", "email", "pending")]
    inbox.hold = False
    rerun = run_once(config)
    assert rerun.wait(timeout=180) == 0, rerun.stderr.read()
    assert len(inbox.envelopes) == 1 and alert_rows(tmp_path) == [("signpost", "email", "sent")]
    again = run_once(config)
    assert again.wait(timeout=180) == 0 and len(inbox.envelopes) == 1


# --- webhook, rate limit, spikes: seeded stores, run_alerts directly ------------------

NOW = datetime(2026, 6, 10, 6, 0, tzinfo=timezone.utc)
STORIES = [
    SeedArticle("Microsoft offers to buy OpenAI outright", NOW - timedelta(hours=2), {"acquisition": 0.8},
                entities=[MS, OA], url="https://news.example.com/buyout"),
    SeedArticle("Microsoft raises its stake in OpenAI to 49%", NOW - timedelta(hours=1), {"investors": 0.8},
                entities=[MS, OA], url="https://news.example.com/stake"),
]


@pytest.fixture
def alert_app(make_settings, store_url):
    apps = []

    def make(alerts: str, smtp_port: int = 25) -> App:
        body = (f'[smtp]\nhost = "127.0.0.1"\nport = {smtp_port}\nsender = "monitor@example.net"\ntimeout = 5\n'
                f"[alerts]\n{alerts}")
        apps.append(App(make_settings(body, db_url=store_url)))
        return apps[-1]

    yield make
    for app in apps:
        app.close()


def test_webhook_alerts_are_posted_once_as_json(alert_app, httpserver):
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    app = alert_app(f'webhook_url = "{httpserver.url_for("/hook")}"\nevents = ["signpost"]\n')
    seed_articles(app.engine, STORIES[:1])
    assert run_alerts(app, NOW) == 1
    assert run_alerts(app, NOW + timedelta(minutes=5)) == 0
    (request, _response), = httpserver.log
    payload = json.loads(request.get_data())
    assert payload["kind"] == "signpost" and payload["signpost"] == "buyout_offer"
    assert payload["story"]["url"] == "https://news.example.com/buyout" and payload["evidence"] == STORIES[0].title
    assert request.headers["Idempotency-Key"] == payload["id"] and request.headers["Content-Type"] == "application/json"


def test_a_failing_webhook_is_retried_on_the_next_cycle_then_sent_once(alert_app, httpserver):
    answers = iter([("busy", 503), ("ok", 200)])
    httpserver.expect_request("/hook").respond_with_handler(
        lambda request: __import__("werkzeug").Response(*next(answers)))
    app = alert_app(f'webhook_url = "{httpserver.url_for("/hook")}"\nevents = ["signpost"]\n')
    seed_articles(app.engine, STORIES[:1])
    assert run_alerts(app, NOW) == 0
    with app.engine.connect() as conn:
        row = conn.execute(select(schema.alerts.c.status, schema.alerts.c.last_error)).one()
    assert row.status == "pending" and "HTTP 503" in row.last_error
    assert run_alerts(app, NOW + timedelta(minutes=1)) == 1
    assert run_alerts(app, NOW + timedelta(minutes=2)) == 0 and len(httpserver.log) == 2


def test_alerts_are_rate_limited_per_hour_and_none_is_dropped(alert_app, inbox):
    app = alert_app('recipients = ["desk@example.com"]\nmax_per_hour = 1\nevents = ["signpost"]\n', inbox.port)
    seed_articles(app.engine, STORIES)
    assert run_alerts(app, NOW) == 1 and len(inbox.envelopes) == 1
    assert run_alerts(app, NOW + timedelta(minutes=30)) == 0
    assert run_alerts(app, NOW + timedelta(minutes=61)) == 1 and len(inbox.envelopes) == 2
    subjects = sorted(m["Subject"].strip() for m in inbox.messages)
    assert subjects == ["Tension Monitor alert: Acquisition signpost: A buyout offer for OpenAI",
                        "Tension Monitor alert: Acquisition signpost: A larger stake or control of OpenAI"]


def test_old_stories_do_not_alert_after_an_upgrade(alert_app, inbox):
    app = alert_app('recipients = ["desk@example.com"]\n', inbox.port)
    seed_articles(app.engine, STORIES[:1])
    assert run_alerts(app, NOW + timedelta(days=3)) == 0 and inbox.envelopes == []


def test_a_label_spiking_on_new_developments_alerts_once(alert_app, inbox):
    app = alert_app('recipients = ["desk@example.com"]\nevents = ["spike"]\n', inbox.port)
    history = [SeedArticle(f"Court docket item {n}: {word}", NOW - timedelta(days=3 + n), {"legal": 0.7},
                           text=f"{word} filing {n}.", url=f"https://news.example.com/h{n}")
               for n, word in enumerate(["antitrust", "copyright", "privacy", "contract", "patent", "labor"])]
    window = [SeedArticle(title, NOW - timedelta(hours=3 + n), {"legal": 0.8}, text=text, url=f"https://news.example.com/w{n}")
              for n, (title, text) in enumerate([
                  ("FTC opens inquiry into the partnership", "Antitrust regulators sent letters."),
                  ("Authors win class certification", "Copyright plaintiffs can proceed together."),
                  ("Employees file wage complaint", "Labor board accepts the filing."),
              ])]
    seed_articles(app.engine, history + window)
    assert run_alerts(app, NOW) == 1 and run_alerts(app, NOW + timedelta(minutes=10)) == 0
    assert inbox.messages[0]["Subject"].strip().startswith("Tension Monitor alert: Legal challenges is spiking (3 new developments)")


def test_the_alerts_page_lists_them(alert_app, inbox):
    from fastapi.testclient import TestClient

    from monitor.web.app import create_app

    app = alert_app('recipients = ["desk@example.com"]\nevents = ["signpost"]\n', inbox.port)
    seed_articles(app.engine, STORIES[:1])
    run_alerts(app, NOW)
    with TestClient(create_app(app), base_url="http://127.0.0.1") as client:
        page = client.get("/alerts")
    assert page.status_code == 200 and "A buyout offer for OpenAI" in page.text and ">sent<" in page.text
