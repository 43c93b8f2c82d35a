"""Has a dataset drifted? A reference sample compared with a current one, test by test.

Each numeric feature (NaN values dropped, feature by feature):

- the two-sample Kolmogorov–Smirnov test (``scipy.stats.ks_2samp``; Massey 1951, "The
  Kolmogorov–Smirnov test for goodness of fit", JASA 46), whose statistic D, the largest gap
  between the two empirical distribution functions, is also the effect size;
- the population stability index, ``PSI = Σ (c − r) · ln(c / r)`` over the shares r
  (reference) and c (current) of the values in ten bins cut at the reference's deciles, shares
  below 10⁻⁴ raised to 10⁻⁴ so empty bins stay finite (Siddiqi 2006, "Credit Risk Scorecards",
  ch. 8; Yurdakul 2018, "Statistical properties of the population stability index"). Written
  here in a few lines: no library the project uses has it. Tied deciles merge their bins, and
  values beyond the reference's range have a bin of their own on each side (so that a
  constant feature that moves, or a sample wholly outside the reference, shows).

The embeddings (rows with a non-finite value dropped):

- the squared maximum mean discrepancy, unbiased estimate (Gretton et al. 2012, "A kernel
  two-sample test", JMLR 13, eq. 3), with the Gaussian kernel ``exp(−‖x − y‖² / 2σ²)`` and σ
  the median distance between the points of both samples pooled (the median heuristic, ibid.
  section 8). Its p-value comes from a seeded permutation test, ``(1 + #{MMD²_perm ≥ MMD²})
  / (1 + P)``, every permutation evaluated at once as one matrix product. A side with more
  than :data:`MMD_MAX` points is subsampled (seeded) to that many. P is :data:`PERMUTATIONS`,
  raised where needed so the smallest p-value it can give, 1 / (1 + P), is half of the
  strictest corrected level (alpha over the number of tests).

Each categorical field (None counts as a category of its own, :data:`MISSING`):

- Pearson's chi-square test of homogeneity on the 2 × k table of counts
  (``scipy.stats.chi2_contingency``, no continuity correction), with Cramér's V
  (``scipy.stats.contingency.association``; Cramér 1946, "Mathematical Methods of Statistics",
  21.9) as the effect size. A single category on both sides is no drift (p = 1).

The verdict. The p-values of one comparison are adjusted together by Holm's step-down method
(Holm 1979, "A simple sequentially rejective multiple test procedure", Scand. J. Statist. 6),
which keeps the chance of any false alarm in a comparison below alpha, like Bonferroni, and
rejects at least as often. A test says ``drift`` when its adjusted p-value is below alpha and
its effect is at least small: D ≥ 0.1 and PSI ≥ 0.1 (below 0.1, the usual reading of PSI is "no
significant change") for a feature, V ≥ 0.1 for a categorical field (Cohen 1988, "Statistical
Power Analysis for the Behavioral Sciences", small effect), and for the embeddings an MMD²
above the permutation threshold at that corrected level (no fixed scale exists for MMD²).
A test with fewer than :data:`MIN_COUNT` values on a side is ``insufficient`` (its p-value is
None and it is left out of the correction); every other test is ``stable``. The comparison
drifts when any test does.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats
from scipy.stats.contingency import association

MIN_COUNT = 20
"""Fewer values than this on either side, and a test is ``insufficient``."""
SMALL_D = 0.1
SMALL_PSI = 0.1
SMALL_V = 0.1
"""The smallest effects that count as drift (Kolmogorov–Smirnov D, PSI, Cramér's V)."""
PSI_FLOOR = 1e-4
"""Bin shares below this count as this in the PSI (empty bins)."""
PERMUTATIONS = 200
MMD_MAX = 1000
"""Permutations of the MMD test (at least), and the most points a side of it keeps."""
MISSING = "(none)"
"""The category of a None value."""
EMBEDDING = "embedding"
"""The name of the embedding's test."""


@dataclass
class Sample:
    """One side of a comparison: numeric features by name (NaN where missing), the embeddings
    (n × d, possibly no rows) and categorical fields by name."""

    features: dict[str, np.ndarray] = field(default_factory=dict)
    embeddings: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    categories: dict[str, list[str | None]] = field(default_factory=dict)


@dataclass(frozen=True)
class Test:
    """One test of a comparison."""

    name: str
    """The feature, ``embedding``, or the categorical field."""
    kind: str
    """ks, mmd or chi2."""
    statistic: float
    """D, MMD² or χ² (NaN when a side has no values)."""
    p_value: float | None
    """Adjusted for every test of the comparison (Holm); None when ``insufficient``."""
    effect: float
    """D, MMD² or Cramér's V."""
    psi: float | None
    """The population stability index (features only)."""
    verdict: str
    """drift, stable or insufficient."""
    n_reference: int
    n_current: int

    def to_json(self) -> dict[str, Any]:
        return {"statistic": _plain(self.statistic), "p_value": _plain(self.p_value),
                "effect": _plain(self.effect), "psi": _plain(self.psi), "verdict": self.verdict,
                "kind": self.kind, "n_reference": self.n_reference,
                "n_current": self.n_current}  # fmt: skip


@dataclass(frozen=True)
class Comparison:
    """Every test of one comparison, and whether anything drifted."""

    drift: bool
    tests: list[Test]
    alpha: float

    def to_json(self) -> dict[str, Any]:
        return {"drift": self.drift, "alpha": self.alpha,
                "features": {t.name: t.to_json() for t in self.tests}}  # fmt: skip


@dataclass(frozen=True)
class _Raw:
    """A test before the correction: its raw p-value and whether its effect is large enough."""

    name: str
    kind: str
    statistic: float
    p_value: float | None
    effect: float
    psi: float | None
    large: bool
    n_reference: int
    n_current: int


def compare(reference: Sample, current: Sample, *, alpha: float = 0.05,
            seed: int = 0) -> Comparison:  # fmt: skip
    """Compare ``current`` with ``reference``: every numeric feature either side has, the
    embeddings (unless neither side has any) and every categorical field either side has."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie between 0 and 1, not {alpha}")
    numeric = _names(reference.features, current.features)
    categorical = _names(reference.categories, current.categories)
    if clash := set(numeric) & {*categorical, EMBEDDING}:
        raise ValueError(f"{', '.join(sorted(clash))}: both a numeric and another field")
    ref_emb, cur_emb = _rows(reference.embeddings), _rows(current.embeddings)
    has_embeddings = len(ref_emb) + len(cur_emb) > 0
    family = len(numeric) + len(categorical) + has_embeddings
    raw = [_ks(name, reference.features.get(name), current.features.get(name))
           for name in numeric]  # fmt: skip
    if has_embeddings:
        raw.append(_mmd(ref_emb, cur_emb, alpha / max(family, 1), seed))
    raw += [_chi2(name, reference.categories.get(name), current.categories.get(name))
            for name in categorical]  # fmt: skip
    adjusted = holm([r.p_value for r in raw if r.p_value is not None])
    tests = []
    for r in raw:
        p = None if r.p_value is None else adjusted.pop(0)
        verdict = ("insufficient" if p is None else
                   "drift" if p < alpha and r.large else "stable")  # fmt: skip
        tests.append(Test(r.name, r.kind, r.statistic, p, r.effect, r.psi, verdict,
                          r.n_reference, r.n_current))  # fmt: skip
    return Comparison(any(t.verdict == "drift" for t in tests), tests, alpha)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given."""
    order = np.argsort(p_values, kind="stable")
    k = len(order)
    adjusted = np.empty(k)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (k - rank) * float(p_values[index])))
        adjusted[index] = running
    return adjusted.tolist()


def psi(reference: np.ndarray, current: np.ndarray, bins: int = 10) -> float:
    """The population stability index of ``current`` against ``reference`` (finite values),
    in bins cut at the reference's quantiles (deciles by default), plus one bin each side for
    values beyond the reference's range."""
    low, high = reference.min(), reference.max()
    inner = np.unique(np.quantile(reference, np.arange(1, bins) / bins))
    shares = []
    for values in (reference, current):
        index = np.searchsorted(inner, values) + 1
        index[values < low], index[values > high] = 0, len(inner) + 2
        shares.append(np.bincount(index, minlength=len(inner) + 3) / len(values))
    r, c = (np.maximum(share, PSI_FLOOR) for share in shares)
    return float(np.sum((c - r) * np.log(c / r)))


def mmd2(x: np.ndarray, y: np.ndarray, permutations: int = PERMUTATIONS,
         seed: int = 0) -> tuple[float, float]:  # fmt: skip
    """The unbiased MMD² between the rows of ``x`` and ``y`` (Gaussian kernel, median-distance
    bandwidth) and its permutation p-value. Both need at least two rows."""
    m, n = len(x), len(y)
    pooled = np.concatenate([x, y]).astype(np.float64)
    norms = np.einsum("ij,ij->i", pooled, pooled)
    squared = np.maximum(norms[:, None] + norms[None, :] - 2 * pooled @ pooled.T, 0.0)
    upper = squared[np.triu_indices(m + n, 1)]
    bandwidth = float(np.median(upper))  # the median of the squared distances: σ² of the median
    if bandwidth <= 0:
        bandwidth = float(upper.mean()) or 1.0  # over half the pairs coincide
    kernel = np.exp(-squared / (2 * bandwidth))
    np.fill_diagonal(kernel, 0.0)
    rng = np.random.default_rng(seed)
    first = np.zeros(m + n)
    first[:m] = 1.0
    labels = np.vstack([first, rng.permuted(np.tile(first, (permutations, 1)), axis=1)])
    product = labels @ kernel
    xx = np.einsum("ij,ij->i", product, labels)  # Σ over pairs within the first group
    xy = product.sum(axis=1) - xx
    yy = kernel.sum() - 2 * product.sum(axis=1) + xx
    values = xx / (m * (m - 1)) + yy / (n * (n - 1)) - 2 * xy / (m * n)
    observed = float(values[0])
    exceeded = int(np.count_nonzero(values[1:] >= observed - 1e-12 * abs(observed)))
    return observed, (1 + exceeded) / (1 + permutations)


def _ks(name: str, reference: np.ndarray | None, current: np.ndarray | None) -> _Raw:
    ref, cur = _finite(reference), _finite(current)
    if min(len(ref), len(cur)) == 0:
        return _Raw(name, "ks", math.nan, None, math.nan, None, False, len(ref), len(cur))
    with warnings.catch_warnings(action="ignore", category=RuntimeWarning):
        found = stats.ks_2samp(ref, cur)  # where the exact p fails, scipy's asymptotic one
    d, shift = float(found.statistic), psi(ref, cur)
    p = float(found.pvalue) if min(len(ref), len(cur)) >= MIN_COUNT else None
    return _Raw(name, "ks", d, p, d, shift, d >= SMALL_D and shift >= SMALL_PSI,
                len(ref), len(cur))  # fmt: skip


def _mmd(reference: np.ndarray, current: np.ndarray, strictest: float, seed: int) -> _Raw:
    counts = len(reference), len(current)
    if min(counts) < MIN_COUNT:
        return _Raw(EMBEDDING, "mmd", math.nan, None, math.nan, None, False, *counts)
    if reference.shape[1] != current.shape[1]:
        raise ValueError(f"embeddings of {reference.shape[1]} and {current.shape[1]} dimensions")
    rng = np.random.default_rng(seed)
    x, y = (side[np.sort(rng.choice(len(side), MMD_MAX, replace=False))]
            if len(side) > MMD_MAX else side for side in (reference, current))  # fmt: skip
    permutations = max(PERMUTATIONS, math.ceil(2 / strictest) - 1)
    value, p = mmd2(x, y, permutations, seed)
    return _Raw(EMBEDDING, "mmd", value, p, value, None, True, *counts)


def _chi2(name: str, reference: Sequence[str | None] | None,
          current: Sequence[str | None] | None) -> _Raw:  # fmt: skip
    ref = [MISSING if v is None else str(v) for v in reference or ()]
    cur = [MISSING if v is None else str(v) for v in current or ()]
    if min(len(ref), len(cur)) < MIN_COUNT:
        return _Raw(name, "chi2", math.nan, None, math.nan, None, False, len(ref), len(cur))
    levels = sorted({*ref, *cur})
    if len(levels) < 2:
        return _Raw(name, "chi2", 0.0, 1.0, 0.0, None, False, len(ref), len(cur))
    index = {level: i for i, level in enumerate(levels)}
    table = np.array([np.bincount([index[v] for v in side], minlength=len(levels))
                      for side in (ref, cur)])  # fmt: skip
    found = stats.chi2_contingency(table, correction=False)
    v = float(association(table, method="cramer", correction=False))
    return _Raw(name, "chi2", float(found.statistic), float(found.pvalue), v, None, v >= SMALL_V,
                len(ref), len(cur))  # fmt: skip


def _names(*sides: Mapping[str, Any]) -> list[str]:
    """The keys of every side, in the order first seen."""
    return list(dict.fromkeys(name for side in sides for name in side))


def _finite(values: Iterable[float] | None) -> np.ndarray:
    array = np.asarray([] if values is None else values, dtype=np.float64).ravel()
    return array[np.isfinite(array)]


def _rows(embeddings: np.ndarray | None) -> np.ndarray:
    """The rows of ``embeddings`` with every value finite, as float64 (n × d)."""
    array = np.asarray(embeddings if embeddings is not None else (), dtype=np.float64)
    if array.size == 0:
        return np.zeros((0, array.shape[1] if array.ndim == 2 else 0))
    array = array.reshape(len(array), -1)
    return array[np.isfinite(array).all(axis=1)]


def _plain(value: float | None) -> float | None:
    """JSON has no NaN: None instead."""
    return None if value is None or not math.isfinite(value) else float(value)
