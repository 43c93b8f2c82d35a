"""Checkpoints of a training run: ``RUN/checkpoints/step-NNNNNNN.pt``, each holding the step,
the recipe, the net's spec and weights, the optimiser and schedule states and the losses so
far, written atomically."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from pixelmill.errors import UsageError
from pixelmill.lab.nets import ConvNet, NetSpec

FOLDER = "checkpoints"
FORMAT = 1


def path_for(run: Path, step: int) -> Path:
    return run / FOLDER / f"step-{step:07d}.pt"


def label(source: str) -> str:
    """A short name for where weights came from, free of the local folders: ``RUN step N``
    for a checkpoint, the folder's name for a run, else ``source`` itself (a model name)."""
    path = Path(source)
    if path.suffix == ".pt" and path.parent.name == FOLDER:
        return f"{path.parent.parent.name} step {int(path.stem.split('-')[-1])}"
    return path.name if path.is_dir() else source


def latest(run: Path) -> Path | None:
    """The checkpoint of the furthest step in a run folder, if any."""
    found = sorted((run / FOLDER).glob("step-*.pt"))
    return found[-1] if found else None


def save(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(f".{path.name}.part")
    torch.save({"format": FORMAT, **state}, part)
    os.replace(part, path)


def load(path: Path) -> dict[str, Any]:
    """A checkpoint file, or the latest one of a run folder."""
    if path.is_dir():
        found = latest(path)
        if found is None:
            raise UsageError(f"{path}: holds no checkpoints ({FOLDER}/step-*.pt)")
        path = found
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise UsageError(f"{path}: no such checkpoint") from None
    except Exception as exc:  # noqa: BLE001  (torch raises many types for a damaged file)
        raise UsageError(f"{path}: not a readable checkpoint: {exc}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise UsageError(f"{path}: not a pixelmill lab checkpoint (format {FORMAT})")
    return {**state, "path": path}


def net_from(state: dict[str, Any]) -> ConvNet:
    """The net a checkpoint holds, with its weights, in evaluation mode."""
    spec = state["net"]
    net = ConvNet(NetSpec(spec["arch"], spec["scale"], tuple(spec["widths"])))
    net.load_state_dict(state["model"])
    return net.eval()
