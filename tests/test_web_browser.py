"""A real browser against a real `tension-monitor serve`: Debian's chromium driven by
Playwright, on 127.0.0.1 only. Nothing is downloaded: chromium comes from apt.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from monitor.storage import schema
from monitor.storage.engine import open_store
from tests.conftest import REPO
from tests.factories import SeedArticle, seed_articles
from tests.test_web import ARTICLE

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is not installed (apt-get install chromium)"),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen, seconds: float = 180) -> None:
    """The server loads the model before binding; poll until it answers (or died)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"serve exited with {process.returncode}: {process.stderr.read().decode()[-2000:]}")
        try:
            httpx.get(url, timeout=1, trust_env=False)
            return
        except httpx.HTTPError:
            time.sleep(0.3)
    raise RuntimeError(f"serve did not answer at {url} within {seconds} s")


@pytest.fixture
def server(tmp_path):
    """`tension-monitor serve` on a free loopback port over a seeded SQLite store."""
    db = tmp_path / "monitor.db"
    config = tmp_path / "monitor.toml"
    config.write_text(f'root = "{REPO}"\n[storage]\nurl = "sqlite:///{db}"\n')
    engine = open_store(f"sqlite:///{db}")
    now = datetime.now(timezone.utc)
    ids = seed_articles(engine, [SeedArticle("OpenAI adds Oracle capacity for Stargate", now - timedelta(hours=3),
                                             {"cloud": 0.9}, text="OpenAI signed a cloud deal with Oracle.")])
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "TENSION_MONITOR_WEB_TOKEN"}
    process = subprocess.Popen(
        [sys.executable, "-m", "monitor", "--config", str(config), "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base + "/static/style.css", process)
        yield base, engine, ids
    finally:
        process.terminate()
        process.wait(timeout=20)
        engine.dispose()


@pytest.fixture
def page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.errors = []  # console errors: a CSP violation would show up here
        page.on("console", lambda msg: page.errors.append(msg.text) if msg.type == "error" else None)
        yield page
        browser.close()


def test_paste_then_correct_a_tag_and_keep_it(server, page):
    base, engine, ids = server
    page.goto(base + "/")
    page.fill("input[name=title]", "Microsoft and OpenAI renegotiate")
    page.fill("textarea[name=text]", ARTICLE)
    page.click("button:has-text('Tag it')")
    labels = page.locator("[data-testid=labels]")
    labels.wait_for()
    assert "Cloud and compute" in labels.inner_text()
    assert page.locator("mark").count() > 0  # evidence highlighted

    page.goto(f"{base}/articles/{ids[0]}")
    page.fill("form.analyst input[name=analyst]", "Priya")
    page.click("form.analyst button")
    page.click("button[aria-label='Add Talent wars']")
    page.wait_for_url(re.compile(r".*changed=talent.*"))
    page.reload()
    row = page.locator("tr[data-label=talent]")
    assert "added by Priya" in row.inner_text()
    assert "Talent wars" in page.locator("[data-testid=labels]").inner_text()
    with engine.connect() as conn:
        stored = conn.execute(select(schema.corrections.c.label_id, schema.corrections.c.author)).all()
    assert [tuple(r) for r in stored] == [("talent", "Priya")]
    assert page.errors == []


def test_open_a_past_digest_from_the_history(server, page):
    base, engine, _ids = server
    sent = datetime.now(timezone.utc) - timedelta(days=2)
    with engine.begin() as conn:
        conn.execute(schema.digests.insert().values(
            window_start=sent - timedelta(days=1), window_end=sent, status="sent", attempts=1,
            subject="Tension Monitor: 4 stories (two days ago)", message_id="<old@test>", recipients='["a@example.com"]',
            html="<html><body><h1 id='past'>The digest of two days ago</h1></body></html>", text_body="TWO DAYS AGO",
            relevant_count=4, created_at=sent, sent_at=sent))
    page.goto(base + "/digests")
    page.click("a:has-text('Tension Monitor: 4 stories (two days ago)')")
    page.wait_for_url(re.compile(r".*/digests/\d+$"))
    assert "TWO DAYS AGO" in page.locator("pre.mail-text").inner_text()
    frame = page.frame_locator("iframe.mail")
    assert frame.locator("#past").inner_text() == "The digest of two days ago"
    assert page.errors == []
