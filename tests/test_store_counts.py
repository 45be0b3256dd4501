"""Store-wide totals and per-feed counts are kept by the database (triggers, migration
0005) so `status` and /feeds read a few rows at any size; they must equal real counts
whatever wrote the rows."""

from datetime import datetime, timedelta, timezone

from sqlalchemy import delete, func, select, update

from monitor.storage import schema
from monitor.storage.feeds import feed_statuses, store_counts
from tests.factories import SeedArticle, seed_articles

DAY = datetime(2026, 11, 20, tzinfo=timezone.utc)
A = schema.articles


def real_counts(conn) -> dict[str, int]:
    return {
        "articles": conn.execute(select(func.count()).select_from(A)).scalar_one(),
        "stories": conn.execute(select(func.count(func.distinct(A.c.cluster_id)))).scalar_one(),
        "untagged": conn.execute(select(func.count()).where(A.c.tagged_at.is_(None))).scalar_one(),
    }


def test_totals_follow_inserts_tagging_clustering_and_deletes(engine):
    items = [SeedArticle(f"Story {n}", DAY + timedelta(hours=n), feed="Wire" if n % 2 else "Blog") for n in range(6)]
    items.append(SeedArticle("Copy of story 0", DAY, cluster_of=0, feed="Wire"))
    ids = seed_articles(engine, items)
    with engine.begin() as conn:
        assert store_counts(conn) == real_counts(conn) == {"articles": 7, "stories": 6, "untagged": 0}
        conn.execute(update(A).where(A.c.id.in_(ids[:3])).values(tagged_at=None))  # e.g. a reset for re-tagging
        conn.execute(update(A).where(A.c.id == ids[5]).values(cluster_id=ids[4]))  # joins another story
        conn.execute(delete(A).where(A.c.id == ids[1]))
        assert store_counts(conn) == real_counts(conn) == {"articles": 6, "stories": 4, "untagged": 2}
        conn.execute(update(A).where(A.c.id.in_(ids)).values(tagged_at=DAY))
        assert store_counts(conn) == real_counts(conn)
    counts = {status.name: status.articles for status in feed_statuses(engine)}
    assert counts == {"Wire": 3, "Blog": 3}  # the deleted article's link went with it


def test_a_rolled_back_write_leaves_the_totals_alone(engine):
    seed_articles(engine, [SeedArticle("Kept", DAY)])
    try:
        with engine.begin() as conn:
            conn.execute(delete(A))
            raise RuntimeError("crash before commit")
    except RuntimeError:
        pass
    with engine.connect() as conn:
        assert store_counts(conn) == real_counts(conn) == {"articles": 1, "stories": 1, "untagged": 0}
