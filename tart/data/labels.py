"""Labelled texts, and the canonical order of labels that every method's `classes_` follows."""
from __future__ import annotations

from dataclasses import dataclass


def sorted_labels(labels) -> list:
    """The distinct labels in their canonical order, the one every method's `classes_` follows: sorted by
    type name first, so mixed types still sort (1 before "a"); where even that cannot order them (tuples
    holding unorderable values), in order of first appearance."""
    distinct = list(dict.fromkeys(labels))
    try:
        return sorted(distinct, key=lambda v: (type(v).__name__, v))
    except TypeError:
        return distinct


@dataclass
class LabelledTexts:
    """Texts and their labels, aligned by position."""

    name: str
    texts: list[str]
    labels: list

    def __post_init__(self):
        if len(self.texts) != len(self.labels):
            raise ValueError(f"{self.name}: {len(self.texts)} texts but {len(self.labels)} labels")

    @property
    def classes(self) -> list:
        """The distinct labels, sorted (`sorted_labels`)."""
        return sorted_labels(self.labels)

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, indices) -> "LabelledTexts":
        return LabelledTexts(self.name, [self.texts[i] for i in indices],
                             [self.labels[i] for i in indices])
