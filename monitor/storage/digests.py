"""The digest aggregate: what a window of fetched articles holds, and the send records.

Content queries read a window over ``articles.fetched_at`` (when we stored an article),
effective labels from ``article_labels`` (analyst corrections already applied) and story
clusters (``articles.cluster_id``; an article without one is its own story). Every query
is a range scan on an index, so a digest stays fast on a big store.

Send records: one ``digests`` row per window, identified by its deterministic
Message-ID. ``pending`` while trying, ``sent`` as soon as the SMTP server answered 250
to DATA, ``failed`` after the last try, ``uncertain`` when the connection died between
the message going out and the server's reply, ``skipped`` for an empty window that was
not mailed (``digest.send_empty = false``). Who may send a row is decided by a claim in
``locks`` (see monitor.digest.deliver), not here.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Connection, Engine, and_, distinct, exists, func, insert, select, update

from monitor.records import DigestRecord
from monitor.storage.feeds import insert_ignoring_conflicts
from monitor.storage.schema import article_labels, article_scores, articles, digests, entities, feeds, story_threads

# Entity labels that are values, not actors: never "most mentioned".
VALUE_LABELS = ("DATE", "TIME", "CARDINAL", "ORDINAL", "QUANTITY", "PERCENT", "MONEY")
# A window in one of these is covered: the next starts at its end. "uncertain" (the
# message went out, the server's reply was lost) counts: it was most likely delivered.
DONE_STATUSES = ("sent", "skipped", "uncertain")
_CHUNK = 500  # ids per IN (...) list

CLUSTER_KEY = func.coalesce(articles.c.cluster_id, articles.c.id)
ENTITY_KEY = func.coalesce(entities.c.canonical_id, func.lower(entities.c.text))
SOURCE = func.coalesce(articles.c.source, feeds.c.name)


@dataclass(frozen=True)
class WindowTotals:
    fetched: int  # articles stored in the window
    relevant_articles: int  # of which carry at least one effective label
    relevant_stories: int  # distinct story clusters among them


@dataclass(frozen=True)
class LabelledArticle:
    """One (article, effective label) pair in a window."""

    id: int
    title: str
    url: str
    source: str | None
    published_at: datetime
    fetched_at: datetime
    cluster: int
    label_id: str
    origin: str  # model | analyst
    score: float | None


@dataclass(frozen=True)
class FailingFeed:
    name: str
    url: str
    failing_since: datetime
    error_count: int
    last_status: int | None
    last_error: str | None


def _window(column, start: datetime, end: datetime):
    return and_(column >= start, column < end)


def _labelled():
    return exists().where(article_labels.c.article_id == articles.c.id)


def _chunks(values: Iterable[int]) -> Iterator[list[int]]:
    values = sorted(set(values))
    for index in range(0, len(values), _CHUNK):
        yield values[index:index + _CHUNK]


# --- content -----------------------------------------------------------------------


def window_totals(conn: Connection, start: datetime, end: datetime) -> WindowTotals:
    in_window = _window(articles.c.fetched_at, start, end)
    fetched = conn.execute(select(func.count()).select_from(articles).where(in_window)).scalar_one()
    relevant, stories = conn.execute(
        select(func.count(), func.count(distinct(CLUSTER_KEY))).where(in_window, _labelled())
    ).one()
    return WindowTotals(fetched, relevant, stories)


def window_labelled(conn: Connection, start: datetime, end: datetime) -> list[LabelledArticle]:
    """Every (article, effective label) pair fetched in the window, with the label's score."""
    scores = and_(article_scores.c.article_id == articles.c.id, article_scores.c.label_id == article_labels.c.label_id)
    query = (
        select(
            articles.c.id, articles.c.title, articles.c.url, SOURCE.label("source"), articles.c.published_at,
            articles.c.fetched_at, CLUSTER_KEY.label("cluster"), article_labels.c.label_id,
            article_labels.c.origin, article_scores.c.score,
        )
        .select_from(
            articles.join(article_labels, article_labels.c.article_id == articles.c.id)
            .outerjoin(article_scores, scores)
            .outerjoin(feeds, feeds.c.id == articles.c.feed_id)
        )
        .where(_window(articles.c.fetched_at, start, end))
        .order_by(articles.c.id, article_labels.c.label_id)
    )
    return [LabelledArticle(**row._mapping) for row in conn.execute(query)]


def cluster_sources(conn: Connection, clusters: Iterable[int], until: datetime) -> dict[int, list[tuple[int, str]]]:
    """cluster id -> [(article id, source)] for the members stored before ``until``."""
    found: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for chunk in _chunks(clusters):
        query = (
            select(articles.c.cluster_id, articles.c.id, SOURCE.label("source"))
            .select_from(articles.outerjoin(feeds, feeds.c.id == articles.c.feed_id))
            .where(articles.c.cluster_id.in_(chunk), articles.c.fetched_at < until)
            .order_by(articles.c.id)
        )
        for cluster, article_id, source in conn.execute(query):
            found[cluster].append((article_id, source or ""))
    return dict(found)


def article_entities(conn: Connection, article_ids: Iterable[int]) -> dict[int, list[str]]:
    """article id -> entity texts, most mentioned first (known canonical ids before others)."""
    found: dict[int, list[str]] = defaultdict(list)
    for chunk in _chunks(article_ids):
        query = (
            select(entities.c.article_id, entities.c.text)
            .where(entities.c.article_id.in_(chunk), entities.c.label.not_in(VALUE_LABELS))
            .order_by(
                entities.c.article_id, entities.c.mentions.desc(),
                entities.c.canonical_id.is_(None), entities.c.text,
            )
        )
        for article_id, text in conn.execute(query):
            if text not in found[article_id]:
                found[article_id].append(text)
    return dict(found)


def label_story_counts(conn: Connection, start: datetime, end: datetime) -> dict[str, int]:
    """label id -> distinct new developments with that effective label fetched in [start, end):
    stories that are not a follow-up in a developing thread (unthreaded stories count)."""
    query = (
        select(article_labels.c.label_id, func.count(distinct(CLUSTER_KEY)))
        .select_from(
            articles.join(article_labels, article_labels.c.article_id == articles.c.id)
            .outerjoin(story_threads, story_threads.c.cluster_id == CLUSTER_KEY)
        )
        .where(_window(articles.c.fetched_at, start, end), func.coalesce(story_threads.c.is_new, True).is_(True))
        .group_by(article_labels.c.label_id)
    )
    return {label_id: count for label_id, count in conn.execute(query)}


def new_development_counts(conn: Connection, start: datetime, end: datetime) -> dict[tuple[str, date], int]:
    """(label id, UTC day published) -> new developments (stories not a follow-up in a
    thread) published in [start, end): the tension index's input."""
    from monitor.storage.browse import day_expr

    day = day_expr(conn.dialect.name, article_labels.c.published_at)
    query = (
        select(article_labels.c.label_id, day.label("day"), func.count(distinct(CLUSTER_KEY)))
        .select_from(
            article_labels.join(articles, articles.c.id == article_labels.c.article_id)
            .outerjoin(story_threads, story_threads.c.cluster_id == CLUSTER_KEY)
        )
        .where(_window(article_labels.c.published_at, start, end), func.coalesce(story_threads.c.is_new, True).is_(True))
        .group_by(article_labels.c.label_id, day)
    )
    return {(label_id, date.fromisoformat(str(day_text)[:10])): count for label_id, day_text, count in conn.execute(query)}


def entity_counts(conn: Connection, start: datetime, end: datetime, keys: Iterable[str] | None = None) -> dict[str, int]:
    """entity key (canonical id, else lower-cased text) -> relevant articles naming it in [start, end)."""
    query = (
        select(ENTITY_KEY.label("key"), func.count(distinct(entities.c.article_id)))
        .select_from(entities.join(articles, articles.c.id == entities.c.article_id))
        .where(_window(articles.c.fetched_at, start, end), _labelled(), entities.c.label.not_in(VALUE_LABELS))
        .group_by(ENTITY_KEY)
    )
    if keys is not None:
        keys = list(keys)
        if not keys:
            return {}
        query = query.where(ENTITY_KEY.in_(keys))
    return {key: count for key, count in conn.execute(query)}


def entity_names(conn: Connection, start: datetime, end: datetime, keys: Iterable[str]) -> dict[str, str]:
    """entity key -> its most frequent surface text in the window (ties: alphabetical)."""
    keys = list(keys)
    if not keys:
        return {}
    query = (
        select(ENTITY_KEY.label("key"), entities.c.text, func.count().label("n"))
        .select_from(entities.join(articles, articles.c.id == entities.c.article_id))
        .where(_window(articles.c.fetched_at, start, end), ENTITY_KEY.in_(keys))
        .group_by(ENTITY_KEY, entities.c.text)
    )
    best: dict[str, tuple[int, str]] = {}
    for key, text, count in conn.execute(query):
        if key not in best or (-count, text) < (-best[key][0], best[key][1]):
            best[key] = (count, text)
    return {key: text for key, (_count, text) in best.items()}


def label_publications(conn: Connection, label_ids: list[str], start: datetime, end: datetime) -> list[tuple[str, datetime, int]]:
    """(label id, published_at, story cluster) for labelled articles published in [start, end)."""
    if not label_ids:
        return []
    query = (
        select(article_labels.c.label_id, article_labels.c.published_at, CLUSTER_KEY)
        .select_from(article_labels.join(articles, articles.c.id == article_labels.c.article_id))
        .where(article_labels.c.label_id.in_(label_ids), _window(article_labels.c.published_at, start, end))
    )
    return [tuple(row) for row in conn.execute(query)]


def published_span(conn: Connection, since: datetime | None = None) -> tuple[datetime, datetime] | None:
    """(first, last) published_at of the stored articles (from ``since``), or None."""
    query = select(func.min(articles.c.published_at), func.max(articles.c.published_at))
    if since is not None:
        query = query.where(articles.c.published_at >= since)
    first, last = conn.execute(query).one()
    return (first, last) if first is not None else None


def first_fetched_at(conn: Connection) -> datetime | None:
    return conn.execute(select(func.min(articles.c.fetched_at))).scalar()


def failing_feeds(conn: Connection) -> list[FailingFeed]:
    query = (
        select(feeds.c.name, feeds.c.url, feeds.c.failing_since, feeds.c.error_count, feeds.c.last_status, feeds.c.last_error)
        .where(feeds.c.active.is_(True), feeds.c.failing_since.is_not(None))
        .order_by(feeds.c.failing_since, feeds.c.name)
    )
    return [FailingFeed(**row._mapping) for row in conn.execute(query)]


def active_feed_count(conn: Connection) -> int:
    return conn.execute(select(func.count()).select_from(feeds).where(feeds.c.active.is_(True))).scalar_one()


def model_versions(conn: Connection, start: datetime, end: datetime) -> list[str]:
    """The model versions that tagged the window's articles; else the newest one in the store."""
    query = (
        select(distinct(articles.c.model_version))
        .where(_window(articles.c.fetched_at, start, end), articles.c.model_version.is_not(None))
        .order_by(articles.c.model_version)
    )
    found = list(conn.execute(query).scalars())
    if found:
        return found
    latest = conn.execute(
        select(articles.c.model_version).where(articles.c.model_version.is_not(None)).order_by(articles.c.id.desc()).limit(1)
    ).scalar()
    return [latest] if latest else []


# --- send records ------------------------------------------------------------------


def _record(row) -> DigestRecord:
    values = dict(row._mapping)
    values["recipients"] = json.loads(values["recipients"]) if values["recipients"] else []
    for column in ("html", "text_body"):
        values.pop(column, None)
    return DigestRecord(**values)


_RECORD_COLUMNS = [column for column in digests.c if column.name not in ("html", "text_body")]


def find_digest(conn: Connection, message_id: str) -> DigestRecord | None:
    row = conn.execute(select(*_RECORD_COLUMNS).where(digests.c.message_id == message_id)).first()
    return _record(row) if row else None


def ensure_row(conn: Connection, *, window_start: datetime, window_end: datetime, message_id: str, now: datetime) -> int:
    """The id of this window's row, inserted as ``pending`` if absent. Two senders racing
    here both get the one row (the Message-ID is unique; the loser's insert is ignored)."""
    conn.execute(insert_ignoring_conflicts(conn, digests).values(
        window_start=window_start, window_end=window_end, message_id=message_id, status="pending",
        attempts=0, created_at=now,
    ))
    return conn.execute(select(digests.c.id).where(digests.c.message_id == message_id)).scalar_one()


def find_digest_by_id(conn: Connection, digest_id: int) -> DigestRecord | None:
    row = conn.execute(select(*_RECORD_COLUMNS).where(digests.c.id == digest_id)).first()
    return _record(row) if row else None


def record_content(
    conn: Connection, digest_id: int, *, subject: str, recipients: list[str], html: str, text: str,
    relevant_count: int, status: str | None = None,
) -> None:
    """Store what is about to be sent (the history shows a digest exactly as sent)."""
    values = dict(subject=subject, recipients=json.dumps(recipients), html=html, text_body=text, relevant_count=relevant_count)
    if status is not None:
        values["status"] = status
    conn.execute(update(digests).where(digests.c.id == digest_id).values(**values))


def record_attempt(conn: Connection, digest_id: int, now: datetime) -> None:
    conn.execute(
        update(digests).where(digests.c.id == digest_id).values(attempts=digests.c.attempts + 1, last_attempt_at=now)
    )


def record_failure(conn: Connection, digest_id: int, error: str, final: bool) -> None:
    """Keep the error; after the last try the row is ``failed`` (unless it was sent before)."""
    conn.execute(update(digests).where(digests.c.id == digest_id).values(last_error=error[:2000]))
    if final:
        conn.execute(update(digests).where(digests.c.id == digest_id, digests.c.status != "sent").values(status="failed"))


def mark_uncertain(conn: Connection, digest_id: int, error: str) -> None:
    """The message went out but the server's reply never came: it may have been delivered.
    Never retried on its own (a retry could deliver a second copy); a sent row stays sent."""
    conn.execute(update(digests).where(digests.c.id == digest_id).values(last_error=error[:2000]))
    conn.execute(update(digests).where(digests.c.id == digest_id, digests.c.status != "sent").values(status="uncertain"))


def mark_sent(conn: Connection, digest_id: int, now: datetime, note: str | None = None) -> None:
    """Only after the SMTP server accepted the message. ``note``: e.g. recipients it refused."""
    conn.execute(update(digests).where(digests.c.id == digest_id).values(status="sent", sent_at=now, last_error=note))


def record_skipped(
    conn: Connection, *, window_start: datetime, window_end: datetime, message_id: str, subject: str, now: datetime,
) -> None:
    """An empty window not mailed (send_empty = false): covered, so the schedule moves on."""
    if conn.execute(select(digests.c.id).where(digests.c.message_id == message_id)).scalar() is not None:
        conn.execute(update(digests).where(digests.c.message_id == message_id).values(status="skipped"))
        return
    conn.execute(insert(digests).values(
        window_start=window_start, window_end=window_end, status="skipped", attempts=0, subject=subject,
        message_id=message_id, relevant_count=0, created_at=now,
    ))


def last_sent_window_end(conn: Connection) -> datetime | None:
    """The end of the last covered window (sent, or skipped as empty): where the next one starts."""
    return conn.execute(select(func.max(digests.c.window_end)).where(digests.c.status.in_(DONE_STATUSES))).scalar()


def last_sent_digest(engine: Engine) -> DigestRecord | None:
    """The most recent digest the SMTP server accepted (for `status` and the web page)."""
    with engine.connect() as conn:
        row = conn.execute(
            select(*_RECORD_COLUMNS).where(digests.c.status == "sent")
            .order_by(digests.c.window_end.desc(), digests.c.id.desc()).limit(1)
        ).first()
    return _record(row) if row else None


def latest_digest(engine: Engine) -> DigestRecord | None:
    """The most recent digest row in any status (a failed one shows its last_error)."""
    with engine.connect() as conn:
        row = conn.execute(select(*_RECORD_COLUMNS).order_by(digests.c.window_end.desc(), digests.c.id.desc()).limit(1)).first()
    return _record(row) if row else None


def digest_bodies(engine: Engine, digest_id: int) -> tuple[str | None, str | None]:
    """(html, text) as rendered for the digest row ``digest_id``."""
    with engine.connect() as conn:
        row = conn.execute(select(digests.c.html, digests.c.text_body).where(digests.c.id == digest_id)).first()
    return (row.html, row.text_body) if row else (None, None)


def digest_history(engine: Engine, limit: int = 500) -> list[DigestRecord]:
    """Every digest row but skipped empty windows, newest window first (the /digests page)."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(*_RECORD_COLUMNS).where(digests.c.status != "skipped")
            .order_by(digests.c.window_end.desc(), digests.c.id.desc()).limit(limit)
        ).all()
    return [_record(row) for row in rows]


def stored_digest(engine: Engine, digest_id: int) -> tuple[DigestRecord, str | None, str | None] | None:
    """(record, html, text) of one digest row as it was sent (or last tried), or None."""
    with engine.connect() as conn:
        record = find_digest_by_id(conn, digest_id)
    if record is None:
        return None
    return (record, *digest_bodies(engine, digest_id))
