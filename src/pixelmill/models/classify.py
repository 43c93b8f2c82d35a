"""Classifiers (manifest task ``classify``): an N×3×S×S batch (S: the manifest's ``tile``; the
whole image resized to it, aspect ignored) in the manifest's value range in, one logit per
label out; :meth:`Classifier.top` gives the likeliest labels with their probabilities."""

from __future__ import annotations

import numpy as np

from pixelmill.config import Settings
from pixelmill.errors import ModelError
from pixelmill.models.registry import ModelFile
from pixelmill.models.runtime import inference_session, once

TASK = "classify"


class Classifier:
    """A loaded classifier, checked on a blank image when it loads (one score per label)."""

    def __init__(self, model: ModelFile, settings: Settings) -> None:
        manifest = model.manifest
        self._session = inference_session(model, settings, TASK, "classify images")
        self.manifest = manifest
        self.side = manifest.tile
        self._input = self._session.get_inputs()[0].name
        probe = self.probabilities(np.zeros((self.side, self.side, 3), np.uint8))
        if probe.shape != (len(manifest.labels),):
            raise ModelError(f"model {manifest.name}: gives {probe.size} score(s) for "
                             f"{len(manifest.labels)} label(s)")  # fmt: skip

    def probabilities(self, rgb: np.ndarray) -> np.ndarray:
        """The probability of each label for an S×S×3 uint8 RGB image."""
        low, high = self.manifest.value_range
        batch = (rgb.astype(np.float32) * ((high - low) / 255.0) + low).transpose(2, 0, 1)[None]
        try:
            logits = np.asarray(self._session.run(None, {self._input: batch})[0], np.float64)
        except Exception as exc:  # noqa: BLE001  # onnxruntime raises its own types
            raise ModelError(f"model {self.manifest.name}: fails: {exc}") from None
        logits = logits.reshape(-1)
        if not np.isfinite(logits).all():
            raise ModelError(f"model {self.manifest.name}: gives non-finite scores")
        exp = np.exp(logits - logits.max())
        return exp / exp.sum()

    def top(self, rgb: np.ndarray, k: int) -> list[dict]:
        """The ``k`` likeliest labels, ``{"class", "score"}`` each, likeliest first."""
        scores = self.probabilities(rgb)
        order = np.argsort(-scores)[:k]
        return [{"class": self.manifest.labels[i], "score": round(float(scores[i]), 4)}
                for i in order]  # fmt: skip


def classifier_for(name: str, settings: Settings) -> Classifier:
    """The process-wide classifier of a named model, loaded on first use."""
    return once(TASK, name, settings, lambda model: Classifier(model, settings))
