"""Running jobs in a child process that the worker can kill.

A job's pipeline runs in a process of its own, started once per worker (with the models named
by ``preload`` loaded) and used for job after job. A segfault in a decoder, an out-of-memory
kill or a run that will not stop costs that job's attempt, never the worker. The worker stops
the child:

- when the job is cancelled or its lease is lost: asked first (the run stops and writes
  nothing), killed when it has not answered within :data:`GRACE` seconds;
- past the time limit: killed :data:`GRACE` seconds after it (the child's own watchdog stops
  the run at the limit);
- past the memory budget: killed when its resident memory passes what it held idle plus
  ``max_memory`` and twice ``MEMORY_MARGIN`` (the child's own watchdog stops the run at one
  margin).

A child that died is replaced before the next job, and so is one that ran :data:`MAX_JOBS`
jobs or still holds more than ``MEMORY_MARGIN`` over its idle memory after a job, so that
nothing a job leaks stays for long. Children are started with ``spawn``: a fork
of a worker with threads (heartbeats, webhooks, onnxruntime's pools) could inherit locks held
by threads that do not exist in the child.

Each attempt is measured in the child (:class:`~pixelmill.usage.Meter`: the child's own CPU
time and peak memory) and the measure goes back to the worker with the attempt's end, for the
worker to record.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from pixelmill.config import MEMORY_MARGIN, Settings
from pixelmill.engine.memory import give_back
from pixelmill.engine.watchdog import resident_bytes
from pixelmill.errors import Cancelled, NotFoundError, PixelmillError, StorageError
from pixelmill.usage import Meter

LOG = logging.getLogger("pixelmill.worker")
GRACE = 5.0
"""Seconds a child has to stop a run it was asked to stop, or past its time limit."""
POLL = 0.05
"""Seconds between the parent's looks at the child."""
MAX_JOBS = 500
"""Jobs one child runs before it is replaced."""
START_TIMEOUT = 120.0
"""Seconds a new child has to import pixelmill and load its models."""


@dataclass(frozen=True)
class Ended:
    """How one attempt of a job ended."""

    state: str
    """``succeeded``, ``failed`` (with ``retry``), ``cancelled`` or ``crashed``."""
    kind: str = ""
    message: str = ""
    retry: bool = False
    outcome: Any = None
    """The run's :class:`~pixelmill.engine.Outcome` when it succeeded."""
    cause: str = ""
    """What ended a crashed child: a signal's name, an exit code, ``memory`` or ``time``."""
    meter: Meter | None = None
    """What the attempt used in the child (none when the child died)."""


class Runner:
    """A child process that runs one job at a time for a worker."""

    def __init__(self, settings: Settings, job: Callable[..., Any], grace: float = GRACE) -> None:
        """``job(spec, settings, stop, progress)`` runs in the child (a module-level function,
        pickled by name) and returns the run's outcome; ``grace``: seconds a run has to stop
        when asked, or past its time limit, before its process is killed."""
        self.settings = settings
        self.job = job
        self.grace = grace
        self._context = multiprocessing.get_context("spawn")
        self._process: Any = None
        self._conn: Connection | None = None
        self._stop: Any = None
        self._progress: Any = None
        self._idle = 0
        self._done = 0

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        """Start the child (when none is alive) and wait until its models are loaded."""
        if self._process is not None and self._process.is_alive() and self._done < MAX_JOBS:
            return
        self.close()
        parent, child = self._context.Pipe()
        self._stop, self._progress = self._context.Event(), self._context.Value("d", 0.0)
        self._process = self._context.Process(
            target=_serve,
            args=(child, self.settings, self.job, self._stop, self._progress, os.getpid()),
            name="pixelmill-job", daemon=True)  # fmt: skip
        self._process.start()
        child.close()
        self._conn, self._done = parent, 0
        if not parent.poll(START_TIMEOUT):
            self.close()
            raise RuntimeError(f"the job process did not start within {START_TIMEOUT:g} s")
        message = parent.recv()
        if message[0] != "ready":
            self.close()
            raise message[1]
        self._idle = resident_bytes(self._process.pid) or 0

    def run(self, spec: dict[str, Any], settings: Settings, stop: Callable[[], bool],
            progress: Callable[[float], None]) -> Ended:  # fmt: skip
        """Run one job in the child; ``stop()`` says when it must stop."""
        self.start()
        assert self._conn is not None
        self._stop.clear()
        self._progress.value = 0.0
        self._conn.send((spec, settings))
        self._done += 1
        began = time.monotonic()
        asked: float | None = None
        budget = self._idle + settings.max_memory + 2 * MEMORY_MARGIN
        while True:
            if self._conn.poll(POLL):
                try:
                    ended = self._conn.recv()
                except (EOFError, OSError):
                    return self._crashed()
                if (resident_bytes(self._process.pid) or 0) > self._idle + MEMORY_MARGIN:
                    self._done = MAX_JOBS  # replaced before the next job
                return ended
            if not self._process.is_alive():
                return self._crashed()
            progress(self._progress.value)
            now = time.monotonic()
            if asked is None and stop():
                self._stop.set()
                asked = now
            if asked is not None and now - asked > self.grace:
                self._kill()
                return Ended("cancelled", "cancelled", "stopped; its process was killed when "
                             f"it had not stopped within {self.grace:g} s")  # fmt: skip
            if now - began > settings.time_limit + self.grace:
                self._kill()
                return Ended("failed", "limit", f"processing took longer than the limit of "
                             f"{settings.time_limit:g} s (time_limit); its process was killed")
            held = resident_bytes(self._process.pid)
            if held is not None and held > budget:
                self._kill()
                return Ended("crashed", "crashed", f"its process was killed holding "
                             f"{held / 2**20:,.0f} MiB, over the budget of {budget / 2**20:,.0f} "
                             "MiB (max_memory)", retry=True, cause="memory")  # fmt: skip

    def close(self) -> None:
        """End the child (it is killed if it does not leave at once)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._process is not None:
            self._process.kill()
            self._process.join(10)
            self._process = None

    def _kill(self) -> None:
        self._process.kill()
        self._process.join(10)
        self._process = None

    def _crashed(self) -> Ended:
        self._process.join(10)
        code = self._process.exitcode
        self._process = None
        if code is not None and code < 0:
            name = signal.Signals(-code).name
            cause, why = name, f"{name} (signal {-code})"
        else:
            cause = why = f"exit code {code}"
        return Ended("crashed", "crashed", f"its process died: {why}", retry=True, cause=cause)


def _serve(conn: Connection, settings: Settings, job: Callable[..., Any], stop: Any,
           progress: Any, parent: int) -> None:  # fmt: skip
    """The child: load the models, then run the jobs the parent sends until it goes away."""
    _end_with(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the worker decides what Ctrl-C stops
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    from pixelmill.jobs import logs

    logs.to_stderr()
    try:
        preload(settings)
    except PixelmillError as exc:  # reported to the parent, which gives up
        conn.send(("failed", exc))
        return
    conn.send(("ready", os.getpid()))
    while True:
        try:
            spec, run_settings = conn.recv()
        except (EOFError, OSError):
            return
        conn.send(_attempt(job, spec, run_settings, stop, progress))


def preload(settings: Settings) -> list[str]:
    """Load the models named by the setting ``preload`` in this process; their names."""
    from pixelmill.models.runtime import session_for

    names = [n.strip() for n in (settings.preload or "").split(",") if n.strip()]
    for name in names:
        began = time.monotonic()
        session = session_for(name, settings)
        LOG.info("model loaded", extra={"model": name, "provider": session.providers[0],
                                        "pid": os.getpid(),
                                        "seconds": round(time.monotonic() - began, 3)})
    return names


def _attempt(job: Callable[..., Any], spec: dict[str, Any], settings: Settings, stop: Any,
             progress: Any) -> Ended:  # fmt: skip
    def record(share: float) -> None:
        progress.value = share

    tempfile.tempdir = settings.tmp_dir  # whatever else the run spools goes to its folder too
    meter = Meter()
    try:
        with meter:
            outcome = job(spec, settings, stop, record)
        meter.add_outcome(outcome)
        return Ended("succeeded", outcome=outcome, meter=meter)
    except Cancelled as exc:
        return Ended("cancelled", exc.kind, str(exc), meter=meter)
    except PixelmillError as exc:
        transient = isinstance(exc, StorageError) and not isinstance(exc, NotFoundError)
        return Ended("failed", exc.kind, str(exc), retry=transient, meter=meter)
    except Exception as exc:  # noqa: BLE001  a bug: retried, then dead; the child goes on
        return Ended("failed", "internal", f"{type(exc).__name__}: {exc}", retry=True,
                     meter=meter)  # fmt: skip
    finally:
        tempfile.tempdir = None
        give_back()  # the next job starts from what the process holds idle


def _end_with(parent: int) -> None:
    """Receive SIGKILL when the worker dies, however it dies (Linux), so that no job runs on
    with nobody to record it."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the worker died before that
        os._exit(1)
