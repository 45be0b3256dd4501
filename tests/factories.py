"""Rows for tests that need a populated store without running the whole pipeline.

Writes through the schema directly (the ingest and tagging stages have their own tests);
values are what those stages would store.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timezone

from sqlalchemy import insert, select

from monitor.storage import schema
from monitor.taxonomy import LABEL_IDS


@dataclass
class SeedArticle:
    title: str
    published_at: datetime
    labels: dict[str, float] = field(default_factory=dict)  # label id -> score (predicted)
    text: str = "Body text of the article."
    url: str | None = None
    source: str = "Example Wire"
    feed: str = "Example feed"
    fetched_at: datetime | None = None
    entities: list[tuple[str, str, str | None]] = field(default_factory=list)  # (text, label, id)
    cluster_of: int | None = None  # index (in the same seed call) of the cluster's first article


def ensure_feed(conn, name: str, url: str | None = None) -> int:
    url = url or f"http://127.0.0.1/feeds/{hashlib.sha1(name.encode()).hexdigest()[:8]}.xml"
    found = conn.execute(select(schema.feeds.c.id).where(schema.feeds.c.url == url)).scalar()
    if found:
        return found
    return conn.execute(
        insert(schema.feeds).values(
            url=url, fetch_url=url, name=name, origin="config", active=True, full_text=False,
            redirect_count=0, error_count=0, last_new_items=0, created_at=datetime.now(timezone.utc),
        )
    ).inserted_primary_key[0]


def seed_articles(engine, items: list[SeedArticle], model_version: str = "test-model") -> list[int]:
    ids: list[int] = []
    with engine.begin() as conn:
        for item in items:
            feed_id = ensure_feed(conn, item.feed)
            url = item.url or f"https://news.example.com/{hashlib.sha1(item.title.encode()).hexdigest()[:12]}"
            fetched = item.fetched_at or item.published_at
            article_id = conn.execute(
                insert(schema.articles).values(
                    feed_id=feed_id, guid=url, url=url, canonical_url=url,
                    content_hash=hashlib.sha256((item.title + item.text).encode()).hexdigest(),
                    title=item.title, text=item.text, author=None, source=item.source,
                    published_at=item.published_at, published_estimated=False, fetched_at=fetched,
                    relevant=bool(item.labels), model_version=model_version, tagged_at=fetched,
                )
            ).inserted_primary_key[0]
            cluster = ids[item.cluster_of] if item.cluster_of is not None else article_id
            conn.execute(schema.articles.update().where(schema.articles.c.id == article_id).values(cluster_id=cluster))
            conn.execute(insert(schema.article_feeds).values(article_id=article_id, feed_id=feed_id, guid=url, first_seen_at=fetched))
            for label_id in LABEL_IDS:
                score = item.labels.get(label_id, 0.05)
                conn.execute(insert(schema.article_scores).values(
                    article_id=article_id, label_id=label_id, score=score, predicted=label_id in item.labels))
            for label_id in item.labels:
                conn.execute(insert(schema.article_labels).values(
                    article_id=article_id, label_id=label_id, origin="model", published_at=item.published_at))
            for text, label, canonical in item.entities:
                conn.execute(insert(schema.entities).values(
                    article_id=article_id, text=text, label=label, canonical_id=canonical, mentions=1))
            ids.append(article_id)
    return ids


@dataclass
class FeedItem:
    """One <item> for `rss_feed`; link doubles as the GUID unless one is given."""

    title: str
    link: str
    text: str = "Body text of the item, long enough to be a story of its own."
    guid: str | None = None
    published: str = "Mon, 23 Nov 2026 10:00:00 GMT"


def rss_feed(items: list[FeedItem], title: str = "Test feed") -> bytes:
    """A small RSS 2.0 document, as a real server would send it."""
    from xml.sax.saxutils import escape

    body = "".join(
        f"<item><title>{escape(i.title)}</title><link>{escape(i.link)}</link>"
        f"<guid isPermaLink=\"false\">{escape(i.guid or i.link)}</guid><pubDate>{i.published}</pubDate>"
        f"<description>{escape(i.text)}</description></item>"
        for i in items
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>{escape(title)}</title>'
        f"<link>https://example.org/</link><description>test</description>{body}</channel></rss>"
    ).encode("utf-8")
