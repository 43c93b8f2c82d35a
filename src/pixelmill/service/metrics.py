"""Prometheus metrics of the service at ``/metrics``, with prometheus_client.

The queue's figures (jobs by state, queue depth, age of the oldest ready job) are read from the
job database at each scrape, so every API process reports the same truth whatever worker did
the work. The work's own figures (stage and inference durations, bytes in and out, errors by
kind, API requests by route and status) come from :mod:`pixelmill.jobs.telemetry`, over every
process of the service.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator

from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from pixelmill.jobs import telemetry
from pixelmill.jobs.queue import JobQueue


class QueueCollector(Collector):
    """The queue's figures, read at each scrape."""

    def __init__(self, queue: JobQueue) -> None:
        self.queue = queue

    def collect(self) -> Iterator[GaugeMetricFamily]:
        states = GaugeMetricFamily("pixelmill_jobs", "Jobs in the database by state",
                                   labels=["state"])  # fmt: skip
        for state, count in self.queue.counts().items():
            states.add_metric([state], count)
        yield states
        depth, oldest = self.queue.backlog()
        yield GaugeMetricFamily("pixelmill_queue_depth", "Jobs queued and due", value=depth)
        yield GaugeMetricFamily("pixelmill_queue_oldest_age_seconds",
                                "Age of the oldest job queued and due (0: none)",
                                value=time.time() - oldest if oldest else 0.0)  # fmt: skip


def install(app: FastAPI, queue: JobQueue) -> None:
    """Serve ``/metrics`` and time every request."""
    registry = CollectorRegistry()
    registry.register(QueueCollector(queue))

    @app.middleware("http")
    async def measure(request: Request,
                      call_next: Callable[[Request], Awaitable[Response]]) -> Response:  # fmt: skip
        began = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        telemetry.HTTP_REQUESTS.labels(request.method, path, str(response.status_code)).inc()
        telemetry.HTTP_SECONDS.labels(request.method, path).observe(time.perf_counter() - began)
        return response

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        body = generate_latest(registry) + telemetry.exposition()
        return Response(body, media_type=CONTENT_TYPE_LATEST)
