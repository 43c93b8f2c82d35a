"""Reduced-precision variants of an exported model: int8 for CPUs, float16 for GPUs.

**int8** is onnxruntime's static quantization in QDQ form: int8 weights per output channel,
uint8 activations whose ranges are calibrated (min/max) on patches from the recipe's own data
pipeline — degraded inputs, the distribution the model meets. Only the learned convolutions
and their ReLUs are quantized (a ReLU is folded into its convolution's output range, so it
costs nothing); the fixed bicubic base, the sum and the pixel shuffle stay in float, so the
base image keeps full precision and no layout conversion is inserted. On an x86 CPU with
AVX-512 VNNI this ran about 1.9× faster than float32 on one thread for ESPCN-sized nets;
the measured alternatives were no faster: QOperator form (onnxruntime fuses QDQ into the
same QLinearConv kernels), signed activations, ``reduce_range`` (meant for CPUs without
VNNI, where it avoids saturation), per-tensor weights. Quantizing everything, or leaving the
first or last convolution in float for accuracy, was slower: each switch between int8 and
float inserts conversions and layout reorders that cost more than the layer saves.

**float16** converts every weight and operator with onnxruntime's converter, keeping float32
input and output (two casts), so the model takes the same feeds as its float32 original.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from onnxruntime.quantization import CalibrationDataReader

from pixelmill.errors import ModelError
from pixelmill.lab.data import Pairs
from pixelmill.lab.nets import BICUBIC

CALIBRATION = 64
"""Patches the int8 activation ranges are calibrated on."""
CALIBRATION_BATCH = 8
CHECK_PATCHES = 16
"""Patches, unseen by calibration, on which the int8 model is compared with PyTorch."""
INT8_MIN_PSNR = 40.0
"""Least agreement (PSNR in dB on 0..1) of the int8 model with PyTorch on those patches."""
FP16_TOLERANCE = 2e-3
"""Largest difference allowed between the float16 model's output and PyTorch's."""


def to_fp16(source: Path, target: Path) -> None:
    """Write ``source`` with float16 weights and operators, float32 input and output."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    converted = convert_float_to_float16(onnx.load(source), keep_io_types=True)
    onnx.save(converted, target)


def to_int8(source: Path, target: Path, pairs: Pairs, patches: int = CALIBRATION) -> None:
    """Write ``source`` statically quantized to int8, calibrated on the inputs of the first
    ``patches`` samples of ``pairs``."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )  # fmt: skip
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory(prefix="pixelmill-int8-") as work, _quiet():
        prepared = Path(work) / "prepared.onnx"
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        base = [node.name for node in onnx.load(prepared).graph.node
                if node.op_type == "Conv" and node.input[1] == BICUBIC]  # fmt: skip
        quantize_static(
            str(prepared), str(target), _Calibration(pairs, range(patches)),
            quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8, per_channel=True, reduce_range=False,
            op_types_to_quantize=["Conv", "Relu"], nodes_to_exclude=base,
            calibrate_method=CalibrationMethod.MinMax,
        )  # fmt: skip


def agreement(net: torch.nn.Module, path: Path, pairs: Pairs, first: int) -> float:
    """PSNR (dB, on 0..1) of the ONNX model's output against PyTorch's on the inputs of
    :data:`CHECK_PATCHES` samples of ``pairs`` from index ``first``; an int8 model below
    :data:`INT8_MIN_PSNR` is refused."""
    import onnxruntime as ort

    batch = np.stack([pairs[i][0].numpy() for i in range(first, first + CHECK_PATCHES)])
    with torch.no_grad():
        expected = net.cpu().eval()(torch.from_numpy(batch)).numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": batch})[0]
    error = float(np.mean((got.astype(np.float64) - expected) ** 2))
    psnr = float("inf") if error == 0 else float(10 * np.log10(1 / error))
    if psnr < INT8_MIN_PSNR:
        raise ModelError(f"{path}: the int8 model agrees with PyTorch at {psnr:.1f} dB PSNR "
                         f"only (at least {INT8_MIN_PSNR:g} dB required)")  # fmt: skip
    return psnr


class _Calibration(CalibrationDataReader):
    """Batches of degraded input patches, for onnxruntime's calibration."""

    def __init__(self, pairs: Pairs, indexes: range) -> None:
        self._batches = (
            {"input": np.stack([pairs[i][0].numpy() for i in chunk])}
            for chunk in (indexes[j : j + CALIBRATION_BATCH]
                          for j in range(0, len(indexes), CALIBRATION_BATCH))
        )  # fmt: skip

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the quantizer's advice, which is written to the root logger."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)
