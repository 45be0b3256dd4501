"""The database schema (SQLAlchemy Core). Alembic migrations in ./migrations create it.

State that must survive a restart lives here, not in the daemon's memory: feed
validators and backoff, the next poll, the daemon lock, digest send records.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    false,
    text,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)



class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no zone of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use UTC-aware datetimes")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


UTC_DATETIME = UTCDateTime()

feeds = Table(
    "feeds",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("url", Text, nullable=False, unique=True),  # identity: the configured URL
    Column("fetch_url", Text, nullable=False),  # where to ask now (after a remembered permanent redirect)
    Column("name", Text, nullable=False),
    Column("origin", String(16), nullable=False, default="config"),  # config | opml
    Column("active", Boolean, nullable=False, default=True),
    Column("interval_minutes", Integer),
    Column("full_text", Boolean, nullable=False, default=False),
    Column("etag", Text),
    Column("last_modified", Text),
    Column("redirect_target", Text),  # a permanent redirect seen but not yet remembered
    Column("redirect_count", Integer, nullable=False, default=0),
    Column("last_poll_at", UTC_DATETIME),
    Column("last_status", Integer),
    Column("last_error", Text),
    Column("failing_since", UTC_DATETIME),
    Column("error_count", Integer, nullable=False, default=0),
    Column("next_poll_at", UTC_DATETIME),
    Column("last_new_items", Integer, nullable=False, default=0),
    Column("last_duration_ms", Integer),
    Column("created_at", UTC_DATETIME, nullable=False),
    # Articles linked to this feed, kept by a trigger on article_feeds (migration 0005).
    Column("article_count", Integer, nullable=False, server_default="0"),
    # For an imported file's pseudo-feed (origin "import"): where the next import resumes,
    # and a fingerprint of the file's start then (another file at that path starts over).
    Column("import_offset", BigInteger),
    Column("import_fingerprint", String(64)),
    # A `worker`'s claim on a due feed while it polls it (SKIP LOCKED, then this lease, so
    # the fetch runs outside any transaction); the poll's stored state ends it, and a
    # worker that dies loses it when lease_until passes (its heartbeat moves it on).
    Column("lease_holder", Text),
    Column("lease_until", UTC_DATETIME),
)

articles = Table(
    "articles",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("feed_id", Integer, ForeignKey("feeds.id", ondelete="SET NULL")),  # the feed it was first seen in
    Column("guid", Text),
    Column("url", Text, nullable=False),
    Column("canonical_url", Text, nullable=False, unique=True),
    Column("content_hash", String(64), nullable=False, unique=True),
    Column("title", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("author", Text),
    Column("source", Text),
    Column("published_at", UTC_DATETIME, nullable=False),
    Column("published_estimated", Boolean, nullable=False, default=False),
    Column("fetched_at", UTC_DATETIME, nullable=False),
    Column("cluster_id", Integer),  # id of the first article of its near-duplicate story cluster
    Column("minhash", LargeBinary),  # MinHash signature for near-duplicate lookup
    Column("relevant", Boolean),  # effective relevance (any effective label); NULL until tagged
    Column("model_version", String(64)),
    Column("tagged_at", UTC_DATETIME),
    # The review band: labels the model could go either way on and no analyst has decided
    # yet (comma-separated ids, most uncertain first), and how close the closest one is.
    Column("needs_review", Boolean, nullable=False, default=False, server_default=false()),
    Column("review_labels", Text),
    Column("review_uncertainty", Float),
    Index("ix_articles_published_at", "published_at"),
    Index("ix_articles_fetched_at", "fetched_at"),
    Index("ix_articles_relevant_published", "relevant", "published_at"),
    Index("ix_articles_cluster_id", "cluster_id"),
    Index("ix_articles_guid", "guid"),
    Index("ix_articles_review", "needs_review", "review_uncertainty"),  # the review queue, most uncertain first
    # Only the untagged articles, oldest first: finding the next batch to tag costs the
    # same at 10k and 1M stored articles (migration 0005).
    Index("ix_articles_untagged", "id", postgresql_where=text("tagged_at IS NULL"), sqlite_where=text("tagged_at IS NULL")),
    Index("ix_articles_tagged_at", "tagged_at"),
)

# Every feed an article appeared in (the same item in two feeds is stored once).
article_feeds = Table(
    "article_feeds",
    metadata,
    Column("article_id", Integer, ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True),
    Column("feed_id", Integer, ForeignKey("feeds.id", ondelete="CASCADE"), primary_key=True),
    Column("guid", Text),
    Column("first_seen_at", UTC_DATETIME, nullable=False),
    Index("ix_article_feeds_feed_guid", "feed_id", "guid"),
)

# The model's score for every label, kept for trends, thresholds changes and export.
article_scores = Table(
    "article_scores",
    metadata,
    Column("article_id", Integer, ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True),
    Column("label_id", String(32), primary_key=True),
    Column("score", Float, nullable=False),
    Column("predicted", Boolean, nullable=False),
)

# Effective labels (model prediction with analyst corrections applied), denormalised so
# the digest and the article list filter by label with one index lookup.
article_labels = Table(
    "article_labels",
    metadata,
    Column("article_id", Integer, ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True),
    Column("label_id", String(32), primary_key=True),
    Column("origin", String(16), nullable=False),  # model | analyst
    Column("published_at", UTC_DATETIME, nullable=False),  # copied from articles for range scans
    Index("ix_article_labels_label_published", "label_id", "published_at"),
    # Trends read every label over a date range: a range scan on this, not the whole table.
    Index("ix_article_labels_published", "published_at", "label_id", "article_id"),
)

corrections = Table(
    "corrections",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("article_id", Integer, ForeignKey("articles.id", ondelete="CASCADE"), nullable=False),
    Column("label_id", String(32), nullable=False),
    Column("action", String(8), nullable=False),  # add | remove
    Column("author", Text, nullable=False),
    Column("created_at", UTC_DATETIME, nullable=False),
    Index("ix_corrections_article", "article_id"),
)

entities = Table(
    "entities",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("article_id", Integer, ForeignKey("articles.id", ondelete="CASCADE"), nullable=False),
    Column("text", Text, nullable=False),
    Column("label", String(32), nullable=False),
    Column("canonical_id", String(64)),
    Column("mentions", Integer, nullable=False, default=1),
    Index("ix_entities_article", "article_id"),
    Index("ix_entities_canonical", "canonical_id"),
)

digests = Table(
    "digests",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("window_start", UTC_DATETIME, nullable=False),
    Column("window_end", UTC_DATETIME, nullable=False),
    Column("status", String(16), nullable=False),  # pending | sent | failed | skipped (empty, send_empty = false)
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text),
    Column("subject", Text),
    Column("message_id", Text, unique=True),
    Column("recipients", Text),
    Column("html", Text),
    Column("text_body", Text),
    Column("relevant_count", Integer),
    Column("created_at", UTC_DATETIME, nullable=False),
    Column("sent_at", UTC_DATETIME),
    Column("last_attempt_at", UTC_DATETIME),  # when an SMTP try last began (paces retries of a failed window)
    Index("ix_digests_status_window_end", "status", "window_end"),
)

# Store-wide totals (articles, stories, untagged) kept by triggers on `articles` in the
# writer's own transaction (migration 0005), so `status` reads a few rows at any size.
# On PostgreSQL each counter has several shard rows, one per group of connections, so
# concurrent writers do not queue on one row; the total is the sum.
store_counts = Table(
    "store_counts",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("shard", Integer, primary_key=True),
    Column("value", BigInteger, nullable=False),
)

# Scenario signposts an article fired (config/signposts.toml), with the evidence sentence.
signpost_hits = Table(
    "signpost_hits",
    metadata,
    Column("article_id", Integer, ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True),
    Column("signpost_id", String(64), primary_key=True),
    Column("scenario", String(32), nullable=False),
    Column("evidence", Text, nullable=False),
    Column("fetched_at", UTC_DATETIME, nullable=False),  # the article's, for window queries
    Index("ix_signpost_hits_signpost_fetched", "signpost_id", "fetched_at"),
    Index("ix_signpost_hits_fetched_at", "fetched_at"),
)

# Developing threads (monitor/threads.py): each story (cluster id) and the thread it
# belongs to (the cluster id of the thread's first story).
story_threads = Table(
    "story_threads",
    metadata,
    Column("cluster_id", Integer, primary_key=True),
    Column("thread_id", Integer, nullable=False),
    Column("is_new", Boolean, nullable=False),  # a new development (the thread's first story) or a follow-up
    Column("published_at", UTC_DATETIME, nullable=False),  # the story's, to find open threads by time
    Index("ix_story_threads_thread", "thread_id"),
    Index("ix_story_threads_published_at", "published_at"),
)

# Alerts (monitor/alerts.py): one row per event and channel, sent at most once.
alerts = Table(
    "alerts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("event_key", String(200), nullable=False, unique=True),  # channel:kind:what (e.g. email:signpost:buyout_offer:42)
    Column("channel", String(16), nullable=False),  # email | webhook
    Column("kind", String(16), nullable=False),  # signpost | spike
    Column("subject", Text, nullable=False),
    Column("text_body", Text, nullable=False),
    Column("html", Text, nullable=False),
    Column("payload", Text, nullable=False),  # the webhook's JSON
    Column("article_id", Integer, ForeignKey("articles.id", ondelete="SET NULL")),
    Column("status", String(16), nullable=False),  # pending | sent | failed | uncertain
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text),
    Column("created_at", UTC_DATETIME, nullable=False),
    Column("sent_at", UTC_DATETIME),
    Index("ix_alerts_status_created", "status", "created_at"),
    Index("ix_alerts_sent_at", "sent_at"),
)

# How far an incremental scan over articles has got (e.g. signpost matching by tagged_at),
# and a signature of the config it ran with: a changed config starts it over.
scan_marks = Table(
    "scan_marks",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("mark", UTC_DATETIME),
    Column("signature", String(64), nullable=False),
)

# One row per lock name; a daemon holds it while its heartbeat is fresh.
locks = Table(
    "locks",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", Text, nullable=False),
    Column("acquired_at", UTC_DATETIME, nullable=False),
    Column("heartbeat_at", UTC_DATETIME, nullable=False),
)
