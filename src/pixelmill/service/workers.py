"""The worker processes of ``pixelmill serve``: started beside the API, started again with
backoff when one dies (its cause logged and counted in ``/metrics``), ended with ``serve``.

A worker that keeps dying is started again at most once a minute; one that lived a minute
before it died starts again at once. Whether the workers do their work shows in ``/readyz``,
from their heartbeats in the job database (see :mod:`pixelmill.jobs.presence`).
"""

from __future__ import annotations

import logging
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from pixelmill.jobs import telemetry

LOG = logging.getLogger("pixelmill.serve")
BACKOFF = (1.0, 60.0)
"""Seconds before a dead worker starts again: the first wait, and the longest."""
STEADY = 60.0
"""Seconds a worker must have lived for its next start to wait the first backoff again."""
POLL = 0.5
"""Seconds between looks at the workers."""


def cause(returncode: int) -> str:
    """What ended a process, from its return code: a signal's name or an exit code."""
    if returncode < 0:
        return signal.Signals(-returncode).name
    return f"exit code {returncode}"


@dataclass
class _Slot:
    process: subprocess.Popen | None = None
    started: float = 0.0
    due: float = 0.0
    """When a dead worker starts again."""
    quick_deaths: int = 0
    """Deaths in a row, each within :data:`STEADY` seconds of its start."""


class WorkerPool:
    """``count`` processes of ``command``, kept alive until :meth:`close`."""

    def __init__(self, command: list[str], env: dict[str, str], count: int,
                 before_start: Callable[[], None] | None = None) -> None:  # fmt: skip
        self.command, self.env, self.before_start = command, env, before_start
        self.slots = [_Slot() for _ in range(count)]
        self.restarts = 0
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="workers", daemon=True)

    def start(self) -> None:
        for slot in self.slots:
            self._start(slot)
        self._thread.start()

    @property
    def pids(self) -> list[int]:
        return [slot.process.pid for slot in self.slots if slot.process is not None]

    def close(self) -> None:
        """Stop watching, then end every worker (SIGTERM: their jobs go back to the queue)."""
        self._closing.set()
        if self._thread.is_alive():
            self._thread.join()
        running = [slot.process for slot in self.slots if slot.process is not None]
        for process in running:
            process.terminate()
        for process in running:
            process.wait()

    def _start(self, slot: _Slot) -> None:
        slot.process = subprocess.Popen(self.command, env=self.env, preexec_fn=self.before_start)  # noqa: PLW1509  (no threads of ours in the child)
        slot.started = time.monotonic()

    def _watch(self) -> None:
        while not self._closing.wait(POLL):
            now = time.monotonic()
            for slot in self.slots:
                if slot.process is not None and slot.process.poll() is not None:
                    self._died(slot, now)
                if slot.process is None and now >= slot.due and not self._closing.is_set():
                    self._start(slot)

    def _died(self, slot: _Slot, now: float) -> None:
        assert slot.process is not None
        why = cause(slot.process.returncode)
        lived = now - slot.started
        slot.quick_deaths = 0 if lived >= STEADY else slot.quick_deaths + 1
        first, most = BACKOFF
        wait = min(first * 2 ** (slot.quick_deaths - 1), most) if slot.quick_deaths else 0.0
        slot.due = now + wait
        LOG.warning("worker died; starting another", extra={
            "pid": slot.process.pid, "cause": why, "lived": round(lived, 1),
            "restart_in": round(slot.due - now, 1)})  # fmt: skip
        telemetry.WORKER_RESTARTS.labels(why).inc()
        self.restarts += 1
        slot.process = None
