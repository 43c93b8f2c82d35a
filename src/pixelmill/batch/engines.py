"""Where a batch run's items run: in the driver's own threads (``local``), or on the actors of a
Ray cluster (``ray``). Both pull items from the driver's lazy listing only as they have room
(a few per worker in flight), so a listing of millions is never held, and both give each
item's :class:`~pixelmill.batch.manifest.Ended` as it comes, in any order.

Ray actors rather than Ray Data: an actor lives for the whole run (models loaded once), takes
a share of a GPU, and is restarted by Ray when its process or node dies, the items it held
retried on the new one, one by one; an item that kills its worker every time fails as
``crash`` instead of stopping the run. Ray Data's blocks would tie many items to one failure
and hide which.
"""

from __future__ import annotations

import itertools
import socket
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from typing import Any, Protocol

from pixelmill.batch.manifest import Ended, Item
from pixelmill.batch.work import Task, Worker
from pixelmill.errors import UsageError

DEPTH = 2
"""Calls in flight per worker: one running, one waiting, so a worker never idles."""
CHUNK = 4
"""Items a Ray actor is given per call: a call costs about a millisecond, a small image a few
dozen."""
RETRIES = 2
"""Times an item runs again (on the restarted actor) after its worker died under it."""


class Engine(Protocol):
    name: str

    def results(self, task: Task, items: Iterator[Item]) -> Iterator[Ended]:
        """Each item's end, as they come."""
        ...


@dataclass
class Local:
    """The driver's own process, ``workers`` threads (libvips and onnxruntime release the
    GIL), as ``pixelmill run`` on a folder."""

    workers: int = 1
    name: str = "local"

    def results(self, task: Task, items: Iterator[Item]) -> Iterator[Ended]:
        worker = Worker(task)
        with ThreadPoolExecutor(self.workers, thread_name_prefix="batch") as pool:
            pending: dict[Future[Ended], Item] = {}
            for item in items:
                pending[pool.submit(worker.process, item)] = item
                while len(pending) >= DEPTH * self.workers:
                    yield from _finished(pending)
            while pending:
                yield from _finished(pending)


def _finished(pending: dict[Future[Ended], Item]) -> Iterator[Ended]:
    done, _ = wait(pending, return_when=FIRST_COMPLETED)
    for future in done:
        pending.pop(future)
        yield future.result()


@dataclass
class Ray:
    """Actors on a Ray cluster: ``address`` (``auto``, ``HOST:PORT`` or ``ray://HOST:PORT``) or,
    without one, a cluster of this machine started for the run; ``workers`` actors (default:
    one per CPU of the cluster), each taking one CPU and ``gpus`` of a GPU."""

    address: str | None = None
    workers: int | None = None
    gpus: float = 0.0
    name: str = "ray"

    def results(self, task: Task, items: Iterator[Item]) -> Iterator[Ended]:
        ray = _ray()
        started = not ray.is_initialized()
        if started:
            _reachable(self.address)
            try:
                ray.init(address=self.address, log_to_driver=False, configure_logging=False,
                         num_cpus=self.workers if self.address is None else None)  # fmt: skip
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise UsageError(f"Ray cluster {self.address or '(on this machine)'}: "
                                 f"{_first_line(exc)}") from None  # fmt: skip
        try:
            yield from self._run(ray, task, items)
        finally:
            if started:
                ray.shutdown()

    def _run(self, ray: Any, task: Task, items: Iterator[Item]) -> Iterator[Ended]:
        from ray.exceptions import RayActorError, RayTaskError

        count = self.workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        actor = ray.remote(num_cpus=1, num_gpus=self.gpus, max_restarts=-1)(Worker)
        actors = [actor.remote(task) for _ in range(count)]
        load = dict.fromkeys(range(count), 0)
        pending: dict[Any, tuple[list[Item], int, int]] = {}

        def submit(chunk: list[Item], tries: int = 0) -> None:
            slot = min(load, key=load.__getitem__)
            pending[actors[slot].process_all.remote(chunk)] = (chunk, slot, tries)
            load[slot] += 1

        def finished() -> Iterator[Ended]:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                chunk, slot, tries = pending.pop(ref)
                load[slot] -= 1
                try:
                    yield from ray.get(ref)
                except RayActorError as exc:  # its process or node died: Ray restarts the actor
                    for item in chunk:  # one by one, so an item that kills its worker fails alone
                        if tries < RETRIES:
                            submit([replace(item, again=True)], tries + 1)
                        else:
                            yield Ended.failure(item, "crash", f"{item.source}: its worker died "
                                                f"{tries + 1} times running it: {_first_line(exc)}")
                except RayTaskError as exc:
                    for item in chunk:
                        yield Ended.failure(item, "internal", f"{item.source}: {_first_line(exc)}")

        while chunk := list(itertools.islice(items, CHUNK)):
            submit(chunk)
            while len(pending) >= DEPTH * count:
                yield from finished()
        while pending:
            yield from finished()


def _reachable(address: str | None, timeout: float = 5.0) -> None:
    """Refuse at once a ``HOST:PORT`` cluster that does not answer (Ray itself would retry for
    minutes)."""
    if address is None or address == "auto" or "://" in address or ":" not in address:
        return
    host, port = address.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except (OSError, ValueError) as exc:
        raise UsageError(f"Ray cluster {address}: nothing answers there ({exc})") from None


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UsageError("--engine ray needs Ray: pip install 'pixelmill[ray]'") from None
    return ray


def available() -> bool:
    """Whether Ray is installed (the default engine then; else ``local``)."""
    import importlib.util

    return importlib.util.find_spec("ray") is not None
