"""A worker: takes jobs from the queue one at a time and runs their pipeline through the API,
each in a child process it can kill (:mod:`pixelmill.jobs.runner`).

While a job runs, a heartbeat thread renews its lease and records its progress; when the
heartbeat learns that the job was cancelled or taken over (its lease ran out), the run is
stopped and writes nothing. A job's outcome decides its fate: success is recorded with the
output's description; a fault of the input, the pipeline or a limit, or a source that does not
exist, fails the job at once with its reason; a storage failure, anything unexpected, or a
process that died (a segfault, the memory budget) is retried with backoff, and the job is dead
with that reason once its attempts are spent. No job's failure ever stops the worker, and
neither does the job database going away: the worker waits for it and goes on (a job it
finished meanwhile is recorded when the database is back, unless its lease ran out and another
worker took it over).

Every attempt's usage (measured in the job's process) is recorded for the job's API key, once
its end is (see :mod:`pixelmill.usage`); an attempt whose process died left no measure.

Beside the jobs the worker delivers the webhooks that are due (see
:mod:`pixelmill.jobs.webhooks`), the budget alerts to the setting ``budget_webhook``, and
records its own heartbeat (see
:mod:`pixelmill.jobs.presence`). The models named by the setting ``preload`` are loaded when its
job process starts, so the first job pays no loading. Each attempt's temporary files go to a
folder of its own (:mod:`pixelmill.jobs.scratch`), removed when the attempt ends however it
ends.

A job's spec is ``{"source": URL, "destination": URL, "pipeline": text or JSON}``, and
``"scope": {"allowed": [URL…], "reserved": [URL…]}`` when the source and destination must lie
below those prefixes (checked again when the job runs, symbolic links resolved); outputs are
written atomically to the same destination, so a job run twice (at-least-once delivery) leaves
one whole file.
"""

from __future__ import annotations

import contextlib
import dataclasses
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
from pixelmill.errors import PixelmillError
from pixelmill.jobs import telemetry, webhooks
from pixelmill.jobs.presence import BEAT, Presence
from pixelmill.jobs.queue import WEBHOOK_ATTEMPTS, Job, JobQueue
from pixelmill.jobs.runner import GRACE, Ended, Runner
from pixelmill.jobs.scratch import Scratch
from pixelmill.pipeline import Pipeline
from pixelmill.usage import Prices, Usage

LOG = logging.getLogger("pixelmill.worker")
LEASE = 30.0
"""Seconds a claim lasts without a heartbeat; heartbeats come three times as often."""
IDLE = 0.5
"""Seconds between looks at an empty queue (PostgreSQL wakes waiting workers sooner)."""
OUTAGE = (0.5, 10.0)
"""Seconds between tries while the job database is unreachable: the first, and the most."""


def run_job(spec: dict[str, Any], settings: Settings, stop: Any,
            progress: Callable[[float], None]) -> Any:  # fmt: skip
    """Run a job's pipeline (in the job's process): its source and destination are checked
    against the job's scope first, with symbolic links resolved. With a ``dataset``, the
    source and the output are remembered there afterwards; the output goes to review where its
    gates or a queue's spot checks send it."""
    source, destination = storage.locate(spec["source"]), storage.locate(spec["destination"])
    if "scope" in spec:
        scope = storage.Scope.from_json(spec["scope"])
        source = scope.check(source, "source")
        destination = scope.check(destination, "destination")
    outcome = api.run(source, destination, spec.get("pipeline"), settings=settings,
                      progress=progress, stop=stop)  # fmt: skip
    hashes: dict[str, str | None] = {}
    if spec.get("dataset"):
        outcome, hashes = remembered(outcome, spec, source, settings)
    return reviewed(outcome, spec, str(source), hashes, settings)


def remembered(outcome: Any, spec: dict[str, Any], source: storage.Location,
               settings: Settings) -> tuple[Any, dict[str, str | None]]:  # fmt: skip
    """Record a job's run in its dataset; the content hashes of its source and output. A
    failure to do so is a note on the outcome, never the job's failure (its output is
    written)."""
    from pixelmill.datasets import Store, record_run
    from pixelmill.pipeline import Pipeline

    wanted = spec["dataset"]
    store = Store.of(settings)
    try:
        hashes = record_run(store, wanted["name"], str(source), outcome,
                            Pipeline.parse(spec["pipeline"]), settings=settings, kind="job",
                            ref=spec.get("id"), owner=wanted.get("owner", ""))  # fmt: skip
    except (PixelmillError, sa.exc.SQLAlchemyError) as exc:
        note = f"not remembered in dataset {wanted['name']}: {exc}"
        return dataclasses.replace(outcome, notes=(*outcome.notes, note)), {}
    finally:
        store.close()
    return outcome, hashes


def reviewed(outcome: Any, spec: dict[str, Any], source: str, hashes: dict[str, str | None],
             settings: Settings) -> Any:  # fmt: skip
    """Queue a job's output for review where its gates or a queue's spot checks send it. A
    held output that cannot be queued fails the attempt (it is retried), so it is never
    delivered unreviewed; a flagged or sampled one that cannot gets a note."""
    from pixelmill.pipeline import Pipeline
    from pixelmill.review.intake import Run, intake

    wanted = spec.get("dataset") or {}
    run = Run(f"job:{spec['id']}", source, Pipeline.parse(spec.get("pipeline")),
              job_id=spec["id"], dataset=wanted.get("name"), owner=wanted.get("owner", ""),
              sha256=hashes.get("source"), output_sha256=hashes.get("output"))  # fmt: skip
    try:
        items = intake(_reviews(settings.job_database), run, outcome)
    except (PixelmillError, sa.exc.SQLAlchemyError) as exc:
        if outcome.held:
            raise
        return dataclasses.replace(outcome, notes=(*outcome.notes, f"not sent to review: {exc}"))
    notes = [f"held for review in queue {item.queue}: {item.reason}" if item.held
             else f"sent to review queue {item.queue} ({item.origin})" for item in items]  # fmt: skip
    return dataclasses.replace(outcome, notes=(*outcome.notes, *notes)) if notes else outcome


@functools.lru_cache(maxsize=4)
def _reviews(url: str) -> Any:
    """The review queues of the job database at ``url``, kept for the job process's life."""
    from pixelmill.review.store import Reviews

    return Reviews(url)


@dataclass
class Worker:
    queue: JobQueue
    settings: Settings = field(default_factory=Settings.load)
    name: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    lease: float = LEASE
    service: str | None = None
    """The ``serve`` this worker belongs to, if one started it (see :mod:`presence`)."""
    grace: float = GRACE
    """Seconds a job has to stop when asked, or past its time limit, before its process is
    killed."""
    stop: threading.Event = field(default_factory=threading.Event)
    """Set to stop :meth:`run` between jobs and the job in progress (given to :meth:`run`)."""

    def __post_init__(self) -> None:
        self.runner = Runner(self.settings, run_job, self.grace)
        self.scratch = Scratch(self.settings.tmp_dir)
        self.presence = Presence(self.queue.engine, self.queue.clock)
        self.usage = Usage(self.queue.engine, Prices.of(self.settings), self.queue.clock.now)
        self.done = 0
        self.current: str | None = None
        """The job in progress, for the heartbeats."""

    def start(self) -> None:
        """Start the job process (its models loaded) and say that this worker is alive."""
        self.runner.start()
        with contextlib.suppress(sa.exc.OperationalError):
            self.presence.forget_silent()
        self._beat()

    def close(self) -> None:
        """End the job process, the heartbeat and the temporary folder."""
        self.runner.close()
        self.scratch.close()
        with contextlib.suppress(sa.exc.OperationalError):
            self.presence.leave(self.name)

    def run(self, stop: threading.Event, *, idle: float = IDLE) -> int:
        """Run jobs and deliver webhooks until ``stop`` is set (between jobs); return how many
        jobs ran. While the job database is unreachable, wait for it."""
        done, pause = 0, OUTAGE[0]
        self.stop = stop
        helpers = [threading.Thread(target=self._deliver_until, args=(stop, idle),
                                    name="webhooks", daemon=True),
                   threading.Thread(target=self._beat_until, args=(stop,), name="presence",
                                    daemon=True)]  # fmt: skip
        for helper in helpers:
            helper.start()
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
        for helper in helpers:
            helper.join()
        return done

    def run_one(self) -> Job | None:
        """Claim one job and run it to its recorded end; None when the queue has none ready."""
        job = self.queue.claim(self.name, self.lease)
        if job is None:
            return None
        began = time.monotonic()
        if job.attempts > 1:  # an earlier attempt may have died mid-write
            _remove_spools(job)
        stop = threading.Event()
        progress = [0.0]
        beating = threading.Thread(target=self._heartbeat, args=(job, stop, progress),
                                   name=f"heartbeat-{job.id}", daemon=True)  # fmt: skip
        beating.start()
        self.current = job.id
        try:
            with self.scratch.folder(job.id) as spool:
                attempt = self.runner.run(
                    {**job.spec, "id": job.id}, dataclasses.replace(self.settings, tmp_dir=spool),
                    lambda: stop.is_set() or self.stop.is_set(),
                    lambda share: progress.__setitem__(0, share))  # fmt: skip
        finally:
            stop.set()
            beating.join()
            self.current = None
        if attempt.state != "succeeded":
            _remove_spools(job)
        ended = self._record(self._recording(job, attempt), job.id)
        if attempt.meter is not None:
            self._account(job, attempt)
        self.done += 1
        if ended.state != "succeeded" and ended.error_kind:
            telemetry.failed(ended.error_kind, "job")
        if attempt.state == "crashed":
            telemetry.CRASHES.labels(attempt.cause).inc()
        LOG.info("job %s", ended.state, extra={
            "job": job.id, "worker": self.name, "state": ended.state, "attempt": job.attempts,
            "seconds": round(time.monotonic() - began, 3), "error_kind": ended.error_kind,
            "error": ended.error, "timings": (ended.result or {}).get("timings"),
        })  # fmt: skip
        return ended

    def _recording(self, job: Job, attempt: Ended) -> Callable[[], Any]:
        """What records an attempt's end in the queue."""
        if attempt.state == "succeeded":
            telemetry.succeeded(attempt.outcome, "job")
            return functools.partial(self.queue.complete, job.id, self.name,
                                     _result(attempt.outcome))  # fmt: skip
        if attempt.state == "cancelled":
            return functools.partial(self._stopped, job, attempt.message)
        return functools.partial(self.queue.fail, job.id, self.name, attempt.message,
                                 attempt.kind, retry=attempt.retry)  # fmt: skip

    def _account(self, job: Job, attempt: Ended) -> None:
        """Record what an attempt used (a failure to do so is logged, never the job's)."""
        assert attempt.meter is not None
        work = attempt.meter.result(
            "job", job.owner, _canonical(job.spec.get("pipeline")),
            (job.spec.get("dataset") or {}).get("name"), ref=job.id,
            failed=attempt.state != "succeeded")  # fmt: skip
        try:
            self.usage.record(work)
        except sa.exc.SQLAlchemyError as exc:
            LOG.warning("usage not recorded", extra={"job": job.id, "worker": self.name,
                                                     "error": str(exc)[:300]})  # fmt: skip

    def deliver_alert(self) -> bool:
        """Deliver one due budget alert to the setting ``budget_webhook`` (signed as job
        webhooks are); whether there was one."""
        budgets = self.usage.budgets
        alert = budgets.claim_alert(webhooks.TIMEOUT * 3)
        if alert is None:
            return False
        retry = None
        if not self.settings.budget_webhook:
            status = "not sent: no budget_webhook is set"
        else:
            delivered, status = webhooks.deliver(self.settings.budget_webhook, alert.payload(),
                                                 self.settings.webhook_secret,
                                                 self.settings.allow_private_hosts)  # fmt: skip
            attempts = alert.attempts + 1
            if not delivered and attempts < WEBHOOK_ATTEMPTS:
                retry = self.queue.backoff.delay(attempts)
            elif not delivered:
                status = f"given up after {attempts} attempts: {status}"
        budgets.alert_tried(alert, status, retry)
        LOG.info("budget alert %s", status, extra={"key": alert.key, "month": alert.month,
                                                   "threshold": alert.threshold})  # fmt: skip
        return True

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

    def _beat(self) -> None:
        """Say that this worker is alive (the database may be away: the next beat will)."""
        with contextlib.suppress(sa.exc.OperationalError):
            self.presence.beat(self.name, self.service, self.runner.pid, self.current, self.done)

    def _beat_until(self, stop: threading.Event) -> None:
        while not stop.wait(BEAT):
            self._beat()

    def _deliver_until(self, stop: threading.Event, idle: float) -> None:
        """Deliver webhooks beside the jobs (a slow receiver never holds a job back)."""
        while not stop.is_set():
            try:
                called = self.deliver_one()
                if not self.deliver_alert() and not called:
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


def _canonical(pipeline: Any) -> str:
    """A job's pipeline in its canonical text (as given when it does not parse)."""
    try:
        return str(Pipeline.parse(pipeline))
    except PixelmillError:
        return str(pipeline)


def _remove_spools(job: Job) -> None:
    """Remove what an interrupted write to the job's destination left beside it (a spec too
    broken to name one fails in the job's process instead)."""
    with contextlib.suppress(PixelmillError, KeyError, TypeError):
        storage.remove_spools(storage.locate(job.spec["destination"]))


def _result(outcome: Any) -> dict[str, Any]:
    found = outcome.to_json()
    del found["source"]
    return {**found, "finished_at": time.time()}
