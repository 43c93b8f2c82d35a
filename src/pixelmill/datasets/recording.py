"""The one small interface through which the faces that run pipelines (``pixelmill run``, the
job workers, the batch runner) write into a dataset: the source and the output become items
(the output's ``parent`` is the source), and the run becomes an event of the source with its
pipeline, timings and QC values, and what its detectors and classifiers found (on the event,
and as tags of the source)."""

from __future__ import annotations

from pixelmill import storage
from pixelmill.config import Settings
from pixelmill.datasets.analyse import analyse
from pixelmill.datasets.embed import embedder
from pixelmill.datasets.store import Event, Record, Store
from pixelmill.engine import Outcome
from pixelmill.pipeline import Pipeline


def record_run(store: Store, name: str, source: str, outcome: Outcome, pipeline: Pipeline, *,
               settings: Settings, kind: str = "run", ref: str | None = None,
               owner: str = "") -> dict[str, str | None]:  # fmt: skip
    """Record a finished run of ``pipeline`` from ``source`` into the dataset ``name`` (made
    when missing); the content hashes of the source and the output."""
    dataset = store.create(name, owner)
    embed = embedder(dataset.embedder, settings)
    found = analyse(storage.locate(source), settings, embed)
    records = [Record(found.uri, found.sha256, found.fields, found.embedding, role="source",
                      tags=content_tags(outcome))]  # fmt: skip
    output = None
    if outcome.destination:
        made = analyse(storage.locate(outcome.destination), settings, embed)
        records.append(Record(made.uri, made.sha256, made.fields, made.embedding,
                              role="output", parent=found.sha256))  # fmt: skip
        output = made.sha256
    store.add(dataset, records)
    verdict = next((o for o in ("hold", "flag", "pass") if any(v.outcome == o for v in outcome.qc)),
                   None)  # the gravest
    store.record(dataset, Event(
        kind, found.sha256, ref, str(pipeline), outcome.destination or None, output,
        outcome.seconds, dict(outcome.timings), verdict,
        tuple(v.to_json() for v in outcome.qc), found=_found(outcome)))  # fmt: skip
    return {"source": found.sha256, "output": output}


def content_tags(outcome: Outcome) -> tuple[str, ...]:
    """Tags of what the run saw in the source: ``class:LABEL`` (each classifier's likeliest)
    and ``detected:LABEL`` (each class a detector found)."""
    tags = {f"class:{c['top'][0]['class']}" for c in outcome.classes if c["top"]}
    tags |= {f"detected:{d['class']}" for d in outcome.detections}
    return tuple(sorted(tags))


def _found(outcome: Outcome) -> dict | None:
    found = {"detections": list(outcome.detections), "classes": list(outcome.classes),
             "encode": outcome.encode}  # fmt: skip
    return found if any(found.values()) else None
