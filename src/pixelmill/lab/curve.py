"""The loss curve of a training run as a PNG (matplotlib's object API, no global backend)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

SMOOTHING = 50
"""Steps in the moving average drawn over the raw losses."""


def plot(losses: list[float], path: Path, title: str) -> None:
    """Raw losses per step, faint, with their moving average, on a logarithmic axis."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    steps = np.arange(1, len(losses) + 1)
    figure = Figure(figsize=(7, 4), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.plot(steps, losses, color="tab:blue", alpha=0.3, linewidth=0.8, label="loss")
    window = min(SMOOTHING, len(losses))
    if window > 1:
        smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
        axes.plot(steps[window - 1 :], smooth, color="tab:blue", label=f"mean of {window}")
    axes.set(xlabel="step", ylabel="loss", title=title, yscale="log")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
