"""The first guess of ``encode:…:target=ssimulacra2>=T`` (``pixelmill.compress.target.START``),
fitted on a collection: for every image, format and target, the lowest quality that meets the
target (found by bisection over 1..100), and the image's busyness; then per format the least
squares fit q ≈ a + b × (T - 80) - c × busyness, and the slope of the score per quality step at
the answer (the search's first step). Prints JSON, then the table to paste and the fit's error.
With ``--check``, also runs the search itself on each image and reports how far above the lowest
passing quality it lands, with how many encodes, and the bytes that costs.

    python benchmarks/calibrate_target.py DATA/photos --formats webp,jpeg
    python benchmarks/calibrate_target.py DATA/photos --formats avif --limit 8
    python benchmarks/calibrate_target.py DATA/photos --targets 80 --check
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import numpy as np
import pyvips

from pixelmill.codecs import prepare
from pixelmill.compress import target as search_target
from pixelmill.compress.target import busyness, decoded, encoded, score_of, with_quality
from pixelmill.pipeline import Step
from pixelmill.pipeline.formats import FORMATS
from pixelmill.pipeline.kinds import Gate


def lowest(image: pyvips.Image, name: str, target: float) -> tuple[int, float]:
    """The lowest quality meeting ``target`` and the score per quality step just above it."""
    fmt = FORMATS[name]
    ready, options = prepare(image, fmt, Step.make("encode", format=name))
    scores: dict[int, float] = {}

    def score(q: int) -> float:
        if q not in scores:
            data = encoded(ready, fmt, with_quality(fmt, options, q))
            scores[q] = score_of(ready, decoded(data), "ssimulacra2")
        return scores[q]

    low, high = 0, 100  # low fails (or is 0), high passes (or is 100)
    while high - low > 1:
        middle = (low + high) // 2
        if score(middle) >= target:
            high = middle
        else:
            low = middle
    above = min(100, high + 4)
    slope = (score(above) - score(high)) / max(1, above - high)
    return high, slope


def checked(image: pyvips.Image, name: str, target: float, lowest_quality: int) -> dict:
    """What the engine's search chooses against the bisection's answer."""
    fmt = FORMATS[name]
    ready, options = prepare(image, fmt, Step.make("encode", format=name))
    choice = search_target.search(ready, fmt, Gate("ssimulacra2", ">=", target), options)
    floor = len(encoded(ready, fmt, with_quality(fmt, options, lowest_quality)))
    return {"searched": choice.quality, "met": choice.met, "trials": choice.trials,
            "bytes_over": round(choice.bytes / floor - 1, 4)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder")
    parser.add_argument("--formats", default="webp,jpeg")
    parser.add_argument("--targets", default="70,80,90")
    parser.add_argument("--limit", type=int, default=0, help="images at most (0: all)")
    parser.add_argument("--check", action="store_true", help="also run the search on each")
    args = parser.parse_args()
    files = sorted(p for p in Path(args.folder).iterdir() if p.suffix in (".png", ".jpg", ".ppm"))
    if args.limit:
        files = files[: args.limit]
    rows = []
    for path in files:
        image = pyvips.Image.new_from_file(str(path), access="random").copy_memory()
        busy = busyness(image)
        for name in args.formats.split(","):
            for target in map(float, args.targets.split(",")):
                quality, slope = lowest(image, name, target)
                rows.append({"image": path.name, "format": name, "target": target,
                             "busyness": round(busy, 4), "quality": quality,
                             "slope": round(slope, 4)})  # fmt: skip
                if args.check:
                    rows[-1] |= checked(image, name, target, quality)
                print(json.dumps(rows[-1]), flush=True)
    print("| format | a | b | c | fit error (q, sd) | median slope per q |")
    print("|---|--:|--:|--:|--:|--:|")
    for name in args.formats.split(","):
        mine = [r for r in rows if r["format"] == name]
        design = np.array([[1, r["target"] - 80, -r["busyness"]] for r in mine])
        wanted = np.array([r["quality"] for r in mine], float)
        (a, b, c), *_ = np.linalg.lstsq(design, wanted, rcond=None)
        error = wanted - design @ np.array([a, b, c])
        print(f"| {name} | {a:.1f} | {b:.2f} | {c:.1f} | {error.std():.1f} | "
              f"{statistics.median(r['slope'] for r in mine):.2f} |")
    if args.check:
        print("\nunreachable: fails even at quality 100, where the search gives 100 too\n")
        print("| format | images | steps above the lowest (mean, max) | unreachable | encodes "
              "(mean, max) | bytes over the lowest (mean) |")
        print("|---|--:|--:|--:|--:|--:|")
        for name in args.formats.split(","):
            mine = [r for r in rows if r["format"] == name]
            over = [r["searched"] - r["quality"] for r in mine if r["met"]]
            print(f"| {name} | {len(mine)} | {statistics.mean(over):.2f}, {max(over)} | "
                  f"{sum(not r['met'] for r in mine)} | "
                  f"{statistics.mean(r['trials'] for r in mine):.2f}, "
                  f"{max(r['trials'] for r in mine)} | "
                  f"{100 * statistics.mean(r['bytes_over'] for r in mine):.2f} % |")


if __name__ == "__main__":
    main()
