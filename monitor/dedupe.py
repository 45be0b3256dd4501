"""Near-duplicate stories: MinHash signatures over word shingles.

Exact duplicates (same GUID, canonical URL or content hash) are the store's business;
this module finds the same story under another URL: syndicated wire copy and light
rewrites. The shingle size and threshold were chosen on the labelled pairs in
tests/feeds/near-duplicates.toml (see tests/test_dedupe.py for the measured
precision and recall).

Signatures are stored (articles.minhash), so every parameter that shapes them is
fixed here and versioned in the first byte: a signature made with other parameters
never matches instead of matching at random. Migration 0006 re-signed the stored
articles the matcher still reads when format 2 replaced format 1 (datasketch, one
Python sha1 per shingle: as slow as feedparser itself in the cold poll).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
import zlib
from collections.abc import Iterable

import numpy as np

# Chosen on tests/feeds/near-duplicates.toml (measured in tests/test_dedupe.py): with
# word pairs, wire copies and ~80-85% rewrites estimate 0.53-0.86, different events on
# the same topic 0.00-0.05, and a follow-up that reuses the original's background
# paragraphs up to 0.32; 0.4 sits in that gap (format 1 gave 0.47-0.83, 0.01-0.04 and
# 0.33: the same pairs either side). Three-word shingles separate topics no better but
# punish every reworded phrase more (rewrites fell to 0.35-0.45 in format 1).
SHINGLE_WORDS = 2
# 128 values: estimate error about 0.04 near the threshold, 513 bytes per article. The
# store's LSH bands (storage.articles.RecentSignatures) assume this size.
NUM_PERM = 128
THRESHOLD = 0.4  # estimated Jaccard at or above which two texts are the same story
MIN_SHINGLES = 5  # shorter texts get no signature: a few shared words prove nothing
# Version byte for: crc32 words, splitmix64 pairs, _SALT, NUM_PERM, SHINGLE_WORDS.
# Format 1 (datasketch affine32 over sha1) is never compared with this one.
FORMAT = b"\x02"

_WORD = re.compile(r"\w+")
_DTYPE = np.dtype("<u4")
_U64 = np.uint64
# One (odd multiplier, addend) per permutation, from a fixed string: the same in every
# process, Python and NumPy version (no hash(), no NumPy random stream).
_SALT = np.frombuffer(hashlib.shake_128(b"tension-monitor minhash 2").digest(16 * NUM_PERM), dtype="<u8")
_MULTIPLIERS, _ADDENDS = _SALT[:NUM_PERM] | _U64(1), _SALT[NUM_PERM:]


def words(text: str) -> list[str]:
    """The words shingles are made of, case- and Unicode-normalised."""
    return _WORD.findall(unicodedata.normalize("NFKC", text).casefold())


def shingle_hashes(text: str) -> np.ndarray:
    """One 64-bit hash per run of SHINGLE_WORDS words (repeats included): each word's
    crc32, the words of a run side by side, scrambled by splitmix64's finaliser so
    that nearby values spread over all 64 bits."""
    crcs = np.fromiter(map(zlib.crc32, map(str.encode, words(text))), dtype=_U64)
    if crcs.size < SHINGLE_WORDS:
        return np.empty(0, dtype=_U64)
    return _mix64((crcs[:-1] << _U64(32)) | crcs[1:])  # the layout assumes SHINGLE_WORDS == 2


def _mix64(x: np.ndarray) -> np.ndarray:
    x = (x ^ (x >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)  # arithmetic wraps modulo 2**64
    x = (x ^ (x >> _U64(27))) * _U64(0x94D049BB133111EB)
    return x ^ (x >> _U64(31))


def signature(text: str) -> bytes:
    """The MinHash signature of a text, as bytes for the articles.minhash column; b""
    for a text too short to judge (it then matches nothing).

    All permutations at once: for each, the top 32 bits of the smallest a*x+b (mod
    2**64) over the shingle hashes x (multiply-add-shift hashing; shifting after the
    minimum gives the same value and shifts 128 numbers instead of all)."""
    hashes = shingle_hashes(text)
    if len(set(hashes.tolist())) < MIN_SHINGLES:  # repeats change no minimum, only whether there is enough text
        return b""
    lowest = (np.multiply.outer(hashes, _MULTIPLIERS) + _ADDENDS).min(axis=0) >> _U64(32)
    return FORMAT + lowest.astype(_DTYPE).tobytes()


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
