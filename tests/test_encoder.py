"""The shipped sentence encoder (models/encoder/, int8 ONNX) run without PyTorch."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from monitor.encoder import DIMENSIONS, LEAD_WORDS, MAX_TOKENS, load_encoder
from monitor.errors import ModelError

REPO = Path(__file__).resolve().parent.parent
ENCODER = REPO / "models" / "encoder"
REFERENCE = REPO / "tests" / "fixtures" / "encoder" / "reference.json"

INVESTOR = "Microsoft is OpenAI's largest investor"
BACKER = "OpenAI's biggest backer is Microsoft"
FOOTBALL = "The football match ended in a draw"


@pytest.fixture(scope="module")
def encoder():
    return load_encoder(ENCODER)


def test_paraphrases_are_closer_than_unrelated_sentences(encoder):
    investor, backer, football = encoder.embed([INVESTOR, BACKER, FOOTBALL])
    assert investor @ backer > 0.7  # 0.78 with the shipped int8 model
    assert investor @ backer > investor @ football + 0.5
    assert abs(backer @ football) < 0.2


def test_embeddings_are_unit_float32_rows_in_input_order(encoder):
    texts = [FOOTBALL, "short", INVESTOR * 40, ""]
    vectors = encoder.embed(texts)
    assert vectors.shape == (4, DIMENSIONS) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # A text's vector is its own: the same alone as next to a long text (the int8 model
    # quantises per run, so a shared batch would shift it).
    assert np.array_equal(vectors[0], encoder.embed([FOOTBALL])[0])
    assert np.array_equal(vectors[2], encoder.embed([INVESTOR * 40])[0])
    assert encoder.embed([]).shape == (0, DIMENSIONS)


def test_text_beyond_max_tokens_does_not_change_the_vector(encoder):
    words = (INVESTOR + " and Azure hosts its models. ").split()
    long_text = " ".join(words * (MAX_TOKENS // len(words) + 2))
    tail_changed = long_text + " The football match ended in a draw." * 20
    assert encoder.embed([long_text])[0] @ encoder.embed([tail_changed])[0] > 0.999


def test_matches_the_pytorch_model(encoder):
    """Reference vectors from sentence-transformers (scripts/export_encoder.py)."""
    reference = json.loads(REFERENCE.read_text(encoding="utf-8"))
    expected = np.array(reference["vectors"], dtype=np.float32)
    cosines = np.sum(encoder.embed(reference["sentences"]) * expected, axis=1)
    assert cosines.min() >= 0.99, cosines


def test_a_documents_meaning_is_its_lead(encoder):
    """A story's vector is the vector of its first LEAD_WORDS words: what follows the lead
    does not move it, and a text without words has no meaning (zeros)."""
    lead_words = (INVESTOR + " and it hosts the models on Azure.").split()
    lead_words = (lead_words * (LEAD_WORDS // len(lead_words) + 1))[:LEAD_WORDS]
    story = " ".join(lead_words) + "\n\n" + " ".join([FOOTBALL] * 30)
    document, short, empty, blank = encoder.embed_documents([story, BACKER, "", "  \n "])
    assert np.array_equal(document, encoder.embed([" ".join(lead_words)])[0])
    assert document @ encoder.embed([FOOTBALL])[0] < 0.3  # the football tail is not in it
    assert np.array_equal(short, encoder.embed([BACKER])[0])  # a short text is its own lead
    assert not empty.any() and not blank.any()


def test_missing_model_file_is_named(tmp_path):
    shutil.copy(ENCODER / "tokenizer.json", tmp_path / "tokenizer.json")
    with pytest.raises(ModelError, match=r"model\.onnx: encoder model file missing"):
        load_encoder(tmp_path)


def test_corrupt_files_are_named(tmp_path):
    shutil.copy(ENCODER / "tokenizer.json", tmp_path / "tokenizer.json")
    (tmp_path / "model.onnx").write_bytes(b"not an onnx model")
    with pytest.raises(ModelError, match=r"model\.onnx: not a usable ONNX model") as error:
        load_encoder(tmp_path)
    assert "\n" not in str(error.value)
    (tmp_path / "tokenizer.json").write_text("{", encoding="utf-8")
    with pytest.raises(ModelError, match=r"tokenizer\.json: not a usable tokenizer file"):
        load_encoder(tmp_path)


def test_the_runtime_has_no_pytorch():
    """The encoder runs on onnxruntime alone: nothing the project installs pulls in torch."""
    import importlib.util

    assert importlib.util.find_spec("torch") is None
    assert importlib.util.find_spec("sentence_transformers") is None
