"""scale: index the untagged articles and the label date range

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


def upgrade() -> None:
    # A partial index: only untagged rows are in it, so the next batch to tag is found
    # in constant time however large the store grows.
    op.create_index('ix_articles_untagged', 'articles', ['id'], unique=False,
                    postgresql_where=UNTAGGED, sqlite_where=UNTAGGED)
    op.create_index('ix_article_labels_published', 'article_labels', ['published_at', 'label_id', 'article_id'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_article_labels_published', table_name='article_labels')
    op.drop_index('ix_articles_untagged', table_name='articles')
