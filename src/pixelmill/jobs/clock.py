"""Time as the job queue sees it, given to it rather than read from the system: leases,
heartbeats, retries and webhook calls are due at times of this clock, and its backoff policy
says how long a retry waits. Tests give a clock they move by hand, and wait for nothing."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch."""
        ...


class SystemClock:
    """The system's wall clock (the times stored in the job database are shared by every
    machine of the service)."""

    def now(self) -> float:
        return time.time()


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff: ``first`` seconds before the first retry, doubling, at most
    ``most``."""

    first: float = 2.0
    most: float = 300.0

    def delay(self, attempt: int) -> float:
        """Seconds before retrying after ``attempt`` failed attempts."""
        return min(self.first * 2 ** (attempt - 1), self.most)
