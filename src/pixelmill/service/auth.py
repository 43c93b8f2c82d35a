"""API keys of the jobs API: stored hashed in the job database, each with its own request rate
and upload size limits.

A key is 32 random bytes shown once when it is made (``pixelmill keys add``); the database keeps
its SHA-256 only, which is enough for a secret of that strength (no salt or slow hash needed:
there is nothing to guess). While no key exists the API is open, as suits one machine on
loopback; the first key closes it. Callers send ``Authorization: Bearer KEY`` or
``X-API-Key: KEY``. A key's name is also its folder in the storage (``keys/NAME/``), where its
uploads and outputs go; ``prefixes`` grant it more of the storage.

Rates are token buckets kept in each API process (a key's limit applies per process): a key
with ``rate`` requests per minute may burst that many, then gets ``429`` with ``Retry-After``.
Keys are checked by ASGI middleware (:class:`KeyGuard`), before a request's body is read: a
caller without a key cannot make the API take in an upload. On-demand images (``/img/``) need
no key, but a key given with one is checked the same way and the render is its work.

A key may have a monthly budget (see :mod:`pixelmill.usage.budgets`): once a hard budget is
spent, the key's new work (job submissions, on-demand images) is refused with ``402`` and the
reason until the month ends or the budget is raised; a soft budget only alerts.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.responses import JSONResponse

from pixelmill.database import make_tables
from pixelmill.errors import UsageError
from pixelmill.usage import Budgets

PREFIX = "pm_"
WORK = ("/v1/jobs", "/v1/jobs/upload")
"""Paths whose POST is new work, refused past a hard budget (as is every ``/img/`` request
made with a key)."""
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
"""What a key may be called: its name is a folder of the storage."""

metadata = sa.MetaData()
keys = sa.Table(
    "pixelmill_api_keys", metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("digest", sa.String(64), nullable=False, unique=True),
    sa.Column("rate", sa.Integer),
    sa.Column("max_bytes", sa.BigInteger),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("prefixes", sa.Text),
)  # fmt: skip


@dataclass(frozen=True)
class Key:
    """A key's name and limits (the secret itself is never stored)."""

    name: str
    rate: int | None
    """Requests per minute, or None for no limit."""
    max_bytes: int | None
    """Largest upload in bytes, or None for the service's limit."""
    created_at: float
    prefixes: tuple[str, ...] = ()
    """Where in the storage it may read and write besides its own folder."""

    @classmethod
    def from_row(cls, row: Any) -> Key:
        return cls(row.name, row.rate, row.max_bytes, row.created_at,
                   tuple(json.loads(row.prefixes or "[]")))  # fmt: skip


class ApiKeys:
    """The keys in the job database behind ``engine``, with their budgets (months read from
    ``clock()``); the table is made when missing."""

    def __init__(self, engine: Engine, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        make_tables(engine, (keys,))
        self.budgets = Budgets(engine, clock)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def add(self, name: str, rate: int | None = None, max_bytes: int | None = None,
            prefixes: tuple[str, ...] = (), budget: float | None = None,
            soft_budget: bool = False) -> str:  # fmt: skip
        """Make a key, with a monthly ``budget`` if given; the secret is returned once and
        cannot be read back."""
        if not NAME.fullmatch(name):
            raise UsageError(f"a key's name is its storage folder: 1 to 100 letters, digits, "
                             f"'.', '_' or '-', not starting with '.' or '-' (not {name!r})")
        for label, value in (("rate", rate), ("max_bytes", max_bytes)):
            if value is not None and value < 1:
                raise UsageError(f"{label} must be at least 1, not {value}")
        if budget is not None and budget <= 0:
            raise UsageError(f"a budget must be more than 0, not {budget:g}")
        secret = PREFIX + secrets.token_urlsafe(32)
        row = {"name": name, "digest": _digest(secret), "rate": rate, "max_bytes": max_bytes,
               "created_at": time.time(), "prefixes": json.dumps(list(prefixes))}  # fmt: skip
        with self.engine.begin() as db:
            if db.execute(sa.select(keys.c.name).where(keys.c.name == name)).first():
                raise UsageError(f"a key named {name!r} exists; revoke it first")
            db.execute(keys.insert().values(row))
        if budget is not None:
            self.budgets.set(name, budget, soft_budget)
        return secret

    def revoke(self, name: str) -> None:
        with self.engine.begin() as db:
            if db.execute(keys.delete().where(keys.c.name == name)).rowcount == 0:
                raise UsageError(f"no key named {name!r}")
        self.budgets.remove(name)

    def budget(self, name: str, monthly: float | None, soft: bool = False) -> None:
        """Give the key ``name`` a monthly budget, or none (``None``)."""
        with self.engine.connect() as db:
            if db.execute(sa.select(keys.c.name).where(keys.c.name == name)).first() is None:
                raise UsageError(f"no key named {name!r}")
        if monthly is None:
            self.budgets.remove(name)
        else:
            self.budgets.set(name, monthly, soft)

    def list(self) -> list[Key]:
        with self.engine.connect() as db:
            rows = db.execute(sa.select(keys).order_by(keys.c.name)).all()
        return [Key.from_row(row) for row in rows]

    def required(self) -> bool:
        """Whether callers must give a key (one exists)."""
        with self.engine.connect() as db:
            return db.execute(sa.select(keys.c.name).limit(1)).first() is not None

    def find(self, secret: str) -> Key | None:
        """The key whose secret this is, if any."""
        digest = _digest(secret)
        with self.engine.connect() as db:
            row = db.execute(sa.select(keys).where(keys.c.digest == digest)).first()
        if row is None or not hmac.compare_digest(row.digest, digest):
            return None
        return Key.from_row(row)

    def spend(self, key: Key) -> float:
        """Take one request from the key's bucket: 0 when allowed, else seconds to wait."""
        if key.rate is None:
            return 0.0
        now, per_second = time.monotonic(), key.rate / 60
        with self._lock:
            tokens, then = self._buckets.get(key.name, (float(key.rate), now))
            tokens = min(float(key.rate), tokens + (now - then) * per_second)
            if tokens < 1:
                self._buckets[key.name] = (tokens, now)
                return (1 - tokens) / per_second
            self._buckets[key.name] = (tokens - 1, now)
            return 0.0


class KeyGuard:
    """ASGI middleware: every request below ``prefix`` needs a valid key once one exists, within
    its rate and, by ``Content-Length``, its upload size; below ``optional`` a key is checked
    only when one is given. New work is refused past the key's hard budget. The key is left in
    the request's state (``request.state.key``, None while the API is open or none was
    given)."""

    def __init__(self, app: Any, keys: ApiKeys, prefix: str = "/v1/",
                 optional: str = "/img/") -> None:  # fmt: skip
        self.app, self.keys, self.prefix, self.optional = app, keys, prefix, optional

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        optional = path.startswith(self.optional)
        if scope["type"] != "http" or not (optional or path.startswith(self.prefix)):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if optional and not _given(headers):
            await self.app(scope, receive, send)
            return
        work = optional or scope["method"] == "POST" and path in WORK
        key, refusal = await run_in_threadpool(self.check, headers, work)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        scope.setdefault("state", {})["key"] = key
        await self.app(scope, receive, send)

    def check(self, headers: Headers, work: bool = False) -> tuple[Key | None, JSONResponse | None]:
        """The request's key, or the answer that refuses it (``work``: a request for new
        work, refused past the key's hard budget)."""
        given = _given(headers)
        key = self.keys.find(given) if given else None  # a known key: one query, not two
        if key is None and not self.keys.required():
            return None, None
        if key is None:
            message = ("an API key is needed: Authorization: Bearer KEY or X-API-Key: KEY"
                       if not given else "unknown API key")  # fmt: skip
            return None, _refusal(401, "auth", message, {"WWW-Authenticate": "Bearer"})
        wait = self.keys.spend(key)
        if wait:
            return None, _refusal(429, "rate", f"key {key.name!r} is over its rate of "
                                  f"{key.rate} requests a minute; retry in {wait:.1f} s",
                                  {"Retry-After": str(math.ceil(wait))})  # fmt: skip
        length = headers.get("content-length", "")
        if key.max_bytes and length.isdigit() and int(length) > key.max_bytes:
            return None, _refusal(413, "limit", f"the request body is over key {key.name!r}'s "
                                  f"limit of {key.max_bytes:,} bytes")  # fmt: skip
        if work and (spent := self.keys.budgets.refusal(key.name)):
            return None, _refusal(402, "budget", spent)
        return key, None


def _given(headers: Headers) -> str:
    """The key a request gives (``X-API-Key``, or ``Authorization: Bearer``), or ''."""
    given = headers.get("x-api-key") or ""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        given = token.strip()
    return given


def _refusal(status: int, kind: str, message: str,
             headers: dict[str, str] | None = None) -> JSONResponse:  # fmt: skip
    return JSONResponse({"detail": {"kind": kind, "message": message}}, status, headers)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
