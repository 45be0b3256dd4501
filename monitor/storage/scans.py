"""Incremental scans over tagged articles (signposts, threads): where each one got to.

A ``scan_marks`` row per scan holds the ``tagged_at`` it reached and a signature of the
config it ran with; a different signature starts the scan over (the caller drops what
the old config produced). Batches walk ``ix_articles_tagged_at`` in (tagged_at, id)
order; the stored mark is only a time, so a new scan re-reads the rows tagged at
exactly that time, which every scan tolerates (its writes are idempotent).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime

from sqlalchemy import Connection, Engine, delete, select, update

from monitor.storage.feeds import insert_ignoring_conflicts
from monitor.storage.schema import articles, scan_marks

BATCH = 500
COLUMNS = (articles.c.id, articles.c.title, articles.c.url, articles.c.text, articles.c.published_at, articles.c.fetched_at,
           articles.c.cluster_id, articles.c.tagged_at)


def batches(engine: Engine, name: str, signature: str, reset: Callable[[Connection], object]) -> Iterator[tuple[Connection, list]]:
    """Yield (connection in a transaction, batch) until every tagged article was seen; the
    mark advances with each batch's transaction, so a crash repeats at most one batch."""
    with engine.begin() as conn:
        cursor = (_start(conn, name, signature, reset), 0)
    while True:
        with engine.begin() as conn:
            batch = _tagged_after(conn, *cursor)
            if not batch:
                return
            yield conn, batch
            cursor = (batch[-1].tagged_at, batch[-1].id)
            conn.execute(update(scan_marks).where(scan_marks.c.name == name).values(mark=cursor[0]))
        if len(batch) < BATCH:
            return


def _start(conn: Connection, name: str, signature: str, reset: Callable[[Connection], object]) -> datetime | None:
    row = conn.execute(select(scan_marks.c.mark, scan_marks.c.signature).where(scan_marks.c.name == name)).first()
    if row is not None and row.signature == signature:
        return row.mark
    reset(conn)
    conn.execute(delete(scan_marks).where(scan_marks.c.name == name))
    conn.execute(insert_ignoring_conflicts(conn, scan_marks).values(name=name, mark=None, signature=signature))
    return None


def _tagged_after(conn: Connection, since: datetime | None, after_id: int) -> list:
    # Two range queries rather than one OR, so each walks ix_articles_tagged_at; no
    # "relevant" condition (SQLite would pick the relevance index and sort instead).
    query = select(*COLUMNS).where(articles.c.tagged_at.is_not(None))
    if since is None:
        return list(conn.execute(query.order_by(articles.c.tagged_at, articles.c.id).limit(BATCH)).all())
    same = list(conn.execute(
        query.where(articles.c.tagged_at == since, articles.c.id > after_id).order_by(articles.c.id).limit(BATCH)
    ).all())
    if len(same) >= BATCH:
        return same
    later = conn.execute(
        query.where(articles.c.tagged_at > since).order_by(articles.c.tagged_at, articles.c.id).limit(BATCH - len(same))
    ).all()
    return same + list(later)
