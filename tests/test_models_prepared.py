"""A model's derived forms (pixel-wrapped graphs, working bytes) kept on disk between
processes, so that running a model after the first time needs no ``onnx`` import."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import pyvips
from conftest import photo

from pixelmill.config import Settings
from pixelmill.models.pixelio import working_bytes, wrap
from pixelmill.models.prepared import Prepared, cache_folder
from pixelmill.models.registry import find

RUN = """
import sys
from pixelmill.cli import main
try:
    main(sys.argv[1:])
finally:
    print("ONNX IMPORTED" if "onnx" in sys.modules else "NO ONNX", file=sys.stderr)
"""


def test_a_second_process_runs_the_model_without_importing_onnx(tmp_path) -> None:
    photo(96, 64).write_to_file(str(tmp_path / "in.png"))
    env = {**os.environ, "PIXELMILL_DATA_DIR": str(tmp_path / "data")}
    outputs, said = [], []
    for turn in (1, 2):
        out = tmp_path / f"out{turn}.png"
        done = subprocess.run([sys.executable, "-c", RUN, "run", str(tmp_path / "in.png"),
                               str(out), "-p", "model:sr-x2"],
                              env=env, capture_output=True, text=True, timeout=120,
                              check=False)  # fmt: skip
        assert done.returncode == 0, done.stderr
        said.append(done.stderr.strip().splitlines()[-1])
        outputs.append(pyvips.Image.new_from_file(str(out)))
    assert said == ["ONNX IMPORTED", "NO ONNX"]
    assert (outputs[0] - outputs[1]).abs().max() == 0
    entries = sorted(p.name.split("-", 1)[1] for p in (tmp_path / "data/cache/models").iterdir())
    assert entries == ["8-3.onnx", "working.json"]


def test_entries_equal_what_they_stand_for_and_follow_the_manifest(tmp_path) -> None:
    model = find("sr-x2", Settings())
    prepared = Prepared(model.path, model.manifest, tmp_path)
    assert prepared.wrapped(16, 4) == wrap(model.path, model.manifest, 16, 4)
    assert prepared.working_bytes() == working_bytes(model.path)
    assert Prepared(model.path, model.manifest, tmp_path).wrapped(16, 4) == prepared.wrapped(16, 4)
    wider = dataclasses.replace(model.manifest, value_range=(-1.0, 1.0))
    other = Prepared(model.path, wider, tmp_path)
    assert other.wrapped(16, 4) == wrap(model.path, wider, 16, 4) != prepared.wrapped(16, 4)
    assert len(list(tmp_path.iterdir())) == 3  # two layouts, one working bytes


def test_a_damaged_entry_is_derived_again(tmp_path) -> None:
    model = find("denoise", Settings())
    prepared = Prepared(model.path, model.manifest, tmp_path)
    expected = prepared.working_bytes()
    (entry,) = tmp_path.glob("*-working.json")
    entry.write_text("{not json")
    assert Prepared(model.path, model.manifest, tmp_path).working_bytes() == expected


def test_a_folder_that_cannot_be_written_only_costs_the_derivation(tmp_path) -> None:
    model = find("denoise", Settings())
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    prepared = Prepared(model.path, model.manifest, blocked / "models")
    assert prepared.wrapped(8, 3) == wrap(model.path, model.manifest, 8, 3)
    assert list(tmp_path.iterdir()) == [blocked]


def test_the_cache_lives_in_the_data_folder(tmp_path) -> None:
    assert cache_folder(Settings(data_dir=str(tmp_path))) == tmp_path / "cache" / "models"


def test_a_damaged_graph_entry_is_derived_again(tmp_path) -> None:
    import numpy as np

    from pixelmill.models.runtime import Session, session_options

    settings = Settings()
    model = find("sr-x2", settings)
    Prepared(model.path, model.manifest, tmp_path).wrapped(8, 3)
    (entry,) = tmp_path.glob("*-8-3.onnx")
    entry.write_bytes(b"not an onnx graph")
    session = Session(model, session_options(settings), ("CPUExecutionProvider",), tmp_path)
    tiles = np.zeros((1, 16, 16, 3), np.uint8)
    assert session.run(tiles).shape == (1, 32, 32, 3)
    assert entry.read_bytes() == wrap(model.path, model.manifest, 8, 3)
