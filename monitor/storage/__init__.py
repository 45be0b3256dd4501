"""Storage: the engine and migrations (engine.py), the schema (schema.py), and one
query module per aggregate (feeds, articles, tags, digests, locks)."""
