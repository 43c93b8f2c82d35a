"""Streaming: a large output is written in bounded memory (peak RSS of a fresh process)."""

from __future__ import annotations

from conftest import photo, pixelmill_peak_mb

LIMIT_MB = 200


def test_a_64_megapixel_jpeg_is_written_in_bounded_memory(tmp_path) -> None:
    source = tmp_path / "in.jpg"
    photo(4000, 4000).write_to_file(str(source), Q=90)
    target = tmp_path / "out.jpg"
    peak = pixelmill_peak_mb("run", str(source), str(target), "-p", "scale:2/sharpen", "-q")
    assert target.stat().st_size > 1_000_000
    # whole-image buffers would need 64 MP × 3 bytes = 192 MB for pixels alone, and libjpeg's
    # Huffman optimisation about 6 bytes a pixel (~380 MB)
    assert peak < LIMIT_MB, f"peak RSS {peak:.0f} MB"
