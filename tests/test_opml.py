import pytest

from monitor.errors import InputError
from monitor.opml import read_opml, write_opml

READER_EXPORT = """<?xml version="1.0" encoding="UTF-8"?>
<opml version="1.0">
  <head><title>My subscriptions</title></head>
  <body>
    <outline text="AI" title="AI">
      <outline type="rss" text="AI desk" title="AI desk &amp; friends" xmlUrl="https://example.org/ai.xml" htmlUrl="https://example.org/"/>
      <outline type="rss" text="Cloud news" xmlUrl="http://example.net/cloud/rss"/>
    </outline>
    <outline type="rss" text="" xmlUrl="https://example.com/untitled.xml"/>
    <outline type="rss" text="Local trick" xmlUrl="file:///etc/passwd"/>
    <outline type="link" text="Just a bookmark" url="https://example.com/page"/>
    <outline type="rss" text="AI desk again" xmlUrl="https://example.org/ai.xml"/>
  </body>
</opml>
"""


def test_reads_nested_feeds_with_names_and_skips_non_feeds(tmp_path):
    path = tmp_path / "subs.opml"
    path.write_text(READER_EXPORT, encoding="utf-8")
    assert read_opml(path) == [
        ("AI desk & friends", "https://example.org/ai.xml"),
        ("Cloud news", "http://example.net/cloud/rss"),
        ("https://example.com/untitled.xml", "https://example.com/untitled.xml"),
    ]


def test_round_trip_keeps_names_and_urls(tmp_path):
    feeds = [("Wire <tech> & more", "https://example.org/a.xml?x=1&y=2"), ("Zürich Zeitung", "https://example.ch/rss")]
    path = tmp_path / "out.opml"
    path.write_text(write_opml(feeds), encoding="utf-8")
    assert read_opml(path) == feeds


@pytest.mark.parametrize(
    "body, problem",
    [
        ("<opml><body><outline", "not valid XML"),
        ("<rss version='2.0'><channel/></rss>", "not an OPML file"),
        ("<opml version='2.0'><body><outline text='folder'/></body></opml>", "no feeds found"),
        (
            "<!DOCTYPE opml [<!ENTITY a 'aaaa'><!ENTITY b '&a;&a;&a;'>]><opml><body>"
            "<outline xmlUrl='https://e.org/&b;'/></body></opml>",
            "refused unsafe XML",
        ),
    ],
)
def test_broken_file_is_one_line_naming_the_file(tmp_path, body, problem):
    path = tmp_path / "broken.opml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(InputError) as err:
        read_opml(path)
    assert str(err.value).startswith(f"{path}: {problem}") and "\n" not in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        read_opml(tmp_path / "nope.opml")
