"""Confining a caller to parts of a storage.

A location is compared with the allowed prefixes as it really is: local paths with their
symbolic links resolved (a link inside the storage cannot lead out of it), storage URLs with no
``.``, ``..`` or empty segments (object stores keep them literally, other layers fold them).
Reserved prefixes (the service's render cache, say) stay out of reach even below an allowed
one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from pixelmill.errors import UsageError
from pixelmill.storage.location import Location, locate


def resolved(loc: Location) -> Location:
    """A local location with its symbolic links resolved (the part that exists); a storage
    URL as it is."""
    return Location(os.path.realpath(loc.path)) if loc.is_local else loc


def _segments_ok(loc: Location) -> bool:
    if loc.is_local:
        return True
    rest = loc.url.split("://", 1)[-1].split("::")[-1]
    return not any(part in (".", "..", "") for part in rest.rstrip("/").split("/"))


@dataclass(frozen=True)
class Scope:
    """Where a caller may read and write."""

    allowed: tuple[Location, ...]
    """Prefixes below which it may (not the prefixes themselves)."""
    reserved: tuple[Location, ...] = ()
    """Prefixes it may never reach, even below an allowed one."""

    def to_json(self) -> dict[str, list[str]]:
        return {"allowed": [loc.url for loc in self.allowed],
                "reserved": [loc.url for loc in self.reserved]}  # fmt: skip

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Scope:
        return cls(tuple(map(locate, data["allowed"])), tuple(map(locate, data["reserved"])))

    def check(self, loc: Location, what: str) -> Location:
        """``loc`` as it really is, if it lies below an allowed prefix and no reserved one;
        else a :class:`~pixelmill.errors.UsageError` naming ``what`` it was."""
        real = resolved(loc)
        if not _segments_ok(loc):
            raise UsageError(f"{what} {loc.url!r} has '.', '..' or empty path segments")
        inside = any(base.contains(real) and base.url != real.url
                     for base in map(resolved, self.allowed))  # fmt: skip
        if not inside:
            where = ", ".join(base.url for base in self.allowed)
            shown = loc.url if real == loc else f"{loc.url} (really {real.url})"
            raise UsageError(f"{what} {shown} is outside the storage it may use ({where})")
        if any(resolved(area).contains(real) for area in self.reserved):
            raise UsageError(f"{what} {loc.url!r} lies in an area reserved for the service")
        return real
