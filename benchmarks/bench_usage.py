"""The bookkeeping cost of usage accounting per piece of work, against a 50 ms job (target:
under 2 %).

What one job pays is what a worker does around it: a :class:`pixelmill.usage.Meter` entered
and left (CPU time, wall time, resident memory read twice, the sampling thread woken), its
result made, and :meth:`Usage.record`: one writing transaction (the row, the key's running
monthly cost, its budget read for alerts) and the Prometheus counters. The key recorded for
has a budget, so the whole path runs. Measured on SQLite (a file on local disk, WAL) and on
PostgreSQL (127.0.0.1:5432, a schema of its own; left out when no server answers):

- ``meter``: a Meter around nothing, and its result;
- ``record``: one record;
- ``both``: the two, which is the bookkeeping per job, as mean and 95th percentile;
- ``a/b``: 50 ms CPU-bound jobs (a busy loop on ``time.process_time``) run with and without
  the bookkeeping, interleaved, and the difference of their mean wall times: a check of the
  direct figure on a real job, noisier on a shared machine.

    python benchmarks/bench_usage.py                 # 2,000 records per database, 200 jobs
    python benchmarks/bench_usage.py --quick         # 300 records, 40 jobs
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import recording
import sqlalchemy as sa

from pixelmill.database import connect
from pixelmill.usage import Meter, Prices, Usage

HERE = Path(__file__).resolve().parent
JOB = 0.050
"""Seconds of CPU one job takes."""
PIPELINE = "resize:fit:512/encode:webp:q=80"


def busy(seconds: float) -> None:
    """Spend ``seconds`` of CPU time."""
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def account(usage: Usage, work: Callable[[], None]) -> None:
    """One job with its bookkeeping, as a worker does it."""
    with Meter() as meter:
        work()
    meter.add_bytes(read=1_234_567, written=234_567)
    usage.record(meter.result("job", "bench", PIPELINE, dataset="photos", ref=uuid.uuid4().hex))


def timed(action: Callable[[], None], times: int) -> list[float]:
    """Seconds of each of ``times`` calls."""
    seconds = []
    for _ in range(times):
        began = time.perf_counter()
        action()
        seconds.append(time.perf_counter() - began)
    return seconds


def p95(values: list[float]) -> float:
    return sorted(values)[int(len(values) * 0.95)]


def measure(usage: Usage, records: int, jobs: int) -> dict[str, float]:
    """The figures of one database (seconds)."""
    usage.budgets.set("bench", 1e12)
    timed(lambda: account(usage, lambda: None), 50)  # warm: connections, tables, counters

    def meter_only() -> None:
        with Meter() as meter:
            pass
        meter.result("job", "bench", PIPELINE)

    work = Meter().result("job", "bench", PIPELINE, dataset="photos")
    meter = timed(meter_only, records)
    record = timed(lambda: usage.record(work), records)
    both = timed(lambda: account(usage, lambda: None), records)
    plain, kept = [], []
    for _ in range(jobs):  # interleaved, so that drifts of the machine fall on both
        plain += timed(lambda: busy(JOB), 1)
        kept += timed(lambda: account(usage, lambda: busy(JOB)), 1)
    return {"meter_mean": statistics.fmean(meter), "record_mean": statistics.fmean(record),
            "record_p95": p95(record), "both_mean": statistics.fmean(both),
            "both_p95": p95(both), "job_plain_mean": statistics.fmean(plain),
            "job_accounted_mean": statistics.fmean(kept)}  # fmt: skip


@contextmanager
def sqlite() -> Iterator[str]:
    with tempfile.TemporaryDirectory() as folder:
        yield f"sqlite:///{folder}/jobs.db"


@contextmanager
def postgresql() -> Iterator[str | None]:
    """A fresh PostgreSQL schema's URL, or None when no server answers."""
    try:
        sa.create_engine(recording.POSTGRES).connect().close()
    except sa.exc.OperationalError as exc:
        recording.log(f"PostgreSQL left out: {exc.orig}")
        yield None
        return
    with recording.postgres_schema("pixelmill_bench") as url:
        yield url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer records and jobs")
    args = parser.parse_args()
    records, jobs = (300, 40) if args.quick else (2000, 200)
    results = {}
    for name, database in (("sqlite", sqlite), ("postgresql", postgresql)):
        with database() as url:
            if url is None:
                continue
            recording.log(f"{name}: {records} records, {jobs} jobs of {JOB * 1000:.0f} ms")
            engine = connect(url)
            results[name] = measure(Usage(engine, Prices(cpu_hour=0.04, request=1e-4)),
                                    records, jobs)  # fmt: skip
            engine.dispose()
    rows = []
    for name, found in results.items():
        share = found["both_mean"] / JOB
        ab = (found["job_accounted_mean"] - found["job_plain_mean"]) / found["job_plain_mean"]
        found.update(share_of_job=share, ab_share=ab, meets_target=share < 0.02)
        rows.append([name, f"{found['meter_mean'] * 1e3:.3f}", f"{found['record_mean'] * 1e3:.3f}",
                     f"{found['both_mean'] * 1e3:.3f}", f"{found['both_p95'] * 1e3:.3f}",
                     f"{share:.2%}", f"{ab:+.2%}"])  # fmt: skip
    recording.save(HERE / "results" / "usage.json",
                   {"job_seconds": JOB, "records": records, "jobs": jobs, "results": results,
                    "sources": recording.sources(["usage"])})  # fmt: skip
    print(recording.table(["database", "meter ms", "record ms", "per job ms", "p95 ms",
                           "of a 50 ms job", "a/b on 50 ms jobs"], rows))  # fmt: skip


if __name__ == "__main__":
    main()
