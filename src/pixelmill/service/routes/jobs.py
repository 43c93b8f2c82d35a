"""``/v1/jobs``: submit jobs (on files in the storage, or an upload), follow them, list them,
cancel them, download their outputs. The routes only check requests and write rows: workers
run the jobs."""

from __future__ import annotations

import asyncio
import mimetypes
import os
import time
import uuid
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, File, Form, HTTPException, Query, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, StreamingResponse

from pixelmill import codecs, storage
from pixelmill.config import Settings
from pixelmill.engine import output_suffix
from pixelmill.errors import InputError, LimitError, UsageError
from pixelmill.jobs.queue import FINAL, STATES, Job
from pixelmill.pipeline import Pipeline
from pixelmill.review.intake import withheld
from pixelmill.service.areas import Area
from pixelmill.service.deps import Caller, CallerArea, OwnedJob, Shared
from pixelmill.service.requests import (
    PIPELINE_TEXT,
    PRIORITY,
    URL_TEXT,
    DatasetName,
    IdempotencyKey,
    JobRequest,
    fill_template,
)
from pixelmill.service.views import Batch, JobList, JobView, Refused, job_view
from pixelmill.storage import Location
from pixelmill.storage.hosts import refusal

CHUNK = 1 << 20
MAX_WAIT = 60.0
"""Longest long poll of a job, in seconds."""
WAIT_POLL = 0.2
"""Seconds between looks at a job during a long poll."""
State = Literal[STATES]  # type: ignore[valid-type]
REFUSALS: dict[int | str, dict[str, Any]] = {
    status: {"model": Refused} for status in (400, 401, 404, 409, 413, 415, 422, 429, 503)
}
IMAGE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/*": {"schema": {"type": "string", "format": "binary"}}},
          "description": "the output image"},
}  # fmt: skip

router = APIRouter(prefix="/v1", tags=["jobs"], responses=REFUSALS)


@router.post("/jobs", status_code=202, response_model=JobView | Batch)
def submit(body: JobRequest, shared: Shared, key: Caller, area: CallerArea) -> JobView | Batch:
    """Queue one job per source; several sources make a batch."""
    pipeline = Pipeline.parse(body.pipeline)
    sources = [area.locate(source, "source") for source in body.sources]
    _check_webhook(body.webhook, shared.settings.allow_private_hosts)
    batch = uuid.uuid4().hex if len(sources) > 1 else None
    made = []
    for index, source in enumerate(sources):
        idempotency = body.idempotency_key
        if idempotency and batch:
            idempotency = f"{idempotency}/{index}"
        made.append(_queue(shared, area, source, pipeline, body.destination,
                           priority=body.priority, key=idempotency, batch=batch,
                           webhook=body.webhook, owner=key and key.name,
                           dataset=body.dataset))  # fmt: skip
    if batch is None:
        return job_view(made[0])
    return Batch(batch=batch, jobs=[job_view(job) for job in made])


@router.post("/jobs/upload", status_code=202)
def upload(shared: Shared, key: Caller, area: CallerArea,
           file: Annotated[UploadFile, File(description="the image")],
           pipeline: Annotated[str, Form(max_length=PIPELINE_TEXT)] = "",
           priority: Annotated[int, Form(ge=PRIORITY[0], le=PRIORITY[1])] = 0,
           idempotency_key: Annotated[IdempotencyKey | None, Form()] = None,
           webhook: Annotated[str | None, Form(max_length=URL_TEXT)] = None,
           dataset: Annotated[DatasetName | None, Form()] = None) -> JobView:  # fmt: skip
    """Upload an image and queue one job on it."""
    settings = shared.settings
    parsed = Pipeline.parse(pipeline)
    _check_webhook(webhook, settings.allow_private_hosts)
    name = os.path.basename(file.filename or "") or "upload"
    if name.startswith(".") or len(name) > 255:
        raise UsageError(f"upload name {name[:255]!r}: give the file a plain, short name")
    target = area.locate(f"uploads/{uuid.uuid4().hex}/{name}", "upload")
    limit = min(settings.max_bytes, settings.max_upload_bytes,
                (key and key.max_bytes) or settings.max_bytes)  # fmt: skip
    _save(file, target, limit, settings.tmp_dir)
    _check_image(target, settings)
    return job_view(_queue(shared, area, target, parsed, None, priority=priority,
                           key=idempotency_key, webhook=webhook,
                           owner=key and key.name, dataset=dataset))  # fmt: skip


@router.get("/jobs/{job_id}")
async def show(job: OwnedJob, shared: Shared,
               wait: Annotated[float, Query(ge=0, le=MAX_WAIT)] = 0) -> JobView:  # fmt: skip
    """A job: state, progress %, stage timings, output with its download link, quality
    gates' verdicts, error with its reason, webhook deliveries. With ``wait``, the answer
    comes when the job has ended, or after that many seconds (long polling)."""
    deadline = time.monotonic() + wait
    while job.state not in FINAL and time.monotonic() < deadline:
        await asyncio.sleep(min(WAIT_POLL, max(0.0, deadline - time.monotonic())))
        job = await run_in_threadpool(shared.queue.get, job.id)
    return job_view(job)


@router.get("/jobs")
def listing(shared: Shared, key: Caller, state: State | None = None,
            batch: Annotated[str | None, Query(max_length=32)] = None,
            since: float | None = None, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
            offset: Annotated[int, Query(ge=0, le=10**9)] = 0) -> JobList:  # fmt: skip
    """Jobs, newest first; filter by state, batch and creation time (Unix seconds)."""
    found = shared.queue.list(state=state, batch=batch, since=since, owner=key and key.name,
                              limit=limit, offset=offset)  # fmt: skip
    return JobList(jobs=[job_view(job) for job in found], limit=limit, offset=offset)


@router.delete("/jobs/{job_id}")
def cancel(job: OwnedJob, shared: Shared) -> JobView:
    """Cancel a job: at once when queued, at its next heartbeat when running."""
    return job_view(shared.queue.cancel(job.id))


@router.api_route("/jobs/{job_id}/output", methods=["GET", "HEAD"], response_class=FileResponse,
                  responses=IMAGE)  # fmt: skip
def output(job: OwnedJob, shared: Shared) -> Any:
    """The output of a job that succeeded (``HEAD``: its type and length alone), unless a
    quality gate holds it for review (until a reviewer approves it) or a reviewer rejected it:
    ``409`` with the reason."""
    if job.state != "succeeded":
        raise HTTPException(409, {"kind": "state", "message": f"job {job.id} is {job.state}"})
    if (held := shared.reviews.held(job_id=job.id)) is not None:
        raise HTTPException(409, {"kind": "held", "message": withheld(f"job {job.id}", held)})
    loc = storage.locate(job.result["destination"])
    if "scope" in job.spec:  # a link made since the job ran cannot lead elsewhere
        loc = storage.Scope.from_json(job.spec["scope"]).check(loc, "output")
    media = mimetypes.guess_type(loc.name)[0] or "application/octet-stream"
    if loc.is_local:
        return FileResponse(loc.path, media_type=media, filename=loc.name)
    size = storage.input_size(loc)
    headers = {"Content-Disposition": attachment(loc.name),
               **({"Content-Length": str(size)} if size is not None else {})}  # fmt: skip
    return StreamingResponse(storage.chunks(loc), media_type=media, headers=headers)


def attachment(name: str) -> str:
    """A ``Content-Disposition`` naming the file, as Starlette's own file answers do."""
    quoted = quote(name)
    return (f'attachment; filename="{name}"' if quoted == name
            else f"attachment; filename*=utf-8''{quoted}")  # fmt: skip


def _check_webhook(url: str | None, allow_private: bool) -> None:
    if url is not None and (why := refusal(url, allow_private)):
        raise UsageError(f"webhook {why}")


def _queue(shared: Shared, area: Area, source: Location, pipeline: Pipeline,
           destination: str | None, dataset: str | None = None, **options: Any) -> Job:  # fmt: skip
    """Queue one job, remembered in the caller's ``dataset`` when given; ``options`` are those
    of :meth:`JobQueue.submit`."""
    job_id = uuid.uuid4().hex
    target = area.locate(destination_for(source.name, pipeline, job_id, destination),
                         "destination")  # fmt: skip
    spec = {"source": source.url, "destination": target.url, "pipeline": str(pipeline),
            "scope": area.scope.to_json()}  # fmt: skip
    if dataset is not None:
        spec["dataset"] = {"name": dataset, "owner": options.get("owner") or ""}
    return shared.queue.submit(spec, job_id=job_id, max_attempts=shared.settings.job_attempts,
                               **options)  # fmt: skip


def _check_image(target: Location, settings: Settings) -> None:
    """Refuse an upload that is not an image pixelmill reads (``415``) or is past the limits
    (``413``), from its header, before a job is queued on it; the file is removed."""
    try:
        with codecs.open_source(target, settings):
            pass
    except (InputError, LimitError) as exc:
        storage.remove(target)
        if isinstance(exc, LimitError):
            raise
        raise HTTPException(415, {"kind": "input", "message": str(exc)}) from None


def destination_for(name: str, pipeline: Pipeline, job_id: str,
                    template: str | None = None) -> str:  # fmt: skip
    """Where the job ``job_id`` writes what ``pipeline`` makes of the file ``name``: the
    ``template`` (default ``outputs/{id}/{stem}{ext}``) filled in."""
    stem, ext = os.path.splitext(name)[0], output_suffix(pipeline, name)
    return fill_template(template or "outputs/{id}/{stem}{ext}", id=job_id, stem=stem, ext=ext)


def _save(upload: UploadFile, target: Location, limit: int, tmp_dir: str | None) -> None:
    """Copy an upload into the storage, refusing it empty or past ``limit`` bytes (nothing is
    kept then)."""
    written = 0
    with storage.atomic_output(target, tmp_dir) as spool:
        with open(spool, "wb") as out:
            while chunk := upload.file.read(CHUNK):
                written += len(chunk)
                if written > limit:
                    raise LimitError(f"the upload is over the limit of {limit:,} bytes")
                out.write(chunk)
        if written == 0:
            raise UsageError("the upload is empty (0 bytes)")
