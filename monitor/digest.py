"""The daily digest: choose a window, compute what moved, render it, send it when due.

A window runs over ``articles.fetched_at``: from the end of the last covered digest to
now (or the schedule slot), so nothing falls between two digests, even after downtime.
``build_digest`` reads the store into a ``Digest``; ``render_digest`` turns it into a
subject, inlined-CSS HTML and a plain-text part (Jinja2, autoescaped); ``mailer`` sends
it. ``send_due_digest`` is the scheduler's entry point; ``preview_digest`` and
``send_digest_now`` are the CLI's.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine

from monitor import mailer
from monitor.errors import InputError, MailError
from monitor.records import RenderedDigest
from monitor.settings import DigestSettings, Settings
from monitor.storage import digests as store
from monitor.taxonomy import Label, Taxonomy

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).parent / "templates"
DAY = timedelta(days=1)
DEFAULT_WINDOW = timedelta(hours=24)  # the first digest ever covers the last day
TREND_DAYS = 14  # the trend picture's width, in local days
TOP_ENTITIES = 10
STORY_ENTITIES = 3  # entities shown beside a story
RETRY_FAILED_AFTER = timedelta(minutes=15)  # the daemon retries a failed window no sooner than this


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


# --- window and schedule -----------------------------------------------------------


def digest_window(
    engine: Engine, now: datetime, since: datetime | None = None, until: datetime | None = None
) -> tuple[datetime, datetime]:
    """[start, end): explicit bounds win; else from the last covered digest (or 24 h ago) to now."""
    if until is not None and until > now:
        raise InputError(f"--until {until:%Y-%m-%d %H:%M} UTC is in the future")
    end = until or now
    start = since
    if start is None:
        with engine.connect() as conn:
            covered = store.last_sent_window_end(conn)
        start = covered if covered is not None and covered < end else end - DEFAULT_WINDOW
    if start >= end:
        raise InputError(f"empty window: {start:%Y-%m-%d %H:%M} is not before {end:%Y-%m-%d %H:%M} UTC")
    return start, end


def _slot(day: date, digest: DigestSettings) -> datetime:
    # zoneinfo gives send_at its offset on that very day, so 07:00 stays 07:00 local
    # across DST changes; a time in a spring-forward gap lands an hour later.
    return datetime.combine(day, digest.send_at, tzinfo=ZoneInfo(digest.timezone)).astimezone(timezone.utc)


def _nearby_slots(digest: DigestSettings, now: datetime) -> list[datetime]:
    today = now.astimezone(ZoneInfo(digest.timezone)).date()
    return [_slot(today + timedelta(days=offset), digest) for offset in (-2, -1, 0, 1, 2)]


def last_send_time(settings: Settings, now: datetime) -> datetime:
    """The latest scheduled send (UTC) at or before ``now``."""
    return max(slot for slot in _nearby_slots(settings.digest, now) if slot <= now)


def next_send_time(settings: Settings, now: datetime) -> datetime:
    """The next scheduled send (UTC) after ``now``: for `status` and the web page."""
    return min(slot for slot in _nearby_slots(settings.digest, now) if slot > now)


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


# --- render ------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _environment():
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=lambda name: bool(name) and name.endswith(".html.j2"),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    return env


def _edition(digest: Digest) -> str:
    """The local day the digest is for: the day its window ends."""
    day = (digest.window_end - timedelta(microseconds=1)).astimezone(ZoneInfo(digest.timezone))
    return f"{day:%a} {day.day} {day:%b %Y}"


def subject_for(digest: Digest) -> str:
    when = _edition(digest)
    if digest.empty:
        return f"{digest.subject_prefix}: nothing moved ({when})"
    count = digest.totals.relevant_stories
    subject = f"{digest.subject_prefix}: {count} {'story' if count == 1 else 'stories'}"
    spikes = [movement.label.name for movement in digest.spikes]
    if spikes:
        shown = ", ".join(spikes[:2]) + (f" +{len(spikes) - 2} more" if len(spikes) > 2 else "")
        subject += f", spiking: {shown}"
    return f"{subject} ({when})"  # ASCII unless a name is not: plain in every client


def render_digest(digest: Digest) -> tuple[str, str, str]:
    """(subject, html with CSS inlined, plain text) from one Digest."""
    import css_inline

    context = {"d": digest, "subject": subject_for(digest), **_helpers(digest)}
    env = _environment()
    html = env.get_template("digest.html.j2").render(context)
    html = css_inline.CSSInliner(load_remote_stylesheets=False, keep_style_tags=False).inline(html)
    text = env.get_template("digest.txt.j2").render(context)
    return context["subject"], html, text


def render(digest: Digest) -> RenderedDigest:
    subject, html, text = render_digest(digest)
    return RenderedDigest(digest.window_start, digest.window_end, subject, html, text, digest.totals.relevant_stories)


def _helpers(digest: Digest) -> dict:
    zone = ZoneInfo(digest.timezone)
    peak = max((count for trend in digest.trends for count in trend.counts), default=0)
    days = digest.trends[0].days if digest.trends else []

    def when(moment: datetime, year: bool = False) -> str:
        local = moment.astimezone(zone)
        return f"{local:%a} {local.day} {local:%b}" + (f" {local.year}" if year else "") + f" {local:%H:%M}"

    def day(value: date) -> str:
        return f"{value:%a} {value.day} {value:%b}"

    def number(value: float | None) -> str:
        return "–" if value is None else f"{value:.1f}"

    def change(move: EntityMove) -> str:
        if move.expected is None:
            return ""
        if move.expected < 0.05:
            return "new"
        return f"{move.count - move.expected:+.1f}"

    def bar(count: int, height: int = 30) -> int:
        return round(count / peak * height) if peak and count else 0

    def spark(counts: list[int]) -> str:
        blocks = "▁▂▃▄▅▆▇█"
        return "".join(blocks[min(7, round(c / peak * 7))] if peak and c else "·" for c in counts)

    def link(url: str) -> str | None:
        return url if urlsplit(url).scheme in ("http", "https") else None

    def width(count: int, top: int, full: int = 120) -> int:
        return max(2, round(count / top * full)) if top and count else 0

    return {
        "when": when, "day": day, "number": number, "change": change, "bar": bar, "spark": spark, "link": link,
        "width": width, "edition": _edition(digest), "window_to": when(digest.window_end),
        "window_from": when(digest.window_start, year=digest.window_start.year != digest.window_end.year),
        "top_count": max((movement.count for movement in digest.movements), default=0),
        "spike_rule": f"{digest.spike_ratio:g}× the average and {digest.spike_min_stories} stories",
        "trend_days": len(days), "trend_from": day(days[0]) if days else "", "trend_to": day(days[-1]) if days else "",
        "frictions": [s for s in digest.sections if s.label.kind == "friction_point"],
        "scenarios": [s for s in digest.sections if s.label.kind == "scenario"],
    }


# --- entry points ------------------------------------------------------------------


def preview_digest(
    app, path: Path, now: datetime, since: datetime | None = None, until: datetime | None = None
) -> tuple[Digest, Path]:
    """Write the HTML (or, for a .eml path, the whole message) without sending."""
    start, end = digest_window(app.engine, now, since, until)
    digest = build_digest(app.engine, app.settings, app.taxonomy, start, end)
    rendered = render(digest)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".eml":
        mailer.write_eml(mailer.build_message(rendered, app.settings, now), path)
    else:
        path.write_text(rendered.html, encoding="utf-8")
    return digest, path


def send_digest_now(app, now: datetime, since=None, until=None, force: bool = False) -> tuple[Digest, mailer.SendOutcome]:
    """`digest --send`: build the window's digest and send it (once per window unless forced).

    Without --since/--until the window runs from the last digest sent; when nothing at
    all was fetched since then, a second plain --send would only mail "nothing moved"
    again, so it sends nothing (status "nothing_new") unless forced.
    """
    start, end = digest_window(app.engine, now, since, until)
    if since is None and until is None and not force:
        with app.engine.connect() as conn:
            covered = store.last_sent_window_end(conn)
            fetched = store.window_totals(conn, start, end).fetched
        if covered is not None and covered == start and fetched == 0:
            digest = build_digest(app.engine, app.settings, app.taxonomy, start, end)
            return digest, mailer.SendOutcome("nothing_new", "", [])
    return _build_and_send(app, start, end, now, force)


def _build_and_send(app, start: datetime, end: datetime, now: datetime, force: bool = False):
    settings = app.settings
    digest = build_digest(app.engine, settings, app.taxonomy, start, end)
    if digest.empty and not settings.digest.send_empty:
        message_id = mailer.digest_message_id(start, end, settings.smtp.sender)
        with app.engine.begin() as conn:
            store.record_skipped(
                conn, window_start=start, window_end=end, message_id=message_id, subject=subject_for(digest), now=now
            )
        log.info("digest window %s..%s is empty; not sent (digest.send_empty = false)", start, end)
        return digest, mailer.SendOutcome("skipped", message_id, [])
    return digest, mailer.send_digest(app.engine, render(digest), settings, now, force=force)


def send_due_digest(app, now: datetime) -> mailer.SendOutcome | None:
    """The scheduler's tick: send the digest for the latest send_at slot if it is due.

    Due when the slot has passed by at most grace_hours and no covered digest reaches
    it. The window ends at the slot itself, so every retry of it is the same window
    (same Message-ID); a failed window is retried on later ticks, at most every
    RETRY_FAILED_AFTER. Returns None when nothing was due (or sending failed).
    """
    settings = app.settings
    slot = last_send_time(settings, now)
    if now - slot > timedelta(hours=settings.digest.grace_hours):
        return None
    with app.engine.connect() as conn:
        covered = store.last_sent_window_end(conn)
        if covered is not None and covered >= slot:
            return None
        start = covered if covered is not None else slot - DEFAULT_WINDOW
        earlier = store.find_digest(conn, mailer.digest_message_id(start, slot, settings.smtp.sender))
    if earlier is not None and earlier.last_attempt_at is not None and now - earlier.last_attempt_at < RETRY_FAILED_AFTER:
        return None
    try:
        return _build_and_send(app, start, slot, now)[1]
    except MailError as exc:
        log.error("scheduled digest for %s not sent: %s", slot, exc)
        return None
