"""On-demand renders remembered in a dataset (the setting ``render_dataset``): each render
(not its repeats from the cache) records its source and its output as items and one event, on
a thread of its own so that no answer waits for it. Off by default: recording reads the source
and the output once more. When renders come faster than they can be recorded, the excess is
dropped, with a log line, rather than held in memory."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from pixelmill.config import Settings
from pixelmill.datasets import Store, record_run
from pixelmill.engine import Outcome
from pixelmill.pipeline import Pipeline
from pixelmill.storage import Location

LOG = logging.getLogger("pixelmill.renders")
PENDING = 256
"""Renders waiting to be recorded before more are dropped."""


class RenderLog:
    """Records renders into the dataset ``name``."""

    def __init__(self, settings: Settings, name: str) -> None:
        self.settings, self.name = settings, name
        self.store = Store.of(settings)
        self.store.create(name)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="render-log")
        self._room = threading.BoundedSemaphore(PENDING)

    @classmethod
    def of(cls, settings: Settings) -> RenderLog | None:
        return cls(settings, settings.render_dataset) if settings.render_dataset else None

    def record(self, source: Location, outcome: Outcome, pipeline: Pipeline) -> None:
        """Record a render later, unless too many wait already."""
        if not self._room.acquire(blocking=False):
            LOG.warning("render not remembered: %d renders wait already", PENDING,
                        extra={"dataset": self.name, "source": str(source)})  # fmt: skip
            return
        self._pool.submit(self._record, source, outcome, pipeline)

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def _record(self, source: Location, outcome: Outcome, pipeline: Pipeline) -> None:
        try:
            record_run(self.store, self.name, str(source), outcome, pipeline,
                       settings=self.settings, kind="render")  # fmt: skip
        except Exception:  # a render must never suffer from its record
            LOG.exception("render not remembered", extra={"dataset": self.name})
        finally:
            self._room.release()
