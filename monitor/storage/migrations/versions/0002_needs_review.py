"""needs review: the undecided review-band labels of each article, for the review queue

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07 20:10:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('articles', schema=None) as batch_op:
        batch_op.add_column(sa.Column('needs_review', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('review_labels', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('review_uncertainty', sa.Float(), nullable=True))
        batch_op.create_index('ix_articles_review', ['needs_review', 'review_uncertainty'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('articles', schema=None) as batch_op:
        batch_op.drop_index('ix_articles_review')
        batch_op.drop_column('review_uncertainty')
        batch_op.drop_column('review_labels')
        batch_op.drop_column('needs_review')
