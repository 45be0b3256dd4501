"""The ingest commands as a user runs them: real processes, real files, a real local server."""

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import func, select

from monitor.storage import schema
from monitor.storage.engine import open_store
from tests.conftest import REPO
from tests.factories import FeedItem, rss_feed

WIDE = {**os.environ, "COLUMNS": "200"}  # the status table as in a wide terminal, not folded at 80


def cli(config: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "monitor", "--config", str(config), *args],
                          cwd=REPO, capture_output=True, text=True, timeout=300, env=WIDE)
    if check:
        assert done.returncode == 0, done.stderr
    return done


def config_with(tmp_path: Path, body: str, name: str = "monitor.toml", db_url: str | None = None) -> tuple[Path, str]:
    db_url = db_url or f"sqlite:///{tmp_path / 'monitor.db'}"
    path = tmp_path / name
    path.write_text(f'root = "{REPO}"\n[storage]\nurl = "{db_url}"\n{body}', encoding="utf-8")
    return path, db_url


def demo_config(tmp_path: Path) -> tuple[Path, str]:
    demo = (REPO / "config" / "demo.toml").read_text(encoding="utf-8")
    feeds = demo[demo.index("[[feeds]]"):demo.index("[digest]")]
    return config_with(tmp_path, feeds)


def query(db_url: str, statement):
    engine = open_store(db_url)
    try:
        with engine.connect() as conn:
            return conn.execute(statement).all()
    finally:
        engine.dispose()


def test_run_once_on_the_demo_config_stores_the_demo_articles(tmp_path):
    config, db_url = demo_config(tmp_path)
    done = cli(config, "run", "--once", "--no-tag")
    assert done.stdout.strip() == "polled 4 feeds: 37 new articles, 0 failures"

    a = schema.articles
    rows = {row.canonical_url: row for row in query(db_url, select(a.c.id, a.c.canonical_url, a.c.title, a.c.cluster_id))}
    assert len(rows) == 37  # 38 items, one carried by two feeds
    oracle = rows["https://wire.northgate.example/business/2026/11/openai-oracle-compute"]
    carriers = query(db_url, select(schema.article_feeds.c.feed_id).where(schema.article_feeds.c.article_id == oracle.id))
    assert len(carriers) == 2
    wire = rows["https://wire.northgate.example/tech/2026/11/microsoft-openai-revised-pact"]
    copy = rows["https://inference-weekly.example/news/openai-microsoft-new-terms"]  # tracking parameters stripped
    assert copy.cluster_id == wire.cluster_id and copy.id != wire.id
    assert len({row.cluster_id for row in rows.values()}) == 36
    titles = {row.title for row in rows.values()}
    assert "Copilot vs ChatGPT Enterprise: who is winning the seat war?" in titles
    assert 'Microsoft & OpenAI at odds over who may call the next model "AGI"' in titles

    again = cli(config, "run", "--once", "--no-tag")
    assert again.stdout.strip() == "polled 0 feeds: 0 new articles, 0 failures"  # nothing due yet


def test_status_json_shape(tmp_path):
    config, _ = demo_config(tmp_path)
    before = json.loads(cli(config, "status", "--json").stdout)
    assert before["articles"] == 0 and all(f["last_status"] is None for f in before["feeds"])
    cli(config, "run", "--once", "--no-tag")

    status = json.loads(cli(config, "status", "--json").stdout)
    assert status["articles"] == 37 and len(status["feeds"]) == 4
    for feed in status["feeds"]:
        assert {"name", "url", "last_status", "last_error", "articles", "next_poll"} <= feed.keys()
        assert feed["last_status"] == 200 and feed["last_error"] is None and feed["next_poll"].startswith("20")
    assert sum(f["articles"] for f in status["feeds"]) == 38  # per feed: the shared item counts in both


def test_status_table_shows_feed_health(tmp_path):
    config, _ = config_with(tmp_path, '[[feeds]]\nname = "Missing file"\nurl = "file:/nonexistent/feed.xml"\n')
    cli(config, "run", "--once", "--no-tag")
    table = cli(config, "status").stdout
    assert "Missing file" in table and "failing x1 since" in table and "no such file" in table


def test_status_shows_the_last_digest_and_the_next(tmp_path):
    body = '[digest]\nsend_at = "07:00"\ntimezone = "UTC"\n'
    config, _ = config_with(tmp_path, body)
    assert "last digest: none yet; next due" in cli(config, "status").stdout
    preview = tmp_path / "d.html"
    cli(config, "digest", "--preview", str(preview))
    shown = json.loads(cli(config, "status", "--json").stdout)
    assert shown["last_digest"] is None  # a preview is not a sent digest
    assert shown["next_digest"].endswith("T07:00:00+00:00")


OPML = """<?xml version="1.0"?>
<opml version="2.0"><head><title>Reader export</title></head><body>
<outline text="Tech"><outline type="rss" text="Example AI" xmlUrl="https://ai.example.org/feed.xml"/></outline>
<outline type="rss" text="Example cloud" xmlUrl="https://cloud.example.org/rss"/>
</body></opml>
"""


def test_opml_import_then_export_round_trips(tmp_path):
    config, _ = config_with(tmp_path, '[[feeds]]\nname = "Configured"\nurl = "https://config.example.org/rss"\n')
    (tmp_path / "in.opml").write_text(OPML)
    assert cli(config, "feeds", "import", str(tmp_path / "in.opml")).stdout.strip() == \
        f"imported 2 feeds from {tmp_path / 'in.opml'} (0 already present)"
    assert "(2 already present)" in cli(config, "feeds", "import", str(tmp_path / "in.opml")).stdout

    cli(config, "feeds", "export", str(tmp_path / "out.opml"))
    (tmp_path / "again.toml").write_text(config.read_text().replace("monitor.db", "again.db"))
    cli(tmp_path / "again.toml", "feeds", "import", str(tmp_path / "out.opml"))
    listed = cli(tmp_path / "again.toml", "feeds", "list").stdout
    assert listed.splitlines() == [
        "Configured\thttps://config.example.org/rss\tconfig\tactive",
        "Example AI\thttps://ai.example.org/feed.xml\topml\tactive",
        "Example cloud\thttps://cloud.example.org/rss\topml\tactive",
    ]


def test_broken_opml_is_one_line_naming_the_file(tmp_path):
    config, _ = config_with(tmp_path, "")
    (tmp_path / "broken.opml").write_text("<opml><body><outline xmlUrl='https://x.example/rss'>")
    done = cli(config, "feeds", "import", str(tmp_path / "broken.opml"), check=False)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith(f"error: {tmp_path / 'broken.opml'}: not valid XML")


def test_run_without_once_points_to_the_daemon(tmp_path):
    config, _ = config_with(tmp_path, "")
    done = cli(config, "run", check=False)
    assert done.returncode == 2 and "daemon" in done.stderr


# --- killed at random points ---------------------------------------------------------------

FEEDS, ITEMS, SHARED = 40, 50, 10  # the first SHARED items of every feed also appear in the next feed


def feed_documents() -> dict[str, bytes]:
    documents = {}
    for f in range(FEEDS):
        own = [FeedItem(f"Feed {f} item {i}", f"https://kill.example/{f}/{i}", f"Report {f}-{i}: " + "words " * 40 + str(i))
               for i in range(ITEMS)]
        neighbour = [FeedItem(f"Feed {(f - 1) % FEEDS} item {i}", f"https://kill.example/{(f - 1) % FEEDS}/{i}",
                              f"Report {(f - 1) % FEEDS}-{i}: " + "words " * 40 + str(i)) for i in range(SHARED)]
        documents[f"/feed/{f}.xml"] = rss_feed(own + neighbour, title=f"Feed {f}")
    return documents


@pytest.fixture
def feed_server():
    documents = feed_documents()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            time.sleep(0.25)  # latency, so a cycle takes seconds and kills land mid-cycle
            body = documents.get(self.path)
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "application/rss+xml")
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.slow
def test_sigkill_at_random_points_loses_nothing_and_duplicates_nothing(tmp_path, feed_server, store_url):
    feeds = "".join(f'[[feeds]]\nname = "Feed {f}"\nurl = "{feed_server}/feed/{f}.xml"\n' for f in range(FEEDS))
    config, db_url = config_with(tmp_path, "[fetch]\nconcurrency = 2\n" + feeds, db_url=store_url)
    rng = random.Random(20261124)
    command = [sys.executable, "-m", "monitor", "--config", str(config), "run", "--once", "--no-tag"]
    for _ in range(6):
        proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.5, 2.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    cli(config, "run", "--once", "--no-tag")

    a, af = schema.articles, schema.article_feeds
    assert query(db_url, select(func.count()).select_from(a))[0][0] == FEEDS * ITEMS  # every distinct item, once
    assert query(db_url, select(func.count(func.distinct(a.c.canonical_url))))[0][0] == FEEDS * ITEMS
    assert query(db_url, select(func.count()).select_from(af))[0][0] == FEEDS * (ITEMS + SHARED)
    status = json.loads(cli(config, "status", "--json").stdout)
    assert all(f["last_status"] == 200 and f["articles"] == ITEMS + SHARED for f in status["feeds"])


def test_feeds_enable_turns_a_gone_feed_back_on(tmp_path):
    config, db_url = config_with(tmp_path, '[[feeds]]\nname = "Gone"\nurl = "https://gone.example/rss"\n')
    cli(config, "feeds", "list")
    engine = open_store(db_url)
    with engine.begin() as conn:
        conn.execute(schema.feeds.update().values(active=False, last_status=410, last_error="HTTP 410 Gone"))
    engine.dispose()
    assert "inactive" in cli(config, "feeds", "list").stdout
    assert cli(config, "feeds", "enable", "Gone").stdout.startswith("enabled Gone")
    assert cli(config, "feeds", "list").stdout.rstrip().endswith("\tactive")
    missing = cli(config, "feeds", "enable", "Nope", check=False)
    assert missing.returncode == 2 and "no feed with URL or name 'Nope'" in missing.stderr
