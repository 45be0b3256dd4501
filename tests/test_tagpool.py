"""Tagging in N processes gives exactly what tagging in one gives (issue 12, item 2)."""

import json
from datetime import datetime, timedelta, timezone

from sqlalchemy import update

from monitor.storage import schema
from monitor.storage.engine import open_store
from tests.conftest import REPO
from tests.factories import SeedArticle, seed_articles
from tests.test_cli_tagging import config, run  # noqa: F401 - fixtures

START = datetime(2026, 10, 1, tzinfo=timezone.utc)


def training_examples(n: int) -> list[tuple[str, str]]:
    rows = []
    for path in sorted((REPO / "models" / "training").glob("part_*.jsonl")):
        rows += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [(row["title"], row["text"]) for row in rows[:: max(1, len(rows) // n)][:n]]


def exported(run, cfg) -> dict[int, tuple]:
    code, out, err = run("--config", cfg, "export", "--format", "jsonl")
    assert code == 0, err
    return {row["id"]: (row["labels"], row["scores"], row["entities"]) for row in map(json.loads, out.splitlines())}


def test_reprocess_in_two_processes_stores_what_one_process_stores(run, config, make_settings):
    cfg = config()
    engine = open_store(make_settings().database_url)
    examples = training_examples(150)  # three batches of 64: several in flight at once
    seed_articles(engine, [SeedArticle(title, START + timedelta(minutes=n), text=text,
                                       url=f"https://news.example.com/example-{n}")
                           for n, (title, text) in enumerate(examples)])
    code, out, err = run("--config", cfg, "reprocess", "--processes", "1")
    assert code == 0 and f"re-tagged {len(examples)} articles" in out, err
    one_process = exported(run, cfg)
    with engine.begin() as conn:  # forget the tags, so the second run has to write them all again
        for table in (schema.article_scores, schema.article_labels, schema.entities):
            conn.execute(table.delete())
        conn.execute(update(schema.articles).values(relevant=None, tagged_at=None, model_version=None))
    code, out, err = run("--config", cfg, "reprocess", "--processes", "2")
    assert code == 0 and f"re-tagged {len(examples)} articles" in out, err
    assert exported(run, cfg) == one_process
    assert sum(1 for labels, _, _ in one_process.values() if labels) > len(examples) // 3  # real tags, not empty
    engine.dispose()
