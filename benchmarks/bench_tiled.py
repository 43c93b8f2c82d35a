"""A ×2 model over 8,000² and 20,000² JPEGs: ``pixelmill run`` (the tiled engine, JPEG in and
out) against the model's pure inference on the same tiles, in the same run.

``inference`` loads the bare ONNX model in onnxruntime with the engine's session options, plans
the same tiles (tile, overlap, batch) with the engine's own planner, and times ``run`` over every
batch of float tiles, with no decoding, pixel conversion, spooling or encoding. Every run is a fresh process; peak RSS is the process's own VmHWM.

    python benchmarks/bench_tiled.py            # full run: takes a while
    python benchmarks/bench_tiled.py --quick    # 1,000² and 2,000², to smoke-test
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import recording
from bench_foundation import make_photo

MODEL = "toy-x2-w32"
"""Three 3×3 convolutions, 32 channels wide: about 13,500 multiply-adds per input pixel, the
scale of small super-resolution networks (ESPCN, FSRCNN), so inference dominates the work."""
PROBE = """
import atexit, sys
def peak():
    line = next(l for l in open("/proc/self/status") if l.startswith("VmHWM"))
    print("PEAK", int(line.split()[1]) / 1024, file=sys.stderr)
atexit.register(peak)
"""
PIXELMILL = PROBE + """
from pixelmill.cli import main
main(sys.argv[1:])
"""
INFERENCE = PROBE + """
import time, numpy as np, onnxruntime
from pixelmill.config import Settings
from pixelmill.engine.tiled import EXECUTOR_SHARE, plan_for, windows
from pixelmill.models.pixelio import working_bytes
from pixelmill.models.registry import find
from pixelmill.models.runtime import session_options
width, height = int(sys.argv[1]), int(sys.argv[2])
settings = Settings.load()
model = find(sys.argv[3], settings)
session = onnxruntime.InferenceSession(str(model.path), session_options(settings),
                                       providers=["CPUExecutionProvider"])
feed = session.get_inputs()[0].name
plan = plan_for(model.manifest, working_bytes(model.path), width, None, None, None,
                budget=EXECUTOR_SHARE * settings.max_memory)
rows, cols = windows(height, plan.tile, plan.halo), windows(width, plan.tile, plan.halo)
tile_h, tile_w = rows[0].stop - rows[0].start, cols[0].stop - cols[0].start
batches = [min(plan.batch, len(cols) - i) for i in range(0, len(cols), plan.batch)] * len(rows)
rng = np.random.default_rng(0)
started = time.perf_counter()
for size in batches:
    session.run(None, {feed: rng.random((size, 3, tile_h, tile_w), dtype=np.float32)})
print("SECONDS", time.perf_counter() - started, file=sys.stderr)
print("PLAN", plan.describe(sys.argv[3]), file=sys.stderr)
"""


def measure(argv: list[str], env: dict[str, str]) -> dict[str, float | str]:
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"{argv[:4]} failed:\n{done.stderr}")
    fields = {line.split(" ", 1)[0]: line.split(" ", 1)[1] for line in done.stderr.splitlines()
              if line.split(" ", 1)[0] in ("PEAK", "SECONDS", "PLAN")}  # fmt: skip
    result: dict[str, float | str] = {"wall_s": wall, "peak_rss_mb": float(fields["PEAK"])}
    if done.stdout:
        result["stdout"] = done.stdout
    if "SECONDS" in fields:
        result["inference_s"] = float(fields["SECONDS"])
        result["plan"] = fields["PLAN"]
    return result


def main() -> None:
    import os

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small inputs, to smoke-test")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--work", type=Path, default=HERE / "work")
    args = parser.parse_args()
    sizes = {"1k": 1000, "2k": 2000} if args.quick else {"8k": 8000, "20k": 20000}
    models = args.work / "models"
    if not (models / f"{MODEL}.onnx").exists():
        from pixelmill.models import toy

        toy.build(models, MODEL, scale=2, width=32, seed=2)
    env = {**os.environ, "PIXELMILL_MODELS_DIR": str(models)}
    rows = []
    for case, side in sizes.items():
        source = args.work / f"photo-{side}x{side}.jpg"
        if not source.exists():
            make_photo(source, side, side)
        target = args.work / f"out-model-{case}.jpg"
        runs = {"pixelmill": [], "inference": []}
        for _ in range(args.repeat):
            runs["pixelmill"].append(measure(
                [sys.executable, "-c", PIXELMILL, "run", str(source), str(target), "-p",
                 f"model:{MODEL}", "-q"], env))  # fmt: skip
            runs["inference"].append(measure(
                [sys.executable, "-c", INFERENCE, str(side), str(side), MODEL], env))
            target.unlink(missing_ok=True)
        pm, inf = runs["pixelmill"], runs["inference"]
        row = {
            "case": case, "input": f"{side}×{side}", "plan": inf[0]["plan"],
            "pixelmill_wall_s": statistics.median(r["wall_s"] for r in pm),
            "pixelmill_peak_mb": max(r["peak_rss_mb"] for r in pm),
            "inference_s": statistics.median(r["inference_s"] for r in inf),
            "inference_peak_mb": max(r["peak_rss_mb"] for r in inf),
            "samples": runs,
        }  # fmt: skip
        row["wall_over_inference"] = row["pixelmill_wall_s"] / row["inference_s"]
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "samples"}), flush=True)
    if len(rows) == 2:
        ratio = rows[1]["pixelmill_peak_mb"] / rows[0]["pixelmill_peak_mb"]
        print(f"peak RSS {rows[1]['case']} / {rows[0]['case']}: {ratio:.2f}")
    out = args.work / "tiled-quick.json" if args.quick else HERE / "results" / "tiled.json"
    recording.save(out, {"model": MODEL, "cases": rows})
    print(recording.table(
        ["case", "plan", "pixelmill wall s", "peak RSS MB", "pure inference s",
         "wall / inference"],
        ([r["input"], r["plan"], f"{r['pixelmill_wall_s']:.1f}", f"{r['pixelmill_peak_mb']:.0f}",
          f"{r['inference_s']:.1f}", f"{r['wall_over_inference']:.2f}"] for r in rows),
        text=2))  # fmt: skip


if __name__ == "__main__":
    main()
