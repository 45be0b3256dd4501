"""Storing a feed run: the articles, which feeds carried them, and the feed's new state,
in one transaction, so a run killed at any point leaves either all of it or none.

Identity: an item is the same article when its GUID was already seen in the same feed,
or its canonical URL or content hash is already stored. The unique constraints on
`canonical_url` and `content_hash` back this up: inserts use ON CONFLICT DO NOTHING,
so two writers at once (or a re-run after a crash) still store each item once.

Near duplicates (syndicated copy under another URL) are kept as separate articles and
linked by `cluster_id` to the story's first article.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from random import Random

from sqlalchemy import Engine, Integer, bindparam, select, text, update

from monitor.records import ArticleRecord, FetchResult, ParsedFeed
from monitor.settings import Settings
from monitor.storage import feeds as feed_store
from monitor.storage import schema

articles = schema.articles
article_feeds = schema.article_feeds

NEAR_DUPLICATE_WINDOW = timedelta(days=7)  # syndicated copies of a story appear within days
NEAR_DUPLICATE_LIMIT = 10_000  # bounds memory (~40 MB) on a busy store


@dataclass(frozen=True)
class StoreOutcome:
    new_ids: list[int] = field(default_factory=list)
    duplicates: int = 0  # items already stored (earlier polls or other feeds)
    clustered: int = 0  # new articles linked to an existing story
    error: str | None = None  # the poll failed; the feed's state records it


class RecentSignatures:
    """MinHash signatures of recently stored articles, loaded once per cycle and extended
    as articles are stored, so matching never re-reads the table per item.

    Only candidates that share a band (a fixed slice of the signature) with the new
    article are scored by dedupe.find_near_duplicate: locality-sensitive hashing, which
    keeps a cold cycle of thousands of articles from comparing every pair. With 42 bands
    of ~3 values, a pair exactly at dedupe.THRESHOLD (0.4) shares a band with probability
    ~0.94, and a pair at 0.47 (the least similar same-story pair in tests/feeds) ~0.99.
    Two-value bands would reach ~1.0 but score about ten times more unrelated candidates
    per article, which the cold-poll benchmark cannot afford.

    Articles staged in an open transaction match later items of the same run; they are
    dropped if that transaction rolls back, so nothing clusters with an uncommitted row."""

    BANDS = 42

    def __init__(self, window: timedelta = NEAR_DUPLICATE_WINDOW, limit: int = NEAR_DUPLICATE_LIMIT):
        self.window, self.limit = window, limit
        self._loaded = False
        self._entries: dict[int, tuple[int, bytes]] = {}  # article id -> (cluster id, signature); oldest first
        self._buckets: dict[bytes, set[int]] = {}
        self._staged: list[int] = []
        self._last_bands: tuple[bytes | None, list[bytes]] = (None, [])

    def begin(self) -> None:
        self._staged = []

    def _load(self, conn, now: datetime) -> None:
        # Lazily, on the first new article of the cycle: a cycle of 304s reads nothing.
        rows = conn.execute(
            select(articles.c.id, articles.c.cluster_id, articles.c.minhash)
            .where(articles.c.fetched_at >= now - self.window, articles.c.minhash.is_not(None))
            .order_by(articles.c.fetched_at.desc(), articles.c.id.desc())
            .limit(self.limit)
        ).all()
        for row in reversed(rows):
            self._add(row.id, row.cluster_id or row.id, row.minhash)
        self._loaded = True

    def match(self, conn, now: datetime, signature: bytes) -> int | None:
        """The cluster id of a near duplicate, or None."""
        from monitor.dedupe import find_near_duplicate

        if not signature:
            return None
        if not self._loaded:
            self._load(conn, now)
        ids = set().union(*(self._buckets.get(key, ()) for key in self._bands(signature)))
        found = find_near_duplicate(signature, [(i, self._entries[i][1]) for i in sorted(ids)])
        return self._entries[found][0] if found is not None else None

    def stage(self, article_id: int, cluster_id: int, signature: bytes) -> None:
        self._add(article_id, cluster_id, signature)
        self._staged.append(article_id)

    def commit(self) -> None:
        self._staged = []
        for article_id in list(self._entries)[: max(0, len(self._entries) - self.limit)]:
            self._remove(article_id)  # forget the oldest: memory and match time stay bounded

    def rollback(self) -> None:
        for article_id in self._staged:
            self._remove(article_id)
        self._staged = []

    def _add(self, article_id: int, cluster_id: int, signature: bytes) -> None:
        if not signature:
            return
        self._entries[article_id] = (cluster_id, signature)
        for key in self._bands(signature):
            self._buckets.setdefault(key, set()).add(article_id)

    def _remove(self, article_id: int) -> None:
        entry = self._entries.pop(article_id, None)
        if entry:
            for key in self._bands(entry[1]):
                self._buckets[key].discard(article_id)

    def _bands(self, signature: bytes) -> list[bytes]:
        # Byte slices of the signature body: equal hash values give equal bytes whatever
        # the encoding dedupe chose; the band number keeps slices of different bands apart.
        if self._last_bands[0] is not signature:  # match() then stage() ask for the same one
            body = signature[1:]
            width = max(1, len(body) // self.BANDS)
            self._last_bands = (signature, [bytes([b]) + body[b * width : (b + 1) * width] for b in range(self.BANDS)])
        return self._last_bands[1]


def store_feed_run(
    engine: Engine,
    feed_id: int,
    parsed: ParsedFeed | None,
    fetch_result: FetchResult,
    now: datetime,
    settings: Settings,
    recent: RecentSignatures | None = None,
    rng: Random | None = None,
    signatures: Mapping[str, bytes] | None = None,
) -> StoreOutcome:
    """Store one poll of one feed: its new articles and the feed's state, atomically.

    `parsed` is None for a 304 (nothing to parse). A fetch or parse error records a
    failure (backoff) and stores nothing. `signatures` ({content_hash: MinHash}) may be
    computed ahead, elsewhere (the pipeline does it in worker processes)."""
    error = fetch_result.error or (parsed.error if parsed else None)
    if error or (parsed is None and not fetch_result.not_modified):
        return record_fetch_failure(engine, feed_id, fetch_result, now, settings, rng, error)
    recent = recent or RecentSignatures()
    try:
        with engine.begin() as conn:
            recent.begin()
            row = feed_store.feed_row(conn, feed_id)
            outcome = _store_articles(conn, feed_id, parsed.articles if parsed else [], now, recent, signatures or {})
            interval = feed_store.interval_for(row, settings.schedule.poll_minutes)
            state = feed_store.success_state(row, fetch_result, now, interval, settings.fetch, len(outcome.new_ids))
            feed_store.write_state(conn, feed_id, state)
    except BaseException:
        recent.rollback()
        raise
    recent.commit()
    return outcome


def store_imported(engine: Engine, feed_id: int, items: list[ArticleRecord], now: datetime,
                   recent: RecentSignatures, resume_offset: int, fingerprint: str) -> StoreOutcome:
    """Store one batch of an imported file, like one feed run (same identity, clustering
    and links, to the import's own feed), and where the next batch starts, atomically:
    a crash leaves the batch and its resume point both stored or both not."""
    try:
        with engine.begin() as conn:
            recent.begin()
            outcome = _store_articles(conn, feed_id, items, now, recent, {})
            conn.execute(update(schema.feeds).where(schema.feeds.c.id == feed_id).values(
                import_offset=resume_offset, import_fingerprint=fingerprint, last_poll_at=now,
                last_new_items=len(outcome.new_ids)))
    except BaseException:
        recent.rollback()
        raise
    recent.commit()
    return outcome


def record_fetch_failure(
    engine: Engine,
    feed_id: int,
    fetch_result: FetchResult,
    now: datetime,
    settings: Settings,
    rng: Random | None = None,
    error: str | None = None,
) -> StoreOutcome:
    """Keep the error for `status` and back off (exponential, jittered, capped)."""
    error = error or fetch_result.error or "unknown error"
    with engine.begin() as conn:
        row = feed_store.feed_row(conn, feed_id)
        state = feed_store.failure_state(row, fetch_result, error, now, settings.fetch, rng or Random())
        feed_store.write_state(conn, feed_id, state)
    return StoreOutcome(error=error)


def _store_articles(conn, feed_id: int, items: list[ArticleRecord], now: datetime, recent: RecentSignatures,
                    signatures: Mapping[str, bytes]) -> StoreOutcome:
    known = _KnownArticles.load(conn, feed_id, items)
    new_ids: list[int] = []
    new_stories: list[int] = []
    links: dict[int, str | None] = {}
    for item in items:
        article_id, kind = _store_one(conn, feed_id, item, known, signatures.get(item.content_hash), now, recent)
        if kind != _SEEN:
            new_ids.append(article_id)
        if kind == _NEW_STORY:
            new_stories.append(article_id)
        known.remember(item, article_id)
        links.setdefault(article_id, item.guid)
    _write_links_and_stories(conn, feed_id, links, new_stories, now)
    return StoreOutcome(new_ids, duplicates=len(items) - len(new_ids), clustered=len(new_ids) - len(new_stories))


_SEEN, _NEW_STORY, _CLUSTERED = "seen", "new story", "clustered"


def _store_one(conn, feed_id: int, item: ArticleRecord, known, signature: bytes | None, now: datetime,
               recent: RecentSignatures) -> tuple[int, str]:
    """(article id, what happened) for one item: seen before, a new story, or a new copy
    of a story already stored."""
    article_id = known.find(item)
    if article_id is not None:
        return article_id, _SEEN
    signature = signature_of(item) if signature is None else signature
    stored = _insert_new(conn, feed_id, item, signature, now, recent)
    if stored is None:  # another writer stored it first (the unique constraint said so)
        return _find_existing(conn, item), _SEEN
    article_id, cluster_id = stored
    return article_id, _NEW_STORY if cluster_id == article_id else _CLUSTERED


def _write_links_and_stories(conn, feed_id: int, links: dict, new_stories: list[int], now: datetime) -> None:
    """Two set-based statements per run instead of one or two per item."""
    if links:
        rows = [{"article_id": a, "feed_id": feed_id, "guid": g, "first_seen_at": now} for a, g in links.items()]
        conn.execute(feed_store.insert_ignoring_conflicts(conn, article_feeds), rows)
    if new_stories:  # a new story is its own cluster
        conn.execute(update(articles).where(articles.c.id.in_(new_stories)).values(cluster_id=articles.c.id))


class _KnownArticles:
    """Already-stored articles matching this run's items, found with three IN queries
    per feed run instead of three lookups per item."""

    def __init__(self, by_guid: dict, by_url: dict, by_hash: dict):
        self.by_guid, self.by_url, self.by_hash = by_guid, by_url, by_hash

    @classmethod
    def load(cls, conn, feed_id: int, items: list[ArticleRecord]) -> _KnownArticles:
        guids = [i.guid for i in items if i.guid]
        by_guid = dict(conn.execute(
            select(article_feeds.c.guid, article_feeds.c.article_id)
            .where(article_feeds.c.feed_id == feed_id, article_feeds.c.guid.in_(guids))
        ).all()) if guids else {}
        by_url = dict(conn.execute(
            select(articles.c.canonical_url, articles.c.id).where(articles.c.canonical_url.in_([i.canonical_url for i in items]))
        ).all()) if items else {}
        by_hash = dict(conn.execute(
            select(articles.c.content_hash, articles.c.id).where(articles.c.content_hash.in_([i.content_hash for i in items]))
        ).all()) if items else {}
        return cls(by_guid, by_url, by_hash)

    def find(self, item: ArticleRecord) -> int | None:
        return (
            (self.by_guid.get(item.guid) if item.guid else None)
            or self.by_url.get(item.canonical_url)
            or self.by_hash.get(item.content_hash)
        )

    def remember(self, item: ArticleRecord, article_id: int) -> None:
        # The same item twice in one document counts once.
        if item.guid:
            self.by_guid.setdefault(item.guid, article_id)
        self.by_url.setdefault(item.canonical_url, article_id)
        self.by_hash.setdefault(item.content_hash, article_id)


def signature_of(item: ArticleRecord) -> bytes:
    """The MinHash signature stored for an article: over title and text, because many
    feeds carry only a teaser and the headline is half of what identifies a story."""
    from monitor.dedupe import signature

    return signature(f"{item.title}\n{item.text}")


def _insert_new(conn, feed_id: int, item: ArticleRecord, signature: bytes, now: datetime, recent: RecentSignatures):
    """Insert one article: (id, cluster id), or None when another writer got there first."""
    cluster_id = recent.match(conn, now, signature)
    article_id = conn.execute(_INSERT_ARTICLE, {
        "feed_id": feed_id, "guid": item.guid, "url": item.url, "canonical_url": item.canonical_url,
        "content_hash": item.content_hash, "title": item.title, "text": item.text, "author": item.author,
        "source": item.source, "published_at": item.published_at, "published_estimated": item.published_estimated,
        "fetched_at": item.fetched_at, "minhash": signature or None, "cluster_id": cluster_id,
    }).scalar()
    if article_id is None:
        return None
    cluster_id = cluster_id or article_id
    recent.stage(article_id, cluster_id, signature)
    return article_id, cluster_id


def _find_existing(conn, item: ArticleRecord) -> int:
    return conn.execute(
        select(articles.c.id).where(
            (articles.c.canonical_url == item.canonical_url) | (articles.c.content_hash == item.content_hash)
        ).limit(1)
    ).scalar_one()


_ARTICLE_COLUMNS = (
    "feed_id", "guid", "url", "canonical_url", "content_hash", "title", "text", "author", "source",
    "published_at", "published_estimated", "fetched_at", "minhash", "cluster_id",
)
# Spelled as SQL because SQLAlchemy never caches the compiled form of its dialect-specific
# Insert (on_conflict_do_nothing), and compiling per article cost more than parsing it.
# Same text on SQLite (>= 3.35) and PostgreSQL; typed binds keep UTCDateTime's conversion.
_INSERT_ARTICLE = (
    text(
        f"INSERT INTO articles ({', '.join(_ARTICLE_COLUMNS)}) "
        f"VALUES ({', '.join(':' + c for c in _ARTICLE_COLUMNS)}) ON CONFLICT DO NOTHING RETURNING id"
    )
    .bindparams(*(bindparam(c, type_=articles.c[c].type) for c in _ARTICLE_COLUMNS))
    .columns(id=Integer)
)


def known_canonical_urls(engine: Engine, urls: Sequence[str]) -> set[str]:
    """Which of these URLs are already stored (so full text is fetched for new items only)."""
    if not urls:
        return set()
    with engine.connect() as conn:
        return set(conn.execute(select(articles.c.canonical_url).where(articles.c.canonical_url.in_(list(urls)))).scalars())

