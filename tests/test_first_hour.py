"""What a new user meets first: ``pixelmill submit`` round-tripping an image through a real
``pixelmill serve``, uploads that are not images refused at once, ``HEAD`` on outputs, ``/``
leading to the docs, an access log line per request, and the small things the commands say."""

from __future__ import annotations

import json
import logging
from importlib.resources import files
from pathlib import Path

import pytest
import pyvips
from conftest import photo
from fastapi.testclient import TestClient
from test_service import free_port
from test_service_reliability import processes, serve  # noqa: F401  (fixture)

from pixelmill.config import Settings
from pixelmill.jobs.queue import JobQueue
from pixelmill.jobs.worker import Worker
from pixelmill.service.app import create_app

SAMPLE = str(files("pixelmill") / "data" / "sample.jpg")


def test_submit_round_trips_the_sample_through_serve(tmp_path, processes, cli,  # noqa: F811
                                                     monkeypatch) -> None:  # fmt: skip
    data = tmp_path / "data"
    server, base = serve(processes, "serve", free_port(), data, "--workers", "1")
    monkeypatch.chdir(tmp_path)
    status, _, err = cli("submit", SAMPLE, "-p", "resize:fit:100/encode:webp", "--server", base)
    assert status == 0, err
    assert "wrote sample.webp (webp, 100×100" in err
    assert pyvips.Image.new_from_file(str(tmp_path / "sample.webp")).width == 100
    status, out, _ = cli("submit", SAMPLE, "--server", base, "--no-wait")
    assert status == 0 and len(out.strip()) == 32  # the job id
    (tmp_path / "notes.jpg").write_text("not a photograph")
    status, _, err = cli("submit", tmp_path / "notes.jpg", "--server", base, "-o", "x.png")
    assert status == 3 and "the service refused" in err and "text file" in err
    status, _, err = cli("submit", SAMPLE, "-p", "resize:fitt:100", "--server", base)
    assert status == 2 and "fitt" in err
    status, _, err = cli("submit", SAMPLE, "--server", f"http://127.0.0.1:{free_port()}")
    assert status == 2 and "is pixelmill serve running there" in err
    assert not (tmp_path / "x.png").exists()
    server.terminate()
    server.wait(30)
    log = server.log.read_text()
    assert '"logger": "pixelmill.access"' in log and '"key": null' in log
    assert '"message": "shutting down"' in log and "went back to the queue" in log


@pytest.fixture
def client(tmp_path):
    settings = Settings(data_dir=str(tmp_path / "data"))
    with TestClient(create_app(settings)) as made:
        yield made, settings


def test_uploads_that_are_not_images_are_refused_at_once(client, tmp_path) -> None:
    made, settings = client
    refused = made.post("/v1/jobs/upload", files={"file": ("a.jpg", b"hello, not an image")})
    assert refused.status_code == 415 and "text file" in refused.json()["detail"]["message"]
    uploads = tmp_path / "data" / "files" / "uploads"
    assert not any(p.is_file() for p in uploads.rglob("*")) if uploads.exists() else True
    assert JobQueue.of(settings).counts().get("queued", 0) == 0


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_head_on_an_output_and_the_index_and_the_access_log(client) -> None:
    made, settings = client
    image = photo(80, 60).jpegsave_buffer()
    job = made.post("/v1/jobs/upload", files={"file": ("p.jpg", image)},
                    data={"pipeline": "encode:png"}).json()  # fmt: skip
    Worker(JobQueue.of(settings), settings, name="w").run_one()
    got = made.get(f"/v1/jobs/{job['id']}/output")
    access, lines = logging.getLogger("pixelmill.access"), Lines()
    access.addHandler(lines)
    level = access.level
    access.setLevel(logging.INFO)
    try:
        head = made.head(f"/v1/jobs/{job['id']}/output")
    finally:
        access.removeHandler(lines)
        access.setLevel(level)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-type"] == "image/png"
    assert head.headers["content-length"] == str(len(got.content))
    line = lines.records[0]
    assert (line.method, line.status, line.key) == ("HEAD", 200, None)
    assert line.path == f"/v1/jobs/{job['id']}/output" and line.seconds >= 0
    index = made.get("/", follow_redirects=False)
    assert index.status_code == 307 and index.headers["location"] == "/docs"


def test_the_commands_say_what_they_do(cli, tmp_path, monkeypatch) -> None:
    status, out, _ = cli("models", "list")
    assert out.splitlines()[0].split() == ["name", "version", "scale", "task", "origin"]
    status, out, _ = cli("models", "info", "sr-x2")
    assert status == 0 and "×" in out and "\\u00d7" not in out
    photo(80, 60).pngsave(str(tmp_path / "small.png"))
    photo(160, 120).pngsave(str(tmp_path / "big.png"))
    status, _, err = cli("compare", tmp_path / "small.png", tmp_path / "big.png")
    assert status == 0 and "the images differ in size (80×60 and 160×120)" in err
    monkeypatch.setenv("PIXELMILL_SIGNING_KEYS", "secret")
    status, out, err = cli("sign", "resize:fit:100", str(tmp_path / "missing.jpg"))
    assert status == 0 and out.startswith("/img/")
    assert "does not exist" in err and "same signing keys" in err
    status, out, _ = cli("run", "--help")
    assert "Without -p" in out and "pixelmill run photo.heic photo.jpg" in out
    assert json.loads(cli("formats", "--json")[1])[0]["format"] == "jpeg"


def test_the_readmes_python_snippet_runs_as_written(tmp_path, cli, monkeypatch) -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    start = readme.index("```python", readme.index("From Python, after")) + len("```python")
    snippet = readme[start : readme.index("```", start)]
    monkeypatch.chdir(tmp_path)
    assert cli("sample", "photo.jpg")[0] == 0
    exec(compile(snippet, "README.md", "exec"), {})  # noqa: S102  (our own README)
    assert (tmp_path / "photo.avif").exists() and (tmp_path / "out" / "photo.png").exists()


def test_hints_name_only_what_this_build_writes(tmp_path, cli) -> None:
    photo(40, 30, bands=4).pngsave(str(tmp_path / "alpha.png"))
    status, _, err = cli("run", tmp_path / "alpha.png", tmp_path / "out.jpg")
    assert status == 2 and "flatten" in err and "png" in err and "jxl" in err
    assert "heic" not in err  # this build cannot write it


def test_a_missing_storage_package_names_the_extra(cli) -> None:
    status, _, err = cli("info", "gs://bucket/photo.jpg")
    assert status == 5 and "pip install 'pixelmill[gcs]'" in err
