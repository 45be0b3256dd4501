from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from monitor.errors import StorageError
from monitor.storage import schema
from monitor.storage.engine import current_revision, head_revision, open_store, table_names
from tests.factories import SeedArticle, seed_articles


def test_migrations_create_schema_at_head(engine):
    assert {"feeds", "articles", "article_labels", "digests", "locks"} <= table_names(engine)
    assert current_revision(engine) == head_revision(engine)


def test_reopening_is_idempotent(store_url):
    first = open_store(store_url)
    seed_articles(first, [SeedArticle("Kept across restarts", datetime.now(timezone.utc))])
    first.dispose()
    again = open_store(store_url)
    with again.connect() as conn:
        assert conn.execute(select(schema.articles.c.title)).scalars().all() == ["Kept across restarts"]
    again.dispose()


def test_datetimes_come_back_aware_utc(engine):
    moment = datetime(2026, 3, 29, 0, 30, tzinfo=timezone(timedelta(hours=-5)))
    seed_articles(engine, [SeedArticle("Zone test", moment)])
    with engine.connect() as conn:
        stored = conn.execute(select(schema.articles.c.published_at)).scalar_one()
    assert stored == moment and stored.tzinfo is not None and stored.utcoffset() == timedelta(0)


def test_unreachable_database_is_one_clear_line():
    with pytest.raises(StorageError) as err:
        open_store("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")
    message = str(err.value)
    assert "cannot connect" in message and "\n" not in message and "127.0.0.1:1" in message
