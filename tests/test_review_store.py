"""Review queues on SQLite and PostgreSQL: configuration, idempotent pushes, claims with leases
that never give one item to two people, append-only verdicts decided by majority, undo, and the
statistics read from them (agreement, calibration)."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from conftest import FakeClock

from pixelmill.datasets import Store
from pixelmill.errors import MissingError, UsageError
from pixelmill.review import Reviews
from pixelmill.review.agreement import cohen, fleiss
from pixelmill.review.calibrate import best, calibrate
from pixelmill.review.schema import verdicts


@pytest.fixture
def reviews(database_url):
    clock = FakeClock()
    made = Reviews(database_url, clock=clock.now)
    made.clock_control = clock
    yield made
    made.close()


def fill(reviews: Reviews, queue: str, n: int, **options) -> list[int]:
    return [reviews.push(queue, key=f"k{i}", origin="push", source_uri=f"/img/{i}.png",
                         **options)[0].id for i in range(n)]  # fmt: skip


def test_queues_are_configured_and_checked(reviews) -> None:
    made = reviews.configure("faces", labels=["artefacts", "colour-shift"], reviewers=2,
                             on_reject="rerun:resize:fit:100", sample=0.01)  # fmt: skip
    assert made.labels == ("artefacts", "colour-shift") and made.reviewers == 2
    assert made.on_reject == "rerun:resize:fit:100" and made.sample == 0.01
    assert reviews.configure("faces", instructions="# hi").labels == made.labels  # kept
    for bad in ({"labels": [f"l{i}" for i in range(10)]}, {"reviewers": 0},
                {"on_reject": "explode"}, {"on_reject": "rerun:nonsense"}, {"sample": 2},
                {"labels": ["no spaces"]}, {"sample_pipeline": "nonsense"}):  # fmt: skip
        with pytest.raises(UsageError):
            reviews.configure("faces", **bad)
    with pytest.raises(UsageError):
        reviews.configure("../x")
    with pytest.raises(MissingError):
        reviews.queue("nowhere")
    assert [q.name for q in reviews.sampling()] == ["faces"]


def test_the_same_thing_is_queued_once(reviews) -> None:
    first, new = reviews.push("q", key="job:1", origin="flag", source_uri="/a.png")
    again, new_again = reviews.push("q", key="job:1", origin="flag", source_uri="/a.png")
    assert new and not new_again and first.id == again.id
    assert reviews.push("other", key="job:1", origin="flag", source_uri="/a.png")[1]


def test_two_reviewers_get_different_items_and_an_item_wants_n_people(reviews) -> None:
    ids = fill(reviews, "q", 2)
    ann, bob = reviews.next("q", "ann"), reviews.next("q", "bob")
    assert {ann.id, bob.id} == set(ids)
    assert reviews.next("q", "ann").id == ann.id  # she resumes her claim
    assert reviews.next("q", "cid") is None  # both taken
    reviews.configure("pair", reviewers=2)
    only = fill(reviews, "pair", 1)[0]
    assert reviews.next("pair", "ann").id == only and reviews.next("pair", "bob").id == only
    assert reviews.next("pair", "cid") is None
    reviews.judge(only, "ann", "approved")
    assert reviews.next("pair", "ann") is None  # never twice to one person
    assert reviews.judge(only, "bob", "approved").decided == "approved"


def test_a_vanished_reviewers_item_returns_when_the_lease_ends(reviews) -> None:
    only = fill(reviews, "q", 1)[0]
    assert reviews.next("q", "ann", lease=60).id == only
    assert reviews.next("q", "bob") is None
    reviews.clock_control.advance(61)
    assert reviews.next("q", "bob").id == only
    assert not reviews.renew(only, "ann")


def test_skipped_items_come_back_last_and_held_ones_first(reviews) -> None:
    ids = fill(reviews, "q", 2)
    held = reviews.push("q", key="h", origin="hold", source_uri="/h.png", held=True)[0]
    assert reviews.next("q", "ann").id == held.id
    reviews.judge(held.id, "ann", "skipped")
    assert reviews.next("q", "ann").id == ids[0]
    reviews.judge(ids[0], "ann", "approved")
    assert reviews.next("q", "ann").id == ids[1]
    reviews.judge(ids[1], "ann", "approved")
    assert reviews.next("q", "ann").id == held.id  # only the skipped one is left
    assert [i.id for i in reviews.upcoming("q")] == [held.id]


def test_majority_decides_a_tie_rejects_and_withhold_holds(reviews) -> None:
    reviews.configure("q", reviewers=2, on_reject="withhold")
    tie, agreed = fill(reviews, "q", 2, job_id="j1")
    for item in (tie, agreed):
        reviews.next("q", "ann"), reviews.next("q", "bob")
    reviews.judge(tie, "ann", "approved")
    decision = reviews.judge(tie, "bob", "rejected")
    assert (decision.decided, decision.action) == ("rejected", "withhold")
    assert decision.item.held and reviews.held(job_id="j1").id == tie
    reviews.judge(agreed, "ann", "approved")
    assert reviews.judge(agreed, "bob", "approved").decided == "approved"
    with pytest.raises(UsageError, match="already"):
        reviews.judge(agreed, "cid", "approved")
    counts = dict(reviews.queues())[reviews.queue("q")]
    assert (counts.done, counts.approved, counts.rejected) == (2, 1, 1)


def test_a_held_output_is_released_by_approval(reviews) -> None:
    item = reviews.push("q", key="job:9", origin="hold", source_uri="/a", job_id="9",
                        held=True)[0]  # fmt: skip
    assert reviews.held(job_id="9").id == item.id
    assert reviews.judge(item.id, "ann", "approved").action == "release"
    assert reviews.held(job_id="9") is None


def test_undo_reopens_and_verdicts_are_never_changed(reviews) -> None:
    reviews.configure("q", labels=["x"])
    only = fill(reviews, "q", 1)[0]
    reviews.next("q", "ann")
    reviews.judge(only, "ann", "rejected", labels=["x"], note="bad", seconds=4.0)
    with reviews.engine.connect() as db:
        before = [tuple(row) for row in db.execute(sa.select(verdicts))]
    back = reviews.undo("q", "ann")
    assert back.id == only and back.state == "open"
    assert reviews.next("q", "bob") is None  # hers again
    with reviews.engine.connect() as db:
        after = [tuple(row) for row in db.execute(sa.select(verdicts).order_by(verdicts.c.id))]
    assert after[: len(before)] == before and after[-1][4] == "undo"
    assert reviews.undo("q", "ann") is None  # an undo is not undone
    assert reviews.judge(only, "ann", "approved").decided == "approved"
    trail = [(v["verdict"], v["undoes"]) for v in reviews.verdicts(only)]
    assert trail == [("rejected", None), ("undo", before[0][0]), ("approved", None)]
    with pytest.raises(UsageError, match="labels"):
        reviews.judge(fill(reviews, "q", 2)[1], "ann", "approved", labels=["nope"])


def test_verdicts_are_events_of_the_item_in_its_dataset(reviews, database_url) -> None:
    store = Store(database_url)
    store.create("shots")
    item = reviews.push("q", key="a", origin="push", source_uri="/a.png", sha256="a" * 64,
                        dataset="shots")[0]  # fmt: skip
    reviews.configure("q", labels=["x"])
    reviews.judge(item.id, "ann", "approved", labels=["x"], note="fine", seconds=2.0)
    reviews.undo("q", "ann")
    events = [(e["kind"], e["verdict"], e["by"]) for e in store.history(store.get("shots"),
                                                                        "a" * 64)]  # fmt: skip
    assert events == [("review", "approved", "ann"), ("decision", "approved", None),
                      ("review", "undo", "ann"), ("decision", "reopened", None)]
    assert reviews.history(reviews.item(item.id))[0]["labels"] == ["x"]
    store.close()


def test_concurrent_claims_never_share_an_item(reviews, database_url) -> None:
    fill(reviews, "q", 8)
    got, errors = [], []

    def claim(name: str) -> None:
        other = Reviews(database_url)
        try:
            got.append(other.next("q", name).id)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            other.close()

    threads = [threading.Thread(target=claim, args=(f"r{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and len(set(got)) == 8


def test_verdicts_given_at_once_decide_the_item_and_count_once(reviews, database_url) -> None:
    reviews.configure("pair", reviewers=2)
    ids = fill(reviews, "pair", 10)
    refused, errors = [], []
    people = [Reviews(database_url) for _ in range(3)]

    def judge(other: Reviews, name: str, item: int, barrier: threading.Barrier) -> None:
        barrier.wait()
        try:
            other.judge(item, name, "approved")
        except UsageError:
            refused.append(item)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    for item in ids:  # ann twice (a double click), bob once, all at the same moment
        barrier = threading.Barrier(3)
        threads = [threading.Thread(target=judge, args=(other, name, item, barrier))
                   for other, name in zip(people, ("ann", "ann", "bob"), strict=True)]  # fmt: skip
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    for other in people:
        other.close()
    assert not errors and sorted(refused) == ids
    assert [reviews.item(item).state for item in ids] == ["approved"] * len(ids)
    assert [len(reviews.verdicts(item)) for item in ids] == [2] * len(ids)


def test_agreement_matches_textbook_values(reviews) -> None:
    # Fleiss (1971) as worked on Wikipedia: 10 items, 14 raters, 5 categories: kappa 0.210
    table = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0],
             [2, 2, 8, 1, 1], [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2],
             [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]  # fmt: skip
    ratings = [[str(c) for c, n in enumerate(row) for _ in range(n)] for row in table]
    assert fleiss(ratings, [str(c) for c in range(5)]) == pytest.approx(0.2099, abs=1e-4)
    pairs = [("y", "y")] * 20 + [("y", "n")] * 5 + [("n", "y")] * 10 + [("n", "n")] * 15
    assert cohen(pairs) == pytest.approx(0.4, abs=1e-9)  # Cohen's classic 50-item example
    assert cohen([("y", "y"), ("y", "y")]) is None and fleiss([["a", "a"]], ["a", "b"]) is None
    reviews.configure("pair", reviewers=2, labels=["x"])
    for i, (a, b) in enumerate([("approved", "approved"), ("rejected", "rejected"),
                                ("approved", "rejected"), ("rejected", "rejected")]):  # fmt: skip
        item = reviews.push("pair", key=str(i), origin="push", source_uri="/a")[0]
        reviews.judge(item.id, "ann", a, labels=["x"] if a == "rejected" else [])
        reviews.judge(item.id, "bob", b, labels=["x"] if b == "rejected" else [])
    found = reviews.agreement("pair")
    assert found["items"] == 4
    assert found["kappa"]["cohen"] == pytest.approx(0.5)
    assert found["labels"]["x"]["cohen"] == pytest.approx(0.5)


def test_calibrate_finds_the_threshold_people_agree_with(reviews) -> None:
    values = [0.80, 0.84, 0.86, 0.88, 0.90, 0.91, 0.93, 0.95, 0.97, 0.99]
    for i, value in enumerate(values):
        item = reviews.push("q", key=str(i), origin="flag", source_uri="/a", qc=[{
            "outcome": "flag", "values": {"ssim": value, "mystery": value, "grain": 1 - value},
            "gates": ["ssim>=0.95", "grain<=0.05"], "failed": []}])[0]  # fmt: skip
        reviews.judge(item.id, "ann", "approved" if value >= 0.9 else "rejected")
    found = {t.metric: t for t in calibrate(reviews.decided("q"))}
    assert set(found) == {"ssim", "grain"}  # mystery: no gate says which way is better
    assert found["grain"].gate == "grain<=0.1" and found["grain"].f1 == 1.0  # 0.09999…
    ssim = found["ssim"]
    assert ssim.gate == "ssim>=0.9" and ssim.threshold == 0.9
    assert ssim.precision == ssim.recall == ssim.f1 == 1.0
    assert (ssim.n, ssim.rejected, ssim.agreement) == (10, 4, 1.0)
    noisy = reviews.push("q", key="noise", origin="flag", source_uri="/a", qc=[{
        "outcome": "flag", "values": {"ssim": 0.98}, "gates": [], "failed": []}])[0]
    reviews.judge(noisy.id, "ann", "rejected")
    ssim = {t.metric: t for t in calibrate(reviews.decided("q"))}["ssim"]
    assert ssim.gate == "ssim>=0.9" and ssim.recall == pytest.approx(0.8)


def test_calibrated_gates_are_short_and_face_the_right_way() -> None:
    assert best("ssim", [(0.93123456, False), (0.5, True)], True).gate == "ssim>=0.9312"
    closer = best("ssim", [(0.93123456, False), (0.93121, True), (0.5, True)], True)
    assert closer.gate == "ssim>=0.93123"  # 0.9312 would pass 0.93121
    noise = best("noise", [(1.0, False), (2.0, False), (5.0, True), (6.0, True)], False)
    assert noise.gate == "noise<=2" and noise.f1 == 1.0 and noise.agreement == 1.0
