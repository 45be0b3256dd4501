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
        from monitor.classify import load_or_train

        return load_or_train(self.settings, self.taxonomy, engine_factory=lambda: self.engine)

    def close(self) -> None:
        if "engine" in self.__dict__:
            self.engine.dispose()
