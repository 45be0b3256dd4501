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


def test_accept_a_review_queue_item_and_see_it_leave(server, page):
    from tests.test_storage_review import flag, review_tag

    base, engine, ids = server
    now = datetime.now(timezone.utc)
    [unsure] = seed_articles(engine, [SeedArticle("Microsoft weighs its OpenAI stake", now - timedelta(hours=1), {},
                                                  text="Investors ask what the stake is worth.")])
    flag(engine, ids[0], review_tag({"cloud": 0.9, "talent": 0.47}, ["talent"], 0.6))
    flag(engine, unsure, review_tag({"investors": 0.49}, ["investors"], 0.95))

    page.goto(base + "/review")
    assert page.locator("header nav a[href='/review']").inner_text() == "Review (2)"
    rows = page.locator("table.review > tbody > tr")
    assert rows.nth(0).locator("a.title").inner_text() == "Microsoft weighs its OpenAI stake"  # most uncertain first
    page.click("button[aria-label='Accept Investors and valuation for Microsoft weighs its OpenAI stake']")
    page.wait_for_url(re.compile(r".*/review\?.*decision=accept.*"))
    assert "Saved: accepted Investors and valuation." in page.locator("p.notice").inner_text()
    assert page.locator("header nav a[href='/review']").inner_text() == "Review (1)"
    assert rows.count() == 1 and rows.nth(0).locator("a.title").inner_text() == "OpenAI adds Oracle capacity for Stargate"
    with engine.connect() as conn:
        stored = conn.execute(select(schema.corrections.c.article_id, schema.corrections.c.label_id,
                                     schema.corrections.c.action)).all()
        labels = conn.execute(select(schema.article_labels.c.label_id).where(schema.article_labels.c.article_id == unsure)).scalars().all()
    assert [tuple(r) for r in stored] == [(unsure, "investors", "add")] and labels == ["investors"]
    assert page.errors == []

def test_api_docs_render_offline_under_the_strict_policy(server, page):
    base, _, _ = server
    outside: list[str] = []

    def local_only(route):
        # Anything not on our loopback server would be a CDN: refuse it and remember it.
        if route.request.url.startswith(base):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", local_only)
    page.goto(base + "/docs")
    page.wait_for_selector(".opblock-summary-path", timeout=30_000)
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert any("/api/classify" in path for path in paths)
    page.goto(base + "/redoc")
    page.get_by_text("/api/classify").first.wait_for(timeout=30_000)
    assert outside == []
    # ReDoc's sidebar always asks for its maker's logo from a CDN; the policy blocks it
    # (the image hides itself). Any other error, e.g. a blocked inline script or style, fails.
    logo = "Loading the image 'https://cdn.redoc.ly/redoc/logo-mini.svg' violates"
    assert [error for error in page.errors if not error.startswith(logo)] == []

def test_dns_rebinding_page_cannot_read_or_correct(server):
    """A page served from evil.example, a name mapped to 127.0.0.1 (what DNS rebinding
    achieves), runs its script same-origin with the monitor: it must get nothing."""
    from playwright.sync_api import sync_playwright

    base, engine, ids = server
    port = base.rsplit(":", 1)[1]
    fetch_both = """async ([id]) => {
        const read = await fetch('/api/articles');
        const write = await fetch(`/api/articles/${id}/labels`, {method: 'POST',
            headers: {'Content-Type': 'application/json'}, body: JSON.stringify({add: ['talent'], remove: []})});
        return [read.status, await read.text(), write.status];
    }"""
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM),
                                    args=CHROMIUM_ARGS + ["--host-resolver-rules=MAP evil.example 127.0.0.1"])
        try:
            page = browser.new_page()
            landing = page.goto(f"http://evil.example:{port}/")
            assert landing.status == 400
            status, body, write_status = page.evaluate(fetch_both, [ids[0]])
            assert (status, write_status) == (400, 400)
            assert "Oracle" not in body
            # The same script from the monitor's own origin reads the store: the test can tell.
            page.goto(f"http://127.0.0.1:{port}/static/style.css")
            own_status, own_body, _ = page.evaluate("async () => { const r = await fetch('/api/articles');"
                                                     " return [r.status, await r.text(), 0]; }")
            assert own_status == 200 and "OpenAI adds Oracle capacity for Stargate" in own_body
        finally:
            browser.close()
    with engine.connect() as conn:
        assert conn.execute(select(schema.corrections.c.id)).all() == []

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
