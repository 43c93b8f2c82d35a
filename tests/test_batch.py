"""``pixelmill batch``: the manifest and resume on both databases with the local engine, and on a
real Ray cluster of two nodes on loopback: hundreds of images with bad ones among them, a
driver killed with SIGKILL and resumed, and an actor killed in the middle of an item."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import pyvips
import sqlalchemy as sa

from pixelmill import batch
from pixelmill.batch.manifest import items
from pixelmill.config import Settings
from pixelmill.errors import UsageError
from pixelmill.usage import Usage

PIPELINE = "thumbnail:24/encode:png"
SLOW = "scale:4/noise:20/blur:2/thumbnail:64/encode:png"
"""Long enough an item (about 0.3 s) to kill something in the middle of the run."""


def images(folder: Path, count: int, side: int = 48, bad: int = 0) -> Path:
    """``count`` small distinct PNGs below ``folder`` (a tenth in a subfolder), and ``bad``
    broken files among them."""
    for i in range(count):
        path = folder / ("deep" if i % 10 == 0 else "") / f"img{i:04}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        image = pyvips.Image.black(side, side, bands=3) + [i % 256, (i * 7) % 256, 90]
        image.cast("uchar").copy(interpretation="srgb").write_to_file(str(path))
    for i in range(bad):
        (folder / f"broken{i}.jpg").write_bytes(b"\xff\xd8\xff\xe0" + os.urandom(40))
    return folder


def outputs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def rows(db: str, run_id: str) -> list[sa.Row]:
    engine = sa.create_engine(db.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.select(items).where(items.c.run_id == run_id)))
    finally:
        engine.dispose()


# --- the local engine ---------------------------------------------------------------------


def test_a_run_records_every_item_and_a_resume_skips_what_succeeded(tmp_path: Path,
                                                                    database_url: str) -> None:  # fmt: skip
    src = images(tmp_path / "src", 40, bad=2)
    settings = Settings(db=database_url, data_dir=str(tmp_path / "data"))
    first = batch.run(str(src), str(tmp_path / "out"), PIPELINE, engine=batch.Local(2),
                      settings=settings, run_id="r1")  # fmt: skip
    assert (first.succeeded, sum(first.failed.values()), first.skipped) == (40, 2, 0)
    assert dict(first.failed) == {"input": 2} and first.exit_code == 1
    recorded = {row.source: row for row in rows(database_url, "r1")}
    assert len(recorded) == 42
    for path in outputs(tmp_path / "out"):
        source = str(src / path.relative_to(tmp_path / "out"))
        row = recorded[source]
        assert row.state == "succeeded" and row.destination == str(path)
        assert row.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
        assert row.outcome["width"] == 24
        assert row.usage["bytes_written"] == path.stat().st_size and row.usage["ref"] == "r1"
    broken = recorded[str(src / "broken0.jpg")]
    assert (broken.state, broken.error_kind) == ("failed", "input") and "broken0.jpg" in broken.error
    assert broken.usage["failed"] and broken.usage["cpu_seconds"] >= 0
    used = Usage.of(settings).report(0, by="origin")
    assert [(r["group"], r["work"], r["failed"]) for r in used.rows] == [("batch", 42, 2)]

    again = batch.run(str(src), str(tmp_path / "out"), PIPELINE, engine=batch.Local(1),
                      settings=settings, run_id="r1", resume=True)  # fmt: skip
    assert (again.succeeded, sum(again.failed.values()), again.skipped) == (0, 2, 40)
    assert again.attempt == 2


def test_a_run_id_is_one_run(tmp_path: Path) -> None:
    src = images(tmp_path / "src", 3)
    settings = Settings(data_dir=str(tmp_path / "data"))
    batch.run(str(src), str(tmp_path / "out"), PIPELINE, engine=batch.Local(), settings=settings,
              run_id="same")  # fmt: skip
    with pytest.raises(UsageError, match="run 'same' exists; add --resume"):
        batch.run(str(src), str(tmp_path / "out"), PIPELINE, engine=batch.Local(),
                  settings=settings, run_id="same")  # fmt: skip
    with pytest.raises(UsageError, match="resume it with the same source, destination and "):
        batch.run(str(src), str(tmp_path / "out"), "thumbnail:8", engine=batch.Local(),
                  settings=settings, run_id="same", resume=True)  # fmt: skip
    with pytest.raises(UsageError, match="--resume needs the --run-id"):
        batch.run(str(src), str(tmp_path / "out"), PIPELINE, engine=batch.Local(),
                  settings=settings, resume=True)  # fmt: skip


def test_a_cluster_that_does_not_answer_is_refused_at_once_and_the_run_can_start_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    pytest.importorskip("ray")
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    src = images(tmp_path / "src", 2)
    settings = Settings(data_dir=str(tmp_path / "data"))
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{closed.getsockname()[1]}"
        with pytest.raises(UsageError, match=f"Ray cluster {address}: nothing answers there"):
            batch.run(str(src), str(tmp_path / "out"), PIPELINE, engine=batch.Ray(address),
                      settings=settings, run_id="again")  # fmt: skip
    summary = batch.run(str(src), str(tmp_path / "out"), PIPELINE, engine=batch.Local(),
                        settings=settings, run_id="again")  # nothing ran: no --resume needed
    assert (summary.succeeded, summary.attempt) == (2, 2)


def test_two_sources_of_one_output_write_it_once(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    pyvips.Image.black(8, 8).write_to_file(str(src / "a.png"))
    pyvips.Image.black(8, 8).write_to_file(str(src / "a.jpg"))
    summary = batch.run(str(src), str(tmp_path / "out"), "encode:webp", engine=batch.Local(),
                        settings=Settings(data_dir=str(tmp_path / "data")), run_id="c")  # fmt: skip
    assert summary.succeeded == 1 and dict(summary.failed) == {"usage": 1}
    assert "would both be written to" in summary.failures[0].error
    assert [p.name for p in outputs(tmp_path / "out")] == ["a.webp"]


def test_an_output_leaving_the_destination_through_a_link_fails(tmp_path: Path) -> None:
    src = images(tmp_path / "src", 12)
    (tmp_path / "out").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "out" / "deep").symlink_to(tmp_path / "elsewhere")
    summary = batch.run(str(src), str(tmp_path / "out"), PIPELINE, engine=batch.Local(),
                        settings=Settings(data_dir=str(tmp_path / "data")), run_id="l")  # fmt: skip
    assert summary.succeeded == 10 and sum(summary.failed.values()) == 2
    assert not list((tmp_path / "elsewhere").iterdir())


def test_the_command_prints_a_json_summary_and_fills_a_dataset(tmp_path: Path, cli) -> None:
    src = images(tmp_path / "src", 5, bad=1)
    data = ["--config", _config(tmp_path)]
    code, out, err = cli(*data, "batch", src, tmp_path / "out", "-p", PIPELINE, "--engine",
                         "local", "--dataset", "thumbs", "--run-id", "j", "--json")  # fmt: skip
    summary = json.loads(out)
    assert code == 1, err
    assert {k: summary[k] for k in ("succeeded", "failed", "skipped")} == \
        {"succeeded": 5, "failed": 1, "skipped": 0}  # fmt: skip
    assert summary["seconds"] > 0 and summary["failed_by_kind"] == {"input": 1}
    code, out, _ = cli(*data, "datasets", "list", "--json")
    assert code == 0 and "thumbs" in out
    code, out, err = cli(*data, "batch", src / "img0001.png", tmp_path / "o2", "--engine",
                         "local")  # fmt: skip
    assert code == 2 and "is not a folder or storage prefix" in err
    code, out, err = cli(*data, "batch", src, tmp_path / "o3", "--engine", "local", "--address",
                         "auto")  # fmt: skip
    assert code == 2 and "--address and --gpus-per-task are for --engine ray" in err
    code, out, err = cli(*data, "batch", src, tmp_path / "o4", "-p", "model:nonesuch")
    assert code == 2 and "unknown model 'nonesuch'" in err and not (tmp_path / "o4").exists()


def _config(tmp_path: Path) -> str:
    path = tmp_path / "pixelmill.toml"
    path.write_text(f'data_dir = "{tmp_path / "data"}"\n')
    return str(path)


# --- a Ray cluster ------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A Ray cluster of two nodes on loopback (a head with 2 CPUs, a worker node with 1), each
    started by ``ray start --block`` in a session of its own, stopped with it."""
    pytest.importorskip("ray")
    ray = str(Path(sys.executable).parent / "ray")
    folder = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's sockets live there
    port = _free_port()
    address = f"127.0.0.1:{port}"
    common = ["--block", "--disable-usage-stats", "--object-store-memory", str(80 * 2**20)]
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    head = subprocess.Popen([ray, "start", "--head", "--node-ip-address", "127.0.0.1", "--port",
                             str(port), "--num-cpus", "2", "--include-dashboard", "false",
                             "--temp-dir", folder, *common], start_new_session=True, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    nodes = [head]
    try:
        _wait_for_cpus(address, 2, env)
        nodes.append(subprocess.Popen([ray, "start", "--address", address, "--node-ip-address",
                                       "127.0.0.1", "--num-cpus", "1", *common],
                                      start_new_session=True, env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))  # fmt: skip
        _wait_for_cpus(address, 3, env)
        yield address
    finally:
        for node in reversed(nodes):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(node.pid, signal.SIGTERM)
            try:
                node.wait(30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(node.pid, signal.SIGKILL)
        shutil.rmtree(folder, ignore_errors=True)


def _wait_for_cpus(address: str, cpus: int, env: dict[str, str]) -> None:
    probe = ("import ray, sys; ray.init(address=sys.argv[1], log_to_driver=False); "
             "print(int(ray.cluster_resources().get('CPU', 0)))")  # fmt: skip
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        done = subprocess.run([sys.executable, "-c", probe, address], capture_output=True,
                              text=True, env=env, check=False)  # fmt: skip
        if done.returncode == 0 and int(done.stdout.split()[-1]) >= cpus:
            return
        time.sleep(1)
    raise RuntimeError(f"the Ray cluster at {address} did not reach {cpus} CPUs: {done.stderr}")


def _batch(tmp_path: Path, address: str, *args: str) -> subprocess.Popen:
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "PIXELMILL_DATA_DIR": str(tmp_path / "data")}
    return subprocess.Popen([sys.executable, "-m", "pixelmill", "batch", str(tmp_path / "src"),
                             str(tmp_path / "out"), "--engine", "ray", "--address", address,
                             "--json", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip


def _finished(process: subprocess.Popen) -> dict:
    out, err = process.communicate(timeout=300)
    assert process.returncode in (0, 1), err
    return json.loads(out.strip().splitlines()[-1])


def _succeeded(tmp_path: Path, run_id: str) -> int:
    db = f"sqlite:///{tmp_path / 'data' / 'jobs.db'}"
    if not (tmp_path / "data" / "jobs.db").exists():
        return 0
    return sum(row.state == "succeeded" for row in rows(db, run_id))


def test_without_an_address_ray_starts_on_this_machine_for_the_run(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch
                                                                   ) -> None:  # fmt: skip
    ray = pytest.importorskip("ray")
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    src = images(tmp_path / "src", 6, bad=1)
    summary = batch.run(str(src), str(tmp_path / "out"), PIPELINE, engine=batch.Ray(workers=1),
                        settings=Settings(data_dir=str(tmp_path / "data")), run_id="here")  # fmt: skip
    assert (summary.succeeded, dict(summary.failed)) == (6, {"input": 1})
    assert not ray.is_initialized()  # stopped after the run


def test_ray_runs_hundreds_of_images_with_bad_ones_among_them(tmp_path: Path,
                                                              cluster: str) -> None:  # fmt: skip
    images(tmp_path / "src", 300, bad=3)
    summary = _finished(_batch(tmp_path, cluster, "-p", PIPELINE, "--run-id", "many"))
    assert (summary["succeeded"], summary["failed"], summary["skipped"]) == (300, 3, 0)
    assert summary["failed_by_kind"] == {"input": 3} and summary["engine"] == "ray"
    assert len(outputs(tmp_path / "out")) == 300


def test_a_driver_killed_mid_run_resumes_with_only_what_is_missing(tmp_path: Path,
                                                                   cluster: str) -> None:  # fmt: skip
    images(tmp_path / "src", 120)
    driver = _batch(tmp_path, cluster, "-p", SLOW, "--run-id", "killed")
    deadline = time.monotonic() + 120
    while _succeeded(tmp_path, "killed") < 20 and time.monotonic() < deadline:
        assert driver.poll() is None, driver.communicate()[1]
        time.sleep(0.2)
    driver.kill()
    driver.wait()
    done_before = _succeeded(tmp_path, "killed")
    assert 20 <= done_before < 120
    summary = _finished(_batch(tmp_path, cluster, "-p", SLOW, "--run-id", "killed", "--resume"))
    assert summary["failed"] == 0 and summary["skipped"] == done_before
    assert summary["succeeded"] + summary["skipped"] == 120
    written = outputs(tmp_path / "out")
    assert len(written) == 120 and all(p.suffix == ".png" for p in written)  # no spool left
    assert _succeeded(tmp_path, "killed") == 120


def test_an_actor_killed_mid_item_costs_nothing(tmp_path: Path, cluster: str) -> None:
    images(tmp_path / "src", 120)
    driver = _batch(tmp_path, cluster, "-p", SLOW, "--run-id", "actor")
    killed = None
    deadline = time.monotonic() + 120
    while killed is None and time.monotonic() < deadline and driver.poll() is None:
        busy = [p for p in psutil.process_iter(["cmdline"])
                if "ray::Worker.process" in " ".join(p.info["cmdline"] or [])]  # fmt: skip
        if busy and _succeeded(tmp_path, "actor") >= 10:
            killed = busy[0]
            killed.kill()
        time.sleep(0.05)
    assert killed is not None, "no actor was seen at work"
    summary = _finished(driver)
    assert (summary["succeeded"], summary["failed"]) == (120, 0)
    assert len(outputs(tmp_path / "out")) == 120
