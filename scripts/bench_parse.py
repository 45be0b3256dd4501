"""How much parse_feed costs on top of feedparser alone, on the real feed fixtures.

    .venv/bin/python scripts/bench_parse.py [ROUNDS]

Prints items/s for feedparser.parse on the bytes and for parse_feed (feedparser plus
encoding repair, clean text, canonical URLs, hashes), and their ratio. The issue's aim
for a cold poll is within 2x of feedparser alone.
"""

from __future__ import annotations

import io
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import feedparser

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from monitor.parse import parse_feed  # noqa: E402
from monitor.records import FetchResult  # noqa: E402

FEEDS = REPO / "tests" / "feeds" / "real"


def load() -> list[FetchResult]:
    return [
        FetchResult(i, f"http://127.0.0.1/{p.name}", f"http://127.0.0.1/{p.name}", 200, body=p.read_bytes(), content_type="application/rss+xml")
        for i, p in enumerate(sorted(FEEDS.glob("*.xml")))
    ]


def timed(work, rounds: int) -> tuple[float, int]:
    started = time.perf_counter()
    items = 0
    for _ in range(rounds):
        items += work()
    return time.perf_counter() - started, items


def main(rounds: int) -> None:
    results = load()
    now = datetime.now(timezone.utc)

    def feedparser_only() -> int:
        count = 0
        for result in results:
            try:
                count += len(feedparser.parse(io.BytesIO(result.body), response_headers={"content-type": "application/xml"}).entries)
            except Exception:  # the charref fixture crashes feedparser; parse_feed repairs it
                pass
        return count

    def ours() -> int:
        return sum(len(parse_feed(result, now, 500).articles) for result in results)

    base_seconds, base_items = timed(feedparser_only, rounds)
    our_seconds, our_items = timed(ours, rounds)
    size = sum(len(r.body) for r in results) * rounds / 1e6
    print(f"{len(results)} documents x {rounds} rounds ({size:.1f} MB)")
    print(f"feedparser alone: {base_seconds:.2f} s, {base_items / base_seconds:,.0f} entries/s")
    print(f"parse_feed:       {our_seconds:.2f} s, {our_items / our_seconds:,.0f} articles/s")
    print(f"ratio: {our_seconds / base_seconds:.2f}x feedparser alone")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
