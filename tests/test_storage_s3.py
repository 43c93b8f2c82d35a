"""pixelmill against a real S3 server (SeaweedFS on loopback, real signatures).

Credentials and the endpoint reach pixelmill the way users give them: AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY and AWS_ENDPOINT_URL_S3 in the environment, which botocore reads whenever
a client is made, in this process and in the command-line subprocesses alike.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import fsspec
import pytest
import pyvips
import s3fs
from conftest import photo
from s3server import S3Server, seaweedfs_s3

import pixelmill
from pixelmill import storage
from pixelmill.config import Settings
from pixelmill.errors import InputError, PipelineError, StorageError

PIPELINE = "resize:fit:64:64/encode:webp"
BLOCK = 1 << 20
"""s3fs read block for the streaming test (its default, 50 MiB, would take the image whole)."""


@dataclass(frozen=True)
class S3:
    """The running server's bucket and a filesystem on it with the right credentials."""

    fs: s3fs.S3FileSystem
    bucket: str
    server: S3Server

    def objects(self) -> list[str]:
        """Every object in the bucket."""
        return listing(self.fs, self.bucket)


@dataclass(frozen=True)
class Folder:
    """A fresh folder in the bucket, for one test."""

    fs: s3fs.S3FileSystem
    path: str

    def url(self, name: str) -> str:
        return f"s3://{self.path}/{name}"

    def put(self, name: str, data: bytes) -> str:
        self.fs.pipe_file(f"{self.path}/{name}", data)
        return self.url(name)

    def names(self, below: str) -> list[str]:
        """Objects below a subfolder, relative to it."""
        root = f"{self.path}/{below}/"
        return [p.removeprefix(root) for p in listing(self.fs, root)]


def listing(fs: s3fs.S3FileSystem, path: str) -> list[str]:
    """Every object below ``path``, freshly listed (not from s3fs's listing cache)."""
    fs.invalidate_cache()
    return sorted(fs.find(path))


@pytest.fixture(scope="module")
def s3() -> Iterator[S3]:
    """A SeaweedFS S3 server with one bucket, its identity and endpoint set in the environment
    (and AWS profiles and config files kept out) until the module's tests are done."""
    with seaweedfs_s3() as server, pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_ACCESS_KEY_ID", server.access_key)
        env.setenv("AWS_SECRET_ACCESS_KEY", server.secret_key)
        env.setenv("AWS_ENDPOINT_URL_S3", server.endpoint)
        env.setenv("AWS_CONFIG_FILE", os.devnull)
        env.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
        for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN"):
            env.delenv(name, raising=False)
        s3fs.S3FileSystem.clear_instance_cache()
        try:
            fs = fsspec.filesystem("s3")
            bucket = "pixelmill-" + secrets.token_hex(4)
            fs.mkdir(bucket)
            yield S3(fs, bucket, server)
        finally:
            s3fs.S3FileSystem.clear_instance_cache()  # its instances point at this server


@pytest.fixture
def folder(s3: S3) -> Folder:
    return Folder(s3.fs, f"{s3.bucket}/{secrets.token_hex(4)}")


@pytest.fixture
def wrong_secret(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The environment holds a wrong secret key for the test's duration."""
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-" + secrets.token_hex(8))
    s3fs.S3FileSystem.clear_instance_cache()
    yield
    s3fs.S3FileSystem.clear_instance_cache()


def decode(fs: s3fs.S3FileSystem, location: str) -> pyvips.Image:
    """An image read whole from an S3 URL or a local path."""
    if location.startswith("s3://"):
        return pyvips.Image.new_from_buffer(fs.cat_file(location), "")
    return pyvips.Image.new_from_file(location)


def assert_small_webp(image: pyvips.Image) -> None:
    """What PIPELINE makes of a 320×160 picture."""
    assert image.get("vips-loader").startswith("webpload")
    assert (image.width, image.height) == (64, 32)


def same_pixels(a: pyvips.Image, b: pyvips.Image) -> bool:
    return (a.width, a.height, a.bands) == (b.width, b.height, b.bands) and (a - b).abs().max() == 0


def pixelmill_cli(*args: str | os.PathLike[str]) -> subprocess.CompletedProcess[str]:
    """Run the ``pixelmill`` command in a subprocess with this environment."""
    command = [sys.executable, "-m", "pixelmill", *map(os.fspath, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize(
    ("src_remote", "dst_remote"), [(False, True), (True, False), (True, True)],
    ids=["local-to-s3", "s3-to-local", "s3-to-s3"],
)  # fmt: skip
def test_one_image(folder: Folder, tmp_path: Path, src_remote: bool, dst_remote: bool) -> None:
    picture = photo(320, 160)
    data = picture.write_to_buffer(".png")
    if src_remote:
        src = folder.put("in/photo.png", data)
    else:
        src = str(tmp_path / "photo.png")
        Path(src).write_bytes(data)
    dst = folder.url("out/photo.webp") if dst_remote else str(tmp_path / "photo.webp")

    outcome = pixelmill.run(src, dst, PIPELINE)

    out = decode(folder.fs, dst)
    assert_small_webp(out)
    assert abs(out.avg() - picture.avg()) < 4  # the picture, not an empty canvas
    assert (outcome.destination, outcome.format) == (dst, "webp")
    assert (outcome.width, outcome.height) == (out.width, out.height)


@pytest.fixture
def small_read_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """s3fs reads in BLOCK-sized requests (set in fsspec's configuration, as users would)."""
    conf = fsspec.config.conf
    monkeypatch.setitem(conf, "s3", {**conf.get("s3", {}), "default_block_size": BLOCK})


@pytest.fixture(scope="module")
def noise_files() -> dict[str, bytes]:
    """A 2000×2000 RGB image of noise, about 12 MB whatever the format: PNG, read in order, and
    TIFF, whose decoder seeks to the directory at the end and back."""
    bands = [pyvips.Image.gaussnoise(2000, 2000, sigma=50, seed=seed) for seed in (1, 2, 3)]
    image = bands[0].bandjoin(bands[1:]).cast("uchar").copy(interpretation="srgb")
    return {".png": image.write_to_buffer(".png", compression=1), ".tif": image.tiffsave_buffer()}


@pytest.mark.parametrize("suffix", [".png", ".tif"])
@pytest.mark.parametrize(
    "pipeline",
    [
        "resize:fit:500:500/encode:png",  # sequential decode
        "thumbnail:500/encode:png",  # shrink-on-load
        "flip:vertical/resize:fit:500:500/encode:png",  # random access
    ],
)
@pytest.mark.usefixtures("small_read_blocks")
def test_source_larger_than_a_read_block_streams_intact(
    folder: Folder, tmp_path: Path, noise_files: dict[str, bytes], suffix: str, pipeline: str
) -> None:
    data = noise_files[suffix]
    assert fsspec.filesystem("s3").default_block_size * 8 < len(data)
    local = tmp_path / f"noise{suffix}"
    local.write_bytes(data)
    remote = folder.put(f"noise{suffix}", data)

    pixelmill.run(local, tmp_path / "from-local.png", pipeline)
    pixelmill.run(remote, tmp_path / "from-s3.png", pipeline)

    expected = pyvips.Image.new_from_file(str(tmp_path / "from-local.png"))
    assert expected.width == 500 and expected.deviate() > 10  # noise survived
    assert same_pixels(pyvips.Image.new_from_file(str(tmp_path / "from-s3.png")), expected)


def test_folder_run_mirrors_good_images_and_reports_the_bad_one(folder: Folder) -> None:
    picture = photo(320, 160)
    for name in ("a.png", "sub/b.jpg", "sub/deeper/c.webp"):
        folder.put(f"in/{name}", picture.write_to_buffer("." + name.rsplit(".", 1)[1]))
    broken = folder.put("in/sub/broken.jpg", b"this is not a JPEG at all")

    report = pixelmill.run_tree(folder.url("in"), folder.url("out"), PIPELINE, jobs=3)

    expected = ["a.webp", "sub/b.webp", "sub/deeper/c.webp"]
    assert sorted(o.destination for o in report.done) == [folder.url(f"out/{n}") for n in expected]
    assert folder.names("out") == expected
    for name in expected:
        assert_small_webp(decode(folder.fs, folder.url(f"out/{name}")))
    assert [(f.source, f.kind) for f in report.failed] == [(broken, "input")]
    assert report.exit_code == 3


def test_a_prefix_is_listed_page_by_page_and_not_kept(folder: Folder) -> None:
    """Every key below a prefix, through pages of the flat listing (no folder by folder walk,
    nothing left in s3fs's listing cache), hidden ones and folder markers left out."""
    names = [f"k{i:04}.png" for i in range(1100)] + ["sub/b.png", "deep/er/e.jpg"]
    for name in [*names, ".hidden/c.png", "sub/.d.png"]:
        folder.put(f"in/{name}", b"x")
    folder.put("in/marker/", b"")
    folder.fs.invalidate_cache()
    found = sorted(storage.iter_files(storage.locate(folder.url("in")), frozenset({".png",
                                                                                 ".jpg"})))  # fmt: skip
    assert found == sorted(names)
    assert not folder.fs.dircache


@pytest.mark.parametrize(
    ("source", "pipeline", "error"),
    [
        (photo(640, 480).write_to_buffer(".jpg")[:20_000], PIPELINE, InputError),
        (photo(64, 48, bands=4).write_to_buffer(".png"), "encode:jpeg", PipelineError),
    ],
    ids=["truncated-jpeg", "alpha-to-jpeg"],
)
def test_failed_run_leaves_nothing_behind(
    s3: S3, folder: Folder, tmp_path: Path, source: bytes, pipeline: str, error: type[Exception]
) -> None:
    src = folder.put("in/source", source)
    before = s3.objects()

    with pytest.raises(error):
        pixelmill.run(src, folder.url("out/result"), pipeline,
                      settings=Settings().replace(tmp_dir=str(tmp_path)))  # fmt: skip

    assert s3.objects() == before
    assert list(tmp_path.iterdir()) == []  # the local spool is gone too


def test_missing_source_names_the_url_and_exits_5(folder: Folder, tmp_path: Path) -> None:
    missing = folder.url("no/such/image.png")
    out = tmp_path / "out.webp"

    with pytest.raises(StorageError, match=re.escape(missing)):
        pixelmill.run(missing, out, PIPELINE)
    result = pixelmill_cli("run", missing, out, "-p", PIPELINE)

    assert result.returncode == 5, result.stderr
    assert missing in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()


def test_cli_reads_and_writes_s3(folder: Folder) -> None:
    src = folder.put("in/photo.jpg", photo(320, 160).write_to_buffer(".jpg"))

    result = pixelmill_cli("run", src, folder.url("out/photo.webp"), "-p", PIPELINE)

    assert result.returncode == 0, result.stderr
    assert_small_webp(decode(folder.fs, folder.url("out/photo.webp")))


@pytest.mark.parametrize("remote", ["source", "destination"])
@pytest.mark.usefixtures("wrong_secret")
def test_wrong_credentials_are_a_storage_error(
    s3: S3, folder: Folder, tmp_path: Path, remote: str
) -> None:
    local = tmp_path / "photo.png"
    photo(320, 160).write_to_file(str(local))
    if remote == "source":
        url = folder.put("photo.png", local.read_bytes())
        src, dst = url, str(tmp_path / "out.webp")
    else:
        url = folder.url("out.webp")
        src, dst = str(local), url
    before = s3.objects()

    with pytest.raises(StorageError, match="permission denied") as caught:
        pixelmill.run(src, dst, PIPELINE)
    result = pixelmill_cli("run", src, dst, "-p", PIPELINE)

    assert str(caught.value).startswith(url)
    assert result.returncode == 5, result.stderr
    assert result.stderr.startswith(f"pixelmill: storage error: {url}")
    assert "Traceback" not in result.stderr
    assert s3.objects() == before


def test_a_job_waits_out_an_s3_outage_and_then_succeeds(s3: S3, folder: Folder, tmp_path,
                                                        monkeypatch) -> None:  # fmt: skip
    """The S3 server stopped while a job needs it: the job is retried after its backoff, and
    succeeds once the server is back. (The S3 client's own retries are turned off: the job's
    retry is what is tested.)"""
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    from pixelmill.jobs.queue import JobQueue
    from pixelmill.jobs.worker import Worker

    source = folder.put("in.png", photo(96, 64).pngsave_buffer())
    queue = JobQueue(f"sqlite:///{tmp_path / 'jobs.db'}")
    job = queue.submit({"source": source, "destination": folder.url("out/o.webp"),
                        "pipeline": "resize:fit:48/encode:webp"})  # fmt: skip
    worker = Worker(queue, Settings(), name="w")
    with s3.server.down():
        s3fs.S3FileSystem.clear_instance_cache()
        waiting = worker.run_one()
    assert (waiting.state, waiting.error_kind, waiting.attempts) == ("queued", "storage", 1)
    with queue.engine.begin() as db:
        db.exec_driver_sql("UPDATE pixelmill_jobs SET run_after = 0")  # the backoff has passed
    s3fs.S3FileSystem.clear_instance_cache()
    done = worker.run_one()
    assert (done.id, done.state, done.attempts) == (job.id, "succeeded", 2), done.error
    assert folder.names("out") == ["o.webp"]
    assert decode(folder.fs, folder.url("out/o.webp")).width == 48
    queue.close()


def test_outputs_in_s3_come_with_their_length_and_name(folder: Folder, tmp_path) -> None:
    """A job's output downloaded from S3 storage carries ``Content-Length`` and a file name, as
    one from local storage does; and a job may not escape its storage with '..' in a key."""
    from fastapi.testclient import TestClient

    from pixelmill.jobs.queue import JobQueue
    from pixelmill.jobs.worker import Worker
    from pixelmill.service.app import create_app

    settings = Settings(data_dir=str(tmp_path / "data"), storage=folder.url("store"))
    with TestClient(create_app(settings)) as client:
        made = client.post("/v1/jobs/upload", data={"pipeline": "resize:fit:48/encode:webp"},
                           files={"file": ("cat.png", photo(96, 64).pngsave_buffer())})  # fmt: skip
        assert made.status_code == 202, made.text
        escape = client.post("/v1/jobs", json={"sources": [made.json()["source"]],
                                               "destination": "outputs/../../x.webp"})  # fmt: skip
        assert escape.status_code == 400 and "'..'" in escape.json()["detail"]["message"]
        queue = JobQueue(settings.job_database)
        worker = Worker(queue, settings, name="w")
        try:
            assert worker.run_one().state == "succeeded"
        finally:
            worker.close()
            queue.close()
        answer = client.get(f"/v1/jobs/{made.json()['id']}/output")
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/webp"
    assert int(answer.headers["content-length"]) == len(answer.content) > 0
    assert answer.headers["content-disposition"] == 'attachment; filename="cat.webp"'
