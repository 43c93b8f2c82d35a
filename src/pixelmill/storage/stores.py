"""The two kinds of storage behind a location, one interface (as fsspec's filesystems share
one): the local disk through ``os``, so libvips opens local files itself (memory-mapped, no copy
through Python) and the command line does not pay fsspec's import for them, and any other URL
through its fsspec filesystem (``memory://``, ``s3://``, ``gs://``, ``az://``, …).

The local store writes beside the destination and renames (atomic on one filesystem); object
stores receive a whole file in one upload, others an upload under a temporary name then a move.
"""

from __future__ import annotations

import contextlib
import glob
import os
import tempfile
from collections.abc import Iterator
from typing import IO, Any, Protocol

from pixelmill.errors import StorageError

ATOMIC_PUT = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "memory", "dropbox"})
"""Protocols whose single upload only becomes visible once complete."""


class Store(Protocol):
    """What pixelmill asks of a storage; paths are the store's own (a local path, or the path
    within an fsspec filesystem)."""

    local: bool
    """Whether paths are local files that other libraries can open themselves."""

    def size(self, path: str) -> int | None:
        """Bytes in a file (None where the storage does not say); IsADirectoryError for a
        folder."""

    def open(self, path: str) -> IO[bytes]:
        """A file, open for reading bytes."""

    def is_dir(self, path: str) -> bool:
        """Whether ``path`` is a folder (or a non-empty prefix)."""

    def files(self, root: str) -> Iterator[str]:
        """Paths of the files below the folder ``root``, relative to it and ``/``-separated."""

    def version(self, path: str) -> tuple[int, int, int] | None:
        """What tells a file's versions apart without reading it; None where nothing cheap
        does."""

    def spool(self, path: str, token: str, tmp_dir: str | None) -> tuple[str, str | None]:
        """A new local file to write what becomes ``path``, and the topmost folder made for it
        (to remove if the write fails), if any."""

    def commit(self, spool: str, path: str, token: str) -> None:
        """Make the spool's bytes the file ``path`` in one visible step."""

    def leftovers(self, path: str) -> list[str]:
        """Spool files that interrupted writes to ``path`` left behind."""

    def remove(self, path: str) -> None:
        """Remove the file ``path`` (nothing when it is not there)."""


class LocalStore:
    """The local disk."""

    local = True

    def size(self, path: str) -> int | None:
        if os.path.isdir(path):
            raise IsADirectoryError(path)
        return os.path.getsize(path)

    def open(self, path: str) -> IO[bytes]:
        return open(path, "rb")

    def is_dir(self, path: str) -> bool:
        return os.path.isdir(path)

    def files(self, root: str) -> Iterator[str]:
        for folder, dirs, names in os.walk(root):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            rel = os.path.relpath(folder, root)
            for name in names:
                yield name if rel == "." else f"{rel}/{name}".replace(os.sep, "/")

    def version(self, path: str) -> tuple[int, int, int] | None:
        try:
            found = os.stat(path)
        except OSError:
            return None
        return found.st_size, found.st_mtime_ns, found.st_ino

    def spool(self, path: str, token: str, tmp_dir: str | None) -> tuple[str, str | None]:
        """Beside the destination (a rename within one folder is atomic), created at once so a
        parallel run tidying an empty folder cannot remove it; if one did so in between, the
        folders are made again."""
        if os.path.isdir(path):
            raise IsADirectoryError(path)
        spool = _spool_name(path, token)
        created, tries = None, 3
        while True:
            try:  # a parallel run may remove a parent while it is being made, or after
                created = _make_folders(os.path.dirname(spool)) or created
                with open(spool, "xb"):
                    return spool, created
            except FileNotFoundError:
                tries -= 1
                if not tries:
                    raise

    def commit(self, spool: str, path: str, token: str) -> None:
        os.replace(spool, path)

    def leftovers(self, path: str) -> list[str]:
        return glob.glob(_spool_name(path, "?" * 12).replace("[", "[[]"))

    def remove(self, path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)


class FsspecStore:
    """A filesystem of fsspec."""

    local = False

    def __init__(self, fs: Any) -> None:
        self.fs = fs

    def size(self, path: str) -> int | None:
        info = self.fs.info(path)
        if info.get("type") == "directory":
            raise IsADirectoryError(path)
        return None if info.get("size") is None else int(info["size"])

    def open(self, path: str) -> IO[bytes]:
        return self.fs.open(path, "rb")

    def is_dir(self, path: str) -> bool:
        return bool(self.fs.isdir(path))

    def files(self, root: str) -> Iterator[str]:
        """S3 lists every key below ``root`` page by page (1,000 keys a request), other stores
        folder by folder; no listing stays in fsspec's cache, so a prefix of millions of keys
        is never held at once (on S3 not even a flat one)."""
        root = root.rstrip("/") + "/"
        if _paged(self.fs):
            yield from self._keys(root)
            return
        for folder, dirs, names in self.fs.walk(root):  # one listing call per folder
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            for name in names:
                path = f"{folder.rstrip('/')}/{name}"
                if path.startswith(root):
                    yield path[len(root) :]
            self.fs.invalidate_cache(folder)

    def _keys(self, root: str) -> Iterator[str]:
        from fsspec.asyn import sync

        bucket, key, _ = self.fs.split_path(root)
        entries = self.fs._iterdir(bucket, delimiter="", prefix=key.rstrip("/") + "/")
        while True:
            try:
                entry = sync(self.fs.loop, entries.__anext__)
            except StopAsyncIteration:
                return
            path = entry["name"]
            if path.startswith(root) and not path.endswith("/"):  # "…/" marks a folder
                yield path[len(root) :]

    def version(self, path: str) -> tuple[int, int, int] | None:
        return None

    def spool(self, path: str, token: str, tmp_dir: str | None) -> tuple[str, str | None]:
        """In the temporary folder: the upload happens at the commit."""
        try:
            fd, spool = tempfile.mkstemp(prefix="pixelmill-", suffix=".part", dir=tmp_dir)
        except OSError as exc:
            raise StorageError(f"{tmp_dir or tempfile.gettempdir()}: cannot hold a file to "
                               f"upload: {exc.strerror or exc}") from None  # fmt: skip
        os.close(fd)
        return spool, None

    def commit(self, spool: str, path: str, token: str) -> None:
        if self.atomic_put:
            self.fs.put_file(spool, path)
            return
        staging = f"{path}.{token}.part"
        self.fs.put_file(spool, staging)
        try:
            self.fs.mv(staging, path)
        except BaseException:
            with contextlib.suppress(Exception):
                self.fs.rm(staging)
            raise

    def leftovers(self, path: str) -> list[str]:
        return []  # object stores receive whole files

    def remove(self, path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(path)

    @property
    def atomic_put(self) -> bool:
        protocols = self.fs.protocol
        protocols = (protocols,) if isinstance(protocols, str) else protocols
        return any(p in ATOMIC_PUT for p in protocols)


LOCAL = LocalStore()


def _paged(fs: Any) -> bool:
    """Whether ``fs`` is s3fs, whose ``_iterdir`` pages through a whole prefix without a
    delimiter (fsspec has no paged listing of its own)."""
    return type(fs).__module__.startswith("s3fs") and hasattr(fs, "_iterdir")


def _spool_name(path: str, token: str) -> str:
    """The file a local write goes to before it becomes ``path``."""
    folder, name = os.path.split(path)
    return os.path.join(folder, f".{name}.{token}.part")


def _make_folders(folder: str) -> str | None:
    """Create ``folder`` and missing parents; return the topmost one created, if any."""
    top = None
    probe = folder
    while probe and not os.path.isdir(probe):
        top, probe = probe, os.path.dirname(probe)
    os.makedirs(folder, exist_ok=True)
    return top


def remove_empty(folder: str, top: str) -> None:
    """Remove ``folder`` and its parents up to ``top`` while they are empty."""
    while True:
        try:
            os.rmdir(folder)
        except OSError:
            return
        if folder == top:
            return
        folder = os.path.dirname(folder)
