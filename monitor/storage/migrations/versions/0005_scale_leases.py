"""scale: index the untagged articles and the label date range; counters kept by the database

Revision ID: 0005
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0001'
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

# PostgreSQL: the same rules in one function per table. Each backend adds to its own
# shard row (pg_backend_pid() % SHARDS), so concurrent writers rarely wait on one
# counter row until the other commits; readers sum the shards.
_PG_FUNCTIONS = f"""
CREATE FUNCTION tm_count_articles() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    d_articles int := 0; d_untagged int := 0; d_stories int := 0;
    my_shard int := mod(pg_backend_pid(), {SHARDS});
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        d_articles := d_articles + 1;
        d_untagged := d_untagged + (NEW.tagged_at IS NULL)::int;
        d_stories := d_stories + coalesce(NEW.cluster_id = NEW.id, false)::int;
    END IF;
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        d_articles := d_articles - 1;
        d_untagged := d_untagged - (OLD.tagged_at IS NULL)::int;
        d_stories := d_stories - coalesce(OLD.cluster_id = OLD.id, false)::int;
    END IF;
    IF d_articles <> 0 OR d_untagged <> 0 OR d_stories <> 0 THEN
        UPDATE store_counts SET value = value + CASE name WHEN 'articles' THEN d_articles
            WHEN 'untagged' THEN d_untagged ELSE d_stories END
        WHERE shard = my_shard AND name IN ('articles', 'untagged', 'stories');
    END IF;
    RETURN NULL;
END $$;
CREATE FUNCTION tm_count_feed_articles() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE feeds SET article_count = article_count + 1 WHERE id = NEW.feed_id;
    ELSE
        UPDATE feeds SET article_count = article_count - 1 WHERE id = OLD.feed_id;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER tm_articles_counted AFTER INSERT OR DELETE ON articles
    FOR EACH ROW EXECUTE FUNCTION tm_count_articles();
CREATE TRIGGER tm_articles_counted_update AFTER UPDATE OF tagged_at, cluster_id ON articles
    FOR EACH ROW WHEN ((OLD.tagged_at IS NULL) <> (NEW.tagged_at IS NULL)
                       OR OLD.cluster_id IS DISTINCT FROM NEW.cluster_id)
    EXECUTE FUNCTION tm_count_articles();
CREATE TRIGGER tm_feed_articles_counted AFTER INSERT OR DELETE ON article_feeds
    FOR EACH ROW EXECUTE FUNCTION tm_count_feed_articles();
"""


def upgrade() -> None:
    # A partial index: only untagged rows are in it, so the next batch to tag is found
    # in constant time however large the store grows.
    op.create_index('ix_articles_untagged', 'articles', ['id'], unique=False,
                    postgresql_where=UNTAGGED, sqlite_where=UNTAGGED)
    op.create_index('ix_article_labels_published', 'article_labels', ['published_at', 'label_id', 'article_id'],
                    unique=False)
    _add_counters()


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
        op.execute(_PG_FUNCTIONS)
    else:
        for name, body in _SQLITE_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {body}")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER tm_feed_articles_counted ON article_feeds")
        op.execute("DROP TRIGGER tm_articles_counted_update ON articles")
        op.execute("DROP TRIGGER tm_articles_counted ON articles")
        op.execute("DROP FUNCTION tm_count_feed_articles()")
        op.execute("DROP FUNCTION tm_count_articles()")
    else:
        for name in _SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER {name}")
    with op.batch_alter_table('feeds', schema=None) as batch_op:
        batch_op.drop_column('article_count')
    op.drop_table('store_counts')
    op.drop_index('ix_article_labels_published', table_name='article_labels')
    op.drop_index('ix_articles_untagged', table_name='articles')
