"""The tension index: the formula on hand-made counts, and where it shows up (digest,
`index --json`, `export --format jsonl`, /trends)."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone

import pytest

from monitor import digest as dg
from monitor import tension
from tests.factories import SeedArticle, seed_articles
from tests.test_cli_digest import run  # noqa: F401  (fixture)

FRICTIONS = ["control", "commercialization", "talent", "legal", "cloud", "agi_safety", "competition", "regulation",
             "investors"]
DAY = date(2026, 6, 9)


def usual(days: int = 90) -> dict:
    """One legal story every day for the 90 days before DAY: legal's baseline is 1."""
    return {("legal", DAY - timedelta(days=k)): 1 for k in range(1, days + 1)}


def test_a_day_like_the_baseline_with_no_scenario_stories_is_50():
    counts = usual() | {("legal", DAY): 1}
    point = tension.index_day(counts, FRICTIONS, DAY)
    assert (point.value, point.friction, point.mix) == (50.0, 0.0, 0.0)


def test_excess_over_a_friction_points_own_baseline_raises_it():
    counts = usual() | {("legal", DAY): 1 + 3 * 2 ** 0.5}  # three "standard excesses" above a baseline of 1
    point = tension.index_day(counts, FRICTIONS, DAY)
    assert point.friction == pytest.approx(3 / 9, abs=0.01) and point.value == pytest.approx(50 + 10 * 3 / 9, abs=0.1)
    quiet = tension.index_day({("talent", DAY): 3}, FRICTIONS, DAY)  # no baseline: 3 stories are as big an excess
    assert quiet.friction == pytest.approx(3 / 9, abs=0.01)
    flood = tension.index_day(usual() | {("legal", DAY): 500}, FRICTIONS, DAY)
    assert flood.friction == pytest.approx(5 / 9, abs=0.01)  # one point's excess is clipped at 5


def test_the_scenario_mix_moves_it_both_ways_and_it_stays_within_0_and_100():
    strain = tension.index_day({("divergence", DAY): 3, ("acquisition", DAY - timedelta(days=2)): 1}, FRICTIONS, DAY)
    assert strain.mix == pytest.approx(4 / 5) and strain.value == pytest.approx(50 + 20 * 4 / 5, abs=0.1)
    alliance = tension.index_day({("uneasy_alliance", DAY): 4}, FRICTIONS, DAY)
    assert alliance.value == pytest.approx(50 - 20 * 4 / 5, abs=0.1)
    stale = tension.index_day({("divergence", DAY - timedelta(days=7)): 5}, FRICTIONS, DAY)
    assert stale.mix == 0.0  # older than the 7-day mix
    extreme = tension.index_day({(f, DAY): 100 for f in FRICTIONS} | {("divergence", DAY): 100}, FRICTIONS, DAY)
    assert extreme.value == 100.0


END = datetime(2026, 6, 10, 6, 0, tzinfo=timezone.utc)
MS, OA = ("Microsoft", "ORG", "microsoft"), ("OpenAI", "ORG", "openai")


@pytest.fixture
def strained(make_settings, store_url):
    from monitor.app import App

    app = App(make_settings(db_url=store_url))
    seed_articles(app.engine, [
        SeedArticle("OpenAI signs Oracle capacity deal beyond Azure", END - timedelta(hours=10), {"cloud": 0.9, "divergence": 0.7},
                    text="A compute agreement with Oracle.", entities=[OA], url="https://news.example.com/oracle"),
        SeedArticle("Microsoft ships in-house frontier model", END - timedelta(hours=12), {"competition": 0.8, "divergence": 0.6},
                    text="Its own model family.", entities=[MS], url="https://news.example.com/mai"),
        SeedArticle("Court schedules antitrust hearing", END - timedelta(hours=14), {"legal": 0.7},
                    text="A hearing on the partnership.", entities=[MS, OA], url="https://news.example.com/hearing"),
        SeedArticle("Talent moves between the labs", END - timedelta(hours=15), {"talent": 0.55},
                    text="Researchers left for rivals.", entities=[OA], url="https://news.example.com/talent"),
    ])
    yield app
    app.close()


def test_the_digest_has_a_tension_index_section_with_the_stories_that_moved_it(strained):
    digest = dg.build_digest(strained.engine, strained.settings, strained.taxonomy, END - timedelta(days=1), END)
    t = digest.tension
    assert t.today.day == date(2026, 6, 9) and len(t.series) == 14 and t.today.value > 60
    assert [s.title for s in t.movers][:2] == ["OpenAI signs Oracle capacity deal beyond Azure",
                                                "Microsoft ships in-house frontier model"]
    assert len(t.movers) == 3
    _subject, html, text = dg.render_digest(digest)
    assert '<section id="tension-index">' in html and "TENSION INDEX" in text
    assert f"{t.today.value:.0f} of 100 for Tue 9 Jun" in text
    assert html.count('href="https://news.example.com/oracle"') == 1  # movers point at the listed story


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_index_json_prints_the_series_and_export_carries_it_per_day(strained, run):
    config = str(strained.settings.source_path)
    code, out, _err = run("--config", config, "index", "--json", "--days", "30")
    series = json.loads(out)
    assert code == 0 and len(series) == 30 and set(series[0]) == {"date", "index", "friction", "mix"}
    assert series[-1]["date"] == datetime.now(timezone.utc).date().isoformat()
    code, out, _err = run("--config", config, "export", "--format", "jsonl")
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and len(rows) == 4
    by_day = {point.day: point.value for point in dg.tension_series_for(strained, date(2026, 6, 9), 1)}
    assert all(row["tension_index"] == by_day[date(2026, 6, 9)] for row in rows)


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_trends_page_charts_the_index(strained):
    from fastapi.testclient import TestClient

    from monitor.web.app import create_app

    with TestClient(create_app(strained), base_url="http://127.0.0.1") as client:
        page = client.get("/trends")
    assert page.status_code == 200 and 'id="tension-index"' in page.text and "<polyline points=" in page.text
    assert page.text.count('<svg class="chart"') == 26  # the label charts are still all there
