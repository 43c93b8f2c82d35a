"""``/v1/datasets``: the caller's datasets, their items (filtered with the query language of
docs/datasets.md), their versions, drift and anomalies. Each API key sees only its own
datasets; without keys, the command line's. Items enter through jobs (``dataset`` on
``POST /v1/jobs``) or ``pixelmill datasets add``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field, StringConstraints

from pixelmill.datasets import Store, insight
from pixelmill.service.deps import Caller, Shared
from pixelmill.service.routes.jobs import REFUSALS

router = APIRouter(prefix="/v1", tags=["datasets"], responses=REFUSALS)
Ref = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}(@[A-Za-z0-9][A-Za-z0-9._-]{0,99})?$")]  # fmt: skip
Expression = Annotated[str, Query(max_length=2000, description="filter, e.g. width >= 4000 and "
                                  'format = "jpeg" (docs/datasets.md)')]  # fmt: skip


class DatasetView(BaseModel):
    name: str
    items: int
    embedder: str
    created: float
    versions: list[dict[str, Any]] = Field(default_factory=list)
    drift: dict[str, Any] | None = Field(None, description="the scheduled drift check, if any")
    drift_state: dict[str, Any] | None = Field(None, description="its last outcome")


class DatasetList(BaseModel):
    datasets: list[DatasetView]


class ItemList(BaseModel):
    items: list[dict[str, Any]]
    limit: int
    offset: int


class SnapshotRequest(BaseModel):
    tag: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")] | None = None


def datasets_of(shared: Shared) -> Store:
    return shared.datasets


Datasets = Annotated[Store, Depends(datasets_of)]


def _owner(key: Caller) -> str:
    return key.name if key is not None else ""


@router.get("/datasets")
def listing(store: Datasets, key: Caller) -> DatasetList:
    """The caller's datasets with their number of items."""
    return DatasetList(datasets=[DatasetView(name=d.name, items=n, embedder=d.embedder,
                                             created=d.created, drift=d.drift,
                                             drift_state=d.drift_state)
                                 for d, n in store.list(_owner(key))])  # fmt: skip


@router.get("/datasets/{name}")
def show(name: Ref, store: Datasets, key: Caller) -> DatasetView:
    """A dataset (or a version of it: ``NAME@v1``): its size, embedder, versions and drift."""
    view = store.view(name, _owner(key))
    dataset = view.dataset
    return DatasetView(name=str(view), items=store.count(view), embedder=dataset.embedder,
                       created=dataset.created, versions=store.snapshots(dataset),
                       drift=dataset.drift, drift_state=dataset.drift_state)  # fmt: skip


@router.get("/datasets/{name}/items")
def items(name: Ref, store: Datasets, key: Caller, q: Expression = "",
          sort: Annotated[str | None, Query(max_length=64)] = None,
          limit: Annotated[int, Query(ge=1, le=1000)] = 100,
          offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
          embedding: bool = False) -> ItemList:  # fmt: skip
    """Items matching the filter ``q``, ordered by ``sort`` (``-field`` descending)."""
    found = store.query(store.view(name, _owner(key)), q, sort=sort, limit=limit,
                        offset=offset, embedding=embedding)  # fmt: skip
    return ItemList(items=found, limit=limit, offset=offset)


@router.get("/datasets/{name}/snapshots")
def snapshots(name: Ref, store: Datasets, key: Caller) -> list[dict[str, Any]]:
    """The versions of a dataset, oldest first."""
    return store.snapshots(store.get(name.partition("@")[0], _owner(key)))


@router.post("/datasets/{name}/snapshots", status_code=201)
def snapshot(name: Ref, body: SnapshotRequest, store: Datasets, key: Caller) -> dict[str, Any]:
    """Freeze the dataset's items as a new version (``v1``, ``v2``… unless ``tag`` is given)."""
    return store.snapshot(store.get(name.partition("@")[0], _owner(key)), body.tag)


@router.get("/datasets/{name}/anomalies")
def anomalies(name: Ref, store: Datasets, key: Caller, q: Expression = "",
              top: Annotated[int, Query(ge=1, le=1000)] = 20) -> list[dict[str, Any]]:  # fmt: skip
    """The items that stand out most, with the reasons."""
    return insight.anomalies(store, store.view(name, _owner(key)), q, top)


@router.get("/datasets/{name}/drift")
def drift(name: Ref, store: Datasets, key: Caller,
          reference: Annotated[Ref, Query(description="NAME@VERSION to compare with")],
          since: Annotated[str | None, Query(max_length=16)] = None,
          current: Annotated[Ref | None, Query()] = None) -> dict[str, Any]:  # fmt: skip
    """Drift of the dataset's items (all, the last ``since``, or the version ``current``)
    against the version ``reference``."""
    return insight.check_drift(store, name, reference, since=since, current=current,
                               owner=_owner(key)).to_json()  # fmt: skip
