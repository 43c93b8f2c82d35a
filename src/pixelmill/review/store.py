"""Review queues in the job database: queues configured, items pushed, claimed with a lease,
judged and undone, on SQLite and PostgreSQL alike (SQLAlchemy Core); see
:mod:`pixelmill.review.schema` for the tables.

Claims are serialised per queue: on PostgreSQL by locking the queue's row, on SQLite by the
write lock ``BEGIN IMMEDIATE`` takes, so two reviewers asking at once never get one item that
wants one verdict; verdicts on one item are serialised by locking its row, so two given at
once each count the other's. Verdicts are only ever inserted; an item's *standing* verdicts are
its approvals, rejections and skips that no ``undo`` row names. Each verdict, and each
decision, is also recorded as an event of the item in its dataset (after the verdict's own
transaction: a dataset that cannot be written never loses a verdict).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from pixelmill.config import Settings
from pixelmill.database import connect, make_tables, writing
from pixelmill.datasets.store import NAME, Event, Store
from pixelmill.errors import MissingError, PipelineError, UsageError
from pixelmill.pipeline import Pipeline
from pixelmill.review import agreement
from pixelmill.review.schema import claims, items, metadata, queues, verdicts

LOG = logging.getLogger("pixelmill.review")
LEASE = 600.0
"""Seconds a reviewer's claim lasts without renewal."""
ORIGINS = ("hold", "flag", "sample", "push")
VERDICTS = ("approved", "rejected", "skipped")
DECIDING = ("approved", "rejected")
MAX_LABELS = 9
"""Labels of a queue: one per number key."""
MAX_REVIEWERS = 10
MAX_INSTRUCTIONS = 20_000
MAX_NOTE = 5_000
EXPORT_COLUMNS = {
    "verdict_id": "int", "reviewer": "text", "verdict": "text", "labels": "texts",
    "note": "text", "seconds": "float", "undoes": "int", "at": "time", "item_id": "int",
    "key": "text", "origin": "text", "source_uri": "text", "output_uri": "text",
    "sha256": "text", "dataset": "text", "job_id": "text", "pipeline": "text", "qc": "text",
    "state": "text",
}  # fmt: skip
"""The columns of :meth:`Reviews.export` and their kinds (see :mod:`pixelmill.datasets.export`)."""


@dataclass(frozen=True)
class Queue:
    name: str
    instructions: str
    labels: tuple[str, ...]
    reviewers: int
    """Verdicts each item wants, each from a different reviewer."""
    on_reject: str
    """``nothing``, ``withhold`` or ``rerun:PIPELINE``."""
    sample: float
    """Share of finished jobs sent here as spot checks."""
    sample_pipeline: str | None
    created: float

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Counts:
    waiting: int
    """Open items that nobody holds a live claim on."""
    in_review: int
    done: int
    approved: int
    rejected: int
    held: int
    """Open items whose output is held back."""

    def to_json(self) -> dict[str, int]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Item:
    id: int
    queue: str
    key: str
    origin: str
    source_uri: str
    output_uri: str | None
    sha256: str | None
    output_sha256: str | None
    dataset: str | None
    dataset_owner: str
    job_id: str | None
    pipeline: str | None
    qc: list[dict[str, Any]]
    reason: str
    held: bool
    state: str
    """open, approved or rejected."""
    decided_at: float | None
    created: float

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Decision:
    """What a verdict did."""

    item: Item
    """The item as it stands after the verdict."""
    verdict_id: int
    decided: str | None
    """approved or rejected when this verdict decided the item."""
    action: str | None
    """On a rejection that decided: the queue's ``on_reject``; on an approval of a held
    output: ``release``."""


class Reviews:
    """The review queues of the database at ``url``; the tables are made when missing."""

    def __init__(self, url: str, clock: Callable[[], float] = time.time) -> None:
        self.url = url
        self.engine: Engine = connect(url, "job database")
        self.clock = clock
        self.postgres = self.engine.dialect.name == "postgresql"
        make_tables(self.engine, metadata.sorted_tables)

    @classmethod
    def of(cls, settings: Settings) -> Reviews:
        return cls(settings.job_database)

    def close(self) -> None:
        self.engine.dispose()

    # queues

    def configure(self, name: str, *, instructions: str | None = None,
                  labels: Sequence[str] | None = None, reviewers: int | None = None,
                  on_reject: str | None = None, sample: float | None = None,
                  sample_pipeline: str | None = None) -> Queue:  # fmt: skip
        """Make the queue ``name``, or change it; what is not given keeps its value (or the
        default)."""
        checked(name, "queue")
        changes: dict[str, Any] = {}
        if instructions is not None:
            if len(instructions) > MAX_INSTRUCTIONS:
                raise UsageError(f"queue {name}: instructions of {len(instructions):,} "
                                 f"characters; at most {MAX_INSTRUCTIONS:,}")  # fmt: skip
            changes["instructions"] = instructions
        if labels is not None:
            changes["labels"] = list(_labels(name, labels))
        if reviewers is not None:
            if not 1 <= reviewers <= MAX_REVIEWERS:
                raise UsageError(f"queue {name}: {reviewers} reviewers per item; give 1 to "
                                 f"{MAX_REVIEWERS}")  # fmt: skip
            changes["reviewers"] = reviewers
        if on_reject is not None:
            changes["on_reject"] = _action(on_reject)
        if sample is not None:
            if not 0 <= sample <= 1:
                raise UsageError(f"queue {name}: sample {sample}; give a share from 0 to 1")
            changes["sample"] = float(sample)
        if sample_pipeline is not None:
            changes["sample_pipeline"] = _pipeline(sample_pipeline, f"queue {name}: sample "
                                                   "pipeline") or None
        self.ensure(name)
        if changes:
            with writing(self.engine) as db:
                db.execute(queues.update().where(queues.c.name == name).values(changes))
        return self.queue(name)

    def queue(self, name: str) -> Queue:
        with self.engine.connect() as db:
            row = db.execute(sa.select(queues).where(queues.c.name == name)).first()
        if row is None:
            raise MissingError(f"no review queue {name!r} (pixelmill review list shows them)")
        return _queue(row)

    def ensure(self, name: str) -> Queue:
        """The queue ``name``, made with the defaults when missing (two processes may race)."""
        checked(name, "queue")
        with writing(self.engine) as db:
            db.execute(self._insert(queues).values(
                name=name, instructions="", labels=[], reviewers=1, on_reject="nothing",
                sample=0.0, created=self.clock()).on_conflict_do_nothing())  # fmt: skip
        return self.queue(name)

    def queues(self, names: Collection[str] | None = None) -> list[tuple[Queue, Counts]]:
        """Every queue (or those named), by name, with its counts."""
        query = sa.select(queues).order_by(queues.c.name)
        if names is not None:
            query = query.where(queues.c.name.in_(list(names)))
        now = self.clock()
        live = (sa.select(claims.c.item_id).where(claims.c.expires > now)).scalar_subquery()
        counted = (sa.select(
            items.c.queue,
            sa.func.count().filter(items.c.state == "open").label("open"),
            sa.func.count().filter((items.c.state == "open") & items.c.id.in_(live))
            .label("in_review"),
            sa.func.count().filter(items.c.state == "approved").label("approved"),
            sa.func.count().filter(items.c.state == "rejected").label("rejected"),
            sa.func.count().filter((items.c.state == "open") & items.c.held).label("held"),
        ).group_by(items.c.queue))  # fmt: skip
        with self.engine.connect() as db:
            found = [_queue(row) for row in db.execute(query)]
            figures = {row.queue: row for row in db.execute(counted)}
        listed = []
        for queue in found:
            row = figures.get(queue.name)
            if row is None:
                listed.append((queue, Counts(0, 0, 0, 0, 0, 0)))
                continue
            listed.append((queue, Counts(row.open - row.in_review, row.in_review,
                                         row.approved + row.rejected, row.approved,
                                         row.rejected, row.held)))  # fmt: skip
        return listed

    def sampling(self) -> list[Queue]:
        """The queues that spot-check finished jobs."""
        with self.engine.connect() as db:
            return [_queue(row) for row in db.execute(
                sa.select(queues).where(queues.c.sample > 0).order_by(queues.c.name))]

    def remove(self, name: str) -> None:
        """Remove a queue and its claims; its items and verdicts stay (the audit trail)."""
        self.queue(name)
        with writing(self.engine) as db:
            db.execute(claims.delete().where(claims.c.item_id.in_(
                sa.select(items.c.id).where(items.c.queue == name))))
            db.execute(queues.delete().where(queues.c.name == name))

    # items

    def push(self, queue: str, *, key: str, origin: str, source_uri: str,
             output_uri: str | None = None, sha256: str | None = None,
             output_sha256: str | None = None, dataset: str | None = None,
             dataset_owner: str = "", job_id: str | None = None, pipeline: str | None = None,
             qc: Iterable[dict[str, Any]] = (), reason: str = "",
             held: bool = False) -> tuple[Item, bool]:  # fmt: skip
        """Add an item to ``queue`` (made when missing); the item, and whether it is new: the
        same ``key`` twice in one queue adds it once."""
        if origin not in ORIGINS:
            raise UsageError(f"origin {origin!r} is not one of {', '.join(ORIGINS)}")
        self.ensure(queue)
        row = {"queue": queue, "key": key[:300], "origin": origin, "source_uri": source_uri,
               "output_uri": output_uri, "sha256": sha256, "output_sha256": output_sha256,
               "dataset": dataset, "dataset_owner": dataset_owner, "job_id": job_id,
               "pipeline": pipeline, "qc": list(qc), "reason": reason, "held": held,
               "state": "open", "created": self.clock()}  # fmt: skip
        with writing(self.engine) as db:
            made = db.execute(self._insert(items).values(row).on_conflict_do_nothing()
                              .returning(items.c.id)).scalar()  # fmt: skip
            found = db.execute(sa.select(items).where(
                (items.c.queue == queue) & (items.c.key == row["key"]))).first()
        return _item(found), made is not None

    def item(self, item_id: int) -> Item:
        with self.engine.connect() as db:
            row = db.execute(sa.select(items).where(items.c.id == item_id)).first()
        if row is None:
            raise MissingError(f"no review item {item_id}")
        return _item(row)

    def held(self, *, job_id: str | None = None, key: str | None = None) -> Item | None:
        """The item that holds back that job's output (or the output of ``key``): held and
        not approved; None when nothing holds it."""
        where = items.c.job_id == job_id if job_id is not None else items.c.key == key
        query = (sa.select(items).where(where & items.c.held & (items.c.state != "approved"))
                 .order_by(items.c.id).limit(1))  # fmt: skip
        with self.engine.connect() as db:
            row = db.execute(query).first()
        return None if row is None else _item(row)

    def upcoming(self, queue: str, n: int = 3) -> list[Item]:
        """The next open items in claim order (held first, then oldest), whoever gets them."""
        query = (sa.select(items).where((items.c.queue == queue) & (items.c.state == "open"))
                 .order_by(items.c.held.desc(), items.c.id).limit(n))  # fmt: skip
        with self.engine.connect() as db:
            return [_item(row) for row in db.execute(query)]

    # claims

    def next(self, queue: str, reviewer: str, lease: float = LEASE) -> Item | None:
        """The item ``reviewer`` judges next in ``queue``, claimed for ``lease`` seconds: the
        one she holds, else the first open item (held first, then oldest) that wants a verdict
        she has not given, and that others do not fill up; items she skipped come last. None
        when there is none."""
        with writing(self.engine) as db:
            wanted = self._lock(db, queue)
            now = self.clock()
            mine = db.execute(sa.select(items).join(claims, claims.c.item_id == items.c.id).where(
                (claims.c.reviewer == reviewer) & (claims.c.expires > now)
                & (items.c.queue == queue) & (items.c.state == "open"))
                .order_by(items.c.id).limit(1)).first()  # fmt: skip
            if mine is not None:
                self._claim(db, mine.id, reviewer, now + lease)
                return _item(mine)
            standing = _standing()
            given = (sa.select(standing.c.item_id).where(
                (standing.c.reviewer == reviewer) & standing.c.verdict.in_(DECIDING)))
            others = (sa.select(sa.func.count()).select_from(standing).where(
                (standing.c.item_id == items.c.id) & standing.c.verdict.in_(DECIDING))
                .scalar_subquery())  # fmt: skip
            claimed = (sa.select(sa.func.count()).select_from(claims).where(
                (claims.c.item_id == items.c.id) & (claims.c.reviewer != reviewer)
                & (claims.c.expires > now)).scalar_subquery())  # fmt: skip
            skipped = (sa.select(standing.c.item_id).where(
                (standing.c.reviewer == reviewer) & (standing.c.verdict == "skipped")))
            order = sa.case((items.c.id.in_(skipped), 1), else_=0)
            row = db.execute(sa.select(items).where(
                (items.c.queue == queue) & (items.c.state == "open") & items.c.id.not_in(given)
                & (others + claimed < wanted))
                .order_by(order, items.c.held.desc(), items.c.id).limit(1)).first()  # fmt: skip
            if row is None:
                return None
            self._claim(db, row.id, reviewer, now + lease)
            return _item(row)

    def renew(self, item_id: int, reviewer: str, lease: float = LEASE) -> bool:
        """Extend her claim on the item; whether she still held it."""
        with writing(self.engine) as db:
            done = db.execute(claims.update().where(
                (claims.c.item_id == item_id) & (claims.c.reviewer == reviewer)
                & (claims.c.expires > self.clock())).values(expires=self.clock() + lease))
        return done.rowcount > 0

    # verdicts

    def judge(self, item_id: int, reviewer: str, verdict: str, labels: Iterable[str] = (),
              note: str = "", seconds: float | None = None) -> Decision:  # fmt: skip
        """Record ``reviewer``'s verdict on an item (approved, rejected or skipped), and decide
        the item when it has the verdicts its queue wants: by majority, a tie counting as a
        rejection."""
        if verdict not in VERDICTS:
            raise UsageError(f"verdict {verdict!r} is not one of {', '.join(VERDICTS)}")
        if len(note) > MAX_NOTE:
            raise UsageError(f"a note of {len(note):,} characters; at most {MAX_NOTE:,}")
        labels = list(dict.fromkeys(labels))
        if seconds is not None and not 0 <= seconds < 1e7:
            seconds = None
        with writing(self.engine) as db:
            item = self._item(db, item_id, lock=True)
            queue = _queue(db.execute(sa.select(queues).where(queues.c.name == item.queue))
                           .first() or _missing(item.queue))  # fmt: skip
            if unknown := [label for label in labels if label not in queue.labels]:
                raise UsageError(f"labels {unknown} are not among queue {queue.name}'s: "
                                 f"{', '.join(queue.labels) or 'none'}")  # fmt: skip
            if item.state != "open":
                raise UsageError(f"item {item_id} is already {item.state}")
            standing = self._standing(db, item_id)
            if any(row.reviewer == reviewer and row.verdict in DECIDING for row in standing):
                raise UsageError(f"{reviewer} has judged item {item_id} already")
            now = self.clock()
            verdict_id = db.execute(verdicts.insert().values(
                item_id=item_id, queue=item.queue, reviewer=reviewer, verdict=verdict,
                labels=labels, note=note, seconds=seconds, at=now).returning(verdicts.c.id)
            ).scalar()  # fmt: skip
            db.execute(claims.delete().where((claims.c.item_id == item_id)
                                             & (claims.c.reviewer == reviewer)))
            decided = action = None
            counted = [row.verdict for row in standing if row.verdict in DECIDING]
            if verdict in DECIDING:
                counted.append(verdict)
            if verdict in DECIDING and len(counted) >= queue.reviewers:
                approvals = counted.count("approved")
                decided = "approved" if approvals > len(counted) - approvals else "rejected"
                if decided == "approved":
                    action = "release" if item.held else None
                else:
                    action = queue.on_reject
                held = item.held or (decided == "rejected" and queue.on_reject == "withhold")
                db.execute(items.update().where(items.c.id == item_id)
                           .values(state=decided, decided_at=now, held=held))  # fmt: skip
            after = self._item(db, item_id)
        self._record(after, [Event("review", after.sha256 or "", _ref(after), after.pipeline,
                                   seconds=seconds, verdict=verdict, by=reviewer,
                                   labels=tuple(labels), note=note or None)]
                     + ([Event("decision", after.sha256 or "", _ref(after), after.pipeline,
                               verdict=decided)] if decided else []))  # fmt: skip
        return Decision(after, int(verdict_id), decided, action)

    def undo(self, queue: str, reviewer: str) -> Item | None:
        """Take back ``reviewer``'s latest standing verdict in ``queue``: the item is open
        again if it had been decided, and hers again (claimed); None when she has nothing to
        undo."""
        with writing(self.engine) as db:
            self._lock(db, queue)
            standing = _standing()
            last = db.execute(sa.select(standing).where(
                (standing.c.queue == queue) & (standing.c.reviewer == reviewer))
                .order_by(standing.c.id.desc()).limit(1)).first()  # fmt: skip
            if last is None:
                return None
            item = self._item(db, last.item_id, lock=True)
            now = self.clock()
            db.execute(verdicts.insert().values(
                item_id=last.item_id, queue=queue, reviewer=reviewer, verdict="undo",
                labels=[], note="", undoes=last.id, at=now))  # fmt: skip
            reopened = item.state != "open"
            if reopened:
                db.execute(items.update().where(items.c.id == item.id).values(
                    state="open", decided_at=None, held=item.origin == "hold"))
            self._claim(db, item.id, reviewer, now + LEASE)
            after = self._item(db, item.id)
        self._record(after, [Event("review", after.sha256 or "", _ref(after), after.pipeline,
                                   verdict="undo", by=reviewer)]
                     + ([Event("decision", after.sha256 or "", _ref(after), after.pipeline,
                               verdict="reopened")] if reopened else []))  # fmt: skip
        return after

    def verdicts(self, item_id: int) -> list[dict[str, Any]]:
        """The item's audit trail, oldest first."""
        query = (sa.select(verdicts).where(verdicts.c.item_id == item_id)
                 .order_by(verdicts.c.id))  # fmt: skip
        with self.engine.connect() as db:
            return [_verdict(row) for row in db.execute(query)]

    def history(self, item: Item) -> list[dict[str, Any]]:
        """What the item's dataset remembers of its source (none without a dataset)."""
        if not (item.dataset and item.sha256):
            return []
        store = self._store()
        try:
            return store.history(store.get(item.dataset, item.dataset_owner), item.sha256)
        except MissingError:
            return []
        finally:
            store.close()

    def export(self, queue: str) -> Iterator[dict[str, Any]]:
        """One flat row per verdict of the queue, with its item, oldest first."""
        self.queue(queue)
        query = (sa.select(verdicts.c.id.label("verdict_id"), verdicts.c.reviewer,
                           verdicts.c.verdict, verdicts.c.labels, verdicts.c.note,
                           verdicts.c.seconds, verdicts.c.undoes, verdicts.c.at,
                           items.c.id.label("item_id"), items.c.key, items.c.origin,
                           items.c.source_uri, items.c.output_uri, items.c.sha256,
                           items.c.dataset, items.c.job_id, items.c.pipeline, items.c.qc,
                           items.c.state)
                 .join(items, items.c.id == verdicts.c.item_id)
                 .where(verdicts.c.queue == queue).order_by(verdicts.c.id))  # fmt: skip
        with self.engine.connect() as db:
            for row in db.execute(query):
                found = dict(row._mapping)
                found["labels"] = list(found["labels"] or [])
                found["qc"] = json.dumps(found["qc"])
                yield found

    def decided(self, queue: str) -> list[tuple[Item, str]]:
        """The queue's decided items with their outcome."""
        query = (sa.select(items).where((items.c.queue == queue)
                                        & items.c.state.in_(DECIDING)).order_by(items.c.id))
        with self.engine.connect() as db:
            return [(_item(row), row.state) for row in db.execute(query)]

    def agreement(self, queue: str) -> dict[str, Any]:
        """The agreement of the queue's reviewers (see :mod:`pixelmill.review.agreement`)."""
        standing = _standing()
        query = (sa.select(standing).where((standing.c.queue == queue)
                                           & standing.c.verdict.in_(DECIDING))
                 .order_by(standing.c.item_id, standing.c.id))  # fmt: skip
        with self.engine.connect() as db:
            rows = db.execute(query).all()
            labels = db.execute(sa.select(queues.c.labels).where(queues.c.name == queue)).scalar()
        ratings: dict[int, list[tuple[str, frozenset[str]]]] = {}
        for row in rows:
            ratings.setdefault(row.item_id, []).append((row.verdict, frozenset(row.labels or ())))
        return agreement.summarise(list(ratings.values()), labels or [])

    # internals

    def _lock(self, db: Connection, queue: str) -> int:
        """Serialise claims on ``queue`` (PostgreSQL: its row locked; SQLAlchemy leaves FOR
        UPDATE out on SQLite, whose write lock serialises already); its reviewers per item."""
        query = sa.select(queues.c.reviewers).where(queues.c.name == queue)
        wanted = db.execute(query.with_for_update()).scalar()
        if wanted is None:
            _missing(queue)
        return int(wanted)

    def _claim(self, db: Connection, item_id: int, reviewer: str, expires: float) -> None:
        db.execute(claims.delete().where((claims.c.item_id == item_id)
                                         & (claims.c.reviewer == reviewer)))
        db.execute(claims.insert().values(item_id=item_id, reviewer=reviewer, at=self.clock(),
                                          expires=expires))  # fmt: skip

    def _item(self, db: Connection, item_id: int, *, lock: bool = False) -> Item:
        """The item; with ``lock``, its row locked until the transaction ends (as
        :meth:`_lock`), so that two verdicts given at once each count the other's."""
        query = sa.select(items).where(items.c.id == item_id)
        row = db.execute(query.with_for_update() if lock else query).first()
        if row is None:
            raise MissingError(f"no review item {item_id}")
        return _item(row)

    def _standing(self, db: Connection, item_id: int) -> list[Any]:
        standing = _standing()
        return db.execute(sa.select(standing).where(standing.c.item_id == item_id)).all()

    def _record(self, item: Item, events: list[Event]) -> None:
        """Record verdicts and decisions as events of the item's dataset, if it has one."""
        if not (item.dataset and item.sha256):
            return
        store = self._store()
        try:
            dataset = store.create(item.dataset, item.dataset_owner)
            for event in events:
                store.record(dataset, event)
        except (UsageError, sa.exc.SQLAlchemyError) as exc:
            LOG.warning("verdict not recorded in dataset %s: %s", item.dataset, exc)
        finally:
            store.close()

    def _store(self) -> Store:
        return Store(self.url, self.clock)

    def _insert(self, table: sa.Table) -> Any:
        return (postgresql if self.postgres else sqlite).insert(table)


def checked(name: str, what: str) -> str:
    if not NAME.fullmatch(name):
        raise UsageError(f"{what} name {name[:100]!r}: use letters, digits, '.', '_' and '-' "
                         "(at most 100, starting with a letter or digit)")  # fmt: skip
    return name


def _standing() -> Any:
    """The verdicts no undo takes back (approved, rejected and skipped)."""
    undone = sa.select(verdicts.c.undoes).where(verdicts.c.undoes.is_not(None))
    return (sa.select(verdicts).where(verdicts.c.verdict.in_(VERDICTS)
                                      & verdicts.c.id.not_in(undone))
            .subquery("standing"))  # fmt: skip


def _labels(queue: str, labels: Sequence[str]) -> tuple[str, ...]:
    found = tuple(dict.fromkeys(label.strip() for label in labels if label.strip()))
    if len(found) > MAX_LABELS:
        raise UsageError(f"queue {queue}: {len(found)} labels; at most {MAX_LABELS} (keys 1-9)")
    for label in found:
        checked(label, "label")
    return found


def _action(text: str) -> str:
    if text in ("nothing", "withhold"):
        return text
    kind, _, pipeline = text.partition(":")
    if kind != "rerun" or not pipeline:
        raise UsageError(f"on_reject {text!r}: give nothing, withhold or rerun:PIPELINE")
    return f"rerun:{_pipeline(pipeline, f'on_reject {text!r}')}"


def _pipeline(text: str, what: str) -> str:
    """``text`` parsed and written back the pipeline grammar's way; a usage error naming
    ``what`` when it does not parse."""
    try:
        return str(Pipeline.parse(text))
    except PipelineError as exc:
        raise UsageError(f"{what} {text!r}: {exc}") from None


def _missing(queue: str) -> Any:
    raise MissingError(f"no review queue {queue!r} (pixelmill review list shows them)")


def _ref(item: Item) -> str:
    return f"review:{item.queue}:{item.id}"


def _queue(row: Any) -> Queue:
    return Queue(row.name, row.instructions or "", tuple(row.labels or ()), int(row.reviewers),
                 row.on_reject, float(row.sample), row.sample_pipeline, row.created)


def _item(row: Any) -> Item:
    values = dict(row._mapping)
    values["qc"] = list(values["qc"] or [])
    values["held"] = bool(values["held"])
    return Item(**values)


def _verdict(row: Any) -> dict[str, Any]:
    found = dict(row._mapping)
    found["labels"] = list(found["labels"] or [])
    return found
