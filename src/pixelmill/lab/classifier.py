"""The ``content-kind`` classifier: is an image a photograph, a graphic, a screenshot or a
scanned page? It chooses lossless or lossy coding, so graphic and screenshot against photo
matters most.

A small CNN (strided 3×3 convolutions with batch norm and ReLU, global average and max
pooling, one linear layer) sees the whole image shrunk to ``side``² ignoring its aspect ratio
(:func:`pixelmill.lab.kinds.thumbnail`, libvips' ``thumbnail_image(side, height=side,
size="force")`` of the 8-bit sRGB image, alpha flattened on white) as N×3×side×side floats in
0..1, and gives N×4 logits in the order of :data:`LABELS` (the caller applies softmax).

It trains on images of :mod:`pixelmill.lab.kinds` drawn from the seed: a fixed set per label,
made once in parallel processes and shrunk, then seen for several epochs with random
horizontal flips; the test set is drawn from other streams of the same seed. Evaluation gives
accuracy, per-label precision and recall and the confusion matrix on that test set, and the
labels given to real photographs training never saw (crops of the held-out ones of
:mod:`pixelmill.lab.photos`, and the whole photographs), through the exported ONNX model.
The same seed and number of threads give the same weights on a CPU, whatever the number of
processes drawing the images.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pixelmill.errors import ModelError, UsageError
from pixelmill.lab import kinds, photos
from pixelmill.lab.card import cpu_name
from pixelmill.lab.export import quiet_exporter, strip_traces
from pixelmill.lab.train import Advance, Display, Say, silent
from pixelmill.models.manifest import Manifest

NAME = "content-kind"
LABELS = kinds.KINDS
SIDE = 128
"""Side of the model's square input, and the manifest's tile."""
WIDTHS = (16, 32, 64, 96)
"""Channels of the four stages; each stage halves the side."""
TOLERANCE = 1e-4
"""Largest difference allowed between the ONNX model's logits and PyTorch's."""
COMMAND = "pixelmill lab content-kind"
REAL = {"page": ("scan", "page"), "logo": ("graphic", "logo"), "astronaut": ("photo", None)}
"""Real images of scikit-image with the label they should get, by name: (label, the
``skimage.data`` function when it is not a lab photograph). ``astronaut`` is a training
photograph; the held-out photographs are added to these."""


@dataclass(frozen=True)
class Plan:
    """What a training run draws and how it learns."""

    steps: int = 1000
    seed: int = 0
    images: int = 1200
    """Training images per label."""
    test: int = 200
    """Test images per label."""
    batch: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-4
    warmup: int = 30
    smoothing: float = 0.05
    """Label smoothing of the cross-entropy loss."""
    side: int = SIDE
    photo_crops: int = 40
    """Crops of the held-out photographs scored besides the test set."""

    def __post_init__(self) -> None:
        for name, low in (("steps", 1), ("images", 1), ("test", 1), ("batch", 1),
                          ("warmup", 0), ("photo_crops", 0), ("seed", 0)):  # fmt: skip
            if getattr(self, name) < low:
                raise UsageError(f"{name} {getattr(self, name)} must be {low} or more")
        if not 16 <= self.side <= 512:
            raise UsageError(f"side {self.side} is not within 16..512")


class KindNet(nn.Module):
    """Four stages, each a stride-2 then a stride-1 3×3 convolution (batch norm, ReLU), then
    the mean and the maximum of every channel over the image, and one linear layer."""

    def __init__(self, widths: Sequence[int] = WIDTHS, labels: int = len(LABELS)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        before = 3
        for width in widths:
            for stride in (2, 1):
                layers += [nn.Conv2d(before, width, 3, stride, 1, bias=False),
                           nn.BatchNorm2d(width), nn.ReLU(inplace=True)]  # fmt: skip
                before = width
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(2 * before, labels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x - 0.5)
        pooled = torch.cat([x.mean(dim=(2, 3)), x.amax(dim=(2, 3))], dim=1)
        return self.head(pooled)


def parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


# --- data ---------------------------------------------------------------------------------


def dataset(per_label: int, seed: int, split: str, side: int = SIDE, workers: int = 0,
            say: Callable[[str], None] = lambda text: None) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """``per_label`` images of every label from a split, as N×side×side×3 uint8 thumbnails and
    their N label indexes (labels in turn), drawn by ``workers`` processes (0: this one)."""
    chunk = 25
    jobs = [(kind, seed, range(start, min(start + chunk, per_label)), split, side)
            for kind in LABELS for start in range(0, per_label, chunk)]  # fmt: skip
    began = time.monotonic()
    if workers:
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            parts = list(pool.map(kinds.thumbnails, *zip(*jobs)))
    else:
        parts = [kinds.thumbnails(*job) for job in jobs]
    images = np.concatenate(parts)
    labels = np.repeat(np.arange(len(LABELS)), per_label)
    say(f"drew {len(images):,} {split} images ({per_label:,} per label) in "
        f"{time.monotonic() - began:.0f} s")  # fmt: skip
    return images, labels


def to_input(images: np.ndarray) -> np.ndarray:
    """N×H×W×3 uint8 thumbnails as the model's N×3×H×W float32 input in 0..1."""
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2), dtype=np.float32) / np.float32(255)


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """N×H×W×3 uint8 thumbnails as the model's N×3×H×W float input in 0..1."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255


# --- training -----------------------------------------------------------------------------


def lr_factor(plan: Plan, step: int) -> float:
    """A linear warm-up, then a cosine to zero at the last step."""
    if step < plan.warmup:
        return (step + 1) / plan.warmup
    progress = (step - plan.warmup) / max(1, plan.steps - plan.warmup)
    return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def fit(plan: Plan, images: np.ndarray, labels: np.ndarray, say: Say = lambda text: None,
        advance: Advance = lambda loss: None) -> KindNet:  # fmt: skip
    """Train a net on thumbnails for ``plan.steps`` batches drawn from shuffled epochs, each
    image flipped left to right at random."""
    torch.manual_seed(plan.seed)
    net = KindNet()
    optimiser = torch.optim.AdamW(net.parameters(), lr=plan.lr, weight_decay=plan.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda s: lr_factor(plan, s))
    rng = np.random.default_rng([plan.seed, 1])
    targets = torch.from_numpy(labels).long()
    order = np.empty(0, np.int64)
    net.train()
    for step in range(plan.steps):
        if len(order) < plan.batch:
            order = np.concatenate([order, rng.permutation(len(images))])
        chosen, order = order[: plan.batch], order[plan.batch :]
        batch = to_tensor(images[chosen])
        flip = torch.from_numpy(rng.random(len(chosen)) < 0.5)
        batch = torch.where(flip[:, None, None, None], batch.flip(3), batch)
        loss = F.cross_entropy(net(batch), targets[chosen], label_smoothing=plan.smoothing)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        schedule.step()
        advance(loss.item())
        if (step + 1) % 100 == 0 or step + 1 == plan.steps:
            say(f"step {step + 1}/{plan.steps}: loss {loss.item():.4f}")
    return net.eval()


# --- export and evaluation ----------------------------------------------------------------


def to_onnx(net: KindNet, path: Path, side: int = SIDE, opset: int = 18) -> float:
    """Write ``net`` as ONNX (input ``input`` N×3×side×side, output ``output`` N×labels, the
    batch dynamic); returns the largest difference from PyTorch on a batch of three."""
    import onnxruntime as ort

    net = net.cpu().eval()
    example = torch.rand(2, 3, side, side, generator=torch.Generator().manual_seed(0))
    with quiet_exporter():
        program = torch.onnx.export(
            net, (example,), dynamo=True, verbose=False, opset_version=opset,
            input_names=["input"], output_names=["output"],
            dynamic_shapes=({0: torch.export.Dim("n", min=1)},),
        )  # fmt: skip
        path.parent.mkdir(parents=True, exist_ok=True)
        program.save(str(path), external_data=False)
    strip_traces(path)
    batch = torch.rand(3, 3, side, side, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = net(batch).numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": batch.numpy()})[0]
    difference = float(np.abs(got - expected).max()) if got.shape == expected.shape else math.inf
    if difference > TOLERANCE:
        raise ModelError(f"{path}: ONNX and PyTorch logits differ by {difference:.2e} "
                         f"(shapes {got.shape}, {expected.shape})")  # fmt: skip
    return difference


class Classifier:
    """An exported content-kind model run by onnxruntime on thumbnails or whole images."""

    def __init__(self, path: Path, threads: int = 1) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), options,
                                            providers=["CPUExecutionProvider"])  # fmt: skip
        self.manifest = Manifest.from_json(path.with_suffix(".json").read_text(), str(path))
        self.side = self.manifest.tile

    def logits(self, thumbnails: np.ndarray, batch: int = 64) -> np.ndarray:
        """N×labels logits of N×side×side×3 uint8 thumbnails."""
        out = [self.session.run(None, {"input": to_input(thumbnails[i : i + batch])})[0]
               for i in range(0, len(thumbnails), batch)]  # fmt: skip
        return np.concatenate(out) if out else np.empty((0, len(self.manifest.labels)))

    def label(self, image: Any) -> tuple[str, float]:
        """The label of a whole image (array or libvips image) and its probability."""
        logits = self.logits(kinds.thumbnail(image, self.side)[None])[0]
        chances = np.exp(logits - logits.max())
        chances /= chances.sum()
        best = int(chances.argmax())
        return self.manifest.labels[best], float(chances[best])


def scores(truth: np.ndarray, predicted: np.ndarray) -> dict[str, Any]:
    """Accuracy, each label's precision and recall, and the confusion matrix (rows: the true
    label, columns: the predicted one)."""
    count = len(LABELS)
    confusion = np.zeros((count, count), np.int64)
    np.add.at(confusion, (truth, predicted), 1)
    per_label = {}
    for i, label in enumerate(LABELS):
        said, true = confusion[:, i].sum(), confusion[i].sum()
        per_label[label] = {"precision": float(confusion[i, i] / said) if said else 0.0,
                            "recall": float(confusion[i, i] / true) if true else 0.0,
                            "images": int(true)}  # fmt: skip
    return {"accuracy": float(np.trace(confusion) / max(1, confusion.sum())),
            "labels": per_label, "confusion": confusion.tolist()}  # fmt: skip


def real_images() -> dict[str, tuple[str, np.ndarray]]:
    """Real images with the label they should get: the held-out photographs of the lab
    (never trained on), the training photograph astronaut, and scikit-image's scanned page
    and logo (RGBA)."""
    import skimage.data

    found = {name: ("photo", photos.HELD_OUT[name]()) for name in photos.HELD_OUT}
    for name, (label, function) in REAL.items():
        data = getattr(skimage.data, function)() if function else photos.TRAINING[name]()
        found[name] = (label, data)
    return found


def _rgb(data: np.ndarray) -> np.ndarray:
    """An 8-bit grey, RGB or RGBA array as RGB, alpha flattened on white."""
    if data.ndim == 2:
        return np.repeat(data[..., None], 3, axis=2)
    if data.shape[2] == 4:
        alpha = data[..., 3:].astype(np.float32) / 255
        return (data[..., :3] * alpha + 255 * (1 - alpha) + 0.5).astype(np.uint8)
    return data[..., :3]


def evaluate(model: Classifier, plan: Plan, test: tuple[np.ndarray, np.ndarray]
             ) -> dict[str, Any]:  # fmt: skip
    """Scores on the test set, on crops of the held-out photographs, and each real image's
    label."""
    images, truth = test
    result = {"test": scores(truth, model.logits(images).argmax(1))}
    crops = np.stack([kinds.thumbnail(kinds.photo(np.random.default_rng([plan.seed, 2, i]),
                                                  tuple(photos.HELD_OUT)), model.side)
                      for i in range(plan.photo_crops)]) if plan.photo_crops else None  # fmt: skip
    if crops is not None:
        said = model.logits(crops).argmax(1)
        result["photo_crops"] = {
            "images": len(crops), "accuracy": float((said == 0).mean()),
            "labels": {label: int((said == i).sum()) for i, label in enumerate(LABELS)},
        }  # fmt: skip
    result["real"] = {}
    for name, (expected, data) in real_images().items():
        label, chance = model.label(_rgb(data))
        result["real"][name] = {"expected": expected, "label": label, "probability": chance,
                                "size": [int(data.shape[1]), int(data.shape[0])]}  # fmt: skip
    return result


def speed(path: Path, side: int, repeats: int = 200) -> dict[str, float]:
    """Milliseconds per image on one CPU thread: the model alone one image at a time and in
    batches of 32 (medians after a warm-up), and the libvips thumbnail of a 1920×1080 image."""
    model = Classifier(path, threads=1)
    rng = np.random.default_rng(0)
    one = rng.integers(0, 256, (1, side, side, 3), dtype=np.uint8)
    many = rng.integers(0, 256, (32, side, side, 3), dtype=np.uint8)

    def median_ms(run: Callable[[], Any], count: int, per: int) -> float:
        run()
        times = []
        for _ in range(count):
            began = time.perf_counter()
            run()
            times.append(time.perf_counter() - began)
        return statistics.median(times) * 1000 / per

    screen = rng.integers(0, 256, (1080, 1920, 3), dtype=np.uint8)
    return {"single": median_ms(lambda: model.logits(one), repeats, 1),
            "batch32": median_ms(lambda: model.logits(many), max(5, repeats // 20), 32),
            "thumbnail_1080p": median_ms(lambda: kinds.thumbnail(screen, side), 20, 1)}  # fmt: skip


# --- the whole run ------------------------------------------------------------------------


def manifest(plan: Plan, widths: Sequence[int] = WIDTHS) -> Manifest:
    """The manifest of a model trained by ``plan``."""
    return Manifest(
        name=NAME, version="1", task="classify", scale=1, channels=3, colour="rgb",
        receptive_field=0, tile=plan.side, value_range=(0.0, 1.0), labels=LABELS,
        provenance=(f"pixelmill lab content-kind: CNN {list(widths)}, {plan.steps} steps of "
                    f"batch {plan.batch} (seed {plan.seed}); data: {plan.images} generated "
                    "images per label (pixelmill.lab.kinds: crops of scikit-image photographs "
                    "and synthetic natural images, vector-like graphics, rendered screens, "
                    "simulated scanned pages)"),
        licence="Apache-2.0",
        description=("content kind of a whole image: photo, graphic (illustration, logo, "
                     "chart), screenshot (UI, text, code) or scan (scanned page); input the "
                     f"image forced to {plan.side}×{plan.side}, output logits"),
    )  # fmt: skip


def command(plan: Plan, out: str | None) -> str:
    """The command that makes the model of ``plan`` into the folder ``out`` (None: the user
    models folder)."""
    folder = f" --out {out}" if out else ""
    images = f" --images {plan.images}" if plan.images != Plan().images else ""
    return f"{COMMAND}{folder} --steps {plan.steps} --seed {plan.seed}{images}"


def build(plan: Plan, out: Path, *, workers: int | None = None, threads: int | None = None,
          display: Display | None = None, shown_out: str | None = "") -> dict[str, Any]:  # fmt: skip
    """Draw the data with ``workers`` processes (default: one per core), train with
    ``threads`` torch threads (default: torch's), export ``content-kind.onnx`` and its
    manifest into ``out``, evaluate the ONNX model and write its card
    (``content-kind.card.md`` and ``.card.json``); returns the card. ``shown_out`` is how the
    card's command names ``out`` (empty: as given; None: not at all, the default folder)."""
    if threads:
        torch.set_num_threads(threads)
    workers = (os.cpu_count() or 1) if workers is None else workers
    began, cpu_began, load = time.monotonic(), _cpu_seconds(), os.getloadavg()[0]
    with (display or silent)(NAME, 0, plan.steps) as (advance, say):
        train_set = dataset(plan.images, plan.seed, "train", plan.side, workers, say)
        test_set = dataset(plan.test, plan.seed, "test", plan.side, workers, say)
        drawn, cpu_drawn = time.monotonic(), _cpu_seconds()
        net = fit(plan, *train_set, say=say, advance=advance)
        trained, cpu_trained = time.monotonic(), _cpu_seconds()
        say(f"trained {parameters(net):,} parameters in {trained - drawn:.0f} s")
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{NAME}.onnx"
    with tempfile.TemporaryDirectory(prefix="pixelmill-content-kind-") as work:
        staged = Path(work) / f"{NAME}.onnx"
        difference = to_onnx(net, staged, plan.side)
        staged.with_suffix(".json").write_text(manifest(plan).to_json() + "\n")
        model = Classifier(staged)
        results = evaluate(model, plan, test_set)
        timing = speed(staged, plan.side)
        staged.replace(path)
        staged.with_suffix(".json").replace(path.with_suffix(".json"))
    card = {
        "title": NAME, "description": model.manifest.description,
        "labels": list(LABELS), "side": plan.side, "parameters": parameters(net),
        "file_bytes": path.stat().st_size, "parity": difference, "plan": asdict(plan),
        "seconds": {"data": drawn - began, "training": trained - drawn,
                    "total": time.monotonic() - began},
        "cpu_seconds": {"data": cpu_drawn - cpu_began, "training": cpu_trained - cpu_drawn},
        "load_average": [load, os.getloadavg()[0]],
        "speed": timing | {"threads": 1, "cpu": cpu_name(), "cores": os.cpu_count(),
                           "onnxruntime": _version("onnxruntime"), "torch": torch.__version__},
        "command": command(plan, str(out) if shown_out == "" else shown_out),
        "training_data": training_data(plan),
        **results,
    }  # fmt: skip
    write_card(card, out)
    return card


def training_data(plan: Plan) -> str:
    """What the model of ``plan`` trains on, in words."""
    return (
        f"{plan.images:,} training and {plan.test:,} test images per label, generated by "
        "`pixelmill.lab.kinds` from the seed (the test set from other random streams), each "
        f"shrunk whole to {plan.side}×{plan.side}. **photo**: crops (a tenth of a side to the "
        f"whole) of the photographs {', '.join(kinds.PHOTOS)} (scikit-image; grace_hopper "
        "from matplotlib), flipped or turned, rescaled 0.35–2×; a fifth are scenes collaged "
        "from them (a crop out of focus behind sharp soft-edged crops) and a tenth the lab's "
        "synthetic natural images (dead leaves, fractal noise, shaded and blurred); hues "
        "turned or channels swapped (40%), colour, white balance and gamma jitter, sometimes "
        "grey, blurred, grainy or vignetted, JPEG quality 30–95 for 85%. **graphic**: flat "
        "shapes on flat or gradient grounds, logos, charts (bars, horizontal bars, lines, "
        "scatter, translucent areas, ticks, pies and donuts), maps, icon sheets and cartoon "
        "faces, flat-design landscapes, patterns, pixel art, diagrams; 75% anti-aliased, 10% "
        "palette-reduced, 30% JPEG 40–95. **screenshot**: application windows, web pages "
        "(some with photographs in them), code editors, terminals, spreadsheets, phone chats, "
        "documents, dialogs and desktops, light and dark, device scale 1–2, text in DejaVu, "
        "STIX, Computer Modern and Pillow's font; 20% shrunk, 20% JPEG 60–95. **scan**: "
        "printed pages (serif, sans or mono; headings, paragraphs, tables, forms, figures) or "
        "handwriting-like scribble on white, cream, yellowed or grey paper with blotches, "
        "skewed on a dark or white scanner bed, unevenly lit, book spines, blur, noise, dust; "
        "35% grey, 10% black and white, 80% JPEG 30–92. Never trained on: the held-out "
        f"photographs {', '.join(photos.HELD_OUT)} (checked)."
    )


# --- the card -----------------------------------------------------------------------------


def markdown(card: dict[str, Any]) -> str:
    """The card as Markdown."""
    test, plan, timing, side = card["test"], card["plan"], card["speed"], card["side"]
    crops = card.get("photo_crops")
    rows = [
        ("| model | parameters | ONNX size | input | test accuracy | held-out photo crops "
         "| ms/image (CPU, 1 thread) | ms/image (batch 32) |"),
        "|---|--:|--:|--:|--:|--:|--:|--:|",
        (f"| {card['title']} | {card['parameters']:,} | {card['file_bytes'] / 1024:.1f} KiB | "
         f"{side}² | {test['accuracy']:.3f} | "
         + (f"{crops['accuracy']:.3f}" if crops else "–")
         + f" | {timing['single']:.2f} | {timing['batch32']:.2f} |"),
    ]  # fmt: skip
    per_label = ["| label | precision | recall (accuracy) | test images |", "|---|--:|--:|--:|"]
    per_label += [f"| {label} | {v['precision']:.3f} | {v['recall']:.3f} | {v['images']} |"
                  for label, v in test["labels"].items()]  # fmt: skip
    confusion = ["| true ↓ · predicted → | " + " | ".join(card["labels"]) + " |",
                 "|---|" + "--:|" * len(card["labels"])]  # fmt: skip
    confusion += [f"| {label} | " + " | ".join(str(v) for v in row) + " |"
                  for label, row in zip(card["labels"], test["confusion"])]  # fmt: skip
    real = ["| image | size | expected | label | probability |", "|---|--:|---|---|--:|"]
    real += [f"| {name} | {v['size'][0]}×{v['size'][1]} | {v['expected']} | {v['label']} | "
             f"{v['probability']:.3f} |" for name, v in card["real"].items()]  # fmt: skip
    seconds, cpu = card["seconds"], card.get("cpu_seconds")
    total = sum(v["images"] for v in test["labels"].values())
    interface = (
        f"**Labels** (outputs in this order): {', '.join(card['labels'])}. Input: float32 "
        f"N×3×{side}×{side} RGB in 0..1, the whole image forced to {side}×{side} (libvips "
        f"`thumbnail_image({side}, height={side}, size=\"force\")` of the 8-bit sRGB image, "
        "alpha flattened on white); output: float32 N×4 logits (apply softmax). The batch "
        "axis is dynamic."
    )
    held_out = (
        f"Accuracy {test['accuracy']:.3f} on {total} generated images the training never saw "
        "(the test split of the same seed), through the exported ONNX model. Confusion matrix "
        "below: rows are the true label, columns the model's."
    )
    photographs = (
        (f"Crops of the held-out photographs ({crops['images']}, cut, rescaled, jittered and "
         f"JPEG-compressed as the training photographs are): {crops['accuracy']:.1%} labelled "
         "photo (" + ", ".join(f"{k} {v}" for k, v in crops["labels"].items()) + "). "
         if crops else "")
        + "Whole images (the held-out photographs were never trained on; astronaut was):"
    )  # fmt: skip
    speed_text = (
        f"onnxruntime {timing['onnxruntime']}, one thread, on {timing['cpu']} "
        f"({timing['cores']} cores): {timing['single']:.2f} ms per image one at a time, "
        f"{timing['batch32']:.2f} ms per image in batches of 32 (medians after a warm-up); "
        "making the input of a 1920×1080 image (libvips thumbnail of the decoded image) takes "
        f"{timing['thumbnail_1080p']:.2f} ms more."
    )
    training = (
        f"AdamW (learning rate {plan['lr']:g}, weight decay {plan['weight_decay']:g}), "
        f"{plan['warmup']} steps of warm-up then a cosine to zero, {plan['steps']} steps of "
        f"{plan['batch']} images, cross-entropy with label smoothing {plan['smoothing']:g}, "
        f"random left-right flips; seed {plan['seed']}. On the machine above (torch "
        f"{timing['torch']}): {seconds['data']:.0f} s drawing the images, "
        f"{seconds['training']:.0f} s training, {seconds['total']:.0f} s in all with the "
        "export and the evaluation"
        + (f" (CPU time, all cores together: {cpu['data']:.0f} s drawing, "
           f"{cpu['training']:.0f} s training)" if cpu else "")
        + (". The machine's load average (one minute) was {:.1f} at the start and {:.1f} at "
           "the end".format(*card["load_average"]) if "load_average" in card else "")
        + f". ONNX matches PyTorch within {card['parity']:.1e}."
    )  # fmt: skip
    sections = [
        f"# Model card: {card['title']}", card["description"], "\n".join(rows), interface,
        "## Held-out test set", held_out, "\n".join(per_label), "\n".join(confusion),
        "## Real images", photographs, "\n".join(real),
        "## Speed", speed_text,
        "## Training", training,
        "## Commands", f"- the model, this card and every figure in it: `{card['command']}`",
        "## Training data", card["training_data"],
    ]  # fmt: skip
    return "\n\n".join(sections) + "\n"


def write_card(card: dict[str, Any], out: Path) -> list[Path]:
    """``content-kind.card.md`` and ``content-kind.card.json`` in ``out``."""
    paths = [out / f"{NAME}.card.md", out / f"{NAME}.card.json"]
    paths[0].write_text(markdown(card), encoding="utf-8")
    paths[1].write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return paths


def summary(card: dict[str, Any]) -> str:
    """The evaluation as plain text for a terminal."""
    test = card["test"]
    width = max(len(label) for label in card["labels"]) + 2
    crops = card.get("photo_crops")
    head = (f"test accuracy {test['accuracy']:.3f}"
            + (f", held-out photo crops {crops['accuracy']:.3f}" if crops else "")
            + f"; {card['speed']['single']:.2f} ms per image (1 CPU thread)")  # fmt: skip
    columns = "".join(label.rjust(width) for label in card["labels"])
    lines = [head, "true \\ predicted".ljust(18) + columns + "   recall"]
    for label, row in zip(card["labels"], test["confusion"]):
        recall = test["labels"][label]["recall"]
        lines.append(label.ljust(18) + "".join(str(v).rjust(width) for v in row)
                     + f"   {recall:.3f}")  # fmt: skip
    for name, real in card["real"].items():
        mark = "ok" if real["label"] == real["expected"] else "WRONG"
        lines.append(f"{name}: {real['label']} ({real['probability']:.2f}; expected "
                     f"{real['expected']}, {mark})")  # fmt: skip
    return "\n".join(lines)


def _cpu_seconds() -> float:
    """CPU time (user and system) of this process and of its ended children so far."""
    import resource

    return sum(getattr(resource.getrusage(who), field)
               for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
               for field in ("ru_utime", "ru_stime"))  # fmt: skip


def _version(module: str) -> str:
    import importlib

    return str(getattr(importlib.import_module(module), "__version__", "?"))
