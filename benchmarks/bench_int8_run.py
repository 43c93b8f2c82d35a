"""int8 against fp32 through a whole ``pixelmill run`` (start-up, decode, tiled inference,
encode), beside the inference alone, for the bundled models (``--models sr-x2,denoise``: each against its ``-int8``).

Each run is a fresh process, ``pixelmill run photo.jpg out.jpg -p model:NAME``; fp32 and int8
take turns and the median of ``--repeat`` runs is kept. ``--before SRC`` runs the same cases
with the ``src`` folder of another checkout first on the path, so a change is measured before
and after in one sitting. *Inference* is the engine's session over the tiles the planner
chooses, ``run`` alone, in this process.

    python benchmarks/bench_int8_run.py --before /path/to/old/src
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import recording
from bench_foundation import make_photo

SIZES = {"1024": (1024, 1024), "3000": (3000, 2000)}


def whole_run(source: Path, model: str, src: Path | None, work: Path) -> float:
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = str(src)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pixelmill", "run", str(source), str(work / "out.jpg"),
                    "-p", f"model:{model}", "-q"], env=env, check=True)  # fmt: skip
    return time.perf_counter() - started


def inference(model: str, width: int, height: int, repeat: int) -> float:
    """Median seconds of the model's session over the planned tiles of random pixels."""
    import numpy as np

    from pixelmill.config import Settings
    from pixelmill.engine.tiled import EXECUTOR_SHARE, plan_for, windows
    from pixelmill.models.runtime import session_for

    settings = Settings.load()
    session = session_for(model, settings)
    plan = plan_for(session.manifest, session.working_bytes, width, None, None, None,
                    budget=EXECUTOR_SHARE * settings.max_memory)  # fmt: skip
    rows, cols = windows(height, plan.tile, plan.halo), windows(width, plan.tile, plan.halo)
    side_h, side_w = rows[0].stop - rows[0].start, cols[0].stop - cols[0].start
    batches = [min(plan.batch, len(cols) - i) for i in range(0, len(cols), plan.batch)]
    tiles = np.random.default_rng(0).integers(0, 256, (plan.batch, side_h, side_w, 3), np.uint8)
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        for _row in rows:
            for size in batches:
                session.run(tiles[:size])
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, help="src folder of the checkout to compare")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--models", default="sr-x2", help="fp32 models, comma-separated")
    parser.add_argument("--sizes", default="1024,3000", help="of " + ", ".join(SIZES))
    parser.add_argument("--work", type=Path, default=HERE / "work")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "int8-run.json")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    versions = {"after": None} if args.before is None else {"before": args.before, "after": None}
    rows = []
    cases = [(name, SIZES[size]) for name in args.models.split(",")
             for size in args.sizes.split(",")]  # fmt: skip
    for name, (width, height) in cases:
        models = (name, f"{name}-int8")
        source = args.work / f"photo-{width}x{height}.jpg"
        if not source.exists():
            make_photo(source, width, height)
        for version, src in versions.items():
            for model in models:  # warm: files, derived graphs
                whole_run(source, model, src, args.work)
            times: dict[str, list[float]] = {m: [] for m in models}
            for _ in range(args.repeat):
                for model in models:
                    times[model].append(whole_run(source, model, src, args.work))
            fp32, int8 = (statistics.median(times[m]) for m in models)
            rows.append({"model": name, "input": f"{width}×{height}", "version": version, "fp32_s": fp32,
                         "int8_s": int8, "speedup": fp32 / int8, "samples": times})  # fmt: skip
            print(json.dumps({k: v for k, v in rows[-1].items() if k != "samples"}), flush=True)
        fp32, int8 = (inference(m, width, height, args.repeat) for m in models)
        rows.append({"model": name, "input": f"{width}×{height}", "version": "inference only", "fp32_s": fp32,
                     "int8_s": int8, "speedup": fp32 / int8})  # fmt: skip
        print(json.dumps(rows[-1]), flush=True)
    recording.save(args.out, {"repeat": args.repeat, "rows": rows})
    print(recording.table(
        ["model", "input", "measured", "fp32 s", "int8 s", "int8 speed-up"],
        ([r["model"], r["input"], r["version"], f"{r['fp32_s']:.2f}", f"{r['int8_s']:.2f}",
          f"{r['speedup']:.2f}×"] for r in rows)))  # fmt: skip


if __name__ == "__main__":
    main()
