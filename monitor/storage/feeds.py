"""Queries over the `feeds` aggregate: which feeds exist, which are due, how they are doing.

The feed state computed after a poll (validators, backoff, redirects, 410) is built by
the pure `*_state` functions below and written by `storage.articles.store_feed_run`
in the same transaction as the articles, so a crash never leaves one without the other.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from random import Random
from typing import Any

from sqlalchemy import Engine, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from monitor.records import FeedSource, FeedStatus, FetchResult
from monitor.settings import FeedSettings, FetchSettings
from monitor.storage import schema

feeds = schema.feeds
GONE_STATUS = 410


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def insert_ignoring_conflicts(conn, table):
    """INSERT ... ON CONFLICT DO NOTHING on SQLite and PostgreSQL: a row another writer
    (a daemon and `run --once` at once) added first is left alone, not an error."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing()


# --- which feeds exist -------------------------------------------------------------


def sync_config_feeds(engine: Engine, configured: Sequence[FeedSettings], now: datetime | None = None) -> None:
    """Make the feeds table match the config: add new feeds, update names and options,
    and deactivate config feeds no longer listed. OPML-imported feeds are left alone."""
    now = now or utcnow()
    wanted = {feed.url: feed for feed in configured}
    with engine.begin() as conn:
        rows = {row.url: row for row in conn.execute(select(feeds))}
        for url, feed in wanted.items():
            row = rows.get(url)
            if row is None:
                conn.execute(insert_ignoring_conflicts(conn, feeds), _new_feed_values(feed.name, url, "config", now, feed))
            elif changes := _config_changes(row, feed):
                conn.execute(update(feeds).where(feeds.c.id == row.id).values(changes))
        dropped = [row.id for url, row in rows.items() if row.origin == "config" and row.active and url not in wanted]
        if dropped:
            conn.execute(update(feeds).where(feeds.c.id.in_(dropped)).values(active=False))


def _config_changes(row, feed: FeedSettings) -> dict:
    wanted = {
        "name": feed.name,
        "origin": "config",
        "interval_minutes": feed.interval_minutes,
        "full_text": feed.full_text,
        # A feed that answered 410 stays off even though it is still listed: the
        # publisher said it is gone. `status` shows why.
        "active": row.last_status != GONE_STATUS,
    }
    return {key: value for key, value in wanted.items() if getattr(row, key) != value}


def _new_feed_values(name: str, url: str, origin: str, now: datetime, feed: FeedSettings | None = None) -> dict:
    return {
        "url": url,
        "fetch_url": url,
        "name": name,
        "origin": origin,
        "active": True,
        "interval_minutes": feed.interval_minutes if feed else None,
        "full_text": feed.full_text if feed else False,
        "redirect_count": 0,
        "error_count": 0,
        "last_new_items": 0,
        "next_poll_at": None,  # never polled: due at once
        "created_at": now,
    }


def add_feeds(
    engine: Engine, entries: Iterable[tuple[str, str]], now: datetime | None = None, origin: str = "opml"
) -> tuple[int, int]:
    """Add feeds by (name, url), skipping URLs already known. Returns (added, skipped)."""
    now = now or utcnow()
    added = skipped = 0
    with engine.begin() as conn:
        known = set(conn.execute(select(feeds.c.url)).scalars())
        for name, url in entries:
            if url in known:
                skipped += 1
                continue
            conn.execute(insert_ignoring_conflicts(conn, feeds), _new_feed_values(name, url, origin, now))
            known.add(url)
            added += 1
    return added, skipped


def import_feed(engine: Engine, path: str, now: datetime) -> tuple[int, int, str | None]:
    """(feed id, byte offset to resume at, fingerprint of the file then) of the
    pseudo-feed an imported file's articles are linked to (origin "import", never
    polled), created on the first import."""
    url = f"import:{path}"
    with engine.begin() as conn:
        values = _new_feed_values(f"import {Path(path).name}", url, "import", now) | {"active": False}
        conn.execute(insert_ignoring_conflicts(conn, feeds), values)
        row = conn.execute(select(feeds.c.id, feeds.c.import_offset, feeds.c.import_fingerprint)
                           .where(feeds.c.url == url)).one()
    return row.id, row.import_offset or 0, row.import_fingerprint


def reactivate_feed(engine: Engine, name_or_url: str) -> str:
    """Poll a deactivated feed again (after a 410, or one dropped from the config and
    re-added): clears its error state so it is due at once. Returns the feed's name."""
    from monitor.errors import InputError

    with engine.begin() as conn:
        row = conn.execute(
            select(feeds.c.id, feeds.c.name).where((feeds.c.url == name_or_url) | (feeds.c.name == name_or_url))
        ).first()
        if row is None:
            raise InputError(f"no feed with URL or name {name_or_url!r} (see `tension-monitor feeds list`)")
        conn.execute(update(feeds).where(feeds.c.id == row.id).values(
            active=True, last_status=None, last_error=None, error_count=0, failing_since=None, next_poll_at=None,
        ))
    return row.name


def list_feeds(engine: Engine, active_only: bool = False) -> list[tuple[str, str, str, bool]]:
    """(name, url, origin, active) for every feed, by name."""
    query = select(feeds.c.name, feeds.c.url, feeds.c.origin, feeds.c.active).order_by(feeds.c.name)
    if active_only:
        query = query.where(feeds.c.active.is_(True))
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(query)]


# --- which feeds are due ---------------------------------------------------------


def due_feeds(engine: Engine, now: datetime, default_interval: timedelta, only_due: bool = True) -> list[FeedSource]:
    """Active feeds whose next poll time has come (all active feeds when not only_due).

    A feed never polled is due at once. `default_interval` covers a row whose
    next_poll_at was never written (e.g. a crash between schema versions)."""
    with engine.connect() as conn:
        rows = conn.execute(select(feeds).where(feeds.c.active.is_(True)).order_by(feeds.c.id)).all()
    return [_source(row) for row in rows if not only_due or _is_due(row, now, default_interval)]


def claim_due_feeds(engine: Engine, now: datetime, holder: str, lease: timedelta, limit: int) -> list[FeedSource]:
    """Lease up to `limit` due feeds to `holder` (a `worker`), oldest due first. Rows
    another worker is claiming are skipped (SKIP LOCKED) and leased rows are not due
    until their lease passes, so two workers never poll one feed in the same cycle. The
    lease ends when the poll's state is stored (success_state / failure_state)."""
    is_due = feeds.c.next_poll_at.is_(None) | (feeds.c.next_poll_at <= now)
    free = feeds.c.lease_until.is_(None) | (feeds.c.lease_until < now)
    with engine.begin() as conn:
        rows = conn.execute(
            select(feeds).where(feeds.c.active.is_(True), is_due, free)
            .order_by(feeds.c.next_poll_at.is_not(None), feeds.c.next_poll_at, feeds.c.id).limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        if rows:
            conn.execute(update(feeds).where(feeds.c.id.in_([row.id for row in rows]))
                         .values(lease_holder=holder, lease_until=now + lease))
    return [_source(row) for row in rows]


def renew_leases(engine: Engine, holder: str, until: datetime) -> int:
    """The heartbeat: move on every lease `holder` still has. Returns how many."""
    with engine.begin() as conn:
        return conn.execute(update(feeds).where(feeds.c.lease_holder == holder, feeds.c.lease_until.is_not(None))
                            .values(lease_until=until)).rowcount


def release_leases(engine: Engine, holders: Sequence[str]) -> int:
    """End the leases of these holders (a worker stopping, workers found dead), so
    their feeds are due again at once."""
    with engine.begin() as conn:
        return conn.execute(update(feeds).where(feeds.c.lease_holder.in_(list(holders)))
                            .values(lease_holder=None, lease_until=None)).rowcount


def lease_holders(engine: Engine, now: datetime) -> list[str]:
    """Who holds unexpired feed leases now."""
    with engine.connect() as conn:
        return list(conn.execute(select(feeds.c.lease_holder).distinct()
                                 .where(feeds.c.lease_holder.is_not(None), feeds.c.lease_until >= now)).scalars())


def _is_due(row, now: datetime, default_interval: timedelta) -> bool:
    if row.next_poll_at is not None:
        return row.next_poll_at <= now
    return row.last_poll_at is None or row.last_poll_at + default_interval <= now


def _source(row) -> FeedSource:
    return FeedSource(
        id=row.id,
        name=row.name,
        url=row.url,
        fetch_url=row.fetch_url,
        full_text=row.full_text,
        etag=row.etag,
        last_modified=row.last_modified,
        error_count=row.error_count,
    )


def feed_row(conn, feed_id: int):
    row = conn.execute(select(feeds).where(feeds.c.id == feed_id)).one_or_none()
    if row is None:
        raise LookupError(f"no feed with id {feed_id}")
    return row


LEASE_ENDED = {"lease_holder": None, "lease_until": None}  # a stored poll ends a worker's lease on the feed


# --- state after a poll (pure: row + result in, column values out) -----------------


def success_state(row, result: FetchResult, now: datetime, interval: timedelta, fetch: FetchSettings, new_items: int) -> dict:
    """Columns after a poll that worked (200 with a usable feed, or 304)."""
    values = {
        "last_poll_at": now,
        "last_status": result.status,
        "last_error": None,
        "failing_since": None,
        "error_count": 0,
        "next_poll_at": now + interval,
        "last_new_items": new_items,
        "last_duration_ms": round(result.elapsed_seconds * 1000),
        **LEASE_ENDED,
        # A 304 may omit the validators; keep the ones that earned it.
        "etag": result.etag or row.etag,
        "last_modified": result.last_modified or row.last_modified,
    }
    values |= redirect_state(row, result, fetch.permanent_redirect_after)
    if result.gone:
        values |= gone_state(result)
    return values


def failure_state(row, result: FetchResult, error: str, now: datetime, fetch: FetchSettings, rng: Random) -> dict:
    """Columns after a failed poll: keep the error, back off with jitter, never give up.
    A 410 deactivates the feed instead."""
    from monitor.fetch import next_backoff

    error_count = row.error_count + 1
    delay = next_backoff(error_count, fetch, rng)
    if result.retry_after_seconds:
        # The server said when to come back; never sooner, but still capped at the
        # backoff maximum so a silly Retry-After cannot park a feed for a year. The cap
        # is applied to the float first: timedelta(seconds=1e17) itself overflows.
        cap_seconds = fetch.backoff_max_minutes * 60
        delay = max(delay, timedelta(seconds=min(max(result.retry_after_seconds, 0.0), cap_seconds)))
    values = {
        "last_poll_at": now,
        "last_status": result.status,
        "last_error": error,
        "failing_since": row.failing_since or now,
        "error_count": error_count,
        "next_poll_at": now + delay,
        "last_new_items": 0,
        "last_duration_ms": round(result.elapsed_seconds * 1000),
        **LEASE_ENDED,
    }
    if result.gone or result.status == GONE_STATUS:
        values |= gone_state(result)
    return values


def gone_state(result: FetchResult) -> dict:
    return {"active": False, "last_status": GONE_STATUS, "last_error": "410 Gone: the publisher removed this feed; polling stopped"}


def redirect_state(row, result: FetchResult, remember_after: int) -> dict:
    """A permanent redirect becomes the fetch URL only after it repeats, so one
    misconfigured server response cannot move a feed for good."""
    target = result.permanent_redirect
    if not target or target == row.fetch_url:
        return {"redirect_target": None, "redirect_count": 0}
    count = row.redirect_count + 1 if target == row.redirect_target else 1
    if count >= remember_after:
        return {"fetch_url": target, "redirect_target": None, "redirect_count": 0}
    return {"redirect_target": target, "redirect_count": count}


def interval_for(row, default_minutes: int) -> timedelta:
    return timedelta(minutes=row.interval_minutes or default_minutes)


def write_state(conn, feed_id: int, values: dict) -> None:
    conn.execute(update(feeds).where(feeds.c.id == feed_id).values(values))


# --- how feeds are doing ----------------------------------------------------------


def feed_statuses(engine: Engine) -> list[FeedStatus]:
    """Every feed's health, active ones first, then by name."""
    query = select(feeds).order_by(feeds.c.active.desc(), feeds.c.name)
    with engine.connect() as conn:
        return [_status(row) for row in conn.execute(query)]


def _status(row) -> FeedStatus:
    return FeedStatus(
        id=row.id,
        name=row.name,
        url=row.url,
        origin=row.origin,
        active=row.active,
        last_poll_at=row.last_poll_at,
        last_status=row.last_status,
        last_error=row.last_error,
        failing_since=row.failing_since,
        error_count=row.error_count,
        next_poll_at=row.next_poll_at,
        last_new_items=row.last_new_items,
        articles=row.article_count,
    )


def totals(engine: Engine) -> dict:
    """Store-wide counts for `status`, plus the latest digest row when there is one."""
    with engine.connect() as conn:
        result: dict[str, Any] = {
            **store_counts(conn),
            "feeds": conn.execute(select(func.count()).select_from(feeds)).scalar_one(),
            "active_feeds": conn.execute(select(func.count()).where(feeds.c.active.is_(True))).scalar_one(),
            "failing_feeds": conn.execute(
                select(func.count()).where(feeds.c.active.is_(True), feeds.c.error_count > 0)
            ).scalar_one(),
        }
        result["last_digest"] = _last_digest(conn)
    return result


def store_counts(conn) -> dict[str, int]:
    """{"articles", "stories", "untagged"}: the trigger-kept totals (schema.store_counts)."""
    counts = schema.store_counts
    rows = conn.execute(select(counts.c.name, func.sum(counts.c.value)).group_by(counts.c.name))
    return {"articles": 0, "stories": 0, "untagged": 0} | {name: int(value) for name, value in rows}


def _last_digest(conn) -> dict | None:
    digests = schema.digests
    row = conn.execute(
        select(digests.c.status, digests.c.window_end, digests.c.sent_at, digests.c.last_error)
        .order_by(digests.c.window_end.desc(), digests.c.id.desc())
        .limit(1)
    ).one_or_none()
    return dict(row._mapping) if row else None
