"""Sentence embeddings from the shipped all-MiniLM-L6-v2 (int8 ONNX), without PyTorch.

The only module that imports onnxruntime and tokenizers. The files come with the project
(models/encoder/, made by scripts/export_encoder.py); nothing is ever downloaded: the
tokenizer is read from its JSON file and the ONNX session runs on the CPU provider only.

Output matches sentence-transformers' all-MiniLM-L6-v2: mean of the token vectors over the
attention mask, L2-normalised, 384 floats; texts longer than 256 tokens are truncated.

A document's meaning is its lead: the first LEAD_WORDS words (the title and the opening of
a story, where news writing puts what the story is about). Embedding the whole text cost
twice the time of its spaCy parse; the lead costs half of that, and cross-validation and
the dev set found it no worse than the whole text (models/README.md, "Encoder input").
What a story develops further down is the word model's part (passages and list items,
each list item embedded on its own).

Each text is run alone. The int8 model quantises its activations per run, with one scale
for the whole input tensor, so in a batch a text's vector depended on its batch-mates
(cosine 0.987-0.989 against the same text alone, onnxruntime 1.32): the daemon, which
tags in batches, and `classify`, which tags one text, gave different scores, and the
training cache (keyed by text) held vectors that depended on their neighbours. Alone
costs no throughput here (3,300 words/s either way on 150 long training texts) and holds
the least memory.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Encoding, Tokenizer

from monitor.errors import ModelError

MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
MAX_TOKENS = 256  # the model's max_seq_length in sentence-transformers
DIMENSIONS = 384
LEAD_WORDS = 40  # ~55 word pieces of news English: a headline and its first sentence or two
INPUT_NAMES = ("input_ids", "attention_mask")


def configure_tokenizer(tokenizer: Tokenizer) -> Tokenizer:
    """Truncate at MAX_TOKENS and pad nothing (the shipped file pads to 128 for everything)."""
    tokenizer.enable_truncation(max_length=MAX_TOKENS)
    tokenizer.no_padding()
    return tokenizer


def mean_pool_normalise(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean of the unmasked token vectors of each row, scaled to unit length."""
    weights = mask[:, :, None].astype(np.float32)
    summed = (hidden * weights).sum(axis=1)
    pooled = summed / np.clip(weights.sum(axis=1), 1e-9, None)
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)


def session_inputs(encoding: Encoding) -> dict[str, np.ndarray]:
    """input_ids and attention_mask of one text, as a batch of one."""
    ids = np.asarray([encoding.ids], dtype=np.int64)
    return {"input_ids": ids, "attention_mask": np.ones_like(ids)}


def lead(text: str, words: int = LEAD_WORDS) -> str:
    """The first `words` whitespace-separated words of text, joined by single spaces."""
    return " ".join(text.split()[:words])


class SentenceEncoder:
    """An ONNX session and its tokenizer; embed() is safe to call from one thread at a time."""

    def __init__(self, session: ort.InferenceSession, tokenizer: Tokenizer, model_sha256: str = ""):
        self.session = session
        self.tokenizer = configure_tokenizer(tokenizer)
        # Which weights made a vector: the model card, the version and the training
        # embedding cache record it, so vectors of two encoders never mix.
        self.model_sha256 = model_sha256
        self.vectors_id = f"{model_sha256}/lead-{LEAD_WORDS}"  # what a document vector depends on

    def embed(self, texts: list[str]) -> np.ndarray:
        """float32 (len(texts), 384), each row unit length; each text run alone (see above)."""
        vectors = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
        for row, encoding in enumerate(self.tokenizer.encode_batch(list(texts))):
            inputs = session_inputs(encoding)
            hidden = self.session.run(None, inputs)[0]
            vectors[row] = mean_pool_normalise(hidden, inputs["attention_mask"])[0]
        return vectors

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        """One unit vector per text: the vector of its lead (zeros for a text without words)."""
        leads = [lead(text) for text in texts]
        vectors = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
        rows = [row for row, text in enumerate(leads) if text]
        if rows:
            vectors[rows] = self.embed([leads[row] for row in rows])
        return vectors


def load_session(path: Path, threads: int, model: bytes | None = None) -> ort.InferenceSession:
    """The ONNX session of the file at path (or of `model`, that file's bytes already read)."""
    if model is None and not path.is_file():
        raise ModelError(f"{path}: encoder model file missing")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # warnings about unused initialisers are noise here
    try:
        session = ort.InferenceSession(model or str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own pybind error types
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"{path}: not a usable ONNX model ({reason})") from None
    names = tuple(sorted(node.name for node in session.get_inputs()))
    if names != tuple(sorted(INPUT_NAMES)):
        raise ModelError(f"{path}: expected inputs {', '.join(INPUT_NAMES)}, found {', '.join(names)}")
    return session


def load_tokenizer(path: Path) -> Tokenizer:
    if not path.is_file():
        raise ModelError(f"{path}: encoder tokenizer file missing")
    try:
        return Tokenizer.from_file(str(path))
    except Exception as exc:  # tokenizers raises a bare Exception on bad JSON
        raise ModelError(f"{path}: not a usable tokenizer file ({str(exc).splitlines()[0]})") from None


def load_encoder(folder: Path, threads: int = 1) -> SentenceEncoder:
    """The encoder in folder (model.onnx + tokenizer.json); ModelError naming a bad file."""
    folder = Path(folder)
    tokenizer = load_tokenizer(folder / TOKENIZER_FILE)
    path = folder / MODEL_FILE
    if not path.is_file():
        raise ModelError(f"{path}: encoder model file missing")
    model = path.read_bytes()  # read once: hashed for the model card, and loaded
    return SentenceEncoder(load_session(path, threads, model), tokenizer, hashlib.sha256(model).hexdigest())
