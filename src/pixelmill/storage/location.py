"""Sources and destinations as paths or URLs, read and written through their store
(:mod:`pixelmill.storage.stores`: the local disk, or fsspec for any URL).

Credentials and endpoints of URLs come from the environment or fsspec's configuration (e.g.
``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL_S3``), never from a
pipeline. http(s) redirects are not followed: one could lead the service to an address it would
refuse.

Writes are atomic: output is written under a temporary name and committed in one step, and
removed if anything fails, so nobody sees a partial file. Every failure of a store becomes one
:class:`~pixelmill.errors.StorageError` line.
"""

from __future__ import annotations

import contextlib
import functools
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from pixelmill.errors import LimitError, NotFoundError, PixelmillError, StorageError
from pixelmill.storage.stores import LOCAL, FsspecStore, Store, remove_empty

CHUNK = 1 << 20
SPOOL_IN_MEMORY = 64 * 1024**2
"""Bytes of a streamed-only source kept in memory before its copy moves to a file."""


EXTRAS = {"s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs", "az": "azure", "abfs": "azure",
          "abfss": "azure", "dropbox": "dropbox"}  # fmt: skip
"""The pixelmill extra that installs each storage's fsspec package."""

@dataclass(frozen=True)
class Location:
    """A file or folder: an absolute local path, or a URL that fsspec resolves (chained URLs
    such as ``simplecache::s3://…`` included)."""

    url: str

    @property
    def is_local(self) -> bool:
        return "://" not in self.url and "::" not in self.url

    @functools.cached_property
    def _resolved(self) -> tuple[Any, str]:
        import fsspec.core

        options = {}
        if self.url.startswith(("http://", "https://")):  # a redirect could lead anywhere
            options["allow_redirects"] = False
        try:
            return fsspec.core.url_to_fs(self.url, **options)
        except ImportError:
            protocol = self.url.split("://", 1)[0]
            extra = EXTRAS.get(protocol)
            how = (f"pip install 'pixelmill[{extra}]'" if extra
                   else "install the fsspec package for it")  # fmt: skip
            raise StorageError(f"{self.url}: storage {protocol!r} needs a package that is not "
                               f"installed: {how}") from None  # fmt: skip
        except ValueError as exc:
            protocol = self.url.split("://", 1)[0]
            raise StorageError(
                f"{self.url}: storage {protocol!r} is not available: {exc}"
            ) from None

    @property
    def fs(self) -> Any:
        """The fsspec filesystem of a URL."""
        return self._resolved[0]

    @property
    def path(self) -> str:
        """The local path, or the path within the filesystem of a URL."""
        return self.url if self.is_local else self._resolved[1]

    @property
    def store(self) -> Store:
        """The storage holding the location."""
        return LOCAL if self.is_local else FsspecStore(self.fs)

    @property
    def name(self) -> str:
        return self.url.rstrip("/").rsplit("/", 1)[-1]

    def child(self, relative: str) -> Location:
        """The location ``relative`` (``/``-separated) below this folder."""
        if self.is_local:
            return Location(os.path.join(self.url, *relative.split("/")))
        return Location(self.url.rstrip("/") + "/" + relative)

    def contains(self, other: Location) -> bool:
        """Whether ``other`` is this folder or lies below it."""
        if self.is_local != other.is_local:
            return False
        if self.is_local:
            return os.path.commonpath([self.url, other.url]) == self.url
        return (other.url.rstrip("/") + "/").startswith(self.url.rstrip("/") + "/")

    def __str__(self) -> str:
        return self.url


def locate(url: str | os.PathLike[str] | Location) -> Location:
    """Parse a path or URL; the storage rules of plugins may refuse it."""
    if isinstance(url, Location):
        return url
    text = os.fspath(url)
    if not text:
        raise StorageError("empty path")
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise StorageError(f"{text!r}: a path may not hold control characters")
    try:
        text.encode()
    except UnicodeEncodeError:
        raise StorageError(f"{text!r}: a path must be valid text (UTF-8)") from None
    if "://" not in text and "::" not in text:
        return _checked(Location(os.path.abspath(os.path.expanduser(text))))
    protocol, _, rest = text.partition("://")
    if protocol.lower() == "file":
        return _checked(Location(os.path.abspath(rest)))
    if not rest.strip("/"):
        raise StorageError(f"{text}: no path after {protocol}://")
    return _checked(Location(text))


def _checked(loc: Location) -> Location:
    for rule in _rules():
        why = rule.value(loc)
        if why:
            raise StorageError(f"{loc}: refused by storage rule {rule.name!r} of "
                               f"{rule.package}: {why}")  # fmt: skip
    return loc


@functools.cache
def _rules() -> tuple[Any, ...]:
    """The storage rules of plugins (entry point group ``pixelmill.storage``)."""
    from pixelmill.plugins import discover

    found = tuple(discover("pixelmill.storage"))
    for rule in found:
        if not callable(rule.value):
            raise rule.refuse(f"{rule.value!r} is not a storage rule (a callable)")
    return found


@contextlib.contextmanager
def _storage_errors(loc: Location, doing: str) -> Iterator[None]:
    """Turn any failure of a storage backend into one StorageError line."""
    try:
        yield
    except PixelmillError:
        raise
    except FileNotFoundError as exc:
        if isinstance(exc.__cause__, OSError):  # fsspec's http: the server could not be reached
            raise StorageError(f"{loc}: {doing} failed: {exc.__cause__}") from None
        raise NotFoundError(f"{loc}: not found") from None
    except IsADirectoryError:
        raise StorageError(f"{loc}: is a folder, not a file") from None
    except PermissionError:
        hint = "" if loc.is_local else " (check the storage credentials)"
        raise StorageError(f"{loc}: permission denied while {doing}{hint}") from None
    except OSError as exc:
        raise StorageError(f"{loc}: {doing} failed: {exc.strerror or exc}") from None
    except Exception as exc:  # noqa: BLE001  # backends raise their own types (botocore, azure, …)
        raise StorageError(f"{loc}: {doing} failed: {type(exc).__name__}: {exc}") from None


def version(loc: Location) -> tuple[int, int, int] | None:
    """What tells a local file's versions apart (size, modification time, inode), read in one
    ``stat``; None for a missing file or a remote one."""
    return loc.store.version(loc.path)


def input_size(loc: Location) -> int | None:
    """Size in bytes of a source file (None where the storage does not say, as some HTTP
    servers)."""
    with _storage_errors(loc, "reading"):
        return loc.store.size(loc.path)


def exists(loc: Location) -> bool:
    """Whether a file is there (unreadable storage counts as not)."""
    try:
        input_size(loc)
    except StorageError:
        return False
    return True


def chunks(loc: Location, size: int = CHUNK) -> Iterator[bytes]:
    """A file's bytes, ``size`` at a time."""
    with _storage_errors(loc, "reading"):
        reading = loc.store.open(loc.path)
    with reading:
        while chunk := reading.read(size):
            yield chunk


@contextlib.contextmanager
def open_input(loc: Location, limit: int | None = None) -> Iterator[str | IO[bytes]]:
    """A local path (libvips opens it itself), or an open, seekable binary file for remote
    sources. A source that can only be streamed (an http server that gives no length) is copied
    first, to memory or to a temporary file, up to ``limit`` bytes."""
    if loc.store.local:
        yield loc.path
        return
    with _storage_errors(loc, "reading"):
        handle = loc.store.open(loc.path)
    with handle:
        if _seekable(handle):
            yield handle
            return
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY) as copy:
            with _storage_errors(loc, "reading"):
                while chunk := handle.read(CHUNK):
                    if limit is not None and copy.tell() + len(chunk) > limit:
                        raise LimitError(f"{loc}: more than the limit of {limit:,} bytes "
                                         "(max_bytes)")  # fmt: skip
                    copy.write(chunk)
            copy.seek(0)
            yield copy


def _seekable(handle: IO[bytes]) -> bool:
    """Whether a file really seeks (fsspec's streaming http files say they do, then raise)."""
    try:
        handle.seek(1)
        handle.seek(0)
    except (ValueError, OSError):
        return False
    return True


def read_bytes(loc: Location, count: int = -1) -> bytes:
    """A source's bytes: all of them, or the first ``count``."""
    with _storage_errors(loc, "reading"), loc.store.open(loc.path) as handle:
        return handle.read(count)


@contextlib.contextmanager
def atomic_output(loc: Location, tmp_dir: str | None = None) -> Iterator[str]:
    """Yield a local path to write; on success it becomes ``loc`` at once, on failure it vanishes
    (with any folder made for it)."""
    token = os.urandom(6).hex()
    with _storage_errors(loc, "writing"):
        spool, created = loc.store.spool(loc.path, token, tmp_dir)
    committed = False
    try:
        yield spool
        with _storage_errors(loc, "writing"):
            loc.store.commit(spool, loc.path, token)
        committed = True
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(spool)
        if created and not committed:
            remove_empty(os.path.dirname(loc.path), created)


def remove(loc: Location) -> None:
    """Remove a file (nothing when it is not there)."""
    with _storage_errors(loc, "removing"):
        loc.store.remove(loc.path)


def remove_spools(loc: Location) -> int:
    """Remove what interrupted writes to ``loc`` left beside it (a process killed before it
    could tidy up); how many."""
    left = loc.store.leftovers(loc.path)
    for path in left:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    return len(left)


def is_dir(loc: Location) -> bool:
    """Whether the location is an existing folder (or a non-empty prefix)."""
    with _storage_errors(loc, "listing"):
        return loc.store.is_dir(loc.path)


def list_files(loc: Location, suffixes: frozenset[str]) -> list[str]:
    """Paths relative to the folder ``loc`` (``/``-separated, sorted) of files below it whose
    name ends with one of ``suffixes``; hidden files and folders are skipped."""
    return sorted(iter_files(loc, suffixes))


def iter_files(loc: Location, suffixes: frozenset[str]) -> Iterator[str]:
    """The files of :func:`list_files` in the store's order, listed lazily (folder by folder,
    page by page), so a prefix of millions of keys is never held at once."""
    ends = tuple(suffixes)
    with _storage_errors(loc, "listing"):
        for rel in loc.store.files(loc.path):
            if rel.lower().endswith(ends) and not any(p.startswith(".") for p in rel.split("/")):
                yield rel
