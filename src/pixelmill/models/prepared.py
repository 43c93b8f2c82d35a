"""What running a model derives from its ONNX file, kept on disk between processes: the graph
wrapped for pixels (one per pixel layout, see :mod:`pixelmill.models.pixelio`) and its working
bytes per pixel.

Deriving either needs the ``onnx`` package, whose import alone costs 0.7 s on a small CPU
(nearly all of it in ``ml_dtypes``): most of a one-shot model run's start-up. An entry is named
by the SHA-256 of the model file, the manifest, the layout and the code that derives it, so a
changed model, manifest or pixelmill never meets a stale entry; entries are written atomically,
and where the folder cannot be written each process derives them again.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
from pathlib import Path

from pixelmill.config import Settings
from pixelmill.models import pixelio
from pixelmill.models.manifest import Manifest


def cache_folder(settings: Settings) -> Path:
    """Where the derived forms are kept: ``cache/models`` in the data folder."""
    return Path(settings.data_folder) / "cache" / "models"


class Prepared:
    """One model file's derived forms, from the cache ``folder`` (None: derived every time)."""

    def __init__(self, path: Path, manifest: Manifest, folder: Path | None) -> None:
        self.path, self.manifest, self.folder = path, manifest, folder

    def wrapped(self, depth: int, bands: int, fresh: bool = False) -> bytes:
        """The model taking and giving ``depth``-bit tiles of ``bands`` bands; ``fresh``:
        derived again and stored over the entry (one the runtime could not load)."""
        entry = self._entry(f"{depth}-{bands}.onnx")
        if entry is not None and entry.is_file() and not fresh:
            return entry.read_bytes()
        data = pixelio.wrap(self.path, self.manifest, depth, bands)
        _store(entry, data)
        return data

    def working_bytes(self) -> float:
        """Bytes of intermediate tensors per input pixel of a tile."""
        entry = self._entry("working.json")
        if entry is not None and entry.is_file():
            try:
                return float(json.loads(entry.read_text())["working_bytes"])
            except (ValueError, KeyError, TypeError):
                pass  # a damaged entry is derived again
        value = pixelio.working_bytes(self.path)
        _store(entry, json.dumps({"working_bytes": value}).encode())
        return value

    def _entry(self, suffix: str) -> Path | None:
        if self.folder is None:
            return None
        return self.folder / f"{self._key}-{suffix}"

    @functools.cached_property
    def _key(self) -> str:
        digest = hashlib.sha256()
        with open(self.path, "rb") as model:
            for block in iter(lambda: model.read(1 << 20), b""):
                digest.update(block)
        digest.update(self.manifest.to_json().encode())
        digest.update(_code_digest())
        return digest.hexdigest()


@functools.cache
def _code_digest() -> bytes:
    """The derivations' own code: an entry made by other code is never read."""
    return hashlib.sha256(Path(pixelio.__file__).read_bytes()).digest()


def _store(entry: Path | None, data: bytes) -> None:
    """Write ``data`` to ``entry`` atomically; a folder that cannot be written is passed over."""
    if entry is None:
        return
    try:
        entry.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        handle, part = tempfile.mkstemp(dir=entry.parent, suffix=".part")
    except OSError:
        return
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(part, entry)
    except OSError:
        Path(part).unlink(missing_ok=True)
