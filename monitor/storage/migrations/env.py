"""Alembic environment: the engine comes from monitor.storage.engine, never a URL here."""

from alembic import context
from sqlalchemy import text

from monitor.storage.schema import metadata

engine = context.config.attributes["engine"]

with engine.begin() as connection:
    if connection.dialect.name == "postgresql":
        # Several processes starting at once on a new store (workers) would all create
        # the tables; one migrates, the others wait here and then find it at head.
        connection.execute(text("SELECT pg_advisory_xact_lock(hashtext(current_schema() || ' tension-monitor migrate'))"))
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    context.run_migrations()
