"""The only inference module: load the skops artefact, score texts, find the evidence.

The artefact is a plain scikit-learn pipeline (models/artefacts/tension-classifier.skops)
beside a model card JSON (model-card.json) that records the versions it was built with;
loading refuses an artefact whose versions, label ids or feature version differ from this
code and says to run `tension-monitor train`. The skops file is loaded only after
checking that every type in it is on an explicit allowlist (no pickle).

Fast start: importing skops imports every scikit-learn estimator (~1.5 s), more than the
rest of a cold `classify` together. For the shipped model (word TF-IDF + logistic
regression) `train` also writes the same fitted numbers as plain arrays
(tension-classifier.npz, loaded with allow_pickle=False) together with the sha256 of the
skops file they came from. When that hash matches the skops file beside it, inference
uses `LinearTfidf` (numpy only, identical scores: tests/test_classify.py checks it);
otherwise the skops file is loaded as above.

Model input: one row per text with two columns: the text itself (title + body, cut at
nlp.max_chars) and the canonical ids of the domain entities found in it as tokens
("ENT_openai ENT_azure"). The same function builds the rows at training and inference
time (`model_inputs`).
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monitor.errors import ModelError
from monitor.records import LabelScore, TagResult

log = logging.getLogger(__name__)

ARTEFACT_NAME = "tension-classifier.skops"
COMPILED_NAME = "tension-classifier.npz"
CARD_NAME = "model-card.json"
# Bumped whenever model_inputs or the feature pipeline changes meaning: an artefact built
# for another feature version cannot be used.
FEATURE_VERSION = "text+passages+encoder/5"  # 5: a document's meaning is the vector of its lead
HEAD_NAME = "tension-encoder-head.npz"
MAX_EVIDENCE = 3
EVIDENCE_CHARS = 400
EVIDENCE_WINDOW = 3
EVIDENCE_SHARE = 0.75  # the best passage is evidence when it alone scores this share of the threshold

# Every type the skops file may contain beyond what skops trusts by default. Anything
# else in a file is refused: the file could have come from elsewhere.
TRUSTED_TYPES = frozenset({
    "sklearn.compose._column_transformer.ColumnTransformer",
    "sklearn.feature_extraction.text.TfidfVectorizer",
    "sklearn.feature_extraction.text.TfidfTransformer",
    "sklearn.feature_extraction.text.CountVectorizer",
    "sklearn.multiclass.OneVsRestClassifier",
    "sklearn.multiclass._ConstantPredictor",
    "sklearn.linear_model._logistic.LogisticRegression",
    "sklearn.svm._classes.LinearSVC",
    "sklearn.calibration.CalibratedClassifierCV",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.pipeline.Pipeline",
    "sklearn.pipeline.FeatureUnion",
    "sklearn.preprocessing._label.LabelBinarizer",
    "numpy.float64",
    "numpy.int64",
    "numpy.dtype",
    "numpy.ndarray",
    "builtins.slice",
    "re.compile",
    "scipy.sparse._csr.csr_matrix",
    "collections.defaultdict",
    "builtins.int",
    "builtins.float",
})


@dataclass
class Classifier:
    """The fitted members (word model, optional encoder head), how their scores combine and
    are calibrated, the per-label thresholds and the model card."""

    pipeline: Any  # a fitted scikit-learn pipeline or its numpy form (LinearTfidf)
    label_ids: list[str]
    thresholds: dict[str, float]
    model_version: str
    card: dict = field(default_factory=dict)
    scoring: Scoring = field(default_factory=lambda: Scoring())
    slopes: Any = 1.0  # Platt scaling per label (identity by default)
    intercepts: Any = 0.0
    head: EncoderHead | None = None
    encoder: Any = None  # monitor.encoder.SentenceEncoder when the head is used
    review_band: float = 0.0

    def predict_proba(self, rows):
        """The word model's scores, one row per input and one column per label id."""
        import numpy as np

        if len(rows) == 0:
            return np.zeros((0, len(self.label_ids)))
        return np.asarray(self.pipeline.predict_proba(rows))


# --- inputs --------------------------------------------------------------------------


def normalize_text(text: str) -> str:
    """One form for every way a text arrives (browser paste with CRLF, stdin, files, feeds):
    line endings to \\n, non-breaking and odd spaces to plain spaces, trailing spaces and
    runs of blank lines folded. Everything downstream (spaCy, the model, entity offsets)
    sees this form, so the same words always give the same labels and scores."""
    text = (text or "").replace("\r\n", "\n").replace("\r", "\n")
    text = _ODD_SPACES.sub(" ", text)
    text = re.sub(r"[ \t]+\n", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


_ODD_SPACES = re.compile(r"[\u00a0\u2000-\u200a\u202f\u205f\u3000\t\f\v]")


def compose(title: str, text: str) -> str:
    """The one string a text is tagged on: the title, a blank line, the body."""
    title, text = normalize_text(title), normalize_text(text)
    return f"{title}\n\n{text}" if title and text else title or text


def cut(text: str, max_chars: int) -> tuple[str, bool]:
    """The text cut at max_chars (at the last space before it), and whether it was cut."""
    if len(text) <= max_chars:
        return text, False
    head = text[:max_chars]
    space = head.rfind(" ", max_chars - 200)
    return (head[:space] if space > 0 else head), True


def model_inputs(texts: list[str]):
    """The word model's input rows as a 2-column object array: the text, and an empty
    column where entity-id tokens once were (the fitted ColumnTransformer still expects
    two columns; entity ids as features lowered F1, models/README.md)."""
    import numpy as np

    rows = np.empty((len(texts), 2), dtype=object)
    rows[:, 0] = texts
    rows[:, 1] = ""
    return rows


# --- passages ------------------------------------------------------------------------


@dataclass(frozen=True)
class Sentence:
    """A sentence of a text, or one line of a bulleted or numbered list (an item)."""

    text: str
    item: bool = False


@dataclass(frozen=True)
class Passage:
    """A run of consecutive sentences of one text, or one list item: what a label's score
    can come from."""

    text: str
    start: int  # index of its first sentence
    end: int  # index after its last sentence
    item: bool = False


# A line that starts with a bullet, a dash or "1." / "2)" / "a.": a list item. An analysis
# that surveys many points gives each one a line; read inside a 3-sentence window, a
# one-line point is drowned by its neighbours (models/README.md, "Where it falls short").
LIST_MARKER = re.compile(r"[ \t]*(?:[•▪◦‣·*\-–—]|\d{1,2}[.)]|[a-z][.)])[ \t]+(?=\S)")


def doc_sentences(doc) -> list[Sentence]:
    """The sentences of a parsed text, split again at line breaks (a heading or a bullet is
    its own piece), stripped; pieces without a letter are dropped. The pieces of one list
    line make one item, without its bullet or number (spaCy splits "1." off some numbered
    lines and not others)."""
    text = doc.text
    out: list[Sentence] = []
    item_line = -1
    for sent in doc.sents:
        for match in re.finditer(r"[^\n]+", sent.text):
            piece = match.group().strip()
            if not re.search(r"[A-Za-z]", piece):
                continue
            line = text.rfind("\n", 0, sent.start_char + match.start()) + 1
            if LIST_MARKER.match(text, line) is None:
                out.append(Sentence(piece))
            elif line == item_line:
                out[-1] = Sentence(f"{out[-1].text} {piece}", item=True)
            else:
                marker = LIST_MARKER.match(piece)  # absent when spaCy split "1." off
                out.append(Sentence(piece[marker.end():] if marker else piece, item=True))
            item_line = line if out[-1].item else -1
    return out


def passages(sentences: list[Sentence], window: int) -> list[Passage]:
    """Each list item on its own; around them, overlapping windows of `window` consecutive
    sentences (one window for a shorter run)."""
    if window <= 0:
        return []
    found: list[Passage] = []
    run: list[int] = []
    for i, sentence in enumerate(sentences + [Sentence("", item=True)]):
        if not sentence.item:
            run.append(i)
            continue
        found.extend(_windows(sentences, run, window))
        run = []
        if i < len(sentences):
            found.append(Passage(sentence.text, i, i + 1, item=True))
    return found


def _windows(sentences: list[Sentence], run: list[int], window: int) -> list[Passage]:
    """Overlapping windows of `window` sentences over a run of sentence indexes."""
    if not run:
        return []
    spans = [run[k:k + window] for k in range(max(1, len(run) - window + 1))]
    return [Passage(" ".join(sentences[j].text for j in span), span[0], span[-1] + 1) for span in spans]


def best_passage_scores(score_rows, owners, n_texts: int, n_labels: int):
    """Per text and label, the highest score of any of its passages (0 with none)."""
    import numpy as np

    best = np.zeros((n_texts, n_labels))
    if len(owners):
        np.maximum.at(best, np.asarray(owners), score_rows)
    return best


# --- scoring -------------------------------------------------------------------------


@dataclass(frozen=True)
class Scoring:
    """How the members' scores make one raw score per label, then a probability.

    whole = (1 - encoder_weight) * doc + encoder_weight * meaning: the word model's score of
    the whole text blended with the sentence-encoder head's score of it (its meaning).
    raw = whole + passage_weight * max(0, best_passage - whole): a passage that the word
    model scores higher than the whole text lifts the label (with weight 1, raw is the
    larger of the two), so a story that develops `cloud` in one paragraph gets `cloud`
    even when the rest of it, and so its overall meaning, is about something else. A list
    item is a passage of its own, scored with a word/meaning blend too
    (`item_encoder_weight`): a one-line point has too few words for the word model alone.
    The probability is Platt scaling of raw, fitted per label on out-of-fold raw scores."""

    window: int = 3
    passage_weight: float = 1.0
    encoder_weight: float = 0.0
    item_encoder_weight: float = 0.6  # the encoder head's share in a list item's score

    def raw(self, doc, best_passage, meaning=None):
        import numpy as np

        whole = doc
        if meaning is not None and self.encoder_weight:
            whole = (1.0 - self.encoder_weight) * doc + self.encoder_weight * meaning
        return whole + self.passage_weight * np.maximum(0.0, best_passage - whole)


def logit(p):
    import numpy as np

    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def calibrate(raw, slopes, intercepts):
    """Platt scaling per label column: sigmoid(slope * logit(raw) + intercept)."""
    import numpy as np

    return 1.0 / (1.0 + np.exp(-(np.asarray(slopes) * logit(raw) + np.asarray(intercepts))))


class EncoderHead:
    """Logistic regression over sentence-encoder document embeddings, from plain arrays."""

    def __init__(self, coef, intercept):
        self.coef, self.intercept = coef, intercept

    def predict_proba(self, embeddings):
        import numpy as np

        return 1.0 / (1.0 + np.exp(-(embeddings @ self.coef.T + self.intercept)))


# --- tagging -------------------------------------------------------------------------


@dataclass
class TextScores:
    """Every score the classifier computed for a batch of texts (numpy arrays)."""

    doc: Any  # (n, labels) numpy: word model on the whole text
    passages: list[list[Passage]]
    passage_rows: Any  # (total passages, labels) word model on each passage
    owners: list[int]  # text index of each passage row
    best_passage: Any  # (n, labels)
    meaning: Any  # (n, labels) encoder head, or None
    probability: Any  # (n, labels) calibrated


def score_texts(classifier: Classifier, texts: list[str], sentence_lists: list[list[Sentence]],
                embeddings=None, embed_items=None) -> TextScores:
    """The calibrated probability of each label for each text, with the scores behind it.
    `embeddings` are the texts' document embeddings when already computed; `embed_items`
    embeds list items (default: the classifier's encoder)."""
    import numpy as np

    doc = classifier.predict_proba(model_inputs(texts))
    n, k = doc.shape
    window = classifier.scoring.window or EVIDENCE_WINDOW  # evidence needs passages either way
    found = [passages(sentences, window) for sentences in sentence_lists]
    owners = [i for i, items in enumerate(found) for _ in items]
    flat = [p for items in found for p in items]
    rows = _with_item_meaning(classifier, flat, classifier.predict_proba(model_inputs([p.text for p in flat])),
                              embed_items)
    best = best_passage_scores(rows, owners, n, k) if owners else np.zeros((n, k))
    meaning = None
    if classifier.head is not None and n:
        meaning = classifier.head.predict_proba(_embed(classifier, texts) if embeddings is None else embeddings)
    raw = classifier.scoring.raw(doc, best, meaning)
    probability = calibrate(raw, classifier.slopes, classifier.intercepts) if n else raw
    return TextScores(doc, found, rows, owners, best, meaning, probability)


def tag_texts(nlp, classifier: Classifier, items: list[tuple[str, str]]) -> list[TagResult]:
    """Tag (title, text) pairs: one nlp.pipe pass for entities and sentences, the word
    model on each text and each passage, the encoder on each text. All in the calling
    thread, on one core: more cores are more processes (`--processes`, monitor.tagpool),
    so `--processes 1` uses one core, as its user asked."""
    from monitor import entities as ents

    max_chars = nlp.meta.get("tension_monitor", {}).get("max_chars", 20_000)
    cuts = [cut(compose(title, text), max_chars) for title, text in items]
    texts = [text for text, _ in cuts]
    entity_lists, sentence_lists = [], []
    for doc in ents.pipe(nlp, texts):
        entity_lists.append(ents.doc_entities(doc))
        sentence_lists.append(doc_sentences(doc))
    scores = score_texts(classifier, texts, sentence_lists)
    starts = _passage_starts(scores.owners)
    results = []
    for i, row in enumerate(scores.probability):
        labels = _labels(classifier, row)
        evidence = {label: _evidence(classifier, scores, starts.get(i), i, label) for label in labels}
        results.append(_result(classifier, row, labels, entity_lists[i], evidence, cuts[i][1]))
    return results


def _with_item_meaning(classifier: Classifier, flat: list[Passage], rows, embed_items):
    """Passage scores where each list item scores the word/meaning blend, as the whole text
    does (Scoring.item_encoder_weight): on a short line the word model alone overreacts to a
    single term ("First access to groundbreaking AI models" reads as regulation)."""
    import numpy as np

    weight = classifier.scoring.item_encoder_weight
    index = [row for row, passage in enumerate(flat) if passage.item]
    if not (index and weight and classifier.head is not None):
        return rows
    embed = embed_items or classifier.encoder.embed_documents
    meaning = classifier.head.predict_proba(embed([flat[row].text for row in index]))
    rows = np.array(rows, copy=True)
    rows[index] = (1.0 - weight) * rows[index] + weight * meaning
    return rows


def _embed(classifier: Classifier, texts: list[str]):
    """The texts' document embeddings, when the classifier uses meaning."""
    if classifier.head is None or not texts:
        return None
    return classifier.encoder.embed_documents(texts)


def _passage_starts(owners: list[int]) -> dict[int, int]:
    """The first passage row of each text."""
    starts: dict[int, int] = {}
    for row, owner in enumerate(owners):
        starts.setdefault(owner, row)
    return starts


def _labels(classifier: Classifier, row) -> list[str]:
    return [
        label for label, score in zip(classifier.label_ids, row)
        if float(score) >= classifier.thresholds[label]
    ]


def _evidence(classifier: Classifier, scores: TextScores, first_row: int | None, i: int, label: str) -> list[str]:
    """The passages that drove `label` for text i: best first, not overlapping. The best
    one shows when its own calibrated score reaches EVIDENCE_SHARE of the threshold; any
    further one only when it clears the threshold alone (a weaker second line is more
    often a passing word than support). A label carried by the whole text or by meaning
    alone may have no passage to show."""
    import numpy as np

    found = scores.passages[i]
    if first_row is None or not found:
        return []
    column = classifier.label_ids.index(label)
    own = scores.passage_rows[first_row:first_row + len(found), column]
    alone = calibrate(own, classifier.slopes[column], classifier.intercepts[column])
    threshold = classifier.thresholds[label]
    chosen: list[Passage] = []
    for row in np.argsort(-own, kind="stable"):
        passage = found[int(row)]
        if alone[row] < threshold * (EVIDENCE_SHARE if not chosen else 1.0) or len(chosen) == MAX_EVIDENCE:
            break
        if all(passage.end <= c.start or passage.start >= c.end for c in chosen):
            chosen.append(passage)
    return [_short(p.text) for p in chosen]


def _short(passage: str) -> str:
    """The passage on one line, cut when long at its last sentence end (or else its last
    word end) before EVIDENCE_CHARS, so a quote never stops inside a word."""
    passage = " ".join(passage.split())
    if len(passage) <= EVIDENCE_CHARS:
        return passage
    head = passage[: EVIDENCE_CHARS - 1]
    sentence_end = max(head.rfind(". "), head.rfind("? "), head.rfind("! "))
    if sentence_end >= EVIDENCE_CHARS // 2:
        return head[: sentence_end + 1]
    return head[: head.rfind(" ")].rstrip(" ,;:") + "…" if " " in head else head + "…"


def review_band(classifier: Classifier, row) -> tuple[list[str], float]:
    """Labels whose probability is within the review band of their threshold, closest
    first, and how uncertain the closest one is (1 = on the threshold, 0 = none in band)."""
    band = classifier.review_band
    if band <= 0:
        return [], 0.0
    distance = {
        label: abs(float(score) - classifier.thresholds[label])
        for label, score in zip(classifier.label_ids, row)
    }
    inside = sorted((d, label) for label, d in distance.items() if d <= band)
    if not inside:
        return [], 0.0
    return [label for _, label in inside], round(1.0 - inside[0][0] / band, 4)


def _result(classifier, row, labels, entities, evidence, truncated) -> TagResult:
    from monitor.taxonomy import FRICTION_POINT

    scores = {label: float(score) for label, score in zip(classifier.label_ids, row)}
    kinds = classifier.card.get("label_kinds", {})
    chosen = [LabelScore(label, scores[label]) for label in labels]
    review, uncertainty = review_band(classifier, row)
    return TagResult(
        scores=scores,
        labels=labels,
        friction_points=[s for s in chosen if kinds.get(s.id, FRICTION_POINT) == FRICTION_POINT],
        scenarios=[s for s in chosen if kinds.get(s.id, FRICTION_POINT) != FRICTION_POINT],
        entities=entities,
        evidence=evidence,
        thresholds=dict(classifier.thresholds),
        model_version=classifier.model_version,
        truncated=truncated,
        review=review,
        uncertainty=uncertainty,
    )


# --- loading -------------------------------------------------------------------------


def artefact_paths(settings) -> tuple[Path, Path]:
    folder = settings.path(settings.model.artefact_dir)
    return folder / ARTEFACT_NAME, folder / CARD_NAME


def load_model(settings, taxonomy) -> Classifier:
    """The saved classifier with the encoder it was trained with; ModelError saying what to
    do when the artefact is missing or does not fit this code."""
    artefact, card_path = artefact_paths(settings)
    if not (artefact.exists() and card_path.exists()):
        raise ModelError(f"no model artefact at {artefact}: run `tension-monitor train`")
    return load_classifier(artefact, card_path, taxonomy, settings.path(settings.model.encoder_dir),
                           settings.model.review_band)


def load_classifier(artefact: Path, card_path: Path, taxonomy, encoder_dir: Path | None = None,
                    review_band: float = 0.0) -> Classifier:
    """Load and check the artefact; ModelError saying what to do on any mismatch."""
    import numpy as np

    card = _read_card(card_path)
    check_card(card, taxonomy, card_path)
    calibration = card.get("calibration", {})
    pipeline = load_compiled(artefact) or _load_skops(artefact)
    head, encoder = _load_head(artefact, card, encoder_dir)
    return Classifier(
        pipeline=pipeline,
        label_ids=list(card["label_ids"]),
        thresholds={k: float(v) for k, v in card["thresholds"].items()},
        model_version=card["model_version"],
        card=card,
        scoring=Scoring(**card.get("scoring", {})),
        slopes=np.array(calibration.get("slopes", [1.0] * len(card["label_ids"])), dtype=float),
        intercepts=np.array(calibration.get("intercepts", [0.0] * len(card["label_ids"])), dtype=float),
        head=head,
        encoder=encoder,
        review_band=review_band,
    )


def _load_head(artefact: Path, card: dict, encoder_dir: Path | None):
    """The encoder head and the encoder, when the card says the model uses them."""
    import numpy as np

    if not card.get("scoring", {}).get("encoder_weight"):
        return None, None
    path = artefact.with_name(HEAD_NAME)
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["source_sha256"]) != file_sha256(artefact):
                raise ModelError(f"{path} does not belong to {artefact}: run `tension-monitor train`")
            head = EncoderHead(data["coef"].astype(np.float32), data["intercept"].astype(np.float32))
    except (OSError, KeyError, ValueError) as exc:
        raise ModelError(f"{path}: unreadable encoder head ({exc}): run `tension-monitor train`") from None
    from monitor.encoder import MODEL_FILE, load_encoder

    if encoder_dir is None:
        raise ModelError("the model uses the sentence encoder but no model.encoder_dir was given")
    encoder = load_encoder(encoder_dir)
    trained_with = str((card.get("encoder") or {}).get("vectors"))
    if trained_with != encoder.vectors_id:
        # The head's weights mean nothing on another encoder's vectors (other weights or
        # another lead length).
        raise ModelError(f"{Path(encoder_dir) / MODEL_FILE} is not the encoder this model was trained with "
                         f"(it makes {_short_id(encoder.vectors_id)}, the model card says {_short_id(trained_with)}): "
                         "run `tension-monitor train`")
    return head, encoder


def _short_id(vectors_id: str) -> str:
    """'<sha256>/lead-60' as '<first 12 hex digits>/lead-60'."""
    sha, _, rest = vectors_id.partition("/")
    return f"{sha[:12]}/{rest}" if rest else sha[:12]


def _read_card(card_path: Path) -> dict:
    try:
        return json.loads(card_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{card_path}: unreadable model card ({exc}): run `tension-monitor train`") from None


def current_versions() -> dict[str, str]:
    from importlib.metadata import version

    return {"scikit-learn": version("scikit-learn"), "skops": version("skops")}


def check_card(card: dict, taxonomy, card_path: Path) -> None:
    """Raise ModelError when the artefact was built for other versions, labels or features."""
    fix = "run `tension-monitor train` to rebuild it"
    for package, version in current_versions().items():
        built = card.get("versions", {}).get(package)
        if built != version:
            raise ModelError(
                f"model artefact was built with {package} {built}, this is {package} {version}: {fix}"
            )
    if card.get("feature_version") != FEATURE_VERSION:
        raise ModelError(
            f"model artefact uses features {card.get('feature_version')!r}, this code expects "
            f"{FEATURE_VERSION!r}: {fix}"
        )
    if list(card.get("label_ids", [])) != list(taxonomy.ids):
        raise ModelError(f"model artefact label ids differ from the taxonomy ({card_path}): {fix}")
    if set(card.get("thresholds", {})) != set(taxonomy.ids) or "model_version" not in card:
        raise ModelError(f"model card {card_path} is incomplete: {fix}")


def _load_skops(artefact: Path):
    import skops.io as sio

    try:
        untrusted = sio.get_untrusted_types(file=artefact)
    except Exception as exc:  # a truncated or foreign file
        raise ModelError(f"{artefact}: not a readable skops file ({exc}): run `tension-monitor train`") from None
    unexpected = sorted(set(untrusted) - TRUSTED_TYPES)
    if unexpected:
        raise ModelError(
            f"{artefact}: refusing to load types not on the allowlist: {', '.join(unexpected)}; "
            "run `tension-monitor train` to rebuild the artefact here"
        )
    return sio.load(artefact, trusted=untrusted)


# --- the numpy-only form of a word TF-IDF + logistic regression pipeline ----------------


class LinearTfidf:
    """predict_proba of a fitted Pipeline(ColumnTransformer([word TfidfVectorizer on column
    0]), OneVsRestClassifier(LogisticRegression)) from plain arrays. Mirrors scikit-learn:
    lowercase, then strip accents (unicode), token pattern \\b\\w\\w+\\b, 1..n-grams,
    sublinear tf, idf, l2 norm, sigmoid(X @ coef.T + intercept)."""

    TOKEN = re.compile(r"(?u)\b\w\w+\b")

    def __init__(self, terms, idf, coef, intercept, max_n: int):
        self.index = {term: i for i, term in enumerate(terms.tolist())}
        self.idf, self.coef, self.intercept, self.max_n = idf, coef, intercept, max_n

    def _grams(self, text: str) -> list[str]:
        import unicodedata

        text = text.lower()
        try:
            text.encode("ascii")
        except UnicodeEncodeError:
            text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
        tokens = self.TOKEN.findall(text)
        grams = list(tokens)
        for n in range(2, min(self.max_n, len(tokens)) + 1):
            grams += [" ".join(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]
        return grams

    def predict_proba(self, rows):
        """All rows' TF-IDF entries in flat arrays, summed per row by one NumPy call:
        per-row numpy calls cost more than the arithmetic on the few thousand passages of a
        batch (and scipy.sparse would add 70 ms to every cold start)."""
        from collections import Counter

        import numpy as np

        starts, columns, counts = [], [], []
        for text in rows[:, 0]:
            starts.append(len(columns))
            for gram, count in Counter(self._grams(text)).items():
                j = self.index.get(gram)
                if j is not None:
                    columns.append(j)
                    counts.append(count)
        first = np.asarray(starts, dtype=np.int64)
        lengths = np.diff(np.append(first, len(columns)))
        owner = np.repeat(np.arange(len(rows)), lengths)  # the row of each entry
        found = np.asarray(columns, dtype=np.int64)
        values = (1.0 + np.log(np.asarray(counts, dtype=float))) * self.idf[found]
        norms = np.sqrt(np.bincount(owner, weights=values ** 2, minlength=len(rows)))
        values /= np.where(norms > 0, norms, 1.0)[owner]
        decision = np.tile(self.intercept, (len(rows), 1))
        filled = lengths > 0  # reduceat needs non-empty segments; an empty row keeps the intercept
        if filled.any():
            decision[filled] += np.add.reduceat(values[:, None] * self.coef[:, found].T, first[filled], axis=0)
        return 1.0 / (1.0 + np.exp(-decision))


def compile_pipeline(pipeline) -> dict | None:
    """The arrays of a word-TF-IDF + logistic-regression pipeline, or None for other models."""
    import numpy as np

    try:
        features, model = pipeline.named_steps["features"], pipeline.named_steps["model"]
        [(name, vectorizer, column)] = [t for t in features.transformers_ if t[1] != "drop"]
        estimators = model.estimators_
    except (AttributeError, KeyError, ValueError):
        return None
    plain = (
        name == "word" and column == 0 and type(vectorizer).__name__ == "TfidfVectorizer"
        and vectorizer.analyzer == "word" and vectorizer.lowercase and vectorizer.strip_accents == "unicode"
        and vectorizer.token_pattern == r"(?u)\b\w\w+\b" and vectorizer.ngram_range[0] == 1
        and vectorizer.sublinear_tf and vectorizer.norm == "l2" and vectorizer.use_idf
        and vectorizer.stop_words is None and vectorizer.tokenizer is None and vectorizer.preprocessor is None
        and all(type(e).__name__ == "LogisticRegression" and e.coef_.shape[0] == 1 for e in estimators)
    )
    if not plain:
        return None
    vocabulary = vectorizer.vocabulary_
    terms = np.empty(len(vocabulary), dtype=object)
    for term, j in vocabulary.items():
        terms[j] = term
    return {
        "terms": terms.astype(str), "idf": vectorizer.idf_.astype(float),
        "coef": np.vstack([e.coef_[0] for e in estimators]).astype(float),
        "intercept": np.array([e.intercept_[0] for e in estimators], dtype=float),
        "max_n": np.array(vectorizer.ngram_range[1]),
    }


def file_sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_compiled(artefact: Path) -> LinearTfidf | None:
    """The numpy form beside `artefact` when it was made from exactly that file, else None."""
    import numpy as np

    compiled = artefact.with_name(COMPILED_NAME)
    if not compiled.exists():
        return None
    try:
        with np.load(compiled, allow_pickle=False) as data:
            if str(data["source_sha256"]) != file_sha256(artefact):
                log.info("%s was not made from %s; loading the skops file", compiled, artefact)
                return None
            return LinearTfidf(data["terms"], data["idf"], data["coef"], data["intercept"], int(data["max_n"]))
    except (OSError, ValueError, KeyError) as exc:
        log.warning("ignoring %s (%s); loading the skops file", compiled, exc)
        return None
