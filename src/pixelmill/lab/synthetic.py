"""Synthetic training images drawn from a seed: dead leaves and procedural textures.

Hand-written in numpy, as no library draws these. Dead leaves (Matheron; Lee, Mumford & Huang
2001) are occluding shapes whose sizes follow a power law: like natural images they are scale
invariant, with sharp edges between flat or smooth regions, a good regularity prior for
restoration training (Achddou et al. 2021). The textures add what leaves lack: periodic
patterns at random frequency and orientation, fractal noise, and thin text-like strokes.

Every generator takes a side in pixels and a numpy Generator and returns an H×W×3 float32 RGB
image in 0..1; the same generator state gives the same image.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyvips

Rng = np.random.Generator

MAX_LEAVES = 6000
UNCOVERED = 0.01
"""Leaves stop falling once this share of the canvas is uncovered; a last colour fills it."""


def power_law(rng: Rng, count: int, alpha: float, low: float, high: float) -> np.ndarray:
    """Radii with density proportional to r^-alpha on [low, high] (alpha > 1), by inverse CDF."""
    a, b = low ** (1 - alpha), high ** (1 - alpha)
    return (a + rng.random(count) * (b - a)) ** (1 / (1 - alpha))


def dead_leaves(size: int, rng: Rng, alpha: float = 3.0, r_min: float | None = None,
                r_max: float | None = None) -> np.ndarray:  # fmt: skip
    """Discs, ellipses and rectangles falling front to back, anti-aliased, each flat, a
    gradient or striped; radii follow a power law r^-alpha on [r_min, r_max] (default: a
    64th of the side, at least a pixel, to half the side)."""
    n = MAX_LEAVES
    radius = power_law(rng, n, alpha, r_min or max(1.0, size / 64), r_max or size / 2)
    centre = rng.uniform(0, size, (n, 2))
    shape = rng.choice(3, n, p=(0.6, 0.2, 0.2))  # disc, ellipse, rectangle
    aspect = rng.uniform(0.3, 1.0, n)
    angle = rng.uniform(0, np.pi, n)
    fill = rng.choice(3, n, p=(0.8, 0.15, 0.05))  # flat, gradient, stripes
    period = np.exp(rng.uniform(np.log(3), np.log(24), n))
    colours = _colours(rng, (n, 2))
    last = _colours(rng, ())
    out = np.zeros((size, size, 3), np.float32)
    left = np.ones((size, size), np.float32)  # how much of each pixel is still uncovered
    for i in range(n):
        if i % 64 == 0 and left.mean() < UNCOVERED:
            break
        r, (cy, cx) = radius[i], centre[i]
        y0, y1 = max(int(cy - r) - 1, 0), min(int(cy + r) + 2, size)
        x0, x1 = max(int(cx - r) - 1, 0), min(int(cx + r) + 2, size)
        ys = np.arange(y0, y1, dtype=np.float32)[:, None] - np.float32(cy)
        xs = np.arange(x0, x1, dtype=np.float32)[None, :] - np.float32(cx)
        cos, sin = np.float32(np.cos(angle[i])), np.float32(np.sin(angle[i]))
        u, v = xs * cos + ys * sin, ys * cos - xs * sin
        short = r * aspect[i]
        if shape[i] == 0:
            distance = np.hypot(u, v) - r
        elif shape[i] == 1:
            distance = (np.hypot(u / r, v / short) - 1) * short
        else:
            distance = (np.maximum(np.abs(u) / r, np.abs(v) / short) - 1) * short
        cover = np.clip(0.5 - distance, 0, 1) * left[y0:y1, x0:x1]
        c0, c1 = colours[i]
        if fill[i] == 0:
            paint = c0
        else:
            t = (np.clip(0.5 + u / (2 * r), 0, 1) if fill[i] == 1
                 else 0.5 + 0.5 * np.sin(u * np.float32(2 * np.pi / period[i])))  # fmt: skip
            paint = c0 + t[..., None] * (c1 - c0)
        out[y0:y1, x0:x1] += cover[..., None] * paint
        left[y0:y1, x0:x1] -= cover
    return out + left[..., None] * last


def fractal_noise(size: int, rng: Rng) -> np.ndarray:
    """Octaves of Perlin noise (libvips), each half the cell and a random share of the
    amplitude of the one before, between two random colours."""
    cell = size / rng.uniform(0.5, 4)
    persistence = rng.uniform(0.35, 0.75)
    total = np.zeros((size, size), np.float32)
    amplitude = 1.0
    while cell >= 2:
        seed = int(rng.integers(2**31))
        total += amplitude * pyvips.Image.perlin(size, size, cell_size=int(cell), seed=seed).numpy()
        cell, amplitude = cell / 2, amplitude * persistence
    low, high = total.min(), total.max()
    return _between_colours((total - low) / max(high - low, 1e-6), rng)


def stripes(size: int, rng: Rng) -> np.ndarray:
    """Parallel stripes at a random period (3 to 64 pixels), angle and edge sharpness."""
    u, _ = _rotated_plane(size, rng)
    return _between_colours(_wave(u, rng), rng)


def checkers(size: int, rng: Rng) -> np.ndarray:
    """Checkers: two crossing waves of random periods and sharpness, combined as a soft XNOR."""
    u, v = _rotated_plane(size, rng)
    a, b = _wave(u, rng), _wave(v, rng)
    return _between_colours(a * b + (1 - a) * (1 - b), rng)


def glyphs(size: int, rng: Rng) -> np.ndarray:
    """Lines of text-like glyphs: each 1 to 4 strokes, straight or curved, between anchor
    points of the glyph's box, anti-aliased, in ink of one colour on paper of another."""
    height = rng.uniform(5, 28)
    width = max(0.8, height * rng.uniform(0.07, 0.16))
    ink = np.zeros((size, size), np.float32)
    y = rng.uniform(-height, 0)
    while y < size:
        x = rng.uniform(-height, 0)
        while x < size:
            box = height * rng.uniform(0.4, 0.8)
            if rng.random() > 0.15:  # else a space
                _draw_glyph(ink, _glyph(rng) * (box, height) + (x, y), width)
            x += box + height * rng.uniform(0.1, 0.25)
        y += height * rng.uniform(1.15, 1.7)
    return _between_colours(ink, rng)


def texture(size: int, rng: Rng) -> np.ndarray:
    """One of the procedural textures, picked at random."""
    return TEXTURES[int(rng.integers(len(TEXTURES)))](size, rng)


TEXTURES: tuple[Callable[[int, Rng], np.ndarray], ...] = (fractal_noise, stripes, checkers, glyphs)
GENERATORS: dict[str, Callable[[int, Rng], np.ndarray]] = {
    "dead_leaves": dead_leaves,
    "textures": texture,
}


def _colours(rng: Rng, shape: tuple[int, ...]) -> np.ndarray:
    """Random colours (shape × 3) of any saturation: a grey level mixed with a random RGB."""
    grey = rng.random((*shape, 1), dtype=np.float32)
    rgb = rng.random((*shape, 3), dtype=np.float32)
    return grey + rng.random((*shape, 1), dtype=np.float32) * (rgb - grey)


def _between_colours(t: np.ndarray, rng: Rng) -> np.ndarray:
    low, high = _colours(rng, (2,))
    return (low + t[..., None].astype(np.float32) * (high - low)).astype(np.float32)


def _rotated_plane(size: int, rng: Rng) -> tuple[np.ndarray, np.ndarray]:
    angle = rng.uniform(0, np.pi)
    ys, xs = np.mgrid[:size, :size].astype(np.float32)
    return xs * np.cos(angle) + ys * np.sin(angle), ys * np.cos(angle) - xs * np.sin(angle)


def _wave(u: np.ndarray, rng: Rng) -> np.ndarray:
    """A sine along ``u`` at a random period and phase, sharpened towards a square wave."""
    period = np.exp(rng.uniform(np.log(3), np.log(64)))
    sharpness = np.exp(rng.uniform(0, np.log(30)))
    phase = rng.uniform(0, 2 * np.pi)
    return np.clip(0.5 + 0.5 * sharpness * np.sin(u * (2 * np.pi / period) + phase), 0, 1)


ANCHORS = np.array([(x, y) for y in (0.0, 0.5, 1.0) for x in (0.0, 0.5, 1.0)])
"""Where strokes start and end within a glyph's box (x, y as shares of its width, height)."""


def _glyph(rng: Rng) -> np.ndarray:
    """The segments (S×2×2, x and y as shares of the box) of one glyph; a stroke often starts
    where the one before ended, as in handwriting."""
    segments = []
    start = ANCHORS[rng.integers(len(ANCHORS))]
    for _ in range(int(rng.integers(1, 5))):
        if rng.random() < 0.4:
            start = ANCHORS[rng.integers(len(ANCHORS))]
        end = ANCHORS[rng.integers(len(ANCHORS))]
        if np.array_equal(start, end):
            continue
        bend = rng.normal(0, 0.35) if rng.random() < 0.4 else 0.0
        path = _stroke(start, end, bend)
        segments.append(np.stack([path[:-1], path[1:]], 1))
        start = end
    return np.concatenate(segments) if segments else np.empty((0, 2, 2))


def _draw_glyph(ink: np.ndarray, segments: np.ndarray, width: float) -> None:
    """Stroke the segments (in pixels) into ``ink``, within their bounding box."""
    if not segments.size:
        return
    low = np.maximum(np.floor(segments.min((0, 1)) - width), 0).astype(int)
    high = np.minimum(np.ceil(segments.max((0, 1)) + width) + 1, ink.shape[::-1]).astype(int)
    if np.any(high <= low):
        return
    xs, ys = np.meshgrid(np.arange(low[0], high[0]), np.arange(low[1], high[1]))
    distance = _distance_to_segments(np.stack([xs, ys], -1).astype(np.float32), segments)
    region = ink[low[1] : high[1], low[0] : high[0]]
    np.maximum(region, np.clip(width / 2 + 0.5 - distance, 0, 1), out=region)


def _stroke(a: np.ndarray, b: np.ndarray, bend: float) -> np.ndarray:
    """Points from ``a`` to ``b``: a straight line, or a quadratic curve bowed by ``bend``."""
    if bend == 0.0:
        return np.stack([a, b])
    t = np.linspace(0, 1, 7)[:, None]
    control = (a + b) / 2 + bend * np.array([b[1] - a[1], a[0] - b[0]])
    return (1 - t) ** 2 * a + 2 * t * (1 - t) * control + t**2 * b


def _distance_to_segments(points: np.ndarray, segments: np.ndarray) -> np.ndarray:
    """Distance from each point (…×2) to the nearest segment (S×2×2)."""
    a, b = segments[:, 0].astype(np.float32), segments[:, 1].astype(np.float32)
    ab = b - a
    ap = points[..., None, :] - a
    t = np.clip((ap * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-6), 0, 1)
    return np.linalg.norm(ap - t[..., None] * ab, axis=-1).min(-1)
