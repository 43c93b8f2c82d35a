"""Verdicts that change what happens next: outputs held by a gate are not delivered (job output
409, on-demand URL 423) until a reviewer approves them, flagged and spot-checked outputs reach
their queues, rejections withhold, verdicts are remembered in datasets and queried, and the lab
trains and evaluates on reviewed images."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import pyvips
import yaml
from conftest import photo
from fastapi.testclient import TestClient

from pixelmill.config import Settings
from pixelmill.datasets import Store
from pixelmill.jobs.queue import JobQueue
from pixelmill.jobs.worker import Worker
from pixelmill.pipeline import Pipeline
from pixelmill.review import Reviews
from pixelmill.review.intake import drawn
from pixelmill.service.app import create_app
from pixelmill.service.ondemand import signed_path

HOLD = "blur:3/qc:ssim>=0.99:on_fail=hold:queue=faces"
"""A gate that always holds (a blur loses far more than 1 % of SSIM)."""
FLAG = "blur:3/qc:ssim>=0.99:on_fail=flag"
PASS = "blur:3/qc:ssim>=0.2:on_fail=hold"


@pytest.fixture
def service(tmp_path):
    """A service on SQLite with a photograph in its storage: (client, settings, queue,
    reviews)."""
    settings = Settings(data_dir=str(tmp_path / "data"), signing_keys="secret")
    (tmp_path / "data" / "files").mkdir(parents=True)
    photo(160, 120).jpegsave(str(tmp_path / "data" / "files" / "p.jpg"))
    reviews = Reviews.of(settings)
    with TestClient(create_app(settings)) as client:
        yield client, settings, JobQueue.of(settings), reviews
    reviews.close()


def job_through(service, pipeline: str, **extra) -> dict:
    """Submit a job on the photograph and run it with a worker; the job as the API shows it."""
    client, settings, queue, _ = service
    made = client.post("/v1/jobs", json={"sources": ["p.jpg"], "pipeline": pipeline, **extra})
    assert made.status_code == 202, made.text
    assert Worker(queue, settings, name="w").run_one() is not None
    return client.get(f"/v1/jobs/{made.json()['id']}").json()


def test_the_qc_step_takes_hold_and_a_queue() -> None:
    step = Pipeline.parse(HOLD).steps[1]
    assert step["on_fail"] == "hold" and step["queue"] == "faces"
    assert Pipeline.parse("qc:ssim>=0.9").steps[0]["queue"] == "review"
    with pytest.raises(Exception, match="queue"):
        Pipeline.parse("qc:ssim>=0.9:queue=f%ces")


def test_a_held_job_output_is_refused_until_a_reviewer_approves_it(service) -> None:
    client, _, _, reviews = service
    job = job_through(service, HOLD)
    assert job["state"] == "succeeded"
    assert any("held for review in queue faces" in note for note in job["output"]["notes"])
    refused = client.get(f"/v1/jobs/{job['id']}/output")
    assert refused.status_code == 409
    assert refused.json()["detail"]["kind"] == "held"
    assert "held for review in queue faces" in refused.json()["detail"]["message"]
    assert "ssim" in refused.json()["detail"]["message"]  # the reason
    item = reviews.next("faces", "ann")
    assert item is not None and item.held and item.job_id == job["id"] and item.origin == "hold"
    assert item.output_uri and item.output_uri.endswith(".jpg")
    assert reviews.judge(item.id, "ann", "approved").action == "release"
    released = client.get(f"/v1/jobs/{job['id']}/output")
    assert released.status_code == 200
    assert pyvips.Image.new_from_buffer(released.content, "").width == 160


def test_a_rejected_held_output_stays_undelivered(service) -> None:
    client, _, _, reviews = service
    job = job_through(service, HOLD)
    item = reviews.next("faces", "ann")
    reviews.judge(item.id, "ann", "rejected", note="smudged")
    refused = client.get(f"/v1/jobs/{job['id']}/output")
    assert refused.status_code == 409 and "rejected in review" in refused.json()["detail"]["message"]


def test_flagged_outputs_are_delivered_until_a_rejection_withholds_them(service) -> None:
    client, _, _, reviews = service
    reviews.configure("review", on_reject="withhold")
    job = job_through(service, FLAG)
    assert client.get(f"/v1/jobs/{job['id']}/output").status_code == 200
    item = reviews.next("review", "ann")
    assert item.origin == "flag" and not item.held
    reviews.judge(item.id, "ann", "rejected")
    assert client.get(f"/v1/jobs/{job['id']}/output").status_code == 409


def test_a_passing_gate_holds_nothing_and_spot_checks_sample_their_share(service) -> None:
    client, _, _, reviews = service
    reviews.configure("spot", sample=1.0, sample_pipeline=str(Pipeline.parse(PASS)))
    reviews.configure("other", sample=1.0, sample_pipeline="grayscale")
    job = job_through(service, PASS)
    assert client.get(f"/v1/jobs/{job['id']}/output").status_code == 200
    assert [queue.name for queue, _ in reviews.queues()] == ["other", "spot"]  # none held
    sampled = reviews.next("spot", "ann")
    assert sampled.origin == "sample" and sampled.job_id == job["id"] and not sampled.held
    assert reviews.next("other", "ann") is None  # it samples another pipeline
    share = sum(drawn(f"job:{n}", "spot", 0.05) for n in range(4000)) / 4000
    assert 0.04 < share < 0.06
    assert drawn("job:1", "spot", 0.05) == drawn("job:1", "spot", 0.05)


def test_a_held_on_demand_image_answers_423_until_approved(service) -> None:
    client, _, _, reviews = service
    source = service[1].storage_root + "/p.jpg"
    path = signed_path("secret", HOLD, source)
    first = client.get(path)
    assert first.status_code == 423 and first.json()["detail"]["kind"] == "held"
    assert client.get(path).status_code == 423  # asked again: still held, not rendered again
    item = reviews.next("faces", "ann")
    assert item.key.startswith("render:") and item.output_uri
    reviewed = Path(item.output_uri).read_bytes()
    reviews.judge(item.id, "ann", "approved")
    served = client.get(path)
    assert served.status_code == 200 and served.content == reviewed  # what she saw
    assert reviews.next("faces", "bob") is None  # queued once
    other = signed_path("secret", HOLD.replace("blur:3", "blur:2"), source)
    assert client.get(other).status_code == 423
    rejected = reviews.next("faces", "ann")
    reviews.judge(rejected.id, "ann", "rejected")
    assert client.get(other).status_code == 423
    assert "rejected" in client.get(other).json()["detail"]["message"]


def test_verdicts_are_remembered_in_the_dataset_and_queried(service, tmp_path) -> None:
    _, settings, _, reviews = service
    job_through(service, HOLD, dataset="photos")
    item = reviews.next("faces", "ann")
    assert item.dataset == "photos" and item.sha256
    reviews.judge(item.id, "ann", "approved", labels=(), note="fine", seconds=2.5)
    store = Store.of(settings)
    view = store.view("photos")
    assert [row["role"] for row in store.query(view, 'review = "approved"')] == ["source"]
    assert store.query(view, 'review = "rejected"') == []
    assert [row["role"] for row in store.query(view, 'verdict = "hold"')] == ["source"]
    events = store.history(store.get("photos"), item.sha256)
    review = next(e for e in events if e["kind"] == "review")
    assert (review["by"], review["verdict"], review["note"], review["seconds"]) == (
        "ann", "approved", "fine", 2.5)
    assert reviews.undo("faces", "ann").id == item.id
    assert [row["role"] for row in store.query(view, 'review = "reopened"')] == ["source"]
    store.close()


def test_pixelmill_run_sends_held_outputs_to_review(cli, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PIXELMILL_DB", f"sqlite:///{tmp_path / 'jobs.db'}")
    photo(120, 90).jpegsave(str(tmp_path / "in.jpg"))
    status, _, err = cli("run", tmp_path / "in.jpg", tmp_path / "out.jpg", "-p", HOLD)
    assert status == 0 and "held for review" in err
    reviews = Reviews(f"sqlite:///{tmp_path / 'jobs.db'}")
    item = reviews.next("faces", "ann")
    assert item.output_uri.endswith("out.jpg") and item.held
    reviews.close()


def test_lab_trains_on_approved_items_and_compares_on_the_held_out_part(
        cli, tmp_path, monkeypatch, tiny_recipe) -> None:  # fmt: skip
    from pixelmill.datasets import Event
    from pixelmill.lab.dataset import split

    database = f"sqlite:///{tmp_path / 'jobs.db'}"
    monkeypatch.setenv("PIXELMILL_DB", database)
    monkeypatch.setenv("PIXELMILL_MODELS_DIR", str(tmp_path / "models"))
    (tmp_path / "in").mkdir()
    for seed in range(12):
        photo(96, 80, seed=seed).pngsave(str(tmp_path / "in" / f"p{seed:02}.png"))
    assert cli("datasets", "add", "shots", tmp_path / "in", "-q")[0] == 0
    store = Store(database)
    dataset = store.get("shots")
    rows = store.query(store.view("shots"), limit=100)
    for row in rows[:9]:  # nine approved, three rejected
        store.record(dataset, Event("decision", row["sha256"], verdict="approved"))
    for row in rows[9:]:
        store.record(dataset, Event("decision", row["sha256"], verdict="rejected"))
    store.close()
    where = 'review = "approved"'
    parts = split("shots", where, Settings(db=database), holdout=0.3)
    assert len(parts.train) + len(parts.held_out) == 9 and parts.held_out
    assert not set(parts.train) & set(parts.held_out)
    assert split("shots", where, Settings(db=database), holdout=0.3) == parts  # stable
    recipe = tiny_recipe(data={"dead_leaves": 0.5, "textures": 0, "photos": 0.5,
                               "bundled": True})  # fmt: skip
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    status, _, err = cli("lab", "train", tmp_path / "r.yaml", "--out", tmp_path / "run",
                         "--from-dataset", "shots", "--where", where, "--holdout", "0.3",
                         "--workers", "0", "-q")  # fmt: skip
    assert status == 0, err
    trained = yaml.safe_load((tmp_path / "run" / "recipe.yaml").read_text())
    assert trained["name"] == "tiny-x2-shots"
    assert sorted(trained["data"]["images"]) == sorted(parts.train)
    assert not trained["data"]["bundled"]
    assert cli("lab", "train", tmp_path / "r.yaml", "--out", tmp_path / "base", "--workers", "0",
               "-q")[0] == 0  # fmt: skip
    status, out, err = cli("lab", "eval", "tiny-x2-shots", "--against", "tiny-x2",
                           "--from-dataset", "shots", "--where", where, "--holdout", "0.3",
                           "--track", "classic", "--json")  # fmt: skip
    assert status == 0, err
    results = json.loads(out)
    assert [r["model"] for r in results] == ["tiny-x2-shots", "tiny-x2"]
    held = sorted(uri.rsplit("/", 1)[-1] for uri in parts.held_out)
    assert all(sorted(r["images"]) == held for r in results)
    status, out, _ = cli("lab", "eval", "tiny-x2-shots", "--against", "tiny-x2",
                         "--from-dataset", "shots", "--where", where, "--holdout", "0.3",
                         "--track", "classic")  # fmt: skip
    assert status == 0 and "gain over tiny-x2-shots" in out
    assert cli("lab", "eval", "tiny-x2", "--where", where)[0] == 2
