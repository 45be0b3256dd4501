"""The plain records that cross stage boundaries. No I/O here.

fetch -> FetchResult -> parse -> ParsedFeed(ArticleRecord...) -> dedupe -> extract/classify
-> TagResult -> store. Readers (digest, web, export) get StoredArticle back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

MAX_ID = 2**63 - 1  # ids are 64-bit integers in SQLite and PostgreSQL; larger ones cannot even be looked up


@dataclass(frozen=True)
class FeedSource:
    """A feed as the fetch stage needs it: where to ask and what we saw last time."""

    id: int
    name: str
    url: str  # the configured URL: the feed's identity
    fetch_url: str  # where to ask now (differs after a remembered permanent redirect)
    full_text: bool = False
    etag: str | None = None
    last_modified: str | None = None
    error_count: int = 0


@dataclass(frozen=True)
class FetchResult:
    """What one HTTP (or file://) request for a feed returned."""

    feed_id: int
    requested_url: str
    final_url: str
    status: int | None  # HTTP status; None when no response arrived
    body: bytes | None = None
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    etag: str | None = None
    last_modified: str | None = None
    not_modified: bool = False  # 304: nothing to parse
    gone: bool = False  # 410: deactivate the feed
    permanent_redirect: str | None = None  # target of a 301/308 chain, if any
    retry_after_seconds: float | None = None  # from 429/503 Retry-After
    error: str | None = None  # one line; None on success
    elapsed_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class ArticleRecord:
    """One feed item, normalised: the unit that is de-duplicated, tagged and stored."""

    guid: str | None
    url: str  # the link as given (after resolving feed-level redirects like Google News)
    canonical_url: str  # tracking parameters and fragment stripped; the identity across feeds
    title: str
    text: str  # clean text: no markup, entities decoded
    author: str | None
    source: str | None  # the publisher (from <source>, the feed title, or the host)
    published_at: datetime  # UTC
    published_estimated: bool  # True when the feed gave no date and fetch time was used
    content_hash: str  # sha256 of normalised title + text
    fetched_at: datetime  # UTC


@dataclass(frozen=True)
class ParsedFeed:
    """A parsed feed document: good entries kept even when the document is malformed."""

    title: str | None
    articles: list[ArticleRecord]
    warnings: list[str] = field(default_factory=list)  # bozo and per-item problems
    error: str | None = None  # fatal for this feed only (e.g. an HTML page, not a feed)


@dataclass(frozen=True)
class Entity:
    text: str
    label: str  # spaCy-style label: ORG, PERSON, PRODUCT, LAW, GPE, ...
    id: str | None  # canonical id from the domain entity ruler (e.g. "openai"); None if unknown
    start_char: int = 0
    end_char: int = 0
    mentions: int = 1  # how often the text names it (entities are de-duplicated per text)


@dataclass(frozen=True)
class LabelScore:
    id: str
    score: float


@dataclass(frozen=True)
class TagResult:
    """The tension-model reading of one text."""

    scores: dict[str, float]  # all 13 ids
    labels: list[str]  # ids at or above their threshold, in taxonomy order
    friction_points: list[LabelScore]
    scenarios: list[LabelScore]
    entities: list[Entity]
    evidence: dict[str, list[str]]  # label id -> sentences or terms that drove it
    thresholds: dict[str, float]
    model_version: str
    truncated: bool = False  # the text was cut at nlp.max_chars
    # Labels whose score lies inside the review band around their threshold
    # (|score - threshold| <= review_band), most uncertain first: the model could go
    # either way on them, so an analyst should look.
    review: list[str] = field(default_factory=list)
    uncertainty: float = 0.0  # 1 - min |score - threshold| / band over `review`; 0 when none

    @property
    def relevant(self) -> bool:
        return bool(self.labels)

    @property
    def needs_review(self) -> bool:
        return bool(self.review)

    def to_json(self) -> dict:
        """Exactly the `classify --json` / POST /api/classify shape (more keys may follow)."""
        return {
            "relevant": self.relevant,
            "friction_points": [{"id": s.id, "score": round(s.score, 4)} for s in self.friction_points],
            "scenarios": [{"id": s.id, "score": round(s.score, 4)} for s in self.scenarios],
            "scores": {k: round(v, 4) for k, v in self.scores.items()},
            "entities": [{"text": e.text, "label": e.label, "id": e.id} for e in self.entities],
            "model_version": self.model_version,
            "thresholds": {k: round(v, 4) for k, v in self.thresholds.items()},
            "evidence": self.evidence,
            "truncated": self.truncated,
            "needs_review": self.needs_review,
            "review": self.review,
            "uncertainty": round(self.uncertainty, 4),
        }


@dataclass(frozen=True)
class StoredArticle:
    """An article as read back from the store, with its effective tags."""

    id: int
    title: str
    url: str
    source: str | None
    feed_name: str | None
    published_at: datetime
    published_estimated: bool
    text: str
    cluster_id: int | None
    labels: list[str]  # effective: model tags with analyst corrections applied
    scores: dict[str, float]
    entities: list[Entity]
    corrected: dict[str, str] = field(default_factory=dict)  # label id -> "add" | "remove"
    model_version: str | None = None
    also_in: list[str] = field(default_factory=list)  # other sources carrying the same story


@dataclass(frozen=True)
class FeedStatus:
    """One feed's health as `status` and the web page show it."""

    id: int
    name: str
    url: str
    origin: str  # config | opml
    active: bool
    last_poll_at: datetime | None
    last_status: int | None  # HTTP status of the last poll; None when no response arrived
    last_error: str | None
    failing_since: datetime | None
    error_count: int
    next_poll_at: datetime | None
    last_new_items: int
    articles: int  # distinct articles this feed has carried


@dataclass(frozen=True)
class RenderedDigest:
    """A digest ready to mail: the window it covers and its rendered parts."""

    window_start: datetime  # UTC, inclusive (articles.fetched_at >= start)
    window_end: datetime  # UTC, exclusive
    subject: str
    html: str
    text: str
    relevant_count: int = 0  # relevant stories in the window


@dataclass(frozen=True)
class DigestRecord:
    """One row of the digests table: a window and what became of its mail."""

    id: int
    window_start: datetime
    window_end: datetime
    status: str  # pending | sent | failed | skipped (empty window, send_empty = false)
    attempts: int
    last_error: str | None
    subject: str | None
    message_id: str | None
    recipients: list[str]
    relevant_count: int | None
    created_at: datetime
    sent_at: datetime | None
    last_attempt_at: datetime | None = None
