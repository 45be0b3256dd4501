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
def classifier(taxonomy):
    return load_classifier(ARTEFACTS / ARTEFACT_NAME, ARTEFACTS / CARD_NAME, taxonomy)


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
    for sentences in result.evidence.values():
        assert 1 <= len(sentences) <= 3
        assert all(sentence.rstrip("…")[:40] in body for sentence in sentences)


def test_long_text_is_cut_and_flagged(nlp, classifier):
    long_text = CLOUD[1] + " " + "The market was calm. " * 400
    short, cut = tag_texts(nlp, classifier, [CLOUD, (CLOUD[0], long_text)])
    assert not short.truncated and cut.truncated
    assert "cloud" in cut.labels


def test_empty_batch(nlp, classifier):
    assert tag_texts(nlp, classifier, []) == []


def _copy_artefacts(tmp_path: Path) -> tuple[Path, Path]:
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
    rows = model_inputs(texts, [[] for _ in texts])
    skops_pipeline = _load_skops(ARTEFACTS / ARTEFACT_NAME)
    fast = load_compiled(ARTEFACTS / ARTEFACT_NAME)
    assert fast is not None
    assert np.abs(skops_pipeline.predict_proba(rows) - fast.predict_proba(rows)).max() < 1e-9

    # Arrays made from another skops file are not used: the skops file is loaded instead.
    artefact, _ = _copy_artefacts(tmp_path)
    shutil.copy(ARTEFACTS / COMPILED_NAME, tmp_path / COMPILED_NAME)
    artefact.write_bytes(artefact.read_bytes() + b"\0")  # same model, other bytes
    assert load_compiled(artefact) is None
