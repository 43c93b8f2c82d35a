"""Anomalies: the items of a dataset that stand out from the rest, ranked, each with the few
reasons that make it stand out.

How an item is scored:

1. Each feature is put on a robust scale: its values (on a log scale for the ratio-scale
   features of :data:`SCALES`) less their median, over their spread, the interquartile range
   in standard deviations of a normal distribution (or, where over half the items share one
   value, the 10–90 %, 5–95 % or 1–99 % range), never under the feature's smallest meaningful
   spread. Over photographs, sharpness and noise span orders of magnitude (skewness 3 and 1.8
   on a linear scale, near 0 on a log one), and the low ends of contrast and colourfulness are
   distinct failures (a blank frame, a grey scan) that a linear scale packs beside ordinary
   dull images, so those four, the blockiness ratio, the clipped shares and the aspect ratio
   are compared on a log scale. A missing value (None, NaN, or one a log cannot take) is the
   median (a z of 0); a feature that does not vary is left out. Robust z-scores beyond
   ±:data:`CAP` count as ±CAP, so one extreme feature cannot drown the others.
2. The embedding (reduced to :data:`WIDE` principal components when wider) is scaled as one
   block so that its typical nearest-neighbour distance equals that of the features: the two
   weigh alike. A missing embedding (all zeros, or not finite) is that of the item nearest in
   features, so that it neither adds to the item's distance nor hides it.
3. The score is the mean distance to the :data:`NEIGHBOURS` nearest other items in the joined
   space (k-nearest-neighbour distance). On more than :data:`REFERENCE` items, the neighbours
   are looked for among a sample of that many (drawn with ``seed``), so time grows linearly.

Why k-nearest neighbours and not an isolation forest: on ``benchmarks/bench_anomalies.py``
(490 photographs, 10 oddities of five kinds, five seeds) the kNN distance put 8 to 10 oddities
in the top 10 (mean precision 0.84), a seeded isolation forest (300 trees) 5 to 7 in the same
space (0.64; 0.72 on the features alone). A dataset of photographs holds legitimate small
clusters (a night sky, a bright studio background) that a forest isolates in a few random
cuts, while a kNN distance stays small for any item with :data:`NEIGHBOURS` look-alikes; and
the forest's cuts, uniform over each feature's range, are spent on the long tails. The
embedding adds a little there (0.82 on the features alone, the blurred oddities a rank or two
higher) and carries what the features cannot see, the content, which counts more with a
model's embedding; on its own the built-in embedding reaches 0.36.

With fewer than :data:`MIN_ITEMS` items no neighbourhood means anything: the score is then
the largest robust z-score alone (of the features, and of the embedding's distance to the
median embedding), still a ranking, with reasons.

Each item's reasons are its features furthest from the median, and "embedding" when its
nearest-neighbour distance in the embedding alone is high, those of robust z at least
:data:`STANDS_OUT` (at most :data:`REASONS`, the furthest one at least), e.g. ``sharpness 1.7
(p0.1, robust z -3.3)``: the value, its percentile among the items, its robust z.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from pixelmill.errors import UsageError

SCALES: dict[str, tuple[float | None, float]] = {
    "mean_luma": (None, 0.02),
    "contrast": (0.005, 0.05),
    "colourfulness": (1.0, 0.05),
    "sharpness": (1.0, 0.1),
    "noise": (0.1, 0.1),
    "blockiness": (0.0, 0.01),
    "jpeg_quality": (None, 2.0),
    "clipped_black": (0.01, 0.25),
    "clipped_white": (0.01, 0.25),
    "entropy": (None, 0.05),
    "aspect": (0.0, 0.01),
}
"""Per feature: the offset added before taking the log (None: a linear scale), about the
feature's resolution; and the smallest spread (in those units) its robust scale may have, the
smallest difference that matters: 2 % of mean luma, 5 % of contrast, 10 % of sharpness, two
JPEG quality steps, a 28 % change of a clipped share (over 1 % of the image), and so on.
Features not named here are taken on a linear scale."""
SPREADS = ((25, 75, 1.349), (10, 90, 2.563), (5, 95, 3.290), (1, 99, 4.653))
"""Quantile ranges tried in turn for a feature's spread, each with its width in standard
deviations of a normal distribution."""
CAP = 6.0
"""Robust z-scores beyond ±CAP count as ±CAP in the score (4 to 6 did best on the benchmark)."""
NEIGHBOURS = 10
"""Neighbours whose mean distance is the score."""
WIDE = 32
"""Embeddings wider than this are reduced to this many principal components."""
REFERENCE = 10_000
"""Items the neighbours are looked for among (a seeded sample of larger datasets)."""
CHUNK = 1 << 16
"""Items whose neighbours are looked up together."""
MIN_ITEMS = 10
"""Fewer items are ranked by their robust z-scores alone."""
REASONS = 3
"""Reasons given at most per item."""
STANDS_OUT = 2.0
"""Robust z from which a feature (or the embedding) is a reason."""
EMBEDDING = "embedding"


@dataclass(frozen=True)
class Anomaly:
    """One item's place in the ranking."""

    index: int
    """Its row in the input."""
    score: float
    """How much it stands out (higher: more), comparable within one ranking only."""
    reasons: list[str]


def rank(features: dict[str, np.ndarray], embeddings: np.ndarray, *, top: int | None = None,
         seed: int = 0) -> list[Anomaly]:  # fmt: skip
    """The items (rows of ``features``' arrays and of ``embeddings``, n × d) ranked most
    anomalous first, the first ``top`` of them (all when None); see the module docstring."""
    n = _count(features, embeddings)
    if not n:
        return []
    rng = np.random.default_rng(seed)
    names, values, z = _scaled(features, n)
    vectors = _reduced(embeddings, n, seed, np.clip(z, -CAP, CAP))
    if n < MIN_ITEMS:
        spread = _spread_z(np.linalg.norm(vectors - np.median(vectors, axis=0), axis=1))
        parts = [np.abs(np.clip(z, -CAP, CAP)), np.clip(spread, 0, CAP)[:, None]]
        scores = np.concatenate(parts, axis=1).max(axis=1, initial=0.0)
        order = _order(scores, top)
    else:
        reference = np.sort(rng.choice(n, REFERENCE, replace=False)) if n > REFERENCE \
            else np.arange(n)  # fmt: skip
        block = np.clip(z, -CAP, CAP)
        own = _neighbours(vectors, reference, reference)  # the embedding's alone, in the sample
        typical, middle = np.median(_neighbours(block, reference, reference)), np.median(own)
        weight = typical / middle if typical > 0 and middle > 0 else 1.0
        scores = _neighbours(np.concatenate([block, vectors * weight], axis=1), reference)
        order = _order(scores, top)
        spread = np.zeros(n)  # the embedding's robust z, for the items shown
        scale = _scale(own)
        if scale is not None:
            spread[order] = (_neighbours(vectors, reference, order) - scale[0]) / scale[1]
    return [Anomaly(int(i), float(scores[i]), _reasons(i, names, values, z, spread))
            for i in order]  # fmt: skip


def _order(scores: np.ndarray, top: int | None) -> np.ndarray:
    """Indices by decreasing score (ties by index), the first ``top``."""
    order = np.argsort(-scores, kind="stable")
    return order if top is None else order[: max(top, 0)]


def _count(features: dict[str, np.ndarray], embeddings: np.ndarray) -> int:
    """The number of items, after checking that every input holds one row per item."""
    lengths = {name: len(np.asarray(values).reshape(-1)) for name, values in features.items()}
    shape = np.shape(embeddings)
    if len(shape) == 2 or (len(shape) == 1 and shape[0]):
        lengths[EMBEDDING + "s"] = shape[0]
    if len(set(lengths.values())) > 1:
        raise UsageError("features and embeddings must hold one row per item, not "
                         + ", ".join(f"{name} {length}" for name, length in lengths.items()))  # fmt: skip
    return next(iter(lengths.values()), 0)


def _scaled(features: dict[str, np.ndarray], n: int) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The features that vary: names, values (n × f, NaN where missing) and robust z-scores
    (0 where missing)."""
    names, values, scores = [], [], []
    for name, column in features.items():
        raw = np.asarray(column, np.float64).ravel()  # None reads as NaN
        offset, floor = SCALES.get(name, (None, 0.0))
        scaled = raw
        if offset is not None:
            with np.errstate(all="ignore"):
                scaled = np.log(raw + offset)
        scaled = np.where(np.isfinite(scaled), scaled, np.nan)
        z = _robust_z(scaled, floor)
        if z is not None:
            names.append(name)
            values.append(np.where(np.isnan(scaled), np.nan, raw))
            scores.append(np.nan_to_num(z, nan=0.0))
    if not names:
        return [], np.zeros((n, 0)), np.zeros((n, 0))
    return names, np.stack(values, axis=1), np.stack(scores, axis=1)


def _robust_z(values: np.ndarray, floor: float = 0.0) -> np.ndarray | None:
    """(values − median) / spread, NaN kept; None when the values do not vary."""
    found = _scale(values, floor)
    return None if found is None else (values - found[0]) / found[1]


def _scale(values: np.ndarray, floor: float = 0.0) -> tuple[float, float] | None:
    """The median and the spread of the values that are not NaN; None when they do not
    vary."""
    known = values[~np.isnan(values)]
    if known.size < 2:
        return None
    median = float(np.median(known))
    for low, high, width in SPREADS:
        lo, hi = np.percentile(known, [low, high])
        if hi - lo > 1e-12 * max(1.0, abs(median)):
            return median, max(float(hi - lo) / width, floor)
    return None


def _spread_z(distances: np.ndarray) -> np.ndarray:
    """Robust z-scores of distances (0 when they do not vary)."""
    z = _robust_z(distances)
    return np.zeros(len(distances)) if z is None else z


def _reduced(embeddings: np.ndarray, n: int, seed: int, like: np.ndarray) -> np.ndarray:
    """The embeddings (n × d, or none), reduced to :data:`WIDE` principal components when
    wider; a missing one is that of the item nearest in ``like`` (the features), or the median
    without features."""
    vectors = np.asarray(embeddings)
    if vectors.ndim != 2 or not vectors.shape[1] or not n:
        return np.zeros((n, 0))
    vectors = vectors if np.issubdtype(vectors.dtype, np.floating) else vectors.astype(float)
    present = np.isfinite(vectors).all(axis=1) & (np.abs(vectors).sum(axis=1) > 0)
    rows = np.flatnonzero(present)
    if len(rows) < 2:
        return np.zeros((n, 0))
    if vectors.shape[1] > WIDE and len(rows) > WIDE:
        from sklearn.decomposition import PCA

        fitted = PCA(WIDE, random_state=seed).fit(vectors[rows[:: max(1, len(rows) // REFERENCE)]])
        reduced = np.zeros((n, WIDE), vectors.dtype)
        reduced[rows] = fitted.transform(vectors[rows])
        vectors = reduced
    if len(rows) == n:
        return vectors
    vectors, holes = vectors.copy(), np.flatnonzero(~present)
    if like.shape[1]:
        from sklearn.neighbors import NearestNeighbors

        _, nearest = NearestNeighbors(n_neighbors=1).fit(like[rows]).kneighbors(like[holes])
        vectors[holes] = vectors[rows[nearest[:, 0]]]
    else:
        vectors[holes] = np.median(vectors[rows], axis=0)
    return vectors


def _neighbours(points: np.ndarray, reference: np.ndarray,
                rows: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
    """The mean distance of each point (of ``rows``, or all) to its :data:`NEIGHBOURS` nearest
    points among ``points[reference]``, itself left out."""
    rows = np.arange(len(points)) if rows is None else np.asarray(rows)
    k = min(NEIGHBOURS, len(reference) - 1)
    if k < 1 or not points.shape[1]:
        return np.zeros(len(rows))
    from sklearn.neighbors import NearestNeighbors

    index = NearestNeighbors(n_neighbors=k + 1).fit(points[reference])
    member = np.zeros(len(points), bool)
    member[reference] = True
    found = np.empty(len(rows))
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start : start + CHUNK]
        distances, _ = index.kneighbors(points[chunk])
        # a member's nearest is itself (or a duplicate, alike at distance 0): drop it; the
        # others drop their farthest
        kept = np.where(member[chunk, None], distances[:, 1:], distances[:, :-1])
        found[start : start + CHUNK] = kept.mean(axis=1)
    return found


def _reasons(item: int, names: list[str], values: np.ndarray, z: np.ndarray,
             embedding: np.ndarray | None) -> list[str]:  # fmt: skip
    """What makes ``item`` stand out, furthest first."""
    found = [(abs(z[item, j]), _described(name, values[:, j], values[item, j], z[item, j]))
             for j, name in enumerate(names) if not np.isnan(values[item, j])]  # fmt: skip
    if embedding is not None and embedding[item] > 0:
        found.append((embedding[item], _described(EMBEDDING, None, None, embedding[item])))
    found.sort(key=lambda pair: -pair[0])
    kept = [text for score, text in found if score >= STANDS_OUT][:REASONS]
    return kept or [text for _, text in found[:1]]


def _described(name: str, column: np.ndarray | None, value: float | None, z: float) -> str:
    """``name value (pP, robust z Z)``; for the embedding, its robust z alone."""
    if column is None or value is None:
        return f"{name} (far from the others, robust z {z:+.1f})"
    known = np.sort(column[~np.isnan(column)])
    below = np.searchsorted(known, value, "left")
    equal = np.searchsorted(known, value, "right") - below
    percentile = 100 * (below + equal / 2) / len(known)
    shown = "<0.1" if percentile < 0.1 else ">99.9" if percentile > 99.9 else f"{percentile:.3g}"
    return f"{name} {_number(value)} (p{shown}, robust z {z:+.1f})"


def _number(value: float) -> str:
    """A value in few digits: 0.0042, 0.3, 12.5, 2,496."""
    with warnings.catch_warnings(action="ignore"):
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"
