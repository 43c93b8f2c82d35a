"""Every metric keeps its memory bounded on a large image: each on a 6000×4000 pair read from
tiled TIFF files, in a child process of its own whose peak RSS is read."""

from __future__ import annotations

import json
import subprocess
import sys

import pyvips

from pixelmill.quality import METRICS

SIDE = (6000, 4000)
WHOLE_FLOAT_IMAGE_MB = SIDE[0] * SIDE[1] * 3 * 4 / 2**20
"""One full-size three-band float32 image: 275 MB; a metric holding images whole needs
several."""
LIMIT_MB = 220
"""Python, numpy and libvips take about 40 MB; the rest is the metric's working set."""

CHILD = """
import json, sys
import pyvips
from pixelmill.quality import METRICS
reference, distorted, name = sys.argv[1:4]
reference, distorted = (pyvips.Image.new_from_file(p) for p in (reference, distorted))
if METRICS[name].kind == "consistency":
    reference = reference.resize(0.5)
value = METRICS[name](distorted, reference)
status = open("/proc/self/status").read()
peak = int(next(l for l in status.splitlines() if l.startswith("VmHWM")).split()[1]) / 1024
print(json.dumps({"value": value, "peak_mb": peak}))
"""


def test_every_metric_runs_in_bounded_memory_on_a_large_image(tmp_path) -> None:
    width, height = SIDE
    texture = ((pyvips.Image.zone(width, height) + 1) * 100
               + pyvips.Image.perlin(width, height, cell_size=64) * 50)  # fmt: skip
    reference = texture.bandjoin([texture, texture]).cast("uchar").copy(interpretation="srgb")
    distorted = (reference + pyvips.Image.gaussnoise(width, height, sigma=4, mean=0, seed=1)
                 ).cast("uchar").copy(interpretation="srgb")  # fmt: skip
    paths = []
    for name, image in (("reference", reference), ("distorted", distorted)):
        path = tmp_path / f"{name}.tif"
        image.tiffsave(str(path), tile=True, compression="deflate")
        paths.append(str(path))
    peaks = {}
    for name in METRICS:
        child = subprocess.run([sys.executable, "-c", CHILD, *paths, name], capture_output=True,
                               text=True, timeout=300, check=False)  # fmt: skip
        assert child.returncode == 0, child.stderr
        peaks[name] = json.loads(child.stdout)["peak_mb"]
    assert max(peaks.values()) < LIMIT_MB < WHOLE_FLOAT_IMAGE_MB, peaks
