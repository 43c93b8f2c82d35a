"""Drift checks on a schedule: the datasets that ask for it (``pixelmill datasets watch``) are
compared with their reference version over their latest window, ``every`` so often; the last
outcome is kept on the dataset, exported to Prometheus as ``pixelmill_drift_score{dataset,
feature}`` (each test's effect size) and ``pixelmill_drift{dataset}`` (1 while drifting), and a
verdict that turns to drift calls the dataset's webhook once, signed like the jobs' webhooks.

Every ``serve`` runs the schedule; a check another process made within the period is not made
again (a race can at worst repeat one check).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from pixelmill.config import Settings
from pixelmill.datasets import Store, insight
from pixelmill.datasets.store import Dataset
from pixelmill.errors import PixelmillError
from pixelmill.jobs import webhooks

LOG = logging.getLogger("pixelmill.drift")
TICK = 30.0
"""Seconds between looks for datasets due a check."""


class DriftWatch:
    """Checks the watched datasets of ``store`` when they are due, on ``clock``."""

    def __init__(self, store: Store, settings: Settings,
                 clock: Callable[[], float] = time.time) -> None:  # fmt: skip
        self.store, self.settings, self.clock = store, settings, clock
        self.stop = threading.Event()

    def check_due(self) -> list[str]:
        """Check every watched dataset whose period has passed; the names checked."""
        checked = []
        for dataset in self.store.watched():
            config, state = dataset.drift or {}, dataset.drift_state or {}
            if self.clock() - state.get("checked_at", 0.0) < insight.seconds(config["every"]):
                continue
            self._check(dataset, config, state)
            checked.append(dataset.name)
        return checked

    def run(self, tick: float = TICK) -> None:
        """Check due datasets until :attr:`stop` is set."""
        while not self.stop.is_set():
            try:
                self.check_due()
            except Exception:  # a failed round must not end the schedule
                LOG.exception("drift checks failed")
            self.stop.wait(tick)

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, name="drift", daemon=True)
        thread.start()
        return thread

    def _check(self, dataset: Dataset, config: dict[str, Any], state: dict[str, Any]) -> None:
        now = self.clock()
        try:
            found = insight.check_drift(self.store, dataset.name, config["reference"],
                                        since=config["window"], owner=dataset.owner).to_json()
        except PixelmillError as exc:
            self.store.remember(dataset, {**state, "checked_at": now, "error": str(exc)})
            return
        scores = {name: test["effect"] for name, test in found["features"].items()}
        verdicts = {name: test["verdict"] for name, test in found["features"].items()}
        new = {"checked_at": now, "drift": found["drift"], "scores": scores,
               "verdicts": verdicts, "n_current": found["n_current"]}  # fmt: skip
        if found["drift"] and not state.get("drift") and config.get("webhook"):
            payload = {"event": "drift", "dataset": dataset.name, **found}
            _, status = webhooks.deliver(config["webhook"], payload,
                                                 self.settings.webhook_secret,
                                                 self.settings.allow_private_hosts)  # fmt: skip
            new["webhook"] = status
            LOG.info("drift webhook %s", status, extra={"dataset": dataset.name})
        self.store.remember(dataset, new)


class DriftCollector(Collector):
    """The last drift check of every watched dataset, read at each scrape."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[GaugeMetricFamily]:
        scores = GaugeMetricFamily("pixelmill_drift_score", "Effect size of the last drift "
                                   "check, by dataset and feature", labels=["dataset", "feature"])
        flags = GaugeMetricFamily("pixelmill_drift", "1 while the last drift check found drift",
                                  labels=["dataset"])  # fmt: skip
        for dataset in self.store.watched():
            state = dataset.drift_state or {}
            for feature, score in state.get("scores", {}).items():
                if score is not None:  # a test with too few values has no effect size
                    scores.add_metric([dataset.name, feature], score)
            if "drift" in state:
                flags.add_metric([dataset.name], 1.0 if state["drift"] else 0.0)
        yield scores
        yield flags
