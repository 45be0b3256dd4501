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

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from random import Random

import numpy as np
from sqlalchemy import Engine, Integer, String, TextualSelect, bindparam, select, text, update

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
    dropped if that transaction rolls back, so nothing clusters with an uncommitted row.

    A bucket holds one article id, or a set of them once a second article shares the
    slice: nearly every slice is held by one article, so filing an article and finding
    that it shares nothing are each one C-level dict operation, not one per band. A
    slice is not tagged with its band: two bands with the same 96 bits by chance would
    only add a candidate, and candidates are scored in full."""

    BANDS = 42

    def __init__(self, window: timedelta = NEAR_DUPLICATE_WINDOW, limit: int = NEAR_DUPLICATE_LIMIT):
        self.window, self.limit = window, limit
        self._loaded = False
        self._entries: dict[int, tuple[int, bytes]] = {}  # article id -> (cluster id, signature); oldest first
        self._buckets: dict[bytes, int | set[int]] = {}  # band slice -> the article id(s) holding it
        self._staged: list[int] = []
        self._last_bands: tuple[bytes | None, list[bytes]] = (None, [])

    def begin(self) -> None:
        self._staged = []

    def ensure_loaded(self, conn, now: datetime) -> None:
        # Lazily, on the first new article of the cycle: a cycle of 304s reads nothing.
        if not self._loaded:
            self._load(conn, now)

    def _load(self, conn, now: datetime) -> None:
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
        self.ensure_loaded(conn, now)
        ids = self._holders(self._bands(signature))
        if not ids:
            return None
        found = find_near_duplicate(signature, [(i, self._entries[i][1]) for i in sorted(ids)])
        return self._entries[found][0] if found is not None else None

    def _holders(self, keys: list[bytes]) -> set[int]:
        ids: set[int] = set()
        for key in self._buckets.keys() & keys:  # usually none: one C-level intersection
            held = self._buckets[key]
            if isinstance(held, set):
                ids.update(held)
            else:
                ids.add(held)
        return ids

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
        keys = self._bands(signature)
        if not self._buckets.keys() & keys:
            self._buckets.update(dict.fromkeys(keys, article_id))
            return
        for key in keys:
            held = self._buckets.setdefault(key, article_id)
            if isinstance(held, set):
                held.add(article_id)
            elif held != article_id:
                self._buckets[key] = {held, article_id}

    def _remove(self, article_id: int) -> None:
        entry = self._entries.pop(article_id, None)
        if entry:
            for key in self._bands(entry[1]):
                held = self._buckets.get(key)
                if held == article_id:
                    del self._buckets[key]
                elif isinstance(held, set):
                    held.discard(article_id)
                    if not held:
                        del self._buckets[key]

    def _bands(self, signature: bytes) -> list[bytes]:
        # Byte slices of the signature body (equal hash values give equal bytes whatever
        # the encoding dedupe chose), cut in one NumPy call: slicing in Python cost more
        # than the rest of the matching.
        if self._last_bands[0] is not signature:  # match() then stage() ask for the same one
            width = max(1, (len(signature) - 1) // self.BANDS)
            count = min(self.BANDS, (len(signature) - 1) // width)
            slices = np.frombuffer(signature, dtype=f"V{width}", count=count, offset=1).tolist()
            self._last_bands = (signature, slices)
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
    fresh = known.take_fresh(items)
    signed = [_signature(item, signatures) for item in fresh]
    if fresh:
        recent.ensure_loaded(conn, now)  # before the insert: this run's rows are not history to match
    inserted = _insert_fresh(conn, feed_id, fresh, signed)
    clusters = _cluster(conn, now, recent, inserted, signed)
    # Another writer stored it first (the unique constraint said so): seen, like a known one.
    fresh_ids = [_find_existing(conn, item) if i is None else i for item, i in zip(fresh, inserted)]
    links: dict[int, str | None] = {}
    for item in items:
        links.setdefault(known.resolve(item, fresh_ids), item.guid)
    _write_clusters(conn, clusters)
    _write_links(conn, feed_id, links, now)
    stories = sum(cluster_id == article_id for article_id, cluster_id in clusters.items())
    return StoreOutcome(list(clusters), duplicates=len(items) - len(clusters), clustered=len(clusters) - stories)


def _cluster(conn, now: datetime, recent: RecentSignatures, inserted: list[int | None],
             signed: list[bytes]) -> dict[int, int]:
    """{new article id: its story's cluster id}, in item order: each new article may
    join the story of one stored before it, in this run too."""
    clusters: dict[int, int] = {}
    for article_id, signature in zip(inserted, signed):
        if article_id is not None:
            clusters[article_id] = recent.match(conn, now, signature) or article_id
            recent.stage(article_id, clusters[article_id], signature)
    return clusters


def _signature(item: ArticleRecord, signatures: Mapping[str, bytes]) -> bytes:
    signature = signatures.get(item.content_hash)
    return signature_of(item) if signature is None else signature


def _write_clusters(conn, clusters: dict[int, int]) -> None:
    """Set-based: one statement for the new stories (each its own cluster), one
    executemany for the copies. A row's id is known only once it is inserted."""
    stories = [article_id for article_id, cluster_id in clusters.items() if cluster_id == article_id]
    copies = [{"row_id": a, "cluster": c} for a, c in clusters.items() if c != a]
    if stories:
        conn.execute(update(articles).where(articles.c.id.in_(stories)).values(cluster_id=articles.c.id))
    if copies:
        conn.execute(update(articles).where(articles.c.id == bindparam("row_id")).values(cluster_id=bindparam("cluster")),
                     copies)


def _write_links(conn, feed_id: int, links: dict[int, str | None], now: datetime) -> None:
    if links:
        rows = [{"article_id": a, "feed_id": feed_id, "guid": g, "first_seen_at": now} for a, g in links.items()]
        conn.execute(feed_store.insert_ignoring_conflicts(conn, article_feeds), rows)


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

    def take_fresh(self, items: list[ArticleRecord]) -> list[ArticleRecord]:
        """The items not stored yet, the first of each identity, in order. Every item is
        remembered; a fresh one under a stand-in id (-1, -2, ...) that `resolve` turns
        into its row id once the batch is inserted."""
        fresh: list[ArticleRecord] = []
        for item in items:
            article_id = self.find(item)
            if article_id is None:
                fresh.append(item)
                article_id = -len(fresh)
            self.remember(item, article_id)
        return fresh

    def resolve(self, item: ArticleRecord, fresh_ids: list[int]) -> int:
        article_id = self.find(item)
        assert article_id is not None, "resolve() before take_fresh()"
        return fresh_ids[-article_id - 1] if article_id < 0 else article_id

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
    return signature_for(item.title, item.text)


def signature_for(title: str, text: str) -> bytes:
    """The MinHash signature stored for an article: over title and text, because many
    feeds carry only a teaser and the headline is half of what identifies a story."""
    from monitor.dedupe import signature

    return signature(f"{title}\n{text}")


def _insert_fresh(conn, feed_id: int, fresh: list[ArticleRecord], signed: list[bytes]) -> list[int | None]:
    """Insert new articles in multi-row statements: the row id of each, or None where
    ON CONFLICT DO NOTHING skipped it (another writer stored it first)."""
    stored: dict[str, int] = {}
    for start, size in _chunks(len(fresh)):
        chunk = list(zip(fresh[start : start + size], signed[start : start + size]))
        params = {f"{column}_{row}": value for row, (item, signature) in enumerate(chunk)
                  for column, value in _columns(feed_id, item, signature).items()}
        # RETURNING order is not the VALUES order (and skipped rows return nothing): the
        # unique content hash says which row is which.
        stored.update((row.content_hash, row.id) for row in conn.execute(_insert_articles(len(chunk)), params))
    return [stored.get(item.content_hash) for item in fresh]


def _columns(feed_id: int, item: ArticleRecord, signature: bytes) -> dict:
    return {
        "feed_id": feed_id, "guid": item.guid, "url": item.url, "canonical_url": item.canonical_url,
        "content_hash": item.content_hash, "title": item.title, "text": item.text, "author": item.author,
        "source": item.source, "published_at": item.published_at, "published_estimated": item.published_estimated,
        "fetched_at": item.fetched_at, "minhash": signature or None, "cluster_id": None,  # set once the ids are known
    }


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
# Rows per INSERT: powers of two, so a few statements (50 new items: 32 + 16 + 2) cover
# any batch and seven cached statements serve the process (one per row count would hold
# tens of MB). 64 rows are 896 parameters, far under SQLite's and PostgreSQL's limits.
_INSERT_SIZES = (64, 32, 16, 8, 4, 2, 1)


def _chunks(count: int) -> Iterator[tuple[int, int]]:
    """(start, size) of each INSERT for `count` rows, largest first."""
    start = 0
    for size in _INSERT_SIZES:
        while count - start >= size:
            yield start, size
            start += size


@lru_cache(maxsize=len(_INSERT_SIZES))
def _insert_articles(rows: int) -> TextualSelect:
    """A multi-row INSERT ... ON CONFLICT DO NOTHING RETURNING for `rows` rows.
    Spelled as SQL because SQLAlchemy never caches the compiled form of its dialect-specific
    Insert (on_conflict_do_nothing): compiling one for every feed run cost 10-30% more.
    Same text on SQLite (>= 3.35) and PostgreSQL; typed binds keep UTCDateTime's conversion."""
    values = ", ".join("(" + ", ".join(f":{c}_{row}" for c in _ARTICLE_COLUMNS) + ")" for row in range(rows))
    return (
        text(f"INSERT INTO articles ({', '.join(_ARTICLE_COLUMNS)}) VALUES {values} "
             "ON CONFLICT DO NOTHING RETURNING id, content_hash")
        .bindparams(*(bindparam(f"{c}_{row}", type_=articles.c[c].type) for row in range(rows) for c in _ARTICLE_COLUMNS))
        .columns(id=Integer, content_hash=String)
    )


def known_canonical_urls(engine: Engine, urls: Sequence[str]) -> set[str]:
    """Which of these URLs are already stored (so full text is fetched for new items only)."""
    if not urls:
        return set()
    with engine.connect() as conn:
        return set(conn.execute(select(articles.c.canonical_url).where(articles.c.canonical_url.in_(list(urls)))).scalars())

