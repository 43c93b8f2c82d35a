"""The jobs API: in process for its rules (FastAPI's test client, no workers), and end to end
with ``pixelmill serve`` on a real port: upload an image, poll the job, download the result."""

from __future__ import annotations

import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import pyvips
from conftest import photo
from fastapi.testclient import TestClient

from pixelmill.config import Settings
from pixelmill.service.app import create_app


@pytest.fixture
def settings(tmp_path):
    return Settings(data_dir=str(tmp_path / "data"))


@pytest.fixture
def client(settings):
    with TestClient(create_app(settings)) as made:
        yield made


def test_jobs_are_queued_listed_and_cancelled(client, settings) -> None:
    image = photo(64, 48).pngsave_buffer()
    made = client.post("/v1/jobs/upload", files={"file": ("cat.png", image)},
                       data={"pipeline": "resize:fit:32/encode:webp", "priority": "3"})  # fmt: skip
    assert made.status_code == 202, made.text
    job = made.json()
    assert job["state"] == "queued" and job["priority"] == 3
    assert job["destination"].endswith(f"/outputs/{job['id']}/cat.webp")
    assert job["source"].startswith(settings.storage_root)
    twice = {"sources": [job["source"]] * 2, "pipeline": "grayscale", "idempotency_key": "k"}
    batch = client.post("/v1/jobs", json=twice)
    assert batch.status_code == 202 and len(batch.json()["jobs"]) == 2
    again = client.post("/v1/jobs", json=twice)
    assert [j["id"] for j in again.json()["jobs"]] == [j["id"] for j in batch.json()["jobs"]]
    listed = client.get("/v1/jobs", params={"batch": batch.json()["batch"]}).json()["jobs"]
    assert len(listed) == 2
    assert client.get(f"/v1/jobs/{job['id']}").json()["id"] == job["id"]
    assert client.delete(f"/v1/jobs/{job['id']}").json()["state"] == "cancelled"
    assert client.get("/readyz").json()["jobs"]["cancelled"] == 1


@pytest.mark.parametrize(("body", "status", "kind"), [
    ({"sources": ["/etc/passwd"]}, 400, "usage"),
    ({"sources": ["uploads/../../../etc/passwd"]}, 400, "usage"),
    ({"sources": ["uploads/a.png"], "destination": "/tmp/elsewhere.png"}, 400, "usage"),
    ({"sources": ["uploads/a.png"], "pipeline": "resize:fitt:10"}, 422, "pipeline"),
    ({"sources": ["uploads/a.png"], "destination": "{nope}.png"}, 400, "usage"),
])  # fmt: skip
def test_refusals_are_clear_json(client, body, status, kind) -> None:
    answer = client.post("/v1/jobs", json=body)
    assert answer.status_code == status, answer.text
    assert answer.json()["detail"]["kind"] == kind and answer.json()["detail"]["message"]


def test_missing_jobs_and_unfinished_outputs(client, settings) -> None:
    assert client.get("/v1/jobs/nope").status_code == 404
    made = client.post("/v1/jobs/upload", files={"file": ("a.png", photo(8, 8).pngsave_buffer())})
    answer = client.get(f"/v1/jobs/{made.json()['id']}/output")
    assert answer.status_code == 409 and answer.json()["detail"]["kind"] == "state"
    assert client.post("/v1/jobs/upload", files={"file": ("e.png", b"")}).status_code == 400
    uploads = Path(settings.storage_root) / "uploads"
    assert len([p for p in uploads.rglob("*") if p.is_file()]) == 1  # the empty one was not kept
    assert client.post("/v1/jobs", json={"sources": []}).status_code == 422


def test_upload_over_the_size_limit_is_refused(tmp_path) -> None:
    small = Settings(data_dir=str(tmp_path / "data"), max_bytes=1000)
    with TestClient(create_app(small)) as client:
        big = photo(200, 200).pngsave_buffer()
        answer = client.post("/v1/jobs/upload", files={"file": ("big.png", big)})
    assert answer.status_code == 413 and answer.json()["detail"]["kind"] == "limit"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def readme_main_command() -> list[str]:
    """The arguments of ``pixelmill`` in the README's first command (install, then start)."""
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    first = readme.split("```sh\n", 1)[1].split("\n```", 1)[0]
    assert first.count("\n") == 0 and "pip install" in first, first
    return shlex.split(first.rsplit("&& .venv/bin/pixelmill ", 1)[1])


def test_the_readme_main_command_serves_a_job_from_upload_to_download(tmp_path) -> None:
    """The README's main command (on a free port and a fresh data folder) starts the service;
    an image is uploaded, its job polled and its output downloaded."""
    args = readme_main_command()
    assert args[0] == "serve"
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "pixelmill", *args, "--port", str(port),
                               "--data-dir", str(tmp_path / "data")],
                              stderr=subprocess.PIPE, text=True)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                assert time.monotonic() < deadline and server.poll() is None, "no server"
                time.sleep(0.2)
        made = httpx.post(f"{base}/v1/jobs/upload",
                          files={"file": ("photo.png", photo(320, 240).pngsave_buffer())},
                          data={"pipeline": "resize:fit:160/encode:webp:q=80"})  # fmt: skip
        assert made.status_code == 202, made.text
        link = made.json()["links"]["self"]
        while (job := httpx.get(base + link, params={"wait": 20},  # long polls
                                timeout=60).json())["state"] in ("queued", "running"):
            assert time.monotonic() < deadline + 60
        assert job["state"] == "succeeded" and job["progress"] == 100, job
        assert job["output"]["width"] == 160 and job["output"]["format"] == "webp"
        assert {"open", "graph", "render", "store"} <= set(job["timings"]), job["timings"]
        # the worker's figures reach the API's /metrics (prometheus_client multiprocess mode)
        text = httpx.get(f"{base}/metrics").text
        stage = {"origin": "job", "stage": "render"}
        assert sample(text, "pixelmill_stage_seconds_count", **stage) == 1
        assert sample(text, "pixelmill_bytes_out_total", origin="job") == job["output"]["bytes"]
        download = httpx.get(base + job["links"]["output"])
        assert download.status_code == 200 and download.headers["content-type"] == "image/webp"
        image = pyvips.Image.new_from_buffer(download.content, "")
        assert (image.width, image.height) == (160, 120)
        assert httpx.get(f"{base}/docs").status_code == 200
    finally:
        server.terminate()
        assert server.wait(30) == 0, server.stderr.read()


@pytest.fixture
def signed(tmp_path):
    """A client of a service with two signing keys (the first signs), and a photograph in its
    storage."""
    settings = Settings(data_dir=str(tmp_path / "data"), signing_keys="new-secret, old-secret")
    (tmp_path / "data" / "files").mkdir(parents=True)
    photo(400, 300).write_to_file(str(tmp_path / "data" / "files" / "p.jpg"))
    with TestClient(create_app(settings)) as client:
        yield client, settings, str(tmp_path / "data" / "files" / "p.jpg")


def test_signed_urls_render_once_then_come_from_the_cache(signed, tmp_path) -> None:
    from pixelmill.service.ondemand import signed_path

    client, _, source = signed
    path = signed_path("new-secret", "resize:fit:100/encode:webp:q=70", source)
    first = client.get(path)
    assert first.status_code == 200, first.text
    assert first.headers["content-type"] == "image/webp" and first.headers["vary"] == "Accept"
    assert pyvips.Image.new_from_buffer(first.content, "").width == 100
    cache = tmp_path / "data" / "files" / "cache"
    made = [p for p in cache.rglob("*") if p.is_file()]
    assert len(made) == 1 and first.headers["etag"].strip('"') in made[0].name
    again = client.get(path)
    assert again.content == first.content and again.headers["etag"] == first.headers["etag"]
    assert [p for p in cache.rglob("*") if p.is_file()] == made  # not rendered twice
    unchanged = client.get(path, headers={"If-None-Match": first.headers["etag"]})
    assert unchanged.status_code == 304
    assert client.get(signed_path("old-secret", "resize:fit:100/encode:webp:q=70",
                                  source)).status_code == 200  # a rotated key still verifies


@pytest.mark.parametrize("tamper", ["signature", "pipeline", "outside", "loopback", "garbage"])
def test_unsigned_or_unsafe_urls_are_refused(signed, tamper) -> None:
    from pixelmill.service.ondemand import signature, signed_path

    client, _, source = signed
    path = signed_path("new-secret", "resize:fit:100", source)
    if tamper == "signature":
        path = signed_path("stolen", "resize:fit:100", source)
    elif tamper == "pipeline":
        path = path.replace("fit:100", "fit:4000")
    elif tamper == "outside":
        path = signed_path("new-secret", "resize:fit:100", "/etc/passwd")
    elif tamper == "loopback":
        path = signed_path("new-secret", "resize:fit:100", "http://127.0.0.1/p.jpg")
    else:
        path = f"/img/{signature('new-secret', 'resize:fit:100/%%%')}/resize:fit:100/%%%"
    answer = client.get(path)
    assert answer.status_code in (400, 403), answer.text
    assert answer.json()["detail"]["kind"] in ("signature", "source", "usage")


def test_private_hosts_are_refused_even_below_an_allowed_prefix(tmp_path) -> None:
    from pixelmill.service.ondemand import signed_path

    settings = Settings(data_dir=str(tmp_path / "data"), signing_keys="k",
                        sources="http://127.0.0.1:9/")  # fmt: skip
    with TestClient(create_app(settings)) as client:
        answer = client.get(signed_path("k", "", "http://127.0.0.1:9/p.jpg"))
    assert answer.status_code == 403 and "loopback" in answer.json()["detail"]["message"]


def test_sign_prints_a_url_the_service_accepts(cli, signed, monkeypatch) -> None:
    client, _, source = signed
    monkeypatch.setenv("PIXELMILL_SIGNING_KEYS", "new-secret")
    status, out, _ = cli("sign", "resize:fit:64/encode:jpeg", source, "--base", "http://x")
    assert status == 0 and out.startswith("http://x/img/")
    assert client.get(out.strip().removeprefix("http://x")).status_code == 200
    monkeypatch.delenv("PIXELMILL_SIGNING_KEYS")
    assert cli("sign", "resize:fit:64", source)[0] == 2


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text (0 when absent)."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == name and found.labels == labels:
                return found.value
    return 0.0


def test_metrics_report_the_queue_and_the_requests(client) -> None:
    counted = {"method": "GET", "route": "/v1/jobs/{job_id}", "status": "404"}
    before = sample(client.get("/metrics").text, "pixelmill_http_requests_total", **counted)
    timed = {"method": "POST", "route": "/v1/jobs/upload"}
    timed_before = sample(client.get("/metrics").text, "pixelmill_http_request_seconds_count",
                          **timed)  # fmt: skip
    client.post("/v1/jobs/upload", files={"file": ("a.png", photo(8, 8).pngsave_buffer())})
    client.get("/v1/jobs/nope")
    text = client.get("/metrics").text
    assert 'pixelmill_jobs{state="queued"} 1.0' in text
    assert "pixelmill_queue_depth 1.0" in text
    age = next(line for line in text.splitlines()
               if line.startswith("pixelmill_queue_oldest_age_seconds "))  # fmt: skip
    assert 0 <= float(age.split()[1]) < 60
    assert sample(text, "pixelmill_http_requests_total", **counted) == before + 1
    assert sample(text, "pixelmill_http_request_seconds_count", **timed) == timed_before + 1


@pytest.mark.parametrize(("accept", "media"), [
    ("image/avif,image/webp,image/apng,image/*,*/*;q=0.8", "image/avif"),  # a browser
    ("image/webp,*/*", "image/webp"),
    ("image/avif;q=0,image/webp", "image/webp"),
    ("*/*", "image/jpeg"),  # curl
])  # fmt: skip
def test_encode_auto_follows_the_accept_header(signed, accept, media) -> None:
    from pixelmill.service.ondemand import signed_path

    client, _, source = signed
    answer = client.get(signed_path("new-secret", "resize:fit:100/encode:auto:q=70", source),
                        headers={"Accept": accept})  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == media and answer.headers["vary"] == "Accept"
    decoded = pyvips.Image.new_from_buffer(answer.content, "")
    assert decoded.width == 100
    assert decoded.get("vips-loader").startswith({"image/avif": "heif", "image/webp": "webp",
                                                  "image/jpeg": "jpeg"}[media])  # fmt: skip


def test_encode_auto_keeps_alpha_for_sources_that_may_have_it(tmp_path) -> None:
    from pixelmill.service.ondemand import signed_path

    files = tmp_path / "data" / "files"
    files.mkdir(parents=True)
    photo(64, 64).bandjoin(128).write_to_file(str(files / "logo.png"))
    settings = Settings(data_dir=str(tmp_path / "data"), signing_keys="k")
    with TestClient(create_app(settings)) as client:
        answer = client.get(signed_path("k", "encode:auto", str(files / "logo.png")))
    assert answer.headers["content-type"] == "image/png"
    assert pyvips.Image.new_from_buffer(answer.content, "").hasalpha()


def test_http_sources_are_fetched_when_their_host_is_allowed(tmp_path) -> None:
    """An on-demand image from an http server (on loopback, so allowed explicitly), rendered
    without the cache, also when the server gives no length; a redirect is not followed."""
    import http.server
    import threading
    from functools import partial

    from pixelmill.service.ondemand import signed_path

    site = tmp_path / "site"
    site.mkdir()
    photo(300, 200).write_to_file(str(site / "p.jpg"))

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/moved.jpg":
                self.send_response(302)
                self.send_header("Location", "/p.jpg")
                self.end_headers()
                return
            if self.path == "/streamed.jpg":  # no length: the body ends when the server closes
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                self.end_headers()
                self.wfile.write((site / "p.jpg").read_bytes())
                self.close_connection = True
                return
            super().do_GET()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler,
                                                                       directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}/"
    settings = Settings(data_dir=str(tmp_path / "data"), signing_keys="k", sources=base,
                        allow_private_hosts=True, render_cache=False)  # fmt: skip
    try:
        with TestClient(create_app(settings)) as client:
            answer = client.get(signed_path("k", "resize:fit:150/encode:webp", base + "p.jpg"))
            moved = client.get(signed_path("k", "resize:fit:150/encode:webp", base + "moved.jpg"))
            streamed = client.get(signed_path("k", "resize:fit:150/encode:webp",
                                              base + "streamed.jpg"))  # fmt: skip
        with TestClient(create_app(settings.replace(max_bytes=1000))) as small:
            over = small.get(signed_path("k", "resize:fit:150/encode:webp",
                                         base + "streamed.jpg"))  # fmt: skip
    finally:
        server.shutdown()
        server.server_close()
    assert answer.status_code == 200, answer.text
    assert pyvips.Image.new_from_buffer(answer.content, "").width == 150
    assert answer.headers["etag"] and not (tmp_path / "data" / "files" / "cache").exists()
    assert moved.status_code == 400, moved.text
    assert streamed.status_code == 200, streamed.text
    assert pyvips.Image.new_from_buffer(streamed.content, "").width == 150
    assert over.status_code == 413 and "max_bytes" in over.json()["detail"]["message"]


def test_render_into_memory_gives_the_same_bytes_as_a_file(tmp_path) -> None:
    import pixelmill

    source = tmp_path / "p.jpg"
    photo(300, 200).write_to_file(str(source))
    kept = pixelmill.run(source, tmp_path / "o.webp", "thumbnail:100/encode:webp:q=70")
    held = pixelmill.render(source, "thumbnail:100/encode:webp:q=70")
    assert held.data == (tmp_path / "o.webp").read_bytes() and held.bytes_written == len(held.data)
    assert (held.width, held.format, kept.data) == (100, "webp", None)
    with pytest.raises(pixelmill.PixelmillError, match="needs an encode step"):
        pixelmill.render(source, "thumbnail:100")


def test_workers_end_with_the_serve_that_started_them(tmp_path) -> None:
    """``serve`` killed outright (SIGKILL) leaves no worker behind."""
    import signal

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "pixelmill", "serve", "--port", str(port),
                               "--data-dir", str(tmp_path / "data"), "--workers", "2"],
                              stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 60
    children: list[int] = []
    while len(children) < 2:
        assert time.monotonic() < deadline and server.poll() is None, "no workers"
        time.sleep(0.2)
        found = Path(f"/proc/{server.pid}/task/{server.pid}/children")
        children = [int(pid) for pid in found.read_text().split()] if found.exists() else []
    server.send_signal(signal.SIGKILL)
    server.wait()
    while any(map(alive, children)):
        assert time.monotonic() < deadline, "a worker outlived serve"
        time.sleep(0.2)


def alive(pid: int) -> bool:
    """Whether a process runs (not gone, not a zombie)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_changed_source_is_rendered_anew_even_after_fast_repeats(signed) -> None:
    from pixelmill.service.ondemand import signed_path

    client, _, source = signed
    path = signed_path("new-secret", "resize:fit:100/encode:png", source)
    first = client.get(path)
    assert client.get(path).content == first.content  # served again from memory
    photo(400, 300).invert().write_to_file(source)  # same size, new pixels
    changed = client.get(path)
    assert changed.status_code == 200 and changed.headers["etag"] != first.headers["etag"]
    assert changed.content != first.content


def test_an_encoded_slash_cannot_put_steps_before_a_signed_pipeline(signed) -> None:
    from pixelmill.service.ondemand import signed_path

    client, _, source = signed
    path = signed_path("new-secret", "resize:fit:200", source)
    _, _, sig, rest = path.split("/", 3)
    forged = client.get(f"/img/{sig}%2Fresize:force:20:20/{rest}")
    assert forged.status_code == 403
    assert pyvips.Image.new_from_buffer(client.get(path).content, "").width == 200


def test_encode_auto_with_a_quality_serves_png_where_png_is_chosen(tmp_path) -> None:
    from pixelmill.service.ondemand import signed_path

    files = tmp_path / "data" / "files"
    files.mkdir(parents=True)
    photo(64, 64).write_to_file(str(files / "logo.png"))
    settings = Settings(data_dir=str(tmp_path / "data"), signing_keys="k")
    with TestClient(create_app(settings)) as client:
        answer = client.get(signed_path("k", "encode:auto:q=70", str(files / "logo.png")),
                            headers={"Accept": "*/*"})  # fmt: skip
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"


def test_a_long_poll_answers_when_the_job_ends(client, settings) -> None:
    """``GET /v1/jobs/{id}?wait=S`` answers once the job has ended, or after S seconds."""
    import threading

    from pixelmill.jobs.queue import JobQueue
    from pixelmill.jobs.worker import Worker

    made = client.post("/v1/jobs/upload", files={"file": ("a.png", photo(64, 48).pngsave_buffer())},
                       data={"pipeline": "resize:fit:32"}).json()  # fmt: skip
    link = made["links"]["self"]
    assert client.get(link, params={"wait": 0.3}).json()["state"] == "queued"  # waited, no worker
    queue = JobQueue(settings.job_database)
    later = threading.Timer(0.5, lambda: Worker(queue, settings, name="w").run_one())
    later.start()
    assert client.get(link, params={"wait": 30}).json()["state"] == "succeeded"
    later.join()
    queue.close()
    assert client.get(link, params={"wait": 61}).status_code == 422  # over the longest wait
