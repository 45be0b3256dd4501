"""One path for every caller: `classify` on the command line and POST /api/classify give the
same reading of the same text, whatever its line endings, and both keep a fetched page's
title."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from monitor.app import App

REPO = Path(__file__).resolve().parent.parent
CLI = REPO / ".venv" / "bin" / "tension-monitor"
PAGE = REPO / "tests" / "feeds" / "article-page.html"
PAGE_TITLE = "Microsoft and OpenAI renegotiate | Example News"
STORY = (
    "OpenAI raises $40bn in a round led by SoftBank\n\n"
    "OpenAI has closed a $40bn funding round led by SoftBank, valuing it at $300bn.\n\n"
    "Much of the money goes to computing power: OpenAI will rent capacity from Oracle and CoreWeave "
    "rather than rely only on Microsoft's Azure cloud.\n\n"
    "  \u2022 Key terms:\n  \u2022 Financial stability for long-term research\n"
)


@pytest.fixture
def config_path(make_settings, tmp_path) -> Path:
    make_settings("[fetch]\nallow_private_addresses = true\nconnect_timeout = 2\ntotal_timeout = 10\n")
    return tmp_path / "monitor.toml"


@pytest.fixture
def api(config_path):
    from monitor.settings import load_settings
    from monitor.web.app import create_app

    app = App(load_settings(config_path, {}))
    with TestClient(create_app(app), base_url="http://127.0.0.1") as client:
        yield client
    app.close()


def cli_json(config_path: Path, *args: str, stdin: bytes | None = None) -> dict:
    done = subprocess.run([str(CLI), "--config", str(config_path), "classify", *args, "--json"],
                          input=stdin, capture_output=True, timeout=120, check=True)
    return json.loads(done.stdout)


def reading(answer: dict) -> tuple:
    return (answer["title"], answer["friction_points"], answer["scenarios"],
            {k: round(v, 4) for k, v in answer["scores"].items()}, answer["entities"],
            answer["needs_review"], answer["review"])


def test_crlf_text_reads_the_same_on_the_command_line_and_the_web(config_path, api):
    crlf = STORY.replace("\n", "\r\n")
    from_stdin = cli_json(config_path, "-", stdin=crlf.encode("utf-8"))
    from_stdin_lf = cli_json(config_path, "-", stdin=STORY.encode("utf-8"))
    from_web = api.post("/api/classify", json={"text": crlf}).json()
    assert reading(from_stdin) == reading(from_web) == reading(from_stdin_lf)
    assert "cloud" in from_web["scores"] and from_web["relevant"]
    assert not {"Key", "Financial"} & {e["text"] for e in from_web["entities"]}


def test_a_fetched_page_keeps_its_title_everywhere(config_path, api, httpserver):
    httpserver.expect_request("/story").respond_with_data(PAGE.read_bytes(), content_type="text/html")
    url = httpserver.url_for("/story")
    from_cli = cli_json(config_path, "--url", url)
    from_web = api.post("/api/classify", json={"url": url}).json()
    assert from_cli["title"] == from_web["title"] == PAGE_TITLE
    assert from_cli["url"] == from_web["url"] == url
    assert reading(from_cli) == reading(from_web)
