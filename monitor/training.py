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
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from monitor.errors import InputError, MonitorError

log = logging.getLogger(__name__)

FOLDS = 5
SEED = 13
THRESHOLD_GRID = [round(0.05 + 0.01 * i, 2) for i in range(91)]  # 0.05 .. 0.95
SHRINK_K = 20.0  # pseudo-examples pulling a threshold toward 0.5


@dataclass(frozen=True)
class Spec:
    """One feature set + model, as compared in models/README.md."""

    word: bool = True  # word 1-2 gram TF-IDF (sublinear)
    char: bool = False  # char_wb 2-5 gram TF-IDF (sublinear)
    entities: bool = False  # canonical entity-id tokens ("ENT_openai")
    model: str = "lr"  # lr | svc (LinearSVC calibrated with sigmoid, 3-fold)
    C: float = 10.0
    balanced: bool = True  # class_weight="balanced"
    thresholds: str = "shrunk"  # fixed (0.5) | oof (best F1 out of fold) | shrunk (oof pulled toward 0.5)


CANDIDATES: dict[str, Spec] = {
    "word-lr": Spec(),
    "word-lr-C20": Spec(C=20.0),
    "word-lr-C3": Spec(C=3.0),
    "word-lr-unbalanced": Spec(balanced=False),
    "word+char-lr": Spec(char=True),
    "word+ent-lr": Spec(entities=True),
    "word+char+ent-lr": Spec(char=True, entities=True),
    "word+char+ent-lr-C3": Spec(char=True, entities=True, C=3.0),
    "word+char+ent-lr-C30": Spec(char=True, entities=True, C=30.0),
    "word+char+ent-svc": Spec(char=True, entities=True, model="svc", C=0.5),
    "word+char+ent-lr-fixed0.5": Spec(char=True, entities=True, thresholds="fixed"),
    "word+char+ent-lr-oof": Spec(char=True, entities=True, thresholds="oof"),
}
MODEL = "word-lr-C20"


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


def texts_and_entities(nlp, rows: list[dict]):
    """Model input rows for training rows: the entity ruler alone gives the same ids as the
    full pipeline (its spans overwrite the NER's), at a fraction of the cost."""
    from monitor import entities as ents
    from monitor.classify import compose, cut, model_inputs

    max_chars = nlp.meta.get("tension_monitor", {}).get("max_chars", 20_000)
    texts = [cut(compose(row["title"], row["text"]), max_chars)[0] for row in rows]
    with nlp.select_pipes(enable=["domain_entities"]):
        entity_lists = [ents.doc_entities(doc) for doc in ents.pipe(nlp, texts)]
    return model_inputs(texts, entity_lists)


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
    if spec.entities:
        blocks.append(("entities", TfidfVectorizer(
            token_pattern=r"ENT_\w+", lowercase=False, binary=True), 1))
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


def out_of_fold(spec: Spec, X, Y, folds):
    """Out-of-fold scores: each row scored by a model that never saw it."""
    import numpy as np

    oof = np.zeros(Y.shape, dtype=float)
    for k in sorted(set(folds)):
        train, test = folds != k, folds == k
        model = build_pipeline(spec).fit(X[train], Y[train])
        oof[test] = model.predict_proba(X[test])
    return oof


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


def train(settings, taxonomy, rows: list[dict] | None = None, corrections: int = 0,
          nlp=None, engine_factory=None, model: str = MODEL) -> dict:
    """Fit the model on the training files (+ corrections), cross-validate, choose
    thresholds, write the artefact and the model card. Returns the card."""
    from monitor.classify import FEATURE_VERSION, artefact_paths, current_versions

    if rows is None:
        extra = corrections_or_none(engine_factory)
        rows, corrections = load_training_rows(settings, taxonomy) + extra, len(extra)
    label_ids = list(taxonomy.ids)
    nlp = nlp or _nlp(settings)
    started = datetime.now(timezone.utc)
    spec = CANDIDATES[model]
    X, Y = texts_and_entities(nlp, rows), label_matrix(rows, label_ids)
    folds = fold_ids(len(rows))
    oof = out_of_fold(spec, X, Y, folds)
    cv = metrics(Y, cross_fitted_predictions(oof, Y, folds, label_ids, spec.thresholds), label_ids)
    thresholds = choose_thresholds(oof, Y, label_ids, spec.thresholds)
    pipeline = slim(build_pipeline(spec).fit(X, Y))
    sha = data_sha256(rows)
    card = {
        "model_version": f"tm-{started:%Y%m%d}-{hashlib.sha256((sha + model + FEATURE_VERSION).encode()).hexdigest()[:10]}",
        "model": model,
        "spec": asdict(spec),
        "feature_version": FEATURE_VERSION,
        "versions": {**current_versions(), "python": platform.python_version(),
                     "spacy_pipeline": f"{nlp.meta.get('name')}-{nlp.meta.get('version')}"},
        "label_ids": label_ids,
        "label_kinds": {label.id: label.kind for label in taxonomy.labels},
        "thresholds": thresholds,
        "training_data": {
            "files": [str(p.relative_to(settings.root)) if p.is_relative_to(settings.root) else str(p)
                      for p in training_files(settings)],
            "sha256": sha, "n_examples": len(rows), "n_corrections": corrections,
            "n_negatives": int((Y.sum(axis=1) == 0).sum()),
        },
        "cross_validation": {"folds": FOLDS, "seed": SEED, **cv},
        "trained_at": started.isoformat(timespec="seconds"),
        "training_seconds": round((datetime.now(timezone.utc) - started).total_seconds(), 2),
    }
    save(pipeline, card, *artefact_paths(settings))
    return card


def _nlp(settings):
    from monitor.entities import load_pipeline

    return load_pipeline(settings.nlp, settings.path(settings.nlp.entities_path))


def save(pipeline, card: dict, artefact: Path, card_path: Path) -> None:
    """Write both files atomically (a reader never sees half an artefact)."""
    import skops.io as sio

    from monitor.classify import COMPILED_NAME, compile_pipeline, file_sha256

    artefact.parent.mkdir(parents=True, exist_ok=True)
    tmp_artefact = artefact.with_name(artefact.name + ".tmp")
    sio.dump(pipeline, tmp_artefact, compression=zipfile.ZIP_DEFLATED, compresslevel=9)
    tmp_card = card_path.with_name(card_path.name + ".tmp")
    tmp_card.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    compiled = compile_pipeline(pipeline)
    target = artefact.with_name(COMPILED_NAME)
    if compiled is not None:
        import numpy as np

        tmp_compiled = target.with_name(target.name + ".tmp")
        with open(tmp_compiled, "wb") as handle:
            np.savez_compressed(handle, source_sha256=np.array(file_sha256(tmp_artefact)), **compiled)
        os.replace(tmp_compiled, target)
    elif target.exists():
        target.unlink()
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
    import numpy as np

    from monitor.classify import Classifier, tag_texts

    rows, label_ids, nlp = load_training_rows(settings, taxonomy), list(taxonomy.ids), _nlp(settings)
    X, Y = texts_and_entities(nlp, rows), label_matrix(rows, label_ids)
    folds = fold_ids(len(rows))
    table = []
    for name in names or list(CANDIDATES):
        spec = CANDIDATES[name]
        started = datetime.now(timezone.utc)
        oof = out_of_fold(spec, X, Y, folds)
        cv = metrics(Y, cross_fitted_predictions(oof, Y, folds, label_ids, spec.thresholds), label_ids)
        entry = {"model": name, "cv": cv, "seconds": round((datetime.now(timezone.utc) - started).total_seconds(), 1)}
        if dev_rows:
            pipeline = build_pipeline(spec).fit(X, Y)
            classifier = Classifier(pipeline, label_ids, choose_thresholds(oof, Y, label_ids, spec.thresholds), name, {})
            results = tag_texts(nlp, classifier, [(r["title"], r["text"]) for r in dev_rows])
            entry["dev"] = metrics(label_matrix(dev_rows, label_ids),
                                   np.array([[lab in r.labels for lab in label_ids] for r in results]), label_ids)
        table.append(entry)
    return table
