"""The driver of a batch run: list the sources lazily, claim them a block at a time in the
manifest, hand them to an engine, record how each ended. Resumable: a run id names the run,
and ``resume`` does only what an earlier attempt did not finish."""

from __future__ import annotations

import itertools
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pixelmill import api, storage
from pixelmill.batch.engines import Engine
from pixelmill.batch.manifest import RUN_ID, Ended, Item, Manifest, new_run_id
from pixelmill.batch.work import Task
from pixelmill.config import Settings
from pixelmill.errors import UsageError
from pixelmill.pipeline import Pipeline
from pixelmill.usage import Usage

BLOCK = 256
"""Items claimed (and listed ahead) at a time."""
FLUSH_SECONDS = 1.0
"""Longest wait before finished items are written to the manifest: what a killed driver
loses, to be done again on resume."""
SHOWN = 20
"""Failures a summary keeps to print (all are in the manifest)."""


@dataclass
class Summary:
    """What an attempt of a run did."""

    run_id: str
    engine: str
    attempt: int = 1
    succeeded: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    skipped: int = 0
    seconds: float = 0.0
    failures: list[Ended] = field(default_factory=list)
    """The first failures (at most :data:`SHOWN`), to print."""

    def to_json(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "engine": self.engine, "attempt": self.attempt,
                "succeeded": self.succeeded, "failed": sum(self.failed.values()),
                "failed_by_kind": dict(sorted(self.failed.items())), "skipped": self.skipped,
                "seconds": round(self.seconds, 3),
                "images_per_second": round(self.succeeded / self.seconds, 3)
                if self.seconds else 0.0}  # fmt: skip

    @property
    def exit_code(self) -> int:
        """0 when nothing failed, else 1 (each failure is in the manifest)."""
        return 1 if self.failed else 0



def run(src: str, dst: str, pipeline: str | Pipeline, *, engine: Engine, settings: Settings,
        run_id: str | None = None, resume: bool = False, dataset: str | None = None,
        on_item: Callable[[str], None] | None = None) -> Summary:  # fmt: skip
    """Run ``pipeline`` over every image below ``src`` into the mirrored place below ``dst``;
    ``on_item`` hears ``succeeded``, ``failed`` or ``skipped`` for each item as it ends."""
    from pixelmill.models.registry import find

    parsed = Pipeline.parse(pipeline)
    source, target = storage.locate(src), storage.locate(dst)
    if not storage.is_dir(source):
        raise UsageError(f"{src}: is not a folder or storage prefix of images")
    if resume and not run_id:
        raise UsageError("--resume needs the --run-id of the run to finish")
    if run_id is not None and not (0 < len(run_id) <= RUN_ID and run_id.isprintable()):
        raise UsageError(f"a run id is 1 to {RUN_ID} printable characters")
    for name in api.models_of(parsed):
        find(name, settings)  # a missing model stops the run before it starts
    if dataset:
        from pixelmill.datasets.store import checked

        checked(dataset, "dataset")
    manifest = Manifest.of(settings)
    Usage.of(settings)  # its tables made here, before workers record into them at once
    run_id = run_id or new_run_id()
    attempt = manifest.begin(run_id, str(source), str(target), str(parsed), resume)
    summary = Summary(run_id, engine.name, attempt)
    heard = on_item or (lambda state: None)

    def note(ended: Ended) -> None:
        if ended.state == "succeeded":
            summary.succeeded += 1
        else:
            summary.failed[ended.error_kind or "internal"] += 1
            if len(summary.failures) < SHOWN:
                summary.failures.append(ended)
        heard(ended.state)

    def claimed() -> Iterator[Item]:
        pairs = (Item(str(s), str(d)) for _, s, d in api.mirror(source, target, parsed))
        while block := list(itertools.islice(pairs, BLOCK)):
            claim = manifest.claim(run_id, attempt, block)
            summary.skipped += claim.skipped
            for _ in range(claim.skipped):
                heard("skipped")
            for refused in claim.refused:
                note(refused)
            yield from claim.todo

    began = time.monotonic()
    ended: list[Ended] = []
    flushed = began
    task = Task(str(parsed), settings, str(target), run_id, dataset)
    try:
        for one in engine.results(task, claimed()):
            note(one)
            ended.append(one)
            if len(ended) >= BLOCK or time.monotonic() - flushed > FLUSH_SECONDS:
                manifest.end(run_id, ended)
                ended, flushed = [], time.monotonic()
    finally:
        manifest.end(run_id, ended)
        summary.seconds = time.monotonic() - began
    return summary
