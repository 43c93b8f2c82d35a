"""Detectors (manifest task ``detect``): ONNX models that find boxes in an RGB array, decoded
by the layout their manifest names, with non-maximum suppression.

Layouts (:data:`pixelmill.models.manifest.LAYOUTS`):

- ``yolo``: one input N×3×S×S (S: the manifest's ``tile``) and one output of boxes and class
  scores, either N×(4+C)×A (YOLOv8 and later: cx, cy, w, h, then a score per class) or
  N×A×(5+C) (YOLOv5: cx, cy, w, h, objectness, then class scores), in input pixels;
- ``mtcnn``: the face cascade of Zhang et al. (2016) in one model with three inputs ``pnet``
  (N×3×h×w), ``rnet`` (N×3×24×24) and ``onet`` (N×3×48×48): P-Net's 12×12 windows at stride 2
  (a probability and a box correction each, over an image pyramid) propose faces, R-Net and
  O-Net refine crops of them, O-Net adds five landmarks (eyes, nose, mouth corners).

A model whose inputs and outputs do not match its layout is refused when it loads, with what
was expected. Non-maximum suppression is written here (a few lines of numpy): onnxruntime has
no standalone NMS, and torchvision's is not a dependency of the engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from pixelmill.config import Settings
from pixelmill.errors import ModelError
from pixelmill.models.registry import ModelFile
from pixelmill.models.runtime import inference_session, once

TASK = "detect"


@dataclass(frozen=True)
class Detection:
    """One thing found: its box (x0, y0, x1, y1, in pixels, x1 and y1 exclusive), score,
    class and landmarks (points, for face detectors)."""

    box: tuple[float, float, float, float]
    score: float
    label: str
    landmarks: tuple[tuple[float, float], ...] = ()

    @property
    def size(self) -> float:
        return max(self.box[2] - self.box[0], self.box[3] - self.box[1])

    def moved(self, scale_x: float, scale_y: float, dx: float = 0, dy: float = 0) -> Detection:
        """The detection in another frame: scaled, then shifted."""
        x0, y0, x1, y1 = self.box
        box = (x0 * scale_x + dx, y0 * scale_y + dy, x1 * scale_x + dx, y1 * scale_y + dy)
        points = tuple((x * scale_x + dx, y * scale_y + dy) for x, y in self.landmarks)
        return Detection(box, self.score, self.label, points)

    def to_json(self) -> dict:
        found = {"box": [round(v, 1) for v in self.box], "score": round(self.score, 4),
                 "class": self.label}  # fmt: skip
        if self.landmarks:
            found["landmarks"] = [[round(x, 1), round(y, 1)] for x, y in self.landmarks]
        return found


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, by_min: bool = False
        ) -> np.ndarray:  # fmt: skip
    """Indices of the boxes kept, best first: each box suppresses the lower-scored ones that
    overlap it by more than ``threshold`` (intersection over union, or over the smaller box's
    area with ``by_min``)."""
    if len(boxes) == 0:
        return np.empty(0, np.int64)
    x0, y0, x1, y1 = boxes.T
    area = np.maximum(x1 - x0, 0) * np.maximum(y1 - y0, 0)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        best, rest = order[0], order[1:]
        keep.append(best)
        w = np.maximum(0, np.minimum(x1[best], x1[rest]) - np.maximum(x0[best], x0[rest]))
        h = np.maximum(0, np.minimum(y1[best], y1[rest]) - np.maximum(y0[best], y0[rest]))
        inter = w * h
        union = np.minimum(area[best], area[rest]) if by_min else area[best] + area[rest] - inter
        order = rest[inter <= threshold * np.maximum(union, 1e-9)]
    return np.asarray(keep, np.int64)


class Detector:
    """A loaded detector: :meth:`find` gives the detections in an H×W×3 uint8 RGB array.

    ``window`` is the largest object it is asked to find in one tile of a large image, and
    ``smallest`` the smallest it can find (see :mod:`pixelmill.engine.detection`)."""

    def __init__(self, model: ModelFile, settings: Settings) -> None:
        manifest = model.manifest
        # quiet: onnxruntime warns of the mtcnn inputs' defaults (overridable initializers)
        self._session = inference_session(model, settings, TASK, "find boxes", quiet=True)
        self.manifest = manifest
        self.labels = manifest.labels
        self._layout = (_Mtcnn if manifest.layout == "mtcnn" else _Yolo)(self)
        self.window, self.smallest = self._layout.window, self._layout.smallest

    def run(self, outputs: Sequence[str] | None, feeds: dict[str, np.ndarray]) -> list:
        try:
            return self._session.run(outputs, feeds)
        except Exception as exc:  # noqa: BLE001  # onnxruntime raises its own types
            raise ModelError(f"model {self.manifest.name}: fails: {exc}") from None

    def signature(self) -> tuple[dict[str, list], dict[str, list]]:
        """Shapes of the model's inputs (overridable ones included) and outputs, by name."""
        inputs = {i.name: list(i.shape) for i in self._session.get_inputs()}
        inputs |= {i.name: list(i.shape) for i in self._session.get_overridable_initializers()}
        return inputs, {o.name: list(o.shape) for o in self._session.get_outputs()}

    def scaled(self, rgb: np.ndarray) -> np.ndarray:
        """N×3×H×W float32 in the model's value range."""
        low, high = self.manifest.value_range
        data = rgb.astype(np.float32) * ((high - low) / 255.0) + low
        return np.ascontiguousarray(data.transpose(2, 0, 1)[None])

    def find(self, rgb: np.ndarray, threshold: float | None = None,
             largest: float | None = None) -> list[Detection]:  # fmt: skip
        """Detections in ``rgb`` scoring at least ``threshold`` (default: the layout's), of
        objects up to ``largest`` pixels (None: any)."""
        return self._layout.find(rgb, threshold, largest)


def _refuse(detector: Detector, expected: str) -> ModelError:
    inputs, outputs = detector.signature()
    return ModelError(
        f"model {detector.manifest.name}: its inputs {inputs} and outputs {outputs} do not "
        f"match the {detector.manifest.layout} layout, which expects {expected}"
    )


class _Yolo:
    """YOLO-style boxes and class scores over one S×S input."""

    EXPECTED = ("one input N×3×S×S and one output N×(4+C)×A (YOLOv8) or N×A×(5+C) (YOLOv5), "
                "C being the number of labels")  # fmt: skip
    IOU = 0.45

    def __init__(self, detector: Detector) -> None:
        self.detector = detector
        inputs, outputs = detector.signature()
        if len(inputs) != 1 or len(outputs) != 1:
            raise _refuse(detector, self.EXPECTED)
        self.input = next(iter(inputs))
        self.side = detector.manifest.tile
        classes = len(detector.labels)
        probe = detector.run(None, {self.input: np.zeros((1, 3, self.side, self.side),
                                                         np.float32)})[0]  # fmt: skip
        if probe.ndim != 3 or 4 + classes not in probe.shape[1:] and 5 + classes != probe.shape[2]:
            raise _refuse(detector, self.EXPECTED)
        self.v5 = probe.shape[2] == 5 + classes
        self.window, self.smallest = self.side // 2, 8

    def find(self, rgb: np.ndarray, threshold: float | None,
             largest: float | None) -> list[Detection]:  # fmt: skip
        threshold = 0.25 if threshold is None else threshold
        height, width = rgb.shape[:2]
        factor = min(1.0, self.side / max(height, width))
        shrunk = _resized(rgb, factor) if factor < 1 else rgb
        canvas = np.full((self.side, self.side, 3), 114, np.uint8)
        canvas[: shrunk.shape[0], : shrunk.shape[1]] = shrunk
        out = self.detector.run(None, {self.input: self.detector.scaled(canvas)})[0][0]
        if self.v5:
            scores = out[:, 5:] * out[:, 4:5]
            boxes = out[:, :4]
        else:
            out = out.T if out.shape[0] == 4 + len(self.detector.labels) else out
            boxes, scores = out[:, :4], out[:, 4:]
        label = scores.argmax(axis=1)
        score = scores[np.arange(len(scores)), label]
        chosen = score >= threshold
        boxes, score, label = boxes[chosen] / factor, score[chosen], label[chosen]
        corners = np.column_stack([boxes[:, 0] - boxes[:, 2] / 2, boxes[:, 1] - boxes[:, 3] / 2,
                                   boxes[:, 0] + boxes[:, 2] / 2, boxes[:, 1] + boxes[:, 3] / 2])
        corners = np.clip(corners, 0, [width, height, width, height])
        offset = corners + label[:, None] * (max(width, height) + 1.0)  # classes apart
        found = []
        for index in nms(offset, score, self.IOU):
            if largest is None or max(boxes[index, 2], boxes[index, 3]) <= largest:
                found.append(Detection(tuple(map(float, corners[index])), float(score[index]),
                                       self.detector.labels[label[index]]))  # fmt: skip
        return found


class _Mtcnn:
    """The three-stage MTCNN face cascade."""

    EXPECTED = ("inputs pnet (N×3×h×w), rnet (N×3×24×24), onet (N×3×48×48) and outputs pnet_box "
                "(N×4×h'×w'), pnet_prob (N×h'×w'), rnet_box (N×4), rnet_prob (N), onet_box (N×4), "
                "onet_landmarks (N×10), onet_prob (N)")  # fmt: skip
    STAGES = (0.6, 0.7)
    """Probability a P-Net window and an R-Net crop need to go on (the O-Net's is the step's
    threshold)."""
    FACTOR = 0.709
    """Ratio between the pyramid's levels."""
    SMALLEST = 20
    BATCH = 256

    def __init__(self, detector: Detector) -> None:
        self.detector = detector
        inputs, outputs = detector.signature()
        wanted_in = {"pnet": 4, "rnet": 4, "onet": 4}
        wanted_out = {"pnet_box": 4, "pnet_prob": 3, "rnet_box": 2, "rnet_prob": 1, "onet_box": 2,
                      "onet_landmarks": 2, "onet_prob": 1}  # fmt: skip
        shapes_fit = all(len(inputs.get(k, ())) == n for k, n in wanted_in.items()) and all(
            len(outputs.get(k, ())) == n for k, n in wanted_out.items())
        if not shapes_fit:
            raise _refuse(detector, self.EXPECTED)
        self.window = detector.manifest.tile // 2
        self.smallest = self.SMALLEST

    def find(self, rgb: np.ndarray, threshold: float | None,
             largest: float | None) -> list[Detection]:  # fmt: skip
        threshold = 0.7 if threshold is None else threshold
        height, width = rgb.shape[:2]
        boxes = self._propose(rgb, largest)
        if len(boxes):
            boxes = self._refine(rgb, boxes, "rnet", 24, self.STAGES[1])
        if not len(boxes):
            return []
        boxes, points = self._finish(rgb, boxes, threshold)
        found = []
        for box, landmarks in zip(boxes, points):
            x0, y0 = max(box[0], 0.0), max(box[1], 0.0)
            x1, y1 = min(box[2], float(width)), min(box[3], float(height))
            if x1 > x0 and y1 > y0:
                found.append(Detection((float(x0), float(y0), float(x1), float(y1)),
                                       float(box[4]), "face",
                                       tuple((float(x), float(y)) for x, y in landmarks)))
        return found

    def scales(self, height: int, width: int, largest: float | None) -> list[float]:
        """The pyramid: scale 12/20 (the smallest face, 20 px, to P-Net's 12) down by
        :data:`FACTOR` while the image stays at least 12 px and faces stay within ``largest``."""
        scale, scales = 12.0 / self.SMALLEST, []
        while min(height, width) * scale >= 12 and (largest is None or 12 / scale <= largest):
            scales.append(scale)
            scale *= self.FACTOR
        return scales

    def _propose(self, rgb: np.ndarray, largest: float | None) -> np.ndarray:
        """P-Net over the pyramid: candidate squares (x0, y0, x1, y1, score)."""
        height, width = rgb.shape[:2]
        found = []
        for scale in self.scales(height, width, largest):
            level = _resized(rgb, scale)
            box, prob = self.detector.run(["pnet_box", "pnet_prob"],
                                          {"pnet": self.detector.scaled(level)})  # fmt: skip
            rows, cols = np.nonzero(prob[0] >= self.STAGES[0])
            if not len(rows):
                continue
            score = prob[0, rows, cols]
            x0, y0 = (2 * cols + 1) / scale, (2 * rows + 1) / scale
            x1, y1 = (2 * cols + 12) / scale, (2 * rows + 12) / scale
            windows = np.column_stack([x0, y0, x1, y1, score, box[0][:, rows, cols].T])
            found.append(windows[nms(windows[:, :4], score, 0.5)])
        if not found:
            return np.empty((0, 5))
        windows = np.concatenate(found)
        windows = windows[nms(windows[:, :4], windows[:, 4], 0.7)]
        return _square(_corrected(windows[:, :5], windows[:, 5:9]))

    def _refine(self, rgb: np.ndarray, boxes: np.ndarray, stage: str, side: int,
                keep: float) -> np.ndarray:  # fmt: skip
        box, prob = self._crops_through(rgb, boxes, stage, side, [f"{stage}_box", f"{stage}_prob"])
        passed = prob >= keep
        boxes = np.column_stack([boxes[passed, :4], prob[passed]])
        box = box[passed]
        chosen = nms(boxes[:, :4], boxes[:, 4], 0.7)
        return _square(_corrected(boxes[chosen], box[chosen]))

    def _finish(self, rgb: np.ndarray, boxes: np.ndarray, threshold: float
                ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
        box, marks, prob = self._crops_through(rgb, boxes, "onet", 48,
                                               ["onet_box", "onet_landmarks", "onet_prob"])
        passed = prob >= threshold
        boxes = np.column_stack([boxes[passed, :4], prob[passed]])
        box, marks = box[passed], marks[passed]
        w = boxes[:, 2] - boxes[:, 0] + 1
        h = boxes[:, 3] - boxes[:, 1] + 1
        points = np.stack([w[:, None] * marks[:, :5] + boxes[:, 0:1] - 1,
                           h[:, None] * marks[:, 5:] + boxes[:, 1:2] - 1], axis=2)
        boxes = _corrected(boxes, box)
        chosen = nms(boxes[:, :4], boxes[:, 4], 0.7, by_min=True)
        return boxes[chosen], points[chosen]

    def _crops_through(self, rgb: np.ndarray, boxes: np.ndarray, stage: str, side: int,
                       outputs: list[str]) -> list[np.ndarray]:  # fmt: skip
        """Each box cut out (padded with black where it leaves the image), resized to the
        stage's side, and run through the stage in batches."""
        crops = np.stack([_resized(_cut(rgb, box), side, side) for box in boxes])
        results = []
        for start in range(0, len(crops), self.BATCH):
            batch = crops[start : start + self.BATCH]
            scaled = np.concatenate([self.detector.scaled(crop) for crop in batch])
            results.append(self.detector.run(outputs, {stage: scaled}))
        return [np.concatenate([part[index] for part in results]) for index in range(len(outputs))]


def _corrected(boxes: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """Boxes moved by a regression (fractions of their width and height)."""
    w = boxes[:, 2] - boxes[:, 0] + 1
    h = boxes[:, 3] - boxes[:, 1] + 1
    out = boxes.copy()
    out[:, :4] = boxes[:, :4] + shifts[:, :4] * np.column_stack([w, h, w, h])
    return out


def _square(boxes: np.ndarray) -> np.ndarray:
    """Boxes made square about their centres (the cascade's crops are square)."""
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    out = boxes.copy()
    out[:, 0] = boxes[:, 0] + w / 2 - side / 2
    out[:, 1] = boxes[:, 1] + h / 2 - side / 2
    out[:, 2], out[:, 3] = out[:, 0] + side, out[:, 1] + side
    return out


def _cut(rgb: np.ndarray, box: np.ndarray) -> np.ndarray:
    height, width = rgb.shape[:2]
    x0, y0, x1, y1 = (int(v) for v in box[:4])
    x1, y1 = max(x1, x0 + 1), max(y1, y0 + 1)
    crop = np.zeros((y1 - y0, x1 - x0, 3), np.uint8)
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    if sx1 > sx0 and sy1 > sy0:
        crop[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = rgb[sy0:sy1, sx0:sx1]
    return crop


def _resized(rgb: np.ndarray, scale: float, height: int | None = None) -> np.ndarray:
    """``rgb`` resized by area averaging, by ``scale`` or to ``scale`` × ``height`` pixels."""
    if height is None:
        size = (int(rgb.shape[1] * scale + 1), int(rgb.shape[0] * scale + 1))
    else:
        size = (int(scale), height)
    return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BOX))


def detector_for(name: str, settings: Settings) -> Detector:
    """The process-wide detector of a named model, loaded on first use."""
    return once(TASK, name, settings, lambda model: Detector(model, settings))
