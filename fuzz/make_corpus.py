"""Write the seed corpora of the fuzz harnesses (run from anywhere; the files are committed).

    .venv/bin/python fuzz/make_corpus.py

``corpus/pipeline/``: valid pipelines, text and JSON, from the README's examples and its table
of steps (each is checked to parse), and ``pipeline.dict``, a libFuzzer dictionary of the
grammar's words made from the step declarations. ``corpus/loaders/``: a tiny valid file of each documented
format, 16 × 16 pixels (8 × 8 for AVIF), plus the hostile inputs of ``tests/hostile.py`` that
are small enough to be seeds (at most ``MAX_SEED`` bytes). Old seed files are replaced.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))  # hostile.py and the photo() of conftest.py

import pyvips

MAX_SEED = 2048
"""Largest seed kept, in bytes: libFuzzer mutates small inputs far faster."""

PIPELINES = {
    "readme-grammar.txt": "autorotate/resize:fit:1024:768/sharpen:0.6/encode:webp:q=80",
    "readme-json.json": '[{"op": "resize", "mode": "fit", "width": 1024, "height": 768}]',
    "readme-json-short.json": '[{"op": "resize", "mode": "fit", "width": 800}]',
    "readme-model.txt": "model:sr-x2/encode:webp:q=90",
    "readme-thumbnail.txt": "autorotate/thumbnail:1024/encode:avif:q=55",
    "readme-fill.txt": "resize:fill:400:300:gravity=smart/encode:webp",
    "readme-qc.txt": "model:dejpeg/qc:ssim>=0.9:on_fail=flag",
    "readme-gates.txt": "model:sr-x2/qc:consistency>=35:ssimulacra2>=60:on_fail=flag",
    "readme-chain.txt": "model:dejpeg/model:sr-x2-jpeg",
    "readme-sharpen.txt": "autorotate/model:sr-x2/sharpen:0.3/encode:avif",
    "scale.txt": "scale:2:kernel=mitchell",
    "crop-box.txt": "crop:300:200:x=10:y=20/crop:256:256:smart",
    "rotate.txt": "rotate:30:background=#ff000080/flip:v",
    "blur-grey.txt": "blur:1.5/grayscale/noise:4:seed=7",
    "pad.txt": "pad:10:20::5:background=transparent/flatten:#336699",
    "strip.txt": "strip:srgb/thumbnail:200:100:mode=fill:gravity=north:upscale=true",
    "tiff.txt": "encode:tiff:compression=jpeg:q=80:tile=true:pyramid=true:bigtiff=false",
    "png.txt": "model:denoise:tile=256:overlap=16:batch=4/encode:png:effort=9:bitdepth=16",
    "qc.json": '[{"op": "qc", "gates": ["ssim>=0.92", "psnr-y>30"], "on_fail": "flag"},'
               ' {"op": "encode", "format": "jpg", "q": 70}]',
    "auto.txt": "resize:force:64:48:kernel=nearest/encode:auto:q=50",
}


def photo(width: int, height: int, bands: int = 3) -> pyvips.Image:
    from conftest import photo as make

    return make(width, height, bands=bands)


def images() -> dict[str, bytes]:
    """One tiny valid file of each documented format (and a few variants the loaders and the
    colour handling treat differently)."""
    rgb, alpha, grey = photo(16, 16), photo(16, 16, bands=4), photo(16, 16, bands=1)
    turned = rgb.copy()
    turned.set_type(pyvips.GValue.gint_type, "orientation", 6)
    cmyk = photo(16, 16, bands=4).copy(interpretation="cmyk")
    return {
        "jpeg.jpg": rgb.jpegsave_buffer(Q=75),
        "jpeg-progressive.jpg": rgb.jpegsave_buffer(Q=75, interlace=True),
        "jpeg-grey.jpg": grey.jpegsave_buffer(Q=75),
        "jpeg-icc.jpg": photo(8, 8).jpegsave_buffer(Q=75, profile="srgb"),
        "jpeg-orientation-6.jpg": turned.jpegsave_buffer(Q=75),
        "jpeg-cmyk.jpg": photo(8, 8, bands=4).copy(interpretation="cmyk").jpegsave_buffer(Q=75),
        "png.png": rgb.pngsave_buffer(),
        "png-interlaced.png": rgb.pngsave_buffer(interlace=True),
        "png-alpha.png": alpha.pngsave_buffer(),
        "png-16bit-grey.png": grey.colourspace("grey16").pngsave_buffer(),
        "png-palette.png": rgb.pngsave_buffer(palette=True),
        "webp.webp": rgb.webpsave_buffer(Q=75),
        "webp-lossless-alpha.webp": alpha.webpsave_buffer(lossless=True),
        "gif.gif": rgb.gifsave_buffer(),
        "tiff.tif": rgb.tiffsave_buffer(compression="deflate"),
        "tiff-tiled-jpeg.tif": rgb.tiffsave_buffer(compression="jpeg", tile=True,
                                                   tile_width=16, tile_height=16),
        "tiff-cmyk.tif": cmyk.tiffsave_buffer(compression="lzw"),
        "avif.avif": photo(8, 8).heifsave_buffer(compression="av1", effort=0, Q=40),
    }


def hostile() -> dict[str, bytes]:
    """The hostile inputs of tests/hostile.py, built on the spot, that are small enough."""
    import hostile as builders

    kept = {}
    for name, build in builders.BUILDERS.items():
        try:
            data = build()
        except Exception as exc:  # noqa: BLE001  (e.g. hevc.heic needs pillow-heif)
            print(f"  skipped hostile {name}: {type(exc).__name__}: {exc}", file=sys.stderr)
            continue
        if len(data) <= MAX_SEED:
            kept["hostile-" + name] = data
        else:
            print(f"  left out hostile {name}: {len(data):,} bytes", file=sys.stderr)
    return kept


def write(folder: Path, files: dict[str, bytes]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    for name, data in sorted(files.items()):
        (folder / name).write_bytes(data)
        print(f"  {folder.relative_to(ROOT)}/{name}: {len(data):,} bytes")


def dictionary() -> list[str]:
    """The grammar's words, for libFuzzer's ``-dict``: step names, argument names, choices,
    colour names and metrics (a dictionary lookup gives the fuzzer no comparison to learn
    them from)."""
    from pixelmill.pipeline import steps
    from pixelmill.pipeline.kinds import NAMED_COLOURS, Choice, Gates

    words = {"/", ":", "=", ">=", "<=", ">", "<", "#", "[", "]", "{", "}", ",", '"op"', "true",
             "false", "null", "-0", "0.5", "1e-5", "1e999", "e999", "e308", "e-400", "inf", "nan",
             "Infinity", "NaN", "1_0"} | set(NAMED_COLOURS)  # fmt: skip
    for spec in steps().values():
        words.add(spec.name)
        for param in spec.params:
            words.update({param.name + "=", f'"{param.name}"'})
            if isinstance(param.kind, Choice):
                words.update(param.kind.values)
                words.update(param.kind.aliases)
            if isinstance(param.kind, Gates):
                words.update(param.kind.metrics)
    return sorted(words)


def main() -> None:
    from pixelmill.pipeline import Pipeline

    for text in PIPELINES.values():
        Pipeline.parse(text)  # a seed that does not parse would be a poor seed
    write(HERE / "corpus" / "pipeline", {k: v.encode() for k, v in PIPELINES.items()})
    words = dictionary()
    (HERE / "pipeline.dict").write_text(
        "# libFuzzer dictionary of the pipeline grammar (written by make_corpus.py)\n"
        + "".join(f"{json.dumps(word)}\n" for word in words)
    )
    print(f"  fuzz/pipeline.dict: {len(words)} words")
    files = images()
    too_big = {name: len(data) for name, data in files.items() if len(data) > MAX_SEED}
    if too_big:
        raise SystemExit(f"seed files over {MAX_SEED} bytes: {too_big}")
    write(HERE / "corpus" / "loaders", {**files, **hostile()})


if __name__ == "__main__":
    main()
