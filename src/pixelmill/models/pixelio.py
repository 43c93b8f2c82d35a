"""A model wrapped so that it takes and gives pixels: 8- or 16-bit tiles, height × width ×
bands, as libvips lays them out.

The conversions around a model (to float in its value range, channels first, and back with
rounding and clipping) are added to its ONNX graph instead of being done with numpy: the runtime
then runs them on its own threads (or the GPU) next to the model, and the tiled executor moves
integer pixels, not four times as many bytes of float, for every tile.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pixelmill.errors import ModelError
from pixelmill.models.manifest import Manifest

MIN_OPSET = 11
"""Round, and Clip with bounds as inputs, exist from opset 11."""
PIXELS, OUTPUT = "pixelmill_pixels", "pixelmill_output"


YCBCR = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5],
                  [0.5, -0.418688, -0.081312]], np.float32)
"""RGB to full-range YCbCr (BT.601, as JPEG and OpenCV use it), all three in 0..1 (chroma
offset by 0.5)."""
CHROMA_OFFSET = np.array([0.0, 0.5, 0.5], np.float32)


def wrap(path: Path, manifest: Manifest, depth: int, bands: int) -> bytes:
    """The serialised model taking N×H×W×``bands`` tiles of ``depth`` bits and giving its
    output the same way. A one-channel model given three bands runs on each of them; a luma
    model (``channels: "y"``) runs on Y while Cb and Cr are resized with a cubic kernel."""
    from onnx import TensorProto, helper

    model, model_in, model_out, float_type = _checked(path, manifest)
    pixel_type = TensorProto.UINT16 if depth == 16 else TensorProto.UINT8
    peak = 65535.0 if depth == 16 else 255.0
    (low, high), (out_low, out_high) = manifest.input_range, manifest.output_range
    luma = manifest.channels == "y"
    per_channel = manifest.channels == 1 and bands == 3
    graph = _Graph()
    x = graph.then(PIXELS, "Cast", to=TensorProto.FLOAT)
    x = graph.then(x, "Transpose", perm=[0, 3, 1, 2])
    if luma:
        x = graph.then(x, "Conv", graph.const(YCBCR[:, :, None, None] / peak),
                       graph.const(CHROMA_OFFSET))  # fmt: skip
        chroma = graph.then(x, "Slice", graph.const([1], np.int64), graph.const([3], np.int64),
                            graph.const([1], np.int64))  # fmt: skip
        chroma = graph.then(chroma, "Resize", graph.const([]), graph.const([1, 1, manifest.scale,
                            manifest.scale]), mode="cubic", cubic_coeff_a=-0.75,
                            coordinate_transformation_mode="half_pixel")  # fmt: skip
        x = graph.then(x, "Slice", graph.const([0], np.int64), graph.const([1], np.int64),
                       graph.const([1], np.int64))  # fmt: skip
        x = graph.then(x, "Mul", graph.const(high - low))
    else:
        x = graph.then(x, "Mul", graph.const((high - low) / peak))
    x = graph.then(x, "Add", graph.const(low))
    if per_channel:
        x = graph.then(x, "Reshape", graph.const([-1, 1, 0, 0], np.int64))
    graph.then(x, "Cast", to=float_type, output=model_in.name)
    graph.nodes.extend(model.graph.node)
    x = graph.then(model_out.name, "Cast", to=TensorProto.FLOAT)
    if per_channel:
        x = graph.then(x, "Reshape", graph.const([-1, 3, 0, 0], np.int64))
    x = graph.then(x, "Sub", graph.const(out_low))
    if luma:
        x = graph.then(x, "Mul", graph.const(1.0 / (out_high - out_low)))
        x = graph.then(x, "Concat", chroma, axis=1)
        x = graph.then(x, "Sub", graph.const(CHROMA_OFFSET[None, :, None, None]))
        rgb = np.linalg.inv(YCBCR.astype(np.float64)).astype(np.float32) * peak
        x = graph.then(x, "Conv", graph.const(rgb[:, :, None, None]))
    else:
        x = graph.then(x, "Mul", graph.const(peak / (out_high - out_low)))
    x = graph.then(x, "Round")
    x = graph.then(x, "Clip", graph.const(0.0), graph.const(peak))
    x = graph.then(x, "Cast", to=pixel_type)
    graph.then(x, "Transpose", perm=[0, 2, 3, 1], output=OUTPUT)
    wrapped = helper.make_graph(
        graph.nodes, model.graph.name,
        [helper.make_tensor_value_info(PIXELS, pixel_type, ["n", "h", "w", bands])],
        [helper.make_tensor_value_info(OUTPUT, pixel_type, ["n", "out_h", "out_w", bands])],
        [*model.graph.initializer, *graph.constants],
    )  # fmt: skip
    result = helper.make_model(wrapped, opset_imports=model.opset_import,
                               functions=model.functions)
    result.ir_version = model.ir_version
    return result.SerializeToString()


def _checked(path: Path, manifest: Manifest) -> tuple[Any, Any, Any, int]:
    """The ONNX model, its image input and output, and its input's float type, once they are
    found to be what tiling needs."""
    import onnx
    from onnx import TensorProto

    try:
        model = onnx.load(path)
    except Exception as exc:  # noqa: BLE001  # protobuf and onnx raise several types
        raise ModelError(f"model {manifest.name}: cannot load its ONNX file: {exc}") from None
    graph = model.graph
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < MIN_OPSET:
        raise ModelError(f"model {manifest.name}: ONNX opset {opset} is older than {MIN_OPSET}; "
                         "convert it with onnx.version_converter")  # fmt: skip
    inputs = [i for i in graph.input if i.name not in {t.name for t in graph.initializer}]
    model_in, model_out = inputs[0], _output(graph, manifest)
    dims = [d.dim_value or d.dim_param for d in model_in.type.tensor_type.shape.dim]
    if len(dims) != 4 or isinstance(dims[1], int) and dims[1] != manifest.planes:
        raise ModelError(f"model {manifest.name}: input shape {dims} is not "
                         f"N×{manifest.planes}×H×W")  # fmt: skip
    float_type = model_in.type.tensor_type.elem_type
    if float_type not in (TensorProto.FLOAT, TensorProto.FLOAT16):
        raise ModelError(f"model {manifest.name}: takes {TensorProto.DataType.Name(float_type)}; "
                         "tiling needs float or float16 input")  # fmt: skip
    return model, model_in, model_out, float_type


def _output(graph: Any, manifest: Manifest) -> Any:
    """The output the manifest's ``outputs`` picks, by name or index."""
    names = [o.name for o in graph.output]
    pick = manifest.outputs
    if isinstance(pick, int) and 0 <= pick < len(names):
        return graph.output[pick]
    if pick in names:
        return graph.output[names.index(pick)]
    raise ModelError(f"model {manifest.name}: manifest field 'outputs': {pick!r} is not one of "
                     f"the model's outputs {names} (give a name or an index from 0)")  # fmt: skip


class _Graph:
    """Nodes and constants of the conversions, added in order."""

    def __init__(self) -> None:
        self.nodes: list[Any] = []
        self.constants: list[Any] = []

    def const(self, value: object, dtype: type = np.float32) -> str:
        from onnx import numpy_helper

        name = f"pixelmill_const{len(self.constants)}"
        self.constants.append(numpy_helper.from_array(np.asarray(value, dtype), name))
        return name

    def then(self, current: str, op: str, *operands: str, output: str = "",
             **attrs: object) -> str:  # fmt: skip
        from onnx import helper

        output = output or f"pixelmill_{len(self.nodes)}_{op.lower()}"
        self.nodes.append(helper.make_node(op, [current, *operands], [output], name=output,
                                           **attrs))  # fmt: skip
        return output


DEFAULT_WORKING_BYTES = 256.0
"""Per input pixel, where shape inference cannot tell: 64 float channels."""


def working_bytes(path: Path, side: int = 64) -> float:
    """Bytes of intermediate tensors per input pixel: the two largest tensors of the model
    (what a layer reads and what it writes) for a ``side``² tile, from ONNX shape inference,
    so that the tiled executor sizes tiles by what this model holds."""
    import onnx
    from onnx import helper

    model = onnx.load(path, load_external_data=False)
    for dim, size in zip(model.graph.input[0].type.tensor_type.shape.dim, (1, 0, side, side)):
        if size:
            dim.dim_value = size
    graph = onnx.shape_inference.infer_shapes(model).graph
    sizes = []
    for value in [*graph.value_info, *graph.output]:
        tensor = value.type.tensor_type
        shape = [d.dim_value for d in tensor.shape.dim]
        if shape and all(shape):
            item = helper.tensor_dtype_to_np_dtype(tensor.elem_type).itemsize
            sizes.append(float(np.prod(shape)) * item)
    return sum(sorted(sizes)[-2:]) / side**2 if sizes else DEFAULT_WORKING_BYTES
