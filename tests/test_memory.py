"""Streaming: a large output is written in bounded memory (peak RSS of a fresh process)."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import photo

LIMIT_MB = 300


def peak_rss_mb(*args: str) -> float:
    """Run a command and return its peak resident memory in MB."""
    child = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, child.stderr.read().decode()
    return usage.ru_maxrss / 1024


def test_a_64_megapixel_jpeg_is_written_in_bounded_memory(tmp_path) -> None:
    source = tmp_path / "in.jpg"
    photo(4000, 4000).write_to_file(str(source), Q=90)
    target = tmp_path / "out.jpg"
    peak = peak_rss_mb(sys.executable, "-m", "pixelmill", "run", str(source), str(target),
                       "-p", "scale:2/sharpen", "-q")  # fmt: skip
    assert target.stat().st_size > 1_000_000
    # whole-image buffers would need 64 MP × 3 bytes = 192 MB for pixels alone, and libjpeg's
    # Huffman optimisation about 6 bytes a pixel (~380 MB)
    assert peak < LIMIT_MB, f"peak RSS {peak:.0f} MB"
