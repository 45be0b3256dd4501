"""Near-duplicate stories: MinHash signatures over word shingles (datasketch).

Exact duplicates (same GUID, canonical URL or content hash) are the store's business;
this module finds the same story under another URL: syndicated wire copy and light
rewrites. The shingle size and threshold were chosen on the labelled pairs in
tests/feeds/near-duplicates.toml (see tests/test_dedupe.py for the measured
precision and recall).

Signatures are stored (articles.minhash), so every parameter that shapes them is
fixed here and versioned in the first byte: a signature made with other parameters
never matches instead of matching at random.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache

import numpy as np
from datasketch import MinHash
from datasketch.hashfunc import sha1_hash32

# Chosen on tests/feeds/near-duplicates.toml (measured in tests/test_dedupe.py): with
# word pairs, wire copies and ~80-85% rewrites estimate 0.47-0.83, different events on
# the same topic 0.01-0.04, and a follow-up that reuses the original's background
# paragraphs up to 0.33; 0.4 sits in that gap. Three-word shingles separate topics no
# better but punish every reworded phrase more (rewrites fall to 0.35-0.45).
SHINGLE_WORDS = 2
# 128 values: estimate error about 0.04 near the threshold, 513 bytes per article. The
# store's LSH bands (storage.articles.RecentSignatures) assume this size.
NUM_PERM = 128
SEED = 1
THRESHOLD = 0.4  # estimated Jaccard at or above which two texts are the same story
MIN_SHINGLES = 5  # shorter texts get no signature: a few shared words prove nothing
FORMAT = b"\x01"  # version byte for: affine32 scheme, sha1_hash32, SEED, NUM_PERM, SHINGLE_WORDS

_WORD = re.compile(r"\w+")
_DTYPE = np.dtype("<u4")


@lru_cache(maxsize=1)
def _template() -> MinHash:
    # Building the permutations is the slow part of MinHash(); copies share them.
    return MinHash(num_perm=NUM_PERM, seed=SEED, hashfunc=sha1_hash32, scheme="affine32")


def shingles(text: str, size: int = SHINGLE_WORDS) -> set[bytes]:
    """Overlapping runs of `size` words, case- and Unicode-normalised."""
    words = _WORD.findall(unicodedata.normalize("NFKC", text).casefold())
    if len(words) < size:
        return {" ".join(words).encode("utf-8")} if words else set()
    return {" ".join(words[i : i + size]).encode("utf-8") for i in range(len(words) - size + 1)}


def signature(text: str) -> bytes:
    """The MinHash signature of a text, as bytes for the articles.minhash column; b""
    for a text too short to judge (it then matches nothing)."""
    grams = shingles(text)
    if len(grams) < MIN_SHINGLES:
        return b""
    minhash = _template().copy()
    minhash.update_batch(list(grams))
    return FORMAT + minhash.hashvalues.astype(_DTYPE).tobytes()


def _values(sig: bytes) -> np.ndarray | None:
    if len(sig) != 1 + NUM_PERM * _DTYPE.itemsize or not sig.startswith(FORMAT):
        return None
    return np.frombuffer(sig, dtype=_DTYPE, offset=1)


def similarity(a: bytes, b: bytes) -> float:
    """Estimated Jaccard similarity of the two texts' shingle sets (0.0 to 1.0)."""
    left, right = _values(a), _values(b)
    if left is None or right is None:
        return 0.0
    return float(np.count_nonzero(left == right)) / NUM_PERM


def find_near_duplicate(
    sig: bytes, candidates: Iterable[tuple[int, bytes]], threshold: float = THRESHOLD
) -> int | None:
    """The id of the most similar candidate at or above threshold, or None."""
    mine = _values(sig)
    if mine is None:
        return None
    best_id, best = None, threshold
    for candidate_id, other in candidates:
        theirs = _values(other)
        if theirs is None:
            continue
        score = int(np.count_nonzero(mine == theirs)) / NUM_PERM
        if score >= best and (best_id is None or score > best):
            best_id, best = candidate_id, score
    return best_id
