"""The catalogue of metrics: each one's name, what it compares, which way is better, its unit,
and the function computing it (imported only when a metric is computed, so the pipeline
grammar can check gate names without loading libvips).

Three kinds:

- ``reference``: the image against a reference of the same size (ground truth, or a step's
  input);
- ``consistency``: an upscaled image against the smaller image it came from;
- ``blind``: the image alone (no-reference indicators for production).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pixelmill.errors import UsageError

KINDS = ("reference", "consistency", "blind")


@dataclass(frozen=True)
class Metric:
    name: str
    kind: str
    higher_is_better: bool | None
    """Which way is better; None: neither (a description, such as exposure)."""
    unit: str
    doc: str
    function: str
    """``module:function``: a module of :mod:`pixelmill.quality` by its short name for the
    built-in metrics, the module's full name for a plugin's."""
    options: dict[str, Any] = field(default_factory=dict)
    key: str | None = None
    """For functions returning a mapping: the entry this metric is."""
    origin: str = "pixelmill"
    """The package it comes from."""

    def __call__(self, image: Any, reference: Any = None) -> float:
        module, name = self.function.split(":")
        module = f"pixelmill.quality.{module}" if self.origin == "pixelmill" else module
        function = getattr(importlib.import_module(module), name)
        if self.kind == "blind":
            value = function(image, **self.options)
        else:
            if reference is None:
                raise UsageError(f"metric {self.name} needs a reference image")
            value = function(reference, image, **self.options)
        return float(value[self.key] if self.key else value)


METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("psnr", "reference", True, "dB", "peak signal-to-noise ratio over RGB",
           "reference:psnr"),
    Metric("psnr-y", "reference", True, "dB", "PSNR on luma (Y of BT.601)", "reference:psnr",
           {"luma": True}),
    Metric("ssim", "reference", True, "0..1", "structural similarity, RGB bands averaged",
           "reference:ssim"),
    Metric("ssim-y", "reference", True, "0..1", "structural similarity on luma",
           "reference:ssim", {"luma": True}),
    Metric("ms-ssim", "reference", True, "0..1", "multi-scale SSIM on luma",
           "reference:ms_ssim"),
    Metric("fsim", "reference", True, "0..1", "feature similarity on luma", "fsim:fsim"),
    Metric("fsimc", "reference", True, "0..1", "feature similarity with colour", "fsim:fsimc"),
    Metric("ssimulacra2", "reference", True, "-inf..100",
           "SSIMULACRA 2 (90: visually lossless, 70: high, 50: medium quality)",
           "ssimulacra2:ssimulacra2"),
    Metric("ciede2000", "reference", False, "ΔE00", "mean CIEDE2000 colour difference",
           "reference:ciede2000"),
    Metric("butteraugli", "reference", False, "distance", "Butteraugli distance, the largest "
           "perceived difference (1: barely visible; needs libjxl's butteraugli_main)",
           "butteraugli:distance"),
    Metric("consistency", "consistency", True, "dB",
           "PSNR of the image shrunk back to its source's size, against the source",
           "blind:consistency"),
    Metric("sharpness", "blind", True, "", "variance of the Laplacian of luma",
           "blind:sharpness"),
    Metric("noise", "blind", False, "0..255", "estimated noise standard deviation in luma",
           "blind:noise"),
    Metric("blockiness", "blind", False, "ratio", "luma steps across the 8×8 grid over those "
           "inside blocks (1: none)", "blind:blockiness"),
    Metric("mean-luma", "blind", None, "0..1", "mean luma (exposure)", "blind:exposure",
           key="mean_luma"),
    Metric("clipped-black", "blind", False, "share", "pixels clipped to black",
           "blind:exposure", key="clipped_black"),
    Metric("clipped-white", "blind", False, "share", "pixels clipped to white",
           "blind:exposure", key="clipped_white"),
    Metric("colourfulness", "blind", True, "", "Hasler and Süsstrunk's colourfulness M",
           "blind:colourfulness"),
)}  # fmt: skip

DEFAULT = ("psnr", "psnr-y", "ssim", "ms-ssim", "fsim", "ssimulacra2", "ciede2000")
"""What ``compare`` measures of two images of one size unless told."""
RESAMPLED_DEFAULT = ("consistency",)
"""What it measures when the image is larger than the reference (an upscale)."""


def metrics() -> dict[str, Metric]:
    """Every metric by name: the built-in ones, then those of plugins (entry point group
    ``pixelmill.metrics``), loaded on first use."""
    _load_plugins()
    return METRICS


@functools.cache
def _load_plugins() -> None:
    from pixelmill.plugins import discover

    found: dict[str, Metric] = {}
    for plugin in discover("pixelmill.metrics"):
        value = plugin.value
        if not isinstance(value, Metric) or value.kind not in KINDS:
            raise plugin.refuse(f"{value!r} is not a metric (a pixelmill.quality.Metric of "
                                f"kind {', '.join(KINDS)})")  # fmt: skip
        if value.name in METRICS or value.name in found:
            owner = METRICS[value.name].origin if value.name in METRICS else "another plugin"
            raise plugin.refuse(f"its metric {value.name!r} has the name of a metric of {owner}")
        found[value.name] = dataclasses.replace(value, origin=plugin.package)
    METRICS.update(found)


def metric(name: str) -> Metric:
    """The metric called ``name``; unknown names are refused with the list."""
    known = metrics()
    found = known.get(name.strip().lower())
    if found is None:
        raise UsageError(f"unknown metric {name!r} (metrics: {', '.join(known)})")
    return found


def compare(reference: Any, image: Any, metrics: Iterable[str] | None = None, *,
            resample: bool = False) -> dict[str, float]:  # fmt: skip
    """Each metric of ``image`` against ``reference`` (pyvips images or arrays), by name.
    Without ``metrics``: :data:`DEFAULT`, or :data:`RESAMPLED_DEFAULT` when the sizes differ.
    With ``resample``, full-reference metrics of two sizes shrink the larger image to the
    smaller's size (bicubic, antialiased) instead of refusing them."""
    from pixelmill.quality.images import as_vips, same_size

    left, right = as_vips(reference), as_vips(image)
    same = (left.width, left.height) == (right.width, right.height)
    if metrics is None:
        metrics = DEFAULT if same else RESAMPLED_DEFAULT
    chosen = [metric(name) for name in dict.fromkeys(metrics)]
    matched = same_size(right, left) if resample and not same else (right, left)
    return {m.name: m(*(matched if m.kind == "reference" else (right, left))) for m in chosen}
