"""Reviewers: Argon2id hashes, sessions kept as digests, wrong passwords throttled alike for
known and unknown names, and the ``pixelmill reviewers`` commands."""

from __future__ import annotations

import contextlib
import io
import json
import re
import threading
import time

import argon2
import pytest
import sqlalchemy as sa
from conftest import FakeClock

from pixelmill.database import connect
from pixelmill.errors import MissingError, UsageError
from pixelmill.review.accounts import (
    FREE_TRIES,
    HASHES_AT_ONCE,
    SESSION,
    Reviewers,
    SignInRefused,
)
from pixelmill.review.schema import reviewers as table
from pixelmill.review.schema import sessions

CHEAP = argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
PASSWORD = "correct horse battery"


@pytest.fixture
def accounts(database_url):
    clock = FakeClock()
    engine = connect(database_url)
    made = Reviewers(engine, clock.now, CHEAP)
    made.clock_control = clock
    yield made
    engine.dispose()


def test_passwords_are_argon2id_hashes_and_sessions_digests(accounts) -> None:
    generated = accounts.add("bob", queues=["faces", "faces", "sky"])
    assert re.fullmatch(r"[A-Za-z0-9_-]{16,}", generated)
    accounts.add("ann", PASSWORD, ["faces"])
    with accounts.engine.connect() as db:
        stored = db.execute(sa.select(table.c.password).where(table.c.name == "ann")).scalar()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    session = accounts.sign_in("ann", PASSWORD)
    with accounts.engine.connect() as db:
        digests = db.execute(sa.select(sessions.c.digest)).scalars().all()
    assert session.token not in digests and len(digests) == 1 and session.csrf != session.token
    found = accounts.session(session.token)
    assert found.reviewer.name == "ann" and found.csrf == session.csrf
    assert found.reviewer.may_review("faces") and not found.reviewer.may_review("sky")
    assert accounts.get("bob").queues == ("faces", "sky")
    accounts.sign_out(session.token)
    assert accounts.session(session.token) is None
    with pytest.raises(UsageError, match="exists"):
        accounts.add("ann", PASSWORD)
    for name, password in (("cid", "short"), ("cid", "x" * 1025), ("../cid", PASSWORD)):
        with pytest.raises(UsageError):
            accounts.add(name, password)
    assert [r.name for r in accounts.list()] == ["ann", "bob"]


def test_wrong_names_and_passwords_are_refused_alike_then_throttled(accounts) -> None:
    accounts.add("ann", PASSWORD)
    messages = set()
    for name, password in (("ann", "wrong password"), ("nobody", PASSWORD)):
        with pytest.raises(SignInRefused) as refused:
            accounts.sign_in(name, password)
        messages.add(str(refused.value))
    assert messages == {"wrong name or password"}
    for _ in range(FREE_TRIES - 1):
        with pytest.raises(SignInRefused):
            accounts.sign_in("ann", "wrong password")
    with pytest.raises(SignInRefused) as throttled:
        accounts.sign_in("ann", PASSWORD)  # right, but too soon
    assert throttled.value.retry_after == 1
    assert str(throttled.value) == "too many wrong passwords; try again in 1 s"
    accounts.clock_control.advance(1.5)
    with pytest.raises(SignInRefused):
        accounts.sign_in("ann", "wrong password")
    with pytest.raises(SignInRefused) as longer:
        accounts.sign_in("ann", PASSWORD)
    assert longer.value.retry_after == 2  # the wait doubles
    accounts.clock_control.advance(2.5)
    assert accounts.sign_in("ann", PASSWORD).reviewer.name == "ann"  # and success resets it
    with pytest.raises(SignInRefused) as fresh:
        accounts.sign_in("ann", "wrong password")
    assert fresh.value.retry_after is None


def test_wrong_passwords_at_once_each_count(accounts) -> None:
    accounts.add("ann", PASSWORD)
    tries = FREE_TRIES - 1  # fewer than the free ones, so none is refused unchecked

    def try_once() -> None:
        with contextlib.suppress(SignInRefused):
            accounts.sign_in("ann", "wrong password")

    threads = [threading.Thread(target=try_once) for _ in range(tries)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with accounts.engine.connect() as db:
        assert db.execute(sa.select(table.c.failures)).scalar() == tries
    with pytest.raises(SignInRefused) as refused:
        accounts.sign_in("ann", "wrong password")
    assert refused.value.retry_after is None  # the fifth: throttling starts after it
    with pytest.raises(SignInRefused) as throttled:
        accounts.sign_in("ann", PASSWORD)
    assert throttled.value.retry_after == 1


def test_a_flood_of_sign_ins_hashes_two_at_a_time(database_url) -> None:
    """Each Argon2 hash takes 64 MiB for a moment: a flood of sign-ins waits in line."""
    running, most, lock = [0], [0], threading.Lock()

    class Counting(argon2.PasswordHasher):
        def verify(self, hashed: str, password: str) -> bool:
            with lock:
                running[0] += 1
                most[0] = max(most[0], running[0])
            time.sleep(0.02)
            with lock:
                running[0] -= 1
            return super().verify(hashed, password)

    engine = connect(database_url)
    accounts = Reviewers(engine, hasher=Counting(time_cost=1, memory_cost=8, parallelism=1))
    accounts.add("ann", PASSWORD)

    def try_once(name: str) -> None:
        with contextlib.suppress(SignInRefused):
            accounts.sign_in(name, "wrong password")

    threads = [threading.Thread(target=try_once, args=(f"nobody{i}",)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most[0] == HASHES_AT_ONCE
    engine.dispose()


def test_sessions_end_with_time_a_new_password_or_the_reviewer(accounts) -> None:
    accounts.add("ann", PASSWORD, ["faces"])
    first = accounts.sign_in("ann", PASSWORD)
    assert first.expires == accounts.clock_control.now() + SESSION
    accounts.clock_control.advance(SESSION + 1)
    assert accounts.session(first.token) is None
    with accounts.engine.connect() as db:
        assert db.execute(sa.select(sa.func.count()).select_from(sessions)).scalar() == 0
    second = accounts.sign_in("ann", PASSWORD)
    new = accounts.password("ann")
    assert accounts.session(second.token) is None and new != PASSWORD
    third = accounts.sign_in("ann", new)
    assert accounts.grant("ann", ["sky"]).queues == ("sky",)
    assert accounts.session(third.token).reviewer.queues == ("sky",)
    accounts.remove("ann")
    assert accounts.session(third.token) is None
    for missing in (lambda: accounts.get("ann"), lambda: accounts.password("ann"),
                    lambda: accounts.grant("ann", ["sky"]), lambda: accounts.remove("ann")):
        with pytest.raises(MissingError, match="no reviewer 'ann'"):
            missing()


def test_the_reviewers_commands(cli, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PIXELMILL_DB", f"sqlite:///{tmp_path / 'jobs.db'}")
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    status, out, _ = cli("reviewers", "add", "ann", "--password-stdin", "--queues", "faces,sky")
    assert status == 0 and PASSWORD not in out
    status, out, _ = cli("reviewers", "add", "bob")
    assert status == 0 and "password for bob (shown this once): " in out
    generated = out.rsplit(": ", 1)[1].strip()
    assert cli("reviewers", "add", "bob")[0] == 2
    listed = json.loads(cli("reviewers", "list", "--json")[1])
    assert [(r["name"], r["queues"]) for r in listed] == [("ann", ["faces", "sky"]), ("bob", [])]
    assert cli("reviewers", "grant", "bob", "--queues", "faces")[0] == 0
    assert cli("reviewers", "grant", "bob")[0] == 2  # --queues is needed, not taken as none
    engine = connect(f"sqlite:///{tmp_path / 'jobs.db'}")
    accounts = Reviewers(engine)
    assert accounts.sign_in("ann", PASSWORD).reviewer.queues == ("faces", "sky")
    assert accounts.sign_in("bob", generated).reviewer.queues == ("faces",)
    monkeypatch.setattr("sys.stdin", io.StringIO("a new passphrase\n"))
    status, out, _ = cli("reviewers", "password", "ann", "--password-stdin")
    assert status == 0 and out == ""
    assert accounts.sign_in("ann", "a new passphrase").reviewer.name == "ann"
    assert cli("reviewers", "remove", "bob")[0] == 0
    assert cli("reviewers", "remove", "bob")[0] == 2
    assert [r.name for r in accounts.list()] == ["ann"]
    engine.dispose()
