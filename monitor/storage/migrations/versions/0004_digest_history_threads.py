"""digest history, signposts, threads (issue 11)

Signpost hits with their evidence, developing threads (story -> thread), alerts, the
incremental scan marks, and an index on articles.tagged_at for the scans. (The digest's rendered HTML and text were already on
the digests row since 0001.)

Revision ID: 0004
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('signpost_hits',
    sa.Column('article_id', sa.Integer(), nullable=False),
    sa.Column('signpost_id', sa.String(length=64), nullable=False),
    sa.Column('scenario', sa.String(length=32), nullable=False),
    sa.Column('evidence', sa.Text(), nullable=False),
    sa.Column('fetched_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['article_id'], ['articles.id'], name=op.f('fk_signpost_hits_article_id_articles'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('article_id', 'signpost_id', name=op.f('pk_signpost_hits'))
    )
    with op.batch_alter_table('signpost_hits', schema=None) as batch_op:
        batch_op.create_index('ix_signpost_hits_signpost_fetched', ['signpost_id', 'fetched_at'], unique=False)
        batch_op.create_index('ix_signpost_hits_fetched_at', ['fetched_at'], unique=False)
    op.create_table('scan_marks',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('mark', sa.DateTime(timezone=True), nullable=True),
    sa.Column('signature', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_scan_marks'))
    )
    with op.batch_alter_table('articles', schema=None) as batch_op:
        batch_op.create_index('ix_articles_tagged_at', ['tagged_at'], unique=False)
    op.create_table('story_threads',
    sa.Column('cluster_id', sa.Integer(), nullable=False),
    sa.Column('thread_id', sa.Integer(), nullable=False),
    sa.Column('is_new', sa.Boolean(), nullable=False),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('cluster_id', name=op.f('pk_story_threads'))
    )
    with op.batch_alter_table('story_threads', schema=None) as batch_op:
        batch_op.create_index('ix_story_threads_thread', ['thread_id'], unique=False)
        batch_op.create_index('ix_story_threads_published_at', ['published_at'], unique=False)

    op.create_table('alerts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('event_key', sa.String(length=200), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('subject', sa.Text(), nullable=False),
    sa.Column('text_body', sa.Text(), nullable=False),
    sa.Column('html', sa.Text(), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('article_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['article_id'], ['articles.id'], name=op.f('fk_alerts_article_id_articles'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alerts')),
    sa.UniqueConstraint('event_key', name=op.f('uq_alerts_event_key'))
    )
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.create_index('ix_alerts_status_created', ['status', 'created_at'], unique=False)
        batch_op.create_index('ix_alerts_sent_at', ['sent_at'], unique=False)


def downgrade() -> None:
    op.drop_table('alerts')
    op.drop_table('story_threads')
    with op.batch_alter_table('articles', schema=None) as batch_op:
        batch_op.drop_index('ix_articles_tagged_at')
    op.drop_table('scan_marks')
    with op.batch_alter_table('signpost_hits', schema=None) as batch_op:
        batch_op.drop_index('ix_signpost_hits_fetched_at')
        batch_op.drop_index('ix_signpost_hits_signpost_fetched')
    op.drop_table('signpost_hits')
