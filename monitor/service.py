"""Classify one article, the same way for every caller: the CLI (`classify FILE | - |
--url`), the web page and the JSON API call these. (The daemon tags stored articles in
batches with `classify.tag_texts`, which `tag_article` wraps.)
"""

from __future__ import annotations

import html
import re
import threading
from dataclasses import dataclass

from monitor.errors import FetchError, InputError
from monitor.records import TagResult

# spaCy, the encoder and the classifier are shared by every web request thread; one
# inference at a time keeps them safe without paying for a copy per thread.
_INFERENCE_LOCK = threading.Lock()
TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


class BadUrl(InputError):
    """A URL we will not fetch (not http or https)."""


@dataclass(frozen=True)
class ClassifiedArticle:
    title: str
    text: str
    url: str | None  # the page's final URL when the text was fetched
    tag: TagResult

    def to_json(self) -> dict:
        return article_json(self.title, self.url, self.tag)


def article_json(title: str, url: str | None, tag: TagResult) -> dict:
    """`classify --json` and POST /api/classify: the title and URL tagged, then the tags."""
    return {"title": title, "url": url, **tag.to_json()}


def check_url(url: str) -> str:
    url = (url or "").strip()
    if not url.lower().startswith(("http://", "https://")):
        raise BadUrl(f"only http:// and https:// URLs can be fetched, not {url[:80]!r}")
    return url


def fetch_article(app, url: str) -> tuple[str, str, str]:
    """(final_url, title, text) of an article page; FetchError for unsafe or failing URLs."""
    from monitor.fetch import fetch_page
    from monitor.parse import extract_article_text

    final_url, body = fetch_page(check_url(url), app.settings.fetch)
    text = extract_article_text(body, final_url)
    if not text.strip():
        raise FetchError(f"{final_url}: no article text found on the page")
    return final_url, page_title(body), text


def page_title(body: bytes) -> str:
    match = TITLE.search(body[:200_000].decode("utf-8", "replace"))
    return " ".join(html.unescape(match.group(1)).split())[:300] if match else ""


def tag_article(app, title: str, text: str) -> TagResult:
    from monitor.classify import tag_texts

    with _INFERENCE_LOCK:
        return tag_texts(app.nlp, app.classifier, [(title, text)])[0]


def classify_article(app, title: str = "", text: str = "", url: str = "") -> ClassifiedArticle:
    """Tag a given text, or the text of the page at `url` (its <title> unless a title is
    given); nothing is stored."""
    page_url = None
    if (url or "").strip() and not (text or "").strip():
        page_url, fetched_title, text = fetch_article(app, url)
        title = title or fetched_title
    title, text = (title or "").strip(), (text or "").strip()
    if not (title or text):
        raise InputError("the text is empty: paste the article's text, or give its URL")
    return ClassifiedArticle(title, text, page_url, tag_article(app, title, text))
