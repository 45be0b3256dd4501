"""Web benchmark: warm POST /api/classify on a 1,000-word article (aim < 300 ms) and the
articles page over 200,000 stored articles (aim < 200 ms).

Seeds a temporary store in bulk (articles, feeds, effective labels, clusters; per-label
scores are left out because the list never reads them), then times requests through
the ASGI app in-process. Prints median and p90 of repeated warm requests.

    .venv/bin/python scripts/bench_web.py [--articles 200000] [--store-url postgresql+psycopg://...]
"""

from __future__ import annotations

import argparse
import hashlib
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from scripts.demo_stories import STORIES  # noqa: E402

CHUNK = 5_000


def seed(engine, total: int, rng: random.Random) -> None:
    """`total` articles over the last 120 days, ~1.6 labels each when relevant, 10% near-duplicates."""
    from sqlalchemy import insert

    from monitor.storage import schema
    from monitor.taxonomy import LABEL_IDS

    now = datetime.now(timezone.utc)
    with engine.begin() as conn:
        feed_ids = [conn.execute(insert(schema.feeds).values(
            url=f"https://feeds.example.com/{i}.xml", fetch_url=f"https://feeds.example.com/{i}.xml", name=f"Feed {i:02d}",
            origin="config", active=True, full_text=False, redirect_count=0, error_count=0, last_new_items=0, created_at=now,
        )).inserted_primary_key[0] for i in range(40)]
    for start in range(0, total, CHUNK):
        rows, links, labels = _chunk(start + 1, min(CHUNK, total - start), feed_ids, now, rng, LABEL_IDS)
        with engine.begin() as conn:
            conn.execute(insert(schema.articles), rows)
            conn.execute(insert(schema.article_feeds), links)
            if labels:
                conn.execute(insert(schema.article_labels), labels)
        print(f"\rseeded {start + len(rows):,} articles", end="", file=sys.stderr)
    print(file=sys.stderr)


def _chunk(first_id: int, n: int, feed_ids, now, rng, label_ids):
    rows, links, labels = [], [], []
    for article_id in range(first_id, first_id + n):
        _, _, source, title, text = rng.choice(STORIES)
        published = now - timedelta(minutes=rng.randrange(120 * 24 * 60))
        feed_id = rng.choice(feed_ids)
        chosen = rng.sample(label_ids, rng.choice((0, 0, 1, 1, 2, 3)))
        duplicate = article_id > 10 and rng.random() < 0.1
        url = f"https://news.example.com/{article_id}"
        rows.append(dict(
            id=article_id, feed_id=feed_id, guid=url, url=url, canonical_url=url,
            content_hash=hashlib.sha256(url.encode()).hexdigest(), title=f"{title} ({article_id})", text=text,
            source=source, published_at=published, published_estimated=False, fetched_at=published,
            cluster_id=rng.randrange(max(1, article_id - 500), article_id) if duplicate else article_id,
            relevant=bool(chosen), model_version="bench", tagged_at=published,
        ))
        links.append(dict(article_id=article_id, feed_id=feed_id, guid=url, first_seen_at=published))
        labels += [dict(article_id=article_id, label_id=label, origin="model", published_at=published) for label in chosen]
    return rows, links, labels


def timed(call, repeat: int) -> tuple[float, float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = call()
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text[:300]
    samples.sort()
    return statistics.median(samples), samples[int(0.9 * (len(samples) - 1))]


def thousand_words() -> str:
    words = " ".join(text for *_, text in STORIES).split()
    return " ".join((words * 2)[:1000])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=200_000)
    parser.add_argument("--store-url", help="default: a temporary SQLite file")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()

    from fastapi.testclient import TestClient

    from monitor.app import App
    from monitor.settings import load_settings
    from monitor.web.app import create_app

    with tempfile.TemporaryDirectory() as tmp:
        url = args.store_url or f"sqlite:///{tmp}/bench.db"
        config = Path(tmp) / "bench.toml"
        config.write_text(f'root = "{REPO}"\n[storage]\nurl = "{url}"\n')
        app = App(load_settings(config, {}))
        started = time.perf_counter()
        seed(app.engine, args.articles, random.Random(7))
        print(f"seeded {args.articles:,} articles in {time.perf_counter() - started:.1f} s ({app.engine.dialect.name})")
        app.nlp, app.classifier  # noqa: B018 - loaded once, as `serve` does
        with TestClient(create_app(app), base_url="http://127.0.0.1:8080") as client:  # a Host the app answers to
            report(client, args.repeat)
        app.close()


def report(client, repeat: int) -> None:
    article = {"title": "Microsoft and OpenAI renegotiate", "text": thousand_words()}
    checks = [
        ("POST /api/classify (1,000 words)", 300, lambda: client.post("/api/classify", json=article)),
        ("GET /articles", 200, lambda: client.get("/articles")),
        ("GET /articles?label=acquisition", 200, lambda: client.get("/articles?label=acquisition")),
        ("GET /articles?relevant=yes&page=40", 200, lambda: client.get("/articles?relevant=yes&page=40")),
        ("GET /articles?q=Stargate", 200, lambda: client.get("/articles?q=Stargate")),
        ("GET /api/articles?label=cloud&since=…", 200,
         lambda: client.get(f"/api/articles?label=cloud&since={(datetime.now(timezone.utc) - timedelta(days=7)).date()}")),
        ("GET /articles/{id}", 200, lambda: client.get("/articles/12345")),
        ("GET /trends", None, lambda: client.get("/trends")),
    ]
    print(f"{'request':42} {'median ms':>10} {'p90 ms':>8}  aim")
    for name, aim, call in checks:
        call(), call()  # warm: first-request costs (index build, caches) are not what we measure
        median, p90 = timed(call, repeat)
        verdict = "" if aim is None else (f"< {aim} ok" if median < aim else f"< {aim} MISSED")
        print(f"{name:42} {median:10.1f} {p90:8.1f}  {verdict}")


if __name__ == "__main__":
    main()
