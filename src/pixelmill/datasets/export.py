"""Exports of a dataset's items, one row per item with every field, its tags and its embedding:
Parquet (pyarrow, written in row groups as the items are read, so memory holds one chunk), CSV
(the embedding as a JSON list in one column) or JSON Lines, chosen by the file's suffix and
written atomically through storage.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any

from pixelmill import storage
from pixelmill.datasets.fields import FIELDS
from pixelmill.errors import UsageError

FORMATS = (".parquet", ".csv", ".jsonl")
ROWS_PER_GROUP = 50_000
COLUMNS = (*(f.name for f in FIELDS), "tags", "embedding")


def export(rows: Iterable[dict[str, Any]], destination: str) -> int:
    """Write ``rows`` (as :meth:`Store.rows` gives them) to ``destination``; how many."""
    suffix = next((s for s in FORMATS if destination.lower().endswith(s)), None)
    if suffix is None:
        raise UsageError(f"{destination}: exports are {', '.join(FORMATS)} files")
    loc = storage.locate(destination)
    with storage.atomic_output(loc) as path, open(path, "wb") as handle:
        if suffix == ".parquet":
            return _parquet(rows, handle)
        text = io.TextIOWrapper(handle, encoding="utf-8", newline="")
        count = write_csv(rows, text) if suffix == ".csv" else _jsonl(rows, text)
        text.flush()
        text.detach()
        return count


def _chunks(rows: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    it = iter(rows)
    while chunk := list(islice(it, size)):
        yield chunk


def _parquet(rows: Iterable[dict[str, Any]], handle: Any) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    kinds = {"int": pa.int64(), "float": pa.float64(), "text": pa.string(),
             "time": pa.timestamp("us", tz="UTC")}  # fmt: skip
    schema = pa.schema([*(pa.field(f.name, kinds[f.kind]) for f in FIELDS),
                        pa.field("tags", pa.list_(pa.string())),
                        pa.field("embedding", pa.list_(pa.float32()))])  # fmt: skip
    count = 0
    with pq.ParquetWriter(handle, schema, compression="zstd") as writer:
        for chunk in _chunks(rows, ROWS_PER_GROUP):
            columns = {name: [row[name] for row in chunk] for name in COLUMNS}
            for f in FIELDS:
                if f.kind == "time":
                    columns[f.name] = [None if v is None else int(v * 1e6)
                                       for v in columns[f.name]]  # fmt: skip
            writer.write_table(pa.table(columns, schema=schema))
            count += len(chunk)
        if not count:
            writer.write_table(schema.empty_table())
    return count


def write_csv(rows: Iterable[dict[str, Any]], text: Any,
              columns: tuple[str, ...] = COLUMNS) -> int:  # fmt: skip
    """Rows as CSV with a header (tags and embeddings as JSON lists in one cell); how many."""
    writer = csv.writer(text)
    writer.writerow(columns)
    count = 0
    for row in rows:
        writer.writerow([json.dumps(row[c]) if c in ("tags", "embedding") else
                         ("" if row[c] is None else row[c]) for c in columns])  # fmt: skip
        count += 1
    return count


def _jsonl(rows: Iterable[dict[str, Any]], text: io.TextIOWrapper) -> int:
    count = 0
    for row in rows:
        text.write(json.dumps({c: row[c] for c in COLUMNS}, ensure_ascii=False) + "\n")
        count += 1
    return count
