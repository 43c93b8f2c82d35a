"""What an image-to-image ONNX model needs, found by reading its graph and running it.

``pixelmill models add MODEL.onnx`` without a manifest writes the one found here: the layout
and channels from the graph's input; the scale from the output's size at two input sizes; the
alignment a strided network needs, as the smallest step whose odd multiples come out at exactly
the scale; the receptive field, measured by changing single input pixels and seeing how far the
output changes (with a safety margin); the value range from the graph's first operations, or
from the caller. No library infers these, so they are written here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pixelmill.errors import ModelError

ALIGNS = (1, 2, 4, 8, 16, 32, 64)
MIN_SIDE = 32
"""Smallest probe side: reflection padding and large kernels need some room."""
CHANGED = 1e-6
"""An output value counts as changed by a perturbation beyond this share of its range."""
MARGIN = 1.25
"""The measured receptive field is widened by this factor (plus two pixels): a single pixel's
change may not travel through every unit that a different image would wake."""


@dataclass(frozen=True)
class Found:
    """What the probe found, as manifest fields."""

    channels: int
    scale: int
    align: int
    receptive_field: int
    value_range: tuple[float, float]
    outputs: str | int
    range_reason: str
    """How the value range was found."""

    def fields(self) -> dict[str, Any]:
        fields = {"scale": self.scale, "channels": self.channels,
                  "colour": "rgb" if self.channels == 3 else "gray",
                  "receptive_field": self.receptive_field,
                  "value_range": list(self.value_range)}  # fmt: skip
        if self.align > 1:
            fields["align"] = self.align
        if self.outputs != 0:
            fields["outputs"] = self.outputs
        return fields


def probe(path: Path, name: str, value_range: tuple[float, float] | None = None, align: int = 1,
          threads: int = 0) -> Found:  # fmt: skip
    """The manifest fields of the image-to-image model at ``path``: ``value_range`` where the
    caller knows it, else read from the graph or refused with the reason; the alignment at
    least ``align``."""
    model = _Model(path, name, threads)
    scale, align = model.geometry(align)
    field = model.receptive_field(scale, align)
    reason = "given"
    if value_range is None:
        value_range, reason = model.value_range()
    return Found(model.channels, scale, align, field, value_range, model.output, reason)


class _Model:
    """The raw model in a session of its own, with its image input made of any size."""

    def __init__(self, path: Path, name: str, threads: int) -> None:
        import onnx
        import onnxruntime as ort

        self.name = name
        try:
            graph = onnx.load(path)
        except Exception as exc:  # noqa: BLE001  # protobuf and onnx raise several types
            raise ModelError(f"model {self.name}: cannot load its ONNX file: {exc}") from None
        initialised = {t.name for t in graph.graph.initializer}
        inputs = [i for i in graph.graph.input if i.name not in initialised]
        if len(inputs) != 1:
            raise ModelError(f"model {self.name}: takes {len(inputs)} inputs "
                             f"({', '.join(i.name for i in inputs)}); an image model takes one")
        self.input = inputs[0]
        dims = self.input.type.tensor_type.shape.dim
        shape = [d.dim_value or None for d in dims]
        if len(shape) != 4:
            raise ModelError(f"model {self.name}: its input has {len(shape)} dimensions; "
                             "an image model takes N×C×H×W")  # fmt: skip
        if shape[1] is None and shape[3] in (1, 3):
            raise ModelError(f"model {self.name}: its input looks like N×H×W×{shape[3]} "
                             "(channels last); export it with channels first, N×C×H×W")
        for index in (0, 2, 3):  # batch and sides of any size, where the graph fixed them
            dims[index].ClearField("dim_value")
            dims[index].dim_param = f"pixelmill_{index}"
        self.dtype = np.float16 if self.input.type.tensor_type.elem_type == 10 else np.float32
        self.first_ops = _first_ops(graph.graph, self.input.name)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(graph.SerializeToString(), options,
                                                providers=["CPUExecutionProvider"])  # fmt: skip
        except Exception as exc:  # noqa: BLE001  # onnxruntime raises its own types
            raise ModelError(f"model {self.name}: cannot load: {exc}") from None
        self.index = 0
        self.channels = shape[1] or self._channels()
        self.index = self._image_output()
        self.output: str | int = self.index and self.session.get_outputs()[self.index].name

    def run(self, image: np.ndarray) -> np.ndarray:
        """N×C×H×W float in, the image output out, as float32."""
        outputs = self.session.run(None, {self.input.name: image.astype(self.dtype)})
        return np.asarray(outputs[self.index], np.float32)

    def _channels(self) -> int:
        for channels in (3, 1):
            try:
                self.session.run(None, {self.input.name: np.zeros((1, channels, 64, 64),
                                                                  self.dtype)})  # fmt: skip
                return channels
            except Exception:  # noqa: BLE001, S112  # the other count is tried next
                continue
        raise ModelError(f"model {self.name}: runs on neither 3 nor 1 channel(s) of 64×64")

    def _image_output(self) -> int:
        """The index of the first output shaped like an image."""
        shapes = [o.shape for o in self.session.get_outputs()]
        for index, shape in enumerate(shapes):
            if len(shape) == 4:
                return index
        raise ModelError(f"model {self.name}: no output is an image (shapes {shapes}); only "
                         "image-to-image models are probed: write its manifest "
                         "(pixelmill models schema)")  # fmt: skip

    def geometry(self, least: int) -> tuple[int, int]:
        """Scale and alignment: the smallest step from ``least`` whose odd multiples give
        output exactly ``scale`` times the input."""
        failures = []
        for align in sorted({least, *(a for a in ALIGNS if a > least)}):
            odd = max(3, math.ceil(MIN_SIDE / align)) | 1
            sizes = ((align * odd, align * (odd + 2)), (align * (odd + 4), align * odd))
            try:
                shapes = [self.run(texture(seed, self.channels, h, w)).shape[2:]
                          for seed, (h, w) in enumerate(sizes)]  # fmt: skip
            except Exception as exc:  # noqa: BLE001  # onnxruntime raises its own types
                failures.append(f"{align}: {str(exc).splitlines()[0][:160]}")
                continue
            scale = shapes[0][0] / sizes[0][0]
            if scale.is_integer() and all(s == (h * scale, w * scale)
                                          for s, (h, w) in zip(shapes, sizes)):  # fmt: skip
                if int(scale) not in (1, 2, 3, 4, 8):
                    raise ModelError(f"model {self.name}: scales by {int(scale)}; pixelmill "
                                     "runs scales 1, 2, 3, 4 and 8")  # fmt: skip
                return int(scale), align
            failures.append(f"{align}: {sizes[0][0]}×{sizes[0][1]} gave "
                            f"{shapes[0][0]}×{shapes[0][1]}")  # fmt: skip
        raise ModelError(f"model {self.name}: no input size gives an output a whole multiple "
                         f"of it (tried steps {'; '.join(failures)})")  # fmt: skip

    def receptive_field(self, scale: int, align: int) -> int:
        """Input pixels one output pixel depends on, measured: single pixels changed at three
        places, on probes grown until the change stays inside them. A change that reached the
        border of a probe but not, on a larger one, the same distance is one spread thin over
        the whole image (a mean, a normalisation): no tiling can reproduce it."""
        side, border = -(-max(64, align) // align) * align, 0
        while side <= 1024:
            reach = self._reach(side, scale)
            if reach < border:
                break
            if reach < side // 2 - 2:
                widened = math.ceil(reach * MARGIN) + 2
                return min(512, -(-widened // align) * align)
            border, side = side // 2 - 2, 2 * side
        raise ModelError(f"model {self.name}: changing one pixel changes the whole output "
                         f"(global operations such as a mean over the image, a normalisation "
                         "by image statistics or attention over the image): it cannot be "
                         "tiled")  # fmt: skip

    def _reach(self, side: int, scale: int) -> int:
        base = texture(0, self.channels, side, side) * 0.8 + 0.1
        before = self.run(base)
        spread = float(before.max() - before.min()) or 1.0
        reach = 0
        for y, x in ((side // 2, side // 2), (side // 2 - 3, side // 2 + 5),
                     (side // 2 + 4, side // 2 - 2)):
            for delta in (0.6, -0.6):
                changed = base.copy()
                changed[:, :, y, x] = np.clip(changed[:, :, y, x] + delta, 0.0, 1.0)
                after = self.run(changed)
                rows, cols = np.nonzero(np.abs(after - before).max(axis=(0, 1)) > CHANGED * spread)
                if len(rows):  # from the input pixel holding each changed output pixel
                    reach = max(reach, int(np.abs(rows // scale - y).max()),
                                int(np.abs(cols // scale - x).max()))  # fmt: skip
        return reach

    def value_range(self) -> tuple[tuple[float, float], str]:
        """The value range the graph's first operations imply; refused where they do not
        tell."""
        read = _range_of(self.first_ops)
        if read is not None:
            return read
        start = ", ".join(f"{op} {value:g}" if value is not None else op
                          for op, value in self.first_ops) or "no normalisation"  # fmt: skip
        raise ModelError(f"model {self.name}: cannot tell its value range: its graph starts "
                         f"with {start}, which does not say whether it takes 0..1, 0..255 or "
                         "-1..1 (and trying each proves nothing: a residual network gives "
                         "plausible output in all three); give --range 0,1, 0,255 or -1,1")


def _first_ops(graph: Any, name: str) -> list[tuple[str, float | None]]:
    """The chain of elementwise operations the input goes through first, each with its
    constant operand where that is a single number."""
    from onnx import numpy_helper

    constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute:
            constants[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    chain: list[tuple[str, float | None]] = []
    current = name
    while len(chain) < 4:
        users = [n for n in graph.node if current in n.input]
        if len(users) != 1 or users[0].op_type not in ("Mul", "Div", "Sub", "Add"):
            break
        node = users[0]
        other = next((i for i in node.input if i != current), "")
        value = constants.get(other)
        single = float(value.mean()) if value is not None and value.size else None
        chain.append((node.op_type, single))
        current = node.output[0]
    return chain


def _range_of(chain: list[tuple[str, float | None]]) -> tuple[tuple[float, float], str] | None:
    """The input range a network's own normalisation implies: a division by 255 (or a
    multiplication by 1/255) means 0..255 at the input; ``x * 2 - 1`` or ``(x - 0.5) / 0.5``
    means 0..1; so does subtracting a mean below 1 before rescaling."""
    if not chain:
        return None
    (op, value), then = chain[0], chain[1] if len(chain) > 1 else ("", None)
    if value is None:
        return None
    if (op == "Div" and abs(value - 255) < 1) or (op == "Mul" and abs(value * 255 - 1) < 1e-3):
        return (0.0, 255.0), f"its first operation is {op} by {value:g}"
    if op == "Sub" and 0 < value < 1 and then[0] in ("Div", "Mul"):
        return (0.0, 1.0), f"its first operations subtract a mean of {value:g} and rescale"
    if op == "Mul" and value == 2 and then == ("Sub", 1.0):
        return (0.0, 1.0), "its first operations are x × 2 − 1"
    return None


def texture(seed: int, channels: int, height: int, width: int) -> np.ndarray:
    """A probe image in 0..1: smooth shapes with edges and fine noise, like a photograph more
    than like noise, the same for the same seed."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    planes = []
    for _ in range(channels):
        a, b, c = rng.uniform(0.02, 0.2, 3)
        plane = 0.5 + 0.25 * np.sin(a * x + b * y) * np.cos(c * (x - y))
        plane += 0.2 * ((x * a + y * c) % 16 < 8)
        plane += rng.normal(0, 0.03, (height, width))
        planes.append(plane)
    return np.clip(np.stack(planes)[None], 0.0, 1.0).astype(np.float32)
