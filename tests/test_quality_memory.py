"""Every metric keeps its memory bounded on a large image: each on a 6000×4000 pair read from
tiled TIFF files, in a child process (one per group of metrics) whose peak RSS is reset before
each metric (``/proc/self/clear_refs``) and read after it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import pyvips

from pixelmill.quality import METRICS

SIDE = (6000, 4000)
WHOLE_FLOAT_IMAGE_MB = SIDE[0] * SIDE[1] * 3 * 4 / 2**20
"""One full-size three-band float32 image: 275 MB; a metric holding images whole needs
several."""
LIMIT_MB = 180
"""What a metric may hold over the process's memory before it: its working set (Python, numpy
and libvips, some 40 MB, are already there)."""

CHILD = """
import json, sys
import pytest
import pyvips
from pixelmill.engine.memory import give_back
from pixelmill.quality import METRICS

def status(field):
    line = next(l for l in open("/proc/self/status") if l.startswith(field))
    return int(line.split()[1]) / 1024

held = {}
for name in sys.argv[3:]:
    reference, distorted = (pyvips.Image.new_from_file(p) for p in sys.argv[1:3])
    if METRICS[name].kind == "consistency":
        reference = reference.resize(0.5)
    give_back()
    open("/proc/self/clear_refs", "w").write("5")
    before = status("VmRSS")
    METRICS[name](distorted, reference)
    held[name] = status("VmHWM") - before
print(json.dumps(held))
"""


HEAVY = (("ssim", "ssim-y", "ms-ssim"), ("ssimulacra2", "fsim", "fsimc", "ciede2000"))
"""The slowest metrics, in two groups of some ten seconds, so that the groups (each in a child
of its own) can run in parallel; every other metric makes a third group."""
GROUPS = [*HEAVY, tuple(sorted(set(METRICS) - {name for group in HEAVY for name in group}))]


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """A textured 6000×4000 reference and a noisy copy, as tiled TIFF files."""
    width, height = SIDE
    texture = ((pyvips.Image.zone(width, height) + 1) * 100
               + pyvips.Image.perlin(width, height, cell_size=64) * 50)  # fmt: skip
    reference = texture.bandjoin([texture, texture]).cast("uchar").copy(interpretation="srgb")
    distorted = (reference + pyvips.Image.gaussnoise(width, height, sigma=4, mean=0, seed=1)
                 ).cast("uchar").copy(interpretation="srgb")  # fmt: skip
    folder = tmp_path_factory.mktemp("large-pair")
    paths = []
    for name, image in (("reference", reference), ("distorted", distorted)):
        path = folder / f"{name}.tif"
        image.tiffsave(str(path), tile=True)
        paths.append(str(path))
    return paths


@pytest.mark.parametrize("group", GROUPS, ids=lambda group: group[0])
def test_every_metric_runs_in_bounded_memory_on_a_large_image(pair, group) -> None:
    child = subprocess.run([sys.executable, "-c", CHILD, *pair, *group], capture_output=True,
                           text=True, timeout=600, check=False)  # fmt: skip
    assert child.returncode == 0, child.stderr
    held = json.loads(child.stdout)
    assert set(held) == set(group)
    assert max(held.values()) < LIMIT_MB < WHOLE_FLOAT_IMAGE_MB, held


def test_the_groups_hold_every_metric_once() -> None:
    names = [name for group in GROUPS for name in group]
    assert sorted(names) == sorted(METRICS)
