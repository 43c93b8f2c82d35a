"""The review app's items: what the review screen shows of one (its QC values against the
thresholds of its gates, its audit trail and its dataset's history), and the job that a
rejection with ``on_reject=rerun:PIPELINE`` sends it back through."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from pixelmill import storage
from pixelmill.pipeline import Pipeline
from pixelmill.pipeline.kinds import GATE
from pixelmill.review import Item
from pixelmill.service.deps import Service
from pixelmill.service.routes.jobs import destination_for


def view(shared: Service, item: Item) -> dict[str, Any]:
    """What the screen shows of an item, as JSON."""
    sizes = {which: shared.previews.size(uri) for which, uri in
             (("source", item.source_uri), ("output", item.output_uri)) if uri}  # fmt: skip
    history = [{"kind": e["kind"], "verdict": e.get("verdict"), "by": e.get("by"), "at": e["at"],
                "pipeline": e.get("pipeline"), "note": e.get("note")}
               for e in shared.reviews.history(item)]  # fmt: skip
    return {"id": item.id, "origin": item.origin, "reason": item.reason, "held": item.held,
            "pipeline": item.pipeline, "source": item.source_uri.rsplit("/", 1)[-1],
            "output": item.output_uri.rsplit("/", 1)[-1] if item.output_uri else None,
            "sizes": sizes, "gates": measures(item.qc), "dataset": item.dataset,
            "verdicts": shared.reviews.verdicts(item.id), "history": history}  # fmt: skip


def measures(qc: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each QC value of an item beside the threshold of its gate and whether the gate failed;
    values measured without a gate come with no threshold."""
    rows = []
    for verdict in qc:
        values, failed = verdict.get("values", {}), set(verdict.get("failed", ()))
        gated = set()
        for gate in verdict.get("gates", ()):
            if (found := GATE.fullmatch(gate)) is None:
                continue
            metric = found.group(1).lower()
            gated.add(metric)
            rows.append({"metric": metric, "value": values.get(metric), "op": found.group(2),
                         "threshold": float(found.group(3)), "gate": gate,
                         "failed": gate in failed})  # fmt: skip
        rows += [{"metric": metric, "value": value, "op": None, "threshold": None, "gate": None,
                  "failed": False}
                 for metric, value in values.items() if metric not in gated]  # fmt: skip
    return rows


def rerun(shared: Service, item: Item, pipeline: str) -> str:
    """Queue the item again through ``pipeline``; the new job's id. With the job that made it:
    a copy of that job (its destination, dataset and owner) with the pipeline replaced;
    without: from its source into ``outputs/{id}/`` of the service's storage, remembered in
    its dataset."""
    attempts = shared.settings.job_attempts
    try:
        job = shared.queue.get(item.job_id) if item.job_id else None
    except KeyError:
        job = None
    if job is not None:
        spec = job.spec | {"pipeline": pipeline}
        return shared.queue.submit(spec, owner=job.owner, max_attempts=attempts).id
    job_id = uuid.uuid4().hex
    named = destination_for(storage.locate(item.source_uri).name, Pipeline.parse(pipeline), job_id)
    target = shared.root.child(named)
    spec: dict[str, Any] = {"source": item.source_uri, "destination": target.url,
                            "pipeline": pipeline}  # fmt: skip
    if item.dataset:
        spec["dataset"] = {"name": item.dataset, "owner": item.dataset_owner}
    return shared.queue.submit(spec, job_id=job_id, max_attempts=attempts).id
