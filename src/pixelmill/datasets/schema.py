"""The tables of datasets, in the job database (SQLite or PostgreSQL).

Items are versioned by the dataset's change counter rather than copied: every change to a
dataset (items added, relabelled or removed) takes the next value of ``seq``; a row holds one
state of an item, visible from ``valid_from`` up to (not including) ``valid_to``, and a change
ends the old row and starts a new one. The current items are the rows with no ``valid_to``; a
snapshot is the counter's value when it was taken, so taking one copies nothing, and the items
of ``NAME@v1`` are the rows alive at its counter.

What was done to an item (jobs, on-demand renders, runs, human reviews) lies in ``events``, one
row each with its QC values in ``qc`` (one row per metric, so filters on them use an index).
Events are only ever added: a review verdict taken back is a new ``review`` event with the
verdict ``undo``, and a queue's decision on an item is a ``decision`` event (``approved``,
``rejected``, or ``reopened`` when a verdict behind it was taken back).
"""

from __future__ import annotations

import sqlalchemy as sa

from pixelmill.datasets.fields import FIELDS

SQL_TYPES = {"int": sa.BigInteger, "float": sa.Float, "text": sa.Text, "time": sa.Float}
CURRENT = sa.text("valid_to IS NULL")

metadata = sa.MetaData()

datasets = sa.Table(
    "pixelmill_datasets", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("owner", sa.String(100), nullable=False, server_default=""),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("embedder", sa.String(100), nullable=False),
    sa.Column("drift", sa.JSON),
    sa.Column("drift_state", sa.JSON),
    sa.UniqueConstraint("owner", "name", name="pixelmill_datasets_name"),
)  # fmt: skip

items = sa.Table(
    "pixelmill_items", metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
              autoincrement=True),
    sa.Column("dataset_id", sa.Integer, nullable=False),
    sa.Column("valid_from", sa.BigInteger, nullable=False),
    sa.Column("valid_to", sa.BigInteger),
    *(sa.Column(f.name, SQL_TYPES[f.kind], nullable=f.name not in ("uri", "sha256", "role",
                                                                     "created", "updated"))
      for f in FIELDS),
    sa.Column("tags", sa.JSON, nullable=False),
    sa.Column("embedding", sa.LargeBinary),
    sa.Index("pixelmill_items_current", "dataset_id", "sha256", unique=True,
             sqlite_where=CURRENT, postgresql_where=CURRENT),
    sa.Index("pixelmill_items_uri", "dataset_id", "uri"),
    sa.Index("pixelmill_items_alive", "dataset_id", "valid_to", "valid_from"),
    # Newest first (--sort -created, the usual listing), created ranges and the items added
    # since a time: at 1M items, top-100 sorted by -created takes ~10 ms instead of a scan and
    # sort of every match (0.3-0.8 s). PostgreSQL needs the query's own order (DESC NULLS
    # LAST, then id); SQLite cannot declare NULLS LAST, and sorts ties by id itself.
    sa.Index("pixelmill_items_created", "dataset_id", sa.text("created DESC NULLS LAST"), "id",
             postgresql_where=CURRENT).ddl_if(dialect="postgresql"),
    sa.Index("pixelmill_items_created", "dataset_id", "created",
             sqlite_where=CURRENT).ddl_if(dialect="sqlite"),
    # Sharpness percentiles (sharpness < p10: blur triage) and ranges: a percentile is a count
    # and a read at an offset, which without it are two full scans and a sort of every item
    # (1M items: ~0.8 s on SQLite, ~0.5 s on PostgreSQL; with it ~40 ms and ~120 ms).
    # valid_to (always null here) makes it covering for SQLite, whose planner otherwise ties
    # it with pixelmill_items_alive and may read every row through that one instead.
    sa.Index("pixelmill_items_sharpness", "dataset_id", "sharpness", "valid_to",
             sqlite_where=CURRENT, postgresql_where=CURRENT),
)  # fmt: skip

tags = sa.Table(
    "pixelmill_item_tags", metadata,
    sa.Column("item_id", sa.BigInteger, nullable=False),
    sa.Column("tag", sa.String(200), nullable=False),
    sa.PrimaryKeyConstraint("item_id", "tag"),
    sa.Index("pixelmill_item_tags_tag", "tag", "item_id"),
)  # fmt: skip

snapshots = sa.Table(
    "pixelmill_snapshots", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("dataset_id", sa.Integer, nullable=False),
    sa.Column("tag", sa.String(100), nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("item_count", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("dataset_id", "tag", name="pixelmill_snapshots_tag"),
)  # fmt: skip

events = sa.Table(
    "pixelmill_item_events", metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
              autoincrement=True),
    sa.Column("dataset_id", sa.Integer, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("ref", sa.String(200)),
    sa.Column("pipeline", sa.Text),
    sa.Column("output_uri", sa.Text),
    sa.Column("output_sha256", sa.String(64)),
    sa.Column("seconds", sa.Float),
    sa.Column("timings", sa.JSON),
    sa.Column("verdict", sa.String(16)),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("by", sa.String(100), comment="who judged it (review events)"),
    sa.Column("labels", sa.JSON),
    sa.Column("note", sa.Text),
    sa.Column("found", sa.JSON, comment="detections, classes and the target encode of a run"),
    sa.Index("pixelmill_item_events_item", "dataset_id", "sha256"),
)  # fmt: skip

qc = sa.Table(
    "pixelmill_item_qc", metadata,
    sa.Column("event_id", sa.BigInteger, nullable=False),
    sa.Column("dataset_id", sa.Integer, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("metric", sa.String(64), nullable=False),
    sa.Column("value", sa.Float, nullable=False),
    sa.Column("gate", sa.String(100), comment="the gate that judged it, e.g. ssim>=0.9"),
    sa.Index("pixelmill_item_qc_metric", "dataset_id", "metric", "value"),
    sa.Index("pixelmill_item_qc_item", "dataset_id", "sha256"),
)  # fmt: skip

failures = sa.Table(
    "pixelmill_ingest_failures", metadata,
    sa.Column("dataset_id", sa.Integer, nullable=False),
    sa.Column("uri", sa.Text, nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("at", sa.Float, nullable=False),
    sa.Index("pixelmill_ingest_failures_uri", "dataset_id", "uri"),
)  # fmt: skip
