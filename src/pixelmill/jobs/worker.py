"""A worker: takes jobs from the queue one at a time and runs their pipeline through the API.

While a job runs, a heartbeat thread renews its lease and records its progress; when the
heartbeat learns that the job was cancelled or taken over (its lease ran out), the run is
stopped and writes nothing. A job's outcome decides its fate: success is recorded with the
output's description; a fault of the input, the pipeline or a limit fails the job at once with
its reason; a storage failure or anything unexpected is retried with backoff. No job's failure
ever stops the worker, and neither does the job database going away: the worker waits for it
and goes on (a job it finished meanwhile is recorded when the database is back, unless its
lease ran out and another worker took it over).

Between jobs the worker delivers the webhooks that are due (see
:mod:`pixelmill.jobs.webhooks`). The models named by the setting ``preload`` are loaded when it
starts, so the first job pays no loading.

A job's spec is ``{"source": URL, "destination": URL, "pipeline": text or JSON}``; outputs are
written atomically to the same destination, so a job run twice (at-least-once delivery) leaves
one whole file.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from pixelmill import api, storage
from pixelmill.config import Settings
from pixelmill.errors import Cancelled, PixelmillError, StorageError
from pixelmill.jobs import telemetry, webhooks
from pixelmill.jobs.queue import Job, JobQueue

LOG = logging.getLogger("pixelmill.worker")
LEASE = 30.0
"""Seconds a claim lasts without a heartbeat; heartbeats come three times as often."""
IDLE = 0.5
"""Seconds between looks at an empty queue (PostgreSQL wakes waiting workers sooner)."""
OUTAGE = (0.5, 10.0)
"""Seconds between tries while the job database is unreachable: the first, and the most."""
RETRYABLE = (StorageError,)
"""Failures that may pass (the storage was unreachable): retried. Other pixelmill errors are
the job's own fault (bad input, pipeline, limits, quality gates) and fail it at once."""


@dataclass
class Worker:
    queue: JobQueue
    settings: Settings = field(default_factory=Settings.load)
    name: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    lease: float = LEASE
    stop: threading.Event = field(default_factory=threading.Event)
    """Set to stop :meth:`run` between jobs (given to it), or a wait for the database."""

    def preload(self) -> list[str]:
        """Load the models named by the setting ``preload``; their names."""
        from pixelmill.models.runtime import session_for

        names = [n.strip() for n in (self.settings.preload or "").split(",") if n.strip()]
        for name in names:
            began = time.monotonic()
            session = session_for(name, self.settings)
            LOG.info("model loaded", extra={"worker": self.name, "model": name,
                                            "provider": session.providers[0],
                                            "seconds": round(time.monotonic() - began, 3)})
        return names

    def run(self, stop: threading.Event, *, idle: float = IDLE) -> int:
        """Run jobs and deliver webhooks until ``stop`` is set (between jobs); return how many
        jobs ran. While the job database is unreachable, wait for it."""
        done, pause = 0, OUTAGE[0]
        self.stop = stop
        deliveries = threading.Thread(target=self._deliver_until, args=(stop, idle),
                                      name="webhooks", daemon=True)  # fmt: skip
        deliveries.start()
        while not stop.is_set():
            try:
                ran = self.run_one()
            except sa.exc.OperationalError as exc:
                LOG.warning("job database unreachable", extra={
                    "worker": self.name, "error": str(exc.orig or exc).strip()[:300],
                    "retry_in": pause})  # fmt: skip
                stop.wait(pause)
                pause = min(pause * 2, OUTAGE[1])
                continue
            pause = OUTAGE[0]
            if ran is not None:
                done += 1
            else:
                self.queue.wait(idle)
        deliveries.join()
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
        fail = functools.partial(self.queue.fail, job.id, self.name)
        record: Callable[[], Any]
        try:
            outcome = api.run(job.spec["source"], job.spec["destination"],
                              job.spec.get("pipeline"), settings=self.settings,
                              progress=lambda share: progress.__setitem__(0, share),
                              stop=stop)  # fmt: skip
        except Cancelled as exc:
            record = functools.partial(self._stopped, job, str(exc))
        except RETRYABLE as exc:
            record = functools.partial(fail, str(exc), exc.kind)
        except PixelmillError as exc:
            record = functools.partial(fail, str(exc), exc.kind, retry=False)
        except Exception as exc:  # noqa: BLE001  a bug: retried, then dead; the worker goes on
            record = functools.partial(fail, f"{type(exc).__name__}: {exc}", "internal")
        else:
            telemetry.succeeded(outcome, "job")
            record = functools.partial(self.queue.complete, job.id, self.name, _result(outcome))
        finally:
            stop.set()
            beating.join()
        ended = self._record(record, job.id)
        if ended.state != "succeeded" and ended.error_kind:
            telemetry.failed(ended.error_kind, "job")
        LOG.info("job %s", ended.state, extra={
            "job": job.id, "worker": self.name, "state": ended.state, "attempt": job.attempts,
            "seconds": round(time.monotonic() - began, 3), "error_kind": ended.error_kind,
            "error": ended.error, "timings": (ended.result or {}).get("timings"),
        })  # fmt: skip
        return ended

    def deliver_one(self) -> bool:
        """Deliver one due webhook; whether there was one."""
        job = self.queue.claim_webhook(webhooks.TIMEOUT * 3)
        if job is None:
            return False
        delivered, status = webhooks.deliver(job.webhook or "", job.describe(),
                                             self.settings.webhook_secret,
                                             self.settings.allow_private_hosts)  # fmt: skip
        self.queue.webhook_tried(job, status, delivered)
        LOG.info("webhook %s", status, extra={"job": job.id, "worker": self.name,
                                              "attempt": job.webhook_attempts + 1})  # fmt: skip
        return True

    def _deliver_until(self, stop: threading.Event, idle: float) -> None:
        """Deliver webhooks beside the jobs (a slow receiver never holds a job back)."""
        while not stop.is_set():
            try:
                if not self.deliver_one():
                    stop.wait(idle)
            except sa.exc.OperationalError:
                stop.wait(OUTAGE[1])

    def _record(self, record: Callable[[], Any], job_id: str) -> Job:
        """Record a job's end, waiting for the job database while it is unreachable; the job
        as it then stands."""
        pause = OUTAGE[0]
        while True:
            try:
                record()
                return self.queue.get(job_id)
            except sa.exc.OperationalError as exc:
                if self.stop.is_set():  # left to the lease: another worker runs it again
                    raise
                LOG.warning("job database unreachable; the job's end is not recorded yet",
                            extra={"worker": self.name, "error": str(exc.orig or exc)[:300],
                                   "retry_in": pause})  # fmt: skip
                time.sleep(pause)
                pause = min(pause * 2, OUTAGE[1])

    def _heartbeat(self, job: Job, stop: threading.Event, progress: list[float]) -> None:
        """Renew the lease until the run ends; stop the run when the job is no longer ours."""
        while not stop.wait(self.lease / 3):
            try:
                held = self.queue.heartbeat(job.id, self.name, self.lease, progress[0] / 100)
            except sa.exc.OperationalError:  # the database is away: go on, it may come back
                continue
            if not held:
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
        "qc": [verdict.to_json() for verdict in outcome.qc], "timings": outcome.timings,
        "bytes_read": outcome.bytes_read, "finished_at": time.time(),
    }  # fmt: skip
