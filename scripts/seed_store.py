"""Fill a store with synthetic tagged articles, fast, for the scale benchmark.

    .venv/bin/python scripts/seed_store.py --url sqlite:///data/big.db --articles 1000000
    .venv/bin/python scripts/seed_store.py --url postgresql+psycopg://postgres@127.0.0.1/test --articles 200000

The store is opened through the real migrations (so its indexes and counter triggers
are the real ones, and the triggers keep `status`'s totals right while seeding), then
filled as the pipeline would leave it: every article with its 13 scores, about 30%
relevant with one or two effective labels, near-duplicate clusters, three entities
each, a few failing feeds; the newest `--untagged` articles are left untagged.
History grows backwards from --end at --per-day articles a day, so a bigger store means
more history, not a busier day: the last day's digest and the 90-day trends read the
same amount of data at 10,000 and at 1,000,000 articles. Rows go in with COPY on
PostgreSQL and executemany on SQLite, in chunks (memory stays flat).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from monitor.storage.engine import open_store  # noqa: E402
from monitor.taxonomy import LABEL_IDS  # noqa: E402

END = datetime(2026, 6, 10, 6, 0, tzinfo=timezone.utc)
FEEDS = 40
CHUNK = 20_000
ENTITY_POOL = [(f"Entity {n}", "ORG" if n % 3 else "PERSON", f"entity_{n}" if n % 4 else None) for n in range(300)]
ENTITY_WEIGHTS = [1 / (n + 1) for n in range(len(ENTITY_POOL))]  # Zipf-like: a few names dominate

COLUMNS = {
    "feeds": ("id", "url", "fetch_url", "name", "origin", "active", "full_text", "redirect_count", "error_count",
              "last_new_items", "created_at", "failing_since", "last_error"),
    "articles": ("id", "feed_id", "guid", "url", "canonical_url", "content_hash", "title", "text", "source",
                 "published_at", "published_estimated", "fetched_at", "cluster_id", "relevant", "model_version",
                 "tagged_at"),
    "article_feeds": ("article_id", "feed_id", "guid", "first_seen_at"),
    "article_scores": ("article_id", "label_id", "score", "predicted"),
    "article_labels": ("article_id", "label_id", "origin", "published_at"),
    "entities": ("article_id", "text", "label", "canonical_id", "mentions"),
}


def feed_rows(end: datetime) -> list[tuple]:
    return [(n, f"https://feeds.example.com/{n}.xml", f"https://feeds.example.com/{n}.xml", f"Feed {n}", "config", True,
             False, 0, 3 if n % 13 == 0 else 0, 0, end, end - timedelta(hours=n) if n % 13 == 0 else None,
             "HTTP 503" if n % 13 == 0 else None) for n in range(1, FEEDS + 1)]


def article_chunks(articles: int, per_day: int, untagged: int, end: datetime, seed: int = 42):
    """Rows per table for `articles` articles, oldest first, CHUNK articles at a time."""
    rng = random.Random(seed)
    start = end - timedelta(days=articles / per_day)
    step = (end - start) / max(articles, 1)
    clusters: dict[int, int] = {}  # article id -> its story's first article, for the last 20
    for first in range(1, articles + 1, CHUNK):
        tables: dict[str, list[tuple]] = {name: [] for name in COLUMNS if name != "feeds"}
        for n in range(first, min(first + CHUNK, articles + 1)):
            _article(tables, rng, n, start + step * n, tagged=n <= articles - untagged, clusters=clusters)
        yield tables


def _article(tables: dict, rng: random.Random, n: int, fetched: datetime, tagged: bool, clusters: dict) -> None:
    published = fetched - timedelta(minutes=rng.randint(0, 600))
    feed = rng.randint(1, FEEDS)
    relevant = rng.random() < 0.3
    chosen = rng.sample(LABEL_IDS, rng.choice((1, 1, 2))) if relevant and tagged else []
    # 15% are copies of one of the last 20 articles' stories, linked to that story's head.
    cluster = clusters[n - rng.randint(1, 20)] if n > 20 and rng.random() < 0.15 else n
    clusters[n] = cluster
    clusters.pop(n - 21, None)
    url = f"https://news.example.com/{n}"
    tables["articles"].append((
        n, feed, url, url, url, f"{n:064x}", f"Synthetic story number {n} about the partnership",
        "Body text.", f"Source {feed % 25}", published, False, fetched, cluster,
        bool(chosen) if tagged else None, "bench-model" if tagged else None, fetched if tagged else None))
    tables["article_feeds"].append((n, feed, url, fetched))
    if not tagged:
        return
    for label in LABEL_IDS:
        score = rng.uniform(0.5, 0.95) if label in chosen else rng.uniform(0.0, 0.4)
        tables["article_scores"].append((n, label, score, label in chosen))
    tables["article_labels"].extend((n, label, "model", published) for label in chosen)
    for text, kind, canonical in rng.choices(ENTITY_POOL, ENTITY_WEIGHTS, k=3):
        tables["entities"].append((n, text, kind, canonical, 1))


def seed(engine, articles: int, per_day: int = 100, untagged: int = 0, end: datetime = END,
         progress=None) -> None:
    """Fill an empty, migrated store."""
    write = _copy_writer if engine.dialect.name == "postgresql" else _sqlite_writer
    raw = engine.raw_connection()
    try:
        write(raw, "feeds", feed_rows(end))
        done = 0
        for tables in article_chunks(articles, per_day, untagged, end):
            for name, rows in tables.items():
                if rows:
                    write(raw, name, rows)
            raw.commit()
            done += len(tables["articles"])
            if progress:
                progress(done)
        if engine.dialect.name == "postgresql":  # the sequences must continue after our explicit ids
            cursor = raw.cursor()
            for table in ("feeds", "articles", "entities"):
                cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                               f"(SELECT coalesce(max(id), 1) FROM {table}))")
        raw.commit()
    finally:
        raw.close()


def _copy_writer(raw, table: str, rows: list[tuple]) -> None:
    cursor = raw.cursor()
    with cursor.copy(f"COPY {table} ({', '.join(COLUMNS[table])}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def _sqlite_writer(raw, table: str, rows: list[tuple]) -> None:
    columns = COLUMNS[table]
    stamped = [tuple(_sqlite_value(value) for value in row) for row in rows]
    raw.cursor().executemany(
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})", stamped)


def _sqlite_value(value):
    # SQLAlchemy's SQLite DateTime storage format (UTCDateTime stores naive UTC).
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="SQLAlchemy URL of an empty store")
    parser.add_argument("--articles", type=int, default=200_000)
    parser.add_argument("--per-day", type=int, default=100)
    parser.add_argument("--untagged", type=int, default=0, help="leave the newest N articles untagged")
    args = parser.parse_args()
    engine = open_store(args.url)
    began = time.perf_counter()
    seed(engine, args.articles, args.per_day, args.untagged,
         progress=lambda done: print(f"\r{done:,} articles", end="", file=sys.stderr, flush=True))
    print(f"\nseeded {args.articles:,} articles in {time.perf_counter() - began:.1f} s", file=sys.stderr)
    engine.dispose()


if __name__ == "__main__":
    main()
