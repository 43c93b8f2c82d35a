"""Webhooks: a job that ends calls its URL with its description, signed with HMAC-SHA256; a
receiver that fails is called again with backoff until it answers, and each attempt is recorded
on the job. A real HTTP server on loopback receives them."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import FakeClock, photo
from fastapi.testclient import TestClient

from pixelmill.config import Settings
from pixelmill.jobs.queue import JobQueue
from pixelmill.jobs.webhooks import signature
from pixelmill.jobs.worker import Worker
from pixelmill.service.app import create_app

SECRET = "hook-secret"


class Receiver:
    """An HTTP server that records what is POSTed and fails the first ``failures`` calls."""

    def __init__(self, failures: int = 0) -> None:
        self.calls: list[tuple[dict[str, str], bytes, int]] = []
        self.failures = failures
        received = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = 500 if len(received.calls) < received.failures else 204
                received.calls.append((dict(self.headers), body, status))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def settings(tmp_path):
    return Settings(data_dir=str(tmp_path / "data"), webhook_secret=SECRET,
                    allow_private_hosts=True)  # the receiver is on loopback  # fmt: skip


def work(queue: JobQueue, settings: Settings, until, seconds: float = 30) -> None:
    """Run a worker's loop until ``until()`` holds."""
    worker = Worker(queue, settings, name="w")
    deadline = time.monotonic() + seconds
    while not until():
        assert time.monotonic() < deadline, "not delivered in time"
        if not worker.deliver_one() and worker.run_one() is None:
            time.sleep(0.1)


def test_a_finished_job_calls_its_webhook_signed(settings, tmp_path) -> None:
    receiver = Receiver()
    try:
        with TestClient(create_app(settings)) as client:
            made = client.post("/v1/jobs/upload", data={"webhook": receiver.url,
                                                         "pipeline": "resize:fit:16"},
                               files={"file": ("a.png", photo(32, 32).pngsave_buffer())})
            assert made.status_code == 202, made.text
            queue = JobQueue(settings.job_database)
            work(queue, settings, lambda: receiver.calls)
            job = client.get(f"/v1/jobs/{made.json()['id']}").json()
    finally:
        receiver.close()
    headers, body, _ = receiver.calls[0]
    sent = json.loads(body)
    assert sent["id"] == job["id"] and sent["state"] == "succeeded"
    assert sent["output"]["width"] == 16
    expected = signature(SECRET, headers["X-Pixelmill-Timestamp"], body)
    assert hmac.compare_digest(headers["X-Pixelmill-Signature"], expected)
    by_hand = hmac.new(SECRET.encode(), headers["X-Pixelmill-Timestamp"].encode() + b"." + body,
                       hashlib.sha256).hexdigest()  # fmt: skip
    assert expected == "sha256=" + by_hand
    assert abs(int(headers["X-Pixelmill-Timestamp"]) - time.time()) < 60
    assert job["webhook"] == {"url": receiver.url, "attempts": 1, "status": "delivered (HTTP 204)"}


def test_a_failing_receiver_is_called_again_with_backoff(settings, tmp_path) -> None:
    receiver = Receiver(failures=2)
    clock = FakeClock()
    queue = JobQueue(settings.job_database, clock)
    (tmp_path / "bad.png").write_bytes(b"not an image")
    job = queue.submit({"source": str(tmp_path / "bad.png"),
                        "destination": str(tmp_path / "out.png"), "pipeline": ""},
                       webhook=receiver.url)  # fmt: skip
    worker = Worker(queue, settings, name="w")
    try:
        assert worker.run_one().state == "failed"  # its webhook is due now
        for wait in (2.0, 4.0):  # the receiver fails: again after 2 s, then 4 s
            assert worker.deliver_one()
            assert queue.get(job.id).webhook_due == clock.now() + wait
            clock.advance(wait - 0.1)
            assert not worker.deliver_one()  # not yet
            clock.advance(0.1)
        assert worker.deliver_one()
    finally:
        receiver.close()
        worker.close()
    assert [status for _, _, status in receiver.calls] == [500, 500, 204]
    sent = [json.loads(body) for _, body, _ in receiver.calls]
    assert all(s["id"] == job.id and s["state"] == "failed" and s["error"]["kind"] == "input"
               for s in sent)  # fmt: skip
    ended = queue.get(job.id)
    assert ended.webhook_attempts == 3 and ended.webhook_due is None
    assert ended.webhook_status == "delivered (HTTP 204)"
    queue.close()


def test_webhooks_to_private_hosts_are_refused_unless_allowed(tmp_path) -> None:
    with TestClient(create_app(Settings(data_dir=str(tmp_path / "data")))) as client:
        answer = client.post("/v1/jobs/upload", data={"webhook": "http://127.0.0.1:9/hook"},
                             files={"file": ("a.png", photo(8, 8).pngsave_buffer())})  # fmt: skip
        assert answer.status_code == 400 and "loopback" in answer.json()["detail"]["message"]
        answer = client.post("/v1/jobs", json={"sources": ["a.png"], "webhook": "file:///x"})
        assert answer.status_code == 400 and "http(s)" in answer.json()["detail"]["message"]
        for bad in ("http://8.8.8.8:abc/", "http://[abc"):
            answer = client.post("/v1/jobs", json={"sources": ["a.png"], "webhook": bad})
            assert answer.status_code == 400 and "not a valid URL" in answer.text


def test_a_delivery_that_cannot_be_made_is_a_failed_attempt() -> None:
    from pixelmill.jobs.webhooks import deliver

    assert deliver("http://127.0.0.1:1/hook", {}, SECRET, True)[0] is False  # refused
    delivered, status = deliver("http://8.8.8.8:99999/", {}, SECRET, True)
    assert not delivered and "not a valid URL" in status
