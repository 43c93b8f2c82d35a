"""Workers on the job queue: jobs succeed once, bad inputs fail with their reason and never stop
the worker, storage failures are retried, cancellation stops a running job, and a worker killed
with SIGKILL mid-job leaves it to another that writes the output exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest
import pyvips
from conftest import photo
from test_bad_inputs import corpus

from pixelmill import api
from pixelmill.config import Settings
from pixelmill.errors import Cancelled
from pixelmill.jobs.worker import Worker

SLOW = "model:sr-x2/encode:png"
"""A pipeline that takes seconds on the big image below: time to cancel or kill it."""


@pytest.fixture
def big(tmp_path):
    path = tmp_path / "big.png"
    photo(2000, 2000).pngsave(str(path), compression=0)
    return path


def test_jobs_succeed_and_bad_inputs_fail_with_their_reason(queue, tmp_path, make_image) -> None:
    good = make_image("good.png", photo(320, 240))
    jobs = [queue.submit({"source": str(good), "destination": str(tmp_path / "out" / "a.webp"),
                          "pipeline": "resize:fit:160/encode:webp"})]  # fmt: skip
    bad = corpus(tmp_path / "bad")
    jobs += [queue.submit({"source": str(path), "destination": str(tmp_path / "out" / name),
                           "pipeline": "resize:fit:100"})
             for name, path in bad.items()]  # fmt: skip
    jobs.append(queue.submit({"source": str(good), "destination": str(tmp_path / "x.png"),
                              "pipeline": "qc:ssim>=2"}))  # a gate that cannot pass  # fmt: skip
    worker = Worker(queue, Settings(), name="w1")
    while worker.run_one() is not None:
        pass
    first, *failed = (queue.get(job.id) for job in jobs)
    assert first.state == "succeeded" and first.result["format"] == "webp"
    assert first.result["width"] == 160 and (tmp_path / "out" / "a.webp").exists()
    assert all(job.state == "failed" and job.attempts == 1 and job.error for job in failed)
    assert {job.error_kind for job in failed} == {"input", "limit", "quality"}
    assert sorted(os.listdir(tmp_path / "out")) == ["a.webp"]  # no partial output
    again = queue.submit({"source": str(good), "destination": str(tmp_path / "b.png")})
    assert worker.run_one().id == again.id and queue.get(again.id).state == "succeeded"


def test_a_storage_failure_is_retried_and_a_missing_source_is_not(queue, tmp_path) -> None:
    import functools
    import http.server

    from test_service import free_port

    port = free_port()
    photo(64, 48).write_to_file(str(tmp_path / "later.png"))
    spec = {"source": f"http://127.0.0.1:{port}/later.png", "destination": str(tmp_path / "o.png")}
    job = queue.submit(spec, max_attempts=3)
    missing = queue.submit({"source": str(tmp_path / "nope.png"),
                            "destination": str(tmp_path / "n.png")}, max_attempts=3)  # fmt: skip
    worker = Worker(queue, Settings(), name="w1")
    try:
        waiting = worker.run_one()  # the storage (an http server) is not there yet
        assert (waiting.id, waiting.state, waiting.error_kind, waiting.attempts) == (
            job.id, "queued", "storage", 1)
        gone = worker.run_one()  # "not found" is final: no retry, at once
        assert (gone.id, gone.state, gone.error_kind, gone.attempts) == (
            missing.id, "failed", "not-found", 1)
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=tmp_path)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        with queue.engine.begin() as db:
            db.exec_driver_sql("UPDATE pixelmill_jobs SET run_after = 0")  # the backoff passed
        done = worker.run_one()
        server.shutdown()
        assert (done.id, done.state, done.attempts) == (job.id, "succeeded", 2)
    finally:
        worker.close()


def test_a_running_job_is_stopped_when_cancelled(queue, tmp_path, big) -> None:
    job = queue.submit({"source": str(big), "destination": str(tmp_path / "o.png"),
                        "pipeline": SLOW})  # fmt: skip
    worker = Worker(queue, Settings(), name="w1", lease=0.6)
    ran = threading.Thread(target=worker.run_one)
    ran.start()
    while queue.get(job.id).state != "running":
        time.sleep(0.02)
    began = time.monotonic()
    queue.cancel(job.id)
    ran.join(60)
    assert queue.get(job.id).state == "cancelled"
    assert time.monotonic() - began < 5 and not (tmp_path / "o.png").exists()


def test_a_run_stops_alone_when_its_stop_event_is_set(tmp_path, big) -> None:
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    with pytest.raises(Cancelled):
        api.run(big, tmp_path / "o.png", SLOW, stop=stop)
    assert not (tmp_path / "o.png").exists()
    api.run(big, tmp_path / "small.png", "resize:fit:64")  # the process goes on working


def worker_process(db: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pixelmill", "worker", "--db", db, *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


def test_a_worker_killed_mid_job_leaves_it_to_another_exactly_once(queue, tmp_path, big) -> None:
    out = tmp_path / "out"
    job = queue.submit({"source": str(big), "destination": str(out / "o.png"),
                        "pipeline": SLOW})  # fmt: skip
    db = str(queue.engine.url)
    doomed = worker_process(db)
    deadline = time.monotonic() + 60
    while queue.get(job.id).state != "running" and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(30)
    assert queue.get(job.id).state == "running" and not (out / "o.png").exists()
    with queue.engine.begin() as db_:  # the lease runs out (its time is the database's)
        db_.exec_driver_sql("UPDATE pixelmill_jobs SET lease_expires = 0")
    heir = worker_process(db, "--once")
    assert heir.wait(120) == 0, heir.communicate()[1]
    done = queue.get(job.id)
    assert (done.state, done.attempts) == ("succeeded", 2)
    assert os.listdir(out) == ["o.png"]  # one whole file, no spool left over
    assert pyvips.Image.new_from_file(str(out / "o.png")).width == 4000


def test_sigterm_puts_the_running_job_back_and_stops_the_worker(queue, tmp_path, big) -> None:
    job = queue.submit({"source": str(big), "destination": str(tmp_path / "o.png"),
                        "pipeline": SLOW})  # fmt: skip
    running = worker_process(str(queue.engine.url))
    deadline = time.monotonic() + 60
    while queue.get(job.id).state != "running" and time.monotonic() < deadline:
        time.sleep(0.05)
    running.send_signal(signal.SIGTERM)
    assert running.wait(60) == 0
    back = queue.get(job.id)
    assert back.state == "queued" and back.error_kind == "cancelled" and back.lease_owner is None
    assert not (tmp_path / "o.png").exists()


def test_the_worker_logs_each_job_as_a_json_line(queue, tmp_path, make_image) -> None:
    import json

    good = make_image("good.png", photo(64, 48))
    job = queue.submit({"source": str(good), "destination": str(tmp_path / "o.png")})
    worker = worker_process(str(queue.engine.url), "--once")
    assert worker.wait(60) == 0
    lines = [json.loads(line) for line in worker.stderr.read().splitlines()]
    assert lines[0]["message"] == "worker started"
    lines = [line for line in lines if "job" in line]
    assert [(line["job"], line["state"], line["level"]) for line in lines] == [
        (job.id, "succeeded", "info")]
    assert lines[0]["seconds"] > 0 and lines[0]["worker"].endswith(str(worker.pid))


def test_spools_of_interrupted_writes_are_removed(tmp_path) -> None:
    from pixelmill import storage

    (tmp_path / ".o.png.0123456789ab.part").write_bytes(b"half")
    (tmp_path / ".o.png.keep").write_bytes(b"other")
    (tmp_path / "o.png").write_bytes(b"whole")
    assert storage.remove_spools(storage.locate(tmp_path / "o.png")) == 1
    assert sorted(os.listdir(tmp_path)) == [".o.png.keep", "o.png"]


def test_models_named_to_preload_are_loaded_at_start(queue, cli, tmp_path, monkeypatch) -> None:
    import json

    env = {**os.environ, "PIXELMILL_PRELOAD": "sr-x2, dejpeg"}
    done = subprocess.run([sys.executable, "-m", "pixelmill", "worker", "--once", "--db",
                           str(queue.engine.url)], check=False, capture_output=True,
                          text=True, env=env, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    started = next(line for line in lines if line["message"] == "worker started")
    loaded = [line for line in lines if line["message"] == "model loaded"]
    assert [line["model"] for line in loaded] == ["sr-x2", "dejpeg"]
    assert {line["pid"] for line in loaded} == {started["job_pid"]}  # in the job's process
    monkeypatch.setenv("PIXELMILL_PRELOAD", "no-such-model")
    status, _, err = cli("worker", "--once", "--data-dir", str(tmp_path / "data"))
    assert status == 2 and "no-such-model" in err
