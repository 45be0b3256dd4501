"""Alerts that cannot wait for the digest: a signpost fires, or a label spikes on new developments.

The poll cycle that stores a story calls ``run_alerts`` after tagging:

1. record: the signpost scan stores each new hit and, in the same transaction, one
   pending alert row per channel (``email:signpost:<signpost>:<story>``); a spike in the
   current digest window records ``<channel>:spike:<label>:<window start>``. The unique
   event key makes every event alert at most once, whoever finds it first (a digest
   preview runs the same scan).
2. deliver: pending alerts, oldest first, at most ``alerts.max_per_hour`` per channel in
   any hour (the rest wait, none are dropped). Each is claimed (a ``locks`` row, as for
   the digest) and marked sent the moment the mail server answers 250 to DATA or the
   webhook answers 2xx.

A crash between storing a story and sending its alert leaves the alert pending (or the
scan mark before the story), so the next cycle sends it: later, never twice. A mail
whose connection dies after the message went out is ``uncertain`` and not re-sent (as
for the digest); a failed webhook is retried on later cycles, with the alert id in the
payload and an ``Idempotency-Key`` header so a receiver can drop a repeat.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from html import escape

from monitor import mailer
from monitor.errors import StorageError
from monitor.settings import Settings
from monitor.storage import alerts as store
from monitor.storage import digests as digest_store
from monitor.storage import locks
from monitor.storage import signposts as signpost_store
from monitor.storage import threads as thread_store

log = logging.getLogger(__name__)

HOUR = timedelta(hours=1)
CLAIM_FOR = timedelta(minutes=10)
DEFAULT_WINDOW = timedelta(hours=24)


def channels(settings: Settings) -> list[str]:
    alerts = settings.alerts
    return (["email"] if alerts.recipients else []) + (["webhook"] if alerts.webhook_url else [])


def match_signposts(app, now: datetime) -> int:
    """The signpost scan, recording an alert with every new hit when signpost alerts are on."""
    alerts = app.settings.alerts
    hook = None
    if alerts.enabled and "signpost" in alerts.events:
        def hook(conn, hits):
            store.record(conn, _signpost_alerts(app, hits, now), now)
    return signpost_store.scan(app.engine, app.settings.signposts, on_new_hits=hook)


def run_alerts(app, now: datetime) -> int:
    """Record new events and deliver what is due; returns alerts sent. Never raises for a
    delivery problem (logged, kept on the row, retried next cycle)."""
    if not app.settings.alerts.enabled:
        return 0
    thread_store.scan(app.engine)
    match_signposts(app, now)
    if "spike" in app.settings.alerts.events:
        _record_spikes(app, now)
    return sum(_deliver(app, channel, now) for channel in channels(app.settings))


# --- what an alert says ------------------------------------------------------------


def _signpost_alerts(app, hits: list[dict], now: datetime) -> list[dict]:
    cutoff = now - timedelta(hours=app.settings.alerts.max_age_hours)
    names = {signpost.id: signpost for signpost in app.settings.signposts}
    rows = []
    for hit in hits:
        signpost = names.get(hit["signpost_id"])
        if signpost is None or hit["fetched_at"] < cutoff:
            continue
        scenario = app.taxonomy.get(signpost.scenario).name
        subject = f"{app.settings.alerts.subject_prefix}: {scenario} signpost: {signpost.name}"
        lines = [f"{scenario}: {signpost.name}", "", hit["title"], hit["url"], "", f"\u201c{hit['evidence']}\u201d"]
        payload = {
            "kind": "signpost", "signpost": signpost.id, "signpost_name": signpost.name, "scenario": signpost.scenario,
            "story": {"article_id": hit["article_id"], "title": hit["title"], "url": hit["url"],
                      "fetched_at": hit["fetched_at"].isoformat()},
            "evidence": hit["evidence"],
        }
        rows += _per_channel(app.settings, f"signpost:{signpost.id}:{hit['cluster']}", "signpost", subject, lines,
                             payload, hit["article_id"], link=(hit["title"], hit["url"]))
    return rows


def _record_spikes(app, now: datetime) -> None:
    from monitor.digest.content import window_movements

    from monitor.digest.window import last_send_time

    with app.engine.connect() as conn:
        covered = digest_store.last_sent_window_end(conn)
    start = covered if covered is not None and covered < now else now - DEFAULT_WINDOW
    # One spike alert per label per digest period: keyed by the period's start, which
    # stays put between digests (without any digest yet: the last scheduled send time).
    period = covered if covered is not None and covered < now else last_send_time(app.settings, now)
    rows = []
    for move in window_movements(app.engine, app.settings, app.taxonomy, start, now):
        if not move.spike:
            continue
        subject = f"{app.settings.alerts.subject_prefix}: {move.label.name} is spiking ({move.count} new developments)"
        lines = [f"{move.label.name}: {move.count} new developments since {start:%Y-%m-%d %H:%M} UTC, "
                 f"against {move.daily_average:.1f} a day over the trailing {app.settings.digest.trailing_days} days."]
        payload = {"kind": "spike", "label": move.label.id, "label_name": move.label.name, "new_developments": move.count,
                   "follow_ups": move.follow_ups, "daily_average": move.daily_average, "since": start.isoformat()}
        rows += _per_channel(app.settings, f"spike:{move.label.id}:{period:%Y%m%dT%H%M%S}", "spike", subject, lines,
                             payload, None)
    if rows:
        with app.engine.begin() as conn:
            store.record(conn, rows, now)


def _per_channel(settings: Settings, event: str, kind: str, subject: str, lines: list[str], payload: dict,
                 article_id: int | None, link: tuple[str, str] | None = None) -> list[dict]:
    text = "\n".join(lines) + "\n"
    body = "".join(f"<p>{escape(line)}</p>" for line in lines if line and (link is None or line not in link))
    if link is not None and link[1].startswith(("http://", "https://")):
        body = f'<p><a href="{escape(link[1])}">{escape(link[0])}</a></p>' + body
    html = f'<!DOCTYPE html><html lang="en"><body style="font-family:Helvetica,Arial,sans-serif">{body}</body></html>'
    return [
        {"event_key": f"{channel}:{event}"[:200], "channel": channel, "kind": kind, "subject": subject, "text_body": text,
         "html": html, "payload": json.dumps(payload | {"id": f"{channel}:{event}"}), "article_id": article_id}
        for channel in channels(settings)
    ]


# --- delivery ----------------------------------------------------------------------


def _deliver(app, channel: str, now: datetime) -> int:
    alerts = app.settings.alerts
    with app.engine.connect() as conn:
        budget = alerts.max_per_hour - store.sent_since(conn, channel, now - HOUR)
        due = store.due(conn, channel, alerts.max_attempts, budget)
    return sum(_deliver_one(app, alert.id, now) for alert in due)


def _deliver_one(app, alert_id: int, now: datetime) -> int:
    claim, holder = f"alert {alert_id}", locks.this_process()
    try:
        locks.acquire(app.engine, claim, holder, now, CLAIM_FOR)
    except StorageError:
        return 0  # another process is sending it
    try:
        with app.engine.begin() as conn:
            alert = store.find(conn, alert_id)
            if alert is None or alert.status in ("sent", "uncertain"):
                return 0
            store.record_attempt(conn, alert_id)
        return _send(app, alert, now)
    finally:
        locks.release(app.engine, claim, holder)


def _send(app, alert: store.AlertRecord, now: datetime) -> int:
    settings = app.settings

    def sent(_refused=None) -> None:
        with app.engine.begin() as conn:
            store.mark(conn, alert.id, "sent", now)

    final = alert.attempts + 1 >= settings.alerts.max_attempts
    try:
        if alert.channel == "email":
            message_id = f"<alert.{alert.id}.{alert.created_at:%Y%m%dT%H%M%S}@{mailer.domain_of(settings.smtp.sender)}>"
            msg = mailer.compose(alert.subject, alert.text_body, alert.html, settings.smtp.sender,
                                 settings.alerts.recipients, message_id, now)
            mailer.send_message(msg, settings.smtp, on_accepted=sent)
        else:
            _post(settings, alert)
            sent()
        log.info("alert %s sent (%s)", alert.event_key, alert.channel)
        return 1
    except mailer.DeliveryUncertain as exc:
        with app.engine.begin() as conn:
            store.mark(conn, alert.id, "uncertain", error=f"delivery uncertain: {exc}")
        log.error("alert %s may have been delivered (%s); not retried", alert.event_key, exc)
    except (*mailer.SMTP_FAILURES, WebhookError) as exc:
        error = mailer.one_line(exc) if not isinstance(exc, WebhookError) else str(exc)
        with app.engine.begin() as conn:
            store.mark(conn, alert.id, "failed" if final else "pending", error=error)
        log.warning("alert %s not sent (try %d): %s", alert.event_key, alert.attempts + 1, error)
    return 0


class WebhookError(Exception):
    pass


def _post(settings: Settings, alert: store.AlertRecord) -> None:
    import httpx

    url = settings.alerts.webhook_url
    try:
        response = httpx.post(
            url, content=alert.payload.encode("utf-8"), timeout=settings.smtp.timeout, trust_env=False,
            headers={"content-type": "application/json", "idempotency-key": alert.event_key,
                     "user-agent": settings.fetch.user_agent},
        )
    except httpx.HTTPError as exc:
        raise WebhookError(f"webhook {url}: {type(exc).__name__}: {exc}") from None
    if not 200 <= response.status_code < 300:
        raise WebhookError(f"webhook {url}: HTTP {response.status_code}")
