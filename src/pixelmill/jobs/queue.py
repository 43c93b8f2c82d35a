"""The durable job queue: one table in the job database, where a job's state and its place in
the queue are one row, so they can never disagree.

Delivery is at least once. A worker *claims* a job and holds a lease that it renews with
heartbeats; a job whose worker dies is claimed again when the lease runs out. Every change a
worker makes names it and checks that it still holds the lease (fencing), so a worker that lost
its job cannot overwrite the next holder's result. Failures are retried with exponential
backoff up to ``max_attempts``, then the job is dead, with the reason. Higher priorities go
first, then older jobs.

A job may name a webhook: when it ends, the same row marks the call due, and workers deliver
it (see :mod:`pixelmill.jobs.webhooks`), retried with backoff like jobs, so a call is never
lost with the process that finished the job.

One code path for both databases, with SQLAlchemy Core. PostgreSQL claims with
``FOR UPDATE SKIP LOCKED``, so workers on many machines never wait on each other, and a new
job wakes waiting workers at once with ``NOTIFY``. SQLite (the embedded default) serves the
processes of one machine, in WAL mode: every writing transaction is ``BEGIN IMMEDIATE``, so
writers take turns and readers never wait; workers look for work twice a second.

Written on SQLAlchemy rather than taken from a task-queue library (Celery, RQ, Dramatiq…)
because those need a broker besides the database, and keep job state apart from the queue.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pixelmill.config import Settings
from pixelmill.database import connect, make_tables, writing
from pixelmill.errors import UsageError
from pixelmill.jobs.clock import Backoff, Clock, SystemClock

STATES = ("queued", "running", "succeeded", "failed", "dead", "cancelled")
FINAL = ("succeeded", "failed", "dead", "cancelled")
WEBHOOK_ATTEMPTS = 8
"""Deliveries tried before a webhook is given up (over about four minutes)."""
CHANNEL = "pixelmill_jobs"
"""The PostgreSQL channel that wakes workers."""

metadata = sa.MetaData()
jobs = sa.Table(
    "pixelmill_jobs", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("priority", sa.Integer, nullable=False),
    sa.Column("spec", sa.JSON, nullable=False),
    sa.Column("idempotency_key", sa.String(200), unique=True),
    sa.Column("batch", sa.String(32), index=True),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("max_attempts", sa.Integer, nullable=False),
    sa.Column("run_after", sa.Float, nullable=False),
    sa.Column("lease_owner", sa.String(100)),
    sa.Column("lease_expires", sa.Float),
    sa.Column("cancel_requested", sa.Boolean, nullable=False),
    sa.Column("progress", sa.Float, nullable=False),
    sa.Column("result", sa.JSON),
    sa.Column("error", sa.Text),
    sa.Column("error_kind", sa.String(32)),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("webhook", sa.String(2000)),
    sa.Column("webhook_due", sa.Float, index=True),
    sa.Column("webhook_attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("webhook_status", sa.Text),
    sa.Column("owner", sa.String(100), index=True),
    sa.Index("pixelmill_jobs_ready", "state", "priority", "created_at"),
)  # fmt: skip


@dataclass(frozen=True)
class Job:
    """One row of the queue."""

    id: str
    state: str
    priority: int
    spec: dict[str, Any]
    idempotency_key: str | None
    batch: str | None
    attempts: int
    max_attempts: int
    run_after: float
    lease_owner: str | None
    lease_expires: float | None
    cancel_requested: bool
    progress: float
    result: dict[str, Any] | None
    error: str | None
    error_kind: str | None
    created_at: float
    updated_at: float
    webhook: str | None = None
    webhook_due: float | None = None
    webhook_attempts: int = 0
    webhook_status: str | None = None
    """The last delivery's result: ``delivered (HTTP 200)``, or why it failed."""
    owner: str | None = None
    """The API key that submitted it, when the API wants keys."""

    def describe(self) -> dict[str, Any]:
        """The job as webhooks send it (the API adds its links)."""
        result = self.result or {}
        return {
            "id": self.id, "state": self.state, "progress": round(self.progress * 100, 1),
            "priority": self.priority, "batch": self.batch, "attempts": self.attempts,
            "created_at": self.created_at, "updated_at": self.updated_at,
            "source": self.spec["source"], "pipeline": self.spec["pipeline"],
            "destination": self.spec["destination"], "output": result or None,
            "timings": result.get("timings", {}), "qc": result.get("qc", []),
            "detections": result.get("detections", []), "classes": result.get("classes", []),
            "encode": result.get("encode"),
            "error": self.error and {"kind": self.error_kind, "message": self.error},
            "webhook": self.webhook and {"url": self.webhook, "attempts": self.webhook_attempts,
                                         "status": self.webhook_status},
        }  # fmt: skip


class JobQueue:
    """The queue in the database at ``url`` (``sqlite:///path`` or ``postgresql://…``); the
    table is created when missing. Leases, retries and webhook calls run on ``clock``, retries
    wait as ``backoff`` says (webhook calls too)."""

    def __init__(self, url: str, clock: Clock | None = None,
                 backoff: Backoff | None = None) -> None:  # fmt: skip
        self.clock = clock or SystemClock()
        self.backoff = backoff or Backoff()
        self.engine = connect(url, "job database")
        self.sqlite = self.engine.dialect.name == "sqlite"
        self._listener: Any = None
        make_tables(self.engine, (jobs,))

    @classmethod
    def of(cls, settings: Settings) -> JobQueue:
        """The queue of the settings' job database, retrying with their backoff."""
        return cls(settings.job_database, backoff=Backoff(first=settings.job_backoff))

    def close(self) -> None:
        if self._listener is not None:
            self._listener.close()
        self.engine.dispose()

    def submit(self, spec: dict[str, Any], *, priority: int = 0, key: str | None = None,
               batch: str | None = None, max_attempts: int = 5,
               job_id: str | None = None, webhook: str | None = None,
               owner: str | None = None) -> Job:  # fmt: skip
        """Queue a job (under ``job_id``, or a new one), or return the one already submitted
        with the idempotency ``key`` (each ``owner`` has its own keys); ``webhook`` is called
        when it ends."""
        if max_attempts < 1:
            raise UsageError(f"max_attempts must be at least 1, not {max_attempts}")
        json.dumps(spec)  # refuse what the database could not store, here
        if key is not None and owner is not None:  # one namespace per owner, of a fixed length
            key = "owned:" + hashlib.sha256(json.dumps([owner, key]).encode()).hexdigest()
        now = self.clock.now()
        row = {
            "id": job_id or uuid.uuid4().hex, "state": "queued", "priority": priority, "spec": spec,
            "idempotency_key": key, "batch": batch, "attempts": 0, "max_attempts": max_attempts,
            "run_after": now, "lease_owner": None, "lease_expires": None,
            "cancel_requested": False, "progress": 0.0, "result": None, "error": None,
            "error_kind": None, "created_at": now, "updated_at": now, "webhook": webhook,
            "webhook_due": None, "webhook_attempts": 0, "webhook_status": None, "owner": owner,
        }  # fmt: skip
        with self._transaction() as db:
            if key is not None:
                found = db.execute(sa.select(jobs).where(jobs.c.idempotency_key == key)).first()
                if found is not None:
                    return Job(**found._mapping)
            db.execute(jobs.insert().values(row))
            self._wake(db)
        return Job(**row)

    def wait(self, seconds: float) -> None:
        """Wait up to ``seconds`` for work: on PostgreSQL a new job ends the wait at once
        (``LISTEN``); elsewhere, or while the database is unreachable, it is a plain sleep."""
        if self.sqlite:
            time.sleep(seconds)
            return
        try:
            if self._listener is None:
                import psycopg

                url = self.engine.url.set(drivername="postgresql")
                self._listener = psycopg.connect(url.render_as_string(hide_password=False),
                                                 autocommit=True, connect_timeout=5)  # fmt: skip
                self._listener.execute(f"LISTEN {CHANNEL}")
            for _ in self._listener.notifies(timeout=seconds, stop_after=1):
                pass
        except Exception:  # noqa: BLE001  the database went away: the next claim will tell
            if self._listener is not None:
                self._listener.close()
            self._listener = None
            time.sleep(seconds)

    def claim(self, worker: str, lease: float) -> Job | None:
        """The next job for ``worker``, leased for ``lease`` seconds: the highest priority,
        then the oldest, among jobs queued and due, and running jobs whose lease ran out (their
        worker died). A job whose attempts are spent is made dead on the way."""
        while True:
            now = self.clock.now()
            with self._transaction() as db:
                ready = (jobs.c.state == "queued") & (jobs.c.run_after <= now)
                lost = (jobs.c.state == "running") & (jobs.c.lease_expires < now)
                query = (sa.select(jobs).where(ready | lost)
                         .order_by(jobs.c.priority.desc(), jobs.c.created_at).limit(1))  # fmt: skip
                if not self.sqlite:
                    query = query.with_for_update(skip_locked=True)
                found = db.execute(query).first()
                if found is None:
                    return None
                job = Job(**found._mapping)
                if job.state == "running" and job.cancel_requested:  # cancelled is final
                    self._set(db, job.id, state="cancelled", lease_owner=None,
                              lease_expires=None)  # fmt: skip
                    continue
                if job.state == "running" and job.attempts >= job.max_attempts:
                    self._set(db, job.id, state="dead", lease_owner=None, lease_expires=None,
                              error=f"its worker was lost {job.attempts} times (lease expired)",
                              error_kind="lost")  # fmt: skip
                    continue
                changes = {"state": "running", "attempts": job.attempts + 1,
                           "lease_owner": worker, "lease_expires": now + lease}  # fmt: skip
                self._set(db, job.id, **changes)
                return dataclasses.replace(job, **changes)

    def heartbeat(self, job_id: str, worker: str, lease: float,
                  progress: float | None = None) -> bool:  # fmt: skip
        """Renew ``worker``'s lease (and record progress, 0..1). False when the worker no
        longer holds the job or it was cancelled: the worker must stop it."""
        changes: dict[str, Any] = {"lease_expires": self.clock.now() + lease}
        if progress is not None:
            changes["progress"] = min(max(progress, 0.0), 1.0)
        with self._transaction() as db:
            held = self._set(db, job_id, owner=worker, **changes)
            if not held:
                return False
            return not db.execute(sa.select(jobs.c.cancel_requested)
                                  .where(jobs.c.id == job_id)).scalar_one()  # fmt: skip

    def complete(self, job_id: str, worker: str, result: dict[str, Any]) -> bool:
        """Record success; False (and no change) when ``worker`` no longer holds the job."""
        with self._transaction() as db:
            return self._set(db, job_id, owner=worker, state="succeeded", result=result,
                             progress=1.0, lease_owner=None, lease_expires=None, error=None,
                             error_kind=None)  # fmt: skip

    def fail(self, job_id: str, worker: str, error: str, kind: str, *,
             retry: bool = True) -> Job | None:  # fmt: skip
        """Record a failure: queued again after a backoff while attempts remain and ``retry``
        (a transient cause), else failed (``retry`` false: the input is at fault) or dead
        (attempts spent). None when ``worker`` no longer holds the job."""
        with self._transaction() as db:
            row = db.execute(sa.select(jobs).where(jobs.c.id == job_id)).first()
            if row is None:
                return None
            job = Job(**row._mapping)
            if job.lease_owner != worker or job.state != "running":
                return None
            changes: dict[str, Any] = {"error": error, "error_kind": kind, "lease_owner": None,
                                       "lease_expires": None}  # fmt: skip
            if job.cancel_requested:
                changes["state"] = "cancelled"
            elif not retry:
                changes["state"] = "failed"
            elif job.attempts >= job.max_attempts:
                changes["state"] = "dead"
            else:
                changes.update(state="queued",
                               run_after=self.clock.now() + self.backoff.delay(job.attempts))
            self._set(db, job_id, owner=worker, **changes)
            return dataclasses.replace(job, **changes)

    def claim_webhook(self, lease: float) -> Job | None:
        """A job whose webhook is due, held for ``lease`` seconds: its ``webhook_due`` is the
        end of the hold, and the fence of :meth:`webhook_tried` (a worker that dies
        mid-delivery leaves it due again after that)."""
        now = self.clock.now()
        with self._transaction() as db:
            query = (sa.select(jobs).where(jobs.c.webhook_due <= now)
                     .order_by(jobs.c.webhook_due).limit(1))  # fmt: skip
            if not self.sqlite:
                query = query.with_for_update(skip_locked=True)
            found = db.execute(query).first()
            if found is None:
                return None
            db.execute(jobs.update().where(jobs.c.id == found.id)
                       .values(webhook_due=now + lease))  # fmt: skip
            return dataclasses.replace(Job(**found._mapping), webhook_due=now + lease)

    def webhook_tried(self, claimed: Job, status: str, delivered: bool) -> bool:
        """Record a delivery of a claimed webhook: done when ``delivered``, else due again
        after a backoff until the attempts are spent. False (and no change) when the hold ran
        out and another worker took the call over."""
        attempts = claimed.webhook_attempts + 1
        due = None
        if not delivered and attempts < WEBHOOK_ATTEMPTS:
            due = self.clock.now() + self.backoff.delay(attempts)
        elif not delivered:
            status = f"given up after {attempts} attempts: {status}"
        held = (jobs.c.id == claimed.id) & (jobs.c.webhook_due == claimed.webhook_due)
        with self._transaction() as db:
            done = db.execute(jobs.update().where(held).values(
                webhook_attempts=attempts, webhook_status=status, webhook_due=due))
        return done.rowcount == 1

    def cancel(self, job_id: str) -> Job:
        """Cancel a job: at once when queued; a running one is asked to stop (its worker
        learns it at its next heartbeat). Finished jobs are left as they are."""
        with self._transaction() as db:
            job = self._get(db, job_id)
            if job.state == "queued":
                changes: dict[str, Any] = {"state": "cancelled"}
            elif job.state == "running":
                changes = {"cancel_requested": True}
            else:
                return job
            self._set(db, job_id, **changes)
            return dataclasses.replace(job, **changes)

    def cancelled(self, job_id: str, worker: str) -> bool:
        """Record that ``worker`` stopped a job it was asked to cancel."""
        with self._transaction() as db:
            return self._set(db, job_id, owner=worker, state="cancelled", lease_owner=None,
                             lease_expires=None)  # fmt: skip

    def get(self, job_id: str) -> Job:
        with self.engine.connect() as db:
            return self._get(db, job_id)

    def list(self, *, state: str | None = None, batch: str | None = None,
             since: float | None = None, owner: str | None = None, limit: int = 100,
             offset: int = 0) -> list[Job]:  # fmt: skip
        """Jobs, newest first, filtered by state, batch, owner and creation time."""
        if state is not None and state not in STATES:
            raise UsageError(f"state {state!r} is not one of {', '.join(STATES)}")
        query = sa.select(jobs).order_by(jobs.c.created_at.desc(), jobs.c.id)
        for column, value in ((jobs.c.state, state), (jobs.c.batch, batch),
                              (jobs.c.owner, owner)):  # fmt: skip
            if value is not None:
                query = query.where(column == value)
        if since is not None:
            query = query.where(jobs.c.created_at >= since)
        with self.engine.connect() as db:
            rows = db.execute(query.limit(limit).offset(offset)).all()
        return [Job(**row._mapping) for row in rows]

    def counts(self) -> dict[str, int]:
        """How many jobs are in each state."""
        query = sa.select(jobs.c.state, sa.func.count()).group_by(jobs.c.state)
        with self.engine.connect() as db:
            found = dict(db.execute(query).all())
        return {state: int(found.get(state, 0)) for state in STATES}

    def backlog(self) -> tuple[int, float | None]:
        """How many jobs are queued and due, and when the oldest of them was created."""
        now = self.clock.now()
        query = (sa.select(sa.func.count(), sa.func.min(jobs.c.created_at))
                 .where((jobs.c.state == "queued") & (jobs.c.run_after <= now)))  # fmt: skip
        with self.engine.connect() as db:
            count, oldest = db.execute(query).one()
        return int(count), oldest

    def _get(self, db: Connection, job_id: str) -> Job:
        row = db.execute(sa.select(jobs).where(jobs.c.id == job_id)).first()
        if row is None:
            raise KeyError(job_id)
        return Job(**row._mapping)

    def _set(self, db: Connection, job_id: str, owner: str | None = None,
             **changes: Any) -> bool:  # fmt: skip
        """Update a job (only while ``owner`` holds its lease, when given); whether it did."""
        where = jobs.c.id == job_id
        if owner is not None:
            where &= (jobs.c.lease_owner == owner) & (jobs.c.state == "running")
        now = self.clock.now()
        if changes.get("state") in FINAL:  # the job ends: its webhook is due
            changes["webhook_due"] = sa.case((jobs.c.webhook.is_not(None), now), else_=None)
        done = db.execute(jobs.update().where(where).values(updated_at=now, **changes))
        return done.rowcount == 1

    def _wake(self, db: Connection) -> None:
        """Wake waiting workers when the transaction commits (PostgreSQL)."""
        if not self.sqlite:
            db.execute(sa.text("SELECT pg_notify(:channel, '')"), {"channel": CHANNEL})

    def _transaction(self) -> Any:
        """A writing transaction. On SQLite it takes the write lock from the start (``BEGIN
        IMMEDIATE``): a read lock upgraded later fails at once under contention."""
        return writing(self.engine)
