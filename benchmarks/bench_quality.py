"""Every metric of ``pixelmill.quality`` on a 12-megapixel pair, beside scikit-image where it
has the metric (PSNR, SSIM, CIEDE2000): seconds of one call and the peak RSS during it.

The pair is ``bench_ssimulacra2``'s (a photo-like 4000×3000 JPEG and its quality-40
re-encoding). Each measurement is a fresh process with the pair decoded into memory before the
clock starts; the peak is VmHWM, reset just before the call (``/proc/self/clear_refs``). The
contestants take turns in every repetition. Prints JSON, then a markdown table of medians.

    python benchmarks/bench_quality.py              # 3 runs of each
    python benchmarks/bench_quality.py --quick      # a 1000×750 pair, one run
"""

from __future__ import annotations

import json
import os
import statistics
import sys
from pathlib import Path

import recording
from bench_ssimulacra2 import child, save, setup

HERE = Path(__file__).resolve().parent
SKIMAGE = {
    "psnr": "metrics.peak_signal_noise_ratio(a, b)",
    "ssim": "metrics.structural_similarity(a, b, channel_axis=2, gaussian_weights=True, "
            "sigma=1.5, use_sample_covariance=False, data_range=255)",
    "ciede2000": "color.deltaE_ciede2000(color.rgb2lab(a), color.rgb2lab(b)).mean()",
}  # fmt: skip
CHILD = """
import json, os, sys, time
import pyvips

def status_mb(field):
    status = open("/proc/self/status").read()
    return int(next(l for l in status.splitlines() if l.startswith(field)).split()[1]) / 1024

contestant, name, paths = sys.argv[1], sys.argv[2], sys.argv[3:5]
images = [pyvips.Image.new_from_file(path).copy_memory() for path in paths]
if contestant == "scikit-image":
    from skimage import color, metrics
    a, b = (image.numpy() for image in images)
    call = lambda: eval(sys.argv[5])
else:
    from pixelmill.quality import METRICS
    reference, distorted = images
    if METRICS[name].kind == "consistency":
        reference = reference.resize(0.5)
    call = lambda: METRICS[name](distorted, reference)
resident = status_mb("VmRSS")
with open("/proc/self/clear_refs", "w") as clear:
    clear.write("5")
start = time.perf_counter()
value = float(call())
print(json.dumps({"contestant": contestant, "metric": name, "value": value,
                  "seconds": time.perf_counter() - start, "peak_rss_mb": status_mb("VmHWM"),
                  "resident_before_mb": resident}))
"""


def main() -> None:
    from pixelmill.quality import METRICS

    args, pair, width, height = setup(__doc__.splitlines()[0], repeat=3)
    contestants = [("pixelmill", name) for name in METRICS]
    contestants += [("scikit-image", name) for name in SKIMAGE]
    load_before = os.getloadavg()
    samples = []
    for _ in range(1 if args.quick else args.repeat):
        for contestant, name in contestants:
            extra = [SKIMAGE[name]] if contestant == "scikit-image" else []
            samples.append(child(CHILD, contestant, name, *map(str, pair), *extra))
            print(json.dumps(samples[-1]), file=sys.stderr, flush=True)
    rows = []
    for contestant, name in contestants:
        runs = [s for s in samples if (s["contestant"], s["metric"]) == (contestant, name)]
        rows.append({"contestant": contestant, "metric": name, "runs": len(runs),
                     "value": runs[0]["value"],
                     **{k: statistics.median(r[k] for r in runs)
                        for k in ("seconds", "peak_rss_mb", "resident_before_mb")}})  # fmt: skip
    save(args, "quality", f"{width}×{height}", load_before, rows, samples)
    print(recording.table(
        [f"metric ({width}×{height})", "contestant", "runs", "value", "seconds (median)",
         "peak RSS in the call MB"],
        ([r["metric"], r["contestant"], r["runs"], f"{r['value']:.4f}", f"{r['seconds']:.2f}",
          f"{r['peak_rss_mb']:.0f}"]
         for r in sorted(rows, key=lambda r: (r["metric"], r["contestant"]))), text=2))  # fmt: skip


if __name__ == "__main__":
    main()
