"""What the API answers, as pydantic models, so that ``/openapi.json`` describes every body:
a job (with its links, which only the API knows), lists of them, a batch, readiness, and the
envelope of every refusal."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from pixelmill.jobs.queue import Job


class Refusal(BaseModel):
    kind: str = Field(description="what was wrong: pipeline, usage, input, limit, auth, rate, "
                      "request, not-found, state, …")  # fmt: skip
    message: str


class Refused(BaseModel):
    """Every 4xx and 5xx answer of the API."""

    detail: Refusal


class JobError(BaseModel):
    kind: str | None
    message: str


class Webhook(BaseModel):
    url: str
    attempts: int
    status: str | None = Field(description="the last delivery's result")


class Links(BaseModel):
    self: str
    output: str | None = Field(None, description="once the job succeeded")


class JobView(BaseModel):
    """A job: its state, progress, timings, output, quality verdicts and error."""

    id: str
    state: str
    progress: float = Field(description="percent")
    priority: int
    batch: str | None
    attempts: int
    created_at: float
    updated_at: float
    source: str
    pipeline: str | list[dict[str, Any]]
    destination: str
    output: dict[str, Any] | None = Field(description="what the run wrote (format, size, "
                                          "bytes, seconds, notes…), once it succeeded")  # fmt: skip
    timings: dict[str, float] = Field(description="seconds by stage")
    qc: list[dict[str, Any]] = Field(description="the quality gates' verdicts")
    detections: list[dict[str, Any]] = Field(
        [], description="what detect steps found: box [x0, y0, x1, y1] in the source's pixels "
        "after autorotation, score, class, landmarks")  # fmt: skip
    classes: list[dict[str, Any]] = Field([], description="what classify steps said: model "
                                          "and top classes with scores")  # fmt: skip
    encode: dict[str, Any] | None = Field(None, description="how a target encode chose its "
                                          "quality: format, quality, score, target, met, "
                                          "trials")  # fmt: skip
    error: JobError | None
    webhook: Webhook | None
    links: Links


class JobList(BaseModel):
    jobs: list[JobView]
    limit: int
    offset: int


class Batch(BaseModel):
    batch: str
    jobs: list[JobView]


class Ready(BaseModel):
    status: str
    jobs: dict[str, int] = Field(description="jobs by state")
    workers: int = Field(description="workers heard from lately")


class Healthy(BaseModel):
    status: str


def job_view(job: Job) -> JobView:
    """A job as the API shows it: its description and its links."""
    output = f"/v1/jobs/{job.id}/output" if job.state == "succeeded" else None
    return JobView(**job.describe(), links=Links(self=f"/v1/jobs/{job.id}", output=output))
