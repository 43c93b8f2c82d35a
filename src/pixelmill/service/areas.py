"""Where each caller of the jobs API works in the service's storage.

While the API is open (no key exists) a caller works in the whole storage. Once keys exist,
each key has a folder of its own, ``keys/NAME/``, where relative paths resolve and its uploads
and outputs go, and may also use the prefixes it was granted (``pixelmill keys add NAME
--prefix …``); nothing else, so one key can neither read nor overwrite another's images. The
service's own areas (:data:`RESERVED`: the render cache) are out of every caller's reach.
Paths are checked with their symbolic links resolved, when the job is queued and again when it
runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from pixelmill import storage
from pixelmill.service.auth import Key
from pixelmill.storage import Location, Scope

RESERVED = ("cache",)
"""Folders of the storage that belong to the service."""
KEYS = "keys"
"""The folder of the keys' own folders."""


@dataclass(frozen=True)
class Area:
    """One caller's part of the storage."""

    home: Location
    """Where relative paths resolve, and uploads and outputs go."""
    scope: Scope

    def locate(self, url: str, what: str) -> Location:
        """``url`` (relative to the home, or absolute) as a location the caller may use."""
        absolute = "://" in url or url.startswith("/")
        return self.scope.check(storage.locate(url if absolute else self.home.child(url).url),
                                what)  # fmt: skip



def area_for(root: Location, key: Key | None) -> Area:
    """The part of the storage ``root`` that the caller with ``key`` (None: the API is open)
    may use."""
    reserved = tuple(root.child(name) for name in RESERVED)
    if key is None:
        return Area(root, Scope((root,), reserved))
    home = root.child(f"{KEYS}/{key.name}")
    granted = tuple(storage.locate(p) if "://" in p or p.startswith("/")
                    else root.child(p.strip("/")) for p in key.prefixes)  # fmt: skip
    return Area(home, Scope((home, *granted), reserved))
