"""Measuring one piece of work: :class:`Meter` reads CPU time and resident memory around it,
and makes the :class:`Work` that is recorded.

CPU seconds are the process's CPU time (user + system, every thread: ``time.process_time``)
from the meter's start to its end. libvips computes in its own worker threads, so the CPU
time of the calling thread alone would miss most of a render; the process's time counts them.
A job runs alone in its process, so the figure is the job's own. An on-demand render shares
the API process with other requests, so its figure also holds what they spent meanwhile: an
upper bound under concurrent load, exact when renders come one at a time.

Peak memory is the largest resident set of the process seen while the meter ran: read when it
starts and ends and every :data:`SAMPLE` seconds between by one sampling thread per process
(which sleeps while no meter runs). A spike shorter than that may be missed. The kernel's
own peak (``VmHWM``) is of no use here: it never goes down over a process's life, and
resetting it would spoil every other reader of it.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from dataclasses import dataclass
from typing import Any, Self

SAMPLE = 0.02
"""Seconds between looks at the resident memory while a meter runs."""
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


@dataclass(frozen=True)
class Work:
    """What one piece of work (a job attempt, an on-demand render, a batch item) used."""

    origin: str
    """``job``, ``ondemand`` or ``batch``."""
    key: str | None
    """The API key it was done for (None: the service's own, or the command line)."""
    pipeline: str
    """The pipeline's canonical text."""
    dataset: str | None = None
    ref: str | None = None
    """What it was: a job's id, a render's source, a batch run's item."""
    cpu_seconds: float = 0.0
    gpu_seconds: float = 0.0
    """Seconds of model inference on a GPU (0 on the CPU)."""
    wall_seconds: float = 0.0
    peak_memory: int = 0
    """Largest resident set of the process while it ran, in bytes."""
    bytes_read: int = 0
    bytes_written: int = 0
    bytes_served: int = 0
    """Bytes sent to a client (an on-demand answer)."""
    failed: bool = False

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class Meter:
    """Measures the process's CPU time, wall time and peak resident memory from ``with`` to
    its end; bytes and GPU time are added by the caller, who knows them. Picklable once
    ended (a job's process sends it back to its worker)."""

    def __init__(self) -> None:
        self.cpu_seconds = self.wall_seconds = self.gpu_seconds = 0.0
        self.peak_memory = self.bytes_read = self.bytes_written = self.bytes_served = 0
        self._began: tuple[float, float] = (0.0, 0.0)

    def __enter__(self) -> Self:
        self.peak_memory = resident_bytes()
        _SAMPLER.add(self)
        self._began = (time.process_time(), time.perf_counter())
        return self

    def __exit__(self, *exc: object) -> None:
        self.cpu_seconds += time.process_time() - self._began[0]
        self.wall_seconds += time.perf_counter() - self._began[1]
        _SAMPLER.remove(self)
        self.saw(resident_bytes())

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_began"}

    def saw(self, resident: int) -> None:
        self.peak_memory = max(self.peak_memory, resident)

    def add_bytes(self, read: int = 0, written: int = 0, served: int = 0) -> None:
        self.bytes_read += read
        self.bytes_written += written
        self.bytes_served += served

    def add_gpu(self, seconds: float) -> None:
        self.gpu_seconds += seconds

    def add_outcome(self, outcome: Any, stored: bool = True) -> None:
        """Add what a run's :class:`~pixelmill.engine.Outcome` tells: the bytes it read and
        wrote (none written unless its output was ``stored``), and its model inference time
        when models run on a GPU here."""
        written = (outcome.bytes_written or 0) if stored else 0
        self.add_bytes(read=outcome.bytes_read or 0, written=written)
        inference = sum(s for stage, s in outcome.timings.items() if stage.startswith("model:"))
        if inference and on_gpu():
            self.add_gpu(inference)

    def result(self, origin: str, key: str | None, pipeline: str, dataset: str | None = None,
               ref: str | None = None, failed: bool = False) -> Work:  # fmt: skip
        """The work measured, for :meth:`pixelmill.usage.Usage.record`."""
        return Work(origin, key, pipeline, dataset, ref, self.cpu_seconds, self.gpu_seconds,
                    self.wall_seconds, self.peak_memory, self.bytes_read, self.bytes_written,
                    self.bytes_served, failed)  # fmt: skip


def on_gpu() -> bool:
    """Whether models run on a GPU in this process: pixelmill's sessions take a GPU provider
    (CUDA, TensorRT) first whenever onnxruntime has one."""
    import onnxruntime as ort

    from pixelmill.models.runtime import PREFERRED_PROVIDERS

    return any(p in PREFERRED_PROVIDERS for p in ort.get_available_providers())


def resident_bytes() -> int:
    """This process's resident memory (0 where it cannot be read)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0


class _Sampler:
    """One thread per process that shows the resident memory to every running meter."""

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)  # the thread is not forked

    def _reset(self) -> None:
        self._meters: set[Meter] = set()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def add(self, meter: Meter) -> None:
        with self._wake:
            self._meters.add(meter)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="usage-meter",
                                                daemon=True)  # fmt: skip
                self._thread.start()
            self._wake.notify()

    def remove(self, meter: Meter) -> None:
        with self._wake:
            self._meters.discard(meter)

    def _loop(self) -> None:
        while True:
            with self._wake:
                while not self._meters:
                    self._wake.wait()
                meters = list(self._meters)
            resident = resident_bytes()
            for meter in meters:
                meter.saw(resident)
            time.sleep(SAMPLE)


_SAMPLER = _Sampler()
