"""The filter language of dataset items: a query is parsed once (every error points at its
token), printed back as canonical text, and compiled to a parameterised SQLAlchemy condition on
the items table, the same on SQLite and PostgreSQL. Written by hand: no maintained library
compiles a small filter language to SQLAlchemy, and the typing, the errors and the SQL would
still be ours to write.

Grammar (EBNF). Keywords, field and metric names are case-insensitive; whitespace separates
tokens; ``not`` binds tighter than ``and``, ``and`` tighter than ``or``::

    query      = or ;
    or         = and , { "or" , and } ;
    and        = unary , { "and" , unary } ;
    unary      = "not" , unary | "(" , or , ")" | comparison ;
    comparison = field , operator , value
               | field , [ "not" ] , "in" , "(" , literal , { "," , literal } , ")" ;
    field      = item_field | "tag" | "verdict" | "review" | "qc." , metric ;  (* see Fields *)
    operator   = "=" | "==" | "!=" | "<" | "<=" | ">" | ">=" | "~" | "^=" ;
    value      = literal | "null" | percentile | "ago" , "(" , duration , ")" ;
    literal    = string | number ;
    string     = '"' , { char | escape } , '"' | "'" , { char | escape } , "'" ;
    escape     = "\\" , ( "\\" | '"' | "'" | "n" | "t" ) ;
    number     = [ "-" ] , ( digits , [ "." , [ digits ] ] | "." , digits ) ,
                 [ ( "e" | "E" ) , [ "+" | "-" ] , digits ] ;
    percentile = "p" , digits , [ "." , digits ] ;          (* 0 to 100 *)
    duration   = digits , [ "." , digits ] , ( "s" | "m" | "h" | "d" | "w" ) ;

Fields:

- the item fields of :mod:`pixelmill.datasets.fields`: text (uri, sha256, role, parent, format,
  colour_space, icc, camera_make, camera_model), int (width, height, bands, bit_depth, pages,
  orientation, file_size), float (mean_luma, contrast, colourfulness, sharpness, noise,
  blockiness, jpeg_quality, clipped_black, clipped_white, entropy, aspect) and time (created,
  updated, captured);
- ``tag`` (text): the item has a tag that matches; ``verdict`` (text): an event of the item has
  a QC verdict that matches (``pass``, ``flag``, ``hold``); ``review`` (text): the latest
  decision of a review queue on the item matches (``approved``, ``rejected``, or ``reopened``
  when a reviewer took back the verdict behind it); ``qc.METRIC`` (float): a QC value of that
  metric (:mod:`pixelmill.quality.metrics`, plugins included) recorded for the item matches.
  Events and QC values belong to the item's content (its dataset and SHA-256).

Values and operators:

- numbers (int and float fields): ``= != < <= > >= in``;
- times: an ISO 8601 date or date-time string (UTC unless it has an offset), seconds since the
  epoch as a number, or ``ago(24h)``, the time of the query less a duration (s, m, h, d, w);
  ``= != < <= > >= in``;
- text: ``=``, ``!=`` and ``in`` compare exactly; ``~`` (contains) and ``^=`` (starts with)
  ignore case (ASCII letters only on SQLite) and take ``%`` and ``_`` literally; ordering a
  text field is an error;
- ``pN``: the nearest-rank percentile N (0 to 100) of the same item field over the items in
  view, its empty values left out: the smallest value that at least N % of the values do not
  exceed (``p0`` the minimum, ``p50`` the median, ``p100`` the maximum); compared with
  ``= != < <= > >=``, on number and time fields; resolved before compiling
  (:func:`percentile_value`); with no values in view, ``=``, ``<`` … with it are false (and
  ``!=`` true);
- ``null``: ``field = null`` holds when the item has no value (no tag, no verdict, no QC value
  of that metric), ``field != null`` when it has one.

Every comparison is true or false, never unknown: an empty value equals nothing and has no
order, so ``=``, ``<``, ``in``, ``~`` … are false on it, and ``!=`` and ``not in`` are always the
negations of ``=`` and ``in`` (``format != "png"`` holds for an item with no format,
``tag != "x"`` for an item without that tag).

Examples::

    width >= 4000 and format = "jpeg" and qc.ssim < 0.9 and tag = "outdoor"
    sharpness < p10
    created > "2026-11-01" and created < ago(7d)
    not (format in ("png", "webp")) or height < 100
    camera_model != null and icc = null
    uri ~ "holiday/" or uri ^= "s3://bucket/raw/"
    verdict = "flag" and tag not in ("reviewed", "ok")

Limits against hostile input: at most 2000 characters, parentheses and ``not`` nested at most
32 deep, 64 comparisons, and 1000 values in a list.

Errors are :class:`~pixelmill.errors.QueryError`: ``query: WHAT at column N`` (N counts
characters from 1), the text with carets under the offending token, and a hint where one helps::

    query: unknown field 'widht' at column 1 (did you mean 'width'?)
      widht > 3
      ^^^^^
    fields: uri, sha256, …
"""

from __future__ import annotations

import dataclasses
import datetime
import difflib
import math
import re
import time
from decimal import Decimal
from fractions import Fraction
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pixelmill.datasets import schema
from pixelmill.datasets.fields import BY_NAME
from pixelmill.errors import QueryError
from pixelmill.quality.metrics import metrics

MAX_LENGTH = 2000
MAX_DEPTH = 32
MAX_COMPARISONS = 64
MAX_LIST = 1000

ORDERING = ("<", "<=", ">", ">=")
MATCHING = ("~", "^=")
OPERATORS = ("=", "!=", *ORDERING, *MATCHING)
NEGATIONS = {"!=": "=", "not in": "in"}
KEYWORDS = ("and", "or", "not", "in", "null", "ago")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
VIRTUAL = {"tag": "text", "verdict": "text", "review": "text"}
"""Fields that are not columns of the item: an item has any number of tags and verdicts."""
RELATED = {"tag": schema.tags.c.tag, "verdict": schema.events.c.verdict,
           "review": schema.events.c.verdict}  # fmt: skip
REVIEW_KINDS = ("review", "decision")
"""Events of human review, whose verdicts are not QC verdicts."""
"""Their columns; a ``qc.METRIC`` field is :data:`schema.qc`'s ``value``."""
_INT64 = 2**63

# nodes of the tree


@dataclasses.dataclass(frozen=True)
class Percentile:
    """``pN``: the nearest-rank percentile ``q`` (0..100) of the compared field."""

    q: float

    def __str__(self) -> str:
        return f"p{_plain(self.q)}"


@dataclasses.dataclass(frozen=True)
class Ago:
    """``ago(24h)``: the time of the query less ``amount`` units."""

    amount: float
    unit: str

    @property
    def seconds(self) -> float:
        return self.amount * UNITS[self.unit]

    def __str__(self) -> str:
        return f"ago({_plain(self.amount)}{self.unit})"


Scalar = str | int | float
Value = Scalar | None | Percentile | Ago | tuple[Scalar, ...]


@dataclasses.dataclass(frozen=True)
class Compare:
    """``field op value``; ``op`` is one of :data:`OPERATORS`, ``in`` or ``not in`` (with a
    tuple of literals); ``field`` is an item field, ``tag``, ``verdict`` or ``qc.METRIC``."""

    field: str
    op: str
    value: Value

    def __str__(self) -> str:
        return f"{self.field} {self.op} {_text(self.value)}"


@dataclasses.dataclass(frozen=True)
class Not:
    operand: Node

    def __str__(self) -> str:
        inner = str(self.operand)
        return f"not ({inner})" if isinstance(self.operand, And | Or) else f"not {inner}"


@dataclasses.dataclass(frozen=True)
class And:
    operands: tuple[Node, ...]

    def __str__(self) -> str:
        return " and ".join(f"({o})" if isinstance(o, Or) else str(o) for o in self.operands)


@dataclasses.dataclass(frozen=True)
class Or:
    operands: tuple[Node, ...]

    def __str__(self) -> str:
        return " or ".join(str(o) for o in self.operands)


Node = Compare | Not | And | Or


@dataclasses.dataclass(frozen=True)
class Query:
    """A parsed query (made by :func:`parse`); ``str()`` gives its canonical text, which parses
    back to an equal query."""

    root: Node

    def __str__(self) -> str:
        return str(self.root)

    def percentiles(self) -> set[tuple[str, float]]:
        """The (field, q) pairs whose percentile :func:`compile` needs."""
        found, todo = set(), [self.root]
        while todo:
            node = todo.pop()
            if isinstance(node, Compare) and isinstance(node.value, Percentile):
                found.add((node.field, node.value.q))
            elif isinstance(node, Not):
                todo.append(node.operand)
            elif isinstance(node, And | Or):
                todo.extend(node.operands)
        return found


# public functions


def parse(text: str) -> Query:
    """The query of ``text``; :class:`QueryError` names the offending token and its column."""
    if len(text) > MAX_LENGTH:
        raise _error(text, MAX_LENGTH, len(text), "text",
                     f": a query has at most {MAX_LENGTH} characters, this one {len(text)}")
    return Query(_Parser(text).query())


def compile(query: Query, items: sa.Table | sa.Alias, *,
            percentile: dict[tuple[str, float], float | None] | None = None,
            now: float | None = None, dataset: int | None = None) -> sa.ColumnElement[bool]:  # fmt: skip
    """The condition on ``items`` (:data:`schema.items` or an alias of it) that the query
    selects; every value is a bound parameter. ``percentile`` holds the value of each pair of
    :meth:`Query.percentiles` (None: no values in view); ``now`` (seconds since the epoch,
    default the clock) is the time ``ago(…)`` counts back from. Given the one ``dataset`` the
    items belong to, ``qc.…`` and ``verdict`` become an uncorrelated ``sha256 IN (…)``, which
    SQLite evaluates once instead of once per item."""
    compiler = _Compiler(items, percentile or {}, time.time() if now is None else now, dataset)
    return compiler.node(query.root)


def order_by(sort: str, items: sa.Table | sa.Alias) -> list[sa.ColumnElement[Any]]:
    """The ORDER BY of ``--sort FIELD`` (ascending) or ``--sort -FIELD`` (descending) on an item
    field: empty values last either way, then by ``items.c.id``."""
    name = sort.strip().removeprefix("-").strip()
    if name.lower() not in BY_NAME:
        start = sort.find(name) if name else 0
        raise _error(sort, start, start + len(name), f"cannot sort by {_short(name)!r}",
                     _suggest(name.lower(), BY_NAME), f"sort fields: {', '.join(BY_NAME)}")
    column = items.c[name.lower()]
    ordered = column.desc() if sort.strip().startswith("-") else column.asc()
    return [ordered.nulls_last(), items.c.id]


def percentile_value(db: Connection, items: sa.Table | sa.Alias,
                     where: sa.ColumnElement[bool], field: str, q: float) -> float | None:  # fmt: skip
    """The nearest-rank percentile ``q`` (0..100) of ``field`` over the non-empty values of the
    rows of ``items`` matching ``where``: the value of rank ⌈q·n/100⌉ (at least 1) in ascending
    order; None when there are none. Two statements, on either database: a count, then one
    value read past the rank's offset."""
    kind = BY_NAME[field].kind if field in BY_NAME else None
    if kind not in ("int", "float", "time") or not 0 <= q <= 100:
        raise QueryError(f"no percentile {q!r} of {field!r}: percentiles 0..100 are of number "
                         f"and time fields")  # fmt: skip
    column = items.c[field]
    present = where & column.is_not(None)
    count = db.execute(sa.select(sa.func.count()).select_from(items).where(present)).scalar_one()
    if not count:
        return None
    rank = max(1, math.ceil(Fraction(q) * count / 100))
    value = db.execute(sa.select(column).where(present).order_by(column)
                       .offset(rank - 1).limit(1)).scalar()  # fmt: skip
    return None if value is None else float(value)


# lexing


class _Token(NamedTuple):
    kind: str
    """name, string, number, duration, op or end."""
    text: str
    start: int
    end: int
    value: Any = None

    def shown(self) -> str:
        return "the end" if self.kind == "end" else repr(_short(self.text))


_SKIP = re.compile(r"\s+")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw])(?![\w.])", re.ASCII)
_NUMBER = re.compile(r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_WORD = re.compile(r"[\w.]*")
_NAME = re.compile(r"[A-Za-z_]\w*(?:\.\w+(?:-\w+)*)?", re.ASCII)
_OPERATOR = re.compile(r"[=!<>~^]+|[(),]")
_PERCENTILE = re.compile(r"p(\d+(?:\.\d+)?)", re.IGNORECASE | re.ASCII)
_BAD_CHARACTER = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_ESCAPES = {"\\": "\\", '"': '"', "'": "'", "n": "\n", "t": "\t"}


def _lex(text: str) -> list[_Token]:
    if bad := _BAD_CHARACTER.search(text):
        raise _error(text, bad.start(), bad.end(),
                     f"character U+{ord(bad.group()):04X} is not allowed")
    tokens, at = [], 0
    while True:
        if skip := _SKIP.match(text, at):
            at = skip.end()
        if at == len(text):
            return [*tokens, _Token("end", "", at, at)]
        char = text[at]
        if char in "\"'":
            token = _string(text, at)
        elif match := _DURATION.match(text, at):
            token = _Token("duration", match.group(), at, match.end(),
                           (float(match.group(1)), match.group(2)))  # fmt: skip
        elif match := _NUMBER.match(text, at):
            word = _WORD.match(text, match.end())
            if word.group():
                raise _error(text, at, word.end(), f"bad number {_short(text[at:word.end()])!r}")
            token = _Token("number", match.group(), at, match.end(), _number(text, match))
        elif match := _NAME.match(text, at):
            token = _Token("name", match.group(), at, match.end())
        elif match := _OPERATOR.match(text, at):
            token = _Token("op", match.group(), at, match.end())
            if token.text not in (*OPERATORS, "==", "(", ")", ","):
                raise _error(text, at, match.end(), f"unknown operator {token.text!r}",
                             hint=f"operators: {', '.join(OPERATORS)}, in, not in")
        else:
            raise _error(text, at, at + 1, f"unexpected character {char!r}")
        tokens.append(token)
        at = token.end


def _string(text: str, start: int) -> _Token:
    quote, at, chars = text[start], start + 1, []
    while at < len(text):
        char = text[at]
        if char == quote:
            return _Token("string", text[start:at + 1], start, at + 1, "".join(chars))
        if char == "\\":
            escaped = text[at + 1:at + 2]
            if not escaped:  # the text ends after the backslash
                break
            if escaped not in _ESCAPES:
                raise _error(text, at, at + 2, f"unknown escape '{text[at:at + 2]}'",
                             hint="escapes: \\\\ \\\" \\' \\n \\t")
            chars.append(_ESCAPES[escaped])
            at += 2
        else:
            chars.append(char)
            at += 1
    raise _error(text, start, len(text), "unterminated string", f" (no closing {quote})")


def _number(text: str, match: re.Match[str]) -> int | float:
    written = match.group()
    if not math.isfinite(float(written)):
        raise _error(text, match.start(), match.end(), f"number {_short(written)}",
                     " is out of range")
    return int(written) if written.lstrip("-").isdigit() else float(written)


# parsing


class _Parser:
    """Recursive descent over the tokens; ``and`` and ``or`` chains are loops, so the only
    recursion is through parentheses and ``not``, which :data:`MAX_DEPTH` bounds."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _lex(text)
        self.at = 0
        self.depth = 0
        self.comparisons = 0

    def query(self) -> Node:
        if self.peek().kind == "end":
            raise self.fail(self.peek(), "empty query", hint="for example: width >= 4000")
        node = self.disjunction()
        if (token := self.peek()).kind != "end":
            raise self.fail(token, f"unexpected {token.shown()}", " after a complete comparison",
                            hint="join comparisons with 'and' or 'or'")
        return node

    def disjunction(self) -> Node:
        operands = [self.conjunction()]
        while self.keyword("or"):
            operands.append(self.conjunction())
        return _joined(Or, operands)

    def conjunction(self) -> Node:
        operands = [self.unary()]
        while self.keyword("and"):
            operands.append(self.unary())
        return _joined(And, operands)

    def unary(self) -> Node:
        token = self.peek()
        if self.is_keyword(token, "not") or token.text == "(":
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise self.fail(token, token.shown(), f" nests deeper than {MAX_DEPTH}")
            self.at += 1
            if token.text == "(":
                node = self.disjunction()
                self.expect(")", f"')' to close the '(' at column {token.start + 1}")
            else:
                node = Not(self.unary())
            self.depth -= 1
            return node
        return self.comparison()

    def comparison(self) -> Node:
        token = self.take()
        if token.kind != "name" or token.text.lower() in KEYWORDS:
            raise self.fail(token, f"expected a field, found {token.shown()}")
        self.comparisons += 1
        if self.comparisons > MAX_COMPARISONS:
            raise self.fail(token, f"comparison {self.comparisons}",
                            f": more than {MAX_COMPARISONS} comparisons")  # fmt: skip
        field, kind = self.field(token)
        op_token = self.take()
        op = "=" if op_token.text == "==" else op_token.text.lower()
        if op == "not" and self.is_keyword(self.peek(), "in"):
            op_token = op_token._replace(end=self.take().end)
            op = "not in"
        if op not in (*OPERATORS, "in", "not in"):
            raise self.fail(op_token, f"expected an operator after {field!r}, found "
                                      f"{op_token.shown()}",
                            hint=f"operators: {', '.join(OPERATORS)}, in, not in")  # fmt: skip
        if kind == "text" and op in ORDERING:
            raise self.fail(op_token, repr(op), f" does not order text ({field} is a text field)",
                            hint="text compares with =, !=, in, not in, ~ and ^=")
        if kind != "text" and op in MATCHING:
            raise self.fail(op_token, repr(op), f" matches text ({field} is a {_KIND[kind]})")
        if op in ("in", "not in"):
            return Compare(field, op, self.values(field, kind))
        return Compare(field, op, self.value(field, kind, op))

    def field(self, token: _Token) -> tuple[str, str]:
        name = token.text.lower()
        if name in BY_NAME:
            return name, BY_NAME[name].kind
        if name in VIRTUAL:
            return name, VIRTUAL[name]
        prefix, dot, metric = name.partition(".")
        if prefix == "qc" and dot:
            known = metrics()
            if metric not in known:
                raise self.fail(token, f"unknown metric {_short(metric)!r}", _suggest(metric, known),
                                f"metrics: {', '.join(known)}")  # fmt: skip
            return name, "float"
        fields = [*BY_NAME, *VIRTUAL, "qc.METRIC"]
        raise self.fail(token, f"unknown field {token.shown()}", _suggest(name, fields),
                        f"fields: {', '.join(fields)}")  # fmt: skip

    def value(self, field: str, kind: str, op: str) -> Value:
        token = self.take()
        if self.is_keyword(token, "null"):
            if op not in ("=", "!="):
                raise self.fail(token, "null", " compares with = and != only")
            return None
        if self.is_keyword(token, "ago"):
            if kind != "time":
                raise self.fail(token, "ago", f" is a time ({field} is a {_KIND[kind]})")
            self.expect("(", "'(' after ago")
            duration = self.take()
            if duration.kind != "duration":
                raise self.fail(duration, f"expected a duration such as 24h, found "
                                          f"{duration.shown()}", hint="units: s, m, h, d, w")
            self.expect(")", "')' after the duration")
            ago = Ago(*duration.value)
            if not math.isfinite(ago.seconds):
                raise self.fail(duration, f"duration {duration.text!r}", " is out of range")
            return ago
        if token.kind == "name" and (match := _PERCENTILE.fullmatch(token.text)):
            q = float(match.group(1))
            if not 0 <= q <= 100:
                raise self.fail(token, f"percentile {token.shown()}", " is not in p0..p100")
            if kind == "text" or field not in BY_NAME:
                raise self.fail(token, f"percentile {token.shown()}",
                                f" is of an item's number or time field, not of {field}")
            return Percentile(q)
        if token.kind in ("string", "number"):
            return self.literal(token, field, kind)
        hint = {"name": f'strings are quoted: "{_short(token.text)}"',
                "duration": f"a duration is a time ago as ago({token.text})"}.get(token.kind, "")
        raise self.fail(token, f"expected a value after {op!r}, found {token.shown()}",
                        hint=hint)

    def values(self, field: str, kind: str) -> tuple[Scalar, ...]:
        self.expect("(", "'(' to open the list of values")
        found = []
        while True:
            token = self.take()
            if token.kind not in ("string", "number"):
                raise self.fail(token, f"expected a string or number in the list, found "
                                       f"{token.shown()}")  # fmt: skip
            if len(found) == MAX_LIST:
                raise self.fail(token, f"value {MAX_LIST + 1}", f": more than {MAX_LIST} in a list")
            found.append(self.literal(token, field, kind))
            if not self.accept(","):
                self.expect(")", "',' or ')' in the list of values")
                return tuple(found)

    def literal(self, token: _Token, field: str, kind: str) -> Scalar:
        if kind == "text" and token.kind != "string":
            raise self.fail(token, f"number {_short(token.text)}", f" where {field} takes text",
                            hint=f'strings are quoted: "{_short(token.text)}"')
        if kind in ("int", "float") and token.kind != "number":
            raise self.fail(token, f"string {_short(token.text)}", f" where {field} takes a number")
        if kind == "time" and token.kind == "string" and _timestamp(token.value) is None:
            raise self.fail(token, f"string {_short(token.text)}",
                            f" is not an ISO 8601 date or date-time ({field} is a time)",
                            hint='e.g. "2026-11-01", "2026-11-01T12:00:00Z", ago(24h) or '
                                 "seconds since the epoch")  # fmt: skip
        return token.value

    # tokens

    def peek(self) -> _Token:
        return self.tokens[self.at]

    def take(self) -> _Token:
        token = self.tokens[self.at]
        self.at += token.kind != "end"
        return token

    def is_keyword(self, token: _Token, word: str) -> bool:
        return token.kind == "name" and token.text.lower() == word

    def keyword(self, word: str) -> bool:
        if self.is_keyword(self.peek(), word):
            self.at += 1
            return True
        return False

    def accept(self, op: str) -> bool:
        if self.peek().kind == "op" and self.peek().text == op:
            self.at += 1
            return True
        return False

    def expect(self, op: str, wanted: str) -> None:
        if not self.accept(op):
            token = self.peek()
            raise self.fail(token, f"expected {wanted}, found {token.shown()}")

    def fail(self, token: _Token, what: str, detail: str = "", hint: str = "") -> QueryError:
        return _error(self.text, token.start, token.end, what, detail, hint)


_KIND = {"int": "number field", "float": "number field", "time": "time field"}


def _joined(kind: type[And | Or], operands: list[Node]) -> Node:
    """One operand as is, else an And/Or with nested ones of the same kind flattened."""
    if len(operands) == 1:
        return operands[0]
    flat = [part for o in operands for part in (o.operands if isinstance(o, kind) else (o,))]
    return kind(tuple(flat))


# compiling


class _Compiler:
    def __init__(self, items: sa.Table | sa.Alias,
                 percentile: dict[tuple[str, float], float | None], now: float,
                 dataset: int | None) -> None:  # fmt: skip
        self.items, self.percentile, self.now, self.dataset = items, percentile, now, dataset

    def node(self, node: Node) -> sa.ColumnElement[bool]:
        if isinstance(node, And):
            return sa.and_(*(self.node(o) for o in node.operands))
        if isinstance(node, Or):
            return sa.or_(*(self.node(o) for o in node.operands))
        if isinstance(node, Not):
            return sa.not_(self.node(node.operand))
        return self.compare(node)

    def compare(self, node: Compare) -> sa.ColumnElement[bool]:
        positive = NEGATIONS.get(node.op, node.op)
        if node.field in BY_NAME:
            column = self.items.c[node.field]
            if node.value is None:
                return column.is_(None) if node.op == "=" else column.is_not(None)
            test = self.test(column, BY_NAME[node.field].kind, positive, node)
            if column.nullable:
                test = column.is_not(None) & test
        else:
            column = RELATED.get(node.field, schema.qc.c.value)
            if node.value is None:
                has = self.exists(node.field, column.is_not(None))
                return ~has if node.op == "=" else has
            kind = VIRTUAL.get(node.field, "float")
            test = self.exists(node.field, self.test(column, kind, positive, node))
        return sa.not_(test) if node.op in NEGATIONS else test

    def exists(self, field: str, test: sa.ColumnElement[bool]) -> sa.ColumnElement[bool]:
        """A tag, event or QC row of the item (its id; its dataset and content) passes
        ``test``: a correlated EXISTS, or, for events and QC values of a known dataset, the
        item's content IN those rows' (no row has an empty sha256)."""
        items = self.items
        if field == "tag":
            link = schema.tags.c.item_id == items.c.id
            return sa.exists().where(link, test).correlate_except(schema.tags)
        table = schema.qc if field.startswith("qc.") else schema.events
        if field == "verdict":
            metric = table.c.kind.not_in(REVIEW_KINDS)
        elif field == "review":
            metric = table.c.id == _latest_decision(table)
        else:
            metric = table.c.metric == field.partition(".")[2]
        if self.dataset is not None:
            rows = sa.select(table.c.sha256).where(table.c.dataset_id == self.dataset, metric, test)
            return items.c.sha256.in_(rows)
        link = (table.c.dataset_id == items.c.dataset_id) & (table.c.sha256 == items.c.sha256)
        return sa.exists().where(link, metric, test).correlate_except(table)

    def test(self, column: sa.ColumnElement[Any], kind: str, op: str,
             node: Compare) -> sa.ColumnElement[bool]:  # fmt: skip
        """``column op value`` for a value that is not null: false where the column is empty."""
        value = node.value
        if op == "~":
            return column.icontains(value, autoescape=True)
        if op == "^=":
            return column.istartswith(value, autoescape=True)
        if op == "in":
            values = [self.bound(kind, v, node) for v in value]
            return column.in_(sa.bindparam(None, [v for v, _ in values], expanding=True,
                                           type_=_common([t for _, t in values])))  # fmt: skip
        found, type_ = self.bound(kind, value, node)
        if found is None:  # the percentile of a view without values
            return sa.false()
        parameter = sa.literal(found, type_)
        return {"=": column == parameter, "<": column < parameter, "<=": column <= parameter,
                ">": column > parameter, ">=": column >= parameter}[op]  # fmt: skip

    def bound(self, kind: str, value: Value, node: Compare) -> tuple[Any, Any]:
        """The parameter's value and SQL type."""
        if isinstance(value, Percentile):
            key = (node.field, value.q)
            if key not in self.percentile:
                raise ValueError(f"compile needs the value of {value} of {node.field}")
            return self.percentile[key], sa.Float()
        if isinstance(value, Ago):
            return self.now - value.seconds, sa.Float()
        if isinstance(value, str):
            return (_timestamp(value), sa.Float()) if kind == "time" else (value, sa.Text())
        if isinstance(value, int) and -_INT64 <= value < _INT64:
            return value, sa.BigInteger()
        return float(value), sa.Float()


def _latest_decision(events: sa.Table) -> sa.ScalarSelect[Any]:
    """The id of the latest ``decision`` event of the item of the ``events`` row."""
    later = events.alias("decisions")
    return (sa.select(sa.func.max(later.c.id))
            .where(later.c.dataset_id == events.c.dataset_id, later.c.sha256 == events.c.sha256,
                   later.c.kind == "decision").scalar_subquery())  # fmt: skip


def _common(types: list[Any]) -> Any:
    """One SQL type for the values of a list: text, exact integers, else floats."""
    if isinstance(types[0], sa.Text):
        return sa.Text()
    return sa.BigInteger() if all(isinstance(t, sa.BigInteger) for t in types) else sa.Float()


# texts


def _timestamp(text: str) -> float | None:
    """Seconds since the epoch of an ISO 8601 date or date-time (UTC unless it has an offset);
    None if it is not one."""
    try:
        moment = datetime.datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    try:
        return moment.timestamp()
    except (OverflowError, ValueError):
        return None


def _plain(number: float) -> str:
    """A number without exponent, as short as round-tripping allows: 24, 1.5, 0.00001."""
    text = format(Decimal(repr(float(number))), "f")
    return text.removesuffix(".0") if text.endswith(".0") else text


def _text(value: Value) -> str:
    if value is None:
        return "null"
    if isinstance(value, tuple):
        return "(" + ", ".join(_text(v) for v in value) + ")"
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return '"' + escaped.replace("\n", "\\n").replace("\t", "\\t") + '"'
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _short(text: str) -> str:
    """A token as messages quote it: its first 40 characters."""
    return text if len(text) <= 40 else text[:39] + "…"


def _suggest(name: str, known: Any) -> str:
    close = difflib.get_close_matches(name, list(known), n=3)
    return f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""


def _error(text: str, start: int, end: int, what: str, detail: str = "",
           hint: str = "") -> QueryError:  # fmt: skip
    """``query: WHAT at column N DETAIL``, then the text (or the part of it around the token,
    all whitespace shown as spaces) with carets under the token, then the hint, if any."""
    end = max(end, start + 1)
    left = max(0, min(start - 30, len(text) - 76))
    shown = text[left:left + 76]
    before = "…" if left else ""
    after = "…" if left + 76 < len(text) else ""
    line = before + _BAD_CHARACTER.sub(" ", re.sub(r"\s", " ", shown)) + after
    carets = " " * (len(before) + start - left) + "^" * max(1, min(end, left + 76) - start)
    lines = [f"query: {what} at column {start + 1}{detail}", f"  {line}", f"  {carets}"]
    return QueryError("\n".join(lines + ([hint] if hint else [])))
