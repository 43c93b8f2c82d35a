"""Models that turn an image into one vector (manifest task ``embed``), run by onnxruntime:
N × C × H × W images in the manifest's value range in, one vector per image out (spatial
outputs averaged). Apart from :mod:`runtime`, whose sessions are for image-to-image models
run in tiles."""

from __future__ import annotations

import numpy as np

from pixelmill.config import Settings
from pixelmill.errors import ModelError
from pixelmill.models.registry import ModelFile
from pixelmill.models.runtime import inference_session

TASK = "embed"


class VectorModel:
    """A loaded embedding model; :attr:`dim` is the length of its vectors (found by a trial
    run when it loads, which also proves the model works)."""

    def __init__(self, model: ModelFile, settings: Settings) -> None:
        manifest = model.manifest
        self._session = inference_session(model, settings, TASK, "make embeddings")
        self.manifest = manifest
        first = self._session.get_inputs()[0]
        self._input = first.name
        self.dtype = np.float16 if first.type == "tensor(float16)" else np.float32
        side = manifest.tile
        probe = self.run(np.zeros((1, manifest.channels, side, side), self.dtype))
        if not np.isfinite(probe).all():
            raise ModelError(f"model {manifest.name}: gives non-finite values on a blank image")
        self.dim = probe.shape[1]

    def run(self, batch: np.ndarray) -> np.ndarray:
        """One vector per image of an N × C × H × W batch (N × D, float32)."""
        try:
            out = np.asarray(self._session.run(None, {self._input: batch.astype(self.dtype)})[0],
                             np.float32)  # fmt: skip
        except Exception as exc:  # noqa: BLE001  # onnxruntime raises its own types
            raise ModelError(f"model {self.manifest.name}: fails on a {batch.shape[3]}×"
                             f"{batch.shape[2]} image: {exc}") from None  # fmt: skip
        if out.ndim == 4:
            out = out.mean(axis=(2, 3))
        return out.reshape(len(batch), -1)
