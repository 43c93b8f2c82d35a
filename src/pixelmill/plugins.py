"""Plugins: packages that add steps, metrics and storage rules through Python entry points,
discovered the first time what they add is looked up.

| group | an entry point names |
|---|---|
| ``pixelmill.steps`` | a step: a :class:`pixelmill.engine.step.Op` |
| ``pixelmill.metrics`` | a metric: a :class:`pixelmill.quality.metrics.Metric` |
| ``pixelmill.storage`` | a storage rule: a callable taking a :class:`pixelmill.storage.Location` and answering why it may not be used, or None |

What a plugin adds is listed with the package it comes from (``pixelmill ops``, ``pixelmill
metrics``). A plugin that fails to load, names something of the wrong type, or takes a name
already taken (a built-in's included) is refused with a :class:`PluginError`, which names it
and its package: an installation that does not do what it says stops at once, rather than on
the first image. See ``docs/plugins.md``.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pixelmill.errors import UsageError

GROUPS = ("pixelmill.steps", "pixelmill.metrics", "pixelmill.storage")


class PluginError(UsageError):
    """A plugin that cannot be used as it is installed."""

    kind = "plugin"


@dataclass(frozen=True)
class Plugin:
    """One entry point, loaded."""

    name: str
    group: str
    package: str
    value: Any

    def refuse(self, why: str) -> PluginError:
        return PluginError(f"plugin {self.name!r} of {self.package} ({self.group}): {why}")


def discover(group: str) -> Iterator[Plugin]:
    """Every entry point of ``group``, loaded, in a stable order (by package, then name)."""
    found = importlib.metadata.entry_points(group=group)
    for point in sorted(found, key=lambda p: (_package(p), p.name)):
        plugin = Plugin(point.name, group, _package(point), None)
        try:
            value = point.load()
        except Exception as exc:  # noqa: BLE001  whatever a third party's import raises
            raise plugin.refuse(f"cannot be loaded: {type(exc).__name__}: {exc}") from None
        yield Plugin(plugin.name, group, plugin.package, value)


def _package(point: importlib.metadata.EntryPoint) -> str:
    return point.dist.name if point.dist is not None else "an unknown package"
