"""Datasets at scale: a million synthetic items in SQLite and in PostgreSQL, against DuckDB and
pandas scanning the exported Parquet in memory.

Each engine gets a fresh database (a SQLite file in the work folder; a PostgreSQL schema of its
own, dropped at the end) and goes through what a user does with a big dataset:

- **ingest**: ``--items`` synthetic items through ``Store.add``, ``--batch`` records a call
  (items/s counts the time inside ``Store.add`` only, not the making of the records);
- **QC events**: one ``Store.record`` per event (a job with SSIM and PSNR values) for a few
  thousand items, so ``qc.*`` filters have data;
- **ANALYZE** (both engines; ``VACUUM (ANALYZE)`` of the dataset tables on PostgreSQL, what
  autovacuum does soon after a bulk insert);
- **size**: the SQLite file with its WAL after a checkpoint; ``pg_total_relation_size`` of the
  dataset tables (heap, TOAST and indexes), per item;
- **snapshot**: ``Store.snapshot`` (three in a row);
- **queries**: five typical filters, each four ways: ``store.query(view, f)`` (the default
  ``limit=100``, id order), the same with ``sort="-created"``, ``store.count(view, f)``, and
  the first way on the snapshot ``big@v1``; one warm-up, then ``--repeat`` runs, interleaved;
  p50 and p95. The JSON keeps every statement's plan (EXPLAIN QUERY PLAN on SQLite, EXPLAIN
  ANALYZE on PostgreSQL);
- **export**: ``export(store.rows(view), "….parquet")``, rows/s.

The items are made up but shaped like a real photo library (no pixels: metadata, features, tags
and an embedding): 40 % phone photos (JPEG or HEIC, 12 MP, some portrait), 12 % camera photos
(JPEG, 24 MP), 18 % screenshots (PNG) and 30 % web images (JPEG or WebP), so the formats are
62 % JPEG, 18 % PNG, 12 % WebP and 8 % HEIC; features drawn per kind (log-normal sharpness,
gamma noise, JPEG qualities around the usual encoder settings…); 0 to 3 tags from ten; a
``--dim``-wide float32 embedding (64, the built-in embedder's width; 0 for none); added over 90
days (the store's clock advanced batch by batch, 2026-09-01 to 2026-11-30 UTC).

The comparison loads the Parquet export (and the QC values, which an export does not hold, as
a second Parquet file read from the database) into DuckDB tables and into pandas frames (the
load timed apart), then runs the same filters the first three ways. Their counts must equal the
store's: the program stops when they do not.

    python benchmarks/bench_datasets.py                      # 1,000,000 items, both engines
    python benchmarks/bench_datasets.py --items 20000        # a quick check of the program
    python benchmarks/bench_datasets.py --dim 0              # items without embeddings
"""

from __future__ import annotations

import argparse
import calendar
import contextlib
import gc
import hashlib
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import recording
import sqlalchemy as sa

from pixelmill.datasets import Event, Record, Store
from pixelmill.datasets.export import export
from pixelmill.datasets.schema import datasets, events, items, qc, snapshots, tags

HERE = Path(__file__).resolve().parent
ENGINES = ("sqlite", "postgresql")
TABLES = (items, tags, events, qc, snapshots, datasets)
START = float(calendar.timegm((2026, 9, 1, 0, 0, 0)))
DAYS = 90
FILTERS = (
    ("wide-jpeg", 'width >= 4000 and format = "jpeg"'),
    ("blurry-p10", "sharpness < p10"),
    ("recent-outdoor", 'tag = "outdoor" and created > "2026-11-01"'),
    ("qc-ssim", "qc.ssim < 0.9"),
    ("noisy-a7iii", 'camera_model = "ILCE-7M3" and noise > 5'),
)
MODES = ("limit 100", "sort -created", "count")
TARGET_MS = {"sqlite": 300.0, "postgresql": 150.0}

# kinds of image: share, formats with their shares, sizes (width, height) with their shares
KINDS = {
    "phone": (0.40, {"jpeg": 0.8, "heic": 0.2},
              {(4032, 3024): 0.55, (4000, 3000): 0.2, (4080, 3072): 0.15, (3264, 2448): 0.1}),
    "camera": (0.12, {"jpeg": 1.0}, {}),  # the size is the camera model's
    "screen": (0.18, {"png": 1.0}, {(1920, 1080): 0.35, (2560, 1440): 0.2, (1170, 2532): 0.25,
                                    (1440, 900): 0.2}),
    "web": (0.30, {"jpeg": 0.6, "webp": 0.4},
            {(1280, 720): 0.25, (1080, 1080): 0.2, (1080, 1350): 0.15, (800, 600): 0.15,
             (1600, 900): 0.15, (3840, 2160): 0.1}),
}  # fmt: skip
PHONES = {("Apple", "iPhone 14 Pro"): 0.3, ("Apple", "iPhone 13"): 0.2,
          ("Apple", "iPhone 15 Pro"): 0.15, ("Google", "Pixel 7"): 0.15,
          ("samsung", "SM-S911B"): 0.2}  # fmt: skip
CAMERAS = {("SONY", "ILCE-7M3", 6000, 4000): 0.35,
           ("NIKON CORPORATION", "NIKON D750", 6016, 4016): 0.25,
           ("Canon", "Canon EOS R6", 5472, 3648): 0.25, ("FUJIFILM", "X-T4", 6240, 4160): 0.15}
"""Camera make, model and picture size, with their shares among camera photos."""
TAGS = {"outdoor": 0.25, "people": 0.15, "indoor": 0.12, "portrait": 0.1, "landscape": 0.1,
        "night": 0.07, "food": 0.06, "document": 0.05, "animal": 0.05, "product": 0.05}  # fmt: skip
BYTES_PER_PIXEL = {"jpeg": 0.35, "heic": 0.17, "webp": 0.12, "png": 0.9}


class Clock:
    """The store's clock, set by the program (the items' ``created``)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _pick(rng: np.random.Generator, shares: dict[Any, float], n: int) -> list[Any]:
    keys = list(shares)
    p = np.array([shares[k] for k in keys])
    return [keys[i] for i in rng.choice(len(keys), n, p=p / p.sum())]


def synthetic(first: int, n: int, total: int, dim: int, seed: int = 7) -> list[Record]:
    """Items ``first`` to ``first + n - 1`` of ``total``, the same for the same numbers (see
    the docstring)."""
    rng = np.random.default_rng([seed, first])
    kind = _pick(rng, {k: v[0] for k, v in KINDS.items()}, n)
    formats = {k: _pick(rng, v[1], n) for k, v in KINDS.items()}
    fmt = [formats[k][i] for i, k in enumerate(kind)]
    cams = _pick(rng, CAMERAS, n)
    phones = _pick(rng, PHONES, n)
    sizes = {k: _pick(rng, v[2], n) if v[2] else [] for k, v in KINDS.items()}
    width, height, make, model = [], [], [], []
    for i, k in enumerate(kind):
        if k == "camera":
            w, h = cams[i][2:]
            make.append(cams[i][0]), model.append(cams[i][1])
        else:
            w, h = sizes[k][i]
            camera = phones[i] if k == "phone" else (None, None)
            if fmt[i] == "heic":
                camera = ("Apple", phones[i][1] if phones[i][0] == "Apple" else "iPhone 13")
            make.append(camera[0]), model.append(camera[1])
        width.append(w), height.append(h)
    w, h = np.array(width), np.array(height)
    photo = np.isin(kind, ["phone", "camera"])
    upright = photo & (rng.random(n) < np.where(np.array(kind) == "phone", 0.35, 0.15))
    w, h = np.where(upright, h, w), np.where(upright, w, h)
    is_ = {f: np.array([x == f for x in fmt]) for f in BYTES_PER_PIXEL}
    screen, camera = np.array(kind) == "screen", np.array(kind) == "camera"

    noise = np.where(camera, np.where(rng.random(n) < 0.15, rng.gamma(6, 1.5, n),
                                      rng.gamma(1.5, 1.5, n)),
                     np.where(screen, rng.gamma(1, 0.3, n), rng.gamma(2.5, 1.2, n)))  # fmt: skip
    sharpness = np.where(screen, rng.lognormal(np.log(2500), 0.8, n),
                         rng.lognormal(np.log(400), 1.0, n))  # fmt: skip
    blockiness = 1 + np.where(is_["jpeg"], rng.gamma(2, 0.08, n),
                              np.where(is_["png"], np.abs(rng.normal(0, 0.01, n)),
                                       rng.gamma(1.5, 0.04, n)))  # fmt: skip
    quality = np.where(camera, rng.normal(96, 1.5, n),
                       np.where(np.array(kind) == "phone", rng.normal(92, 2, n),
                                rng.choice([75, 80, 85, 90], n) + rng.normal(0, 1.5, n)))
    quality = np.clip(np.round(quality), 1, 100)
    white = np.where(screen, rng.beta(2, 5, n), rng.beta(0.5, 50, n) * (rng.random(n) < 0.4))
    columns: dict[str, Any] = {
        "format": fmt, "width": w, "height": h, "camera_make": make, "camera_model": model,
        "bands": np.where(is_["png"] & (rng.random(n) < 0.4), 4, 3),
        "bit_depth": np.where(is_["png"] & (rng.random(n) < 0.03), 16, 8),
        "colour_space": np.where(rng.random(n) < 0.02, "b-w", "srgb").tolist(),
        "icc": [("Display P3" if m and m.startswith("Apple") else "sRGB IEC61966-2.1")
                if r < 0.6 else None for m, r in zip(make, rng.random(n), strict=True)],
        "pages": np.ones(n, int),
        "orientation": np.where(upright & is_["jpeg"] & (rng.random(n) < 0.5), 6, 1),
        "file_size": np.round(w * h * np.array([BYTES_PER_PIXEL[f] for f in fmt])
                              * rng.lognormal(0, 0.3, n)).astype(int),
        "mean_luma": rng.beta(4.5, 5, n), "contrast": rng.beta(5, 18, n),
        "colourfulness": np.where(screen, rng.gamma(2, 8, n), rng.gamma(3, 12, n)),
        "sharpness": sharpness, "noise": noise, "blockiness": blockiness,
        "clipped_black": rng.beta(0.5, 60, n) * (rng.random(n) < 0.4), "clipped_white": white,
        "entropy": np.where(screen, np.clip(4 + rng.normal(0, 1, n), 0, 8),
                            np.clip(7.8 - rng.gamma(1.5, 0.4, n), 0, 8)),
        "aspect": w / h,
    }  # fmt: skip
    values = {name: col.tolist() if isinstance(col, np.ndarray) else col
              for name, col in columns.items()}  # fmt: skip
    values["jpeg_quality"] = [q if f == "jpeg" else None
                              for q, f in zip(quality.tolist(), fmt, strict=True)]  # fmt: skip
    captured = (START + (first + np.arange(n)) / total * DAYS * 86400
                - rng.gamma(1.2, 40, n) * 86400).tolist()
    values["captured"] = [c if m else None for c, m in zip(captured, make, strict=True)]
    count = rng.choice(4, n, p=[0.3, 0.35, 0.25, 0.1]).tolist()
    vocabulary = list(TAGS)
    # weighted draws without replacement: the largest log-weights plus Gumbel noise
    keys = np.log(np.array(list(TAGS.values()))) + rng.gumbel(size=(n, len(TAGS)))
    order = np.argsort(-keys, axis=1)[:, :3].tolist()
    labels = [tuple(vocabulary[j] for j in order[i][:c]) for i, c in enumerate(count)]
    vectors = rng.standard_normal((n, dim), dtype=np.float32) if dim else None
    if vectors is not None:
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    names = list(values)
    records = []
    for i, row in enumerate(zip(*values.values(), strict=True)):
        number = first + i
        sha = hashlib.sha256(f"bench item {seed} {number}".encode()).hexdigest()
        suffix = {"jpeg": "jpg"}.get(fmt[i], fmt[i])
        uri = f"s3://photos/{kind[i]}/{number // 1000:04d}/{number:07d}.{suffix}"
        records.append(Record(uri, sha, dict(zip(names, row, strict=True)),
                              None if vectors is None else vectors[i], tags=labels[i]))
    return records


def quantiles(samples: list[float]) -> dict[str, float]:
    """p50 and p95 in milliseconds."""
    ms = np.array(samples) * 1000
    return {"p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)),
            "min_ms": float(ms.min()), "max_ms": float(ms.max())}  # fmt: skip


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def database(engine: str, work: Path) -> Iterator[str]:
    """A fresh database URL: a SQLite file in ``work``, or a schema of its own in PostgreSQL
    (dropped afterwards)."""
    if engine == "sqlite":
        path = work / "datasets-bench.db"
        for leftover in work.glob("datasets-bench.db*"):
            leftover.unlink()
        yield f"sqlite:///{path}"
        for leftover in work.glob("datasets-bench.db*"):
            leftover.unlink()
        return
    with recording.postgres_schema() as url:
        yield url


def ingest(store: Store, clock: Clock, n: int, batch: int, dim: int) -> dict[str, Any]:
    """Add ``n`` items in batches; the time inside ``Store.add`` and the rate over the run."""
    dataset = store.create("big")
    spent: list[float] = []
    made = 0.0
    wall = time.perf_counter()
    for first in range(0, n, batch):
        start = time.perf_counter()
        records = synthetic(first, min(batch, n - first), n, dim)
        made += time.perf_counter() - start
        clock.now = START + first / n * DAYS * 86400
        start = time.perf_counter()
        added = store.add(dataset, records)
        spent.append(time.perf_counter() - start)
        assert added == len(records), (added, len(records))
        if len(spent) % 20 == 0:
            say(f"  {first + len(records):,} items, {len(records) / spent[-1]:,.0f} items/s")
    tenth = max(1, len(spent) // 10)
    return {"items": n, "batch": batch, "add_s": sum(spent), "items_per_s": n / sum(spent),
            "wall_s": time.perf_counter() - wall, "making_records_s": made,
            "first_tenth_items_per_s": tenth * batch / sum(spent[:tenth]),
            "last_tenth_items_per_s": tenth * batch / sum(spent[-tenth:]),
            "batch_s": spent}  # fmt: skip


def qc_events(store: Store, clock: Clock, n: int, count: int) -> dict[str, Any]:
    """One job event with SSIM and PSNR for ``count`` items spread over the dataset."""
    dataset = store.get("big")
    rng = np.random.default_rng(11)
    chosen = np.sort(rng.choice(n, count, replace=False))
    ssim = 1 - rng.gamma(2, 0.03, count)
    spent = 0.0
    for i, number in enumerate(chosen.tolist()):
        sha = hashlib.sha256(f"bench item 7 {number}".encode()).hexdigest()
        passed = bool(ssim[i] >= 0.9)
        verdict = {"outcome": "pass" if passed else "flag",
                   "values": {"ssim": float(ssim[i]), "psnr": float(30 + 40 * (ssim[i] - 0.8))},
                   "gates": ["ssim>=0.9"], "failed": [] if passed else ["ssim>=0.9"]}  # fmt: skip
        clock.now = START + DAYS * 86400 + i
        start = time.perf_counter()
        store.record(dataset, Event("job", sha, f"job-{i}", "model:sr-x2", f"s3://out/{i}.webp",
                                    None, 1.2, {"render": 1.0}, verdict["outcome"], (verdict,)))
        spent += time.perf_counter() - start
    return {"events": count, "seconds": spent, "events_per_s": count / spent,
            "failing_ssim": int((ssim < 0.9).sum())}  # fmt: skip


def analyze(store: Store) -> float:
    """ANALYZE the dataset tables (VACUUM (ANALYZE) on PostgreSQL); seconds."""
    start = time.perf_counter()
    if store.postgres:
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as db:
            db.exec_driver_sql("VACUUM (ANALYZE) " + ", ".join(t.name for t in TABLES))
    else:
        with store.engine.begin() as db:
            db.exec_driver_sql("ANALYZE")
    return time.perf_counter() - start


def sizes(store: Store, url: str) -> dict[str, Any]:
    """Bytes of the database (SQLite: file and WAL after a checkpoint) and of each table."""
    found: dict[str, Any] = {}
    with store.engine.begin() as db:
        if store.postgres:
            for table in TABLES:
                row = db.execute(sa.text(
                    "SELECT pg_total_relation_size(:t), pg_relation_size(:t),"
                    " pg_indexes_size(:t)"), {"t": table.name}).one()  # fmt: skip
                found[table.name] = {"total": row[0], "heap": row[1], "indexes": row[2],
                                     "toast": row[0] - row[1] - row[2]}  # fmt: skip
            found["total"] = sum(v["total"] for v in found.values())
            return found
        db.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        with contextlib.suppress(sa.exc.OperationalError):  # dbstat is an optional module
            rows = db.exec_driver_sql("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name")
            found["objects"] = {name: size for name, size in rows}
    path = Path(url.removeprefix("sqlite:///"))
    files = [p for p in path.parent.glob(path.name + "*") if p.is_file()]
    found["files"] = {p.name: p.stat().st_size for p in files}
    found["total"] = sum(found["files"].values())
    return found


def plans(store: Store, call: Callable[[], Any]) -> list[dict[str, Any]]:
    """The plan of every SELECT on the items that ``call`` runs (the statements captured as
    executed, then explained with their parameters: EXPLAIN QUERY PLAN on SQLite, EXPLAIN
    (ANALYZE) on PostgreSQL)."""
    seen: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "pixelmill_items" in statement:
            seen.append((statement, parameters))

    sa.event.listen(store.engine, "before_cursor_execute", capture)
    try:
        call()
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", capture)
    found = []
    raw = store.engine.raw_connection()
    try:
        cursor = raw.cursor()
        for statement, parameters in seen:
            prefix = "EXPLAIN (ANALYZE) " if store.postgres else "EXPLAIN QUERY PLAN "
            try:
                cursor.execute(prefix + statement, parameters)
                rows = cursor.fetchall()
            except Exception as exc:  # noqa: BLE001 - a plan is a diagnostic, never fatal
                rows = [(f"no plan: {exc}",)]
            plan = [str(row[0]) if store.postgres else str(row[-1]) for row in rows]
            found.append({"sql": " ".join(statement.split()), "plan": plan})
        raw.rollback()
    finally:
        raw.close()
    return found


def run_queries(store: Store, repeat: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Every filter in every mode: one warm-up, then ``repeat`` interleaved runs."""
    calls: dict[tuple[str, str], Callable[[], Any]] = {}
    for name, text in FILTERS:
        calls[(name, "limit 100")] = lambda t=text: store.query(store.view("big"), t, limit=100)
        calls[(name, "sort -created")] = lambda t=text: store.query(
            store.view("big"), t, sort="-created", limit=100)
        calls[(name, "count")] = lambda t=text: store.count(store.view("big"), t)
        calls[(name, "limit 100 @v1")] = lambda t=text: store.query(store.view("big@v1"), t)
    samples: dict[tuple[str, str], list[float]] = {key: [] for key in calls}
    results: dict[tuple[str, str], int] = {}
    for key, call in calls.items():
        found = call()
        results[key] = found if isinstance(found, int) else len(found)
    for rep in range(repeat):
        order = list(calls.items())
        for key, call in order[rep % len(order):] + order[:rep % len(order)]:
            start = time.perf_counter()
            call()
            samples[key].append(time.perf_counter() - start)
        if rep % 5 == 4:
            say(f"  {rep + 1} of {repeat} rounds of queries")
    rows = [{"filter": name, "query": dict(FILTERS)[name], "mode": mode,
             "result": results[(name, mode)], "runs": len(samples[(name, mode)]),
             **quantiles(samples[(name, mode)]), "samples_s": samples[(name, mode)]}
            for name, mode in calls]  # fmt: skip
    explained = {f"{name} | {mode}": plans(store, call) for (name, mode), call in calls.items()
                 if mode != "limit 100 @v1"}  # fmt: skip
    return rows, explained


def export_qc(store: Store, path: Path) -> int:
    """The QC values of the dataset as Parquet (sha256, metric, value): what the in-memory
    contestants join, since an export of items does not hold them."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    dataset = store.get("big")
    with store.engine.connect() as db:
        rows = db.execute(sa.select(qc.c.sha256, qc.c.metric, qc.c.value)
                          .where(qc.c.dataset_id == dataset.id)).all()  # fmt: skip
    table = pa.table({"sha256": [r.sha256 for r in rows], "metric": [r.metric for r in rows],
                      "value": [r.value for r in rows]})  # fmt: skip
    pq.write_table(table, path, compression="zstd")
    return len(rows)


def engine_run(engine: str, args: argparse.Namespace) -> dict[str, Any]:
    """Everything measured on one database engine."""
    figures: dict[str, Any] = {"engine": engine}
    with database(engine, args.work) as url:
        clock = Clock(START)
        store = Store(url, clock=clock)
        try:
            say(f"{engine}: ingesting {args.items:,} items")
            figures["ingest"] = ingest(store, clock, args.items, args.batch, args.dim)
            say(f"{engine}: {figures['ingest']['items_per_s']:,.0f} items/s; QC events")
            figures["events"] = qc_events(store, clock, args.items, args.events)
            figures["analyze_s"] = analyze(store)
            figures["size"] = sizes(store, url)
            figures["indexes"] = {t.name: [ix["name"] for ix in sa.inspect(store.engine)
                                           .get_indexes(t.name)] for t in (items, tags, qc)}
            figures["bytes_per_item"] = figures["size"]["total"] / args.items
            say(f"{engine}: {figures['bytes_per_item']:,.0f} bytes/item; snapshots")
            spent = []
            for _ in range(3):
                start = time.perf_counter()
                store.snapshot(store.get("big"))
                spent.append(time.perf_counter() - start)
            figures["snapshot_s"] = spent
            say(f"{engine}: queries")
            figures["queries"], figures["plans"] = run_queries(store, args.repeat)
            say(f"{engine}: export")
            path = args.work / f"datasets-{engine}.parquet"
            start = time.perf_counter()
            exported = export(store.rows(store.view("big")), str(path))
            seconds = time.perf_counter() - start
            figures["export"] = {"rows": exported, "seconds": seconds,
                                 "rows_per_s": exported / seconds,
                                 "parquet_bytes": path.stat().st_size}  # fmt: skip
            if engine == args.engines[0]:
                export_qc(store, args.work / "datasets-qc.parquet")
            else:
                path.unlink()
        finally:
            store.close()
    return figures


def resident_mb() -> float:
    """The resident memory of this process, MB."""
    lines = Path("/proc/self/status").read_text().splitlines()
    return int(next(line for line in lines if line.startswith("VmRSS")).split()[1]) / 1024


DUCKDB = {
    "wide-jpeg": "width >= 4000 AND format = 'jpeg'",
    # quantile_disc is the value of rank floor((n - 1) q): the store's nearest rank when q n is
    # a whole number, as it is here
    "blurry-p10": "sharpness < (SELECT quantile_disc(sharpness, 0.1) FROM items)",
    "recent-outdoor": "list_contains(tags, 'outdoor')"
                      " AND created > TIMESTAMPTZ '2026-11-01 00:00:00+00'",
    "qc-ssim": "sha256 IN (SELECT sha256 FROM qc WHERE metric = 'ssim' AND value < 0.9)",
    "noisy-a7iii": "camera_model = 'ILCE-7M3' AND noise > 5",
}  # fmt: skip


def duckdb_contestant(items_path: Path, qc_path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """DuckDB tables loaded from the Parquet files, and a function per (filter, mode)."""
    import duckdb

    before = resident_mb()
    start = time.perf_counter()
    con = duckdb.connect()
    con.execute(f"CREATE TABLE items AS SELECT * FROM read_parquet('{items_path}')")
    con.execute(f"CREATE TABLE qc AS SELECT * FROM read_parquet('{qc_path}')")
    load = {"seconds": time.perf_counter() - start, "resident_mb": resident_mb() - before,
            "version": duckdb.__version__}  # fmt: skip
    calls = {}
    for name, condition in DUCKDB.items():
        every = f"SELECT * EXCLUDE (embedding) FROM items WHERE {condition}"
        calls[(name, "limit 100")] = lambda q=f"{every} LIMIT 100": con.execute(q).fetchall()
        calls[(name, "sort -created")] = lambda q=f"{every} ORDER BY created DESC LIMIT 100": (
            con.execute(q).fetchall())
        calls[(name, "count")] = lambda q=f"SELECT count(*) FROM items WHERE {condition}": (
            con.execute(q).fetchone()[0])
    return load, calls


def pandas_contestant(items_path: Path, qc_path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """pandas frames loaded from the Parquet files, and a function per (filter, mode)."""
    import pandas as pd

    before = resident_mb()
    start = time.perf_counter()
    df = pd.read_parquet(items_path)
    qcf = pd.read_parquet(qc_path)
    load = {"seconds": time.perf_counter() - start, "resident_mb": resident_mb() - before,
            "version": pd.__version__}  # fmt: skip

    def nearest_rank(column: str, q: float) -> float:
        values = df[column].dropna().to_numpy()
        rank = max(1, int(np.ceil(q * len(values))))
        return float(np.partition(values, rank - 1)[rank - 1])

    masks: dict[str, Callable[[], Any]] = {
        "wide-jpeg": lambda: (df["width"] >= 4000) & (df["format"] == "jpeg"),
        "blurry-p10": lambda: df["sharpness"] < nearest_rank("sharpness", 0.1),
        # tags load as numpy arrays: "in" on their lists is 10x faster than on the arrays
        "recent-outdoor": lambda: (df["tags"].map(lambda t: "outdoor" in t.tolist())
                                   & (df["created"] > pd.Timestamp("2026-11-01", tz="UTC"))),
        "qc-ssim": lambda: df["sha256"].isin(
            qcf.loc[(qcf["metric"] == "ssim") & (qcf["value"] < 0.9), "sha256"]),
        "noisy-a7iii": lambda: (df["camera_model"] == "ILCE-7M3") & (df["noise"] > 5),
    }  # fmt: skip
    shown = [c for c in df.columns if c != "embedding"]
    calls = {}
    for name, mask in masks.items():
        calls[(name, "limit 100")] = lambda m=mask: (
            df.loc[m(), shown].head(100).to_dict("records"))
        calls[(name, "sort -created")] = lambda m=mask: (
            df.loc[m(), shown].nlargest(100, "created").to_dict("records"))
        calls[(name, "count")] = lambda m=mask: int(m().sum())
    return load, calls


def scan_run(name: str, make: Callable[..., tuple[dict[str, Any], dict[str, Any]]],
             args: argparse.Namespace, expected: dict[tuple[str, str], int]) -> dict[str, Any]:
    """Load a contestant, check its counts against the store's, time every (filter, mode)."""
    say(f"{name}: loading the export")
    load, calls = make(args.work / f"datasets-{args.engines[0]}.parquet",
                       args.work / "datasets-qc.parquet")  # fmt: skip
    results = {}
    for key, call in calls.items():
        found = call()
        results[key] = found if isinstance(found, int) else len(found)
        if results[key] != expected[key]:
            raise SystemExit(f"{name} {key}: {results[key]} items, the store {expected[key]}")
    samples: dict[tuple[str, str], list[float]] = {key: [] for key in calls}
    for rep in range(args.repeat):
        order = list(calls.items())
        for key, call in order[rep % len(order):] + order[:rep % len(order)]:
            start = time.perf_counter()
            call()
            samples[key].append(time.perf_counter() - start)
    rows = [{"filter": f, "mode": mode, "result": results[(f, mode)], "runs": len(s),
             **quantiles(s), "samples_s": s} for (f, mode), s in samples.items()]  # fmt: skip
    del calls
    gc.collect()
    return {"contestant": name, "load": load, "queries": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=5000, help="records per Store.add call")
    parser.add_argument("--dim", type=int, default=64, help="embedding width (0: none)")
    parser.add_argument("--events", type=int, default=None,
                        help="QC events (default: one per 200 items, at least 1000)")
    parser.add_argument("--repeat", type=int, default=20, help="timed runs of each query")
    parser.add_argument("--engines", default=",".join(ENGINES),
                        help="comma-separated: sqlite, postgresql")
    parser.add_argument("--no-scans", action="store_true",
                        help="leave out the DuckDB and pandas scans of the export")
    parser.add_argument("--work", type=Path, default=HERE / "work")
    parser.add_argument("--output", type=Path, default=None,
                        help="the results JSON (default: results/datasets.json for 1M items "
                             "with 64-dim embeddings, else in the work folder)")
    args = parser.parse_args()
    args.engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    if args.events is None:
        args.events = min(args.items, max(1000, args.items // 200))
    args.work.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    began = time.perf_counter()
    engines = [engine_run(engine, args) for engine in args.engines]
    scans = []
    if not args.no_scans:
        expected = {(q["filter"], q["mode"]): q["result"] for q in engines[0]["queries"]}
        scans = [scan_run("duckdb", duckdb_contestant, args, expected),
                 scan_run("pandas", pandas_contestant, args, expected)]
    for leftover in args.work.glob("datasets-*.parquet"):
        leftover.unlink()
    default = args.items == 1_000_000
    name = "datasets" if args.dim == 64 else f"datasets-dim{args.dim}"
    path = args.output or (HERE / "results" / f"{name}.json" if default
                           else args.work / f"{name}-{args.items}.json")
    import duckdb
    import pandas

    recording.save(path, {
        "items": args.items, "dim": args.dim, "batch": args.batch, "events": args.events,
        "repeat": args.repeat, "filters": dict(FILTERS), "targets_p95_ms": TARGET_MS,
        "load_average_before": load_before, "load_average_after": os.getloadavg(),
        "total_s": time.perf_counter() - began, "engines": engines, "scans": scans,
    }, sqlalchemy=sa.__version__, sqlite=sqlite_version(), postgresql=postgres_version(),
        duckdb=duckdb.__version__, pandas=pandas.__version__)  # fmt: skip
    print(report(args, engines, scans))


def sqlite_version() -> str:
    import sqlite3

    return sqlite3.sqlite_version


def postgres_version() -> str | None:
    with contextlib.suppress(sa.exc.OperationalError):
        admin = sa.create_engine(recording.POSTGRES)
        with admin.connect() as db:
            return str(db.exec_driver_sql("SHOW server_version").scalar())
    return None


def report(args: argparse.Namespace, engines: list[dict[str, Any]],
           scans: list[dict[str, Any]]) -> str:  # fmt: skip
    """The markdown tables of the run."""
    parts = [recording.table(
        [f"{args.items:,} items, dim {args.dim}", "ingest items/s", "first 10 % items/s",
         "last 10 % items/s", "QC events/s", "ANALYZE s", "snapshot s", "export rows/s",
         "bytes/item", "Parquet bytes/item"],
        ([e["engine"], f"{e['ingest']['items_per_s']:,.0f}",
          f"{e['ingest']['first_tenth_items_per_s']:,.0f}",
          f"{e['ingest']['last_tenth_items_per_s']:,.0f}", f"{e['events']['events_per_s']:,.0f}",
          f"{e['analyze_s']:.1f}", f"{statistics.median(e['snapshot_s']):.3f}",
          f"{e['export']['rows_per_s']:,.0f}", f"{e['bytes_per_item']:,.0f}",
          f"{e['export']['parquet_bytes'] / args.items:,.0f}"] for e in engines))]  # fmt: skip
    contestants = [(e["engine"], e["queries"]) for e in engines]
    contestants += [(s["contestant"], s["queries"]) for s in scans]
    by_key = {(c, q["filter"], q["mode"]): q for c, rows in contestants for q in rows}
    header = ["filter", "mode", "matches"]
    header += [f"{c} p50 / p95 ms" for c, _ in contestants]
    lines = []
    for name, _ in FILTERS:
        for mode in MODES + ("limit 100 @v1",):
            cells = []
            for contestant, _ in contestants:
                q = by_key.get((contestant, name, mode))
                if q is None:
                    cells.append(None)
                    continue
                miss = " ✗" if q["p95_ms"] > TARGET_MS.get(contestant, 1e9) else ""
                cells.append(f"{q['p50_ms']:,.0f} / {q['p95_ms']:,.0f}{miss}")
            result = by_key[(contestants[0][0], name, mode)]["result"]
            lines.append([f"`{dict(FILTERS)[name]}`", mode, f"{result:,}", *cells])
    parts.append(recording.table(header, lines, text=2))
    if scans:
        parts.append(recording.table(
            ["in memory", "load s", "resident MB"],
            ([s["contestant"], f"{s['load']['seconds']:.1f}",
              f"{s['load']['resident_mb']:,.0f}"] for s in scans)))  # fmt: skip
    return "\n\n".join(parts)


if __name__ == "__main__":
    main()
