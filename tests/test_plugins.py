"""Plugins by entry points: the sample plugin (``tests/plugins/sample``, put on ``PYTHONPATH`` as
an installed package would be) adds a step, a metric and a storage rule, used through the
command line, the API and a job; plugins that clash with a built-in or name something else are
refused with one clear line."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import pytest
import pyvips
from conftest import photo, plugin_path
from test_service import free_port
from test_service_reliability import processes, serve  # noqa: F401  (a fixture)


def pixelmill(*args: str, path: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pixelmill", *args], capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": path}, timeout=120,
                          check=False)  # fmt: skip


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> str:
    return plugin_path("sample", tmp_path_factory.mktemp("plugins"))


def test_a_plugin_step_metric_and_rule_work_from_the_command_line(sample, tmp_path) -> None:
    listed = pixelmill("ops", path=sample)
    assert listed.returncode == 0 and "sepia:[AMOUNT]  (from pixelmill-sample-plugin)" in listed.stdout
    metrics = pixelmill("metrics", path=sample)
    assert "mean-red" in metrics.stdout and "(from pixelmill-sample-plugin)" in metrics.stdout
    source = tmp_path / "in.png"
    photo(64, 48).write_to_file(str(source))
    done = pixelmill("run", str(source), str(tmp_path / "out.png"), "-p",
                     "sepia:0.9/qc:mean-red>=0.05", path=sample)  # fmt: skip
    assert done.returncode == 0, done.stderr
    toned = pyvips.Image.new_from_file(str(tmp_path / "out.png"))
    assert toned[0].avg() > toned[2].avg() + 20  # red over blue: sepia
    scored = pixelmill("compare", str(source), str(tmp_path / "out.png"), "-m", "mean-red",
                       "--json", path=sample)  # fmt: skip
    assert scored.returncode == 0 and "mean-red" in scored.stdout
    (tmp_path / "drafts").mkdir()
    refused = pixelmill("run", str(source), str(tmp_path / "drafts" / "o.png"), path=sample)
    assert refused.returncode == 5
    assert "refused by storage rule 'no-drafts' of pixelmill-sample-plugin" in refused.stderr
    assert pixelmill("run", str(source), str(tmp_path / "o.png"), "-p", "sepia",
                     path="").returncode == 2  # without the plugin: an unknown step


@pytest.mark.timeout(120)
def test_a_plugin_step_runs_through_the_api_and_a_job(sample, tmp_path,
                                                     processes) -> None:  # noqa: F811
    import base64

    from pixelmill.service.ondemand import signature

    data = tmp_path / "data"
    env = {"PYTHONPATH": sample, "PIXELMILL_SIGNING_KEYS": "k"}
    _, base = serve(processes, "serve", free_port(), data, "--workers", "1", env=env)
    made = httpx.post(f"{base}/v1/jobs/upload", data={"pipeline": "sepia:0.5/encode:png"},
                      files={"file": ("a.png", photo(64, 48).pngsave_buffer())})  # fmt: skip
    assert made.status_code == 202, made.text
    deadline = time.monotonic() + 60
    while (job := httpx.get(f"{base}/v1/jobs/{made.json()['id']}", params={"wait": 5}).json()
           )["state"] not in ("succeeded", "failed", "dead"):  # fmt: skip
        assert time.monotonic() < deadline
    assert job["state"] == "succeeded", job
    source = base64.urlsafe_b64encode(made.json()["source"].encode()).rstrip(b"=").decode()
    rest = f"sepia:0.5/encode:png/{source}"  # signed here, where the plugin is not installed
    rendered = httpx.get(f"{base}/img/{signature('k', rest)}/{rest}")
    assert rendered.status_code == 200 and rendered.content.startswith(b"\x89PNG")


def test_plugins_that_clash_or_name_something_else_are_refused(sample, tmp_path) -> None:
    for name, target, says in (
        ("clash", "pixelmill.engine.steps.blur:OP",
         "its step 'blur' has the name of a step of pixelmill"),
        ("odd", "pixelmill_sample:TONE", "is not a step"),
        ("broken", "pixelmill_sample:MISSING", "cannot be loaded"),
    ):
        folder = tmp_path / name
        info = folder / f"pixelmill_{name}-0.1.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: pixelmill-{name}\n"
                                       "Version: 0.1\n")  # fmt: skip
        (info / "entry_points.txt").write_text(f"[pixelmill.steps]\n{name} = {target}\n")
        done = pixelmill("ops", path=f"{folder}{os.pathsep}{sample}")
        assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
        assert f"plugin {name!r} of pixelmill-{name} (pixelmill.steps): " in done.stderr
        assert says in done.stderr and "Traceback" not in done.stderr
