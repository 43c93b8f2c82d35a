"""Structured channel pruning: a trained net made narrower by dropping, in every hidden layer,
the filters of least L1 norm (and the matching input channels of the next layer), then
fine-tuned by the ordinary training loop.

A recipe whose ``init`` names a trained run or checkpoint starts from its weights; when the
recipe's widths are narrower than that net's, the net is pruned to them first. ``pixelmill lab
prune RUN --keep 0.5`` writes such a recipe and trains it, so the pruned run is a run like any
other: checkpointed, resumable, exported and evaluated the same way.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from torch import nn

from pixelmill.errors import UsageError
from pixelmill.lab import checkpoints
from pixelmill.lab.nets import ConvNet, NetSpec
from pixelmill.lab.recipe import Recipe, Teacher, parse

PRUNED = "pruned from"
"""How the provenance of a pruned model says so."""


def narrower(spec: NetSpec, keep: float) -> NetSpec:
    """``spec`` with ``keep`` of each hidden layer's channels (rounded, at least one)."""
    if not 0 < keep <= 1:
        raise UsageError(f"keep {keep} is not within 0..1 (the share of channels kept)")
    widths = tuple(max(1, round(width * keep)) for _, width in spec.layers)
    return dataclasses.replace(spec, widths=widths)


def narrow(net: ConvNet, spec: NetSpec) -> ConvNet:
    """A copy of ``net`` with the widths of ``spec``: each hidden convolution keeps its filters
    of largest L1 norm, in their order, and the next convolution the matching input channels."""
    if (spec.arch, spec.scale) != (net.spec.arch, net.spec.scale):
        raise UsageError(f"a {net.spec.arch} ×{net.spec.scale} net cannot become a {spec.arch} "
                         f"×{spec.scale} one")  # fmt: skip
    have = [width for _, width in net.spec.layers]
    want = [width for _, width in spec.layers]
    if any(w > h for w, h in zip(want, have)):
        raise UsageError(f"widths {want} are not within the net's {have}: pruning only narrows")
    pruned = ConvNet(spec).to(next(net.parameters()).device)
    kept = torch.arange(3 * spec.unshuffle**2)  # the input's channels
    with torch.no_grad():
        for old, new in zip(_convolutions(net), _convolutions(pruned)):
            filters = old.weight[:, kept]
            if new.out_channels < old.out_channels:
                rank = filters.abs().sum(dim=(1, 2, 3)).argsort(descending=True, stable=True)
                outputs = rank[: new.out_channels].sort().values
            else:
                outputs = torch.arange(old.out_channels)
            new.weight.copy_(filters[outputs])
            new.bias.copy_(old.bias[outputs])
            kept = outputs
    return pruned.train(net.training)


def initial(source: str, spec: NetSpec) -> ConvNet:
    """The net of a run folder (its latest checkpoint) or checkpoint, pruned to ``spec``."""
    state = checkpoints.load(Path(source))
    try:
        return narrow(checkpoints.net_from(state), spec)
    except UsageError as exc:
        raise UsageError(f"init {source}: {exc}") from None


def describe(source: str, spec: NetSpec) -> str:
    """How a net started from ``source`` came to be, for its manifest's provenance."""
    try:
        state = checkpoints.load(Path(source))
    except UsageError:
        return f"started from {checkpoints.label(source)}"
    before = [width for _, width in checkpoints.net_from(state).spec.layers]
    after = [width for _, width in spec.layers]
    if before == after:
        return f"fine-tuned from {checkpoints.label(source)}"
    return f"{PRUNED} {checkpoints.label(source)} ({before} → {after} channels) and fine-tuned"


def recipe_for(run: Path, keep: float, steps: int, *, name: str | None = None,
               lr: float | None = None, distil: float | None = None) -> Recipe:  # fmt: skip
    """The recipe that fine-tunes the net of ``run`` (a run folder or checkpoint) pruned to
    ``keep`` of its channels: the run's own recipe with the narrower widths, ``init`` set to
    the checkpoint, ``steps`` steps from ``lr`` (default the run's), and, with
    ``distil``, the unpruned net as teacher with that weight."""
    state = checkpoints.load(run)
    recipe = parse(state["recipe"], str(state["path"]))
    source = str(Path(state["path"]).resolve())
    train = dataclasses.replace(
        recipe.train, steps=steps, lr=recipe.train.lr if lr is None else lr,
        warmup=min(recipe.train.warmup, steps // 10),
        checkpoint_every=min(recipe.train.checkpoint_every, steps),
    )  # fmt: skip
    return dataclasses.replace(
        recipe, name=name or f"{recipe.name}-pruned", net=narrower(recipe.net, keep),
        init=source, train=train,
        teacher=Teacher(source, distil) if distil is not None else recipe.teacher,
    )  # fmt: skip


def _convolutions(net: ConvNet) -> list[nn.Conv2d]:
    return [layer for layer in net.body if isinstance(layer, nn.Conv2d)]
