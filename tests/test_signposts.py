"""Scenario signposts: matching (config/signposts.toml as shipped), storing hits, the board."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select

from monitor import digest as dg
from monitor.errors import ConfigError
from monitor.settings import load_settings
from monitor.signposts import match_article
from monitor.storage import schema
from monitor.storage import signposts as signpost_store
from tests.conftest import REPO
from tests.factories import SeedArticle, seed_articles

END = datetime(2026, 6, 10, 6, 0, tzinfo=timezone.utc)
MS, OA = ("Microsoft", "ORG", "microsoft"), ("OpenAI", "ORG", "openai")
ACQUISITION_PHRASINGS = [
    "Microsoft offers to buy OpenAI outright",
    "Microsoft is in talks to acquire OpenAI in a deal that would end the partnership as we know it",
    "Redmond weighs a full takeover of OpenAI, people familiar with the matter say",
]
STAKE_ONLY = ("Microsoft, which holds a 27% stake in OpenAI, reported higher cloud revenue. "
              "Microsoft's stake in OpenAI is now valued at $135 billion.")


@pytest.fixture(scope="module")
def shipped():
    return load_settings(REPO / "config" / "demo.toml", {}).signposts


def fired(signposts, title, text="", labels=("acquisition", "investors"), entities=("microsoft", "openai")):
    return {hit.signpost_id: hit.evidence for hit in match_article(signposts, title, text, set(labels), set(entities))}


@pytest.mark.parametrize("title", ACQUISITION_PHRASINGS)
def test_three_phrasings_of_a_buyout_fire_the_acquisition_signpost(shipped, title):
    hits = fired(shipped, title, "The board has not responded. Shares rose.")
    assert hits.get("buyout_offer") == title  # the sentence that fired it is the evidence


def test_a_story_only_mentioning_the_stake_fires_no_acquisition_signpost(shipped):
    hits = fired(shipped, "Microsoft beats estimates as Azure grows", STAKE_ONLY)
    assert not {"buyout_offer", "larger_stake"} & set(hits)


def test_a_denial_or_a_larger_stake(shipped):
    assert "buyout_offer" not in fired(shipped, "Nadella says Microsoft has no plans to buy OpenAI")
    hits = fired(shipped, "A filing shows the investment grew.", "Microsoft raised its stake in OpenAI to 49% on Monday.")
    assert hits == {"larger_stake": "Microsoft raised its stake in OpenAI to 49% on Monday."}


def test_labels_and_entities_gate_a_signpost(shipped):
    title = ACQUISITION_PHRASINGS[0]
    assert fired(shipped, title, labels=()) == {}  # not relevant: nothing fires
    assert "buyout_offer" not in fired(shipped, title, labels=("talent",))
    assert "buyout_offer" not in fired(shipped, title, entities=("microsoft",))


def test_other_scenarios_fire_on_their_signposts(shipped):
    every = ("cloud", "divergence", "new_ecosystem", "competition", "uneasy_alliance")
    ids = {"microsoft", "openai", "oracle"}
    assert {"non_azure_compute", "openai_other_hyperscaler"} <= set(
        fired(shipped, "OpenAI signs $30bn Oracle data center deal", labels=every, entities=ids))
    assert "microsoft_frontier_model" in fired(shipped, "Microsoft unveils its own in-house reasoning model", labels=every)
    assert "renegotiated_contract" in fired(shipped, "Microsoft and OpenAI sign a new definitive agreement", labels=every)
    assert "renegotiated_contract" not in fired(shipped, "Talks on a new contract collapsed on Friday", labels=every)


def test_stored_stories_fire_once_and_the_board_shows_them_first(make_settings, store_url):
    from monitor.app import App

    app = App(make_settings('[digest]\nrecipients = ["a@example.com"]\n', db_url=store_url))
    seed_articles(app.engine, [
        SeedArticle(title, END - timedelta(hours=3 + i), {"acquisition": 0.8}, entities=[MS, OA],
                    text="The offer values the company above its last round.", url=f"https://news.example.com/buy-{i}")
        for i, title in enumerate(ACQUISITION_PHRASINGS)
    ] + [
        SeedArticle("Microsoft beats estimates as Azure grows", END - timedelta(hours=2), {"investors": 0.7},
                    entities=[MS, OA], text=STAKE_ONLY, url="https://news.example.com/earnings"),
    ])
    assert dg.match_signposts(app) == 3
    assert dg.match_signposts(app) == 0  # incremental: nothing new, nothing added
    with app.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(schema.signpost_hits)).scalar_one() == 3
    digest = dg.build_digest(app.engine, app.settings, app.taxonomy, END - timedelta(days=1), END)
    first = digest.signposts[0]
    assert first.id == "buyout_offer" and first.in_window == 3
    assert first.last.title == ACQUISITION_PHRASINGS[0] and first.last.evidence == ACQUISITION_PHRASINGS[0]
    assert {s.id for s in digest.signposts if s.last} == {"buyout_offer"}
    _subject, html, text = dg.render_digest(digest)
    assert '<section id="signposts">' in html and "SCENARIO SIGNPOSTS" in text
    assert html.count("https://news.example.com/buy-0") == 1 and text.count("https://news.example.com/buy-0") == 1
    assert 'href="#story-' in html and "(listed under Acquisition)" in text
    later = dg.build_digest(app.engine, app.settings, app.taxonomy, END, END + timedelta(days=1))
    assert later.signposts[0].in_window == 0 and later.signposts[0].last.title == ACQUISITION_PHRASINGS[0]
    _subject, html, text = dg.render_digest(later)  # fired before this window: linked to the story itself
    assert 'href="https://news.example.com/buy-0"' in html and "https://news.example.com/buy-0" in text
    app.close()


def test_a_changed_signposts_file_rescans(make_settings, store_url, tmp_path):
    from monitor.app import App

    custom = tmp_path / "signposts.toml"
    custom.write_text('[[signposts]]\nid = "beyond_azure"\nscenario = "divergence"\nname = "Beyond Azure"\n'
                      'phrases = [\'beyond azure\']\n')
    app = App(make_settings(f'[digest]\nsignposts_path = "{custom}"\n', db_url=store_url))
    seed_articles(app.engine, [SeedArticle("OpenAI looks beyond Azure", END - timedelta(hours=1), {"cloud": 0.8})])
    assert dg.match_signposts(app) == 1
    app.settings.signposts[0].phrases = ["nothing like this"]
    assert dg.match_signposts(app) == 0
    with app.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(schema.signpost_hits)).scalar_one() == 0
    assert signpost_store.signature(app.settings.signposts) != ""
    app.close()


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ('[[signposts]]\nid = "x"\nscenario = "acquisition"\nname = "X"\nphrases = ["(unclosed"]\n',
         "signposts.0.phrases: not a valid regular expression '(unclosed'"),
        ('[[signposts]]\nid = "x"\nscenario = "merger"\nname = "X"\nphrases = ["a"]\n', "signposts.0.scenario:"),
        ('[[signposts]]\nid = "x"\nscenario = "acquisition"\nname = "X"\nphrases = []\n', "signposts.0.phrases:"),
    ],
)
def test_a_bad_signposts_file_is_one_line_naming_file_and_field(tmp_path, body, problem):
    path = tmp_path / "signposts.toml"
    path.write_text(body)
    config = tmp_path / "monitor.toml"
    config.write_text(f'root = "{REPO}"\n[digest]\nsignposts_path = "{path}"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(config, {})
    message = str(caught.value)
    assert message.startswith(f"{path}: {problem}") and "\n" not in message


def test_a_named_signposts_file_that_is_missing_is_an_error(tmp_path):
    config = tmp_path / "monitor.toml"
    config.write_text(f'root = "{REPO}"\n[digest]\nsignposts_path = "{tmp_path / "nope.toml"}"\n')
    with pytest.raises(ConfigError, match="signposts file not found"):
        load_settings(config, {})
    assert Path(REPO / "config" / "signposts.toml").exists()
