"""Drift detection power: how often :func:`pixelmill.datasets.drift.compare` cries drift when
nothing changed, and how often it sees a real change, on features and embeddings measured by the
dataset pipeline itself.

A pool of photographs (``collection.photos``: a folder given by ``--photos`` or
``$PIXELMILL_PHOTOS``, else windows of the bundled photographs) is written as JPEG q 90 files,
and so is each photograph shifted five ways: darker by 10 % (every sRGB value × 0.9),
blurred (Gaussian σ 1 px), recompressed (the q 90 file decoded and saved at JPEG q 30), noisier
(Gaussian noise σ 5 on 0..255) and, for the last condition, a pool of screenshot-like graphics
(``collection.graphics``, also JPEG q 90, so the difference is in the pixels, not the format).
Every file is analysed once, as ``pixelmill datasets add`` does (``analyse``: header fields,
features of the proxy, the built-in embedding).

Each of ``--splits`` random splits draws a reference and a current sample of ``--per-side``
distinct photographs. The comparison of the two as they are measures false alarms; each shift is
applied to the current side only (for ``graphics``, half of the current photographs are
replaced by graphics). The no-change condition runs ``--null-splits`` splits, since false
alarms are rare events. Every size in ``--per-side`` runs every condition. Prints JSON, then a
markdown table. The analyses are kept in ``benchmarks/work/`` (named by the pool and by the
code that makes and measures it) and read back by the next run (``--fresh`` analyses again).

    python benchmarks/bench_drift.py --photos DIR     # 200 and 50 a side
    python benchmarks/bench_drift.py --quick          # 10 splits of 60 a side, a small pool
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import inspect
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import collection
import numpy as np
import pyvips
import recording
import scipy

HERE = Path(__file__).resolve().parent
SHIFTS = ("none", "darker", "blur", "jpeg-q30", "noise", "graphics")
DESCRIPTIONS = {
    "none": "no change (the false-alarm rate)",
    "darker": "darker by 10 % (sRGB values × 0.9)",
    "blur": "Gaussian blur σ 1 px",
    "jpeg-q30": "recompressed at JPEG q 30",
    "noise": "Gaussian noise σ 5 (0..255)",
    "graphics": "half replaced by screenshots / graphics",
}  # fmt: skip
CATEGORIES = ("format", "colour_space", "camera_model")
SIDE = 512
"""Side of every photograph and graphic, in pixels."""


def variants(picture: np.ndarray, index: int, folder: Path) -> dict[str, Path]:
    """Write the photograph and its shifted versions; return their paths by shift."""
    image = pyvips.Image.new_from_array(picture, interpretation="srgb")
    rng = np.random.default_rng(10_000 + index)
    noisy = np.clip(np.rint(picture + rng.normal(0, 5, picture.shape)), 0, 255).astype(np.uint8)
    made = {
        "none": image,
        "darker": (image * 0.9).rint().cast("uchar"),
        "blur": image.gaussblur(1.0, min_ampl=0.005, precision="float").rint().cast("uchar"),
        "noise": pyvips.Image.new_from_array(noisy, interpretation="srgb"),
    }
    paths = {}
    for shift, version in made.items():
        paths[shift] = folder / f"{index:04d}-{shift}.jpg"
        version.jpegsave(str(paths[shift]), Q=90)
    paths["jpeg-q30"] = folder / f"{index:04d}-jpeg-q30.jpg"
    pyvips.Image.new_from_file(str(paths["none"])).jpegsave(str(paths["jpeg-q30"]), Q=30)
    return paths


def _analyse(path: str) -> tuple[str, dict[str, Any], list[float]]:
    from pixelmill import storage
    from pixelmill.config import Settings
    from pixelmill.datasets import analyse, embed

    settings = Settings.load()
    found = analyse.analyse(storage.locate(path), settings, embed.embedder(None, settings))
    return Path(path).stem, found.fields, found.embedding.tolist()


def analyse_all(paths: list[Path], workers: int) -> dict[str, tuple[dict[str, Any], np.ndarray]]:
    """Every file analysed once, in ``workers`` fresh processes (libvips' threads do not
    survive a fork), by file stem."""
    with multiprocessing.get_context("spawn").Pool(workers, initializer=_one_thread) as pool:
        found = pool.map(_analyse, [str(p) for p in paths], chunksize=8)
    return {stem: (fields, np.asarray(embedding, np.float32)) for stem, fields, embedding in found}


def _one_thread() -> None:
    pyvips.concurrency_set(1)


def cache_path(args: argparse.Namespace) -> Path:
    """Where the analyses of this pool are kept between runs: named by the pool's parameters
    and by the code that makes and measures it, so any change to either measures afresh."""
    from pixelmill.datasets import analyse, embed, features
    from pixelmill.quality import blind

    digest = hashlib.sha256(repr((collection.describe(args.photos), args.pool, args.graphics,
                                  SIDE, inspect.getsource(variants))).encode())  # fmt: skip
    for module in (collection, analyse, embed, features, blind):
        digest.update(Path(module.__file__).read_bytes())
    return HERE / "work" / f"drift-analyses-{digest.hexdigest()[:16]}.json"


def sample(keys: list[str], analyses: dict[str, tuple[dict[str, Any], np.ndarray]]) -> Any:
    from pixelmill.datasets import drift
    from pixelmill.datasets.fields import FEATURES

    rows = [analyses[key] for key in keys]
    features = {name: np.array([np.nan if f[name] is None else f[name] for f, _ in rows], float)
                for name in FEATURES}  # fmt: skip
    categories = {name: [f[name] for f, _ in rows] for name in CATEGORIES}
    return drift.Sample(features, np.stack([e for _, e in rows]).astype(np.float32), categories)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", help="folder of photographs (default: $PIXELMILL_PHOTOS)")
    parser.add_argument("--pool", type=int, default=440, help="distinct photographs")
    parser.add_argument("--graphics", type=int, default=200, help="distinct graphics")
    parser.add_argument("--per-side", type=int, nargs="+", default=[200, 50],
                        help="items on each side of a comparison (several sizes allowed)")
    parser.add_argument("--splits", type=int, default=50, help="random splits per condition")
    parser.add_argument("--null-splits", type=int, default=500,
                        help="splits of the no-change condition (false alarms are rare)")
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--report", type=Path, help="write the HTML report of the first split "
                        "of each condition into this folder")  # fmt: skip
    parser.add_argument("--fresh", action="store_true", help="analyse again, ignoring the cache")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.pool, args.graphics, args.per_side, args.splits, args.null_splits = (
            140, 60, [60], 10, 10)
    if 2 * max(args.per_side) > args.pool or max(args.per_side) // 2 > args.graphics:
        parser.error("the pool needs two sides of photographs and half a side of graphics")

    started = time.perf_counter()
    cache = cache_path(args)
    from_cache = cache.exists() and not args.fresh
    if from_cache:
        analyses = {key: (fields, np.asarray(embedding, np.float32))
                    for key, (fields, embedding) in json.loads(cache.read_text()).items()}
        written = analysed = time.perf_counter()
        print(f"{len(analyses)} analyses read from {cache.name}", file=sys.stderr)
    else:
        photos = collection.photos(args.pool, side=SIDE, seed=0, folder=args.photos)
        screens = collection.graphics(args.graphics, side=SIDE, seed=1)
        with tempfile.TemporaryDirectory() as temporary:
            folder = Path(temporary)
            every = [p for i, picture in enumerate(photos)
                     for p in variants(picture, i, folder).values()]  # fmt: skip
            for i, screen in enumerate(screens):
                every.append(folder / f"graphic-{i:04d}.jpg")
                image = pyvips.Image.new_from_array(screen, interpretation="srgb")
                image.jpegsave(str(every[-1]), Q=90)
            written = time.perf_counter()
            analyses = analyse_all(every, args.workers)
            analysed = time.perf_counter()
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps({key: (fields, embedding.tolist())
                                     for key, (fields, embedding) in analyses.items()}))
        print(f"{len(every)} files written in {written - started:.0f} s, analysed in "
              f"{analysed - written:.0f} s", file=sys.stderr)

    figures = {
        "photos": collection.describe(args.photos), "pool": args.pool,
        "graphics": args.graphics, "per_side": args.per_side, "splits": args.splits,
        "null_splits": args.null_splits, "alpha": args.alpha,
        "files_analysed": len(analyses), "cache": cache.name, "from_cache": from_cache,
        "seconds": {"write": written - started, "analyse": analysed - written},
        "summary": [], "runs": {},
    }  # fmt: skip
    seconds = []
    for per_side in args.per_side:
        for shift in SHIFTS:
            splits = max(args.splits, args.null_splits) if shift == "none" else args.splits
            runs = conditions(shift, per_side, splits, args, analyses, seconds)
            figures["runs"][f"{shift}/{per_side}"] = runs
            fired = collections.Counter(name for run in runs for name in run["fired"])
            figures["summary"].append({
                "shift": shift, "description": DESCRIPTIONS[shift], "per_side": per_side,
                "splits": len(runs), "drift_rate": sum(run["drift"] for run in runs) / len(runs),
                "fired": dict(fired.most_common()),
                "median_tests_fired": statistics.median(len(run["fired"]) for run in runs),
            })  # fmt: skip
    figures["seconds"].update(compare_median=statistics.median(seconds),
                              compare_max=max(seconds), compares=len(seconds))  # fmt: skip
    out = HERE / ("work" if args.quick else "results") / "drift.json"
    recording.save(out, figures, libvips=".".join(str(pyvips.version(i)) for i in range(3)),
                   numpy=np.__version__, scipy=scipy.__version__)  # fmt: skip
    rows = figures["summary"]
    print(json.dumps(rows, indent=2))
    print(recording.table(
        ["condition (current side only)", "tests that fired most (splits)", "per side",
         "splits", "drift verdicts"],
        ([r["description"], ", ".join(f"{k} {v}" for k, v in list(r["fired"].items())[:4])
          or "–", r["per_side"], r["splits"], f"{100 * r['drift_rate']:.1f} %"]
         for r in rows), text=2))  # fmt: skip


def conditions(shift: str, per_side: int, splits: int, args: argparse.Namespace,
               analyses: dict[str, tuple[dict[str, Any], np.ndarray]],
               seconds: list[float]) -> list[dict[str, Any]]:  # fmt: skip
    """``splits`` comparisons of a random reference with a random current side, ``shift``
    applied to the current side; the same splits for every shift of one size (seeded)."""
    from pixelmill.datasets import drift, report

    rng = np.random.default_rng(per_side)
    runs = []
    for split in range(splits):
        order = rng.permutation(args.pool)
        ref, cur = order[:per_side], order[per_side:2 * per_side]
        chosen = rng.choice(args.graphics, per_side // 2, replace=False)
        reference = sample([f"{i:04d}-none" for i in ref], analyses)
        if shift == "graphics":
            keys = [f"graphic-{j:04d}" for j in chosen]
            keys += [f"{i:04d}-none" for i in cur[per_side // 2:]]
        else:
            keys = [f"{i:04d}-{shift}" for i in cur]
        current = sample(keys, analyses)
        start = time.perf_counter()
        found = drift.compare(reference, current, alpha=args.alpha, seed=split)
        seconds.append(time.perf_counter() - start)
        runs.append({"split": split, "drift": found.drift,
                     "fired": {t.name: {"p": t.p_value, "effect": t.effect, "psi": t.psi}
                               for t in found.tests if t.verdict == "drift"}})  # fmt: skip
        if args.report and split == 0:
            args.report.mkdir(parents=True, exist_ok=True)
            page = report.render(found, reference, current,
                                 title=f"Drift: {DESCRIPTIONS[shift]}, {per_side} a side")
            (args.report / f"drift-{shift}-{per_side}.html").write_text(page, encoding="utf-8")
    return runs

if __name__ == "__main__":
    main()
