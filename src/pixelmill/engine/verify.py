"""Checking a model before it is installed: through the tiled executor, at its smallest tile,
its output must equal its whole-image output."""

from __future__ import annotations

import numpy as np
import pyvips

from pixelmill.config import Settings
from pixelmill.engine.tiled import MIN_TILE, ModelRun, Plan
from pixelmill.errors import ModelError
from pixelmill.models.probe import texture
from pixelmill.models.registry import ModelFile
from pixelmill.models.runtime import Session, load_session

TOLERANCE = 1
"""Largest difference allowed between tiled and whole output, in 8-bit steps."""
MAX_FIELD = 512


def tiled_matches_whole(model: ModelFile, settings: Settings) -> None:
    """Refuse the model, with the measured difference and the receptive field that would
    work, unless its tiled output equals its whole-image output within :data:`TOLERANCE`."""
    session = load_session(model, settings)
    manifest = model.manifest
    tile = -(-max(MIN_TILE, manifest.align) // manifest.align) * manifest.align
    differs = _difference(session, tile, manifest.overlap)
    if differs.max() <= TOLERANCE:
        return
    share = 100.0 * float(np.mean(differs.max(axis=2) > TOLERANCE))
    found = _field_that_works(session, tile, manifest.overlap)
    fix = (f"the receptive field looks like {found}, not {manifest.receptive_field}: set "
           f"receptive_field to {found}" if found else
           f"no overlap up to {MAX_FIELD} pixels makes tiles agree: the model depends on the "
           "whole image and cannot be tiled")  # fmt: skip
    raise ModelError(f"model {manifest.name}: tiled output (tile {tile}, overlap "
                     f"{manifest.overlap}) differs from whole-image output by up to "
                     f"{int(differs.max())}/255 on {share:.3g} % of the pixels; {fix}")


def _difference(session: Session, tile: int, overlap: int) -> np.ndarray:
    """Tiled output less whole-image output on a probe picture three tiles wide (and a
    little more, so that the last tile is cut short)."""
    side = 3 * tile + 2 * overlap + 7
    pixels = np.rint(texture(5, session.manifest.bands, side, side)[0].transpose(1, 2, 0) * 255)
    image = pyvips.Image.new_from_array(pixels.astype(np.uint8), interpretation="srgb"
                                        if session.manifest.bands == 3 else "b-w")  # fmt: skip
    whole = _output(session, image, Plan(side + session.manifest.align, 0, 1))
    return np.abs(_output(session, image, Plan(tile, overlap, 4)) - whole)


def _field_that_works(session: Session, tile: int, overlap: int) -> int:
    """The smallest overlap above ``overlap`` at which tiles agree with the whole (0 if none
    up to :data:`MAX_FIELD`), found by doubling and then halving the step."""
    align = session.manifest.align

    def agrees(candidate: int) -> bool:
        return bool(_difference(session, tile, candidate).max() <= TOLERANCE)

    low, high = overlap, max(2 * overlap, overlap + align)
    while not agrees(high):
        if high >= MAX_FIELD:
            return 0
        low, high = high, min(MAX_FIELD, 2 * high)
    while high - low > align:
        middle = (low + high) // 2 // align * align
        low, high = (low, middle) if agrees(middle) else (middle, high)
    return high


def _output(session: Session, image: pyvips.Image, plan: Plan) -> np.ndarray:
    run = ModelRun(image, session, plan)
    return np.concatenate([band.copy() for band in run.output_bands()]).astype(np.int32)
