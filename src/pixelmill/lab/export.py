"""Export: a trained net to ONNX with the manifest the tiled engine reads, checked against
PyTorch, and registered into a models folder.

The graph comes from torch's dynamo exporter (``torch.export`` with onnxscript): it runs
offline and gives a plain graph (Pad, Sub, Conv, Relu, Add, DepthToSpace) with symbolic
batch, height and width. ``precision`` makes the float16 (``NAME-fp16``) or int8
(``NAME-int8``) variant instead, from the same graph (see :mod:`pixelmill.lab.quantize`).
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from pixelmill.api import add_model
from pixelmill.config import Settings
from pixelmill.errors import ModelError, UsageError
from pixelmill.lab import checkpoints, prune, quantize
from pixelmill.lab.data import Pairs
from pixelmill.lab.nets import ConvNet
from pixelmill.lab.recipe import Recipe, parse
from pixelmill.models.manifest import Manifest
from pixelmill.models.registry import BUNDLED, ModelFile

TOLERANCE = 1e-4
"""Largest difference allowed between the ONNX model's output and PyTorch's."""
PARITY_SHAPE = (2, 3, 37, 45)
"""A batch of odd sizes, unlike any traced shape, to exercise the symbolic dimensions."""
PRECISIONS = ("fp32", "fp16", "int8")
"""What ``export`` makes; the last two are suffixed to the model's name."""
DISTILLED = "distilled from"
"""How the provenance of a distilled model says so."""
INT8 = "int8 static quantization (QDQ; per-channel int8 weights, uint8 activations)"
FP16 = "float16 weights and operators"


@contextlib.contextmanager
def quiet_exporter() -> Iterator[None]:
    """Silence the exporter's chatter (optional torchvision ops, deprecations in torch)."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def to_onnx(net: ConvNet, path: Path, opset: int) -> None:
    """Write ``net`` as one ONNX file with input ``input`` (N×3×h×w) and output ``output``."""
    net = net.cpu().eval()
    dims = {0: torch.export.Dim("n", min=1), 2: torch.export.Dim("h", min=1),
            3: torch.export.Dim("w", min=1)}  # fmt: skip
    example = torch.rand(1, 3, 64, 64)
    with quiet_exporter():
        program = torch.onnx.export(
            net, (example,), dynamo=True, verbose=False, opset_version=opset,
            input_names=["input"], output_names=["output"], dynamic_shapes=(dims,),
        )  # fmt: skip
        path.parent.mkdir(parents=True, exist_ok=True)
        program.save(str(path), external_data=False)
    strip_traces(path)


def strip_traces(path: Path) -> None:
    """Drop what the exporter records about each node (its Python stack, with the source
    files of the machine that exported it): a shipped model carries only its graph."""
    import onnx

    model = onnx.load(path)
    for node in model.graph.node:
        del node.metadata_props[:]
        node.doc_string = ""
    for value in [*model.graph.input, *model.graph.output, *model.graph.value_info]:
        del value.metadata_props[:]
    del model.metadata_props[:]
    onnx.save(model, path)


def parity(net: ConvNet, path: Path, tolerance: float = TOLERANCE) -> float:
    """The largest difference between onnxruntime's and PyTorch's outputs on a random batch;
    a model differing by more than ``tolerance`` is refused."""
    import onnxruntime as ort

    batch = torch.rand(*PARITY_SHAPE, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = net.cpu().eval()(batch).numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": batch.numpy()})[0]
    if got.shape != expected.shape:
        raise ModelError(f"{path}: ONNX output {got.shape}, PyTorch's {expected.shape}")
    difference = float(np.abs(got - expected).max())
    if difference > tolerance:
        raise ModelError(f"{path}: ONNX and PyTorch outputs differ by {difference:.2e} "
                         f"(at most {tolerance:g} allowed)")  # fmt: skip
    return difference


def manifest_for(recipe: Recipe, net: ConvNet, step: int, precision: str = "fp32",
                 calibration: int = quantize.CALIBRATION) -> Manifest:  # fmt: skip
    data = recipe.data
    mix = ", ".join(f"{k} {getattr(data, k):g}" for k in ("dead_leaves", "textures", "photos")
                    if getattr(data, k))  # fmt: skip
    folders = f"; folders {', '.join(data.folders)}" if data.folders else ""
    origin = [prune.describe(recipe.init, recipe.net)] if recipe.init else []
    if recipe.teacher is not None:
        origin.append(f"{DISTILLED} {checkpoints.label(recipe.teacher.model)} "
                      f"(weight {recipe.teacher.weight:g})")
    if recipe.follows:
        origin.append(f"trained on the outputs of {' then '.join(recipe.follows)}, to follow "
                      "it in a pipeline")  # fmt: skip
    reduced = {"fp32": "", "fp16": f"; {FP16}",
               "int8": f"; {INT8}, calibrated on {calibration} patches of its data"}  # fmt: skip
    return Manifest(
        name=recipe.name if precision == "fp32" else f"{recipe.name}-{precision}",
        version=recipe.version, task=recipe.task, scale=recipe.scale,
        channels=3, colour="rgb", receptive_field=net.receptive_field, tile=recipe.export.tile,
        value_range=(0.0, 1.0), fp16=recipe.export.fp16 or precision == "fp16",
        provenance=(f"pixelmill lab: {recipe.net.arch} {[w for _, w in net.spec.layers]}, "
                    f"{step} steps of recipe {recipe.name} (seed {recipe.train.seed})"
                    + "".join(f", {words}" for words in origin)
                    + f"; data: {mix}{folders}{reduced[precision]}"),
        licence=recipe.licence, description=recipe.description,
    )  # fmt: skip


def export(checkpoint: Path, folder: Path, precision: str = "fp32", *,
           calibration: int = quantize.CALIBRATION,
           settings: Settings | None = None) -> tuple[Path, str]:  # fmt: skip
    """Write ``NAME.onnx`` and ``NAME.json`` for a checkpoint (or a run folder's latest) into
    ``folder``, or ``NAME-fp16`` / ``NAME-int8`` (calibrated on ``calibration`` patches of the
    recipe's data); returns the ONNX path and the check it passed, in words."""
    if precision not in PRECISIONS:
        raise UsageError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    state = checkpoints.load(checkpoint)
    recipe = parse(state["recipe"], str(state["path"]))
    net = checkpoints.net_from(state)
    manifest = manifest_for(recipe, net, state["step"], precision, calibration)
    path = folder / f"{manifest.name}.onnx"
    if precision == "fp32":
        to_onnx(net, path, recipe.export.opset)
        check = f"ONNX matches PyTorch within {parity(net, path):.1e}"
    else:
        with tempfile.TemporaryDirectory(prefix="pixelmill-export-") as work:
            plain = Path(work) / "fp32.onnx"
            to_onnx(net, plain, recipe.export.opset)
            parity(net, plain)
            path.parent.mkdir(parents=True, exist_ok=True)
            check = _reduced(precision, net, plain, path, recipe, calibration, settings)
    path.with_suffix(".json").write_text(manifest.to_json())
    return path, check


def _reduced(precision: str, net: ConvNet, plain: Path, path: Path, recipe: Recipe,
             calibration: int, settings: Settings | None) -> str:  # fmt: skip
    """Write the float16 or int8 variant of the float32 model ``plain`` to ``path``, check it
    against PyTorch, and say how it compares."""
    if precision == "fp16":
        quantize.to_fp16(plain, path)
        difference = parity(net, path, quantize.FP16_TOLERANCE)
        return f"float16 ONNX matches PyTorch within {difference:.1e}"
    pairs = Pairs(recipe, settings or Settings.load())
    quantize.to_int8(plain, path, pairs, calibration)
    psnr = quantize.agreement(net, path, pairs, calibration)
    return (f"int8 ONNX agrees with PyTorch at {psnr:.1f} dB PSNR on {quantize.CHECK_PATCHES} "
            "patches unseen by calibration")  # fmt: skip


def register(path: Path, target: str, settings: Settings) -> ModelFile:
    """Copy an exported model into the user models folder, the package's bundled folder, or
    any folder, once it loads and matches its manifest."""
    folder = {"user": None, "bundled": str(BUNDLED)}.get(target, target)
    return add_model(path, settings=settings.replace(models_dir=folder))[0]
