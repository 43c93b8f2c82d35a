"""Datasets: every image remembered, in the job database (see docs/datasets.md).

A dataset is a named, growing set of items, each an image in storage (its URI and SHA-256,
never a copy of its bytes) with what its header says, cheap statistics of its pixels, an
embedding, its tags, and what was done to it. Versions freeze it without copying; a small
filter language queries it; drift, anomalies and smart selection read it.

The Python API::

    from pixelmill.datasets import Store, add, embedder
    store = Store.of(settings)
    dataset = store.create("photos")
    add(store, dataset, ["s3://bucket/incoming/"], settings, embedder(None, settings))
    store.snapshot(dataset, "v1")
    store.query(store.view("photos@v1"), 'width >= 4000 and sharpness < p10', sort="-created")
"""

from pixelmill.datasets.embed import embedder
from pixelmill.datasets.ingest import Summary, add
from pixelmill.datasets.recording import record_run
from pixelmill.datasets.store import Dataset, Event, Record, Store, View

__all__ = ["Dataset", "Event", "Record", "Store", "Summary", "View", "add", "embedder",
           "record_run"]
