"""Training and evaluation images drawn from a dataset: the items a query selects (e.g. the
photographs reviewers approved, ``review = "approved"``), split once and for all into a
training part and a held-out part by their content hash, so that ``lab train`` never learns
from an image that ``lab eval`` scores, however the dataset grows."""

from __future__ import annotations

from dataclasses import dataclass

from pixelmill.config import Settings
from pixelmill.datasets import Store
from pixelmill.errors import UsageError

HOLDOUT = 0.2
"""Share of the selected items kept out of training, for evaluation."""


@dataclass(frozen=True)
class Split:
    """The images of a dataset query, as URIs: those to train on, and those held out."""

    train: tuple[str, ...]
    held_out: tuple[str, ...]


def split(ref: str, where: str, settings: Settings, holdout: float = HOLDOUT,
          owner: str = "") -> Split:  # fmt: skip
    """The items of the dataset view ``ref`` (``NAME`` or ``NAME@VERSION``) matching ``where``,
    split by content hash: an item is held out when its hash falls in the first ``holdout``
    of the range."""
    if not 0 <= holdout < 1:
        raise UsageError(f"holdout {holdout}: give a share from 0 up to (not including) 1")
    store = Store.of(settings)
    try:
        rows = list(store.rows(store.view(ref, owner), where))
    finally:
        store.close()
    if not rows:
        raise UsageError(f"dataset {ref}: no item matches {where!r}" if where
                         else f"dataset {ref} has no items")  # fmt: skip
    parts: tuple[list[str], list[str]] = ([], [])
    for row in rows:
        parts[held_out(row["sha256"], holdout)].append(row["uri"])
    return Split(tuple(parts[0]), tuple(parts[1]))


def held_out(sha256: str, holdout: float) -> bool:
    """Whether the item of this content hash belongs to the held-out part."""
    return int(sha256[:15], 16) < holdout * 16**15
