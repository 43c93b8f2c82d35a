"""Stopping a training with a signal keeps its work: a checkpoint is written, and the run goes
on from it with --resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import yaml


def test_sigterm_checkpoints_and_resume_goes_on(tmp_path, tiny_recipe) -> None:
    recipe = tiny_recipe(train={"steps": 100000, "checkpoint_every": 100000})
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(recipe))
    run = tmp_path / "run"
    command = [sys.executable, "-m", "pixelmill", "lab", "train", str(tmp_path / "tiny.yaml"),
               "--out", str(run), "--threads", "1", "--workers", "0", "--register", "none"]
    child = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (run / "recipe.yaml").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    child.send_signal(signal.SIGTERM)  # the run has begun: the step under way is its last
    assert child.wait(timeout=60) == 143
    message = child.stderr.read()
    assert "stopped at step" in message and "go on with --resume" in message
    saved = sorted(os.listdir(run / "checkpoints"))
    assert len(saved) == 1
    done = int(saved[0].split("-")[1].split(".")[0])
    assert 0 < done < 100000
    resumed = subprocess.run([*command, "--resume", "--steps", str(done + 3)],
                             capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming at step {done}" in resumed.stderr
