"""Atomic writes and storage URLs (local and memory://; S3 has its own test module)."""

from __future__ import annotations

import os
from pathlib import Path

import fsspec
import pytest
import pyvips
from conftest import photo

import pixelmill
from pixelmill.errors import InputError, StorageError
from pixelmill.storage import atomic_output, locate


def test_output_appears_only_when_complete(make_image, tmp_path) -> None:
    source = make_image("a.png", photo(1500, 1500))
    target = tmp_path / "out" / "b.png"
    seen: list[tuple[bool, list[str]]] = []

    def watch(percent: float) -> None:
        if percent < 100:
            seen.append((target.exists(), os.listdir(target.parent)))

    pixelmill.run(source, target, "blur:3", progress=watch)
    assert seen, "progress was reported while writing"
    assert all(not exists for exists, _ in seen)
    assert all(any(n.endswith(".part") and n.startswith(".b.png.") for n in names)
               for _, names in seen)  # fmt: skip
    assert os.listdir(target.parent) == ["b.png"]
    assert pyvips.Image.new_from_file(str(target)).width == 1500


def test_a_failed_run_keeps_the_previous_output(make_image, tmp_path) -> None:
    good = make_image("good.png", photo(40, 30))
    target = tmp_path / "out.png"
    pixelmill.run(good, target)
    before = target.read_bytes()
    bad = tmp_path / "bad.png"
    bad.write_bytes(good.read_bytes()[:200])
    with pytest.raises(InputError):
        pixelmill.run(bad, target)
    assert target.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["bad.png", "good.png", "out.png"]


def test_memory_urls_in_and_out(make_image) -> None:
    memory = fsspec.filesystem("memory")
    memory.pipe("/pm-test/in/a.png", photo(64, 48).write_to_buffer(".png"))
    result = pixelmill.run("memory://pm-test/in/a.png", "memory://pm-test/out/a.webp",
                           "resize:fit:32")  # fmt: skip
    assert result.destination == "memory://pm-test/out/a.webp"
    out = pyvips.Image.new_from_buffer(memory.cat("/pm-test/out/a.webp"), "")
    assert (out.width, out.height) == (32, 24)
    with pytest.raises(InputError):
        memory.pipe("/pm-test/in/bad.png", b"\x89PNG\r\n\x1a\n broken")
        pixelmill.run("memory://pm-test/in/bad.png", "memory://pm-test/out/bad.png")
    assert not memory.exists("/pm-test/out/bad.png")
    assert [p for p in memory.find("/pm-test") if "part" in p or "pixelmill" in p] == []
    memory.rm("/pm-test", recursive=True)


def test_spool_is_removed_when_the_writer_fails(tmp_path) -> None:
    target = locate(tmp_path / "x.png")
    with pytest.raises(RuntimeError), atomic_output(target) as spool:
        Path(spool).write_bytes(b"half")
        raise RuntimeError("encoder died")
    assert os.listdir(tmp_path) == []


def test_unknown_protocol_is_a_storage_error(make_image) -> None:
    with pytest.raises(StorageError, match="storage 'nosuchfs' is not available"):
        pixelmill.run(make_image("a.png"), "nosuchfs://bucket/a.png")


@pytest.mark.parametrize(
    ("pipeline", "size"),
    [
        ("thumbnail:100", (100, 75)),  # shrink-on-load from a stream
        ("thumbnail:100/rotate:90", (75, 100)),
        ("resize:fit:200/rotate:90/flip:vertical", (150, 200)),  # random access from a stream
        ("crop:100:100:smart", (100, 100)),
    ],
)
def test_streamed_sources_survive_garbage_collection(pipeline: str, size) -> None:
    import gc

    memory = fsspec.filesystem("memory")
    memory.pipe("/pm-stream/a.jpg", photo(800, 600).write_to_buffer(".jpg"))
    for _ in range(3):
        gc.collect()
        out = pixelmill.run("memory://pm-stream/a.jpg", "memory://pm-stream/o.png", pipeline)
        assert (out.width, out.height) == size
    memory.rm("/pm-stream", recursive=True)
