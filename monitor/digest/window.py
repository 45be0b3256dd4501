"""Choosing a digest's window and the daily schedule.

A window runs over ``articles.fetched_at``: from the end of the last covered digest to
now (or the schedule slot), so nothing falls between two digests, even after downtime.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from monitor.errors import InputError
from monitor.settings import DigestSettings, Settings
from monitor.storage import digests as store

DEFAULT_WINDOW = timedelta(hours=24)  # the first digest ever covers the last day



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

