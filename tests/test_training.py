"""Training: data checks, thresholds, metrics, and a first-use train that writes artefact + card."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from monitor import training
from monitor.app import App
from monitor.classify import ARTEFACT_NAME, CARD_NAME
from monitor.errors import InputError, ModelError
from monitor.taxonomy import LABEL_IDS, load_taxonomy


@pytest.fixture
def taxonomy(make_settings):
    settings = make_settings()
    return load_taxonomy(settings.path(settings.model.taxonomy_path))


def test_metrics_micro_macro_relevance():
    labels = ["a", "b"]
    truth = np.array([[1, 0], [0, 1], [0, 0], [1, 1]])
    predicted = np.array([[1, 0], [0, 0], [1, 0], [1, 1]])
    m = training.metrics(truth, predicted, labels)
    # a: tp 2, fp 1, fn 0 -> F1 0.8 ; b: tp 1, fp 0, fn 1 -> F1 0.667
    assert m["per_label"]["a"] == {"precision": 0.6667, "recall": 1.0, "f1": 0.8, "support": 2}
    assert m["per_label"]["b"]["f1"] == pytest.approx(0.6667)
    assert m["micro_f1"] == pytest.approx(2 * 3 / (4 + 4), abs=1e-4)
    assert m["macro_f1"] == pytest.approx((0.8 + 0.6667) / 2, abs=1e-4)
    # relevance: truth [1,1,0,1], predicted [1,0,1,1] -> tp 2, F1 = 4/6
    assert m["relevance_f1"] == pytest.approx(0.6667, abs=1e-4)


def test_thresholds_maximise_f1_and_shrink_toward_half():
    scores = np.array([[0.9], [0.8], [0.7], [0.3], [0.2], [0.1]])
    truth = np.array([[1], [1], [1], [0], [0], [0]])
    oof = training.choose_thresholds(scores, truth, ["a"], "oof")["a"]
    shrunk = training.choose_thresholds(scores, truth, ["a"], "shrunk")["a"]
    assert 0.3 < oof <= 0.7
    assert abs(shrunk - 0.5) < abs(oof - 0.5) or oof == 0.5
    assert training.choose_thresholds(scores, truth, ["a"], "fixed") == {"a": 0.5}


def test_bad_training_rows_are_one_line_input_errors(tmp_path, taxonomy):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"title": "t", "text": "x", "labels": ["cloud"]}\n{"title": "t", "text": "x", "labels": ["clod"]}\n')
    with pytest.raises(InputError, match=r"bad.jsonl:2: unknown label id\(s\) clod"):
        training.read_jsonl(bad, taxonomy)
    bad.write_text("{not json\n")
    with pytest.raises(InputError, match="bad.jsonl:1: not a JSON object"):
        training.read_jsonl(bad, taxonomy)
    bad.write_bytes(b"{\"title\": \"caf\xe9\"}\n")  # latin-1, not UTF-8
    with pytest.raises(InputError, match="not UTF-8"):
        training.read_jsonl(bad, taxonomy)


def test_no_artefact_and_no_auto_train_says_run_train(tmp_path, make_settings, taxonomy):
    settings = make_settings(f'[model]\nartefact_dir = "{tmp_path / "none"}"\nauto_train = false\n')
    with pytest.raises(ModelError, match="run `tension-monitor train`"):
        App(settings).classifier


def test_first_use_trains_and_writes_artefact_and_card(tmp_path, make_settings, taxonomy, caplog):
    settings = make_settings(f'[model]\nartefact_dir = "{tmp_path / "artefacts"}"\n')
    with caplog.at_level(logging.WARNING):
        classifier = App(settings).classifier
    assert "no model artefact found; training one now" in caplog.text
    assert (tmp_path / "artefacts" / ARTEFACT_NAME).exists()
    card = json.loads((tmp_path / "artefacts" / CARD_NAME).read_text())
    assert card["label_ids"] == list(LABEL_IDS)
    assert set(card["thresholds"]) == set(LABEL_IDS)
    assert {"scikit-learn", "skops"} <= set(card["versions"])
    assert len(card["training_data"]["sha256"]) == 64
    assert card["training_data"]["n_examples"] >= 600
    cv = card["cross_validation"]
    assert set(cv["per_label"]) == set(LABEL_IDS)
    assert cv["micro_f1"] > 0.7 and cv["relevance_f1"] > 0.9
    calibration = card["calibration"]
    assert len(calibration["slopes"]) == len(LABEL_IDS)
    assert set(calibration["expected_calibration_error"]) == set(LABEL_IDS) | {"mean"}
    assert card["scoring"]["window"] >= 1
    assert card["trained_at"] and card["model_version"] == classifier.model_version
    # The second use loads what the first one wrote.
    again = App(settings).classifier
    assert again.model_version == classifier.model_version


def test_calibration_error_is_small_for_calibrated_and_large_for_skewed_scores():
    rng = np.random.default_rng(0)
    probability = rng.uniform(0, 1, 20_000)
    truth = (rng.uniform(0, 1, 20_000) < probability).astype(int)
    assert training.expected_calibration_error(probability, truth) < 0.02
    assert training.expected_calibration_error(probability ** 3, truth) > 0.1


def test_platt_calibration_turns_overconfident_scores_into_frequencies():
    from monitor.classify import calibrate

    rng = np.random.default_rng(1)
    truth = rng.integers(0, 2, (4000, 1))
    raw = np.where(truth == 1, rng.uniform(0.3, 1.0, truth.shape), rng.uniform(0.0, 0.7, truth.shape))
    slopes, intercepts = training.fit_calibration(raw, truth)
    calibrated = calibrate(raw, slopes, intercepts)
    assert training.expected_calibration_error(calibrated[:, 0], truth[:, 0]) < \
        training.expected_calibration_error(raw[:, 0], truth[:, 0])


def test_embedding_cache_reuses_vectors_and_keeps_only_current_texts(tmp_path):
    from pathlib import Path

    from monitor.encoder import load_encoder

    class CountingEncoder:
        """The shipped encoder, recording which texts it was asked to embed."""

        def __init__(self):
            self.real = load_encoder(Path(__file__).resolve().parent.parent / "models" / "encoder")
            self.vectors_id = self.real.vectors_id
            self.seen = []

        def embed_documents(self, texts):
            self.seen += texts
            return self.real.embed_documents(texts)

    cache, encoder = tmp_path / "cache.npz", CountingEncoder()
    first = training.document_embeddings(encoder, ["Azure capacity", "OpenAI buys compute"], cache)
    again = training.document_embeddings(encoder, ["OpenAI buys compute", "A football match"], cache)
    assert encoder.seen == ["Azure capacity", "OpenAI buys compute", "A football match"]
    assert again[0].tolist() == first[1].tolist()
    with np.load(cache) as data:
        assert len(data["keys"]) == 2  # "a" is no longer a training text
    # Another encoder file: none of the cached vectors are its own, so all are embedded anew.
    encoder.vectors_id, encoder.seen = "another-encoder/lead-40", []
    training.document_embeddings(encoder, ["OpenAI buys compute", "A football match"], cache)
    assert sorted(encoder.seen) == ["A football match", "OpenAI buys compute"]
