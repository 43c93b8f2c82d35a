"""Temporary folders of a worker's jobs, so that nothing an attempt spools outlives it.

Each worker keeps one folder (``pixelmill-worker-PID-…`` in the temporary folder), locked while
it lives, with a folder per attempt inside: spools of remote destinations, model outputs, copies
of streamed sources. An attempt's folder is removed when the attempt ends, however it ends (its
process may have been killed); a worker that starts removes the folders of workers that died
(their lock is free).
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import os
import shutil
import tempfile
import time
from collections.abc import Iterator

PREFIX = "pixelmill-worker-"
LOCK = ".lock"
YOUNG = 60.0
"""Seconds during which a folder without its lock may still be a worker's being made."""


class Scratch:
    """A worker's temporary folder, under ``base`` (the system's when None)."""

    def __init__(self, base: str | None = None) -> None:
        self.base = base or tempfile.gettempdir()
        os.makedirs(self.base, exist_ok=True)
        self.removed = sweep(self.base)
        self.path = tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=self.base)
        self._lock = open(os.path.join(self.path, LOCK), "wb")  # noqa: SIM115  held for life
        fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)

    @contextlib.contextmanager
    def folder(self, name: str) -> Iterator[str]:
        """A fresh, empty folder for one attempt, removed when the block ends."""
        path = os.path.join(self.path, name)
        shutil.rmtree(path, ignore_errors=True)
        os.makedirs(path)
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)

    def close(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        self._lock.close()


def sweep(base: str) -> int:
    """Remove the folders that dead workers left in ``base``; how many."""
    removed = 0
    for folder in glob.glob(os.path.join(glob.escape(base), PREFIX + "*")):
        try:
            with open(os.path.join(folder, LOCK), "rb") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free: its worker is gone
        except BlockingIOError:
            continue  # a live worker's
        except OSError:  # no lock: half made, or being made now
            with contextlib.suppress(OSError):
                if time.time() - os.stat(folder).st_mtime < YOUNG:
                    continue
        shutil.rmtree(folder, ignore_errors=True)
        removed += 1
    return removed
