"""A model wrapped so that it takes and gives pixels: 8- or 16-bit tiles, height × width ×
bands, as libvips lays them out.

The conversions around a model (to float in its value range, channels first, and back with
rounding and clipping) are added to its ONNX graph instead of being done with numpy: the runtime
then runs them on its own threads (or the GPU) next to the model, and the tiled executor moves
integer pixels, not four times as many bytes of float, for every tile.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pixelmill.errors import ModelError
from pixelmill.models.manifest import Manifest

MIN_OPSET = 11
"""Round, and Clip with bounds as inputs, exist from opset 11."""
PIXELS, OUTPUT = "pixelmill_pixels", "pixelmill_output"


def wrap(path: Path, manifest: Manifest, depth: int, bands: int) -> bytes:
    """The serialised model taking N×H×W×``bands`` tiles of ``depth`` bits and giving its
    output the same way. A one-channel model given three bands runs on each of them."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    try:
        model = onnx.load(path)
    except Exception as exc:  # protobuf and onnx raise several types
        raise ModelError(f"model {manifest.name}: cannot load its ONNX file: {exc}") from None
    graph = model.graph
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < MIN_OPSET:
        raise ModelError(f"model {manifest.name}: ONNX opset {opset} is older than {MIN_OPSET}; "
                         "convert it with onnx.version_converter")  # fmt: skip
    inputs = [i for i in graph.input if i.name not in {t.name for t in graph.initializer}]
    model_in, model_out = inputs[0], graph.output[0]
    dims = [d.dim_value or d.dim_param for d in model_in.type.tensor_type.shape.dim]
    if len(dims) != 4 or isinstance(dims[1], int) and dims[1] != manifest.channels:
        raise ModelError(f"model {manifest.name}: input shape {dims} is not "
                         f"N×{manifest.channels}×H×W")  # fmt: skip
    float_type = model_in.type.tensor_type.elem_type
    if float_type not in (TensorProto.FLOAT, TensorProto.FLOAT16):
        raise ModelError(f"model {manifest.name}: takes {TensorProto.DataType.Name(float_type)}; "
                         "tiling needs float or float16 input")  # fmt: skip
    pixel_type = TensorProto.UINT16 if depth == 16 else TensorProto.UINT8
    peak = 65535.0 if depth == 16 else 255.0
    low, high = manifest.value_range
    per_channel = manifest.channels == 1 and bands == 3

    nodes: list[onnx.NodeProto] = []
    constants: list[onnx.TensorProto] = []

    def const(value: object, dtype: type = np.float32) -> str:
        name = f"pixelmill_const{len(constants)}"
        constants.append(numpy_helper.from_array(np.asarray(value, dtype), name))
        return name

    def then(current: str, op: str, *operands: str, output: str = "", **attrs: object) -> str:
        output = output or f"pixelmill_{len(nodes)}_{op.lower()}"
        nodes.append(helper.make_node(op, [current, *operands], [output], name=output, **attrs))
        return output

    x = then(PIXELS, "Cast", to=TensorProto.FLOAT)
    x = then(x, "Transpose", perm=[0, 3, 1, 2])
    x = then(x, "Mul", const((high - low) / peak))
    x = then(x, "Add", const(low))
    if per_channel:
        x = then(x, "Reshape", const([-1, 1, 0, 0], np.int64))
    then(x, "Cast", to=float_type, output=model_in.name)
    nodes.extend(graph.node)
    x = then(model_out.name, "Cast", to=TensorProto.FLOAT)
    if per_channel:
        x = then(x, "Reshape", const([-1, 3, 0, 0], np.int64))
    x = then(x, "Sub", const(low))
    x = then(x, "Mul", const(peak / (high - low)))
    x = then(x, "Round")
    x = then(x, "Clip", const(0.0), const(peak))
    x = then(x, "Cast", to=pixel_type)
    then(x, "Transpose", perm=[0, 2, 3, 1], output=OUTPUT)

    wrapped = helper.make_graph(
        nodes, graph.name,
        [helper.make_tensor_value_info(PIXELS, pixel_type, ["n", "h", "w", bands])],
        [helper.make_tensor_value_info(OUTPUT, pixel_type, ["n", "out_h", "out_w", bands])],
        [*graph.initializer, *constants],
    )  # fmt: skip
    result = helper.make_model(wrapped, opset_imports=model.opset_import,
                               functions=model.functions)
    result.ir_version = model.ir_version
    return result.SerializeToString()


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
