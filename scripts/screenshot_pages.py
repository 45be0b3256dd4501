"""Screenshot every page of the web UI into docs/screenshots/*.png.

Seeds a temporary SQLite store through the real pipeline (RSS files on disk -> fetch ->
parse -> dedupe -> tag -> store), records one sent digest, adds two analyst corrections,
starts `tension-monitor serve` on a free loopback port and drives Debian's chromium.

    .venv/bin/python scripts/screenshot_pages.py [--out docs/screenshots]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from scripts.demo_stories import STORIES  # noqa: E402

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
PASTE_TITLE = "Microsoft weighs its options as OpenAI courts other clouds"
PASTE_TEXT = (
    "Microsoft executives have discussed how to respond if OpenAI moves more of its training work to other cloud "
    "providers, according to people familiar with the conversations. OpenAI has signed capacity deals with Oracle and "
    "CoreWeave for its Stargate data centers, and Azure no longer has the exclusive right to host its workloads.\n\n"
    "One option under discussion is to lean harder on Microsoft's own MAI models, which the company has started to test "
    "inside Copilot. Another is to renegotiate the revenue share that Microsoft receives from OpenAI's products. "
    "Microsoft still holds rights to OpenAI's models until the end of the decade, and the AGI clause remains a source of "
    "tension: a declaration that AGI has been reached would change what Microsoft can use.\n\n"
    "Regulators in Washington and London are watching. The FTC has asked both companies about the governance rights "
    "attached to Microsoft's stake, and investors are asking whether the partnership will survive in its current form."
)


def write_feeds(folder: Path, now: datetime, older_than_days: float) -> dict[str, Path]:
    """One RSS file per feed with the stories at least `older_than_days` old."""
    by_feed: dict[str, list[str]] = {}
    for days, feed, source, title, text in STORIES:
        if days < older_than_days:
            continue
        link = f"https://news.example.com/{hashlib.sha1((feed + title).encode()).hexdigest()[:10]}"
        by_feed.setdefault(feed, []).append(
            f"<item><title>{escape(title)}</title><link>{link}</link><guid>{link}</guid>"
            f"<source url=\"https://news.example.com/\">{escape(source)}</source>"
            f"<pubDate>{format_datetime(now - timedelta(days=days))}</pubDate><description>{escape(text)}</description></item>"
        )
    paths = {}
    for feed in sorted({s[1] for s in STORIES}):
        path = folder / f"{feed.lower().replace(' ', '-')}.xml"
        path.write_text(f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>{escape(feed)}</title>'
                        f"<link>https://news.example.com/</link><description>demo</description>{''.join(by_feed.get(feed, []))}"
                        "</channel></rss>", encoding="utf-8")
        paths[feed] = path
    return paths


def write_config(folder: Path, feeds: dict[str, Path]) -> Path:
    entries = "".join(f'\n[[feeds]]\nname = "{name}"\nurl = "{path.as_uri()}"\n' for name, path in feeds.items())
    entries += f'\n[[feeds]]\nname = "Markets wire (moved)"\nurl = "{(folder / "gone.xml").as_uri()}"\n'
    config = folder / "monitor.toml"
    config.write_text(f'root = "{REPO}"\n[storage]\nurl = "sqlite:///{folder / "monitor.db"}"\n'
                      f'[digest]\nrecipients = ["analysts@example.com"]\n{entries}', encoding="utf-8")
    return config


def seed(folder: Path, now: datetime) -> Path:
    """Two polls a day apart, a sent digest between them, two corrections."""
    from monitor.app import App
    from monitor.pipeline import run_cycle
    from monitor.settings import load_settings

    config = write_config(folder, write_feeds(folder, now, older_than_days=1.0))
    app = App(load_settings(config, {}))
    yesterday = now - timedelta(days=1)
    run_cycle(app, yesterday, only_due=False)
    # The window ends just after that poll, so its articles are in the digest as sent.
    record_sent_digest(app, yesterday - timedelta(days=1), yesterday + timedelta(minutes=5))
    write_feeds(folder, now, older_than_days=0.0)
    run_cycle(app, now, only_due=False)
    correct(app)
    app.close()
    return config


def record_sent_digest(app, start: datetime, end: datetime) -> None:
    from monitor import digest
    from monitor.storage import digests

    rendered = digest.render(digest.build_digest(app.engine, app.settings, app.taxonomy, start, end))
    with app.engine.begin() as conn:
        digest_id = digests.ensure_row(
            conn, window_start=start, window_end=end, message_id=f"<demo-{int(end.timestamp())}@example.com>", now=end)
        digests.record_content(
            conn, digest_id, subject=rendered.subject, recipients=app.settings.digest.recipients, html=rendered.html,
            text=rendered.text, relevant_count=rendered.relevant_count)
        digests.mark_sent(conn, digest_id, end + timedelta(minutes=1))


def correct(app) -> None:
    from sqlalchemy import select

    from monitor.storage import schema
    from monitor.storage.tags import apply_correction

    def article(title_start: str) -> int:
        with app.engine.connect() as conn:
            return conn.execute(select(schema.articles.c.id).where(schema.articles.c.title.like(title_start + "%"))).scalar()

    apply_correction(app.engine, article("OpenAI books more Oracle"), ["divergence"], [], "Priya Raman", app.taxonomy)
    apply_correction(app.engine, article("Developers build a new"), [], ["competition"], "Priya Raman", app.taxonomy)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(config: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "TENSION_MONITOR_WEB_TOKEN"}
    process = subprocess.Popen([sys.executable, "-m", "monitor", "--config", str(config), "serve", "--port", str(port)],
                               cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            httpx.get(base + "/static/style.css", timeout=1, trust_env=False)
            return process, base
        except httpx.HTTPError:
            if process.poll() is not None:
                raise SystemExit(f"serve exited with {process.returncode}")
            time.sleep(0.3)
    process.terminate()
    raise SystemExit("serve did not start")


def shoot(base: str, out: Path) -> None:
    from playwright.sync_api import sync_playwright

    oracle = httpx.get(base + "/api/articles", params={"q": "Oracle capacity"}, trust_env=False).json()["items"][0]["id"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1360, "height": 900})
        page.goto(base + "/")
        page.fill("input[name=title]", PASTE_TITLE)
        page.fill("textarea[name=text]", PASTE_TEXT)
        page.click("button:has-text('Tag it')")
        page.wait_for_selector("#result")
        page.screenshot(path=out / "paste.png", full_page=True)
        for name, path in [("articles", "/articles"), ("article", f"/articles/{oracle}"), ("trends", "/trends"),
                           ("feeds", "/feeds"), ("digest", "/digest"), ("api-docs", "/docs")]:
            page.goto(base + path)
            page.wait_for_load_state("load")
            if path == "/docs":  # Swagger UI draws the operations after loading the spec
                page.wait_for_selector(".opblock-summary-path")
            page.screenshot(path=out / f"{name}.png", full_page=True)
            print(f"wrote {out / name}.png")
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        config = seed(Path(tmp), datetime.now(timezone.utc))
        process, base = start_server(config)
        try:
            shoot(base, args.out)
        finally:
            process.terminate()
            process.wait(timeout=20)


if __name__ == "__main__":
    main()
