"""API keys and limits of the jobs API: open until the first key, then a key per request
(hashed in the database, revocable), each key's rate and upload size, and the ceiling on request
bodies checked before they are read."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from conftest import photo
from fastapi.testclient import TestClient

from pixelmill.config import Settings
from pixelmill.jobs.queue import JobQueue
from pixelmill.service.app import create_app
from pixelmill.service.auth import ApiKeys


@pytest.fixture
def settings(tmp_path):
    return Settings(data_dir=str(tmp_path / "data"))


@pytest.fixture
def keys(settings):
    queue = JobQueue(settings.job_database)
    yield ApiKeys(queue.engine)
    queue.close()


def upload(client, size=8, **headers):
    image = photo(size, size).pngsave_buffer()
    return client.post("/v1/jobs/upload", files={"file": ("a.png", image)}, headers=headers)


def test_the_first_key_closes_the_api(settings, keys) -> None:
    with TestClient(create_app(settings)) as client:
        assert upload(client).status_code == 202  # no key yet: open
        secret = keys.add("shop")
        kept = sorted(Path(settings.storage_root).rglob("*"))
        missing = upload(client, 300)
        assert missing.status_code == 401 and missing.json()["detail"]["kind"] == "auth"
        assert sorted(Path(settings.storage_root).rglob("*")) == kept  # refused before reading
        assert missing.headers["www-authenticate"] == "Bearer"
        assert upload(client, authorization="Bearer pm_wrong").status_code == 401
        assert upload(client, authorization=f"Bearer {secret}").status_code == 202
        assert client.get("/v1/jobs", headers={"X-API-Key": secret}).status_code == 200
        assert client.get("/healthz").status_code == 200  # probes stay open
        keys.revoke("shop")
        keys.add("other")
        assert upload(client, authorization=f"Bearer {secret}").status_code == 401


def test_keys_are_stored_hashed(settings, keys) -> None:
    secret = keys.add("shop")
    with keys.engine.connect() as db:
        stored = [tuple(row) for row in db.exec_driver_sql("SELECT * FROM pixelmill_api_keys")]
    assert not any(secret in str(value) for row in stored for value in row)
    assert stored[0][1] == hashlib.sha256(secret.encode()).hexdigest()
    with pytest.raises(Exception, match="exists"):
        keys.add("shop")


def test_a_key_over_its_rate_waits(settings, keys) -> None:
    secret = keys.add("slow", rate=3)
    with TestClient(create_app(settings)) as client:
        answers = [client.get("/v1/jobs", headers={"X-API-Key": secret}) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[-1].json()["detail"]["kind"] == "rate"
    assert 1 <= int(answers[-1].headers["retry-after"]) <= 20


def test_a_key_has_its_own_upload_limit(settings, keys) -> None:
    small = keys.add("small", max_bytes=2000)
    large = keys.add("large")
    with TestClient(create_app(settings)) as client:
        refused = upload(client, 200, authorization=f"Bearer {small}")
        assert refused.status_code == 413 and refused.json()["detail"]["kind"] == "limit"
        assert upload(client, 200, authorization=f"Bearer {large}").status_code == 202
    assert not list(Path(settings.storage_root).rglob("*.part"))  # the refused one left nothing


def test_bodies_over_the_ceiling_are_refused_before_they_are_read(tmp_path) -> None:
    settings = Settings(data_dir=str(tmp_path / "data"), max_upload_bytes=50_000)
    with TestClient(create_app(settings)) as client:
        declared = upload(client, 400)
        assert declared.status_code == 413, declared.text
        assert "max_upload_bytes" in declared.json()["detail"]["message"]

        def chunks():  # a well-formed multipart body, streamed without a length
            yield (b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n'
                   b"Content-Type: image/png\r\n\r\n")
            for _ in range(100):
                yield b"x" * 1000
            yield b"\r\n--b--\r\n"

        chunked = client.post("/v1/jobs/upload", content=chunks(),
                              headers={"content-type": "multipart/form-data; boundary=b"})  # fmt: skip
        assert chunked.status_code == 413
        assert upload(client, 16).status_code == 202


def test_keys_command(cli, tmp_path) -> None:
    data = str(tmp_path / "data")
    status, secret, _ = cli("keys", "add", "shop", "--rate", "60", "--data-dir", data)
    assert status == 0 and secret.strip().startswith("pm_")
    status, listed, _ = cli("keys", "list", "--data-dir", data)
    assert status == 0 and "shop" in listed and "rate=60/min" in listed
    assert cli("keys", "revoke", "shop", "--data-dir", data)[0] == 0
    status, _, err = cli("keys", "revoke", "shop", "--data-dir", data)
    assert status == 2 and "no key named 'shop'" in err


def test_each_key_sees_its_own_jobs_alone(settings, keys) -> None:
    shop, other = keys.add("shop"), keys.add("other")
    with TestClient(create_app(settings)) as client:
        mine = {"X-API-Key": shop}
        theirs = {"X-API-Key": other}
        image = photo(8, 8).pngsave_buffer()
        made = client.post("/v1/jobs/upload", files={"file": ("a.png", image)},
                           data={"idempotency_key": "k1"}, headers=mine).json()  # fmt: skip
        for method, path in (("GET", ""), ("DELETE", ""), ("GET", "/output")):
            answer = client.request(method, f"/v1/jobs/{made['id']}{path}", headers=theirs)
            assert answer.status_code == 404, (method, path)
        assert client.get(f"/v1/jobs/{made['id']}", headers=mine).status_code == 200
        assert [j["id"] for j in client.get("/v1/jobs", headers=mine).json()["jobs"]] == [
            made["id"]]
        assert client.get("/v1/jobs", headers=theirs).json()["jobs"] == []
        # the same idempotency key from another key is another job
        again = client.post("/v1/jobs/upload", files={"file": ("a.png", image)},
                            data={"idempotency_key": "k1"}, headers=theirs).json()  # fmt: skip
        assert again["id"] != made["id"]
        repeat = client.post("/v1/jobs/upload", files={"file": ("a.png", image)},
                             data={"idempotency_key": "k1"}, headers=mine).json()  # fmt: skip
        assert repeat["id"] == made["id"]
