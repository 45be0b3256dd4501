"""The local web page and JSON API (FastAPI + Jinja2): routes call the same functions as the CLI."""
