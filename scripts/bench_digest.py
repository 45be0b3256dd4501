"""How long one digest takes to build on a big store.

    .venv/bin/python scripts/bench_digest.py [--articles 200000] [--days 365] [--db PATH] [--runs 5]

Fills a fresh SQLite database (through the real migrations) with synthetic articles
spread over --days, as the pipeline would store them: every article with its 13 scores,
about 30% relevant with one or two effective labels, near-duplicate clusters, three
entities each, a few failing feeds. Bulk inserts go straight through the DB-API
(executemany in one transaction). Then it times build_digest (and rendering) for the
last day's window and prints the numbers. Target: build under 1 s. Before timing, it
runs the first (full) signpost and thread scans, as the first digest after an upgrade
would, and prints how long they took.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from monitor import digest as dg  # noqa: E402
from monitor.settings import load_settings  # noqa: E402
from monitor.storage import signposts as signpost_store  # noqa: E402
from monitor.storage import threads as thread_store  # noqa: E402
from monitor.storage.engine import open_store  # noqa: E402
from monitor.taxonomy import LABEL_IDS, load_taxonomy  # noqa: E402

END = datetime(2026, 6, 10, 6, 0, tzinfo=timezone.utc)
FEEDS = 40
ENTITY_POOL = [(f"Entity {n}", "ORG" if n % 3 else "PERSON", f"entity_{n}" if n % 4 else None) for n in range(300)]
ENTITY_WEIGHTS = [1 / (n + 1) for n in range(len(ENTITY_POOL))]  # Zipf-like: a few names dominate


def _stamp(moment: datetime) -> str:
    # SQLAlchemy's SQLite DateTime storage format (UTCDateTime stores naive UTC).
    return moment.astimezone(timezone.utc).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


def fill(engine, articles: int, days: int, seed: int = 42) -> None:
    rng = random.Random(seed)
    start = END - timedelta(days=days)
    span = (END - start).total_seconds()
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("PRAGMA synchronous=OFF")  # a throwaway database: no need to wait for the disk
        now = _stamp(END)
        cur.executemany(
            "INSERT INTO feeds (id, url, fetch_url, name, origin, active, full_text, redirect_count, error_count, "
            "last_new_items, created_at, failing_since, last_error) VALUES (?, ?, ?, ?, 'config', 1, 0, 0, ?, 0, ?, ?, ?)",
            [(n, f"https://feeds.example.com/{n}.xml", f"https://feeds.example.com/{n}.xml", f"Feed {n}",
              3 if n % 13 == 0 else 0, now, _stamp(END - timedelta(hours=n)) if n % 13 == 0 else None,
              "HTTP 503" if n % 13 == 0 else None) for n in range(1, FEEDS + 1)],
        )
        offsets = sorted(rng.random() * span for _ in range(articles))
        rows, feeds_rows, scores, labels, ents = [], [], [], [], []
        for n, offset in enumerate(offsets, start=1):
            fetched = start + timedelta(seconds=offset)
            published = fetched - timedelta(minutes=rng.randint(0, 600))
            feed = rng.randint(1, FEEDS)
            relevant = rng.random() < 0.3
            chosen = rng.sample(LABEL_IDS, rng.choice((1, 1, 2))) if relevant else []
            cluster = n - rng.randint(1, 20) if n > 20 and rng.random() < 0.15 else n
            url = f"https://news.example.com/{n}"
            rows.append((n, feed, url, url, url, f"{n:064x}", f"Synthetic story number {n} about the partnership",
                         "Body text.", f"Source {feed % 25}", _stamp(published), _stamp(fetched), cluster,
                         1 if relevant else 0, "bench-model", _stamp(fetched)))
            feeds_rows.append((n, feed, url, _stamp(fetched)))
            for label in LABEL_IDS:
                score = rng.uniform(0.5, 0.95) if label in chosen else rng.uniform(0.0, 0.4)
                scores.append((n, label, score, 1 if label in chosen else 0))
            labels.extend((n, label, "model", _stamp(published)) for label in chosen)
            for text, kind, canonical in rng.choices(ENTITY_POOL, ENTITY_WEIGHTS, k=3):
                ents.append((n, text, kind, canonical, 1))
        cur.executemany(
            "INSERT INTO articles (id, feed_id, guid, url, canonical_url, content_hash, title, text, source, published_at, "
            "published_estimated, fetched_at, cluster_id, relevant, model_version, tagged_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?)", rows)
        cur.executemany("INSERT INTO article_feeds (article_id, feed_id, guid, first_seen_at) VALUES (?, ?, ?, ?)", feeds_rows)
        cur.executemany("INSERT INTO article_scores (article_id, label_id, score, predicted) VALUES (?, ?, ?, ?)", scores)
        cur.executemany("INSERT INTO article_labels (article_id, label_id, origin, published_at) VALUES (?, ?, ?, ?)", labels)
        cur.executemany("INSERT INTO entities (article_id, text, label, canonical_id, mentions) VALUES (?, ?, ?, ?, ?)", ents)
        raw.commit()
    finally:
        raw.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=200_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--db", type=Path, help="keep the database here (default: a temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.db or Path(tmp) / "bench.db"
        if path.exists():
            path.unlink()
        engine = open_store(f"sqlite:///{path}")
        began = time.perf_counter()
        fill(engine, args.articles, args.days)
        print(f"filled {args.articles:,} articles over {args.days} days in {time.perf_counter() - began:.1f} s ({path})")
        settings = load_settings(REPO / "config" / "demo.toml", {})  # for the shipped signposts
        taxonomy = load_taxonomy(settings.path(settings.model.taxonomy_path))
        began = time.perf_counter()
        signpost_store.scan(engine, settings.signposts)
        scan_seconds = time.perf_counter() - began
        began = time.perf_counter()
        threaded = thread_store.scan(engine)
        thread_seconds = time.perf_counter() - began
        add_signpost_hits(engine, [signpost.id for signpost in settings.signposts])
        builds, renders = [], []
        for _run in range(args.runs):
            began = time.perf_counter()
            digest = dg.build_digest(engine, settings, taxonomy, END - timedelta(days=1), END)
            builds.append(time.perf_counter() - began)
            began = time.perf_counter()
            dg.render_digest(digest)
            renders.append(time.perf_counter() - began)
        engine.dispose()
    totals = digest.totals
    print(f"window: {totals.fetched} fetched, {totals.relevant_articles} relevant articles, {totals.relevant_stories} stories, "
          f"{len(digest.spikes)} spiking")
    print(f"build_digest: first {builds[0] * 1000:.0f} ms, median {statistics.median(builds) * 1000:.0f} ms "
          f"over {args.runs} runs (target < 1000 ms)")
    print(f"render_digest: median {statistics.median(renders) * 1000:.0f} ms")
    print(f"signpost scan of every stored article (first run, no hits in synthetic text): {scan_seconds:.1f} s")
    print(f"thread scan of every stored article (first run): {thread_seconds:.1f} s, {threaded:,} stories threaded")


def add_signpost_hits(engine, signpost_ids: list[str], every: int = 50) -> None:
    """Synthetic text fires no signpost: give every 50th article a hit so the board has history."""
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("SELECT id, fetched_at FROM articles WHERE relevant = 1 AND id % ? = 0", (every,))
        hits = [(article_id, signpost_ids[article_id % len(signpost_ids)], "acquisition", "Evidence sentence.", fetched)
                for article_id, fetched in cur.fetchall()]
        cur.executemany("INSERT INTO signpost_hits (article_id, signpost_id, scenario, evidence, fetched_at) "
                        "VALUES (?, ?, ?, ?, ?)", hits)
        raw.commit()
    finally:
        raw.close()


if __name__ == "__main__":
    main()
