"""Installed models run whole on small batches by onnxruntime, inside the lab: teachers of
distillation, and the models a chained recipe's inputs go through first (``follows``).

Patches are small, so there is no tiling; one session per model and process is kept.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

from pixelmill.config import Settings
from pixelmill.errors import UsageError
from pixelmill.lab import pixels
from pixelmill.models.manifest import Manifest


@functools.cache
def runner(name: str, settings: Settings) -> tuple[Callable[[np.ndarray], np.ndarray], Manifest]:
    """The installed RGB model ``name`` as a function of an N×3×H×W float32 batch in 0..1,
    with its manifest."""
    import onnxruntime as ort

    from pixelmill.models import find

    model = find(name, settings)
    manifest = model.manifest
    if manifest.channels != 3 or tuple(manifest.value_range) != (0.0, 1.0):
        raise UsageError(f"model {name}: the lab runs RGB models on 0..1")
    options = ort.SessionOptions()
    options.intra_op_num_threads = settings.threads
    session = ort.InferenceSession(str(model.path), options,
                                   providers=ort.get_available_providers())  # fmt: skip
    feed = session.get_inputs()[0].name

    def run(batch: np.ndarray) -> np.ndarray:
        return session.run(None, {feed: np.ascontiguousarray(batch, dtype=np.float32)})[0]

    return run, manifest


def restorer(name: str, settings: Settings) -> Callable[[np.ndarray], np.ndarray]:
    """The installed restoration model ``name`` (scale 1) as a function of one H×W×3 image in
    0..1, whose input and output are rounded to 8 bits as between two steps of a pipeline."""
    run, manifest = runner(name, settings)
    if manifest.scale != 1:
        raise UsageError(f"model {name}: ×{manifest.scale}; a model followed in training must "
                         "keep the size (scale 1)")  # fmt: skip

    def restore(image: np.ndarray) -> np.ndarray:
        return pixels.quantised(run(pixels.quantised(image).transpose(2, 0, 1)[None])[0]
                                .transpose(1, 2, 0))  # fmt: skip

    return restore
