"""Prometheus metrics of the service at ``/metrics``, with prometheus_client.

The queue's figures (jobs by state, queue depth, age of the oldest ready job) are read from the
job database at each scrape, so every API process reports the same truth whatever worker did
the work. The work's own figures (stage and inference durations, bytes in and out, errors by
kind, API requests by route and status) come from :mod:`pixelmill.jobs.telemetry`, over every
process of the service. The review queues' counts and their reviewers' agreement (Cohen's
and Fleiss' kappa, per queue and per label) are read at each scrape too, and so is the share
of its monthly budget each API key with one has spent (``pixelmill_budget_used_ratio{key}``).
Recorded work is counted per key and pipeline by :mod:`pixelmill.usage.counters`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from pixelmill.datasets import Store
from pixelmill.jobs import telemetry
from pixelmill.jobs.queue import JobQueue
from pixelmill.review import Reviews
from pixelmill.service.drift import DriftCollector
from pixelmill.usage import Budgets

ACCESS = logging.getLogger("pixelmill.access")


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


class ReviewCollector(Collector):
    """The review queues' items by state and their reviewers' agreement, read at each scrape."""

    def __init__(self, reviews: Reviews) -> None:
        self.reviews = reviews

    def collect(self) -> Iterator[GaugeMetricFamily]:
        items = GaugeMetricFamily("pixelmill_review_items", "Review items by queue and state "
                                  "(waiting, in_review, done, held)", labels=["queue", "state"])
        agreement = GaugeMetricFamily(
            "pixelmill_review_agreement", "Agreement of a queue's reviewers beyond chance "
            "(kappa; label empty: approve or reject)", labels=["queue", "label", "statistic"])
        for queue, counts in self.reviews.queues():
            for state in ("waiting", "in_review", "done", "held"):
                items.add_metric([queue.name, state], getattr(counts, state))
            found = self.reviews.agreement(queue.name)
            for label, kappas in (("", found["kappa"]), *found["labels"].items()):
                for statistic, value in kappas.items():
                    if value is not None:
                        agreement.add_metric([queue.name, label, statistic], value)
        yield items
        yield agreement


class BudgetCollector(Collector):
    """The share of this month's budget each key with one has spent, read at each scrape."""

    def __init__(self, budgets: Budgets) -> None:
        self.budgets = budgets

    def collect(self) -> Iterator[GaugeMetricFamily]:
        used = GaugeMetricFamily("pixelmill_budget_used_ratio", "Share of its monthly budget "
                                 "an API key has spent this month (1: all of it)",
                                 labels=["key"])  # fmt: skip
        for standing in self.budgets.standing():
            used.add_metric([standing.key], standing.ratio)
        yield used


class Measure:
    """ASGI middleware that counts and times every HTTP request by route and status, and logs
    it (``pixelmill.access``: one JSON line with method, path, status, seconds and the API
    key's name, never the key), in plain ASGI: Starlette's ``BaseHTTPMiddleware`` costs more
    than a cached image's whole answer."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began, status = time.perf_counter(), ["500"]

        async def noted(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = str(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, noted)
        finally:
            path = getattr(scope.get("route"), "path", "unmatched")
            seconds = time.perf_counter() - began
            telemetry.HTTP_REQUESTS.labels(scope["method"], path, status[0]).inc()
            telemetry.HTTP_SECONDS.labels(scope["method"], path).observe(seconds)
            key = scope.get("state", {}).get("key")
            ACCESS.info("request", extra={
                "method": scope["method"], "path": scope.get("path", "")[:300],
                "status": int(status[0]), "seconds": round(seconds, 4),
                "key": key.name if key is not None else None})  # fmt: skip


def install(app: FastAPI, queue: JobQueue, datasets: Store, reviews: Reviews) -> None:
    """Serve ``/metrics`` and time every request."""
    registry = CollectorRegistry()
    registry.register(QueueCollector(queue))
    registry.register(DriftCollector(datasets))
    registry.register(ReviewCollector(reviews))
    registry.register(BudgetCollector(Budgets(queue.engine, queue.clock.now)))
    app.add_middleware(Measure)

    @app.get("/metrics", tags=["health"], response_class=Response, responses={
        200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}},
              "description": "Prometheus text"}})  # fmt: skip
    def metrics() -> Response:
        body = generate_latest(registry) + telemetry.exposition()
        return Response(body, media_type=CONTENT_TYPE_LATEST)
