"""What one caller of the service could once do to others or to the service: overwrite the
render cache behind a signed URL, read and overwrite another key's images, escape the storage
through symbolic links, and send fields without bounds. Each hole, closed, is a test."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
import pyvips
from conftest import photo
from fastapi.testclient import TestClient

from pixelmill.config import Settings
from pixelmill.jobs.queue import JobQueue
from pixelmill.jobs.worker import Worker
from pixelmill.service.app import create_app
from pixelmill.service.auth import ApiKeys
from pixelmill.service.ondemand import signed_path


@pytest.fixture
def settings(tmp_path):
    (tmp_path / "data" / "files").mkdir(parents=True)
    return Settings(data_dir=str(tmp_path / "data"), signing_keys="secret")


@pytest.fixture
def client(settings):
    with TestClient(create_app(settings)) as made:
        yield made


def files(settings: Settings) -> Path:
    return Path(settings.storage_root)


def upload(client, name="a.png", **headers):
    image = photo(64, 48).pngsave_buffer()
    return client.post("/v1/jobs/upload", files={"file": (name, image)}, headers=headers)


def test_jobs_may_neither_write_nor_read_the_render_cache(client, settings) -> None:
    source = files(settings) / "p.jpg"
    photo(200, 150).write_to_file(str(source))
    served = client.get(signed_path("secret", "resize:fit:100/encode:png", str(source)))
    assert served.status_code == 200
    cached = next(path for path in (files(settings) / "cache").rglob("*") if path.is_file())
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    guessable = hashlib.sha256((digest + "resize:fit:100/encode:png").encode()).hexdigest()
    assert guessable not in cached.name  # keyed with a secret: nobody can name it in advance
    for body in ({"sources": ["p.jpg"], "destination": f"cache/{cached.parent.name}/x.png"},
                 {"sources": [str(cached)]},
                 {"sources": ["p.jpg"], "destination": str(cached)}):  # fmt: skip
        refused = client.post("/v1/jobs", json=body)
        assert refused.status_code == 400 and "reserved" in refused.json()["detail"]["message"]


def test_the_cache_name_depends_on_the_signing_secret(tmp_path) -> None:
    names = []
    for secret in ("one", "two"):
        settings = Settings(data_dir=str(tmp_path / secret), signing_keys=secret)
        (Path(settings.storage_root)).mkdir(parents=True)
        source = Path(settings.storage_root) / "p.jpg"
        photo(64, 48).write_to_file(str(source))
        with TestClient(create_app(settings)) as client:
            assert client.get(signed_path(secret, "resize:fit:10/encode:png",
                                          str(source))).status_code == 200  # fmt: skip
        names += [p.name for p in (Path(settings.storage_root) / "cache").rglob("*.png")]
    assert len(set(names)) == 2


def test_each_key_has_its_own_files(settings) -> None:
    queue = JobQueue(settings.job_database)
    keys = ApiKeys(queue.engine)
    alice, bob = keys.add("alice"), keys.add("bob", prefixes=("shared",))
    shared = files(settings) / "shared" / "logo.png"
    shared.parent.mkdir()
    photo(32, 32).write_to_file(str(shared))
    as_alice, as_bob = {"X-API-Key": alice}, {"X-API-Key": bob}
    with TestClient(create_app(settings)) as client:
        made = upload(client, **as_alice).json()
        assert made["source"].startswith(str(files(settings) / "keys" / "alice" / "uploads"))
        assert made["destination"].startswith(str(files(settings) / "keys" / "alice" / "outputs"))
        for body in ({"sources": [made["source"]]},  # read alice's upload
                     {"sources": ["shared/logo.png"], "destination": made["destination"]},
                     {"sources": ["../alice/" + made["source"].split("/alice/", 1)[1]]},
                     {"sources": ["shared/logo.png"], "destination": "../../cache/x.png"}):
            refused = client.post("/v1/jobs", json=body, headers=as_bob)
            assert refused.status_code == 400, (body, refused.text)
        granted = client.post("/v1/jobs", json={"sources": ["shared/logo.png"]}, headers=as_bob)
        assert granted.status_code == 202, granted.text
        assert granted.json()["destination"].startswith(str(files(settings) / "keys" / "bob"))
        refused = client.post("/v1/jobs", json={"sources": [str(shared)]}, headers=as_alice)
        assert refused.status_code == 400  # alice was granted nothing
        mine = client.post("/v1/jobs", json={"sources": ["shared/logo.png"]}, headers=as_alice)
        assert mine.json()["source"] == str(files(settings) / "keys/alice/shared/logo.png")
    queue.close()


def test_symbolic_links_cannot_lead_out_of_the_storage(client, settings, tmp_path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    photo(32, 32).write_to_file(str(outside / "secret.png"))
    root = files(settings)
    (root / "linkdir").symlink_to(outside)
    (root / "link.png").symlink_to(outside / "secret.png")
    photo(32, 32).write_to_file(str(root / "in.png"))
    for body in ({"sources": ["in.png"], "destination": "linkdir/pwned.png"},
                 {"sources": ["link.png"]}, {"sources": ["linkdir/secret.png"]}):
        refused = client.post("/v1/jobs", json=body)
        assert refused.status_code == 400 and "really" in refused.json()["detail"]["message"]
    served = client.get(signed_path("secret", "resize:fit:10", str(root / "link.png")))
    assert served.status_code == 403
    # a link made after the job was queued is found when the job runs
    queued = client.post("/v1/jobs", json={"sources": ["in.png"],
                                           "destination": "later/pwned.png"}).json()  # fmt: skip
    (root / "later").symlink_to(outside)
    queue = JobQueue(settings.job_database)
    worker = Worker(queue, settings, name="w")
    try:
        done = worker.run_one()
    finally:
        worker.close()
        queue.close()
    assert (done.id, done.state, done.error_kind) == (queued["id"], "failed", "usage")
    assert sorted(os.listdir(outside)) == ["secret.png"]


def test_a_folder_run_does_not_write_through_a_link_out_of_its_destination(cli, tmp_path) -> None:
    (tmp_path / "in" / "sub").mkdir(parents=True)
    photo(32, 32).write_to_file(str(tmp_path / "in" / "a.png"))
    photo(32, 32).write_to_file(str(tmp_path / "in" / "sub" / "b.png"))
    (tmp_path / "out").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "out" / "sub").symlink_to(tmp_path / "elsewhere")
    status, _, err = cli("run", tmp_path / "in", tmp_path / "out", "-q")
    assert status == 2 and "really" in err
    assert (tmp_path / "out" / "a.png").exists() and os.listdir(tmp_path / "elsewhere") == []


@pytest.mark.parametrize(("body", "status", "says"), [
    ({"sources": ["a.png"], "destination": "{id:>100000000}.png"}, 400, "without a format"),
    ({"sources": ["a.png"], "destination": "{id!r}.png"}, 400, "without a format"),
    ({"sources": ["a.png"], "destination": "{0}.png"}, 400, "may be filled in"),
    ({"sources": ["a.png"], "destination": "{id.__class__}.png"}, 400, "may be filled in"),
    ({"sources": ["a.png"], "priority": 1.5}, 422, "priority"),
    ({"sources": ["a.png"], "priority": 5000}, 422, "priority"),
    ({"sources": ["a.png"], "pipeline": "flip/" * 2000}, 422, "pipeline"),
    ({"sources": ["a.png"], "pipeline": [{"op": "blur", "sigma": {"deep": [1]}}]}, 422,
     "pipeline"),
    ({"sources": ["a.png"] * 10_001}, 422, "sources"),
    ({"sources": ["a" * 3000]}, 422, "sources"),
    ({"sources": ["a.png"], "webhook": "http://x/" + "a" * 3000}, 422, "webhook"),
    ({"sources": ["a.png"], "idempotency_key": "k" * 201}, 422, "idempotency_key"),
    ({"sources": ["a.png"], "extra": 1}, 422, "extra"),
    ({"sources": ["a\x00b.png"]}, 400, "control characters"),  # found by schemathesis
])  # fmt: skip
def test_every_field_is_bounded(client, body, status, says) -> None:
    answer = client.post("/v1/jobs", json=body)
    assert answer.status_code == status, answer.text
    assert answer.json()["detail"]["kind"] in ("usage", "request", "storage") and says in answer.text


@pytest.mark.parametrize(("text", "status"), [
    ('{"sources": ["a.png"], "priority": 1e309}', 422),  # not a number JSON can hold
    ('{"sources": ["a.png"], "priority": ' + "9" * 5000 + "}", 400),  # past Python's digits
    ('{"sources": ["a.png"], "pipeline": ' + "[" * 100_000 + "]" * 100_000 + "}", 400),
    ("[" * 600_000, 400),
    ('{"sources": ["a\\ud800.png"]}', 422),  # a lone surrogate: not text
])  # fmt: skip
def test_bodies_json_cannot_hold_are_refused_cleanly(client, text, status) -> None:
    answer = client.post("/v1/jobs", content=text, headers={"content-type": "application/json"})
    assert answer.status_code == status, answer.text
    assert answer.json()["detail"]["kind"] in ("request", "usage", "storage")


def test_json_bodies_have_their_own_small_limit(client) -> None:
    big = json.dumps({"sources": ["a.png"], "pipeline": "x" * (2 * 1024**2)})
    declared = client.post("/v1/jobs", content=big, headers={"content-type": "application/json"})
    assert declared.status_code == 413 and "1,048,576" in declared.json()["detail"]["message"]
    whole = big.encode()
    chunked = client.post("/v1/jobs", content=iter([whole[:2**20], whole[2**20:]]),
                          headers={"content-type": "application/json"})  # fmt: skip
    assert chunked.status_code == 413
    image = pyvips.Image.gaussnoise(1200, 1200).cast("uchar").pngsave_buffer(compression=0)
    assert len(image) > 2**20
    made = client.post("/v1/jobs/upload", files={"file": ("big.png", image)})
    assert made.status_code == 202  # uploads have max_upload_bytes


def test_upload_fields_are_bounded(client) -> None:
    image = photo(8, 8).pngsave_buffer()
    for data in ({"pipeline": "flip/" * 2000}, {"priority": "9" * 5000},
                 {"priority": "1e309"}, {"idempotency_key": "k" * 201}):  # fmt: skip
        answer = client.post("/v1/jobs/upload", files={"file": ("a.png", image)}, data=data)
        assert answer.status_code == 422, answer.text


def test_a_worker_cannot_serve_metrics_on_a_taken_port(cli, tmp_path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        status, _, err = cli("worker", "--once", "--data-dir", tmp_path / "data",
                             "--metrics-port", str(port))  # fmt: skip
    assert status == 2 and f"--metrics-port {port}" in err and "Address already in use" in err


def test_models_add_refuses_a_name_that_is_a_path(cli, tmp_path, monkeypatch) -> None:
    from pixelmill.models.registry import BUNDLED

    models = tmp_path / "models"
    monkeypatch.setenv("PIXELMILL_MODELS_DIR", str(models))
    for name in ("../evil", str(tmp_path / "abs"), ".."):
        offered = tmp_path / "offer"
        offered.mkdir(exist_ok=True)
        (offered / "m.onnx").write_bytes((BUNDLED / "sr-x2.onnx").read_bytes())
        manifest = json.loads((BUNDLED / "sr-x2.json").read_text())
        (offered / "m.json").write_text(json.dumps({**manifest, "name": name}))
        status, _, err = cli("models", "add", offered / "m.onnx")
        assert status == 2 and "model name" in err
    assert sorted(p.name for p in tmp_path.rglob("*.onnx")) == ["m.onnx"]
    assert not models.exists() or os.listdir(models) == []


def test_outputs_come_with_their_length_and_name_from_every_storage(client, settings) -> None:
    from pixelmill.service.routes.jobs import attachment

    assert attachment("a b.png") == "attachment; filename*=utf-8''a%20b.png"
    assert attachment("cat.webp") == 'attachment; filename="cat.webp"'
    made = upload(client).json()
    queue = JobQueue(settings.job_database)
    worker = Worker(queue, settings, name="w")
    try:
        worker.run_one()
    finally:
        worker.close()
        queue.close()
    answer = client.get(f"/v1/jobs/{made['id']}/output")
    assert answer.status_code == 200 and int(answer.headers["content-length"]) == len(answer.content)
    assert answer.headers["content-disposition"] == 'attachment; filename="a.png"'
    output = Path(client.get(f"/v1/jobs/{made['id']}").json()["destination"])
    secret = output.parent.parent.parent.parent / "secret.txt"  # outside the storage
    secret.write_text("not for callers")
    output.unlink()
    output.symlink_to(secret)  # swapped for a link since the job ran
    assert client.get(f"/v1/jobs/{made['id']}/output").status_code == 400
