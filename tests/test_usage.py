"""Usage, cost and budgets: what a piece of work records (CPU seconds checked against the
kernel's own accounting of the process that did it), the price table of the settings, the
ledger and its reports on SQLite and PostgreSQL, budgets with their alerts (a clock moved by
hand), and the whole path through ``pixelmill serve`` on a real port: jobs and on-demand
renders recorded per key, ``/v1/usage``, ``/metrics``, signed budget webhooks and ``402``."""

from __future__ import annotations

import hmac
import json
import os
import resource
import time

import httpx
import pytest
import sqlalchemy as sa
from conftest import FakeClock, photo
from test_service import free_port
from test_service_reliability import proc_stat, processes, serve  # noqa: F401  (a fixture)
from test_webhooks import Receiver

from pixelmill.config import Settings
from pixelmill.database import connect
from pixelmill.errors import UsageError
from pixelmill.jobs.queue import JobQueue
from pixelmill.jobs.webhooks import signature
from pixelmill.jobs.worker import Worker
from pixelmill.service.auth import ApiKeys
from pixelmill.service.ondemand import signed_path
from pixelmill.usage import Budgets, Meter, Prices, Usage, Work, counters, since

LATE_MAY = 1_780_000_000.0
"""2026-05-28 20:26 UTC."""


def cpu_of(pid: int) -> float:
    """CPU seconds (user + system) the kernel has counted for a process."""
    stat = proc_stat(pid)
    assert stat is not None
    return (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")


def test_prices_come_from_a_cost_table_dotted_keys_or_the_environment(tmp_path,
                                                                      monkeypatch) -> None:
    table = tmp_path / "table.toml"
    table.write_text("[pixelmill]\nmax_pixels = 10\n[pixelmill.cost]\ncpu_hour = 0.04\n"
                     "gb_egress = 0.09\n")  # fmt: skip
    settings = Settings.load(table)
    assert (settings.cost_cpu_hour, settings.cost_gb_egress, settings.max_pixels) == (0.04, 0.09,
                                                                                     10)
    dotted = tmp_path / "dotted.toml"
    dotted.write_text('cost.gpu_hour = 1.01\ncost.request = "0.000_4"\n')
    monkeypatch.setenv("PIXELMILL_COST_CPU_HOUR", "0.05")
    settings = Settings.load(dotted)
    assert Prices.of(settings) == Prices(cpu_hour=0.05, gpu_hour=1.01, request=0.0004)
    wrong = tmp_path / "wrong.toml"
    wrong.write_text("[cost]\ncpu_hours = 1\n")
    with pytest.raises(UsageError, match="unknown setting 'cost.cpu_hours'.*cost.cpu_hour"):
        Settings.load(wrong)
    wrong.write_text("[cost]\ngb_egress = -1\n")
    with pytest.raises(UsageError, match="cost.gb_egress must be 0 or more"):
        Settings.load(wrong)
    monkeypatch.setenv("PIXELMILL_COST_GPU_HOUR", "lots")
    with pytest.raises(UsageError, match="cost_gpu_hour: 'lots' is not a valid float"):
        Settings.load()


def test_a_price_table_prices_each_part_of_the_work() -> None:
    work = Work("job", "shop", "blur:sigma=1", cpu_seconds=1800, gpu_seconds=360,
                bytes_written=2 * 10**9, bytes_served=10**9)  # fmt: skip
    prices = Prices(cpu_hour=0.04, gpu_hour=1.0, gb_stored_month=0.023, gb_egress=0.09,
                    request=0.001)  # fmt: skip
    assert prices.cost(work) == pytest.approx(0.02 + 0.1 + 0.046 + 0.09 + 0.001)
    assert Prices().cost(work) == 0


def test_the_meter_counts_the_cpu_time_of_a_blur_as_the_process_does() -> None:
    """A blur of a large generated image (libvips' own threads do the work): the meter's CPU
    seconds match getrusage of this process within 10 %."""
    image = photo(3000, 2000)
    before = resource.getrusage(resource.RUSAGE_SELF)
    with Meter() as meter:
        image.gaussblur(6).avg()
    after = resource.getrusage(resource.RUSAGE_SELF)
    kernel = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert kernel > 0.3, kernel  # long enough to compare
    assert meter.cpu_seconds == pytest.approx(kernel, rel=0.1)
    work = meter.result("batch", None, "blur:sigma=6", dataset="photos")
    assert work.to_json()["cpu_seconds"] == meter.cpu_seconds and work.gpu_seconds == 0


def test_the_meter_sees_a_peak_of_memory_given_back_before_it_ends() -> None:
    from pixelmill.usage.meter import resident_bytes

    start = resident_bytes()
    with Meter() as meter:
        block = b"\x01" * (200 * 2**20)  # written, so resident
        time.sleep(0.1)
        del block
    assert resident_bytes() < start + 100 * 2**20 < start + 190 * 2**20 < meter.peak_memory


def test_a_job_records_the_cpu_time_of_its_own_process(tmp_path) -> None:
    """A CPU-bound pipeline run as a job: the CPU seconds recorded are the job process's, as
    the kernel counted them for that process (within 10 %), not the worker's or wall time."""
    source = tmp_path / "big.png"
    photo(3000, 2000).write_to_file(str(source), compression=1)
    settings = Settings(data_dir=str(tmp_path / "data"), cost_cpu_hour=36.0)
    queue = JobQueue(settings.job_database)
    worker = Worker(queue, settings, name="w")
    try:
        worker.start()
        queue.submit({"source": str(source), "destination": str(tmp_path / "out.png"),
                            "pipeline": "blur:sigma=16/encode:png"},
                           owner="shop")  # fmt: skip
        child = worker.runner.pid
        before = cpu_of(child)
        assert worker.run_one().state == "succeeded"
        kernel = cpu_of(child) - before
        assert worker.runner.pid == child  # the same process ran it
    finally:
        worker.close()
    report = Usage(queue.engine).report(0, "key")
    row = report.rows[0]
    assert (row["group"], row["work"], row["failed"]) == ("shop", 1, 0)
    assert kernel > 0.3, kernel
    assert row["cpu_seconds"] == pytest.approx(kernel, rel=0.1)
    assert row["cost"] == pytest.approx(row["cpu_seconds"] / 100, rel=1e-6)
    assert row["bytes_read"] == source.stat().st_size
    assert row["bytes_written"] == (tmp_path / "out.png").stat().st_size
    assert row["peak_memory"] > 3000 * 2000  # the job process's, with libvips' buffers
    queue.close()


@pytest.fixture
def clock():
    return FakeClock(LATE_MAY)


@pytest.fixture
def ledger(database_url, clock):
    engine = connect(database_url)
    yield Usage(engine, Prices(cpu_hour=3600.0, request=1.0), clock.now)
    engine.dispose()


def test_the_ledger_reports_by_key_pipeline_day_and_dataset(ledger, clock) -> None:
    def work(key, pipeline, dataset=None, cpu=1.0, **more):
        return Work("job", key, pipeline, dataset, cpu_seconds=cpu, **more)

    assert ledger.record(work("shop", "resize:fit:10", "photos", cpu=2.0,
                              bytes_read=100, peak_memory=7)) == 3.0  # fmt: skip
    assert ledger.record(work(None, "resize:fit:10")) == 2.0
    clock.advance(86400)
    ledger.record(work("shop", "blur:sigma=2", failed=True, peak_memory=5))
    ledger.record(Work("ondemand", "lab", "blur:sigma=2", bytes_served=50))
    now = ledger.clock()
    by_key = ledger.report(since("30d", now), "key")
    assert [(r["group"], r["work"], r["cost"]) for r in by_key.rows] == [
        ("shop", 2, 5.0), ("", 1, 2.0), ("lab", 1, 1.0)]
    assert by_key.total["work"] == 4 and by_key.total["cost"] == 8.0
    assert by_key.total["failed"] == 1 and by_key.total["bytes_served"] == 50
    pipelines = ledger.report(0, "pipeline").rows
    assert {r["pipeline"]: r["work"] for r in pipelines} == {"resize:fit:10": 2,
                                                             "blur:sigma=2": 2}
    assert all(r["group"] == counters.label(r["pipeline"]) for r in pipelines)
    days = ledger.report(0, "day").rows
    assert [(r["group"], r["work"]) for r in days] == [("2026-05-28", 2), ("2026-05-29", 2)]
    mine = ledger.report(0, "dataset", key="shop")
    assert [(r["group"], r["work"], r["peak_memory"]) for r in mine.rows] == [
        ("photos", 1, 7), ("", 1, 5)]
    assert ledger.report(since("12h", now), "key").total["work"] == 2
    assert ledger.report(since("2026-05-29", now), "origin").rows[0]["group"] == "job"
    with pytest.raises(UsageError, match="since 'yesterday'"):
        since("yesterday", now)
    with pytest.raises(UsageError, match="by 'colour'"):
        ledger.report(0, "colour")


def test_budget_alerts_come_once_per_month_and_threshold(ledger, clock) -> None:
    budgets = ledger.budgets
    budgets.set("shop", 10.0)
    budgets.set("soft", 2.0, soft=True)
    for _ in range(7):  # 1.0 each
        ledger.record(Work("job", "shop", "grayscale"))
    assert budgets.alerts() == [] and budgets.refusal("shop") is None
    ledger.record(Work("job", "shop", "grayscale"))  # 8.0: 80 %
    ledger.record(Work("job", "shop", "grayscale"))
    assert [(a.threshold, a.spent) for a in budgets.alerts("shop")] == [(80, 8.0)]
    ledger.record(Work("job", "shop", "grayscale", cpu_seconds=1.5))  # 11.5: past 100 %
    assert sorted(a.threshold for a in budgets.alerts("shop")) == [80, 100]
    refusal = budgets.refusal("shop")
    assert refusal and "spent 11.50 of its budget of 10.00 for 2026-05" in refusal
    assert budgets.standing("shop")[0].ratio == pytest.approx(1.15)
    ledger.record(Work("job", "shop", "grayscale"))
    assert len(budgets.alerts("shop")) == 2  # once each, however much more is spent
    for _ in range(3):
        ledger.record(Work("ondemand", "soft", "grayscale"))
    assert len(budgets.alerts("soft")) == 2 and budgets.refusal("soft") is None
    assert budgets.alerts("soft")[0].payload()["refusing"] is False
    clock.advance(5 * 86400)  # June: a new month
    assert budgets.refusal("shop") is None and budgets.standing("shop")[0].spent == 0
    for _ in range(8):
        ledger.record(Work("job", "shop", "grayscale"))
    assert sorted((a.month, a.threshold) for a in budgets.alerts("shop")) == [
        ("2026-05", 80), ("2026-05", 100), ("2026-06", 80)]
    with pytest.raises(UsageError, match="more than 0"):
        budgets.set("shop", 0)


def test_budget_alerts_are_delivered_signed_and_retried(tmp_path, clock) -> None:
    receiver = Receiver(failures=1)
    settings = Settings(data_dir=str(tmp_path / "data"), webhook_secret="s3cret",
                        allow_private_hosts=True, budget_webhook=receiver.url,
                        cost_request=1.0)  # fmt: skip
    queue = JobQueue(settings.job_database, clock)
    worker = Worker(queue, settings, name="w")
    try:
        worker.usage.budgets.set("shop", 1.0)
        worker.usage.record(Work("job", "shop", "grayscale"))
        assert worker.deliver_alert()  # the receiver fails it: due again after a backoff
        assert worker.deliver_alert()  # the other threshold's
        assert not worker.deliver_alert()
        clock.advance(60)
        assert worker.deliver_alert() and not worker.deliver_alert()
    finally:
        worker.close()
        receiver.close()
        queue.close()
    assert [status for _, _, status in receiver.calls] == [500, 204, 204]
    sent = [json.loads(body) for _, body, _ in receiver.calls]
    assert sent[0] == sent[2] and {sent[0]["threshold"], sent[1]["threshold"]} == {80, 100}
    assert sent[-1]["event"] == "budget" and sent[-1]["month"] == "2026-05"
    for headers, body, _ in receiver.calls:
        expected = signature("s3cret", headers["X-Pixelmill-Timestamp"], body)
        assert hmac.compare_digest(headers["X-Pixelmill-Signature"], expected)
    statuses = [a.status for a in Budgets(connect(settings.job_database), clock.now).alerts()]
    assert statuses == ["delivered (HTTP 204)"] * 2


def test_counter_labels_stay_few() -> None:
    for n in range(counters.PIPELINES + 20):
        counters.count(Work("batch", "label-test", f"resize:fit:{n + 1}"),
                       counters.label(f"resize:fit:{n + 1}"), 0.0)  # fmt: skip
    labels = {sample.labels["pipeline"] for metric in counters.WORK.collect()
              for sample in metric.samples if sample.labels.get("key") == "label-test"}
    assert "other" in labels and len(labels) <= counters.PIPELINES + 1
    assert all(len(label) == 12 for label in labels - {"other"})


def test_usage_and_keys_commands(cli, tmp_path) -> None:
    data = str(tmp_path / "data")
    status, _, _ = cli("keys", "add", "shop", "--budget", "50", "--data-dir", data)
    assert status == 0
    settings = Settings(data_dir=data, cost_request=2.0)
    Usage(connect(settings.job_database), Prices.of(settings)).record(
        Work("batch", "shop", "grayscale", dataset="photos", cpu_seconds=3.0))
    status, out, _ = cli("usage", "--by", "dataset", "--data-dir", data, "--json")
    found = json.loads(out)
    assert status == 0 and found["rows"][0]["group"] == "photos"
    assert found["budgets"] == [{"key": "shop", "month": time.strftime("%Y-%m", time.gmtime()),
                                 "spent": 2.0, "budget": 50.0, "soft": False, "ratio": 0.04}]
    status, out, _ = cli("usage", "--since", "month", "--data-dir", data)
    assert status == 0 and out.splitlines()[0].split()[:3] == ["key", "work", "failed"]
    assert "total" in out and "budget shop: 2.00 of 50 in" in out
    assert cli("keys", "budget", "shop", "1", "--soft-budget", "--data-dir", data)[0] == 0
    status, listed, _ = cli("keys", "list", "--data-dir", data)
    assert status == 0 and "budget=2.00/1 soft" in listed
    assert cli("keys", "budget", "shop", "--data-dir", data)[0] == 0
    assert "budget=-" in cli("keys", "list", "--data-dir", data)[1]
    status, _, err = cli("keys", "budget", "nobody", "3", "--data-dir", data)
    assert status == 2 and "no key named 'nobody'" in err
    status, _, err = cli("usage", "--since", "lately", "--data-dir", data)
    assert status == 2 and "since 'lately'" in err


def test_the_service_records_usage_and_refuses_work_past_a_budget(
        processes, tmp_path) -> None:  # noqa: F811
    """``pixelmill serve`` on a real port with one worker: a key's job and its on-demand
    renders are recorded for it (a render without a key for nobody, a repeat from the cache
    not at all), reported by ``/v1/usage`` (each key its own), counted in ``/metrics``; the
    budget's alerts reach the webhook signed, and the key's next work is refused with 402 (its
    report is still served)."""
    data = tmp_path / "data"
    (data / "files").mkdir(parents=True)
    photo(400, 300).write_to_file(str(data / "files" / "p.jpg"))
    settings = Settings(data_dir=str(data))
    keys = ApiKeys(connect(settings.job_database))
    shop, other = keys.add("shop", budget=2.5), keys.add("other", budget=100, soft_budget=True)
    receiver = Receiver()
    env = {"PIXELMILL_COST_REQUEST": "1", "PIXELMILL_COST_CPU_HOUR": "0.04",
           "PIXELMILL_BUDGET_WEBHOOK": receiver.url, "PIXELMILL_WEBHOOK_SECRET": "s3cret",
           "PIXELMILL_ALLOW_PRIVATE_HOSTS": "1", "PIXELMILL_SIGNING_KEYS": "sign"}  # fmt: skip
    try:
        _, base = serve(processes, "serve", free_port(), data, "--workers", "1", env=env)
        mine = {"X-API-Key": shop}
        made = httpx.post(f"{base}/v1/jobs/upload", headers=mine,
                          files={"file": ("a.png", photo(64, 48).pngsave_buffer())},
                          data={"pipeline": "resize:fit:32"})  # fmt: skip
        assert made.status_code == 202, made.text
        link = made.json()["links"]["self"]
        job = httpx.get(base + link, params={"wait": 30}, headers=mine, timeout=60).json()
        assert job["state"] == "succeeded", job
        path = signed_path("sign", "resize:fit:100/encode:webp", str(data / "files" / "p.jpg"))
        render = httpx.get(base + path, headers=mine)
        assert render.status_code == 200
        assert httpx.get(base + path, headers=mine).content == render.content  # a repeat
        unkeyed = signed_path("sign", "resize:fit:80", str(data / "files" / "p.jpg"))
        assert httpx.get(base + unkeyed).status_code == 200  # no key: the service's own
        found = httpx.get(f"{base}/v1/usage", params={"by": "pipeline"}, headers=mine).json()
        assert {r["pipeline"]: r["work"] for r in found["rows"]} == {
            "resize:fit:32": 1, "resize:fit:100/encode:webp": 1}
        assert found["total"]["bytes_served"] == len(render.content)
        assert found["total"]["cpu_seconds"] > 0 and found["budgets"][0]["key"] == "shop"
        theirs = httpx.get(f"{base}/v1/usage", headers={"X-API-Key": other}).json()
        assert theirs["rows"] == [] and theirs["budgets"][0]["key"] == "other"
        httpx.get(base + signed_path("sign", "resize:fit:90", str(data / "files" / "p.jpg")),
                  headers=mine)  # the third piece of work: 3 of 2.5
        refused = httpx.post(f"{base}/v1/jobs", headers=mine,
                             json={"sources": ["uploads/x.png"], "pipeline": "grayscale"})
        assert refused.status_code == 402
        assert refused.json()["detail"]["kind"] == "budget"
        assert "budget of 2.50" in refused.json()["detail"]["message"]
        assert httpx.get(base + path, headers=mine).status_code == 402
        assert httpx.get(f"{base}/v1/usage", headers=mine).status_code == 200
        text = httpx.get(f"{base}/metrics").text
        assert 'pixelmill_budget_used_ratio{key="shop"} 1.2' in text
        assert 'pixelmill_usage_work_total{key="shop",origin="job",pipeline="' in text
        assert 'pixelmill_usage_work_total{key="shop",origin="ondemand",pipeline="' in text
        deadline = time.monotonic() + 30
        while len(receiver.calls) < 2:
            assert time.monotonic() < deadline, "no budget webhooks"
            time.sleep(0.2)
    finally:
        receiver.close()
    sent = sorted((json.loads(body) for _, body, _ in receiver.calls),
                  key=lambda s: s["threshold"])  # fmt: skip
    assert [(s["key"], s["threshold"], s["refusing"]) for s in sent] == [
        ("shop", 80, False), ("shop", 100, True)]
    headers, body, _ = receiver.calls[0]
    assert hmac.compare_digest(headers["X-Pixelmill-Signature"],
                               signature("s3cret", headers["X-Pixelmill-Timestamp"], body))
    with connect(settings.job_database).connect() as db:
        keys_of = db.execute(sa.text("SELECT key FROM pixelmill_usage ORDER BY id")).scalars()
        assert list(keys_of) == ["shop", "shop", "", "shop"]  # repeats from the cache are not


def test_the_alert_rules_use_metrics_the_service_exports() -> None:
    import re
    from pathlib import Path

    import yaml

    import pixelmill

    root = Path(__file__).parent.parent
    rules = [rule for group in yaml.safe_load((root / "deploy/prometheus/alerts.yml").read_text())
             ["groups"] for rule in group["rules"]]  # fmt: skip
    assert {r["alert"] for r in rules} >= {"PixelmillBudget80", "PixelmillBudgetSpent",
                                           "PixelmillQueueBacklog", "PixelmillOldestJobWaiting"}
    source = "".join(p.read_text() for p in Path(pixelmill.__file__).parent.rglob("*.py"))
    for rule in rules:
        assert rule["labels"]["severity"] in ("warning", "critical") and rule["annotations"]
        for name in re.findall(r"pixelmill_[a-z_]+", rule["expr"]):
            assert f'"{name}"' in source, f"{rule['alert']}: no metric {name}"
