"""What the jobs API accepts: every field with a bounded type and length, so that what a caller
can make the API parse, hold or store is bounded before any work is done, and a refusal names
the field instead of echoing what was sent.

JSON bodies are held to :data:`JSON_BYTES` (uploads have ``max_upload_bytes``); a pipeline is
text of at most :data:`PIPELINE_TEXT` characters or a list of at most ``MAX_STEPS`` flat steps,
whose values are short strings, finite numbers, booleans or null.
"""

from __future__ import annotations

import string
from typing import Annotated, Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StringConstraints

from pixelmill.errors import UsageError
from pixelmill.pipeline.grammar import MAX_STEPS

JSON_BYTES = 1024**2
"""Largest body of a JSON request."""
PIPELINE_TEXT = 4096
"""Longest pipeline in its text form."""
URL_TEXT = 2048
"""Longest source, destination or webhook URL."""
VALUE_TEXT = 256
"""Longest string value of a step in the JSON form."""
PRIORITY = (-1000, 1000)
TEMPLATE_FIELDS = ("id", "stem", "ext")
"""What a destination template may fill in."""

Text = Annotated[str, StringConstraints(max_length=VALUE_TEXT)]
Finite = Annotated[float, Field(allow_inf_nan=False)]
StepJson = dict[Annotated[str, StringConstraints(max_length=64)],
                StrictBool | StrictInt | Finite | Text | None]  # fmt: skip
PipelineText = Annotated[str, StringConstraints(max_length=PIPELINE_TEXT)]
PipelineJson = Annotated[list[StepJson], Field(max_length=MAX_STEPS)]
Url = Annotated[str, StringConstraints(min_length=1, max_length=URL_TEXT)]
Priority = Annotated[StrictInt, Field(ge=PRIORITY[0], le=PRIORITY[1])]
IdempotencyKey = Annotated[str, StringConstraints(min_length=1, max_length=200)]
DatasetName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")]


class JobRequest(BaseModel):
    """A job, or a batch of jobs (one per source), on files already in the storage."""

    model_config = ConfigDict(extra="forbid")

    sources: list[Url] = Field(min_length=1, max_length=10_000,
                               description="URLs or paths inside the caller's storage")  # fmt: skip
    pipeline: PipelineText | PipelineJson = Field(
        "", description="text form (resize:fit:512/encode:webp) or JSON form")
    destination: Url | None = Field(
        None, description="output URL or template with {id}, {stem}, {ext} (default: "
        "outputs/{id}/{stem}{ext} in the caller's storage)")  # fmt: skip
    priority: Priority = 0
    idempotency_key: IdempotencyKey | None = None
    webhook: Url | None = Field(None, description="http(s) URL called with the job (JSON, "
                                "signed) when it ends")  # fmt: skip
    dataset: DatasetName | None = Field(None, description="a dataset of the caller's that "
                                        "remembers the source and the output (made when "
                                        "missing)")  # fmt: skip


def fill_template(template: str, **values: str) -> str:
    """A destination template with ``{id}``, ``{stem}`` and ``{ext}`` filled in; any other
    field, a format spec or a conversion is refused (``{id:>100000000}`` would make the
    destination as long as the caller likes)."""
    out = []
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise UsageError(f"destination {template!r}: {exc}") from None
    for literal, field, spec, conversion in parts:
        out.append(literal)
        if field is None:
            continue
        if field not in TEMPLATE_FIELDS or spec or conversion:
            allowed = ", ".join(f"{{{name}}}" for name in TEMPLATE_FIELDS)
            raise UsageError(f"destination {template!r}: only {allowed} may be filled in, "
                             "without a format or conversion")  # fmt: skip
        out.append(values[field])
    return "".join(out)


async def refused(request: Request, exc: RequestValidationError) -> JSONResponse:
    """A request that does not fit its model, as one line naming the field (what was sent is
    not repeated: it may be huge, or a number JSON cannot hold)."""
    first: dict[str, Any] = exc.errors()[0] if exc.errors() else {}
    where = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
    message = f"{where}: {first.get('msg', 'invalid')}" if where else first.get("msg", "invalid")
    return JSONResponse({"detail": {"kind": "request", "message": message}}, status_code=422)
