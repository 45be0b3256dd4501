"""Developing threads: stories about the same development across days.

A story (a near-duplicate cluster) joins a thread when, against one of the thread's
stories published at most ``GAP_DAYS`` earlier, it

- shares at least one effective label,
- shares at least one canonical entity, and
- shares at least ``MIN_SHARED_WORDS`` content words with an overlap of at least
  ``MIN_OVERLAP`` (shared words / words of the shorter story). Content words come from
  the title and the start of the text, without stop words and without the entity names
  themselves: two deals between the same two companies share the companies' names,
  not the words that say what the deal is.

Among several matching threads the most similar wins. Otherwise the story starts a
thread of its own. The first story of a thread is a *new development*; the others are
*follow-ups*. Pure functions over plain records; storage/threads.py applies them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

GAP_DAYS = 4  # a story this long after a thread's previous story starts a new thread
GAP = timedelta(days=GAP_DAYS)
MIN_SHARED_WORDS = 3
MIN_OVERLAP = 0.3
TEXT_CHARS = 400  # of the article text, after the title

_WORD = re.compile(r"[a-z][a-z0-9'-]+")
STOP_WORDS = frozenset("""
a about above after again against all also an and any are as at be because been before being below between
both but by can could did do does doing down during each few for from further had has have having he her here
hers him his how i if in into is it its itself just me more most my no nor not now of off on once only or
other our out over own same she should so some such than that the their them then there these they this
those through to too under until up very was we were what when where which while who whom why will with
would you your said says say new will one two three its it's year years week weeks monday tuesday wednesday
thursday friday saturday sunday today yesterday according people familiar matter told report reported
reports company companies firm deal deals per cent percent billion million bn mn
""".split())


@dataclass(frozen=True)
class ThreadStory:
    """What threading needs of one story."""

    cluster: int
    published_at: datetime
    labels: frozenset[str]
    entities: frozenset[str]  # canonical ids
    words: frozenset[str]  # content words


@dataclass
class Thread:
    thread_id: int  # the cluster id of its first story
    stories: list[ThreadStory] = field(default_factory=list)


def content_words(title: str, text: str, entity_names: Iterable[str] = ()) -> frozenset[str]:
    """Lower-cased content words of the title and the text's start, without stop words
    and entity names; a trailing plural "s" is dropped so "deal" and "deals" meet."""
    names = {word for name in entity_names for word in _WORD.findall(name.lower())}
    words = set()
    for word in _WORD.findall(f"{title} {(text or '')[:TEXT_CHARS]}".lower()):
        word = word.strip("'-").removesuffix("'s")
        if word in STOP_WORDS or word in names:
            continue
        if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
            word = word[:-1]
        if len(word) >= 3 and word not in STOP_WORDS:
            words.add(word)
    return frozenset(words)


def similarity(a: ThreadStory, b: ThreadStory) -> float:
    """Overlap of content words when the two could be one development; 0 when not."""
    if not (a.labels & b.labels) or not (a.entities & b.entities):
        return 0.0
    shared = len(a.words & b.words)
    if shared < MIN_SHARED_WORDS:
        return 0.0
    overlap = shared / min(len(a.words), len(b.words))
    return overlap if overlap >= MIN_OVERLAP else 0.0


def best_thread(story: ThreadStory, threads: Iterable[Thread]) -> Thread | None:
    """The open thread this story continues, or None (it starts its own)."""
    best, best_score = None, 0.0
    for thread in threads:
        if not any(abs(story.published_at - other.published_at) <= GAP for other in thread.stories):
            continue
        score = max(similarity(story, other) for other in thread.stories)
        if score > best_score:
            best, best_score = thread, score
    return best


def assign(stories: Iterable[ThreadStory], threads: list[Thread]) -> list[tuple[ThreadStory, int, bool]]:
    """(story, thread id, is it a new development) for each story, in publication order;
    ``threads`` (the open threads around them) is extended in place."""
    assigned = []
    for story in sorted(stories, key=lambda s: (s.published_at, s.cluster)):
        thread = best_thread(story, threads)
        if thread is None:
            thread = Thread(story.cluster)
            threads.append(thread)
        thread.stories.append(story)
        assigned.append((story, thread.thread_id, thread.thread_id == story.cluster))
    return assigned
