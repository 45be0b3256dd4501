"""scale: index the untagged articles and the label date range; counters kept by the database

Revision ID: 0005
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

UNTAGGED = sa.text("tagged_at IS NULL")
SHARDS = 8  # PostgreSQL writers spread their counter updates over this many rows (see below)
COUNTERS = ("articles", "stories", "untagged")

# What each change to an article does to the three counters. A story is an article
# that heads its own near-duplicate cluster (cluster_id = id).
_SQLITE_TRIGGERS = {
    "tm_articles_counted_insert": """AFTER INSERT ON articles BEGIN
        UPDATE store_counts SET value = value + 1 WHERE shard = 0 AND (name = 'articles'
            OR (name = 'untagged' AND NEW.tagged_at IS NULL) OR (name = 'stories' AND NEW.cluster_id = NEW.id));
    END""",
    "tm_articles_counted_delete": """AFTER DELETE ON articles BEGIN
        UPDATE store_counts SET value = value - 1 WHERE shard = 0 AND (name = 'articles'
            OR (name = 'untagged' AND OLD.tagged_at IS NULL) OR (name = 'stories' AND OLD.cluster_id = OLD.id));
    END""",
    "tm_articles_counted_update": """AFTER UPDATE OF tagged_at, cluster_id ON articles
        WHEN (OLD.tagged_at IS NULL) != (NEW.tagged_at IS NULL) OR OLD.cluster_id IS NOT NEW.cluster_id BEGIN
        UPDATE store_counts SET value = value
            + (CASE WHEN name = 'untagged' THEN (NEW.tagged_at IS NULL) - (OLD.tagged_at IS NULL)
                    ELSE coalesce(NEW.cluster_id = NEW.id, 0) - coalesce(OLD.cluster_id = OLD.id, 0) END)
            WHERE shard = 0 AND name IN ('untagged', 'stories');
    END""",
    "tm_feed_articles_insert": """AFTER INSERT ON article_feeds BEGIN
        UPDATE feeds SET article_count = article_count + 1 WHERE id = NEW.feed_id;
    END""",
    "tm_feed_articles_delete": """AFTER DELETE ON article_feeds BEGIN
        UPDATE feeds SET article_count = article_count - 1 WHERE id = OLD.feed_id;
    END""",
}

# PostgreSQL: the same rules as statement-level triggers over transition tables: one
# counter UPDATE per statement (a COPY or a multi-row INSERT of a whole batch costs one),
# where row triggers would rewrite the same counter row once per article. Each backend
# adds to its own shard row (pg_backend_pid() mod SHARDS), so concurrent writers rarely
# wait on one counter row until the other commits; readers sum the shards.
def _pg_count_articles(name: str, sources: tuple[tuple[str, int], ...]) -> str:
    deltas = " UNION ALL ".join(
        f"SELECT {sign} * count(*) AS articles, {sign} * count(*) FILTER (WHERE tagged_at IS NULL) AS untagged, "
        f"{sign} * count(*) FILTER (WHERE cluster_id = id) AS stories FROM {table}"
        for table, sign in sources)
    return f"""CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE store_counts SET value = value + CASE store_counts.name WHEN 'articles' THEN d.articles
        WHEN 'untagged' THEN d.untagged ELSE d.stories END
    FROM (SELECT sum(articles) AS articles, sum(untagged) AS untagged, sum(stories) AS stories
          FROM ({deltas}) AS parts) AS d
    WHERE store_counts.shard = mod(pg_backend_pid(), {SHARDS})
      AND (d.articles <> 0 OR d.untagged <> 0 OR d.stories <> 0);
    RETURN NULL;
END $$;"""


def _pg_count_feed_articles(name: str, table: str, sign: int) -> str:
    return f"""CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE feeds SET article_count = article_count + {sign} * d.n
    FROM (SELECT feed_id, count(*) AS n FROM {table} GROUP BY feed_id) AS d WHERE feeds.id = d.feed_id;
    RETURN NULL;
END $$;"""


_PG_TRIGGERS = {  # trigger name: (function definition, table, event, transition tables)
    "tm_articles_inserted": (_pg_count_articles("tm_articles_inserted", (("new_rows", 1),)),
                             "articles", "INSERT", "NEW TABLE AS new_rows"),
    "tm_articles_deleted": (_pg_count_articles("tm_articles_deleted", (("old_rows", -1),)),
                            "articles", "DELETE", "OLD TABLE AS old_rows"),
    "tm_articles_updated": (_pg_count_articles("tm_articles_updated", (("new_rows", 1), ("old_rows", -1))),
                            "articles", "UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
    "tm_feed_articles_inserted": (_pg_count_feed_articles("tm_feed_articles_inserted", "new_rows", 1),
                                  "article_feeds", "INSERT", "NEW TABLE AS new_rows"),
    "tm_feed_articles_deleted": (_pg_count_feed_articles("tm_feed_articles_deleted", "old_rows", -1),
                                 "article_feeds", "DELETE", "OLD TABLE AS old_rows"),
}


def _create_pg_triggers() -> None:
    for name, (function, table, event, transitions) in _PG_TRIGGERS.items():
        op.execute(function)
        op.execute(f"CREATE TRIGGER {name} AFTER {event} ON {table} REFERENCING {transitions} "
                   f"FOR EACH STATEMENT EXECUTE FUNCTION {name}()")


def upgrade() -> None:
    # A partial index: only untagged rows are in it, so the next batch to tag is found
    # in constant time however large the store grows.
    op.create_index('ix_articles_untagged', 'articles', ['id'], unique=False,
                    postgresql_where=UNTAGGED, sqlite_where=UNTAGGED)
    op.create_index('ix_article_labels_published', 'article_labels', ['published_at', 'label_id', 'article_id'],
                    unique=False)
    _add_counters()
    # An imported file's pseudo-feed remembers where a crashed import resumes.
    op.add_column('feeds', sa.Column('import_offset', sa.BigInteger(), nullable=True))
    op.add_column('feeds', sa.Column('import_fingerprint', sa.String(length=64), nullable=True))
    # A worker's lease on a feed it is polling (storage.feeds.claim_due_feeds).
    op.add_column('feeds', sa.Column('lease_holder', sa.Text(), nullable=True))
    op.add_column('feeds', sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True))


def _add_counters() -> None:
    """Totals for `status` and per-feed counts for /feeds, kept by triggers in the same
    transaction as the rows they count, so reading them costs the same at any size
    and every writer (poll, import, a test's direct INSERT) keeps them right."""
    op.create_table('store_counts',
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('shard', sa.Integer(), nullable=False),
    sa.Column('value', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('name', 'shard', name=op.f('pk_store_counts'))
    )
    op.add_column('feeds', sa.Column('article_count', sa.Integer(), nullable=False, server_default='0'))
    op.execute("""INSERT INTO store_counts (name, shard, value) VALUES
        ('articles', 0, (SELECT count(*) FROM articles)),
        ('untagged', 0, (SELECT count(*) FROM articles WHERE tagged_at IS NULL)),
        ('stories', 0, (SELECT count(*) FROM articles WHERE cluster_id = id))""")
    op.execute("""UPDATE feeds SET article_count = (
        SELECT count(*) FROM article_feeds WHERE article_feeds.feed_id = feeds.id)""")
    if op.get_bind().dialect.name == "postgresql":
        shards = ", ".join(f"('{name}', {shard}, 0)" for name in COUNTERS for shard in range(1, SHARDS))
        op.execute(f"INSERT INTO store_counts (name, shard, value) VALUES {shards}")
        _create_pg_triggers()
    else:
        for name, body in _SQLITE_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {body}")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name, (_function, table, _event, _transitions) in _PG_TRIGGERS.items():
            op.execute(f"DROP TRIGGER {name} ON {table}")
            op.execute(f"DROP FUNCTION {name}()")
    else:
        for name in _SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER {name}")
    with op.batch_alter_table('feeds', schema=None) as batch_op:
        batch_op.drop_column('lease_until')
        batch_op.drop_column('lease_holder')
        batch_op.drop_column('import_fingerprint')
        batch_op.drop_column('import_offset')
        batch_op.drop_column('article_count')
    op.drop_table('store_counts')
    op.drop_index('ix_article_labels_published', table_name='article_labels')
    op.drop_index('ix_articles_untagged', table_name='articles')
