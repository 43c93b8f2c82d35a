"""Face detection (the engine's ``faces`` model, MTCNN): recall at a fixed precision and at the
default threshold on labelled face sets, its speed through the engine, and the tiled check on
a 20,000 × 20,000 mosaic of portraits.

Face sets are JSON, ``{"images": [{"file", "width", "height", "faces": [[x0, y0, x1, y1], …],
"labels"?}]}``, files relative to the JSON's folder:

- ``--dlib``: dlib's example faces (9 images, 43 faces);
- ``--facemask``: the Kaggle face-mask set (853 images, 4,072 faces, 79 % masked), scored four
  ways: every face; faces at least ``--min-face`` pixels high (20, the detector's smallest); of
  those, the unmasked ones (``without_mask``) and the masked ones (``with_mask`` and
  ``mask_weared_incorrect``). Faces left out of a subset are *ignored*, as in WIDER FACE's
  protocol: a detection that matches one counts neither way.

Every image is searched with :func:`pixelmill.engine.detection.find` on a pyvips image in
memory, once at the default threshold (timed: megapixels a second, the JSON decoding and
loading excluded) and once at ``--sweep-from`` to sweep the threshold. Detections are matched
to the faces per image, best score first, each to the unmatched face it overlaps most with
IoU ≥ 0.5 (also given for 0.3: MTCNN's boxes are square, the sets' are tight boxes that
include masks); a second detection of a face is a false positive. Reported: recall at the
highest-recall threshold with precision ≥ ``--precision`` (0.9), and precision and recall at
the default threshold (0.7). The masked and unmasked subsets are read at the size-filtered
set's threshold (one operating point): their own precision would count every box of the
other kind that misses IoU 0.5 as a false positive.

The mosaic (``--portraits``, default the face-mask set): a square crop around each face at
least ``--portrait-face`` pixels high (twice its size), scaled to ``--tile`` (256) pixels,
mirrored every other round, placed row by row into a ``--side`` × ``--side`` image (black
past the last whole tile) and written as an uncompressed tiled TIFF in a temporary folder.
A fresh process opens it and runs ``find(mosaic, detector)`` (tiled by the engine), timed,
its peak RSS sampled with psutil every 50 ms (and VmHWM). The reference is ``detector.find`` on
each placed portrait alone, moved to where it was placed. Reported: the reference's faces
matched by the tiled run (IoU ≥ 0.5), what the tiled run found beyond them, time and memory.
Beside it, on the top-left ``--whole-side``² (4,096²) of the mosaic, the detector run on the
whole crop at once against ``find`` on the same crop (the tiling alone), and against the
portraits searched alone (the neighbours' context alone).

    python benchmarks/bench_detect.py --dlib DATA/faces/dlib.json \\
        --facemask DATA/faces/facemask.json
    python benchmarks/bench_detect.py ... --side 10000    # a 100-megapixel mosaic
    python benchmarks/bench_detect.py ... --quick         # 100 face-mask images, 4,000²
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyvips
import recording

from pixelmill.config import Settings
from pixelmill.engine.detection import find
from pixelmill.models.detect import Detection, detector_for

HERE = Path(__file__).resolve().parent
MASKED = ("with_mask", "mask_weared_incorrect")
DEFAULT_THRESHOLD = 0.7
"""The MTCNN layout's default O-Net threshold (``models/detect.py``), for the record."""

Box = tuple[float, float, float, float]


MEASURED = ("engine/detection.py", "engine/tiled.py", "models/detect.py")


SOURCES = recording.sources(MEASURED)
log = recording.log


def overlaps(box: Box, faces: np.ndarray) -> np.ndarray:
    """Intersection over union of ``box`` with each of ``faces`` (N × 4)."""
    if not len(faces):
        return np.zeros(0)
    w = np.minimum(box[2], faces[:, 2]) - np.maximum(box[0], faces[:, 0])
    h = np.minimum(box[3], faces[:, 3]) - np.maximum(box[1], faces[:, 1])
    inter = np.clip(w, 0, None) * np.clip(h, 0, None)
    areas = (faces[:, 2] - faces[:, 0]) * (faces[:, 3] - faces[:, 1])
    union = (box[2] - box[0]) * (box[3] - box[1]) + areas - inter
    return inter / np.maximum(union, 1e-9)


def matched(found: list[tuple[Box, float]], care: list[Box], ignore: list[Box],
            least: float) -> list[tuple[float, bool]]:  # fmt: skip
    """(score, true positive) of each detection not ignored, greedy best score first: each
    detection takes the unmatched face it overlaps most, with IoU ≥ ``least``."""
    return pairing(found, care, ignore, least)[0]


def greedy(found: list[tuple[Box, float]], care: list[Box], least: float
           ) -> tuple[list[tuple[Box, float, bool]], np.ndarray]:  # fmt: skip
    """Each detection, best score first, and whether it took the unmatched face of ``care`` it
    overlaps most, with IoU ≥ ``least``; and which of ``care`` were taken."""
    faces = np.asarray(care, np.float64).reshape(-1, 4)
    used = np.zeros(len(faces), bool)
    out = []
    for box, score in sorted(found, key=lambda f: -f[1]):
        overlap = np.where(used, -1.0, overlaps(box, faces))
        best = int(np.argmax(overlap)) if len(overlap) else -1
        hit = bool(best >= 0 and overlap[best] >= least)
        if hit:
            used[best] = True
        out.append((box, score, hit))
    return out, used


def pairing(found: list[tuple[Box, float]], care: list[Box], ignore: list[Box],
            least: float) -> tuple[list[tuple[float, bool]], np.ndarray]:  # fmt: skip
    """:func:`matched`, and which of ``care`` were matched."""
    ignored = np.asarray(ignore, np.float64).reshape(-1, 4)
    paired, used = greedy(found, care, least)
    out = [(score, hit) for box, score, hit in paired
           if hit or not (overlaps(box, ignored) >= least).any()]  # fmt: skip
    return out, used


def curve(scored: list[tuple[float, bool]], faces: int, precision: float) -> dict:
    """Recall at the lowest threshold whose precision is at least ``precision``, and
    precision and recall at the default threshold."""
    ordered = sorted(scored, key=lambda s: -s[0])
    tp = fp = 0
    best = {"recall": 0.0, "precision": None, "threshold": None}
    for index, (score, hit) in enumerate(ordered):
        tp, fp = tp + hit, fp + (not hit)
        if index + 1 < len(ordered) and ordered[index + 1][0] == score:
            continue  # a threshold keeps every tie
        if tp / (tp + fp) >= precision and tp / faces > best["recall"]:
            best = {"recall": tp / faces, "precision": tp / (tp + fp), "threshold": score}
    default = [hit for score, hit in ordered if score >= DEFAULT_THRESHOLD]
    return {
        "at_precision": best,
        "default": {"recall": sum(default) / faces if faces else None,
                    "precision": sum(default) / len(default) if default else None,
                    "detections": len(default)},
        "max_recall": sum(hit for _, hit in ordered) / faces if faces else None,
    }  # fmt: skip


def at_threshold(scored: list[tuple[float, bool]], faces: int, threshold: float) -> dict:
    kept = [hit for score, hit in scored if score >= threshold]
    return {"threshold": threshold, "recall": sum(kept) / faces if faces else None,
            "precision": sum(kept) / len(kept) if kept else None}  # fmt: skip


def subsets(entry: dict, least: int) -> dict[str, tuple[list[Box], list[Box]]]:
    """(faces that count, faces ignored) of an image, by subset."""
    faces = [tuple(map(float, box)) for box in entry["faces"]]
    labels = entry.get("labels") or ["face"] * len(faces)
    big = [h >= least for h in (box[3] - box[1] for box in faces)]
    masked = [label in MASKED for label in labels]

    def split(keep: list[bool]) -> tuple[list[Box], list[Box]]:
        return ([f for f, k in zip(faces, keep) if k], [f for f, k in zip(faces, keep) if not k])

    out = {"all": split([True] * len(faces)), f">={least}px": split(big)}
    if entry.get("labels"):
        out[f">={least}px unmasked"] = split([b and not m for b, m in zip(big, masked)])
        out[f">={least}px masked"] = split([b and m for b, m in zip(big, masked)])
    return out


def face_set(name: str, path: Path, detector: Any, args: argparse.Namespace) -> dict:
    """Every image of a face set through ``find``: timings, and the curve of each subset."""
    entries = json.loads(path.read_text())["images"]
    if args.quick and len(entries) > 100:
        entries = entries[:100]
    log(f"{name}: {len(entries)} images")
    seconds, megapixels, cpu = 0.0, 0.0, 0.0
    per_image = []
    for k, entry in enumerate(entries):
        image = pyvips.Image.new_from_file(str(path.parent / entry["file"])).copy_memory()
        wall, started = time.perf_counter(), time.process_time()
        default = find(image, detector)
        seconds += time.perf_counter() - wall
        cpu += time.process_time() - started
        megapixels += image.width * image.height / 1e6
        low = find(image, detector, threshold=args.sweep_from)
        if not _same(default, [d for d in low if d.score >= DEFAULT_THRESHOLD]):
            log(f"  {entry['file']}: the sweep at {DEFAULT_THRESHOLD} differs from the default run")
        per_image.append((entry, [(d.box, d.score) for d in low], len(default)))
        if (k + 1) % 100 == 0:
            log(f"  {k + 1} images, {megapixels / seconds:.2f} MP/s")
    results: dict[str, dict] = {}
    names = list(subsets(entries[0], args.min_face))
    for subset in names:
        row: dict[str, Any] = {"labelled": subset.endswith("masked")}
        for least in (0.5, 0.3):
            scored, faces = [], 0
            for entry, found, _ in per_image:
                care, ignore = subsets(entry, args.min_face)[subset]
                faces += len(care)
                scored += matched(found, care, ignore, least)
            row[f"iou{least}"] = curve(scored, faces, args.precision)
            row[f"scored{least}"] = scored
        row["faces"] = faces
        results[subset] = row
    # One operating point for the label subsets: the size-filtered set's threshold at the
    # precision asked for (a subset's own precision counts the other faces' boxes as misses).
    base = results[names[1] if len(names) > 1 else names[0]]["iou0.5"]["at_precision"]
    for row in results.values():
        for least in (0.5, 0.3):
            scored = row.pop(f"scored{least}")
            if base["threshold"] is not None:
                row[f"iou{least}"]["at_operating_point"] = at_threshold(
                    scored, row["faces"], base["threshold"])
    return {"set": name, "images": len(entries), "megapixels": megapixels,
            "seconds": seconds, "cpu_s": cpu, "mp_per_s": megapixels / seconds,
            "found_default": sum(n for *_, n in per_image), "subsets": results}  # fmt: skip


def _same(a: list[Detection], b: list[Detection]) -> bool:
    key = sorted((round(d.score, 5), tuple(round(v, 2) for v in d.box)) for d in a)
    return key == sorted((round(d.score, 5), tuple(round(v, 2) for v in d.box)) for d in b)


def portraits(path: Path, tile: int, least: int) -> list[np.ndarray]:
    """A ``tile``-pixel square around every face at least ``least`` pixels high (twice its
    size, kept inside the image), as uint8 RGB."""
    out = []
    for entry in json.loads(path.read_text())["images"]:
        faces = [box for box in entry["faces"] if box[3] - box[1] >= least]
        if not faces:
            continue
        image = pyvips.Image.new_from_file(str(path.parent / entry["file"]))
        if image.hasalpha():
            image = image.flatten(background=[255, 255, 255])
        image = image[:3].copy_memory() if image.bands >= 3 else image.colourspace("srgb")
        for x0, y0, x1, y1 in faces:
            side = min(2 * max(x1 - x0, y1 - y0), image.width, image.height)
            left = int(min(max((x0 + x1) / 2 - side / 2, 0), image.width - side))
            top = int(min(max((y0 + y1) / 2 - side / 2, 0), image.height - side))
            crop = image.crop(left, top, int(side), int(side))
            scaled = crop.thumbnail_image(tile, height=tile, size="force")
            out.append(np.ascontiguousarray(scaled.numpy()[..., :3].astype(np.uint8)))
    return out


CHILD = """
import json, sys, threading, time
import psutil, pyvips
from pixelmill.config import Settings
from pixelmill.engine.detection import find
from pixelmill.models.detect import detector_for

path, out = sys.argv[1], sys.argv[2]


def hwm():  # this process's own peak (ru_maxrss keeps the peak of the process that forked it)
    status = open("/proc/self/status").read().splitlines()
    return int(next(l for l in status if l.startswith("VmHWM")).split()[1]) / 1024


detector = detector_for("faces", Settings.load())
mosaic = pyvips.Image.new_from_file(path)
process = psutil.Process()
before = process.memory_info().rss
peak = [before]
done = threading.Event()

def sample():
    while not done.wait(0.05):
        peak[0] = max(peak[0], process.memory_info().rss)

watcher = threading.Thread(target=sample, daemon=True)
watcher.start()
wall, cpu = time.perf_counter(), time.process_time()
found = find(mosaic, detector)
seconds, cpu_s = time.perf_counter() - wall, time.process_time() - cpu
done.set()
watcher.join()
with open(out, "w") as f:
    json.dump([[*d.box, d.score] for d in found], f)
print(json.dumps({"seconds": seconds, "cpu_s": cpu_s, "detections": len(found),
                  "rss_before_mb": before / 2**20, "peak_rss_mb": max(peak) / 2**20,
                  "vm_hwm_mb": hwm(), "width": mosaic.width, "height": mosaic.height}))
"""


def mosaic(args: argparse.Namespace, detector: Any) -> dict:
    """The tiled check: the mosaic written, searched in a fresh process, compared with each
    placed portrait searched alone."""
    began = time.perf_counter()
    pictures = portraits(args.portraits, args.tile, args.portrait_face)
    across = args.side // args.tile
    count = across * across
    log(f"mosaic: {len(pictures)} portraits, {count} placed in {args.side}² "
        f"({time.perf_counter() - began:.0f} s)")
    variants: dict[tuple[int, bool], list[tuple[Box, float]]] = {}
    reference: list[tuple[Box, float]] = []
    rows = []
    wall = 0.0
    for k in range(count):
        index, mirrored = k % len(pictures), (k // len(pictures)) % 2 == 1
        if (index, mirrored) not in variants:
            array = pictures[index][:, ::-1] if mirrored else pictures[index]
            started = time.perf_counter()
            variants[(index, mirrored)] = [(d.box, d.score) for d in
                                           detector.find(np.ascontiguousarray(array))]
            wall += time.perf_counter() - started
        dx, dy = (k % across) * args.tile, (k // across) * args.tile
        reference += [((b[0] + dx, b[1] + dy, b[2] + dx, b[3] + dy), s)
                      for b, s in variants[(index, mirrored)]]
    log(f"mosaic: reference {len(reference)} faces in {len(variants)} distinct portraits "
        f"({wall:.0f} s)")
    for r in range(across):
        row = []
        for c in range(across):
            k = r * across + c
            index, mirrored = k % len(pictures), (k // len(pictures)) % 2 == 1
            image = pyvips.Image.new_from_array(pictures[index], interpretation="srgb")
            row.append(image.fliphor() if mirrored else image)
        rows.append(pyvips.Image.arrayjoin(row, across=across))
    whole = pyvips.Image.arrayjoin(rows, across=1).embed(0, 0, args.side, args.side)
    with tempfile.TemporaryDirectory(prefix="bench-detect-", dir=args.work) as temp:
        path, out = Path(temp) / "mosaic.tif", Path(temp) / "found.json"
        started = time.perf_counter()
        whole.copy(interpretation="srgb").tiffsave(str(path), tile=True, tile_width=512,
                                                   tile_height=512, compression="none",
                                                   bigtiff=True)  # fmt: skip
        written = time.perf_counter() - started
        log(f"mosaic: written ({path.stat().st_size / 2**20:.0f} MiB, {written:.0f} s); "
            "searching it in a fresh process")
        del rows, whole
        _check_placement(path, pictures, across, args.tile)
        crop = None
        if args.whole_side:
            crop = whole_against_tiled(path, min(args.whole_side, args.side), detector,
                                       reference)  # fmt: skip
            log(f"mosaic: tiled against whole on a crop: {crop}")
        done = subprocess.run([sys.executable, "-c", CHILD, str(path), str(out)],
                              capture_output=True, text=True, check=False)  # fmt: skip
        if done.returncode:
            raise SystemExit(f"the tiled run failed:\n{done.stderr[-3000:]}")
        run = json.loads(done.stdout.strip().splitlines()[-1])
        tiled = [(tuple(d[:4]), d[4]) for d in json.loads(out.read_text())]
    used = pairing(tiled, [b for b, _ in reference], [], 0.5)[1]
    found_ref = int(used.sum())
    missed = [(b, sc) for (b, sc), hit in zip(reference, used) if not hit]
    extra_boxes = _extras(tiled, [b for b, _ in reference], 0.5)
    close = matched(tiled, [b for b, _ in reference], [], 0.9)
    megapixels = args.side * args.side / 1e6
    return {
        "side": args.side, "tile": args.tile, "portraits": len(pictures), "placed": count,
        "distinct": len(variants), "reference_faces": len(reference),
        "tiled_faces": len(tiled), "matched": found_ref,
        "matched_share": found_ref / len(reference) if reference else None,
        "matched_iou_0.9": sum(hit for _, hit in close),
        "missed": len(missed),
        "missed_at_portrait_edge": sum(_at_edge(b, args.tile) for b, _ in missed),
        "missed_scores": _quartiles([sc for _, sc in missed]),
        "reference_scores": _quartiles([sc for _, sc in reference]),
        "extra": len(extra_boxes),
        "extra_at_portrait_edge": sum(_at_edge(b, args.tile) for b, _ in extra_boxes),
        "extra_scores": _quartiles([sc for _, sc in extra_boxes]),
        "extra_median_score": statistics.median([sc for _, sc in extra_boxes])
        if extra_boxes else None,
        "reference_seconds_distinct": wall, "write_seconds": written,
        "megapixels": megapixels, "mp_per_s": megapixels / run["seconds"], **run,
        "crop": crop,
    }  # fmt: skip


def _extras(found: list[tuple[Box, float]], care: list[Box], least: float
            ) -> list[tuple[Box, float]]:  # fmt: skip
    """The detections that match none of ``care`` (greedy, best score first)."""
    return [(box, score) for box, score, hit in greedy(found, care, least)[0] if not hit]


def _at_edge(box: Box, tile: int, within: float = 3.0) -> bool:
    """Whether a box touches the border of the portrait its centre lies in."""
    col, row = int((box[0] + box[2]) / 2 // tile), int((box[1] + box[3]) / 2 // tile)
    return (box[0] - col * tile < within or (col + 1) * tile - box[2] < within
            or box[1] - row * tile < within or (row + 1) * tile - box[3] < within)


def _quartiles(values: list[float]) -> list[float] | None:
    if not values:
        return None
    ordered = sorted(values)
    return [round(ordered[int(q * (len(ordered) - 1))], 4) for q in (0, 0.25, 0.5, 0.75, 1)]


def whole_against_tiled(path: Path, side: int, detector: Any,
                        reference: list[tuple[Box, float]]) -> dict:  # fmt: skip
    """On the top-left ``side``² of the mosaic: the detector run on the whole crop at once
    against the engine's tiled ``find`` of the same crop (the tiling alone), and the whole
    crop against the portraits searched alone (the neighbours' context alone)."""
    image = pyvips.Image.new_from_file(str(path)).crop(0, 0, side, side).copy_memory()
    array = np.ascontiguousarray(image.numpy()[..., :3])
    started = time.perf_counter()
    whole = [(d.box, d.score) for d in detector.find(array)]
    whole_s = time.perf_counter() - started
    started = time.perf_counter()
    tiled = [(d.box, d.score) for d in find(image, detector)]
    tiled_s = time.perf_counter() - started
    inside = [(b, sc) for b, sc in reference if b[2] <= side and b[3] <= side]
    return {
        "side": side, "whole_faces": len(whole), "tiled_faces": len(tiled),
        "tiled_matching_whole": int(pairing(tiled, [b for b, _ in whole], [], 0.5)[1].sum()),
        "tiled_extra": len(_extras(tiled, [b for b, _ in whole], 0.5)),
        "reference_faces": len(inside),
        "whole_matching_reference": int(pairing(whole, [b for b, _ in inside], [], 0.5)[1].sum()),
        "whole_seconds": whole_s, "tiled_seconds": tiled_s,
    }  # fmt: skip


def _check_placement(path: Path, pictures: list[np.ndarray], across: int, tile: int) -> None:
    """A few placed portraits read back from the file equal the arrays the reference saw."""
    image = pyvips.Image.new_from_file(str(path))
    count = across * across
    for k in (0, count // 3, count - 1):
        index, mirrored = k % len(pictures), (k // len(pictures)) % 2 == 1
        want = pictures[index][:, ::-1] if mirrored else pictures[index]
        got = image.crop((k % across) * tile, (k // across) * tile, tile, tile).numpy()
        if not np.array_equal(got[..., :3], want):
            raise SystemExit(f"placed portrait {k} differs from its array")


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dlib", type=Path, help="dlib example faces JSON")
    parser.add_argument("--facemask", type=Path, help="face-mask set JSON")
    parser.add_argument("--portraits", type=Path, help="face set for the mosaic "
                        "(default: --facemask)")
    parser.add_argument("--min-face", type=int, default=20)
    parser.add_argument("--precision", type=float, default=0.9)
    parser.add_argument("--sweep-from", type=float, default=0.1,
                        help="lowest threshold of the sweep")
    parser.add_argument("--side", type=int, default=20000, help="mosaic side (0: no mosaic)")
    parser.add_argument("--tile", type=int, default=256, help="portrait side in the mosaic")
    parser.add_argument("--portrait-face", type=int, default=40,
                        help="smallest face height a portrait is cut around")
    parser.add_argument("--whole-side", type=int, default=4096,
                        help="crop of the mosaic searched whole and tiled (0: none)")
    parser.add_argument("--work", type=Path, help="folder for the temporary mosaic")
    parser.add_argument("--quick", action="store_true", help="100 face-mask images, 4,000²")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    args.portraits = args.portraits or args.facemask
    if args.quick:
        args.side = min(args.side, 4000)
    if args.out is None:
        args.out = HERE / "work" / "detect-quick.json" if args.quick else \
            HERE / "results" / "detect.json"
    if not (args.dlib or args.facemask):
        parser.error("give --dlib and/or --facemask")
    return args


def placeholder(args: argparse.Namespace) -> str:
    given = {str(getattr(args, k)): f"DATA/{Path(str(getattr(args, k))).name}"
             for k in ("dlib", "facemask", "portraits", "work")
             if getattr(args, k) is not None}  # fmt: skip
    return " ".join(["python benchmarks/bench_detect.py", *(given.get(w, w) for w in sys.argv[1:])])


def main() -> None:
    args = parse()
    detector = detector_for("faces", Settings.load())
    load_before = os.getloadavg()
    began = time.perf_counter()
    sets = [face_set(name, path, detector, args)
            for name, path in (("dlib", args.dlib), ("facemask", args.facemask)) if path]
    tiled = mosaic(args, detector) if args.side and args.portraits else None
    figures = {
        "command": placeholder(args), "sources": SOURCES, "model": detector.manifest.name,
        "layout": detector.manifest.layout, "window": detector.window,
        "default_threshold": DEFAULT_THRESHOLD, "precision": args.precision,
        "sweep_from": args.sweep_from, "sets": sets, "mosaic": tiled,
        "seconds": time.perf_counter() - began, "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }  # fmt: skip
    recording.save(args.out, figures, libvips=".".join(str(pyvips.version(i)) for i in range(3)))
    print(json.dumps(figures, indent=1))
    print()
    print(tables(sets, tiled, args.precision))


def _f(value: float | None) -> str | None:
    return None if value is None else f"{value:.3f}"


def tables(sets: list[dict], tiled: dict | None, precision: float) -> str:
    rows = []
    for s in sets:
        for subset, row in s["subsets"].items():
            strict, loose = row["iou0.5"], row["iou0.3"]
            own = strict["at_precision"]
            point = strict.get("at_operating_point") if row["labelled"] else own
            point = point or {"recall": None, "threshold": None}
            rows.append([
                s["set"], subset, s["images"], row["faces"], _f(point["threshold"]),
                _f(point["recall"]), None if row["labelled"] else _f(own["precision"]),
                _f(strict["default"]["recall"]),
                None if row["labelled"] else _f(strict["default"]["precision"]),
                _f(loose["default"]["recall"]), f"{s['mp_per_s']:.2f}",
            ])  # fmt: skip
    out = [recording.table(
        ["set", "faces counted", "images", "faces", f"threshold at P≥{precision:g}",
         "recall there", "precision there", "recall @ 0.7", "precision @ 0.7",
         "recall @ 0.7 (IoU 0.3)", "MP/s (find)"], rows, text=2)]  # fmt: skip
    if tiled:
        out.append(recording.table(
            ["mosaic", "portraits placed", "faces (each portrait alone)", "matched by tiled",
             "share", "tiled extra", "seconds", "MP/s", "RSS before MB", "peak RSS MB"],
            [[f"{tiled['width']:,}²", tiled["placed"], tiled["reference_faces"],
              tiled["matched"], f"{tiled['matched_share']:.4f}", tiled["extra"],
              f"{tiled['seconds']:.0f}", f"{tiled['mp_per_s']:.2f}",
              f"{tiled['rss_before_mb']:.0f}", f"{tiled['peak_rss_mb']:.0f}"]]))  # fmt: skip
        crop = tiled.get("crop")
        if crop:
            out.append(recording.table(
                ["crop of the mosaic", "faces, whole crop at once", "faces, tiled find",
                 "tiled matching whole", "tiled extra", "portrait-alone faces inside",
                 "whole matching them", "whole s", "tiled s"],
                [[f"{crop['side']:,}²", crop["whole_faces"], crop["tiled_faces"],
                  crop["tiled_matching_whole"], crop["tiled_extra"], crop["reference_faces"],
                  crop["whole_matching_reference"], f"{crop['whole_seconds']:.1f}",
                  f"{crop['tiled_seconds']:.1f}"]]))  # fmt: skip
    return "\n\n".join(out)


if __name__ == "__main__":
    main()
