"""A throwaway PostgreSQL server for tests: a cluster of its own on a free loopback port, that a
test may stop and start again (same port, same data) to play a database outage.

``initdb`` makes the cluster in a temporary folder with trust authentication for the superuser
``postgres``; ``postgres`` runs as a child of the test process (killed with it, should the test
die without stopping it), listening on 127.0.0.1 only. Run as root, both run as the ``postgres``
OS user, which owns the folder: the server refuses to run as root.
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Self

_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None
_PR_SET_PDEATHSIG = 1
OS_USER = "postgres"
"""Who runs the server when the tests run as root."""


class ServerError(RuntimeError):
    """The server could not be made or started; the message ends with the tail of its log."""


def postgres_bindir() -> str | None:
    """The folder of ``initdb`` and ``postgres``: ``pg_config --bindir``, else the newest
    /usr/lib/postgresql/*/bin; None when neither has them."""
    found = []
    if pg_config := shutil.which("pg_config"):
        with contextlib.suppress(OSError, subprocess.CalledProcessError):
            found.append(subprocess.run([pg_config, "--bindir"], capture_output=True, text=True,
                                        check=True).stdout.strip())  # fmt: skip
    found += sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                    key=lambda path: int(Path(path).parent.name), reverse=True)  # fmt: skip
    for folder in found:
        if all(os.access(os.path.join(folder, name), os.X_OK) for name in ("initdb", "postgres")):
            return folder
    return None


def missing() -> str | None:
    """Why a server cannot be run here (a reason to skip), or None when it can."""
    if postgres_bindir() is None:
        return "no PostgreSQL server binaries (initdb, postgres): pg_config nor /usr/lib/postgresql"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(OS_USER)
        except KeyError:
            return f"running as root and there is no {OS_USER!r} OS user to run PostgreSQL as"
    return None


class PostgresServer:
    """One cluster: ``start()`` makes it (the first time) and runs it, ``stop()`` shuts it down
    the way ``pg_ctl stop -m fast`` does, ``url`` is the SQLAlchemy URL of its ``postgres``
    database; ``close()`` stops it and removes its folder. Also a context manager."""

    def __init__(self, timeout: float = 30.0) -> None:
        bindir = postgres_bindir()
        if bindir is None:
            raise ServerError(missing())
        self.bindir = bindir
        self.timeout = timeout
        self.port = _free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        self.root = Path(tempfile.mkdtemp(prefix="pixelmill-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._as_user: dict[str, Any] = {}
        if os.geteuid() == 0:
            owner = pwd.getpwnam(OS_USER)
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
            self._as_user = {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": [],
                             "env": {**os.environ, "HOME": str(self.root)}}  # fmt: skip

    def start(self) -> None:
        """Make the cluster if not yet made, run the server and wait until it takes connections."""
        if self.process is not None and self.process.poll() is None:
            return
        if not self.data.exists():
            made = subprocess.run(
                [os.path.join(self.bindir, "initdb"), "-D", str(self.data), "-U", "postgres",
                 "-A", "trust", "-E", "UTF8", "--no-sync"],
                cwd=self.root, capture_output=True, text=True, timeout=120, check=False,
                **self._as_user,
            )  # fmt: skip
            if made.returncode != 0:
                raise ServerError(f"initdb failed ({made.returncode}):\n{made.stdout}{made.stderr}")
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                [os.path.join(self.bindir, "postgres"), "-D", str(self.data), "-p", str(self.port),
                 "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.root}",
                 "-c", "max_connections=50", "-c", "shared_buffers=16MB"],
                cwd=self.root, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent if _LIBC else None,  # noqa: PLW1509  before exec
                **self._as_user,
            )  # fmt: skip
        self._wait_ready()

    def stop(self) -> None:
        """Fast shutdown, as ``pg_ctl stop -m fast`` (SIGINT): sessions are ended, their
        transactions rolled back, the data checkpointed; wait until the server has exited."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(self.timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise ServerError(f"PostgreSQL did not stop in {self.timeout:g} s:\n{self.tail()}")

    def close(self) -> None:
        """Stop the server (killed if need be) and remove its folder."""
        try:
            self.stop()
        finally:
            if self.process is not None and self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            shutil.rmtree(self.root, ignore_errors=True)

    def tail(self, lines: int = 30) -> str:
        """The end of the server's log."""
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _wait_ready(self) -> None:
        """Wait until a session can be opened (the server also listens while it recovers)."""
        import psycopg

        deadline = time.monotonic() + self.timeout
        while self.process.poll() is None:
            try:
                psycopg.connect(host="127.0.0.1", port=self.port, user="postgres",
                                dbname="postgres", connect_timeout=2).close()  # fmt: skip
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise ServerError(f"PostgreSQL on port {self.port} not ready after "
                                      f"{self.timeout:g} s:\n{self.tail()}") from None  # fmt: skip
                time.sleep(0.1)
        raise ServerError(f"postgres exited with code {self.process.returncode}:\n{self.tail()}")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _die_with_parent() -> None:
    """In the child, after it took the server's user and before exec: be killed if the test
    process dies without stopping it (a change of user would have cleared the setting)."""
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
