"""``pixelmill review``: queues made and listed, items pushed from a dataset (a query, a smart
selection, anomalies), calibration and export of the verdicts."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from conftest import photo

from pixelmill.review import Reviews


@pytest.fixture
def database(tmp_path, monkeypatch, cli) -> str:
    """A job database with the dataset ``shots`` of six photographs."""
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    monkeypatch.setenv("PIXELMILL_DB", url)
    (tmp_path / "in").mkdir()
    for seed in range(6):
        photo(120, 90, seed=seed).jpegsave(str(tmp_path / "in" / f"p{seed}.jpg"))
    assert cli("datasets", "add", "shots", tmp_path / "in", "-q")[0] == 0
    return url


def test_queues_are_made_shown_and_listed(cli, database, tmp_path) -> None:
    (tmp_path / "faces.md").write_text("Reject **halos**.")
    status, out, _ = cli("review", "create", "faces", "--labels", "artefacts,colour-shift",
                         "--reviewers", "2", "--on-reject", "withhold", "--sample", "1%",
                         "--instructions", tmp_path / "faces.md")  # fmt: skip
    assert status == 0 and "spot-checks 1.00% of all jobs" in out
    made = json.loads(cli("review", "create", "faces", "--json")[1])
    assert made["instructions"] == "Reject **halos**." and made["sample"] == 0.01
    assert cli("review", "create", "faces", "--sample", "lots")[0] == 2
    assert cli("review", "create", "faces", "--on-reject", "rerun:nonsense")[0] == 2
    listed = json.loads(cli("review", "list", "--json")[1])
    assert [q["name"] for q in listed] == ["faces"] and listed[0]["counts"]["waiting"] == 0
    status, out, _ = cli("review", "show", "faces")
    assert status == 0 and "2 reviewer(s) per item" in out and "artefacts" in out
    assert cli("review", "show", "nowhere")[0] == 2


def test_items_are_pushed_from_a_dataset_once(cli, database) -> None:
    pushed = json.loads(cli("review", "push", "all", "--dataset", "shots", "--json")[1])
    assert pushed == {"queue": "all", "added": 6, "queued_before": 0}
    again = json.loads(cli("review", "push", "all", "--dataset", "shots", "--json")[1])
    assert again == {"queue": "all", "added": 0, "queued_before": 6}
    some = json.loads(cli("review", "push", "some", "--dataset", "shots", "--query",
                          'uri ~ "p1" or uri ~ "p2"', "--json")[1])  # fmt: skip
    assert some["added"] == 2
    diverse = json.loads(cli("review", "push", "diverse", "--dataset", "shots", "--select",
                             "diverse", "-k", "3", "--json")[1])  # fmt: skip
    odd = json.loads(cli("review", "push", "odd", "--dataset", "shots", "--select",
                         "anomalous", "-k", "2", "--json")[1])  # fmt: skip
    assert diverse["added"] == 3 and odd["added"] == 2
    reviews = Reviews(database)
    item = reviews.next("some", "ann")
    assert item.dataset == "shots" and item.sha256 and item.origin == "push"
    assert item.source_uri.endswith(("p1.jpg", "p2.jpg"))
    assert cli("review", "push", "x", "--dataset", "nowhere")[0] == 2
    assert cli("review", "push", "x", "--dataset", "shots", "--query", "widht > 3")[0] == 2
    reviews.close()


def test_calibrate_and_export_read_the_verdicts(cli, database, tmp_path) -> None:
    assert cli("review", "calibrate", "q")[0] == 2  # no such queue
    reviews = Reviews(database)
    reviews.configure("q", labels=["halo"])
    assert cli("review", "calibrate", "q")[0] == 2  # nothing decided
    for i, value in enumerate([0.7, 0.8, 0.92, 0.95, 0.99]):
        item = reviews.push("q", key=str(i), origin="flag", source_uri=f"/{i}.png", qc=[{
            "outcome": "flag", "values": {"ssim": value}, "gates": ["ssim>=0.95"],
            "failed": []}])[0]  # fmt: skip
        reviews.judge(item.id, "ann", "approved" if value > 0.9 else "rejected",
                      labels=["halo"] if value < 0.9 else [], note=f"n{i}")  # fmt: skip
    status, out, _ = cli("review", "calibrate", "q")
    assert status == 0 and "qc:ssim>=0.92:on_fail=hold:queue=q" in out
    tuned = json.loads(cli("review", "calibrate", "q", "--json")[1])
    assert tuned[0]["gate"] == "ssim>=0.92" and tuned[0]["f1"] == 1.0
    status, _, err = cli("review", "export", "q", "--out", tmp_path / "v.jsonl")
    assert status == 0 and "wrote 5 verdicts" in err
    rows = [json.loads(line) for line in (tmp_path / "v.jsonl").read_text().splitlines()]
    assert [(r["reviewer"], r["verdict"], r["note"]) for r in rows][:2] == [
        ("ann", "rejected", "n0"), ("ann", "rejected", "n1")]
    assert json.loads(rows[0]["qc"])[0]["values"]["ssim"] == 0.7
    assert cli("review", "export", "q", "--out", tmp_path / "v.parquet")[0] == 0
    assert cli("review", "export", "q", "--out", tmp_path / "v.txt")[0] == 2
    table = pq.read_table(tmp_path / "v.parquet")
    assert table.num_rows == 5 and "labels" in table.column_names
    reviews.close()
