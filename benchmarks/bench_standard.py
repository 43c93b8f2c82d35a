"""The bundled models on the standard academic test sets, by the usual protocols, through the
tiled engine (``pixelmill.api.run`` from a PNG, tiling included), so that the model cards can
quote figures comparable with published tables.

- **Super-resolution** (``sr-x2``, ``sr-x4`` and their ``-int8`` variants) on Set5, Set14 and
  Urban100: the ground truth cropped to a multiple of the scale, the low-resolution input made
  by antialiased bicubic downscaling, PSNR on Y (BT.601 studio range, as MATLAB ``rgb2ycbcr``)
  with ``scale`` pixels shaved from each border; bicubic upscaling scored alike as the baseline.
  Bicubic is Pillow's ``BICUBIC`` (a = −0.5, widened by the factor when shrinking, as MATLAB
  ``imresize``) on each channel in 32-bit float, ``reducing_gap=None``, rounded to 8 bits: on
  Set5 it lands within 0.01 dB of a port of ``imresize``, while scikit-image's
  ``resize(anti_aliasing=True, order=3)`` (a Gaussian prefilter) reads 0.7 dB higher at ×2.
- **Denoising** (``denoise``, ``-int8``) on CBSD68: seeded Gaussian noise of σ 15 and 25 (in
  0..255) added in float, then clipped and rounded to 8 bits, as the engine takes 8-bit images
  (published tables add the noise in float and keep it unclipped); RGB PSNR over all pixels.
- **JPEG artefacts** (``dejpeg``, ``-int8``) on Kodak24 (not in the training data): Pillow JPEG
  at quality 10, 20, 30 and 40 with 4:2:0 chroma, decoded by Pillow; RGB PSNR (and PSNR-Y in
  the JSON) of the JPEG and of the model's output.
- **Speed**: output megapixels per second of ``pixelmill.api.run`` with ``model:NAME`` on a
  ``--side``² input (uncompressed TIFF in and out), median of ``--repeats`` after a warm-up,
  the variants taking turns, the engine's default threads.

PSNR is the mean of the per-image figures. ``--data`` holds one folder per set (``Set5``,
``Set14``, ``Urban100``, ``CBSD68``, ``Kodak24``) of PNG images; missing sets are skipped.
How to obtain them: ``benchmarks/fetch_eval_sets.md``.

    python benchmarks/bench_standard.py --threads 1             # every task
    python benchmarks/bench_standard.py --tasks sr --sets Set5  # a quick protocol check
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import recording

from pixelmill import api
from pixelmill.config import Settings

SR_SETS = ("Set5", "Set14", "Urban100")
SR_MODELS = {2: "sr-x2", 4: "sr-x4"}
NOISE_SET, SIGMAS = "CBSD68", (15, 25)
JPEG_SET, QUALITIES = "Kodak24", (10, 20, 30, 40)
SPEED_MODELS = ("sr-x2", "sr-x4", "denoise", "dejpeg")
TASKS = ("sr", "denoise", "dejpeg", "speed")

PUBLISHED_SR: dict[tuple[str, int], dict[str, float]] = {
    ("Set5", 2): {"bicubic": 33.66, "SRCNN": 36.66, "FSRCNN": 37.00},
    ("Set5", 4): {"bicubic": 28.42, "SRCNN": 30.48, "FSRCNN": 30.71},
    ("Set14", 2): {"bicubic": 30.24},
    ("Set14", 4): {"bicubic": 26.00},
    ("Urban100", 2): {"bicubic": 26.88},
    ("Urban100", 4): {"bicubic": 23.14},
}
"""PSNR-Y (dB) of the classic references: bicubic as quoted in the SRCNN, VDSR and EDSR
tables, SRCNN and FSRCNN from the FSRCNN paper (Dong et al., ECCV 2016)."""
PUBLISHED_DENOISE: dict[int, dict[str, float]] = {
    15: {"CBM3D": 33.52, "CDnCNN": 33.89},
    25: {"CBM3D": 30.71, "CDnCNN": 31.23},
}
"""RGB PSNR (dB) on CBSD68 from the DnCNN paper (Zhang et al., TIP 2017)."""
TIFF = "encode:tiff:compression=none"
RESIZE = ("Pillow BICUBIC (a = -0.5, antialiased when shrinking, reducing_gap=None), each "
          "channel in 32-bit float, rounded to 8 bits")  # fmt: skip


def load(path: Path | io.BytesIO) -> np.ndarray:
    """An image as 8-bit RGB (grey images repeated over three channels)."""
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".bmp", ".tif"))


def bicubic(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """``image`` resized to ``width`` × ``height`` by :data:`RESIZE`."""
    planes = [np.asarray(Image.fromarray(image[..., c].astype(np.float32), "F")
                         .resize((width, height), Image.Resampling.BICUBIC, reducing_gap=None))
              for c in range(image.shape[2])]  # fmt: skip
    return np.clip(np.rint(np.stack(planes, axis=-1)), 0, 255).astype(np.uint8)


def luma(image: np.ndarray) -> np.ndarray:
    """Y of BT.601 YCbCr, 16..235, as MATLAB ``rgb2ycbcr`` (in float, not rounded)."""
    rgb = image.astype(np.float64) / 255
    return 16 + 65.481 * rgb[..., 0] + 128.553 * rgb[..., 1] + 24.966 * rgb[..., 2]


def psnr(output: np.ndarray, reference: np.ndarray, *, y: bool = False, shave: int = 0) -> float:
    """PSNR (dB, peak 255) on Y or on every RGB sample, ``shave`` pixels off each border."""
    a, b = (luma(output), luma(reference)) if y else (output.astype(np.float64),
                                                      reference.astype(np.float64))  # fmt: skip
    if shave:
        a, b = a[shave:-shave, shave:-shave], b[shave:-shave, shave:-shave]
    return float(10 * np.log10(255**2 / np.mean((a - b) ** 2)))


class Engine:
    """Runs ``model:NAME`` through ``pixelmill.api.run`` from a PNG to a PNG."""

    def __init__(self, work: Path, settings: Settings) -> None:
        self.source, self.target, self.settings = work / "in.png", work / "out.png", settings

    def __call__(self, model: str, image: np.ndarray) -> np.ndarray:
        Image.fromarray(image).save(self.source, compress_level=1)
        api.run(self.source, self.target, f"model:{model}", settings=self.settings)
        return load(self.target)


def mean(rows: Iterable[dict[str, float]], key: str) -> float:
    return statistics.fmean(row[key] for row in rows)


def super_resolution(data: Path, sets: list[str], run: Engine) -> list[dict[str, Any]]:
    results = []
    for name in (s for s in SR_SETS if s in sets and (data / s).is_dir()):
        for scale, model in SR_MODELS.items():
            models, per_image = (model, f"{model}-int8"), {}
            for path in images(data / name):
                truth = load(path)
                height, width = truth.shape[0] // scale * scale, truth.shape[1] // scale * scale
                truth = truth[:height, :width]
                small = bicubic(truth, width // scale, height // scale)
                outputs = {"bicubic": bicubic(small, width, height)}
                outputs |= {m: run(m, small) for m in models}
                per_image[path.stem] = {k: psnr(v, truth, y=True, shave=scale)
                                        for k, v in outputs.items()}  # fmt: skip
            rows = per_image.values()
            means = {k: mean(rows, k) for k in ("bicubic", *models)}
            results.append({"set": name, "scale": scale, "model": model, "images": len(per_image),
                            "psnr_y": means, "gain_db": means[model] - means["bicubic"],
                            "published": PUBLISHED_SR.get((name, scale), {}),
                            "per_image": per_image})  # fmt: skip
            recording.log(f"{name} ×{scale}:", {k: round(v, 3) for k, v in means.items()})
    return results


def denoising(data: Path, seed: int, run: Engine) -> list[dict[str, Any]]:
    if not (data / NOISE_SET).is_dir():
        return []
    results, paths = [], images(data / NOISE_SET)
    for sigma in SIGMAS:
        per_image = {}
        for index, path in enumerate(paths):
            clean = load(path)
            rng = np.random.default_rng([seed, sigma, index])
            noise = rng.normal(0.0, sigma, clean.shape)
            noisy = np.clip(np.rint(clean + noise), 0, 255).astype(np.uint8)
            outputs = {"noisy": noisy} | {m: run(m, noisy) for m in ("denoise", "denoise-int8")}
            per_image[path.stem] = {k: psnr(v, clean) for k, v in outputs.items()}
        means = {k: mean(per_image.values(), k) for k in ("noisy", "denoise", "denoise-int8")}
        results.append({"set": NOISE_SET, "sigma": sigma, "images": len(per_image),
                        "psnr_rgb": means, "gain_db": means["denoise"] - means["noisy"],
                        "published": PUBLISHED_DENOISE[sigma], "per_image": per_image})  # fmt: skip
        recording.log(f"{NOISE_SET} σ {sigma}:", {k: round(v, 3) for k, v in means.items()})
    return results


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """``image`` through Pillow's JPEG encoder (4:2:0) and decoder."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=quality, subsampling="4:2:0")
    buffer.seek(0)
    return load(buffer)


def dejpeg(data: Path, run: Engine) -> list[dict[str, Any]]:
    if not (data / JPEG_SET).is_dir():
        return []
    results, paths = [], images(data / JPEG_SET)
    models = ("dejpeg", "dejpeg-int8")
    for quality in QUALITIES:
        per_image = {}
        for path in paths:
            clean = load(path)
            compressed = jpeg(clean, quality)
            outputs = {"jpeg": compressed} | {m: run(m, compressed) for m in models}
            per_image[path.stem] = {f"{k}_{space}": psnr(v, clean, y=space == "y")
                                    for k, v in outputs.items()
                                    for space in ("rgb", "y")}  # fmt: skip
        keys = [f"{k}_{space}" for k in ("jpeg", *models) for space in ("rgb", "y")]
        means = {k: mean(per_image.values(), k) for k in keys}
        results.append({"set": JPEG_SET, "quality": quality, "images": len(per_image),
                        "psnr": means, "gain_db_rgb": means["dejpeg_rgb"] - means["jpeg_rgb"],
                        "gain_db_y": means["dejpeg_y"] - means["jpeg_y"],
                        "per_image": per_image})  # fmt: skip
        recording.log(f"{JPEG_SET} q {quality}:", {k: round(v, 3) for k, v in means.items()})
    return results


def speed(side: int, repeats: int, work: Path) -> list[dict[str, Any]]:
    """Output MP/s of each model and its int8 variant, the engine's default settings."""
    rng = np.random.default_rng(0)
    coarse = rng.integers(0, 256, (side // 16, side // 16, 3), dtype=np.uint8)
    grain = rng.normal(0.0, 4.0, (side, side, 3))
    image = np.clip(np.rint(bicubic(coarse, side, side) + grain), 0, 255).astype(np.uint8)
    source, target = work / "speed.tif", work / "speed-out.tif"
    Image.fromarray(image).save(source)  # uncompressed
    settings = Settings.load()
    results = []
    for base in SPEED_MODELS:
        models = (base, f"{base}-int8")
        seconds: dict[str, list[float]] = {m: [] for m in models}
        for model in models:  # warm-up: loads the session
            api.run(source, target, f"model:{model}/{TIFF}", settings=settings)
        for turn in range(repeats):
            for model in models[turn % 2 :] + models[: turn % 2]:
                began = time.perf_counter()
                api.run(source, target, f"model:{model}/{TIFF}", settings=settings)
                seconds[model].append(time.perf_counter() - began)
        with Image.open(target) as out:
            megapixels = out.width * out.height / 1e6
        rates = {m: megapixels / statistics.median(s) for m, s in seconds.items()}
        results.append({"model": base, "input": f"{side}×{side}", "output_mp": megapixels,
                        "mp_per_s": rates, "speedup": rates[models[1]] / rates[base],
                        "seconds": seconds})  # fmt: skip
        recording.log(f"speed {base}:", {k: round(v, 3) for k, v in rates.items()})
    target.unlink(missing_ok=True)
    return results


def fmt(value: float | None, digits: int = 2) -> str | None:
    return None if value is None else f"{value:.{digits}f}"


def tables(record: dict[str, Any]) -> str:
    """The markdown tables of a results record."""
    parts = []
    if sr := record.get("super_resolution"):
        parts.append(recording.table(
            ["set", "scale", "model", "images", "bicubic", "fp32", "int8", "gain over bicubic",
             "published bicubic", "SRCNN", "FSRCNN"],
            ([r["set"], f"×{r['scale']}", r["model"], r["images"], fmt(r["psnr_y"]["bicubic"]),
              fmt(r["psnr_y"][r["model"]]), fmt(r["psnr_y"][f"{r['model']}-int8"]),
              f"{r['gain_db']:+.2f}", fmt(r["published"].get("bicubic")),
              fmt(r["published"].get("SRCNN")), fmt(r["published"].get("FSRCNN"))] for r in sr),
            text=3))  # fmt: skip
    if dn := record.get("denoising"):
        parts.append(recording.table(
            ["set", "σ", "images", "noisy input", "denoise", "denoise-int8", "gain", "CBM3D",
             "CDnCNN"],
            ([r["set"], r["sigma"], r["images"], fmt(r["psnr_rgb"]["noisy"]),
              fmt(r["psnr_rgb"]["denoise"]), fmt(r["psnr_rgb"]["denoise-int8"]),
              f"{r['gain_db']:+.2f}", fmt(r["published"]["CBM3D"]), fmt(r["published"]["CDnCNN"])]
             for r in dn), text=1))  # fmt: skip
    if dj := record.get("dejpeg"):
        parts.append(recording.table(
            ["set", "quality", "images", "JPEG", "dejpeg", "dejpeg-int8", "gain", "gain on Y"],
            ([r["set"], r["quality"], r["images"], fmt(r["psnr"]["jpeg_rgb"]),
              fmt(r["psnr"]["dejpeg_rgb"]), fmt(r["psnr"]["dejpeg-int8_rgb"]),
              f"{r['gain_db_rgb']:+.2f}", f"{r['gain_db_y']:+.2f}"] for r in dj),
            text=1))  # fmt: skip
    if sp := record.get("speed"):
        parts.append(recording.table(
            ["model", "input", "output MP", "fp32 MP/s", "int8 MP/s", "int8 speed-up"],
            ([r["model"], r["input"], fmt(r["output_mp"], 1), fmt(r["mp_per_s"][r["model"]]),
              fmt(r["mp_per_s"][f"{r['model']}-int8"]), f"{r['speedup']:.2f}×"] for r in sp),
            text=2))  # fmt: skip
    return "\n\n".join(parts)


def protocol_check(sr: list[dict[str, Any]]) -> list[str]:
    """Our bicubic PSNR-Y against the published one, set by set."""
    lines = []
    for r in sr:
        if (published := r["published"].get("bicubic")) is not None:
            ours = r["psnr_y"]["bicubic"]
            lines.append(f"{r['set']} ×{r['scale']} bicubic {ours:.2f} dB, published "
                         f"{published:.2f} ({ours - published:+.2f})")  # fmt: skip
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=HERE / "work" / "eval-sets",
                        help="folder of the sets (Set5/, Set14/, Urban100/, CBSD68/, Kodak24/)")
    parser.add_argument("--json", type=Path, default=HERE / "results" / "standard.json",
                        help="where the figures go, per image included")
    parser.add_argument("--tasks", nargs="+", choices=TASKS, default=list(TASKS))
    parser.add_argument("--sets", nargs="+", choices=SR_SETS, default=list(SR_SETS),
                        help="super-resolution sets")
    parser.add_argument("--threads", type=int, default=0,
                        help="inference threads of the quality runs (0: the engine's default); "
                             "speed always uses the default")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="of the denoising noise")
    parser.add_argument("--side", type=int, default=1024, help="input side of the speed runs")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per model")
    args = parser.parse_args(argv)
    if not args.data.is_dir() and set(args.tasks) - {"speed"}:
        parser.error(f"{args.data}: no such folder; see benchmarks/fetch_eval_sets.md")
    settings = Settings.load().replace(threads=args.threads)
    record: dict[str, Any] = {
        "protocol": {
            "resize": RESIZE, "sr": "mod-crop to the scale, bicubic ×1/s, PSNR on Y (BT.601, "
            "16..235, float), s pixels shaved", "denoise": f"Gaussian noise (seed {args.seed}) "
            "added in float, clipped and rounded to 8 bits; RGB PSNR, all pixels",
            "dejpeg": "Pillow JPEG, 4:2:0, decoded by Pillow; RGB PSNR (and Y), all pixels",
            "speed": f"output MP/s of api.run, {args.side}² uncompressed TIFF in and out, "
            f"median of {args.repeats}, default threads", "threads": args.threads,
            "psnr": "mean of per-image PSNR",
        },
    }  # fmt: skip
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="pixelmill-standard-") as folder:
        work = Path(folder)
        run = Engine(work, settings)
        steps: dict[str, tuple[str, Callable[[], list[dict[str, Any]]]]] = {
            "sr": ("super_resolution", lambda: super_resolution(args.data, args.sets, run)),
            "denoise": ("denoising", lambda: denoising(args.data, args.seed, run)),
            "dejpeg": ("dejpeg", lambda: dejpeg(args.data, run)),
            "speed": ("speed", lambda: speed(args.side, args.repeats, work)),
        }
        for task in args.tasks:
            key, step = steps[task]
            record[key] = step()
            if not record[key]:
                recording.log(f"{task}: no data in {args.data}, skipped")
    record["seconds"] = time.perf_counter() - started
    record["protocol_check"] = protocol_check(record.get("super_resolution", []))
    import onnxruntime
    import PIL

    recording.save(args.json, record, onnxruntime=onnxruntime.__version__, pillow=PIL.__version__)
    for line in record["protocol_check"]:
        print(line)
    print(tables(record))


if __name__ == "__main__":
    main()
