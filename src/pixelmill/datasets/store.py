"""Datasets in the job database: made, listed, added to, relabelled, snapshotted, compared and
read back, on SQLite and PostgreSQL alike (SQLAlchemy Core).

Every change to a dataset runs in one transaction that first takes the dataset's next change
number (``seq``): on PostgreSQL that locks the dataset's row, on SQLite the write lock is taken
at ``BEGIN IMMEDIATE``, so concurrent writers take turns and no write is lost. An item's
content is its identity: the partial unique index on ``(dataset_id, sha256)`` over the current
rows makes adding the same content twice a no-op, however many processes race to add it.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from pixelmill.config import Settings
from pixelmill.database import connect, make_tables, writing
from pixelmill.datasets import query as filters
from pixelmill.datasets.fields import FEATURES, FIELDS
from pixelmill.datasets.schema import (
    datasets,
    events,
    failures,
    items,
    metadata,
    qc,
    snapshots,  # fmt: skip
    tags,
)
from pixelmill.errors import MissingError, UsageError
from pixelmill.pipeline.kinds import GATE

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
"""What a dataset or a snapshot may be called."""
CATEGORIES = ("format", "colour_space", "camera_model")
"""The categorical fields the statistics compare."""
MAX_TAGS = 64
ROW_FIELDS = tuple(f.name for f in FIELDS)


@dataclass(frozen=True)
class Dataset:
    id: int
    owner: str
    name: str
    created: float
    seq: int
    embedder: str
    drift: dict[str, Any] | None = None
    drift_state: dict[str, Any] | None = None


@dataclass(frozen=True)
class View:
    """A dataset as it is now (``seq`` None) or as one of its snapshots froze it."""

    dataset: Dataset
    version: str | None = None
    seq: int | None = None

    def __str__(self) -> str:
        return self.dataset.name + (f"@{self.version}" if self.version else "")

    def alive(self, table: Any = items) -> sa.ColumnElement[bool]:
        """The rows of this view in ``table`` (items or an alias of it)."""
        where = table.c.dataset_id == self.dataset.id
        if self.seq is None:
            return where & table.c.valid_to.is_(None)
        return where & (table.c.valid_from <= self.seq) & (
            table.c.valid_to.is_(None) | (table.c.valid_to > self.seq))


@dataclass(frozen=True)
class Record:
    """One image to add: what :func:`pixelmill.datasets.analyse.analyse` found, and how it
    came."""

    uri: str
    sha256: str
    fields: dict[str, Any]
    embedding: np.ndarray | None = None
    role: str = "image"
    parent: str | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Event:
    """Something done to an item: a job, an on-demand render, a run, a batch item, a review
    verdict or a queue's decision."""

    kind: str
    sha256: str
    ref: str | None = None
    pipeline: str | None = None
    output_uri: str | None = None
    output_sha256: str | None = None
    seconds: float | None = None
    timings: dict[str, float] | None = None
    verdict: str | None = None
    qc: tuple[dict[str, Any], ...] = ()
    """The gates' verdicts, as :class:`pixelmill.engine.qc.Verdict.to_json` gives them."""
    by: str | None = None
    """Who judged it (review events)."""
    labels: tuple[str, ...] | None = None
    note: str | None = None
    found: dict[str, Any] | None = None
    """What the run's detectors and classifiers found and how a target encode chose its
    quality (``detections``, ``classes``, ``encode`` of the outcome)."""


@dataclass
class Columns:
    """Items of a view as arrays, for the statistics: ``features`` by name (NaN where
    missing), ``categories`` by name, the embeddings (n × d) and each item's uri and sha256."""

    uris: list[str]
    sha256: list[str]
    features: dict[str, np.ndarray]
    categories: dict[str, list[str | None]]
    embeddings: np.ndarray
    created: np.ndarray


@dataclass(frozen=True)
class Diff:
    added: list[str]
    removed: list[str]
    relabelled: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class Store:
    """The datasets of the database at ``url``; the tables are made when missing."""

    def __init__(self, url: str, clock: Callable[[], float] = time.time) -> None:
        self.engine: Engine = connect(url, "job database")
        self.clock = clock
        self.postgres = self.engine.dialect.name == "postgresql"
        make_tables(self.engine, metadata.sorted_tables)

    @classmethod
    def of(cls, settings: Settings) -> Store:
        return cls(settings.job_database)

    def close(self) -> None:
        self.engine.dispose()

    # datasets

    def create(self, name: str, owner: str = "", embedder: str | None = None) -> Dataset:
        """The dataset ``name`` of ``owner``, made when missing with ``embedder`` (default: the
        built-in one); an existing one keeps its own, and a different one is refused."""
        checked(name, "dataset")
        with writing(self.engine) as db:
            found = self._dataset(db, name, owner)
            if found is None:
                insert = self._insert(datasets).values(
                    owner=owner, name=name, created=self.clock(), seq=0,
                    embedder=embedder or "builtin")  # fmt: skip
                db.execute(insert.on_conflict_do_nothing())
                found = self._dataset(db, name, owner)
        assert found is not None
        if embedder is not None and found.embedder != embedder:
            raise UsageError(f"dataset {name} holds embeddings of {found.embedder!r}, not "
                             f"{embedder!r}; use another dataset for another embedder")
        return found

    def get(self, name: str, owner: str = "") -> Dataset:
        with self.engine.connect() as db:
            found = self._dataset(db, name, owner)
        if found is None:
            raise MissingError(f"no dataset {name!r}" + (f" of {owner}" if owner else "")
                               + " (pixelmill datasets list shows them)")
        return found

    def list(self, owner: str = "") -> list[tuple[Dataset, int]]:
        """Every dataset of ``owner`` with its number of current items, by name."""
        count = (sa.select(sa.func.count()).where(
            (items.c.dataset_id == datasets.c.id) & items.c.valid_to.is_(None))
            .scalar_subquery())  # fmt: skip
        query = (sa.select(datasets, count.label("count")).where(datasets.c.owner == owner)
                 .order_by(datasets.c.name))  # fmt: skip
        with self.engine.connect() as db:
            return [(_dataset(row), int(row.count)) for row in db.execute(query)]

    def view(self, ref: str, owner: str = "") -> View:
        """``NAME`` (the items now) or ``NAME@TAG`` (a snapshot)."""
        name, _, version = ref.partition("@")
        dataset = self.get(name, owner)
        if not version:
            return View(dataset)
        with self.engine.connect() as db:
            seq = db.execute(sa.select(snapshots.c.seq).where(
                (snapshots.c.dataset_id == dataset.id) & (snapshots.c.tag == version))
            ).scalar()  # fmt: skip
        if seq is None:
            raise MissingError(f"dataset {name} has no version {version!r}"
                               " (pixelmill datasets snapshots shows them)")  # fmt: skip
        return View(dataset, version, seq)

    def configure(self, dataset: Dataset, drift: dict[str, Any] | None) -> None:
        """Set (or clear) what the service checks for drift on a schedule."""
        with writing(self.engine) as db:
            db.execute(datasets.update().where(datasets.c.id == dataset.id)
                       .values(drift=drift, drift_state=None))  # fmt: skip

    def watched(self) -> list[Dataset]:
        """Datasets asking for drift checks."""
        with self.engine.connect() as db:
            rows = db.execute(sa.select(datasets).where(datasets.c.drift.is_not(None)))
            return [_dataset(row) for row in rows if row.drift]

    def remember(self, dataset: Dataset, state: dict[str, Any]) -> None:
        """Keep the last drift check's outcome."""
        with writing(self.engine) as db:
            db.execute(datasets.update().where(datasets.c.id == dataset.id)
                       .values(drift_state=state))  # fmt: skip

    # items

    def known(self, dataset: Dataset, uris: Sequence[str]) -> set[str]:
        """Which of ``uris`` the dataset has seen: added once (in any version) or failed."""
        if not uris:
            return set()
        with self.engine.connect() as db:
            seen = db.execute(sa.select(items.c.uri).where(
                (items.c.dataset_id == dataset.id) & items.c.uri.in_(uris))).scalars()
            failed = db.execute(sa.select(failures.c.uri).where(
                (failures.c.dataset_id == dataset.id) & failures.c.uri.in_(uris))).scalars()
            return set(seen) | set(failed)

    def add(self, dataset: Dataset, records: Sequence[Record]) -> int:
        """Add records whose content is not there yet; how many were added."""
        if not records:
            return 0
        labels: dict[str, set[str]] = {}
        for record in records:  # one content twice (an output equal to its source): all tags
            labels.setdefault(record.sha256, set()).update(record.tags)
        now = self.clock()
        with writing(self.engine) as db:
            seq = self._next(db, dataset)
            rows = [_row(dataset.id, seq, dataclasses.replace(r, tags=tuple(labels[r.sha256])),
                         now) for r in records]  # fmt: skip
            insert = self._insert(items).on_conflict_do_nothing(
                index_elements=["dataset_id", "sha256"], index_where=items.c.valid_to.is_(None))
            db.execute(insert, rows)  # no RETURNING: psycopg then sends one plain executemany
            added = db.execute(sa.select(items.c.id, items.c.sha256).where(
                (items.c.dataset_id == dataset.id) & items.c.valid_to.is_(None)
                & (items.c.valid_from == seq))).all()  # this change's rows alone took ``seq``
            pairs = [{"item_id": id_, "tag": tag} for id_, sha in added
                     for tag in sorted(labels[sha])]  # fmt: skip
            if pairs:
                db.execute(tags.insert(), pairs)
        return len(added)

    def fail(self, dataset: Dataset, uri: str, kind: str, message: str) -> None:
        """Record an item that could not be read."""
        with writing(self.engine) as db:
            db.execute(failures.insert().values(dataset_id=dataset.id, uri=uri, kind=kind,
                                                message=message[:2000], at=self.clock()))

    def failures(self, dataset: Dataset) -> list[dict[str, Any]]:
        query = (sa.select(failures.c.uri, failures.c.kind, failures.c.message, failures.c.at)
                 .where(failures.c.dataset_id == dataset.id).order_by(failures.c.at))
        with self.engine.connect() as db:
            return [dict(row._mapping) for row in db.execute(query)]

    def record(self, dataset: Dataset, event: Event) -> None:
        """Record what was done to an item, with its QC values."""
        with writing(self.engine) as db:
            row = {k: v for k, v in dataclasses.asdict(event).items() if k != "qc"}
            row["labels"] = None if event.labels is None else list(event.labels)
            row.update(dataset_id=dataset.id, at=self.clock())
            event_id = db.execute(events.insert().values(row).returning(events.c.id)).scalar()
            values = [{"event_id": event_id, "dataset_id": dataset.id, "sha256": event.sha256,
                       "metric": metric, "value": float(value),
                       "gate": _gate_of(metric, verdict.get("gates", ()))}
                      for verdict in event.qc
                      for metric, value in verdict.get("values", {}).items()]  # fmt: skip
            if values:
                db.execute(qc.insert(), values)

    def history(self, dataset: Dataset, sha256: str) -> list[dict[str, Any]]:
        """What was done to an item, oldest first, with QC values."""
        query = (sa.select(events).where((events.c.dataset_id == dataset.id)
                                         & (events.c.sha256 == sha256)).order_by(events.c.id))
        with self.engine.connect() as db:
            found = [dict(row._mapping) for row in db.execute(query)]
            values = db.execute(sa.select(qc).where(
                (qc.c.dataset_id == dataset.id) & (qc.c.sha256 == sha256))).all()
        for event in found:
            event["qc"] = {r.metric: r.value for r in values if r.event_id == event["id"]}
            del event["dataset_id"]
        return found

    def label(self, view: View, where: str, add: Iterable[str] = (),
              remove: Iterable[str] = (), **narrow: Any) -> int:  # fmt: skip
        """Add and remove tags on the current items matching the filter ``where`` (and
        ``narrow``, as :meth:`_filter` takes it); how many items changed (each change is a new
        version of the item's row)."""
        add, remove = set(add), set(remove)
        for tag in add | remove:
            checked(tag, "tag")
        if view.seq is not None:
            raise UsageError(f"{view} is a snapshot: snapshots never change")
        condition = self._filter(view, where, **narrow)
        changed = 0
        with writing(self.engine) as db:
            seq = self._next(db, view.dataset)  # first: the rows read next cannot change
            for row in db.execute(sa.select(items).where(condition)).all():
                labels = (set(row.tags) | add) - remove
                if labels != set(row.tags):
                    self._supersede(db, row, seq, tags=sorted(labels))
                    changed += 1
        return changed

    def remove(self, view: View, where: str) -> int:
        """Take the current items matching ``where`` out of the dataset (snapshots keep them)."""
        if view.seq is not None:
            raise UsageError(f"{view} is a snapshot: snapshots never change")
        condition = self._filter(view, where)
        with writing(self.engine) as db:
            seq = self._next(db, view.dataset)
            done = db.execute(items.update().where(condition).values(valid_to=seq))
        return done.rowcount

    # versions

    def snapshot(self, dataset: Dataset, tag: str | None = None) -> dict[str, Any]:
        """Freeze the current items as ``NAME@tag`` (``v1``, ``v2``… when not given)."""
        with writing(self.engine) as db:
            seq = db.execute(sa.select(datasets.c.seq).where(datasets.c.id == dataset.id)
                             ).scalar_one()  # fmt: skip
            count = db.execute(sa.select(sa.func.count()).where(
                View(dataset).alive())).scalar_one()  # fmt: skip
            taken = set(db.execute(sa.select(snapshots.c.tag).where(
                snapshots.c.dataset_id == dataset.id)).scalars())  # fmt: skip
            if tag is None:
                tag = next(f"v{n}" for n in range(1, len(taken) + 2) if f"v{n}" not in taken)
            checked(tag, "version tag")
            if tag in taken:
                raise UsageError(f"dataset {dataset.name} already has a version {tag!r}; "
                                 "versions never change: choose another tag")
            row = {"dataset_id": dataset.id, "tag": tag, "seq": seq, "created": self.clock(),
                   "item_count": count}  # fmt: skip
            db.execute(snapshots.insert().values(row))
        return {"version": f"{dataset.name}@{tag}", "items": count, "created": row["created"]}

    def snapshots(self, dataset: Dataset) -> list[dict[str, Any]]:
        query = (sa.select(snapshots.c.tag, snapshots.c.created, snapshots.c.item_count)
                 .where(snapshots.c.dataset_id == dataset.id).order_by(snapshots.c.id))
        with self.engine.connect() as db:
            return [{"version": f"{dataset.name}@{row.tag}", "tag": row.tag,
                     "created": row.created, "items": row.item_count} for row in db.execute(query)]

    def diff(self, old: View, new: View) -> Diff:
        """What was added, removed and relabelled from ``old`` to ``new`` (by content)."""
        before, after = items.alias("before"), items.alias("after")

        def only(left: Any, lview: View, right: Any, rview: View) -> list[str]:
            missing = ~sa.exists().where(rview.alive(right) & (right.c.sha256 == left.c.sha256))
            query = sa.select(left.c.uri).where(lview.alive(left) & missing).order_by(left.c.uri)
            return list(db.execute(query).scalars())

        with self.engine.connect() as db:
            added = only(after, new, before, old)
            removed = only(before, old, after, new)
            query = (sa.select(after.c.uri, before.c.tags.label("old"), after.c.tags.label("new"))
                     .join(before, before.c.sha256 == after.c.sha256)
                     .where(old.alive(before) & new.alive(after) & (before.c.id != after.c.id))
                     .order_by(after.c.uri))  # fmt: skip
            relabelled = [{"uri": row.uri, "added": sorted(set(row.new) - set(row.old)),
                           "removed": sorted(set(row.old) - set(row.new))}
                          for row in db.execute(query) if set(row.old) != set(row.new)]
        return Diff(added, removed, relabelled)

    # reading

    def query(self, view: View, where: str = "", *, sort: str | None = None, limit: int = 100,
              offset: int = 0, embedding: bool = False) -> list[dict[str, Any]]:  # fmt: skip
        """Items of a view matching the filter ``where``, as dicts of every field."""
        if not 0 < limit <= 100_000 or offset < 0:
            raise UsageError(f"limit must be within 1..100000 (not {limit}), offset ≥ 0")
        order = filters.order_by(sort, items) if sort else [items.c.id]
        query = (sa.select(items).where(self._filter(view, where)).order_by(*order)
                 .limit(limit).offset(offset))  # fmt: skip
        with self.engine.connect() as db:
            return [_item(row, embedding) for row in db.execute(query)]

    def rows(self, view: View, where: str = "", chunk: int = 5000,
             **narrow: Any) -> Iterator[dict[str, Any]]:  # fmt: skip
        """Every item of a view matching ``where``, embeddings included, in id order, read
        ``chunk`` rows at a time (for exports of any size)."""
        condition, last = self._filter(view, where, **narrow), 0
        while True:
            query = (sa.select(items).where(condition & (items.c.id > last))
                     .order_by(items.c.id).limit(chunk))  # fmt: skip
            with self.engine.connect() as db:
                found = db.execute(query).all()
            for row in found:
                yield _item(row, embedding=True)
            if len(found) < chunk:
                return
            last = found[-1].id

    def columns(self, view: View, where: str = "", **narrow: Any) -> Columns:
        """The items of a view matching ``where`` as arrays for the statistics."""
        chosen = [items.c.uri, items.c.sha256, items.c.created, items.c.embedding,
                  *(items.c[name] for name in FEATURES + CATEGORIES)]  # fmt: skip
        with self.engine.connect() as db:
            found = db.execute(sa.select(*chosen).where(self._filter(view, where, **narrow))
                               .order_by(items.c.id)).all()  # fmt: skip
        vectors = [np.frombuffer(r.embedding, np.float32) for r in found if r.embedding]
        width = max((v.size for v in vectors), default=0)
        embeddings = np.zeros((len(found), width), np.float32)
        for i, row in enumerate(found):
            if row.embedding:
                embeddings[i] = np.frombuffer(row.embedding, np.float32)
        return Columns(
            uris=[r.uri for r in found], sha256=[r.sha256 for r in found],
            features={name: np.array([np.nan if r._mapping[name] is None else r._mapping[name]
                                      for r in found], np.float64) for name in FEATURES},
            categories={name: [r._mapping[name] for r in found] for name in CATEGORIES},
            embeddings=embeddings, created=np.array([r.created for r in found], np.float64),
        )  # fmt: skip

    def margins(self, view: View, where: str = "") -> dict[str, list[tuple[float, str]]]:
        """Each item's QC values with the gate that judged them, by sha256."""
        alive = sa.select(items.c.sha256).where(self._filter(view, where))
        query = sa.select(qc.c.sha256, qc.c.value, qc.c.gate).where(
            (qc.c.dataset_id == view.dataset.id) & qc.c.gate.is_not(None)
            & qc.c.sha256.in_(alive))  # fmt: skip
        found: dict[str, list[tuple[float, str]]] = {}
        with self.engine.connect() as db:
            for row in db.execute(query):
                found.setdefault(row.sha256, []).append((row.value, row.gate))
        return found

    def count(self, view: View, where: str = "") -> int:
        with self.engine.connect() as db:
            return int(db.execute(sa.select(sa.func.count())
                                  .where(self._filter(view, where))).scalar_one())  # fmt: skip

    # internals

    def _filter(self, view: View, where: str, *, hashes: Collection[str] | None = None,
                since: float | None = None) -> sa.ColumnElement[bool]:  # fmt: skip
        """The rows of the view matching the filter text (empty: all of them), narrowed to
        some content hashes and to the items added since a time, when given."""
        alive = view.alive()
        if hashes is not None:
            alive &= items.c.sha256.in_(sorted(hashes))
        if since is not None:
            alive &= items.c.created >= since
        if not where.strip():
            return alive
        parsed = filters.parse(where)
        values = {}
        with self.engine.connect() as db:
            for field, share in parsed.percentiles():
                values[(field, share)] = filters.percentile_value(db, items, alive, field, share)
        return alive & filters.compile(parsed, items, percentile=values, now=self.clock(),
                                       dataset=view.dataset.id)  # fmt: skip

    def _dataset(self, db: Connection, name: str, owner: str) -> Dataset | None:
        row = db.execute(sa.select(datasets).where(
            (datasets.c.name == name) & (datasets.c.owner == owner))).first()
        return None if row is None else _dataset(row)

    def _next(self, db: Connection, dataset: Dataset) -> int:
        """The dataset's next change number (locking its row until the transaction ends)."""
        return db.execute(datasets.update().where(datasets.c.id == dataset.id)
                          .values(seq=datasets.c.seq + 1).returning(datasets.c.seq)
                          ).scalar_one()  # fmt: skip

    def _supersede(self, db: Connection, row: Any, seq: int, **changes: Any) -> None:
        """End a row at change ``seq`` and start its next version with ``changes``."""
        db.execute(items.update().where(items.c.id == row.id).values(valid_to=seq))
        values = {k: v for k, v in row._mapping.items() if k != "id"}
        values.update(changes, valid_from=seq, valid_to=None, updated=self.clock())
        new_id = db.execute(items.insert().values(values).returning(items.c.id)).scalar_one()
        if values["tags"]:
            db.execute(tags.insert(), [{"item_id": new_id, "tag": t} for t in values["tags"]])

    def _insert(self, table: sa.Table) -> Any:
        return (postgresql if self.postgres else sqlite).insert(table)


def checked(name: str, what: str) -> str:
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise UsageError(f"{what} {name!r}: a name of 1 to 100 letters, digits, '.', '_' or '-', "
                         "starting with a letter or digit")  # fmt: skip
    return name


def _row(dataset_id: int, seq: int, record: Record, now: float) -> dict[str, Any]:
    if len(record.tags) > MAX_TAGS:
        raise UsageError(f"an item may have at most {MAX_TAGS} tags")
    row: dict[str, Any] = {name: record.fields.get(name) for name in ROW_FIELDS}
    row.update(dataset_id=dataset_id, valid_from=seq, valid_to=None, uri=record.uri,
               sha256=record.sha256, role=record.role, parent=record.parent, created=now,
               updated=now, tags=sorted(set(record.tags)),
               embedding=None if record.embedding is None
               else np.asarray(record.embedding, np.float32).tobytes())  # fmt: skip
    return row


def _item(row: Any, embedding: bool) -> dict[str, Any]:
    found = {name: row._mapping[name] for name in ROW_FIELDS}
    found["tags"] = list(row.tags)
    if embedding:
        found["embedding"] = (np.frombuffer(row.embedding, np.float32).tolist()
                              if row.embedding else None)  # fmt: skip
    return found


def _dataset(row: Any) -> Dataset:
    return Dataset(**{f.name: row._mapping[f.name] for f in dataclasses.fields(Dataset)})


def _gate_of(metric: str, gates: Iterable[str]) -> str | None:
    """The gate among ``gates`` (e.g. ``ssim>=0.9``) that judged ``metric``."""
    for gate in gates:
        match = GATE.fullmatch(gate)
        if match is not None and match[1].lower() == metric:
            return gate
    return None
