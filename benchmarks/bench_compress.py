"""Compression to a perceptual target: the per-image search of ``encode:FORMAT:target=`` against
the best single fixed quality, on photographs and on graphics, in WebP, JPEG and AVIF.

For each format and collection (the image files of ``--photos`` and ``--graphics``; alpha is
flattened on white, as ``flatten/encode:…`` does, so every format gets the same pixels):

- **per image**: what a target encode does, step by step as :mod:`pixelmill.engine.targeted`
  does it: the reference image as the engine makes it (``flatten/encode:png``, decoded), the
  faces found by the engine's face finder, their 256-pixel tiles as regions
  (:func:`pixelmill.compress.regions.regions_of`, no relaxed background), then
  :func:`pixelmill.compress.target.search` with the options of ``codecs.prepare``. The
  smallest image of every format and collection is also run through ``pixelmill.api.render`` with
  ``flatten/encode:FORMAT:target=ssimulacra2>=T``, and its quality and size are checked
  against the direct call (``engine_check`` in the JSON).
- **fixed**: the lowest quality, on a grid (every ``--step`` from ``--step`` to 100), at which at
  least ``--share`` (95 %) of the collection's images meet the target on the whole image. The
  search for it starts at the 95th percentile of the per-image qualities and probes whole
  grid points (every image encoded at that quality and scored), stepping by 1, 2, 4 … grid
  steps until it has a passing point with a failing point just below it, then bisects; every
  count it reports was measured.

Every score is against the image the format's encoder is given (``codecs.prepare``: 8 bits
where a source has 16), as the search's own are. Reported: total bytes of each and the saving,
images below the target with each, the trials the search reports and the encoder calls it
really made (counted), the time of the search (and of finding faces) beside one encode at the
fixed quality (seconds per megapixel, wall and CPU, and their ratio), and, when
``butteraugli_main`` is on PATH (Debian: libjxl-devtools), the mean Butteraugli distance
(max-norm) of both outputs against the reference.

Portraits (``--faces``, a face set in JSON: ``{"images": [{"file", "width", "height",
"faces": [[x0, y0, x1, y1], …], "labels"?}]}``, files relative to the JSON's folder): the
images that hold an unmasked face (no ``labels``, or ``without_mask``) at least ``--face-min``
pixels high. Per format, the
per-image target search, then the highest fixed quality whose total size is at most the
search's (the same bytes); for each, the SSIMULACRA 2 of every 256-pixel tile (as
``regions_of`` cuts them) that overlaps a ground-truth face: the minimum, the 10th percentile,
the median and how many fall below the target.

Subsets, so that the default run takes about 15 minutes on 2 shared cores: each format runs on
images of at most ``--max-mp`` megapixels (default 2.5), ``--limit`` of them a collection
(default 20) evenly spread in name order; AVIF, whose encoder takes seconds a megapixel here,
on ``--avif-limit`` images (default 12, also of the portraits) of at most ``--avif-max-mp``
(default 1.0). ``--limit 0 --max-mp 0 --avif-limit 0 --avif-max-mp 0`` takes everything;
``--min-mp 4`` keeps the images the search first tries on a sample
(:mod:`pixelmill.compress.sample`, from 4 megapixels), which the default subsets leave out.
Prints JSON (also written to ``benchmarks/results/compress.json``), then markdown tables.

    python benchmarks/bench_compress.py --photos DATA/photos --graphics DATA/graphics \\
        --faces DATA/faces/facemask_without_mask_only.json
    python benchmarks/bench_compress.py ... --quick        # 3 small images a collection
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyvips
import recording

import pixelmill.compress.target as target_module
from pixelmill import api, codecs
from pixelmill.codecs import save
from pixelmill.compress.regions import Region, regions_of
from pixelmill.compress.target import search
from pixelmill.config import Settings
from pixelmill.engine.imaging import face_finder
from pixelmill.pipeline import Step
from pixelmill.pipeline.formats import FORMATS
from pixelmill.pipeline.kinds import Gate
from pixelmill.quality.metrics import compare

HERE = Path(__file__).resolve().parent
SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff"}
FORMAT_NAMES = ("webp", "jpeg", "avif")
METRIC = "ssimulacra2"

ENCODER_CALLS = [0]
_encoded = target_module.encoded


def _counted(*args: Any, **kwargs: Any) -> bytes:
    """The search's encoder, its calls counted apart from the trials the search reports."""
    ENCODER_CALLS[0] += 1
    return _encoded(*args, **kwargs)


target_module.encoded = _counted


MEASURED = ("compress", "engine/targeted.py", "engine/detection.py", "codecs/save.py",
            "quality/ssimulacra2.py")


SOURCES = recording.sources(MEASURED)
log = recording.log


def spread(items: list, limit: int | None) -> list:
    """``limit`` items evenly spread over ``items`` (in their order); all without a limit."""
    if not limit or limit >= len(items):
        return list(items)
    return [items[math.floor(i * len(items) / limit)] for i in range(limit)]


def image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in SUFFIXES and p.is_file())


def megapixels(path: Path) -> float:
    header = pyvips.Image.new_from_file(str(path))
    return header.width * header.height / 1e6


def subset(files: list[Path], limit: int | None, max_mp: float | None,
           min_mp: float = 0.0) -> list[Path]:  # fmt: skip
    """``limit`` of the files of ``min_mp`` to ``max_mp`` megapixels, evenly spread by name."""
    return spread([p for p in files if (not max_mp or megapixels(p) <= max_mp)
                   and megapixels(p) >= min_mp], limit)  # fmt: skip


@dataclass
class Item:
    """One image: the engine's pixels before encoding, and where a viewer looks."""

    name: str
    path: Path
    image: pyvips.Image
    boxes: list[tuple[float, float, float, float]]
    faces_s: float
    regions: list[Region]
    truth: list[tuple[float, float, float, float]] = field(default_factory=list)
    png: Path | None = None
    cache: dict[tuple[str, int], dict] = field(default_factory=dict)

    @property
    def mp(self) -> float:
        return self.image.width * self.image.height / 1e6


def load(path: Path, threshold: float, settings: Settings, name: str | None = None) -> Item:
    """The image as the engine encodes it (``flatten`` then the encode step), its faces (the
    engine's face finder, timed) and the regions a target encode gives them."""
    outcome = api.render(str(path), "flatten/encode:png:effort=1", settings=settings)
    image = pyvips.Image.new_from_buffer(outcome.data, "").copy_memory()
    began = time.perf_counter()
    found = face_finder(settings, [])(image)
    faces_s = time.perf_counter() - began
    boxes = [d.box for d in found]
    regions = regions_of(image, boxes, [d.label for d in found], threshold, None)
    return Item(name or path.name, path, image, boxes, faces_s, regions)


def prepared(item: Item, name: str) -> tuple[pyvips.Image, dict]:
    """The image and encoder options for ``name`` exactly as ``engine.targeted`` asks for them."""
    step = Step.make("encode", format=name, effort=None, bitdepth=None)
    return codecs.prepare(item.image, FORMATS[name], step, strip=False)


def decode(data: bytes) -> pyvips.Image:
    return target_module.decoded(data)


def score(reference: pyvips.Image, candidate: pyvips.Image) -> float:
    return compare(reference, candidate, [METRIC])[METRIC]


def encode_at(item: Item, name: str, quality: int, scored: bool = True) -> dict:
    """``item`` encoded at a fixed ``quality`` (cached): bytes, encode time and, when
    ``scored``, the whole image's score."""
    key = (name, quality)
    entry = item.cache.get(key)
    if entry is None:
        image, options = prepared(item, name)
        wall, cpu = time.perf_counter(), time.process_time()
        data = save.write_buffer(image, FORMATS[name], {**options, "Q": quality})
        entry = {"quality": quality, "bytes": len(data), "encode_s": time.perf_counter() - wall,
                 "encode_cpu_s": time.process_time() - cpu, "data": data}  # fmt: skip
        item.cache[key] = entry
    if scored and "score" not in entry:
        entry["score"] = score(prepared(item, name)[0], decode(entry["data"]))
    return entry


def run_search(item: Item, name: str, gate: Gate) -> dict:
    """The per-image target search, as the engine runs it, timed and its encodes counted."""
    image, options = prepared(item, name)
    calls = ENCODER_CALLS[0]
    wall, cpu = time.perf_counter(), time.process_time()
    choice = search(image, FORMATS[name], gate, options, item.regions)
    seconds, cpu_s = time.perf_counter() - wall, time.process_time() - cpu
    return {"quality": choice.quality, "score": choice.score, "met": choice.met,
            "trials": choice.trials, "encodes": ENCODER_CALLS[0] - calls, "bytes": choice.bytes,
            "seconds": seconds, "cpu_s": cpu_s, "regions": choice.regions,
            "data": choice.data}  # fmt: skip


def lowest_fixed(items: list[Item], name: str, gate: Gate, share: float, step: int,
                 start: int) -> tuple[int | None, list[dict]]:  # fmt: skip
    """The lowest grid quality at which at least ``share`` of ``items`` meet ``gate`` (None:
    not even 100), and the probes made (quality, images meeting it)."""
    grid = sorted({*range(step, 101, step), 100})
    need = math.ceil(share * len(items))
    probes: dict[int, int] = {}

    def passing(index: int) -> bool:
        quality = grid[index]
        if quality not in probes:
            probes[quality] = sum(gate.passes(encode_at(i, name, quality)["score"])
                                  for i in items)  # fmt: skip
            log(f"  fixed {name} q{quality}: {probes[quality]}/{len(items)} meet {gate}")
        return probes[quality] >= need

    at = min(range(len(grid)), key=lambda k: (grid[k] < start, abs(grid[k] - start)))
    low, high = -1, None  # highest index known to fail, lowest known to pass
    jump = 1
    if passing(at):
        high = at
        while high > 0 and low < 0:
            probe = max(0, high - jump)
            if passing(probe):
                high = probe
            else:
                low = probe
            jump *= 2
    else:
        low = at
        while high is None:
            if low == len(grid) - 1:
                return None, _probes(probes)
            probe = min(len(grid) - 1, low + jump)
            if passing(probe):
                high = probe
            else:
                low = probe
            jump *= 2
    while high - low > 1 and low >= 0:
        middle = (low + high) // 2
        if passing(middle):
            high = middle
        else:
            low = middle
    return grid[high], _probes(probes)


def _probes(probes: dict[int, int]) -> list[dict]:
    return [{"quality": q, "meeting": n} for q, n in sorted(probes.items())]


def equal_bytes(items: list[Item], name: str, budget: int) -> int:
    """The highest quality (1 … 100) whose total size over ``items`` is at most ``budget``
    (1 when even that is over it)."""
    low, high = 1, 100

    def total(quality: int) -> int:
        return sum(encode_at(i, name, quality, scored=False)["bytes"] for i in items)

    if total(high) <= budget:
        return high
    while high - low > 1:
        middle = (low + high) // 2
        if total(middle) <= budget:
            low = middle
        else:
            high = middle
    return low


class Butteraugli:
    """``butteraugli_main`` on PNGs in a temporary folder (None when it is not on PATH)."""

    def __init__(self, folder: Path) -> None:
        self.tool = shutil.which("butteraugli_main")
        self.folder = folder

    def __call__(self, item: Item, data: bytes) -> dict | None:
        if self.tool is None:
            return None
        if item.png is None:
            item.png = self.folder / f"ref-{len(list(self.folder.iterdir()))}.png"
            image = item.image
            if image.format != "uchar":  # what the lossy encoders are given: 8 bits
                image = image.colourspace("srgb").cast("uchar")
            image.pngsave(str(item.png), compression=1)
        distorted = self.folder / "distorted.png"
        decode(data).pngsave(str(distorted), compression=1)
        done = subprocess.run([self.tool, str(item.png), str(distorted)], capture_output=True,
                              text=True, check=False)  # fmt: skip
        lines = done.stdout.split()
        try:
            return {"max": float(lines[0]), "pnorm3": float(lines[-1])}
        except (IndexError, ValueError):
            log(f"butteraugli failed on {item.name}: {done.stderr[-300:]}")
            return None


def butteraugli_version(tool: str | None) -> str | None:
    """Which Butteraugli measured (the Debian package's version when it came from one)."""
    if tool is None:
        return None
    found = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "libjxl-devtools"],
                           capture_output=True, text=True, check=False).stdout  # fmt: skip
    return f"butteraugli_main (libjxl-devtools {found})" if found else "butteraugli_main"


def engine_check(item: Item, name: str, threshold: float, direct: dict,
                 settings: Settings) -> dict:  # fmt: skip
    """The same image through ``pixelmill.api.render``: does the engine choose the same?"""
    pipeline = f"flatten/encode:{name}:target={METRIC}>={threshold:g}"
    outcome = api.render(str(item.path), pipeline, settings=settings)
    chosen = outcome.encode or {}
    return {"image": item.name, "pipeline": pipeline, "quality": chosen.get("quality"),
            "bytes": chosen.get("bytes"), "trials": chosen.get("trials"),
            "seconds": chosen.get("seconds"), "outcome_seconds": round(outcome.seconds, 3),
            "same": chosen.get("quality") == direct["quality"]
            and chosen.get("bytes") == direct["bytes"]}  # fmt: skip


def pooled(values: list[float], weights: list[float]) -> float:
    return sum(values) / sum(weights) if sum(weights) else float("nan")


def collection_run(items: list[Item], name: str, collection: str, args: argparse.Namespace,
                   gate: Gate, ba: Butteraugli, settings: Settings) -> dict:  # fmt: skip
    """One format on one collection: per-image search, fixed baseline, the figures."""
    log(f"{collection} / {name}: {len(items)} images, {sum(i.mp for i in items):.1f} MP")
    began = time.perf_counter()
    rows = []
    for item in items:
        found = run_search(item, name, gate)
        rows.append({"image": item.name, "mp": round(item.mp, 4), "faces": len(item.boxes),
                     "face_tiles": len(item.regions), "faces_s": item.faces_s,
                     "search": found})  # fmt: skip
        log(f"  {item.name}: q{found['quality']} {found['score']:.2f} "
            f"{'met' if found['met'] else 'MISSED'} {found['trials']} trials "
            f"{found['encodes']} encodes {found['bytes']:,} B {found['seconds']:.2f} s")
    smallest = min(range(len(items)), key=lambda k: items[k].mp)
    check = engine_check(items[smallest], name, gate.threshold, rows[smallest]["search"],
                         settings)  # fmt: skip
    log(f"  engine check {check}")
    qualities = sorted(r["search"]["quality"] or 100 for r in rows)
    start = qualities[max(0, math.ceil(args.share * len(rows)) - 1)]
    fixed_q, probes = lowest_fixed(items, name, gate, args.share, args.step, start)
    reached = fixed_q is not None
    fixed_q = fixed_q or 100
    if not any(p["quality"] == 100 for p in probes) and not reached:
        probes.append({"quality": 100, "meeting": sum(
            gate.passes(encode_at(i, name, 100)["score"]) for i in items)})
    for item, row in zip(items, rows):
        fixed = encode_at(item, name, fixed_q)
        row["fixed"] = {k: v for k, v in fixed.items() if k != "data"}
        row["butteraugli"] = {"search": ba(item, row["search"]["data"]),
                              "fixed": ba(item, fixed["data"])}  # fmt: skip
        row["search"] = {k: v for k, v in row["search"].items() if k != "data"}
    mp = [r["mp"] for r in rows]
    search_s = [r["search"]["seconds"] for r in rows]
    faces_s = [r["faces_s"] for r in rows]
    encode_s = [r["fixed"]["encode_s"] for r in rows]
    bytes_fixed = sum(r["fixed"]["bytes"] for r in rows)
    bytes_search = sum(r["search"]["bytes"] for r in rows)
    butter = {which: [r["butteraugli"][which]["max"] for r in rows
                      if r["butteraugli"][which] is not None] for which in ("search", "fixed")}
    summary = {
        "format": name, "collection": collection, "images": len(rows), "mp": round(sum(mp), 2),
        "fixed_quality": fixed_q, "fixed_reached": reached, "probes": probes,
        "fixed_meeting": next(p["meeting"] for p in probes if p["quality"] == fixed_q),
        "bytes_fixed": bytes_fixed, "bytes_search": bytes_search,
        "saved_pct": 100 * (1 - bytes_search / bytes_fixed),
        "below_fixed": sum(not gate.passes(r["fixed"]["score"]) for r in rows),
        "below_search": sum(not gate.passes(r["search"]["score"]) for r in rows),
        "missed_search": sum(not r["search"]["met"] for r in rows),
        "images_with_faces": sum(1 for r in rows if r["faces"]),
        "trials_mean": statistics.mean(r["search"]["trials"] for r in rows),
        "trials_max": max(r["search"]["trials"] for r in rows),
        "encodes_mean": statistics.mean(r["search"]["encodes"] for r in rows),
        "quality_search": {"min": qualities[0], "median": statistics.median(qualities),
                           "max": qualities[-1]},
        "search_s_per_mp": pooled(search_s, mp),
        "search_cpu_s_per_mp": pooled([r["search"]["cpu_s"] for r in rows], mp),
        "faces_s_per_mp": pooled(faces_s, mp),
        "encode_s_per_mp": pooled(encode_s, mp),
        "encode_cpu_s_per_mp": pooled([r["fixed"]["encode_cpu_s"] for r in rows], mp),
        "ratio": pooled(search_s, encode_s),
        "ratio_with_faces": pooled([s + f for s, f in zip(search_s, faces_s)], encode_s),
        "ratio_cpu": pooled([r["search"]["cpu_s"] for r in rows],
                            [r["fixed"]["encode_cpu_s"] for r in rows]),
        "ratio_median": statistics.median(s / e for s, e in zip(search_s, encode_s)),
        "butteraugli_search": statistics.mean(butter["search"]) if butter["search"] else None,
        "butteraugli_fixed": statistics.mean(butter["fixed"]) if butter["fixed"] else None,
        "engine_check": check, "wall_s": time.perf_counter() - began,
        "load_average_after": os.getloadavg(),
    }  # fmt: skip
    log(f"  => fixed q{fixed_q}: {bytes_fixed:,} B, per image {bytes_search:,} B, "
        f"saved {summary['saved_pct']:.1f} %")
    return {"summary": summary, "images": rows}


def face_tiles(item: Item, threshold: float) -> list[Region]:
    """The 256-pixel tiles that overlap a ground-truth face (as ``regions_of`` cuts them)."""
    return regions_of(item.image, item.truth, ["face"] * len(item.truth), threshold, None)


def portraits_run(items: list[Item], name: str, gate: Gate) -> dict:
    """Per-image target against the highest fixed quality of the same total bytes: the
    scores of the face tiles under each."""
    log(f"portraits / {name}: {len(items)} images")
    searched = [run_search(item, name, gate) for item in items]
    budget = sum(s["bytes"] for s in searched)
    same_q = equal_bytes(items, name, budget)
    tiles: dict[str, list[float]] = {"search": [], "fixed": []}
    whole: dict[str, list[float]] = {"search": [], "fixed": []}
    rows = []
    for item, found in zip(items, searched):
        fixed = encode_at(item, name, same_q)
        outputs = {"search": decode(found["data"]), "fixed": decode(fixed["data"])}
        reference = prepared(item, name)[0]  # what the search scores against (8 bits for AVIF)
        scores = {}
        for which, candidate in outputs.items():
            scores[which] = [score(reference.crop(*t.box), candidate.crop(*t.box))
                             for t in face_tiles(item, gate.threshold)]  # fmt: skip
            tiles[which] += scores[which]
            whole[which].append(score(reference, candidate))
        rows.append({"image": item.name, "faces": len(item.truth), "found": len(item.boxes),
                     "quality_search": found["quality"], "bytes_search": found["bytes"],
                     "bytes_fixed": fixed["bytes"], "face_tiles": scores})  # fmt: skip

    def figures(values: list[float]) -> dict:
        ordered = sorted(values)
        return {"min": ordered[0], "p10": ordered[int(0.1 * (len(ordered) - 1))],
                "median": statistics.median(ordered),
                "below": sum(not gate.passes(v) for v in ordered)}  # fmt: skip

    summary = {
        "format": name, "images": len(items), "faces": sum(len(i.truth) for i in items),
        "face_tiles": len(tiles["search"]), "bytes_search": budget,
        "fixed_quality_same_bytes": same_q,
        "bytes_fixed": sum(r["bytes_fixed"] for r in rows),
        "quality_search": {"min": min(s["quality"] or 100 for s in searched),
                           "median": statistics.median(s["quality"] or 100 for s in searched),
                           "max": max(s["quality"] or 100 for s in searched)},
        "tiles_search": figures(tiles["search"]), "tiles_fixed": figures(tiles["fixed"]),
        "whole_search": figures(whole["search"]), "whole_fixed": figures(whole["fixed"]),
        "trials_mean": statistics.mean(s["trials"] for s in searched),
    }  # fmt: skip
    log(f"  => same bytes q{same_q}: face tiles min {summary['tiles_search']['min']:.2f} "
        f"(per image) vs {summary['tiles_fixed']['min']:.2f} (fixed)")
    return {"summary": summary, "images": rows}


def portrait_items(path: Path, minimum: int, threshold: float, settings: Settings,
                   limit: int | None) -> list[Item]:  # fmt: skip
    """The images of a face set with an unmasked face at least ``minimum`` pixels high, with
    those faces as ground truth."""
    chosen = []
    for entry in json.loads(path.read_text())["images"]:
        labels = entry.get("labels") or ["without_mask"] * len(entry["faces"])
        faces = [tuple(map(float, box)) for box, label in zip(entry["faces"], labels)
                 if label == "without_mask" and box[3] - box[1] >= minimum]  # fmt: skip
        if faces:
            chosen.append((entry["file"], faces))
    items = []
    for file, faces in spread(chosen, limit):
        item = load(path.parent / file, threshold, settings, name=Path(file).name)
        item.truth = faces
        items.append(item)
    return items


def placeholder(args: argparse.Namespace) -> str:
    """The command line with the data's paths replaced by DATA/…, for the record."""
    given = {str(getattr(args, k)): f"DATA/{Path(str(getattr(args, k))).name}"
             for k in ("photos", "graphics", "faces") if getattr(args, k) is not None}
    words = [given.get(w, w) for w in sys.argv[1:]]
    return " ".join(["python benchmarks/bench_compress.py", *words])


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, help="folder of photographs")
    parser.add_argument("--graphics", type=Path, help="folder of screenshots and charts")
    parser.add_argument("--faces", type=Path, help="face set JSON (portraits measure)")
    parser.add_argument("--formats", default=",".join(FORMAT_NAMES))
    parser.add_argument("--target", type=float, default=80.0, help="ssimulacra2 >= this")
    parser.add_argument("--share", type=float, default=0.95,
                        help="share of images the fixed quality must bring to the target")
    parser.add_argument("--step", type=int, default=2, help="grid step of the fixed quality")
    parser.add_argument("--limit", type=int, default=20,
                        help="images per collection (WebP, JPEG; 0: all)")
    parser.add_argument("--max-mp", type=float, default=2.5,
                        help="largest image taken, megapixels (0: any)")
    parser.add_argument("--min-mp", type=float, default=0.0,
                        help="smallest image taken, megapixels (for the sampled search of "
                        "large images)")
    parser.add_argument("--avif-limit", type=int, default=12,
                        help="images per collection and portraits for AVIF (slow encoder)")
    parser.add_argument("--avif-max-mp", type=float, default=1.0,
                        help="largest image taken for AVIF, megapixels")
    parser.add_argument("--portrait-limit", type=int, help="portraits (WebP, JPEG)")
    parser.add_argument("--face-min", type=int, default=60, help="smallest face height, px")
    parser.add_argument("--no-butteraugli", action="store_true")
    parser.add_argument("--quick", action="store_true", help="3 images a collection")
    parser.add_argument("--out", type=Path, help="results JSON")
    args = parser.parse_args()
    if args.quick:
        args.limit, args.avif_limit, args.portrait_limit = 3, 2, 4
        args.max_mp, args.avif_max_mp = 1.0, 0.5
    if args.out is None:
        args.out = (HERE / "work" / "compress-quick.json" if args.quick
                    else HERE / "results" / "compress.json")  # fmt: skip
    if not (args.photos or args.graphics or args.faces):
        parser.error("give --photos, --graphics and/or --faces")
    return args


def main() -> None:
    args = parse()
    settings = Settings.load()
    gate = Gate(METRIC, ">=", args.target)
    formats = [f for f in args.formats.split(",") if f]
    began = time.perf_counter()
    load_before = os.getloadavg()
    results: dict[str, Any] = {"target": str(gate), "share": args.share, "step": args.step,
                               "runs": [], "portraits": []}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-compress-") as temp:
        ba = Butteraugli(Path(temp))
        if args.no_butteraugli:
            ba.tool = None
        results["butteraugli"] = butteraugli_version(ba.tool)
        for collection, folder in (("photos", args.photos), ("graphics", args.graphics)):
            if folder is None:
                continue
            files = image_files(folder)
            wanted = {n: subset(files, args.limit, args.max_mp, args.min_mp) if n != "avif" else
                      subset(files, args.avif_limit, min(args.max_mp or math.inf,
                                                         args.avif_max_mp or math.inf),
                             args.min_mp)
                      for n in formats}  # fmt: skip
            wanted = {n: chosen for n, chosen in wanted.items() if chosen}
            needed = sorted({p for chosen in wanted.values() for p in chosen})
            items = {}
            for path in needed:
                items[path] = load(path, args.target, settings)
            log(f"{collection}: {len(items)} images loaded, faces found in "
                f"{sum(1 for i in items.values() if i.boxes)}")
            for name in wanted:
                results["runs"].append(collection_run([items[p] for p in wanted[name]], name,
                                                      collection, args, gate, ba, settings))
            del items
        if args.faces is not None:
            everyone = portrait_items(args.faces, args.face_min, args.target, settings,
                                      args.portrait_limit)  # fmt: skip
            for name in formats:
                chosen = spread(everyone, args.avif_limit) if name == "avif" else everyone
                results["portraits"].append(portraits_run(chosen, name, gate))
    results["subsets"] = {"limit": args.limit, "max_mp": args.max_mp, "min_mp": args.min_mp,
                          "avif_limit": args.avif_limit, "avif_max_mp": args.avif_max_mp,
                          "portrait_limit": args.portrait_limit, "face_min": args.face_min}
    results["seconds"] = time.perf_counter() - began
    results["load_average_before"] = load_before
    results["load_average_after"] = os.getloadavg()
    data_names = {k: Path(str(getattr(args, k))).name for k in ("photos", "graphics", "faces")
                  if getattr(args, k) is not None}  # fmt: skip
    record = recording.save(args.out, {"command": placeholder(args), "data": data_names,
                                       "sources": SOURCES, **results}, pyvips=pyvips.__version__,
                            libvips=".".join(str(pyvips.version(i)) for i in range(3)))  # fmt: skip
    print(json.dumps({"command": record["command"],
                      "summary": [r["summary"] for r in results["runs"]],
                      "portraits": [p["summary"] for p in results["portraits"]]}, indent=1))
    print()
    print(tables(results))


def tables(results: dict) -> str:
    main_rows = []
    for run in results["runs"]:
        s = run["summary"]
        ba_fixed, ba_search = s["butteraugli_fixed"], s["butteraugli_search"]
        main_rows.append([
            s["format"], s["collection"], s["images"], f"{s['mp']:.1f}",
            f"{s['fixed_quality']} ({s['fixed_meeting']}/{s['images']})",
            "–".join(f"{s['quality_search'][k]:g}" for k in ("min", "median", "max")),
            f"{s['bytes_fixed']:,}", f"{s['bytes_search']:,}", f"{s['saved_pct']:.1f}",
            s["below_fixed"], s["below_search"], f"{s['trials_mean']:.2f}",
            f"{s['encodes_mean']:.2f}", f"{s['search_s_per_mp']:.2f}",
            f"{s['faces_s_per_mp']:.2f}", f"{s['encode_s_per_mp']:.3f}", f"{s['ratio']:.1f}",
            f"{s['ratio_with_faces']:.1f}",
            None if ba_fixed is None else f"{ba_fixed:.2f}",
            None if ba_search is None else f"{ba_search:.2f}",
        ])  # fmt: skip
    out = [recording.table(
        ["format", "collection", "images", "MP", "fixed q (images meeting)",
         "per-image q min–median–max",
         "bytes fixed", "bytes per-image", "saved %", "below fixed", "below per-image",
         "trials / image", "encodes / image", "search s/MP", "faces s/MP", "fixed encode s/MP",
         "search / encode", "(search + faces) / encode", "butteraugli fixed",
         "butteraugli per-image"], main_rows, text=2)]  # fmt: skip
    if results["portraits"]:
        rows = []
        for run in results["portraits"]:
            s = run["summary"]
            rows.append([
                s["format"], s["images"], s["face_tiles"], f"{s['bytes_search']:,}",
                f"{s['bytes_fixed']:,}", s["fixed_quality_same_bytes"],
                f"{s['tiles_search']['min']:.2f}", f"{s['tiles_fixed']['min']:.2f}",
                f"{s['tiles_search']['p10']:.2f}", f"{s['tiles_fixed']['p10']:.2f}",
                f"{s['tiles_search']['median']:.2f}", f"{s['tiles_fixed']['median']:.2f}",
                s["tiles_search"]["below"], s["tiles_fixed"]["below"],
            ])  # fmt: skip
        out.append(recording.table(
            ["format", "portraits", "face tiles", "bytes per-image", "bytes fixed",
             "fixed q (same bytes)", "min face tile per-image", "min face tile fixed",
             "p10 per-image", "p10 fixed", "median per-image", "median fixed",
             "tiles below per-image", "tiles below fixed"], rows))  # fmt: skip
    return "\n\n".join(out)


if __name__ == "__main__":
    main()
