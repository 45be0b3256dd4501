"""The tension index: one daily number for the partnership's strain (docs/TENSION_INDEX.md).

For a day d (UTC, by publication), with n_f(d) the new developments (stories that are
not follow-ups in a developing thread) carrying friction point f:

    baseline  b_f(d) = mean of n_f over the BASELINE_DAYS days before d
    excess    z_f(d) = clip((n_f(d) - b_f(d)) / sqrt(b_f(d) + 1), 0, CLIP)
    friction  F(d)   = mean of z_f(d) over the nine friction points
    mix       M(d)   = (strain - alliance) / (strain + alliance + 1) over the MIX_DAYS days
                       ending d, strain = new developments labelled acquisition,
                       divergence or new_ecosystem; alliance = uneasy_alliance
    index     T(d)   = clamp(BASE + FRICTION_WEIGHT * F(d) + MIX_WEIGHT * M(d), 0, 100)

50 is a day like the last three months with a balanced scenario mix; every friction
point one standard excess above its baseline adds 10; a scenario mix that is all strain
adds up to 20, all alliance takes up to 20 away. Pure functions over counts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

BASE = 50.0
FRICTION_WEIGHT = 10.0
MIX_WEIGHT = 20.0
BASELINE_DAYS = 90
MIX_DAYS = 7
CLIP = 5.0
STRAIN = ("acquisition", "divergence", "new_ecosystem")
ALLIANCE = ("uneasy_alliance",)

Counts = Mapping[tuple[str, date], int]  # (label id, day) -> new developments


@dataclass(frozen=True)
class IndexDay:
    day: date
    value: float
    friction: float  # F(d)
    mix: float  # M(d)
    baselines: dict[str, float] = field(default_factory=dict)  # b_f(d) per friction point
    strain_total: int = 0  # strain + alliance new developments over the MIX_DAYS, for story weights


def first_day_needed(first: date) -> date:
    """The earliest day whose counts the series from ``first`` reads."""
    return first - timedelta(days=BASELINE_DAYS)


def index_day(counts: Counts, frictions: Sequence[str], day: date) -> IndexDay:
    baselines = {
        f: sum(counts.get((f, day - timedelta(days=k)), 0) for k in range(1, BASELINE_DAYS + 1)) / BASELINE_DAYS
        for f in frictions
    }
    excess = [
        min(max((counts.get((f, day), 0) - b) / math.sqrt(b + 1), 0.0), CLIP) for f, b in baselines.items()
    ]
    friction = sum(excess) / len(excess) if excess else 0.0
    recent = [day - timedelta(days=k) for k in range(MIX_DAYS)]
    strain = sum(counts.get((label, d), 0) for label in STRAIN for d in recent)
    alliance = sum(counts.get((label, d), 0) for label in ALLIANCE for d in recent)
    mix = (strain - alliance) / (strain + alliance + 1)
    value = min(max(BASE + FRICTION_WEIGHT * friction + MIX_WEIGHT * mix, 0.0), 100.0)
    return IndexDay(day, round(value, 1), round(friction, 3), round(mix, 3), baselines, strain + alliance)


def index_series(counts: Counts, frictions: Sequence[str], days: Sequence[date]) -> list[IndexDay]:
    return [index_day(counts, frictions, day) for day in days]


def story_weight(point: IndexDay, labels: Sequence[str], frictions: Sequence[str]) -> float:
    """How much one new development with these labels adds to that day's index: its
    friction points' share of F, and its scenario's share of the mix."""
    weight = sum(
        FRICTION_WEIGHT / (len(frictions) * math.sqrt(point.baselines.get(label, 0.0) + 1))
        for label in labels if label in frictions
    )
    if any(label in STRAIN or label in ALLIANCE for label in labels):
        weight += MIX_WEIGHT / (point.strain_total + 1)
    return weight
