"""Sentence embeddings from the shipped all-MiniLM-L6-v2 (int8 ONNX), without PyTorch.

The only module that imports onnxruntime and tokenizers. The files come with the project
(models/encoder/, made by scripts/export_encoder.py); nothing is ever downloaded: the
tokenizer is read from its JSON file and the ONNX session runs on the CPU provider only.

Output matches sentence-transformers' all-MiniLM-L6-v2: mean of the token vectors over the
attention mask, L2-normalised, 384 floats; texts longer than 256 tokens are truncated.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Encoding, Tokenizer

from monitor.errors import ModelError

MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
MAX_TOKENS = 256  # the model's max_seq_length in sentence-transformers
DIMENSIONS = 384
BATCH_SIZE = 16  # rows per session run at most...
TOKEN_BUDGET = 1024  # ...and padded tokens per run at most (4 rows of 256 tokens, 16 of 64)
CHUNK_WORDS = 180  # ~230 word pieces for news English: a chunk stays under MAX_TOKENS
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


def padded_batch(encodings: list[Encoding]) -> dict[str, np.ndarray]:
    """input_ids and attention_mask, right-padded with 0 to the longest in this batch."""
    width = max(len(encoding.ids) for encoding in encodings)
    ids = np.zeros((len(encodings), width), dtype=np.int64)
    mask = np.zeros((len(encodings), width), dtype=np.int64)
    for row, encoding in enumerate(encodings):
        ids[row, : len(encoding.ids)] = encoding.ids
        mask[row, : len(encoding.ids)] = 1
    return {"input_ids": ids, "attention_mask": mask}


def split_words(text: str, chunk_words: int) -> list[str]:
    """Consecutive runs of at most chunk_words whitespace-separated words."""
    words = text.split()
    return [" ".join(words[start : start + chunk_words]) for start in range(0, len(words), chunk_words)]


def token_batches(order, lengths: list[int], max_rows: int, budget: int = TOKEN_BUDGET) -> list:
    """Consecutive runs of `order` (rows sorted by length) of at most max_rows rows and at
    most `budget` padded tokens: onnxruntime keeps the largest batch's memory for the
    session's life, and 16 rows of 256 tokens held ~380 MB against ~160 MB for 4, at no
    gain in speed."""
    batches: list[list[int]] = []
    current: list[int] = []
    for row in order:
        width = lengths[row]  # sorted: the newest row is the longest so far
        if current and (len(current) == max_rows or (len(current) + 1) * width > budget):
            batches.append(current)
            current = []
        current.append(row)
    if current:
        batches.append(current)
    return batches


class SentenceEncoder:
    """An ONNX session and its tokenizer; embed() is safe to call from one thread at a time."""

    def __init__(self, session: ort.InferenceSession, tokenizer: Tokenizer, batch_size: int = BATCH_SIZE):
        self.session = session
        self.tokenizer = configure_tokenizer(tokenizer)
        self.batch_size = batch_size

    def embed(self, texts: list[str]) -> np.ndarray:
        """float32 (len(texts), 384), each row unit length; sorted by length so batches pad little."""
        vectors = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
        if not texts:
            return vectors
        encodings = self.tokenizer.encode_batch(list(texts))
        lengths = [len(encoding.ids) for encoding in encodings]
        order = np.argsort(lengths, kind="stable")
        for rows in token_batches(order, lengths, self.batch_size):
            batch = padded_batch([encodings[row] for row in rows])
            hidden = self.session.run(None, batch)[0]
            vectors[rows] = mean_pool_normalise(hidden, batch["attention_mask"])
        return vectors

    def embed_documents(self, texts: list[str], chunk_words: int = CHUNK_WORDS) -> np.ndarray:
        """One unit vector per text: the re-normalised mean of its chunk vectors (zeros if empty)."""
        chunks_per_text = [split_words(text, chunk_words) for text in texts]
        chunk_vectors = self.embed([chunk for chunks in chunks_per_text for chunk in chunks])
        vectors = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
        start = 0
        for row, chunks in enumerate(chunks_per_text):
            if chunks:
                mean = chunk_vectors[start : start + len(chunks)].mean(axis=0)
                vectors[row] = mean / max(float(np.linalg.norm(mean)), 1e-12)
            start += len(chunks)
        return vectors


def load_session(path: Path, threads: int) -> ort.InferenceSession:
    if not path.is_file():
        raise ModelError(f"{path}: encoder model file missing")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # warnings about unused initialisers are noise here
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
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


def load_encoder(folder: Path, threads: int = 1, batch_size: int = BATCH_SIZE) -> SentenceEncoder:
    """The encoder in folder (model.onnx + tokenizer.json); ModelError naming a bad file."""
    folder = Path(folder)
    tokenizer = load_tokenizer(folder / TOKENIZER_FILE)
    session = load_session(folder / MODEL_FILE, threads)
    return SentenceEncoder(session, tokenizer, batch_size)
