"""Small convolutional ONNX models with seeded random weights and a known receptive field, for
tests and benchmarks until trained models ship (needs the ``onnx`` package: extras test, bench).

Each is a stack of 3×3 convolutions with ReLU between them (receptive field radius = number of
convolutions), ending in a depth-to-space for upscalers and a sigmoid so outputs stay in 0..1.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pixelmill.models.manifest import Manifest


def build(folder: Path, name: str, scale: int = 2, channels: int = 3, width: int = 16,
          layers: int = 3, seed: int = 0) -> Path:  # fmt: skip
    """Write ``NAME.onnx`` and ``NAME.json`` into ``folder``; returns the ONNX path."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    nodes, weights = [], []
    current, fan_in = "input", channels
    for index in range(layers):
        last = index == layers - 1
        out_channels = channels * scale * scale if last else width
        w = rng.normal(0, np.sqrt(2 / (9 * fan_in)), (out_channels, fan_in, 3, 3))
        b = rng.normal(0, 0.05, out_channels)
        weights += [numpy_helper.from_array(w.astype(np.float32), f"w{index}"),
                    numpy_helper.from_array(b.astype(np.float32), f"b{index}")]  # fmt: skip
        conv = f"conv{index}"
        nodes.append(helper.make_node("Conv", [current, f"w{index}", f"b{index}"], [conv],
                                      kernel_shape=[3, 3], pads=[1, 1, 1, 1]))  # fmt: skip
        current, fan_in = conv, out_channels
        if not last:
            nodes.append(helper.make_node("Relu", [conv], [f"relu{index}"]))
            current = f"relu{index}"
    if scale > 1:
        nodes.append(helper.make_node("DepthToSpace", [current], ["shuffled"], blocksize=scale,
                                      mode="CRD"))  # fmt: skip
        current = "shuffled"
    nodes.append(helper.make_node("Sigmoid", [current], ["output"]))
    graph = helper.make_graph(
        nodes, name,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["n", channels, "h", "w"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["n", channels, "H", "W"])],
        weights,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.onnx"
    onnx.save(model, path)
    manifest = Manifest(
        name=name, version="1", task="super-resolution" if scale > 1 else "filter", scale=scale,
        channels=channels, colour="rgb" if channels == 3 else "gray", receptive_field=layers,
        tile=128, provenance=f"random weights, seed {seed}", licence="Apache-2.0",
        description=f"toy {layers}-layer convolutional model for tests",
    )  # fmt: skip
    path.with_suffix(".json").write_text(manifest.to_json())
    return path
