"""What a worker does with the items of a batch run: the pipeline through :func:`pixelmill.api.run`,
the output's content hash, the outcome into the dataset, what it used into the usage ledger;
any error becomes the item's failure, so one bad image never stops a worker or the run.

An item's CPU seconds are its process's (:class:`pixelmill.usage.Meter`): exact on a Ray actor,
which runs one item at a time; with the local engine's threads, items running together each
count the others' too."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, replace

import sqlalchemy as sa

from pixelmill import api, storage
from pixelmill.batch.manifest import Ended, Item
from pixelmill.config import Settings
from pixelmill.errors import Cancelled, PixelmillError
from pixelmill.pipeline import Pipeline
from pixelmill.usage import Meter, Usage

LOG = logging.getLogger("pixelmill.batch")


@dataclass(frozen=True)
class Task:
    """What every worker of a run shares: the pipeline (canonical text), the settings, the
    destination folder its outputs must stay below, the run's id, and the dataset that
    remembers them."""

    pipeline: str
    settings: Settings
    dst: str
    run_id: str
    dataset: str | None = None


class Worker:
    """Runs items of one task for as long as its process lives (a Ray actor, or the driver
    itself), so each model the pipeline names is loaded once and reused."""

    def __init__(self, task: Task) -> None:
        self.task = task
        self.pipeline = Pipeline.parse(task.pipeline)
        self.inside = storage.Scope((storage.locate(task.dst),))
        self.usage = Usage.of(task.settings)

    def process_all(self, items: list[Item]) -> list[Ended]:
        """Run items one after the other; how each ended."""
        return [self.process(item) for item in items]

    def process(self, item: Item) -> Ended:
        """Run one item, and record what it used (``origin`` batch, ``ref`` the run id); how it
        ended."""
        meter = Meter()
        with meter:
            ended = self._run(item, meter)
        work = meter.result("batch", None, self.task.pipeline, self.task.dataset,
                            ref=self.task.run_id, failed=ended.state != "succeeded")  # fmt: skip
        try:
            self.usage.record(work)
        except sa.exc.SQLAlchemyError as exc:  # the item's result matters more than its bill
            LOG.warning("usage not recorded for %s: %s", item.source, str(exc)[:300])
        return replace(ended, usage=work.to_json())

    def _run(self, item: Item, meter: Meter) -> Ended:
        try:
            target = self.inside.check(storage.locate(item.destination), "destination")
            if item.again:
                storage.remove_spools(target)
            outcome = api.run(item.source, target, self.pipeline, settings=self.task.settings)
            meter.add_outcome(outcome)
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
