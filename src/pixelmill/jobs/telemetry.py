"""Prometheus metrics of the work done in a process (jobs, on-demand renders, API requests),
and their exposition, added up over processes when the service runs several.

The metrics are made once per process in prometheus_client's default registry.
``pixelmill serve`` starts its workers with ``PROMETHEUS_MULTIPROC_DIR`` set to a folder it
empties first, so every process writes its samples there and ``/metrics`` adds them up
(prometheus_client's multiprocess mode). A worker started alone serves its own on
``pixelmill worker --metrics-port``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

if TYPE_CHECKING:
    from pixelmill.engine.execute import Outcome

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)

STAGE_SECONDS = Histogram(
    "pixelmill_stage_seconds", "Seconds of each stage of a run (open, graph, qc, render, store)",
    ["origin", "stage"], buckets=SECONDS)  # fmt: skip
INFERENCE_SECONDS = Histogram(
    "pixelmill_model_inference_seconds", "Seconds of model inference in one run, by model",
    ["origin", "model"], buckets=SECONDS)  # fmt: skip
BYTES_IN = Counter("pixelmill_bytes_in", "Bytes of sources read by runs", ["origin"])
BYTES_OUT = Counter("pixelmill_bytes_out", "Bytes of outputs written by runs", ["origin"])
RUNS = Counter("pixelmill_runs", "Runs that ended, by origin and result", ["origin", "result"])
ERRORS = Counter("pixelmill_errors", "Runs that failed, by error kind", ["origin", "kind"])
CRASHES = Counter("pixelmill_job_crashes", "Job attempts whose process died or was killed, by "
                  "cause (a signal, an exit code, memory)", ["cause"])  # fmt: skip
WORKER_RESTARTS = Counter("pixelmill_worker_restarts", "Workers that serve started again after "
                          "they died, by cause (a signal or an exit code)", ["cause"])  # fmt: skip
HTTP_REQUESTS = Counter("pixelmill_http_requests", "HTTP requests by route and status",
                        ["method", "route", "status"])  # fmt: skip
HTTP_SECONDS = Histogram("pixelmill_http_request_seconds", "HTTP request duration by route",
                         ["method", "route"], buckets=SECONDS)  # fmt: skip


def succeeded(outcome: Outcome, origin: str) -> None:
    """Record a run that wrote its output (``origin``: job or ondemand)."""
    for stage, seconds in outcome.timings.items():
        if stage.startswith("model:"):
            INFERENCE_SECONDS.labels(origin, stage[6:]).observe(seconds)
        else:
            STAGE_SECONDS.labels(origin, stage).observe(seconds)
    BYTES_IN.labels(origin).inc(outcome.bytes_read or 0)
    BYTES_OUT.labels(origin).inc(outcome.bytes_written)
    RUNS.labels(origin, "succeeded").inc()


def failed(kind: str, origin: str) -> None:
    """Record a run that failed with an error of ``kind``."""
    ERRORS.labels(origin, kind).inc()
    RUNS.labels(origin, "failed").inc()


def exposition() -> bytes:
    """This process's metrics, or every process's in multiprocess mode, as Prometheus text."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)

