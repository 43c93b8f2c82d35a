"""Smart selection: the items most worth a human's time or a retraining.

- :func:`diverse`: k-centre greedy over embeddings (the core-set of Sener and Savarese, "Active
  Learning for Convolutional Neural Networks: A Core-Set Approach", ICLR 2018): each pick is the
  item farthest from every item picked (or already chosen) so far, so k picks cover the
  dataset's clusters, its rare corners included, instead of sampling its bulk;
- :func:`uncertain`: the items whose QC values lie nearest their gates' thresholds
  (:func:`margin`), where a gate's verdict could go either way;
- :func:`mixed`: half uncertain, the rest diverse away from those;
- :func:`disagreement`: how far two outputs of one item (a model's int8 and float variants,
  say) are apart, to be ranked as a margin.

Distances are Euclidean (on unit-norm embeddings, a monotone function of the cosine distance).
Rows that are all zeros or not finite are items without an embedding: :func:`diverse` picks them
only once every other item is picked.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np

from pixelmill.errors import UsageError
from pixelmill.pipeline.kinds import Gate, Gates
from pixelmill.quality.metrics import metrics

TAKEN = -1.0
"""Distance given to picked items so that they are never picked again."""
MISSING = -0.5
"""Distance given to items without an embedding: picked after every other item."""
ROWS = 1 << 16
"""Rows per chunk of the norms and of the distances to ``already``."""


def diverse(embeddings: np.ndarray, k: int, *, seed: int = 0,
            already: np.ndarray | None = None) -> list[int]:  # fmt: skip
    """Indices of ``k`` items of ``embeddings`` (n × d) picked by k-centre greedy, in the order
    picked; all of them when ``k >= n``.

    The first pick is the item farthest from ``already`` (embeddings chosen or labelled before,
    m × d), or, without them, an item drawn with ``seed``; each next pick is the item farthest
    from its nearest pick. Each pick updates the n nearest distances with one matrix-vector
    product (O(n·d) per pick, float32), so 100,000 × 64 takes well under a second for k = 100
    and 1,000,000 × 64 a few seconds; memory is the embeddings plus two n-vectors."""
    vectors = _vectors(embeddings)
    return _kcentre(vectors, k, np.random.default_rng(seed), already, ())


def uncertain(margins: np.ndarray, k: int) -> list[int]:
    """Indices of the (at most) ``k`` items nearest their gates' thresholds: smallest
    ``|margin|`` first, a failing item first between equals, then by index. Items without a
    margin (NaN: no QC value) are never picked."""
    values = np.asarray(margins, np.float64).ravel()
    known = np.flatnonzero(~np.isnan(values))
    if k <= 0 or not known.size:
        return []
    # lexsort: the last key is the primary one
    order = np.lexsort((known, values[known] >= 0, np.abs(values[known])))
    return known[order[:k]].tolist()


def mixed(embeddings: np.ndarray, margins: np.ndarray, k: int, *, seed: int = 0) -> list[int]:
    """``k`` items: the ``⌈k/2⌉`` most :func:`uncertain` (fewer when fewer have a margin), then
    :func:`diverse` picks away from them (and from each other) up to ``k``."""
    vectors = _vectors(embeddings)
    if len(margins) != len(vectors):
        raise UsageError(f"{len(margins)} margins for {len(vectors)} embeddings")
    first = uncertain(margins, (k + 1) // 2)
    rest = _kcentre(vectors, k - len(first), np.random.default_rng(seed),
                    vectors[first] if first else None, first)  # fmt: skip
    return first + rest


def margin(value: float, gate: str) -> float:
    """How far a QC ``value`` lies from the threshold of ``gate`` (e.g. ``ssim>=0.9``), relative
    to the threshold's magnitude: ``(value - t) / |t|`` for ``>=`` and ``>``, ``(t - value) /
    |t|`` for ``<=`` and ``<`` (``|t|`` taken as 1 for a threshold of 0). Positive on the
    passing side, negative on the failing side (0 exactly at a threshold, where a strict gate
    fails: read 0 as the most uncertain); NaN for a NaN value.

    Dividing by the threshold makes metrics of different units comparable: 0.1 is 10 % of the
    threshold away from it, whether ssim≥0.9 read 0.99, psnr≥35 read 38.5 dB or ciede2000≤2
    read 1.8. The gate is parsed by the pipeline grammar (:class:`~pixelmill.pipeline.kinds.
    Gates`), so its metric must be one that pixelmill knows (plugins included)."""
    found = _gate(gate)
    scale = abs(found.threshold) or 1.0
    distance = (float(value) - found.threshold) / scale
    return distance if found.op in (">=", ">") else -distance


def disagreement(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per item (row), how far two outputs' vectors ``a`` and ``b`` (n × d, or n values) are
    apart: the root mean square of their difference, each column divided by its spread (the
    interquartile range of both outputs pooled, else their standard deviation, else 1), so
    that columns of different units weigh alike. 0 when they agree; higher is more uncertain;
    NaN where either holds a NaN.

    To rank it with :func:`uncertain` (smallest margins first) or beside gate margins in
    :func:`mixed`, feed ``np.exp(-disagreement(a, b))`` as the margin: 1 when the outputs
    agree, towards 0 as they disagree, the order kept."""
    first, second = (np.asarray(x, np.float64) for x in (a, b))
    first, second = (x[:, None] if x.ndim == 1 else x for x in (first, second))
    if first.shape != second.shape or first.ndim != 2:
        raise UsageError(f"outputs of shapes {first.shape} and {second.shape}: they must match, "
                         "one row per item")  # fmt: skip
    if not first.size:
        return np.zeros(len(first))
    pooled = np.concatenate([first, second])
    quiet = warnings.catch_warnings(action="ignore", category=RuntimeWarning)
    with np.errstate(all="ignore"), quiet:
        low, high = np.nanpercentile(pooled, [25, 75], axis=0)
        spread = high - low
        spread = np.where(spread > 0, spread, np.nanstd(pooled, axis=0))
    spread = np.where(np.isfinite(spread) & (spread > 0), spread, 1.0)
    return np.sqrt(np.mean(((first - second) / spread) ** 2, axis=1))


@functools.lru_cache(maxsize=256)
def _gate(text: str) -> Gate:
    """The one gate of ``text``, by the pipeline grammar."""
    try:
        gates = Gates(metrics).parse(text)
    except ValueError as exc:
        raise UsageError(f"gate {text!r} {exc}") from None
    if len(gates) != 1:
        raise UsageError(f"gate {text!r} holds {len(gates)} conditions, not one")
    return gates[0]


def _vectors(embeddings: np.ndarray) -> np.ndarray:
    """The embeddings as a 2-D float32 array (copied only when not one already)."""
    vectors = np.asarray(embeddings, np.float32)
    if vectors.ndim != 2:
        raise UsageError(f"embeddings must be n × d, not of shape {vectors.shape}")
    return vectors


def _kcentre(vectors: np.ndarray, k: int, rng: np.random.Generator,
             already: np.ndarray | None, taken: list[int] | tuple[int, ...]) -> list[int]:  # fmt: skip
    """k-centre greedy picks among the rows of ``vectors`` not in ``taken``."""
    n = len(vectors)
    k = min(k, n - len(set(taken)))
    if k <= 0:
        return []
    norms = np.empty(n, np.float32)
    missing = np.zeros(n, bool)
    for start in range(0, n, ROWS):
        chunk = vectors[start : start + ROWS]
        norms[start : start + ROWS] = np.einsum("ij,ij->i", chunk, chunk)
        missing[start : start + ROWS] = ~np.isfinite(chunk).all(axis=1)
    missing |= norms == 0
    nearest = np.full(n, np.inf, np.float32)  # squared distance to the nearest centre
    if already is not None and len(already):
        centres = _vectors(already)
        if centres.shape[1] != vectors.shape[1]:
            raise UsageError(f"already-chosen embeddings of width {centres.shape[1]}, not "
                             f"{vectors.shape[1]}")  # fmt: skip
        centres = centres[np.isfinite(centres).all(axis=1) & (np.abs(centres).sum(axis=1) > 0)]
        if len(centres):
            from sklearn.metrics import pairwise_distances_argmin_min

            finite = vectors if not missing.any() else np.where(missing[:, None], 0, vectors)
            _, distance = pairwise_distances_argmin_min(finite, centres)
            nearest = distance.astype(np.float32) ** 2
    holes = np.flatnonzero(missing)
    nearest[holes] = MISSING
    nearest[list(taken)] = TAKEN
    picked: list[int] = []
    if np.isinf(nearest).any():  # nothing to be far from yet
        candidates = np.flatnonzero(np.isinf(nearest))
        picked.append(int(candidates[rng.integers(len(candidates))]))
        _update(vectors, norms, nearest, picked[-1], holes)
    while len(picked) < k:
        picked.append(int(np.argmax(nearest)))
        _update(vectors, norms, nearest, picked[-1], holes)
    return picked


def _update(vectors: np.ndarray, norms: np.ndarray, nearest: np.ndarray, centre: int,
            holes: np.ndarray) -> None:  # fmt: skip
    """Lower ``nearest`` (in place) to the squared distance to the new ``centre``, and mark the
    centre taken."""
    if nearest[centre] == MISSING:
        nearest[centre] = TAKEN
        return
    # einsum's own loop: a BLAS matrix-vector product this small (memory-bound) gains nothing
    # from threads and loses much when the cores are busy
    distance = np.einsum("ij,j->i", vectors, vectors[centre])
    distance *= -2
    distance += norms
    distance += norms[centre]
    np.maximum(distance, 0, out=distance)
    np.minimum(nearest, distance, out=nearest)
    nearest[holes] = MISSING  # rows of NaN gave NaN
    nearest[centre] = TAKEN
