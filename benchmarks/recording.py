"""What every benchmark program records beside its figures, and how it prints them: the command
that made them, the machine, the commit and the time in the results JSON, and markdown tables.

    results = recording.save(HERE / "results" / "name.json", {"summary": rows, ...})
    print(recording.table(["case", "seconds"], [[row["case"], f"{row['s']:.2f}"] ...]))
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def machine(**libraries: str) -> dict[str, Any]:
    """The machine and the versions of ``libraries`` the figures were measured with."""
    cpuinfo = Path("/proc/cpuinfo")
    models = [line.split(":", 1)[1].strip() for line in
              (cpuinfo.read_text().splitlines() if cpuinfo.exists() else [])
              if line.startswith("model name")]  # fmt: skip
    return {
        "cpu_count": os.cpu_count(),
        "cpu": models[0] if models else platform.processor(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average": os.getloadavg(),
        **libraries,
    }


def commit() -> str | None:
    """The commit measured (``-dirty`` when the tree had changes)."""
    found = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=HERE,
                           capture_output=True, text=True, check=False).stdout.strip()  # fmt: skip
    return found or None


def sources(paths: Iterable[str]) -> dict[str, str]:
    """The first 12 hex digits of the SHA-256 of the pixelmill sources measured (the tree may
    hold uncommitted work): files, or every .py of a folder, under the package."""
    import pixelmill

    root = Path(pixelmill.__file__).resolve().parent
    files = [f for p in paths for f in (sorted((root / p).glob("*.py")) if (root / p).is_dir()
                                        else [root / p])]  # fmt: skip
    return {str(f.relative_to(root.parent)): hashlib.sha256(f.read_bytes()).hexdigest()[:12]
            for f in files}  # fmt: skip


def log(*parts: Any) -> None:
    """Progress to stderr, at once."""
    print(*parts, file=sys.stderr, flush=True)


POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
"""The PostgreSQL server benchmarks measure on (trust authentication, loopback)."""


@contextlib.contextmanager
def postgres_schema(prefix: str = "bench") -> Iterator[str]:
    """The URL of a fresh schema of its own in :data:`POSTGRES`, dropped afterwards (raises
    ``sqlalchemy.exc.OperationalError`` when no server answers)."""
    import uuid

    import sqlalchemy as sa

    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(POSTGRES)
    with admin.begin() as db:
        db.exec_driver_sql(f"CREATE SCHEMA {schema}")
    try:
        yield f"{POSTGRES}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as db:
            db.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


def command() -> str:
    """The command line that ran the program, as a reader would type it again."""
    script = Path(sys.argv[0]).resolve()
    shown = script.relative_to(HERE.parent) if script.is_relative_to(HERE.parent) else script
    return " ".join(["python", str(shown), *sys.argv[1:]])


def save(path: Path, figures: dict[str, Any], **libraries: str) -> dict[str, Any]:
    """Write ``figures`` to ``path`` as JSON with the command, the machine (and the versions of
    ``libraries``), the commit and the time; returns what was written."""
    record = {"command": command(), "commit": commit(), "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
              "machine": machine(**libraries), **figures}  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {path}", file=sys.stderr)
    return record


def row(cells: Iterable[Any]) -> str:
    """One markdown table row; ``None`` cells show as –."""
    return "| " + " | ".join("–" if cell is None else str(cell) for cell in cells) + " |"


def table(header: Iterable[str], rows: Iterable[Iterable[Any]], text: int = 1) -> str:
    """A markdown table; the first ``text`` columns are left-aligned, the others (figures)
    right-aligned."""
    header = list(header)
    lines = [row(header), "|" + "---|" * text + "--:|" * (len(header) - text)]
    return "\n".join([*lines, *map(row, rows)])
