"""The one database of pixelmill (the job queue, API keys, datasets): its engine, made the same
way for every table that lives there, and the upgrade of tables made by earlier versions.

SQLite (the embedded default) runs in WAL mode, so readers never wait for the writer, and every
writing transaction asked for with ``execution_options(immediate=True)`` is ``BEGIN
IMMEDIATE``: a read lock upgraded later fails at once under contention. PostgreSQL URLs are
driven by psycopg 3.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from pixelmill.errors import UsageError


def connect(url: str, what: str = "database") -> Engine:
    """The engine of ``url`` (``sqlite:///path`` or ``postgresql://…``); ``what`` names it in
    errors."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    try:
        engine = sa.create_engine(url, pool_pre_ping=True)
    except (sa.exc.ArgumentError, ImportError) as exc:
        raise UsageError(f"{what} {url!r}: {exc}") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_connection)
        event.listen(engine, "begin", _sqlite_begin)
    return engine


def writing(engine: Engine) -> Any:
    """A writing transaction (``BEGIN IMMEDIATE`` on SQLite)."""
    return engine.execution_options(immediate=True).begin()


def add_missing_columns(engine: Engine, table: sa.Table) -> None:
    """Bring a table made by an earlier version up to date: columns added since are nullable
    or have a default, so adding them is all it takes (both databases)."""
    present = {column["name"] for column in sa.inspect(engine).get_columns(table.name)}
    missing = [column for column in table.columns if column.name not in present]
    if not missing:
        return
    for column in missing:
        ddl = sa.schema.CreateColumn(column).compile(dialect=engine.dialect)
        try:
            with engine.begin() as db:
                db.exec_driver_sql(f"ALTER TABLE {table.name} ADD COLUMN {ddl}")
        except sa.exc.DBAPIError:  # another process starting beside this one added it first
            columns = sa.inspect(engine).get_columns(table.name)
            if column.name not in {c["name"] for c in columns}:
                raise
    for index in table.indexes:
        with contextlib.suppress(sa.exc.DBAPIError):  # the same race
            index.create(engine, checkfirst=True)


def make_tables(engine: Engine, tables: Iterable[sa.Table]) -> None:
    """Make the tables that are missing, and bring those an earlier version made up to date."""
    tables = list(tables)
    tables[0].metadata.create_all(engine, tables=tables)
    for table in tables:
        add_missing_columns(engine, table)


def _sqlite_begin(db: Connection) -> None:
    immediate = db.get_execution_options().get("immediate", False)
    db.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _sqlite_connection(connection: Any, record: Any) -> None:
    """WAL (readers never wait for the writer), a wait instead of an error when another
    process holds the lock, and transactions begun by SQLAlchemy, not the driver."""
    connection.isolation_level = None
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
