"""Chaos on the embedded service (``pixelmill serve``, two workers, real processes on a real
port): jobs that segfault and jobs that exhaust memory beside good ones, then a worker killed.
The service, the workers and the good jobs must live on, the bad jobs end dead with ``kind:
crashed``, a dead worker is started again, and ``/readyz`` tells the truth throughout. The bad
steps come from the test plugin ``tests/plugins/chaos``."""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from pathlib import Path

import httpx
import pytest
from conftest import photo, plugin_path
from test_service import free_port
from test_service_reliability import alive, processes, serve  # noqa: F401  (a fixture)

from pixelmill.jobs.presence import FRESH
from pixelmill.jobs.queue import FINAL


def ended(base: str, ids: list[str], seconds: float, watch) -> dict[str, dict]:
    """The jobs once each has ended; ``watch()`` is called between looks."""
    deadline = time.monotonic() + seconds
    while True:
        jobs = {i: httpx.get(f"{base}/v1/jobs/{i}").json() for i in ids}
        if all(job["state"] in FINAL for job in jobs.values()):
            return jobs
        assert time.monotonic() < deadline, {i: j["state"] for i, j in jobs.items()}
        watch()
        time.sleep(0.2)


def worker_pids(data: Path) -> list[int]:
    """The workers alive by their heartbeats (a worker is named host:pid)."""
    with sqlite3.connect(data / "jobs.db") as db:
        rows = db.execute("SELECT name FROM pixelmill_workers WHERE seen_at > ?",
                          (time.time() - FRESH,)).fetchall()  # fmt: skip
    return sorted(int(name.rsplit(":", 1)[1]) for (name,) in rows)


def metric(base: str, name: str) -> float:
    """The value of one sample of ``/metrics`` (0 when absent)."""
    for line in httpx.get(f"{base}/metrics").text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{") and line.split()[0] == name:
            return float(line.split()[-1])
    return 0.0


@pytest.mark.timeout(300)
def test_crashing_and_hogging_jobs_cost_only_themselves(tmp_path, processes) -> None:  # noqa: F811
    data = tmp_path / "data"
    env = {"PYTHONPATH": plugin_path("chaos", tmp_path / "plugins"), "PIXELMILL_JOB_ATTEMPTS": "2",
           "PIXELMILL_MAX_MEMORY": str(256 * 1024**2), "PIXELMILL_JOB_BACKOFF": "0.2"}  # fmt: skip
    server, base = serve(processes, "serve", free_port(), data, "--workers", "2", env=env)
    deadline = time.monotonic() + 60
    while httpx.get(f"{base}/readyz").status_code != 200:  # the workers say they are alive
        assert time.monotonic() < deadline, httpx.get(f"{base}/readyz").text
        time.sleep(0.2)
    made = httpx.post(f"{base}/v1/jobs/upload", files={"file": ("a.png", photo(320, 240)
                      .pngsave_buffer())}, data={"pipeline": "resize:fit:64"})  # fmt: skip
    assert made.status_code == 202, made.text
    source = made.json()["source"]

    def submit(pipeline: str) -> str:
        answer = httpx.post(f"{base}/v1/jobs", json={"sources": [source], "pipeline": pipeline})
        assert answer.status_code == 202, answer.text
        return answer.json()["id"]

    good = [made.json()["id"]] + [submit(f"resize:fit:{n}") for n in (40, 50, 60)]
    crashing, hogging = submit("crash"), submit("hog")
    good += [submit(f"resize:fit:{n}") for n in (70, 80, 90)]

    def healthy() -> None:
        assert server.poll() is None, server.tail()
        ready = httpx.get(f"{base}/readyz")
        assert ready.status_code == 200 and ready.json()["workers"] == 2, ready.text

    jobs = ended(base, [*good, crashing, hogging], 240, healthy)
    assert all(jobs[i]["state"] == "succeeded" for i in good), jobs
    for bad, cause in ((crashing, "SIGSEGV"), (hogging, "max_memory")):
        assert jobs[bad]["state"] == "dead" and jobs[bad]["attempts"] == 2, jobs[bad]
        assert jobs[bad]["error"]["kind"] == "crashed" and cause in jobs[bad]["error"]["message"]
    assert metric(base, 'pixelmill_job_crashes_total{cause="SIGSEGV"}') == 2
    assert metric(base, 'pixelmill_job_crashes_total{cause="memory"}') == 2

    victim = worker_pids(data)[0]  # a worker killed outright is started again
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while metric(base, 'pixelmill_worker_restarts_total{cause="SIGKILL"}') < 1:
        assert time.monotonic() < deadline, server.tail()
        time.sleep(0.2)
    assert '"cause": "SIGKILL"' in server.log.read_text()
    after = submit("resize:fit:20")
    assert ended(base, [after], 60, lambda: None)[after]["state"] == "succeeded"
    assert server.poll() is None and not alive(victim)


@pytest.mark.timeout(120)
def test_readyz_says_so_while_no_worker_is_alive(tmp_path, processes) -> None:  # noqa: F811
    data = tmp_path / "data"
    _, base = serve(processes, "serve", free_port(), data, "--workers", "0")
    assert httpx.get(f"{base}/readyz").status_code == 503  # jobs would wait forever
    worker = processes.start("worker", "worker", "--data-dir", str(data))
    deadline = time.monotonic() + 60
    while (ready := httpx.get(f"{base}/readyz")).status_code != 200:
        assert worker.poll() is None and time.monotonic() < deadline, worker.tail()
        time.sleep(0.2)
    assert ready.json()["workers"] == 1
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    with sqlite3.connect(data / "jobs.db") as db:  # FRESH seconds pass: its heartbeat is stale
        db.execute("UPDATE pixelmill_workers SET seen_at = seen_at - ?", (FRESH + 1,))
    assert httpx.get(f"{base}/readyz").status_code == 503
