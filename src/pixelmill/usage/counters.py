"""Prometheus counters of recorded work, per API key and pipeline, in the process that records
it (prometheus_client's default registry, added up over the service's processes like the
other metrics of :mod:`pixelmill.jobs.telemetry`).

Labels stay few: ``key`` is an API key's name (made by an operator; empty for none),
``pipeline`` the first 12 hex digits of the SHA-256 of the pipeline's canonical text
(``pixelmill usage --by pipeline`` shows the text of each), and past :data:`PIPELINES`
distinct pipelines in one process the rest count under ``other``.
"""

from __future__ import annotations

import hashlib
import threading

from prometheus_client import Counter

from pixelmill.usage.meter import Work

PIPELINES = 100
"""Distinct pipeline labels one process gives before it counts the rest as ``other``."""
LABELS = ["origin", "key", "pipeline"]

WORK = Counter("pixelmill_usage_work", "Pieces of work recorded (job attempts, renders, "
               "batch items)", LABELS)  # fmt: skip
CPU = Counter("pixelmill_usage_cpu_seconds", "CPU seconds of recorded work", LABELS)
GPU = Counter("pixelmill_usage_gpu_seconds", "GPU seconds of recorded work", LABELS)
BYTES = Counter("pixelmill_usage_bytes", "Bytes of recorded work, by direction (read, "
                "written, served)", [*LABELS, "direction"])  # fmt: skip
COST = Counter("pixelmill_usage_cost", "Cost of recorded work by the price table", LABELS)

_seen: set[str] = set()
_lock = threading.Lock()


def label(pipeline: str) -> str:
    """The pipeline's label: 12 hex digits of the SHA-256 of its text."""
    return hashlib.sha256(pipeline.encode()).hexdigest()[:12]


def count(work: Work, pipeline_label: str, cost: float) -> None:
    """Add one piece of work to the counters."""
    with _lock:
        if pipeline_label not in _seen and len(_seen) >= PIPELINES:
            pipeline_label = "other"
        else:
            _seen.add(pipeline_label)
    labels = (work.origin, work.key or "", pipeline_label)
    WORK.labels(*labels).inc()
    CPU.labels(*labels).inc(work.cpu_seconds)
    GPU.labels(*labels).inc(work.gpu_seconds)
    for direction, amount in (("read", work.bytes_read), ("written", work.bytes_written),
                              ("served", work.bytes_served)):  # fmt: skip
        BYTES.labels(*labels, direction).inc(amount)
    COST.labels(*labels).inc(cost)
