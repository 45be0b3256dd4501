"""re-sign recent articles with MinHash format 2 (vectorised; format 1 was datasketch's)

Near-duplicate matching reads only the newest NEAR_DUPLICATE_LIMIT signatures of the
last NEAR_DUPLICATE_WINDOW (storage.articles.RecentSignatures), and a format-1 signature
never matches a format-2 one, so without this a story stored just before the upgrade
would not gather the copies that arrive just after it. Exactly those rows are re-signed
(at most 10,000: a second or two); later loads only ever reach them or newer rows. Older
signatures are left in format 1: nothing reads them, and re-signing years of history
would hold up the first start for minutes.

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
    from monitor.storage.articles import NEAR_DUPLICATE_LIMIT, NEAR_DUPLICATE_WINDOW

    conn = op.get_bind()
    since = datetime.now(timezone.utc) - NEAR_DUPLICATE_WINDOW
    ids = list(conn.execute(  # the rows RecentSignatures would load now
        sa.select(articles.c.id).where(articles.c.fetched_at >= since, articles.c.minhash.is_not(None))
        .order_by(articles.c.fetched_at.desc(), articles.c.id.desc()).limit(NEAR_DUPLICATE_LIMIT)
    ).scalars())
    for start in range(0, len(ids), BATCH):
        _resign(conn, ids[start : start + BATCH])


def _resign(conn, ids: list[int]) -> None:
    from monitor.dedupe import FORMAT
    from monitor.storage.articles import signature_for

    rows = conn.execute(sa.select(articles.c.id, articles.c.title, articles.c.text, articles.c.minhash)
                        .where(articles.c.id.in_(ids))).all()
    changed = [{"row_id": row.id, "signature": signature_for(row.title, row.text) or None}
               for row in rows if not row.minhash.startswith(FORMAT)]
    if changed:
        conn.execute(articles.update().where(articles.c.id == sa.bindparam("row_id"))
                     .values(minhash=sa.bindparam("signature")), changed)


def downgrade() -> None:
    # Format 1 cannot be rebuilt without datasketch. The older code reads a format-2
    # signature as no signature: the last week's articles just stop gathering copies.
    pass
