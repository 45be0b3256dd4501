"""Signpost hits: matching stored articles incrementally, and what the board shows.

``scan`` matches every article tagged since the last scan (``scan_marks`` row
"signposts", by ``articles.tagged_at``) and stores each hit once (``ON CONFLICT DO
NOTHING`` on article + signpost), so running it twice, or from two processes, is
harmless. A changed signposts config (another signature) drops the old hits and starts
over. Re-tagging (``reprocess``) sets ``tagged_at`` again, so those articles are re-read.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, and_, delete, func, select

from monitor.settings import SignpostSettings
from monitor.signposts import match_article
from monitor.storage import scans
from monitor.storage.feeds import insert_ignoring_conflicts
from monitor.storage.schema import article_labels, articles, entities, signpost_hits

MARK = "signposts"


@dataclass(frozen=True)
class FiredSignpost:
    """A signpost's latest hit: the story and the sentence that fired it."""

    signpost_id: str
    article_id: int
    cluster: int  # the article's story cluster (its own id when it has none)
    title: str
    url: str
    evidence: str
    fetched_at: datetime
    hits_in_window: int = 0


def signature(signposts: Sequence[SignpostSettings]) -> str:
    dumped = json.dumps([s.model_dump() for s in signposts], sort_keys=True)
    return hashlib.sha256(dumped.encode()).hexdigest()[:64]


NewHitsHook = Callable[[Connection, list[dict]], None]


def scan(engine: Engine, signposts: Sequence[SignpostSettings], on_new_hits: NewHitsHook | None = None) -> int:
    """Match the articles tagged since the last scan; returns the hits added.

    ``on_new_hits(conn, hits)`` runs in the transaction that stores them (alerts are
    recorded with their hit, so a crash never leaves a hit without its alert)."""
    added = 0
    for conn, batch in scans.batches(engine, MARK, signature(signposts), lambda conn: conn.execute(delete(signpost_hits))):
        added += _match_batch(conn, signposts, batch, on_new_hits)
    return added


def _match_batch(conn: Connection, signposts: Sequence[SignpostSettings], batch, on_new_hits: NewHitsHook | None) -> int:
    ids = [row.id for row in batch]
    labels: dict[int, set[str]] = defaultdict(set)
    for article_id, label_id in conn.execute(
        select(article_labels.c.article_id, article_labels.c.label_id).where(article_labels.c.article_id.in_(ids))
    ):
        labels[article_id].add(label_id)
    names: dict[int, set[str]] = defaultdict(set)
    for article_id, canonical in conn.execute(
        select(entities.c.article_id, entities.c.canonical_id).where(
            entities.c.article_id.in_(ids), entities.c.canonical_id.is_not(None)
        )
    ):
        names[article_id].add(canonical)
    by_id = {row.id: row for row in batch}
    rows = [
        {"article_id": row.id, "signpost_id": hit.signpost_id, "scenario": hit.scenario, "evidence": hit.evidence,
         "fetched_at": row.fetched_at}
        for row in batch
        for hit in match_article(signposts, row.title, row.text, labels[row.id], names[row.id])
    ]
    if not rows:
        return 0
    known = set(conn.execute(
        select(signpost_hits.c.article_id, signpost_hits.c.signpost_id).where(signpost_hits.c.article_id.in_(ids))
    ).all())
    new = [row for row in rows if (row["article_id"], row["signpost_id"]) not in known]
    if new:
        conn.execute(insert_ignoring_conflicts(conn, signpost_hits), new)
        if on_new_hits is not None:
            on_new_hits(conn, [hit | {"title": by_id[hit["article_id"]].title, "url": by_id[hit["article_id"]].url,
                                      "cluster": by_id[hit["article_id"]].cluster_id or hit["article_id"]} for hit in new])
    return len(new)


def board(conn: Connection, signpost_ids: Sequence[str], start: datetime, end: datetime) -> dict[str, FiredSignpost]:
    """signpost id -> its latest hit before ``end``, with the number of hits in [start, end)."""
    if not signpost_ids:
        return {}
    before_end = and_(signpost_hits.c.signpost_id.in_(signpost_ids), signpost_hits.c.fetched_at < end)
    in_window = dict(conn.execute(
        select(signpost_hits.c.signpost_id, func.count())
        .where(before_end, signpost_hits.c.fetched_at >= start).group_by(signpost_hits.c.signpost_id)
    ).tuples().all())
    latest = (
        select(signpost_hits.c.signpost_id, func.max(signpost_hits.c.fetched_at).label("last"))
        .where(before_end).group_by(signpost_hits.c.signpost_id).subquery()
    )
    query = (
        select(signpost_hits.c.signpost_id, articles.c.id, func.coalesce(articles.c.cluster_id, articles.c.id),
               articles.c.title, articles.c.url, signpost_hits.c.evidence, signpost_hits.c.fetched_at)
        .select_from(signpost_hits.join(articles, articles.c.id == signpost_hits.c.article_id))
        .join(latest, and_(latest.c.signpost_id == signpost_hits.c.signpost_id, latest.c.last == signpost_hits.c.fetched_at))
        .order_by(signpost_hits.c.signpost_id, articles.c.id)
    )
    found: dict[str, FiredSignpost] = {}
    for signpost_id, article_id, cluster, title, url, evidence, fetched_at in conn.execute(query):
        if signpost_id not in found:
            found[signpost_id] = FiredSignpost(
                signpost_id, article_id, cluster, title, url, evidence, fetched_at, in_window.get(signpost_id, 0)
            )
    return found
