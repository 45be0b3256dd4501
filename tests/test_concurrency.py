"""Several writers on one PostgreSQL store: a daemon and `run --once` at the same time
never crash and never store or tag anything twice (issue 10, item 6)."""

import random
import subprocess
import sys
import threading
from datetime import datetime, timezone

import pytest
from sqlalchemy import func, select
from werkzeug import Response

from monitor.storage import schema
from monitor.records import Entity, TagResult
from monitor.storage.engine import open_store
from monitor.storage.tags import Tagged, claim_untagged, save_tags_batch
from monitor.taxonomy import LABEL_IDS
from tests.conftest import REPO
from tests.factories import FeedItem, rss_feed
from tests.factories import SeedArticle, seed_articles
from tests.test_scheduler import Daemon, daemon_config

WORDS = ("microsoft openai azure exclusivity compute contract revenue share agi clause board investors "
         "regulators antitrust cloud capacity datacenter chips licensing talent nonprofit restructuring").split()
PUBLISHED = datetime(2026, 11, 20, tzinfo=timezone.utc)


def a_tagging(model_version: str = "m2") -> TagResult:
    scores = {label: 0.9 if label == LABEL_IDS[0] else 0.1 for label in LABEL_IDS}
    return TagResult(scores=scores, labels=[LABEL_IDS[0]], friction_points=[], scenarios=[],
                     entities=[Entity("OpenAI", "ORG", "openai")], evidence={},
                     thresholds={label: 0.5 for label in LABEL_IDS}, model_version=model_version)


def assert_tagged_once(conn, article_id: int) -> None:
    def rows(table) -> int:
        return conn.execute(select(func.count()).where(table.c.article_id == article_id)).scalar_one()

    assert rows(schema.article_scores) == len(LABEL_IDS)
    assert rows(schema.entities) == 1 and rows(schema.article_labels) == 1


class GrowingFeed:
    """A feed that publishes `per_poll` new stories every time it is fetched, and keeps
    the last 60 in the document, like a busy newsroom. Remembers every URL it served."""

    def __init__(self, name: str, per_poll: int = 20):
        self.name, self.per_poll = name, per_poll
        self.items: list[FeedItem] = []
        self.lock = threading.Lock()

    def __call__(self, request):
        with self.lock:
            for _ in range(self.per_poll):
                n = len(self.items)
                words = random.Random(f"{self.name}-{n}").choices(WORDS, k=60)
                self.items.append(FeedItem(f"{self.name} story {n}: {' '.join(words[:6])}",
                                           f"https://{self.name}.example/story/{n}", " ".join(words)))
            body = rss_feed(self.items[-60:], title=self.name)
        return Response(body, content_type="application/rss+xml")

    def served_urls(self) -> set[str]:
        with self.lock:
            return {item.link for item in self.items}


def test_daemon_and_run_once_on_postgres_never_crash_or_duplicate(tmp_path, httpserver, pg_url):
    feeds = [GrowingFeed(f"wire{i}") for i in range(3)]
    config_lines = ""
    for feed in feeds:
        httpserver.expect_request(f"/{feed.name}.xml").respond_with_handler(feed)
        config_lines += (f'[[feeds]]\nname = "{feed.name}"\nurl = "{httpserver.url_for(f"/{feed.name}.xml")}"\n'
                         "interval_minutes = 1\n")
    config = daemon_config(tmp_path, pg_url, config_lines)
    daemon = Daemon(config, tmp_path / "daemon.log")
    try:
        daemon.wait_for("tick:")  # the daemon has polled and is tagging on every tick from now on
        for attempt in range(10):
            once = subprocess.run([sys.executable, "-m", "monitor", "--config", str(config), "run", "--once", "--all"],
                                  cwd=REPO, capture_output=True, text=True, timeout=300)
            assert once.returncode == 0 and "Traceback" not in once.stderr, f"run {attempt}:\n{once.stderr}"
            assert "polled 3 feeds" in once.stdout, once.stdout
        assert daemon.stop() == 0, daemon.output()
    finally:
        if daemon.proc.poll() is None:
            daemon.proc.kill()
            daemon.proc.wait()
    assert "Traceback" not in daemon.output() and "IntegrityError" not in daemon.output(), daemon.output()

    # A last plain run tags whatever the daemon stored on its way out.
    final = subprocess.run([sys.executable, "-m", "monitor", "--config", str(config), "run", "--once"],
                           cwd=REPO, capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr
    engine = open_store(pg_url)
    try:
        with engine.connect() as conn:
            stored = list(conn.execute(select(schema.articles.c.url)).scalars())
            served = set().union(*(feed.served_urls() for feed in feeds))
            assert len(stored) == len(set(stored))
            assert set(stored) <= served  # nothing invented
            assert len(stored) >= 10 * 20  # every run stored its feeds' new stories
            untagged = conn.execute(select(func.count()).where(schema.articles.c.tagged_at.is_(None))).scalar_one()
            assert untagged == 0
            scores = schema.article_scores
            per_article = conn.execute(
                select(scores.c.article_id, func.count()).group_by(scores.c.article_id)).all()
            assert len(per_article) == len(stored) and {n for _, n in per_article} == {len(LABEL_IDS)}
            entities = schema.entities
            twice = conn.execute(
                select(entities.c.article_id, entities.c.text, entities.c.label)
                .group_by(entities.c.article_id, entities.c.text, entities.c.label).having(func.count() > 1)).all()
            assert twice == []  # two writers tagging one article did not both add its entities
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_saving_the_same_tagging_twice_replaces_it(backend, request):
    """Tagging writes are idempotent: a second save of one article (a retry after a crash,
    a second writer) replaces the first, it is never a duplicate-key error."""
    url = request.getfixturevalue("sqlite_url" if backend == "sqlite" else "pg_url")
    engine = open_store(url)
    try:
        [article_id] = seed_articles(engine, [SeedArticle("A story", PUBLISHED)])
        tag, published = a_tagging(), PUBLISHED
        for _ in range(2):
            with engine.begin() as conn:
                saved = save_tags_batch(conn, [Tagged(article_id, tag, published)])
        assert saved == {article_id: [LABEL_IDS[0]]}
        with engine.connect() as conn:
            assert_tagged_once(conn, article_id)
            row = conn.execute(select(schema.articles.c.model_version, schema.articles.c.relevant,
                                      schema.articles.c.tagged_at).where(schema.articles.c.id == article_id)).one()
            assert row.model_version == "m2" and row.relevant is True and row.tagged_at is not None
    finally:
        engine.dispose()


def test_two_writers_tagging_one_article_at_once_do_not_collide(pg_url):
    """The daemon-beside-run-once crash, made deterministic: a second transaction saves
    tags for an article the first has tagged but not committed yet. It waits for the
    first, then replaces its rows: no duplicate-key error, one set of rows."""
    engine = open_store(pg_url)
    try:
        [article_id] = seed_articles(engine, [SeedArticle("A story", PUBLISHED)])
        errors: list[BaseException] = []

        def second_writer():
            try:
                with engine.begin() as conn:
                    save_tags_batch(conn, [Tagged(article_id, a_tagging("second"), PUBLISHED)])
            except BaseException as exc:  # noqa: BLE001 - the test reports it
                errors.append(exc)

        with engine.begin() as conn:
            save_tags_batch(conn, [Tagged(article_id, a_tagging("first"), PUBLISHED)])
            other = threading.Thread(target=second_writer)
            other.start()
            other.join(1.0)
            assert other.is_alive()  # it waits on our row lock rather than racing us
        other.join(30)
        assert errors == []
        with engine.connect() as conn:
            assert_tagged_once(conn, article_id)
            version = conn.execute(select(schema.articles.c.model_version).where(schema.articles.c.id == article_id))
            assert version.scalar_one() == "second"
    finally:
        engine.dispose()


def test_claimed_untagged_articles_are_skipped_by_a_second_claimer(pg_url):
    """`run --once` beside the daemon shares the backlog: rows one process claimed for
    tagging are not handed to the other until its transaction ends."""
    engine = open_store(pg_url)
    try:
        ids = seed_articles(engine, [SeedArticle(f"Story {n}", PUBLISHED) for n in range(5)])
        with engine.begin() as conn:
            conn.execute(schema.articles.update().values(tagged_at=None))
        with engine.begin() as first, engine.begin() as second:
            mine = [row.id for row in claim_untagged(first, 3)]
            theirs = [row.id for row in claim_untagged(second, 10)]
            assert mine == ids[:3] and theirs == ids[3:]
        with engine.begin() as conn:  # the first claimer ended without tagging: all free again
            assert [row.id for row in claim_untagged(conn, 10)] == ids
    finally:
        engine.dispose()
