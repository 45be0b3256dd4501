"""Building a digest's content: what a window of fetched articles holds and what moved.

``build_digest`` reads the store into a ``Digest`` (plain records, no rendering): the
totals, each label's movement against its trailing average, the stories per section,
the most-mentioned entities and the 14-day trends.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine

from monitor import tension
from monitor.settings import DigestSettings, Settings
from monitor.storage import digests as store
from monitor.storage import signposts as signpost_store
from monitor.storage import threads as thread_store
from monitor.storage.signposts import FiredSignpost
from monitor.storage.threads import ThreadInfo
from monitor.taxonomy import Label, Taxonomy

DAY = timedelta(days=1)
TREND_DAYS = 14  # the trend picture's width, in local days
TOP_ENTITIES = 10
STORY_ENTITIES = 3  # entities shown beside a story


@dataclass(frozen=True)
class DigestStory:
    """One story (a near-duplicate cluster), listed once, under its strongest label."""

    title: str
    url: str
    source: str
    published_at: datetime
    score: float | None  # the model's score for its strongest label (None: an analyst's label)
    entities: list[str]
    also_in: list[str]  # other sources carrying the same story (its near-duplicate cluster)
    analyst: bool  # its strongest label was added by an analyst's correction
    labels: list[Label] = field(default_factory=list)  # every effective label, the strongest first (chips)
    outlets: int = 1  # distinct sources carrying it
    novel: bool = True  # first published inside the window (not an older story first seen now)
    significance: float = 0.0  # what sections are ranked by; see significance()
    article_id: int = 0  # the article shown for the story
    cluster: int = 0  # its story cluster id
    thread: ThreadInfo | None = None  # its developing thread (None: not threaded yet)

    @property
    def follow_up(self) -> bool:
        """It continues a development an earlier story began."""
        return self.thread is not None and not self.thread.is_new


@dataclass(frozen=True)
class Section:
    label: Label
    story_count: int  # stories whose strongest label this is, at or above the minimum score
    stories: list[DigestStory]  # the first digest.items_per_section, most significant first
    below_min: int = 0  # stories under digest.min_score: counted, not listed

    @property
    def more(self) -> int:
        return self.story_count - len(self.stories)


@dataclass(frozen=True)
class Movement:
    label: Label
    count: int  # new developments in the window (stories that are not a follow-up in a thread)
    daily_average: float | None  # over the trailing days; None without a day of history
    expected: float | None  # daily_average scaled to the window's length
    spike: bool
    follow_ups: int = 0  # stories in the window that continue an earlier development


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
class SignpostStatus:
    """One line of the signpost board: a signpost and when it last fired (if ever)."""

    id: str
    name: str
    scenario: Label
    last: FiredSignpost | None  # its latest hit up to the window's end

    @property
    def in_window(self) -> int:
        return self.last.hits_in_window if self.last else 0


@dataclass(frozen=True)
class TensionSummary:
    """The tension index for the window's middle (UTC) day, its recent series and the
    stories of the window that moved it most (monitor/tension.py)."""

    today: tension.IndexDay
    series: list[tension.IndexDay]  # TREND_DAYS days ending today, oldest first
    movers: list[DigestStory]  # up to TENSION_MOVERS listed stories, biggest weight first

    @property
    def change(self) -> float | None:
        return round(self.today.value - self.series[-2].value, 1) if len(self.series) > 1 else None


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
    min_score: float = 0.5
    movements: list[Movement] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)
    entities: list[EntityMove] = field(default_factory=list)
    trends: list[Trend] = field(default_factory=list)
    failing_feeds: list[store.FailingFeed] = field(default_factory=list)
    active_feeds: int = 0
    model_versions: list[str] = field(default_factory=list)
    signposts: list[SignpostStatus] = field(default_factory=list)
    tension: TensionSummary | None = None

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
        rows, threads, movements, history = _window_movements(conn, taxonomy, ds, window_start, window_end)
        sections = _sections(conn, taxonomy, rows, threads, window_start, window_end, ds)
        return Digest(
            window_start=window_start,
            window_end=window_end,
            timezone=ds.timezone,
            subject_prefix=ds.subject_prefix,
            trailing_days=ds.trailing_days,
            totals=totals,
            spike_ratio=ds.spike_ratio,
            spike_min_stories=ds.spike_min_stories,
            min_score=ds.min_score,
            movements=movements,
            sections=sections,
            entities=_entities(conn, window_start, window_end, trailing_start, history, window_days),
            trends=_trends(conn, taxonomy, window_end, ZoneInfo(ds.timezone)),
            failing_feeds=store.failing_feeds(conn),
            active_feeds=store.active_feed_count(conn),
            model_versions=store.model_versions(conn, window_start, window_end),
            signposts=_signposts(conn, settings, taxonomy, window_start, window_end),
            tension=_tension(conn, taxonomy, window_start, window_end, sections),
        )


def window_movements(engine: Engine, settings: Settings, taxonomy: Taxonomy, start: datetime, end: datetime) -> list[Movement]:
    """What moved in [start, end) against the trailing days (alerts check spikes with it)."""
    with engine.connect() as conn:
        return _window_movements(conn, taxonomy, settings.digest, start, end)[2]


def _window_movements(conn, taxonomy: Taxonomy, ds: DigestSettings, start: datetime, end: datetime):
    """(labelled rows, thread info, movements, days of history) for a window."""
    trailing_start = start - timedelta(days=ds.trailing_days)
    rows = store.window_labelled(conn, start, end)
    history = _history_days(store.first_fetched_at(conn), trailing_start, start)
    trailing = store.label_story_counts(conn, trailing_start, start) if history else {}
    threads = thread_store.thread_info(conn, {row.cluster for row in rows})
    movements = _movements(taxonomy, rows, threads, trailing, history, (end - start) / DAY, ds)
    return rows, threads, movements, history


def _history_days(first_fetched: datetime | None, trailing_start: datetime, window_start: datetime) -> float | None:
    """Days of trailing history the store really has; None under one day (no average yet)."""
    if first_fetched is None:
        return None
    days = (window_start - max(first_fetched, trailing_start)) / DAY
    return days if days >= 1 else None


def _labels(taxonomy: Taxonomy) -> list[Label]:
    return taxonomy.friction_points + taxonomy.scenarios


def _movements(taxonomy, rows, threads, trailing: dict[str, int], history, window_days: float, ds: DigestSettings) -> list[Movement]:
    """Per label: new developments against the trailing daily average of new developments;
    follow-ups are counted beside them but never make a spike."""
    new: dict[str, set[int]] = defaultdict(set)
    follow: dict[str, set[int]] = defaultdict(set)
    for row in rows:
        info = threads.get(row.cluster)
        (new if info is None or info.is_new else follow)[row.label_id].add(row.cluster)
    movements = []
    for label in _labels(taxonomy):
        count = len(new[label.id])
        average = trailing.get(label.id, 0) / history if history else None
        expected = average * window_days if average is not None else None
        spike = expected is not None and count >= ds.spike_min_stories and count >= ds.spike_ratio * expected
        movements.append(Movement(label, count, average, expected, spike, len(follow[label.id])))
    return movements


# Ranking stories inside a section (documented in README, "The daily digest"): the
# strongest label's score, plus OUTLET_WEIGHT per further outlet carrying the story (at
# most MAX_OUTLET_BONUS outlets), plus NOVELTY_BONUS when it was first published inside
# the window and is a new development (not a follow-up in a developing thread). An analyst's label counts as ANALYST_STRENGTH and is always listed.
OUTLET_WEIGHT = 0.15
MAX_OUTLET_BONUS = 4
NOVELTY_BONUS = 0.2
ANALYST_STRENGTH = 1.0


def significance(score: float, outlets: int, novel: bool) -> float:
    return score + OUTLET_WEIGHT * min(outlets - 1, MAX_OUTLET_BONUS) + (NOVELTY_BONUS if novel else 0.0)


def _strength(row: store.LabelledArticle) -> float:
    return ANALYST_STRENGTH if row.origin == "analyst" else (row.score or 0.0)


def _sections(
    conn: Connection, taxonomy: Taxonomy, rows, threads, window_start: datetime, window_end: datetime, ds: DigestSettings
) -> list[Section]:
    """Each story once: grouped by cluster, filed under its strongest label, ranked by significance."""
    by_cluster: dict[int, list[store.LabelledArticle]] = defaultdict(list)
    for row in rows:
        by_cluster[row.cluster].append(row)
    members = store.cluster_sources(conn, by_cluster, window_end)
    order = {label.id: index for index, label in enumerate(_labels(taxonomy))}
    filed: dict[str, list[tuple[store.LabelledArticle, list[store.LabelledArticle]]]] = defaultdict(list)
    below: dict[str, int] = defaultdict(int)
    for cluster_rows in by_cluster.values():
        lead = min(cluster_rows, key=lambda r: (-_strength(r), r.fetched_at, r.id, order.get(r.label_id, 99)))
        if lead.origin != "analyst" and _strength(lead) < ds.min_score:
            below[lead.label_id] += 1
        else:
            filed[lead.label_id].append((lead, cluster_rows))
    ranked = {
        label_id: sorted(
            (_story(lead, cluster_rows, members.get(lead.cluster, []), taxonomy, window_start, threads.get(lead.cluster))
             for lead, cluster_rows in found),
            key=lambda story: (-story.significance, -story.published_at.timestamp(), story.url),
        )[:ds.items_per_section]
        for label_id, found in filed.items()
    }
    names = store.article_entities(conn, {s.article_id for stories in ranked.values() for s in stories})
    sections = []
    for label in _labels(taxonomy):
        if label.id not in filed and label.id not in below:
            continue
        stories = [
            replace(story, entities=names.get(story.article_id, [])[:STORY_ENTITIES])
            for story in ranked.get(label.id, [])
        ]
        sections.append(Section(label, len(filed.get(label.id, [])), stories, below.get(label.id, 0)))
    return sections


def _story(lead, cluster_rows, members: list[tuple[int, str]], taxonomy: Taxonomy, window_start, thread) -> DigestStory:
    source = lead.source or ""
    sources = {source} | {other for _id, other in members if other}
    also_in: list[str] = []
    for article_id, other in members:
        if article_id != lead.id and other and other != source and other not in also_in:
            also_in.append(other)
    strengths: dict[str, float] = {}
    for row in cluster_rows:
        strengths[row.label_id] = max(strengths.get(row.label_id, 0.0), _strength(row))
    by_id = {label.id: label for label in _labels(taxonomy)}
    labels = [by_id[label_id] for label_id in sorted(strengths, key=lambda name: (-strengths[name], name)) if label_id in by_id]
    labels.sort(key=lambda label: label.id != lead.label_id)  # the section's label first
    novel = min(row.published_at for row in cluster_rows) >= window_start
    fresh = novel and (thread is None or thread.is_new)  # new in the window, and a new development
    return DigestStory(
        title=lead.title, url=lead.url, source=source, published_at=lead.published_at, score=lead.score,
        entities=[], also_in=also_in, thread=thread, analyst=lead.origin == "analyst", labels=labels,
        outlets=len(sources - {""}) or 1, novel=novel,
        significance=significance(_strength(lead), len(sources - {""}) or 1, fresh), article_id=lead.id,
        cluster=lead.cluster,
    )


def _signposts(conn, settings: Settings, taxonomy: Taxonomy, start: datetime, end: datetime) -> list[SignpostStatus]:
    """Every configured signpost: those that fired in the window first, then by last firing."""
    fired = signpost_store.board(conn, [signpost.id for signpost in settings.signposts], start, end)
    board = [
        SignpostStatus(signpost.id, signpost.name, taxonomy.get(signpost.scenario), fired.get(signpost.id))
        for signpost in settings.signposts
    ]
    never = datetime.min.replace(tzinfo=timezone.utc)
    return sorted(board, key=lambda s: (-s.in_window, -(s.last.fetched_at if s.last else never).timestamp()))


TENSION_MOVERS = 3


def tension_series(conn: Connection, taxonomy: Taxonomy, last_day: date, days: int) -> list[tension.IndexDay]:
    """The tension index for ``days`` UTC days ending ``last_day``, oldest first."""
    first = last_day - timedelta(days=days - 1)
    start = datetime.combine(tension.first_day_needed(first), time(0), tzinfo=timezone.utc)
    end = datetime.combine(last_day + DAY, time(0), tzinfo=timezone.utc)
    counts = store.new_development_counts(conn, start, end)
    frictions = [label.id for label in taxonomy.friction_points]
    return tension.index_series(counts, frictions, [first + timedelta(days=k) for k in range(days)])


def _tension(conn, taxonomy: Taxonomy, window_start: datetime, window_end: datetime, sections: list[Section]) -> TensionSummary:
    # The UTC day in the middle of the window: a 07:00-to-07:00 digest is about the day before.
    last_day = (window_start + (window_end - window_start) / 2).astimezone(timezone.utc).date()
    series = tension_series(conn, taxonomy, last_day, TREND_DAYS)
    today = series[-1]
    frictions = [label.id for label in taxonomy.friction_points]
    stories = [story for section in sections for story in section.stories if not story.follow_up]
    weighted = sorted(
        stories, key=lambda s: (-tension.story_weight(today, [label.id for label in s.labels], frictions), -s.significance)
    )
    return TensionSummary(today, series, weighted[:TENSION_MOVERS])


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
