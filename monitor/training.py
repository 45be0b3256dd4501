"""Fit, cross-validate, evaluate; write the skops artefact and the model card.

Training data: every models/training/*.jsonl ({"id", "title", "text", "labels"}) plus the
analyst corrections in the database (their effective labels). The chosen model
(`MODEL`) and the candidates it was compared with (`CANDIDATES`, `tension-monitor train
--compare`) are described in models/README.md with the numbers measured.

Thresholds: per label, the one that maximises F1 on out-of-fold scores, shrunk toward
0.5 by the label's support (`choose_thresholds`), so a handful of lucky folds cannot
push a threshold to an extreme. Cross-validation metrics in the card are honest for
that choice: each fold's predictions use thresholds chosen on the other folds only.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import zipfile
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from monitor.errors import InputError, MonitorError

if TYPE_CHECKING:
    from monitor.classify import Classifier, Sentence

log = logging.getLogger(__name__)

FOLDS = 5
SEED = 13
THRESHOLD_GRID = [round(0.05 + 0.01 * i, 2) for i in range(91)]  # 0.05 .. 0.95
SHRINK_K = 20.0  # pseudo-examples pulling a threshold toward 0.5


@dataclass(frozen=True)
class Spec:
    """One model as compared in models/README.md: members, passages, their mix."""

    word: bool = True  # word 1-2 gram TF-IDF (sublinear)
    char: bool = False  # char_wb 2-5 gram TF-IDF (sublinear)
    model: str = "lr"  # lr | svc (LinearSVC calibrated with sigmoid, 3-fold)
    C: float = 20.0
    balanced: bool = True  # class_weight="balanced"
    thresholds: str = "shrunk"  # fixed (0.5) | oof (best F1 out of fold) | shrunk (oof pulled toward 0.5)
    window: int = 3  # sentences per passage (0: whole text only)
    passage_weight: float = 1.0  # how much a stronger best passage lifts the text's score
    encoder_weight: float = 0.0  # share of the encoder head in the raw score (0: no encoder)
    encoder_C: float = 4.0
    item_encoder_weight: float = 0.6  # the encoder head's share in a list item's score

    def scoring(self):
        from monitor.classify import Scoring

        return Scoring(window=self.window, passage_weight=self.passage_weight if self.window else 0.0,
                       encoder_weight=self.encoder_weight,
                       item_encoder_weight=self.item_encoder_weight if self.encoder_weight else 0.0)


CANDIDATES: dict[str, Spec] = {
    "word-lr": Spec(window=0),
    "word-lr-C10": Spec(window=0, C=10.0),
    "word-lr-pass2": Spec(window=2),
    "word-lr-pass3": Spec(window=3),
    "word-lr-pass3-half": Spec(window=3, passage_weight=0.5),
    "word-lr-pass4": Spec(window=4),
    "encoder-only": Spec(window=0, encoder_weight=1.0),
    "word-lr+enc": Spec(window=0, encoder_weight=0.5),
    "word-lr-pass3+enc0.3": Spec(window=3, encoder_weight=0.3),
    "word-lr-pass3+enc": Spec(window=3, encoder_weight=0.5),
    "word-lr-pass3+enc-items-words": Spec(window=3, encoder_weight=0.5, item_encoder_weight=0.0),
    "word-lr-pass3+enc-items0.3": Spec(window=3, encoder_weight=0.5, item_encoder_weight=0.3),
    "word-lr-pass3+enc-items0.5": Spec(window=3, encoder_weight=0.5, item_encoder_weight=0.5),
    "word-lr-pass3+enc-items0.7": Spec(window=3, encoder_weight=0.5, item_encoder_weight=0.7),
    "word-lr-pass3+enc-C1": Spec(window=3, encoder_weight=0.5, encoder_C=1.0),
    "word-lr-pass3+enc-C16": Spec(window=3, encoder_weight=0.5, encoder_C=16.0),
    "word-lr-pass2+enc": Spec(window=2, encoder_weight=0.5),
}
MODEL = "word-lr-pass3+enc"


# --- data ----------------------------------------------------------------------------


def training_files(settings) -> list[Path]:
    folder = settings.path(settings.model.training_dir)
    return sorted(folder.glob("*.jsonl"))


def read_jsonl(path: Path, taxonomy, need_labels: bool = True) -> list[dict]:
    """Rows {"id", "title", "text", "labels"} from a JSONL file; InputError on a bad line."""
    from monitor.textio import read_json_objects

    rows = []
    for number, row in read_json_objects(path):
        if not isinstance(row.get("text", ""), str):
            raise InputError(f"{path}:{number}: expected an object with a text string")
        labels = row.get("labels")
        if need_labels:
            if not isinstance(labels, list):
                raise InputError(f"{path}:{number}: missing labels list")
            unknown = [label for label in labels if label not in taxonomy]
            if unknown:
                raise InputError(f"{path}:{number}: unknown label id(s) {', '.join(map(str, unknown))}")
        rows.append({
            "id": str(row.get("id", f"{path.stem}-{number}")),
            "title": str(row.get("title") or ""),
            "text": row.get("text") or "",
            "labels": list(labels or []),
        })
    return rows


def load_training_rows(settings, taxonomy) -> list[dict]:
    files = training_files(settings)
    if not files:
        raise InputError(f"no training data: no *.jsonl in {settings.path(settings.model.training_dir)}")
    return [row for path in files for row in read_jsonl(path, taxonomy)]


def corrections_or_none(engine_factory) -> list[dict]:
    """The analysts' corrected articles as training rows; [] when there is no store."""
    if engine_factory is None:
        return []
    try:
        from monitor.storage.tags import corrections_for_training

        return [
            {"id": f"correction-{i}", "title": title, "text": text, "labels": labels}
            for i, (title, text, labels) in enumerate(corrections_for_training(engine_factory()))
        ]
    except MonitorError as exc:
        log.warning("training without analyst corrections: %s", exc)
        return []


def data_sha256(rows: list[dict]) -> str:
    digest = hashlib.sha256()
    for row in rows:
        digest.update(json.dumps([row["title"], row["text"], sorted(row["labels"])], ensure_ascii=False).encode())
    return digest.hexdigest()


# --- features and model ---------------------------------------------------------------


@dataclass
class Prepared:
    """Training texts as the classifier sees them: the composed text, its sentences (for
    passages) and, when the encoder is used, its document embedding and its list items'."""

    texts: list[str]
    sentences: list[list[Sentence]]
    embeddings: Any = None  # numpy (n, 384) or None
    item_embeddings: dict = field(default_factory=dict)  # list item text -> numpy (384,)

    def embed_items(self, items: list[str]):
        import numpy as np

        return np.stack([self.item_embeddings[item] for item in items])


def prepare(nlp, rows: list[dict], encoder=None, cache: Path | None = None) -> Prepared:
    """The same composition, cut and sentence split as `classify.tag_texts`; embeddings
    from `cache` where a text was embedded before."""
    from monitor import entities as ents
    from monitor.classify import compose, cut, doc_sentences

    max_chars = nlp.meta.get("tension_monitor", {}).get("max_chars", 20_000)
    texts = [cut(compose(row["title"], row["text"]), max_chars)[0] for row in rows]
    enabled = [name for name in ("senter", "sentencizer", "parser") if name in nlp.pipe_names][:1]
    with nlp.select_pipes(enable=enabled):
        sentences = [doc_sentences(doc) for doc in ents.pipe(nlp, texts)]
    if encoder is None:
        return Prepared(texts, sentences)
    items = sorted({sentence.text for found in sentences for sentence in found if sentence.item})
    vectors = document_embeddings(encoder, texts + items, cache)
    return Prepared(texts, sentences, vectors[:len(texts)], dict(zip(items, vectors[len(texts):])))


def document_embeddings(encoder, texts: list[str], cache: Path | None):
    """encoder.embed_documents(texts), reusing the vectors stored in `cache` (keyed by the
    text's sha256) and writing back exactly the vectors of these texts. Embedding is most of
    the training time; the cache keeps `train` well under a minute after the first run.
    The cache names the encoder file it was made with: another encoder starts it afresh."""
    import numpy as np

    keys = [hashlib.sha256(text.encode("utf-8")).hexdigest() for text in texts]
    known = _read_embedding_cache(cache, encoder.vectors_id)
    missing = sorted({key: text for key, text in zip(keys, texts) if key not in known}.items())
    if missing:
        log.info("embedding %d texts with the sentence encoder...", len(missing))
        vectors = encoder.embed_documents([text for _, text in missing])
        known.update({key: vector for (key, _), vector in zip(missing, vectors)})
    embeddings = np.stack([known[key] for key in keys]).astype(np.float32) if keys else np.zeros((0, 384), np.float32)
    if cache is not None and (missing or len(known) != len(set(keys))):
        order = sorted(set(keys))
        tmp = cache.with_name(cache.name + ".tmp")
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, keys=np.array(order), vectors=np.stack([known[key] for key in order]),
                                encoder=np.array(encoder.vectors_id))
        os.replace(tmp, cache)
    return embeddings


def _read_embedding_cache(cache: Path | None, vectors_id: str) -> dict:
    import numpy as np

    if cache is None or not cache.exists():
        return {}
    try:
        with np.load(cache, allow_pickle=False) as data:
            if str(data["encoder"]) != vectors_id:
                log.info("the embedding cache %s was made with another encoder: embedding afresh", cache)
                return {}
            return dict(zip(data["keys"].tolist(), data["vectors"]))
    except (OSError, ValueError, KeyError) as exc:
        log.warning("ignoring the embedding cache %s (%s)", cache, exc)
        return {}


def subset(prepared: Prepared, mask) -> Prepared:
    import numpy as np

    index = np.where(mask)[0]
    return Prepared([prepared.texts[i] for i in index], [prepared.sentences[i] for i in index],
                    None if prepared.embeddings is None else prepared.embeddings[index], prepared.item_embeddings)


def label_matrix(rows: list[dict], label_ids: list[str]):
    import numpy as np

    return np.array([[label in row["labels"] for label in label_ids] for row in rows], dtype=int)


def build_pipeline(spec: Spec):
    from sklearn.compose import ColumnTransformer
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.multiclass import OneVsRestClassifier

    blocks = []
    if spec.word:
        blocks.append(("word", TfidfVectorizer(
            ngram_range=(1, 2), sublinear_tf=True, min_df=2, max_df=0.9, strip_accents="unicode"), 0))
    if spec.char:
        blocks.append(("char", TfidfVectorizer(
            analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2, max_features=60_000,
            strip_accents="unicode"), 0))
    weight = "balanced" if spec.balanced else None
    if spec.model == "svc":
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.svm import LinearSVC

        estimator = CalibratedClassifierCV(LinearSVC(C=spec.C, class_weight=weight), cv=3, method="sigmoid")
    else:
        from sklearn.linear_model import LogisticRegression

        estimator = LogisticRegression(C=spec.C, class_weight=weight, max_iter=2000, solver="liblinear")
    from sklearn.pipeline import Pipeline

    return Pipeline([("features", ColumnTransformer(blocks)), ("model", OneVsRestClassifier(estimator))])


def fit_head(spec: Spec, embeddings, Y):
    """The encoder head: one logistic regression per label over document embeddings."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from monitor.classify import EncoderHead

    coef = np.zeros((Y.shape[1], embeddings.shape[1]), dtype=np.float32)
    intercept = np.full(Y.shape[1], -10.0, dtype=np.float32)
    for j in range(Y.shape[1]):
        if 0 < Y[:, j].sum() < len(Y):
            model = LogisticRegression(C=spec.encoder_C, class_weight="balanced", solver="liblinear")
            model.fit(embeddings, Y[:, j])
            coef[j], intercept[j] = model.coef_[0], model.intercept_[0]
    return EncoderHead(coef, intercept)


def slim(pipeline):
    """Drop what inference never reads: the vectorizers' `stop_words_` (every pruned term,
    most of the artefact's size; sklearn documents it as safe to delete)."""
    for _, vectorizer, _ in pipeline.named_steps["features"].transformers_:
        if hasattr(vectorizer, "stop_words_"):
            delattr(vectorizer, "stop_words_")
    return pipeline


def fold_ids(n: int, folds: int = FOLDS):
    import numpy as np

    order = np.random.default_rng(SEED).permutation(n)
    assignment = np.empty(n, dtype=int)
    assignment[order] = np.arange(n) % folds
    return assignment


@dataclass
class MemberScores:
    """Each member's score of each text: word model on the text and on its best passage,
    encoder head (None when unused)."""

    doc: Any
    best_passage: Any
    meaning: Any

    def raw(self, scoring):
        return scoring.raw(self.doc, self.best_passage, self.meaning)


def fit_members(spec: Spec, prepared: Prepared, Y):
    """The word pipeline and (when used) the encoder head, fitted on these texts."""
    from monitor.classify import model_inputs

    pipeline = build_pipeline(spec).fit(model_inputs(prepared.texts), Y)
    head = fit_head(spec, prepared.embeddings, Y) if spec.encoder_weight else None
    return pipeline, head


def member_scores(spec: Spec, pipeline, head, prepared: Prepared) -> MemberScores:
    """Score texts with `classify.score_texts`, the function tagging uses, before calibration."""
    from monitor.classify import Classifier, score_texts

    members = Classifier(pipeline=pipeline, label_ids=[], thresholds={}, model_version="",
                         scoring=spec.scoring(), head=head)
    scores = score_texts(members, prepared.texts, prepared.sentences, prepared.embeddings, prepared.embed_items)
    return MemberScores(scores.doc, scores.best_passage, scores.meaning)


def out_of_fold(spec: Spec, prepared: Prepared, Y, folds) -> MemberScores:
    """Out-of-fold member scores: each text scored by members that never saw it."""
    import numpy as np

    doc, best = np.zeros(Y.shape), np.zeros(Y.shape)
    meaning = np.zeros(Y.shape) if spec.encoder_weight else None
    for k in sorted(set(folds)):
        train, test = folds != k, folds == k
        pipeline, head = fit_members(spec, subset(prepared, train), Y[train])
        scores = member_scores(spec, pipeline, head, subset(prepared, test))
        doc[test], best[test] = scores.doc, scores.best_passage
        if meaning is not None:
            meaning[test] = scores.meaning
    return MemberScores(doc, best, meaning)


def fit_calibration(raw, Y):
    """Platt scaling per label: (slopes, intercepts) of sigmoid(a * logit(raw) + b)."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from monitor.classify import logit

    slopes, intercepts = np.ones(Y.shape[1]), np.zeros(Y.shape[1])
    for j in range(Y.shape[1]):
        if 0 < Y[:, j].sum() < len(Y):
            model = LogisticRegression(C=100.0).fit(logit(raw[:, j]).reshape(-1, 1), Y[:, j])
            slopes[j], intercepts[j] = model.coef_[0, 0], model.intercept_[0]
    return slopes, intercepts


def cross_calibrated(raw, Y, folds):
    """Calibrated out-of-fold probabilities, each fold's calibration fitted on the others."""
    import numpy as np

    from monitor.classify import calibrate

    out = np.zeros(Y.shape)
    for k in sorted(set(folds)):
        rest, this = folds != k, folds == k
        slopes, intercepts = fit_calibration(raw[rest], Y[rest])
        out[this] = calibrate(raw[this], slopes, intercepts)
    return out


def expected_calibration_error(probability, truth, bins: int = 10) -> float:
    """ECE: the sample-weighted gap between mean probability and frequency in 10 equal bins."""
    import numpy as np

    edges = np.minimum((np.asarray(probability) * bins).astype(int), bins - 1)
    gap = 0.0
    for b in range(bins):
        members = edges == b
        if members.any():
            gap += members.sum() * abs(probability[members].mean() - truth[members].mean())
    return round(float(gap / len(truth)), 4)


def choose_thresholds(scores, Y, label_ids: list[str], how: str = "shrunk") -> dict[str, float]:
    """Per-label thresholds from out-of-fold scores (see the module docstring)."""
    import numpy as np

    thresholds = {}
    for j, label in enumerate(label_ids):
        if how == "fixed" or Y[:, j].sum() == 0:
            thresholds[label] = 0.5
            continue
        f1s = [_f1(Y[:, j], scores[:, j] >= t) for t in THRESHOLD_GRID]
        best = max(f1s)
        plateau = [t for t, f in zip(THRESHOLD_GRID, f1s) if f >= best - 1e-9]
        t_opt = float(np.median(plateau))
        if how == "shrunk":
            n_pos = float(Y[:, j].sum())
            t_opt = (n_pos * t_opt + SHRINK_K * 0.5) / (n_pos + SHRINK_K)
        thresholds[label] = round(t_opt, 3)
    return thresholds


def cross_fitted_predictions(oof, Y, folds, label_ids, how: str):
    """Predictions for each fold with thresholds chosen on the other folds' scores."""
    import numpy as np

    predicted = np.zeros(Y.shape, dtype=int)
    for k in sorted(set(folds)):
        rest, this = folds != k, folds == k
        chosen = choose_thresholds(oof[rest], Y[rest], label_ids, how)
        cut_at = np.array([chosen[label] for label in label_ids])
        predicted[this] = oof[this] >= cut_at
    return predicted


# --- metrics ---------------------------------------------------------------------------


def _f1(truth, predicted) -> float:
    import numpy as np

    truth, predicted = np.asarray(truth, dtype=bool), np.asarray(predicted, dtype=bool)
    tp = float((truth & predicted).sum())
    denominator = float(truth.sum() + predicted.sum())
    return 2 * tp / denominator if denominator else 0.0


def metrics(Y, P, label_ids: list[str]) -> dict:
    """micro-F1 and macro-F1 over the label ids, relevance F1 (any label vs none), per label P/R/F1/support."""
    import numpy as np

    Y, P = np.asarray(Y, dtype=bool), np.asarray(P, dtype=bool)
    per_label = {}
    for j, label in enumerate(label_ids):
        tp = int((Y[:, j] & P[:, j]).sum())
        predicted, support = int(P[:, j].sum()), int(Y[:, j].sum())
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        per_label[label] = {
            "precision": round(precision, 4), "recall": round(recall, 4),
            "f1": round(_f1(Y[:, j], P[:, j]), 4), "support": support,
        }
    return {
        "n": int(len(Y)),
        "micro_f1": round(_f1(Y.ravel(), P.ravel()), 4),
        "macro_f1": round(float(np.mean([v["f1"] for v in per_label.values()])), 4),
        "relevance_f1": round(_f1(Y.any(axis=1), P.any(axis=1)), 4),
        "per_label": per_label,
    }


# --- train, evaluate, compare -------------------------------------------------------------


@dataclass
class Fitted:
    """A fitted classifier with the cross-validation that chose its thresholds."""

    classifier: Classifier
    cv: dict
    calibration_error: dict[str, float]
    honest: Any = None  # calibrated out-of-fold probabilities, each fold calibrated on the others


def fit_classifier(spec: Spec, prepared: Prepared, Y, label_ids: list[str], encoder=None, name: str = "") -> Fitted:
    """Cross-validate, calibrate and choose thresholds on out-of-fold scores, then fit
    the members on all the data."""
    import numpy as np

    from monitor.classify import Classifier, calibrate

    folds = fold_ids(len(Y))
    raw = out_of_fold(spec, prepared, Y, folds).raw(spec.scoring())
    honest = cross_calibrated(raw, Y, folds)
    cv = metrics(Y, cross_fitted_predictions(honest, Y, folds, label_ids, spec.thresholds), label_ids)
    slopes, intercepts = fit_calibration(raw, Y)
    thresholds = choose_thresholds(calibrate(raw, slopes, intercepts), Y, label_ids, spec.thresholds)
    ece = {label: expected_calibration_error(honest[:, j], Y[:, j]) for j, label in enumerate(label_ids)}
    pipeline, head = fit_members(spec, prepared, Y)
    classifier = Classifier(
        pipeline=slim(pipeline), label_ids=label_ids, thresholds=thresholds, model_version=name,
        scoring=spec.scoring(), slopes=slopes, intercepts=intercepts, head=head,
        encoder=encoder if head is not None else None,
    )
    ece["mean"] = round(float(np.mean(list(ece.values()))), 4)
    return Fitted(classifier, cv, ece, honest)


def review_band_report(fitted: Fitted, Y, band: float) -> dict:
    """How the review band behaves on the out-of-fold probabilities: the share of texts it
    flags, and how often a label decision is wrong inside and outside it."""
    import numpy as np

    thresholds = np.array([fitted.classifier.thresholds[label] for label in fitted.classifier.label_ids])
    inside = np.abs(fitted.honest - thresholds) <= band
    wrong = (fitted.honest >= thresholds) != Y.astype(bool)
    return {
        "band": band,
        "texts_flagged": round(float(inside.any(axis=1).mean()), 3),
        "decision_error_inside": round(float(wrong[inside].mean()), 3) if inside.any() else None,
        "decision_error_outside": round(float(wrong[~inside].mean()), 3),
        "errors_inside_share": round(float((wrong & inside).sum() / max(wrong.sum(), 1)), 3),
    }


def train(settings, taxonomy, rows: list[dict] | None = None, corrections: int = 0,
          nlp=None, engine_factory=None, model: str = MODEL) -> dict:
    """Fit the model on the training files (+ corrections), cross-validate, calibrate,
    choose thresholds, write the artefact and the model card. Returns the card."""
    from dataclasses import replace

    from monitor.classify import FEATURE_VERSION, artefact_paths, current_versions

    if rows is None:
        extra = corrections_or_none(engine_factory)
        rows, corrections = load_training_rows(settings, taxonomy) + extra, len(extra)
    label_ids = list(taxonomy.ids)
    nlp = nlp or _nlp(settings)
    started = datetime.now(timezone.utc)
    spec = CANDIDATES[model]
    encoder = _encoder(settings) if spec.encoder_weight else None
    Y = label_matrix(rows, label_ids)
    prepared = prepare(nlp, rows, encoder, embedding_cache(settings))
    fitted = fit_classifier(spec, prepared, Y, label_ids, encoder, model)
    sha = data_sha256(rows)
    recipe = sha + model + FEATURE_VERSION + json.dumps(asdict(spec), sort_keys=True)
    recipe += encoder.vectors_id if encoder is not None else ""
    version = f"tm-{started:%Y%m%d}-{hashlib.sha256(recipe.encode()).hexdigest()[:10]}"
    classifier = replace(fitted.classifier, model_version=version)
    card = {
        "model_version": version,
        "model": model,
        "spec": asdict(spec),
        "feature_version": FEATURE_VERSION,
        "versions": {**current_versions(), "python": platform.python_version(),
                     "spacy_pipeline": f"{nlp.meta.get('name')}-{nlp.meta.get('version')}"},
        "label_ids": label_ids,
        "label_kinds": {label.id: label.kind for label in taxonomy.labels},
        "thresholds": classifier.thresholds,
        "scoring": asdict(classifier.scoring),
        "calibration": {"method": "platt", "slopes": [round(float(v), 6) for v in classifier.slopes],
                        "intercepts": [round(float(v), 6) for v in classifier.intercepts],
                        "expected_calibration_error": fitted.calibration_error},
        "review_band": review_band_report(fitted, Y, settings.model.review_band),
        "encoder": _encoder_card(encoder) if encoder is not None else None,
        "training_data": {
            "files": [str(p.relative_to(settings.root)) if p.is_relative_to(settings.root) else str(p)
                      for p in training_files(settings)],
            "sha256": sha, "n_examples": len(rows), "n_corrections": corrections,
            "n_negatives": int((Y.sum(axis=1) == 0).sum()),
        },
        "cross_validation": {"folds": FOLDS, "seed": SEED, **fitted.cv},
        "trained_at": started.isoformat(timespec="seconds"),
        "training_seconds": round((datetime.now(timezone.utc) - started).total_seconds(), 2),
    }
    save(classifier, card, *artefact_paths(settings))
    return card


def _nlp(settings):
    from monitor.entities import load_pipeline

    return load_pipeline(settings.nlp, settings.path(settings.nlp.entities_path))


def embedding_cache(settings) -> Path:
    return settings.path(settings.model.embedding_cache)


def _encoder(settings):
    from monitor.encoder import load_encoder

    return load_encoder(settings.path(settings.model.encoder_dir))


def _encoder_card(encoder) -> dict:
    from monitor.encoder import LEAD_WORDS, MODEL_FILE

    return {"model_file": MODEL_FILE, "sha256": encoder.model_sha256, "lead_words": LEAD_WORDS,
            "vectors": encoder.vectors_id}


def save(classifier, card: dict, artefact: Path, card_path: Path) -> None:
    """Write every file atomically (a reader never sees half an artefact); the numpy files
    record the sha256 of the skops file they belong to."""
    import numpy as np
    import skops.io as sio

    from monitor.classify import COMPILED_NAME, HEAD_NAME, compile_pipeline, file_sha256

    artefact.parent.mkdir(parents=True, exist_ok=True)
    tmp_artefact = artefact.with_name(artefact.name + ".tmp")
    sio.dump(classifier.pipeline, tmp_artefact, compression=zipfile.ZIP_DEFLATED, compresslevel=9)
    source = np.array(file_sha256(tmp_artefact))
    tmp_card = card_path.with_name(card_path.name + ".tmp")
    tmp_card.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    compiled = compile_pipeline(classifier.pipeline)
    head = classifier.head
    arrays = {COMPILED_NAME: compiled,
              HEAD_NAME: {"coef": head.coef, "intercept": head.intercept} if head is not None else None}
    for name, content in arrays.items():
        target = artefact.with_name(name)
        if content is None:
            target.unlink(missing_ok=True)
            continue
        tmp = target.with_name(target.name + ".tmp")
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, source_sha256=source, **content)
        os.replace(tmp, target)
    os.replace(tmp_artefact, artefact)
    os.replace(tmp_card, card_path)


def evaluate(classifier, nlp, rows: list[dict]) -> dict:
    """The classifier's metrics on labelled rows (the same tagging path as `classify`)."""
    from monitor.classify import tag_texts

    if not rows:
        raise InputError("no rows to evaluate")
    results = tag_texts(nlp, classifier, [(row["title"], row["text"]) for row in rows])
    label_ids = classifier.label_ids
    Y = label_matrix(rows, label_ids)
    P = label_matrix([{"labels": r.labels} for r in results], label_ids)
    return metrics(Y, P, label_ids)


def compare(settings, taxonomy, names: list[str] | None = None, dev_rows: list[dict] | None = None) -> list[dict]:
    """Cross-validate each candidate on the training data (and score it on dev rows, if
    given, after fitting on all training data). For models/README.md."""
    rows, label_ids, nlp = load_training_rows(settings, taxonomy), list(taxonomy.ids), _nlp(settings)
    names = names or list(CANDIDATES)
    encoder = _encoder(settings) if any(CANDIDATES[name].encoder_weight for name in names) else None
    prepared, Y = prepare(nlp, rows, encoder, embedding_cache(settings)), label_matrix(rows, label_ids)
    table = []
    for name in names:
        started = datetime.now(timezone.utc)
        fitted = fit_classifier(CANDIDATES[name], prepared, Y, label_ids, encoder, name)
        entry = {"model": name, "cv": fitted.cv, "ece": fitted.calibration_error["mean"],
                 "seconds": round((datetime.now(timezone.utc) - started).total_seconds(), 1)}
        if dev_rows:
            entry["dev"] = evaluate(fitted.classifier, nlp, dev_rows)
        table.append(entry)
    return table
