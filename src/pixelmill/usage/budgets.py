"""Monthly budgets of API keys: how much of this month's budget a key has spent, the refusal
of its new work past 100 % (unless the budget is soft), and the alerts at 80 % and 100 %.

Months are calendar months in UTC, read from the clock given (tests move it by hand). An alert
is a row made once per key, month and threshold, by whichever process records the work that
reaches it (the primary key makes it once however many record at the same time); workers
deliver it as a signed webhook, retried like a job's.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from pixelmill.database import make_tables, writing
from pixelmill.errors import UsageError
from pixelmill.usage.periods import month_of
from pixelmill.usage.schema import alerts, budgets, insert, metadata, months

THRESHOLDS = (80, 100)
"""Percentages of a budget at which an alert fires."""


@dataclass(frozen=True)
class Standing:
    """A key's budget and what it spent of it this month."""

    key: str
    month: str
    spent: float
    budget: float
    soft: bool

    @property
    def ratio(self) -> float:
        return self.spent / self.budget

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "month": self.month, "spent": self.spent,
                "budget": self.budget, "soft": self.soft, "ratio": self.ratio}


@dataclass(frozen=True)
class Alert:
    """A threshold a key reached in a month, and its webhook's delivery."""

    key: str
    month: str
    threshold: int
    spent: float
    budget: float
    soft: bool
    at: float
    due: float | None
    attempts: int
    status: str | None

    def payload(self) -> dict[str, Any]:
        """What the budget webhook sends."""
        return {"event": "budget", "key": self.key, "month": self.month,
                "threshold": self.threshold, "spent": self.spent,
                "budget": self.budget, "soft": self.soft, "at": self.at,
                "refusing": self.threshold >= 100 and not self.soft}  # fmt: skip


class Budgets:
    """The budgets in the database behind ``engine``; ``clock()`` is the time in seconds."""

    def __init__(self, engine: Engine, clock: Callable[[], float]) -> None:
        self.engine, self.clock = engine, clock
        self.sqlite = engine.dialect.name == "sqlite"
        make_tables(engine, metadata.sorted_tables)

    def set(self, key: str, monthly: float, soft: bool = False) -> None:
        """Give ``key`` a monthly budget (replacing its budget)."""
        if monthly <= 0:
            raise UsageError(f"a budget must be more than 0, not {monthly:g}")
        with writing(self.engine) as db:
            db.execute(budgets.delete().where(budgets.c.key == key))
            db.execute(budgets.insert().values(key=key, monthly=monthly, soft=soft))

    def remove(self, key: str) -> None:
        with writing(self.engine) as db:
            db.execute(budgets.delete().where(budgets.c.key == key))

    def standing(self, key: str | None = None) -> list[Standing]:
        """This month's standing of every key with a budget, or of ``key`` alone."""
        month = month_of(self.clock())
        spent = sa.func.coalesce(months.c.cost, 0.0)
        query = (sa.select(budgets.c.key, budgets.c.monthly, budgets.c.soft, spent)
                 .select_from(budgets.outerjoin(months, (months.c.key == budgets.c.key)
                                                & (months.c.month == month)))
                 .order_by(budgets.c.key))  # fmt: skip
        if key is not None:
            query = query.where(budgets.c.key == key)
        with self.engine.connect() as db:
            return [Standing(row[0], month, row[3], row[1], row[2]) for row in db.execute(query)]

    def refusal(self, key: str) -> str | None:
        """Why the new work of ``key`` is refused (its hard budget is spent), or None."""
        found = self.standing(key)
        if not found or found[0].soft or found[0].ratio < 1:
            return None
        now = found[0]
        return (f"key {key!r} has spent {now.spent:.2f} of its budget of {now.budget:.2f} for "
                f"{now.month}; new work is refused until the month ends or the budget is "
                "raised (pixelmill keys budget)")  # fmt: skip

    def alerts(self, key: str | None = None) -> list[Alert]:
        """The alerts, newest first (of ``key`` alone when given)."""
        query = sa.select(alerts).order_by(alerts.c.at.desc())
        if key is not None:
            query = query.where(alerts.c.key == key)
        with self.engine.connect() as db:
            return [Alert(**row._mapping) for row in db.execute(query)]

    def claim_alert(self, hold: float) -> Alert | None:
        """An alert whose webhook is due, held for ``hold`` seconds (its ``due`` is the end of
        the hold, and the fence of :meth:`alert_tried`)."""
        now = self.clock()
        with writing(self.engine) as db:
            query = sa.select(alerts).where(alerts.c.due <= now).order_by(alerts.c.due).limit(1)
            if not self.sqlite:
                query = query.with_for_update(skip_locked=True)
            found = db.execute(query).first()
            if found is None:
                return None
            db.execute(alerts.update().where(_same(found)).values(due=now + hold))
            return Alert(**{**found._mapping, "due": now + hold})

    def alert_tried(self, alert: Alert, status: str, retry_in: float | None) -> bool:
        """Record a delivery of a claimed alert: done unless ``retry_in`` seconds are given
        for the next try. False when the hold ran out and another worker took it over."""
        due = self.clock() + retry_in if retry_in is not None else None
        with writing(self.engine) as db:
            done = db.execute(alerts.update().where(_same(alert) & (alerts.c.due == alert.due))
                              .values(attempts=alert.attempts + 1, status=status, due=due))
        return done.rowcount == 1


def reached(db: Connection, key: str, month: str, spent: float, budget: float, soft: bool,
            at: float) -> None:  # fmt: skip
    """Make the alerts of the thresholds of ``budget`` that ``spent`` has reached this month
    and that were not made yet (in the transaction that recorded the work)."""
    for threshold in THRESHOLDS:
        if spent >= budget * threshold / 100:
            db.execute(_alert(db.dialect.name), {
                "key": key, "month": month, "threshold": threshold, "spent": spent,
                "budget": budget, "soft": soft, "at": at, "due": at, "attempts": 0})  # fmt: skip


@functools.cache
def _alert(dialect: str) -> Any:
    """An alert's INSERT, which leaves one made already as it is (built once: recording is
    on every job's path)."""
    return insert(dialect, alerts).on_conflict_do_nothing()


def _same(alert: Any) -> Any:
    return ((alerts.c.key == alert.key) & (alerts.c.month == alert.month)
            & (alerts.c.threshold == alert.threshold))  # fmt: skip
