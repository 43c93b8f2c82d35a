"""Butteraugli distance (Alakuijala et al., the psychovisual model behind Guetzli and JPEG XL):
the largest perceived difference between two images, in just-noticeable units (about 1: a
difference barely visible at a normal viewing distance).

Computed by libjxl's reference tool ``butteraugli_main`` (Debian's ``libjxl-devtools``; the
test suite's ``scripts/install-tools`` installs it): no maintained Python implementation
exists, and this is the one the metric's authors keep. Both images go to it as 16-bit PNG
files in a private temporary folder, removed afterwards.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from pixelmill.errors import UsageError
from pixelmill.quality.images import Picture, pair

TOOL = "butteraugli_main"
TIMEOUT = 600.0
"""Seconds one comparison may take (about 2 s per megapixel here)."""


def available() -> bool:
    return shutil.which(TOOL) is not None


def distance(reference: Picture, distorted: Picture) -> float:
    """The Butteraugli distance of ``distorted`` from ``reference`` (0: identical)."""
    tool = shutil.which(TOOL)
    if tool is None:
        raise UsageError(f"the butteraugli metric needs {TOOL} (Debian: apt-get install "
                         "libjxl-devtools)")  # fmt: skip
    left, right = pair(reference, distorted)
    with tempfile.TemporaryDirectory(prefix="pixelmill-butteraugli-") as folder:
        paths = [str(Path(folder) / name) for name in ("reference.png", "distorted.png")]
        for image, path in zip((left, right), paths):
            (image * 65535).cast("ushort").copy(interpretation="rgb16").pngsave(path,
                                                                                compression=1)
        try:
            done = subprocess.run([tool, *paths], capture_output=True, text=True, check=True,
                                  timeout=TIMEOUT)  # fmt: skip
        except subprocess.CalledProcessError as exc:
            raise UsageError(f"{TOOL} failed: {exc.stderr.strip()[-300:]}") from None
        except subprocess.TimeoutExpired:
            raise UsageError(f"{TOOL} took longer than {TIMEOUT:g} s") from None
    return float(done.stdout.split()[0])
