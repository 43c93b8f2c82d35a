"""A job runs in a process of its own that the worker can kill: a segfault, a job that takes
all the memory or one that never returns costs that job's attempts, never the worker; the job
ends dead (or failed) with the cause, its temporary files are gone, and the next job runs.
The failing steps come from the test plugin ``tests/plugins/chaos`` (on ``PYTHONPATH`` for the job
processes)."""

from __future__ import annotations

import os
import time

import pytest
from conftest import photo, plugin_path

from pixelmill.config import Settings
from pixelmill.jobs import scratch
from pixelmill.jobs.queue import JobQueue
from pixelmill.jobs.worker import Worker


@pytest.fixture
def worker(queue, tmp_path, monkeypatch):
    chaos = plugin_path("chaos", tmp_path / "plugins")
    monkeypatch.syspath_prepend(chaos)  # job processes start with this process's path
    made = Worker(queue, Settings(max_memory=256 * 1024**2, time_limit=3.0,
                                  tmp_dir=str(tmp_path / "tmp")), name="w1", grace=0.5)  # fmt: skip
    yield made
    made.close()


def drain(queue: JobQueue, worker: Worker) -> None:
    """Run every job to its end, retries included (their backoff skipped)."""
    while True:
        with queue.engine.begin() as db:
            db.exec_driver_sql("UPDATE pixelmill_jobs SET run_after = 0")
        if worker.run_one() is None:
            return


def test_a_segfault_a_memory_hog_and_a_hang_cost_their_jobs_alone(queue, worker, tmp_path,
                                                                  make_image) -> None:  # fmt: skip
    source = make_image("a.png", photo(64, 48))
    out = tmp_path / "out"

    def job(pipeline: str, name: str):
        return queue.submit({"source": str(source), "destination": str(out / name),
                             "pipeline": pipeline}, max_attempts=2)  # fmt: skip

    crash, hog, hang = job("crash", "crash.png"), job("hog", "hog.png"), job("hang", "hang.png")
    good = job("resize:fit:32", "good.png")
    drain(queue, worker)
    crashed, hogged, hung, done = (queue.get(j.id) for j in (crash, hog, hang, good))
    assert (crashed.state, crashed.error_kind, crashed.attempts) == ("dead", "crashed", 2)
    assert "SIGSEGV (signal 11)" in crashed.error
    assert (hogged.state, hogged.error_kind, hogged.attempts) == ("dead", "crashed", 2)
    assert "over the budget" in hogged.error and "max_memory" in hogged.error
    assert (hung.state, hung.error_kind, hung.attempts) == ("failed", "limit", 1)
    assert "its process was killed" in hung.error
    assert done.state == "succeeded" and os.listdir(out) == ["good.png"]
    assert os.listdir(worker.scratch.path) == [scratch.LOCK]  # the crash's spool is gone


def test_a_cancelled_job_is_not_run_again_after_its_worker_died(queue) -> None:
    job = queue.submit({"source": "a.png", "destination": "b.png"})
    claimed = queue.claim("w-dead", lease=0.01)  # its worker dies holding it
    assert claimed.id == job.id
    queue.cancel(job.id)
    time.sleep(0.05)  # the lease runs out
    assert queue.claim("w-next", lease=30) is None
    assert queue.get(job.id).state == "cancelled"


def test_folders_of_dead_workers_are_swept_and_live_ones_kept(tmp_path) -> None:
    base = str(tmp_path)
    alive = scratch.Scratch(base)
    dead = tmp_path / f"{scratch.PREFIX}99999-gone"
    dead.mkdir()
    (dead / scratch.LOCK).touch()
    (dead / "job" / "pixelmill-x.part").parent.mkdir()
    (dead / "job" / "pixelmill-x.part").write_bytes(b"half a spool")
    later = scratch.Scratch(base)
    assert later.removed == 1 and not dead.exists() and os.path.isdir(alive.path)
    alive.close()
    later.close()
    assert os.listdir(base) == []


def test_a_broken_spec_fails_its_job_and_not_the_worker(queue, worker, tmp_path,
                                                        make_image) -> None:  # fmt: skip
    empty = queue.submit({"source": "", "destination": ""}, max_attempts=1)
    shapeless = queue.submit({"pipeline": "flip"}, max_attempts=1)
    good = queue.submit({"source": str(make_image("a.png")), "destination": str(tmp_path / "b.png")})
    drain(queue, worker)
    assert queue.get(empty.id).error == "empty path"
    assert queue.get(shapeless.id).error_kind == "internal"
    assert {queue.get(j.id).state for j in (empty, shapeless)} == {"dead"}
    assert queue.get(good.id).state == "succeeded"
