"""pixelmill: AI image processing at production scale.

One pipeline grammar over a streaming libvips engine, reading and writing any storage::

    import pixelmill
    pixelmill.run("photo.jpg", "s3://bucket/thumb.webp", "thumbnail:512/encode:webp:q=80")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = [
    "InputError", "LimitError", "Pipeline", "PipelineError", "PixelmillError", "QualityError",
    "Settings", "StorageError", "compare", "info", "render", "run", "run_tree",
]  # fmt: skip

_WHERE = {
    "run": "pixelmill.api", "run_tree": "pixelmill.api", "info": "pixelmill.api",
    "render": "pixelmill.api",
    "compare": "pixelmill.api", "QualityError": "pixelmill.errors",
    "Pipeline": "pixelmill.pipeline", "Settings": "pixelmill.config",
    "PixelmillError": "pixelmill.errors", "PipelineError": "pixelmill.errors",
    "InputError": "pixelmill.errors", "LimitError": "pixelmill.errors",
    "StorageError": "pixelmill.errors",
}  # fmt: skip

if TYPE_CHECKING:
    from pixelmill.api import compare, info, render, run, run_tree
    from pixelmill.config import Settings
    from pixelmill.errors import (
        InputError,
        LimitError,
        PipelineError,
        PixelmillError,
        QualityError,
        StorageError,
    )  # fmt: skip
    from pixelmill.pipeline import Pipeline


def __getattr__(name: str) -> Any:
    """Import on first use, so ``import pixelmill`` stays cheap (libvips loads only when needed)."""
    if name not in _WHERE:
        raise AttributeError(f"module 'pixelmill' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_WHERE[name]), name)
