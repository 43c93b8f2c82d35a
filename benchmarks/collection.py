"""A collection of photographs (and of screenshot-like graphics) for the benchmarks that need
many distinct images of one kind: drift, anomalies.

    import collection
    pictures = collection.photos(400, side=512, seed=0)   # uint8 arrays, side × side × 3
    screens = collection.graphics(200, side=512, seed=1)
    print(collection.describe())                          # what they were made from

Photographs come from a folder when one is given (``folder=`` or the ``PIXELMILL_PHOTOS``
environment variable): every JPEG, PNG, WebP or TIFF in it, recursively, sorted by path. With at
least ``n`` files, each picture is one file, scaled so its short side is ``side`` and cut in the
middle (a random choice of ``n`` files, in a seeded order). With fewer, pictures are random
windows of the folder's files and of the bundled photographs together, taken in turn.

The bundled photographs (:data:`BUNDLED`) are the nine colour photographs that scikit-image and
scikit-learn ship (public domain, CC0 or CC BY 2.0, listed there). A window is a square of
40–100 % of a photograph's short side at a random place, mirrored at random, scaled to
``side`` × ``side`` with Lanczos 3. Windows are real photographs, but windows of one photograph
are correlated (the same light, camera, subject and processing), so a sample of them is less
diverse than as many independent photographs.

The Kodak suite makes a good folder: 24 photographs (768 × 512, PNG) that Eastman Kodak
released for unrestricted use. To obtain it (never commit the files)::

    git clone --depth 1 https://github.com/MohamedBakrAli/Kodak-Lossless-True-Color-Image-Suite k
    export PIXELMILL_PHOTOS=$PWD/k/PhotoCD_PCD0992

(or download ``kodim01.png`` … ``kodim24.png`` from https://r0k.us/graphics/kodak/).

Graphics are drawn with libvips: a page of flat colour with UI rectangles (buttons, panels,
a title bar), rows of type in libvips' own font renderer (Pango), thin rules and the odd flat
icon, every colour and position drawn from the seed: what screenshots and slides look like.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyvips

ENVIRONMENT = "PIXELMILL_PHOTOS"
SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff"}


def _skimage(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import skimage.data

        return getattr(skimage.data, name)()

    return load


def _sklearn(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from sklearn.datasets import load_sample_image

        return load_sample_image(name)

    return load


BUNDLED: dict[str, tuple[Callable[[], np.ndarray], str]] = {
    "astronaut": (_skimage("astronaut"), "NASA, public domain (scikit-image)"),
    "coffee": (_skimage("coffee"), "Rachel Michetti, CC0 (scikit-image)"),
    "chelsea": (_skimage("chelsea"), "Stefan van der Walt, CC0 (scikit-image)"),
    "rocket": (_skimage("rocket"), "SpaceX, public domain (scikit-image)"),
    "hubble_deep_field": (_skimage("hubble_deep_field"), "NASA, public domain (scikit-image)"),
    "immunohistochemistry": (_skimage("immunohistochemistry"),
                             "CMMI, no known copyright restrictions (scikit-image)"),
    "retina": (_skimage("retina"), "Mikael Häggström, CC0 (scikit-image)"),
    "china": (_sklearn("china.jpg"), "danielbuechele on Flickr, CC BY 2.0 (scikit-learn)"),
    "flower": (_sklearn("flower.jpg"), "vultilion on Flickr, CC BY 2.0 (scikit-learn)"),
}  # fmt: skip
"""The bundled colour photographs: name → (loader, author and licence)."""


def folder_files(folder: str | Path | None = None) -> list[Path]:
    """The image files of ``folder`` (or of ``$PIXELMILL_PHOTOS``), sorted; [] without one."""
    chosen = folder if folder is not None else os.environ.get(ENVIRONMENT)
    if not chosen:
        return []
    root = Path(chosen)
    if not root.is_dir():
        raise FileNotFoundError(f"no folder of photographs at {root}")
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in SUFFIXES and p.is_file())


def describe(folder: str | Path | None = None) -> str:
    """Where :func:`photos` takes its pictures from, and their licences, in one paragraph."""
    files = folder_files(folder)
    notes = "; ".join(f"{name}: {licence}" for name, (_, licence) in BUNDLED.items())
    bundled = f"{len(BUNDLED)} bundled photographs ({notes})"
    if not files:
        return f"random windows of {bundled}"
    return (f"photographs of the folder {files[0].parent.name!r} ({len(files)} files; see its "
            f"licences), one per picture when there are enough, else random windows of them "
            f"and of {bundled}")


def photos(n: int, side: int = 512, seed: int = 0,
           folder: str | Path | None = None) -> list[np.ndarray]:  # fmt: skip
    """``n`` distinct photographs, uint8 ``side`` × ``side`` × 3 (see the module docstring)."""
    rng = np.random.default_rng(seed)
    files = folder_files(folder)
    if len(files) >= n:
        chosen = rng.choice(len(files), size=n, replace=False)
        return [_centre(_load(files[i]), side) for i in chosen]
    sources = [_load(path) for path in files] + [load() for load, _ in BUNDLED.values()]
    order = np.concatenate([rng.permutation(len(sources)) for _ in range(-(-n // len(sources)))])
    return [_window(sources[i], side, rng) for i in order[:n]]


def graphics(n: int, side: int = 512, seed: int = 0) -> list[np.ndarray]:
    """``n`` screenshot-like pictures, uint8 ``side`` × ``side`` × 3 (see the module docstring)."""
    rng = np.random.default_rng(seed)
    return [_screen(side, rng) for _ in range(n)]


def _load(path: Path) -> np.ndarray:
    image = pyvips.Image.new_from_file(str(path), access="sequential").autorot()
    if image.interpretation not in ("srgb", "b-w") or image.format != "uchar":
        image = image.colourspace("srgb").cast("uchar")
    if image.hasalpha():
        image = image.flatten(background=[255])
    array = image.numpy()
    if array.ndim == 2:
        array = array[..., None]
    return np.ascontiguousarray(np.broadcast_to(array, (*array.shape[:2], 3)) if
                                array.shape[2] == 1 else array[..., :3])  # fmt: skip


def _resize(array: np.ndarray, side: int) -> np.ndarray:
    image = pyvips.Image.new_from_array(array, interpretation="srgb")
    scaled = image.resize(side / image.width, vscale=side / image.height, kernel="lanczos3")
    return np.ascontiguousarray(scaled.numpy()[:side, :side, :3])


def _centre(array: np.ndarray, side: int) -> np.ndarray:
    height, width = array.shape[:2]
    short = min(height, width)
    top, left = (height - short) // 2, (width - short) // 2
    return _resize(array[top:top + short, left:left + short], side)


def _window(array: np.ndarray, side: int, rng: np.random.Generator) -> np.ndarray:
    height, width = array.shape[:2]
    short = min(height, width)
    size = int(rng.uniform(0.4, 1.0) * short)
    top, left = int(rng.integers(0, height - size + 1)), int(rng.integers(0, width - size + 1))
    cut = array[top:top + size, left:left + size]
    return _resize(cut[:, ::-1] if rng.random() < 0.5 else cut, side)


WORDS = ("Settings", "Account", "Export", "Share", "Preview", "Cancel", "Save", "Upload",
         "Gallery", "Filter", "Sort", "Name", "Size", "Modified", "Search", "Help", "Images",
         "Dataset", "Queue", "Running", "Done", "Failed", "Retry", "Open", "Close", "Report",
         "Drift", "Quality", "Width", "Height", "Format", "Pipeline", "Jobs", "Storage", "Users",
         "Logs")


def _screen(side: int, rng: np.random.Generator) -> np.ndarray:
    dark = rng.random() < 0.3
    page = rng.integers(20, 50, 3) if dark else rng.integers(225, 256, 3)
    ink = np.array([230, 230, 230]) if dark else rng.integers(0, 60, 3)
    accent = rng.integers(0, 256, 3)
    image = (pyvips.Image.black(side, side, bands=3) + page.tolist()).cast("uchar")
    image = image.copy(interpretation="srgb")
    bar = int(rng.integers(side // 16, side // 8))
    image = image.draw_rect(accent.tolist(), 0, 0, side, bar, fill=True)
    if rng.random() < 0.6:  # a side panel
        panel = int(rng.integers(side // 6, side // 3))
        shade = np.clip(page.astype(int) + (18 if dark else -14), 0, 255).tolist()
        image = image.draw_rect(shade, 0, bar, panel, side - bar, fill=True)
        left = panel + side // 32
    else:
        left = side // 24
    top = bar + side // 24
    while top < side - side // 12:
        if rng.random() < 0.25:  # a row of buttons
            x = left
            for _ in range(int(rng.integers(1, 4))):
                width = int(rng.integers(side // 8, side // 4))
                if x + width >= side:
                    break
                colour = rng.integers(0, 256, 3).tolist()
                image = image.draw_rect(colour, x, top, width, side // 16, fill=True)
                x += width + side // 40
            top += side // 16 + side // 30
            continue
        if rng.random() < 0.15:  # a rule
            image = image.draw_line(ink.tolist(), left, top, side - side // 24, top)
            top += side // 40
            continue
        words = " ".join(rng.choice(WORDS, size=int(rng.integers(2, 8))))
        dpi = int(rng.integers(50, 110)) * side // 512
        text = pyvips.Image.text(words, dpi=max(dpi, 20), font="sans")
        width = min(text.width, side - left - 1)
        height = min(text.height, side - top - 1)
        if width > 0 and height > 0:
            mask = text.crop(0, 0, width, height).cast("float") / 255
            under = image.crop(left, top, width, height).cast("float")
            drawn = under * (1 - mask) + mask * ink.tolist()
            image = image.insert(drawn.cast("uchar"), left, top)
        top += max(height, 8) + int(rng.integers(side // 80, side // 25))
    if rng.random() < 0.5:  # a flat icon
        radius = int(rng.integers(side // 24, side // 10))
        image = image.draw_circle(rng.integers(0, 256, 3).tolist(), side - 2 * radius,
                                  bar + 2 * radius, radius, fill=True)  # fmt: skip
    return np.ascontiguousarray(image.numpy()[..., :3])
