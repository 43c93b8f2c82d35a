"""A batch run's manifest, in the job database: the run (its id, source, destination and
pipeline) and a row per item that was started, with its state, output, content hash and
outcome or error.

Rows are claimed a block at a time before their items are handed out (``running``) and ended
in groups as they finish (``succeeded`` or ``failed``). ``--resume`` skips the items whose row
says ``succeeded``; whatever was running when the driver died (its spool files removed first),
and whatever failed, runs again.
A claim also finds two sources that would write the same output (``a.jpg`` and ``a.png`` with
``encode:webp``): the later one is refused instead of overwriting the first. Every look-up names
the block's keys, so the driver never holds the run's listing.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import sqlalchemy as sa

from pixelmill.config import Settings
from pixelmill.database import connect, make_tables, writing
from pixelmill.errors import UsageError

metadata = sa.MetaData()
runs = sa.Table(
    "pixelmill_batch_runs", metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("src", sa.Text, nullable=False),
    sa.Column("dst", sa.Text, nullable=False),
    sa.Column("pipeline", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)  # fmt: skip
items = sa.Table(
    "pixelmill_batch_items", metadata,
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("source", sa.String(2048), primary_key=True),
    sa.Column("destination", sa.Text, nullable=False),
    sa.Column("output_key", sa.String(2048), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("sha256", sa.String(64)),
    sa.Column("outcome", sa.JSON),
    sa.Column("usage", sa.JSON),
    sa.Column("error_kind", sa.String(32)),
    sa.Column("error", sa.Text),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Index("pixelmill_batch_items_output", "run_id", "output_key"),
)  # fmt: skip

RUN_ID = 64
"""Longest run id."""


@dataclass(frozen=True)
class Item:
    """One image of a run: where it is read and written, and whether an attempt at it was cut
    short (what that attempt's write left beside the output is removed first)."""

    source: str
    destination: str
    again: bool = False


@dataclass(frozen=True)
class Ended:
    """How an item ended: ``succeeded`` with its output's hash and outcome, or ``failed`` with
    the error's kind and message."""

    item: Item
    state: str
    sha256: str | None = None
    outcome: dict | None = None
    error_kind: str | None = None
    error: str | None = None
    usage: dict | None = None
    """What the item used (:meth:`pixelmill.usage.Work.to_json`)."""

    @classmethod
    def failure(cls, item: Item, kind: str, message: str) -> Ended:
        return cls(item, "failed", error_kind=kind, error=message)


@dataclass(frozen=True)
class Claim:
    """What a block of items comes to: those to run, those an earlier attempt finished, and
    those refused at once (their output is another source's)."""

    todo: list[Item]
    skipped: int
    refused: list[Ended]


class Manifest:
    """The manifests of batch runs in one database."""

    def __init__(self, url: str) -> None:
        self.engine = connect(url, "job database")
        make_tables(self.engine, metadata.sorted_tables)

    @classmethod
    def of(cls, settings: Settings) -> Manifest:
        return cls(settings.job_database)

    def begin(self, run_id: str | None, src: str, dst: str, pipeline: str, resume: bool) -> int:
        """Start run ``run_id`` (or resume it); its attempt number. A run id names one source,
        destination and pipeline: resuming it with others, or starting it again without
        ``resume`` once it has items, is refused."""
        if run_id is None:
            raise UsageError("a run needs an id")
        now = time.time()
        with writing(self.engine) as db:
            row = db.execute(sa.select(runs).where(runs.c.id == run_id)).one_or_none()
            if row is None:
                db.execute(runs.insert().values(id=run_id, src=src, dst=dst, pipeline=pipeline,
                                                attempts=1, created_at=now, updated_at=now))
                return 1
            started = db.execute(sa.select(items.c.source).where(items.c.run_id == run_id)
                                 .limit(1)).first() is not None  # fmt: skip
            if not resume and started:
                raise UsageError(f"run {run_id!r} exists; add --resume to finish it, or give "
                                 "another --run-id")  # fmt: skip
            if (row.src, row.dst, row.pipeline) != (src, dst, pipeline):
                raise UsageError(f"run {run_id!r} was {row.src} → {row.dst} with "
                                 f"{row.pipeline!r}; resume it with the same source, "
                                 "destination and pipeline")  # fmt: skip
            db.execute(runs.update().where(runs.c.id == run_id)
                       .values(attempts=row.attempts + 1, updated_at=now))  # fmt: skip
            return row.attempts + 1

    def claim(self, run_id: str, attempt: int, block: Sequence[Item]) -> Claim:
        """Mark the block's items running, but those already succeeded (skipped) and those whose
        output another source of the run writes (refused)."""
        if not block:
            return Claim([], 0, [])
        sources = [item.source for item in block]
        outputs = [item.destination.casefold() for item in block]
        now = time.time()
        with writing(self.engine) as db:
            known = {row.source: row.state for row in db.execute(
                sa.select(items.c.source, items.c.state).where(
                    items.c.run_id == run_id, items.c.source.in_(sources)))}  # fmt: skip
            owners = {row.output_key: row.source for row in db.execute(
                sa.select(items.c.output_key, items.c.source).where(
                    items.c.run_id == run_id, items.c.output_key.in_(outputs)))}  # fmt: skip
            todo, refused, skipped = [], [], 0
            for item, output in zip(block, outputs, strict=True):
                owner = owners.setdefault(output, item.source)
                if known.get(item.source) == "succeeded":
                    skipped += 1
                elif owner != item.source:
                    refused.append(Ended.failure(item, "usage", f"{owner} and {item.source} would "
                                                 f"both be written to {item.destination}"))
                else:
                    todo.append(replace(item, again=known.get(item.source) == "running"))
            fresh = [i for i in todo if i.source not in known]
            if fresh:
                db.execute(items.insert(), [
                    {"run_id": run_id, "source": i.source, "destination": i.destination,
                     "output_key": i.destination.casefold(), "state": "running",
                     "attempt": attempt, "updated_at": now} for i in fresh])
            again = [i.source for i in todo if i.source in known]
            if again:
                db.execute(items.update().where(items.c.run_id == run_id,
                                                items.c.source.in_(again))
                           .values(state="running", attempt=attempt, updated_at=now))  # fmt: skip
        return Claim(todo, skipped, refused)

    def end(self, run_id: str, ended: Iterable[Ended]) -> None:
        """Record how claimed items ended (refused ones have no row: they are refused again
        when the run is resumed)."""
        rows = [{"_source": e.item.source, "state": e.state, "sha256": e.sha256,
                 "outcome": e.outcome, "usage": e.usage, "error_kind": e.error_kind,
                 "error": e.error} for e in ended]  # fmt: skip
        if not rows:
            return
        now = time.time()
        statement = (items.update()
                     .where(items.c.run_id == run_id, items.c.source == sa.bindparam("_source"))
                     .values(updated_at=now))  # fmt: skip
        with writing(self.engine) as db:
            db.execute(statement, rows)

    def counts(self, run_id: str) -> dict[str, int]:
        """Items of the run by state."""
        with self.engine.connect() as db:
            return dict(db.execute(sa.select(items.c.state, sa.func.count())
                                   .where(items.c.run_id == run_id)
                                   .group_by(items.c.state)).all())  # fmt: skip

    def failures(self, run_id: str, limit: int = 20) -> list[tuple[str, str, str]]:
        """The first failed items of the run: (source, kind, message)."""
        with self.engine.connect() as db:
            return [tuple(row) for row in db.execute(
                sa.select(items.c.source, items.c.error_kind, items.c.error)
                .where(items.c.run_id == run_id, items.c.state == "failed")
                .order_by(items.c.source).limit(limit))]  # fmt: skip


def new_run_id() -> str:
    """A run id that sorts by time: ``batch-YYYYmmdd-HHMMSS-xxxxxx``."""
    return time.strftime("batch-%Y%m%d-%H%M%S-", time.gmtime()) + uuid.uuid4().hex[:6]
