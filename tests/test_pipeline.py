"""run_cycle against real feeds served by a local HTTP server, storing into real SQLite."""

import logging
import threading
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select
from werkzeug import Response

from monitor.app import App
from monitor.pipeline import run_cycle
from monitor.storage import schema
from monitor.storage.feeds import due_feeds, feed_statuses
from tests.factories import FeedItem, rss_feed

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)
STORY = "OpenAI agreed to rent more computing capacity from Oracle, its latest deal outside Microsoft's Azure cloud."


def items(prefix, n=3):
    return [FeedItem(f"{prefix} story {i}", f"https://{prefix}.example/{i}", f"{STORY} Report {prefix}-{i}.") for i in range(n)]


@pytest.fixture
def make_app(make_settings):
    apps = []

    def make(feeds: dict[str, str], extra: str = "", options: dict[str, str] | None = None):
        body = extra + "".join(
            f'\n[[feeds]]\nname = "{name}"\nurl = "{url}"\n{(options or {}).get(name, "")}\n' for name, url in feeds.items()
        )
        apps.append(App(make_settings(body)))
        return apps[-1]

    yield make
    for app in apps:
        app.close()


def statuses(app):
    return {s.name: s for s in feed_statuses(app.engine)}


def stored(app):
    with app.engine.connect() as conn:
        return dict(conn.execute(select(schema.articles.c.url, schema.articles.c.text)).all())


def test_one_broken_feed_never_stops_the_others(httpserver, make_app, caplog):
    httpserver.expect_request("/good.xml").respond_with_data(rss_feed(items("good")), content_type="application/rss+xml")
    httpserver.expect_request("/error.xml").respond_with_data("oops", status=500)
    httpserver.expect_request("/page.html").respond_with_data("<html><body><p>Not a feed</p></body></html>", content_type="text/html")
    app = make_app({
        "Good": httpserver.url_for("/good.xml"),
        "Server error": httpserver.url_for("/error.xml"),
        "HTML page": httpserver.url_for("/page.html"),
        "Nobody home": "http://127.0.0.1:9/feed.xml",
    })
    with caplog.at_level(logging.INFO, logger="monitor.pipeline"):
        report = run_cycle(app, NOW, tag=False)

    assert (report.polled, report.new_articles, report.failures) == (4, 3, 3)
    health = statuses(app)
    assert health["Good"].error_count == 0 and health["Good"].articles == 3
    assert "500" in health["Server error"].last_error
    assert health["HTML page"].last_error and health["Nobody home"].last_error
    for name in health:  # one log line per feed poll
        assert sum(f"feed {name!r}" in r.getMessage() for r in caplog.records) == 1


def test_500s_then_recovery(httpserver, make_app):
    responses = iter([Response("down", status=500), Response("down", status=503)])
    httpserver.expect_request("/flaky.xml").respond_with_handler(
        lambda request: next(responses, None) or Response(rss_feed(items("flaky")), content_type="application/rss+xml")
    )
    app = make_app({"Flaky": httpserver.url_for("/flaky.xml")})
    now, delays = NOW, []
    for _ in range(2):
        run_cycle(app, now, tag=False)
        state = statuses(app)["Flaky"]
        delays.append(state.next_poll_at - now)
        assert run_cycle(app, now + timedelta(seconds=1), tag=False).polled == 0  # backing off: not due
        now = state.next_poll_at
    assert state.error_count == 2 and state.failing_since == NOW and delays[1] > delays[0]

    report = run_cycle(app, now, tag=False)
    state = statuses(app)["Flaky"]
    assert report.new_articles == 3
    assert (state.error_count, state.failing_since, state.last_error) == (0, None, None)


def test_unchanged_feed_costs_a_304_and_stores_nothing(httpserver, make_app):
    seen_validators = []

    def handler(request):
        seen_validators.append(request.headers.get("If-None-Match"))
        if request.headers.get("If-None-Match") == '"v1"':
            return Response(status=304)
        return Response(rss_feed(items("steady")), content_type="application/rss+xml", headers={"ETag": '"v1"'})

    httpserver.expect_request("/steady.xml").respond_with_handler(handler)
    app = make_app({"Steady": httpserver.url_for("/steady.xml")})
    assert run_cycle(app, NOW, tag=False).new_articles == 3
    assert run_cycle(app, NOW, tag=False).polled == 0  # nothing due yet
    warm = run_cycle(app, NOW + HOUR, only_due=False, tag=False)
    assert seen_validators == [None, '"v1"']
    assert (warm.polled, warm.new_articles, warm.failures, warm.polls[0].status) == (1, 0, 0, 304)


def test_stop_request_finishes_the_feed_in_hand_and_leaves_the_rest_due(httpserver, make_app):
    for name in ("a", "b", "c"):
        httpserver.expect_request(f"/{name}.xml").respond_with_data(rss_feed(items(name)), content_type="application/rss+xml")
    app = make_app({name: httpserver.url_for(f"/{name}.xml") for name in ("a", "b", "c")})
    stop = threading.Event()
    report = run_cycle(app, NOW, progress=lambda done, total, poll: stop.set(), stop_event=stop)

    assert report.stopped and report.polled == 1 and report.new_articles == 3 and report.tagged == 0
    assert len(due_feeds(app.engine, NOW, HOUR)) == 2  # the next cycle picks them up


ARTICLE_PAGE = """<html><head><title>Deal</title></head><body><nav>Home | World | Tech</nav>
<article><h1>OpenAI and Oracle sign compute deal</h1>
<p>OpenAI has agreed to rent several gigawatts of computing capacity from Oracle over five years, the latest
in a series of infrastructure contracts that the company has signed outside Microsoft's Azure cloud.</p>
<p>The capacity will come from new campuses in Texas and New Mexico. People familiar with the contract said
OpenAI would start drawing on the first halls in the second half of next year, and that the price was not
disclosed. Microsoft declined to comment on the contract beyond saying Azure remains the home of the API.</p>
</article><footer>Copyright</footer></body></html>"""


def test_full_text_feeds_store_the_page_text_and_fall_back_to_the_feed(httpserver, make_app, caplog):
    feed = [
        FeedItem("Deal", httpserver.url_for("/article/deal"), "Short teaser."),
        FeedItem("Missing", httpserver.url_for("/article/missing"), "Teaser of a page that is gone."),
    ]
    httpserver.expect_request("/full.xml").respond_with_data(rss_feed(feed), content_type="application/rss+xml")
    httpserver.expect_request("/article/deal").respond_with_data(ARTICLE_PAGE, content_type="text/html")
    httpserver.expect_request("/article/missing").respond_with_data("gone", status=404)
    app = make_app({"Full": httpserver.url_for("/full.xml")}, "[fetch]\nallow_private_addresses = true\n",
                   {"Full": "full_text = true"})
    with caplog.at_level(logging.WARNING, logger="monitor.pipeline"):
        run_cycle(app, NOW, tag=False)

    texts = stored(app)
    assert "several gigawatts" in texts[httpserver.url_for("/article/deal")]
    assert "Copyright" not in texts[httpserver.url_for("/article/deal")]
    assert texts[httpserver.url_for("/article/missing")] == "Teaser of a page that is gone."
    assert any("keeping the feed's text" in r.getMessage() for r in caplog.records)


def untagged(app):
    with app.engine.connect() as conn:
        return conn.execute(select(schema.articles.c.id).where(schema.articles.c.tagged_at.is_(None))).scalars().all()


def test_articles_stored_untagged_are_tagged_on_the_next_cycle(httpserver, make_app):
    httpserver.expect_request("/a.xml").respond_with_data(rss_feed(items("a", 4)), content_type="application/rss+xml")
    app = make_app({"A": httpserver.url_for("/a.xml")})
    run_cycle(app, NOW, tag=False)  # as if the process died right after storing
    assert len(untagged(app)) == 4

    report = run_cycle(app, NOW + timedelta(minutes=1))  # nothing due: only the tagging catches up
    assert (report.polled, report.tagged, report.tag_error) == (0, 4, None)
    assert untagged(app) == []


def test_without_a_model_articles_are_still_stored_and_the_reason_reported(httpserver, make_app, tmp_path):
    httpserver.expect_request("/a.xml").respond_with_data(rss_feed(items("a", 2)), content_type="application/rss+xml")
    app = make_app({"A": httpserver.url_for("/a.xml")},
                   f'[model]\nartefact_dir = "{tmp_path / "no-model"}"\nauto_train = false\n')
    report = run_cycle(app, NOW)
    assert report.new_articles == 2 and report.tagged == 0 and "tension-monitor train" in report.tag_error
    assert len(untagged(app)) == 2


WIRE = ("Microsoft and OpenAI have signed a revised partnership agreement that loosens the software company's "
        "hold on OpenAI's computing and commercial choices. Microsoft keeps a stake of roughly a quarter and "
        "retains rights to the models until the early 2030s; OpenAI may buy capacity from other clouds.")


def test_big_cycles_parse_in_worker_processes_with_the_same_results(httpserver, make_app, monkeypatch):
    monkeypatch.setattr("monitor.pipeline.PARALLEL_MIN_FEEDS", 2)
    httpserver.expect_request("/wire.xml").respond_with_data(
        rss_feed([FeedItem("Pact signed", "https://wire.example/pact", WIRE)] + items("wire")), content_type="application/rss+xml")
    httpserver.expect_request("/copy.xml").respond_with_data(
        rss_feed([FeedItem("New terms agreed", "https://copy.example/terms", "(Wire) " + WIRE + " No figures given.")]),
        content_type="application/rss+xml")
    httpserver.expect_request("/broken.xml").respond_with_data(b"<rss><channel><item><title>x", content_type="application/rss+xml")
    app = make_app({"Wire": httpserver.url_for("/wire.xml"), "Copy": httpserver.url_for("/copy.xml"),
                    "Broken": httpserver.url_for("/broken.xml")})
    report = run_cycle(app, NOW, tag=False)

    assert report.polled == 3 and report.new_articles >= 5
    with app.engine.connect() as conn:
        clusters = dict(conn.execute(select(schema.articles.c.canonical_url, schema.articles.c.cluster_id)).all())
    assert clusters["https://copy.example/terms"] == clusters["https://wire.example/pact"]


def test_every_real_feed_is_stored_or_fails_alone_and_a_second_poll_adds_nothing(httpserver, make_app):
    from tests.conftest import REAL_FEEDS

    files = sorted(p for p in REAL_FEEDS.iterdir() if p.suffix in (".xml", ".rss", ".atom", ".html"))
    for path in files:
        httpserver.expect_request(f"/{path.name}").respond_with_data(path.read_bytes(), content_type="application/xml")
    app = make_app({path.stem: httpserver.url_for(f"/{path.name}") for path in files})
    first = run_cycle(app, NOW, tag=False)
    count = len(stored(app))

    assert first.polled == len(files) and first.new_articles == count > 0
    health = statuses(app).values()
    assert all(state.last_poll_at and "\n" not in (state.last_error or "") for state in health)
    assert [state.name for state in health if state.last_error] == ["cloudflare-challenge-html"]  # an HTML page
    second = run_cycle(app, NOW + HOUR, only_due=False, tag=False)
    assert second.new_articles == 0 and len(stored(app)) == count
