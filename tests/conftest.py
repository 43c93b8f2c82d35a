"""Shared fixtures: images made on the spot with libvips, the command line run in-process, and
tiny lab recipes."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pyvips
import sqlalchemy as sa

from pixelmill.cli import main

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
"""The PostgreSQL server the suite tests on (trust authentication, loopback)."""


def photo(width: int = 320, height: int = 240, bands: int = 3, seed: int = 1) -> pyvips.Image:
    """A photo-like 8-bit sRGB image: smooth structure plus grain, different in every band."""
    layers = [
        pyvips.Image.perlin(width, height, cell_size=max(8, width // 6), uchar=True, seed=seed + i)
        for i in range(1 if bands <= 2 else 3)
    ]
    image = layers[0].bandjoin(layers[1:]) if len(layers) > 1 else layers[0]
    grain = pyvips.Image.gaussnoise(width, height, sigma=6, seed=seed)
    image = (image + grain).cast("uchar")
    if bands in (2, 4):
        alpha = pyvips.Image.xyz(width, height).extract_band(0) * 255 / max(1, width - 1)
        image = image.bandjoin(alpha.cast("uchar"))
    space = "b-w" if bands <= 2 else "srgb"
    return image.copy(interpretation=space)


def deep(image: pyvips.Image) -> pyvips.Image:
    """The same image at 16 bits per sample."""
    grey = image.bands - (1 if image.hasalpha() else 0) == 1
    return image.colourspace("grey16" if grey else "rgb16")


@pytest.fixture
def make_image(tmp_path: Path) -> Callable[..., Path]:
    """Write an image to a file under tmp_path: ``make_image("a.png", photo(), **saver_options)``."""

    def make(name: str, image: pyvips.Image | None = None, **options) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        (photo() if image is None else image).write_to_file(str(path), **options)
        return path

    return make


PLUGINS = Path(__file__).parent / "plugins"


def plugin_path(name: str, folder: Path) -> str:
    """Put the test plugin ``tests/plugins/NAME`` in ``folder`` as an installed package would
    be (its module, and a ``.dist-info`` with the entry points of its ``pyproject.toml``), for
    ``PYTHONPATH``; returns ``folder``."""
    import shutil
    import tomllib

    source = PLUGINS / name
    project = tomllib.loads((source / "pyproject.toml").read_text())["project"]
    folder.mkdir(parents=True, exist_ok=True)
    for module in source.glob("*.py"):
        shutil.copy(module, folder / module.name)
    info = folder / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\n"
                                   f"Version: {project['version']}\n")  # fmt: skip
    groups = project.get("entry-points", {})
    (info / "entry_points.txt").write_text("".join(
        f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in points.items()) + "\n"
        for group, points in groups.items()))  # fmt: skip
    return str(folder)


class FakeClock:
    """A clock that moves only when told: leases run out and backoffs pass at once."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.time = start

    def now(self) -> float:
        return self.time

    def advance(self, seconds: float) -> None:
        self.time += seconds


@pytest.fixture
def queue(tmp_path: Path):
    """A job queue in a SQLite database of its own."""
    from pixelmill.jobs.queue import JobQueue

    made = JobQueue(f"sqlite:///{tmp_path / 'jobs.db'}")
    yield made
    made.close()


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """Run ``pixelmill ARGS…`` in-process; returns (exit code, stdout, stderr)."""

    def invoke(*args: str | os.PathLike[str]) -> tuple[int, str, str]:
        with pytest.raises(SystemExit) as stop:
            main([os.fspath(a) for a in args])
        out, err = capsys.readouterr()
        return int(stop.value.code or 0), out, err

    return invoke


PEAK_PROBE = """
import sys
from pixelmill.cli import main
try:
    main(sys.argv[1:])
finally:
    status = open("/proc/self/status").read()
    peak = next(line for line in status.splitlines() if line.startswith("VmHWM"))
    print("PEAK", int(peak.split()[1]) / 1024, file=sys.stderr)
"""


def pixelmill_peak_mb(*args: str, env: dict[str, str] | None = None) -> float:
    """Run ``pixelmill ARGS…`` in a fresh process; return its peak resident memory in MB.

    Read from the process's own VmHWM: ``ru_maxrss`` of a child never reads below the peak of
    the (large) test process that started it.
    """
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", PEAK_PROBE, *args], capture_output=True,
                          text=True, env=env, timeout=600, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return float(done.stderr.rsplit("PEAK", 1)[1])


def load(path: str | os.PathLike[str]) -> pyvips.Image:
    return pyvips.Image.new_from_file(os.fspath(path))


TINY_RECIPE = {
    "name": "tiny-x2",
    "task": "super-resolution",
    "scale": 2,
    "net": {"arch": "espcn", "widths": [8, 8]},
    "data": {"dead_leaves": 0.6, "textures": 0.4, "photos": 0},
    "augment": {"jitter": 0.1},
    "degradation": [{"blur": {"p": 0.5}}, "resize", {"noise": {"p": 0.5, "sigma": [1, 10]}}],
    "train": {"steps": 6, "batch": 2, "patch": 12, "warmup": 2, "checkpoint_every": 3},
}
"""A lab recipe that trains in about a second: a few steps of a tiny net on tiny patches."""


@pytest.fixture
def tiny_recipe() -> Callable[..., dict]:
    """Make the tiny recipe with some sections' keys replaced (``train={"seed": 1}``)."""

    def make(**sections: Any) -> dict:
        recipe = {**TINY_RECIPE}
        for key, changes in sections.items():
            mapping = isinstance(recipe.get(key), dict) and isinstance(changes, dict)
            recipe[key] = {**recipe[key], **changes} if mapping else changes
        return recipe

    return make


@pytest.fixture(scope="session")
def trained_tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The tiny recipe trained, exported and installed with ``pixelmill lab train``: returns
    (run folder, models folder)."""
    import yaml

    root = tmp_path_factory.mktemp("lab")
    (root / "tiny.yaml").write_text(yaml.safe_dump(TINY_RECIPE))
    models = root / "models"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PIXELMILL_MODELS_DIR", str(models))
        with pytest.raises(SystemExit) as stop:
            main(["lab", "train", str(root / "tiny.yaml"), "--out", str(root / "run"),
                  "--threads", "1", "--workers", "0", "-q"])  # fmt: skip
    assert stop.value.code == 0
    return root / "run", models


@contextlib.contextmanager
def postgres_schema() -> Iterator[str]:
    """The URL of a fresh schema of its own in the test PostgreSQL, dropped afterwards (the
    test is skipped when no server answers)."""
    schema = f"pixelmill_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES)
    try:
        with admin.begin() as db:
            db.exec_driver_sql(f"CREATE SCHEMA {schema}")
    except sa.exc.OperationalError as exc:
        pytest.skip(f"no PostgreSQL server at 127.0.0.1:5432 to test on: {exc.orig}")
    try:
        yield f"{POSTGRES}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as db:
            db.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh job database: a SQLite file, or a schema of its own in PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'jobs.db'}"
        return
    with postgres_schema() as url:
        yield url



def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the tests run on PostgreSQL (a ``postgresql`` parameter) with ``postgres``, so a
    quick local run can leave them out with the browser ones: ``pytest -m "not browser and not
    postgres"``."""
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {}).values()
        if any(isinstance(value, str) and value == "postgresql" for value in params):
            item.add_marker(pytest.mark.postgres)
