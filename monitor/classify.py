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

from monitor.errors import ModelError
from monitor.records import Entity, LabelScore, TagResult

log = logging.getLogger(__name__)

ARTEFACT_NAME = "tension-classifier.skops"
COMPILED_NAME = "tension-classifier.npz"
CARD_NAME = "model-card.json"
# Bumped whenever model_inputs or the feature pipeline changes meaning: an artefact built
# for another feature version cannot be used.
FEATURE_VERSION = "text+entity-ids/1"
MAX_EVIDENCE = 3
EVIDENCE_CHARS = 320

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
    """A fitted pipeline with its label order, per-label thresholds and model card."""

    pipeline: object
    label_ids: list[str]
    thresholds: dict[str, float]
    model_version: str
    card: dict = field(default_factory=dict)

    def predict_proba(self, rows):
        """Scores, one row per input and one column per label id (in label_ids order)."""
        import numpy as np

        if len(rows) == 0:
            return np.zeros((0, len(self.label_ids)))
        return np.asarray(self.pipeline.predict_proba(rows))


# --- inputs --------------------------------------------------------------------------


def compose(title: str, text: str) -> str:
    """The one string a text is tagged on: the title, a blank line, the body."""
    title, text = (title or "").strip(), (text or "").strip()
    return f"{title}\n\n{text}" if title and text else title or text


def cut(text: str, max_chars: int) -> tuple[str, bool]:
    """The text cut at max_chars (at the last space before it), and whether it was cut."""
    if len(text) <= max_chars:
        return text, False
    head = text[:max_chars]
    space = head.rfind(" ", max_chars - 200)
    return (head[:space] if space > 0 else head), True


def entity_tokens(entities: list[Entity]) -> str:
    """Canonical entity ids as feature tokens: 'ENT_openai ENT_azure'."""
    return " ".join(f"ENT_{e.id}" for e in entities if e.id)


def model_inputs(texts: list[str], entity_lists: list[list[Entity]]):
    """The classifier's input rows: (text, entity-id tokens) as a 2-column object array."""
    import numpy as np

    rows = np.empty((len(texts), 2), dtype=object)
    for index, (text, entities) in enumerate(zip(texts, entity_lists)):
        rows[index, 0] = text
        rows[index, 1] = entity_tokens(entities)
    return rows


# --- tagging -------------------------------------------------------------------------


def tag_texts(nlp, classifier: Classifier, items: list[tuple[str, str]]) -> list[TagResult]:
    """Tag (title, text) pairs: one nlp.pipe pass for entities and sentences, one
    predict call for the texts, one for the sentences of the texts with labels."""
    from monitor import entities as ents

    max_chars = nlp.meta.get("tension_monitor", {}).get("max_chars", 20_000)
    cuts = [cut(compose(title, text), max_chars) for title, text in items]
    texts = [text for text, _ in cuts]
    entity_lists, sentence_lists = [], []
    for doc in ents.pipe(nlp, texts):
        entity_lists.append(ents.doc_entities(doc))
        sentence_lists.append(_sentences_with_entities(doc, ents))
    scores = classifier.predict_proba(model_inputs(texts, entity_lists))
    labels = [_labels(classifier, row) for row in scores]
    evidence = _evidence(classifier, labels, sentence_lists)
    return [
        _result(classifier, row, labels[i], entity_lists[i], evidence[i], cuts[i][1])
        for i, row in enumerate(scores)
    ]


def _sentences_with_entities(doc, ents) -> list[tuple[str, list[Entity]]]:
    """Sentences (split again at line breaks: a title has no full stop) with the domain
    entities inside each, as the classifier sees them."""
    out = []
    for sent in doc.sents:
        offset = sent.start_char
        for piece in re.split(r"(\n+)", sent.text):
            start, end = offset, offset + len(piece)
            offset = end
            text = piece.strip()
            if len(text) < 20 or "\n" in piece:
                continue  # headings, bylines, fragments are not evidence
            found = [Entity(e.text, e.label_, e.ent_id_) for e in sent.ents
                     if e.ent_id_ and e.start_char >= start and e.end_char <= end]
            out.append((text, found))
    return out


def _labels(classifier: Classifier, row) -> list[str]:
    return [
        label for label, score in zip(classifier.label_ids, row)
        if float(score) >= classifier.thresholds[label]
    ]


def _evidence(classifier: Classifier, labels: list[list[str]], sentence_lists) -> list[dict[str, list[str]]]:
    """For each text, the sentences that score highest for each of its labels."""
    index = [(i, s) for i, found in enumerate(labels) if found for s in range(len(sentence_lists[i]))]
    out: list[dict[str, list[str]]] = [{} for _ in labels]
    if not index:
        return out
    rows = model_inputs(
        [sentence_lists[i][s][0] for i, s in index], [sentence_lists[i][s][1] for i, s in index]
    )
    scores = classifier.predict_proba(rows)
    columns = {label: k for k, label in enumerate(classifier.label_ids)}
    by_text: dict[int, list[int]] = {}
    for row_number, (i, _) in enumerate(index):
        by_text.setdefault(i, []).append(row_number)
    for i, row_numbers in by_text.items():
        for label in labels[i]:
            column = columns[label]
            ranked = sorted(row_numbers, key=lambda r: -scores[r, column])
            floor = classifier.thresholds[label] * 0.75
            chosen = [r for r in ranked[:MAX_EVIDENCE] if scores[r, column] >= floor] or ranked[:1]
            out[i][label] = [_short(sentence_lists[i][index[r][1]][0]) for r in chosen]
    return out


def _short(sentence: str) -> str:
    sentence = " ".join(sentence.split())
    return sentence if len(sentence) <= EVIDENCE_CHARS else sentence[: EVIDENCE_CHARS - 1].rstrip() + "…"


def _result(classifier, row, labels, entities, evidence, truncated) -> TagResult:
    from monitor.taxonomy import FRICTION_POINT

    scores = {label: float(score) for label, score in zip(classifier.label_ids, row)}
    kinds = classifier.card.get("label_kinds", {})
    chosen = [LabelScore(label, scores[label]) for label in labels]
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
    )


# --- loading -------------------------------------------------------------------------


def artefact_paths(settings) -> tuple[Path, Path]:
    folder = settings.path(settings.model.artefact_dir)
    return folder / ARTEFACT_NAME, folder / CARD_NAME


def load_or_train(settings, taxonomy, engine_factory=None) -> Classifier:
    """The saved classifier; trained now (and saved) when none exists and auto_train is on."""
    artefact, card_path = artefact_paths(settings)
    if artefact.exists() and card_path.exists():
        return load_classifier(artefact, card_path, taxonomy)
    if not settings.model.auto_train:
        raise ModelError(
            f"no model artefact at {artefact} (model.auto_train is off): run `tension-monitor train`"
        )
    from monitor import training

    corrections = training.corrections_or_none(engine_factory)
    rows = training.load_training_rows(settings, taxonomy) + corrections
    message = f"no model artefact found; training one now ({len(rows)} examples)..."
    log.warning(message)
    training.train(settings, taxonomy, rows=rows, corrections=len(corrections))
    return load_classifier(artefact, card_path, taxonomy)


def load_classifier(artefact: Path, card_path: Path, taxonomy) -> Classifier:
    """Load and check the artefact; ModelError saying what to do on any mismatch."""
    card = _read_card(card_path)
    check_card(card, taxonomy, card_path)
    pipeline = load_compiled(artefact) or _load_skops(artefact)
    return Classifier(
        pipeline=pipeline,
        label_ids=list(card["label_ids"]),
        thresholds={k: float(v) for k, v in card["thresholds"].items()},
        model_version=card["model_version"],
        card=card,
    )


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
        import numpy as np

        out = np.empty((len(rows), len(self.intercept)))
        for r, text in enumerate(rows[:, 0]):
            counts: dict[int, int] = {}
            for gram in self._grams(text):
                j = self.index.get(gram)
                if j is not None:
                    counts[j] = counts.get(j, 0) + 1
            columns = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
            values = (1.0 + np.log(np.fromiter(counts.values(), dtype=float, count=len(counts)))) * self.idf[columns]
            norm = np.sqrt((values ** 2).sum())
            if norm > 0:
                values = values / norm
            decision = self.coef[:, columns] @ values + self.intercept
            out[r] = 1.0 / (1.0 + np.exp(-decision))
        return out


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
