"""What the pages and the JSON API do, in one place: both call these, and these call the
same stage functions as the CLI (classify.tag_texts, fetch.fetch_page,
storage.tags.apply_correction). Nothing here knows about HTTP.
"""

from __future__ import annotations

import html
import re
import threading
from time import monotonic
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone

from monitor.app import App
from monitor.errors import FetchError, InputError
from monitor.records import DigestRecord, RenderedDigest, TagResult
from monitor.storage.browse import ArticleFilter
from monitor.web.similar import SimilarIndex, SimilarStory

# spaCy and the classifier are shared by every request thread; one inference at a time
# keeps them safe without paying for a copy per thread.
_INFERENCE_LOCK = threading.Lock()
TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


class NotFound(InputError):
    """The article (or other stored thing) does not exist."""


class BadUrl(InputError):
    """A URL we will not fetch (not http or https)."""


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


def check_url(url: str) -> str:
    url = (url or "").strip()
    if not url.lower().startswith(("http://", "https://")):
        raise BadUrl(f"only http:// and https:// URLs can be fetched, not {url[:80]!r}")
    return url


def fetch_article(app: App, url: str) -> tuple[str, str, str]:
    """(final_url, title, text) of an article page; FetchError for unsafe or failing URLs."""
    from monitor.fetch import fetch_page
    from monitor.parse import extract_article_text

    final_url, body = fetch_page(check_url(url), app.settings.fetch)
    text = extract_article_text(body, final_url)
    if not text.strip():
        raise FetchError(f"{final_url}: no article text found on the page")
    return final_url, _page_title(body), text


def _page_title(body: bytes) -> str:
    match = TITLE.search(body[:200_000].decode("utf-8", "replace"))
    return " ".join(html.unescape(match.group(1)).split())[:300] if match else ""


def tag_one(app: App, title: str, text: str) -> TagResult:
    from monitor.classify import tag_texts

    with _INFERENCE_LOCK:
        return tag_texts(app.nlp, app.classifier, [(title, text)])[0]


def classify(app: App, similar: SimilarIndex | None, title: str = "", text: str = "", url: str = "") -> Classified:
    """Tag a pasted text, or the text of the page at `url`; nothing is stored."""
    page_url = None
    if (url or "").strip() and not (text or "").strip():
        page_url, fetched_title, text = fetch_article(app, url)
        title = title or fetched_title
    title, text = check_text(title, text)
    tag = tag_one(app, title, text)
    stories = similar.search(app.engine, f"{title}\n{text}") if similar else []
    return Classified(title, text, page_url, tag, stories)


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


def clean_author(author: str | None) -> str:
    """The analyst's name as stored: printable, one line, at most 60 characters."""
    name = " ".join("".join(ch for ch in (author or "") if ch.isprintable()).split())[:60]
    return name or "analyst"


def article_filter(app: App, label: str | None, feed_id: int | None, since: date | None, until: date | None,
                   relevant: bool | None, q: str | None) -> ArticleFilter:
    """The article-list filter from user input; `since`/`until` are inclusive UTC days."""
    if label:
        check_labels(app, [label])
    if since and until and until < since:
        raise InputError(f"the date range ends ({until}) before it starts ({since})")
    start = datetime.combine(since, time.min, tzinfo=timezone.utc) if since else None
    end = datetime.combine(until + timedelta(days=1), time.min, tzinfo=timezone.utc) if until else None
    q = (q or "").strip()[:200] or None
    return ArticleFilter(label=label or None, feed_id=feed_id, since=start, until=end, relevant=relevant, q=q)


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
        self._key = None
        self._built = 0.0
        self._counts: dict[str, list[int]] = {}

    def counts(self, engine, days: int, today: date) -> dict[str, list[int]]:
        from monitor.storage.browse import change_marker, trend_counts

        key = (change_marker(engine), days, today)
        with self._lock:
            if key != self._key or monotonic() - self._built > self.max_age:
                self._counts, self._key, self._built = trend_counts(engine, days, today), key, monotonic()
            return self._counts
