"""Files, folders or prefixes encoded to a target, each output named
after the format chosen for it, with what a fixed quality would have cost beside it.

Results are cached by the source's content, the target and the format set (in the data
folder's ``cache/optimize``), so a second run over the same images does no search. The fixed
baseline is the one quality of the most chosen format that brings 95 % of the images to the
target: each image passes at its own chosen quality and above, so that quality is the 95th
percentile of the chosen ones, and each image is encoded once more at it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pixelmill import api, storage
from pixelmill.config import Settings
from pixelmill.errors import PixelmillError
from pixelmill.pipeline import Pipeline
from pixelmill.pipeline.formats import FORMATS
from pixelmill.storage import Location

SHARE = 0.95
"""Share of the images a fixed quality must bring to the target to count as the baseline."""


@dataclass
class Item:
    source: str
    output: str = ""
    bytes_before: int = 0
    encode: dict[str, Any] = field(default_factory=dict)
    fixed_bytes: int | None = None
    error: str = ""
    cached: bool = False

    @property
    def bytes_after(self) -> int:
        return int(self.encode.get("bytes", 0))


@dataclass
class Summary:
    target: str
    formats: tuple[str, ...]
    items: list[Item]
    seconds: float
    fixed: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        done = [i for i in self.items if not i.error]
        before = sum(i.bytes_before for i in done)
        after = sum(i.bytes_after for i in done)
        fixed = sum(i.fixed_bytes or 0 for i in done) if self.fixed else None
        return {
            "target": self.target, "formats": list(self.formats), "images": len(self.items),
            "failed": len(self.items) - len(done),
            "missed": sum(1 for i in done if not i.encode.get("met")),
            "bytes_before": before, "bytes_after": after,
            "saved": round(1 - after / before, 4) if before else None,
            "fixed": self.fixed | ({"bytes": fixed, "saved_against": round(1 - after / fixed, 4)}
                                   if fixed else {}),
            "encodes_per_image": round(np.mean([i.encode.get("trials", 0) for i in done]), 2)
            if done else None,
            "images_per_second": round(len(self.items) / self.seconds, 3) if self.seconds else None,
            "seconds": round(self.seconds, 2),
            "items": [{"source": i.source, "output": i.output, "bytes_before": i.bytes_before,
                       "bytes_after": i.bytes_after, "fixed_bytes": i.fixed_bytes,
                       "encode": i.encode, "error": i.error, "cached": i.cached}
                      for i in self.items],
        }  # fmt: skip


def optimize(src: str, dst: str, pipeline: Pipeline, settings: Settings,
             on_item: Callable[[Item], None] | None = None) -> Summary:  # fmt: skip
    """Encode every image of ``src`` into ``dst`` with ``pipeline`` (which ends with
    ``encode:auto:target=…``), each output named after its source with the chosen format's
    suffix."""
    began = time.monotonic()
    encode = pipeline.encoder()
    assert encode is not None and encode["target"] is not None
    pairs = _pairs(src, dst)
    cache = Path(settings.data_folder) / "cache" / "optimize"
    items = []
    for source, stem in pairs:
        item = _one(source, stem, pipeline, settings, cache)
        items.append(item)
        if on_item is not None:
            on_item(item)
    summary = Summary(str(encode["target"]), tuple(encode["formats"] or ()), items,
                      time.monotonic() - began)  # fmt: skip
    summary.fixed = _fixed(items, settings)
    return summary


def _pairs(src: str, dst: str) -> list[tuple[Location, Location]]:
    """Each source, and its output's location without a suffix."""
    loc = storage.locate(src)
    if storage.is_dir(loc):
        out = storage.locate(dst)
        return [(source, out.child(os.path.splitext(source.path[len(loc.path):].lstrip("/"))[0]))
                for source in api.images_below(loc)]  # fmt: skip
    return [(loc, storage.locate(os.path.splitext(dst)[0] if "." in Path(dst).name else dst))]


def _one(source: Location, stem: Location, pipeline: Pipeline, settings: Settings,
         cache: Path) -> Item:  # fmt: skip
    item = Item(str(source))
    try:
        data = storage.read_bytes(source)
        item.bytes_before = len(data)
        key = hashlib.sha256(data + str(pipeline).encode()).hexdigest()
        found = sorted(cache.glob(f"{key}.*")) if cache.is_dir() else []
        kept = [p for p in found if p.suffix != ".json"]
        if kept and (cache / f"{key}.json").is_file():
            output, item.cached = kept[0].read_bytes(), True
            item.encode = json.loads((cache / f"{key}.json").read_text())
        else:
            outcome = api.render(source, pipeline, settings=settings)
            output, item.encode = outcome.data or b"", outcome.encode or {}
            cache.mkdir(parents=True, exist_ok=True)
            suffix = FORMATS[item.encode["format"]].extensions[0]
            (cache / f"{key}{suffix}").write_bytes(output)
            (cache / f"{key}.json").write_text(json.dumps(item.encode))
        target = storage.locate(f"{stem}{FORMATS[item.encode['format']].extensions[0]}")
        with storage.atomic_output(target, settings.tmp_dir) as spool:
            Path(spool).write_bytes(output)
        item.output = str(target)
    except PixelmillError as exc:
        item.error = str(exc)
    return item


def _fixed(items: list[Item], settings: Settings) -> dict[str, Any]:
    """The fixed-quality baseline (see the module's docstring), each image encoded at it."""
    chosen = [i for i in items if not i.error and i.encode.get("quality") is not None]
    if not chosen:
        return {}
    formats = [i.encode["format"] for i in chosen]
    name = max(set(formats), key=formats.count)
    qualities = [next((t["quality"] for t in i.encode.get("tried", [i.encode])
                       if t["format"] == name and t.get("quality") is not None), None)
                 for i in chosen]  # fmt: skip
    known = sorted(q for q in qualities if q is not None)
    if not known:
        return {}
    quality = known[min(len(known) - 1, math.ceil(SHARE * len(known)) - 1)]
    fixed = Pipeline.parse(f"encode:{name}:q={quality}")
    for item in items:
        if item.error:
            continue
        try:
            item.fixed_bytes = api.render(item.source, fixed, settings=settings).bytes_written
        except PixelmillError as exc:
            item.error = f"fixed baseline: {exc}"
    return {"format": name, "quality": quality, "share": SHARE}
