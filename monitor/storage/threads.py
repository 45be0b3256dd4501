"""Developing threads in the store: assigning newly tagged stories, reading threads back.

``scan`` walks the articles tagged since its last run (storage/scans.py), takes each
relevant story (cluster) not yet in a thread, loads the threads open around it (stories
published within threads.GAP) and stores the assignment from ``threads.assign``. An
assignment is kept once made; near-duplicates of a story share its cluster and thread.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, delete, func, select

from monitor import threads
from monitor.storage import scans
from monitor.storage.feeds import insert_ignoring_conflicts
from monitor.storage.schema import article_labels, articles, entities, story_threads

MARK = "threads"
SIGNATURE = f"v1 gap={threads.GAP_DAYS} words={threads.MIN_SHARED_WORDS} overlap={threads.MIN_OVERLAP}"
CLUSTER = func.coalesce(articles.c.cluster_id, articles.c.id)
_CHUNK = 500


@dataclass(frozen=True)
class ThreadInfo:
    thread_id: int
    is_new: bool
    started: datetime  # when the thread's first story was published
    size: int  # stories in the thread


@dataclass(frozen=True)
class TimelineEntry:
    article_id: int
    title: str
    source: str | None
    published_at: datetime
    is_new: bool


def scan(engine: Engine) -> int:
    """Thread every relevant story tagged since the last scan; returns stories assigned."""
    assigned = 0
    for conn, batch in scans.batches(engine, MARK, SIGNATURE, lambda conn: conn.execute(delete(story_threads))):
        assigned += _assign_batch(conn, batch)
    return assigned


def _assign_batch(conn: Connection, batch) -> int:
    leads = {}
    for row in batch:  # one lead per story: the cluster's own first article when it is in the batch
        cluster = row.cluster_id or row.id
        if cluster not in leads or row.id == cluster:
            leads[cluster] = row.id
    done = set(conn.execute(select(story_threads.c.cluster_id).where(story_threads.c.cluster_id.in_(leads))).scalars())
    new = {cluster: lead for cluster, lead in leads.items() if cluster not in done}
    stories = [story for story in _stories(conn, new) if story.labels]
    if not stories:
        return 0
    earliest = min(story.published_at for story in stories) - threads.GAP
    latest = max(story.published_at for story in stories) + threads.GAP
    open_threads = _open_threads(conn, earliest, latest)
    rows = [
        {"cluster_id": story.cluster, "thread_id": thread_id, "is_new": is_new, "published_at": story.published_at}
        for story, thread_id, is_new in threads.assign(stories, open_threads)
    ]
    conn.execute(insert_ignoring_conflicts(conn, story_threads), rows)
    return len(rows)


def _stories(conn: Connection, leads: dict[int, int]) -> list[threads.ThreadStory]:
    """ThreadStory for each cluster -> lead article id."""
    ids = list(leads.values())
    if not ids:
        return []
    labels: dict[int, set[str]] = defaultdict(set)
    names: dict[int, set[str]] = defaultdict(set)
    canonical: dict[int, set[str]] = defaultdict(set)
    texts = {}
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start:start + _CHUNK]
        for article_id, label_id in conn.execute(
            select(article_labels.c.article_id, article_labels.c.label_id).where(article_labels.c.article_id.in_(chunk))
        ):
            labels[article_id].add(label_id)
        for article_id, text, canonical_id in conn.execute(
            select(entities.c.article_id, entities.c.text, entities.c.canonical_id).where(entities.c.article_id.in_(chunk))
        ):
            names[article_id].add(text)
            if canonical_id:
                canonical[article_id].add(canonical_id)
        for row in conn.execute(
            select(articles.c.id, articles.c.title, func.substr(articles.c.text, 1, threads.TEXT_CHARS).label("text"),
                   articles.c.published_at).where(articles.c.id.in_(chunk))
        ):
            texts[row.id] = row
    return [
        threads.ThreadStory(
            cluster, texts[lead].published_at, frozenset(labels[lead]), frozenset(canonical[lead]),
            threads.content_words(texts[lead].title, texts[lead].text, names[lead]),
        )
        for cluster, lead in leads.items() if lead in texts
    ]


def _open_threads(conn: Connection, earliest: datetime, latest: datetime) -> list[threads.Thread]:
    """Threads with a story published in [earliest, latest], with those stories' features."""
    rows = conn.execute(
        select(story_threads.c.cluster_id, story_threads.c.thread_id)
        .where(story_threads.c.published_at >= earliest, story_threads.c.published_at <= latest)
    ).all()
    by_thread: dict[int, threads.Thread] = {}
    stories = {story.cluster: story for story in _stories(conn, {row.cluster_id: row.cluster_id for row in rows})}
    for cluster, thread_id in rows:
        if cluster in stories:
            by_thread.setdefault(thread_id, threads.Thread(thread_id)).stories.append(stories[cluster])
    return list(by_thread.values())


def thread_info(conn: Connection, clusters: Iterable[int]) -> dict[int, ThreadInfo]:
    """cluster -> its thread: new development or follow-up, when the thread started, its size."""
    clusters = sorted(set(clusters))
    found: dict[int, tuple[int, bool]] = {}
    for start in range(0, len(clusters), _CHUNK):
        chunk = clusters[start:start + _CHUNK]
        for cluster, thread_id, is_new in conn.execute(
            select(story_threads.c.cluster_id, story_threads.c.thread_id, story_threads.c.is_new)
            .where(story_threads.c.cluster_id.in_(chunk))
        ):
            found[cluster] = (thread_id, is_new)
    thread_ids = sorted({thread_id for thread_id, _new in found.values()})
    started: dict[int, tuple[datetime, int]] = {}
    for start in range(0, len(thread_ids), _CHUNK):
        chunk = thread_ids[start:start + _CHUNK]
        for thread_id, first, size in conn.execute(
            select(story_threads.c.thread_id, func.min(story_threads.c.published_at), func.count())
            .where(story_threads.c.thread_id.in_(chunk)).group_by(story_threads.c.thread_id)
        ):
            started[thread_id] = (first, size)
    return {
        cluster: ThreadInfo(thread_id, is_new, *started[thread_id])
        for cluster, (thread_id, is_new) in found.items() if thread_id in started
    }


def timeline(engine: Engine, article_id: int) -> list[TimelineEntry]:
    """The thread of this article's story, oldest first (one article per story); [] when
    the story is alone in its thread or has none."""
    with engine.connect() as conn:
        cluster = conn.execute(select(CLUSTER).where(articles.c.id == article_id)).scalar()
        thread_id = conn.execute(
            select(story_threads.c.thread_id).where(story_threads.c.cluster_id == cluster)
        ).scalar() if cluster is not None else None
        if thread_id is None:
            return []
        rows = conn.execute(
            select(articles.c.id, articles.c.title, articles.c.source, articles.c.published_at, story_threads.c.is_new)
            .select_from(story_threads.join(articles, articles.c.id == story_threads.c.cluster_id))
            .where(story_threads.c.thread_id == thread_id)
            .order_by(articles.c.published_at, articles.c.id)
        ).all()
    return [TimelineEntry(*row) for row in rows] if len(rows) > 1 else []
