"""Reading an ICC profile's header and description, for ``pixelmill info``.

Written by hand because it is 128 header bytes and one tag: libvips exposes the profile only as
bytes, and LittleCMS bindings (Pillow's ImageCms) would pull in Pillow for three fields.
Layout from ICC.1:2010 (sections 7.2, 10.13 'mluc') and ICC.1:2001-04 ('desc').
"""

from __future__ import annotations

import struct
from typing import Any


def describe_icc(profile: bytes) -> dict[str, Any]:
    """Size, version, class, colour space and description of an ICC profile."""
    info: dict[str, Any] = {"bytes": len(profile)}
    if len(profile) < 132 or profile[36:40] != b"acsp":
        info["valid"] = False
        return info
    info.update(
        valid=True,
        version=f"{profile[8]}.{profile[9] >> 4}",
        device_class=profile[12:16].decode("latin-1").strip(),
        colour_space=profile[16:20].decode("latin-1").strip(),
        description=_description(profile),
    )
    return info


def _description(profile: bytes) -> str | None:
    (count,) = struct.unpack_from(">I", profile, 128)
    present = (len(profile) - 132) // 12  # a count past the profile's end is not believed
    for index in range(min(count, present, 200)):
        signature, offset, size = struct.unpack_from(">4sII", profile, 132 + 12 * index)
        if signature == b"desc" and offset + size <= len(profile):
            return _text(profile[offset : offset + size])
    return None


def _text(tag: bytes) -> str | None:
    kind = tag[:4]
    if kind == b"desc" and len(tag) >= 12:
        (length,) = struct.unpack_from(">I", tag, 8)
        return tag[12 : 12 + length].split(b"\0", 1)[0].decode("latin-1") or None
    if kind == b"mluc" and len(tag) >= 28:
        (records,) = struct.unpack_from(">I", tag, 8)
        if records:
            length, offset = struct.unpack_from(">II", tag, 20)
            return tag[offset : offset + length].decode("utf-16-be", "replace") or None
    return None
