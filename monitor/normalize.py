"""Normalisation shared by the parse stage: clean text from HTML, canonical URLs
(tracking parameters and fragments stripped, redirectors and Google News links
unwrapped), and the content hash that identifies an item across feeds. Pure.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import unicodedata
from html.parser import HTMLParser
from urllib.parse import unquote_plus, urlsplit, urlunsplit


# --- text ------------------------------------------------------------------------------


class _TextExtractor(HTMLParser):
    """HTML to text: markup dropped, entities decoded, block elements as line breaks."""

    BLOCKS = frozenset(
        "p div br li ul ol h1 h2 h3 h4 h5 h6 blockquote pre tr table section article header footer "
        "figure figcaption hr dd dt dl aside nav main".split()
    )
    SKIPPED = frozenset({"script", "style", "noscript", "template", "head"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.links: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in self.SKIPPED:
            self.skipping += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")
        elif tag == "a":
            self.links.extend(value for name, value in attrs if name == "href" and value)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIPPED:
            self.skipping = max(0, self.skipping - 1)
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(data)


# A description whose text still shows tags was escaped twice (&amp;lt;p&amp;gt; in the XML).
_LEFTOVER_MARKUP = re.compile(r"</(?:p|div|a|span|b|i|em|strong|li|ul|ol|font|h[1-6])>|<br\s*/?>|<p>", re.I)


def html_to_text(markup: str) -> str:
    """Clean text from an HTML fragment: one paragraph per line, whitespace collapsed."""
    if "<" not in markup and "&" not in markup:
        return text_lines(markup)
    text = text_lines("".join(_extract(markup).parts))
    if _LEFTOVER_MARKUP.search(text):
        text = text_lines("".join(_extract(text).parts))
    return text


def _extract(markup: str) -> _TextExtractor:
    parser = _TextExtractor()
    parser.feed(markup)
    parser.close()
    return parser


def text_lines(text: str) -> str:
    return "\n".join(filter(None, (one_line(line) for line in text.splitlines())))


def one_line(text: str) -> str:
    """Whitespace (including no-break spaces and newlines) collapsed to single spaces."""
    return " ".join(text.split())


def content_hash(title: str, text: str) -> str:
    """sha256 of the normalised title and text: the same story byte-for-byte in two feeds
    (or re-served with different whitespace, case or Unicode forms) hashes the same."""
    normal = [one_line(unicodedata.normalize("NFKC", part).casefold()) for part in (title, text)]
    return hashlib.sha256("\n".join(normal).encode("utf-8")).hexdigest()


# --- URLs -------------------------------------------------------------------------------

TRACKING_PARAMS = frozenset(
    "fbclid gclid dclid gbraid wbraid msclkid yclid twclid igshid mc_cid mc_eid _ga _gl "
    "feedtype feedname ns_mchannel ns_source ns_campaign ns_linkname ns_fee cmp cmpid ocid".split()
)
TRACKING_PREFIXES = ("utm_", "at_", "pk_", "mtm_", "hsa_")  # Google, AT Internet (BBC), Matomo, HubSpot
GOOGLE_NEWS_HOST = "news.google.com"
_DEFAULT_PORTS = {"http": 80, "https": 443}


def canonical_url(url: str) -> str:
    """The identity of an article URL across feeds: scheme and host lower-cased, default
    port, credentials, fragment and tracking parameters dropped; every other parameter
    kept byte-for-byte in its original order (some sites route on them)."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    netloc = f"[{host}]" if ":" in host else host
    if parts.port and parts.port != _DEFAULT_PORTS.get(scheme):
        netloc += f":{parts.port}"
    query = "&".join(p for p in parts.query.split("&") if p and not _is_tracking(p, host))
    return urlunsplit((scheme, netloc, parts.path or "/", query, ""))


def _is_tracking(pair: str, host: str) -> bool:
    key = unquote_plus(pair.split("=", 1)[0]).lower()
    if host == GOOGLE_NEWS_HOST and key == "oc":
        return True  # ?oc=5 on every Google News article link
    return key in TRACKING_PARAMS or key.startswith(TRACKING_PREFIXES)


def unwrap_redirector(url: str) -> str:
    """The target of a click-through redirector that embeds it after "/*" (Folha, UOL)."""
    _, star, target = url.partition("/*http")
    return "http" + target if star and urlsplit("http" + target).hostname else url


def synthetic_url(feed_id: int, guid: str | None, digest: str) -> str:
    """A stable identity for an item without a link: its GUID within its feed (GUIDs are
    only unique per feed), else its content."""
    key = f"feed:{feed_id}\nguid:{guid}" if guid else f"content:{digest}"
    return "urn:tension-monitor:" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


def is_google_news(url: str) -> bool:
    return urlsplit(url).hostname == GOOGLE_NEWS_HOST


def google_news_target(link: str, description_html: str) -> str | None:
    """The publisher's URL behind a Google News link, when the item carries it: a
    non-Google link in the description, a ?url= parameter, or an old-style article id
    (base64 holding the URL). Current ids are opaque; then None."""
    for href in _extract(description_html).links:
        host = urlsplit(href).hostname or ""
        if href.startswith(("http://", "https://")) and not (host == "google.com" or host.endswith(".google.com")):
            return href
    parts = urlsplit(link)
    for pair in parts.query.split("&"):
        key, _, value = pair.partition("=")
        if key == "url" and unquote_plus(value).startswith(("http://", "https://")):
            return unquote_plus(value)
    token = parts.path.rstrip("/").rsplit("/", 1)[-1]
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        return None
    found = re.search(rb"https?://[\x21-\x7e]+", raw)
    return found.group().decode("ascii") if found else None
