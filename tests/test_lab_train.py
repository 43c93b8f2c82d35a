"""Training, resuming, exporting and evaluating with the lab, end to end on a tiny recipe."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml
from conftest import load, photo

from pixelmill.config import Settings
from pixelmill.errors import ModelError, UsageError
from pixelmill.lab import checkpoints, export
from pixelmill.lab.data import Pairs
from pixelmill.lab.nets import ConvNet, NetSpec
from pixelmill.lab.recipe import Teacher, parse
from pixelmill.lab.train import load_teacher, train

torch.set_num_threads(1)


def weights(checkpoint) -> dict[str, torch.Tensor]:
    return checkpoints.load(checkpoint)["model"]


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_training_is_reproducible_and_resumes_exactly(tmp_path, tiny_recipe) -> None:
    recipe = parse(tiny_recipe(), "tiny")
    whole = train(recipe, tmp_path / "whole")
    assert whole.name == "step-0000006.pt"
    assert sorted(p.name for p in (tmp_path / "whole" / "checkpoints").iterdir()) == [
        "step-0000003.pt", "step-0000006.pt"]  # fmt: skip
    assert (tmp_path / "whole" / "loss.png").stat().st_size > 1000
    saved = yaml.safe_load((tmp_path / "whole" / "recipe.yaml").read_text())
    assert parse(saved, "saved") == recipe

    again = train(recipe, tmp_path / "again", workers=2)
    assert same(weights(again), weights(whole))  # whatever the loader processes
    other = train(parse(tiny_recipe(train={"seed": 1}), "tiny"), tmp_path / "other")
    assert not same(weights(other), weights(whole))

    (tmp_path / "cut" / "checkpoints").mkdir(parents=True)
    shutil.copy(tmp_path / "whole" / "checkpoints" / "step-0000003.pt",
                tmp_path / "cut" / "checkpoints")  # fmt: skip
    with pytest.raises(UsageError, match="already holds a training run; add --resume"):
        train(recipe, tmp_path / "cut")
    resumed = train(recipe, tmp_path / "cut", resume=True)
    assert same(weights(resumed), weights(whole))
    assert checkpoints.load(resumed)["losses"] == checkpoints.load(whole)["losses"]

    changed = parse(tiny_recipe(train={"lr": 0.01}), "tiny")
    with pytest.raises(UsageError, match="was trained from another recipe .differs in train"):
        train(changed, tmp_path / "cut", resume=True)


def test_training_lowers_the_loss_on_unseen_pairs(tmp_path, tiny_recipe) -> None:
    denoise = {"task": "denoise", "scale": 1, "net": {"arch": "dncnn", "widths": [8] * 6},
               "degradation": [{"noise": {"sigma": 25}}]}  # fmt: skip
    steps = {"steps": 40, "batch": 8, "patch": 16, "lr": 0.005, "schedule": "constant"}
    recipe = parse(tiny_recipe(**denoise, train=steps), "t")
    unseen = Pairs(parse(tiny_recipe(**denoise, train={"seed": 99}), "t"), Settings())
    degraded, target = (torch.stack(t) for t in zip(*(unseen[i] for i in range(32))))
    torch.manual_seed(recipe.train.seed)
    before = ConvNet(recipe.net).eval()
    after = checkpoints.net_from(checkpoints.load(train(recipe, tmp_path)))
    with torch.no_grad():
        errors = [float((net(degraded) - target).abs().mean()) for net in (before, after)]
    assert errors[1] < 0.95 * errors[0]


def test_export_matches_pytorch_and_refuses_a_mismatch(tmp_path, trained_tiny) -> None:
    run, _ = trained_tiny
    net = checkpoints.net_from(checkpoints.load(run))
    assert export.parity(net, run / "tiny-x2.onnx") <= export.TOLERANCE
    assert (run / "tiny-x2.onnx").stat().st_size < 2 * 1024**2
    manifest = json.loads((run / "tiny-x2.json").read_text())
    assert manifest["receptive_field"] == net.receptive_field == 4
    assert manifest["scale"] == 2 and manifest["task"] == "super-resolution"
    assert "6 steps of recipe tiny-x2 (seed 0)" in manifest["provenance"]
    other = ConvNet(NetSpec("espcn", 2, (8, 8)))
    with pytest.raises(ModelError, match="ONNX and PyTorch outputs differ"):
        export.parity(other, run / "tiny-x2.onnx")


def test_an_exported_model_runs_in_the_tiled_engine(cli, tmp_path, trained_tiny,
                                                    monkeypatch) -> None:  # fmt: skip
    run, models = trained_tiny
    monkeypatch.setenv("PIXELMILL_MODELS_DIR", str(models))
    source = tmp_path / "in.png"
    photo(70, 50).write_to_file(str(source))
    status, _, stderr = cli("run", source, tmp_path / "out.png", "-p", "model:tiny-x2:tile=16")
    assert status == 0, stderr
    tiled = load(tmp_path / "out.png").numpy().astype(np.float32)
    assert tiled.shape == (100, 140, 3)
    net = checkpoints.net_from(checkpoints.load(run))
    image = torch.from_numpy(load(source).numpy().astype(np.float32) / 255)
    with torch.no_grad():
        whole = net(image.permute(2, 0, 1)[None])[0].permute(1, 2, 0).clamp(0, 1).numpy()
    assert np.abs(tiled - whole * 255).max() <= 1.0  # tiles equal whole-image inference


def test_eval_scores_the_model_through_the_engine(cli, trained_tiny, monkeypatch) -> None:
    monkeypatch.setenv("PIXELMILL_MODELS_DIR", str(trained_tiny[1]))
    status, out, stderr = cli("lab", "eval", "tiny-x2", "--track", "classic", "--json")
    assert status == 0, stderr
    result = json.loads(out)
    assert result["images"] == ["china", "flower", "chelsea", "coffee"]
    means = result["tracks"]["classic"]["mean"]
    assert set(means) == {"model", "bicubic", "lanczos"}
    for scores in means.values():
        assert 20 < scores["psnr"] < 45 and 0.5 < scores["ssim"] <= 1
        assert math.isfinite(scores["psnr"])
    assert abs(means["model"]["psnr"] - means["bicubic"]["psnr"]) < 3


def test_eval_of_a_restoration_model_on_a_folder(cli, tmp_path, monkeypatch, tiny_recipe) -> None:
    monkeypatch.setenv("PIXELMILL_MODELS_DIR", str(tmp_path / "models"))
    recipe = tiny_recipe(name="tiny-denoise", task="denoise", scale=1, net={"arch": "dncnn",
                         "widths": [4] * 6}, degradation=["noise"], train={"steps": 2})  # fmt: skip
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    trained = cli("lab", "train", tmp_path / "r.yaml", "--out", tmp_path / "run", "--workers", "0",
                  "-q")  # fmt: skip
    assert trained[0] == 0
    (tmp_path / "refs").mkdir()
    photo(64, 48).write_to_file(str(tmp_path / "refs" / "a.png"))
    status, out, stderr = cli("lab", "eval", "tiny-denoise", "--images", tmp_path / "refs")
    assert status == 0, stderr
    assert "classic" in out and "realistic" in out and "input" in out and "a.png" in out


def test_eval_of_a_chain_runs_the_followed_models_first(cli, tmp_path, trained_tiny,
                                                        monkeypatch) -> None:  # fmt: skip
    monkeypatch.setenv("PIXELMILL_MODELS_DIR", str(trained_tiny[1]))
    (tmp_path / "refs").mkdir()
    photo(96, 64).write_to_file(str(tmp_path / "refs" / "a.png"))
    results = []
    for chain in ((), ("--follows", "dejpeg")):
        status, out, stderr = cli("lab", "eval", "tiny-x2", *chain, "--track", "compressed",
                                  "--images", tmp_path / "refs", "--json")  # fmt: skip
        assert status == 0, stderr
        results.append(json.loads(out))
    alone, chained = results
    assert chained["pipeline"] == "model:dejpeg/model:tiny-x2" and chained["scale"] == 2
    assert alone["pipeline"] == "model:tiny-x2"
    scores = [r["tracks"]["compressed"]["mean"] for r in results]
    assert scores[0]["bicubic"] == scores[1]["bicubic"]  # the same degraded input
    assert scores[0]["model"] != scores[1]["model"]
    status, _, stderr = cli("lab", "eval", "tiny-x2", "--follows", "sr-x2", "--images",
                            tmp_path / "refs")  # fmt: skip
    assert status != 0 and "keeps the size" in stderr


def test_a_teacher_guides_training(tmp_path, tiny_recipe, trained_tiny) -> None:
    run, _ = trained_tiny
    plain = train(parse(tiny_recipe(), "t"), tmp_path / "plain")
    taught = parse(tiny_recipe(teacher={"model": str(run), "weight": 0.7}), "t")
    guided = train(taught, tmp_path / "guided")
    assert not same(weights(guided), weights(plain))
    wrong = parse(tiny_recipe(teacher={"model": str(run)}, scale=4, degradation=["resize"]), "t")
    with pytest.raises(UsageError, match="scale 2, the recipe's is 4"):
        train(wrong, tmp_path / "wrong")


def test_a_teacher_is_a_run_or_an_installed_model(trained_tiny, monkeypatch) -> None:
    run, models = trained_tiny
    monkeypatch.setenv("PIXELMILL_MODELS_DIR", str(models))
    cpu, settings = torch.device("cpu"), Settings.load()
    by_torch = load_teacher(Teacher(str(run), 0.3), 2, cpu, settings)
    by_onnx = load_teacher(Teacher("tiny-x2", 0.3), 2, cpu, settings)
    assert by_torch is not None and by_onnx is not None and by_onnx[1] == 0.3
    batch = torch.rand(3, 3, 20, 28)
    with torch.no_grad():
        assert torch.allclose(by_torch[0](batch), by_onnx[0](batch), atol=1e-5)
    assert by_onnx[0](batch).shape == (3, 3, 40, 56)


def test_lab_without_torch_says_what_to_install() -> None:
    code = ("import sys; sys.modules['torch'] = None\n"
            "from pixelmill.cli import main; main(sys.argv[1:])")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code, "lab", "train", "sr-x2"],
                          check=False, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 2
    assert (
        "pixelmill lab needs torch, which is not installed: install pixelmill[lab]" in done.stderr
    )
    done = subprocess.run([sys.executable, "-c", code, "ops"], check=False, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0 and "model:NAME" in done.stdout
