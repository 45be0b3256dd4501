#!/usr/bin/env python
"""Ingest benchmark: N feeds x M items served on 127.0.0.1, stored in a temporary SQLite DB.

Prints, for the same generated documents:
  - feedparser alone: the time to parse every document (the yardstick);
  - cold poll: fetch + parse + de-duplicate + store, no tagging (items/s, ratio to feedparser);
  - warm poll: the same feeds again, every answer a 304 (wall time);
  - cold poll with tagging, on --tag-feeds feeds, when a classifier artefact exists;
  - with --stages: the cold poll's CPU stages one after another on one core (parse_feed,
    MinHash signatures, store), each against feedparser alone: where the time goes.

The server runs in its own process so it does not share the GIL with the monitor.
Usage: .venv/bin/python scripts/bench_ingest.py [--feeds 500] [--items 50] [--stages]
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import random
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from xml.sax.saxutils import escape

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

START = datetime(2026, 11, 20, tzinfo=timezone.utc)


def vocabulary(rng: random.Random, size: int = 3000) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    return ["".join(rng.choice(letters) for _ in range(rng.randint(3, 10))) for _ in range(size)]


def feed_document(feed: int, items: int, words: list[str]) -> bytes:
    """An RSS 2.0 document with `items` distinct items (seeded: the same bytes every run)."""
    rng = random.Random(feed)
    entries = []
    for i in range(items):
        title = " ".join(rng.choices(words, k=8)).capitalize()
        body = " ".join(rng.choices(words, k=rng.randint(60, 140)))
        published = format_datetime(START + timedelta(minutes=feed * items + i), usegmt=True)
        link = f"https://bench.example/{feed}/{i}?utm_source=rss"
        entries.append(
            f"<item><title>{escape(title)}</title><link>{escape(link)}</link><guid isPermaLink=\"false\">bench-{feed}-{i}</guid>"
            f"<pubDate>{published}</pubDate><description>{escape(f'<p>{body}.</p>')}</description></item>"
        )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Bench feed {feed}</title>'
        f"<link>https://bench.example/{feed}</link><description>generated</description>{''.join(entries)}</channel></rss>"
    ).encode()


def documents(feeds: int, items: int) -> dict[str, bytes]:
    words = vocabulary(random.Random(0))
    return {f"/feed/{f}.xml": feed_document(f, items, words) for f in range(feeds)}


def serve(feeds: int, items: int, port_queue) -> None:
    """The feed server (child process): 200 with an ETag, or 304 when it matches."""
    docs = documents(feeds, items)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            body = docs.get(self.path)
            etag = f'"{self.path}-v1"'
            if body is None:
                self.send_response(404)
                body = b""
            elif self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                body = b""
            else:
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml")
            self.send_header("ETag", etag)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    ThreadingHTTPServer.daemon_threads = True
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port_queue.put(server.server_address[1])
    server.serve_forever()


def make_app(workdir: Path, name: str, port: int, feeds: int):
    from monitor.app import App
    from monitor.settings import load_settings

    config = workdir / f"{name}.toml"
    lines = [f'root = "{REPO}"', "[storage]", f'url = "sqlite:///{workdir / name}.db"']
    for f in range(feeds):
        lines += ["[[feeds]]", f'name = "Bench {f}"', f'url = "http://127.0.0.1:{port}/feed/{f}.xml"']
    config.write_text("\n".join(lines) + "\n")
    return App(load_settings(config, {}))


def time_feedparser(docs: dict[str, bytes]) -> float:
    import feedparser

    started = time.perf_counter()
    for body in docs.values():
        feedparser.parse(body, response_headers={"content-type": "application/rss+xml"})
    return time.perf_counter() - started


def timed_cycle(app, now: datetime, **options):
    from monitor.pipeline import run_cycle

    started = time.perf_counter()
    report = run_cycle(app, now, **options)
    return report, time.perf_counter() - started


def classifier_available(app) -> bool:
    from importlib.util import find_spec

    if find_spec("monitor.classify") is None:
        return False
    from monitor.classify import artefact_paths

    return all(path.exists() for path in artefact_paths(app.settings))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=500)
    parser.add_argument("--items", type=int, default=50)
    parser.add_argument("--tag-feeds", type=int, default=50, help="feeds in the cold poll with tagging (0: skip)")
    parser.add_argument("--stages", action="store_true", help="also time parse, signatures and store apart, on one core")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    docs = documents(args.feeds, args.items)
    total_items = args.feeds * args.items
    megabytes = sum(map(len, docs.values())) / 1e6
    print(f"{args.feeds} feeds x {args.items} items = {total_items} items, {megabytes:.1f} MB of XML")

    queue = multiprocessing.Queue()
    server = multiprocessing.Process(target=serve, args=(args.feeds, args.items, queue), daemon=True)
    server.start()
    port = queue.get(timeout=60)
    try:
        run_benchmarks(args, docs, total_items, port)
    finally:
        server.terminate()


def run_benchmarks(args, docs: dict[str, bytes], total_items: int, port: int) -> None:
    parse_seconds = time_feedparser(docs)
    print(f"feedparser alone:   {parse_seconds:7.2f} s   {total_items / parse_seconds:8.0f} items/s")

    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as workdir:
        app = make_app(Path(workdir), "cold", port, args.feeds)
        app.engine  # migrations are not part of the poll
        now = datetime.now(timezone.utc)
        cold, seconds = timed_cycle(app, now, tag=False)
        assert cold.new_articles == total_items and cold.failures == 0, (cold.new_articles, cold.failures)
        print(f"cold poll (store):  {seconds:7.2f} s   {total_items / seconds:8.0f} items/s   "
              f"{seconds / parse_seconds:.2f}x feedparser alone")

        warm, seconds = timed_cycle(app, now + timedelta(minutes=1), only_due=False, tag=False)
        not_modified = sum(poll.status == 304 for poll in warm.polls)
        print(f"warm poll (304s):   {seconds:7.2f} s   {not_modified}/{warm.polled} feeds answered 304, {warm.new_articles} new")
        app.close()

        if args.tag_feeds:
            bench_tagging(Path(workdir), port, min(args.tag_feeds, args.feeds), args.items)
        if args.stages:
            bench_stages(Path(workdir), docs, args.items, parse_seconds)


def bench_tagging(workdir: Path, port: int, feeds: int, items: int) -> None:
    app = make_app(workdir, "tagged", port, feeds)
    if not classifier_available(app):
        print("cold poll + tagging: skipped (no classifier artefact; run `tension-monitor train`)")
        return
    app.engine, app.nlp, app.classifier  # model loading is start-up, not per-item cost
    report, seconds = timed_cycle(app, datetime.now(timezone.utc), tag=True)
    print(f"cold poll + tagging ({feeds} feeds): {seconds:7.2f} s   {report.new_articles / seconds:8.0f} items/s   "
          f"({report.tagged} tagged)")
    app.close()


def bench_stages(workdir: Path, docs: dict[str, bytes], items: int, parse_seconds: float) -> None:
    """The cold poll's CPU stages in this process, one after another (no fetching, no
    worker processes), on a fresh store."""
    from urllib.parse import urlsplit

    from monitor.pipeline import prepare
    from monitor.records import FetchResult
    from monitor.storage.articles import RecentSignatures, signature_of, store_feed_run
    from monitor.storage.feeds import due_feeds, sync_config_feeds

    app = make_app(workdir, "stages", 0, len(docs))  # the port is never used: nothing is fetched
    now = datetime.now(timezone.utc)
    sync_config_feeds(app.engine, app.settings.feeds, now)
    results = [FetchResult(s.id, s.url, s.url, 200, body=docs[urlsplit(s.url).path], content_type="application/rss+xml")
               for s in due_feeds(app.engine, now, timedelta(minutes=30), only_due=False)]
    started = time.perf_counter()
    parsed = [prepare(result, now, items, sign=False)[0] for result in results]
    parse_done = time.perf_counter()
    signed = [{a.content_hash: signature_of(a) for a in feed.articles} for feed in parsed]
    sign_done = time.perf_counter()
    recent = RecentSignatures()
    for result, feed, signatures in zip(results, parsed, signed):
        store_feed_run(app.engine, result.feed_id, feed, result, now, app.settings, recent, signatures=signatures)
    store_done = time.perf_counter()
    app.close()
    for stage, seconds in (("parse_feed", parse_done - started), ("signatures", sign_done - parse_done),
                           ("store", store_done - sign_done)):
        print(f"  {stage + ':':12s} {seconds:7.2f} s   {seconds / parse_seconds:.2f}x feedparser alone (one core)")


if __name__ == "__main__":
    main()
