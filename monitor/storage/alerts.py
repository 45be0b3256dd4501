"""Alert rows: one per event and channel (unique ``event_key``), sent at most once.

``pending`` when recorded (in the transaction that found the event), ``sent`` when the
mail server answered 250 to DATA or the webhook answered 2xx, ``failed`` after
alerts.max_attempts tries, ``uncertain`` when a mail went out but its reply was lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, func, or_, select, update

from monitor.storage.feeds import insert_ignoring_conflicts
from monitor.storage.schema import alerts


@dataclass(frozen=True)
class AlertRecord:
    id: int
    event_key: str
    channel: str
    kind: str
    subject: str
    text_body: str
    html: str
    payload: str
    article_id: int | None
    status: str
    attempts: int
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None


def record(conn: Connection, rows: list[dict], now: datetime) -> int:
    """Insert new alerts as pending; an event already recorded is left alone."""
    if not rows:
        return 0
    values = [row | {"status": "pending", "attempts": 0, "created_at": now} for row in rows]
    return conn.execute(insert_ignoring_conflicts(conn, alerts), values).rowcount or 0


def due(conn: Connection, channel: str, max_attempts: int, limit: int) -> list[AlertRecord]:
    """Alerts of a channel still to send (pending, or failed with tries left), oldest first."""
    if limit <= 0:
        return []
    query = (
        select(alerts)
        .where(alerts.c.channel == channel, alerts.c.attempts < max_attempts,
               or_(alerts.c.status == "pending", alerts.c.status == "failed"))
        .order_by(alerts.c.created_at, alerts.c.id).limit(limit)
    )
    return [AlertRecord(**row._mapping) for row in conn.execute(query)]


def sent_since(conn: Connection, channel: str, since: datetime) -> int:
    return conn.execute(
        select(func.count()).select_from(alerts).where(alerts.c.channel == channel, alerts.c.sent_at >= since)
    ).scalar_one()


def find(conn: Connection, alert_id: int) -> AlertRecord | None:
    row = conn.execute(select(alerts).where(alerts.c.id == alert_id)).first()
    return AlertRecord(**row._mapping) if row else None


def record_attempt(conn: Connection, alert_id: int) -> None:
    conn.execute(update(alerts).where(alerts.c.id == alert_id).values(attempts=alerts.c.attempts + 1))


def mark(conn: Connection, alert_id: int, status: str, now: datetime | None = None, error: str | None = None) -> None:
    values: dict[str, str | datetime | None] = {"status": status, "last_error": error[:2000] if error else None}
    if status == "sent":
        values["sent_at"] = now
    conn.execute(update(alerts).where(alerts.c.id == alert_id, alerts.c.status != "sent").values(**values))


def recent(engine: Engine, limit: int = 500) -> list[AlertRecord]:
    """The newest alerts first (the /alerts page)."""
    with engine.connect() as conn:
        rows = conn.execute(select(alerts).order_by(alerts.c.created_at.desc(), alerts.c.id.desc()).limit(limit))
        return [AlertRecord(**row._mapping) for row in rows]
