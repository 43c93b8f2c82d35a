"""Which workers are alive: each records a heartbeat in the job database every few seconds, so
the service can tell whether queued jobs would run (``/readyz``) without reaching the workers,
which may be on other machines.

A worker started by ``pixelmill serve`` carries that service's name; ``/readyz`` of a service
that started workers looks at its own, and one that started none at any worker of the database.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pixelmill.jobs.clock import Clock, SystemClock

BEAT = 5.0
"""Seconds between a worker's heartbeats."""
FRESH = 3 * BEAT
"""Seconds a heartbeat counts as fresh."""
FORGET = 3600.0
"""Seconds after which a silent worker's row is removed."""

metadata = sa.MetaData()
workers = sa.Table(
    "pixelmill_workers", metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("service", sa.String(200), index=True),
    sa.Column("job_pid", sa.Integer),
    sa.Column("job", sa.String(32)),
    sa.Column("jobs_done", sa.Integer, nullable=False),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("seen_at", sa.Float, nullable=False),
)  # fmt: skip


@dataclass(frozen=True)
class Seen:
    """A worker as its last heartbeat described it."""

    name: str
    service: str | None
    job_pid: int | None
    """Its job process."""
    job: str | None
    """The job it was running."""
    jobs_done: int
    started_at: float
    seen_at: float


class Presence:
    """The workers' heartbeats in the job database behind ``engine`` (the table is made when
    missing)."""

    def __init__(self, engine: Engine, clock: Clock | None = None) -> None:
        self.engine = engine
        self.clock = clock or SystemClock()
        metadata.create_all(engine)

    def beat(self, name: str, service: str | None, job_pid: int | None, job: str | None,
             jobs_done: int) -> None:  # fmt: skip
        now = self.clock.now()
        values = {"service": service, "job_pid": job_pid, "job": job, "jobs_done": jobs_done,
                  "seen_at": now}  # fmt: skip
        with self.engine.begin() as db:
            if not db.execute(workers.update().where(workers.c.name == name)
                              .values(**values)).rowcount:  # fmt: skip
                db.execute(workers.insert().values(name=name, started_at=now, **values))

    def forget_silent(self) -> None:
        """Remove the rows of workers not heard from for :data:`FORGET` seconds."""
        with self.engine.begin() as db:
            db.execute(workers.delete().where(workers.c.seen_at < self.clock.now() - FORGET))

    def leave(self, name: str) -> None:
        with self.engine.begin() as db:
            db.execute(workers.delete().where(workers.c.name == name))

    def fresh(self, service: str | None = None) -> list[Seen]:
        """The workers heard from lately (of ``service`` only, when given)."""
        query = sa.select(workers).where(workers.c.seen_at >= self.clock.now() - FRESH)
        if service is not None:
            query = query.where(workers.c.service == service)
        with self.engine.connect() as db:
            return [Seen(**row._mapping) for row in db.execute(query.order_by(workers.c.name))]
