"""The built-in steps, one module each (its ``OP``), and the steps of plugins (entry point
group ``pixelmill.steps``, see :mod:`pixelmill.plugins`). :func:`load` registers them all when
steps are first looked up (:func:`pixelmill.pipeline.spec.steps`).

Parsing any pipeline imports every step module, so a step imports what only running it needs
(numpy, detection, model sessions) inside the function that runs it: a thumbnail does not pay
for the detector's imports."""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil

from pixelmill.engine.step import Op, register
from pixelmill.plugins import discover

FIRST = ("autorotate", "resize", "scale", "thumbnail", "crop", "rotate", "flip", "blur",
         "sharpen", "grayscale", "pad", "flatten", "strip", "model", "noise")  # fmt: skip
LAST = ("qc", "encode")
"""The order of the built-in steps in ``pixelmill ops`` and the README; a module of this
package that neither names comes between them (adding a step is adding its module)."""


def built_in() -> list[Op]:
    """The ``OP`` of every module of this package, in the order above."""
    names = [info.name for info in pkgutil.iter_modules(__path__)]
    middle = sorted(set(names) - set(FIRST) - set(LAST))
    return [importlib.import_module(f"{__name__}.{name}").OP
            for name in (*FIRST, *middle, *LAST)]  # fmt: skip


def load() -> None:
    """Register the built-in steps, then the plugins' (all or none: a plugin that is refused
    leaves nothing half registered)."""
    found = built_in()
    taken = {op.name: op.spec.origin for op in found}
    for plugin in discover("pixelmill.steps"):
        op = plugin.value
        if not isinstance(op, Op):
            raise plugin.refuse(f"{op!r} is not a step (a pixelmill.engine.step.Op)")
        if op.name in taken:
            raise plugin.refuse(f"its step {op.name!r} has the name of a step of {taken[op.name]}")
        taken[op.name] = plugin.package
        found.append(dataclasses.replace(op, spec=dataclasses.replace(op.spec,
                                                                      origin=plugin.package)))
    for op in found:
        register(op)
