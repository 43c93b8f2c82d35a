"""The usage ledger: one row per piece of work, priced when it is recorded, and the reports
over it.

Recording is one short writing transaction: the row, and for work done for an API key its
running monthly cost (one statement that also reads the key's budget) and the budget alerts
that cost reached (see
:mod:`pixelmill.usage.budgets`); then the Prometheus counters (:mod:`pixelmill.usage.counters`).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pixelmill.config import Settings
from pixelmill.database import connect, make_tables, writing
from pixelmill.errors import UsageError
from pixelmill.usage import counters
from pixelmill.usage.budgets import Budgets, reached
from pixelmill.usage.meter import Work
from pixelmill.usage.periods import day_of, month_of
from pixelmill.usage.prices import Prices
from pixelmill.usage.schema import budgets, insert, metadata, months, usage

BY = ("key", "pipeline", "day", "dataset", "origin")
"""What a report may group by."""
SUMS = ("cpu_seconds", "gpu_seconds", "wall_seconds", "bytes_read", "bytes_written",
        "bytes_served", "cost")  # fmt: skip


@dataclass(frozen=True)
class Report:
    """Work and cost since a time, grouped."""

    since: float
    by: str
    rows: list[dict[str, Any]]
    total: dict[str, Any]
    budgets: list[dict[str, Any]] = field(default_factory=list)
    """This month's standing of the budgets in view."""

    def to_json(self) -> dict[str, Any]:
        return {"since": self.since, "by": self.by, "rows": self.rows, "total": self.total,
                "budgets": self.budgets}  # fmt: skip


class Usage:
    """The usage recorded in the database behind ``engine``, priced by ``prices``;
    ``clock()`` is the time in seconds (months and days are of it)."""

    def __init__(self, engine: Engine, prices: Prices | None = None,
                 clock: Callable[[], float] = time.time) -> None:  # fmt: skip
        self.engine, self.prices, self.clock = engine, prices or Prices(), clock
        make_tables(engine, metadata.sorted_tables)
        self.budgets = Budgets(engine, clock)

    @classmethod
    def of(cls, settings: Settings) -> Usage:
        """The usage of the settings' job database, made once per process."""
        return _made(settings.job_database, Prices.of(settings))

    def record(self, work: Work) -> float:
        """Record one piece of work; its cost."""
        cost = self.prices.cost(work)
        at = self.clock()
        pipeline_label = counters.label(work.pipeline)
        row = {**work.to_json(), "key": work.key or "", "dataset": work.dataset or "",
               "at": at, "day": day_of(at), "pipeline_label": pipeline_label, "cost": cost}
        with writing(self.engine) as db:
            dialect = db.dialect.name
            if not work.key:
                db.execute(_ROW, row)
            else:
                month = month_of(at)
                values = {"key": work.key, "month": month, "cost": cost, "of": work.key}
                if dialect == "postgresql":  # the row and the month in one round trip
                    values |= {f"row_{name}": value for name, value in row.items()}
                else:
                    db.execute(_ROW, row)
                spent, budget, soft = db.execute(_month(dialect), values).one()
                if budget is not None:
                    reached(db, work.key, month, spent, budget, soft, at)
        counters.count(work, pipeline_label, cost)
        return cost

    def report(self, since: float, by: str = "key", key: str | None = None) -> Report:
        """Work and cost since ``since`` grouped ``by`` key, pipeline, day, dataset or
        origin; of ``key`` alone when given."""
        if by not in BY:
            raise UsageError(f"by {by!r}: give one of {', '.join(BY)}")
        group = usage.c.pipeline_label if by == "pipeline" else usage.c[by]
        sums = [sa.func.count().label("work"),
                sa.func.sum(sa.case((usage.c.failed, 1), else_=0)).label("failed"),
                *(sa.func.sum(usage.c[name]).label(name) for name in SUMS),
                sa.func.max(usage.c.peak_memory).label("peak_memory")]  # fmt: skip
        shown = [group.label("group"), *sums]
        if by == "pipeline":
            shown.append(sa.func.min(usage.c.pipeline).label("pipeline"))
        where = usage.c.at >= since
        if key is not None:
            where &= usage.c.key == key
        query = sa.select(*shown).where(where).group_by(group)
        query = query.order_by(group if by == "day" else sa.desc("cost"))
        with self.engine.connect() as db:
            rows = [_numbers(dict(row._mapping)) for row in db.execute(query)]
            total = dict(db.execute(sa.select(*sums).where(where)).one()._mapping)
        standing = self.budgets.standing(key) if key is not None else self.budgets.standing()
        return Report(since, by, rows, _numbers(total), [s.to_json() for s in standing])


@functools.lru_cache(maxsize=8)
def _made(url: str, prices: Prices) -> Usage:
    return Usage(connect(url, "job database"), prices)


_ROW = usage.insert()


@functools.cache
def _month(dialect: str) -> Any:
    """The UPSERT of a key's month, returning its cost so far and the key's budget (one
    statement, built once: recording is on every job's path); on PostgreSQL it also inserts
    the work's row (a data-modifying ``WITH``), so recording is one round trip."""
    made = insert(dialect, months)

    def budget(column: sa.Column) -> Any:
        return sa.select(column).where(budgets.c.key == sa.bindparam("of")).scalar_subquery()

    upsert = made.on_conflict_do_update(
        index_elements=[months.c.key, months.c.month],
        set_={"cost": months.c.cost + made.excluded.cost},
    ).returning(months.c.cost, budget(budgets.c.monthly), budget(budgets.c.soft))
    if dialect != "postgresql":
        return upsert
    columns = [column.name for column in usage.columns if column.name != "id"]
    logged = usage.insert().values({name: sa.bindparam(f"row_{name}") for name in columns})
    return upsert.add_cte(logged.cte("logged"))


def _numbers(row: dict[str, Any]) -> dict[str, Any]:
    """A row's sums as plain numbers (0 where there was nothing to add up)."""
    for name in (*SUMS, "work", "failed", "peak_memory"):
        value = row.get(name) or 0
        row[name] = value if isinstance(value, float) else int(value)
    return row
