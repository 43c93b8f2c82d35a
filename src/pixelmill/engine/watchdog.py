"""One thread per process that stops runs from outside: when their time is up, when their stop
event is set, and when the process's resident memory passes what the runs in progress may hold.

A run registers a :class:`Watch` for its lifetime; when the watch fires, its ``on_expiry`` is
called from the watchdog thread (it kills the run's libvips computations) and ``reason`` tells
why. One thread for all runs: a thread of its own per run costs more than a thumbnail's whole
run when many run at once.

Memory is read from ``/proc/self/statm`` (Linux; elsewhere only time and stop events are
watched). The runs in progress may hold ``max_memory`` each over what the process held when the
first of them started, plus :data:`~pixelmill.config.MEMORY_MARGIN`: a budget per process, since
threads cannot be told apart by what they allocate.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from pixelmill.config import MEMORY_MARGIN

STOP_POLL = 0.05
"""Seconds between looks at the runs' stop events."""
MEMORY_POLL = 0.02
"""Seconds between looks at the process's resident memory while runs are in progress."""
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def resident_bytes(pid: int | str = "self") -> int | None:
    """Resident memory of a process (this one by default), None where it cannot be read."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return None


@dataclass(eq=False)
class Watch:
    deadline: float
    on_expiry: Callable[[], None]
    stop: threading.Event | None
    memory: int
    """Bytes the run may hold (0: not watched)."""
    fired: threading.Event = field(default_factory=threading.Event)
    reason: str = ""
    """Why it fired: ``time``, ``stop`` or ``memory``."""


class _Watcher:
    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)  # the thread is not forked

    def _reset(self) -> None:
        self._lock = threading.Condition()
        self._watches: set[Watch] = set()
        self._firing: set[Watch] = set()
        self._thread: threading.Thread | None = None
        self._baseline: int | None = None
        self.runs = 0
        """Watches registered and not removed (those fired included): the runs in progress."""

    def add(self, watch: Watch) -> None:
        with self._lock:
            if not self._watches:
                self._baseline = resident_bytes()
            self._watches.add(watch)
            self.runs += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="pixelmill-watchdog",
                                                daemon=True)  # fmt: skip
                self._thread.start()
            self._lock.notify_all()

    def remove(self, watch: Watch) -> None:
        """Stop watching; once this returns, ``on_expiry`` is not running and will not run."""
        with self._lock:
            self._watches.discard(watch)
            self.runs -= 1
            while watch in self._firing:
                self._lock.wait()

    def _due(self, now: float) -> set[Watch]:
        """The watches to fire now, each with its reason set."""
        due = set()
        for watch in self._watches:
            if watch.stop is not None and watch.stop.is_set():
                watch.reason = "stop"
            elif watch.deadline <= now:
                watch.reason = "time"
            else:
                continue
            due.add(watch)
        budget = sum(w.memory for w in self._watches)
        if budget and self._baseline is not None:
            held = resident_bytes()
            if held is not None and held > self._baseline + budget + MEMORY_MARGIN:
                for watch in self._watches - due:
                    watch.reason = "memory"
                    due.add(watch)
        return due

    def _loop(self) -> None:
        with self._lock:
            while True:
                now = time.monotonic()
                due = self._due(now)
                if due:
                    self._watches -= due
                    self._firing |= due
                    self._lock.release()
                    try:
                        for watch in due:
                            watch.fired.set()
                            with contextlib.suppress(Exception):  # the thread must live on
                                watch.on_expiry()
                    finally:
                        self._lock.acquire()
                        self._firing -= due
                        self._lock.notify_all()
                    continue
                waits = [w.deadline - now for w in self._watches]
                if any(w.stop is not None for w in self._watches):
                    waits.append(STOP_POLL)
                if any(w.memory for w in self._watches):
                    waits.append(MEMORY_POLL)
                self._lock.wait(min(waits) if waits else None)


_WATCHER = _Watcher()


def runs_in_progress() -> int:
    """How many runs of this process are watched now."""
    return _WATCHER.runs


@contextlib.contextmanager
def watchdog(seconds: float, on_expiry: Callable[[], None], stop: threading.Event | None = None,
             memory: int = 0) -> Iterator[Watch]:  # fmt: skip
    """Call ``on_expiry`` from the watchdog thread after ``seconds``, as soon as ``stop`` is
    set, or when the process holds more than ``memory`` bytes for this run (0: no limit),
    unless the block ends first; the watch tells whether it fired, and why."""
    watch = Watch(time.monotonic() + max(0.0, seconds), on_expiry, stop, memory)
    _WATCHER.add(watch)
    try:
        yield watch
    finally:
        _WATCHER.remove(watch)
