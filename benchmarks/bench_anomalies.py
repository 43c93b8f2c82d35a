"""Anomaly ranking on real photographs with 2 % injected oddities, and the speed of k-centre
greedy selection.

Each seed makes a set of ``--photos`` photographs (``collection.photos``, 512 × 512) and
``--per-kind`` oddities of each kind below, writes every picture as a JPEG (quality 90) to a
temporary folder, analyses it with the dataset pipeline (``pixelmill.datasets.analyse``: the
features and the built-in embedding an ingest stores) and ranks the items with
``pixelmill.datasets.anomalies.rank``. Precision at K is the share of oddities among the K
items ranked first, K being the number of oddities injected.

The oddities, each made from a photograph of its own (drawn with another seed):

- ``blank``: one flat colour (each channel uniform on 0..255) with Gaussian grain of σ 2
  levels: a lens-cap frame, an empty page;
- ``blur``: a photograph under a Gaussian blur of σ 12 pixels (2.3 % of the side);
- ``noise``: a photograph with Gaussian noise of σ 50 levels in each channel, clipped;
- ``screenshot``: a screenshot-like graphic (``collection.graphics``);
- ``scan``: a photograph rotated 90° clockwise, reduced to luma, its 2nd..98th percentiles
  stretched to 0..255 (a photocopy's contrast), written as a one-band grey JPEG.

Then ``select.diverse`` picks k = 100 of n = 100,000 random unit vectors of 64 float32 (the
built-in embedding's width), timed.

    python benchmarks/bench_anomalies.py                 # 490 photos + 10 oddities, 5 seeds
    python benchmarks/bench_anomalies.py --quick         # 1 seed, 196 photos + 5 oddities
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import collection
import numpy as np
import pyvips
import recording

from pixelmill import storage
from pixelmill.config import Settings
from pixelmill.datasets import anomalies, embed, select
from pixelmill.datasets.analyse import analyse
from pixelmill.datasets.fields import FEATURES

HERE = Path(__file__).resolve().parent
KINDS = ("blank", "blur", "noise", "screenshot", "scan")
QUALITY = 90
SIDE = 512


def oddity(kind: str, photo: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One oddity of ``kind`` made from ``photo`` (uint8, side × side × 3); see the docstring."""
    side = photo.shape[0]
    if kind == "blank":
        flat = np.broadcast_to(rng.integers(0, 256, 3), (side, side, 3))
        return np.clip(flat + rng.normal(0, 2, (side, side, 3)), 0, 255).astype(np.uint8)
    if kind == "blur":
        image = pyvips.Image.new_from_array(photo, interpretation="srgb")
        return image.gaussblur(12).cast("uchar").numpy()
    if kind == "noise":
        return np.clip(photo + rng.normal(0, 50, photo.shape), 0, 255).astype(np.uint8)
    if kind == "screenshot":
        return collection.graphics(1, side, seed=int(rng.integers(2**31)))[0]
    if kind == "scan":
        luma = np.rot90(photo, k=-1) @ np.array([0.299, 0.587, 0.114])
        low, high = np.percentile(luma, [2, 98])
        return np.clip((luma - low) * 255 / max(high - low, 1), 0, 255).astype(np.uint8)
    raise ValueError(kind)


def pictures(n_photos: int, per_kind: int, seed: int) -> tuple[list[np.ndarray], list[str]]:
    """The photographs and the oddities, shuffled, with the kind of each ("photo" or one of
    :data:`KINDS`)."""
    rng = np.random.default_rng(seed)
    images = collection.photos(n_photos, SIDE, seed=seed)
    kinds = ["photo"] * n_photos
    bases = collection.photos(per_kind * len(KINDS), SIDE, seed=seed + 10_000)
    for i, kind in enumerate(k for k in KINDS for _ in range(per_kind)):
        images.append(oddity(kind, bases[i], rng))
        kinds.append(kind)
    order = rng.permutation(len(images))
    return [images[i] for i in order], [kinds[i] for i in order]


def analysed(images: list[np.ndarray], settings: Settings) -> tuple[dict[str, np.ndarray],
                                                                    np.ndarray]:  # fmt: skip
    """Features and embeddings of each picture written as a JPEG and analysed."""
    embedder = embed.embedder(None, settings)
    rows, vectors = [], []
    with tempfile.TemporaryDirectory() as folder:
        for i, array in enumerate(images):
            path = Path(folder) / f"{i:05d}.jpg"
            interpretation = "b-w" if array.ndim == 2 else "srgb"
            image = pyvips.Image.new_from_array(array, interpretation=interpretation)
            image.jpegsave(str(path), Q=QUALITY)
            found = analyse(storage.locate(str(path)), settings, embedder)
            rows.append(found.fields)
            vectors.append(found.embedding)
    features = {name: np.array([np.nan if r[name] is None else r[name] for r in rows], float)
                for name in FEATURES}  # fmt: skip
    return features, np.stack(vectors)


def cached(n_photos: int, per_kind: int, seed: int, settings: Settings,
           refresh: bool) -> tuple[dict[str, np.ndarray], np.ndarray, list[str]]:  # fmt: skip
    """:func:`analysed` pictures of a seed, kept in ``benchmarks/work/`` for the next run."""
    path = HERE / "work" / f"anomalies-{n_photos}-{per_kind}-{seed}.npz"
    if path.exists() and not refresh:
        stored = np.load(path)
        features = {name: stored[f"feature_{name}"] for name in FEATURES}
        return features, stored["embeddings"], [str(k) for k in stored["kinds"]]
    images, kinds = pictures(n_photos, per_kind, seed)
    features, embeddings = analysed(images, settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, embeddings=embeddings, kinds=np.array(kinds),
             **{f"feature_{name}": values for name, values in features.items()})  # fmt: skip
    return features, embeddings, kinds


def timed_diverse(n: int, k: int, dim: int = 64, repeat: int = 3) -> dict[str, float]:
    """Seconds of ``select.diverse`` picking ``k`` of ``n`` random unit vectors (median)."""
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(n, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        picked = select.diverse(vectors, k)
        runs.append(time.perf_counter() - start)
        assert len(set(picked)) == k
    return {"n": n, "k": k, "dim": dim, "seconds": statistics.median(runs), "runs": runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=490)
    parser.add_argument("--per-kind", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="1 seed, 196 photos, 1 per kind")
    parser.add_argument("--refresh", action="store_true", help="analyse again, not from cache")
    args = parser.parse_args()
    if args.quick:
        args.photos, args.per_kind, args.seeds = 196, 1, 1
    settings = Settings.load()
    rows, missed = [], Counter()
    for seed in range(args.seeds):
        began = time.perf_counter()
        features, embeddings, kinds = cached(args.photos, args.per_kind, seed, settings,
                                             args.refresh)  # fmt: skip
        analysed_s = time.perf_counter() - began
        k = args.per_kind * len(KINDS)
        began = time.perf_counter()
        ranked = anomalies.rank(features, embeddings, seed=seed)
        rank_s = time.perf_counter() - began
        top = [kinds[a.index] for a in ranked[:k]]
        caught = Counter(kind for kind in top if kind != "photo")
        misses = {kind: args.per_kind - caught[kind] for kind in KINDS
                  if caught[kind] < args.per_kind}  # fmt: skip
        missed.update(misses)
        positions = {kind: sorted(i + 1 for i, a in enumerate(ranked) if kinds[a.index] == kind)
                     for kind in KINDS}  # fmt: skip
        rows.append({"seed": seed, "items": len(kinds), "k": k,
                     "precision_at_k": sum(kind != "photo" for kind in top) / k,
                     "missed": misses, "ranks": positions,
                     "top_reasons": [{"kind": kinds[a.index], "score": round(a.score, 4),
                                      "reasons": a.reasons} for a in ranked[:k + 3]],
                     "analyse_seconds": round(analysed_s, 2),
                     "rank_seconds": round(rank_s, 3)})  # fmt: skip
        print(f"seed {seed}: precision@{k} {rows[-1]['precision_at_k']:.2f}, ranks {positions}",
              file=sys.stderr, flush=True)  # fmt: skip
    speed = timed_diverse(100_000, 100)
    mean = statistics.mean(r["precision_at_k"] for r in rows)
    by_kind = {kind: {"injected": args.per_kind * len(rows),
                      "caught": args.per_kind * len(rows) - missed[kind],
                      "ranks": [rank for r in rows for rank in r["ranks"][kind]]}
               for kind in KINDS}  # fmt: skip
    figures = {"photos": collection.describe(), "n_photos": args.photos,
               "per_kind": args.per_kind, "seeds": rows, "mean_precision_at_k": mean,
               "missed": dict(missed), "by_kind": by_kind, "diverse": speed}  # fmt: skip
    target = HERE / ("work/anomalies-quick.json" if args.quick else "results/anomalies.json")
    recording.save(target, figures, numpy=np.__version__)
    print(recording.table(
        ["seed", "missed (outside the top K)", "items", "K", "precision@K", "rank s"],
        [[r["seed"], ", ".join(f"{kind} ×{n}" for kind, n in r["missed"].items()) or "none",
          r["items"], r["k"], f"{r['precision_at_k']:.2f}", f"{r['rank_seconds']:.2f}"]
         for r in rows]
        + [["mean", ", ".join(f"{kind} ×{n}" for kind, n in missed.items()) or "none", "", "",
            f"{mean:.2f}", ""]], text=2))  # fmt: skip
    print()
    print(recording.table(
        ["oddity", "in the top K", "ranks (every seed)"],
        [[kind, f"{found['caught']} of {found['injected']}", ", ".join(map(str, found["ranks"]))]
         for kind, found in by_kind.items()]))  # fmt: skip
    print(f"\nselect.diverse, n = {speed['n']:,} × {speed['dim']} float32, k = {speed['k']}: "
          f"{speed['seconds']:.2f} s (median of {len(speed['runs'])})")  # fmt: skip


if __name__ == "__main__":
    main()
