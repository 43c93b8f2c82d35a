"""Optimising lab models: channel pruning with fine-tuning, int8 and float16 variants run by
the engine, and model cards."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
import yaml
from conftest import load, photo
from test_lab_nets import support_radius

from pixelmill.cli import main
from pixelmill.config import Settings
from pixelmill.errors import ModelError, UsageError
from pixelmill.lab import card, checkpoints, export, prune, quantize
from pixelmill.lab.data import Pairs
from pixelmill.lab.nets import BICUBIC, ConvNet, NetSpec, parameters
from pixelmill.lab.recipe import parse
from pixelmill.lab.train import train

torch.set_num_threads(1)


def pixelmill(*args: str | Path) -> None:
    with pytest.raises(SystemExit) as stop:
        main([str(a) for a in args])
    assert stop.value.code == 0


@pytest.fixture(scope="module")
def variants(tmp_path_factory: pytest.TempPathFactory, trained_tiny: tuple[Path, Path]) -> Path:
    """The tiny model, its int8 and float16 variants and a pruned one, installed in a models
    folder of their own, which is returned."""
    run, _ = trained_tiny
    root = tmp_path_factory.mktemp("variants")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PIXELMILL_MODELS_DIR", str(root / "models"))
        for precision in export.PRECISIONS:
            pixelmill("lab", "export", run, "--out", root / "onnx", "--precision", precision,
                      "--calibration", "16")  # fmt: skip
        pixelmill("lab", "prune", run, "--keep", "0.5", "--steps", "2", "--out", root / "pruned",
                  "--threads", "1", "--workers", "0", "-q")  # fmt: skip
    return root / "models"


def test_pruning_keeps_the_filters_of_largest_l1_norm() -> None:
    torch.manual_seed(0)
    net = ConvNet(NetSpec("espcn", 2, (8, 6))).eval()
    first, second, _ = (layer for layer in net.body if isinstance(layer, torch.nn.Conv2d))
    with torch.no_grad():  # dead filters: nothing downstream depends on them
        for layer, dead in ((first, [1, 4, 6, 7]), (second, [0, 2, 5])):
            layer.weight[dead] = 0
            layer.bias[dead] = 0
    pruned = prune.narrow(net, prune.narrower(net.spec, 0.5))
    assert pruned.spec.widths == (4, 3)
    assert parameters(pruned) < parameters(net) / 2
    image = torch.rand(2, 3, 19, 23)
    with torch.no_grad():
        assert torch.allclose(pruned(image), net(image), atol=1e-6)
    assert pruned.receptive_field == net.receptive_field == support_radius(pruned)


def test_narrowing_is_checked() -> None:
    spec = NetSpec("espcn", 2, (64, 32))
    assert prune.narrower(spec, 0.3).widths == (19, 10)
    assert prune.narrower(spec, 0.001).widths == (1, 1)
    assert prune.narrower(NetSpec("fsrcnn", 2), 0.5).widths == (28, 6, 6, 6, 6, 6, 28)
    with pytest.raises(UsageError, match="keep 0 is not within 0..1"):
        prune.narrower(spec, 0)
    net = ConvNet(NetSpec("espcn", 2, (8, 8)))
    with pytest.raises(UsageError, match=r"widths \[16, 8\] are not within the net's \[8, 8\]"):
        prune.narrow(net, NetSpec("espcn", 2, (16, 8)))
    with pytest.raises(UsageError, match="a espcn ×2 net cannot become a dncnn ×2 one"):
        prune.narrow(net, NetSpec("dncnn", 2))


def test_fine_tuning_recovers_what_pruning_lost(tmp_path, tiny_recipe) -> None:
    denoise = {"task": "denoise", "scale": 1, "net": {"arch": "dncnn", "widths": [8] * 6},
               "degradation": [{"noise": {"sigma": 25}}]}  # fmt: skip
    steps = {"steps": 20, "batch": 8, "patch": 16, "lr": 0.005, "schedule": "constant"}
    source = train(parse(tiny_recipe(**denoise, train=steps), "t"), tmp_path / "full")
    recipe = prune.recipe_for(tmp_path / "full", 0.5, 15)
    assert recipe.net.widths == (4,) * 6 and recipe.init == str(source.resolve())
    assert recipe.name == "tiny-x2-pruned" and recipe.train.lr == 0.005
    cut = prune.narrow(checkpoints.net_from(checkpoints.load(source)), recipe.net)

    still = parse({**recipe.to_dict(), "train": {**recipe.to_dict()["train"], "steps": 1,
                   "lr": 1e-12}}, "still")  # fmt: skip
    started = checkpoints.load(train(still, tmp_path / "still"))["model"]
    assert all(torch.allclose(started[k], v, atol=1e-9) for k, v in cut.state_dict().items())

    tuned = checkpoints.net_from(checkpoints.load(train(recipe, tmp_path / "tuned")))
    unseen = Pairs(parse(tiny_recipe(**denoise, train={"seed": 99}), "t"), Settings())
    degraded, target = (torch.stack(t) for t in zip(*(unseen[i] for i in range(32))))
    with torch.no_grad():
        errors = [float((net(degraded) - target).abs().mean()) for net in (cut.eval(), tuned)]
    assert errors[1] < 0.99 * errors[0]


def test_init_must_fit_the_recipe(trained_tiny) -> None:
    run, _ = trained_tiny
    with pytest.raises(UsageError, match="init .*: a espcn ×2 net cannot become a dncnn ×2"):
        prune.initial(str(run), NetSpec("dncnn", 2))


def test_a_pruned_run_is_a_run_like_any_other(variants, trained_tiny) -> None:
    folder = variants.parent / "pruned"
    recipe = parse(yaml.safe_load((folder / "recipe.yaml").read_text()), "saved")
    assert recipe == prune.recipe_for(trained_tiny[0], 0.5, 2)
    assert recipe.net.widths == (4, 4) and recipe.init is not None
    manifest = json.loads((variants / "tiny-x2-pruned.json").read_text())
    assert f"{prune.PRUNED} run step 6 ([8, 8] → [4, 4] channels)" in manifest["provenance"]
    assert manifest["receptive_field"] == 4
    again = train(recipe, folder, resume=True)  # already finished: nothing to do
    assert again.name == "step-0000002.pt"


def engine_output(cli, tmp_path: Path, model: str) -> np.ndarray:
    source = tmp_path / "in.png"
    if not source.exists():
        photo(70, 50).write_to_file(str(source))
    status, _, stderr = cli("run", source, tmp_path / f"{model}.png", "-p",
                            f"model:{model}:tile=24")  # fmt: skip
    assert status == 0, stderr
    return load(tmp_path / f"{model}.png").numpy().astype(np.float64)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255**2 / max(np.mean((a - b) ** 2), 1e-12)))


def test_the_int8_variant_runs_in_the_engine_close_to_float(
    cli, tmp_path, variants, trained_tiny, monkeypatch
) -> None:
    monkeypatch.setenv("PIXELMILL_MODELS_DIR", str(variants))
    path = variants / "tiny-x2-int8.onnx"
    manifest = json.loads(path.with_suffix(".json").read_text())
    assert manifest["name"] == "tiny-x2-int8" and not manifest.get("fp16")
    assert export.INT8 in manifest["provenance"]
    graph = onnx.load(path).graph
    assert {"QuantizeLinear", "DequantizeLinear"} <= {node.op_type for node in graph.node}
    base = next(node for node in graph.node if node.op_type == "Conv" and BICUBIC in node.input)
    made_by = {output: node.op_type for node in graph.node for output in node.output}
    assert made_by[base.input[0]] == "Pad"  # the bicubic base stays float: not quantized
    plain = onnx.load(variants / "tiny-x2.onnx").graph
    assert "Resize" not in {node.op_type for node in plain.node}  # slow on CPUs
    net = checkpoints.net_from(checkpoints.load(trained_tiny[0]))
    assert card.weights(path) == (parameters(net), "int8")
    assert card.weights(variants / "tiny-x2.onnx") == (parameters(net), "fp32")

    exact, quantized = (engine_output(cli, tmp_path, m) for m in ("tiny-x2", "tiny-x2-int8"))
    assert quantized.shape == exact.shape == (100, 140, 3)
    assert 35 < psnr(quantized, exact) < 100  # close, yet really quantized


def test_int8_is_refused_when_it_disagrees(tmp_path, trained_tiny, monkeypatch) -> None:
    monkeypatch.setattr(quantize, "INT8_MIN_PSNR", 200.0)
    with pytest.raises(ModelError, match="int8 model agrees with PyTorch at .* dB PSNR"):
        export.export(trained_tiny[0], tmp_path, "int8", calibration=8)
    with pytest.raises(UsageError, match="precision 'int4' is not one of fp32, fp16, int8"):
        export.export(trained_tiny[0], tmp_path, "int4")


def test_the_fp16_variant_has_half_weights_and_matches(
    cli, tmp_path, variants, trained_tiny, monkeypatch
) -> None:
    monkeypatch.setenv("PIXELMILL_MODELS_DIR", str(variants))
    path = variants / "tiny-x2-fp16.onnx"
    manifest = json.loads(path.with_suffix(".json").read_text())
    assert manifest["name"] == "tiny-x2-fp16" and manifest["fp16"]
    net = checkpoints.net_from(checkpoints.load(trained_tiny[0]))
    assert card.weights(path) == (parameters(net), "fp16")
    assert 0 < export.parity(net, path, quantize.FP16_TOLERANCE) <= quantize.FP16_TOLERANCE
    with pytest.raises(ModelError, match="ONNX and PyTorch outputs differ"):
        export.parity(net, path)  # float16 is not float32
    half, exact = (engine_output(cli, tmp_path, m) for m in ("tiny-x2-fp16", "tiny-x2"))
    assert np.abs(half - exact).max() <= 1


def test_the_card_has_a_row_of_finite_figures_per_variant(
    cli, tmp_path, variants, trained_tiny, monkeypatch
) -> None:
    monkeypatch.setenv("PIXELMILL_MODELS_DIR", str(variants))
    models = ["tiny-x2", "tiny-x2-int8", "tiny-x2-fp16", "tiny-x2-pruned"]
    out = tmp_path / "tiny.card.md"
    status, _, stderr = cli("lab", "card", *models, "--out", out, "--json", "--repeats", "1",
                            "--side", "48", "--recipe", trained_tiny[0])  # fmt: skip
    assert status == 0, stderr
    result = json.loads((tmp_path / "tiny.card.json").read_text())
    rows = result["rows"]
    assert [row["model"] for row in rows] == models
    assert [row["variant"] for row in rows] == ["fp32", "int8", "fp16", "pruned + fp32"]
    for row in rows:
        for key in ("parameters", "file_bytes", "mp_per_s", "psnr", "ssim", "speedup"):
            assert math.isfinite(row[key]) and row[key] > 0, (row["model"], key)
        assert 20 < row["psnr"] < 45 and 0.5 < row["ssim"] <= 1
        scores = f"pixelmill lab eval {row['model']} --track classic --json"
        assert row["commands"]["scores"] == scores
    assert rows[0]["parameters"] == rows[1]["parameters"] > rows[3]["parameters"]
    assert rows[0]["speedup"] == 1 and rows[0]["psnr_gap"] == 0
    assert set(result["baselines"]) == {"bicubic", "lanczos"}
    assert result["speed"]["threads"] == 1 and result["recipe"]["name"] == "tiny-x2"
    text = (tmp_path / "tiny.card.md").read_text()
    for model in models:
        assert f"| {model} |" in text and f"pixelmill lab eval {model} --track classic" in text
    assert "## Training data" in text and "```yaml\nname: tiny-x2\n" in text
    assert "dead leaves 60%, procedural textures" in result["training_data"]


def test_a_card_needs_installed_models(cli, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PIXELMILL_MODELS_DIR", str(tmp_path))
    status, _, stderr = cli("lab", "card", "nothing-here")
    assert status == 2 and "unknown model 'nothing-here'" in stderr
