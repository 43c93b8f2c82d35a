"""What a worker does with the items of a batch run: the pipeline through :func:`pixelmill.api.run`,
the output's content hash, the outcome into the dataset; any error becomes the item's failure,
so one bad image never stops a worker or the run."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from pixelmill import api, storage
from pixelmill.batch.manifest import Ended, Item
from pixelmill.config import Settings
from pixelmill.errors import Cancelled, PixelmillError
from pixelmill.pipeline import Pipeline


@dataclass(frozen=True)
class Task:
    """What every worker of a run shares: the pipeline (canonical text), the settings, the
    destination folder its outputs must stay below, and the dataset that remembers them."""

    pipeline: str
    settings: Settings
    dst: str
    dataset: str | None = None


class Worker:
    """Runs items of one task for as long as its process lives (a Ray actor, or the driver
    itself), so each model the pipeline names is loaded once and reused."""

    def __init__(self, task: Task) -> None:
        self.task = task
        self.pipeline = Pipeline.parse(task.pipeline)
        self.inside = storage.Scope((storage.locate(task.dst),))

    def process_all(self, items: list[Item]) -> list[Ended]:
        """Run items one after the other; how each ended."""
        return [self.process(item) for item in items]

    def process(self, item: Item) -> Ended:
        """Run one item; how it ended."""
        try:
            target = self.inside.check(storage.locate(item.destination), "destination")
            if item.again:
                storage.remove_spools(target)
            outcome = api.run(item.source, target, self.pipeline, settings=self.task.settings)
            digest = hashlib.sha256()
            for chunk in storage.chunks(target):
                digest.update(chunk)
            if self.task.dataset:
                from pixelmill.datasets import Store, record_run

                record_run(Store.of(self.task.settings), self.task.dataset, item.source, outcome,
                           self.pipeline, settings=self.task.settings, kind="batch")  # fmt: skip
            return Ended(item, "succeeded", digest.hexdigest(), outcome.to_json())
        except Cancelled:
            raise
        except PixelmillError as exc:
            return Ended.failure(item, exc.kind, str(exc))
        except Exception as exc:  # noqa: BLE001  # a bug must not stop the other items
            return Ended.failure(item, "internal", f"{item.source}: {type(exc).__name__}: {exc}")
