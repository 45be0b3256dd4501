"""store_feed_run on SQLite and PostgreSQL: real parsed feeds in, rows out."""

import dataclasses
import threading
from datetime import datetime, timedelta, timezone
from random import Random

import pytest
from sqlalchemy import func, select

from monitor.parse import parse_feed
from monitor.records import FetchResult
from monitor.settings import FeedSettings
from monitor.storage import schema
from monitor.storage.articles import RecentSignatures, store_feed_run
from monitor.storage.engine import open_store
from monitor.storage.feeds import due_feeds, feed_statuses, sync_config_feeds
from tests.factories import FeedItem, rss_feed

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)

WIRE = (
    "Microsoft and OpenAI have signed a revised partnership agreement that loosens the software "
    "company's hold on OpenAI's computing and commercial choices, the two companies said on Monday. "
    "Under the new terms Microsoft keeps a stake of roughly a quarter in the for-profit company and "
    "retains rights to its models until the early 2030s. OpenAI may buy computing capacity from other "
    "cloud providers, although it has committed to purchase a large block of additional Azure services. "
    "Any declaration that OpenAI has reached AGI will now be checked by an independent panel of experts."
)
REWRITE = (
    "(Wire) Microsoft and OpenAI have signed a revised partnership agreement that loosens the software "
    "company's hold on OpenAI's computing and commercial choices, the companies said on Monday. "
    "Under the new terms Microsoft keeps a stake of roughly a quarter in the for-profit company and "
    "retains rights to its models until the early 2030s. OpenAI may now buy computing capacity from other "
    "cloud providers, although it has committed to purchase a large block of additional Azure services. "
    "Any declaration that OpenAI has reached AGI will now be checked by an independent panel of experts. "
    "Neither company gave financial details."
)
UNRELATED = (
    "The Bank of England kept its main interest rate unchanged on Thursday, with the committee split "
    "six to three. Minutes showed most members expect inflation to fall back towards target in spring."
)


@pytest.fixture
def settings(make_settings, store_url):
    return make_settings(db_url=store_url)


def add_feeds(engine, *names):
    sync_config_feeds(engine, [FeedSettings(name=n, url=f"https://{n}.example/rss") for n in names], NOW)
    return {s.name: s.id for s in due_feeds(engine, NOW, HOUR, only_due=False)}


def ok(feed_id, body, **extra):
    return FetchResult(feed_id, "https://x.example/rss", "https://x.example/rss", 200, body=body, **extra)


def poll(engine, settings, feed_id, items, now=NOW, recent=None, **extra):
    result = ok(feed_id, rss_feed(items), **extra)
    parsed = parse_feed(result, now, 500)
    return store_feed_run(engine, feed_id, parsed, result, now, settings, recent)


def fail(engine, settings, feed_id, now, status=500, **extra):
    result = FetchResult(feed_id, "https://x.example/rss", "https://x.example/rss", status,
                         error=f"https://x.example/rss: HTTP {status}", **extra)
    return store_feed_run(engine, feed_id, None, result, now, settings, rng=Random(7))


def count(engine, table):
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def status_of(engine, name):
    return next(s for s in feed_statuses(engine) if s.name == name)


def test_same_item_in_two_feeds_is_stored_once_and_linked_to_both(engine, settings):
    feeds = add_feeds(engine, "wire", "markets")
    item = FeedItem("OpenAI signs compute deal with Oracle", "https://news.example/oracle?utm_source=rss", WIRE)
    first = poll(engine, settings, feeds["wire"], [item])
    second = poll(engine, settings, feeds["markets"], [dataclasses.replace(item, link="https://news.example/oracle", guid="m-1")])
    assert len(first.new_ids) == 1 and second.new_ids == [] and second.duplicates == 1
    assert count(engine, schema.articles) == 1
    with engine.connect() as conn:
        carried_by = conn.execute(select(schema.article_feeds.c.feed_id)).scalars().all()
    assert sorted(carried_by) == sorted(feeds.values())


def test_polling_again_stores_nothing_new(engine, settings):
    feed = add_feeds(engine, "wire")["wire"]
    items = [FeedItem(f"Story {n}", f"https://news.example/{n}", f"{WIRE} Story number {n}.") for n in range(5)]
    assert len(poll(engine, settings, feed, items).new_ids) == 5
    again = poll(engine, settings, feed, items + [FeedItem("Late story", "https://news.example/late", UNRELATED)], NOW + HOUR)
    assert len(again.new_ids) == 1 and again.duplicates == 5
    assert count(engine, schema.articles) == 6 and status_of(engine, "wire").last_new_items == 1


def test_syndicated_copy_is_kept_and_clustered_with_the_original(engine, settings):
    feeds = add_feeds(engine, "wire", "weekly")
    original = poll(engine, settings, feeds["wire"], [FeedItem("Microsoft and OpenAI sign revised pact", "https://wire.example/pact", WIRE)])
    copy = poll(engine, settings, feeds["weekly"], [
        FeedItem("OpenAI and Microsoft agree new terms", "https://weekly.example/terms", REWRITE),
        FeedItem("Bank holds rates", "https://weekly.example/rates", UNRELATED),
    ])
    assert copy.clustered == 1 and len(copy.new_ids) == 2
    with engine.connect() as conn:
        clusters = dict(conn.execute(select(schema.articles.c.url, schema.articles.c.cluster_id)).all())
    assert clusters["https://weekly.example/terms"] == clusters["https://wire.example/pact"] == original.new_ids[0]
    assert clusters["https://weekly.example/rates"] not in (original.new_ids[0], None)


def test_near_duplicates_in_one_document_cluster_too(engine, settings):
    feed = add_feeds(engine, "wire")["wire"]
    outcome = poll(engine, settings, feed, [
        FeedItem("Pact signed", "https://wire.example/a", WIRE), FeedItem("Pact, updated", "https://wire.example/b", REWRITE),
    ], recent=RecentSignatures())
    assert outcome.clustered == 1 and len(outcome.new_ids) == 2


def test_a_document_bigger_than_one_insert_stores_every_item_under_its_own_url(engine, settings):
    feed = add_feeds(engine, "busy")["busy"]
    items = [FeedItem(f"Story {n}", f"https://busy.example/{n}", f"{UNRELATED} Number {n} of the day.") for n in range(230)]
    outcome = poll(engine, settings, feed, items)
    assert len(outcome.new_ids) == 230 and outcome.clustered == 229  # near copies of the first, across inserts
    with engine.connect() as conn:
        rows = conn.execute(select(schema.articles.c.id, schema.articles.c.title, schema.articles.c.url,
                                   schema.articles.c.cluster_id)).all()
    assert {row.url: row.title for row in rows} == {item.link: item.title for item in items}
    assert sorted(row.id for row in rows) == sorted(outcome.new_ids) and count(engine, schema.article_feeds) == 230
    assert {row.cluster_id for row in rows} == {outcome.new_ids[0]}


def test_items_another_writer_stored_after_the_lookup_are_linked_not_duplicated(engine, settings, monkeypatch):
    from monitor.storage import articles as article_store

    feeds = add_feeds(engine, "first", "second")
    shared = FeedItem("Pact signed", "https://wire.example/pact", WIRE)
    stored = poll(engine, settings, feeds["first"], [shared]).new_ids
    # As if the first writer committed between the second's lookup and its insert.
    monkeypatch.setattr(article_store._KnownArticles, "load", classmethod(lambda cls, *args: cls({}, {}, {})))
    outcome = poll(engine, settings, feeds["second"], [FeedItem("Rates held", "https://wire.example/rates", UNRELATED), shared])
    assert outcome.duplicates == 1 and len(outcome.new_ids) == 1 and stored[0] not in outcome.new_ids
    assert count(engine, schema.articles) == 2
    with engine.connect() as conn:
        links = conn.execute(select(schema.article_feeds.c.feed_id).where(schema.article_feeds.c.article_id == stored[0]))
        assert sorted(links.scalars()) == sorted(feeds.values())


def test_failures_back_off_then_recovery_resets(engine, settings):
    feed = add_feeds(engine, "flaky")["flaky"]
    delays, now = [], NOW
    for _ in range(4):
        fail(engine, settings, feed, now)
        state = status_of(engine, "flaky")
        delays.append(state.next_poll_at - now)
        now = state.next_poll_at
    state = status_of(engine, "flaky")
    assert state.error_count == 4 and state.failing_since == NOW and "HTTP 500" in state.last_error
    assert delays == sorted(delays) and delays[-1] > 4 * delays[0]  # exponential, not linear
    assert due_feeds(engine, now - timedelta(seconds=1), HOUR) == []  # not polled before its backoff ends

    poll(engine, settings, feed, [FeedItem("Back online", "https://flaky.example/1", UNRELATED)], now)
    state = status_of(engine, "flaky")
    assert (state.error_count, state.failing_since, state.last_error, state.last_status) == (0, None, None, 200)
    assert state.next_poll_at == now + timedelta(minutes=settings.schedule.poll_minutes)


def test_retry_after_is_respected(engine, settings):
    feed = add_feeds(engine, "busy")["busy"]
    fail(engine, settings, feed, NOW, status=429, retry_after_seconds=3 * 3600)
    assert status_of(engine, "busy").next_poll_at >= NOW + timedelta(hours=3)


def test_410_deactivates_the_feed(engine, settings):
    feed = add_feeds(engine, "gone")["gone"]
    fail(engine, settings, feed, NOW, status=410, gone=True)
    state = status_of(engine, "gone")
    assert not state.active and "410" in state.last_error
    assert due_feeds(engine, NOW + timedelta(days=30), HOUR) == []


def test_permanent_redirect_becomes_the_fetch_url_after_it_repeats(engine, settings):
    feed = add_feeds(engine, "moved")["moved"]
    for hour in range(3):
        poll(engine, settings, feed, [], NOW + hour * HOUR, permanent_redirect="https://new.example/rss")
        source = due_feeds(engine, NOW, HOUR, only_due=False)[0]
        assert source.fetch_url == ("https://new.example/rss" if hour == 2 else "https://moved.example/rss")
    assert source.url == "https://moved.example/rss"  # identity unchanged


def test_304_keeps_validators_and_costs_nothing(engine, settings):
    feed = add_feeds(engine, "steady")["steady"]
    poll(engine, settings, feed, [FeedItem("One", "https://steady.example/1", WIRE)], etag='"v1"')
    not_modified = FetchResult(feed, "u", "u", 304, not_modified=True)
    outcome = store_feed_run(engine, feed, None, not_modified, NOW + HOUR, settings)
    assert outcome.new_ids == [] and outcome.error is None
    assert due_feeds(engine, NOW, HOUR, only_due=False)[0].etag == '"v1"'


def test_a_failing_write_leaves_neither_articles_nor_feed_state(engine, settings):
    feed = add_feeds(engine, "wire")["wire"]
    result = ok(feed, rss_feed([FeedItem("Good", "https://wire.example/good", WIRE)]), etag='"new"')
    parsed = parse_feed(result, NOW, 500)
    broken = dataclasses.replace(parsed.articles[0], guid="bad", canonical_url="https://wire.example/bad", content_hash="x",
                                 published_at=datetime(2026, 11, 1))  # naive: the store refuses it
    with pytest.raises(Exception):
        store_feed_run(engine, feed, dataclasses.replace(parsed, articles=[parsed.articles[0], broken]), result, NOW, settings)
    assert count(engine, schema.articles) == 0
    assert due_feeds(engine, NOW, HOUR)[0].etag is None  # the feed will be polled again in full


def test_a_copy_never_joins_a_story_whose_run_rolled_back(engine, settings, monkeypatch):
    from monitor.storage import feeds as feed_store

    feeds = add_feeds(engine, "wire", "weekly")
    recent = RecentSignatures()

    def lost_connection(*args):
        raise RuntimeError("connection lost")

    with monkeypatch.context() as patched:  # the articles are inserted, then the feed state fails
        patched.setattr(feed_store, "write_state", lost_connection)
        with pytest.raises(RuntimeError):
            poll(engine, settings, feeds["wire"], [FeedItem("Pact signed", "https://wire.example/pact", WIRE)], recent=recent)
    copy = poll(engine, settings, feeds["weekly"], [FeedItem("New terms agreed", "https://weekly.example/terms", REWRITE)],
                recent=recent)
    assert copy.clustered == 0 and count(engine, schema.articles) == 1
    with engine.connect() as conn:
        assert conn.execute(select(schema.articles.c.cluster_id)).scalar_one() == copy.new_ids[0]


def test_concurrent_writers_store_each_item_once(store_url, settings):
    engines = [open_store(store_url) for _ in range(2)]
    feeds = add_feeds(engines[0], "a", "b")
    items = [FeedItem(f"Shared {n}", f"https://shared.example/{n}", f"{WIRE} Item {n}.") for n in range(30)]
    start = threading.Barrier(2)

    def writer(engine, feed_id):
        start.wait()
        poll(engine, settings, feed_id, items)

    threads = [threading.Thread(target=writer, args=(e, f)) for e, f in zip(engines, feeds.values())]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert count(engines[0], schema.articles) == 30
    assert count(engines[0], schema.article_feeds) == 60
    for engine in engines:
        engine.dispose()


def test_after_the_minhash_upgrade_recent_stories_still_gather_their_copies(store_url, settings):
    from alembic import command
    from sqlalchemy import text

    from monitor.storage.articles import signature_for
    from monitor.storage.engine import _alembic_config, make_engine, migrate

    now = datetime.now(timezone.utc)  # the upgrade re-signs what the matcher reads: the last week
    engine = make_engine(store_url)
    try:
        command.upgrade(_alembic_config(engine), "0005")
        old_format = b"\x01" + bytes(512)  # datasketch's format 1, as an older release stored it
        with engine.begin() as conn:
            conn.execute(schema.articles.insert(), [
                {"url": url, "canonical_url": url, "content_hash": url, "title": "Pact signed", "text": WIRE,
                 "published_at": fetched, "fetched_at": fetched, "minhash": old_format}
                for url, fetched in (("https://wire.example/pact", now - HOUR), ("https://wire.example/old", now - 30 * 24 * HOUR))
            ])
            conn.execute(text("UPDATE articles SET cluster_id = id"))
        migrate(engine)
        with engine.connect() as conn:
            signatures = dict(conn.execute(select(schema.articles.c.url, schema.articles.c.minhash)).all())
        assert signatures == {"https://wire.example/pact": signature_for("Pact signed", WIRE),
                              "https://wire.example/old": old_format}  # nothing reads a month-old signature
        feed = add_feeds(engine, "weekly")["weekly"]
        copy = poll(engine, settings, feed, [FeedItem("New terms agreed", "https://weekly.example/terms", REWRITE)], now)
        assert copy.clustered == 1
    finally:
        engine.dispose()
