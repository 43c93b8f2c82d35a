"""The jobs API (FastAPI, OpenAPI at ``/docs``): the application, made of one router per
resource (:mod:`pixelmill.service.routes`, :mod:`pixelmill.service.ondemand`) over what they
share (:mod:`pixelmill.service.deps`), with the middleware that stands in front of them.

Sources and destinations must lie inside the caller's part of the service's storage (see
:mod:`pixelmill.service.areas`); every field is bounded (:mod:`pixelmill.service.requests`);
every answer has a pydantic model (:mod:`pixelmill.service.views`), and every refusal is a
JSON body ``{"detail": {"kind": …, "message": …}}`` with a 4xx status (503 while the job
database is unreachable).

The review app (:mod:`pixelmill.service.routes.review`) lives at ``/review``, for reviewers
who sign in with a password; API keys do not open it. Once an API key exists, ``/v1`` wants
one (see :mod:`pixelmill.service.auth`), each key's rate and upload limits apply, and each key
sees its own jobs and files alone. Request bodies are refused from their ``Content-Length``
before they are read, or as soon as they pass their limit when it is not given:
``max_upload_bytes`` for uploads, a mebibyte for anything else.
"""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from pixelmill import __version__, storage
from pixelmill.config import Settings
from pixelmill.datasets import Store
from pixelmill.errors import PixelmillError
from pixelmill.jobs.presence import Presence
from pixelmill.jobs.queue import JobQueue
from pixelmill.review import Reviews
from pixelmill.review.accounts import Reviewers
from pixelmill.review.images import Previews
from pixelmill.service import metrics, ondemand
from pixelmill.service.auth import ApiKeys, KeyGuard
from pixelmill.service.deps import Service
from pixelmill.service.limits import BodyLimit
from pixelmill.service.requests import refused
from pixelmill.service.routes import datasets, health, jobs, review, usage

STATUS = {"pipeline": 422, "model": 422, "usage": 400, "storage": 400, "not-found": 400,
          "input": 400, "limit": 413, "query": 422, "missing": 404}  # fmt: skip
"""HTTP status of each refusal, by error kind."""


def create_app(settings: Settings, service: str | None = None) -> FastAPI:
    """The API over the job database and storage of ``settings``; ``service`` names the
    ``serve`` whose workers ``/readyz`` waits for (None: any worker of the database)."""
    app = FastAPI(title="pixelmill", version=__version__,
                  description="Image pipelines as jobs: submit, follow, download.")  # fmt: skip
    queue = JobQueue.of(settings)
    root = storage.locate(settings.storage_root)
    datasets_store = Store.of(settings)
    reviews = Reviews.of(settings)
    app.state.service = Service(settings, queue, Presence(queue.engine, queue.clock), root, service,
                                datasets_store, reviews, Reviewers(queue.engine),
                                Previews(settings))  # fmt: skip
    app.add_exception_handler(RequestValidationError, refused)
    app.add_exception_handler(PixelmillError, _failed)
    app.add_exception_handler(StarletteHTTPException, _answered)
    app.add_exception_handler(sa.exc.OperationalError, _unavailable)
    app.include_router(jobs.router)
    app.include_router(datasets.router)
    app.include_router(usage.router)
    app.include_router(ondemand.router(settings, root))
    app.include_router(health.router)
    app.mount("/review/_static", StaticFiles(directory=review.STATIC), name="review-static")
    app.include_router(review.router)
    app.add_middleware(KeyGuard, keys=ApiKeys(queue.engine, queue.clock.now))
    metrics.install(app, queue, datasets_store, reviews)
    app.add_middleware(BodyLimit, limit=settings.max_upload_bytes)
    return app


def _failed(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, PixelmillError)
    return JSONResponse({"detail": {"kind": exc.kind, "message": str(exc)}},
                        status_code=STATUS.get(exc.kind, 500))  # fmt: skip


def _answered(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail
    if not isinstance(detail, dict):  # FastAPI's own (a body it could not parse, say)
        detail = {"kind": "request", "message": str(detail)}
    return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=exc.headers)


def _unavailable(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": {"kind": "unavailable", "message": "the job database is "
                                    "unreachable; try again"}},
                        status_code=503, headers={"Retry-After": "5"})  # fmt: skip
