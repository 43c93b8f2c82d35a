"""The photographs the lab knows: those held out for evaluation, those it may train on, and
the guard that keeps the held-out ones out of training.

Held out (evaluation only): ``china`` and ``flower`` from scikit-learn's
``load_sample_images()``, ``chelsea`` and ``coffee`` from ``skimage.data``.
Bundled for training: ``astronaut`` (the photograph of pixelmill's ``sample.jpg``, here at
512×512), ``rocket``, ``motorcycle`` (the left view), ``camera``, and the ``brick``, ``grass``
and ``gravel`` textures, all from ``skimage.data``.

The guard compares a 16×16 grey thumbnail of every training image with those of the held-out
photographs, so copies, re-encodings and resized versions are refused, wherever they come
from; crops of them are not recognised.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

from pixelmill.errors import UsageError
from pixelmill.lab import pixels


def _sklearn(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from sklearn.datasets import load_sample_image

        return load_sample_image(name)

    return load


def _skimage(name: str, index: int | None = None) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import skimage.data

        data = getattr(skimage.data, name)()
        return data if index is None else data[index]

    return load


HELD_OUT: dict[str, Callable[[], np.ndarray]] = {
    "china": _sklearn("china.jpg"),
    "flower": _sklearn("flower.jpg"),
    "chelsea": _skimage("chelsea"),
    "coffee": _skimage("coffee"),
}
"""Natural photographs kept for evaluation: 8-bit RGB arrays by name."""

TRAINING: dict[str, Callable[[], np.ndarray]] = {
    "astronaut": _skimage("astronaut"),
    "rocket": _skimage("rocket"),
    "motorcycle": _skimage("stereo_motorcycle", 0),
    "camera": _skimage("camera"),
    "brick": _skimage("brick"),
    "grass": _skimage("grass"),
    "gravel": _skimage("gravel"),
}
"""Bundled photographs the lab may train on: 8-bit grey or RGB arrays by name."""

SIGNATURE_SIDE = 16
SAME_PHOTO = 4 / 255
"""Largest mean difference between two signatures of one photograph (re-encoded, resized)."""


def load(name: str) -> np.ndarray:
    """A held-out or bundled training photograph in the working form."""
    return pixels.from_uint8((HELD_OUT | TRAINING)[name]())


def signature(image: np.ndarray) -> np.ndarray:
    """A 16×16 grey thumbnail of a working-form image."""
    side, (height, width) = SIGNATURE_SIDE, image.shape[:2]
    small = pixels.to_vips(image).resize(side / width, vscale=side / height)
    return small.numpy().reshape(side, side, -1).mean(axis=2)


@functools.cache
def _held_out_signatures() -> dict[str, np.ndarray]:
    return {name: signature(load(name)) for name in HELD_OUT}


def held_out_match(image: np.ndarray) -> str | None:
    """The name of the held-out photograph that ``image`` is a copy of, if any."""
    mine = signature(image)
    for name, theirs in _held_out_signatures().items():
        if np.abs(mine - theirs).mean() < SAME_PHOTO:
            return name
    return None


def ensure_trainable(image: np.ndarray, origin: str) -> None:
    """Refuse an image that is one of the held-out evaluation photographs."""
    match = held_out_match(image)
    if match is not None:
        raise UsageError(
            f"{origin}: is the held-out evaluation photograph {match!r}; it must not be used "
            "for training (see pixelmill.lab.photos)"
        )
