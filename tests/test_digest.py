"""The digest: window, content, rendering (golden files), and the daily schedule.

Golden files live in tests/golden/. After an intended change to the templates or the
content, regenerate them and review the diff:

    UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_digest.py -k golden

They are rendered from the seeded store below with a fixed clock, so nothing in them
is dynamic except the MIME boundary, which is normalised before comparing; the same
files must match on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import os
import re
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import delete, select, update

from monitor import digest as dg
from monitor import mailer
from monitor.errors import InputError
from monitor.storage import digests as store
from monitor.storage import schema
from tests.factories import SeedArticle, seed_articles
from tests.test_mailer import RECIPIENTS, Inbox, LoopbackController, make_app, smtp  # noqa: F401  (fixtures)

GOLDEN = Path(__file__).parent / "golden"
UTC = timezone.utc
END = datetime(2026, 6, 10, 6, 0, tzinfo=UTC)  # 07:00 in London (BST)
START = END - timedelta(days=1)


def at(hours_before_end: float) -> datetime:
    return END - timedelta(hours=hours_before_end)


MS, OA = ("Microsoft", "ORG", "microsoft"), ("OpenAI", "ORG", "openai")
FTC, ALTMAN = ("FTC", "ORG", "ftc"), ("Sam Altman", "PERSON", "sam_altman")
NADELLA, TUESDAY = ("Satya Nadella", "PERSON", "satya_nadella"), ("Tuesday", "DATE", None)


def seed_story_store(engine) -> dict[str, int]:
    """A small, fixed store: 14 days of history and one day's window worth a digest."""
    history = []
    for day in range(1, 16):  # control and cloud once a day, legal every other day; day 15 is before the 14
        when = START - timedelta(days=day, hours=-3)
        history.append(SeedArticle(f"Control history {day}", when, {"control": 0.7}, entities=[MS, OA]))
        history.append(SeedArticle(f"Cloud history {day}", when + timedelta(hours=1), {"cloud": 0.65}, entities=[MS]))
        if day % 2 == 0:
            history.append(SeedArticle(f"Legal history {day}", when + timedelta(hours=2), {"legal": 0.6}, entities=[FTC]))
    seed_articles(engine, history)
    window = [
        SeedArticle("FTC opens inquiry into Microsoft's OpenAI stake", at(20), {"legal": 0.93, "control": 0.71},
                    source="Reuters", feed="Wire", entities=[FTC, MS, OA, TUESDAY], url="https://news.example.com/ftc-inquiry"),
        SeedArticle("US regulator probes Microsoft-OpenAI ties", at(19), {"legal": 0.88}, source="Bloomberg", feed="Markets",
                    entities=[FTC, MS], cluster_of=0, url="https://news.example.com/ftc-probe-bloomberg"),
        SeedArticle("FTC looks at Microsoft and OpenAI", at(18), {"legal": 0.81}, source="Financial Times", feed="Markets",
                    entities=[FTC], cluster_of=0, url="https://news.example.com/ftc-ft"),
        SeedArticle("Regulators & rivals: <b>why</b> the FTC is asking now", at(15), {"legal": 0.77}, source="The Verge",
                    feed="Tech", entities=[FTC, OA], url="https://news.example.com/regulators-rivals"),
        SeedArticle("Musk suit adds claims against Microsoft", at(12), {"legal": 0.84}, source="Reuters", feed="Wire",
                    entities=[MS, ALTMAN], url="https://news.example.com/musk-suit"),
        SeedArticle("EU antitrust office sends questionnaire on AI partnerships", at(6), {"legal": 0.69, "regulation": 0.62},
                    source="Politico Europe", feed="Policy", entities=[MS, OA], url="https://news.example.com/eu-questionnaire"),
        SeedArticle("OpenAI board weighs Microsoft's say over AGI clause", at(10), {"control": 0.9, "uneasy_alliance": 0.58},
                    source="The Information", feed="Tech", entities=[OA, MS, ALTMAN, NADELLA],
                    url="https://news.example.com/agi-clause"),
        SeedArticle("OpenAI signs Oracle capacity deal beyond Azure", START - timedelta(days=2), {"cloud": 0.86},
                    source="CNBC", feed="Markets", fetched_at=at(8), entities=[OA],
                    url="https://news.example.com/oracle-capacity"),
        SeedArticle("Analyst note: partnership still pays for both", at(4), {}, source="Barron's", feed="Markets",
                    entities=[MS, OA], url="https://news.example.com/analyst-note"),
        SeedArticle("Copilot price cut undercuts ChatGPT Enterprise", at(3), {"commercialization": 0.52}, source="CNBC",
                    feed="Markets", entities=[MS], url="https://news.example.com/copilot-price"),
        SeedArticle("Phone review: the best cameras of the year", at(9), {}, source="Gadget Weekly", feed="Tech"),
        SeedArticle("Chip stocks rally on earnings", at(7), {}, source="Markets Daily", feed="Markets"),
        SeedArticle("Tomorrow's story, fetched after the window", END + timedelta(hours=1), {"legal": 0.9},
                    source="Reuters", feed="Wire"),
    ]
    ids = seed_articles(engine, window)
    named = dict(zip([w.url or w.title for w in window], ids))
    with engine.begin() as conn:
        # An analyst added a label the model missed...
        note = named["https://news.example.com/analyst-note"]
        conn.execute(schema.article_labels.insert().values(article_id=note, label_id="investors", origin="analyst",
                                                           published_at=at(4)))
        conn.execute(update(schema.articles).where(schema.articles.c.id == note).values(relevant=True))
        # ...and removed one it got wrong: the article is no longer relevant anywhere.
        copilot = named["https://news.example.com/copilot-price"]
        conn.execute(delete(schema.article_labels).where(schema.article_labels.c.article_id == copilot))
        conn.execute(update(schema.articles).where(schema.articles.c.id == copilot).values(relevant=False))
        # One feed has been failing since yesterday.
        conn.execute(update(schema.feeds).where(schema.feeds.c.name == "Policy").values(
            failing_since=START - timedelta(hours=5), error_count=4, last_status=503, last_error="HTTP 503 Service Unavailable"))
    return named


@pytest.fixture
def seeded(make_settings, store_url):
    from monitor.app import App

    app = App(make_settings('[digest]\nrecipients = ["analyst@example.com"]\n', db_url=store_url))
    seed_story_store(app.engine)
    dg.match_signposts(app)  # threads: tests/test_threads.py (these stories share filler text)
    yield app
    app.close()


def build(app, start=START, end=END) -> dg.Digest:
    return dg.build_digest(app.engine, app.settings, app.taxonomy, start, end)


# --- content -------------------------------------------------------------------------


def test_headline_counts_relevant_stories_of_fetched(seeded):
    digest = build(seeded)
    # 12 fetched in the window; relevant: 9 articles (analyst-added note in, corrected copilot out)
    # forming 7 stories (three outlets carry the FTC inquiry).
    assert (digest.totals.fetched, digest.totals.relevant_articles, digest.totals.relevant_stories) == (12, 9, 7)
    assert not digest.empty


def test_what_moved_flags_spikes_against_the_trailing_average(seeded):
    moves = {m.label.id: m for m in build(seeded).movements}
    legal, control, cloud = moves["legal"], moves["control"], moves["cloud"]
    assert (legal.count, legal.daily_average, legal.spike) == (4, 0.5, True)  # 4 >= 2 x 0.5 and >= 3
    assert (control.count, control.daily_average, control.spike) == (2, 1.0, False)  # doubled, but under 3 stories
    assert (cloud.count, cloud.spike) == (1, False)
    assert [m.label.id for m in build(seeded).movements][:2] == ["control", "commercialization"]
    assert moves["commercialization"].count == 0  # the analyst removed its only story


def test_a_story_carried_by_several_outlets_appears_once_with_also_in(seeded):
    legal = next(s for s in build(seeded).sections if s.label.id == "legal")
    titles = [story.title for story in legal.stories]
    assert titles.count("FTC opens inquiry into Microsoft's OpenAI stake") == 1
    assert "US regulator probes Microsoft-OpenAI ties" not in titles
    lead = legal.stories[0]
    assert lead.title == "FTC opens inquiry into Microsoft's OpenAI stake" and lead.score == pytest.approx(0.93)
    assert lead.also_in == ["Bloomberg", "Financial Times"]
    assert lead.entities == ["FTC", "Microsoft", "OpenAI"]  # values such as dates are not entities to show
    assert legal.story_count == 4


def test_sections_follow_the_taxonomy_friction_points_then_scenarios(seeded):
    digest = build(seeded)
    order = [s.label.id for s in digest.sections]
    # the EU questionnaire (legal 0.69 > regulation 0.62) and the AGI clause story (control 0.9 >
    # uneasy alliance 0.58) are filed under their strongest label only
    assert order == ["control", "legal", "cloud", "investors"]
    investors = next(s for s in digest.sections if s.label.id == "investors")
    assert investors.stories[0].analyst and investors.stories[0].title.startswith("Analyst note")


def test_each_story_once_under_its_strongest_label_with_its_labels_as_chips(seeded):
    digest = build(seeded)
    listed = [story for section in digest.sections for story in section.stories]
    assert len(listed) == len({story.url for story in listed}) == digest.totals.relevant_stories
    eu = next(story for story in listed if story.title.startswith("EU antitrust office"))
    assert [label.id for label in eu.labels] == ["legal", "regulation"]
    ftc = next(story for story in listed if story.title.startswith("FTC opens inquiry"))
    assert [label.id for label in ftc.labels] == ["legal", "control"] and ftc.outlets == 3
    subject, html, text = dg.render_digest(digest)
    for story in listed:  # one link per story in each part
        assert html.count(f'href="{story.url}"') == 1 and text.count(story.url) == 1, story.url
    # HTML: listed under Legal challenges, its other label as a chip; text: every label
    eu_row = html[html.index('href="https://news.example.com/eu-questionnaire"'):]
    eu_row = eu_row[:eu_row.index("</td>")]
    assert re.search(r'<span class="chip-fp"[^>]*>Regulation</span>', eu_row) and ">Legal challenges</span>" not in eu_row
    assert "[Legal challenges] [Regulation]" in text


def test_sections_rank_by_significance_outlets_and_novelty(seeded):
    legal = next(s for s in build(seeded).sections if s.label.id == "legal")
    # the FTC inquiry: 0.93 + 2 more outlets; Musk suit 0.84; the Verge piece 0.77; EU 0.69
    assert [story.title[:12] for story in legal.stories] == ["FTC opens in", "Musk suit ad", "Regulators &", "EU antitrust"]
    cloud = next(s for s in build(seeded).sections if s.label.id == "cloud")
    oracle = cloud.stories[0]
    assert not oracle.novel and oracle.significance == pytest.approx(0.86)  # published two days before the window
    assert dg.content.significance(0.6, outlets=3, novel=True) == pytest.approx(0.6 + 0.3 + 0.2)


def test_stories_under_the_minimum_score_are_counted_not_listed(make_settings, store_url):
    from monitor.app import App

    app = App(make_settings(db_url=store_url))
    seed_articles(app.engine, [
        SeedArticle("Strong legal story", at(2), {"legal": 0.8}, url="https://news.example.com/strong"),
        SeedArticle("Weak legal story", at(3), {"legal": 0.41}, url="https://news.example.com/weak"),
    ])
    digest = build(app)
    legal = next(s for s in digest.sections if s.label.id == "legal")
    assert [story.title for story in legal.stories] == ["Strong legal story"] and legal.below_min == 1
    _subject, html, text = dg.render_digest(digest)
    assert "news.example.com/weak" not in html and "news.example.com/weak" not in text
    assert "1 weaker story (score under 0.50) not listed" in html and "1 weaker story (score under 0.50) not listed" in text
    app.close()


def test_window_is_over_fetched_at(seeded):
    stories = {story.title for section in build(seeded).sections for story in section.stories}
    assert "OpenAI signs Oracle capacity deal beyond Azure" in stories  # published two days earlier
    assert "Tomorrow's story, fetched after the window" not in stories


def test_top_entities_with_change_against_trailing_average(seeded):
    entities = {e.name: e for e in build(seeded).entities}
    assert entities["Microsoft"].count == 6 and entities["Microsoft"].expected == pytest.approx(2.0)
    assert entities["FTC"].count == 4 and entities["FTC"].expected == pytest.approx(0.5)
    assert entities["Sam Altman"].expected == 0
    assert "Tuesday" not in entities
    assert [e.name for e in build(seeded).entities][0] == "Microsoft"


def test_trend_counts_stories_by_published_day(seeded):
    trends = {t.label.id: t for t in build(seeded).trends}
    assert set(trends) == {label.id for label in seeded.taxonomy.friction_points}
    control = trends["control"]
    assert len(control.days) == 14 and control.days[-1] == date(2026, 6, 10)
    assert control.counts[-1] == 0 and control.counts[-2] == 2  # both of the window's stories were published on 9 June
    cloud = trends["cloud"]
    assert cloud.counts[control.days.index(date(2026, 6, 7))] == 2  # the Oracle deal, counted on its published day


def test_feed_health_and_model_version(seeded):
    digest = build(seeded)
    assert [f.name for f in digest.failing_feeds] == ["Policy"] and digest.active_feeds == 5
    assert digest.model_versions == ["test-model"]


def test_without_a_day_of_history_nothing_spikes(make_settings, store_url):
    from monitor.app import App

    app = App(make_settings(db_url=store_url))
    seed_articles(app.engine, [SeedArticle(f"Fresh install {i}", at(i + 1), {"legal": 0.8}) for i in range(5)])
    digest = build(app)
    legal = next(m for m in digest.movements if m.label.id == "legal")
    assert (legal.count, legal.daily_average, legal.spike) == (5, None, False)
    app.close()


# --- rendering -----------------------------------------------------------------------


def test_rendered_sections_in_order_with_links_and_escaping(seeded):
    subject, html, text = dg.render_digest(build(seeded))
    assert subject == "Tension Monitor: 7 stories, spiking: Legal challenges (Wed 10 Jun 2026)"
    headings = ["What moved", "Friction points", "Control over AI development", "Legal challenges", "Cloud and compute",
                "Investors and valuation", "Most mentioned"]
    for part in (html, text):
        position = 0
        for heading in headings:  # each found after the one before (the what-moved table names every label first)
            position = _find(part, heading, position)
    assert "14-DAY TREND" in text and "14 days to Wed 10 Jun" in html  # HTML: a trend column in What moved
    assert 'href="https://news.example.com/ftc-inquiry"' in html
    assert "Regulators &amp; rivals: &lt;b&gt;why&lt;/b&gt; the FTC is asking now" in html and "<b>why</b>" not in html
    assert "Regulators & rivals: <b>why</b> the FTC is asking now" in text
    assert "<style" not in html and 'style="' in html  # CSS inlined
    assert "<script" not in html and "<img" not in html


def test_a_non_http_link_is_not_linked(make_settings, store_url):
    from monitor.app import App

    app = App(make_settings(db_url=store_url))
    seed_articles(app.engine, [SeedArticle("Sneaky", at(2), {"legal": 0.8}, url="javascript:alert(1)")])
    _subject, html, _text = dg.render_digest(build(app))
    assert "javascript:" not in html and "Sneaky" in html
    app.close()


def test_empty_window_is_a_short_nothing_moved_digest(make_settings, store_url):
    from monitor.app import App

    app = App(make_settings(db_url=store_url))
    seed_articles(app.engine, [SeedArticle("Off topic", at(2), {})])
    digest = build(app)
    subject, html, text = dg.render_digest(digest)
    assert digest.empty and subject == "Tension Monitor: nothing moved (Wed 10 Jun 2026)"
    assert "Nothing moved" in html and "NOTHING MOVED" in text and "1 article fetched" in text
    assert "What moved" not in html and "1 feed, all healthy" in text
    app.close()


def _find(haystack: str, heading: str, start: int) -> int:
    for variant in (heading, heading.upper()):
        found = haystack.find(variant, start)
        if found >= 0:
            return found + len(variant)
    raise AssertionError(f"{heading!r} not found after position {start}")


def _normalise_eml(raw: str) -> str:
    boundaries = dict.fromkeys(re.findall(r'boundary="([^"]+)"', raw))
    for index, boundary in enumerate(boundaries):
        raw = raw.replace(boundary, f"BOUNDARY-{index}")
    return raw.replace("\r\n", "\n")


def _golden(name: str, actual: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(actual, encoding="utf-8")
    assert path.exists(), f"{path} missing: run with UPDATE_GOLDEN=1"
    expected = path.read_text(encoding="utf-8")
    assert actual == expected, f"{name} differs from the golden file (UPDATE_GOLDEN=1 to regenerate, then review the diff)"


def test_golden_text_and_html(seeded):
    subject, html, text = dg.render_digest(build(seeded))
    _golden("digest.txt", f"Subject: {subject}\n\n{text}")
    _golden("digest.html", html)


def test_golden_empty_digest(make_settings, store_url):
    from monitor.app import App

    app = App(make_settings(db_url=store_url))
    _subject, _html, text = dg.render_digest(build(app))
    _golden("digest_empty.txt", text)
    app.close()


def test_golden_message_headers_and_structure(seeded):
    rendered = dg.render(build(seeded))
    msg = mailer.build_message(rendered, seeded.settings, END + timedelta(minutes=1))
    head, body = _normalise_eml(msg.as_string()).split("\n\n", 1)
    structure = [line for line in body.splitlines() if line.startswith(("--BOUNDARY", "Content-"))]
    _golden("digest_headers.txt", head + "\n\n" + "\n".join(structure) + "\n")


# --- window --------------------------------------------------------------------------


def test_window_defaults_to_the_last_day_then_follows_the_last_sent(seeded):
    assert dg.digest_window(seeded.engine, END) == (END - timedelta(hours=24), END)
    with seeded.engine.begin() as conn:
        store.ensure_row(conn, window_start=START - timedelta(days=1), window_end=START - timedelta(hours=3),
                         message_id="<x@y>", now=START)
        assert store.last_sent_window_end(conn) is None  # pending is not covered
        conn.execute(update(schema.digests).values(status="sent"))
    assert dg.digest_window(seeded.engine, END) == (START - timedelta(hours=3), END)
    assert dg.digest_window(seeded.engine, END, since=START + timedelta(hours=1)) == (START + timedelta(hours=1), END)
    assert dg.digest_window(seeded.engine, END, until=START) == (START - timedelta(hours=3), START)
    with pytest.raises(InputError, match="not before"):
        dg.digest_window(seeded.engine, END, since=END, until=END)
    with pytest.raises(InputError, match="in the future"):
        dg.digest_window(seeded.engine, END, until=END + timedelta(hours=1))


# --- schedule ------------------------------------------------------------------------


def ticks(first: datetime, last: datetime, step=timedelta(minutes=10)):
    moment = first
    while moment <= last:
        yield moment
        moment += step


def run_ticks(app, first, last, step=timedelta(minutes=10)) -> list[datetime]:
    """The daemon's ticks from first to last; the moments at which a digest was sent."""
    sent = []
    for now in ticks(first, last, step):
        outcome = dg.send_due_digest(app, now)
        if outcome is not None and outcome.status == "sent":
            sent.append(now)
    return sent


def sent_windows(app) -> list[tuple[datetime, datetime]]:
    with app.engine.connect() as conn:
        rows = conn.execute(select(schema.digests.c.window_start, schema.digests.c.window_end)
                            .where(schema.digests.c.status == "sent").order_by(schema.digests.c.window_end))
        return [tuple(row) for row in rows]


def test_daemon_restarted_across_send_at_sends_once(smtp, make_app):
    app = make_app(smtp.port)  # send_at 07:00 Europe/London = 06:00 UTC in June
    seed_articles(app.engine, [SeedArticle("Overnight story", END - timedelta(hours=5), {"control": 0.8})])
    assert run_ticks(app, END - timedelta(hours=1), END - timedelta(minutes=20)) == []  # up, before send_at
    app.close()  # down from 05:40 to 08:30 UTC: send_at passes while it is down
    app = make_app(smtp.port)
    back = END + timedelta(hours=2, minutes=30)
    assert run_ticks(app, back, END + timedelta(hours=3)) == [back]
    app.close()  # and a restart after that sends nothing more that day
    app = make_app(smtp.port)
    assert run_ticks(app, END + timedelta(hours=3, minutes=5), END + timedelta(hours=20)) == []
    assert len(smtp.envelopes) == 1
    assert sent_windows(app) == [(END - timedelta(days=1), END)]  # the window ends at send_at, not at the late tick
    assert "Overnight story" in smtp.messages[0].get_body(("plain",)).get_content()
    # The next day: the window starts where the last one ended.
    assert run_ticks(app, END + timedelta(hours=23, minutes=50), END + timedelta(days=1, minutes=10)) == [END + timedelta(days=1)]
    assert sent_windows(app)[-1] == (END, END + timedelta(days=1))


def test_down_past_the_grace_period_skips_the_day_and_loses_nothing(smtp, make_app):
    app = make_app(smtp.port, digest={"grace_hours": 6})
    assert run_ticks(app, END, END) == [END]  # the first digest
    seed_articles(app.engine, [SeedArticle("Story during the outage", END + timedelta(hours=3), {"legal": 0.9})])
    day2 = END + timedelta(days=1)
    assert run_ticks(app, day2 + timedelta(hours=6, minutes=10), day2 + timedelta(hours=12)) == []  # back too late
    assert run_ticks(app, day2 + timedelta(days=1), day2 + timedelta(days=1)) == [day2 + timedelta(days=1)]
    assert sent_windows(app)[-1] == (END, day2 + timedelta(days=1))  # two days, nothing between
    assert "Story during the outage" in smtp.messages[-1].get_body(("plain",)).get_content()


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        # spring forward, Sunday 29 March 2026: 07:00 is GMT the day before, BST on the day and after
        ((date(2026, 3, 28), date(2026, 3, 30)), ["2026-03-28 07:00", "2026-03-29 06:00", "2026-03-30 06:00"]),
        # fall back, Sunday 25 October 2026: BST the day before, GMT on the day and after
        ((date(2026, 10, 24), date(2026, 10, 26)), ["2026-10-24 06:00", "2026-10-25 07:00", "2026-10-26 07:00"]),
    ],
    ids=["spring-forward", "fall-back"],
)
def test_send_at_across_dst_sends_once_a_day_at_the_right_utc_time(days, expected, smtp, make_app):
    app = make_app(smtp.port)  # send_at 07:00, Europe/London
    first = datetime.combine(days[0], time(0), tzinfo=UTC)
    last = datetime.combine(days[1], time(23, 50), tzinfo=UTC)
    sent = run_ticks(app, first, last)
    assert [f"{moment:%Y-%m-%d %H:%M}" for moment in sent] == expected
    assert len(smtp.envelopes) == 3


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("day", [date(2026, 3, 29), date(2026, 10, 25)], ids=["in-the-gap", "twice-in-the-fold"])
def test_send_at_inside_a_dst_change_still_sends_exactly_once(day, smtp, make_app):
    app = make_app(smtp.port, digest={"send_at": "01:30"})  # does not exist / happens twice in London
    sent = run_ticks(app, datetime.combine(day, time(0), tzinfo=UTC) - timedelta(hours=2),
                     datetime.combine(day, time(12), tzinfo=UTC), step=timedelta(minutes=5))
    assert len(sent) == 1


def test_next_send_time_across_dst(make_settings):
    settings = make_settings()
    spring = datetime(2026, 3, 28, 8, 0, tzinfo=UTC)
    assert dg.next_send_time(settings, spring) == datetime(2026, 3, 29, 6, 0, tzinfo=UTC)
    assert dg.next_send_time(settings, datetime(2026, 3, 29, 6, 0, tzinfo=UTC)) == datetime(2026, 3, 30, 6, 0, tzinfo=UTC)
    assert dg.next_send_time(settings, datetime(2026, 10, 25, 6, 30, tzinfo=UTC)) == datetime(2026, 10, 25, 7, 0, tzinfo=UTC)
    assert dg.last_send_time(settings, datetime(2026, 10, 25, 6, 30, tzinfo=UTC)) == datetime(2026, 10, 24, 6, 0, tzinfo=UTC)


def test_empty_window_sends_nothing_moved_by_default(smtp, make_app):
    app = make_app(smtp.port)
    assert run_ticks(app, END, END + timedelta(hours=1)) == [END]
    assert smtp.messages[0]["Subject"] == "Tension Monitor: nothing moved (Wed 10 Jun 2026)"


def test_empty_window_with_send_empty_false_sends_nothing_and_moves_on(smtp, make_app):
    app = make_app(smtp.port, digest={"send_empty": False})
    outcomes = [dg.send_due_digest(app, now) for now in ticks(END, END + timedelta(hours=2))]
    assert [o.status for o in outcomes if o] == ["skipped"] and smtp.envelopes == []
    with app.engine.connect() as conn:
        assert store.last_sent_window_end(conn) == END
    seed_articles(app.engine, [SeedArticle("Next day story", END + timedelta(hours=5), {"talent": 0.7})])
    assert run_ticks(app, END + timedelta(days=1), END + timedelta(days=1)) == [END + timedelta(days=1)]
    assert sent_windows(app) == [(END, END + timedelta(days=1))]


def test_a_failed_scheduled_send_is_retried_on_a_later_tick_once(smtp, make_app):
    app = make_app(smtp.port)
    smtp.mode = "refuse"
    assert run_ticks(app, END, END + timedelta(minutes=10)) == []  # 06:00 fails; 06:10 waits (retry pacing)
    with app.engine.connect() as conn:
        row = conn.execute(select(schema.digests)).one()
    assert row.status == "failed" and row.attempts == 3
    smtp.mode = "accept"
    sent = run_ticks(app, END + timedelta(minutes=20), END + timedelta(hours=3))
    assert sent == [END + timedelta(minutes=20)] and len(smtp.envelopes) == 1
    with app.engine.connect() as conn:
        rows = conn.execute(select(schema.digests)).all()
    assert len(rows) == 1 and rows[0].status == "sent" and rows[0].message_id == row.message_id


def test_a_misconfigured_daemon_records_why_and_does_not_retry_every_tick(smtp, make_app):
    app = make_app(smtp.port, digest={"recipients": []})
    outcomes = [dg.send_due_digest(app, now) for now in ticks(END, END + timedelta(minutes=10), step=timedelta(minutes=1))]
    assert outcomes == [None] * 11 and smtp.envelopes == []
    with app.engine.connect() as conn:
        row = conn.execute(select(schema.digests)).one()
    assert row.status == "failed" and row.attempts == 1 and row.last_error.startswith("digest.recipients is empty")
    assert store.latest_digest(app.engine).status == "failed"


def test_status_helpers_show_the_last_digest_and_the_next(smtp, make_app):
    app = make_app(smtp.port)
    assert store.last_sent_digest(app.engine) is None and store.latest_digest(app.engine) is None
    run_ticks(app, END, END)
    last = store.last_sent_digest(app.engine)
    assert (last.status, last.window_end, last.recipients, last.sent_at, last.attempts) == ("sent", END, RECIPIENTS, END, 1)
    assert last.subject == smtp.messages[0]["Subject"] and last.message_id == smtp.messages[0]["Message-ID"]
    html, text = store.digest_bodies(app.engine, last.id)
    assert "Nothing moved" in html and "NOTHING MOVED" in text
    assert dg.next_send_time(app.settings, END) == END + timedelta(days=1)


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_on_stored_real_feeds_every_story_link_appears_once_per_part(make_settings, store_url):
    from monitor.app import App
    from monitor.pipeline import run_cycle
    from tests.conftest import REAL_FEEDS

    files = [REAL_FEEDS / name for name in ("openai-rss2.xml", "theverge-atom.xml", "wired-rss2.xml", "hackernews-rss2.xml")]
    files += sorted((Path(__file__).parent.parent / "config" / "demo-feeds").glob("*.xml"))
    files = [path for path in files if path.exists()]
    feeds = "".join(f'[[feeds]]\nname = "{path.stem}"\nurl = "file://{path}"\n' for path in files)
    app = App(make_settings(feeds, db_url=store_url))
    run_cycle(app, END - timedelta(hours=1), only_due=False)
    digest = build(app)
    listed = [story for section in digest.sections for story in section.stories]
    assert len(listed) >= 5 and len({story.url for story in listed}) == len(listed)
    _subject, html, text = dg.render_digest(digest)
    for story in listed:
        assert html.count(f'href="{story.url.replace("&", "&amp;")}"') == 1, story.url
        assert text.count(story.url + "\n") == 1, story.url
    app.close()
