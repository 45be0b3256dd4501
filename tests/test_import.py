"""`tension-monitor import FILE`: history on day one (issue 12, item 3), as a user runs it."""

import csv
import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from monitor.importer import parse_time, to_record
from monitor.storage import schema
from tests.conftest import REPO
from tests.test_cli_ingest import config_with, query

A = schema.articles


def training_rows(n: int) -> list[dict]:
    examples = []
    for path in sorted((REPO / "models" / "training").glob("part_*.jsonl")):
        examples += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    rows = []
    for i in range(n):
        example = examples[i % len(examples)]
        rows.append({"url": f"https://news.example.com/{i}", "title": f"{example['title']} ({i})",
                     "text": example["text"], "published": f"2025-{1 + i % 12:02d}-{1 + i % 28:02d}T09:00:00Z",
                     "source": f"Source {i % 7}"})
    return rows


MALFORMED = ['{"url": "https://x.example.com/broken", "title": ', '{"title": "no date", "url": "https://x.example.com/d"}',
             '{"url": "ftp://x.example.com/f", "title": "ftp", "published": "2025-01-01"}', '[1, 2, 3]',
             '{"url": "https://x.example.com/when", "title": "t", "text": "x", "published": "next tuesday"}']


def messy_file(path: Path, good: list[dict], rng: random.Random) -> tuple[list[str], list[int]]:
    """JSONL of the good rows plus 10% duplicates (some under a tracking-tagged URL) and
    2% malformed rows, shuffled. Returns (lines, line numbers of the malformed rows)."""
    lines = [json.dumps(row) for row in good]
    for row in rng.sample(good, len(good) // 10):
        copy = dict(row, url=row["url"] + "?utm_source=newsletter") if rng.random() < 0.5 else row
        lines.append(json.dumps(copy))
    rng.shuffle(lines)
    bad_lines = sorted(rng.sample(range(1, len(lines) + 1), max(1, len(lines) * 2 // 100)))
    for number in bad_lines:
        lines.insert(number - 1, rng.choice(MALFORMED))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return lines, bad_lines


def cli(config: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "monitor", "--config", str(config), *args],
                          cwd=REPO, capture_output=True, text=True, timeout=600)


def test_import_stores_and_tags_every_good_row_once_and_names_bad_lines(tmp_path, store_url):
    config, db_url = config_with(tmp_path, "", db_url=store_url)
    good = training_rows(300)
    _, bad_lines = messy_file(tmp_path / "history.jsonl", good, random.Random(7))

    done = cli(config, "import", str(tmp_path / "history.jsonl"), "--processes", "1")
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    named = [int(line.split(":")[1]) for line in done.stderr.splitlines() if line.startswith(str(tmp_path))]
    assert named == bad_lines
    assert f"300 new articles, 30 already stored, {len(bad_lines)} bad rows; tagged 300" in done.stdout
    stored = query(db_url, select(A.c.canonical_url, A.c.published_at, A.c.tagged_at, A.c.fetched_at))
    assert sorted(row.canonical_url for row in stored) == sorted(row["url"] for row in good)
    assert all(row.tagged_at is not None for row in stored)
    assert all(row.fetched_at == row.published_at for row in stored)  # history, not in the next digest
    assert query(db_url, select(func.count()).select_from(schema.article_scores))[0][0] == 300 * 13

    again = cli(config, "import", str(tmp_path / "history.jsonl"), "--processes", "1")
    assert again.returncode == 0 and "0 new articles" in again.stdout, again.stderr
    status = cli(config, "status")
    assert "300 articles" in status.stdout and "(0 untagged)" in status.stdout, status.stdout


def test_an_import_killed_halfway_and_rerun_ends_with_the_same_store(tmp_path):
    rows = training_rows(3000)
    source = tmp_path / "history.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    clean_config, clean_db = config_with(tmp_path, "", name="clean.toml", db_url=f"sqlite:///{tmp_path / 'clean.db'}")
    assert cli(clean_config, "import", str(source), "--no-tag").returncode == 0
    config, db_url = config_with(tmp_path, "", name="killed.toml", db_url=f"sqlite:///{tmp_path / 'killed.db'}")

    killed = subprocess.Popen([sys.executable, "-m", "monitor", "--config", str(config), "import", str(source), "--no-tag"],
                              cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while killed.poll() is None and time.monotonic() < deadline:
        if (tmp_path / "killed.db").exists() and query(db_url, select(func.count()).select_from(A))[0][0] > 0:
            break
        time.sleep(0.02)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    stored_when_killed = query(db_url, select(func.count()).select_from(A))[0][0]
    assert 0 < stored_when_killed < len(rows)  # killed after its first batch, before the end

    rerun = cli(config, "import", str(source), "--no-tag")
    assert rerun.returncode == 0, rerun.stderr
    assert "resumed where the last import of this file stopped" in rerun.stdout
    columns = (A.c.url, A.c.canonical_url, A.c.content_hash, A.c.title, A.c.published_at, A.c.source)
    assert sorted(query(db_url, select(*columns))) == sorted(query(clean_db, select(*columns)))


def test_csv_and_news_api_shapes_map_to_the_same_record(tmp_path):
    newsapi = to_record({"source": {"id": None, "name": "The Verge"}, "title": "OpenAI signs with Oracle",
                         "description": "Short.", "url": "https://verge.example.com/a?utm_campaign=x",
                         "publishedAt": "2025-03-02T08:00:00Z",
                         "content": "OpenAI signs a deal with Oracle for capacity… [+2310 chars]"})
    assert (newsapi.source, newsapi.text, newsapi.canonical_url) == (
        "The Verge", "OpenAI signs a deal with Oracle for capacity", "https://verge.example.com/a")
    gdelt = to_record({"DATE": "20250303120000", "SOURCEURL": "https://gdelt.example.com/x", "title": "T"})
    assert gdelt.published_at.isoformat() == "2025-03-03T12:00:00+00:00" and gdelt.source == "gdelt.example.com"
    path = tmp_path / "export.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "title", "url", "source", "published_at", "text"])
        writer.writerow([1, "A title", "https://a.example.com/1", "Wire", "2025-01-02T03:04:05+00:00", "Line one\nline two"])
        writer.writerow([2, "too", "few"])
        writer.writerow([3, "Another", "https://a.example.com/2", "Wire", "2025-01-03", "Text"])
    from monitor.importer import read_rows

    rows = list(read_rows(path))
    assert [(row.line, row.error) for row in rows] == [(2, None), (4, "3 columns where the header has 6"), (5, None)]
    assert rows[0].record.text == "Line one\nline two" and rows[2].record.published_at == parse_time("2025-01-03")
    with pytest.raises(ValueError, match="not an ISO 8601 date"):
        parse_time("yesterday")
