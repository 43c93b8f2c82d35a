"""The tables of human review, in the job database (SQLite or PostgreSQL).

A *queue* holds *items* to judge: an output beside its source (a held or flagged job, a
spot check), or a single image pushed from a dataset. A reviewer *claims* an item with a lease,
like a worker claims a job, so two people never judge it at once; an item wanting n verdicts
goes to n different people. *Verdicts* are only ever added (an audit trail): taking one back is
a new row whose verdict is ``undo`` and which names the row it undoes. When an item has its n
verdicts it is *decided* (``approved`` or ``rejected``), which releases a held output or runs
the queue's action on a rejection.

Reviewers sign in with a password (hashed with Argon2id) and hold *sessions* whose secret the
database keeps as a SHA-256 digest only.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

queues = sa.Table(
    "pixelmill_review_queues", metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("instructions", sa.Text, nullable=False, server_default=""),
    sa.Column("labels", sa.JSON, nullable=False),
    sa.Column("reviewers", sa.Integer, nullable=False, server_default="1",
              comment="verdicts wanted per item, each from a different reviewer"),
    sa.Column("on_reject", sa.String(2000), nullable=False, server_default="nothing",
              comment="nothing, withhold, or rerun:PIPELINE"),
    sa.Column("sample", sa.Float, nullable=False, server_default="0",
              comment="share of finished jobs sent here as spot checks (0 to 1)"),
    sa.Column("sample_pipeline", sa.Text, comment="only jobs of this pipeline are sampled"),
    sa.Column("created", sa.Float, nullable=False),
)  # fmt: skip

items = sa.Table(
    "pixelmill_review_items", metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
              autoincrement=True),
    sa.Column("queue", sa.String(100), nullable=False),
    sa.Column("key", sa.String(300), nullable=False,
              comment="what the item is of (job:ID, render:DIGEST, item:DATASET:SHA256…): "
                      "pushing the same thing twice to one queue adds it once"),
    sa.Column("origin", sa.String(16), nullable=False, comment="hold, flag, sample or push"),
    sa.Column("source_uri", sa.Text, nullable=False),
    sa.Column("output_uri", sa.Text),
    sa.Column("sha256", sa.String(64), comment="the source's content, when known"),
    sa.Column("output_sha256", sa.String(64)),
    sa.Column("dataset", sa.String(100), comment="where verdicts are recorded"),
    sa.Column("dataset_owner", sa.String(100), nullable=False, server_default=""),
    sa.Column("job_id", sa.String(32)),
    sa.Column("pipeline", sa.Text),
    sa.Column("qc", sa.JSON, nullable=False, comment="the gates' verdicts (Verdict.to_json)"),
    sa.Column("reason", sa.Text, nullable=False, server_default=""),
    sa.Column("held", sa.Boolean, nullable=False, server_default=sa.false(),
              comment="the output is kept from delivery until approved"),
    sa.Column("state", sa.String(16), nullable=False, comment="open, approved or rejected"),
    sa.Column("decided_at", sa.Float),
    sa.Column("created", sa.Float, nullable=False),
    sa.UniqueConstraint("queue", "key", name="pixelmill_review_items_key"),
    sa.Index("pixelmill_review_items_open", "queue", "state", "held", "id"),
    sa.Index("pixelmill_review_items_job", "job_id"),
)  # fmt: skip

claims = sa.Table(
    "pixelmill_review_claims", metadata,
    sa.Column("item_id", sa.BigInteger, nullable=False),
    sa.Column("reviewer", sa.String(100), nullable=False),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("expires", sa.Float, nullable=False),
    sa.PrimaryKeyConstraint("item_id", "reviewer"),
)  # fmt: skip

verdicts = sa.Table(
    "pixelmill_review_verdicts", metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
              autoincrement=True),
    sa.Column("item_id", sa.BigInteger, nullable=False),
    sa.Column("queue", sa.String(100), nullable=False),
    sa.Column("reviewer", sa.String(100), nullable=False),
    sa.Column("verdict", sa.String(16), nullable=False,
              comment="approved, rejected, skipped or undo"),
    sa.Column("labels", sa.JSON, nullable=False),
    sa.Column("note", sa.Text, nullable=False, server_default=""),
    sa.Column("seconds", sa.Float, comment="time the reviewer spent on the item"),
    sa.Column("undoes", sa.BigInteger, comment="the verdict an undo takes back"),
    sa.Column("at", sa.Float, nullable=False),
    sa.Index("pixelmill_review_verdicts_item", "item_id"),
    sa.Index("pixelmill_review_verdicts_queue", "queue", "reviewer"),
)  # fmt: skip

reviewers = sa.Table(
    "pixelmill_reviewers", metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("password", sa.Text, nullable=False, comment="Argon2id hash"),
    sa.Column("queues", sa.JSON, nullable=False, comment="the queues she may review"),
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("failures", sa.Integer, nullable=False, server_default="0",
              comment="wrong passwords in a row"),
    sa.Column("locked_until", sa.Float, nullable=False, server_default="0"),
)  # fmt: skip

sessions = sa.Table(
    "pixelmill_review_sessions", metadata,
    sa.Column("digest", sa.String(64), primary_key=True, comment="SHA-256 of the secret"),
    sa.Column("reviewer", sa.String(100), nullable=False, index=True),
    sa.Column("csrf", sa.String(64), nullable=False),
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("expires", sa.Float, nullable=False),
)  # fmt: skip
