"""Datasets end to end, on SQLite and PostgreSQL: items added once by content, versions that
never change, diffs, relabelling, concurrent writers without lost writes, an ingest that
resumes after ``kill -9``, the command line's JSON, the HTTP API with each key's datasets its
own, jobs and runs remembered with their QC values, and drift checked on a schedule."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import pyvips
from conftest import photo
from fastapi.testclient import TestClient

from pixelmill.config import Settings
from pixelmill.datasets import Event, Record, Store
from pixelmill.datasets.fields import FEATURES
from pixelmill.errors import MissingError, QueryError, UsageError


@pytest.fixture
def url(database_url):
    return database_url


@pytest.fixture
def store(url):
    made = Store(url)
    yield made
    made.close()


def record(n: int, **fields) -> Record:
    """A synthetic item (no image behind it): what the store keeps, made up."""
    rng = np.random.default_rng(n)
    labels = tuple(fields.pop("tags", ()))
    values = {name: float(rng.random()) for name in FEATURES}
    values.update({"format": "jpeg", "width": 100 + n, "height": 50, **fields})
    sha = hashlib.sha256(f"item {n}".encode()).hexdigest()
    return Record(f"/images/{n}.jpg", sha, values, rng.random(8).astype(np.float32), tags=labels)


def test_items_are_kept_once_by_content(store) -> None:
    photos = store.create("photos")
    assert store.add(photos, [record(i) for i in range(5)]) == 5
    again = [record(1), record(2), Record("/elsewhere/copy.jpg", record(3).sha256, {})]
    assert store.add(photos, again) == 0
    assert store.count(store.view("photos")) == 5
    assert store.create("photos") == store.get("photos")  # made once
    with pytest.raises(MissingError, match="no dataset 'nope'"):
        store.view("nope")
    with pytest.raises(MissingError, match="no version 'v9'"):
        store.view("photos@v9")
    with pytest.raises(UsageError, match="dataset '../x'"):
        store.create("../x")


def test_versions_freeze_items_tags_and_features(store) -> None:
    photos = store.create("photos")
    store.add(photos, [record(i, tags=("outdoor",) if i < 2 else ()) for i in range(4)])
    first = store.snapshot(photos)
    assert first == {"version": "photos@v1", "items": 4, "created": first["created"]}
    assert store.label(store.view("photos"), "width < 102", add=["checked"],
                       remove=["outdoor"]) == 2  # fmt: skip
    store.remove(store.view("photos"), "width = 103")
    store.add(photos, [record(10)])
    store.snapshot(photos, "after")
    with pytest.raises(UsageError, match="already has a version 'after'"):
        store.snapshot(photos, "after")
    diff = store.diff(store.view("photos@v1"), store.view("photos@after"))
    assert diff.added == ["/images/10.jpg"] and diff.removed == ["/images/3.jpg"]
    assert diff.relabelled == [
        {"uri": "/images/0.jpg", "added": ["checked"], "removed": ["outdoor"]},
        {"uri": "/images/1.jpg", "added": ["checked"], "removed": ["outdoor"]},
    ]
    old = store.query(store.view("photos@v1"), 'tag = "outdoor"')
    assert [item["uri"] for item in old] == ["/images/0.jpg", "/images/1.jpg"]
    assert store.query(store.view("photos"), 'tag = "outdoor"') == []
    assert store.count(store.view("photos@v1")) == 4 and store.count(store.view("photos")) == 4
    with pytest.raises(UsageError, match="snapshots never change"):
        store.label(store.view("photos@v1"), "", add=["x"])
    assert [s["version"] for s in store.snapshots(photos)] == ["photos@v1", "photos@after"]


def test_queries_sort_limit_and_point_at_a_bad_token(store) -> None:
    photos = store.create("photos")
    store.add(photos, [record(i, format="png" if i % 2 else "jpeg") for i in range(20)])
    found = store.query(store.view("photos"), 'format = "png" and width >= 110', sort="-width",
                        limit=3)  # fmt: skip
    assert [item["width"] for item in found] == [119, 117, 115]
    assert set(found[0]) >= {"uri", "sha256", "width", "height", "format", *FEATURES, "tags"}
    with pytest.raises(QueryError, match="widht"):
        store.query(store.view("photos"), "widht > 3")


def test_events_keep_what_was_done_and_its_qc_values(store) -> None:
    photos = store.create("photos")
    store.add(photos, [record(1)])
    verdict = {"outcome": "flag", "values": {"ssim": 0.81}, "gates": ["ssim>=0.9"],
               "failed": ["ssim>=0.9"]}  # fmt: skip
    store.record(photos, Event("job", record(1).sha256, "job-1", "model:sr-x2", "/out/1.png",
                               None, 1.5, {"render": 1.0}, "flag", (verdict,)))  # fmt: skip
    history = store.history(photos, record(1).sha256)
    assert history[0]["ref"] == "job-1" and history[0]["qc"] == {"ssim": 0.81}
    assert len(store.query(store.view("photos"), "qc.ssim < 0.9")) == 1
    assert len(store.query(store.view("photos"), 'verdict = "flag"')) == 1
    assert store.margins(store.view("photos")) == {record(1).sha256: [(0.81, "ssim>=0.9")]}


def test_concurrent_writers_lose_nothing(url) -> None:
    """Four writers add overlapping items, relabel and query at once; every item is there once
    and every change number was taken once."""
    Store(url).create("shared")

    def writer(offset: int) -> None:
        own = Store(url)
        dataset = own.get("shared")
        for start in range(0, 60, 6):
            own.add(dataset, [record(offset + start + i) for i in range(6)])
            own.label(own.view("shared"), f"width = {100 + offset + start}", add=[f"w{offset}"])
            own.query(own.view("shared"), "width > 120", limit=5)
        own.close()

    with ThreadPoolExecutor(4) as pool:
        for done in [pool.submit(writer, offset) for offset in (0, 30, 30, 60)]:
            done.result()  # a writer's error fails the test
    check = Store(url)
    assert check.count(check.view("shared")) == 120  # 0..119, the overlap added once
    with check.engine.connect() as db:
        alive = db.exec_driver_sql("SELECT sha256, COUNT(*) FROM pixelmill_items WHERE "
                                   "valid_to IS NULL GROUP BY sha256 HAVING COUNT(*) > 1").all()
    assert alive == []
    check.close()


# with images


def _images(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for i in range(count):
        path = folder / f"p{i:03}.jpg"
        photo(96, 64, seed=i).jpegsave(str(path), Q=90)
        made.append(path)
    return made


def test_an_ingest_records_failures_and_is_idempotent(tmp_path, cli, monkeypatch) -> None:
    folder = tmp_path / "in"
    _images(folder, 6)
    (folder / "broken.jpg").write_bytes((folder / "p000.jpg").read_bytes()[:300])
    (folder / "empty.png").write_bytes(b"")
    (folder / "copy.jpg").write_bytes((folder / "p001.jpg").read_bytes())
    monkeypatch.setenv("PIXELMILL_DB", f"sqlite:///{tmp_path / 'jobs.db'}")
    code, out, err = cli("datasets", "add", "photos", folder, "--json")
    assert code == 0, err
    first = json.loads(out)
    assert first["added"] == 6 and first["skipped"] == 1 and first["failed"] == {"input": 2}
    again = json.loads(cli("datasets", "add", "photos", folder, "--json")[1])
    assert again["added"] == 0 and again["skipped"] == 9 and again["failed"] == {}
    failed = json.loads(cli("datasets", "failures", "photos", "--json")[1])
    assert sorted(Path(row["uri"]).name for row in failed) == ["broken.jpg", "empty.png"]
    items = json.loads(cli("datasets", "query", "photos", "width = 96", "--json")[1])
    assert len(items) == 6 and all(i["format"] == "jpeg" and i["height"] == 64 for i in items)
    assert all(isinstance(i["sharpness"], float) and len(i["sha256"]) == 64 for i in items)
    code, _, err = cli("datasets", "query", "photos", "width >> 3")
    assert code == 2 and "column" in err
    code, _, err = cli("datasets", "query", "nope")
    assert code == 2 and "no dataset 'nope'" in err


def test_a_killed_ingest_resumes_where_it_stopped(tmp_path) -> None:
    folder = tmp_path / "in"
    _images(folder, 200)
    db = f"sqlite:///{tmp_path / 'jobs.db'}"
    env = {**os.environ, "PIXELMILL_DB": db}
    command = [sys.executable, "-m", "pixelmill", "datasets", "add", "big", str(folder), "-q"]
    running = subprocess.Popen(command, env=env)
    store = Store(db)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not store.list():
        time.sleep(0.02)
    while time.monotonic() < deadline and not store.count(store.view("big")):
        time.sleep(0.02)
    running.send_signal(signal.SIGKILL)
    running.wait()
    assert 0 < store.count(store.view("big")) < 200, "the ingest was not stopped halfway"
    finished = subprocess.run([*command[:-1], "--json"], env=env, capture_output=True, text=True,
                              check=False)  # fmt: skip
    assert finished.returncode == 0, finished.stderr
    summary = json.loads(finished.stdout)
    assert summary["skipped"] >= 1 and summary["added"] + summary["skipped"] == 200
    assert store.count(store.view("big")) == 200
    store.close()


def test_exports_hold_every_field_and_the_embedding(tmp_path, cli, monkeypatch) -> None:
    folder = tmp_path / "in"
    _images(folder, 3)
    monkeypatch.setenv("PIXELMILL_DB", f"sqlite:///{tmp_path / 'jobs.db'}")
    assert cli("datasets", "add", "photos", folder, "-q")[0] == 0
    assert cli("datasets", "snapshot", "photos", "--tag", "v1")[0] == 0
    for suffix in ("parquet", "csv", "jsonl"):
        assert cli("datasets", "export", "photos@v1", tmp_path / f"o.{suffix}")[0] == 0
    table = pq.read_table(tmp_path / "o.parquet")
    assert table.num_rows == 3 and set(FEATURES) <= set(table.column_names)
    assert len(table.column("embedding")[0].as_py()) == 64
    lines = (tmp_path / "o.jsonl").read_text().splitlines()
    assert len(lines) == 3 and len(json.loads(lines[0])["sha256"]) == 64
    assert (tmp_path / "o.csv").read_text().count("\n") == 4
    code, _, err = cli("datasets", "export", "photos", tmp_path / "o.xlsx")
    assert code == 2 and ".parquet" in err


def test_anomalies_selection_and_drift_from_the_command_line(tmp_path, cli, monkeypatch) -> None:
    folder, odd = tmp_path / "in", tmp_path / "odd"
    _images(folder, 30)
    odd.mkdir()
    pyvips.Image.black(96, 64, bands=3).jpegsave(str(odd / "blank.jpg"))
    monkeypatch.setenv("PIXELMILL_DB", f"sqlite:///{tmp_path / 'jobs.db'}")
    assert cli("datasets", "add", "photos", folder, "-q")[0] == 0
    assert cli("datasets", "snapshot", "photos", "--tag", "v1")[0] == 0
    assert cli("datasets", "add", "photos", odd, "-q")[0] == 0
    ranked = json.loads(cli("datasets", "anomalies", "photos", "--top", "3", "--json")[1])
    assert ranked[0]["uri"].endswith("blank.jpg") and ranked[0]["reasons"]
    picked = json.loads(cli("datasets", "select", "photos", "-k", "5", "--tag", "look",
                            "--json")[1])  # fmt: skip
    assert len({item["sha256"] for item in picked}) == 5
    tagged = json.loads(cli("datasets", "query", "photos", 'tag = "look"', "--json")[1])
    assert {item["sha256"] for item in tagged} == {item["sha256"] for item in picked}
    code, out, err = cli("drift", "photos", "--reference", "photos@v1", "--json", "--html",
                         tmp_path / "drift.html")  # fmt: skip
    assert code == 0, err
    report = json.loads(out)
    assert report["drift"] is False and "sharpness" in report["features"]
    assert report["n_reference"] == 30 and report["n_current"] == 31
    assert "<html" in (tmp_path / "drift.html").read_text().lower()
    code, _, err = cli("drift", "photos", "--reference", "photos@v9", "--json")
    assert code == 2 and "no version 'v9'" in err


def test_a_run_is_remembered_with_its_source_and_output(tmp_path, cli, monkeypatch) -> None:
    source = tmp_path / "a.png"
    photo(64, 48).pngsave(str(source))
    db = f"sqlite:///{tmp_path / 'jobs.db'}"
    monkeypatch.setenv("PIXELMILL_DB", db)
    code, _, err = cli("run", source, tmp_path / "b.png", "-p", "resize:fit:32/qc:psnr>=10",
                       "--dataset", "runs", "-q")  # fmt: skip
    assert code == 0, err
    store = Store(db)
    found = {item["role"]: item for item in store.query(store.view("runs"))}
    assert found["output"]["parent"] == found["source"]["sha256"]
    assert found["output"]["width"] == 32
    history = store.history(store.get("runs"), found["source"]["sha256"])
    assert history[0]["kind"] == "run" and history[0]["verdict"] == "pass"
    assert "psnr" in history[0]["qc"]
    store.close()


def test_the_api_keeps_each_keys_datasets_and_jobs_feed_them(tmp_path) -> None:
    from pixelmill.jobs.queue import JobQueue
    from pixelmill.jobs.worker import Worker
    from pixelmill.service.app import create_app
    from pixelmill.service.auth import ApiKeys

    settings = Settings(data_dir=str(tmp_path / "data"))
    queue = JobQueue(settings.job_database)
    keys = ApiKeys(queue.engine)
    shop, other = keys.add("shop"), keys.add("other")
    with TestClient(create_app(settings)) as client:
        as_shop = {"authorization": f"Bearer {shop}"}
        made = client.post("/v1/jobs/upload", headers=as_shop,
                           files={"file": ("a.png", photo(64, 48).pngsave_buffer())},
                           data={"pipeline": "resize:fit:32", "dataset": "mine"})  # fmt: skip
        assert made.status_code == 202, made.text
        assert Worker(queue, settings, name="w").run_one().state == "succeeded"
        listed = client.get("/v1/datasets", headers=as_shop).json()["datasets"]
        assert [(d["name"], d["items"]) for d in listed] == [("mine", 2)]
        items = client.get("/v1/datasets/mine/items", headers=as_shop,
                           params={"q": 'role = "output"'}).json()["items"]  # fmt: skip
        assert len(items) == 1 and items[0]["width"] == 32
        made = client.post("/v1/datasets/mine/snapshots", headers=as_shop, json={"tag": "v1"})
        assert made.status_code == 201 and made.json()["items"] == 2
        shown = client.get("/v1/datasets/mine@v1", headers=as_shop).json()
        assert shown["items"] == 2 and shown["versions"][0]["tag"] == "v1"
        bad = client.get("/v1/datasets/mine/items", headers=as_shop, params={"q": "widht > 1"})
        assert bad.status_code == 422 and "widht" in bad.json()["detail"]["message"]
        as_other = {"authorization": f"Bearer {other}"}
        assert client.get("/v1/datasets", headers=as_other).json()["datasets"] == []
        hidden = client.get("/v1/datasets/mine/items", headers=as_other)
        assert hidden.status_code == 404 and hidden.json()["detail"]["kind"] == "missing"
        assert client.get("/v1/datasets/mine@v7", headers=as_shop).status_code == 404
    queue.close()


def test_serve_checks_drift_on_a_schedule_and_calls_the_webhook(tmp_path) -> None:
    from test_webhooks import Receiver

    from pixelmill.service.drift import DriftCollector, DriftWatch

    now = [1_000_000.0]
    store = Store(f"sqlite:///{tmp_path / 'jobs.db'}", clock=lambda: now[0])
    photos = store.create("photos")
    store.add(photos, [record(i) for i in range(60)])
    store.snapshot(photos, "v1")
    receiver = Receiver()
    store.configure(photos, {"reference": "photos@v1", "window": "1h", "every": "10m",
                             "webhook": receiver.url})  # fmt: skip
    watch = DriftWatch(store, Settings(allow_private_hosts=True), clock=lambda: now[0])
    now[0] += 7200
    store.add(photos, [record(i, mean_luma=5.0 + i, sharpness=9.0) for i in range(100, 160)])
    assert watch.check_due() == ["photos"]
    assert watch.check_due() == []  # not due again within 10 minutes
    state = store.get("photos").drift_state
    assert state["drift"] is True and state["verdicts"]["mean_luma"] == "drift"
    assert len(receiver.calls) == 1
    assert json.loads(receiver.calls[0][1])["dataset"] == "photos"
    families = {f.name: f for f in DriftCollector(store).collect()}
    samples = {s.labels["feature"]: s.value for s in families["pixelmill_drift_score"].samples}
    assert samples["mean_luma"] > 0.5
    assert families["pixelmill_drift"].samples[0].value == 1.0
    now[0] += 601
    assert watch.check_due() == ["photos"]
    assert len(receiver.calls) == 1  # still drifting: no second call
    receiver.close()
    store.close()


def test_on_demand_renders_are_remembered_once_each(tmp_path) -> None:
    from pixelmill.service.app import create_app
    from pixelmill.service.ondemand import signed_path

    settings = Settings(data_dir=str(tmp_path / "data"), signing_keys="secret",
                        render_dataset="renders")  # fmt: skip
    (tmp_path / "data" / "files").mkdir(parents=True)
    source = tmp_path / "data" / "files" / "p.jpg"
    photo(200, 150).jpegsave(str(source))
    with TestClient(create_app(settings)) as client:
        for pipeline in ("resize:fit:100/encode:webp", "resize:fit:100/encode:webp", "grayscale"):
            assert client.get(signed_path("secret", pipeline, str(source))).status_code == 200
    store = Store(settings.job_database)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and store.count(store.view("renders")) < 3:
        time.sleep(0.05)
    found = store.query(store.view("renders"), sort="width")
    assert sorted((item["role"], item["width"]) for item in found) == [
        ("output", 100), ("output", 200), ("source", 200)]  # the repeat came from the cache
    original = next(item["sha256"] for item in found if item["role"] == "source")
    history = store.history(store.get("renders"), original)
    assert sorted(event["pipeline"] for event in history) == [
        "grayscale/encode:jpeg", "resize:fit:100/encode:webp"]
    assert {event["kind"] for event in history} == {"render"}
    store.close()


def test_versions_tags_and_watches_from_the_command_line(tmp_path, cli, monkeypatch) -> None:
    folder = tmp_path / "in"
    _images(folder, 4)
    monkeypatch.setenv("PIXELMILL_DB", f"sqlite:///{tmp_path / 'jobs.db'}")
    assert cli("datasets", "add", "photos", folder, "-q")[0] == 0
    assert cli("datasets", "snapshot", "photos")[1].startswith("photos@v1: 4 items")
    assert cli("datasets", "tag", "photos", 'uri ~ "p000"', "--add", "odd")[0] == 0
    assert cli("datasets", "remove", "photos", 'uri ~ "p001"')[0] == 0
    code, out, _ = cli("datasets", "diff", "photos@v1", "photos", "--json")
    found = json.loads(out)
    assert [Path(u).name for u in found["removed"]] == ["p001.jpg"] and found["added"] == []
    assert [(Path(c["uri"]).name, c["added"]) for c in found["relabelled"]] == [
        ("p000.jpg", ["odd"])]
    listed = json.loads(cli("datasets", "list", "--json")[1])
    assert [(d["name"], d["items"]) for d in listed] == [("photos", 3)]
    code, _, err = cli("datasets", "watch", "photos", "--reference", "photos@v1", "--every", "1y")
    assert code == 2 and "duration '1y'" in err
    assert cli("datasets", "watch", "photos", "--reference", "photos@v1", "--every", "1h")[0] == 0
    assert json.loads(cli("datasets", "list", "--json")[1])[0]["drift"]["every"] == "1h"
    code, out, _ = cli("datasets", "query", "photos", "--csv")
    assert code == 0 and out.startswith("uri,sha256,") and out.count("\n") == 4
    assert "embedding" not in out.splitlines()[0]
