"""Turn records into what the templates draw: score rows, highlighted text, entity lists,
and SVG chart geometry. Pure functions; the templates escape every string they print.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import date, timedelta

from monitor.records import Entity
from monitor.taxonomy import Label, Taxonomy


@dataclass(frozen=True)
class ScoreRow:
    label: Label
    score: float
    threshold: float | None
    on: bool  # effective: at or above threshold, or as corrected by an analyst
    evidence: list[str]


@dataclass(frozen=True)
class Segment:
    text: str
    labels: tuple[str, ...]  # label ids whose evidence covers this stretch; empty for plain text


@dataclass(frozen=True)
class EntityRow:
    text: str
    label: str
    id: str | None
    mentions: int


def score_rows(taxonomy: Taxonomy, kind: str, scores: dict[str, float], thresholds: dict[str, float],
               on: set[str], evidence: dict[str, list[str]] | None = None) -> list[ScoreRow]:
    """One row per label of a kind, highest score first."""
    rows = [
        ScoreRow(label, scores.get(label.id, 0.0), thresholds.get(label.id), label.id in on, (evidence or {}).get(label.id, []))
        for label in taxonomy.labels
        if label.kind == kind
    ]
    return sorted(rows, key=lambda r: (-r.on, -r.score))


def highlight(text: str, evidence: dict[str, list[str]]) -> list[Segment]:
    """Split text so every stretch quoted as evidence is marked with the labels it supports."""
    spans = [(start, end, label) for label, quotes in evidence.items() for quote in quotes
             for start, end in _occurrences(text, quote)]
    if not spans:
        return [Segment(text, ())]
    cuts = sorted({0, len(text)} | {s for s, _, _ in spans} | {e for _, e, _ in spans})
    segments: list[Segment] = []
    for start, end in zip(cuts, cuts[1:]):
        labels = tuple(sorted({lab for s, e, lab in spans if s <= start and end <= e}))
        if segments and segments[-1].labels == labels:
            segments[-1] = Segment(segments[-1].text + text[start:end], labels)
        else:
            segments.append(Segment(text[start:end], labels))
    return segments


def _occurrences(text: str, quote: str) -> list[tuple[int, int]]:
    """Where a quote occurs, whitespace-insensitively: evidence comes back with its spaces
    normalised and long sentences cut with an ellipsis."""
    words = quote.removesuffix("…").split()
    if sum(len(w) for w in words) < 3:  # a stray letter would light up the whole text
        return []
    pattern = re.compile(r"\s+".join(re.escape(w) for w in words))
    return [m.span() for m in pattern.finditer(text)]


def entity_rows(entities: list[Entity]) -> list[EntityRow]:
    """Entities once each (by canonical id, else by text), most mentioned first."""
    counts: Counter = Counter()
    first: dict[tuple, Entity] = {}
    for e in entities:
        key = (e.id or e.text.lower(), e.label)
        counts[key] += getattr(e, "mentions", 1) or 1
        first.setdefault(key, e)
    return [EntityRow(first[k].text, first[k].label, first[k].id, n) for k, n in counts.most_common()]


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    day: date
    count: int


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    bars: list[Bar]
    total: int
    peak: int
    first_day: date
    last_day: date


def bar_chart(counts: list[int], last_day: date, width: int = 420, height: int = 52) -> Chart:
    """Bars for daily counts, oldest left; heights scaled to the busiest day."""
    days = len(counts)
    peak = max(counts, default=0)
    step = width / max(days, 1)
    gap = round(step * 0.25, 2) if step >= 6 else 0.6 if step >= 3 else 0
    first = last_day - timedelta(days=days - 1)
    bars = []
    for i, n in enumerate(counts):
        h = 0.0 if not peak else max(1.5, (height - 2) * n / peak) if n else 0.0
        bars.append(Bar(round(i * step, 2), round(height - h, 2), round(step - gap, 2), round(h, 2), first + timedelta(days=i), n))
    return Chart(width, height, bars, sum(counts), peak, first, last_day)


@dataclass(frozen=True)
class IndexChart:
    width: int
    height: int
    points: str  # SVG polyline points, oldest left, 0..100 mapped to the full height
    middle: float  # y of the usual-day line (50)
    first_day: date
    last_day: date
    latest: float


def index_chart(values: list[float], last_day: date, width: int = 860, height: int = 80) -> IndexChart:
    """The tension index per day as a line on a fixed 0-100 scale, with the usual day (50) marked."""
    step = width / max(len(values) - 1, 1)
    points = " ".join(f"{round(i * step, 1)},{round(height - height * v / 100, 1)}" for i, v in enumerate(values))
    first = last_day - timedelta(days=len(values) - 1)
    return IndexChart(width, height, points, height / 2, first, last_day, values[-1] if values else 50.0)
