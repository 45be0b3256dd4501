"""re-sign recent articles with MinHash format 2 (vectorised; format 1 was datasketch's)

Near-duplicate matching reads only the signatures of the last NEAR_DUPLICATE_WINDOW
(storage.articles.RecentSignatures), and a format-1 signature never matches a format-2
one, so without this a story stored just before the upgrade would not gather the copies
that arrive just after it. Older signatures are left in format 1: nothing reads them,
and re-signing years of history would hold up the first start for minutes.

Revision ID: 0006
Revises: 0005
"""
from datetime import datetime, timezone

from alembic import op
import sqlalchemy as sa

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

BATCH = 1000

articles = sa.table(
    'articles', sa.column('id', sa.Integer), sa.column('title', sa.Text), sa.column('text', sa.Text),
    sa.column('fetched_at', sa.DateTime(timezone=True)), sa.column('minhash', sa.LargeBinary),
)


def upgrade() -> None:
    from monitor.dedupe import FORMAT
    from monitor.storage.articles import NEAR_DUPLICATE_WINDOW, signature_for

    conn = op.get_bind()
    since, last_id = datetime.now(timezone.utc) - NEAR_DUPLICATE_WINDOW, 0
    while True:
        rows = conn.execute(
            sa.select(articles.c.id, articles.c.title, articles.c.text, articles.c.minhash)
            .where(articles.c.id > last_id, articles.c.fetched_at >= since, articles.c.minhash.is_not(None))
            .order_by(articles.c.id).limit(BATCH)
        ).all()
        if not rows:
            return
        last_id = rows[-1].id
        changed = [{"row_id": row.id, "signature": signature_for(row.title, row.text) or None}
                   for row in rows if not row.minhash.startswith(FORMAT)]
        if changed:
            conn.execute(articles.update().where(articles.c.id == sa.bindparam("row_id"))
                         .values(minhash=sa.bindparam("signature")), changed)


def downgrade() -> None:
    # Format 1 cannot be rebuilt without datasketch. The older code reads a format-2
    # signature as no signature: the last week's articles just stop gathering copies.
    pass
