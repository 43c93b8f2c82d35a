"""The service under load: jobs through the jobs API, and on-demand thumbnails against Thumbor.

Three parts, the first two against real servers started by this program on free loopback ports:

- ``jobs``: ``pixelmill serve --workers N`` (uvicorn, SQLite, N worker processes). C client
  threads each submit a job (``POST /v1/jobs``, a photo already in the storage, the pipeline
  ``resize:fit:512:512/encode:jpeg:q=85``), poll ``GET /v1/jobs/{id}`` until it ends, and go on
  with the next, up to a number of jobs or a time limit. Reported: jobs per second, end-to-end
  latency (submit until seen succeeded, so within one poll interval), submit latency, errors,
  the seconds the workers spent in the pipeline itself, and CPU per job (API and workers).
- ``ondemand``: the same 512×512 fit thumbnails (JPEG and WebP, quality 80) of the same
  photographs from pixelmill's signed ``/img`` URLs (``thumbnail:512``, shrink-on-load) and from
  Thumbor (``/unsafe/fit-in/512x512/filters:format(…)/NAME``, its Pillow engine), each in two
  set-ups: rendering every request (pixelmill with ``PIXELMILL_RENDER_CACHE=false``, Thumbor
  with no storage and no result storage), and serving repeats from a cache (pixelmill's render
  cache, Thumbor's file result storage); each is compared with its like. Each server runs as a
  single process. The load generator (wrk where it is installed, else client threads here, one
  keep-alive connection each) is the same for all; rounds of a fixed duration take turns
  between the servers (A B C D, B C D A, …) and the table gives medians over the rounds, with the
  servers' CPU time per request (from ``/proc``), which the machine's noise moves less than the
  rates. Before the rounds every output of every server is decoded with libvips: size, band
  count and format must agree, and each is scored against a reference thumbnail.
- ``breakdown``: where the CPU time of one thumbnail goes, one request at a time in fresh
  processes: libvips alone, ``pixelmill.run``, the ``/img`` handler without HTTP, and Pillow
  doing what Thumbor's engine does (``draft``, one LANCZOS resize, save); with the decode scale
  each one picks per photo.

Thumbor is installed from PyPI into its own virtual environment, ``benchmarks/.thumbor-venv``
(git-ignored), made on the first run. Test photographs (scikit-image's astronaut, chelsea,
coffee and rocket, enlarged to about 12 MP with light grain, JPEG q90) are made once into the
work folder. Results go to ``benchmarks/results/service.json`` and ``service.md`` (``--quick``:
``service-quick.*`` in the work folder), the tables to stdout, progress to stderr.

    python benchmarks/bench_service.py                  # every part: about 5 minutes on 2 cores
    python benchmarks/bench_service.py --quick          # small photos, short rounds: 1 minute
    python benchmarks/bench_service.py --parts ondemand --clients 8 --rounds 5
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import recording

HERE = Path(__file__).resolve().parent
CLI = str(Path(sys.executable).with_name("pixelmill"))
THUMBOR_VENV = HERE / ".thumbor-venv"
THUMBOR_SPEC = "thumbor>=7.7,<8"
PHOTOS = {"astronaut": (3584, 3584), "chelsea": (4480, 2800), "coffee": (4096, 3072),
          "rocket": (3072, 4096)}  # fmt: skip
"""scikit-image photographs and the size each is enlarged (and centre-cropped) to: about 12 MP,
with aspect ratios whose 512×512 fit is a whole number of pixels, so no rounding can differ."""
QUICK_DIVISOR = 4
BOX = 512
QUALITY = 80
FORMATS = ("jpeg", "webp")
PARTS = ("jobs", "ondemand", "breakdown")
JOB_PIPELINE = "resize:fit:512:512/encode:jpeg:q=85"
SIGNING_KEY = "bench-secret"
TERMINAL = {"succeeded", "failed", "dead", "cancelled"}
THUMBOR_CONF = """\
# Thumbor for benchmarks/bench_service.py: every request loads the file and renders, unless
# a result storage is set below.
ALLOW_UNSAFE_URL = True
LOADER = "thumbor.loaders.file_loader"
FILE_LOADER_ROOT_PATH = {root!r}
STORAGE = "thumbor.storages.no_storage"
QUALITY = {quality}
ENGINE_THREADPOOL_SIZE = {threads}
"""
THUMBOR_NO_RESULTS = 'RESULT_STORAGE = None\n'
THUMBOR_RESULTS = """\
RESULT_STORAGE = "thumbor.result_storages.file_storage"
RESULT_STORAGE_FILE_STORAGE_ROOT_PATH = {folder!r}
RESULT_STORAGE_EXPIRATION_SECONDS = 0
RESULT_STORAGE_STORES_UNSAFE = True
"""
MEASURE_CHILD = """
def cpu_seconds():  # every thread of the process, to the microsecond
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime

def measure(call):
    for path in photos:
        call(path)
    cpu, wall = cpu_seconds(), time.perf_counter()
    for _ in range(repeat):
        for path in photos:
            call(path)
    count = repeat * len(photos)
    return {"cpu_ms": (cpu_seconds() - cpu) / count * 1000,
            "wall_ms": (time.perf_counter() - wall) / count * 1000}
"""
"""What both measuring children share: CPU and wall milliseconds per image, after a warm-up."""
STEPS_CHILD = """
import asyncio, hashlib, json, logging, os, resource, sys, tempfile, time
fmt, box, quality, repeat, key, score, *photos = sys.argv[1:]
box, quality, repeat = int(box), int(quality), int(repeat)
os.environ.update(PIXELMILL_SIGNING_KEYS=key, PIXELMILL_SOURCES=os.path.dirname(photos[0]),
                  PIXELMILL_RENDER_CACHE="false", PIXELMILL_DATA_DIR=tempfile.mkdtemp())
import pyvips
import pixelmill
from starlette.requests import Request
from pixelmill import storage
from pixelmill.config import Settings
from pixelmill.quality import compare
from pixelmill.service import ondemand

pyvips.cache_set_max(0)
settings = Settings.load()
route = next(r for r in ondemand.router(settings, storage.locate(settings.storage_root)).routes
             if r.path.startswith("/img/"))
pipeline = f"thumbnail:{box}/encode:{fmt}:q={quality}"
out = os.path.join(tempfile.mkdtemp(), "out." + ("jpg" if fmt == "jpeg" else fmt))

def save(image):
    if fmt == "jpeg":
        return image.jpegsave_buffer(Q=quality, optimize_coding=True)
    return image.webpsave_buffer(Q=quality, effort=4)

def fit(width, height):
    scale = min(box / width, box / height)
    return round(width * scale), round(height * scale)

def draft_scale(width, height):
    # Pillow's JpegImageFile.draft: the largest DCT scale that stays at or above the size asked
    target = fit(width, height)
    most = min(width // target[0], height // target[1])
    return next(s for s in (8, 4, 2, 1) if most >= s)

def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)

def thumbnail_image(path):
    return pyvips.Image.thumbnail(path, box, height=box, size="down")

def draft_image(path):
    header = pyvips.Image.new_from_file(path)
    width, height = fit(header.width, header.height)
    image = pyvips.Image.new_from_file(path, shrink=draft_scale(header.width, header.height),
                                       access="sequential")
    if (image.width, image.height) != (width, height):
        image = image.resize(width / image.width, vscale=height / image.height,
                             kernel="lanczos3")
    return image

def thumbnail(path):
    save(thumbnail_image(path))

def at_draft_scale(path):
    save(draft_image(path))

def run(path):
    pixelmill.run(path, out, pipeline, settings=settings)

signed = {}
for path in photos:
    sig, rest = ondemand.signed_path(key, pipeline, path).split("/", 3)[2:]
    signed[path] = (sig, rest)

def handler(path):
    sig, rest = signed[path]
    raw = f"/img/{sig}/{rest}".encode()
    scope = {"type": "http", "method": "GET", "path": raw.decode(), "raw_path": raw,
             "query_string": b"", "headers": []}
    answer = asyncio.run(route.endpoint(sig, rest, Request(scope)))
    assert answer.status_code == 200, answer.status_code

""" + MEASURE_CHILD + """
class Shrinks(logging.Handler):
    def __init__(self):
        super().__init__()
        self.seen = []
    def emit(self, record):
        text = record.getMessage()
        if "pre-shrink" in text:
            self.seen.append(int(text.split("factor")[1].split()[0]))

photo_notes = {}
for path in photos if score == "score" else []:
    shrinks = Shrinks()
    logger = logging.getLogger("pyvips")
    logger.addHandler(shrinks)
    logger.setLevel(logging.INFO)
    thumb = thumbnail_image(path).copy_memory()
    logger.setLevel(logging.WARNING)
    logger.removeHandler(shrinks)
    header = pyvips.Image.new_from_file(path)
    draft = draft_image(path).copy_memory()
    whole = header.resize(thumb.width / header.width, vscale=thumb.height / header.height,
                          kernel="lanczos3")
    photo_notes[os.path.basename(path)] = {
        "libvips_pre_shrink": shrinks.seen[0] if shrinks.seen else None,
        "pillow_draft_scale": draft_scale(header.width, header.height),
        "ssimulacra2_thumbnail": compare(whole, thumb, ["ssimulacra2"])["ssimulacra2"],
        "ssimulacra2_at_draft_scale": compare(whole, draft, ["ssimulacra2"])["ssimulacra2"],
    }
steps = {"sha256": sha256, "libvips_thumbnail": thumbnail,
         "libvips_at_draft_scale": at_draft_scale, "pixelmill_run": run, "handler": handler}
print(json.dumps({"steps": {name: measure(call) for name, call in steps.items()},
                  "photos": photo_notes}))
"""
PILLOW_CHILD = """
import io, json, os, resource, sys, time
from PIL import Image
fmt, box, quality, repeat, *photos = sys.argv[1:]
box, quality, repeat = int(box), int(quality), int(repeat)

def thumbor_like(path):
    # what Thumbor's PIL engine does for fit-in: draft, then one LANCZOS resize, then save
    with open(path, "rb") as handle:
        image = Image.open(io.BytesIO(handle.read()))
    width, height = image.size
    scale = min(box / width, box / height)
    size = (round(width * scale + 1e-5), round(height * scale + 1e-5))
    image.draft(None, size)
    image = image.resize(size, Image.LANCZOS)
    out = io.BytesIO()
    if fmt == "jpeg":
        image.save(out, "JPEG", quality=quality, optimize=True, progressive=True)
    else:
        image.save(out, "WEBP", quality=quality)

""" + MEASURE_CHILD + """
print(json.dumps({"steps": {"pillow_thumbor_like": measure(thumbor_like)}}))
"""
STEP_NAMES = {
    "sha256": "SHA-256 of the source file (the on-demand cache key)",
    "libvips_thumbnail": "libvips `thumbnail` + save to memory (the image work alone)",
    "libvips_at_draft_scale": "libvips load at Pillow's draft scale + one Lanczos 3 resize "
                              "+ save to memory",
    "pixelmill_run": "`pixelmill.run` to a file",
    "handler": "pixelmill's `/img` handler, no HTTP (cache off)",
    "pixelmill_server": "pixelmill server, per request (on-demand rounds)",
    "pillow_thumbor_like": "Pillow as Thumbor's engine uses it (draft, LANCZOS, save)",
    "thumbor_server": "Thumbor server, per request (on-demand rounds)",
}  # fmt: skip
THUMBOR_VERSIONS = """
import importlib.metadata as m, json
print(json.dumps({n: m.version(n) for n in ("thumbor", "pillow", "tornado")}))
"""


def log(*parts: object) -> None:
    print(*parts, file=sys.stderr, flush=True)


# --- inputs -----------------------------------------------------------------------------------


def make_photos(folder: Path, quick: bool, source: str = "jpeg") -> list[Path]:
    """The test photographs (JPEG q90; for another ``source`` format, the same pixels in it:
    WebP q90 or PNG), made where missing; returns their paths."""
    import pyvips

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for seed, (name, (width, height)) in enumerate(PHOTOS.items()):
        if quick:
            width, height = width // QUICK_DIVISOR, height // QUICK_DIVISOR
        path = folder / f"{name}-{width}x{height}.jpg"
        paths.append(path)
        if path.exists():
            continue
        import skimage.data

        log(f"making {path.name} …")
        array = getattr(skimage.data, name)()
        image = pyvips.Image.new_from_array(array).copy(interpretation="srgb")
        image = image.thumbnail_image(width, height=height, crop="centre", size="both")
        grain = pyvips.Image.gaussnoise(width, height, sigma=3, mean=0, seed=seed)
        (image.cast("float") + grain).cast("uchar").jpegsave(str(path), Q=90)
    if source == "jpeg":
        return paths
    converted = [path.with_suffix("." + source) for path in paths]
    for jpeg, other in zip(paths, converted):
        if not other.exists():
            options = {"Q": 90} if source == "webp" else {}
            pyvips.Image.new_from_file(str(jpeg)).write_to_file(str(other), **options)
    return converted


# --- servers ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """A server process started in its own process group, its output in a log file."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], port: int,
                 ready_path: str, logs: Path) -> None:  # fmt: skip
        self.name, self.port, self.base = name, port, f"http://127.0.0.1:{port}"
        self.log_path = logs / f"{name}.log"
        with open(self.log_path, "wb") as out:
            self.process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT,
                                            start_new_session=True)  # fmt: skip
        self._wait_ready(ready_path)

    def _wait_ready(self, path: str, timeout: float = 120.0) -> None:
        import httpx

        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.process.poll() is not None:
                raise SystemExit(f"{self.name} exited ({self.process.returncode}):\n"
                                 f"{self.log_path.read_text()[-3000:]}")  # fmt: skip
            try:
                if httpx.get(self.base + path, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise SystemExit(f"{self.name} not ready after {timeout:g} s:\n"
                         f"{self.log_path.read_text()[-3000:]}")  # fmt: skip

    def cpu_seconds(self, children: bool = True) -> float:
        """User plus system CPU time of the server process, and of its children now running."""
        tick = os.sysconf("SC_CLK_TCK")
        total = 0.0
        for pid in [self.process.pid, *(self.children() if children else [])]:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / tick
        return total

    def children(self) -> list[int]:
        pid = self.process.pid
        try:
            return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        except OSError:
            return []

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


@contextmanager
def running(*servers: Callable[[], Server]) -> Iterator[list[Server]]:
    started: list[Server] = []
    try:
        for start in servers:
            started.append(start())
        yield started
    finally:
        for server in started:
            server.stop()


def clean_env(**pixelmill: str) -> dict[str, str]:
    """This environment without PIXELMILL_* settings, plus the given ones."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIXELMILL_")}
    return env | {f"PIXELMILL_{k.upper()}": v for k, v in pixelmill.items()}


def thumbor_python(venv: Path) -> Path:
    """The Thumbor venv's Python, the venv made and Thumbor installed when missing."""
    python = venv / "bin" / "python"
    if not (venv / "bin" / "thumbor").exists():
        log(f"installing {THUMBOR_SPEC} into {venv} …")
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", THUMBOR_SPEC], check=True)
    return python


# --- statistics -------------------------------------------------------------------------------


def percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p90": None, "p99": None}
    if len(values) == 1:
        return {"p50": values[0], "p90": values[0], "p99": values[0]}
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50": cuts[49], "p90": cuts[89], "p99": cuts[98]}


def median_of(rows: list[dict], key: str) -> float | None:
    values = [r[key] for r in rows if r.get(key) is not None]
    return statistics.median(values) if values else None


# --- part 1: jobs -----------------------------------------------------------------------------


def bench_jobs(args: argparse.Namespace, photos: list[Path], logs: Path) -> dict:
    import httpx

    with tempfile.TemporaryDirectory(prefix="pixelmill-bench-jobs-") as data:
        inbox = Path(data, "files", "in")
        inbox.mkdir(parents=True)
        for photo in photos:
            shutil.copyfile(photo, inbox / photo.name)
        sources = [f"in/{photo.name}" for photo in photos]
        port = free_port()
        command = [CLI, "serve", "--host", "127.0.0.1", "--port", str(port), "--data-dir", data,
                   "--workers", str(args.workers)]  # fmt: skip
        with running(lambda: Server("jobs-serve", command, clean_env(), port, "/readyz",
                                    logs)) as (server,):  # fmt: skip
            with httpx.Client(base_url=server.base, timeout=60) as client:
                # one job per worker first, so that every worker has started and warmed up
                warm = [client.post("/v1/jobs", json={"sources": [sources[i % len(sources)]],
                                                      "pipeline": JOB_PIPELINE}).json()["id"]
                        for i in range(max(args.workers, 1))]  # fmt: skip
                for job_id in warm:
                    while client.get(f"/v1/jobs/{job_id}").json()["state"] not in TERMINAL:
                        time.sleep(0.1)
            log(f"jobs: {args.jobs} jobs, {args.job_clients} clients, {args.workers} workers …")
            cpu_before, api_before = server.cpu_seconds(), server.cpu_seconds(children=False)
            load_before = os.getloadavg()
            samples = run_job_clients(server.base, sources, args)
            cpu = server.cpu_seconds() - cpu_before
            api = server.cpu_seconds(children=False) - api_before
    return summarize_jobs(samples, args, cpu, api, load_before)


def run_job_clients(base: str, sources: list[str], args: argparse.Namespace) -> list[dict]:
    import httpx

    counter, lock, samples = itertools.count(), threading.Lock(), []
    start = time.perf_counter()
    stop_submitting = start + args.job_seconds
    give_up = stop_submitting + 120

    def client() -> None:
        with httpx.Client(base_url=base, timeout=60) as http:
            while True:
                with lock:
                    index = next(counter)
                if index >= args.jobs or time.perf_counter() > stop_submitting:
                    return
                body = {"sources": [sources[index % len(sources)]], "pipeline": JOB_PIPELINE}
                submitted = time.perf_counter()
                try:
                    answer = http.post("/v1/jobs", json=body)
                except httpx.HTTPError as exc:
                    samples.append({"state": f"submit error: {exc}"})
                    continue
                submit_s = time.perf_counter() - submitted
                if answer.status_code != 202:
                    samples.append({"state": f"submit {answer.status_code}",
                                    "submit_s": submit_s})  # fmt: skip
                    continue
                job, polls = answer.json(), 0
                while job["state"] not in TERMINAL and time.perf_counter() < give_up:
                    time.sleep(args.poll)
                    polls += 1
                    try:
                        job = http.get(f"/v1/jobs/{job['id']}").json()
                    except httpx.HTTPError:
                        continue
                ended = time.perf_counter()
                output = job.get("output") or {}
                samples.append({"state": job["state"] if job["state"] in TERMINAL else "timeout",
                                "submitted": submitted - start, "ended": ended - start,
                                "submit_s": submit_s, "latency_s": ended - submitted,
                                "run_s": output.get("seconds"), "polls": polls,
                                "output": [output.get("width"), output.get("height")]})  # fmt: skip

    threads = [threading.Thread(target=client) for _ in range(args.job_clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return samples


def summarize_jobs(samples: list[dict], args: argparse.Namespace, cpu: float, api: float,
                   load_before: tuple[float, ...]) -> dict:  # fmt: skip
    """``cpu``: CPU seconds of the API and the workers together; ``api``: of the API alone."""
    done = [s for s in samples if s["state"] == "succeeded"]
    window = (max(s["ended"] for s in done) - min(s["submitted"] for s in done)) if done else 0
    latency = percentiles([s["latency_s"] for s in done])
    submit = percentiles([s["submit_s"] for s in samples if "submit_s" in s])
    runs = [s["run_s"] for s in done if s["run_s"] is not None]
    return {
        "pipeline": JOB_PIPELINE, "workers": args.workers, "clients": args.job_clients,
        "poll_s": args.poll, "jobs": len(samples), "succeeded": len(done),
        "errors": len(samples) - len(done),
        "error_states": sorted({s["state"] for s in samples} - {"succeeded"}),
        "seconds": window, "jobs_per_s": len(done) / window if window else None,
        "latency_s": latency, "submit_ms": {k: v and v * 1000 for k, v in submit.items()},
        "run_s_median": statistics.median(runs) if runs else None,
        "polls_median": statistics.median(s["polls"] for s in done) if done else None,
        "server_cpu_s": cpu, "api_cpu_s": api,
        "server_cpu_ms_per_job": cpu / len(done) * 1000 if done else None,
        "api_cpu_ms_per_job": api / len(done) * 1000 if done else None,
        "load_average_before": load_before, "load_average_after": os.getloadavg(),
        "samples": samples,
    }  # fmt: skip


# --- part 2: on-demand thumbnails -------------------------------------------------------------


def pixelmill_urls(photos: list[Path], fmt: str) -> list[str]:
    from pixelmill.service.ondemand import signed_path

    pipeline = f"thumbnail:{BOX}/encode:{fmt}:q={QUALITY}"
    return [signed_path(SIGNING_KEY, pipeline, str(photo)) for photo in photos]


def thumbor_urls(photos: list[Path], fmt: str) -> list[str]:
    return [f"/unsafe/fit-in/{BOX}x{BOX}/filters:format({fmt})/{photo.name}" for photo in photos]


def load_round(server: Server, urls: list[str], clients: int, seconds: float,
               warmup: int) -> dict:  # fmt: skip
    """``clients`` threads, one keep-alive connection each, request ``urls`` in turn for
    ``seconds`` after ``warmup`` untimed requests each; requests/s, latency, bytes, CPU."""
    import httpx

    ready = threading.Barrier(clients + 1)
    go = threading.Barrier(clients + 1)
    records: list[tuple[float, float, int, int]] = []  # start, end, status, bytes

    def client(index: int) -> None:
        with httpx.Client(base_url=server.base, timeout=120) as http:
            for k in range(warmup):
                http.get(urls[(index + k) % len(urls)])
            ready.wait()
            go.wait()
            deadline = time.perf_counter() + seconds
            mine = []
            for k in itertools.count(warmup):
                began = time.perf_counter()
                if began >= deadline:
                    break
                try:
                    answer = http.get(urls[(index + k) % len(urls)])
                    status, size = answer.status_code, len(answer.content)
                except httpx.HTTPError:
                    status, size = 0, 0
                mine.append((began, time.perf_counter(), status, size))
            records.extend(mine)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    ready.wait()
    cpu_before, times_before = server.cpu_seconds(), os.times()
    go.wait()
    for thread in threads:
        thread.join()
    cpu, times_after = server.cpu_seconds() - cpu_before, os.times()
    good = [r for r in records if r[2] == 200]
    window = max(r[1] for r in records) - min(r[0] for r in records)
    cuts = percentiles([(end - began) * 1000 for began, end, _, _ in good])
    return {
        "requests": len(good), "errors": len(records) - len(good), "seconds": window,
        "rps": len(good) / window, "p50_ms": cuts["p50"], "p90_ms": cuts["p90"],
        "p99_ms": cuts["p99"],
        "mean_bytes": statistics.fmean(r[3] for r in good) if good else None,
        "server_cpu_ms_per_request": cpu / len(good) * 1000 if good else None,
        "client_cpu_ms_per_request": ((times_after.user - times_before.user
                                       + times_after.system - times_before.system)
                                      / len(good) * 1000 if good else None),
    }  # fmt: skip


WRK_SCRIPT = """\
local paths = {%s}
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i %% #paths) + 1])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRK %%d %%d %%f %%f %%f %%f\\n", summary.requests,
    e.status + e.connect + e.read + e.write + e.timeout, summary.duration / 1e6,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000))
end
"""


def rounds_by(args: argparse.Namespace) -> Callable[..., dict]:
    """The load generator: wrk when asked for (the default where it is installed), else
    Python threads."""
    if args.client == "wrk":
        if not shutil.which("wrk"):
            raise SystemExit("wrk is not installed (apt install wrk), or use --client python")
        return load_round_wrk
    return load_round


def load_round_wrk(server: Server, urls: list[str], clients: int, seconds: float,
                   warmup: int) -> dict:  # fmt: skip
    """The same round with wrk as the load generator: ``clients`` keep-alive connections on
    two threads, so the client takes a small share of the cores (a Python client tops out
    below 2,000 requests/s here, under what a cache serves)."""
    import resource

    import httpx

    sizes = []
    with httpx.Client(base_url=server.base, timeout=120) as http:
        for url in urls * max(1, warmup):
            sizes.append(len(http.get(url).content))
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(WRK_SCRIPT % ", ".join(json.dumps(url) for url in urls))
        script.flush()
        cpu_before = server.cpu_seconds()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        out = subprocess.run(["wrk", "-t", str(min(clients, 2)), "-c", str(clients), "-d",
                              f"{seconds:g}s", "-s", script.name, server.base],
                             check=True, capture_output=True, text=True).stdout  # fmt: skip
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = server.cpu_seconds() - cpu_before
    line = next(line for line in out.splitlines() if line.startswith("WRK "))
    requests, errors, window, p50, p90, p99 = (float(v) for v in line.split()[1:])
    good = requests - errors
    client = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return {
        "requests": int(good), "errors": int(errors), "seconds": window, "rps": good / window,
        "p50_ms": p50, "p90_ms": p90, "p99_ms": p99, "mean_bytes": statistics.fmean(sizes),
        "server_cpu_ms_per_request": cpu / good * 1000 if good else None,
        "client_cpu_ms_per_request": client / good * 1000 if good else None,
    }  # fmt: skip


def verify(servers: dict[str, Server], urls: dict[tuple[str, str], list[str]],
           photos: list[Path]) -> list[dict]:  # fmt: skip
    """Every output of every server, decoded: size, bands, format and bytes side by side, and
    its SSIMULACRA 2 and PSNR-Y against a reference thumbnail of the same size (the whole
    photo decoded, then one Lanczos 3 reduction), so that both the work and the quality of the
    outputs can be compared."""
    import httpx
    import pyvips

    from pixelmill.quality import compare

    rows, references = [], {}
    for fmt in FORMATS:
        for index, photo in enumerate(photos):
            row: dict = {"format": fmt, "photo": photo.name}
            for name, server in servers.items():
                answer = httpx.get(server.base + urls[name, fmt][index], timeout=120)
                if answer.status_code != 200:
                    raise SystemExit(f"{name} {fmt} {photo.name}: {answer.status_code} "
                                     f"{answer.text[:300]}")  # fmt: skip
                image = pyvips.Image.new_from_buffer(answer.content, "")
                row[name] = {"width": image.width, "height": image.height,
                             "bands": image.bands, "loader": image.get("vips-loader"),
                             "content_type": answer.headers.get("content-type"),
                             "bytes": len(answer.content)}  # fmt: skip
                size = (image.width, image.height)
                if (photo, size) not in references:
                    whole = pyvips.Image.new_from_file(str(photo))
                    references[photo, size] = whole.resize(
                        size[0] / whole.width, vscale=size[1] / whole.height, kernel="lanczos3"
                    ).copy_memory()
                reference = references[photo, size]
                if (reference.width, reference.height) == size:
                    row[name] |= compare(reference, image, ["ssimulacra2", "psnr-y"])
            shapes = {tuple(row[n][k] for k in ("width", "height", "bands", "loader"))
                      for n in servers}  # fmt: skip
            row["equal"] = len(shapes) == 1
            if not row["equal"]:
                log(f"WARNING: outputs differ for {fmt} {photo.name}: {row}")
            rows.append(row)
    return rows


def bench_ondemand(args: argparse.Namespace, photos: list[Path], logs: Path) -> dict:
    python = thumbor_python(args.thumbor_venv)
    versions = json.loads(subprocess.run([str(python), "-c", THUMBOR_VERSIONS], check=True,
                                         capture_output=True, text=True).stdout)  # fmt: skip
    folder = str(photos[0].parent)
    threads = args.thumbor_threads or os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="pixelmill-bench-ondemand-") as data:
        conf = Path(data, "thumbor.conf")
        common = THUMBOR_CONF.format(root=folder, quality=QUALITY, threads=threads)
        conf.write_text(common + THUMBOR_NO_RESULTS)
        cached_conf = Path(data, "thumbor-cached.conf")
        cached_conf.write_text(common + THUMBOR_RESULTS.format(folder=str(Path(data, "results"))))
        ports = {name: free_port() for name in ("pixelmill", "pixelmill-cached", "thumbor",
                                                "thumbor-cached")}  # fmt: skip

        def pixelmill(name: str, cache: bool) -> Callable[[], Server]:
            command = [CLI, "serve", "--host", "127.0.0.1", "--port", str(ports[name]),
                       "--data-dir", str(Path(data, name)), "--workers", "0"]  # fmt: skip
            env = clean_env(signing_keys=SIGNING_KEY, sources=folder,
                            render_cache=str(cache).lower())  # fmt: skip
            return lambda: Server(name, command, env, ports[name], "/healthz", logs)

        def thumbor(name: str, config: Path) -> Callable[[], Server]:
            command = [str(python.with_name("thumbor")), "-i", "127.0.0.1",
                       "-p", str(ports[name]), "-c", str(config), "-l", "warning",
                       "--processes", str(args.thumbor_processes)]  # fmt: skip
            return lambda: Server(name, command, os.environ.copy(), ports[name], "/healthcheck",
                                  logs)  # fmt: skip

        with running(pixelmill("pixelmill", False), pixelmill("pixelmill-cached", True),
                     thumbor("thumbor", conf), thumbor("thumbor-cached", cached_conf),
                     ) as started:  # fmt: skip
            servers = {server.name: server for server in started}
            urls = {(name, fmt): (thumbor_urls if name.startswith("thumbor") else pixelmill_urls)(
                photos, fmt) for name in servers for fmt in FORMATS}  # fmt: skip
            checks = verify(servers, urls, photos)
            rounds = []
            for fmt, clients in itertools.product(FORMATS, args.clients):
                for number in range(args.rounds):
                    names = list(servers)
                    order = names[number % len(names) :] + names[: number % len(names)]
                    for name in order:
                        result = rounds_by(args)(servers[name], urls[name, fmt], clients,
                                                 args.seconds, args.warmup)  # fmt: skip
                        rounds.append({"server": name, "format": fmt, "clients": clients,
                                       "round": number + 1, **result,
                                       "load_average": os.getloadavg()[0]})  # fmt: skip
                        log(
                            f"{fmt} c={clients} round {number + 1} {name}: "
                            f"{result['rps']:.1f} req/s, p50 {result['p50_ms']:.0f} ms, "
                            f"p99 {result['p99_ms']:.0f} ms, {result['errors']} errors"
                        )
            cache_files = {name: sum(1 for p in Path(data, name, "files", "cache").rglob("*")
                                     if p.is_file())
                           for name in ("pixelmill", "pixelmill-cached")}  # fmt: skip
    summary = []
    for fmt, clients, name in itertools.product(FORMATS, args.clients, servers):
        mine = [r for r in rounds if (r["server"], r["format"], r["clients"]) ==
                (name, fmt, clients)]  # fmt: skip
        summary.append(
            {
                "server": name,
                "format": fmt,
                "clients": clients,
                "rounds": len(mine),
                "errors": sum(r["errors"] for r in mine),
                **{
                    key: median_of(mine, key)
                    for key in (
                        "rps",
                        "p50_ms",
                        "p90_ms",
                        "p99_ms",
                        "mean_bytes",
                        "server_cpu_ms_per_request",
                        "client_cpu_ms_per_request",
                    )
                },
            }
        )
    for row in summary:  # each against Thumbor with the same caching
        peer = "thumbor-cached" if row["server"].endswith("-cached") else "thumbor"
        base = next(r for r in summary if (r["server"], r["format"], r["clients"]) ==
                    (peer, row["format"], row["clients"]))  # fmt: skip
        row["rps_vs_thumbor"] = row["rps"] / base["rps"]
        row["p99_vs_thumbor"] = row["p99_ms"] / base["p99_ms"]
        row["bytes_vs_thumbor"] = row["mean_bytes"] / base["mean_bytes"]
        row["cpu_capacity_vs_thumbor"] = (base["server_cpu_ms_per_request"]
                                          / row["server_cpu_ms_per_request"])  # fmt: skip
    return {
        "box": BOX, "quality": QUALITY, "seconds_per_round": args.seconds,
        "warmup_per_client": args.warmup, "clients": args.clients, "rounds": args.rounds,
        "load_generator": args.client,
        "pixelmill_pipelines": {fmt: f"thumbnail:{BOX}/encode:{fmt}:q={QUALITY}"
                                for fmt in FORMATS},
        "thumbor_urls": {fmt: thumbor_urls(photos[:1], fmt)[0] for fmt in FORMATS},
        "thumbor_config": THUMBOR_CONF.format(root="<photos folder>", quality=QUALITY,
                                              threads=threads) + THUMBOR_NO_RESULTS,
        "thumbor_cached_config": THUMBOR_RESULTS.format(folder="<results folder>"),
        "thumbor_processes": args.thumbor_processes, "thumbor_versions": versions,
        "render_cache_files": cache_files, "verification": checks, "summary": summary,
        "rounds_raw": rounds,
    }  # fmt: skip


# --- part 3: where the time goes -------------------------------------------------------------


def bench_breakdown(args: argparse.Namespace, photos: list[Path]) -> dict:
    """CPU per image of each stage of an on-demand thumbnail, one request at a time: pixelmill's
    stages from libvips up to the handler, and Pillow doing what Thumbor's engine does. Each
    round runs both contestants in fresh processes, taking turns; medians over the rounds."""
    python = thumbor_python(args.thumbor_venv)
    paths = [str(photo) for photo in photos]
    result: dict = {"rounds": args.breakdown_rounds, "passes": args.breakdown_repeat,
                    "formats": {}}  # fmt: skip

    def child(command: list[str]) -> dict:
        done = subprocess.run(command, check=False, capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"breakdown child failed:\n{done.stderr[-3000:]}")
        return json.loads(done.stdout.splitlines()[-1])

    for fmt in FORMATS:
        common = [fmt, str(BOX), str(QUALITY), str(args.breakdown_repeat)]
        samples: list[dict] = []
        for number in range(args.breakdown_rounds):
            log(f"breakdown: {fmt} round {number + 1} …")
            mine = [sys.executable, "-c", STEPS_CHILD, *common, SIGNING_KEY,
                    "score" if number == 0 else "-", *paths]  # fmt: skip
            theirs = [str(python), "-c", PILLOW_CHILD, *common, *paths]
            for command in (mine, theirs) if number % 2 == 0 else (theirs, mine):
                answer = child(command)
                samples.append(answer["steps"])
                if answer.get("photos"):
                    result["photos"] = answer["photos"]  # scored before encoding: any format
        steps = {step: {key: statistics.median(s[step][key] for s in samples if step in s)
                        for key in ("cpu_ms", "wall_ms")}
                 for step in dict.fromkeys(k for s in samples for k in s)}  # fmt: skip
        result["formats"][fmt] = {"steps": steps, "samples": samples}
    return result


# --- output -----------------------------------------------------------------------------------


def fmt_num(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def markdown(result: dict) -> str:
    lines = []
    jobs = result.get("jobs")
    if jobs:
        intro = (f"Jobs API: `{jobs['pipeline']}` on the {len(result['photos'])} photographs, "
                 f"{jobs['workers']} workers, {jobs['clients']} clients polling every "
                 f"{jobs['poll_s'] * 1000:.0f} ms.")  # fmt: skip
        head = (
            "| jobs | succeeded | errors | seconds | jobs/s | latency p50 s | p90 s | p99 s "
            "| submit p50 ms | submit p99 ms | pipeline s (median) | CPU ms/job: all, API |"
        )
        cells = [
            jobs["jobs"],
            jobs["succeeded"],
            jobs["errors"],
            fmt_num(jobs["seconds"]),
            fmt_num(jobs["jobs_per_s"], 2),
            *(fmt_num(jobs["latency_s"][p], 2) for p in ("p50", "p90", "p99")),
            fmt_num(jobs["submit_ms"]["p50"]),
            fmt_num(jobs["submit_ms"]["p99"]),
            fmt_num(jobs["run_s_median"], 3),
            ", ".join(fmt_num(jobs[k], 0) for k in ("server_cpu_ms_per_job", "api_cpu_ms_per_job")),
        ]
        lines += [intro, "", head, "|--:" * 12 + "|", recording.row(cells), ""]  # fmt: skip
    ondemand = result.get("ondemand")
    if ondemand:
        intro = (f"On-demand thumbnails: fit in {BOX}×{BOX}, quality {QUALITY}; medians of "
                 f"{ondemand['rounds']} rounds of {ondemand['seconds_per_round']:g} s per "
                 f"server; load from {ondemand.get('load_generator', 'python')}.")  # fmt: skip
        head = (
            "| format | clients | server | req/s | p50 ms | p90 ms | p99 ms | mean bytes "
            "| server CPU ms/req | req/s vs Thumbor* | p99 vs Thumbor* | bytes vs Thumbor* "
            "| Thumbor CPU / CPU |"
        )
        intro += (" \\* against Thumbor with the same caching: `pixelmill` renders every "
                  "request and so does `thumbor`; `pixelmill-cached` serves repeats from its "
                  "render cache and `thumbor-cached` from its file result storage.")
        lines += [intro, "", head, "|---|--:|---" + "|--:" * 10 + "|"]
        for r in ondemand["summary"]:
            lines.append(recording.row([
                r["format"], r["clients"], r["server"], fmt_num(r["rps"]),
                *(fmt_num(r[k], 0) for k in ("p50_ms", "p90_ms", "p99_ms", "mean_bytes")),
                fmt_num(r["server_cpu_ms_per_request"]), f"{r['rps_vs_thumbor']:.2f}",
                f"{r['p99_vs_thumbor']:.2f}", f"{r['bytes_vs_thumbor']:.3f}",
                f"{r['cpu_capacity_vs_thumbor']:.2f}"]))  # fmt: skip
        head = (
            "| format | photo | output size | same size, bands, format | pixelmill bytes "
            "| Thumbor bytes | pixelmill SSIMULACRA 2 | Thumbor SSIMULACRA 2 "
            "| pixelmill PSNR-Y | Thumbor PSNR-Y |"
        )
        lines += ["", head, "|---|---|---|---" + "|--:" * 6 + "|"]
        for c in ondemand["verification"]:
            mine, theirs = c["pixelmill"], c["thumbor"]
            lines.append(
                recording.row(
                    [
                        c["format"],
                        c["photo"],
                        f"{mine['width']}×{mine['height']}",
                        "yes" if c["equal"] else "NO",
                        f"{mine['bytes']:,}",
                        f"{theirs['bytes']:,}",
                        fmt_num(mine.get("ssimulacra2"), 2),
                        fmt_num(theirs.get("ssimulacra2"), 2),
                        fmt_num(mine.get("psnr-y"), 2),
                        fmt_num(theirs.get("psnr-y"), 2),
                    ]
                )
            )
        note = (
            "SSIMULACRA 2 and PSNR-Y of each output against the photo decoded whole and "
            "reduced once (Lanczos 3) to the same size; higher is closer."
        )
        lines += ["", note]
    breakdown = result.get("breakdown")
    if breakdown:
        lines += ["", breakdown_table(breakdown, ondemand)]
    return "\n".join(lines) + "\n"


def breakdown_table(breakdown: dict, ondemand: dict | None) -> str:
    formats = breakdown["formats"]
    servers = {}
    if ondemand:  # the servers' CPU per request, at the fewest clients measured
        fewest = min(ondemand["clients"])
        for r in ondemand["summary"]:
            if r["clients"] == fewest and r["server"] in ("pixelmill", "thumbor"):
                servers[r["server"] + "_server", r["format"]] = r["server_cpu_ms_per_request"]
    intro = (
        f"Where the time goes: CPU ms per image, one at a time (mean over the photos and "
        f"{breakdown['passes']} passes, median of {breakdown['rounds']} rounds; server "
        "rows: the on-demand rounds)."
    )
    lines = [intro, "", "| stage | " + " | ".join(f"{f.upper()} CPU ms" for f in formats) + " |",
             "|---" + "|--:" * len(formats) + "|"]  # fmt: skip
    for step, name in STEP_NAMES.items():
        cells = [servers.get((step, f), formats[f]["steps"].get(step, {}).get("cpu_ms"))
                 for f in formats]  # fmt: skip
        if any(c is not None for c in cells):
            lines.append(recording.row([name, *(fmt_num(c) for c in cells)]))
    head = (
        "| photo | libvips pre-shrink | Pillow draft scale | SSIMULACRA 2: libvips "
        "thumbnail | at the draft scale |"
    )
    lines += ["", head, "|---|--:|--:|--:|--:|"]
    for photo, notes in breakdown["photos"].items():
        lines.append(recording.row([photo, f"1/{notes['libvips_pre_shrink']}",
                          f"1/{notes['pillow_draft_scale']}",
                          fmt_num(notes["ssimulacra2_thumbnail"], 2),
                          fmt_num(notes["ssimulacra2_at_draft_scale"], 2)]))  # fmt: skip
    note = (
        "SSIMULACRA 2 here before any encoding: the thumbnail against the photo decoded "
        "whole and reduced once (Lanczos 3)."
    )
    lines += ["", note]
    return "\n".join(lines)


def versions() -> dict[str, str]:
    from importlib import metadata

    import pyvips

    found = {"libvips": ".".join(str(pyvips.version(i)) for i in range(3))}
    for name in ("pixelmill", "pyvips", "fastapi", "uvicorn", "httpx"):
        found[name] = metadata.version(name)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument(
        "--quick",
        action="store_true",
        help="photos a quarter the side, fewer jobs, one short round",
    )
    parser.add_argument("--work", type=Path, default=HERE / "work", help="inputs, server logs")
    parser.add_argument("--out", type=Path, help="results stem (default: results/service, or "
                        "service-quick in the work folder): writes .json and .md")  # fmt: skip
    parser.add_argument("--source", choices=("jpeg", "webp", "png"), default="jpeg",
                        help="format of the photographs served (jpeg; others: the same pixels, "
                        "results in results/service-FORMAT)")  # fmt: skip
    jobs = parser.add_argument_group("jobs")
    jobs.add_argument("--jobs", type=int, default=200, help="jobs to submit (default 200)")
    jobs.add_argument("--job-clients", type=int, default=8, help="concurrent clients (8)")
    jobs.add_argument("--workers", type=int, default=2, help="worker processes (2)")
    jobs.add_argument(
        "--job-seconds",
        type=float,
        default=120,
        help="stop submitting after this many seconds (120)",
    )
    jobs.add_argument("--poll", type=float, default=0.05, help="seconds between polls (0.05)")
    ondemand = parser.add_argument_group("ondemand")
    ondemand.add_argument(
        "--clients",
        type=int,
        nargs="+",
        default=[4, 8],
        help="concurrent clients, one table row each (4 8)",
    )
    ondemand.add_argument("--rounds", type=int, default=3, help="rounds per server (3)")
    ondemand.add_argument("--seconds", type=float, default=6, help="seconds per round (6)")
    ondemand.add_argument("--client", choices=("wrk", "python"),
                          default="wrk" if shutil.which("wrk") else "python",
                          help="load generator (wrk where installed: apt install wrk)")
    ondemand.add_argument(
        "--warmup", type=int, default=2, help="untimed requests per client before each round (2)"
    )
    ondemand.add_argument("--thumbor-venv", type=Path, default=THUMBOR_VENV)
    ondemand.add_argument(
        "--thumbor-threads", type=int, help="ENGINE_THREADPOOL_SIZE (default: the number of cores)"
    )
    ondemand.add_argument("--thumbor-processes", type=int, default=1)
    breakdown = parser.add_argument_group("breakdown")
    breakdown.add_argument(
        "--breakdown-rounds",
        type=int,
        default=3,
        help="rounds, each contestant a fresh process (3)",
    )
    breakdown.add_argument(
        "--breakdown-repeat",
        type=int,
        default=3,
        help="timed passes over the photos per stage and round (3)",
    )
    args = parser.parse_args()
    if args.quick:
        args.jobs, args.rounds, args.seconds = min(args.jobs, 24), 1, min(args.seconds, 2)
        args.breakdown_rounds, args.breakdown_repeat = 1, 1
    args.work.mkdir(parents=True, exist_ok=True)
    suffix = "" if args.source == "jpeg" else f"-{args.source}"
    stem = args.out or (args.work / f"service-quick{suffix}" if args.quick
                        else HERE / f"results/service{suffix}")  # fmt: skip
    logs = Path(tempfile.mkdtemp(prefix="service-logs-", dir=args.work))

    photos = make_photos(args.work / "service-photos", args.quick, args.source)
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    result: dict = {
        "started": started, "load_average_before": os.getloadavg(),
        "source_format": args.source, "photos": {p.name: p.stat().st_size for p in photos},
    }  # fmt: skip
    if "jobs" in args.parts:
        result["jobs"] = bench_jobs(args, photos, logs)
    if "ondemand" in args.parts:
        result["ondemand"] = bench_ondemand(args, photos, logs)
    if "breakdown" in args.parts:
        result["breakdown"] = bench_breakdown(args, photos)
    result["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    result["load_average_after"] = os.getloadavg()
    table = markdown(result)
    saved = recording.save(stem.with_suffix(".json"), result, **versions())
    stem.with_suffix(".md").write_text(f"# `{saved['command']}`\n\n{started}\n\n{table}")
    shutil.rmtree(logs, ignore_errors=True)
    print(table)
    log(f"wrote {stem.with_suffix('.json')} and {stem.with_suffix('.md')}")


if __name__ == "__main__":
    main()
