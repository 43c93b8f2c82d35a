"""How much a queue's reviewers agree beyond chance: Cohen's kappa over the first two verdicts of
each item (scikit-learn's ``cohen_kappa_score``) and Fleiss' kappa over all of them, for the
verdict (approve or reject) and for each label (ticked or not).

Fleiss' kappa is written here (a dozen lines, after Fleiss 1971): scikit-learn has only
Cohen's, and statsmodels, which has it, is not worth a dependency for it. Items judged by fewer
than two people say nothing of agreement and are left out; with fewer than two such items, or
when chance alone would explain every verdict (a single category throughout), kappa is
undefined: None.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

DECIDING = ("approved", "rejected")
Rating = tuple[str, frozenset[str]]
"""One reviewer's verdict on an item and the labels she ticked."""


def cohen(pairs: Sequence[tuple[str, str]]) -> float | None:
    """Cohen's kappa of two raters' categories over items (None where undefined)."""
    if len(pairs) < 2:
        return None
    from sklearn.metrics import cohen_kappa_score

    first, second = zip(*pairs, strict=True)
    if len(set(first) | set(second)) < 2:
        return None
    value = float(cohen_kappa_score(first, second))
    return None if math.isnan(value) else value


def fleiss(ratings: Sequence[Sequence[str]], categories: Sequence[str]) -> float | None:
    """Fleiss' kappa of items each rated into ``categories`` by the same number of raters, at
    least two (None where undefined)."""
    if len(ratings) < 2:
        return None
    raters = len(ratings[0])
    if raters < 2 or any(len(r) != raters for r in ratings):
        raise ValueError("Fleiss' kappa needs the same number (two or more) of ratings per item")
    index = {category: i for i, category in enumerate(categories)}
    counts = np.zeros((len(ratings), len(categories)))
    for row, rated in enumerate(ratings):
        for category in rated:
            counts[row, index[category]] += 1
    shares = counts.sum(axis=0) / counts.sum()
    expected = float(np.sum(shares**2))
    if expected >= 1.0:
        return None
    observed = float(np.mean((np.sum(counts**2, axis=1) - raters) / (raters * (raters - 1))))
    return (observed - expected) / (1 - expected)


def summarise(items: Sequence[Sequence[Rating]], labels: Sequence[str]) -> dict[str, Any]:
    """The agreement over items (each its ratings, oldest first): ``{"items": n, "kappa":
    {"cohen", "fleiss"}, "labels": {label: {"cohen", "fleiss"}}}``. Fleiss' kappa takes the
    items with the most common number of ratings (it needs the same number for each)."""
    rated = [ratings for ratings in items if len(ratings) >= 2]
    counts = [len(ratings) for ratings in rated]
    common = max(set(counts), key=lambda n: (counts.count(n), -n)) if counts else 0
    even = [ratings for ratings in rated if len(ratings) == common]

    def kappas(category: Any, choices: Sequence[Any]) -> dict[str, float | None]:
        return {"cohen": cohen([(category(r[0]), category(r[1])) for r in rated]),
                "fleiss": fleiss([[category(x) for x in r] for r in even], choices)}  # fmt: skip

    per_label = {label: kappas(lambda rating, label=label: str(label in rating[1]),
                               ("True", "False")) for label in labels}  # fmt: skip
    return {"items": len(rated), "kappa": kappas(lambda rating: rating[0], DECIDING),
            "labels": per_label}
