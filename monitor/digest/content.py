"""Building a digest's content: what a window of fetched articles holds and what moved.

``build_digest`` reads the store into a ``Digest`` (plain records, no rendering): the
totals, each label's movement against its trailing average, the stories per section,
the most-mentioned entities and the 14-day trends.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine

from monitor.settings import DigestSettings, Settings
from monitor.storage import digests as store
from monitor.taxonomy import Label, Taxonomy

DAY = timedelta(days=1)
TREND_DAYS = 14  # the trend picture's width, in local days
TOP_ENTITIES = 10
STORY_ENTITIES = 3  # entities shown beside a story


@dataclass(frozen=True)
class DigestStory:
    title: str
    url: str
    source: str
    published_at: datetime
    score: float | None  # the model's score for the section's label
    entities: list[str]
    also_in: list[str]  # other sources carrying the same story (its near-duplicate cluster)
    analyst: bool  # the label was added by an analyst's correction


@dataclass(frozen=True)
class Section:
    label: Label
    story_count: int
    stories: list[DigestStory]  # the first digest.items_per_section, best score first

    @property
    def more(self) -> int:
        return self.story_count - len(self.stories)


@dataclass(frozen=True)
class Movement:
    label: Label
    count: int  # stories in the window
    daily_average: float | None  # over the trailing days; None without a day of history
    expected: float | None  # daily_average scaled to the window's length
    spike: bool


@dataclass(frozen=True)
class EntityMove:
    name: str
    count: int  # relevant articles naming it in the window
    expected: float | None  # trailing daily average scaled to the window; None without history

    @property
    def change(self) -> float | None:
        return None if self.expected is None else self.count - self.expected


@dataclass(frozen=True)
class Trend:
    label: Label
    days: list[date]  # local days, oldest first
    counts: list[int]  # stories by published_at day


@dataclass(frozen=True)
class Digest:
    window_start: datetime
    window_end: datetime
    timezone: str
    subject_prefix: str
    trailing_days: int
    totals: store.WindowTotals
    spike_ratio: float = 2.0
    spike_min_stories: int = 3
    movements: list[Movement] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)
    entities: list[EntityMove] = field(default_factory=list)
    trends: list[Trend] = field(default_factory=list)
    failing_feeds: list[store.FailingFeed] = field(default_factory=list)
    active_feeds: int = 0
    model_versions: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return self.totals.relevant_stories == 0

    @property
    def spikes(self) -> list[Movement]:
        return [movement for movement in self.movements if movement.spike]


# --- build -------------------------------------------------------------------------


def build_digest(engine: Engine, settings: Settings, taxonomy: Taxonomy, window_start: datetime, window_end: datetime) -> Digest:
    ds = settings.digest
    trailing_start = window_start - timedelta(days=ds.trailing_days)
    window_days = (window_end - window_start) / DAY
    with engine.connect() as conn:
        totals = store.window_totals(conn, window_start, window_end)
        rows = store.window_labelled(conn, window_start, window_end)
        history = _history_days(store.first_fetched_at(conn), trailing_start, window_start)
        trailing = store.label_story_counts(conn, trailing_start, window_start) if history else {}
        return Digest(
            window_start=window_start,
            window_end=window_end,
            timezone=ds.timezone,
            subject_prefix=ds.subject_prefix,
            trailing_days=ds.trailing_days,
            totals=totals,
            spike_ratio=ds.spike_ratio,
            spike_min_stories=ds.spike_min_stories,
            movements=_movements(taxonomy, rows, trailing, history, window_days, ds),
            sections=_sections(conn, taxonomy, rows, window_end, ds.items_per_section),
            entities=_entities(conn, window_start, window_end, trailing_start, history, window_days),
            trends=_trends(conn, taxonomy, window_end, ZoneInfo(ds.timezone)),
            failing_feeds=store.failing_feeds(conn),
            active_feeds=store.active_feed_count(conn),
            model_versions=store.model_versions(conn, window_start, window_end),
        )


def _history_days(first_fetched: datetime | None, trailing_start: datetime, window_start: datetime) -> float | None:
    """Days of trailing history the store really has; None under one day (no average yet)."""
    if first_fetched is None:
        return None
    days = (window_start - max(first_fetched, trailing_start)) / DAY
    return days if days >= 1 else None


def _labels(taxonomy: Taxonomy) -> list[Label]:
    return taxonomy.friction_points + taxonomy.scenarios


def _movements(taxonomy, rows, trailing: dict[str, int], history, window_days: float, ds: DigestSettings) -> list[Movement]:
    stories: dict[str, set[int]] = defaultdict(set)
    for row in rows:
        stories[row.label_id].add(row.cluster)
    movements = []
    for label in _labels(taxonomy):
        count = len(stories[label.id])
        average = trailing.get(label.id, 0) / history if history else None
        expected = average * window_days if average is not None else None
        spike = expected is not None and count >= ds.spike_min_stories and count >= ds.spike_ratio * expected
        movements.append(Movement(label, count, average, expected, spike))
    return movements


def _sections(conn: Connection, taxonomy: Taxonomy, rows, window_end: datetime, limit: int) -> list[Section]:
    by_label: dict[str, dict[int, store.LabelledArticle]] = defaultdict(dict)
    for row in rows:  # one representative per story cluster: best score, then first fetched
        best = by_label[row.label_id].get(row.cluster)
        if best is None or _rank(row) < _rank(best):
            by_label[row.label_id][row.cluster] = row
    chosen = {
        label_id: sorted(clusters.values(), key=lambda r: (-(r.score or 0.0), -r.published_at.timestamp(), r.id))
        for label_id, clusters in by_label.items()
    }
    shown = [row for label_rows in chosen.values() for row in label_rows[:limit]]
    members = store.cluster_sources(conn, {row.cluster for row in shown}, window_end)
    names = store.article_entities(conn, {row.id for row in shown})
    sections = []
    for label in _labels(taxonomy):
        label_rows = chosen.get(label.id, [])
        if label_rows:
            stories = [_story(row, members.get(row.cluster, []), names.get(row.id, [])) for row in label_rows[:limit]]
            sections.append(Section(label, len(label_rows), stories))
    return sections


def _rank(row: store.LabelledArticle) -> tuple:
    return (-(row.score or 0.0), row.fetched_at, row.id)


def _story(row: store.LabelledArticle, members: list[tuple[int, str]], entity_names: list[str]) -> DigestStory:
    source = row.source or ""
    also_in: list[str] = []
    for article_id, other in members:
        if article_id != row.id and other and other != source and other not in also_in:
            also_in.append(other)
    return DigestStory(
        title=row.title, url=row.url, source=source, published_at=row.published_at, score=row.score,
        entities=entity_names[:STORY_ENTITIES], also_in=also_in, analyst=row.origin == "analyst",
    )


def _entities(conn, window_start, window_end, trailing_start, history, window_days: float) -> list[EntityMove]:
    counts = store.entity_counts(conn, window_start, window_end)
    top = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:TOP_ENTITIES]
    keys = [key for key, _count in top]
    names = store.entity_names(conn, window_start, window_end, keys)
    trailing = store.entity_counts(conn, trailing_start, window_start, keys) if history else {}
    return [
        EntityMove(names.get(key, key), count, trailing.get(key, 0) / history * window_days if history else None)
        for key, count in top
    ]


def _trends(conn, taxonomy: Taxonomy, window_end: datetime, zone: ZoneInfo) -> list[Trend]:
    last_day = (window_end - timedelta(microseconds=1)).astimezone(zone).date()
    days = [last_day - timedelta(days=back) for back in range(TREND_DAYS - 1, -1, -1)]
    start = datetime.combine(days[0], time(0), tzinfo=zone).astimezone(timezone.utc)
    labels = taxonomy.friction_points
    seen: dict[tuple[str, date], set[int]] = defaultdict(set)
    for label_id, published_at, cluster in store.label_publications(conn, [label.id for label in labels], start, window_end):
        seen[(label_id, published_at.astimezone(zone).date())].add(cluster)
    return [Trend(label, days, [len(seen[(label.id, day)]) for day in days]) for label in labels]
