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
          layers: int = 3, seed: int = 0, *, down: int = 1, in_255: bool = False,
          score_first: bool = False, global_mean: bool = False) -> Path:  # fmt: skip
    """Write ``NAME.onnx`` and ``NAME.json`` into ``folder``; returns the ONNX path.

    ``down`` makes the first convolution strided (sides must then be multiples of it);
    ``in_255`` makes the model take and give 0..255 (dividing by 255 first); ``score_first``
    puts a one-number output before the image; ``global_mean`` adds the image's mean to every
    output pixel, which no tiling can reproduce."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    nodes, weights = [], []
    current, fan_in = "input", channels
    if in_255:
        weights.append(numpy_helper.from_array(np.float32(255.0), "peak"))
        nodes.append(helper.make_node("Div", ["input", "peak"], ["unit"]))
        current = "unit"
    for index in range(layers):
        last = index == layers - 1
        out_channels = channels * (scale * down) ** 2 if last else width
        w = rng.normal(0, np.sqrt(2 / (9 * fan_in)), (out_channels, fan_in, 3, 3))
        b = rng.normal(0, 0.05, out_channels)
        weights += [numpy_helper.from_array(w.astype(np.float32), f"w{index}"),
                    numpy_helper.from_array(b.astype(np.float32), f"b{index}")]  # fmt: skip
        conv = f"conv{index}"
        stride = down if index == 0 else 1
        nodes.append(helper.make_node("Conv", [current, f"w{index}", f"b{index}"], [conv],
                                      kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                                      strides=[stride, stride]))  # fmt: skip
        current, fan_in = conv, out_channels
        if not last:
            nodes.append(helper.make_node("Relu", [conv], [f"relu{index}"]))
            current = f"relu{index}"
    if global_mean:
        nodes += [helper.make_node("GlobalAveragePool", ["input"], ["mean"]),
                  helper.make_node("ReduceMean", ["mean"], ["level"], keepdims=1, axes=[1]),
                  helper.make_node("Add", [current, "level"], ["lifted"])]  # fmt: skip
        current = "lifted"
    if scale * down > 1:
        nodes.append(helper.make_node("DepthToSpace", [current], ["shuffled"],
                                      blocksize=scale * down, mode="CRD"))  # fmt: skip
        current = "shuffled"
    nodes.append(helper.make_node("Sigmoid", [current], ["unit_output" if in_255 else "output"]))
    if in_255:
        nodes.append(helper.make_node("Mul", ["unit_output", "peak"], ["output"]))
    outputs = [helper.make_tensor_value_info("output", TensorProto.FLOAT,
                                             ["n", channels, "H", "W"])]  # fmt: skip
    if score_first:
        nodes.append(helper.make_node("ReduceMean", ["output"], ["score"], keepdims=0))
        outputs.insert(0, helper.make_tensor_value_info("score", TensorProto.FLOAT, []))
    graph = helper.make_graph(
        nodes, name,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["n", channels, "h", "w"])],
        outputs, weights,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.onnx"
    onnx.save(model, path)
    manifest = Manifest(
        name=name, version="1", task="super-resolution" if scale > 1 else "filter", scale=scale,
        channels=channels, colour="rgb" if channels == 3 else "gray",
        receptive_field=layers * down + down - 1, tile=128, align=down,
        value_range=(0.0, 255.0) if in_255 else (0.0, 1.0), outputs=int(score_first),
        provenance=f"random weights, seed {seed}", licence="Apache-2.0",
        description=f"toy {layers}-layer convolutional model for tests",
    )  # fmt: skip
    path.with_suffix(".json").write_text(manifest.to_json())
    return path
