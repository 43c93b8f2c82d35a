"""Value kinds of step arguments: how each is parsed from text, checked from JSON, formatted
canonically, described for people and written as JSON schema.

A kind raises ``ValueError`` with a phrase that completes "<step>: <arg> <value> …", e.g.
"is not one of fit, fill, force"; the grammar adds the step and argument names.
"""

from __future__ import annotations

import math
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


class Kind(ABC):
    """Base of argument kinds."""

    @abstractmethod
    def parse(self, text: str) -> Any:
        """The value of a text-form argument."""

    def check(self, value: Any) -> Any:
        """The value of a JSON-form argument (already typed by JSON)."""
        if isinstance(value, str):
            return self.parse(value)
        raise ValueError(f"is not {self.describe()}")

    def format(self, value: Any) -> str:
        return str(value)

    def to_json(self, value: Any) -> Any:
        """The value in the JSON form (as :meth:`check` takes it back)."""
        return value

    @abstractmethod
    def describe(self) -> str:
        """What values are allowed, completing "is not …"."""

    @abstractmethod
    def schema(self) -> dict[str, Any]:
        """The JSON schema of a value."""


def number(value: float) -> str:
    """A number's shortest text that reads back to it (no ``.0`` on whole numbers)."""
    return repr(int(value)) if float(value).is_integer() else repr(float(value))


@dataclass(frozen=True)
class Int(Kind):
    low: int
    high: int

    def parse(self, text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"is not {self.describe()}") from None
        return self._range(value)

    def check(self, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValueError(f"is not {self.describe()}")  # noqa: TRY004  # a kind's one error
        if isinstance(value, float):
            if not value.is_integer():
                raise ValueError(f"is not {self.describe()}")
            value = int(value)
        return self.parse(value) if isinstance(value, str) else self._range(value)

    def _range(self, value: int) -> int:
        if not self.low <= value <= self.high:
            raise ValueError(f"is out of range ({self.low}..{self.high})")
        return value

    def describe(self) -> str:
        return f"an integer {self.low}..{self.high}"

    def schema(self) -> dict[str, Any]:
        return {"type": "integer", "minimum": self.low, "maximum": self.high}


@dataclass(frozen=True)
class Float(Kind):
    low: float
    high: float

    def parse(self, text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"is not {self.describe()}") from None
        return self._range(value)

    def check(self, value: Any) -> float:
        if isinstance(value, bool):
            raise ValueError(f"is not {self.describe()}")  # noqa: TRY004  # a kind's one error
        if isinstance(value, int | float):
            try:
                return self._range(float(value))
            except OverflowError:
                raise ValueError(f"is out of range ({self.describe()})") from None
        return super().check(value)

    def _range(self, value: float) -> float:
        if not math.isfinite(value) or not self.low <= value <= self.high:
            raise ValueError(f"is out of range ({self.format(self.low)}..{self.format(self.high)})")
        return value

    def format(self, value: float) -> str:
        return number(value)

    def describe(self) -> str:
        return f"a number {self.format(self.low)}..{self.format(self.high)}"

    def schema(self) -> dict[str, Any]:
        return {"type": "number", "minimum": self.low, "maximum": self.high}


@dataclass(frozen=True)
class Bool(Kind):
    def parse(self, text: str) -> bool:
        lowered = text.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ValueError(f"is not {self.describe()}")

    def check(self, value: Any) -> bool:
        return value if isinstance(value, bool) else super().check(value)

    def format(self, value: bool) -> str:
        return "true" if value else "false"

    def describe(self) -> str:
        return "true or false"

    def schema(self) -> dict[str, Any]:
        return {"type": "boolean"}


@dataclass(frozen=True)
class Choice(Kind):
    values: tuple[str, ...]
    aliases: dict[str, str] = field(default_factory=dict, hash=False, compare=False)

    def parse(self, text: str) -> str:
        lowered = text.strip().lower()
        lowered = self.aliases.get(lowered, lowered)
        if lowered not in self.values:
            raise ValueError(f"is not one of {', '.join(self.values)}")
        return lowered

    def describe(self) -> str:
        return "one of " + ", ".join(self.values)

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "enum": list(self.values) + sorted(self.aliases)}


@dataclass(frozen=True)
class IntChoice(Kind):
    values: tuple[int, ...]

    def parse(self, text: str) -> int:
        try:
            return self.check(int(text))
        except ValueError:
            raise ValueError(f"is not {self.describe()}") from None

    def check(self, value: Any) -> int:
        if isinstance(value, str):
            return self.parse(value)
        if isinstance(value, bool) or value not in self.values:
            raise ValueError(f"is not {self.describe()}")
        return int(value)

    def describe(self) -> str:
        return "one of " + ", ".join(map(str, self.values))

    def schema(self) -> dict[str, Any]:
        return {"type": "integer", "enum": list(self.values)}


NAMED_COLOURS: dict[str, tuple[int, int, int, int]] = {
    "white": (255, 255, 255, 255),
    "black": (0, 0, 0, 255),
    "grey": (128, 128, 128, 255),
    "transparent": (0, 0, 0, 0),
}
_HEX = re.compile(r"#?([0-9a-f]{3}|[0-9a-f]{4}|[0-9a-f]{6}|[0-9a-f]{8})")


@dataclass(frozen=True)
class Colour(Kind):
    """An sRGB colour with alpha, as a name, ``#rgb``, ``#rgba``, ``#rrggbb`` or ``#rrggbbaa``.

    Values are canonical strings (``#rrggbbaa`` or a name) so steps stay hashable and printable.
    """

    def parse(self, text: str) -> str:
        lowered = text.strip().lower()
        if lowered in NAMED_COLOURS:
            return lowered
        match = _HEX.fullmatch(lowered)
        if not match:
            raise ValueError(f"is not {self.describe()}")
        digits = match.group(1)
        if len(digits) <= 4:
            digits = "".join(c * 2 for c in digits)
        if len(digits) == 6:
            digits += "ff"
        for name, rgba in NAMED_COLOURS.items():
            if digits == "".join(f"{c:02x}" for c in rgba):
                return name
        return "#" + digits

    def describe(self) -> str:
        return "a colour (" + ", ".join(NAMED_COLOURS) + ", #rgb, #rrggbb or #rrggbbaa)"

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "pattern": "^(#?[0-9a-fA-F]{3,8}|[a-z]+)$"}


def rgba(colour: str) -> tuple[int, int, int, int]:
    """The 8-bit RGBA values of a canonical colour string."""
    if colour in NAMED_COLOURS:
        return NAMED_COLOURS[colour]
    return tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5, 7))  # type: ignore[return-value]


@dataclass(frozen=True)
class Name(Kind):
    """A plain word (letters, digits, ``-``, ``_``, ``.``), e.g. a model name."""

    def parse(self, text: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_.\-]+", text):
            raise ValueError(f"is not {self.describe()}")
        return text

    def describe(self) -> str:
        return "a name of letters, digits, '-', '_' or '.'"

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "pattern": r"^[A-Za-z0-9_.\-]+$"}


GATE = re.compile(r"\s*([A-Za-z][\w-]*)\s*(>=|<=|>|<)\s*([-+]?[0-9.]+(?:[eE][-+]?[0-9]+)?)\s*")
"""One condition of a quality gate: ``METRIC>=NUMBER`` (or <=, >, <)."""


@dataclass(frozen=True)
class Gate:
    """A threshold on a named metric."""

    metric: str
    op: str
    threshold: float

    def passes(self, value: float) -> bool:
        return {">=": value >= self.threshold, "<=": value <= self.threshold,
                ">": value > self.threshold, "<": value < self.threshold}[self.op]  # fmt: skip

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{number(self.threshold)}"


@dataclass(frozen=True)
class Gates(Kind):
    """One or more gate conditions. In the text form each is its own ``:``-separated argument,
    gathered wherever it stands (the grammar asks :meth:`matches`); in JSON, a list of them."""

    metrics: Callable[[], Collection[str]]
    """The names of the metrics gates may use (looked up when a gate is parsed: plugins may
    add metrics)."""
    variadic = True

    def matches(self, text: str) -> bool:
        return GATE.fullmatch(text) is not None

    def parse(self, text: str) -> tuple[Gate, ...]:
        return self._gates(text.split(":"))

    def check(self, value: Any) -> tuple[Gate, ...]:
        if isinstance(value, str):
            return self.parse(value)
        if isinstance(value, list | tuple) and all(isinstance(v, str | Gate) for v in value):
            return self._gates([str(v) for v in value])
        raise ValueError(f"is not {self.describe()}")

    def _gates(self, texts: Any) -> tuple[Gate, ...]:
        gates = []
        for text in texts:
            match = GATE.fullmatch(text)
            if match is None:
                raise ValueError(f"is not {self.describe()}")
            name, known = match[1].lower(), self.metrics()
            if name not in known:
                raise ValueError(f"names an unknown metric {name!r} (metrics: "
                                 f"{', '.join(known)})")  # fmt: skip
            threshold = float(match[3])
            if not math.isfinite(threshold):
                raise ValueError(f"has a threshold too large for a number ({match[3]})")
            gates.append(Gate(name, match[2], threshold))
        if not gates:
            raise ValueError(f"is not {self.describe()}")
        return tuple(gates)

    def format(self, value: Any) -> str:
        return ":".join(map(str, value))

    def to_json(self, value: Any) -> list[str]:
        return [str(gate) for gate in value]

    def describe(self) -> str:
        return "conditions such as ssim>=0.92 (>=, <=, >, <)"

    def schema(self) -> dict[str, Any]:
        return {"type": "array", "minItems": 1,
                "items": {"type": "string", "pattern": f"^{GATE.pattern}$"}}  # fmt: skip


@dataclass(frozen=True)
class Names(Kind):
    """Names separated by commas, e.g. classes of a detector: ``person,car``; in JSON, a list."""

    def parse(self, text: str) -> tuple[str, ...]:
        return self.check(text.split(","))

    def check(self, value: Any) -> tuple[str, ...]:
        if isinstance(value, str):
            return self.parse(value)
        if not isinstance(value, list | tuple) or not value or not all(
            isinstance(v, str) and re.fullmatch(r"[A-Za-z0-9_.\-]+", v) for v in value
        ):
            raise ValueError(f"is not {self.describe()}")
        return tuple(value)

    def format(self, value: Any) -> str:
        return ",".join(value)

    def to_json(self, value: Any) -> list[str]:
        return list(value)

    def describe(self) -> str:
        return "names separated by commas"

    def schema(self) -> dict[str, Any]:
        return {"type": "array", "minItems": 1, "items": {"type": "string"}}


@dataclass(frozen=True)
class Target(Kind):
    """One condition on a metric an encoder must meet, e.g. ``ssimulacra2>=80``."""

    metrics: Callable[[], Collection[str]]

    def parse(self, text: str) -> Gate:
        return Gates(self.metrics).parse(text)[0] if ":" not in text else self._fail()

    def check(self, value: Any) -> Gate:
        if isinstance(value, Gate):
            return value
        return super().check(value)

    def _fail(self) -> Gate:
        raise ValueError(f"is not {self.describe()}")

    def format(self, value: Any) -> str:
        return str(value)

    def to_json(self, value: Any) -> str:
        return str(value)

    def describe(self) -> str:
        return f"one condition such as ssimulacra2>=80 ({', '.join(self.metrics())})"

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "pattern": f"^{GATE.pattern}$"}
