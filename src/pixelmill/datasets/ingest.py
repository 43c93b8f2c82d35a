"""Adding images to a dataset: files, folders and storage prefixes, listed lazily, analysed in
parallel, written in small transactions, so an ingest of millions of keys holds one chunk at a
time and one stopped anywhere resumes where it stopped (the keys it has seen, added or failed,
are skipped before anything is read).

An image that cannot be read is recorded with its error kind and skipped; it never stops the
ingest. The same content under another key is recognised by its SHA-256 and skipped.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from pixelmill import storage
from pixelmill.config import Settings
from pixelmill.datasets.analyse import Analysis, analyse
from pixelmill.datasets.embed import Embedder
from pixelmill.datasets.store import Dataset, Record, Store
from pixelmill.errors import PixelmillError, UsageError
from pixelmill.pipeline.formats import READ_EXTENSIONS

CHUNK = 64
"""Keys looked up, analysed and written together."""


@dataclass
class Summary:
    """What an ingest did."""

    added: int = 0
    skipped: int = 0
    """Keys seen before (added or failed), or content already present."""
    failed: Counter[str] = field(default_factory=Counter)
    """Failures by error kind (``pixelmill datasets failures`` lists them)."""
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"added": self.added, "skipped": self.skipped,
                "failed": dict(sorted(self.failed.items())), "seconds": round(self.seconds, 3),
                "rate": round(self.added / self.seconds, 2) if self.seconds else None}  # fmt: skip


def listing(sources: Iterable[str]) -> Iterator[str]:
    """Every image a source names: a file, or the images below a folder or prefix, lazily."""
    for src in sources:
        loc = storage.locate(src)
        if storage.is_dir(loc):
            for rel in storage.iter_files(loc, READ_EXTENSIONS):
                yield str(loc.child(rel))
        elif storage.exists(loc):
            yield str(loc)
        else:
            raise UsageError(f"{src}: no such file, folder or prefix")


def add(store: Store, dataset: Dataset, sources: Iterable[str], settings: Settings,
        embedder: Embedder, *, jobs: int = 2, tags: tuple[str, ...] = (),
        on_item: Callable[[str], None] | None = None) -> Summary:  # fmt: skip
    """Add the images of ``sources`` to ``dataset``, ``jobs`` at a time; ``on_item`` hears
    ``added``, ``skipped`` or ``failed`` for each key as it is done."""
    if jobs < 1:
        raise UsageError(f"jobs must be at least 1, not {jobs}")
    summary, started = Summary(), time.monotonic()
    tell = on_item or (lambda status: None)
    keys = listing(sources)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        while chunk := list(islice(keys, CHUNK)):
            seen = store.known(dataset, chunk)
            fresh = [uri for uri in dict.fromkeys(chunk) if uri not in seen]
            summary.skipped += len(chunk) - len(fresh)
            for _ in range(len(chunk) - len(fresh)):
                tell("skipped")
            records = []
            for uri, found in zip(fresh, pool.map(_analysed(settings, embedder), fresh),
                                  strict=True):  # fmt: skip
                if isinstance(found, Analysis):
                    records.append(Record(found.uri, found.sha256, found.fields, found.embedding,
                                          tags=tags))  # fmt: skip
                else:
                    store.fail(dataset, uri, *found)
                    summary.failed[found[0]] += 1
                    tell("failed")
            added = store.add(dataset, records)
            summary.added += added
            summary.skipped += len(records) - added
            for status in ["added"] * added + ["skipped"] * (len(records) - added):
                tell(status)
    summary.seconds = time.monotonic() - started
    return summary


def _analysed(settings: Settings, embedder: Embedder) -> Callable[[str], Analysis | tuple[str, str]]:
    def one(uri: str) -> Analysis | tuple[str, str]:
        try:
            return analyse(storage.locate(uri), settings, embedder)
        except PixelmillError as exc:
            return exc.kind, str(exc)
        except Exception as exc:  # noqa: BLE001  # one image's bug must not stop the ingest
            return "internal", f"{uri}: {type(exc).__name__}: {exc}"

    return one
