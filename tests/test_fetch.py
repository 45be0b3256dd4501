"""Fetch stage against a real HTTP server on 127.0.0.1 (and real files for file: URLs).

Nothing here leaves 127.0.0.0/8: the addresses fetch_page must refuse are refused
before any connection is made.
"""

from __future__ import annotations

import gzip
import random
import threading
import time
import zlib
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from monitor.errors import FetchError
from monitor.fetch import (
    build_request_headers,
    fetch_feed,
    fetch_feeds,
    fetch_page,
    is_modified,
    make_client,
    next_backoff,
    parse_retry_after,
)
from monitor.parse import parse_feed
from monitor.records import FeedSource
from monitor.settings import FetchSettings
from tests.conftest import REAL_FEEDS
from tests.hostile import SlowHeaderServer, double_gzip_bomb

RSS = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Local</title>
<item><title>One</title><link>http://127.0.0.1/one</link><description>First item.</description></item>
</channel></rss>"""

Handler = Callable[[BaseHTTPRequestHandler], None]


class FeedServer:
    """A threaded HTTP server on 127.0.0.1 with per-path handlers; records each request."""

    def __init__(self) -> None:
        self.routes: dict[str, Handler] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.release = threading.Event()  # set at teardown: slow handlers stop waiting
        server = self

        class RequestHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                server.requests.append((self.path, dict(self.headers)))
                route = server.routes.get(self.path.split("?")[0])
                if route is None:
                    reply(self, 404, b"not found")
                else:
                    route(self)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), RequestHandler)
        self.httpd.daemon_threads = True
        self.httpd.handle_error = lambda *_: None  # a client hanging up mid-body is what some tests want
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}{path}"

    def headers_for(self, path: str) -> list[dict[str, str]]:
        return [headers for seen, headers in self.requests if seen.split("?")[0] == path]


def reply(handler: BaseHTTPRequestHandler, status: int, body: bytes = b"", headers: dict | None = None) -> None:
    handler.send_response(status)
    headers = {"Content-Type": "application/rss+xml", **(headers or {})}
    for key, value in headers.items():
        handler.send_header(key, value)
    if "Content-Length" not in headers and "Transfer-Encoding" not in headers:
        handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def serve(body: bytes, status: int = 200, headers: dict | None = None) -> Handler:
    return lambda handler: reply(handler, status, body, headers)


@pytest.fixture
def server():
    feed_server = FeedServer()
    feed_server.thread.start()
    yield feed_server
    feed_server.release.set()
    feed_server.httpd.shutdown()
    feed_server.httpd.server_close()


def settings(**overrides) -> FetchSettings:
    values = {"connect_timeout": 2.0, "read_timeout": 2.0, "total_timeout": 5.0, "concurrency": 4}
    return FetchSettings(**(values | overrides))


def source(url: str, feed_id: int = 1, **fields) -> FeedSource:
    return FeedSource(id=feed_id, name=f"feed {feed_id}", url=url, fetch_url=url, **fields)


def fetch_one(url: str, fetch_settings: FetchSettings | None = None, **fields):
    fetch_settings = fetch_settings or settings()
    with make_client(fetch_settings) as client:
        return fetch_feed(client, source(url, **fields), fetch_settings)


# --- every real feed, in one concurrent call ---------------------------------------------

# Articles each real fixture must yield (PCMag: 20 entries, half of them phantoms).
REAL_ARTICLES = {
    "anthropic-news-long-rss2.xml": 208, "bbc-rss2.xml": 16, "braingle-dupguid-rss2.xml": 1,
    "dailymail-media-rss2.xml": 1, "feedparser-demoronize-1.xml": 1,
    "feedparser-entry_content_xml_base_inherit_4.xml": 1, "feedparser-rss_item_link_corrupted_ampersands.xml": 1,
    "feedparser-windows1255.xml": 1, "folha-rss091.xml": 15, "google-news-rss2.xml": 60,
    "hackernews-rss2.xml": 20, "openai-rss2.xml": 8, "pcmag-nested-rss2.xml": 10, "reuters-rss2.xml": 10,
    "saxerror-unescaped-amp-rss2.xml": 3, "theverge-atom.xml": 10, "wired-rss2.xml": 50, "xmlhack-rdf.xml": 8,
}
# Valid feeds with a channel and no items: no articles, no error, the title decoded.
REAL_CHANNEL_ONLY = {
    "feedparser-always_strip_doctype.xml": "found",
    "feedparser-charref_out_of_range.xml": "a \ufffd b \ufffd c \ufffd d",
    "feedparser-hellip.xml": "testing \u2026 entity",
    "feedparser-x80_cp1252.xml": "\u20ac",
}
REAL_NOT_FEEDS = {
    "cloudflare-challenge-html.xml": 'not a feed: got an HTML page ("Just a moment...")',
    "SOURCES.md": "not a feed: no RSS, Atom or RDF document",
}
CONTENT_TYPES = {"cloudflare-challenge-html.xml": "text/html; charset=UTF-8", "SOURCES.md": "text/markdown"}


def test_every_real_feed_parses_or_fails_alone_in_one_fetch_feeds_call(server):
    files = sorted(path for path in REAL_FEEDS.iterdir() if path.is_file())
    assert {p.name for p in files} == set(REAL_ARTICLES) | set(REAL_CHANNEL_ONLY) | set(REAL_NOT_FEEDS)
    for path in files:
        content_type = CONTENT_TYPES.get(path.name, "application/rss+xml")
        server.routes[f"/real/{path.name}"] = serve(path.read_bytes(), headers={"Content-Type": content_type})
    server.routes["/broken"] = serve(b"oops", status=500)
    sources = [source(server.url(f"/real/{p.name}"), feed_id=i) for i, p in enumerate(files)]
    sources.append(source(server.url("/broken"), feed_id=len(files)))

    results = {r.feed_id: r for r in fetch_feeds(sources, settings())}
    assert len(results) == len(sources)
    assert "HTTP 500" in results[len(files)].error

    fetched_at = datetime(2026, 11, 26, tzinfo=timezone.utc)
    for i, path in enumerate(files):
        assert results[i].ok, results[i].error
        parsed = parse_feed(results[i], fetched_at, max_items=500)
        if path.name in REAL_NOT_FEEDS:
            assert parsed.error.startswith(REAL_NOT_FEEDS[path.name]), parsed.error
            assert f"/real/{path.name}" in parsed.error
        elif path.name in REAL_CHANNEL_ONLY:
            assert (parsed.error, parsed.articles, parsed.title) == (None, [], REAL_CHANNEL_ONLY[path.name])
        else:
            assert parsed.error is None, f"{path.name}: {parsed.error}"
            assert len(parsed.articles) == REAL_ARTICLES[path.name], path.name
            assert all(a.title and a.canonical_url and a.content_hash for a in parsed.articles)


# --- conditional GET ----------------------------------------------------------------------


def test_repeat_poll_sends_validators_and_gets_304(server):
    etag, modified = '"v1"', "Wed, 25 Nov 2026 10:00:00 GMT"

    def conditional(handler):
        if handler.headers.get("If-None-Match") == etag:
            reply(handler, 304, headers={"ETag": etag})
        else:
            reply(handler, 200, RSS, {"ETag": etag, "Last-Modified": modified})

    server.routes["/feed"] = conditional
    first = fetch_one(server.url("/feed"))
    assert (first.status, first.etag, first.last_modified, first.body) == (200, etag, modified, RSS)

    second = fetch_one(server.url("/feed"), etag=first.etag, last_modified=first.last_modified)
    assert second.not_modified and second.ok and second.body is None and second.status == 304
    sent = server.headers_for("/feed")[-1]
    assert sent["If-None-Match"] == etag and sent["If-Modified-Since"] == modified
    assert parse_feed(second, datetime.now(timezone.utc), 10).articles == []


def test_request_carries_user_agent_and_gzip_and_gzipped_body_is_decoded(server):
    server.routes["/gz"] = serve(gzip.compress(RSS), headers={"Content-Encoding": "gzip"})
    result = fetch_one(server.url("/gz"), settings(user_agent="TestAgent/1.0"))
    assert result.body == RSS
    sent = server.headers_for("/gz")[0]
    assert sent["User-Agent"] == "TestAgent/1.0" and "gzip" in sent["Accept-Encoding"]


# --- slow, big, broken ------------------------------------------------------------------


def test_silent_server_times_out_while_other_feeds_arrive_first(server):
    def silent(handler):
        handler.send_response(200)
        handler.send_header("Content-Length", "100000")
        handler.end_headers()
        server.release.wait(30)  # says nothing until the test ends

    server.routes["/silent"] = silent
    for n in range(3):
        server.routes[f"/fast{n}"] = serve(RSS)
    sources = [source(server.url("/silent"), feed_id=0)] + [source(server.url(f"/fast{n}"), feed_id=n + 1) for n in range(3)]

    order = list(fetch_feeds(sources, settings(read_timeout=1.0, concurrency=4)))
    assert [r.feed_id for r in order][-1] == 0  # the silent feed is the last to finish
    assert all(r.ok and r.body == RSS for r in order[:3])
    assert "read timeout" in order[-1].error and "/silent" in order[-1].error


def test_trickling_server_is_cut_off_at_the_total_deadline(server):
    def trickle(handler):
        handler.send_response(200)
        handler.send_header("Content-Length", "100000")
        handler.end_headers()
        while not server.release.wait(0.05):  # one byte at a time: every read succeeds
            handler.wfile.write(b" ")
            handler.wfile.flush()

    server.routes["/trickle"] = trickle
    result = fetch_one(server.url("/trickle"), settings(read_timeout=1.0, total_timeout=1.5))
    assert "total timeout" in result.error and "/trickle" in result.error


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_oversized_body_is_refused_naming_cap_and_url(server, declared):
    body = b"x" * 5000
    headers = {} if declared else {"Transfer-Encoding": "chunked"}

    def big(handler):
        if declared:
            reply(handler, 200, body)
        else:
            reply(handler, 200, b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body), headers)

    server.routes["/big"] = big
    result = fetch_one(server.url("/big"), settings(max_bytes=1024))
    assert result.error == f"{server.url('/big')}: body exceeds 1 KiB cap"
    assert result.body is None


def test_gzip_bomb_is_capped_on_decoded_size(server):
    server.routes["/bomb"] = serve(gzip.compress(b"<" * 200_000), headers={"Content-Encoding": "gzip"})
    result = fetch_one(server.url("/bomb"), settings(max_bytes=64 * 1024))
    assert "body exceeds 64 KiB cap" in result.error


def test_single_gzip_bomb_of_a_gibibyte_stops_at_the_cap_without_inflating_it(server):
    inner = double_gzip_bomb()  # gunzip once: ~1 MB of gzip that inflates to 1 GiB
    server.routes["/bomb1"] = serve(gzip.decompress(inner), headers={"Content-Encoding": "gzip"})
    started = time.monotonic()
    result = fetch_one(server.url("/bomb1"), settings(max_bytes=1024 * 1024))
    assert result.error == f"{server.url('/bomb1')}: body exceeds 1 MiB cap"
    assert time.monotonic() - started < 5  # stopped after ~1 MiB, not after inflating 1 GiB


@pytest.mark.parametrize("encoding", ["gzip, gzip", "gzip,deflate", "deflate, gzip"])
def test_stacked_content_encoding_is_refused_in_one_line(server, encoding):
    server.routes["/stacked"] = serve(double_gzip_bomb(), headers={"Content-Encoding": encoding})
    result = fetch_one(server.url("/stacked"))
    assert result.body is None
    assert result.error.startswith(f"{server.url('/stacked')}: refusing stacked Content-Encoding ")
    assert "\n" not in result.error


def test_stacked_content_encoding_is_refused_for_article_pages(server):
    server.routes["/page"] = serve(double_gzip_bomb(), headers={"Content-Encoding": "gzip, gzip", "Content-Type": "text/html"})
    with pytest.raises(FetchError, match="refusing stacked Content-Encoding gzip, gzip"):
        fetch_page(server.url("/page"), settings(allow_private_addresses=True))


def test_identity_and_deflate_encodings_are_decoded(server):
    raw_deflate = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    server.routes["/zlib"] = serve(zlib.compress(RSS), headers={"Content-Encoding": "deflate"})
    server.routes["/raw"] = serve(raw_deflate.compress(RSS) + raw_deflate.flush(), headers={"Content-Encoding": "deflate"})
    server.routes["/identity"] = serve(RSS, headers={"Content-Encoding": "identity"})
    server.routes["/gz-identity"] = serve(gzip.compress(RSS), headers={"Content-Encoding": "gzip, identity"})
    for path in ("/zlib", "/raw", "/identity", "/gz-identity"):
        assert fetch_one(server.url(path)).body == RSS, path


def test_unrequested_content_encoding_is_an_error_not_garbage(server):
    server.routes["/br"] = serve(b"\x0b\x02\x80garbage", headers={"Content-Encoding": "br"})
    result = fetch_one(server.url("/br"))
    assert result.error == f"{server.url('/br')}: unsupported Content-Encoding br (we ask for gzip, deflate)"


def test_server_trickling_header_lines_is_cut_off_at_the_total_deadline():
    slow = SlowHeaderServer(interval=0.3)  # every read succeeds well within read_timeout
    try:
        started = time.monotonic()
        result = fetch_one(slow.url(), settings(read_timeout=1.0, total_timeout=2.0))
        elapsed = time.monotonic() - started
    finally:
        slow.close()
    assert result.error == f"{slow.url()}: gave up after 2 s (total timeout)"
    assert 1.9 < elapsed < 3.0


def test_slow_header_page_fetch_is_cut_off_at_the_total_deadline():
    slow = SlowHeaderServer(interval=0.3)
    try:
        started = time.monotonic()
        with pytest.raises(FetchError, match="gave up after 1.5 s"):
            fetch_page(slow.url("/article"), settings(read_timeout=1.0, total_timeout=1.5, allow_private_addresses=True))
        assert time.monotonic() - started < 2.5
    finally:
        slow.close()


def test_a_stop_request_ends_fetches_in_flight_after_a_short_grace():
    from monitor.fetch import STOP_GRACE

    slow = SlowHeaderServer(interval=0.3)
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    try:
        started = time.monotonic()
        results = list(fetch_feeds([source(slow.url(f"/f{n}"), feed_id=n) for n in range(3)],
                                   settings(total_timeout=30.0, read_timeout=10.0), stop=stop))
        elapsed = time.monotonic() - started
    finally:
        slow.close()
    assert 0.5 + STOP_GRACE - 0.1 < elapsed < 0.5 + STOP_GRACE + 1.5
    assert sorted(r.error for r in results) == sorted(f"{slow.url(f'/f{n}')}: abandoned (stopping)" for n in range(3))


def test_huge_retry_after_is_clamped_to_the_backoff_cap(server):
    server.routes["/busy"] = serve(b"", 429, {"Retry-After": "99999999999999999"})
    result = fetch_one(server.url("/busy"), settings(backoff_max_minutes=60))
    assert result.retry_after_seconds == 3600
    assert result.error == f"{server.url('/busy')}: HTTP 429 Too Many Requests (retry after 3600 s)"


def test_redirect_loop_is_reported(server):
    server.routes["/a"] = serve(b"", 302, {"Location": "/b"})
    server.routes["/b"] = serve(b"", 302, {"Location": server.url("/a")})
    result = fetch_one(server.url("/a"))
    assert result.error.startswith(f"{server.url('/a')}: redirect loop")


def test_too_many_redirects(server):
    for n in range(8):
        server.routes[f"/r{n}"] = serve(b"", 307, {"Location": f"/r{n + 1}"})
    result = fetch_one(server.url("/r0"), settings(max_redirects=3))
    assert "more than 3 redirects" in result.error


def test_permanent_redirect_recorded_only_for_an_all_301_308_chain(server):
    server.routes["/old"] = serve(b"", 301, {"Location": "/older"})
    server.routes["/older"] = serve(b"", 308, {"Location": "/new"})
    server.routes["/temp"] = serve(b"", 302, {"Location": "/new"})
    server.routes["/mixed"] = serve(b"", 301, {"Location": "/temp"})
    server.routes["/new"] = serve(RSS)

    moved = fetch_one(server.url("/old"))
    assert (moved.permanent_redirect, moved.final_url, moved.body) == (server.url("/new"), server.url("/new"), RSS)
    assert moved.requested_url == server.url("/old")
    assert fetch_one(server.url("/temp")).permanent_redirect is None
    assert fetch_one(server.url("/mixed")).permanent_redirect is None


def test_redirect_to_a_file_url_is_not_followed(server):
    server.routes["/sneaky"] = serve(b"", 302, {"Location": "file:///etc/passwd"})
    result = fetch_one(server.url("/sneaky"))
    assert result.error == "file:///etc/passwd: not an http(s) URL (nothing else is fetched)"


def test_410_marks_the_feed_gone(server):
    server.routes["/gone"] = serve(b"", 410)
    result = fetch_one(server.url("/gone"))
    assert result.gone and result.status == 410 and "HTTP 410" in result.error


def test_429_and_503_carry_retry_after(server):
    later = datetime.now(timezone.utc) + timedelta(hours=2)
    server.routes["/busy"] = serve(b"", 429, {"Retry-After": "120"})
    server.routes["/down"] = serve(b"", 503, {"Retry-After": format_datetime(later, usegmt=True)})
    busy = fetch_one(server.url("/busy"))
    assert busy.retry_after_seconds == 120 and busy.error == f"{server.url('/busy')}: HTTP 429 Too Many Requests (retry after 120 s)"
    down = fetch_one(server.url("/down"))
    assert 7000 < down.retry_after_seconds <= 7200 and "HTTP 503" in down.error


def test_server_error_is_one_line_naming_url(server):
    server.routes["/fail"] = serve(b"boom", 500)
    result = fetch_one(server.url("/fail"))
    assert result.error == f"{server.url('/fail')}: HTTP 500 Internal Server Error"
    assert result.status == 500 and result.body is None


def test_refused_connection_is_an_error_not_an_exception(server):
    port = server.httpd.server_port
    server.httpd.shutdown()
    server.httpd.server_close()
    result = fetch_one(f"http://127.0.0.1:{port}/feed")
    assert result.status is None and "cannot connect" in result.error and f"127.0.0.1:{port}" in result.error


# --- file: URLs -------------------------------------------------------------------------


def test_file_url_reads_the_file_and_then_reports_not_modified(tmp_path):
    path = tmp_path / "feed.xml"
    path.write_bytes(RSS)
    first = fetch_one(path.as_uri())
    assert (first.status, first.body, first.ok) == (200, RSS, True)
    again = fetch_one(path.as_uri(), last_modified=first.last_modified)
    assert again.not_modified and again.body is None


def test_file_url_problems_are_errors(tmp_path):
    missing = (tmp_path / "missing.xml").as_uri()
    assert fetch_one(missing).error == f"{missing}: no such file"
    big = tmp_path / "big.xml"
    big.write_bytes(b"x" * 2048)
    assert fetch_one(big.as_uri(), settings(max_bytes=1024)).error == f"{big.as_uri()}: body exceeds 1 KiB cap"


# --- article pages ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, reason",
    [
        ("http://127.0.0.1:9/page", "loopback"),
        ("http://localhost:9/page", "loopback"),
        ("http://[::ffff:127.0.0.1]:9/page", "loopback"),
        ("http://10.1.2.3/page", "private"),
        ("http://192.168.0.10/page", "private"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://0.0.0.0/", "unspecified"),
    ],
)
def test_fetch_page_refuses_non_public_addresses(url, reason):
    with pytest.raises(FetchError, match=f"refusing {reason} address") as caught:
        fetch_page(url, settings())
    assert str(caught.value).startswith(url)


def test_fetch_page_gives_up_on_a_resolver_that_never_answers(monkeypatch):
    # The OS resolver stands still (a dead DNS server); nothing leaves the machine.
    monkeypatch.setattr("socket.getaddrinfo", lambda *args, **kwargs: time.sleep(30))
    with pytest.raises(FetchError, match=r"cannot resolve news\.invalid: no answer within 0\.5 s"):
        fetch_page("http://news.invalid/story", settings(connect_timeout=0.5))


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1/x", "javascript:alert(1)"])
def test_fetch_page_refuses_other_schemes_even_when_private_allowed(url):
    with pytest.raises(FetchError, match=r"not an http\(s\) URL"):
        fetch_page(url, settings(allow_private_addresses=True))


def test_fetch_page_when_private_addresses_are_allowed(server):
    page = b"<html><body><article><p>Body.</p></article></body></html>"
    server.routes["/story"] = serve(b"", 301, {"Location": "/story/"})
    server.routes["/story/"] = serve(page, headers={"Content-Type": "text/html"})
    url = f"http://localhost:{server.httpd.server_port}/story"
    final_url, body = fetch_page(url, settings(allow_private_addresses=True))
    assert (final_url, body) == (url + "/", page)
    assert server.headers_for("/story/")[0]["Host"] == f"localhost:{server.httpd.server_port}"


def test_fetch_page_checks_each_redirect_hop(server):
    server.routes["/hop"] = serve(b"", 302, {"Location": "file:///etc/passwd"})
    with pytest.raises(FetchError, match=r"not an http\(s\) URL"):
        fetch_page(server.url("/hop"), settings(allow_private_addresses=True))


def test_fetch_page_http_error_and_cap(server):
    server.routes["/missing"] = serve(b"", 404)
    server.routes["/huge"] = serve(b"y" * 4096, headers={"Content-Type": "text/html"})
    allowed = settings(allow_private_addresses=True, max_bytes=1024)
    with pytest.raises(FetchError, match="HTTP 404"):
        fetch_page(server.url("/missing"), allowed)
    with pytest.raises(FetchError, match=r"/huge: body exceeds 1 KiB cap"):
        fetch_page(server.url("/huge"), allowed)


# --- pure helpers ---------------------------------------------------------------------


def test_build_request_headers():
    plain = build_request_headers(source("http://x/feed"), "UA/1")
    assert plain["User-Agent"] == "UA/1" and "gzip" in plain["Accept-Encoding"]
    assert "application/rss+xml" in plain["Accept"]
    assert "If-None-Match" not in plain and "If-Modified-Since" not in plain
    known = build_request_headers(source("http://x/feed", etag='W/"1"', last_modified="Tue, 01 Jan 2030 00:00:00 GMT"), "UA")
    assert known["If-None-Match"] == 'W/"1"' and known["If-Modified-Since"] == "Tue, 01 Jan 2030 00:00:00 GMT"


@pytest.mark.parametrize("status, modified", [(200, True), (304, False), (500, True), (None, True)])
def test_is_modified(status, modified):
    assert is_modified(status) is modified


def test_backoff_doubles_with_jitter_and_is_capped_never_infinite():
    fetch = FetchSettings(backoff_base_minutes=5, backoff_max_minutes=24 * 60)
    rng = random.Random(7)
    delays = [next_backoff(n, fetch, rng) for n in range(1, 12)]
    assert timedelta(minutes=4) <= delays[0] <= timedelta(minutes=5)
    assert timedelta(minutes=8) <= delays[1] <= timedelta(minutes=10)
    assert all(d <= timedelta(hours=24) for d in delays)
    assert delays[-1] >= timedelta(hours=24 * 0.8)  # capped, still polled about daily
    assert next_backoff(10_000, fetch, rng) <= timedelta(hours=24)
    spread = {next_backoff(3, fetch, random.Random(seed)) for seed in range(20)}
    assert len(spread) > 1  # feeds that failed together do not all come back together


def test_parse_retry_after():
    now = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)
    day = 24 * 3600
    assert parse_retry_after("30", now, day) == 30
    assert parse_retry_after("Thu, 26 Nov 2026 12:05:00 GMT", now, day) == 300
    assert parse_retry_after("Thu, 26 Nov 2026 11:00:00 GMT", now, day) == 0  # already past
    assert parse_retry_after("soon", now, day) is None and parse_retry_after(None, now, day) is None


@pytest.mark.parametrize("value, expected", [
    ("99999999999999999", 86400.0),
    ("9" * 400, 86400.0),  # float() of it is inf
    ("-5", None),
    ("\u00b2", None),  # isdigit() but not a number
    ("Fri, 31 Dec 9999 23:59:59 GMT", 86400.0),
    ("Fri, 31 Dec 99999 23:59:59 GMT", None),
])
def test_absurd_retry_after_is_clamped_to_the_cap_or_ignored_never_raises(value, expected):
    now = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)
    assert parse_retry_after(value, now, 86400.0) == expected


def test_fetch_feeds_yields_nothing_for_no_sources():
    assert list(fetch_feeds([], settings())) == []


def test_elapsed_time_is_recorded(server):
    server.routes["/feed"] = serve(RSS)
    started = time.monotonic()
    result = fetch_one(server.url("/feed"))
    assert 0 < result.elapsed_seconds <= time.monotonic() - started
