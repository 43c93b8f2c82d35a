"""Reviewers of the review app: accounts with passwords, and their sessions.

Passwords are people's, so guessable: they are hashed with Argon2id (argon2-cffi), a slow,
memory-hard function, and wrong ones are throttled per reviewer: after :data:`FREE_TRIES` in
a row, every further try waits 1, 2, 4… seconds (at most :data:`MOST_WAIT`) whether it is
right or not. An unknown name costs a hash too and answers as a wrong password does, so
neither the time nor the message tells who exists. (API keys, high-entropy secrets, need no
such care: see :mod:`pixelmill.service.auth`.)

A session's secret (32 random bytes) lives in the reviewer's cookie; the database keeps its
SHA-256, beside a CSRF token that every form and write of the app must carry.
"""

from __future__ import annotations

import functools
import hashlib
import math
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import argon2
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pixelmill.config import Settings
from pixelmill.database import connect, make_tables, writing
from pixelmill.errors import MissingError, UsageError
from pixelmill.review.schema import reviewers, sessions
from pixelmill.review.store import checked

SESSION = 12 * 3600.0
"""A session's life in seconds."""
FREE_TRIES = 5
"""Wrong passwords in a row before tries are throttled."""
MOST_WAIT = 900.0
"""The longest wait between tries, in seconds."""
PASSWORD = (10, 1024)
"""Shortest and longest password."""
HASHES_AT_ONCE = 2
"""Password hashes computed at once in a process: each takes 64 MiB for a moment, so a flood of
sign-ins waits in line instead of taking the memory of the service."""
REFUSED = "wrong name or password"


class SignInRefused(UsageError):
    """A sign-in was refused: a wrong name or password, or too many of them (then
    ``retry_after`` says in how many seconds to try again)."""

    kind = "sign-in"

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Reviewer:
    """A reviewer as others see her: her name, the queues she may review, when she was made."""

    name: str
    queues: tuple[str, ...]
    created: float

    def may_review(self, queue: str) -> bool:
        return queue in self.queues


@dataclass(frozen=True)
class Session:
    """A signed-in reviewer's session."""

    token: str
    """The secret, for the cookie (the database keeps its digest only)."""
    csrf: str
    reviewer: Reviewer
    expires: float


class Reviewers:
    """The reviewers and sessions of a job database."""

    def __init__(self, engine: Engine, clock: Callable[[], float] = time.time,
                 hasher: argon2.PasswordHasher | None = None) -> None:  # fmt: skip
        self.engine, self.clock = engine, clock
        self.hasher = hasher or argon2.PasswordHasher()
        self._hashing = threading.BoundedSemaphore(HASHES_AT_ONCE)
        make_tables(engine, (reviewers, sessions))

    @classmethod
    def of(cls, settings: Settings) -> Reviewers:
        """The reviewers of the settings' job database."""
        return cls(connect(settings.job_database, "job database"))

    def add(self, name: str, password: str | None = None, queues: Iterable[str] = ()) -> str:
        """Make a reviewer; her password (generated when not given)."""
        checked(name, "reviewer")
        password = _password(password)
        row = {"name": name, "password": self.hasher.hash(password),
               "queues": list(_queues(queues)), "created": self.clock()}  # fmt: skip
        try:
            with writing(self.engine) as db:
                db.execute(reviewers.insert().values(row))
        except sa.exc.IntegrityError:
            raise UsageError(f"reviewer {name} exists already") from None
        return password

    def password(self, name: str, password: str | None = None) -> str:
        """Give a reviewer a new password (generated when not given), ending her sessions."""
        password = _password(password)
        hashed = self.hasher.hash(password)
        with writing(self.engine) as db:
            _found(db.execute(reviewers.update().where(reviewers.c.name == name).values(
                password=hashed, failures=0, locked_until=0)), name)  # fmt: skip
            db.execute(sessions.delete().where(sessions.c.reviewer == name))
        return password

    def grant(self, name: str, queues: Iterable[str]) -> Reviewer:
        """Set the queues a reviewer may review (replacing those she had)."""
        queues = list(_queues(queues))
        with writing(self.engine) as db:
            _found(db.execute(reviewers.update().where(reviewers.c.name == name)
                              .values(queues=queues)), name)  # fmt: skip
        return self.get(name)

    def get(self, name: str) -> Reviewer:
        """The reviewer called ``name``."""
        with self.engine.connect() as db:
            row = db.execute(sa.select(reviewers).where(reviewers.c.name == name)).first()
        if row is None:
            raise _missing(name)
        return _reviewer(row)

    def list(self) -> list[Reviewer]:
        """Every reviewer, by name."""
        with self.engine.connect() as db:
            return [_reviewer(row) for row in
                    db.execute(sa.select(reviewers).order_by(reviewers.c.name))]  # fmt: skip

    def remove(self, name: str) -> None:
        """Remove a reviewer and end her sessions (her verdicts stay)."""
        with writing(self.engine) as db:
            _found(db.execute(reviewers.delete().where(reviewers.c.name == name)), name)
            db.execute(sessions.delete().where(sessions.c.reviewer == name))

    def sign_in(self, name: str, password: str) -> Session:
        """A new session for ``name`` if ``password`` is hers (see the module's throttling)."""
        now = self.clock()
        with self.engine.connect() as db:
            row = db.execute(sa.select(reviewers).where(reviewers.c.name == name)).first()
        if row is None:
            self._verify(self._dummy, password)
            raise SignInRefused(REFUSED)
        if row.locked_until > now:
            wait = row.locked_until - now
            raise SignInRefused(f"too many wrong passwords; try again in {math.ceil(wait)} s",
                                wait)  # fmt: skip
        if not self._verify(row.password, password):
            self._failed(name, now)
            raise SignInRefused(REFUSED)
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        changes: dict[str, Any] = {"failures": 0, "locked_until": 0}
        if self.hasher.check_needs_rehash(row.password):
            changes["password"] = self.hasher.hash(password)
        with writing(self.engine) as db:
            db.execute(reviewers.update().where(reviewers.c.name == name).values(changes))
            db.execute(sessions.insert().values(digest=_digest(token), reviewer=name, csrf=csrf,
                                                created=now, expires=now + SESSION))  # fmt: skip
        return Session(token, csrf, _reviewer(row), now + SESSION)

    def session(self, token: str) -> Session | None:
        """The live session of ``token``; None when unknown, expired or its reviewer gone."""
        query = (sa.select(sessions.c.csrf, sessions.c.expires, reviewers.c.name,
                           reviewers.c.queues, reviewers.c.created)
                 .join(reviewers, reviewers.c.name == sessions.c.reviewer)
                 .where(sessions.c.digest == _digest(token)))  # fmt: skip
        with self.engine.connect() as db:
            row = db.execute(query).first()
        if row is None:
            return None
        if row.expires <= self.clock():
            self.sign_out(token)
            return None
        return Session(token, row.csrf, _reviewer(row), row.expires)

    def sign_out(self, token: str) -> None:
        """End the session of ``token`` (nothing when there is none)."""
        with writing(self.engine) as db:
            db.execute(sessions.delete().where(sessions.c.digest == _digest(token)))

    def _failed(self, name: str, now: float) -> None:
        """Count a wrong password, in the transaction that reads the count: tries at once
        each count."""
        with writing(self.engine) as db:
            failures = db.execute(sa.select(reviewers.c.failures).where(reviewers.c.name == name)
                                  .with_for_update()).scalar()  # fmt: skip
            if failures is None:  # removed meanwhile
                return
            failures += 1
            wait = min(2.0 ** (failures - FREE_TRIES), MOST_WAIT) if failures >= FREE_TRIES else 0
            db.execute(reviewers.update().where(reviewers.c.name == name).values(
                failures=failures, locked_until=now + wait))

    @functools.cached_property
    def _dummy(self) -> str:
        """A hash to check unknown names' passwords against, so they take as long."""
        return self.hasher.hash(secrets.token_urlsafe(16))

    def _verify(self, hashed: str, password: str) -> bool:
        try:
            with self._hashing:
                return self.hasher.verify(hashed, password)
        except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
            return False


def _password(password: str | None) -> str:
    if password is None:
        return secrets.token_urlsafe(15)
    if not PASSWORD[0] <= len(password) <= PASSWORD[1]:
        raise UsageError(f"a password of {len(password)} characters; give {PASSWORD[0]} to "
                         f"{PASSWORD[1]}")  # fmt: skip
    return password


def _queues(queues: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(checked(q.strip(), "queue") for q in queues if q.strip()))


def _found(result: Any, name: str) -> None:
    if result.rowcount == 0:
        raise _missing(name)


def _missing(name: str) -> MissingError:
    return MissingError(f"no reviewer {name!r} (pixelmill reviewers list shows them)")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _reviewer(row: Any) -> Reviewer:
    return Reviewer(row.name, tuple(row.queues or ()), row.created)
