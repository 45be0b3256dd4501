"""Tagging with the shipped model: clear texts, the TagResult shape, evidence, the artefact checks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from monitor.classify import ARTEFACT_NAME, CARD_NAME, load_classifier, tag_texts
from monitor.entities import load_pipeline
from monitor.errors import ModelError
from monitor.settings import NlpSettings
from monitor.taxonomy import LABEL_IDS, load_taxonomy

REPO = Path(__file__).resolve().parent.parent
ARTEFACTS = REPO / "models" / "artefacts"
ENCODER = REPO / "models" / "encoder"
SEED = REPO / "tests" / "fixtures" / "seed-article.txt"  # shared/seed-article.txt, the source analysis

TALENT = (
    "Microsoft hires OpenAI researchers as poaching war heats up",
    "Microsoft has hired three senior researchers from OpenAI to join its new superintelligence team "
    "under Mustafa Suleyman, offering pay packages worth tens of millions of dollars. The departures follow "
    "a string of exits from OpenAI's research staff, and recruiters say the competition for top AI talent "
    "has never been fiercer.",
)
CLOUD = (
    "OpenAI signs multibillion-dollar compute deal with Oracle",
    "OpenAI has agreed to buy data center capacity from Oracle as part of the Stargate project, loosening "
    "its dependence on Microsoft's Azure, which was once its exclusive cloud provider. The deal covers "
    "gigawatts of new capacity and hundreds of thousands of Nvidia GPUs.",
)
OFF_TOPIC = (
    "Local team wins the regional football cup",
    "The home side scored twice in the second half to win the regional cup final on Saturday, "
    "in front of a crowd of twelve thousand. The coach praised the defence.",
)


@pytest.fixture(scope="module")
def taxonomy():
    return load_taxonomy(REPO / "config" / "taxonomy.toml")


@pytest.fixture(scope="module")
def nlp():
    return load_pipeline(NlpSettings(max_chars=2000), REPO / "config" / "entities.toml")


@pytest.fixture(scope="module")
def nlp_full():
    """The default limits (20,000 characters): the seed analysis is longer than `nlp`'s cut."""
    return load_pipeline(NlpSettings(), REPO / "config" / "entities.toml")


@pytest.fixture(scope="module")
def classifier(taxonomy):
    return load_classifier(ARTEFACTS / ARTEFACT_NAME, ARTEFACTS / CARD_NAME, taxonomy, ENCODER, review_band=0.1)


def test_clear_texts_get_the_obvious_labels(nlp, classifier):
    talent, cloud, off_topic = tag_texts(nlp, classifier, [TALENT, CLOUD, OFF_TOPIC])
    assert "talent" in talent.labels
    assert "cloud" in cloud.labels and "new_ecosystem" in cloud.labels
    assert off_topic.labels == [] and not off_topic.relevant
    assert talent.relevant and cloud.relevant


def test_result_shape_scores_order_and_kinds(nlp, classifier, taxonomy):
    [result] = tag_texts(nlp, classifier, [CLOUD])
    data = result.to_json()
    assert {"relevant", "friction_points", "scenarios", "scores", "entities", "model_version"} <= set(data)
    assert set(data["scores"]) == set(LABEL_IDS)
    assert all(0.0 <= v <= 1.0 for v in data["scores"].values())
    assert result.labels == [label for label in taxonomy.ids if label in result.labels]
    kinds = {label.id: label.kind for label in taxonomy.labels}
    assert all(kinds[s["id"]] == "friction_point" for s in data["friction_points"])
    assert all(kinds[s["id"]] == "scenario" for s in data["scenarios"])
    assert [s["id"] for s in data["friction_points"] + data["scenarios"]] == [
        label for label in result.labels if kinds[label] == "friction_point"
    ] + [label for label in result.labels if kinds[label] == "scenario"]
    assert all(result.scores[label] >= result.thresholds[label] for label in result.labels)
    assert {"text": "OpenAI", "label": "ORG", "id": "openai"} in data["entities"]
    assert data["model_version"] == classifier.model_version
    json.dumps(data)  # plain JSON


def test_every_label_has_evidence_from_the_text(nlp, classifier):
    [result] = tag_texts(nlp, classifier, [CLOUD])
    body = " ".join(CLOUD)
    assert set(result.evidence) == set(result.labels)
    for passages in result.evidence.values():
        assert 1 <= len(passages) <= 3
        assert all(passage.rstrip("…")[:40] in body for passage in passages)


# A story about a funding round that develops the compute deal in one paragraph only.
PASSING_CLOUD = (
    "OpenAI raises $40bn at a $300bn valuation",
    "OpenAI has closed a $40bn funding round led by SoftBank, valuing the ChatGPT maker at $300bn, "
    "the largest private raise on record. Investors including Thrive Capital and Coatue joined, and "
    "the company said the money would fund research and its growing staff.\n\n"
    "The round lifts OpenAI's valuation far above its last tender offer, and early backers can sell "
    "some of their shares. The company expects revenue to triple this year.\n\n"
    "Much of the money will go to computing power. OpenAI will rent data-centre capacity from Oracle "
    "and CoreWeave instead of relying only on Microsoft's Azure cloud, and the Stargate sites in Texas "
    "will house hundreds of thousands of Nvidia GPUs.\n\n"
    "SoftBank can cut its commitment to $20bn if OpenAI has not completed its restructuring into a "
    "for-profit company by the end of the year, according to the filing.",
)


def test_passages_are_overlapping_windows_of_sentences():
    from monitor.classify import Sentence, passages

    sentences = [Sentence(text) for text in ("One.", "Two.", "Three.", "Four.")]
    windows = passages(sentences, 3)
    assert [p.text for p in windows] == ["One. Two. Three.", "Two. Three. Four."]
    assert [(p.start, p.end) for p in windows] == [(0, 3), (1, 4)]
    assert [p.text for p in passages(sentences[:2], 3)] == ["One. Two."]
    assert passages([], 3) == []


def test_each_list_item_is_a_passage_of_its_own(nlp):
    """A numbered or bulleted point is read alone, not inside a window with its
    neighbours; the prose around a list still reads in windows, and spaCy splitting "2."
    off a numbered line does not split the item."""
    from monitor.classify import doc_sentences, passages

    text = ("Sources describe three points of friction:\n"
            "  1. Control: Microsoft wants a say - a real one - in the roadmap.\n"
            "  2. Money: the partners disagree on pricing. Both want the same customers.\n"
            "  • People: the labs compete for researchers\n\n"
            "The talks go on. Neither side has walked away. A deal is expected.")
    sentences = doc_sentences(nlp(text))
    assert [s.text for s in sentences if s.item] == [
        "Control: Microsoft wants a say - a real one - in the roadmap.",
        "Money: the partners disagree on pricing. Both want the same customers.",
        "People: the labs compete for researchers",
    ]
    found = passages(sentences, 3)
    items = [p.text for p in found if p.item]
    assert len(items) == 3 and "Both want the same customers." in items[1]
    prose = [p.text for p in found if not p.item]
    assert prose[0] == "Sources describe three points of friction:"
    assert prose[1] == "The talks go on. Neither side has walked away. A deal is expected."


def test_a_one_line_list_item_carries_its_label(nlp, classifier):
    """A survey that gives a point one bullet among many: the bullet alone carries the
    label and is its evidence (inside a window of three bullets it was drowned)."""
    text = ("Analysts list the outcomes they see for the partnership:\n"
            "  • Status quo: the contract runs to 2030 with few changes\n"
            "  • Takeover: Microsoft makes an offer to buy all of OpenAI\n"
            "  • Separation: each company goes its own way")
    [result] = tag_texts(nlp, classifier, [("", text)])
    assert "acquisition" in result.labels
    assert result.evidence["acquisition"][0] == "Takeover: Microsoft makes an offer to buy all of OpenAI"


def test_a_label_developed_in_one_paragraph_is_found_there(nlp, classifier):
    [result] = tag_texts(nlp, classifier, [PASSING_CLOUD])
    assert "investors" in result.labels
    assert "cloud" in result.labels
    assert any("Oracle" in passage or "GPUs" in passage for passage in result.evidence["cloud"])


def test_the_best_passage_lifts_a_label_above_the_whole_text_score(nlp, classifier):
    """The same paragraph scores higher for cloud inside the long story than the story's
    own whole-text score does: the passage is what carries the label."""
    from monitor.classify import doc_sentences, score_texts

    title, body = PASSING_CLOUD
    text = f"{title}\n\n{body}"
    scores = score_texts(classifier, [text], [doc_sentences(nlp(text))])  # no list: words alone
    cloud = classifier.label_ids.index("cloud")
    assert scores.best_passage[0, cloud] > scores.doc[0, cloud]


def test_seed_analysis_labels_come_with_evidence_from_their_own_section(nlp_full, classifier):
    """The analysis the tension model comes from develops each point under its own
    heading or list item: nothing it names is dropped silently (a label is found, or it
    sits in the review band and flags the text), and each found label's best evidence
    comes from the part of the text that discusses it. The shipped model finds all 13; the
    one-line points sit near their thresholds, and the int8 encoder's last digits differ
    between CPUs, so one label in the review band is tolerated (models/README.md)."""
    seed = SEED.read_text(encoding="utf-8")
    [result] = tag_texts(nlp_full, classifier, [("", seed)])
    missed = set(classifier.label_ids) - set(result.labels)
    assert len(missed) <= 1 and missed <= set(result.review)
    flat = " ".join(seed.split())
    # Where each label's discussion starts and ends in the text.
    sections = {
        "control": ("Control over AI development", "Legal challenges"),
        # The "Commercialization pressures" item scores under the threshold alone; the
        # best line is the cloud section's bullet on competing for the same enterprise
        # contracts (selling to the same customers): models/README.md, "Where it falls short".
        "commercialization": ("Commercialization pressures", "The AGI Race"),
        "talent": ("Talent wars", "Legal challenges"),
        "legal": ("Legal challenges", "Cloud Computing:"),
        "cloud": ("Azure as the exclusive", "The AGI Race"),
        "agi_safety": ("The AGI Race", "Market Forces"),
        "competition": ("Competition: Google", "Regulation:"),
        "regulation": ("Regulation: Emerging", "Investor expectations"),
        "investors": ("Investor expectations", "The Road Ahead"),
        "uneasy_alliance": ("Market Forces", "Acquisition:"),
        "acquisition": ("Acquisition:", "Divergence:"),
        "divergence": ("OpenAI has begun developing", "New ecosystem:"),
        "new_ecosystem": ("New ecosystem:", "What This Means"),
    }
    for label, (start, end) in sections.items():
        if label in missed:
            continue
        assert result.evidence[label], f"no evidence passage for {label}"
        for passage in result.evidence[label]:
            assert passage.rstrip("…")[:60] in flat  # a run of the text itself, not a summary
        best = flat.index(result.evidence[label][0].rstrip("…")[:60])
        assert flat.index(start) <= best < flat.index(end), f"{label}: {result.evidence[label][0]!r}"


def test_a_short_line_is_not_evidence_for_a_label_it_does_not_support(nlp_full, classifier):
    """The issue's example: a bullet on model access quoted as regulation evidence."""
    [result] = tag_texts(nlp_full, classifier, [("", SEED.read_text(encoding="utf-8"))])
    quoted = [passage for passages in result.evidence.values() for passage in passages]
    assert not any("First access to groundbreaking AI models" in passage for passage in quoted)
    assert not any("Azure as the exclusive cloud provider" in p for p in result.evidence["new_ecosystem"])


def test_seed_analysis_entities_have_no_headings_or_fragments(nlp_full, classifier):
    [result] = tag_texts(nlp_full, classifier, [("", SEED.read_text(encoding="utf-8"))])
    texts = {e.text for e in result.entities}
    for junk in ("Genesis", "Key", "Financial", "Content", "Push", "Cloud Computing",
                 "The AGI Race and Existential Questions", "Artificial General Intelligence"):
        assert junk not in texts
    ids = {e.id for e in result.entities}
    assert {"microsoft", "openai", "azure", "chatgpt", "mai", "google", "gemini", "anthropic", "claude",
            "european_union", "united_states"} <= ids


def test_crlf_and_odd_spaces_give_the_same_reading(nlp, classifier):
    title, body = PASSING_CLOUD
    windows = body.replace("\n", "\r\n").replace(" ", "\u00a0", 3) + "\r\n"
    plain, pasted = tag_texts(nlp, classifier, [(title, body), (title, windows)])
    assert pasted.to_json() == plain.to_json()


def test_review_band_lists_labels_near_their_threshold_closest_first(classifier):
    from monitor.classify import review_band

    row = [classifier.thresholds[label] - 0.5 for label in classifier.label_ids]
    control, cloud = classifier.label_ids.index("control"), classifier.label_ids.index("cloud")
    row[control] = classifier.thresholds["control"] + 0.08  # just above: labelled, but close
    row[cloud] = classifier.thresholds["cloud"] - 0.02  # just below: not labelled, very close
    labels, uncertainty = review_band(classifier, row)
    assert labels == ["cloud", "control"]
    assert uncertainty == pytest.approx(0.8)
    far = [classifier.thresholds[label] + 0.4 for label in classifier.label_ids]
    assert review_band(classifier, far) == ([], 0.0)


def test_needs_review_reaches_the_result(nlp, classifier):
    results = tag_texts(nlp, classifier, [TALENT, CLOUD, OFF_TOPIC, PASSING_CLOUD])
    for result in results:
        near = [label for label, score in result.scores.items()
                if abs(score - result.thresholds[label]) <= classifier.review_band]
        assert sorted(result.review) == sorted(near)
        assert result.needs_review == bool(near)
        assert result.to_json()["needs_review"] == bool(near)


def test_long_text_is_cut_and_flagged(nlp, classifier):
    long_text = CLOUD[1] + " " + "The market was calm. " * 400
    short, cut = tag_texts(nlp, classifier, [CLOUD, (CLOUD[0], long_text)])
    assert not short.truncated and cut.truncated
    assert "cloud" in cut.labels


def test_empty_batch(nlp, classifier):
    assert tag_texts(nlp, classifier, []) == []


def _copy_artefacts(tmp_path: Path) -> tuple[Path, Path]:
    from monitor.classify import HEAD_NAME

    shutil.copy(ARTEFACTS / HEAD_NAME, tmp_path / HEAD_NAME)
    shutil.copy(ARTEFACTS / ARTEFACT_NAME, tmp_path / ARTEFACT_NAME)
    shutil.copy(ARTEFACTS / CARD_NAME, tmp_path / CARD_NAME)
    return tmp_path / ARTEFACT_NAME, tmp_path / CARD_NAME


@pytest.mark.parametrize("change, expected", [
    (lambda card: card["versions"].update({"scikit-learn": "0.24.2"}), "built with scikit-learn 0.24.2"),
    (lambda card: card["versions"].update({"skops": "0.1.0"}), "built with skops 0.1.0"),
    (lambda card: card.update({"feature_version": "old"}), "uses features 'old'"),
    (lambda card: card.update({"label_ids": card["label_ids"][::-1]}), "label ids differ"),
])
def test_version_mismatch_says_what_to_do(tmp_path, taxonomy, change, expected):
    artefact, card_path = _copy_artefacts(tmp_path)
    card = json.loads(card_path.read_text())
    change(card)
    card_path.write_text(json.dumps(card))
    with pytest.raises(ModelError) as error:
        load_classifier(artefact, card_path, taxonomy)
    assert expected in str(error.value)
    assert "run `tension-monitor train`" in str(error.value)


def test_a_model_refuses_an_encoder_it_was_not_trained_with(tmp_path, taxonomy):
    """The head's weights mean nothing on another encoder's vectors: a model trained on
    another encoder file, or on another lead length, is refused until it is retrained."""
    artefact, card_path = _copy_artefacts(tmp_path)
    card = json.loads(card_path.read_text())
    card["encoder"]["vectors"] = "0" * 64 + "/lead-180"  # what a model of another encoder records
    card_path.write_text(json.dumps(card))
    with pytest.raises(ModelError) as error:
        load_classifier(artefact, card_path, taxonomy, encoder_dir=ENCODER)
    message = str(error.value)
    assert f"{ENCODER / 'model.onnx'} is not the encoder this model was trained with" in message
    assert "the model card says 000000000000/lead-180" in message
    assert "run `tension-monitor train`" in message
    artefact, card_path = _copy_artefacts(tmp_path)  # the shipped card matches the shipped encoder
    assert load_classifier(artefact, card_path, taxonomy, encoder_dir=ENCODER).encoder is not None


def test_types_off_the_allowlist_are_refused(tmp_path, taxonomy):
    import os

    import skops.io as sio
    from sklearn.preprocessing import FunctionTransformer

    artefact, card_path = _copy_artefacts(tmp_path)
    sio.dump(FunctionTransformer(func=os.system), artefact)  # a file that would run commands
    with pytest.raises(ModelError, match="refusing to load types not on the allowlist"):
        load_classifier(artefact, card_path, taxonomy)


def test_a_corrupt_artefact_is_a_model_error(tmp_path, taxonomy):
    artefact, card_path = _copy_artefacts(tmp_path)
    artefact.write_bytes(b"not a zip file")
    with pytest.raises(ModelError, match="tension-monitor train"):
        load_classifier(artefact, card_path, taxonomy)


def test_numpy_form_scores_exactly_like_the_skops_pipeline(tmp_path):
    import numpy as np

    from monitor.classify import COMPILED_NAME, _load_skops, load_compiled, model_inputs

    texts = [" ".join(TALENT), " ".join(CLOUD), " ".join(OFF_TOPIC), "", "Café naïve façade — ﬁnance"]
    rows = model_inputs(texts)
    skops_pipeline = _load_skops(ARTEFACTS / ARTEFACT_NAME)
    fast = load_compiled(ARTEFACTS / ARTEFACT_NAME)
    assert fast is not None
    assert np.abs(skops_pipeline.predict_proba(rows) - fast.predict_proba(rows)).max() < 1e-9

    # Arrays made from another skops file are not used: the skops file is loaded instead.
    artefact, _ = _copy_artefacts(tmp_path)
    shutil.copy(ARTEFACTS / COMPILED_NAME, tmp_path / COMPILED_NAME)
    artefact.write_bytes(artefact.read_bytes() + b"\0")  # same model, other bytes
    assert load_compiled(artefact) is None


def test_long_evidence_is_cut_between_words_so_the_page_can_highlight_it(nlp, classifier):
    # One long sentence (no full stop to cut at): a cut by character count would land
    # inside "datacentres" at character 400.
    sentence = ("OpenAI will rent new capacity from Oracle and CoreWeave instead of relying only on Microsoft's "
                "Azure cloud, " + "and the Stargate sites will house Nvidia GPUs in new datacentres, " * 6)
    title = "OpenAI buys compute from Oracle"
    [result] = tag_texts(nlp, classifier, [(title, sentence.rstrip(", ") + ".")])
    flat = " ".join(f"{title} {sentence}".split())  # a passage can open on the title
    assert result.evidence.get("cloud")
    for quote in result.evidence["cloud"]:
        body = quote.removesuffix("…")
        where = flat.find(body)
        assert where >= 0
        after = flat[where + len(body):where + len(body) + 1]
        assert not after.isalnum(), f"evidence stops inside a word: …{body[-20:]}|{after}"
