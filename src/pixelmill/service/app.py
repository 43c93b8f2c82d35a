"""The jobs API (FastAPI, OpenAPI at ``/docs``), versioned under ``/v1``: submit jobs (source
URLs or an uploaded file), follow them, list them, cancel them, download their outputs.

The API only checks requests and writes rows: workers (``pixelmill worker``) run the jobs.
Sources and destinations must lie inside the caller's part of the service's storage (see
:mod:`pixelmill.service.areas`): uploads are kept under ``uploads/``, outputs go to
``outputs/`` unless a destination is given, so a caller can never make the service read or
write anywhere else. Every field is bounded (:mod:`pixelmill.service.requests`), and every
refusal is a JSON body ``{"detail": {"kind": …, "message": …}}`` with a 4xx status.

Once an API key exists, ``/v1`` wants one (see :mod:`pixelmill.service.auth`), each key's rate
and upload limits apply, and each key sees its own jobs and files alone. Request bodies are
refused from their ``Content-Length`` before they are read, or as soon as they pass their
limit when it is not given: ``max_upload_bytes`` for uploads, a mebibyte for anything else.
"""

from __future__ import annotations

import asyncio
import mimetypes
import os
import time
import uuid
from typing import Annotated, Any, Literal
from urllib.parse import quote

import sqlalchemy as sa
from fastapi import (
    APIRouter,
    FastAPI,
    File,
    Form,
    HTTPException,
    Query,
    Request,
    UploadFile,
)
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from pixelmill import __version__, storage
from pixelmill.config import Settings
from pixelmill.engine import output_suffix
from pixelmill.errors import LimitError, PixelmillError, UsageError
from pixelmill.jobs.presence import Presence
from pixelmill.jobs.queue import FINAL, STATES, Job, JobQueue
from pixelmill.pipeline import Pipeline
from pixelmill.service import metrics, ondemand
from pixelmill.service.areas import Area, area_for
from pixelmill.service.auth import ApiKeys, Key, KeyGuard
from pixelmill.service.limits import BodyLimit
from pixelmill.service.requests import (
    PIPELINE_TEXT,
    PRIORITY,
    URL_TEXT,
    IdempotencyKey,
    JobRequest,
    fill_template,
    refused,
)
from pixelmill.storage import Location
from pixelmill.storage.hosts import refusal

STATUS = {"pipeline": 422, "model": 422, "usage": 400, "storage": 400, "not-found": 400,
          "input": 400, "limit": 413}  # fmt: skip
"""HTTP status of each refusal, by error kind."""
CHUNK = 1 << 20
MAX_WAIT = 60.0
"""Longest long poll of a job, in seconds."""
WAIT_POLL = 0.2
"""Seconds between looks at a job during a long poll."""
State = Literal[STATES]  # type: ignore[valid-type]


def create_app(settings: Settings, service: str | None = None) -> FastAPI:
    """The API over the job database and storage of ``settings``; ``service`` names the
    ``serve`` whose workers ``/readyz`` waits for (None: any worker of the database)."""
    app = FastAPI(title="pixelmill", version=__version__,
                  description="Image pipelines as jobs: submit, follow, download.")  # fmt: skip
    queue = JobQueue(settings.job_database)
    keys = ApiKeys(queue.engine)
    presence = Presence(queue.engine)
    root = storage.locate(settings.storage_root)
    v1 = APIRouter(prefix="/v1")
    app.add_exception_handler(RequestValidationError, refused)

    @app.exception_handler(PixelmillError)
    def failed(request: Request, exc: PixelmillError) -> JSONResponse:
        return JSONResponse({"detail": {"kind": exc.kind, "message": str(exc)}},
                            status_code=STATUS.get(exc.kind, 500))  # fmt: skip

    @app.exception_handler(StarletteHTTPException)
    def answered(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail
        if not isinstance(detail, dict):  # FastAPI's own (a body it could not parse, say)
            detail = {"kind": "request", "message": str(detail)}
        return JSONResponse({"detail": detail}, status_code=exc.status_code,
                            headers=exc.headers)  # fmt: skip

    @app.exception_handler(sa.exc.OperationalError)
    def unavailable(request: Request, exc: sa.exc.OperationalError) -> JSONResponse:
        return JSONResponse({"detail": {"kind": "unavailable", "message": "the job database "
                                        "is unreachable; try again"}},
                            status_code=503, headers={"Retry-After": "5"})  # fmt: skip

    @v1.post("/jobs", status_code=202)
    def submit(body: JobRequest, request: Request) -> dict[str, Any]:
        """Queue one job per source; several sources make a batch."""
        pipeline = Pipeline.parse(body.pipeline)
        area = area_for(root, request.state.key)
        sources = [area.locate(source, "source") for source in body.sources]
        _check_webhook(body.webhook, settings)
        batch = uuid.uuid4().hex if len(sources) > 1 else None
        made = []
        for index, source in enumerate(sources):
            key = body.idempotency_key
            if key and batch:
                key = f"{key}/{index}"
            made.append(_queue(queue, area, source, pipeline, body.destination,
                               priority=body.priority, key=key, batch=batch,
                               webhook=body.webhook, owner=_owner(request),
                               max_attempts=settings.job_attempts))  # fmt: skip
        if batch is None:
            return made[0].describe()
        return {"batch": batch, "jobs": [job.describe() for job in made]}

    @v1.post("/jobs/upload", status_code=202)
    def upload(request: Request, file: Annotated[UploadFile, File(description="the image")],
               pipeline: Annotated[str, Form(max_length=PIPELINE_TEXT)] = "",
               priority: Annotated[int, Form(ge=PRIORITY[0], le=PRIORITY[1])] = 0,
               idempotency_key: Annotated[IdempotencyKey | None, Form()] = None,
               webhook: Annotated[str | None, Form(max_length=URL_TEXT)] = None,
               ) -> dict[str, Any]:  # fmt: skip
        """Upload an image and queue one job on it."""
        parsed = Pipeline.parse(pipeline)
        _check_webhook(webhook, settings)
        name = os.path.basename(file.filename or "") or "upload"
        if name.startswith(".") or len(name) > 255:
            raise UsageError(f"upload name {name[:255]!r}: give the file a plain, short name")
        key: Key | None = request.state.key
        area = area_for(root, key)
        target = area.locate(f"uploads/{uuid.uuid4().hex}/{name}", "upload")
        limit = min(settings.max_bytes, settings.max_upload_bytes,
                    (key and key.max_bytes) or settings.max_bytes)  # fmt: skip
        _save(file, target, limit, settings.tmp_dir)
        return _queue(queue, area, target, parsed, None, priority=priority,
                      key=idempotency_key, webhook=webhook, owner=_owner(request),
                      max_attempts=settings.job_attempts).describe()  # fmt: skip

    @v1.get("/jobs/{job_id}")
    async def show(job_id: str, request: Request,
                   wait: Annotated[float, Query(ge=0, le=MAX_WAIT)] = 0) -> dict[str, Any]:
        """A job: state, progress %, stage timings, output with its download link, quality
        gates' verdicts, error with its reason, webhook deliveries. With ``wait``, the answer
        comes when the job has ended, or after that many seconds (long polling)."""
        deadline = time.monotonic() + wait
        while True:
            job = await run_in_threadpool(_find, queue, job_id, request)
            if job.state in FINAL or time.monotonic() >= deadline:
                return job.describe()
            await asyncio.sleep(min(WAIT_POLL, max(0.0, deadline - time.monotonic())))

    @v1.get("/jobs")
    def listing(request: Request, state: State | None = None,
                batch: str | None = None, since: float | None = None,
                limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                offset: Annotated[int, Query(ge=0)] = 0) -> dict[str, Any]:  # fmt: skip
        """Jobs, newest first; filter by state, batch and creation time (Unix seconds)."""
        found = queue.list(state=state, batch=batch, since=since, owner=_owner(request),
                           limit=limit, offset=offset)  # fmt: skip
        return {"jobs": [job.describe() for job in found], "limit": limit, "offset": offset}

    @v1.delete("/jobs/{job_id}")
    def cancel(job_id: str, request: Request) -> dict[str, Any]:
        """Cancel a job: at once when queued, at its next heartbeat when running."""
        _find(queue, job_id, request)
        return queue.cancel(job_id).describe()

    @v1.get("/jobs/{job_id}/output")
    def output(job_id: str, request: Request) -> Any:
        """The output of a job that succeeded."""
        job = _find(queue, job_id, request)
        if job.state != "succeeded":
            raise HTTPException(409, {"kind": "state", "message": f"job {job_id} is {job.state}"})
        loc = storage.locate(job.result["destination"])
        if "scope" in job.spec:  # a link made since the job ran cannot lead elsewhere
            loc = storage.Scope.from_json(job.spec["scope"]).check(loc, "output")
        media = mimetypes.guess_type(loc.name)[0] or "application/octet-stream"
        if loc.is_local:
            return FileResponse(loc.path, media_type=media, filename=loc.name)
        size = storage.input_size(loc)
        headers = {"Content-Disposition": _attachment(loc.name),
                   **({"Content-Length": str(size)} if size is not None else {})}  # fmt: skip
        return StreamingResponse(storage.chunks(loc), media_type=media, headers=headers)

    app.include_router(v1)
    app.include_router(ondemand.router(settings, root))
    app.add_middleware(KeyGuard, keys=keys)
    metrics.install(app, queue)
    app.add_middleware(BodyLimit, limit=settings.max_upload_bytes)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz() -> JSONResponse:
        """Ready when the job database answers and a worker (of this service, when it
        started any) has lately said that it is alive; else 503."""
        counts, alive = queue.counts(), presence.fresh(service)
        body = {"status": "ok" if alive else "no worker is alive", "jobs": counts,
                "workers": len(alive)}  # fmt: skip
        return JSONResponse(body, status_code=200 if alive else 503)

    return app


def _attachment(name: str) -> str:
    """A ``Content-Disposition`` naming the file, as Starlette's own file answers do."""
    quoted = quote(name)
    return (f'attachment; filename="{name}"' if quoted == name
            else f"attachment; filename*=utf-8''{quoted}")  # fmt: skip


def _check_webhook(url: str | None, settings: Settings) -> None:
    if url is not None and (why := refusal(url, settings.allow_private_hosts)):
        raise UsageError(f"webhook {why}")


def _queue(queue: JobQueue, area: Area, source: Location, pipeline: Pipeline,
           destination: str | None, **options: Any) -> Job:
    """Queue one job; ``options`` are those of :meth:`JobQueue.submit`."""
    job_id = uuid.uuid4().hex
    stem, ext = os.path.splitext(source.name)[0], output_suffix(pipeline, source.name)
    named = fill_template(destination or "outputs/{id}/{stem}{ext}", id=job_id, stem=stem,
                          ext=ext)  # fmt: skip
    target = area.locate(named, "destination")
    spec = {"source": source.url, "destination": target.url, "pipeline": str(pipeline),
            "scope": area.scope.to_json()}  # fmt: skip
    return queue.submit(spec, job_id=job_id, **options)


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


def _owner(request: Request) -> str | None:
    """The key of the request, whose jobs alone it may see (None while the API is open)."""
    key: Key | None = request.state.key
    return key.name if key else None


def _find(queue: JobQueue, job_id: str, request: Request) -> Job:
    """The job, if it exists and belongs to the request's key."""
    try:
        job = queue.get(job_id)
    except KeyError:
        job = None
    owner = _owner(request)
    if job is None or owner is not None and job.owner != owner:
        raise HTTPException(404, {"kind": "not-found", "message": f"no job {job_id}"})
    return job
