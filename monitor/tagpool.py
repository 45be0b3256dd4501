"""Tagging (spaCy + classifier) in N processes, each loading the model once.

`Tagger(app, processes)` hands out `classify.tag_texts` calls: inline when processes is
1, else to a pool of worker processes started with forkserver (never forked from a
process holding database connections or threads). Workers only tag; claiming and
storing stay in the calling process, one transaction per batch, so the store's rules
(row claims, idempotent writes) are the same whatever N is.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, NamedTuple

from monitor.records import TagResult

Items = list[tuple[str, str]]  # (title, text) pairs

_worker_app: Any = None  # the model a worker process loaded, once


def default_processes() -> int:
    """One per core (the `--processes` default)."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


class Tagger:
    def __init__(self, app, processes: int = 1):
        self.app, self.processes = app, max(1, processes)
        self._pool: ProcessPoolExecutor | None = None

    @property
    def window(self) -> int:
        """Batches worth keeping in flight: every worker busy, one more queued each."""
        return 1 if self.processes == 1 else 2 * self.processes

    def submit(self, items: Items) -> Future:
        if self.processes == 1:
            return _done(lambda: _tag_with(self.app, items))
        return self._workers().submit(_tag_in_worker, items)

    def map(self, batches: Iterable[Items]) -> Iterator[list[TagResult]]:
        """Results of each batch, in order, with up to `window` batches in flight."""
        pending: deque[Future] = deque()
        for items in batches:
            pending.append(self.submit(items))
            if len(pending) >= self.window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> Tagger:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _workers(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # The model is loaded (or trained, on first use) here first, so N workers never
            # race to train it, and a missing model is one error, not N.
            self.app.classifier  # noqa: B018 - loads it
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["monitor.classify", "monitor.entities", "monitor.tagpool"])
            self._pool = ProcessPoolExecutor(self.processes, context, initializer=_load_model,
                                             initargs=(self.app.settings,))
        return self._pool


def _done(work) -> Future:
    future: Future = Future()
    try:
        future.set_result(work())
    except BaseException as exc:  # noqa: BLE001 - handed to whoever asks for the result
        future.set_exception(exc)
    return future


def _tag_with(app, items: Items) -> list[TagResult]:
    from monitor.classify import tag_texts

    return tag_texts(app.nlp, app.classifier, items)


class _WorkerModel(NamedTuple):
    """What a tagging process needs of an App: the spaCy pipeline and the classifier."""

    nlp: Any
    classifier: Any


def _load_model(settings) -> None:
    """Load both once, before the first batch. The parent has made sure the artefact
    exists (training it if needed), so a worker only loads."""
    from monitor.classify import load_model
    from monitor.entities import load_pipeline
    from monitor.pipeline import _worker_setup
    from monitor.taxonomy import load_taxonomy

    global _worker_app
    _worker_setup()  # leave SIGINT/SIGTERM to the parent; exit when it dies
    taxonomy = load_taxonomy(settings.path(settings.model.taxonomy_path))
    _worker_app = _WorkerModel(load_pipeline(settings.nlp, settings.path(settings.nlp.entities_path)),
                               load_model(settings, taxonomy))


def _tag_in_worker(items: Items) -> list[TagResult]:
    return _tag_with(_worker_app, items)
