"""The most similar stored stories for a pasted text: TF-IDF cosine over recent stories.

A small inverted index in memory, rebuilt only when a newer article has been stored,
so a paste costs a few dictionary look-ups instead of a scan of the database. Plain
Python: the candidate set is a few thousand titles and openings, not worth a model.
"""

from __future__ import annotations

import heapq
import math
import re
import threading
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter

from monitor.storage.browse import Candidate, newest_article_id, similarity_candidates

TOKEN = re.compile(r"[a-z][a-z0-9\-]{2,}")
STOPWORDS = frozenset(
    "the and for that with this from have has had was were are its it's his her their they them"
    " but not you your our will would could should can said says say into over after before about"
    " than then also more most some such only other been being which who whom what when where why how"
    " all any each few many much one two new just like make made may might must very here there"
    " these those because while during between within without against under again further once".split()
)
TITLE_WEIGHT = 3  # a title word counts like three body words: titles say what the story is


@dataclass(frozen=True)
class SimilarStory:
    id: int
    title: str
    source: str | None
    published_at: datetime
    score: float


def tokens(text: str) -> list[str]:
    return [t for t in TOKEN.findall(text.lower()) if t not in STOPWORDS]


@dataclass(frozen=True)
class _State:
    idf: dict[str, float]
    postings: dict[str, list[tuple[int, float]]]
    stories: list[Candidate]


class SimilarIndex:
    def __init__(self, max_stories: int = 5000, min_score: float = 0.08):
        self.max_stories = max_stories
        self.min_score = min_score
        self._lock = threading.Lock()
        self._built_at_id = -1
        self._state = _State({}, {}, [])  # swapped whole, so a search never sees half a rebuild

    def search(self, engine, text: str, limit: int = 5) -> list[SimilarStory]:
        state = self._refresh(engine)
        totals: dict[int, float] = defaultdict(float)
        for term, weight in _vector(Counter(tokens(text)), state.idf).items():
            for doc, doc_weight in state.postings.get(term, ()):
                totals[doc] += weight * doc_weight
        best = heapq.nlargest(limit, totals.items(), key=itemgetter(1))  # what Counter.most_common does
        return [_story(state.stories[doc], score) for doc, score in best if score >= self.min_score]

    def _refresh(self, engine) -> _State:
        newest = newest_article_id(engine)
        with self._lock:
            if newest != self._built_at_id:
                self._state = _build(similarity_candidates(engine, self.max_stories))
                self._built_at_id = newest
            return self._state


def _story(c: Candidate, score: float) -> SimilarStory:
    return SimilarStory(c.id, c.title, c.source, c.published_at, round(score, 3))


def _build(stories: list[Candidate]) -> _State:
    counts = [Counter(tokens(s.title) * TITLE_WEIGHT + tokens(s.text)) for s in stories]
    df = Counter(term for c in counts for term in c)
    n = len(stories)
    # Words in more than half the stories ("openai", "microsoft") tell stories apart poorly.
    idf = {t: math.log((1 + n) / (1 + d)) + 1 for t, d in df.items() if d <= max(2, n // 2)}
    postings: dict[str, list[tuple[int, float]]] = {}
    for doc, c in enumerate(counts):
        for term, weight in _vector(c, idf).items():
            postings.setdefault(term, []).append((doc, weight))
    return _State(idf, postings, stories)


def _vector(counts: Counter, idf: dict[str, float]) -> dict[str, float]:
    """Sublinear tf-idf, L2-normalised, over the terms the index knows."""
    weights = {t: (1 + math.log(n)) * idf[t] for t, n in counts.items() if t in idf}
    norm = math.sqrt(sum(w * w for w in weights.values())) or 1.0
    return {t: w / norm for t, w in weights.items()}
