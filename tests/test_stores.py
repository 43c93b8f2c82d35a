"""The local disk and an fsspec filesystem answer pixelmill's questions alike: sizes, folders,
listings, and a write that appears whole at its commit."""

from __future__ import annotations

import uuid
from pathlib import Path

import fsspec
import pytest

from pixelmill.errors import StorageError
from pixelmill.storage.stores import LOCAL, FsspecStore, Store


@pytest.fixture(params=["local", "memory"])
def store_and_root(request, tmp_path) -> tuple[Store, str]:
    if request.param == "local":
        return LOCAL, str(tmp_path)
    return FsspecStore(fsspec.filesystem("memory")), f"/stores-{uuid.uuid4().hex}"


def write(store: Store, path: str, data: bytes, tmp_path: Path) -> None:
    spool, _ = store.spool(path, "0123456789ab", str(tmp_path))
    Path(spool).write_bytes(data)
    store.commit(spool, path, "0123456789ab")


def test_both_stores_answer_alike(store_and_root, tmp_path) -> None:
    store, root = store_and_root
    write(store, f"{root}/a.png", b"12345", tmp_path)
    write(store, f"{root}/sub/b.jpg", b"123", tmp_path)
    assert store.size(f"{root}/a.png") == 5
    with store.open(f"{root}/sub/b.jpg") as handle:
        assert handle.read() == b"123"
    assert store.is_dir(f"{root}/sub") and not store.is_dir(f"{root}/a.png")
    assert sorted(store.files(root)) == ["a.png", "sub/b.jpg"]
    with pytest.raises(IsADirectoryError):
        store.size(f"{root}/sub")
    with pytest.raises(FileNotFoundError):
        store.size(f"{root}/missing.png")
    assert store.leftovers(f"{root}/a.png") == []


def test_a_local_write_spools_beside_its_destination_until_the_commit(tmp_path) -> None:
    destination = str(tmp_path / "new" / "a.png")
    spool, created = LOCAL.spool(destination, "0123456789ab", None)
    assert created == str(tmp_path / "new")
    assert LOCAL.leftovers(destination) == [spool]  # what a killed process would leave
    LOCAL.commit(spool, destination, "0123456789ab")
    assert LOCAL.leftovers(destination) == [] and LOCAL.version(destination) is not None


def test_an_upload_without_room_to_spool_names_the_folder(tmp_path) -> None:
    store = FsspecStore(fsspec.filesystem("memory"))
    with pytest.raises(StorageError, match="missing: cannot hold a file to upload"):
        store.spool("/x/a.png", "0123456789ab", str(tmp_path / "missing"))
