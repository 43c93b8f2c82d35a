"""Where bytes come from and go to: paths and fsspec URLs, atomic writes, listings."""

from pixelmill.storage.location import (
    Location,
    atomic_output,
    chunks,
    exists,
    input_size,
    is_dir,
    iter_files,
    list_files,
    locate,
    open_input,
    read_bytes,
    remove,
    remove_spools,
    version,
)
from pixelmill.storage.scope import Scope, resolved

__all__ = [
    "Location",
    "Scope",
    "atomic_output",
    "chunks",
    "exists",
    "input_size",
    "is_dir",
    "iter_files",
    "list_files",
    "locate",
    "open_input",
    "read_bytes",
    "remove",
    "remove_spools",
    "resolved",
    "version",
]
