"""The review app over HTTP (no browser): signing in with CSRF and throttling, sessions apart
from API keys, queues and images confined to the reviewer's queues, verdicts and undo, and a
strict page policy. The browser tests are in test_review_browser.py."""

from __future__ import annotations

import re

import pytest
import pyvips
from conftest import photo
from fastapi.testclient import TestClient

from pixelmill.config import Settings
from pixelmill.review import Reviews
from pixelmill.review.accounts import Reviewers
from pixelmill.service.app import create_app
from pixelmill.service.auth import ApiKeys
from pixelmill.service.routes.review import COOKIE

PASSWORD = "correct horse battery"


@pytest.fixture
def app(tmp_path):
    """A service with two queues, an item in each, and ann, who may review ``faces`` alone:
    (client, reviews, item ids by queue)."""
    settings = Settings(data_dir=str(tmp_path / "data"))
    for name in ("a", "b"):
        photo(400, 300, seed=ord(name)).jpegsave(str(tmp_path / f"{name}.jpg"))
    reviews = Reviews.of(settings)
    reviews.configure("faces", labels=["artefacts", "colour-shift"],
                      instructions="Look at **faces**. <script>alert(1)</script>")  # fmt: skip
    ids = {}
    for queue, name in (("faces", "a"), ("secret", "b")):
        item, _ = reviews.push(queue, key=f"k-{name}", origin="push",
                               source_uri=str(tmp_path / f"{name}.jpg"),
                               output_uri=str(tmp_path / f"{name}.jpg"))  # fmt: skip
        ids[queue] = item.id
    with TestClient(create_app(settings), base_url="https://testserver") as client:
        Reviewers(reviews.engine).add("ann", PASSWORD, ["faces"])
        yield client, reviews, ids
    reviews.close()


def sign_in(client: TestClient, name: str = "ann", password: str = PASSWORD):
    page = client.get("/review/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    return client.post("/review/login", data={"name": name, "password": password,
                                              "csrf": token}, follow_redirects=False)  # fmt: skip


def csrf_of(client: TestClient) -> str:
    page = client.get("/review")
    return re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)


def test_signing_in_sets_a_strict_session_cookie(app) -> None:
    client, _, _ = app
    assert client.get("/review", follow_redirects=False).headers["location"] == "/review/login"
    answer = sign_in(client)
    assert answer.status_code == 303 and answer.headers["location"] == "/review"
    cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith(COOKIE))
    assert all(flag in cookie.lower() for flag in ("httponly", "secure", "samesite=strict",
                                                   "path=/review"))  # fmt: skip
    page = client.get("/review")
    assert page.status_code == 200 and 'href="/review/faces"' in page.text
    assert "secret" not in page.text  # not her queue
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert page.headers["x-frame-options"] == "DENY"


def test_forged_or_missing_login_tokens_are_refused(app) -> None:
    client, _, _ = app
    client.get("/review/login")
    forged = client.post("/review/login", data={"name": "ann", "password": PASSWORD,
                                                "csrf": "forged"}, follow_redirects=False)
    assert forged.status_code == 403 and COOKIE not in forged.headers.get("set-cookie", "")
    client.cookies.clear()
    replayed = client.post("/review/login", data={"name": "ann", "password": PASSWORD,
                                                  "csrf": "anything"}, follow_redirects=False)
    assert replayed.status_code == 403


def test_wrong_passwords_are_refused_alike_and_then_throttled(app) -> None:
    client, _, _ = app
    wrong = sign_in(client, password="not her password")
    unknown = sign_in(client, name="nobody", password="not her password")
    assert wrong.status_code == unknown.status_code == 401
    assert "wrong name or password" in wrong.text and "wrong name or password" in unknown.text
    for _ in range(4):
        sign_in(client, password="not her password")
    throttled = sign_in(client)  # the right one, too soon
    assert throttled.status_code == 429 and int(throttled.headers["retry-after"]) >= 1


def test_api_keys_do_not_open_the_app_and_sessions_do_not_open_v1(app) -> None:
    client, reviews, _ = app
    secret = ApiKeys(reviews.engine).add("partner")
    keyed = client.get("/review", headers={"Authorization": f"Bearer {secret}"},
                       follow_redirects=False)  # fmt: skip
    assert keyed.status_code == 303 and keyed.headers["location"] == "/review/login"
    assert client.get("/review/faces/next", headers={"X-API-Key": secret}).status_code == 401
    sign_in(client)
    assert client.get("/v1/jobs").status_code == 401
    assert client.get("/v1/jobs", headers={"X-API-Key": secret}).status_code == 200


def test_a_reviewer_reaches_nothing_of_a_queue_she_is_not_given(app) -> None:
    client, _, ids = app
    sign_in(client)
    token = csrf_of(client)
    secret = ids["secret"]
    assert client.get("/review/secret").status_code == 404
    assert client.get("/review/nowhere").status_code == 404
    assert client.get("/review/secret/next").status_code == 404
    assert client.get(f"/review/secret/items/{secret}/image/source").status_code == 404
    assert client.get(f"/review/faces/items/{secret}/image/source").status_code == 404  # guessed
    assert client.get(f"/review/faces/items/{10**30}/image/source").status_code == 422
    judged = client.post(f"/review/faces/items/{secret}/verdict", json={"verdict": "approved"},
                         headers={"X-CSRF-Token": token})  # fmt: skip
    assert judged.status_code == 404


def test_verdicts_need_the_csrf_token_and_answer_the_next_item(app, tmp_path) -> None:
    client, reviews, ids = app
    sign_in(client)
    token = csrf_of(client)
    item = client.get("/review/faces/next").json()["item"]
    assert item["id"] == ids["faces"] and item["sizes"]["source"] == [400, 300]
    second = reviews.push("faces", key="k-c", origin="push",
                          source_uri=str(tmp_path / "b.jpg"))[0]  # fmt: skip
    path = f"/review/faces/items/{item['id']}/verdict"
    body = {"verdict": "rejected", "labels": ["artefacts"], "note": "halo", "seconds": 3.5}
    assert client.post(path, json=body).status_code == 403
    assert client.post(path, json=body, headers={"X-CSRF-Token": "x" * 43}).status_code == 403
    assert reviews.verdicts(item["id"]) == []
    answer = client.post(path, json=body, headers={"X-CSRF-Token": token})
    assert answer.status_code == 200
    found = answer.json()
    assert (found["decided"], found["rerun"], found["item"]["id"]) == ("rejected", None, second.id)
    assert found["item"]["output"] is None and "output" not in found["item"]["sizes"]
    assert (found["counts"]["waiting"], found["counts"]["in_review"], found["counts"]["done"]) == (
        0, 1, 1)
    stored = reviews.verdicts(item["id"])[0]
    assert (stored["reviewer"], stored["labels"], stored["note"], stored["seconds"]) == (
        "ann", ["artefacts"], "halo", 3.5)
    bad = client.post(path, json={"verdict": "approved", "labels": ["unknown"]},
                      headers={"X-CSRF-Token": token})  # fmt: skip
    assert bad.status_code == 400  # decided already
    back = client.post("/review/faces/undo", headers={"X-CSRF-Token": token})
    assert back.status_code == 200 and back.json()["item"]["id"] == item["id"]
    assert reviews.item(item["id"]).state == "open"


def test_regions_come_scaled_and_only_for_her_items(app) -> None:
    client, _, ids = app
    sign_in(client)
    path = f"/review/faces/items/{ids['faces']}/image/output"
    whole = client.get(path, params={"size": 200})
    assert whole.status_code == 200 and whole.headers["content-type"] == "image/jpeg"
    image = pyvips.Image.new_from_buffer(whole.content, "")
    assert (image.width, image.height) == (200, 150)
    corner = client.get(path, params={"left": 0.5, "top": 0.5, "width": 0.25, "height": 0.25,
                                      "size": 4000})  # fmt: skip
    assert pyvips.Image.new_from_buffer(corner.content, "").width == 100  # never past 1:1
    assert client.get(path, params={"left": 2}).status_code == 400


def test_the_screen_renders_the_instructions_without_their_html(app) -> None:
    client, _, _ = app
    sign_in(client)
    page = client.get("/review/faces")
    assert page.status_code == 200
    assert "<strong>faces</strong>" in page.text
    assert "<script>alert(1)</script>" not in page.text and "&lt;script&gt;" in page.text
    assert '<script src="/review/_static/review.js"></script>' in page.text
    assert client.get("/review/_static/review.js").status_code == 200


def test_metrics_count_the_items_and_the_agreement(app) -> None:
    client, reviews, _ = app
    reviews.configure("pair", reviewers=2)
    for i, second in enumerate(("approved", "rejected", "rejected")):
        item = reviews.push("pair", key=str(i), origin="push", source_uri="/a.png")[0]
        reviews.judge(item.id, "ann", "approved" if i != 2 else "rejected")
        reviews.judge(item.id, "bob", second)
    text = client.get("/metrics").text
    assert 'pixelmill_review_items{queue="faces",state="waiting"} 1.0' in text
    assert 'pixelmill_review_items{queue="pair",state="done"} 3.0' in text
    assert 'pixelmill_review_agreement{label="",queue="pair",statistic="cohen"}' in text


def test_the_next_item_shows_its_qc_values_against_their_gates(app, tmp_path) -> None:
    client, reviews, _ = app
    sign_in(client)
    token = csrf_of(client)
    first = client.get("/review/faces/next").json()["item"]
    client.post(f"/review/faces/items/{first['id']}/verdict", json={"verdict": "approved"},
                headers={"X-CSRF-Token": token})  # fmt: skip
    assert client.get("/review/faces/next").status_code == 204  # nothing left
    qc = [{"outcome": "flag", "values": {"ssim": 0.93, "ssimulacra2": 62.5, "psnr": 31.0},
           "gates": ["ssim>=0.9", "ssimulacra2>=70"], "failed": ["ssimulacra2>=70"]}]
    reviews.push("faces", key="k-qc", origin="flag", source_uri=str(tmp_path / "a.jpg"), qc=qc,
                 pipeline="blur:1/qc:ssim>=0.9:ssimulacra2>=70", reason="qc flag")  # fmt: skip
    item = client.get("/review/faces/next").json()["item"]
    gates = {g["metric"]: (g["value"], g["op"], g["threshold"], g["failed"]) for g in item["gates"]}
    assert gates == {"ssim": (0.93, ">=", 0.9, False), "ssimulacra2": (62.5, ">=", 70.0, True),
                     "psnr": (31.0, None, None, False)}  # measured without a gate
    assert item["pipeline"].startswith("blur:1") and item["reason"] == "qc flag"
    assert [v["verdict"] for v in item["verdicts"]] == []


def test_a_rejection_reruns_the_job_or_the_source(app, tmp_path) -> None:
    client, reviews, ids = app
    shared = client.app.state.service
    reviews.configure("faces", on_reject="rerun:resize:fit:100")
    job = shared.queue.submit({"source": str(tmp_path / "a.jpg"), "pipeline": "blur:1",
                               "destination": str(tmp_path / "out" / "a.jpg")},
                              owner="partner", max_attempts=1)  # fmt: skip
    held = reviews.push("faces", key=f"job:{job.id}", origin="flag", job_id=job.id,
                        source_uri=str(tmp_path / "a.jpg"))[0]  # fmt: skip
    sign_in(client)
    token = csrf_of(client)
    reruns = {}
    for item_id in (ids["faces"], held.id):
        answer = client.post(f"/review/faces/items/{item_id}/verdict",
                             json={"verdict": "rejected"}, headers={"X-CSRF-Token": token})
        assert answer.status_code == 200 and answer.json()["decided"] == "rejected"
        reruns[item_id] = shared.queue.get(answer.json()["rerun"])
    copy = reruns[held.id]
    assert copy.id != job.id and copy.owner == "partner"
    assert copy.spec == {**job.spec, "pipeline": "resize:fit:100"}
    assert copy.max_attempts == shared.settings.job_attempts
    fresh = reruns[ids["faces"]]
    assert fresh.owner is None and fresh.spec["source"] == str(tmp_path / "a.jpg")
    assert fresh.spec["pipeline"] == "resize:fit:100" and "dataset" not in fresh.spec
    assert fresh.spec["destination"] == shared.root.child(f"outputs/{fresh.id}/a.jpg").url


def test_signing_out_ends_the_session(app) -> None:
    client, _, _ = app
    sign_in(client)
    token = csrf_of(client)
    assert client.post("/review/logout", data={"csrf": "forged"}).status_code == 403
    assert client.get("/review/faces/next").status_code == 200  # still signed in
    cookie = client.cookies.get(COOKIE)
    out = client.post("/review/logout", data={"csrf": token}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/review/login"
    client.cookies.set(COOKIE, cookie, domain="testserver", path="/review")  # replayed
    assert client.get("/review/faces/next").status_code == 401
