"""``/healthz`` (the process answers), ``/readyz`` (jobs would run: the job database answers
and a worker has lately said that it is alive), and ``/``, which leads to the API's docs."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, RedirectResponse

from pixelmill.service.deps import Shared
from pixelmill.service.views import Healthy, Ready

router = APIRouter(tags=["health"])


@router.get("/", include_in_schema=False)
def index() -> RedirectResponse:
    """The API's documentation (OpenAPI, at /docs)."""
    return RedirectResponse("/docs")


@router.get("/healthz")
def healthz() -> Healthy:
    return Healthy(status="ok")


@router.get("/readyz", response_model=Ready,
            responses={503: {"model": Ready, "description": "no worker is alive"}})  # fmt: skip
def readyz(shared: Shared) -> JSONResponse:
    """Ready when the job database answers and a worker (of this service, when it started
    any) has lately said that it is alive; else 503, with the same body."""
    counts, alive = shared.queue.counts(), shared.presence.fresh(shared.name)
    ready = Ready(status="ok" if alive else "no worker is alive", jobs=counts,
                  workers=len(alive))  # fmt: skip
    return JSONResponse(ready.model_dump(), status_code=200 if alive else 503)

