"""The tension model as data: the 13 fixed label ids with kind, name and description."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from monitor.errors import ConfigError
from monitor.textio import read_toml

FRICTION_POINT = "friction_point"
SCENARIO = "scenario"

# The ids are a contract with shared/tension-model.md: the file may rename and
# describe them, never add, drop or rename an id.
LABEL_IDS: tuple[str, ...] = (
    "control",
    "commercialization",
    "talent",
    "legal",
    "cloud",
    "agi_safety",
    "competition",
    "regulation",
    "investors",
    "uneasy_alliance",
    "acquisition",
    "divergence",
    "new_ecosystem",
)


@dataclass(frozen=True)
class Label:
    id: str
    kind: str  # friction_point | scenario
    name: str
    description: str


@dataclass(frozen=True)
class Taxonomy:
    labels: tuple[Label, ...]

    @property
    def ids(self) -> list[str]:
        return [label.id for label in self.labels]

    @property
    def friction_points(self) -> list[Label]:
        return [label for label in self.labels if label.kind == FRICTION_POINT]

    @property
    def scenarios(self) -> list[Label]:
        return [label for label in self.labels if label.kind == SCENARIO]

    def get(self, label_id: str) -> Label:
        for label in self.labels:
            if label.id == label_id:
                return label
        raise KeyError(label_id)

    def __contains__(self, label_id: object) -> bool:
        return any(label.id == label_id for label in self.labels)


def load_taxonomy(path: Path) -> Taxonomy:
    raw = read_toml(path, "taxonomy file not found (model.taxonomy_path)")
    labels = []
    for index, entry in enumerate(raw.get("labels", [])):
        try:
            label = Label(entry["id"], entry["kind"], entry["name"], entry.get("description", ""))
        except KeyError as exc:
            raise ConfigError(f"{path}: labels.{index}: missing key {exc.args[0]}") from None
        if label.kind not in (FRICTION_POINT, SCENARIO):
            raise ConfigError(f"{path}: labels.{index}.kind: must be friction_point or scenario")
        labels.append(label)
    ids = [label.id for label in labels]
    if sorted(ids) != sorted(LABEL_IDS):
        missing = sorted(set(LABEL_IDS) - set(ids))
        unknown = sorted(set(ids) - set(LABEL_IDS))
        raise ConfigError(f"{path}: labels: ids must be the 13 fixed ids (missing {missing}, unknown {unknown})")
    return Taxonomy(tuple(labels))
