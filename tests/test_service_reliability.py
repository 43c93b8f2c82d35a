"""The service under faults, with real processes on real ports: the API process killed and the
job database stopped while jobs run (no job is lost, each output written exactly once), and a
hundred bad inputs (each job fails with its reason, no worker dies, the next good job runs)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pyvips
from conftest import photo
from pgserver import PostgresServer, missing
from test_bad_inputs import corpus, png_claiming
from test_service import free_port

from pixelmill.jobs.queue import FINAL

TRACEBACK = "Traceback (most recent call last):"


class Process(subprocess.Popen):
    """A pixelmill process whose stdout and stderr go to the file ``log``."""

    log: Path

    def tail(self, lines: int = 40) -> str:
        """The end of the log: from its last traceback (the outermost of a chain, with the
        process's own frames) when it has one, else its last ``lines`` lines."""
        text = self.log.read_text(errors="replace")
        if TRACEBACK in text:
            return TRACEBACK + text.rsplit(TRACEBACK, 1)[1]
        return "\n".join(text.splitlines()[-lines:])


class Processes:
    """Starts ``pixelmill`` processes, their logs in a folder; ``stop_all`` ends each of them,
    and the processes that they started and that were handed to ``adopt``."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.started: list[Process] = []
        self.adopted: list[int] = []
        logs.mkdir(exist_ok=True)

    def start(self, name: str, *args: str, env: dict[str, str] | None = None) -> Process:
        """``pixelmill ARGS…``, logging to ``NAME.log``."""
        log = self.logs / f"{name}.log"
        with open(log, "ab") as out:
            process = Process([sys.executable, "-m", "pixelmill", *args], stdin=subprocess.DEVNULL,
                              stdout=out, stderr=out, env={**os.environ, **(env or {})})  # fmt: skip
        process.log = log
        self.started.append(process)
        return process

    def adopt(self, pids: list[int]) -> None:
        self.adopted += pids

    def stop_all(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.terminate()
        for process in self.started:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for pid in self.adopted:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    """Processes of the test, stopped at its end; their logs in ``tmp_path/logs``."""
    made = Processes(tmp_path / "logs")
    yield made
    made.stop_all()


def serve(processes: Processes, name: str, port: int, data: Path, *options: str,
          env: dict[str, str] | None = None) -> tuple[Process, str]:  # fmt: skip
    """``pixelmill serve`` on ``port``, once it answers; returns the process and its base URL."""
    server = processes.start(name, "serve", "--port", str(port), "--data-dir", str(data), *options,
                             env=env)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{base}/healthz").status_code == 200:
                return server, base
        except httpx.TransportError:
            pass
        assert server.poll() is None, f"pixelmill serve exited:\n{server.tail()}"
        assert time.monotonic() < deadline, f"pixelmill serve not up:\n{server.tail()}"
        time.sleep(0.2)


def proc_stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state, ppid, …); None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return None


def alive(pid: int) -> bool:
    """Whether the process runs (a zombie has died, only its parent has not reaped it)."""
    stat = proc_stat(pid)
    return stat is not None and stat[0] != "Z"


def worker_children(pid: int) -> list[int]:
    """The live child processes of ``pid`` that run ``pixelmill worker``."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := proc_stat(int(entry))) and int(stat[1]) == pid:
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as handle:
                    command = handle.read().split(b"\0")
            except FileNotFoundError:
                continue
            if b"worker" in command and stat[0] != "Z":
                found.append(int(entry))
    return sorted(found)


def all_jobs(base: str) -> dict[str, dict[str, Any]]:
    """Every job the API knows, by id."""
    answer = httpx.get(f"{base}/v1/jobs", params={"limit": 1000})
    assert answer.status_code == 200, answer.text
    return {job["id"]: job for job in answer.json()["jobs"]}


def files_under(folder: Path) -> list[Path]:
    """Every file below ``folder``, hidden ones (spools) included."""
    return sorted(path for path in folder.rglob("*") if path.is_file())


OUTAGE = 3.0
"""Seconds the job database stays down."""
WORK = "sharpen:3/resize:fit:512/encode:png"
"""A fraction of a second on the 1500×1500 photo: 30 jobs keep two workers busy for seconds."""


@pytest.mark.postgres
@pytest.mark.timeout(180)
def test_no_job_is_lost_when_the_api_and_the_database_restart(tmp_path, processes) -> None:
    """30 jobs on PostgreSQL; while they run, the API is killed (SIGKILL), the database is shut
    down (fast) for a few seconds and started again, then the API. The workers are processes of
    their own (``pixelmill worker``, as when the service is scaled out), so that they live
    through the API's death (those ``pixelmill serve`` starts end with it). The workers must ride
    out the outage (an unreachable database is a passing fault) and finish every job: each
    output once, whole, and no spool left behind. A client that retries its requests after the
    crash gets the jobs it made, not new ones."""
    if reason := missing():
        pytest.skip(reason)
    with PostgresServer() as database:
        data = tmp_path / "data"
        (data / "files" / "in").mkdir(parents=True)
        photo(1500, 1500).jpegsave(str(data / "files" / "in" / "big.jpg"), Q=90)
        port = free_port()
        api, base = serve(processes, "api", port, data, "--db", database.url, "--workers", "0")
        workers = [processes.start(f"worker-{n}", "--debug", "worker", "--db", database.url,
                                   "--data-dir", str(data), "--lease", "5")
                   for n in range(2)]  # --debug: a crash logs its traceback  # fmt: skip
        requests = [{"sources": ["in/big.jpg"], "pipeline": WORK, "idempotency_key": f"job-{n}"}
                    for n in range(30)]  # fmt: skip
        ids = []
        for request in requests:
            made = httpx.post(f"{base}/v1/jobs", json=request)
            assert made.status_code == 202, made.text
            ids.append(made.json()["id"])
        deadline = time.monotonic() + 60
        while (counts := httpx.get(f"{base}/readyz").json()["jobs"])["succeeded"] < 2:
            assert time.monotonic() < deadline, f"no job finished: {counts}"
            assert all(w.poll() is None for w in workers), [w.tail() for w in workers]
            time.sleep(0.1)
        assert counts["queued"] + counts["running"] >= 10, f"too few jobs left to test: {counts}"

        api.kill()
        assert api.wait(10) == -signal.SIGKILL
        database.stop()
        time.sleep(OUTAGE)
        database.start()
        api, base = serve(processes, "api-again", port, data, "--db", database.url,
                          "--workers", "0")  # fmt: skip
        again = [httpx.post(f"{base}/v1/jobs", json=request) for request in requests]
        assert [answer.json()["id"] for answer in again] == ids

        deadline = time.monotonic() + 90
        while True:
            for worker in workers:
                assert worker.poll() is None, (
                    f"a worker died (exit code {worker.returncode}) when the job database went "
                    f"away:\n{worker.tail()}")  # fmt: skip
            jobs = all_jobs(base)
            if all(jobs.get(job_id, {}).get("state") in FINAL for job_id in ids):
                break
            states = sorted(jobs.get(job_id, {}).get("state", "missing") for job_id in ids)
            assert time.monotonic() < deadline, f"jobs unfinished after the restart: {states}"
            time.sleep(0.5)

    assert sorted(jobs) == sorted(ids)  # present, and no other made
    for job_id in ids:
        job = jobs[job_id]
        assert job["state"] == "succeeded", job
        assert job["output"]["destination"] == job["destination"]
    outputs = files_under(data / "files" / "outputs")
    assert [str(path) for path in outputs] == sorted(job["destination"] for job in jobs.values())
    for path in outputs:  # whole: decodes to the end, at the size asked for
        image = pyvips.Image.new_from_file(str(path), fail_on="warning")
        assert (image.width, image.height) == (512, 512) and image.avg() > 0


MAX_PIXELS = 4_000_000
"""The service's limit in the bad inputs' test: a 3000×3000 image is a bomb."""
MAX_BYTES = 1_000_000
"""The service's limit of file sizes in the bad inputs' test."""
REFUSED = {"empty.png": (400, "usage", "the upload is empty"),
           "oversized.jpg": (413, "limit", "over the limit"),
           "header-only.jpg": (415, "input", "premature end of JPEG"),
           "random.jpg": (415, "input", "not a recognised image format"),
           "text.jpg": (415, "input", "text file, not an image"),
           "bitmap.png": (415, "input", "BMP data is corrupt or truncated"),
           "no-width.png": (415, "input", "no-width.png"),
           "claims-huge.png": (413, "limit", "(max_pixels)"),
           "bomb.png": (413, "limit", "9,000,000 pixels is over the limit")}  # fmt: skip
"""Uploads the API refuses itself, from the file's header, before a job is queued: status,
error kind and words of the message (the same files from the storage fail in their jobs)."""


def bad_inputs(folder: Path) -> dict[str, tuple[bytes, str, str]]:
    """Bad inputs by file name: (content, the error kind its job must fail with, words its
    message must hold)."""
    made = {name: path.read_bytes() for name, path in corpus(folder).items()}
    garbled = bytearray(photo(400, 300).pngsave_buffer())
    for index in range(len(garbled) // 2, len(garbled) // 2 + 64):
        garbled[index] ^= 0x5A
    return {
        "empty.png": (made["empty.png"], "input", "empty file (0 bytes)"),
        "truncated.jpg": (made["truncated.jpg"], "input", "corrupt or truncated"),
        "truncated.png": (made["truncated.png"], "input", "corrupt or truncated"),
        "header-only.jpg": (made["truncated.jpg"][:300], "input", "premature end of JPEG"),
        "garbled.png": (bytes(garbled), "input", "corrupt or truncated"),  # corrupt mid-stream
        "random.jpg": (made["random.jpg"], "input", "not a recognised image format"),
        "text.jpg": (made["text.jpg"], "input", "text file, not an image"),
        "bitmap.png": (made["bitmap.png"], "input", "BMP data is corrupt or truncated"),
        "no-width.png": (png_claiming(0, 10), "input", "no-width.png"),
        "claims-huge.png": (made["huge.png"], "limit", "(max_pixels)"),
        "bomb.png": (pyvips.Image.black(3000, 3000).pngsave_buffer(compression=9), "limit",
                     "9,000,000 pixels is over the limit"),  # a few KB, 9 MP decoded
        "oversized.jpg": (os.urandom(MAX_BYTES + 1), "limit", "(max_bytes)"),
    }  # fmt: skip


@pytest.mark.timeout(180)
def test_a_hundred_bad_inputs_fail_with_their_reason_and_no_worker_dies(
    tmp_path, processes
) -> None:
    """100 bad inputs of a dozen kinds, half uploaded and half already in the storage, to
    ``pixelmill serve --workers 2`` on SQLite, with low limits so a decompression bomb is cheap.
    The API refuses the uploads whose header is wrong with a clear 4xx; every other job fails
    at its first attempt (not retried, not dead) with its reason. Both workers live on, a good
    job afterwards succeeds, and no output, whole or partial, is left by the bad ones."""
    data = tmp_path / "data"
    inputs = bad_inputs(tmp_path / "made")
    (data / "files" / "in").mkdir(parents=True)
    for name, (content, _, _) in inputs.items():
        (data / "files" / "in" / name).write_bytes(content)
    limits = {"PIXELMILL_MAX_PIXELS": str(MAX_PIXELS), "PIXELMILL_MAX_BYTES": str(MAX_BYTES)}
    server, base = serve(processes, "api", free_port(), data, "--workers", "2", env=limits)
    workers = worker_children(server.pid)
    processes.adopt(workers)
    assert len(workers) == 2, f"workers of serve: {workers}"

    names = sorted(inputs)  # each kind both ways in turn: uploaded, then from the storage
    expected: dict[str, str] = {}  # job id → name of its input
    for n in range(100):
        name, upload = names[n // 2 % len(names)], n % 2 == 0
        if upload:
            made = httpx.post(f"{base}/v1/jobs/upload", files={"file": (name, inputs[name][0])},
                              data={"pipeline": "resize:fit:100"})  # fmt: skip
        else:
            made = httpx.post(f"{base}/v1/jobs", json={"sources": [f"in/{name}"],
                                                       "pipeline": "resize:fit:100"})  # fmt: skip
        if upload and name in REFUSED:
            status, kind, words = REFUSED[name]
            assert made.status_code == status, (name, made.status_code, made.text)
            detail = made.json()["detail"]
            assert detail["kind"] == kind and words in detail["message"], (name, detail)
        else:
            assert made.status_code == 202, (name, made.text)
            expected[made.json()["id"]] = name

    deadline = time.monotonic() + 90
    while True:
        jobs = all_jobs(base)
        if not (unfinished := [n for i, n in expected.items() if jobs[i]["state"] not in FINAL]):
            break
        assert time.monotonic() < deadline, f"bad jobs unfinished: {unfinished}"
        assert server.poll() is None, server.tail()
        time.sleep(0.3)
    for job_id, name in expected.items():
        job, (_, kind, words) = jobs[job_id], inputs[name]
        assert (job["state"], job["attempts"]) == ("failed", 1), (name, job)
        assert job["error"]["kind"] == kind and words in job["error"]["message"], (name, job)
    assert [pid for pid in workers if not alive(pid)] == [], server.tail()
    assert worker_children(server.pid) == workers  # none died, none was started in its place

    good = httpx.post(f"{base}/v1/jobs/upload", data={"pipeline": "resize:fit:64/encode:png"},
                      files={"file": ("good.jpg", photo(320, 240).jpegsave_buffer())})  # fmt: skip
    assert good.status_code == 202, good.text
    deadline = time.monotonic() + 60
    while (job := httpx.get(base + good.json()["links"]["self"]).json())["state"] not in FINAL:
        assert time.monotonic() < deadline, job
        time.sleep(0.2)
    assert job["state"] == "succeeded", job
    outputs = files_under(data / "files" / "outputs")
    assert [str(path) for path in outputs] == [job["destination"]]  # nothing from the bad jobs
    assert pyvips.Image.new_from_file(job["destination"]).width == 64
    assert not [path for path in files_under(data / "files") if path.name.endswith(".part")]
