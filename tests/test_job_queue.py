"""The durable job queue on SQLite and on the PostgreSQL server of the machine (127.0.0.1:5432,
database ``test``; each test in a schema of its own): claims, leases, fencing, retries, the dead
letter, cancellation, and concurrent workers in separate processes that never share a job."""

from __future__ import annotations

import multiprocessing
import threading
import time

import pytest
import sqlalchemy as sa
from conftest import FakeClock

from pixelmill.config import Settings
from pixelmill.errors import UsageError
from pixelmill.jobs.clock import Backoff
from pixelmill.jobs.queue import JobQueue, jobs


@pytest.fixture
def url(database_url):
    return database_url


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def queue(url, clock):
    made = JobQueue(url, clock)
    yield made
    made.close()


def test_a_job_goes_from_queued_to_succeeded_once(queue) -> None:
    job = queue.submit({"source": "a.jpg"}, key="upload-1", batch="b1")
    assert queue.submit({"source": "other"}, key="upload-1").id == job.id  # idempotent
    claimed = queue.claim("w1", lease=30)
    assert (claimed.id, claimed.state, claimed.attempts) == (job.id, "running", 1)
    assert queue.claim("w2", lease=30) is None
    assert queue.heartbeat(job.id, "w1", lease=30, progress=0.5)
    assert queue.get(job.id).progress == 0.5
    assert not queue.complete(job.id, "w2", {"bytes": 1})  # not its job
    assert queue.complete(job.id, "w1", {"bytes": 10})
    done = queue.get(job.id)
    assert (done.state, done.result, done.progress, done.spec) == (
        "succeeded", {"bytes": 10}, 1.0, {"source": "a.jpg"})
    assert not queue.complete(job.id, "w1", {"bytes": 11})  # once only
    assert [j.id for j in queue.list(batch="b1")] == [job.id]
    assert queue.counts()["succeeded"] == 1


def test_higher_priority_first_then_oldest(queue, clock) -> None:
    made = []
    for n, priority in ((1, 0), (2, 5), (3, 0)):
        made.append(queue.submit({"n": n}, priority=priority))
        clock.advance(1)
    low, high, later = made
    order = [queue.claim("w", lease=30).id for _ in range(3)]
    assert order == [high.id, low.id, later.id]


def test_a_lost_worker_is_replaced_and_fenced_off(queue, clock) -> None:
    job = queue.submit({"n": 1}, max_attempts=3)
    assert queue.claim("dies", lease=20).id == job.id
    clock.advance(19)
    assert queue.claim("other", lease=30) is None  # the lease still runs
    clock.advance(2)
    again = queue.claim("other", lease=30)
    assert (again.id, again.attempts, again.lease_owner) == (job.id, 2, "other")
    assert not queue.heartbeat(job.id, "dies", lease=30)  # the lost worker learns it
    assert not queue.complete(job.id, "dies", {"late": True})
    assert queue.complete(job.id, "other", {"ok": True})
    assert queue.get(job.id).result == {"ok": True}


def test_a_job_whose_workers_keep_dying_is_dead(queue, clock) -> None:
    job = queue.submit({"n": 1}, max_attempts=2)
    for worker in ("a", "b"):
        assert queue.claim(worker, lease=30).id == job.id
        clock.advance(31)
    assert queue.claim("c", lease=30) is None
    dead = queue.get(job.id)
    assert dead.state == "dead" and "lost 2 times" in dead.error and dead.error_kind == "lost"


def test_failures_retry_with_backoff_then_go_to_the_dead_letter(queue, clock) -> None:
    job = queue.submit({"n": 1}, max_attempts=2)
    queue.claim("w", lease=30)
    retried = queue.fail(job.id, "w", "storage unreachable", "storage")
    assert retried.state == "queued" and retried.run_after == clock.now() + 2.0
    clock.advance(1.9)
    assert queue.claim("w", lease=30) is None  # not due yet
    clock.advance(0.1)
    assert queue.claim("w", lease=30).attempts == 2
    dead = queue.fail(job.id, "w", "storage unreachable", "storage")
    assert dead.state == "dead" and queue.get(job.id).error == "storage unreachable"
    assert [Backoff().delay(n) for n in (1, 2, 3, 20)] == [2.0, 4.0, 8.0, 300.0]
    assert [Backoff(0.5, 3).delay(n) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 3.0]


def test_the_settings_choose_the_backoff(url, monkeypatch) -> None:
    monkeypatch.setenv("PIXELMILL_JOB_BACKOFF", "0.25")
    queue = JobQueue.of(Settings.load().replace(db=url))
    job = queue.submit({"n": 1})
    queue.claim("w", lease=30)
    before = time.time()
    retried = queue.fail(job.id, "w", "storage unreachable", "storage")
    assert before + 0.25 <= retried.run_after <= time.time() + 0.25
    queue.close()
    with pytest.raises(UsageError, match="job_backoff must be positive"):
        Settings(job_backoff=0)


def test_a_bad_input_fails_at_once_with_its_reason(queue) -> None:
    job = queue.submit({"n": 1})
    queue.claim("w", lease=30)
    failed = queue.fail(job.id, "w", "a.jpg: premature end of JPEG image", "input", retry=False)
    assert failed.state == "failed" and failed.attempts == 1
    assert queue.fail(job.id, "w", "again", "input") is None  # no longer running


def test_cancel_a_queued_job_at_once_and_a_running_one_at_its_heartbeat(queue) -> None:
    waiting, running = queue.submit({"n": 1}), queue.submit({"n": 2}, priority=1)
    assert queue.claim("w", lease=30).id == running.id
    assert queue.cancel(waiting.id).state == "cancelled"
    assert queue.cancel(running.id).cancel_requested
    assert not queue.heartbeat(running.id, "w", lease=30)  # stop
    assert queue.cancelled(running.id, "w")
    assert queue.get(running.id).state == "cancelled"
    assert queue.cancel(running.id).state == "cancelled"  # finished jobs stay as they are
    assert queue.claim("w", lease=30) is None


def test_listing_filters_and_pages(queue, clock) -> None:
    made = []
    for n in range(5):
        made.append(queue.submit({"n": n}, batch="b" if n % 2 else None))
        clock.advance(1)
    assert [j.id for j in queue.list(limit=2)] + [j.id for j in queue.list(limit=3, offset=2)] \
        == [j.id for j in reversed(made)]
    assert len(queue.list(batch="b")) == 2 and len(queue.list(state="queued")) == 5
    with pytest.raises(UsageError, match="not one of"):
        queue.list(state="lost")
    with pytest.raises(KeyError):
        queue.get("missing")


def _work(url: str, worker: str, claimed, go) -> None:
    queue = JobQueue(url)
    go.wait(60)  # every worker starts claiming at once
    while (job := queue.claim(worker, lease=60)) is not None:
        claimed.append(job.id)
        assert queue.complete(job.id, worker, {"by": worker})
    queue.close()


def test_concurrent_workers_in_processes_never_share_a_job(url) -> None:
    queue = JobQueue(url)
    ids = {queue.submit({"n": n}).id for n in range(120)}
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        claimed, go = manager.list(), manager.Event()
        workers = [context.Process(target=_work, args=(url, f"w{i}", claimed, go))
                   for i in range(4)]  # fmt: skip
        for process in workers:
            process.start()
        go.set()
        for process in workers:
            process.join(120)
            assert process.exitcode == 0
        claimed = list(claimed)
    assert sorted(claimed) == sorted(ids)  # each job exactly once
    assert queue.counts()["succeeded"] == 120
    queue.close()


def _claim_and_hang(url: str, claimed) -> None:
    job = JobQueue(url, FakeClock()).claim("doomed", lease=30)
    claimed.append(job.id)
    time.sleep(600)


def test_a_worker_killed_mid_job_leaves_it_to_another_exactly_once(url) -> None:
    clock = FakeClock()
    queue = JobQueue(url, clock)
    job = queue.submit({"n": 1})
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        claimed = manager.list()
        doomed = context.Process(target=_claim_and_hang, args=(url, claimed))
        doomed.start()
        deadline = time.monotonic() + 60
        while not claimed and time.monotonic() < deadline:
            time.sleep(0.05)
        doomed.kill()  # SIGKILL: no goodbye, the lease just runs out
        doomed.join()
        assert list(claimed) == [job.id] and doomed.exitcode == -9
    clock.advance(31)  # the lease runs out
    again = queue.claim("heir", lease=30)
    assert (again.id, again.attempts) == (job.id, 2)
    assert queue.complete(job.id, "heir", {"by": "heir"})
    assert queue.get(job.id).result == {"by": "heir"} and queue.claim("heir", lease=30) is None
    queue.close()


def test_a_bad_database_url_is_a_clear_error() -> None:
    with pytest.raises(UsageError, match="job database"):
        JobQueue("nosuchdb://x")


def test_a_new_job_wakes_a_waiting_worker_on_postgresql(queue, url) -> None:
    """On PostgreSQL a submit ends a worker's wait at once (LISTEN/NOTIFY); on SQLite the
    wait is a plain sleep."""
    if queue.sqlite:
        began = time.monotonic()
        queue.wait(0.3)
        assert time.monotonic() - began >= 0.3
        return
    queue.wait(0.01)  # listening from now on
    other = JobQueue(url)
    threading.Timer(0.5, lambda: other.submit({"source": "a.jpg"})).start()
    began = time.monotonic()
    queue.wait(30)
    assert time.monotonic() - began < 10  # woken, not timed out
    assert queue.claim("w1", lease=30) is not None
    other.close()


def test_a_job_table_from_an_earlier_version_is_brought_up_to_date(url) -> None:
    """A table without the columns added since (webhooks here) gains them, keeps its jobs,
    and works."""
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    older = sa.MetaData()
    kept = [sa.Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable)
            for c in jobs.columns if not c.name.startswith("webhook")]  # fmt: skip
    sa.Table(jobs.name, older, *kept).create(engine)
    with engine.begin() as db:
        db.execute(sa.text(
            f"INSERT INTO {jobs.name} (id, state, priority, spec, attempts, max_attempts, "
            "run_after, cancel_requested, progress, created_at, updated_at) VALUES ('old', "
            "'queued', 0, '{\"source\": \"a.jpg\"}', 0, 5, 0, false, 0, 0, 0)"))
    engine.dispose()
    queue = JobQueue(url)
    assert queue.get("old").webhook is None and queue.get("old").webhook_attempts == 0
    made = queue.submit({"source": "b.jpg"}, webhook="https://example.com/hook")
    assert queue.get(made.id).webhook == "https://example.com/hook"
    assert queue.claim("w1", lease=30).id == "old"
    queue.close()
