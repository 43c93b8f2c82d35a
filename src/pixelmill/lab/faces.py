"""The bundled face detector ``faces``: the MTCNN cascade (Zhang et al., "Joint Face Detection
and Alignment using Multi-task Cascaded Convolutional Networks", IEEE SPL 2016) with the
pretrained weights that the ``facenet-pytorch`` package ships under the MIT licence, exported
to one ONNX file that :mod:`pixelmill.models.detect` runs with the ``mtcnn`` layout.

The three networks (P-Net over an image pyramid, R-Net and O-Net over candidate crops) are
rebuilt here from the shapes of those weights and exported side by side in one graph: inputs
``pnet`` (N×3×h×w), ``rnet`` (N×3×24×24) and ``onet`` (N×3×48×48), all in the networks' own
range ((v - 127.5) / 128), each with a small default so that a run feeds only the stage it
needs. Nothing is downloaded: the weights come from the wheel or the installed package given::

    pip download facenet-pytorch==2.6.0 --no-deps -d wheels
    pixelmill lab faces wheels/facenet_pytorch-2.6.0-py3-none-any.whl --out models
"""

from __future__ import annotations

import hashlib
import io
import itertools
import pickle
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from pixelmill.errors import UsageError
from pixelmill.lab.export import quiet_exporter, strip_traces
from pixelmill.models.manifest import Manifest

NAME = "faces"
PARTS = ("pnet", "rnet", "onet")
SIDES = {"pnet": 12, "rnet": 24, "onet": 48}
OUTPUTS = {"pnet": ("pnet_box", "pnet_prob"), "rnet": ("rnet_box", "rnet_prob"),
           "onet": ("onet_box", "onet_landmarks", "onet_prob")}  # fmt: skip
SOURCE = "facenet-pytorch 2.6.0 (PyPI, MIT licence, Copyright (c) 2019 Timothy Esler)"


def _stage(channels: list[int], kernels: list[int], pools: list[int | None],
           dense: int | None) -> list[nn.Module]:  # fmt: skip
    layers: list[nn.Module] = []
    for index, (c_in, c_out) in enumerate(itertools.pairwise(channels)):
        layers += [nn.Conv2d(c_in, c_out, kernels[index]), nn.PReLU(c_out)]
        pool = pools[index]
        if pool:
            layers.append(nn.MaxPool2d(pool, 2, ceil_mode=True))
    return layers


class PNet(nn.Module):
    """12×12 windows at stride 2: a face probability and a box correction per window."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(*_stage([3, 10, 16, 32], [3, 3, 3], [2, None, None], None))
        self.prob = nn.Conv2d(32, 2, 1)
        self.box = nn.Conv2d(32, 4, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.body(x)
        return self.box(x), torch.softmax(self.prob(x), dim=1)[:, 1]


class _Refiner(nn.Module):
    def __init__(self, channels: list[int], kernels: list[int], pools: list[int | None],
                 flat: int, dense: int, landmarks: bool) -> None:  # fmt: skip
        super().__init__()
        self.body = nn.Sequential(*_stage(channels, kernels, pools, None))
        self.dense = nn.Sequential(nn.Linear(flat, dense), nn.PReLU(dense))
        self.prob = nn.Linear(dense, 2)
        self.box = nn.Linear(dense, 4)
        self.landmarks = nn.Linear(dense, 10) if landmarks else None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = self.body(x).permute(0, 3, 2, 1).flatten(1)  # the weights' (transposed) order
        x = self.dense(x)
        prob = torch.softmax(self.prob(x), dim=1)[:, 1]
        if self.landmarks is None:
            return self.box(x), prob
        return self.box(x), self.landmarks(x), prob


def networks() -> dict[str, nn.Module]:
    return {
        "pnet": PNet(),
        "rnet": _Refiner([3, 28, 48, 64], [3, 3, 2], [3, 3, None], 576, 128, False),
        "onet": _Refiner([3, 32, 64, 64, 128], [3, 3, 3, 2], [3, 3, 2, None], 1152, 256, True),
    }


_RENAME = {
    "pnet": {"conv1": "body.0", "prelu1": "body.1", "conv2": "body.3", "prelu2": "body.4",
             "conv3": "body.5", "prelu3": "body.6", "conv4_1": "prob", "conv4_2": "box"},
    "rnet": {"conv1": "body.0", "prelu1": "body.1", "conv2": "body.3", "prelu2": "body.4",
             "conv3": "body.6", "prelu3": "body.7", "dense4": "dense.0", "prelu4": "dense.1",
             "dense5_1": "prob", "dense5_2": "box"},
    "onet": {"conv1": "body.0", "prelu1": "body.1", "conv2": "body.3", "prelu2": "body.4",
             "conv3": "body.6", "prelu3": "body.7", "conv4": "body.9", "prelu4": "body.10",
             "dense5": "dense.0", "prelu5": "dense.1", "dense6_1": "prob", "dense6_2": "box",
             "dense6_3": "landmarks"},
}  # fmt: skip


def read_weights(source: Path) -> tuple[dict[str, dict[str, torch.Tensor]], str]:
    """The three state dicts from a facenet-pytorch wheel or installed package folder, and the
    SHA-256 of each file (for the provenance)."""
    wanted = UsageError(f"{source}: give a facenet-pytorch wheel (.whl) or its package folder "
                        "(`pip download facenet-pytorch --no-deps`)")  # fmt: skip
    raw: dict[str, bytes] = {}
    try:
        if source.is_file() and source.suffix == ".whl":
            with zipfile.ZipFile(source) as wheel:
                for part in PARTS:
                    raw[part] = wheel.read(f"facenet_pytorch/data/{part}.pt")
        elif (source / "data").is_dir() or (source / "facenet_pytorch" / "data").is_dir():
            folder = source / ("data" if (source / "data").is_dir() else "facenet_pytorch/data")
            raw = {part: (folder / f"{part}.pt").read_bytes() for part in PARTS}
        else:
            raise wanted
        states: dict[str, dict[str, torch.Tensor]] = {}
        for part, data in raw.items():
            loaded = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
            renames = _RENAME[part]
            states[part] = {renames[key.split(".")[0]] + "." + key.split(".", 1)[1]: value
                            for key, value in loaded.items()}  # fmt: skip
    except (OSError, KeyError, zipfile.BadZipFile, RuntimeError, pickle.UnpicklingError) as exc:
        raise UsageError(f"{wanted}: {type(exc).__name__}: {exc}") from None
    digests = ", ".join(f"{part}.pt sha256 {hashlib.sha256(raw[part]).hexdigest()[:16]}"
                        for part in PARTS)  # fmt: skip
    return states, digests


def export(source: Path, out: Path, opset: int = 18) -> Path:
    """Write ``faces.onnx`` and its manifest ``faces.json`` into ``out``."""
    states, digests = read_weights(source)
    nets = networks()
    graphs = []
    with tempfile.TemporaryDirectory(prefix="pixelmill-faces-") as work:
        for part, net in nets.items():
            net.load_state_dict(states[part])
            net.eval()
            side = SIDES[part]
            example = torch.zeros(2, 3, side * (4 if part == "pnet" else 1),
                                  side * (4 if part == "pnet" else 1))  # fmt: skip
            batch = torch.export.Dim(f"{part}_n", min=1)
            dims = ({0: batch, 2: torch.export.Dim("pnet_h", min=12),
                     3: torch.export.Dim("pnet_w", min=12)}
                    if part == "pnet" else {0: batch})  # fmt: skip
            path = Path(work) / f"{part}.onnx"
            with quiet_exporter():
                program = torch.onnx.export(net, (example,), dynamo=True, verbose=False,
                                            opset_version=opset, input_names=[part],
                                            output_names=list(OUTPUTS[part]),
                                            dynamic_shapes=(dims,))  # fmt: skip
            program.save(str(path))
            graphs.append(onnx.load(str(path)))
    model = _side_by_side(graphs, opset)
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"{NAME}.onnx"
    onnx.save(model, str(target))
    strip_traces(target)
    manifest = Manifest(
        name=NAME, version="1", task="detect", scale=1, channels=3, colour="rgb",
        receptive_field=0, tile=1024, value_range=(-127.5 / 128, 127.5 / 128),
        labels=("face",), layout="mtcnn",
        provenance=f"MTCNN (Zhang et al. 2016) weights from {SOURCE} ({digests}); exported "
                   f"by pixelmill.lab.faces.export (opset {opset})",
        licence="MIT", description="face detector with five landmarks (MTCNN cascade)",
    )  # fmt: skip
    target.with_suffix(".json").write_text(manifest.to_json() + "\n")
    return target


def _side_by_side(graphs: list[onnx.ModelProto], opset: int) -> onnx.ModelProto:
    """One model holding the three graphs apart, each input with a small default (an
    overridable initializer) so that a run may feed only one of them."""
    nodes, inputs, outputs, initializers, values = [], [], [], [], []
    functions = []
    for part, graph in zip(PARTS, graphs):
        prefixed = onnx.compose.add_prefix(graph, f"{part}/", rename_inputs=False,
                                           rename_outputs=False)  # fmt: skip
        g = prefixed.graph
        nodes += g.node
        inputs += g.input
        outputs += g.output
        initializers += g.initializer
        values += g.value_info
        functions += prefixed.functions
        side = SIDES[part]
        default = np.zeros((1, 3, side, side), np.float32)
        initializers.append(onnx.numpy_helper.from_array(default, part))
    graph = onnx.helper.make_graph(nodes, NAME, inputs, outputs, initializers, value_info=values)
    model = onnx.helper.make_model(graph, opset_imports=list(graphs[0].opset_import),
                                   functions=functions)  # fmt: skip
    model.ir_version = graphs[0].ir_version
    model.producer_name = "pixelmill lab faces"
    onnx.checker.check_model(model)
    return model


