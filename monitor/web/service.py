"""What the pages and the JSON API do, in one place: both call these, and these call the
same stage functions as the CLI (classify.tag_texts, fetch.fetch_page,
storage.tags.apply_correction). Nothing here knows about HTTP.
"""

from __future__ import annotations

import threading
from time import monotonic
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone

from monitor.app import App
from monitor.errors import InputError
from monitor.records import DigestRecord, RenderedDigest, TagResult
from monitor.service import BadUrl  # noqa: F401  (the pages map it to 400)
from monitor.storage.browse import ArticleFilter
from monitor.web.similar import SimilarIndex, SimilarStory


class NotFound(InputError):
    """The article (or other stored thing) does not exist."""


@dataclass(frozen=True)
class Classified:
    title: str
    text: str
    url: str | None
    tag: TagResult
    similar: list[SimilarStory] = field(default_factory=list)


def check_text(title: str, text: str) -> tuple[str, str]:
    title, text = (title or "").strip(), (text or "").strip()
    if not text:
        raise InputError("the text is empty: paste the article's text, or give its URL")
    return title, text


def classify(app: App, similar: SimilarIndex | None, title: str = "", text: str = "", url: str = "") -> Classified:
    """Tag a pasted text, or the text of the page at `url`, as the CLI does (the one
    service function), plus the stored stories most like it; nothing is stored."""
    from monitor.service import classify_article

    if not (url or "").strip():
        title, text = check_text(title, text)
    article = classify_article(app, title, text, url)
    stories = similar.search(app.engine, f"{article.title}\n{article.text}") if similar else []
    return Classified(article.title, article.text, article.url, article.tag, stories)


def check_labels(app: App, labels: list[str]) -> list[str]:
    unknown = [label for label in labels if label not in app.taxonomy]
    if unknown:
        raise InputError(f"unknown label id {', '.join(map(repr, unknown))}; known: {', '.join(app.taxonomy.ids)}")
    return labels


def correct_labels(app: App, article_id: int, add: list[str], remove: list[str], author: str) -> list[str]:
    """Store an analyst correction exactly as `tension-monitor label` does; the new effective labels."""
    from monitor.storage.browse import article_exists
    from monitor.storage.tags import apply_correction

    check_labels(app, add + remove)  # before the lookup: a bad label is a 422 even for a missing article
    if not article_exists(app.engine, article_id):
        raise NotFound(f"no article with id {article_id}")
    return apply_correction(app.engine, article_id, add=add, remove=remove, author=clean_author(author), taxonomy=app.taxonomy)


ACTIONS = ("add", "remove")
# A review-queue decision is a correction: accept = the article carries the label, reject = it does not.
REVIEW_DECISIONS = {"accept": "add", "reject": "remove"}


def correct_label(app: App, article_id: int, label: str, action: str, author: str) -> list[str]:
    """One label added or removed (a page's one-click button); the new effective labels."""
    if action not in ACTIONS:
        raise InputError(f"action must be add or remove, not {action[:20]!r}")
    return correct_labels(app, article_id, [label] if action == "add" else [], [label] if action == "remove" else [], author)


def review_decision(app: App, article_id: int, label: str, decision: str, author: str) -> list[str]:
    """Accept or reject a review-band label: stored as the matching analyst correction, so
    the label leaves the queue and the next `train` learns the answer."""
    if decision not in REVIEW_DECISIONS:
        raise InputError(f"decision must be accept or reject, not {decision[:20]!r}")
    return correct_label(app, article_id, label, REVIEW_DECISIONS[decision], author)


def thresholds(app: App) -> dict[str, float]:
    """The current model's per-label thresholds (from its model card)."""
    return dict(app.classifier.thresholds)


def clean_author(author: str | None) -> str:
    """The analyst's name as stored: printable, one line, at most 60 characters."""
    name = " ".join("".join(ch for ch in (author or "") if ch.isprintable()).split())[:60]
    return name or "analyst"


def article_filter(app: App, label: str | None, feed_id: int | None, since: date | None, until: date | None,
                   relevant: bool | None, q: str | None, needs_review: bool | None = None) -> ArticleFilter:
    """The article-list filter from user input; `since`/`until` are inclusive UTC days."""
    if label:
        check_labels(app, [label])
    if since and until and until < since:
        raise InputError(f"the date range ends ({until}) before it starts ({since})")
    start = datetime.combine(since, time.min, tzinfo=timezone.utc) if since else None
    end = datetime.combine(until + timedelta(days=1), time.min, tzinfo=timezone.utc) if until else None
    q = (q or "").strip()[:200] or None
    return ArticleFilter(label=label or None, feed_id=feed_id, since=start, until=end, relevant=relevant, q=q,
                         needs_review=needs_review)


def sent_digest(app: App) -> tuple[DigestRecord, str | None] | None:
    """The latest digest the mail server accepted, with its HTML exactly as sent."""
    from monitor.storage.digests import digest_bodies, last_sent_digest

    record = last_sent_digest(app.engine)
    if record is None:
        return None
    return record, digest_bodies(app.engine, record.id)[0]


def next_digest(app: App, now: datetime) -> RenderedDigest:
    """The digest the next send would mail, rendered now (nothing is stored or sent)."""
    from monitor import digest

    start, end = digest.digest_window(app.engine, now)
    digest.scan_stories(app)
    return digest.render(digest.build_digest(app.engine, app.settings, app.taxonomy, start, end))


class TrendCache:
    """Trend counts scan every label row of 90 days; they only change when the store does.
    Also expires after `max_age` seconds, so a retag (`reprocess`) shows up too."""

    def __init__(self, max_age: float = 300.0):
        self.max_age = max_age
        self._lock = threading.Lock()
        self._key: tuple | None = None
        self._built = 0.0
        self._counts: dict[str, list[int]] = {}

    def counts(self, engine, days: int, today: date) -> dict[str, list[int]]:
        from monitor.storage.browse import change_marker, trend_counts

        key = (change_marker(engine), days, today)
        with self._lock:
            if key != self._key or monotonic() - self._built > self.max_age:
                self._counts, self._key, self._built = trend_counts(engine, days, today), key, monotonic()
            return self._counts
