"""Build the shared objects once (engine, taxonomy, spaCy, classifier) from Settings.

Heavy imports happen inside the properties, so `--help` and `config show` stay fast
and a command only pays for what it uses.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from monitor.settings import Settings
from monitor.taxonomy import Taxonomy, load_taxonomy

if TYPE_CHECKING:
    from spacy.language import Language
    from sqlalchemy import Engine

    from monitor.classify import Classifier


class App:
    def __init__(self, settings: Settings):
        self.settings = settings

    @cached_property
    def engine(self) -> Engine:
        from monitor.storage.engine import open_store

        return open_store(self.settings.database_url, echo=self.settings.storage.echo_sql)

    @cached_property
    def taxonomy(self) -> Taxonomy:
        return load_taxonomy(self.settings.path(self.settings.model.taxonomy_path))

    @cached_property
    def nlp(self) -> Language:
        from monitor.entities import load_pipeline

        return load_pipeline(self.settings.nlp, self.settings.path(self.settings.nlp.entities_path))

    @cached_property
    def classifier(self) -> Classifier:
        """The saved classifier; trained now (and saved) when none exists and
        model.auto_train is on."""
        import logging

        from monitor.classify import artefact_paths, load_model

        artefact, card = artefact_paths(self.settings)
        if not (artefact.exists() and card.exists()) and self.settings.model.auto_train:
            from monitor import training

            logging.getLogger(__name__).warning("no model artefact found; training one now...")
            training.train(self.settings, self.taxonomy, nlp=self.nlp, engine_factory=lambda: self.engine)
        return load_model(self.settings, self.taxonomy)

    def close(self) -> None:
        if "engine" in self.__dict__:
            self.engine.dispose()
