"""Augmentation of target images before they are degraded: flips, quarter turns and colour
jitter, drawn from a numpy Generator (crops are taken by the image sources)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pixelmill.errors import UsageError

LUMA = np.array([0.299, 0.587, 0.114], np.float32)
"""BT.601 weights of R, G and B in luma."""


@dataclass(frozen=True)
class Augment:
    """Random flips and quarter turns, and brightness, contrast and saturation each scaled by
    a factor within 1 ± ``jitter``."""

    flip: bool = True
    rotate: bool = True
    jitter: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.jitter < 1.0:
            raise UsageError(f"jitter {self.jitter} is not within 0..1 (0: none)")

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if self.flip and rng.random() < 0.5:
            image = image[:, ::-1]
        if self.rotate:
            image = np.rot90(image, int(rng.integers(4)))
        if self.jitter:
            brightness, contrast, saturation = rng.uniform(1 - self.jitter, 1 + self.jitter, 3)
            image = image * np.float32(brightness)
            mean = (image @ LUMA).mean()
            image = mean + (image - mean) * np.float32(contrast)
            grey = (image @ LUMA)[..., None]
            image = np.clip(grey + (image - grey) * np.float32(saturation), 0, 1)
        return np.ascontiguousarray(image, dtype=np.float32)
