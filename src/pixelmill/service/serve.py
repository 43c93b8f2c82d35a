"""``pixelmill serve`` without the command line: the API on a port and its worker processes,
which share its settings, end with it however it ends, and report their metrics into one folder
that ``/metrics`` adds up."""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
from collections.abc import Callable

from pixelmill.config import Settings

LOG = logging.getLogger("pixelmill.serve")

PARENT_ENV = "PIXELMILL_SERVE_PID"
"""Set for the workers ``serve`` starts: the process they end with."""
SERVICE_ENV = "PIXELMILL_SERVICE"
"""Set for the workers ``serve`` starts: the name of that service, in their heartbeats."""
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def serve(settings: Settings, host: str, port: int, workers: int,
          config_file: str | None = None, announce: Callable[[str], None] = print) -> None:  # fmt: skip
    """Run the API on ``host:port`` with ``workers`` worker processes (started again when
    they die) until the API stops; ``announce`` hears where it serves."""
    import uvicorn

    metrics_folder(settings)  # before prometheus_client is imported, which reads it then
    from pixelmill.service.app import create_app
    from pixelmill.service.drift import DriftWatch
    from pixelmill.service.workers import WorkerPool

    service = f"{socket.gethostname()}:{os.getpid()}"
    env = worker_env(settings, service, config_file)
    app = create_app(settings, service=service if workers else None)  # makes the job table
    pool = WorkerPool([sys.executable, "-m", "pixelmill", "worker"], env, workers,
                      ending_with(os.getpid()))  # fmt: skip
    pool.start()
    watch = DriftWatch(app.state.service.datasets, settings)
    watch.start()
    announce(f"pixelmill serving http://{host}:{port} (API docs at /docs) with {workers} "
             f"worker(s); jobs in {settings.job_database}, files in {settings.storage_root}")
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        running = app.state.service.queue.counts().get("running", 0) if workers else 0
        LOG.info("shutting down", extra={"workers": len(pool.pids), "jobs_running": running})
        watch.stop.set()
        pool.close()
        LOG.info("stopped; jobs that were running went back to the queue", extra={
            "jobs_running": running})  # fmt: skip


def metrics_folder(settings: Settings) -> str:
    """Empty the folder every process of the service writes its metrics into, and point this
    process (and the ones it starts) there; before prometheus_client is imported, which reads
    it then."""
    shared = os.path.join(settings.data_folder, "metrics")
    os.makedirs(shared, exist_ok=True)
    for name in os.listdir(shared):
        os.unlink(os.path.join(shared, name))
    os.environ[MULTIPROC_ENV] = shared
    return shared


def worker_env(settings: Settings, service: str, config_file: str | None) -> dict[str, str]:
    """The environment of the workers: the same job database, storage, data folder and
    settings file, and who started them."""
    env = {**os.environ, "PIXELMILL_DB": settings.job_database,
           "PIXELMILL_STORAGE": settings.storage_root, "PIXELMILL_DATA_DIR": settings.data_folder,
           PARENT_ENV: str(os.getpid()), SERVICE_ENV: service}  # fmt: skip
    if config_file:
        env["PIXELMILL_CONFIG"] = os.path.abspath(config_file)
    return env


def ending_with(parent: int) -> Callable[[], None] | None:
    """What a worker started by ``serve`` runs before it starts (Linux): receive SIGTERM when
    ``serve`` dies, however it dies, so that no worker outlives it (the job in progress goes
    back to the queue). A death before the worker's signal handlers exist is caught by the
    worker itself when it starts (:data:`PARENT_ENV`)."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    libc = ctypes.CDLL(None)  # loaded here: the child between fork and exec should not import

    def end_with_parent() -> None:
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # it died before that: no signal will come
            os._exit(1)

    return end_with_parent
