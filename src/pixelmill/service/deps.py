"""What a route depends on, as FastAPI dependencies: the service's settings, job queue and
storage (kept in the application's state by :func:`pixelmill.service.app.create_app`), and
the caller (its API key, and its part of the storage)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from pixelmill.config import Settings
from pixelmill.datasets import Store
from pixelmill.jobs.presence import Presence
from pixelmill.jobs.queue import Job, JobQueue
from pixelmill.review import Reviews
from pixelmill.review.accounts import Reviewers
from pixelmill.review.images import Previews
from pixelmill.service.areas import Area, area_for
from pixelmill.service.auth import Key
from pixelmill.storage import Location


@dataclass(frozen=True)
class Service:
    """What the routes share, made once per application."""

    settings: Settings
    queue: JobQueue
    presence: Presence
    root: Location
    """The service's storage."""
    name: str | None
    """The ``serve`` whose workers ``/readyz`` waits for (None: any worker)."""
    datasets: Store
    reviews: Reviews
    reviewers: Reviewers
    previews: Previews
    """Pyramids of the images under review."""


def service(request: Request) -> Service:
    return request.app.state.service


def caller(request: Request) -> Key | None:
    """The request's API key (None while the API is open), found by :class:`KeyGuard`."""
    return request.scope.get("state", {}).get("key")


def area(shared: Annotated[Service, Depends(service)],
         key: Annotated[Key | None, Depends(caller)]) -> Area:  # fmt: skip
    """The caller's part of the storage."""
    return area_for(shared.root, key)


def owned_job(job_id: str, shared: Annotated[Service, Depends(service)],
              key: Annotated[Key | None, Depends(caller)]) -> Job:  # fmt: skip
    """The job, if it exists and belongs to the caller (else 404, whoever owns it)."""
    try:
        job = shared.queue.get(job_id)
    except KeyError:
        job = None
    if job is None or key is not None and job.owner != key.name:
        raise HTTPException(404, {"kind": "not-found", "message": f"no job {job_id}"})
    return job


Shared = Annotated[Service, Depends(service)]
Caller = Annotated[Key | None, Depends(caller)]
CallerArea = Annotated[Area, Depends(area)]
OwnedJob = Annotated[Job, Depends(owned_job)]
