"""``/v1/usage``: the work done and what it cost, grouped by key, pipeline, day, dataset or
origin, with this month's standing of the budgets. A key sees its own usage alone; while the
API is open (no key exists) the whole service's is shown, as the command line shows it."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from pixelmill.service.deps import Caller, Shared
from pixelmill.service.routes.jobs import REFUSALS
from pixelmill.usage import BY, Usage, since

router = APIRouter(prefix="/v1", tags=["usage"], responses=REFUSALS)
By = Literal[BY]  # type: ignore[valid-type]


class UsageView(BaseModel):
    since: float = Field(description="start of the period, Unix seconds")
    by: str
    rows: list[dict[str, Any]] = Field(description="per group: work, failed, cpu_seconds, "
                                       "gpu_seconds, wall_seconds, peak_memory, bytes_read, "
                                       "bytes_written, bytes_served, cost")  # fmt: skip
    total: dict[str, Any]
    budgets: list[dict[str, Any]] = Field(description="this month's standing of the budgets "
                                          "in view: key, month, spent, budget, soft, ratio")


@router.get("/usage")
def report(shared: Shared, key: Caller,
           since_: Annotated[str, Query(alias="since", max_length=20,
                                        description="30d, 12h, 2w, month or YYYY-MM-DD")] = "30d",
           by: By = "key") -> UsageView:  # fmt: skip
    """Work and cost since a time, grouped; each key sees its own."""
    ledger = Usage.of(shared.settings)
    found = ledger.report(since(since_, ledger.clock()), by, key.name if key else None)
    return UsageView(**found.to_json())
