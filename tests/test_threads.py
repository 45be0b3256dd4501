"""Developing threads on hand-made cases: a three-day lawsuit is one thread; two unrelated
deals between the same companies on one day are two; echo is a follow-up, not a spike."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from monitor import digest as dg
from monitor import threads
from monitor.storage import threads as thread_store
from tests.factories import SeedArticle, seed_articles

END = datetime(2026, 6, 10, 6, 0, tzinfo=timezone.utc)
START = END - timedelta(days=1)
MS, OA, MUSK = ("Microsoft", "ORG", "microsoft"), ("OpenAI", "ORG", "openai"), ("Elon Musk", "PERSON", "elon_musk")

LAWSUIT = [  # (days before END, title, text): one development reported over three days
    (2.5, "Elon Musk sues OpenAI and Microsoft over for-profit conversion",
     "Elon Musk filed a lawsuit in federal court accusing OpenAI and Microsoft of abandoning the nonprofit "
     "mission behind the for-profit conversion."),
    (0.8, "Judge sets March hearing in Musk lawsuit against OpenAI",
     "A federal judge scheduled a hearing in Elon Musk's lawsuit against OpenAI and Microsoft over the "
     "for-profit conversion."),
    (0.6, "OpenAI asks court to dismiss Musk lawsuit",
     "OpenAI asked the federal court to dismiss Elon Musk's lawsuit, calling his claims about the for-profit "
     "conversion baseless. Microsoft joined the motion."),
    (0.4, "Microsoft says Musk lawsuit lacks merit",
     "Microsoft told the federal court that Elon Musk's lawsuit over the OpenAI for-profit conversion lacks merit."),
    (0.2, "What the Musk lawsuit means for OpenAI",
     "The federal lawsuit Elon Musk brought against OpenAI over its for-profit conversion could slow the "
     "restructuring Microsoft backs."),
]
DEALS = [  # same day, same two companies, one shared label: two different developments
    ("Microsoft and OpenAI sign Azure capacity agreement",
     "Microsoft will supply additional Azure data center capacity to OpenAI under a multiyear compute agreement.",
     {"cloud": 0.8, "uneasy_alliance": 0.6}),
    ("Microsoft and OpenAI agree to cut revenue share",
     "OpenAI will pay Microsoft a smaller share of its revenue under revised commercial terms.",
     {"commercialization": 0.8, "uneasy_alliance": 0.6}),
]
HISTORY = [  # distinct legal stories in the trailing days
    "Authors sue OpenAI over copyrighted books used for training",
    "New York Times copyright case against OpenAI moves to discovery",
    "EU fines Microsoft over Teams bundling",
    "Court rejects xAI trade secrets claim against former engineer",
    "FTC subpoenas Microsoft over Inflection hiring deal",
    "Japanese regulator reviews cloud licensing terms",
]


def story(cluster: int, days: float, title: str, text: str, labels=("legal",), entities=("openai", "microsoft", "elon_musk")):
    names = ["OpenAI", "Microsoft", "Elon Musk", "Musk"]
    return threads.ThreadStory(cluster, END - timedelta(days=days), frozenset(labels), frozenset(entities),
                               threads.content_words(title, text, names))


def test_a_three_day_lawsuit_is_one_thread_with_one_new_development():
    stories = [story(i + 1, days, title, text) for i, (days, title, text) in enumerate(LAWSUIT)]
    assigned = threads.assign(stories, [])
    assert {thread_id for _story, thread_id, _new in assigned} == {1}
    assert [is_new for _story, _thread, is_new in assigned] == [True, False, False, False, False]


def test_two_unrelated_deals_between_the_same_companies_on_one_day_are_two_threads():
    a, b = (story(10 + i, 0.3 - i / 10, title, text, labels, ("openai", "microsoft"))
            for i, (title, text, labels) in enumerate(DEALS))
    assert a.labels & b.labels and a.entities == b.entities  # what they share...
    assert threads.similarity(a, b) == 0.0  # ...is not the same development
    assigned = threads.assign([a, b], [])
    assert [(s.cluster, thread_id, is_new) for s, thread_id, is_new in assigned] == [(10, 10, True), (11, 11, True)]


def test_the_same_words_weeks_apart_start_a_new_thread():
    first = story(1, 30, *LAWSUIT[0][1:])
    again = story(2, 0.5, *LAWSUIT[1][1:])
    assigned = threads.assign([first, again], [])
    assert [is_new for _s, _t, is_new in assigned] == [True, True]


def seed_lawsuit_store(engine) -> dict[str, int]:
    items = [
        SeedArticle(title, START - timedelta(days=2 * i + 1, hours=5), {"legal": 0.8}, text=f"{title}. Filed on day {i}.",
                    entities=[MS, OA], url=f"https://news.example.com/history-{i}")
        for i, title in enumerate(HISTORY)
    ]
    items += [
        SeedArticle(title, END - timedelta(days=days), {"legal": 0.85}, text=text, entities=[MUSK, OA, MS],
                    url=f"https://news.example.com/musk-{i}", source=f"Outlet {i}")
        for i, (days, title, text) in enumerate(LAWSUIT)
    ]
    items += [
        SeedArticle(title, END - timedelta(hours=5 + i), labels, text=text, entities=[MS, OA],
                    url=f"https://news.example.com/deal-{i}")
        for i, (title, text, labels) in enumerate(DEALS)
    ]
    ids = seed_articles(engine, items)
    return dict(zip([item.url for item in items], ids))


@pytest.fixture
def lawsuit_app(make_settings, store_url):
    from monitor.app import App

    app = App(make_settings(db_url=store_url))
    ids = seed_lawsuit_store(app.engine)
    dg.scan_stories(app)
    yield app, ids
    app.close()


def test_echo_of_an_earlier_development_is_counted_as_follow_ups_and_does_not_spike(lawsuit_app):
    app, _ids = lawsuit_app
    digest = dg.build_digest(app.engine, app.settings, app.taxonomy, START, END)
    legal = next(m for m in digest.movements if m.label.id == "legal")
    assert (legal.count, legal.follow_ups, legal.spike) == (0, 4, False)
    # the four stories about the lawsuit would have been a spike had echo counted
    assert legal.follow_ups >= app.settings.digest.spike_min_stories and legal.follow_ups >= 2 * legal.expected
    alliance = next(m for m in digest.movements if m.label.id == "uneasy_alliance")
    assert (alliance.count, alliance.follow_ups) == (2, 0)  # the two deals: two new developments


def test_stories_are_marked_new_development_or_follow_up_with_the_threads_first_date(lawsuit_app):
    app, _ids = lawsuit_app
    digest = dg.build_digest(app.engine, app.settings, app.taxonomy, START, END)
    listed = {s.title: s for section in digest.sections for s in section.stories}
    hearing = listed["Judge sets March hearing in Musk lawsuit against OpenAI"]
    assert hearing.follow_up and hearing.thread.started == END - timedelta(days=2.5) and hearing.thread.size == 5
    deal = listed["Microsoft and OpenAI sign Azure capacity agreement"]
    assert not deal.follow_up and deal.thread.is_new
    _subject, html, text = dg.render_digest(digest)
    assert "follow-up of a thread since Sun 7 Jun (5 stories)" in text and "new development" in text
    assert "follow-up</b> since Sun 7 Jun" in html


def test_scanning_again_changes_nothing_and_the_timeline_lists_the_thread(lawsuit_app):
    app, ids = lawsuit_app
    assert thread_store.scan(app.engine) == 0
    timeline = thread_store.timeline(app.engine, ids["https://news.example.com/musk-2"])
    assert [entry.title for entry in timeline] == [title for _days, title, _text in LAWSUIT]
    assert [entry.is_new for entry in timeline] == [True, False, False, False, False]
    assert thread_store.timeline(app.engine, ids["https://news.example.com/deal-0"]) == []  # alone in its thread


def test_the_article_page_shows_its_threads_timeline(lawsuit_app):
    from fastapi.testclient import TestClient

    from monitor.web.app import create_app

    app, ids = lawsuit_app
    with TestClient(create_app(app), base_url="http://127.0.0.1") as client:
        page = client.get(f"/articles/{ids['https://news.example.com/musk-2']}")
        assert page.status_code == 200 and 'id="thread"' in page.text
        section = page.text[page.text.index('id="thread"'):]
        order = [section.index(title) for _days, title, _text in LAWSUIT]
        assert order == sorted(order) and section.count("follow-up") == 4
        assert f'href="/articles/{ids["https://news.example.com/musk-0"]}"' in page.text
        alone = client.get(f"/articles/{ids['https://news.example.com/deal-0']}")
        assert alone.status_code == 200 and 'id="thread"' not in alone.text
