"""The fuzz harnesses' checks (fuzz/fuzz_checks.py), without atheris, on every seed of their
corpora and every reproducer saved under fuzz/regressions/: each input must be accepted or
refused with a PixelmillError, and every pipeline that parses must round-trip through its
canonical text and JSON forms. See fuzz/README.md."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

FUZZ = Path(__file__).resolve().parent.parent / "fuzz"
sys.path.insert(0, str(FUZZ))

import fuzz_checks


def inputs(harness: str) -> list[pytest.param]:
    """The seeds and the saved reproducers of a harness, as test parameters."""
    params = []
    for folder in (FUZZ / "corpus" / harness, FUZZ / "regressions" / harness):
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if not path.is_file() or path.name.startswith(".") or path.suffix == ".md":
                continue
            params.append(pytest.param(path, id=path.relative_to(FUZZ).as_posix()))
    return params


def test_the_corpora_are_there() -> None:
    assert len(inputs("pipeline")) >= 10
    assert len(inputs("loaders")) >= 10


@pytest.mark.parametrize("path", inputs("pipeline"))
def test_pipeline_input(path: Path) -> None:
    fuzz_checks.check_pipeline(path.read_bytes())  # raises on a bug
    if path.parent.name == "pipeline" and path.parent.parent.name == "corpus":
        text = path.read_bytes().decode()
        assert fuzz_checks.check_pipeline_source(text) is not None, "a seed must parse"


@pytest.mark.parametrize("path", inputs("loaders"))
def test_loader_input(path: Path, tmp_path: Path) -> None:
    outcome = fuzz_checks.check_loader(path.read_bytes(), str(tmp_path / "input"))  # raises on a bug
    seed = path.parent.parent.name == "corpus"
    if seed and not path.name.startswith("hostile-"):
        assert outcome == "ok", f"a valid seed must decode, not end in a {outcome} error"


def test_the_reproducers_end_as_they_should(tmp_path: Path) -> None:
    """What each fixed bug now gives: a bad input (exit 3), a refused pipeline."""
    found = FUZZ / "regressions"
    for name in ("icc-tag-table-past-end.jpg", "jpeg-undefined-quant-table.jpg"):
        data = (found / "loaders" / name).read_bytes()
        assert fuzz_checks.check_loader(data, str(tmp_path / "input")) == "input", name
    text = (found / "pipeline" / "qc-gate-infinite-threshold.txt").read_text()
    assert fuzz_checks.check_pipeline_source(text) is None
