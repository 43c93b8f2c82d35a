"""A worker: takes jobs from the queue one at a time and runs their pipeline through the API.

While a job runs, a heartbeat thread renews its lease and records its progress; when the
heartbeat learns that the job was cancelled or taken over (its lease ran out), the run is
stopped and writes nothing. A job's outcome decides its fate: success is recorded with the
output's description; a fault of the input, the pipeline or a limit fails the job at once with
its reason; a storage failure or anything unexpected is retried with backoff. No job's failure
ever stops the worker.

A job's spec is ``{"source": URL, "destination": URL, "pipeline": text or JSON}``; outputs are
written atomically to the same destination, so a job run twice (at-least-once delivery) leaves
one whole file.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from pixelmill import api, storage
from pixelmill.config import Settings
from pixelmill.errors import Cancelled, PixelmillError, StorageError
from pixelmill.jobs.queue import Job, JobQueue

LOG = logging.getLogger("pixelmill.worker")
LEASE = 30.0
"""Seconds a claim lasts without a heartbeat; heartbeats come three times as often."""
IDLE = 0.5
"""Seconds between looks at an empty queue."""
RETRYABLE = (StorageError,)
"""Failures that may pass (the storage was unreachable): retried. Other pixelmill errors are
the job's own fault (bad input, pipeline, limits, quality gates) and fail it at once."""


@dataclass
class Worker:
    queue: JobQueue
    settings: Settings = field(default_factory=Settings.load)
    name: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    lease: float = LEASE

    def run(self, stop: threading.Event, *, idle: float = IDLE) -> int:
        """Run jobs until ``stop`` is set (between jobs); return how many ran."""
        done = 0
        while not stop.is_set():
            if self.run_one() is None:
                stop.wait(idle)
            else:
                done += 1
        return done

    def run_one(self) -> Job | None:
        """Claim one job and run it to its recorded end; None when the queue has none ready."""
        job = self.queue.claim(self.name, self.lease)
        if job is None:
            return None
        began = time.monotonic()
        if job.attempts > 1:  # an earlier attempt may have died mid-write
            storage.remove_spools(storage.locate(job.spec["destination"]))
        stop = threading.Event()
        progress = [0.0]
        beating = threading.Thread(target=self._heartbeat, args=(job, stop, progress),
                                   name=f"heartbeat-{job.id}", daemon=True)  # fmt: skip
        beating.start()
        try:
            outcome = api.run(job.spec["source"], job.spec["destination"],
                              job.spec.get("pipeline"), settings=self.settings,
                              progress=lambda share: progress.__setitem__(0, share),
                              stop=stop)  # fmt: skip
        except Cancelled as exc:
            self._stopped(job, str(exc))
        except RETRYABLE as exc:
            self.queue.fail(job.id, self.name, str(exc), exc.kind)
        except PixelmillError as exc:
            self.queue.fail(job.id, self.name, str(exc), exc.kind, retry=False)
        except Exception as exc:  # noqa: BLE001  a bug: retried, then dead; the worker goes on
            self.queue.fail(job.id, self.name, f"{type(exc).__name__}: {exc}", "internal")
        else:
            self.queue.complete(job.id, self.name, _result(outcome))
        finally:
            stop.set()
            beating.join()
        ended = self.queue.get(job.id)
        LOG.info("job %s", ended.state, extra={
            "job": job.id, "worker": self.name, "state": ended.state, "attempt": job.attempts,
            "seconds": round(time.monotonic() - began, 3), "error_kind": ended.error_kind,
            "error": ended.error,
        })  # fmt: skip
        return ended

    def _heartbeat(self, job: Job, stop: threading.Event, progress: list[float]) -> None:
        """Renew the lease until the run ends; stop the run when the job is no longer ours."""
        while not stop.wait(self.lease / 3):
            if not self.queue.heartbeat(job.id, self.name, self.lease, progress[0] / 100):
                stop.set()

    def _stopped(self, job: Job, reason: str) -> None:
        """The run was stopped: the job was cancelled (recorded so), or taken over by another
        worker (nothing to record)."""
        current = self.queue.get(job.id)
        if current.cancel_requested and current.lease_owner == self.name:
            self.queue.cancelled(job.id, self.name)
        elif current.lease_owner == self.name:  # the process was cancelled: let it be retried
            self.queue.fail(job.id, self.name, reason, "cancelled")


def _result(outcome: Any) -> dict[str, Any]:
    return {
        "destination": outcome.destination, "format": outcome.format, "width": outcome.width,
        "height": outcome.height, "bands": outcome.bands, "bytes": outcome.bytes_written,
        "seconds": outcome.seconds, "notes": list(outcome.notes),
        "qc": [verdict.to_json() for verdict in outcome.qc], "finished_at": time.time(),
    }  # fmt: skip
