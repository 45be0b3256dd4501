from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
from sqlalchemy import update

from monitor.errors import InputError
from monitor.records import FetchResult
from monitor.settings import FeedSettings
from monitor.storage import schema
from monitor.storage.feeds import (
    add_feeds,
    due_feeds,
    feed_statuses,
    list_feeds,
    reactivate_feed,
    redirect_state,
    sync_config_feeds,
    totals,
)
from tests.factories import SeedArticle, seed_articles

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)


def feed(name, url, **options):
    return FeedSettings(name=name, url=url, **options)


def by_url(engine):
    return {f.url: f for f in feed_statuses(engine)}


def test_config_sync_adds_updates_and_deactivates_dropped_feeds(engine):
    sync_config_feeds(engine, [feed("A", "https://a.example/rss"), feed("B", "https://b.example/rss")], NOW)
    add_feeds(engine, [("From my reader", "https://opml.example/rss")], NOW)
    sync_config_feeds(engine, [feed("A renamed", "https://a.example/rss", full_text=True)], NOW)

    feeds = by_url(engine)
    assert feeds["https://a.example/rss"].name == "A renamed" and feeds["https://a.example/rss"].active
    assert not feeds["https://b.example/rss"].active  # dropped from config: kept, not polled
    assert feeds["https://opml.example/rss"].active and feeds["https://opml.example/rss"].origin == "opml"
    assert [s.name for s in due_feeds(engine, NOW, HOUR)] == ["A renamed", "From my reader"]
    assert due_feeds(engine, NOW, HOUR)[0].full_text

    sync_config_feeds(engine, [feed("B back", "https://b.example/rss")], NOW)
    assert by_url(engine)["https://b.example/rss"].active  # listed again: polled again


def test_a_gone_feed_stays_off_while_still_configured(engine):
    sync_config_feeds(engine, [feed("Gone", "https://gone.example/rss")], NOW)
    with engine.begin() as conn:
        conn.execute(update(schema.feeds).values(active=False, last_status=410))
    sync_config_feeds(engine, [feed("Gone", "https://gone.example/rss")], NOW)
    assert due_feeds(engine, NOW, HOUR, only_due=False) == []


def test_enabling_a_gone_feed_makes_it_due_and_keeps_it_on(engine):
    sync_config_feeds(engine, [feed("Gone", "https://gone.example/rss")], NOW)
    with engine.begin() as conn:
        conn.execute(update(schema.feeds).values(active=False, last_status=410, error_count=3,
                                                 last_error="HTTP 410", next_poll_at=NOW + HOUR))
    assert reactivate_feed(engine, "https://gone.example/rss") == "Gone"
    sync_config_feeds(engine, [feed("Gone", "https://gone.example/rss")], NOW)  # the next start
    assert [s.name for s in due_feeds(engine, NOW, HOUR)] == ["Gone"]
    state = by_url(engine)["https://gone.example/rss"]
    assert state.active and state.error_count == 0 and state.last_error is None
    with pytest.raises(InputError, match="no feed with URL or name 'Nope'"):
        reactivate_feed(engine, "Nope")


def test_due_feeds_follow_next_poll_time(engine):
    sync_config_feeds(engine, [feed("Soon", "https://soon.example/rss"), feed("Later", "https://later.example/rss")], NOW)
    assert len(due_feeds(engine, NOW, HOUR)) == 2  # never polled: due at once
    with engine.begin() as conn:
        conn.execute(update(schema.feeds).where(schema.feeds.c.name == "Soon").values(next_poll_at=NOW + timedelta(minutes=5)))
        conn.execute(update(schema.feeds).where(schema.feeds.c.name == "Later").values(next_poll_at=NOW + HOUR))
    assert due_feeds(engine, NOW, HOUR) == []
    assert [s.name for s in due_feeds(engine, NOW + timedelta(minutes=10), HOUR)] == ["Soon"]
    assert len(due_feeds(engine, NOW, HOUR, only_due=False)) == 2


def test_opml_import_skips_known_urls(engine):
    sync_config_feeds(engine, [feed("Configured", "https://a.example/rss")], NOW)
    added, skipped = add_feeds(engine, [("Dup", "https://a.example/rss"), ("New", "https://n.example/rss")], NOW)
    assert (added, skipped) == (1, 1)
    assert list_feeds(engine) == [
        ("Configured", "https://a.example/rss", "config", True),
        ("New", "https://n.example/rss", "opml", True),
    ]


def test_statuses_count_articles_per_feed_and_totals(engine):
    seed_articles(engine, [
        SeedArticle("One", NOW, feed="Wire"), SeedArticle("Two", NOW, feed="Wire"), SeedArticle("Three", NOW, feed="Blog"),
    ])
    counts = {s.name: s.articles for s in feed_statuses(engine)}
    assert counts == {"Wire": 2, "Blog": 1}
    summary = totals(engine)
    assert (summary["articles"], summary["feeds"], summary["last_digest"]) == (3, 2, None)


def result(redirect=None):
    return FetchResult(feed_id=1, requested_url="https://old.example/rss", final_url=redirect or "https://old.example/rss",
                       status=200, permanent_redirect=redirect)


@pytest.mark.parametrize(
    "row, redirect, expected",
    [
        # first sighting of a permanent redirect: remembered as a candidate, URL unchanged
        ((None, 0), "https://new.example/rss", {"redirect_target": "https://new.example/rss", "redirect_count": 1}),
        # seen again: counting up
        (("https://new.example/rss", 1), "https://new.example/rss", {"redirect_target": "https://new.example/rss", "redirect_count": 2}),
        # third time in a row: the new URL becomes the fetch URL
        (("https://new.example/rss", 2), "https://new.example/rss", {"fetch_url": "https://new.example/rss", "redirect_target": None, "redirect_count": 0}),
        # a different target starts over
        (("https://new.example/rss", 2), "https://other.example/rss", {"redirect_target": "https://other.example/rss", "redirect_count": 1}),
        # no redirect this time: forget the candidate
        (("https://new.example/rss", 2), None, {"redirect_target": None, "redirect_count": 0}),
    ],
)
def test_permanent_redirect_is_remembered_only_after_it_repeats(row, redirect, expected):
    feed_row = SimpleNamespace(fetch_url="https://old.example/rss", redirect_target=row[0], redirect_count=row[1])
    assert redirect_state(feed_row, result(redirect), remember_after=3) == expected


@pytest.mark.parametrize("seconds", [1e17, float("inf"), 10**30, -5.0])
def test_a_server_given_delay_is_clamped_to_the_backoff_cap_and_never_raises(seconds):
    import random

    from monitor.settings import FetchSettings
    from monitor.storage.feeds import failure_state

    fetch = FetchSettings(backoff_base_minutes=5, backoff_max_minutes=60)
    row = SimpleNamespace(error_count=0, failing_since=None)
    busy = FetchResult(feed_id=1, requested_url="https://busy.example/rss", final_url="https://busy.example/rss",
                       status=429, retry_after_seconds=seconds)
    values = failure_state(row, busy, "HTTP 429", NOW, fetch, random.Random(1))
    assert NOW < values["next_poll_at"] <= NOW + HOUR
    if seconds > 0:
        assert values["next_poll_at"] == NOW + HOUR
