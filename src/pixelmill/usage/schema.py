"""The tables of usage, in the job database (SQLite or PostgreSQL).

``usage`` holds one row per piece of work, with its cost by the prices in force when it was
recorded. ``months`` keeps each key's running cost per calendar month (UTC), so a budget is
checked with one row's read, never a sum. ``budgets`` holds the keys' monthly budgets, and
``alerts`` each threshold a key reached in a month, once, with the delivery of its webhook.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

metadata = sa.MetaData()
BIG_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")  # SQLite's rowid is an INTEGER

usage = sa.Table(
    "pixelmill_usage", metadata,
    sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
    sa.Column("at", sa.Float, nullable=False, index=True),
    sa.Column("day", sa.String(10), nullable=False),
    sa.Column("origin", sa.String(16), nullable=False),
    sa.Column("key", sa.String(100), nullable=False, server_default=""),
    sa.Column("pipeline", sa.Text, nullable=False),
    sa.Column("pipeline_label", sa.String(12), nullable=False),
    sa.Column("dataset", sa.String(100), nullable=False, server_default=""),
    sa.Column("ref", sa.String(2000)),
    sa.Column("failed", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("cpu_seconds", sa.Float, nullable=False),
    sa.Column("gpu_seconds", sa.Float, nullable=False),
    sa.Column("wall_seconds", sa.Float, nullable=False),
    sa.Column("peak_memory", sa.BigInteger, nullable=False),
    sa.Column("bytes_read", sa.BigInteger, nullable=False),
    sa.Column("bytes_written", sa.BigInteger, nullable=False),
    sa.Column("bytes_served", sa.BigInteger, nullable=False),
    sa.Column("cost", sa.Float, nullable=False),
    sa.Index("pixelmill_usage_key", "key", "at"),
)  # fmt: skip

months = sa.Table(
    "pixelmill_usage_months", metadata,
    sa.Column("key", sa.String(100), primary_key=True),
    sa.Column("month", sa.String(7), primary_key=True),
    sa.Column("cost", sa.Float, nullable=False),
)  # fmt: skip

budgets = sa.Table(
    "pixelmill_budgets", metadata,
    sa.Column("key", sa.String(100), primary_key=True),
    sa.Column("monthly", sa.Float, nullable=False),
    sa.Column("soft", sa.Boolean, nullable=False),
)  # fmt: skip

alerts = sa.Table(
    "pixelmill_budget_alerts", metadata,
    sa.Column("key", sa.String(100), primary_key=True),
    sa.Column("month", sa.String(7), primary_key=True),
    sa.Column("threshold", sa.Integer, primary_key=True),
    sa.Column("spent", sa.Float, nullable=False),
    sa.Column("budget", sa.Float, nullable=False),
    sa.Column("soft", sa.Boolean, nullable=False),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("due", sa.Float, index=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("status", sa.Text),
)  # fmt: skip



def insert(dialect: str, table: sa.Table) -> Any:
    """The INSERT into ``table`` of a dialect (``sqlite`` or ``postgresql``), which knows
    ``ON CONFLICT``."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    return dialect_insert(table)
