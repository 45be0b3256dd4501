"""Scenario signposts: does a stored article show one of the four scenarios unfolding?

Pure matching over plain values; the signposts are config data (``Settings.signposts``,
from config/signposts.toml). An article fires a signpost when it carries one of the
signpost's labels, names all of its entities, and one sentence of its title or text
matches one of its phrases, all of its ``require`` patterns and none of its ``exclude``
patterns. That sentence is the evidence. Sentence-level matching is what keeps "Microsoft,
which holds a 27% stake in OpenAI, ..." from firing "a larger stake".
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from monitor.settings import SignpostSettings

MAX_EVIDENCE = 400  # characters of the evidence sentence kept
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"'”’)]*\s+(?=[\"'“‘(]*[A-Z0-9])|\n+")


@dataclass(frozen=True)
class SignpostHit:
    signpost_id: str
    scenario: str
    evidence: str


@lru_cache(maxsize=4096)
def _pattern(source: str) -> re.Pattern:
    return re.compile(source, re.IGNORECASE)


def sentences(title: str, text: str) -> list[str]:
    """The title, then the text's sentences (a plain splitter: good enough for news prose)."""
    found = [title.strip()] if title.strip() else []
    found += [part.strip() for part in _SENTENCE_END.split(text or "") if part and part.strip()]
    return found


def _sentence_fires(signpost: SignpostSettings, sentence: str) -> bool:
    return (
        any(_pattern(p).search(sentence) for p in signpost.phrases)
        and all(_pattern(p).search(sentence) for p in signpost.require)
        and not any(_pattern(p).search(sentence) for p in signpost.exclude)
    )


def match_article(
    signposts: Iterable[SignpostSettings], title: str, text: str, labels: set[str], entity_ids: set[str]
) -> list[SignpostHit]:
    """The signposts this article fires, each with the first sentence that fired it."""
    if not labels:  # only relevant articles can fire
        return []
    parts: list[str] | None = None
    hits = []
    for signpost in signposts:
        if signpost.labels and not labels.intersection(signpost.labels):
            continue
        if not entity_ids.issuperset(signpost.entities):
            continue
        parts = parts if parts is not None else sentences(title, text)
        evidence = next((sentence for sentence in parts if _sentence_fires(signpost, sentence)), None)
        if evidence is not None:
            hits.append(SignpostHit(signpost.id, signpost.scenario, evidence[:MAX_EVIDENCE]))
    return hits
