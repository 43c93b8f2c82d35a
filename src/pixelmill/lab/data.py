"""Training pairs: target patches from synthetic generators and photographs, augmented, then
degraded into the model's input.

Sample ``i`` is a pure function of the recipe's seed and ``i`` (its own numpy Generator), so
training is reproducible whatever the number of loader processes, and a resumed run sees
exactly the samples an uninterrupted one would.
"""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np
import torch

from pixelmill import api, codecs, storage
from pixelmill.config import Settings
from pixelmill.errors import UsageError
from pixelmill.lab import installed, photos, pixels
from pixelmill.lab.degrade import resize
from pixelmill.lab.recipe import Recipe
from pixelmill.lab.synthetic import GENERATORS
from pixelmill.storage import Location

Rng = np.random.Generator
BUNDLED = "bundled:"
"""Prefix of the entries that name a bundled training photograph."""
DECODED_CACHE = 8
"""Photographs kept decoded in each loader process."""
POOL = 128
"""Images each synthetic generator draws for a run, from the seed: patches are random crops of
them, since drawing an image (a dead-leaves one above all) costs far more than a training step
spends on a patch."""


class Synthetic:
    """Patches from one generator of :mod:`pixelmill.lab.synthetic`: crops of a pool of
    images twice the patch side, each drawn once per loader process from the seed."""

    def __init__(self, kind: str, seed: int) -> None:
        self.kind, self.seed = kind, seed

    def sample(self, side: int, rng: Rng) -> np.ndarray:
        image = _pooled(self.kind, self.seed, 2 * side, int(rng.integers(POOL)))
        y, x = (int(v) for v in rng.integers(side + 1, size=2))
        return image[y : y + side, x : x + side]


@functools.cache
def _pooled(kind: str, seed: int, side: int, index: int) -> np.ndarray:
    stream = list(GENERATORS).index(kind)
    return GENERATORS[kind](side, np.random.default_rng([seed, POOL, stream, index]))


class Photos:
    """Random crops of photographs, each first shrunk by a random factor: the bundled training
    photographs, the images below folders or storage prefixes, and single images.

    Every image is checked against the held-out evaluation photographs when the source is
    made (from a small thumbnail); images smaller than a patch are left out.
    """

    def __init__(self, bundled: bool, folders: tuple[str, ...], side: int,
                 shrink: tuple[float, float], settings: Settings,
                 images: tuple[str, ...] = ()) -> None:  # fmt: skip
        self.side, self.shrink, self.settings = side, shrink, settings
        self.entries: list[str] = []
        self.left_out: list[str] = []
        if bundled:
            for name in photos.TRAINING:
                image = photos.load(name)
                self._admit(BUNDLED + name, image, image.shape[:2])
        below = (loc for folder in folders for loc in api.images_below(folder))
        for loc in itertools.chain(below, map(storage.locate, images)):
            with codecs.open_source(loc, settings) as source:
                width, height = source.upright_size
                small = pixels.from_vips(source.thumbnail(64))
            self._admit(loc.url, small, (height, width))
        if not self.entries:
            raise UsageError(f"data: no photograph is at least {side}×{side} pixels "
                             f"(folders: {', '.join(folders) or 'none'}; "
                             f"{len(images)} single images)")  # fmt: skip

    def _admit(self, entry: str, image: np.ndarray, size: tuple[int, int]) -> None:
        photos.ensure_trainable(image, entry)
        (self.entries if min(size) >= self.side else self.left_out).append(entry)

    def sample(self, side: int, rng: Rng) -> np.ndarray:
        image = _decoded(self.entries[int(rng.integers(len(self.entries)))], self.settings)
        height, width = image.shape[:2]
        factor = max(rng.uniform(*self.shrink), side / min(height, width))
        crop = min(math.ceil(side / factor), height, width)
        y, x = int(rng.integers(height - crop + 1)), int(rng.integers(width - crop + 1))
        return resize(pixels.from_uint8(image[y : y + crop, x : x + crop]), (side, side),
                      "lanczos3")  # fmt: skip


@functools.lru_cache(maxsize=DECODED_CACHE)
def _decoded(entry: str, settings: Settings) -> np.ndarray:
    """A whole photograph as 8-bit RGB, kept for the next crops."""
    if entry.startswith(BUNDLED):
        return pixels.to_uint8(photos.load(entry[len(BUNDLED) :]))
    return pixels.to_uint8(pixels.read(Location(entry), settings))


class Pairs(torch.utils.data.Dataset):
    """(input, target) pairs of C×H×W float32 tensors in 0..1, one per index, for as many
    indexes as the recipe's steps need."""

    def __init__(self, recipe: Recipe, settings: Settings) -> None:
        self.recipe = recipe
        data, scale = recipe.data, recipe.scale
        self.side = recipe.train.patch * scale
        self.sources: list[Synthetic | Photos] = []
        self.photos: Photos | None = None
        weights = []
        for kind in GENERATORS:
            if getattr(data, kind):
                self.sources.append(Synthetic(kind, recipe.train.seed))
                weights.append(getattr(data, kind))
        if data.photos:
            self.photos = Photos(data.bundled, data.folders, self.side, data.photo_scale,
                                 settings, data.images)  # fmt: skip
            self.sources.append(self.photos)
            weights.append(data.photos)
        self.weights = np.asarray(weights) / sum(weights)
        self.settings = settings
        for name in recipe.follows:  # found and checked here, before any worker starts
            installed.restorer(name, settings)

    def __len__(self) -> int:
        return self.recipe.train.steps * self.recipe.train.batch

    def pair(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Sample ``index`` as H×W×3 arrays: (input, target)."""
        recipe = self.recipe
        rng = np.random.default_rng([recipe.train.seed, index])
        source = self.sources[int(rng.choice(len(self.sources), p=self.weights))]
        target = pixels.quantised(recipe.augment(source.sample(self.side, rng), rng))
        degraded = recipe.degradation(target, rng)
        for name in recipe.follows:
            degraded = installed.restorer(name, self.settings)(degraded)
        return degraded, target

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        degraded, target = self.pair(index)
        return _tensor(degraded), _tensor(target)


def _tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
