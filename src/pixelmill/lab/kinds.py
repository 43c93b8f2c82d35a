"""Images of four kinds of content drawn from a seed — photographs, graphics, screenshots and
scanned pages — to train and test the ``content-kind`` classifier
(:mod:`pixelmill.lab.classifier`).

Hand-written with numpy and Pillow, as no library generates these and none may be downloaded:

- **photo**: random crops of the photographs bundled with scikit-image and matplotlib (the
  lab's training photographs and a few more), rescaled, recoloured, colour-jittered,
  sometimes blurred or grainy, and JPEG-compressed at random qualities; a share are scenes
  collaged from them with depth of field, and the lab's synthetic natural images (dead leaves
  and fractal noise, :mod:`pixelmill.lab.synthetic`) shaded and blurred as a camera would
  leave them. The held-out photographs of :mod:`pixelmill.lab.photos` are never drawn
  unless asked for by name.
- **graphic**: vector-like art: flat shapes on flat or gradient grounds, logos, charts, maps,
  icon sheets, flat-design landscapes, patterns, pixel art and diagrams; anti-aliased or not,
  sometimes palette-reduced or JPEG-compressed.
- **screenshot**: screens at device scales 1–2 in light and dark themes: application windows,
  web pages, code editors, terminals, spreadsheets, phone chats, documents, dialogs and
  desktops, with Pillow-rendered text.
- **scan**: printed or handwritten pages on tinted, textured paper, skewed on the scanner bed,
  unevenly lit, blurred, noisy, grey, colour or black and white, usually JPEG-compressed.

Every generator takes a numpy Generator and returns an H×W×3 uint8 sRGB array at its own
size and aspect ratio, as such images come; :func:`thumbnail` shrinks one whole to the
classifier's input, as the model is fed in use. The same generator state gives the same
image (text comes from the fonts bundled with matplotlib, else Pillow's own).
"""

from __future__ import annotations

import functools
import io
import itertools
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pyvips
from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageFont

from pixelmill.errors import UsageError
from pixelmill.lab import photos, pixels, synthetic

Rng = np.random.Generator
RGB = tuple[int, int, int]
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont

KINDS = ("photo", "graphic", "screenshot", "scan")
"""The labels, in the order of the classifier's outputs."""


def _skimage(name: str, index: int | None = None) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import skimage.data

        data = getattr(skimage.data, name)()
        return data if index is None else data[index]

    return load


def _matplotlib_sample(name: str) -> np.ndarray:
    import matplotlib.cbook

    with Image.open(matplotlib.cbook.get_sample_data(name, asfileobj=False)) as image:
        return np.asarray(image.convert("RGB"))


EXTRA_PHOTOS: dict[str, Callable[[], np.ndarray]] = {
    "motorcycle-right": _skimage("stereo_motorcycle", 1),
    "immunohistochemistry": _skimage("immunohistochemistry"),
    "coins": _skimage("coins"),
    "moon": _skimage("moon"),
    "clock": _skimage("clock"),
    "retina": _skimage("retina"),
    "grace_hopper": lambda: _matplotlib_sample("grace_hopper.jpg"),
}
"""More photographs that photos are drawn from, beside the lab's training ones: of
scikit-image, and matplotlib's sample portrait."""
PHOTOS = (*photos.TRAINING, *EXTRA_PHOTOS)
"""The photographs the photo generator crops by default; never the held-out ones."""
FAMILIES = {
    "sans": ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf"),
    "serif": ("DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSerif-Italic.ttf",
              "STIXGeneral.ttf", "STIXGeneralBol.ttf", "STIXGeneralItalic.ttf", "cmr10.ttf"),
    "mono": ("DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf", "cmtt10.ttf"),
}  # fmt: skip
"""Font files of matplotlib's ``mpl-data/fonts/ttf`` by family (regular first)."""
LETTERS = "etaoinshrdlcumwfgypbvkjxqz"
FREQUENCIES = np.array([12.7, 9.1, 8.2, 7.5, 7.0, 6.7, 6.3, 6.1, 6.0, 4.3, 4.0, 2.8, 2.8, 2.4,
                        2.4, 2.2, 2.0, 2.0, 1.9, 1.5, 1.0, 0.8, 0.2, 0.2, 0.1, 0.1])  # fmt: skip
CUMULATIVE = np.cumsum(FREQUENCIES) / FREQUENCIES.sum()
KEYWORDS = ("def", "return", "if", "else", "for", "in", "import", "from", "class", "const",
            "let", "function", "while", "true", "false", "None", "self", "async", "await",
            "public", "static", "void", "int", "struct", "fn", "match", "pub", "try")  # fmt: skip


# --- shared helpers -----------------------------------------------------------------------


def _log_uniform(rng: Rng, low: float, high: float) -> float:
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))


def _hsv(h: float, s: float, v: float) -> RGB:
    """An RGB colour (0..255) from hue (turns), saturation and value (0..1)."""
    h = (h % 1.0) * 6
    i, f = int(h), h - int(h)
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    r, g, b = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i % 6]
    return int(r * 255 + 0.5), int(g * 255 + 0.5), int(b * 255 + 0.5)


def _palette(rng: Rng, count: int) -> list[RGB]:
    """Colours that go together: hues around a base (analogous, complementary or spread),
    with saturation and value of one random style."""
    base = rng.random()
    spread = float(rng.choice([0.08, 0.5, 1.0 / max(count, 1), 0.33]))
    sat_low, sat_high = sorted(rng.uniform(0.2, 1.0, 2))
    val_low, val_high = sorted(rng.uniform(0.35, 1.0, 2))
    return [_hsv(base + spread * i + rng.normal(0, 0.02), rng.uniform(sat_low, sat_high),
                 rng.uniform(val_low, val_high)) for i in range(count)]  # fmt: skip


def _grey(level: float) -> RGB:
    value = min(255, max(0, int(level)))
    return value, value, value


def _mix(a: RGB, b: RGB, t: float) -> RGB:
    return tuple(round(x + (y - x) * t) for x, y in zip(a, b))  # type: ignore[return-value]


@functools.cache
def _font_folder() -> Path | None:
    try:
        import matplotlib
    except ImportError:
        return None
    folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    return folder if folder.is_dir() else None


@functools.lru_cache(maxsize=512)
def _font_file(name: str, size: int) -> Font:
    folder = _font_folder()
    if folder is not None and (folder / name).is_file():
        return ImageFont.truetype(str(folder / name), size)
    return ImageFont.load_default(size=size)


def _font(rng: Rng, size: float, family: str = "sans", style: int | None = None) -> Font:
    """A font of ``family`` at ``size`` pixels: its regular face unless ``style`` indexes
    another; one time in eight Pillow's own font instead (sans only)."""
    size = max(6, round(size))
    if family == "sans" and style is None and rng.random() < 0.125:
        return _font_file("", size)
    faces = FAMILIES[family]
    index = style if style is not None else (0 if rng.random() < 0.7 else
                                             int(rng.integers(len(faces))))  # fmt: skip
    return _font_file(faces[index % len(faces)], size)


def _word(rng: Rng) -> str:
    length = min(int(rng.geometric(0.22)), 12)
    return "".join(LETTERS[i] for i in np.searchsorted(CUMULATIVE, rng.random(length)))


def _words(rng: Rng, count: int, capital: bool = True) -> str:
    words = [_word(rng) for _ in range(max(1, count))]
    if capital:
        words[0] = words[0].capitalize()
    for i in range(len(words) - 1):
        mark = rng.random()
        if mark < 0.06:
            words[i] += ","
        elif mark < 0.09:
            words[i] += "."
            words[i + 1] = words[i + 1].capitalize()
    return " ".join(words)


def _number(rng: Rng) -> str:
    kind = rng.random()
    if kind < 0.4:
        return str(int(rng.integers(0, 10_000)))
    if kind < 0.7:
        return f"{rng.uniform(0, 1000):.2f}"
    if kind < 0.85:
        return f"{rng.uniform(0, 100):.1f}%"
    return f"${int(rng.integers(1, 100_000)):,}"


def _text_width(font: Font, text: str) -> float:
    return float(font.getlength(text))


def _line_of_text(draw: ImageDraw.ImageDraw, rng: Rng, x: float, y: float, width: float,
                  font: Font, fill: RGB | int, capital: bool = True) -> None:  # fmt: skip
    """Words written from (x, y) until ``width`` is filled."""
    text = ""
    while True:
        candidate = (text + " " + _word(rng)) if text else _words(rng, 1, capital)
        if _text_width(font, candidate) > width:
            break
        text = candidate
    if text:
        draw.text((x, y), text, font=font, fill=fill)


def _paragraph(draw: ImageDraw.ImageDraw, rng: Rng, x: float, y: float, width: float,
               lines: int, font: Font, fill: RGB | int, leading: float) -> float:  # fmt: skip
    """A paragraph of ``lines`` lines, the last shorter; returns the y below it."""
    for i in range(lines):
        share = rng.uniform(0.3, 0.95) if i == lines - 1 else rng.uniform(0.93, 1.0)
        _line_of_text(draw, rng, x, y, width * share, font, fill, capital=i == 0)
        y += leading
    return y


def _to_array(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def _jpeg(array: np.ndarray, quality: int, subsample: bool = True) -> np.ndarray:
    """``array`` through JPEG at ``quality`` (libjpeg via Pillow)."""
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "JPEG", quality=int(quality),
                                subsampling=2 if subsample else 0)  # fmt: skip
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


def _resize(array: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resampled to ``width``×``height`` with libvips (Lanczos; antialiased when shrinking)."""
    h, w = array.shape[:2]
    if (w, h) == (width, height):
        return array
    image = pyvips.Image.new_from_array(np.ascontiguousarray(array))
    out = image.resize(width / w, vscale=height / h, kernel="lanczos3")
    out = out.crop(0, 0, min(out.width, width), min(out.height, height))
    result = out.numpy().reshape(out.height, out.width, -1)
    if result.shape[:2] != (height, width):  # rounding of libvips' output size
        result = np.pad(result, ((0, height - result.shape[0]), (0, width - result.shape[1]),
                                 (0, 0)), mode="edge")  # fmt: skip
    return np.clip(result, 0, 255).astype(np.uint8)


def _gaussian(array: np.ndarray, sigma: float) -> np.ndarray:
    if sigma < 0.2:
        return array
    image = pyvips.Image.new_from_array(np.ascontiguousarray(array))
    blurred = image.gaussblur(sigma, precision="approximate")
    return blurred.numpy().reshape(array.shape).astype(array.dtype)


NOISE_SIDE = 3072
"""Side of the noise field: larger than any generated image."""


@functools.cache
def _noise_field() -> np.ndarray:
    """A fixed field of standard normal noise that images take windows of at random offsets,
    far cheaper than drawing fresh noise for every pixel of every image."""
    return np.random.default_rng(0).standard_normal((NOISE_SIDE, NOISE_SIDE), np.float32)


def _noise(array: np.ndarray, rng: Rng, sigma: float, chroma: float = 0.3) -> np.ndarray:
    """Gaussian noise of ``sigma`` levels on luma, and ``chroma`` of it per channel."""
    height, width = array.shape[:2]
    field = _noise_field()

    def window() -> np.ndarray:
        y = int(rng.integers(NOISE_SIDE - height + 1))
        x = int(rng.integers(NOISE_SIDE - width + 1))
        return field[y : y + height, x : x + width]

    noise = (window() * np.float32(sigma))[..., None]
    if chroma > 0.05:
        noise = noise + np.stack([window() for _ in range(3)], axis=2) * np.float32(
            sigma * chroma)  # fmt: skip
    return np.clip(array + noise, 0, 255).astype(np.uint8)


def _size(rng: Rng, low: float, high: float, aspects: tuple[float, ...]) -> tuple[int, int]:
    """A width and height whose longer side is log-uniform in low..high, in one of the
    ``aspects`` (width over height) or a random one."""
    longer = _log_uniform(rng, low, high)
    aspect = (float(rng.choice(aspects)) if rng.random() < 0.7
              else _log_uniform(rng, 0.4, 2.5))  # fmt: skip
    if aspect >= 1:
        return int(longer), max(16, int(longer / aspect))
    return max(16, int(longer * aspect)), int(longer)


def _finish(array: np.ndarray, rng: Rng, jpeg: float, quality: tuple[int, int]) -> np.ndarray:
    """JPEG-compressed with probability ``jpeg`` at a quality within ``quality``."""
    if rng.random() < jpeg:
        return _jpeg(array, int(rng.integers(quality[0], quality[1] + 1)), rng.random() < 0.8)
    return array


# --- photographs --------------------------------------------------------------------------


@functools.cache
def _photograph(name: str) -> np.ndarray:
    """A bundled photograph as 8-bit RGB; a held-out one only when named."""
    load = (photos.HELD_OUT | photos.TRAINING | EXTRA_PHOTOS).get(name)
    if load is None:
        raise UsageError(f"photo {name!r}: not one of {', '.join(PHOTOS)} or the held-out "
                         f"{', '.join(photos.HELD_OUT)}")  # fmt: skip
    data = load()
    if name not in photos.HELD_OUT:
        photos.ensure_trainable(pixels.from_uint8(data), f"photo {name}")
    rgb = np.repeat(data[..., None], 3, axis=2) if data.ndim == 2 else data[..., :3]
    return np.ascontiguousarray(rgb, dtype=np.uint8)


YIQ = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]],
               np.float32)  # fmt: skip


def _recolour(array: np.ndarray, rng: Rng) -> np.ndarray:
    """The hues turned by a random angle (in YIQ, luma kept), or the channels swapped: the
    same scene in other colours, so that photos are not known by their colours."""
    if rng.random() < 0.25:
        return np.ascontiguousarray(array[..., rng.permutation(3)])
    angle = rng.uniform(-np.pi, np.pi)
    turn = np.array([[1, 0, 0], [0, np.cos(angle), -np.sin(angle)],
                     [0, np.sin(angle), np.cos(angle)]], np.float32)  # fmt: skip
    matrix = np.linalg.inv(YIQ) @ turn @ YIQ
    return np.clip(array.astype(np.float32) @ matrix.T.astype(np.float32) + 0.5, 0, 255
                   ).astype(np.uint8)  # fmt: skip


def _photo_crop(rng: Rng, names: tuple[str, ...], size: tuple[int, int] | None = None
                ) -> np.ndarray:  # fmt: skip
    """A crop of one of the photographs ``names`` (from a tenth of a side to all of it),
    flipped or turned, resized by 0.35–2 or to ``size`` (width, height)."""
    source = _photograph(names[int(rng.integers(len(names)))])
    height, width = source.shape[:2]
    if rng.random() < 0.25:
        crop_h, crop_w = height, width
    else:
        crop_h = max(16, int(height * _log_uniform(rng, 0.12, 1.0)))
        crop_w = max(16, int(width * min(1.0, crop_h / height * _log_uniform(rng, 0.5, 2.0))))
    y, x = int(rng.integers(height - crop_h + 1)), int(rng.integers(width - crop_w + 1))
    crop = source[y : y + crop_h, x : x + crop_w]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    if rng.random() < 0.2:
        crop = np.rot90(crop, int(rng.choice([1, 3])))
    crop_h, crop_w = crop.shape[:2]
    if size is None:
        scale = _log_uniform(rng, 0.35, 2.0) if rng.random() < 0.8 else 1.0
        size = (int(np.clip(crop_w * scale * rng.uniform(0.9, 1.1), 48, 1600)),
                int(np.clip(crop_h * scale * rng.uniform(0.9, 1.1), 48, 1600)))  # fmt: skip
    return _resize(np.ascontiguousarray(crop), *size)


def _collage(rng: Rng) -> np.ndarray:
    """A scene made of photographs: a crop thrown out of focus as the background, and
    sharp crops in soft-edged shapes in front of it, as a photograph with depth of field."""
    width, height = _size(rng, 200, 700, (1.5, 4 / 3, 0.75, 1.0))
    background = _photo_crop(rng, PHOTOS, (width, height))
    canvas = Image.fromarray(_gaussian(background, _log_uniform(rng, 1.5, 10)))
    for _ in range(int(rng.integers(1, 5))):
        w = int(width * rng.uniform(0.2, 0.8))
        h = int(height * rng.uniform(0.2, 0.8))
        patch = Image.fromarray(_photo_crop(rng, PHOTOS, (w, h)))
        mask = Image.new("L", (w, h), 0)
        draw = ImageDraw.Draw(mask)
        if rng.random() < 0.5:
            draw.ellipse((0, 0, w - 1, h - 1), fill=255)
        else:
            draw.polygon(_polygon(rng, w / 2, h / 2, min(w, h) / 2, False), fill=255)
        mask = mask.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 4)))
        canvas.paste(patch, (int(rng.integers(-w // 4, width - w // 2)),
                             int(rng.integers(-h // 4, height - h // 2))), mask)  # fmt: skip
    return _gaussian(np.asarray(canvas), rng.uniform(0, 0.8))


def _natural(rng: Rng) -> np.ndarray:
    """One of the lab's synthetic natural images, lit by fractal noise as a scene is."""
    side = int(rng.choice([192, 256, 320]))
    if rng.random() < 0.6:
        base = synthetic.dead_leaves(side, rng)
    else:
        base = synthetic.fractal_noise(side, rng)
    light = synthetic.fractal_noise(side, rng).mean(axis=2, keepdims=True)
    light = (light - light.min()) / max(float(np.ptp(light)), 1e-6)
    shade = 1 - rng.uniform(0.1, 0.5) * light
    image = np.clip(base * shade * 255, 0, 255).astype(np.uint8)
    image = _gaussian(image, rng.uniform(0.6, 2.0))
    width = int(side * rng.uniform(1.0, 2.2))
    height = int(side * rng.uniform(0.8, 1.6))
    return _resize(image, width, height)


def _camera(array: np.ndarray, rng: Rng) -> np.ndarray:
    """Recolouring, colour jitter, white balance, gamma, blur, grain and vignetting, each at
    random."""
    if rng.random() < 0.4:
        array = _recolour(array, rng)
    image = array.astype(np.float32) / 255
    if rng.random() < 0.1:
        image = np.repeat(image @ np.float32([0.299, 0.587, 0.114])[:, None], 3, axis=2)
    else:
        grey = image.mean(axis=2, keepdims=True)
        image = grey + (image - grey) * np.float32(rng.uniform(0.5, 1.4))
        image = image * rng.uniform(0.85, 1.15, 3).astype(np.float32)
    image = np.clip(image * np.float32(rng.uniform(0.75, 1.25)), 0, 1)
    image = image ** np.float32(_log_uniform(rng, 0.7, 1.4))
    if rng.random() < 0.25:
        height, width = image.shape[:2]
        ys, xs = np.ogrid[-1 : 1 : height * 1j, -1 : 1 : width * 1j]
        image = image * (1 - rng.uniform(0.1, 0.45) * (xs**2 + ys**2) / 2)[..., None]
    out = np.clip(image * 255 + 0.5, 0, 255).astype(np.uint8)
    if rng.random() < 0.3:
        out = _gaussian(out, rng.uniform(0.4, 1.8))
    if rng.random() < 0.6:
        out = _noise(out, rng, _log_uniform(rng, 1.0, 9.0), rng.uniform(0.1, 0.6))
    return out


def photo(rng: Rng, names: tuple[str, ...] = PHOTOS) -> np.ndarray:
    """A photograph: a crop of one of ``names`` (default :data:`PHOTOS`) or, by default, a
    fifth of the time a scene collaged from them and a tenth a synthetic natural image;
    camera-jittered and usually JPEG-compressed."""
    kind = rng.random() if names == PHOTOS else 1.0
    if kind < 0.1:
        image = _natural(rng)
    elif kind < 0.3:
        image = _collage(rng)
    else:
        image = _photo_crop(rng, names)
    return _finish(_camera(image, rng), rng, 0.85, (30, 95))


# --- graphics -----------------------------------------------------------------------------


def _gradient(width: int, height: int, a: RGB, b: RGB, rng: Rng, radial: bool) -> Image.Image:
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    if radial:
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        t = np.hypot(xs - cx, ys - cy) / max(width, height)
    else:
        angle = rng.uniform(0, 2 * np.pi)
        t = xs * np.cos(angle) + ys * np.sin(angle)
        t = (t - t.min()) / max(float(np.ptp(t)), 1e-6)
    t = np.clip(t, 0, 1)[..., None]
    colours = np.float32(a) + t * (np.float32(b) - np.float32(a))
    return Image.fromarray(np.clip(colours + 0.5, 0, 255).astype(np.uint8))


def _ground(rng: Rng, width: int, height: int, palette: list[RGB]) -> Image.Image:
    """A flat, linear-gradient or radial-gradient background."""
    kind = rng.random()
    if kind < 0.55:
        colour = palette[0] if rng.random() < 0.6 else _grey(rng.choice([255, 250, 245, 30]))
        return Image.new("RGB", (width, height), colour)
    return _gradient(width, height, palette[0], palette[-1], rng, radial=kind > 0.85)


def _polygon(rng: Rng, cx: float, cy: float, radius: float, star: bool) -> list[tuple]:
    sides = int(rng.integers(3, 9))
    turn = rng.uniform(0, 2 * np.pi)
    points = []
    for i in range(sides * (2 if star else 1)):
        r = radius * (rng.uniform(0.35, 0.6) if star and i % 2 else 1.0)
        angle = turn + np.pi * 2 * i / (sides * (2 if star else 1))
        points.append((cx + r * np.cos(angle), cy + r * np.sin(angle)))
    return points


def _shape(draw: ImageDraw.ImageDraw, rng: Rng, width: int, height: int, fill: RGB,
           outline: RGB | None, line: int, size: float) -> None:  # fmt: skip
    """One flat shape: rectangle, rounded rectangle, ellipse, polygon, star, thick line or
    arc, about ``size`` pixels across."""
    cx, cy = rng.uniform(0, width), rng.uniform(0, height)
    rx, ry = size / 2 * rng.uniform(0.4, 1.0), size / 2 * rng.uniform(0.4, 1.0)
    box = (cx - rx, cy - ry, cx + rx, cy + ry)
    kind = int(rng.integers(7))
    if kind == 0:
        draw.rectangle(box, fill=fill, outline=outline, width=line)
    elif kind == 1:
        draw.rounded_rectangle(box, radius=min(rx, ry) * rng.uniform(0.1, 0.5), fill=fill,
                               outline=outline, width=line)  # fmt: skip
    elif kind == 2:
        draw.ellipse(box, fill=fill, outline=outline, width=line)
    elif kind in (3, 4):
        draw.polygon(_polygon(rng, cx, cy, max(rx, ry), kind == 4), fill=fill, outline=outline,
                     width=line)  # fmt: skip
    elif kind == 5:
        draw.line([(cx - rx, cy - ry), (cx + rx, cy + ry)], fill=fill,
                  width=max(1, int(size * rng.uniform(0.03, 0.15))))  # fmt: skip
    else:
        start = rng.uniform(0, 360)
        draw.arc(box, start, start + rng.uniform(60, 300), fill=fill,
                 width=max(1, int(size * rng.uniform(0.03, 0.2))))  # fmt: skip


def _flat_shapes(rng: Rng, width: int, height: int) -> Image.Image:
    palette = _palette(rng, int(rng.integers(2, 8)))
    image = _ground(rng, width, height, palette)
    draw = ImageDraw.Draw(image)
    outline = _grey(20) if rng.random() < 0.3 else None
    line = max(1, int(min(width, height) * rng.uniform(0.003, 0.015)))
    for _ in range(int(rng.integers(3, 40))):
        size = min(width, height) * _log_uniform(rng, 0.05, 0.8)
        _shape(draw, rng, width, height, palette[int(rng.integers(len(palette)))], outline,
               line, size)  # fmt: skip
    return image


def _logo(rng: Rng, width: int, height: int) -> Image.Image:
    palette = _palette(rng, 3)
    ground = _grey(255) if rng.random() < 0.7 else palette[2]
    image = Image.new("RGB", (width, height), ground)
    draw = ImageDraw.Draw(image)
    unit = min(width, height) * rng.uniform(0.25, 0.6)
    cx, cy = width / 2, height / 2
    words = width / height > 1.6 and rng.random() < 0.8
    if words:
        cx = width * rng.uniform(0.15, 0.3)
        unit = min(unit, height * 0.7)
    box = (cx - unit / 2, cy - unit / 2, cx + unit / 2, cy + unit / 2)
    emblem = int(rng.integers(4))
    if emblem == 0:
        draw.ellipse(box, fill=palette[0])
    elif emblem == 1:
        draw.rounded_rectangle(box, radius=unit * 0.2, fill=palette[0])
    elif emblem == 2:
        draw.polygon(_polygon(rng, cx, cy, unit / 2, rng.random() < 0.3), fill=palette[0])
    else:
        draw.ellipse(box, outline=palette[0], width=max(2, int(unit * 0.08)))
    letters = "".join(rng.choice(list("ABCDEFGHKLMNPRSTVWXZ"), int(rng.integers(1, 3))))
    font = _font(rng, unit * 0.45, str(rng.choice(["sans", "serif"])), style=1)
    inner = _grey(255) if emblem != 3 else palette[1]
    draw.text((cx, cy), letters, font=font, fill=inner, anchor="mm")
    if words:
        font = _font(rng, unit * rng.uniform(0.3, 0.5), "sans", style=int(rng.integers(2)))
        draw.text((cx + unit * 0.7, cy), _word(rng).capitalize() + " " * int(rng.integers(2))
                  + (_word(rng) if rng.random() < 0.5 else ""), font=font, fill=palette[1],
                  anchor="lm")  # fmt: skip
    return image


def _chart(rng: Rng, width: int, height: int) -> Image.Image:
    """A chart as plotting libraries draw them: bars, lines, scatter, translucent areas,
    ticks, or a pie or donut; axes, grid, labels, a title and a legend, thin or bold."""
    dark = rng.random() < 0.12
    ground, ink = (_grey(30), _grey(220)) if dark else (_grey(255), _grey(rng.uniform(0, 90)))
    image = Image.new("RGB", (width, height), ground)
    draw = ImageDraw.Draw(image, "RGBA")
    palette = _palette(rng, 6) if rng.random() < 0.6 else [_hsv(rng.random(), 0.6, 0.75)
                                                            for _ in range(6)]  # fmt: skip
    unit = min(width, height)
    small = max(7, unit * _log_uniform(rng, 0.018, 0.05))
    font = _font(rng, small)
    thin = max(1, int(unit * _log_uniform(rng, 0.002, 0.012)))
    left, right = width * rng.uniform(0.06, 0.18), width * rng.uniform(0.7, 0.97)
    top, bottom = height * rng.uniform(0.05, 0.2), height * rng.uniform(0.75, 0.92)
    if rng.random() < 0.6:
        draw.text((width / 2, top / 2), _words(rng, int(rng.integers(2, 6))),
                  font=_font(rng, small * 1.3, style=1), fill=ink, anchor="mm")  # fmt: skip
    series = int(rng.integers(1, 6))
    if rng.random() < 0.5 and right < width * 0.85:  # a legend
        for i in range(series):
            y = top + i * small * 1.6
            draw.rectangle((right + small, y, right + small * 1.8, y + small * 0.8),
                           fill=palette[i % 6])  # fmt: skip
            draw.text((right + small * 2.4, y + small * 0.4), _word(rng)[:6], font=font,
                      fill=ink, anchor="lm")  # fmt: skip
    kind = int(rng.integers(7))
    if kind == 6:  # horizontal bars, labelled on the left
        count = int(rng.integers(3, 25))
        step = (bottom - top) / count
        for i, share in enumerate(rng.uniform(0.05, 1.0, count)):
            y = top + i * step
            draw.text((left - small * 0.5, y + step / 2), _words(rng, int(rng.integers(1, 3))),
                      font=font, fill=ink, anchor="rm")  # fmt: skip
            draw.rectangle((left, y + step * 0.15, left + (right - left) * share, y + step
                            * 0.85), fill=palette[i % 6 if rng.random() < 0.3 else 0])  # fmt: skip
        draw.line([(left, top), (left, bottom)], fill=ink, width=thin)
        return image
    if kind == 5:  # pie or donut
        r = min(right - left, bottom - top) / 2
        cx, cy = (left + right) / 2, (top + bottom) / 2
        shares = rng.dirichlet(np.ones(int(rng.integers(2, 8))))
        start = -90.0
        for i, share in enumerate(shares):
            draw.pieslice((cx - r, cy - r, cx + r, cy + r), start, start + 360 * share,
                          fill=palette[i % 6], outline=ground, width=thin)  # fmt: skip
            start += 360 * share
        if rng.random() < 0.5:
            hole = r * rng.uniform(0.4, 0.7)
            draw.ellipse((cx - hole, cy - hole, cx + hole, cy + hole), fill=ground)
        return image
    grid = _grey(70) if dark else _grey(rng.uniform(215, 245))
    ticks = int(rng.integers(3, 9))
    for i in range(ticks + 1):
        y = bottom - (bottom - top) * i / ticks
        if rng.random() < 0.7:
            draw.line([(left, y), (right, y)], fill=grid, width=thin)
        draw.text((left - small * 0.5, y), _number(rng)[:5], font=font, fill=ink, anchor="rm")
    draw.line([(left, top), (left, bottom), (right, bottom)], fill=ink, width=thin)
    count = int(_log_uniform(rng, 4, 200 if kind in (1, 3) else 40))
    xs = np.linspace(left, right, count + 2)[1:-1]
    for s in range(series if kind != 4 else 1):
        walk = np.cumsum(rng.normal(0, 1, count)) if rng.random() < 0.6 else None
        values = walk if walk is not None else rng.uniform(0.1, 1, count)
        values = (values - values.min()) / max(float(np.ptp(values)), 1e-6) * 0.85 + 0.05
        ys = bottom - values * (bottom - top)
        colour = palette[s % 6]
        if kind == 0:  # bars
            bar = (right - left) / (count + 1) / series * rng.uniform(0.5, 0.95)
            for x, y in zip(xs, ys):
                draw.rectangle((x + (s - series / 2) * bar, y, x + (s - series / 2 + 1) * bar,
                                bottom), fill=colour)  # fmt: skip
        elif kind == 1:  # lines
            draw.line(list(zip(xs, ys)), fill=colour, width=thin * int(rng.integers(1, 4)))
        elif kind == 2:  # scatter
            jitter = rng.uniform(left, right, count)
            for x, y in zip(jitter, ys):
                r = small * rng.uniform(0.15, 0.6)
                draw.ellipse((x - r, y - r, x + r, y + r), fill=(*colour, int(rng.integers(90,
                             256))))  # fmt: skip
        elif kind == 3:  # a translucent area
            floor = ys + (bottom - ys) * rng.uniform(0.2, 1.0)
            draw.polygon([*zip(xs, ys), *zip(xs[::-1], floor[::-1])], fill=(*colour, 90))
            draw.line(list(zip(xs, ys)), fill=colour, width=thin)
        else:  # ticks along a strip
            for x in rng.uniform(left, right, count * 3):
                draw.line([(x, top + (bottom - top) * 0.3), (x, bottom - (bottom - top) * 0.3)],
                          fill=(*colour, 160), width=thin)  # fmt: skip
    for x in xs[:: max(1, count // int(rng.integers(4, 10)))]:
        draw.text((x, bottom + small * 0.5), _word(rng)[:4] if rng.random() < 0.5
                  else _number(rng)[:4], font=font, fill=ink, anchor="mt")  # fmt: skip
    return image


def _map(rng: Rng, width: int, height: int) -> Image.Image:
    """A map as charts draw them: pale land shapes with borders, dots sized by value,
    sometimes routes between them."""
    sea = _grey(255) if rng.random() < 0.6 else _hsv(rng.uniform(0.5, 0.6), 0.2, 0.97)
    image = Image.new("RGB", (width, height), sea)
    draw = ImageDraw.Draw(image, "RGBA")
    land = _grey(rng.uniform(215, 240))
    line = max(1, int(min(width, height) * 0.003))
    for _ in range(int(rng.integers(1, 12))):
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        r = min(width, height) * rng.uniform(0.1, 0.5)
        angles = np.sort(rng.uniform(0, 2 * np.pi, int(rng.integers(8, 30))))
        radii = r * rng.uniform(0.5, 1.0, len(angles))
        draw.polygon(list(zip(cx + radii * np.cos(angles), cy + radii * np.sin(angles))),
                     fill=land, outline=_grey(255), width=line)  # fmt: skip
    colour = _hsv(rng.random(), rng.uniform(0.4, 0.8), rng.uniform(0.5, 0.9))
    points = list(zip(rng.uniform(0, width, 60), rng.uniform(0, height, 60)))
    if rng.random() < 0.4:
        for _ in range(int(rng.integers(10, 80))):
            a, b = rng.integers(len(points), size=2)
            draw.line([points[a], points[b]], fill=(*colour, 60), width=line)
    for x, y in points[: int(rng.integers(5, 60))]:
        r = min(width, height) * _log_uniform(rng, 0.004, 0.03)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=(*colour, 150), outline=colour)
    return image


def _icons(rng: Rng, width: int, height: int) -> Image.Image:
    palette = _palette(rng, 5)
    ground = _grey(255) if rng.random() < 0.6 else palette[4]
    image = Image.new("RGB", (width, height), ground)
    draw = ImageDraw.Draw(image)
    cols = int(rng.integers(1, 7))
    cell = width / cols
    rows = max(1, int(height / cell))
    pad = cell * rng.uniform(0.1, 0.25)
    for row in range(rows):
        for col in range(cols):
            x0, y0 = col * cell + pad, row * cell + pad
            x1, y1 = (col + 1) * cell - pad, (row + 1) * cell - pad
            colour = palette[int(rng.integers(4))]
            if rng.random() < 0.5:
                draw.rounded_rectangle((x0, y0, x1, y1), radius=(x1 - x0) * 0.2, fill=colour)
                glyph = _grey(255)
            else:
                glyph = colour
            side = x1 - x0
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            face = rng.random() < 0.3
            if face:  # a cartoon face
                r = side * 0.4
                draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=_hsv(0.14, 0.8, 1.0),
                             outline=_grey(20), width=max(1, int(side * 0.04)))  # fmt: skip
                for dx in (-0.35, 0.35):
                    draw.ellipse((cx + dx * r - r * 0.1, cy - r * 0.3, cx + dx * r + r * 0.1,
                                  cy), fill=_grey(20))  # fmt: skip
                draw.arc((cx - r * 0.5, cy - r * 0.3, cx + r * 0.5, cy + r * 0.5), 20, 160,
                         fill=_grey(20), width=max(1, int(side * 0.04)))  # fmt: skip
            else:
                r = side * rng.uniform(0.2, 0.35)
                draw.polygon(_polygon(rng, cx, cy, r, rng.random() < 0.4), fill=glyph)
    return image


def _landscape(rng: Rng, width: int, height: int) -> Image.Image:
    palette = _palette(rng, 6)
    sky = _gradient(width, height, _hsv(rng.uniform(0.5, 0.7), rng.uniform(0.2, 0.7), 1.0),
                    palette[0], rng, radial=False) if rng.random() < 0.5 else Image.new(
        "RGB", (width, height), _hsv(rng.uniform(0.5, 0.65), rng.uniform(0.2, 0.6), 0.95))  # fmt: skip
    draw = ImageDraw.Draw(sky)
    outline = _grey(25) if rng.random() < 0.35 else None
    line = max(1, int(min(width, height) * 0.006))
    r = min(width, height) * rng.uniform(0.05, 0.15)
    sx, sy = rng.uniform(0, width), rng.uniform(0, height * 0.4)
    draw.ellipse((sx - r, sy - r, sx + r, sy + r), fill=_hsv(rng.uniform(0.1, 0.16), 0.8, 1),
                 outline=outline, width=line)  # fmt: skip
    for _ in range(int(rng.integers(0, 5))):
        cx, cy = rng.uniform(0, width), rng.uniform(0, height * 0.4)
        for _ in range(4):
            rr = r * rng.uniform(0.5, 1.2)
            ox = rng.uniform(-2, 2) * rr
            draw.ellipse((cx + ox - rr, cy - rr * 0.6, cx + ox + rr, cy + rr * 0.6),
                         fill=_grey(255))  # fmt: skip
    layers = int(rng.integers(2, 6))
    for i in range(layers):
        base = height * (0.4 + 0.5 * i / layers)
        xs = np.linspace(0, width, int(rng.integers(3, 12)))
        ys = base - rng.uniform(0, height * 0.25, len(xs))
        colour = _mix(palette[(i + 1) % 6], _grey(0), i / (layers * 2))
        draw.polygon([(0, height), *zip(xs, ys), (width, height)], fill=colour,
                     outline=outline, width=line)  # fmt: skip
    for _ in range(int(rng.integers(0, 12))):
        tx, ty = rng.uniform(0, width), rng.uniform(height * 0.6, height)
        th = height * rng.uniform(0.05, 0.2)
        draw.rectangle((tx - th * 0.06, ty - th * 0.3, tx + th * 0.06, ty), fill=_hsv(0.08, 0.6,
                                                                                      0.4))  # fmt: skip
        draw.polygon([(tx - th * 0.3, ty - th * 0.25), (tx, ty - th), (tx + th * 0.3,
                      ty - th * 0.25)], fill=_hsv(rng.uniform(0.25, 0.4), 0.7, 0.55),
                     outline=outline, width=line)  # fmt: skip
    return sky


def _pattern(rng: Rng, width: int, height: int) -> Image.Image:
    palette = _palette(rng, int(rng.integers(2, 5)))
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    period = _log_uniform(rng, 8, max(10, min(width, height) / 3))
    angle = rng.uniform(0, np.pi)
    u = xs * np.cos(angle) + ys * np.sin(angle)
    v = ys * np.cos(angle) - xs * np.sin(angle)
    kind = int(rng.integers(4))
    if kind == 0:
        index = np.floor(u / period) % len(palette)
    elif kind == 1:
        index = (np.floor(u / period) + np.floor(v / period)) % 2
    elif kind == 2:
        du, dv = (u / period) % 1 - 0.5, (v / period) % 1 - 0.5
        index = (np.hypot(du, dv) < rng.uniform(0.15, 0.45)).astype(np.float32)
    else:
        wave = np.sin(u / period * 2 * np.pi + 2 * np.sin(v / period))
        index = np.floor((wave + 1) / 2 * len(palette) * 0.999)
    colours = np.array(palette, np.uint8)[index.astype(int) % len(palette)]
    return Image.fromarray(colours)


def _pixel_art(rng: Rng, width: int, height: int) -> Image.Image:
    side = int(rng.integers(8, 40))
    palette = np.array(_palette(rng, int(rng.integers(3, 10))) + [(255, 255, 255)], np.uint8)
    grid = rng.integers(len(palette), size=(side, (side + 1) // 2))
    grid = np.where(rng.random(grid.shape) < 0.35, len(palette) - 1, grid)
    grid = np.concatenate([grid, grid[:, ::-1][:, side % 2 :]], axis=1)
    art = Image.fromarray(palette[grid])
    return art.resize((width, height), Image.Resampling.NEAREST)


def _diagram(rng: Rng, width: int, height: int) -> Image.Image:
    palette = _palette(rng, 4)
    image = Image.new("RGB", (width, height), _grey(255) if rng.random() < 0.8 else palette[3])
    draw = ImageDraw.Draw(image)
    cols, rows = int(rng.integers(2, 5)), int(rng.integers(1, 4))
    bw, bh = width / cols * 0.6, height / rows * 0.4
    font = _font(rng, min(bh * 0.3, bw * 0.15))
    centres = []
    for r in range(rows):
        for c in range(cols):
            if rng.random() < 0.2:
                continue
            cx, cy = (c + 0.5) * width / cols, (r + 0.5) * height / rows
            fill = palette[int(rng.integers(3))]
            box = (cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2)
            if rng.random() < 0.5:
                draw.rounded_rectangle(box, radius=bh * 0.2, fill=fill, outline=_grey(40),
                                       width=2)  # fmt: skip
            else:
                draw.ellipse(box, fill=fill, outline=_grey(40), width=2)
            draw.text((cx, cy), _word(rng).capitalize(), font=font, fill=_grey(20), anchor="mm")
            centres.append((cx, cy))
    for a, b in itertools.pairwise(centres):
        draw.line([a, b], fill=_grey(60), width=2)
    return image


GRAPHICS: tuple[Callable[[Rng, int, int], Image.Image], ...] = (
    _flat_shapes, _logo, _chart, _map, _icons, _landscape, _pattern, _pixel_art, _diagram)
GRAPHIC_WEIGHTS = np.array([0.22, 0.12, 0.2, 0.05, 0.09, 0.11, 0.08, 0.05, 0.08])


def graphic(rng: Rng) -> np.ndarray:
    """A graphic or illustration: flat colours, gradients, logos, charts, icons, flat-design
    art, patterns, pixel art or a diagram; usually anti-aliased (drawn larger and shrunk),
    sometimes palette-reduced or JPEG-compressed."""
    style = GRAPHICS[int(rng.choice(len(GRAPHICS), p=GRAPHIC_WEIGHTS / GRAPHIC_WEIGHTS.sum()))]
    width, height = _size(rng, 96, 1400, (1.0, 1.0, 4 / 3, 16 / 9, 3.0, 0.75))
    factor = 1 if rng.random() < 0.25 or style is _pixel_art else int(rng.choice([2, 3]))
    while factor > 1 and width * height * factor**2 > 6_000_000:
        factor -= 1
    image = style(rng, width * factor, height * factor)
    if factor > 1:
        image = image.resize((width, height), Image.Resampling.LANCZOS)
    if rng.random() < 0.1:
        colours = int(rng.choice([8, 16, 64, 256]))
        image = image.quantize(colours, dither=Image.Dither.FLOYDSTEINBERG
                               if rng.random() < 0.5 else Image.Dither.NONE)  # fmt: skip
    return _finish(_to_array(image), rng, 0.3, (40, 95))


# --- screenshots --------------------------------------------------------------------------


class _Theme:
    """The colours and type of one screen."""

    def __init__(self, rng: Rng, scale: float) -> None:
        self.dark = rng.random() < 0.35
        self.scale = scale
        if self.dark:
            self.ground = _grey(rng.uniform(18, 45))
            self.panel = _grey(rng.uniform(35, 62))
            self.line = _grey(rng.uniform(60, 90))
            self.text = _grey(rng.uniform(195, 240))
            self.muted = _grey(rng.uniform(120, 165))
        else:
            self.ground = _grey(rng.uniform(246, 256))
            self.panel = _grey(rng.uniform(228, 246))
            self.line = _grey(rng.uniform(200, 226))
            self.text = _grey(rng.uniform(10, 60))
            self.muted = _grey(rng.uniform(100, 150))
        tint = rng.uniform(-6, 6, 3) if rng.random() < 0.4 else np.zeros(3)
        self.ground, self.panel = (tuple(int(np.clip(c + t, 0, 255)) for c, t in zip(col, tint))
                                   for col in (self.ground, self.panel))  # fmt: skip
        self.accent = _hsv(rng.random(), rng.uniform(0.5, 0.9), rng.uniform(0.6, 0.95))
        self.size = rng.uniform(11, 16) * scale
        self.font = _font(rng, self.size)
        self.bold = _font(rng, self.size, style=1)
        self.mono = _font(rng, self.size * 0.95, "mono", style=0)
        self.leading = self.size * rng.uniform(1.3, 1.7)


def _bar_icons(draw: ImageDraw.ImageDraw, rng: Rng, x: float, y: float, count: int,
               size: float, colour: RGB) -> float:  # fmt: skip
    for _ in range(count):
        kind = int(rng.integers(3))
        box = (x, y, x + size, y + size)
        if kind == 0:
            draw.rounded_rectangle(box, radius=size * 0.2, outline=colour, width=max(1,
                                   int(size / 9)))  # fmt: skip
        elif kind == 1:
            draw.ellipse(box, outline=colour, width=max(1, int(size / 9)))
        else:
            for i in range(3):
                yy = y + size * (0.2 + 0.3 * i)
                draw.line([(x, yy), (x + size, yy)], fill=colour, width=max(1, int(size / 9)))
        x += size * 1.8
    return x


def _button(draw: ImageDraw.ImageDraw, rng: Rng, theme: _Theme, x: float, y: float,
            primary: bool) -> float:  # fmt: skip
    label = _word(rng).capitalize()
    width = _text_width(theme.font, label) + theme.size * 2
    height = theme.size * 2.2
    fill = theme.accent if primary else theme.panel
    draw.rounded_rectangle((x, y, x + width, y + height), radius=theme.size * 0.4, fill=fill,
                           outline=None if primary else theme.line)  # fmt: skip
    draw.text((x + width / 2, y + height / 2), label, font=theme.font,
              fill=_grey(255) if primary else theme.text, anchor="mm")  # fmt: skip
    return x + width + theme.size


def _list_rows(draw: ImageDraw.ImageDraw, rng: Rng, theme: _Theme, box: tuple, icons: bool
               ) -> None:  # fmt: skip
    x0, y0, x1, y1 = box
    y = y0 + theme.size
    selected = int(rng.integers(0, 8))
    row = 0
    while y + theme.leading < y1:
        if row == selected:
            draw.rectangle((x0, y - theme.size * 0.4, x1, y + theme.size * 1.4),
                           fill=_mix(theme.accent, theme.panel, 0.3))  # fmt: skip
        x = x0 + theme.size
        if icons:
            _bar_icons(draw, rng, x, y, 1, theme.size, theme.muted)
            x += theme.size * 1.8
        _line_of_text(draw, rng, x, y, (x1 - x) * rng.uniform(0.3, 0.9), theme.font,
                      theme.text)  # fmt: skip
        y += theme.leading * rng.uniform(1.2, 1.8)
        row += 1


def _content(draw: ImageDraw.ImageDraw, rng: Rng, theme: _Theme, box: tuple,
             image: Image.Image) -> None:  # fmt: skip
    """A column of headings, paragraphs, buttons, inputs and pictures filling ``box``."""
    x0, y0, x1, y1 = box
    y = y0 + theme.size
    width = x1 - x0
    while y < y1 - theme.leading:
        kind = rng.random()
        if kind < 0.15:
            font = _font(rng, theme.size * rng.uniform(1.4, 2.4), style=1)
            _line_of_text(draw, rng, x0, y, width * rng.uniform(0.3, 0.8), font, theme.text)
            y += theme.size * 3
        elif kind < 0.6:
            y = _paragraph(draw, rng, x0, y, width, int(rng.integers(1, 6)), theme.font,
                           theme.text, theme.leading) + theme.size  # fmt: skip
        elif kind < 0.72:
            x = x0
            for i in range(int(rng.integers(1, 4))):
                x = _button(draw, rng, theme, x, y, i == 0)
            y += theme.size * 3.5
        elif kind < 0.82:
            draw.text((x0, y), _word(rng).capitalize(), font=theme.font, fill=theme.muted)
            y += theme.leading
            draw.rounded_rectangle((x0, y, x0 + width * rng.uniform(0.4, 1), y + theme.size
                                    * 2.2), radius=theme.size * 0.3, fill=theme.ground,
                                   outline=theme.line)  # fmt: skip
            y += theme.size * 3.5
        elif kind < 0.92:
            height = min(y1 - y, width * rng.uniform(0.2, 0.5))
            _picture(image, rng, (int(x0), int(y), int(x0 + width * rng.uniform(0.3, 0.7)),
                                  int(y + height)))  # fmt: skip
            y += height + theme.size
        else:
            draw.line([(x0, y), (x1, y)], fill=theme.line, width=max(1, int(theme.scale)))
            y += theme.size


def _picture(image: Image.Image, rng: Rng, box: tuple[int, int, int, int]) -> None:
    """A picture in a page: a photograph (a quarter of the time), a flat colour or a
    gradient."""
    x0, y0, x1, y1 = box
    width, height = x1 - x0, y1 - y0
    if width < 4 or height < 4:
        return
    kind = rng.random()
    if kind < 0.25:
        art = Image.fromarray(_photo_crop(rng, PHOTOS, (width, height)))
    elif kind < 0.7:
        art = _gradient(width, height, *_palette(rng, 2), rng, radial=False)
    else:
        art = Image.new("RGB", (width, height), _palette(rng, 1)[0])
    image.paste(art, (x0, y0))


def _window(rng: Rng, theme: _Theme, width: int, height: int) -> Image.Image:
    image = Image.new("RGB", (width, height), theme.ground)
    draw = ImageDraw.Draw(image)
    bar = theme.size * rng.uniform(2.0, 2.8)
    draw.rectangle((0, 0, width, bar), fill=theme.panel)
    if rng.random() < 0.5:
        for i, colour in enumerate([(255, 95, 87), (254, 188, 46), (40, 200, 64)]):
            r = bar * 0.18
            cx = bar * 0.6 + i * r * 3.2
            draw.ellipse((cx - r, bar / 2 - r, cx + r, bar / 2 + r), fill=colour)
    else:
        _bar_icons(draw, rng, width - bar * 3, bar * 0.3, 3, bar * 0.4, theme.text)
    draw.text((width / 2, bar / 2), _words(rng, int(rng.integers(1, 5))), font=theme.font,
              fill=theme.text, anchor="mm")  # fmt: skip
    y = bar
    if rng.random() < 0.7:  # toolbar
        tool = theme.size * 2.6
        draw.rectangle((0, y, width, y + tool), fill=_mix(theme.panel, theme.ground, 0.5))
        _bar_icons(draw, rng, theme.size, y + tool * 0.25, int(rng.integers(3, 12)),
                   tool * 0.5, theme.muted)  # fmt: skip
        draw.line([(0, y + tool), (width, y + tool)], fill=theme.line)
        y += tool
    left = 0.0
    if rng.random() < 0.7:  # sidebar
        left = width * rng.uniform(0.15, 0.3)
        draw.rectangle((0, y, left, height), fill=theme.panel)
        draw.line([(left, y), (left, height)], fill=theme.line)
        _list_rows(draw, rng, theme, (0, y, left, height), rng.random() < 0.6)
    margin = theme.size * rng.uniform(1, 3)
    if rng.random() < 0.3:
        _table(draw, rng, theme, (left + margin, y + margin, width - margin, height))
    else:
        _content(draw, rng, theme, (left + margin, y + margin, width - margin, height), image)
    return image


def _web(rng: Rng, theme: _Theme, width: int, height: int) -> Image.Image:
    image = Image.new("RGB", (width, height), theme.ground)
    draw = ImageDraw.Draw(image)
    nav = theme.size * rng.uniform(3, 4.5)
    nav_fill = theme.accent if rng.random() < 0.3 else theme.panel
    draw.rectangle((0, 0, width, nav), fill=nav_fill)
    ink = _grey(255) if nav_fill == theme.accent else theme.text
    draw.text((theme.size * 2, nav / 2), _word(rng).capitalize(), font=_font(rng, theme.size *
              1.5, style=1), fill=ink, anchor="lm")  # fmt: skip
    x = width * rng.uniform(0.35, 0.6)
    for _ in range(int(rng.integers(2, 7))):
        label = _word(rng).capitalize()
        draw.text((x, nav / 2), label, font=theme.font, fill=ink, anchor="lm")
        x += _text_width(theme.font, label) + theme.size * 2
        if x > width - theme.size * 6:
            break
    y = nav
    margin = width * rng.uniform(0.04, 0.15)
    if rng.random() < 0.6:  # hero
        hero = height * rng.uniform(0.25, 0.5)
        _picture(image, rng, (0, int(y), width, int(y + hero)))
        font = _font(rng, theme.size * rng.uniform(2, 3.5), style=1)
        _line_of_text(draw, rng, margin, y + hero * 0.3, width * 0.6, font, _grey(255))
        y += hero
    columns = int(rng.integers(1, 4))
    gap = theme.size * 2
    column = (width - 2 * margin - gap * (columns - 1)) / columns
    for c in range(columns):
        x0 = margin + c * (column + gap)
        if rng.random() < 0.5:
            pic = column * rng.uniform(0.4, 0.7)
            _picture(image, rng, (int(x0), int(y + gap), int(x0 + column), int(y + gap + pic)))
            top = y + gap * 1.5 + pic
        else:
            top = y + gap
        _content(draw, rng, theme, (x0, top, x0 + column, height - theme.size * 4), image)
    if rng.random() < 0.5:
        foot = theme.size * 4
        draw.rectangle((0, height - foot, width, height), fill=_grey(35))
        _line_of_text(draw, rng, margin, height - foot * 0.6, width * 0.5, theme.font, _grey(200))
    return image


def _code(rng: Rng, theme: _Theme, width: int, height: int) -> Image.Image:
    image = Image.new("RGB", (width, height), theme.ground)
    draw = ImageDraw.Draw(image)
    tabs = theme.size * 2.4
    draw.rectangle((0, 0, width, tabs), fill=theme.panel)
    x = theme.size
    for _ in range(int(rng.integers(1, 5))):
        label = _word(rng) + "." + str(rng.choice(["py", "js", "rs", "c", "ts", "go"]))
        draw.text((x, tabs / 2), label, font=theme.font, fill=theme.text, anchor="lm")
        x += _text_width(theme.font, label) + theme.size * 3
    left = 0.0
    if rng.random() < 0.5:
        left = width * rng.uniform(0.12, 0.25)
        draw.rectangle((0, tabs, left, height), fill=theme.panel)
        _list_rows(draw, rng, theme, (0, tabs, left, height), True)
    font = theme.mono
    step = theme.size * rng.uniform(1.25, 1.5)
    char = _text_width(font, "m")
    colours = [_hsv(rng.random(), rng.uniform(0.4, 0.8), 0.85 if theme.dark else 0.55)
               for _ in range(4)]  # fmt: skip
    gutter = left + char * 5
    y = tabs + theme.size * 0.5
    indent = 0
    number = 1
    while y < height:
        draw.text((gutter - char, y), str(number), font=font, fill=theme.muted, anchor="ra")
        indent = int(np.clip(indent + rng.choice([-1, 0, 0, 1]), 0, 5))
        x = gutter + char * (1 + 4 * indent)
        if rng.random() < 0.12:
            pass  # an empty line
        elif rng.random() < 0.1:
            draw.text((x, y), "# " + _words(rng, int(rng.integers(2, 8))), font=font,
                      fill=theme.muted)  # fmt: skip
        else:
            for _ in range(int(rng.integers(1, 7))):
                kind = rng.random()
                if kind < 0.25:
                    token, fill = str(rng.choice(KEYWORDS)), colours[0]
                elif kind < 0.4:
                    token, fill = '"' + _word(rng) + '"', colours[1]
                elif kind < 0.5:
                    token, fill = str(int(rng.integers(100))), colours[2]
                else:
                    token = _word(rng) + str(rng.choice(["", "(", ")", ".", "_", " =", ":"]))
                    fill = theme.text if rng.random() < 0.7 else colours[3]
                draw.text((x, y), token, font=font, fill=fill)
                x += _text_width(font, token + " ")
                if x > width:
                    break
        y += step
        number += 1
    return image


def _terminal(rng: Rng, theme: _Theme, width: int, height: int) -> Image.Image:
    ground = _grey(rng.uniform(0, 40)) if rng.random() < 0.8 else theme.ground
    image = Image.new("RGB", (width, height), ground)
    draw = ImageDraw.Draw(image)
    light = sum(ground) < 300
    ink = _grey(220) if light else _grey(30)
    prompt = _hsv(rng.choice([0.33, 0.55, 0.15]), 0.7, 0.85 if light else 0.5)
    font = theme.mono
    step = theme.size * 1.3
    y = theme.size * 0.5
    while y < height:
        x = theme.size * 0.5
        if rng.random() < 0.3:
            head = f"{_word(rng)}@{_word(rng)}:~$ "
            draw.text((x, y), head, font=font, fill=prompt)
            x += _text_width(font, head)
        line = " ".join(_word(rng) if rng.random() < 0.7 else _number(rng)
                        for _ in range(int(rng.integers(0, 14))))  # fmt: skip
        draw.text((x, y), line, font=font, fill=ink)
        y += step
    return image


def _table(draw: ImageDraw.ImageDraw, rng: Rng, theme: _Theme, box: tuple) -> None:
    x0, y0, x1, y1 = box
    columns = int(rng.integers(3, 12))
    width = (x1 - x0) / columns
    row = theme.size * rng.uniform(1.7, 2.3)
    draw.rectangle((x0, y0, x1, y0 + row), fill=theme.panel)
    for c in range(columns):
        draw.text((x0 + c * width + theme.size * 0.4, y0 + row / 2), _word(rng).capitalize(),
                  font=theme.bold, fill=theme.text, anchor="lm")  # fmt: skip
    y = y0 + row
    stripes = rng.random() < 0.5
    index = 0
    while y + row < y1:
        if stripes and index % 2:
            draw.rectangle((x0, y, x1, y + row), fill=_mix(theme.panel, theme.ground, 0.5))
        for c in range(columns):
            text = _number(rng) if rng.random() < 0.6 else _word(rng)
            while _text_width(theme.font, text) > width - theme.size * 0.8 and len(text) > 1:
                text = text[:-1]
            draw.text((x0 + c * width + theme.size * 0.4, y + row / 2), text, font=theme.font,
                      fill=theme.text, anchor="lm")  # fmt: skip
        y += row
        draw.line([(x0, y), (x1, y)], fill=theme.line)
        index += 1
    if rng.random() < 0.7:
        for c in range(columns + 1):
            draw.line([(x0 + c * width, y0), (x0 + c * width, y)], fill=theme.line)


def _sheet(rng: Rng, theme: _Theme, width: int, height: int) -> Image.Image:
    image = Image.new("RGB", (width, height), theme.ground)
    draw = ImageDraw.Draw(image)
    ribbon = theme.size * rng.uniform(3, 7)
    draw.rectangle((0, 0, width, ribbon), fill=theme.panel)
    _bar_icons(draw, rng, theme.size, ribbon * 0.35, int(rng.integers(5, 20)), theme.size * 1.2,
               theme.muted)  # fmt: skip
    _table(draw, rng, theme, (theme.size * 3, ribbon, width, height))
    return image


def _chat(rng: Rng, theme: _Theme, width: int, height: int) -> Image.Image:
    image = Image.new("RGB", (width, height), theme.ground)
    draw = ImageDraw.Draw(image)
    status = theme.size * 2
    draw.text((theme.size, status / 2), f"{int(rng.integers(0, 24))}:{int(rng.integers(60)):02d}",
              font=theme.bold, fill=theme.text, anchor="lm")  # fmt: skip
    _bar_icons(draw, rng, width - theme.size * 6, status * 0.3, 3, theme.size * 0.8, theme.text)
    head = status + theme.size * 3.5
    draw.rectangle((0, status, width, head), fill=theme.panel)
    r = theme.size * 1.2
    draw.ellipse((theme.size, (status + head) / 2 - r, theme.size + 2 * r, (status + head) / 2
                  + r), fill=theme.accent)  # fmt: skip
    draw.text((theme.size * 2 + 2 * r, (status + head) / 2), _words(rng, 2), font=theme.bold,
              fill=theme.text, anchor="lm")  # fmt: skip
    y = head + theme.size
    other = _mix(theme.panel, theme.ground, 0.2)
    while y < height - theme.size * 6:
        mine = rng.random() < 0.5
        lines = int(rng.integers(1, 4))
        bubble = width * rng.uniform(0.35, 0.75)
        x0 = width - bubble - theme.size if mine else theme.size
        bottom = y + lines * theme.leading + theme.size
        draw.rounded_rectangle((x0, y, x0 + bubble, bottom), radius=theme.size,
                               fill=theme.accent if mine else other)  # fmt: skip
        _paragraph(draw, rng, x0 + theme.size * 0.7, y + theme.size * 0.5, bubble - theme.size
                   * 1.4, lines, theme.font, _grey(255) if mine else theme.text,
                   theme.leading)  # fmt: skip
        y = bottom + theme.size * 0.8
    draw.rounded_rectangle((theme.size, height - theme.size * 4, width - theme.size, height
                            - theme.size), radius=theme.size * 1.5, fill=theme.panel,
                           outline=theme.line)  # fmt: skip
    return image


def _document(rng: Rng, theme: _Theme, width: int, height: int) -> Image.Image:
    around = _grey(rng.uniform(200, 235)) if not theme.dark else _grey(rng.uniform(40, 70))
    image = Image.new("RGB", (width, height), around)
    draw = ImageDraw.Draw(image)
    bar = theme.size * 3
    draw.rectangle((0, 0, width, bar), fill=theme.panel)
    _bar_icons(draw, rng, theme.size, bar * 0.3, int(rng.integers(4, 14)), bar * 0.4, theme.muted)
    page_w = min(width * rng.uniform(0.55, 0.9), height * 0.9)
    x0 = (width - page_w) / 2
    draw.rectangle((x0, bar + theme.size, x0 + page_w, height), fill=_grey(255))
    theme.text = _grey(30)
    margin = page_w * 0.1
    font = _font(rng, theme.size, str(rng.choice(["sans", "serif"])))
    y = bar + theme.size + margin
    while y < height - theme.leading:
        if rng.random() < 0.2:
            _line_of_text(draw, rng, x0 + margin, y, page_w * 0.5, _font(rng, theme.size * 1.4,
                          style=1), theme.text)  # fmt: skip
            y += theme.leading * 1.8
        y = _paragraph(draw, rng, x0 + margin, y, page_w - 2 * margin, int(rng.integers(2, 8)),
                       font, theme.text, theme.leading) + theme.leading * 0.6  # fmt: skip
    return image


def _dialog(rng: Rng, theme: _Theme, width: int, height: int) -> Image.Image:
    image = Image.new("RGB", (width, height), theme.ground)
    draw = ImageDraw.Draw(image)
    y = theme.size * 1.5
    draw.text((theme.size * 1.5, y), _words(rng, int(rng.integers(1, 4))), font=_font(
        rng, theme.size * 1.5, style=1), fill=theme.text)  # fmt: skip
    y += theme.size * 3.5
    while y < height - theme.size * 5:
        draw.text((theme.size * 1.5, y + theme.size * 0.5), _words(rng, int(rng.integers(1, 4))),
                  font=theme.font, fill=theme.text)  # fmt: skip
        x = width * rng.uniform(0.4, 0.55)
        kind = int(rng.integers(3))
        if kind == 0:  # toggle
            w, h = theme.size * 3, theme.size * 1.6
            on = rng.random() < 0.5
            draw.rounded_rectangle((x, y, x + w, y + h), radius=h / 2,
                                   fill=theme.accent if on else theme.line)  # fmt: skip
            cx = x + (w - h / 2 if on else h / 2)
            draw.ellipse((cx - h * 0.4, y + h * 0.1, cx + h * 0.4, y + h * 0.9), fill=_grey(255))
        elif kind == 1:  # check box
            s = theme.size * 1.3
            draw.rounded_rectangle((x, y, x + s, y + s), radius=s * 0.2, outline=theme.muted,
                                   fill=theme.accent if rng.random() < 0.5 else None, width=2)  # fmt: skip
        else:  # input
            draw.rounded_rectangle((x, y, width - theme.size * 1.5, y + theme.size * 2),
                                   radius=theme.size * 0.3, outline=theme.line,
                                   fill=theme.panel)  # fmt: skip
            draw.text((x + theme.size * 0.5, y + theme.size), _word(rng), font=theme.font,
                      fill=theme.muted, anchor="lm")  # fmt: skip
        y += theme.size * 3
    x = width - theme.size * 14
    for primary in (False, True):
        x = _button(draw, rng, theme, x, height - theme.size * 3.5, primary)
    return image


def _desktop(rng: Rng, theme: _Theme, width: int, height: int) -> Image.Image:
    image = Image.new("RGB", (width, height))
    _picture(image, rng, (0, 0, width, height))
    for _ in range(int(rng.integers(1, 3))):
        w = int(width * rng.uniform(0.6, 0.95))
        h = int(height * rng.uniform(0.6, 0.9))
        window = _window(rng, theme, w, h)
        image.paste(window, (int(rng.integers(0, width - w + 1)),
                             int(rng.integers(0, height - h + 1))))  # fmt: skip
    draw = ImageDraw.Draw(image)
    bar = theme.size * 3
    draw.rectangle((0, height - bar, width, height), fill=theme.panel)
    _bar_icons(draw, rng, width * 0.3, height - bar * 0.75, int(rng.integers(4, 12)), bar * 0.5,
               theme.text)  # fmt: skip
    return image


SCREENS: tuple[Callable[[Rng, _Theme, int, int], Image.Image], ...] = (
    _window, _web, _code, _terminal, _sheet, _chat, _document, _dialog, _desktop)
SCREEN_WEIGHTS = np.array([0.2, 0.2, 0.12, 0.06, 0.08, 0.1, 0.08, 0.08, 0.08])


def screenshot(rng: Rng) -> np.ndarray:
    """A screenshot: an application window, web page, code editor, terminal, spreadsheet,
    phone chat, document, dialog or desktop, in a light or dark theme at a device scale of
    1 to 2, sometimes shrunk or JPEG-compressed."""
    style = SCREENS[int(rng.choice(len(SCREENS), p=SCREEN_WEIGHTS / SCREEN_WEIGHTS.sum()))]
    scale = float(rng.choice([1.0, 1.0, 1.25, 1.5, 2.0]))
    if style is _chat:
        width = int(rng.uniform(320, 430) * scale)
        height = int(width * rng.uniform(1.7, 2.2))
    elif style is _dialog:
        width = int(rng.uniform(320, 700) * scale)
        height = int(width * rng.uniform(0.5, 1.2))
    else:
        width = int(_log_uniform(rng, 500, 1920) * scale)
        height = int(width / float(rng.choice([16 / 9, 16 / 10, 4 / 3, 2.0, 1.0, 0.75])))
    width, height = min(width, 2880), min(height, 2400)
    array = _to_array(style(rng, _Theme(rng, scale), width, height))
    if rng.random() < 0.2:
        factor = rng.uniform(0.4, 0.9)
        array = _resize(array, max(16, int(width * factor)), max(16, int(height * factor)))
    return _finish(array, rng, 0.2, (60, 95))


# --- scans --------------------------------------------------------------------------------


def _handwriting(draw: ImageDraw.ImageDraw, rng: Rng, x: float, y: float, width: float,
                 size: float, ink: int) -> None:  # fmt: skip
    """A line of cursive-like scribble along a wavy baseline, word by word: each letter a
    loop of a prolate cycloid, most x-high, some rising (ascenders) or dropping (descenders)."""
    stroke = max(1, int(size * rng.uniform(0.05, 0.1)))
    end = x + width
    slant = rng.uniform(-0.1, 0.45)
    advance = size * rng.uniform(0.35, 0.55)
    while x < end - size:
        letters = int(rng.integers(1, 9))
        t = np.linspace(0, letters * 2 * np.pi, letters * 12)
        kind = rng.choice(3, letters, p=(0.7, 0.2, 0.1))
        tall = np.where(kind == 1, size, size * 0.45).repeat(12)
        drop = np.where(kind == 2, size * 0.4, 0.0).repeat(12)
        loop = advance * rng.uniform(0.1, 0.35)
        xs = x + t / (2 * np.pi) * advance - loop * np.sin(t)
        ys = y + size - (1 - np.cos(t)) / 2 * tall + drop * np.sin(t / 2) ** 2
        ys = ys + size * 0.08 * np.sin(t / 7 + rng.uniform(0, 6))
        xs = xs + (y + size - ys) * slant
        draw.line(list(zip(xs, ys)), fill=ink, width=stroke, joint="curve")
        x = float(xs[-1]) + size * rng.uniform(0.4, 0.9)


def _page_ink(rng: Rng, width: int, height: int) -> Image.Image:
    """A page's ink coverage (mode L, 255 ink): printed text, headings, tables, forms,
    pictures and handwriting."""
    page = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(page)
    size = width * rng.uniform(0.012, 0.028)
    family = str(rng.choice(["serif", "serif", "sans", "mono"]))
    font = _font(rng, size, family)
    leading = size * rng.uniform(1.15, 1.6)
    margin = width * rng.uniform(0.06, 0.14)
    columns = 2 if rng.random() < 0.2 else 1
    handwritten = rng.random() < 0.2
    gap = size * 2
    column = (width - 2 * margin - gap * (columns - 1)) / columns
    if rng.random() < 0.7:
        _line_of_text(draw, rng, margin, margin * 0.8, column * rng.uniform(0.3, 0.9),
                      _font(rng, size * rng.uniform(1.4, 2.2), family, style=1), 255)  # fmt: skip
    for c in range(columns):
        x = margin + c * (column + gap)
        y = margin * 0.8 + size * 3.5
        while y < height - margin:
            kind = rng.random()
            ink = int(rng.uniform(170, 255))
            if handwritten or kind < 0.05:
                _handwriting(draw, rng, x, y, column * rng.uniform(0.5, 1.0), size * 1.4, ink)
                y += size * 2.6
            elif kind < 0.75:
                y = _paragraph(draw, rng, x, y, column, int(rng.integers(2, 12)), font, ink,
                               leading) + leading * rng.uniform(0.3, 1.0)  # fmt: skip
            elif kind < 0.82:
                _line_of_text(draw, rng, x, y, column * 0.6, _font(rng, size * 1.25, family,
                              style=1), ink)  # fmt: skip
                y += leading * 1.8
            elif kind < 0.88:  # a ruled table
                rows, cols = int(rng.integers(2, 8)), int(rng.integers(2, 6))
                cell = column / cols
                for r in range(rows + 1):
                    draw.line([(x, y + r * leading * 1.4), (x + column, y + r * leading * 1.4)],
                              fill=ink, width=max(1, int(size / 12)))  # fmt: skip
                    if r < rows:
                        for k in range(cols):
                            draw.text((x + k * cell + size * 0.3, y + r * leading * 1.4
                                       + size * 0.2), _number(rng) if k else _word(rng),
                                      font=font, fill=ink)  # fmt: skip
                y += (rows + 1) * leading * 1.4
            elif kind < 0.93:  # a form line with a signature
                label = _words(rng, 2) + ":"
                draw.text((x, y), label, font=font, fill=ink)
                start = x + _text_width(font, label) + size
                draw.line([(start, y + size * 1.1), (x + column * 0.8, y + size * 1.1)],
                          fill=ink, width=max(1, int(size / 12)))  # fmt: skip
                if rng.random() < 0.6:
                    _handwriting(draw, rng, start, y - size * 0.6, column * 0.3, size * 1.3, 255)
                y += leading * 2.2
            else:  # a figure: a shaded box
                height_fig = column * rng.uniform(0.2, 0.5)
                draw.rectangle((x, y, x + column * rng.uniform(0.4, 1), y + height_fig),
                               fill=int(rng.uniform(40, 200)), outline=ink)  # fmt: skip
                y += height_fig + leading
    return page


def _shade(rng: Rng, width: int, height: int, cells: tuple[int, int], low: float) -> Image.Image:
    """A smooth random field (mode L) between ``low`` and 1 of 255: a few random values per
    side (``cells``, rows and columns) interpolated over the page."""
    small = rng.uniform(low, 1.0, cells) * 255
    field = Image.fromarray(np.clip(small + 0.5, 0, 255).astype(np.uint8), "L")
    return field.resize((width, height), Image.Resampling.BICUBIC)


def _paper(rng: Rng, width: int, height: int) -> Image.Image:
    """Paper: a tint (white, cream, yellowed, grey or recycled) with a blotchy texture (its
    grain is the scanner's noise)."""
    tint = rng.random()
    if tint < 0.35:
        base = np.array([1.0, 1.0, 1.0]) - rng.uniform(0, 0.05)
    elif tint < 0.7:
        yellow = rng.uniform(0.03, 0.18)
        base = np.array([1.0, 1.0 - yellow * 0.4, 1.0 - yellow]) * rng.uniform(0.85, 1.0)
    elif tint < 0.9:
        base = np.full(3, rng.uniform(0.7, 0.92))
    else:
        base = rng.uniform(0.85, 1.0, 3)
    colour = Image.new("RGB", (width, height), tuple(int(v * 255 + 0.5) for v in base))
    cells = (max(2, height // 48), max(2, width // 48))
    blotch = _shade(rng, width, height, cells, 1 - rng.uniform(0.01, 0.06))
    return ImageChops.multiply(colour, blotch.convert("RGB"))


def scan(rng: Rng) -> np.ndarray:
    """A scanned page: printed or handwritten text (with headings, tables, forms, figures)
    on tinted, textured paper, skewed on the scanner bed, unevenly lit, blurred and noisy; in
    colour, grey or black and white; usually JPEG-compressed."""
    width = int(_log_uniform(rng, 400, 1100))
    aspect = float(rng.choice([1.414, 1.294, 1.414, 0.707, 2.8, 1.0]))
    height = int(min(width * aspect, 2400))
    cover = _page_ink(rng, width, height)
    if rng.random() < 0.5:  # faded print
        fade = rng.uniform(0.6, 1.0)
        cover = cover.point(lambda v: int(v * fade))
    ink = (_grey(rng.uniform(0, 64)) if rng.random() < 0.8
           else (25, 38, int(rng.uniform(100, 180))))  # fmt: skip
    image = Image.composite(Image.new("RGB", (width, height), ink), _paper(rng, width, height),
                            cover)  # fmt: skip
    light = _shade(rng, width, height, (2, 2), 1 - rng.uniform(0, 0.3))
    if aspect == 0.707:  # a book spread: the spine's shadow down the middle
        xs = np.linspace(-1, 1, width, dtype=np.float32)
        spine = (1 - rng.uniform(0.2, 0.6) * np.exp(-((xs / 0.05) ** 2))) * 255
        light = ImageChops.multiply(light, Image.fromarray(
            spine.astype(np.uint8)[None], "L").resize((width, height)))  # fmt: skip
    image = ImageChops.multiply(image, light.convert("RGB"))
    bed = _grey(rng.uniform(0, 60)) if rng.random() < 0.4 else _grey(rng.uniform(220, 255))
    image = image.rotate(rng.normal(0, 1.2), resample=Image.Resampling.BILINEAR,
                         expand=rng.random() < 0.5, fillcolor=bed)  # fmt: skip
    if rng.random() < 0.3:  # the bed shows along an edge
        w, h = image.size
        pad = [int(rng.uniform(0, 0.06) * s) for s in (w, h, w, h)]
        canvas = Image.new("RGB", (w + pad[0] + pad[2], h + pad[1] + pad[3]), bed)
        canvas.paste(image, (pad[0], pad[1]))
        image = canvas
    image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.3)))
    array = _noise(np.asarray(image), rng, rng.uniform(1, 6), rng.uniform(0, 0.5))
    if rng.random() < 0.3:  # dust
        count = int(rng.integers(5, 200))
        yy = rng.integers(0, array.shape[0], count)
        xx = rng.integers(0, array.shape[1], count)
        array[yy, xx] = rng.choice([0, 255], (count, 1))
    mode = rng.random()
    if mode < 0.35:
        grey = array.astype(np.float32) @ np.float32([0.299, 0.587, 0.114])
        array = np.repeat(grey[..., None], 3, axis=2).astype(np.uint8)
    elif mode < 0.45:
        grey = array.astype(np.float32) @ np.float32([0.299, 0.587, 0.114])
        level = np.percentile(grey, 50) * rng.uniform(0.7, 0.9)
        array = np.repeat(np.where(grey > level, 255, 0)[..., None], 3, axis=2).astype(np.uint8)
    return _finish(array, rng, 0.8, (30, 92))


# --- the whole set ------------------------------------------------------------------------

GENERATORS: dict[str, Callable[[Rng], np.ndarray]] = {
    "photo": photo, "graphic": graphic, "screenshot": screenshot, "scan": scan,
}  # fmt: skip
"""One generator per label, in the order of :data:`KINDS`."""
SPLITS = ("train", "test")


def generate(kind: str, seed: int, index: int, split: str = "train") -> np.ndarray:
    """Image ``index`` of ``kind`` in a split: a pure function of its arguments, the test
    split drawn from other streams than the training one for the same seed."""
    if kind not in GENERATORS:
        raise UsageError(f"kind {kind!r} is not one of {', '.join(KINDS)}")
    if split not in SPLITS:
        raise UsageError(f"split {split!r} is not one of {', '.join(SPLITS)}")
    rng = np.random.default_rng([seed, SPLITS.index(split), KINDS.index(kind), index])
    return GENERATORS[kind](rng)


def thumbnail(image: np.ndarray | pyvips.Image, side: int) -> np.ndarray:
    """The classifier's view of a whole image: 8-bit sRGB, alpha flattened on white, shrunk
    (or enlarged) to ``side``×``side`` ignoring its aspect ratio with libvips'
    ``thumbnail_image(side, height=side, size="force")``; an H×W×3 uint8 array."""
    if isinstance(image, np.ndarray):
        array = np.ascontiguousarray(image if image.ndim == 3 else image[..., None])
        vips = pyvips.Image.new_from_array(array).copy(
            interpretation="srgb" if array.shape[2] >= 3 else "b-w")  # fmt: skip
    else:
        vips = image
    if vips.interpretation != "srgb" or vips.format != "uchar":
        vips = vips.colourspace("srgb")
    if vips.hasalpha():
        vips = vips.flatten(background=[255, 255, 255])
    small = vips.cast("uchar").thumbnail_image(side, height=side, size="force")
    return small.numpy().reshape(side, side, 3).astype(np.uint8)


def thumbnails(kind: str, seed: int, indexes: Sequence[int], split: str, side: int
               ) -> np.ndarray:  # fmt: skip
    """The thumbnails of images ``indexes`` of ``kind`` in a split, N×side×side×3 uint8 (a
    task for a worker process, which then needs neither torch nor the lab's trainer)."""
    return np.stack([thumbnail(generate(kind, seed, i, split), side) for i in indexes])
