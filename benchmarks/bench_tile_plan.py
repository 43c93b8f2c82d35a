"""The tile and batch the planner chooses within ``max_memory``, against a sweep of tiles and
against the plan before the budget (the manifest's tile, a band's tiles per batch, up to 16).

Each model runs as ``pixelmill run photo.jpg out.jpg -p model:NAME[:tile=T[:batch=B]]`` in a
fresh process (decode, tiled inference, JPEG encode, start-up included), the configurations
taking turns after one run that fills the derived-graph cache; wall time is the median of ``--repeat`` runs, peak RSS the largest VmHWM. One
onnxruntime thread per run unless ``--threads`` says otherwise.

    python benchmarks/bench_tile_plan.py             # the bundled models and a wide-reach one
    python benchmarks/bench_tile_plan.py --quick     # small inputs, to smoke-test
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import recording
from bench_foundation import make_photo
from bench_tiled import PIXELMILL, measure

SWEEP = (64, 128, 256, 512)
WIDE_REACH = "toy-reach20-x2"
"""Twenty 3×3 convolutions 16 channels wide, ×2: a receptive field of 20 (overlap 20), the
reach of a small restoration net, whose manifest allows tiles up to 1024."""


def cases(quick: bool) -> list[tuple[str, int, int]]:
    """(model, width, height): 6 megapixels, or fewer for the costly models."""
    if quick:
        return [("sr-x2", 600, 400), (WIDE_REACH, 400, 300)]
    return [("sr-x2", 3000, 2000), ("sr-x2-int8", 3000, 2000), ("sr-x4", 1500, 1000),
            ("denoise", 3000, 2000), ("dejpeg", 3000, 2000), (WIDE_REACH, 1500, 1000)]  # fmt: skip


def old_plan(manifest_tile: int, width: int) -> str:
    """The plan before the budget on this machine: the manifest's tile (free memory never
    halved it here) and a band's tiles per batch, up to 16."""
    return f"tile={manifest_tile}:batch={min(16, -(-width // manifest_tile))}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--work", type=Path, default=HERE / "work")
    parser.add_argument("--models", help="only these, comma-separated (the JSON is then "
                        "written beside the full run's, named after them)")  # fmt: skip
    args = parser.parse_args()
    models = args.work / "models"
    if not (models / f"{WIDE_REACH}.onnx").exists():
        from pixelmill.models import toy

        toy.build(models, WIDE_REACH, scale=2, width=16, layers=20, seed=5)
        manifest = json.loads((models / f"{WIDE_REACH}.json").read_text())
        (models / f"{WIDE_REACH}.json").write_text(json.dumps({**manifest, "tile": 1024}))
    env = {**os.environ, "PIXELMILL_MODELS_DIR": str(models),
           "PIXELMILL_THREADS": str(args.threads)}  # fmt: skip
    from pixelmill.config import Settings
    from pixelmill.models.registry import find

    settings = Settings.load()
    rows = []
    chosen = cases(args.quick)
    if args.models:
        chosen = [case for case in chosen if case[0] in args.models.split(",")]
    for name, width, height in chosen:
        source = args.work / f"photo-{width}x{height}.jpg"
        if not source.exists():
            make_photo(source, width, height)
        manifest_tile = find(name, settings.replace(models_dir=str(models))).manifest.tile
        configs = {"chosen": "", "before": old_plan(manifest_tile, width)}
        configs |= {f"tile {t}": f"tile={t}" for t in SWEEP if t <= manifest_tile}
        samples: dict[str, list[dict]] = {label: [] for label in configs}
        measure([sys.executable, "-c", PIXELMILL, "run", str(source),  # derived graphs cached
                 str(args.work / "out-plan.jpg"), "-p", f"model:{name}"], env)  # fmt: skip
        for _ in range(args.repeat):
            for label, extra in configs.items():
                pipeline = f"model:{name}" + (f":{extra}" if extra else "")
                target = args.work / "out-plan.jpg"
                run = measure([sys.executable, "-c", PIXELMILL, "run", str(source), str(target),
                               "-p", pipeline, "--json"], env)  # fmt: skip
                samples[label].append(run | {"plan": _plan(run)})
        for label, runs in samples.items():
            row = {"model": name, "input": f"{width}×{height}", "config": label,
                   "plan": runs[0]["plan"],
                   "wall_s": statistics.median(r["wall_s"] for r in runs),
                   "peak_rss_mb": max(r["peak_rss_mb"] for r in runs), "samples": runs}
            rows.append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "samples"}), flush=True)
    stem = "tile-plan" + (f"-{args.models.replace(',', '-')}" if args.models else "")
    out = args.work / f"{stem}-quick.json" if args.quick else HERE / "results" / f"{stem}.json"
    recording.save(out, {"threads": args.threads, "repeat": args.repeat, "rows": rows})
    print(table(rows))


def _plan(run: dict) -> str:
    """The plan the run printed in its outcome's notes."""
    note = json.loads(run.pop("stdout").splitlines()[-1])["notes"][0]
    return note.split(": ", 1)[1].split(" on ")[0]


def table(rows: list[dict]) -> str:
    """One line per model and configuration, with the ratios to the best wall time of the
    sweep (chosen and before included)."""
    best = {}
    for row in rows:
        best[row["model"]] = min(best.get(row["model"], float("inf")), row["wall_s"])
    return recording.table(
        ["model", "input", "configuration", "plan", "wall s", "/ best", "peak RSS MB"],
        ([r["model"], r["input"], r["config"], r["plan"], f"{r['wall_s']:.2f}",
          f"{r['wall_s'] / best[r['model']]:.2f}", f"{r['peak_rss_mb']:.0f}"] for r in rows))


if __name__ == "__main__":
    main()
