"""Exports of a dataset's items, one row per item with every field, its tags and its embedding
(or of any rows with typed columns, such as review verdicts): Parquet (pyarrow, written in row
groups as the rows are read, so memory holds one chunk), CSV (lists as JSON in one cell) or
JSON Lines, chosen by the file's suffix and written atomically through storage.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Mapping
from itertools import islice
from typing import Any

from pixelmill import storage
from pixelmill.datasets.fields import FIELDS
from pixelmill.errors import UsageError

FORMATS = (".parquet", ".csv", ".jsonl")
ROWS_PER_GROUP = 50_000
ITEM_COLUMNS = {**{f.name: f.kind for f in FIELDS}, "tags": "texts", "embedding": "floats"}
"""An item's columns and their kinds: int, float, text, time (seconds since the epoch, a UTC
timestamp in Parquet), texts and floats (lists)."""
COLUMNS = tuple(ITEM_COLUMNS)
LISTS = ("texts", "floats")


def export(rows: Iterable[dict[str, Any]], destination: str,
           columns: Mapping[str, str] = ITEM_COLUMNS) -> int:  # fmt: skip
    """Write ``rows`` (as :meth:`Store.rows` gives them, or with other ``columns`` and their
    kinds) to ``destination``; how many."""
    suffix = next((s for s in FORMATS if destination.lower().endswith(s)), None)
    if suffix is None:
        raise UsageError(f"{destination}: exports are {', '.join(FORMATS)} files")
    loc = storage.locate(destination)
    with storage.atomic_output(loc) as path, open(path, "wb") as handle:
        if suffix == ".parquet":
            return _parquet(rows, handle, columns)
        text = io.TextIOWrapper(handle, encoding="utf-8", newline="")
        count = (write_csv(rows, text, tuple(columns), columns) if suffix == ".csv"
                 else _jsonl(rows, text, tuple(columns)))  # fmt: skip
        text.flush()
        text.detach()
        return count


def _chunks(rows: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    it = iter(rows)
    while chunk := list(islice(it, size)):
        yield chunk


def _parquet(rows: Iterable[dict[str, Any]], handle: Any, columns: Mapping[str, str]) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    kinds = {"int": pa.int64(), "float": pa.float64(), "text": pa.string(),
             "time": pa.timestamp("us", tz="UTC"), "texts": pa.list_(pa.string()),
             "floats": pa.list_(pa.float32())}  # fmt: skip
    schema = pa.schema([pa.field(name, kinds[kind]) for name, kind in columns.items()])
    count = 0
    with pq.ParquetWriter(handle, schema, compression="zstd") as writer:
        for chunk in _chunks(rows, ROWS_PER_GROUP):
            table = {name: [row[name] for row in chunk] for name in columns}
            for name, kind in columns.items():
                if kind == "time":
                    table[name] = [None if v is None else int(v * 1e6) for v in table[name]]
            writer.write_table(pa.table(table, schema=schema))
            count += len(chunk)
        if not count:
            writer.write_table(schema.empty_table())
    return count


def write_csv(rows: Iterable[dict[str, Any]], text: Any, columns: tuple[str, ...] = COLUMNS,
              kinds: Mapping[str, str] = ITEM_COLUMNS) -> int:  # fmt: skip
    """Rows as CSV with a header (lists, such as tags and embeddings, as JSON in one cell); how
    many."""
    writer = csv.writer(text)
    writer.writerow(columns)
    count = 0
    for row in rows:
        writer.writerow([json.dumps(row[c]) if kinds[c] in LISTS else
                         ("" if row[c] is None else row[c]) for c in columns])  # fmt: skip
        count += 1
    return count


def _jsonl(rows: Iterable[dict[str, Any]], text: io.TextIOWrapper, columns: tuple[str, ...]) -> int:
    count = 0
    for row in rows:
        text.write(json.dumps({c: row[c] for c in columns}, ensure_ascii=False) + "\n")
        count += 1
    return count
