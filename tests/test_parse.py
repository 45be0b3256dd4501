"""Parse stage on the real feed fixtures (tests/feeds/real) and our own (tests/feeds)."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from pathlib import Path

import pytest

from monitor.normalize import canonical_url, content_hash, html_to_text
from monitor.parse import extract_article_text, parse_feed
from monitor.records import FetchResult
from tests.conftest import REAL_FEEDS

OWN_FEEDS = Path(__file__).parent / "feeds"
FETCHED_AT = datetime(2026, 11, 26, 6, 0, tzinfo=timezone.utc)
FEED_URL = "https://feeds.example.net/feed.xml"


def fetched(body: bytes, content_type: str | None = "application/rss+xml", feed_id: int = 1, url: str = FEED_URL) -> FetchResult:
    return FetchResult(feed_id, url, url, 200, body=body, content_type=content_type)


def parse(name: str, content_type: str | None = "application/rss+xml", feed_id: int = 1):
    path = REAL_FEEDS / name if (REAL_FEEDS / name).exists() else OWN_FEEDS / name
    return parse_feed(fetched(path.read_bytes(), content_type, feed_id), FETCHED_AT, max_items=500)


# --- encodings -------------------------------------------------------------------------


def test_undeclared_windows_1252_byte_decodes_as_a_smart_quote():
    feed = parse("feedparser-demoronize-1.xml")
    assert feed.articles[0].text == "don\u2019t"


def test_cp1252_declared_in_the_prolog():
    assert parse("feedparser-x80_cp1252.xml").title == "\u20ac"


def test_latin_1_declared_in_the_prolog():
    feed = parse("folha-rss091.xml")
    assert "situação" in feed.articles[0].text and "estão" in feed.articles[0].text
    assert "Respeitar as características" in [a.title for a in feed.articles]


def test_undeclared_windows_1255_hebrew_is_detected():
    text = parse("feedparser-windows1255.xml").articles[0].text
    assert text.startswith("האם תדפיס נייר של אתר אינטרנט")


def test_text_xml_without_charset_does_not_mangle_utf8():
    # RFC 3023 said text/xml without charset is us-ascii; real servers mean UTF-8.
    feed = parse("theverge-atom.xml", content_type="text/xml")
    assert feed.articles[0].title == "Whisker\u2019s AI-powered litter robot thinks my cats swapped bodies"
    assert not any("encoding" in w.lower() for w in feed.warnings)


def test_header_charset_wins_over_a_wrong_guess():
    body = "<rss version='2.0'><channel><item><title>Caf\u00e9</title><link>http://x.example/1</link></item></channel></rss>"
    feed = parse_feed(fetched(body.encode("iso-8859-1"), "application/xml; charset=ISO-8859-1"), FETCHED_AT, 10)
    assert feed.articles[0].title == "Caf\u00e9"


# --- malformed documents ------------------------------------------------------------------


def test_undeclared_html_entity_in_a_title_survives():
    feed = parse("feedparser-hellip.xml")
    assert feed.error is None and feed.title == "testing \u2026 entity"


def test_out_of_range_character_references_do_not_crash_the_parser():
    feed = parse("feedparser-charref_out_of_range.xml")
    assert feed.error is None and feed.title == "a \ufffd b \ufffd c \ufffd d"
    assert any("character references" in w for w in feed.warnings)


def test_bozo_feed_keeps_its_good_items_with_a_warning():
    feed = parse("saxerror-unescaped-amp-rss2.xml")
    assert [a.title for a in feed.articles] == ["Good Item", "Bad Item", "Item After Error"]
    assert feed.articles[1].canonical_url == "http://example.com/bad?foo=1&bar=2"
    assert any(w.startswith("malformed feed") for w in feed.warnings)


def test_truncated_document_keeps_its_item_and_ampersands():
    feed = parse("feedparser-rss_item_link_corrupted_ampersands.xml")
    assert feed.articles[0].url == "http://link/get?a=1&b=2"


def test_cloudflare_challenge_is_a_per_feed_error():
    feed = parse("cloudflare-challenge-html.xml", content_type="text/html; charset=UTF-8")
    assert feed.error == f'not a feed: got an HTML page ("Just a moment...") from {FEED_URL}'
    assert feed.articles == []


def test_html_page_served_as_xml_is_still_recognised():
    feed = parse("cloudflare-challenge-html.xml", content_type="application/xml")
    assert feed.error.startswith("not a feed: got an HTML page")


@pytest.mark.parametrize("body", [b"", b'{"items": []}', b"Service temporarily unavailable"])
def test_documents_that_are_not_feeds(body):
    assert parse_feed(fetched(body, "text/plain"), FETCHED_AT, 10).error.startswith("not a feed")


def test_body_naming_a_local_file_is_parsed_as_text_not_opened(tmp_path):
    # feedparser.parse(bytes) opens the bytes as a path when such a file exists.
    secret = tmp_path / "secret.xml"
    secret.write_bytes((OWN_FEEDS / "messy-items-rss2.xml").read_bytes())
    feed = parse_feed(fetched(str(secret).encode()), FETCHED_AT, 10)
    assert feed.articles == [] and feed.error.startswith("not a feed")


def test_fetch_failures_and_304_pass_through():
    failed = FetchResult(1, FEED_URL, FEED_URL, 500, error=f"{FEED_URL}: HTTP 500 Internal Server Error")
    assert parse_feed(failed, FETCHED_AT, 10).error == failed.error
    unchanged = FetchResult(1, FEED_URL, FEED_URL, 304, not_modified=True)
    assert parse_feed(unchanged, FETCHED_AT, 10) == parse_feed(unchanged, FETCHED_AT, 10)
    assert parse_feed(unchanged, FETCHED_AT, 10).error is None


def test_fetched_at_must_be_aware():
    with pytest.raises(ValueError):
        parse_feed(fetched(b"<rss/>"), datetime(2026, 1, 1), 10)


# --- items -------------------------------------------------------------------------------


def test_phantom_nested_items_are_dropped_with_a_warning():
    feed = parse("pcmag-nested-rss2.xml")
    assert len(feed.articles) == 10 and all(a.title for a in feed.articles)
    assert "empty items (no title, link or text) dropped: 10" in feed.warnings


def test_est_zone_dates_become_utc():
    first = parse("pcmag-nested-rss2.xml").articles[0]
    assert first.published_at == datetime(2018, 1, 17, 20, 50, tzinfo=timezone.utc)  # 15:50 EST
    assert not first.published_estimated


def test_google_news_items_get_the_publisher_and_a_clean_title():
    feed = parse("google-news-rss2.xml")
    first = feed.articles[0]
    assert (first.title, first.source) == ("Why the ECB Is Unlikely to Keep Rates Higher Than 3%", "Goldman Sachs")
    assert {a.source for a in feed.articles} >= {"BBC", "The Guardian", "European Central Bank"}
    assert not any(a.title.endswith(f" - {a.source}") for a in feed.articles)
    # This capture's article ids are opaque: the Google link stays, minus its ?oc=5.
    assert first.url.endswith("?oc=5") and "?" not in first.canonical_url


def test_google_news_items_resolve_to_the_publisher_url_when_the_item_carries_it():
    guardian, reuters, ft, cnbc = parse("google-news-publisher-links.xml").articles
    assert guardian.canonical_url == "https://www.theguardian.com/technology/2026/nov/24/microsoft-openai-deal"
    assert reuters.url == "https://www.reuters.com/technology/microsoft-openai-talks-2026-11-20/"  # from the old-style id
    assert ft.url == "https://www.ft.com/content/0a1b2c3d-azure"  # from ?url=
    assert cnbc.url.startswith("https://news.google.com/")  # nothing to resolve
    assert [a.source for a in (guardian, reuters, ft, cnbc)] == ["The Guardian", "Reuters", "Financial Times", "CNBC"]


def test_bbc_tracking_parameters_are_stripped_from_the_canonical_url():
    first = parse("bbc-rss2.xml").articles[0]
    assert first.url == "https://www.bbc.co.uk/news/uk-politics-43532916?at_medium=RSS&at_campaign=KARANGA"
    assert first.canonical_url == "https://www.bbc.co.uk/news/uk-politics-43532916"


def test_feedburner_items_use_the_original_link():
    first = parse("reuters-rss2.xml").articles[0]
    assert first.canonical_url == "http://www.reuters.com/article/us-mideast-crisis-iraq-turkey-abadi-idUSKBN14R0D4"


def test_redirector_links_are_unwrapped():
    first = parse("folha-rss091.xml").articles[0]
    assert first.url.startswith("http://www1.folha.uol.com.br/folha/colunas/futebolnarede/740548")


def test_xml_base_relative_links_are_resolved():
    first, second = parse("relative-links-xml-base.xml").articles
    assert first.canonical_url == "https://blog.example.com/news/2026/11/first-post.html"
    assert second.canonical_url == "https://archive.example.org/posts/second.html"


def test_relative_link_without_xml_base_resolves_against_the_feed_url():
    body = b"<rss version='2.0'><channel><title>T</title><item><title>A</title><link>/2026/a.html</link></item></channel></rss>"
    feed = parse_feed(fetched(body), FETCHED_AT, 10)
    assert feed.articles[0].canonical_url == "https://feeds.example.net/2026/a.html"


def test_entity_escaped_html_descriptions_become_clean_text():
    for name in ("google-news-rss2.xml", "pcmag-nested-rss2.xml", "reuters-rss2.xml", "braingle-dupguid-rss2.xml"):
        for article in parse(name).articles:
            assert "<" not in article.text and "&nbsp;" not in article.text and "&lt;" not in article.text, name
            assert "\xa0" not in article.text and "  " not in article.text
    reuters = parse("reuters-rss2.xml").articles[0].text
    assert reuters.startswith("BAGHDAD (Reuters) - Iraq's Prime Minister") and reuters.endswith("Iraqi state TV reported.")


def test_braingle_duplicate_guid_item():
    (item,) = parse("braingle-dupguid-rss2.xml").articles
    assert item.guid == item.url == "http://www.braingle.com/50366.html"
    assert item.text == "What's the Rebus?\nHow's that; how's that\nCheck Braingle.com for the answer."


def test_messy_items_are_normalised():
    feed = parse("messy-items-rss2.xml")
    by_title = {a.title: a for a in feed.articles}
    escaped = by_title["Double-escaped description"]
    assert escaped.text == 'First paragraph with "quotes".\nSecond paragraph.'
    assert escaped.canonical_url == "https://messy.example.com/a?id=42&page=2"
    assert escaped.author == "Ada Lovelace" and escaped.source == "Messy & Co."
    assert escaped.published_at == datetime(2026, 11, 23, 13, 30, tzinfo=timezone.utc)
    full = by_title["Full content beats the teaser"]
    assert full.text == "The whole story, first part.\nAnd the second part \u2026 with an entity."
    assert full.canonical_url == "https://messy.example.com/b"
    assert "repeated items in the same document dropped: 1" in feed.warnings
    assert "Not a web link" in by_title and by_title["Not a web link"].url.startswith("urn:tension-monitor:")


def test_missing_and_future_dates_use_the_fetch_time_flagged():
    by_title = {a.title: a for a in parse("messy-items-rss2.xml").articles}
    for title in ("Dated in the future", "No date at all"):
        assert (by_title[title].published_at, by_title[title].published_estimated) == (FETCHED_AT, True)
    assert by_title["No link, but a GUID"].published_estimated is False


def test_items_without_link_get_stable_synthetic_urls():
    first = {a.title: a for a in parse("messy-items-rss2.xml", feed_id=1).articles}
    again = {a.title: a for a in parse("messy-items-rss2.xml", feed_id=1).articles}
    other_feed = {a.title: a for a in parse("messy-items-rss2.xml", feed_id=2).articles}
    by_guid, by_text = first["No link, but a GUID"], first["No link and no GUID"]
    assert by_guid.canonical_url.startswith("urn:tension-monitor:") and by_guid.url == by_guid.canonical_url
    assert by_guid.canonical_url == again["No link, but a GUID"].canonical_url
    assert by_guid.canonical_url != other_feed["No link, but a GUID"].canonical_url  # GUIDs are per feed
    assert by_text.canonical_url == other_feed["No link and no GUID"].canonical_url  # same words, same item


def test_items_without_title_take_one_from_their_text():
    assert parse("feedparser-windows1255.xml").articles[0].title.startswith("האם תדפיס")


def test_source_falls_back_to_the_host():
    assert parse("feedparser-demoronize-1.xml").articles[0].source == "feeds.example.net"


def test_max_items_keeps_the_first_items_and_says_so():
    feed = parse_feed(fetched((REAL_FEEDS / "anthropic-news-long-rss2.xml").read_bytes()), FETCHED_AT, max_items=25)
    assert len(feed.articles) == 25 and "feed has 208 items; kept the first 25" in feed.warnings


def test_content_hash_ignores_case_whitespace_and_unicode_form():
    article = parse("bbc-rss2.xml").articles[0]
    expected = hashlib.sha256(f"{article.title.casefold()}\n{article.text.casefold()}".encode()).hexdigest()
    assert article.content_hash == expected
    assert content_hash("Caf\u00e9  News", "Body\ntext") == content_hash("CAFE\u0301 news", "body text")
    assert content_hash("A", "b") != content_hash("A", "c")


# --- helpers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, canonical",
    [
        ("https://Example.COM/Path?utm_source=x&utm_medium=y&id=7#frag", "https://example.com/Path?id=7"),
        ("http://example.com:80/a?gclid=1&fbclid=2&msclkid=3", "http://example.com/a"),
        ("https://example.com:8443/a?b=2&a=1", "https://example.com:8443/a?b=2&a=1"),
        ("https://user:pw@example.com", "https://example.com/"),
        ("https://www.bbc.co.uk/news/x?at_medium=RSS&at_campaign=KARANGA", "https://www.bbc.co.uk/news/x"),
        ("https://example.com/search?q=openai+microsoft&page=2", "https://example.com/search?q=openai+microsoft&page=2"),
        ("https://news.google.com/rss/articles/CBMi123?oc=5", "https://news.google.com/rss/articles/CBMi123"),
        ("https://example.com/watch?oc=5", "https://example.com/watch?oc=5"),  # oc is only Google's
    ],
)
def test_canonical_url(url, canonical):
    assert canonical_url(url) == canonical


def test_html_to_text_keeps_paragraphs_and_drops_scripts():
    markup = "<div><h2>Head</h2><p>One &amp; two</p><script>var x = '<p>';</script><ul><li>a</li><li>b</li></ul>tail</div>"
    assert html_to_text(markup) == "Head\nOne & two\na\nb\ntail"
    assert html_to_text("plain  text\n\n\nnext") == "plain text\nnext"


def test_extract_article_text_keeps_the_article_and_drops_the_page_furniture():
    text = extract_article_text((OWN_FEEDS / "article-page.html").read_bytes(), "https://news.example.com/a")
    assert text.startswith("Microsoft and OpenAI have spent months renegotiating")
    assert "corporate customers over the rest of the decade." in text
    assert "Sign in" not in text and "Recipe of the week" not in text and "Copyright" not in text


def test_without_scripts_drops_scripts_and_styles_in_one_pass():
    from monitor.parse import without_scripts

    page = b"<p>a</p><SCRIPT type=x>var s = '<p>no</p>';</Script ><style>p{}</style><p>b</p><script>unclosed <p>c</p>"
    assert without_scripts(page) == b"<p>a</p><p>b</p>"
    assert without_scripts(b"<script>" * 200_000) == b""  # many unclosed tags: still one scan


def test_article_after_megabytes_of_inline_script_is_still_found():
    page = (OWN_FEEDS / "article-page.html").read_bytes()
    bloated = page.replace(b"<head>", b"<head><script>" + b"var x = 1;\n" * 300_000 + b"</script>", 1)
    assert len(bloated) > 3 * (1 << 20)
    text = extract_article_text(bloated, "https://news.example.com/a")
    assert text.startswith("Microsoft and OpenAI have spent months renegotiating")


def test_a_14_mb_page_is_extracted_within_the_bound_or_refused_in_one_line():
    import time

    from monitor.errors import FetchError
    from monitor.parse import EXTRACT_SECONDS

    page = b"<html><body>" + b"<div><span>word</span></div>" * 500_000 + b"</body></html>"
    assert len(page) > 14_000_000
    started = time.monotonic()
    try:
        extract_article_text(page, "https://news.example.com/huge")
    except FetchError as exc:
        assert str(exc) == f"https://news.example.com/huge: no article text within {EXTRACT_SECONDS:g} s (page too complex)"
    assert time.monotonic() - started < EXTRACT_SECONDS + 2


def test_extraction_past_its_deadline_is_a_one_line_error(monkeypatch):
    from monitor import parse
    from monitor.errors import FetchError

    monkeypatch.setattr(parse, "EXTRACT_SECONDS", 0.05)
    page = b"<html><body>" + b"<div><span>word</span></div>" * 40_000 + b"</body></html>"
    with pytest.raises(FetchError, match=r"^https://x\.example/a: no article text within 0\.05 s \(page too complex\)$"):
        extract_article_text(page, "https://x.example/a")
