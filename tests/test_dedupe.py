"""Near-duplicate detection, measured on labelled story pairs (tests/feeds/near-duplicates.toml).

Signatures are made from f"{title}\\n{text}", as the store does.
"""

from __future__ import annotations

import difflib
import itertools
import re
import tomllib
from pathlib import Path

import pytest

from monitor.dedupe import NUM_PERM, THRESHOLD, find_near_duplicate, signature, similarity

FIXTURE = Path(__file__).parent / "feeds" / "near-duplicates.toml"


def load_versions() -> list[dict]:
    data = tomllib.loads(FIXTURE.read_text(encoding="utf-8"))
    return [
        {"story": story["id"], "topic": story["topic"], "kind": v["kind"], "text": f"{v['title'].strip()}\n{v['text'].strip()}"}
        for story in data["story"]
        for v in story["version"]
    ]


VERSIONS = load_versions()
SIGNATURES = [signature(v["text"]) for v in VERSIONS]
PAIRS = list(itertools.combinations(range(len(VERSIONS)), 2))


def same_story(i: int, j: int) -> bool:
    return VERSIONS[i]["story"] == VERSIONS[j]["story"]


def measure(threshold: float) -> tuple[float, float, int, int]:
    """(precision, recall, false positives, false negatives) over every pair."""
    predicted = {(i, j) for i, j in PAIRS if similarity(SIGNATURES[i], SIGNATURES[j]) >= threshold}
    actual = {(i, j) for i, j in PAIRS if same_story(i, j)}
    hits = len(predicted & actual)
    precision = hits / len(predicted) if predicted else 1.0
    return precision, hits / len(actual), len(predicted - actual), len(actual - predicted)


def test_fixture_is_what_it_claims():
    words = {v["story"] + v["kind"]: re.findall(r"\w+", v["text"].lower()) for v in VERSIONS}
    originals = {v["story"]: words[v["story"] + "original"] for v in VERSIONS if v["kind"] == "original"}
    for version in VERSIONS:
        if version["kind"] in ("wire", "rewrite"):
            overlap = difflib.SequenceMatcher(None, originals[version["story"]], words[version["story"] + version["kind"]]).ratio()
            assert 0.78 <= overlap <= 0.92, (version["story"], version["kind"], overlap)
    positives = sum(same_story(i, j) for i, j in PAIRS)
    assert (positives, len(PAIRS) - positives) == (18, 172)


def test_precision_and_recall_on_labelled_pairs():
    precision, recall, false_positives, false_negatives = measure(THRESHOLD)
    print(f"\nthreshold {THRESHOLD}: precision {precision:.3f} recall {recall:.3f} "
          f"({false_positives} false positives, {false_negatives} missed, {len(PAIRS)} pairs)")
    assert (precision, recall) == (1.0, 1.0)


def test_threshold_sits_in_a_gap_not_on_an_edge():
    # The same result a little either side of the threshold: estimate noise will not flip it.
    for nearby in (THRESHOLD - 0.05, THRESHOLD + 0.05):
        assert measure(nearby)[:2] == (1.0, 1.0), nearby


def test_scores_by_kind_of_pair():
    scores: dict[str, list[float]] = {"same story": [], "same topic": [], "follow-up": []}
    for i, j in PAIRS:
        a, b = VERSIONS[i], VERSIONS[j]
        if same_story(i, j):
            kind = "same story"
        elif "followup" in (a["kind"], b["kind"]) and a["topic"] == b["topic"]:
            kind = "follow-up"
        elif a["topic"] == b["topic"]:
            kind = "same topic"
        else:
            continue
        scores[kind].append(similarity(SIGNATURES[i], SIGNATURES[j]))
    print("\n" + "; ".join(f"{k}: {min(v):.2f}-{max(v):.2f}" for k, v in scores.items()))
    assert min(scores["same story"]) >= THRESHOLD > max(scores["follow-up"]) > max(scores["same topic"])


def test_find_near_duplicate_returns_the_best_candidate():
    by_key = {(v["story"], v["kind"]): sig for v, sig in zip(VERSIONS, SIGNATURES)}
    candidates = [
        (1, by_key[("wisconsin-campus", "original")]),
        (2, by_key[("oracle-capex", "followup")]),
        (3, by_key[("oracle-deal", "rewrite")]),
        (4, by_key[("oracle-deal", "original")]),
        (5, b""),  # an article too short to sign
    ]
    assert find_near_duplicate(by_key[("oracle-deal", "wire")], candidates) == 4  # the wire copy is closest to the original
    assert find_near_duplicate(by_key[("ftc-inquiry", "original")], candidates) is None
    assert find_near_duplicate(by_key[("oracle-deal", "wire")], iter(candidates[:2])) is None
    assert find_near_duplicate(b"", candidates) is None


def test_signature_is_stable_bytes_insensitive_to_case_and_punctuation():
    text = VERSIONS[0]["text"]
    sig = signature(text)
    assert isinstance(sig, bytes) and len(sig) == 1 + 4 * NUM_PERM
    assert sig == signature(text)
    assert similarity(sig, signature(text.upper().replace(",", " ").replace("\n", "  "))) == 1.0
    assert similarity(sig, sig) == 1.0


@pytest.mark.parametrize("short", ["", "Breaking", "OpenAI Microsoft deal"])
def test_short_texts_get_no_signature_and_match_nothing(short):
    assert signature(short) == b""
    assert similarity(signature(short), signature(short)) == 0.0


def test_signatures_of_another_format_never_match():
    sig = signature(VERSIONS[0]["text"])
    assert similarity(sig, b"\x01" + sig[1:]) == 0.0 and similarity(sig, sig[:-4]) == 0.0
