"""Benchmark the tagging stage.

Prints, in one run:
  1. throughput of the processing stage (entities + sentence encoder + word model on the
     text and its passages + evidence + store into SQLite, as the pipeline does it:
     tag_texts on batches of 64, save_tags_batch in one transaction per batch) against bare
     `nlp.pipe` of the same texts with the same spaCy components, as a ratio (aim >= 0.5);
  2. the wall time of a cold `tension-monitor classify FILE --json` against spaCy's own
     load time of the same pipeline in a fresh interpreter (aim: under 2x);
  3. `tension-monitor classify --jsonl` articles per second (one process, one model load).

Texts: the training examples (title + text), repeated up to --n.

    .venv/bin/python scripts/bench_tagging.py [--config config/monitor.toml] [--n 600]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

BATCH = 64  # what pipeline.TAG_BATCH uses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(REPO / "config" / "monitor.toml"))
    parser.add_argument("--n", type=int, default=600, help="texts per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="repeat each measurement, keep the best")
    args = parser.parse_args()

    from monitor.app import App
    from monitor.settings import load_settings

    settings = load_settings(Path(args.config), {})
    app = App(settings)
    items = _items(app, args.n)
    nlp, classifier = app.nlp, app.classifier
    texts = [f"{title}\n\n{text}" for title, text in items]
    batch_size = settings.nlp.batch_size

    list(nlp.pipe(texts[:64], batch_size=batch_size))  # warm up
    with tempfile.TemporaryDirectory() as folder:
        engine, ids = _store(folder, items)
        _stage(engine, nlp, classifier, items[:64], ids[:64])  # warm up
        bare, stage = [], []
        for _ in range(args.rounds):
            started = time.perf_counter()
            for _doc in nlp.pipe(texts, batch_size=batch_size):
                pass
            bare.append(time.perf_counter() - started)
            started = time.perf_counter()
            _stage(engine, nlp, classifier, items, ids)
            stage.append(time.perf_counter() - started)
        engine.dispose()
    n = len(items)
    bare_rate, stage_rate = n / min(bare), n / min(stage)
    print(f"texts: {n} (median {statistics.median(len(t) for t in texts)} chars), pipeline {nlp.pipe_names}")
    print(f"bare nlp.pipe:                      {bare_rate:7.1f} texts/s")
    print(f"entities + tags + store (SQLite):   {stage_rate:7.1f} texts/s")
    print(f"ratio (stage / bare):               {stage_rate / bare_rate:7.2f}   (aim >= 0.5)")

    with tempfile.TemporaryDirectory() as folder:
        cold = _cold_classify(args.config, Path(folder), items[0], args.rounds)
        spacy_load = _spacy_load(settings, args.rounds)
        print(f"spaCy's own load (same components): {spacy_load:7.2f} s   (best of {args.rounds}, fresh interpreter)")
        print(f"cold `classify FILE --json`:        {cold:7.2f} s   (best of {args.rounds}; "
              f"{cold / spacy_load:.2f}x spaCy's load, aim < 2x)")
        rate, wall = _jsonl_rate(args.config, Path(folder), items)
        print(f"`classify --jsonl` ({n} rows):      {rate:7.1f} articles/s ({wall:.1f} s wall, start-up included)")


def _items(app, n: int) -> list[tuple[str, str]]:
    from monitor.training import load_training_rows

    rows = load_training_rows(app.settings, app.taxonomy)
    items = [(row["title"], row["text"]) for row in rows]
    return (items * (n // len(items) + 1))[:n]


def _store(folder: str, items: list[tuple[str, str]]):
    """A fresh SQLite store holding the texts as untagged articles."""
    import hashlib

    from sqlalchemy import insert

    from monitor.storage import schema
    from monitor.storage.engine import open_store

    engine = open_store(f"sqlite:///{folder}/bench.db")
    now = datetime.now(timezone.utc)
    with engine.begin() as conn:
        feed = conn.execute(insert(schema.feeds).values(
            url="file:bench", fetch_url="file:bench", name="bench", origin="config", active=True,
            full_text=False, redirect_count=0, error_count=0, last_new_items=0, created_at=now)).inserted_primary_key[0]
        ids = []
        for index, (title, text) in enumerate(items):
            key = hashlib.sha256(f"{index}{title}{text}".encode()).hexdigest()
            ids.append(conn.execute(insert(schema.articles).values(
                feed_id=feed, url=f"https://example.org/{key}", canonical_url=f"https://example.org/{key}",
                content_hash=key, title=title, text=text, published_at=now, published_estimated=False,
                fetched_at=now)).inserted_primary_key[0])
    return engine, ids


def _stage(engine, nlp, classifier, items, ids) -> None:
    """What the pipeline's tagging does per batch (pipeline._ClaimedBatch): tag_texts, then
    save_tags_batch in one transaction."""
    from monitor.classify import tag_texts
    from monitor.storage.tags import Tagged, save_tags_batch

    now = datetime.now(timezone.utc)
    for start in range(0, len(items), BATCH):
        results = tag_texts(nlp, classifier, items[start:start + BATCH])
        with engine.begin() as conn:
            save_tags_batch(conn, [Tagged(article_id, result, now)
                                   for article_id, result in zip(ids[start:start + BATCH], results)])


def _command(config: str) -> list[str]:
    return [str(REPO / ".venv" / "bin" / "tension-monitor"), "--config", config]


def _spacy_load(settings, rounds: int) -> float:
    """Seconds for a fresh interpreter to import spaCy and load the same components."""
    from monitor.entities import UNNEEDED

    code = ("import spacy\n"
            "for name in (%r, %r):\n"
            "    try:\n        spacy.load(name, exclude=%r); break\n"
            "    except OSError: pass\n") % (settings.nlp.spacy_model, settings.nlp.spacy_fallback, UNNEEDED)
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return min(times)


def _cold_classify(config: str, folder: Path, item: tuple[str, str], rounds: int) -> float:
    article = folder / "article.txt"
    article.write_text(f"{item[0]}\n\n{item[1]}", encoding="utf-8")
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        subprocess.run([*_command(config), "classify", str(article), "--json"], check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return min(times)


def _jsonl_rate(config: str, folder: Path, items) -> tuple[float, float]:
    batch = folder / "batch.jsonl"
    batch.write_text("".join(json.dumps({"id": i, "title": t, "text": x}) + "\n" for i, (t, x) in enumerate(items)),
                     encoding="utf-8")
    started = time.perf_counter()
    done = subprocess.run([*_command(config), "classify", "--jsonl", str(batch)], check=True, capture_output=True, text=True)
    wall = time.perf_counter() - started
    assert len(done.stdout.splitlines()) == len(items)
    return len(items) / wall, wall


if __name__ == "__main__":
    main()
