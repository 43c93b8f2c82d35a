"""Training a recipe: seeded, checkpointed, resumable, optionally distilled from a teacher or
started from a trained net (pruned to the recipe's widths).

The same recipe, seed and number of threads give the same weights on a CPU: the net starts
from the seed (or the recipe's ``init`` weights), and sample ``i`` of the data depends on the
seed and ``i`` only. A resumed run restores the net, the optimiser, the schedule and the
losses, and carries on with the very samples an uninterrupted run would have seen, so it ends
with the same weights.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml

from pixelmill.config import Settings
from pixelmill.engine import cancelled
from pixelmill.errors import Cancelled, UsageError
from pixelmill.lab import checkpoints, curve, installed, prune
from pixelmill.lab.data import Pairs
from pixelmill.lab.nets import ConvNet, parameters
from pixelmill.lab.recipe import Recipe, Teacher, Train, parse

LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "l1": F.l1_loss,
    "mse": F.mse_loss,
    "charbonnier": lambda a, b: torch.sqrt((a - b) ** 2 + 1e-6).mean(),
}
CURVE = "loss.png"
RECIPE = "recipe.yaml"
"""The recipe as trained, in the run folder: train it again to repeat the run."""
Advance = Callable[[float], None]
"""Moves a training's display on by one step, with that step's loss."""
Say = Callable[[str], None]
"""Prints a line of a training's log."""
Display = Callable[[str, int, int], contextlib.AbstractContextManager[tuple[Advance, Say]]]
"""Shows a training (its name, the steps done and the steps in all) while it runs."""


def device() -> torch.device:
    """A CUDA GPU when torch sees one, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def lr_factor(train: Train, step: int) -> float:
    """The learning rate's share at ``step`` (0-based): a linear warm-up, then constant or a
    cosine to zero at the last step. A function of the step alone, so a resumed run may change
    the number of steps (torch's stateful schedulers would keep the old one)."""
    if step < train.warmup:
        return (step + 1) / train.warmup
    if train.schedule == "constant":
        return 1.0
    progress = (step - train.warmup) / max(1, train.steps - train.warmup)
    return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def train(recipe: Recipe, out: Path, *, resume: bool = False, threads: int | None = None,
          workers: int = 0, settings: Settings | None = None,
          display: Display | None = None) -> Path:  # fmt: skip
    """Train into the run folder ``out`` with ``threads`` CPU threads (default: torch's) and
    ``workers`` processes preparing batches (0: the training process), shown by ``display``
    (default: nothing shown); returns the last checkpoint. Neither changes the result.

    A folder that already holds checkpoints is refused unless ``resume`` is set; then training
    goes on from the latest one (whose recipe must match, the number of steps aside).
    """
    settings = settings or Settings.load()
    if threads:
        torch.set_num_threads(threads)
    run = _Run.begin(recipe, out, resume, settings)
    pairs = Pairs(recipe, settings)
    batch, steps = recipe.train.batch, recipe.train.steps
    loader = torch.utils.data.DataLoader(
        pairs, batch_size=batch, sampler=range(run.start * batch, steps * batch),
        num_workers=workers, multiprocessing_context="spawn" if workers else None,
        pin_memory=run.where.type == "cuda",
    )  # fmt: skip
    last = checkpoints.latest(out) if run.start else None
    with (display or silent)(recipe.name, run.start, steps) as (advance, say):
        say(run.describe(workers, pairs.photos.left_out if pairs.photos else []))
        run.net.train()
        for step, (degraded, target) in enumerate(loader, run.start + 1):
            advance(run.learn(degraded, target))
            stop = cancelled()
            if stop or step % recipe.train.checkpoint_every == 0 or step == steps:
                last = run.save(step)
                say(f"step {step}/{steps}: loss {run.losses[-1]:.5f}, lr "
                    f"{run.schedule.get_last_lr()[0]:.2e}, checkpoint {last.name}")  # fmt: skip
            if stop:
                raise Cancelled(f"{recipe.name}: stopped at step {step} of {steps}, checkpoint "
                                f"{last}; go on with --resume")  # fmt: skip
    if last is None:
        raise UsageError(f"{out}: nothing was trained (steps {steps})")
    return last


@dataclass
class _Run:
    """A training run's state: the net, its optimiser and schedule, the losses so far."""

    recipe: Recipe
    out: Path
    where: torch.device
    net: ConvNet
    optimiser: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.LRScheduler
    teacher: tuple[Callable[[torch.Tensor], torch.Tensor], float] | None
    losses: list[float]
    start: int
    """The steps already done (resumed from a checkpoint)."""

    @classmethod
    def begin(cls, recipe: Recipe, out: Path, resume: bool, settings: Settings) -> _Run:
        """A new run in ``out``, or the one there resumed; the recipe is written beside it."""
        where = device()
        state = _previous(recipe, out, resume)
        out.mkdir(parents=True, exist_ok=True)
        (out / RECIPE).write_text(yaml.safe_dump(recipe.to_dict(), sort_keys=False))
        torch.manual_seed(recipe.train.seed)
        net = ConvNet(recipe.net).to(where)
        optimiser = torch.optim.Adam(net.parameters(), lr=recipe.train.lr)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimiser,
                                                     lambda s: lr_factor(recipe.train, s))  # fmt: skip
        losses: list[float] = []
        start = 0
        if state is not None:
            net.load_state_dict(state["model"])
            optimiser.load_state_dict(state["optimizer"])
            schedule.load_state_dict(state["scheduler"])
            losses, start = list(state["losses"]), int(state["step"])
        elif recipe.init is not None:
            net.load_state_dict(prune.initial(recipe.init, recipe.net).state_dict())
        teacher = load_teacher(recipe.teacher, recipe.scale, where, settings)
        return cls(recipe, out, where, net, optimiser, schedule, teacher, losses, start)

    def learn(self, degraded: torch.Tensor, target: torch.Tensor) -> float:
        """One step of training on a batch; its loss."""
        criterion = LOSSES[self.recipe.train.loss]
        degraded = degraded.to(self.where, non_blocking=True)
        target = target.to(self.where, non_blocking=True)
        output = self.net(degraded)
        loss = criterion(output, target)
        if self.teacher is not None:
            with torch.no_grad():
                guide = self.teacher[0](degraded)
            loss = (1 - self.teacher[1]) * loss + self.teacher[1] * criterion(output, guide)
        self.optimiser.zero_grad(set_to_none=True)
        loss.backward()
        self.optimiser.step()
        self.schedule.step()
        self.losses.append(loss.item())
        return self.losses[-1]

    def save(self, step: int) -> Path:
        """A checkpoint of ``step``, and the loss curve; the checkpoint's path."""
        recipe = self.recipe
        path = checkpoints.path_for(self.out, step)
        checkpoints.save(path, {
            "step": step, "recipe": recipe.to_dict(), "net": recipe.net.to_dict(),
            "model": self.net.state_dict(), "optimizer": self.optimiser.state_dict(),
            "scheduler": self.schedule.state_dict(), "losses": self.losses,
        })  # fmt: skip
        curve.plot(self.losses, self.out / CURVE, f"{recipe.name}: {recipe.train.loss} loss")
        return path

    def describe(self, workers: int, left_out: list) -> str:
        recipe, start = self.recipe, self.start
        return (
            f"{recipe.name}: {recipe.net.arch}, {parameters(self.net):,} parameters, receptive "
            f"field {self.net.receptive_field}, on {self.where.type} with "
            f"{torch.get_num_threads()} threads and {workers} loader processes"
            + (f", resuming at step {start}" if start else "")
            + (f", starting from {recipe.init}" if recipe.init and not start else "")
            + (f"; {len(left_out)} photographs smaller than a patch left out" if left_out else "")
        )


def _previous(recipe: Recipe, out: Path, resume: bool) -> dict | None:
    """The checkpoint to resume from, after checking it belongs to this recipe."""
    found = checkpoints.latest(out)
    if found is None:
        return None
    if not resume:
        raise UsageError(f"{out}: already holds a training run; add --resume to go on with it, "
                         "or give another --out")  # fmt: skip
    state = checkpoints.load(found)
    theirs = parse(state["recipe"], str(found)).with_steps(recipe.train.steps)
    if theirs != recipe:
        mine, other = recipe.to_dict(), theirs.to_dict()
        changed = sorted(k for k in mine if mine[k] != other[k])
        raise UsageError(f"{found}: was trained from another recipe (differs in "
                         f"{', '.join(changed)}); resume with the recipe it began "
                         "with")  # fmt: skip
    return state


def load_teacher(teacher: Teacher | None, scale: int, where: torch.device, settings: Settings
                 ) -> tuple[Callable[[torch.Tensor], torch.Tensor], float] | None:  # fmt: skip
    """The teacher as a function of a batch, with its loss weight: a lab checkpoint or run
    folder run in torch, or an installed ONNX model run by onnxruntime."""
    if teacher is None:
        return None
    source = Path(teacher.model)
    if source.suffix == ".pt" or source.is_dir():
        run, found_scale = _torch_teacher(source, where)
    else:
        run, found_scale = _onnx_teacher(teacher.model, settings)
    if found_scale != scale:
        raise UsageError(f"teacher {teacher.model}: scale {found_scale}, the recipe's is {scale}")
    return run, teacher.weight


def _torch_teacher(source: Path, where: torch.device
                   ) -> tuple[Callable[[torch.Tensor], torch.Tensor], int]:  # fmt: skip
    net = checkpoints.net_from(checkpoints.load(source)).to(where)
    return net, net.spec.scale


def _onnx_teacher(name: str, settings: Settings
                  ) -> tuple[Callable[[torch.Tensor], torch.Tensor], int]:  # fmt: skip
    run, manifest = installed.runner(name, settings)

    def teach(batch: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(run(batch.cpu().numpy())).to(batch.device)

    return teach, manifest.scale


@contextlib.contextmanager
def silent(name: str, start: int, total: int) -> Iterator[tuple[Advance, Say]]:
    """The display of a training nobody watches."""
    yield (lambda loss: None), (lambda text: None)
