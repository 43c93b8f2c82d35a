"""The packages import downwards only: the faces (command line, service, jobs, lab, bench) sit
on the public API, the API on the engine, the engine on the parts (formats, models), the parts
on the ground (grammar, storage, metrics), and no arrow runs back up or sideways between two
packages of one layer."""

from __future__ import annotations

import ast
from pathlib import Path

import pixelmill

SOURCE = Path(pixelmill.__file__).parent
LAYER = {
    "errors": 0,
    "config": 1, "plugins": 1, "database": 1,
    "pipeline": 2, "storage": 2, "quality": 2,
    "codecs": 3, "models": 3,
    "compress": 4, "usage": 4,
    "engine": 5,
    "api": 6,
    "__init__": 7, "datasets": 7,
    "review": 8,
    "batch": 9, "jobs": 9, "lab": 9, "bench": 9, "optimize": 9,
    "service": 10,
    "cli": 11,
    "__main__": 12,
}  # fmt: skip
"""Each top-level module or package of pixelmill and its layer: it may import only what lies
in a lower one (or within itself)."""


def package_of(module: str) -> str:
    """The top-level part of a ``pixelmill.…`` module name (``__init__`` for the root)."""
    return module.split(".")[1] if "." in module else "__init__"


def imports(path: Path) -> set[str]:
    """The pixelmill modules a file imports (``from pixelmill import x`` counts as ``x`` where x
    is a module, as the root package where it is a name such as ``__version__``)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("pixelmill"))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pixelmill"):
            if node.module == "pixelmill":
                found.update(f"pixelmill.{a.name}" if a.name in LAYER else "pixelmill"
                             for a in node.names)  # fmt: skip
            else:
                found.add(node.module)
    return found


def test_every_package_has_a_layer() -> None:
    tops = {p.stem if p.is_file() else p.name for p in SOURCE.iterdir()
            if (p.suffix == ".py" or (p / "__init__.py").exists())}  # fmt: skip
    assert tops == set(LAYER)


def test_no_import_runs_up_or_sideways() -> None:
    wrong = []
    for path in sorted(SOURCE.rglob("*.py")):
        relative = path.relative_to(SOURCE)
        mine = relative.parts[0].removesuffix(".py")
        for module in imports(path):
            theirs = package_of(module)
            if theirs != mine and LAYER[theirs] >= LAYER[mine]:
                wrong.append(f"{relative} imports {module}")
    assert not wrong, wrong
