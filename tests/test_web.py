"""The web page and JSON API through FastAPI's test client, on SQLite and PostgreSQL.

The model is loaded once per module and handed to each test's App, so the classify
tests run the real spaCy pipeline and classifier without paying for a load each.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import func, insert, select

from monitor.app import App
from monitor.storage import schema
from tests.factories import SeedArticle, ensure_feed, seed_articles

NOW = datetime.now(timezone.utc).replace(microsecond=0)
OWN_BASE = "http://127.0.0.1:8080"  # the Host the app answers to by default (web.host, web.port)
ARTICLE = (
    "Microsoft and OpenAI are renegotiating the terms of their partnership as OpenAI seeks more "
    "computing capacity outside Azure. The talks cover Microsoft's equity stake after OpenAI's "
    "restructuring into a public benefit corporation, and the AGI clause that would end Microsoft's "
    "access to OpenAI's models. OpenAI has signed cloud deals with Oracle and CoreWeave for its Stargate "
    "data centers, loosening the exclusivity Azure once had. Regulators at the FTC and the CMA are "
    "watching the relationship closely."
)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """(nlp, classifier), loaded once for every test in the module."""
    from tests.conftest import REPO

    from monitor.settings import load_settings

    folder = tmp_path_factory.mktemp("model")
    cfg = folder / "monitor.toml"
    cfg.write_text(f'root = "{REPO}"\n[storage]\nurl = "sqlite:///{folder / "m.db"}"\n')
    app = App(load_settings(cfg, {}))
    loaded = (app.nlp, app.classifier)
    app.close()
    return loaded


@pytest.fixture
def make_app(make_settings, store_url, model):
    apps = []

    def make(body: str = "", environ: dict | None = None) -> App:
        app = App(make_settings(body, environ=environ, db_url=store_url))
        app.nlp, app.classifier = model  # plain attributes shadow the lazy properties
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.close()


@pytest.fixture
def app(make_app) -> App:
    return make_app()


@pytest.fixture
def client(app):
    from monitor.web.app import create_app

    with TestClient(create_app(app), base_url=OWN_BASE) as client:
        yield client


def csrf_of(client: TestClient, path: str = "/") -> str:
    page = client.get(path)
    return re.search(r'name="csrf" value="([0-9a-f]+)"', page.text).group(1)


def count(app: App, table) -> int:
    with app.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def seed_stories(app: App) -> list[int]:
    day = timedelta(days=1)
    return seed_articles(app.engine, [
        SeedArticle("OpenAI signs Oracle cloud deal", NOW - day, {"cloud": 0.91, "uneasy_alliance": 0.7},
                    text="OpenAI signed a cloud deal with Oracle for Stargate capacity beyond Azure.",
                    source="Wire A", feed="Tech wire", entities=[("OpenAI", "ORG", "openai"), ("Oracle", "ORG", "oracle")]),
        SeedArticle("OpenAI and Oracle agree Stargate capacity", NOW - day, {"cloud": 0.88},
                    source="Paper B", feed="Business desk", cluster_of=0),
        SeedArticle("Microsoft hires former DeepMind researchers", NOW - 3 * day, {"talent": 0.8},
                    text="Microsoft AI hired a team of researchers.", source="Wire A", feed="Tech wire"),
        SeedArticle("New phone reviewed", NOW - 5 * day, {}, source="Gadgets", feed="Consumer"),
        SeedArticle("<script>alert('x')</script> FTC opens inquiry", NOW - 10 * day, {"regulation": 0.75},
                    source="Wire A", feed="Tech wire"),
    ])


# --- paste page ------------------------------------------------------------------------


def test_paste_form_has_csrf_and_security_headers(client):
    page = client.get("/")
    assert page.status_code == 200 and 'name="csrf"' in page.text and "<textarea" in page.text
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "tm_csrf" in page.cookies


def test_paste_shows_labels_bars_evidence_entities_and_similar(app, client):
    ids = seed_stories(app)
    page = client.post("/", data={"title": "Microsoft and OpenAI renegotiate", "text": ARTICLE, "csrf": csrf_of(client)})
    assert page.status_code == 200
    labels = re.search(r'data-testid="labels">(.*?)</p>', page.text, re.S).group(1)
    assert "Cloud and compute" in labels
    assert 'class="bar-threshold"' in page.text and "threshold" in page.text  # score bars with the threshold marked
    assert "<mark" in page.text  # evidence highlighted in the text
    assert "<code>openai</code>" in page.text  # entities with canonical ids
    assert f'href="/articles/{ids[0]}"' in page.text  # the stored Oracle/Stargate story is the most similar
    assert count(app, schema.articles) == len(ids) and count(app, schema.corrections) == 0  # nothing stored


def test_paste_empty_text_is_a_clear_message(app, client):
    page = client.post("/", data={"title": "Only a title", "text": "   ", "csrf": csrf_of(client)})
    assert page.status_code == 422 and "the text is empty" in page.text
    assert 'value="Only a title"' in page.text  # the form keeps what was typed


def test_paste_without_csrf_token_is_refused(client):
    client.get("/")
    page = client.post("/", data={"title": "t", "text": ARTICLE, "csrf": "0" * 64})
    assert page.status_code == 403 and "expired" in page.text


@pytest.mark.parametrize("url, message", [
    ("file:///etc/passwd", "only http:// and https://"),
    ("javascript:alert(1)", "only http:// and https://"),
    ("http://127.0.0.1:9/article", "refusing loopback address"),
    ("http://localhost:9/article", "refusing loopback address"),
])
def test_paste_refuses_unsafe_urls(client, url, message):
    page = client.post("/", data={"url": url, "csrf": csrf_of(client)})
    assert page.status_code == 400 and message in page.text


def test_paste_by_url_fetches_the_page(make_app, httpserver):
    from monitor.web.app import create_app

    app = make_app("[fetch]\nallow_private_addresses = true\n")
    html = f"<html><head><title>Renegotiation talks</title></head><body><article><p>{ARTICLE}</p></article></body></html>"
    httpserver.expect_request("/story").respond_with_data(html, content_type="text/html")
    with TestClient(create_app(app), base_url=OWN_BASE) as client:
        page = client.post("/", data={"url": httpserver.url_for("/story"), "csrf": csrf_of(client)})
    assert page.status_code == 200 and "Renegotiation talks" in page.text and "Cloud and compute" in page.text


# --- articles list ---------------------------------------------------------------------


def test_articles_list_shows_clusters_once_with_also_in(app, client):
    seed_stories(app)
    page = client.get("/articles")
    assert page.status_code == 200
    assert "OpenAI signs Oracle cloud deal" in page.text and "Stargate capacity" not in page.text
    assert "also in Paper B" in page.text
    assert "4 of 4 stories" in page.text


def test_articles_filters(app, client):
    seed_stories(app)
    titles = lambda html: re.findall(r'class="title" href="/articles/\d+">(.*?)</a>', html)  # noqa: E731
    assert titles(client.get("/articles?label=talent").text) == ["Microsoft hires former DeepMind researchers"]
    assert titles(client.get("/articles?relevant=no").text) == ["New phone reviewed"]
    assert titles(client.get("/articles?q=PHONE").text) == ["New phone reviewed"]
    since, until = (NOW - timedelta(days=4)).date(), (NOW - timedelta(days=2)).date()
    assert titles(client.get(f"/articles?since={since}&until={until}").text) == ["Microsoft hires former DeepMind researchers"]
    with app.engine.connect() as conn:
        consumer = conn.execute(select(schema.feeds.c.id).where(schema.feeds.c.name == "Consumer")).scalar_one()
    assert titles(client.get(f"/articles?feed={consumer}").text) == ["New phone reviewed"]
    # A filter that matches a later cluster member shows that member, not the cluster head.
    assert titles(client.get("/articles?q=Stargate").text) == ["OpenAI and Oracle agree Stargate capacity"]


def test_articles_pagination(make_app):
    from monitor.web.app import create_app

    app = make_app("[web]\npage_size = 5\n")
    seed_articles(app.engine, [SeedArticle(f"Story {i:02d}", NOW - timedelta(hours=i), {"cloud": 0.9}) for i in range(12)])
    with TestClient(create_app(app), base_url=OWN_BASE) as client:
        first, third = client.get("/articles"), client.get("/articles?page=3&label=cloud")
    assert "Story 00" in first.text and "Story 05" not in first.text and 'rel="next"' in first.text
    assert "Story 10" in third.text and "Story 11" in third.text and 'rel="next"' not in third.text
    assert "page=2" in third.text and "label=cloud" in third.text  # the pager keeps the filters


@pytest.mark.parametrize("query, message", [
    ("label=bogus", "unknown label id"),
    ("since=yesterday", "not a date"),
    ("page=abc", "not a number"),
    ("relevant=maybe", "relevant"),
    ("since=2026-05-02&until=2026-05-01", "before it starts"),
])
def test_articles_bad_filters_are_clear(client, query, message):
    page = client.get(f"/articles?{query}")
    assert page.status_code == 422 and message in page.text


def test_stored_markup_is_shown_as_text(app, client):
    ids = seed_stories(app)
    for path in ("/articles", f"/articles/{ids[4]}"):
        page = client.get(path)
        assert "<script>alert" not in page.text and "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page.text


# --- one article and corrections -------------------------------------------------------


def test_article_page_shows_text_tags_and_entities(app, client):
    ids = seed_stories(app)
    page = client.get(f"/articles/{ids[0]}")
    assert page.status_code == 200
    assert "Stargate capacity beyond Azure" in page.text and "Also in Paper B" in page.text
    assert "<code>oracle</code>" in page.text and "91%" in page.text
    assert 'aria-label="Remove Cloud and compute"' in page.text and 'aria-label="Add Talent wars"' in page.text


def test_unknown_article_is_404(client):
    page = client.get("/articles/999999")
    assert page.status_code == 404 and "no article with id 999999" in page.text
    assert client.get("/articles/not-a-number").status_code == 404


def test_correction_is_stored_with_who_and_when(app, client):
    ids = seed_stories(app)
    token = csrf_of(client, f"/articles/{ids[0]}")
    added = client.post(f"/articles/{ids[0]}/labels", data={"label": "talent", "action": "add", "analyst": "Priya", "csrf": token},
                        follow_redirects=False)
    assert added.status_code == 303 and added.headers["location"].startswith(f"/articles/{ids[0]}")
    client.post(f"/articles/{ids[0]}/labels", data={"label": "cloud", "action": "remove", "csrf": token})
    page = client.get(f"/articles/{ids[0]}")
    assert "added by Priya" in page.text and "removed by Priya" in page.text  # the name is remembered in a cookie
    with app.engine.connect() as conn:
        rows = conn.execute(select(schema.corrections.c.label_id, schema.corrections.c.action, schema.corrections.c.author)
                            .order_by(schema.corrections.c.id)).all()
        labels = set(conn.execute(select(schema.article_labels.c.label_id).where(schema.article_labels.c.article_id == ids[0])).scalars())
    assert [tuple(r) for r in rows] == [("talent", "add", "Priya"), ("cloud", "remove", "Priya")]
    assert labels == {"talent", "uneasy_alliance"}


def test_correction_bad_input_stores_nothing(app, client):
    ids = seed_stories(app)
    token = csrf_of(client)
    unknown = client.post(f"/articles/{ids[0]}/labels", data={"label": "bogus", "action": "add", "csrf": token})
    assert unknown.status_code == 422 and "unknown label id" in unknown.text
    missing = client.post("/articles/999999/labels", data={"label": "cloud", "action": "add", "csrf": token})
    assert missing.status_code == 404
    forged = client.post(f"/articles/{ids[0]}/labels", data={"label": "cloud", "action": "remove", "csrf": "f" * 64})
    assert forged.status_code == 403
    assert count(app, schema.corrections) == 0


def test_analyst_name_is_remembered_and_redirect_stays_on_site(app, client):
    ids = seed_stories(app)
    token = csrf_of(client)
    saved = client.post("/analyst", data={"analyst": "Zoë  Lin\n", "next": "//evil.example/", "csrf": token}, follow_redirects=False)
    assert saved.status_code == 303 and saved.headers["location"] == "/"
    assert 'name="analyst" value="Zoë Lin"' in client.get(f"/articles/{ids[0]}").text
    assert client.post("/analyst", data={"analyst": "x", "csrf": "bad"}).status_code == 403


# --- trends, feeds, digest -------------------------------------------------------------


def test_trends_are_svg_counts_per_day(app, client):
    seed_stories(app)
    page = client.get("/trends")
    assert page.status_code == 200 and page.text.count("<svg class=\"chart\"") == 26
    # The Oracle story and its near-duplicate are one story, yesterday.
    assert 'aria-label="Cloud and compute, last 14 days: 1 stories' in page.text
    assert 'aria-label="Regulation, last 14 days: 1 stories' in page.text


def test_feeds_health_table(app, client):
    with app.engine.begin() as conn:
        feed_id = ensure_feed(conn, "Broken feed")
        conn.execute(schema.feeds.update().where(schema.feeds.c.id == feed_id).values(
            last_poll_at=NOW, last_status=503, last_error="HTTP 503 Service Unavailable", failing_since=NOW - timedelta(hours=5),
            error_count=4, next_poll_at=NOW + timedelta(hours=1)))
        ensure_feed(conn, "Quiet <b>feed</b>")
    page = client.get("/feeds")
    assert page.status_code == 200 and "Broken feed" in page.text and "failing" in page.text
    assert "HTTP 503 Service Unavailable" in page.text and "Quiet &lt;b&gt;feed&lt;/b&gt;" in page.text


def test_digest_shows_last_sent_and_next(app, client):
    seed_stories(app)
    with app.engine.begin() as conn:
        conn.execute(insert(schema.digests).values(
            window_start=NOW - timedelta(days=2), window_end=NOW - timedelta(days=1), status="sent", attempts=1,
            subject="Tension Monitor: 3 stories", message_id="<d1@test>", recipients='["a@example.com"]',
            html="<html><body><h1>Yesterday's digest</h1></body></html>", text_body="x", relevant_count=3,
            created_at=NOW - timedelta(days=1), sent_at=NOW - timedelta(days=1)))
    page = client.get("/digest")
    assert page.status_code == 200 and "Tension Monitor: 3 stories" in page.text and 'src="/digest/next.html"' in page.text
    sent = client.get("/digest/sent.html")
    assert "Yesterday's digest" in sent.text and "sandbox" in sent.headers["content-security-policy"]
    assert sent.headers["x-frame-options"] == "SAMEORIGIN"
    nxt = client.get("/digest/next.html")
    assert nxt.status_code == 200 and "<html" in nxt.text.lower()


def test_digests_lists_every_digest_and_shows_each_as_sent(app, client):
    with app.engine.begin() as conn:
        for day, status in ((3, "sent"), (2, "uncertain"), (1, "sent")):
            conn.execute(insert(schema.digests).values(
                window_start=NOW - timedelta(days=day + 1), window_end=NOW - timedelta(days=day), status=status,
                attempts=1, subject=f"Digest <i>{day}</i> days ago", message_id=f"<d{day}@test>",
                recipients='["a@example.com"]', html=f"<html><body><h1>Sent {day} days ago</h1></body></html>",
                text_body=f"TEXT {day} <days>", relevant_count=day, created_at=NOW - timedelta(days=day),
                sent_at=NOW - timedelta(days=day) if status == "sent" else None))
    page = client.get("/digests")
    assert page.status_code == 200
    subjects = [page.text.index(f"Digest &lt;i&gt;{day}&lt;/i&gt; days ago") for day in (1, 2, 3)]
    assert subjects == sorted(subjects) and "uncertain" in page.text  # newest first, every state shown
    ids = re.findall(r'href="/digests/(\d+)"', page.text)
    assert len(ids) == 3
    one = client.get(f"/digests/{ids[-1]}")
    assert one.status_code == 200 and "TEXT 3 &lt;days&gt;" in one.text and f'src="/digests/{ids[-1]}/sent.html"' in one.text
    frame = client.get(f"/digests/{ids[-1]}/sent.html")
    assert "<h1>Sent 3 days ago</h1>" in frame.text and "sandbox" in frame.headers["content-security-policy"]
    assert client.get("/digests/9999").status_code == 404
    assert client.get("/digests/99999999999999999999").status_code in (404, 422)
    assert client.get("/digests/9999/sent.html").status_code == 404


def test_digest_page_without_any_digest(client):
    page = client.get("/digest")
    assert page.status_code == 200 and "No digest has been sent yet" in page.text


# --- JSON API --------------------------------------------------------------------------


def test_api_classify_is_the_cli_json_shape(app, client):
    from monitor.classify import tag_texts

    answer = client.post("/api/classify", json={"title": "Renegotiation", "text": ARTICLE})
    assert answer.status_code == 200
    tag = tag_texts(app.nlp, app.classifier, [("Renegotiation", ARTICLE)])[0]
    assert answer.json() == {"title": "Renegotiation", "url": None, **tag.to_json()}
    assert count(app, schema.articles) == 0


@pytest.mark.parametrize("body, status, message", [
    ({"title": "t", "text": "  "}, 422, "the text is empty"),
    ({}, 422, "the text is empty"),
    ({"text": ARTICLE, "colour": "red"}, 422, "colour"),
    ({"url": "ftp://example.com/a"}, 400, "only http:// and https://"),
    ({"url": "http://127.0.0.1:9/a"}, 400, "refusing loopback"),
    ({"url": "http://[::1]:9/a"}, 400, "refusing loopback"),
])
def test_api_classify_bad_input(client, body, status, message):
    answer = client.post("/api/classify", json=body)
    assert answer.status_code == status and message in answer.json()["detail"]


def test_api_post_must_be_json(client):
    answer = client.post("/api/classify", content=b'{"text": "x"}', headers={"content-type": "text/plain"})
    assert answer.status_code == 415


def test_api_articles(app, client):
    ids = seed_stories(app)
    body = client.get("/api/articles").json()
    assert body["total"] == 4 and [i["id"] for i in body["items"]][:2] == [ids[0], ids[2]]
    assert body["items"][0]["also_in"] == ["Paper B"] and body["next_page"] is None
    since = (NOW - timedelta(days=11)).date()
    until = (NOW - timedelta(days=9)).date()
    found = client.get(f"/api/articles?label=regulation&since={since}&until={until}&q=FTC").json()["items"]
    assert [i["id"] for i in found] == [ids[4]]
    assert client.get("/api/articles?label=nope").status_code == 422
    assert client.get("/api/articles?since=soon").status_code == 422
    assert client.get("/api/articles?page=0").status_code == 422


def test_api_labels(app, client):
    ids = seed_stories(app)
    done = client.post(f"/api/articles/{ids[2]}/labels", json={"add": ["investors"], "remove": ["talent"], "author": "bot"})
    assert done.status_code == 200 and done.json() == {"id": ids[2], "labels": ["investors"]}
    assert count(app, schema.corrections) == 2
    for body, status in [({"add": ["bogus"]}, 422), ({"add": ["cloud"], "remove": ["cloud"]}, 422), ({}, 422)]:
        assert client.post(f"/api/articles/{ids[2]}/labels", json=body).status_code == status
    assert client.post("/api/articles/999999/labels", json={"add": ["cloud"]}).status_code == 404
    assert count(app, schema.corrections) == 2


def test_openapi_documents_the_api(client):
    spec = client.get("/openapi.json").json()
    assert {"/api/classify", "/api/articles", "/api/articles/{article_id}/labels"} <= set(spec["paths"])
    assert "/" not in spec["paths"]  # pages are not API
    assert spec["paths"]["/api/classify"]["post"]["responses"]["413"]
    for path, asset in (("/docs", "/docs-assets/swagger-ui-bundle.js"), ("/redoc", "/docs-assets/redoc.standalone.js")):
        page = client.get(path)
        assert page.status_code == 200 and f'<script src="{asset}">' in page.text
        # The same strict policy as every page: no CDN, no inline script.
        assert page.headers["content-security-policy"] == client.get("/").headers["content-security-policy"]
        assert "script-src 'self';" in page.headers["content-security-policy"]
        assert "<script>" not in page.text and "https://" not in page.text
        assert client.get(asset).status_code == 200


# --- body cap, token -------------------------------------------------------------------


def test_body_over_cap_is_413_before_reading_it(make_app):
    from monitor.web.app import create_app

    app = make_app("[web]\nmax_body_bytes = 2048\n")
    big = "word " * 1000
    with TestClient(create_app(app), base_url=OWN_BASE) as client:
        token = csrf_of(client)
        assert client.post("/api/classify", json={"text": big}).status_code == 413
        page = client.post("/", data={"text": big, "csrf": token})
        assert page.status_code == 413 and "2,048-byte limit" in page.text
        chunked = client.post("/api/classify", content=iter([b'{"text": "', big.encode(), b'"}']),
                              headers={"content-type": "application/json"})
        assert chunked.status_code == 413
        small = client.post("/api/classify", content=iter([b'{"text": "', b"   ", b'"}']), headers={"content-type": "application/json"})
        assert small.status_code == 422  # a small chunked body is read and handled as usual
    assert count(app, schema.articles) == 0


def test_token_guards_every_route(make_app):
    from monitor.web.app import create_app

    app = make_app(environ={"TENSION_MONITOR_WEB_TOKEN": "s3cret-token"})
    with TestClient(create_app(app), base_url=OWN_BASE) as client:
        assert client.get("/articles").status_code == 401
        assert client.get("/api/articles").status_code == 401
        assert client.get("/articles?token=wrong").status_code == 401
        assert client.get("/static/style.css").status_code == 200
        assert client.get("/api/articles", headers={"Authorization": "Bearer s3cret-token"}).status_code == 200
        login = client.get("/articles?token=s3cret-token&label=cloud", follow_redirects=False)
        assert login.status_code == 303 and login.headers["location"] == "/articles?label=cloud"
        assert "s3cret-token" not in login.headers["set-cookie"]
        assert client.get("/articles").status_code == 200  # the cookie from the login


# --- serve -----------------------------------------------------------------------------


def test_serve_refuses_a_public_address_without_token(make_settings, monkeypatch):
    from monitor.cli import _register, cli

    settings = make_settings()
    monkeypatch.delenv("TENSION_MONITOR_WEB_TOKEN", raising=False)
    _register()
    result = CliRunner().invoke(cli, ["--config", str(settings.source_path), "serve", "--host", "0.0.0.0"], standalone_mode=False)
    assert result.exit_code != 0 and "needs an access token" in str(result.exception)
    assert result.exception.exit_code == 2


@pytest.mark.parametrize("host, loopback", [("127.0.0.1", True), ("127.8.0.1", True), ("::1", True), ("localhost", True),
                                            ("0.0.0.0", False), ("192.168.1.5", False), ("monitor.example", False)])
def test_loopback_check(host, loopback):
    from monitor.cli.web import is_loopback

    assert is_loopback(host) is loopback


# --- pure helpers ----------------------------------------------------------------------


def test_highlight_matches_normalised_and_cut_evidence():
    from monitor.web.present import highlight

    text = "Intro line.\nMicrosoft and OpenAI\nare renegotiating their deal. Other text here."
    segments = highlight(text, {"control": ["Microsoft and OpenAI are renegotiating their…"], "legal": ["x"]})
    assert "".join(s.text for s in segments) == text  # nothing lost or repeated
    marked = [s for s in segments if s.labels]
    assert [s.text for s in marked] == ["Microsoft and OpenAI\nare renegotiating their"] and marked[0].labels == ("control",)


def test_bar_chart_scales_to_the_busiest_day():
    from datetime import date

    from monitor.web.present import bar_chart

    chart = bar_chart([0, 2, 4], date(2026, 3, 3), width=30, height=40)
    assert [b.count for b in chart.bars] == [0, 2, 4] and chart.bars[0].height == 0
    assert chart.bars[2].height == 38 and chart.bars[1].height == 19 and chart.first_day == date(2026, 3, 1)


# --- the review queue ------------------------------------------------------------------


def queue_titles(html: str) -> list[str]:
    return re.findall(r'class="title" href="/articles/\d+">(.*?)</a>', html)


def test_review_queue_lists_flagged_stories_most_uncertain_first(app, client):
    from tests.test_storage_review import seed_flagged

    seed_flagged(app.engine)
    page = client.get("/review")
    assert page.status_code == 200 and ">Review (3)</a>" in page.text  # the nav counts what waits
    assert queue_titles(page.text) == ["Very unsure: cloud or talent", "Unsure about regulation", "Mildly unsure about cloud"]
    assert ">Review (3)</a>" in client.get("/").text  # on every page
    cloud = app.classifier.thresholds["cloud"]
    assert f"52% <span class=\"muted\">/ {round(100 * cloud)}%</span>" in page.text  # score vs the model's threshold
    assert 'aria-label="Accept Talent wars for Very unsure: cloud or talent"' in page.text
    assert "not tagged by the model" in page.text


def test_review_accept_and_reject_through_the_form(app, client):
    from tests.test_storage_review import seed_flagged

    ids = seed_flagged(app.engine)
    token = csrf_of(client, "/review")
    accepted = client.post(f"/review/{ids[1]}", data={"label": "talent", "decision": "accept", "analyst": "Priya",
                                                       "page": "1", "csrf": token})
    assert accepted.status_code == 200 and str(accepted.url).split("?")[0].endswith("/review")  # back to the queue
    assert "Saved: accepted Talent wars." in accepted.text
    assert queue_titles(accepted.text)[0] == "Very unsure: cloud or talent"  # cloud is still undecided
    rejected = client.post(f"/review/{ids[1]}", data={"label": "cloud", "decision": "reject", "page": "1", "csrf": token})
    assert queue_titles(rejected.text) == ["Unsure about regulation", "Mildly unsure about cloud"]  # the next item leads
    assert ">Review (2)</a>" in rejected.text
    with app.engine.connect() as conn:
        rows = conn.execute(select(schema.corrections.c.label_id, schema.corrections.c.action, schema.corrections.c.author)
                            .order_by(schema.corrections.c.id)).all()
        labels = set(conn.execute(select(schema.article_labels.c.label_id).where(schema.article_labels.c.article_id == ids[1])).scalars())
    assert [tuple(r) for r in rows] == [("talent", "add", "Priya"), ("cloud", "remove", "Priya")]
    assert labels == {"talent"}


def test_review_decisions_need_a_csrf_token_and_good_input(app, client):
    from tests.test_storage_review import seed_flagged

    ids = seed_flagged(app.engine)
    token = csrf_of(client, "/review")
    forged = client.post(f"/review/{ids[1]}", data={"label": "cloud", "decision": "accept", "csrf": "f" * 64})
    assert forged.status_code == 403 and "expired" in forged.text
    assert client.post(f"/review/{ids[1]}", data={"label": "cloud", "decision": "maybe", "csrf": token}).status_code == 422
    assert client.post(f"/review/{ids[1]}", data={"label": "bogus", "decision": "accept", "csrf": token}).status_code == 422
    assert client.post("/review/999999", data={"label": "cloud", "decision": "accept", "csrf": token}).status_code == 404
    assert count(app, schema.corrections) == 0 and ">Review (3)</a>" in client.get("/review").text
    assert client.get("/review?page=abc").status_code == 422


def test_article_page_shows_thresholds_and_the_review_badge(app, client):
    from tests.test_storage_review import seed_flagged

    ids = seed_flagged(app.engine)
    page = client.get(f"/articles/{ids[1]}")
    thresholds = app.classifier.thresholds
    for label in ("cloud", "talent", "regulation"):
        assert f"threshold {round(100 * thresholds[label])}%" in page.text
    assert 'data-testid="needs-review"' in page.text
    assert re.search(r'class="on in-review" data-label="cloud"', page.text)
    assert 'data-testid="needs-review"' not in client.get(f"/articles/{ids[3]}").text


def test_articles_list_filters_and_marks_stories_that_need_review(app, client):
    from tests.test_storage_review import seed_flagged

    seed_flagged(app.engine)
    flagged = client.get("/articles?review=yes").text
    assert sorted(queue_titles(flagged)) == ["Mildly unsure about cloud", "Unsure about regulation", "Very unsure: cloud or talent"]
    assert flagged.count('class="badge badge-review"') == 3
    assert queue_titles(client.get("/articles?review=no").text) == ["Clearly cloud"]
    assert client.get("/articles?review=perhaps").status_code == 422


def test_api_review_queue_and_decision(app, client):
    from tests.test_storage_review import seed_flagged

    ids = seed_flagged(app.engine)
    body = client.get("/api/review").json()
    assert [item["id"] for item in body["items"]] == [ids[1], ids[2], ids[0]] and body["total"] == 3
    assert body["items"][0]["labels"][0] == {"id": "cloud", "score": 0.52, "threshold": app.classifier.thresholds["cloud"],
                                             "predicted": True}
    done = client.post(f"/api/review/{ids[2]}", json={"label": "regulation", "decision": "accept", "author": "bot"})
    assert done.status_code == 200 and done.json() == {"id": ids[2], "labels": ["regulation"]}
    assert [item["id"] for item in client.get("/api/review").json()["items"]] == [ids[1], ids[0]]
    assert client.post(f"/api/review/{ids[1]}", json={"label": "cloud", "decision": "maybe"}).status_code == 422
    assert client.get("/api/articles?needs_review=true").json()["total"] == 2


def test_openapi_documents_the_review_api(client):
    spec = client.get("/openapi.json").json()
    assert {"/api/review", "/api/review/{article_id}"} <= set(spec["paths"])
    classify_out = spec["components"]["schemas"]["ClassifyOut"]["properties"]
    assert {"needs_review", "review", "uncertainty"} <= set(classify_out)
    assert "needs_review" in {p["name"] for p in spec["paths"]["/api/articles"]["get"]["parameters"]}

# --- Host header allowlist (DNS rebinding) -------------------------------------------------


def every_route(web, article_id: int) -> list[tuple[str, str]]:
    """(method, concrete path) for every route and method the app has, mounts included."""
    from starlette.routing import Mount

    def flatten(routes, prefix=""):
        for route in routes:
            if hasattr(route, "original_router"):  # FastAPI's record of an included router
                yield from flatten(route.original_router.routes, prefix + route.include_context.prefix)
            else:
                yield prefix, route

    calls = []
    for prefix, route in flatten(web.routes):
        if isinstance(route, Mount):
            calls.append(("GET", f"{prefix}{route.path}/style.css"))
            continue
        path = re.sub(r"\{article_id(:int)?\}", str(article_id), prefix + route.path)
        calls.extend((method, path) for method in sorted(route.methods) if method != "HEAD")
    return calls


def test_every_route_refuses_a_foreign_host_before_it_runs_and_answers_its_own(app):
    from monitor.web.app import create_app

    ids = seed_stories(app)
    web = create_app(app)
    calls = every_route(web, ids[0])
    assert {"/", "/articles", "/api/articles", "/api/classify", f"/api/articles/{ids[0]}/labels",
            "/openapi.json", "/docs", "/static/style.css", "/feeds", "/digest"} <= {path for _, path in calls}
    body = {"add": ["talent"], "remove": []}
    with TestClient(web, base_url="http://evil.example:8080") as evil:
        for method, path in calls:
            response = evil.request(method, path, json=body if method == "POST" else None)
            assert (response.status_code, response.text) == (400, "Invalid host header"), (method, path)
    assert count(app, schema.corrections) == 0  # the correction route never ran
    for base in ("http://127.0.0.1:8080", "http://localhost:8080", "http://[::1]:8080", "http://127.0.0.1"):
        with TestClient(web, base_url=base) as own:
            for method, path in calls:
                response = own.request(method, path, json=body if method == "POST" else None)
                assert response.text != "Invalid host header", (base, method, path)
            assert own.get("/api/articles").status_code == 200


def test_host_header_variants_that_are_not_ours_are_refused(client):
    for host in ("evil.example", "127.0.0.1.evil.example", "localhost.evil.example:8080", "127.0.0.2", "", "a b"):
        response = client.get("/api/articles", headers={"Host": host})
        assert response.status_code == 400, host


def test_reverse_proxy_names_from_config_are_answered(make_app):
    from monitor.web.app import create_app

    app = make_app('[web]\nallowed_hosts = ["monitor.example.org", "*.corp.example"]\n')
    web = create_app(app)
    for host, status in (("monitor.example.org", 200), ("news.corp.example:443", 200), ("corp.example.evil", 400),
                         ("example.org", 400)):
        with TestClient(web, base_url=f"https://{host}") as proxied:
            assert proxied.get("/api/articles").status_code == status, host


def test_token_mode_on_a_wildcard_bind_still_refuses_foreign_hosts(make_app):
    from monitor.web.app import create_app

    app = make_app('[web]\nallowed_hosts = ["monitor.lan"]\n', environ={"TENSION_MONITOR_WEB_TOKEN": "s3cret"})
    web = create_app(app, bound_host="0.0.0.0")
    auth = {"Authorization": "Bearer s3cret"}
    with TestClient(web, base_url="http://evil.example:8080") as evil:
        assert evil.get("/api/articles", headers=auth).status_code == 400  # a valid token does not help
    with TestClient(web, base_url="http://0.0.0.0:8080") as wildcard:
        assert wildcard.get("/api/articles", headers=auth).status_code == 400  # 0.0.0.0 is no name
    with TestClient(web, base_url="http://monitor.lan:8080") as lan:
        assert lan.get("/api/articles", headers=auth).status_code == 200
        assert lan.get("/api/articles").status_code == 401


def test_a_bound_address_is_answered_as_a_host(make_app):
    from monitor.web.app import create_app

    app = make_app(environ={"TENSION_MONITOR_WEB_TOKEN": "s3cret"})
    auth = {"Authorization": "Bearer s3cret"}
    for bound, base in (("192.0.2.10", "http://192.0.2.10:8080"), ("2001:db8::1", "http://[2001:db8::1]:8080")):
        with TestClient(create_app(app, bound_host=bound), base_url=base) as direct:
            assert direct.get("/api/articles", headers=auth).status_code == 200, bound


@pytest.mark.parametrize("entry", ["http://monitor.example.org", "monitor.example.org:8443", "a*.example.org", "x/y"])
def test_allowed_hosts_entries_must_be_host_names(make_settings, entry):
    from monitor.errors import ConfigError

    with pytest.raises(ConfigError, match=r"web\.allowed_hosts: .* is not a host name"):
        make_settings(f'[web]\nallowed_hosts = ["{entry}"]\n')


def test_article_ids_beyond_64_bits_are_not_found_not_a_crash(client):
    huge = "99999999999999999999999"
    assert client.get(f"/articles/{huge}").status_code == 404
    response = client.post(f"/api/articles/{huge}/labels", json={"add": ["cloud"], "remove": []})
    assert response.status_code == 404 and response.json() == {"detail": f"no article with id {huge}"}
