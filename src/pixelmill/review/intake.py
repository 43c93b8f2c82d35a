"""How finished runs reach the review queues: the outputs their quality gates flagged or held
go to each gate's queue, and a queue that spot-checks a pipeline takes its share of the runs
whose gates all passed.

Spot checks are drawn from a hash of the run's key and the queue's name rather than at random,
so the same job retried is sampled the same way, and a share of 1 % samples 1 % of the jobs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from pixelmill.engine import Outcome
from pixelmill.pipeline import Pipeline
from pixelmill.review.store import Item, Reviews


@dataclass(frozen=True)
class Run:
    """A finished run to review: what it read and wrote, and where it is remembered."""

    key: str
    """What the run is (``job:ID``, ``render:DIGEST``, ``run:ID``): queued once per queue."""
    source: str
    pipeline: Pipeline
    job_id: str | None = None
    dataset: str | None = None
    owner: str = ""
    sha256: str | None = None
    output_sha256: str | None = None
    output: str | None = None
    """Where the output is stored when the run rendered it into memory."""


def intake(reviews: Reviews, run: Run, outcome: Outcome, *, spot_checks: bool = True) -> list[Item]:
    """Queue the run's output where its gates send it, and where spot checks draw it; the items
    made (or found: a run queued before is queued once)."""
    queued: dict[str, Item] = {}
    for queue in dict.fromkeys(v.queue for v in outcome.qc if v.outcome in ("flag", "hold")):
        sent = [v for v in outcome.qc if v.queue == queue and v.outcome in ("flag", "hold")]
        held = any(v.outcome == "hold" for v in sent)
        queued[queue] = _push(reviews, queue, run, outcome, "hold" if held else "flag",
                              "; ".join(v.describe() for v in sent), held)  # fmt: skip
    if spot_checks and outcome.destination:
        text = str(run.pipeline)
        for queue in reviews.sampling():
            if queue.name in queued or queue.sample_pipeline not in (None, text):
                continue
            if drawn(run.key, queue.name, queue.sample):
                queued[queue.name] = _push(reviews, queue.name, run, outcome, "sample",
                                           f"spot check ({queue.sample:.2%} of runs)", False)  # fmt: skip
    return list(queued.values())


def drawn(key: str, queue: str, share: float) -> bool:
    """Whether the run ``key`` is among the ``share`` of runs that ``queue`` spot-checks."""
    digest = hashlib.sha256(f"{queue}\0{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") < share * 2**64


def withheld(what: str, item: Item) -> str:
    """Why the output of ``what`` is not delivered, for a refusal."""
    if item.state == "rejected":
        return f"{what}: the output was rejected in review (queue {item.queue})"
    return f"{what}: the output is held for review in queue {item.queue} ({item.reason})"


def holds(pipeline: Pipeline) -> bool:
    """Whether a gate of ``pipeline`` may hold its output back."""
    return any(step.op == "qc" and step["on_fail"] == "hold" for step in pipeline.steps)


def _push(reviews: Reviews, queue: str, run: Run, outcome: Outcome, origin: str, reason: str,
          held: bool) -> Item:  # fmt: skip
    item, _ = reviews.push(
        queue, key=run.key, origin=origin, source_uri=run.source,
        output_uri=outcome.destination or run.output, sha256=run.sha256,
        output_sha256=run.output_sha256, dataset=run.dataset, dataset_owner=run.owner,
        job_id=run.job_id, pipeline=str(run.pipeline), qc=[v.to_json() for v in outcome.qc],
        reason=reason, held=held)  # fmt: skip
    return item
