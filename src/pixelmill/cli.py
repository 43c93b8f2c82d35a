"""The ``pixelmill`` command: run, info, ops, models, lab, sample.

It only parses arguments, calls :mod:`pixelmill.api` (or :mod:`pixelmill.lab`, imported by its
commands alone) and reports. Errors become one line on
stderr and an exit code (0 ok, 1 internal, 2 usage or pipeline, 3 bad input image, 4 limit
exceeded, 5 storage); tracebacks only with ``--debug``. Heavy imports wait until a command needs
them, so a one-image run starts fast.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from pixelmill import __version__
from pixelmill.errors import Cancelled, PixelmillError, UsageError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pixelmill")
@click.option("--debug", is_flag=True, envvar="PIXELMILL_DEBUG", help="Show tracebacks.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False),
              help="TOML settings file (else PIXELMILL_CONFIG).")
@click.pass_context
def cli(ctx: click.Context, debug: bool, config_file: str | None) -> None:
    """pixelmill: run image pipelines over files, folders and storage URLs."""
    ctx.obj = {"debug": debug, "config": config_file}


def _settings(ctx: click.Context, **overrides: Any):
    from pixelmill.config import Settings

    return Settings.load(ctx.obj["config"]).replace(**overrides)


def _pipeline_text(value: str) -> str:
    """``-p @file`` reads the pipeline (text or JSON) from a file."""
    if value.startswith("@"):
        try:
            with open(value[1:], encoding="utf-8-sig") as handle:
                return handle.read()
        except OSError as exc:
            raise UsageError(f"cannot read pipeline file {value[1:]}: {exc.strerror}") from None
    return value


@cli.command()
@click.argument("src")
@click.argument("dst")
@click.option("-p", "--pipeline", default="", metavar="PIPELINE",
              help="Steps, e.g. 'resize:fit:1024:768/encode:webp:q=80', JSON, or @file.")
@click.option("-j", "--jobs", default=1, show_default=True, type=click.IntRange(1, 256),
              help="Images processed at once when SRC is a folder.")
@click.option("--max-pixels", type=click.IntRange(1), help="Largest input in pixels.")
@click.option("--max-bytes", type=click.IntRange(1), help="Largest input file in bytes.")
@click.option("--max-memory", type=click.IntRange(1),
              help="Bytes of memory one image's work may hold.")
@click.option("--time-limit", type=click.FloatRange(0, min_open=True), help="Seconds per image.")
@click.option("--no-autorotate", is_flag=True, help="Keep the stored orientation.")
@click.option("--reference", metavar="REF",
              help="Image quality gates (qc steps) measure against, e.g. a ground truth "
                   "(default: each gate's previous step's input). Single images only.")
@click.option("-q", "--quiet", is_flag=True, help="Print only errors.")
@click.pass_context
def run(ctx: click.Context, src: str, dst: str, pipeline: str, jobs: int, max_pixels: int | None,
        max_bytes: int | None, max_memory: int | None, time_limit: float | None,
        no_autorotate: bool, reference: str | None, quiet: bool) -> None:  # fmt: skip
    """Process SRC into DST; both may be files, folders or URLs (s3://, memory://, …).

    With a folder, every image below it is mirrored into DST, --jobs at a time; a failing image
    is reported and the others go on.
    """
    from pixelmill import api, storage
    from pixelmill.pipeline import Pipeline

    settings = _settings(ctx, max_pixels=max_pixels, max_bytes=max_bytes, max_memory=max_memory,
                         time_limit=time_limit,
                         autorotate=False if no_autorotate else None)  # fmt: skip
    parsed = Pipeline.parse(_pipeline_text(pipeline))
    if storage.is_dir(storage.locate(src)):
        from pixelmill.progress import run_tree_with_progress

        if reference is not None:
            raise UsageError("--reference is for a single image, not a folder")
        report = run_tree_with_progress(src, dst, parsed, jobs, settings, quiet)
        ctx.exit(report.exit_code)
    if storage.is_dir(storage.locate(dst)) or dst.endswith(("/", os.sep)):
        raise UsageError(f"{dst}: is a folder; give the output file name (SRC is a single image)")
    from pixelmill.progress import bar_for_one

    with bar_for_one(src, quiet) as progress:
        outcome = api.run(src, dst, parsed, settings=settings, progress=progress,
                          reference=reference)  # fmt: skip
    if outcome.flagged:
        click.echo(f"flagged for review: {outcome.destination}", err=True)
    if not quiet:
        for note in outcome.notes:
            click.echo(note, err=True)
        click.echo(
            f"wrote {outcome.destination} ({outcome.format}, {outcome.width}×{outcome.height}, "
            f"{outcome.bytes_written:,} bytes) in {outcome.seconds:.2f} s",
            err=True,
        )


@cli.command()
@click.argument("src")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def info(ctx: click.Context, src: str, as_json: bool) -> None:
    """Describe an image from its header: format, size, depth, colour space, ICC, orientation."""
    from pixelmill import api

    details = api.info(src, settings=_settings(ctx))
    if as_json:
        click.echo(json.dumps(details, indent=2))
        return
    for key, value in details.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items())
        click.echo(f"{key:13} {value}")


@cli.command()
@click.argument("reference")
@click.argument("image")
@click.option("-m", "--metrics", metavar="NAMES",
              help="Comma-separated metrics (default: the full-reference ones, or consistency "
                   "when IMAGE is an upscale of REFERENCE); pixelmill metrics lists them.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def compare(ctx: click.Context, reference: str, image: str, metrics: str | None,
            as_json: bool) -> None:  # fmt: skip
    """Measure IMAGE against REFERENCE: PSNR, SSIM, MS-SSIM, FSIM, SSIMULACRA 2, CIEDE2000,
    no-reference indicators, and round-trip consistency for upscales."""
    from pixelmill import api
    from pixelmill.quality import metric

    names = [n for n in metrics.split(",") if n.strip()] if metrics else None
    scores = api.compare(reference, image, names, settings=_settings(ctx))
    if as_json:
        click.echo(json.dumps(scores, indent=2))
        return
    for name, value in scores.items():
        found = metric(name)
        click.echo(f"{name:14} {value:12.4f} {found.unit:8} ({_BETTER[found.higher_is_better]}) "
                   f"{found.doc}")  # fmt: skip


_BETTER = {True: "higher is better", False: "lower is better", None: "a description"}


@cli.command()
def metrics() -> None:
    """List the metrics of compare, qc gates and bench: name, kind, which way is better, unit."""
    from pixelmill.quality import metrics as every_metric

    for found in every_metric().values():
        origin = "" if found.origin == "pixelmill" else f" (from {found.origin})"
        click.echo(f"{found.name:14} {found.kind:12} {_BETTER[found.higher_is_better]:17} "
                   f"{found.unit:10} {found.doc}{origin}")  # fmt: skip


@cli.command()
@click.argument("more", nargs=-1, metavar="[PIPELINE]...")
@click.option("-p", "--pipelines", "first", multiple=True, metavar="PIPELINE",
              help="A pipeline to compare (repeatable; more may follow as arguments).")
@click.option("--images", required=True, metavar="DIR|URL",
              help="Folder or storage prefix of images (pixelmill bench-images makes a set).")
@click.option("--degrade", metavar="PIPELINE",
              help="Turn each image into the input with this pipeline (e.g. scale:0.5/encode:"
                   "jpeg:q=40) and score outputs against the original.")
@click.option("-m", "--metrics", metavar="NAMES", help="Comma-separated metrics to measure.")
@click.option("--rank", metavar="METRIC",
              help="Rank by this metric, or mp-per-s (default: ssimulacra2 with --degrade, "
                   "else speed).")
@click.option("--repeats", default=1, show_default=True, type=click.IntRange(1),
              help="Timed runs of each pipeline per image (the median is kept).")
@click.option("--out", default="bench-report", show_default=True, metavar="DIR",
              help="Folder for report.html and report.json.")
@click.option("-q", "--quiet", is_flag=True, help="Print only errors.")
@click.pass_context
def bench(ctx: click.Context, more: tuple[str, ...], first: tuple[str, ...], images: str,
          degrade: str | None, metrics: str | None, rank: str | None, repeats: int, out: str,
          quiet: bool) -> None:  # fmt: skip
    """Run pipelines over a set of images, measure quality, speed and bytes, rank them, and
    write a self-contained HTML report with tables, plots and crops at 100 %, plus JSON."""
    import tempfile

    from pixelmill.bench import measure, report
    from pixelmill.progress import bench_with_progress

    names = [n for n in metrics.split(",") if n.strip()] if metrics else None
    with tempfile.TemporaryDirectory(prefix="pixelmill-bench-") as work:
        done = bench_with_progress(quiet, lambda on_start, on_result: measure.run(
            [*first, *more], images, Path(work), degrade=degrade, metrics=names, rank_by=rank,
            repeats=repeats, settings=_settings(ctx), on_start=on_start, on_result=on_result))
        page, data = report.write(done, Path(out))
    if not quiet:
        for place, row in enumerate(done.summary(), 1):
            click.echo(f"{place}. {row['pipeline']}", err=True)
        click.echo(f"wrote {page} and {data}", err=True)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.option("--data-dir", metavar="DIR", help="Data folder (default: $XDG_DATA_HOME/pixelmill).")
@click.option("--db", metavar="URL", help="Job database: sqlite:///… or postgresql://… "
                                          "(default: SQLite in the data folder).")
@click.option("--storage", metavar="URL", help="Where uploads and outputs go: a folder or a "
              "URL such as s3://bucket/prefix (default: files/ in the data folder).")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(0, 256),
              help="Worker processes to start beside the API.")
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, data_dir: str | None, db: str | None,
          storage: str | None, workers: int) -> None:  # fmt: skip
    """Start the jobs API (OpenAPI at /docs) and worker processes, on the embedded default
    (SQLite and a local folder) or on --db postgresql://… and --storage s3://…; a worker that
    dies is started again."""
    import socket

    import uvicorn

    from pixelmill.jobs import logs

    logs.to_stderr()
    settings = _settings(ctx, data_dir=data_dir, db=db, storage=storage)
    # every process writes its metrics here, and /metrics adds them up (set before
    # prometheus_client is imported, which reads it then)
    shared = os.path.join(settings.data_folder, "metrics")
    os.makedirs(shared, exist_ok=True)
    for name in os.listdir(shared):
        os.unlink(os.path.join(shared, name))
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = shared
    from pixelmill.service.app import create_app
    from pixelmill.service.workers import WorkerPool

    service = f"{socket.gethostname()}:{os.getpid()}"
    env = {**os.environ, "PIXELMILL_DB": settings.job_database,
           "PIXELMILL_STORAGE": settings.storage_root, "PIXELMILL_DATA_DIR": settings.data_folder,
           PARENT_ENV: str(os.getpid()), SERVICE_ENV: service}  # fmt: skip
    if ctx.obj["config"]:  # the workers read the same settings file
        env["PIXELMILL_CONFIG"] = os.path.abspath(ctx.obj["config"])
    # creates the job table before the workers look at it
    app = create_app(settings, service=service if workers else None)
    pool = WorkerPool([sys.executable, "-m", "pixelmill", "worker"], env, workers,
                      _ending_with(os.getpid()))  # fmt: skip
    pool.start()
    click.echo(f"pixelmill serving http://{host}:{port} (API docs at /docs) with {workers} "
               f"worker(s); jobs in {settings.job_database}, files in "
               f"{settings.storage_root}", err=True)  # fmt: skip
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        pool.close()


def _ending_with(parent: int) -> Callable[[], None] | None:
    """What a worker started by ``serve`` runs before it starts (Linux): receive SIGTERM when
    ``serve`` dies, however it dies, so that no worker outlives it (the job in progress goes
    back to the queue). A death before the worker's signal handlers exist is caught by the
    worker itself when it starts (``PARENT_ENV``)."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    libc = ctypes.CDLL(None)  # loaded here: the child between fork and exec should not import

    def end_with_parent() -> None:
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # it died before that: no signal will come
            os._exit(1)

    return end_with_parent


@cli.command()
@click.option("--db", metavar="URL", help="Job database: sqlite:///… or postgresql://… "
                                          "(default: SQLite in the data folder).")
@click.option("--data-dir", metavar="DIR", help="Data folder (default: $XDG_DATA_HOME/pixelmill).")
@click.option("--lease", default=30.0, show_default=True, type=click.FloatRange(1),
              help="Seconds a claimed job is held without a heartbeat.")
@click.option("--once", is_flag=True, help="Run the jobs ready now, then exit.")
@click.option("--metrics-port", type=click.IntRange(1, 65535), metavar="PORT",
              help="Serve this worker's Prometheus metrics on PORT.")
@click.pass_context
def worker(ctx: click.Context, db: str | None, data_dir: str | None, lease: float,
           once: bool, metrics_port: int | None) -> None:  # fmt: skip
    """Take jobs from the job database and run them, one at a time, until stopped. SIGTERM or
    Ctrl-C stops the job in progress (it goes back to the queue) and the worker."""
    import logging
    import threading

    from pixelmill.jobs import logs
    from pixelmill.jobs.queue import JobQueue
    from pixelmill.jobs.worker import Worker

    logs.to_stderr()
    settings = _settings(ctx, db=db, data_dir=data_dir)
    queue = JobQueue(settings.job_database)
    stop = threading.Event()
    _ON_STOP.append(stop.set)
    parent = os.environ.get(PARENT_ENV)
    if _STOPPED_BY or parent and os.getppid() != int(parent):  # stopped, or serve gone, already
        stop.set()
    if metrics_port:
        from prometheus_client import start_http_server

        try:
            start_http_server(metrics_port)
        except OSError as exc:
            raise UsageError(f"--metrics-port {metrics_port}: cannot serve metrics there: "
                             f"{exc.strerror or exc}") from None  # fmt: skip
    runner = Worker(queue, settings, lease=lease, service=os.environ.get(SERVICE_ENV))
    try:
        runner.start()
        logging.getLogger("pixelmill.worker").info("worker started", extra={
            "worker": runner.name, "db": queue.engine.url.render_as_string(),
            "job_pid": runner.runner.pid})  # fmt: skip
        if once:
            while not stop.is_set() and runner.run_one() is not None:
                pass
        else:
            runner.run(stop)
    finally:
        runner.close()
        queue.close()


@cli.group()
def keys() -> None:
    """API keys of the jobs API (stored hashed in the job database). While none exists the
    API is open; the first key closes it."""


_KEYS_DB = click.option("--db", metavar="URL", help="Job database (default: SQLite in the data "
                        "folder).")  # fmt: skip
_KEYS_DATA = click.option("--data-dir", metavar="DIR", help="Data folder.")


@keys.command("add")
@click.argument("name")
@click.option("--rate", type=click.IntRange(1), metavar="N", help="Requests a minute at most.")
@click.option("--max-bytes", type=click.IntRange(1), metavar="N", help="Largest upload, bytes.")
@click.option("--prefix", "prefixes", multiple=True, metavar="PATH|URL",
              help="Where in the storage the key may read and write besides its own "
                   "keys/NAME/ (relative to the storage, or a URL; repeatable).")
@_KEYS_DB
@_KEYS_DATA
@click.pass_context
def keys_add(ctx: click.Context, name: str, rate: int | None, max_bytes: int | None,
             prefixes: tuple[str, ...], db: str | None, data_dir: str | None) -> None:  # fmt: skip
    """Make a key called NAME and print its secret (shown this once)."""
    click.echo(_api_keys(ctx, db, data_dir).add(name, rate, max_bytes, prefixes))


@keys.command("list")
@_KEYS_DB
@_KEYS_DATA
@click.pass_context
def keys_list(ctx: click.Context, db: str | None, data_dir: str | None) -> None:
    """List the keys with their limits."""
    for key in _api_keys(ctx, db, data_dir).list():
        click.echo(f"{key.name}\trate={key.rate or '-'}/min\tmax_bytes={key.max_bytes or '-'}"
                   f"\tprefixes={','.join(key.prefixes) or '-'}")


@keys.command("revoke")
@click.argument("name")
@_KEYS_DB
@_KEYS_DATA
@click.pass_context
def keys_revoke(ctx: click.Context, name: str, db: str | None, data_dir: str | None) -> None:
    """Delete the key called NAME: its secret stops working at once."""
    _api_keys(ctx, db, data_dir).revoke(name)


def _api_keys(ctx: click.Context, db: str | None, data_dir: str | None) -> Any:
    from pixelmill.jobs.queue import JobQueue
    from pixelmill.service.auth import ApiKeys

    return ApiKeys(JobQueue(_settings(ctx, db=db, data_dir=data_dir).job_database).engine)


@cli.command()
@click.argument("pipeline")
@click.argument("source")
@click.option("--base", default="", metavar="URL", help="Service address to put in front, "
              "e.g. https://img.example.com.")
@click.pass_context
def sign(ctx: click.Context, pipeline: str, source: str, base: str) -> None:
    """Print the signed on-demand URL of PIPELINE (text form) applied to SOURCE, with the first
    of the signing keys (setting signing_keys, or PIXELMILL_SIGNING_KEYS)."""
    from pixelmill.service.ondemand import signed_path

    keys = [k.strip() for k in (_settings(ctx).signing_keys or "").split(",") if k.strip()]
    if not keys:
        raise UsageError("no signing key: set signing_keys (or PIXELMILL_SIGNING_KEYS)")
    click.echo(base.rstrip("/") + signed_path(keys[0], _pipeline_text(pipeline), source))


@cli.command("bench-images")
@click.argument("folder")
@click.option("--large/--no-large", default=True, show_default=True,
              help="Include the 6000×4000 image.")
def bench_images(folder: str, large: bool) -> None:
    """Write the benchmark image set into FOLDER: photographs, synthetic textures, graphics
    and text, and a large image, with their licences."""
    from pixelmill.bench import images

    written = images.write(Path(folder), large=large)
    click.echo(f"wrote {len(written)} images and LICENCES.txt into {folder}", err=True)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print every step as JSON.")
@click.option("--schema", is_flag=True, help="Print the JSON schema of the JSON pipeline form.")
@click.option("--markdown", is_flag=True, help="Print the README's table of steps.")
def ops(as_json: bool, schema: bool, markdown: bool) -> None:
    """List every step with its arguments, types and defaults."""
    from pixelmill.pipeline import Pipeline, signature, steps

    if schema:
        click.echo(json.dumps(Pipeline.json_schema(), indent=2))
        return
    if as_json:
        click.echo(json.dumps([spec.describe() for spec in steps().values()], indent=2))
        return
    if markdown:
        click.echo("| step | what it does |\n|---|---|")
        for spec in steps().values():
            usage = signature(spec.name, keywords=False).replace("|", "\\|")
            click.echo(f"| `{usage}` | {spec.doc} |")
        return
    for spec in steps().values():
        origin = "" if spec.origin == "pixelmill" else f"  (from {spec.origin})"
        click.echo(f"{signature(spec.name)}{origin}\n    {spec.doc}")
        for param in spec.params:
            default = (
                "required" if param.required
                else "optional" if param.default is None
                else f"default {param.kind.format(param.default)}"
            )  # fmt: skip
            click.echo(f"      {param.name:12} {param.kind.describe()}; {default}. {param.doc}")
        click.echo()


@cli.group()
def models() -> None:
    """List, describe and add ONNX models."""


@models.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def models_list(ctx: click.Context, as_json: bool) -> None:
    """Every model: bundled ones and those in the user folder."""
    from pixelmill.models import available

    found = available(_settings(ctx))
    if as_json:
        click.echo(json.dumps({n: {"origin": m.origin, **m.manifest.describe()}
                               for n, m in sorted(found.items())}, indent=2))  # fmt: skip
        return
    for name, model in sorted(found.items()):
        m = model.manifest
        click.echo(f"{name:20} {m.version:8} ×{m.scale} {m.task:18} {model.origin}")


@models.command("info")
@click.argument("name")
@click.pass_context
def models_info(ctx: click.Context, name: str) -> None:
    """Load a model, check it against its manifest, and print both."""
    from pixelmill.models.runtime import session_for

    session = session_for(name, _settings(ctx))
    click.echo(json.dumps({**session.manifest.describe(), "providers": session.providers},
                          indent=2))  # fmt: skip


@models.command("add")
@click.argument("url")
@click.pass_context
def models_add(ctx: click.Context, url: str) -> None:
    """Copy NAME.onnx and its NAME.json from any path or URL into the user folder, after
    checking that the model loads and matches its manifest."""
    from pixelmill.models.install import add

    model = add(url, _settings(ctx))
    click.echo(f"added {model.manifest.name} {model.manifest.version} to {model.path.parent}",
               err=True)  # fmt: skip


def _lab(module: str) -> Any:
    """A module of :mod:`pixelmill.lab`, or a usage error saying how to install its extra."""
    import importlib

    from pixelmill.lab import REQUIRES

    try:
        return importlib.import_module(f"pixelmill.lab.{module}")
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in REQUIRES:
            raise
        raise UsageError(f"pixelmill lab needs {exc.name}, which is not installed: install "
                         "pixelmill[lab] (pip install 'pixelmill[lab]')") from None  # fmt: skip


_REGISTER = click.option(
    "--register", default="user", show_default=True, metavar="user|bundled|none|DIR",
    help="Install the model into the user models folder, the package's bundled models, "
         "another folder, or nowhere.",
)  # fmt: skip


def _export(ctx: click.Context, checkpoint: str, folder: str, register: str,
            precision: str = "fp32", calibration: int | None = None) -> None:  # fmt: skip
    """Export a checkpoint (or a run folder's latest) into ``folder`` and install it."""
    export = _lab("export")
    extra = {"calibration": calibration} if calibration else {}
    path, check = export.export(Path(checkpoint), Path(folder), precision,
                                settings=_settings(ctx), **extra)  # fmt: skip
    click.echo(f"exported {path} ({check})", err=True)
    if register != "none":
        model = export.register(path, register, _settings(ctx))
        click.echo(f"installed {model.manifest.name} into {model.path.parent}", err=True)


@cli.group()
def lab() -> None:
    """Train, optimise, export and evaluate models (needs pixelmill[lab])."""


_THREADS = click.option("--threads", type=click.IntRange(1),
                        help="CPU threads (default: torch's choice).")  # fmt: skip
_WORKERS = click.option("--workers", default=1, show_default=True, type=click.IntRange(0, 64),
                        help="Processes preparing batches (0: the training process).")  # fmt: skip
_QUIET = click.option("-q", "--quiet", is_flag=True, help="Print only errors.")


@lab.command("train")
@click.argument("recipe")
@click.option("--out", type=click.Path(file_okay=False), help="Run folder (default: runs/NAME).")
@click.option("--resume", is_flag=True, help="Go on from the run folder's latest checkpoint.")
@click.option("--steps", type=click.IntRange(1), help="Train this many steps, not the recipe's.")
@_THREADS
@_WORKERS
@_REGISTER
@_QUIET
@click.pass_context
def lab_train(ctx: click.Context, recipe: str, out: str | None, resume: bool, steps: int | None,
              threads: int | None, workers: int, register: str, quiet: bool) -> None:  # fmt: skip
    """Train RECIPE (a bundled recipe such as sr-x2, or a YAML file), checkpointing as it goes,
    then export the model to ONNX and install it."""
    recipes, training = _lab("recipe"), _lab("train")
    parsed = recipes.load(recipe).with_steps(steps)
    folder = out or os.path.join("runs", parsed.name)
    last = training.train(parsed, Path(folder), resume=resume, threads=threads,
                          workers=workers, settings=_settings(ctx), quiet=quiet)  # fmt: skip
    _export(ctx, str(last), folder, register)


@lab.command("prune")
@click.argument("run")
@click.option("--keep", required=True, type=click.FloatRange(0, 1, min_open=True),
              help="Share of each hidden layer's channels kept (those of largest L1 norm).")
@click.option("--steps", required=True, type=click.IntRange(1), help="Fine-tuning steps.")
@click.option("--lr", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              help="Peak learning rate of the fine-tuning (default: the run's).")
@click.option("--distil", type=click.FloatRange(0, 1), metavar="WEIGHT",
              help="Learn from the unpruned net too, with this share of the loss.")
@click.option("--name", help="Name of the pruned model (default: NAME-pruned).")
@click.option("--out", type=click.Path(file_okay=False), help="Run folder (default: runs/NAME).")
@_THREADS
@_WORKERS
@_REGISTER
@_QUIET
@click.pass_context
def lab_prune(ctx: click.Context, run: str, keep: float, steps: int, lr: float | None,
              distil: float | None, name: str | None, out: str | None, threads: int | None,
              workers: int, register: str, quiet: bool) -> None:  # fmt: skip
    """Prune the net of RUN (a run folder or checkpoint) to KEEP of its channels, fine-tune it
    with the run's recipe (written to the new run folder, so it resumes and trains again like
    any recipe), export it and install it."""
    pruning, training = _lab("prune"), _lab("train")
    recipe = pruning.recipe_for(Path(run), keep, steps, name=name, lr=lr, distil=distil)
    folder = out or os.path.join("runs", recipe.name)
    last = training.train(recipe, Path(folder), threads=threads, workers=workers,
                          settings=_settings(ctx), quiet=quiet)  # fmt: skip
    _export(ctx, str(last), folder, register)


@lab.command("export")
@click.argument("run")
@click.option("--out", type=click.Path(file_okay=False),
              help="Folder for NAME.onnx and NAME.json (default: the run folder).")
@click.option("--precision", type=click.Choice(["fp32", "fp16", "int8"]), default="fp32",
              show_default=True, help="fp16 (NAME-fp16, for GPUs) or int8 (NAME-int8, for "
                                      "CPUs) make a variant.")  # fmt: skip
@click.option("--calibration", type=click.IntRange(1), metavar="PATCHES",
              help="int8: patches of the recipe's data that calibrate the ranges (default 64).")
@_REGISTER
@click.pass_context
def lab_export(ctx: click.Context, run: str, out: str | None, precision: str,
               calibration: int | None, register: str) -> None:  # fmt: skip
    """Export RUN (a run folder, for its latest checkpoint, or a checkpoint file) to ONNX with
    its manifest, check it against PyTorch, and install it."""
    folder = out or (run if os.path.isdir(run) else os.path.dirname(os.path.dirname(run)))
    _export(ctx, run, folder, register, precision, calibration)


_TRACKS = ("classic", "compressed", "realistic")


@lab.command("eval")
@click.argument("model")
@click.option("--follows", multiple=True, metavar="MODEL",
              help="Run after this restoration model, as model:MODEL/model:… (repeatable).")
@click.option("--images", metavar="FOLDER",
              help="Reference images (default: the held-out photographs).")
@click.option("--track", "tracks", type=click.Choice(_TRACKS), multiple=True,
              default=("classic", "realistic"), show_default=True,
              help="Fixed degradation to evaluate on (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON, with every image's scores.")
@click.pass_context
def lab_eval(ctx: click.Context, model: str, follows: tuple[str, ...], images: str | None,
             tracks: tuple[str, ...], as_json: bool) -> None:  # fmt: skip
    """Score an installed MODEL, run through the tiled engine, against bicubic and Lanczos
    upscaling (upscalers) or its degraded input (restoration): PSNR and SSIM on luma."""
    evaluation = _lab("evaluate")
    result = evaluation.evaluate(model, follows=follows, images=images, tracks=tracks,
                                 settings=_settings(ctx))  # fmt: skip
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    from rich.console import Console

    Console().print(evaluation.table(result))


@lab.command("card")
@click.argument("models", nargs=-1, required=True)
@click.option("--out", type=click.Path(dir_okay=False), metavar="CARD.md",
              help="Write the Markdown card here (default: print it).")
@click.option("--json", "as_json", is_flag=True,
              help="Also write CARD.json beside it (without --out: print JSON instead).")
@click.option("--recipe", help="Bundled recipe, YAML file or run folder the models come from: "
                               "adds the training data and the recipe.")  # fmt: skip
@click.option("--follows", multiple=True, metavar="MODEL",
              help="Score each model after this restoration model (repeatable).")
@click.option("--track", type=click.Choice(_TRACKS), default="classic",
              show_default=True, help="Fixed degradation the scores are measured on.")
@click.option("--threads", default=1, show_default=True, type=click.IntRange(1),
              help="onnxruntime threads while measuring speed.")
@click.option("--repeats", default=5, show_default=True, type=click.IntRange(1),
              help="Timed runs per model (the median is kept).")
@click.option("--side", default=512, show_default=True, type=click.IntRange(16, 8192),
              help="Side of the square image speed is measured on.")
@click.pass_context
def lab_card(ctx: click.Context, models: tuple[str, ...], out: str | None, as_json: bool,
             follows: tuple[str, ...], recipe: str | None, track: str, threads: int,
             repeats: int, side: int) -> None:  # fmt: skip
    """Make the model card of installed MODELS, variants of one model (the first is the
    reference): parameters, ONNX size, CPU speed through the engine, and PSNR/SSIM on the
    held-out photographs, with the commands behind each figure."""
    cards = _lab("card")
    card = cards.make(list(models), follows=follows, recipe=recipe, track=track, threads=threads,
                      repeats=repeats, side=side, settings=_settings(ctx))  # fmt: skip
    if out is None:
        click.echo(json.dumps(card, indent=2, ensure_ascii=False) if as_json
                   else cards.markdown(card), nl=False)  # fmt: skip
        return
    for path in cards.write(card, Path(out), as_json):
        click.echo(f"wrote {path}", err=True)


@cli.command()
@click.argument("dst", default="sample.jpg")
def sample(dst: str) -> None:
    """Write the bundled sample photograph (a public-domain NASA portrait) to DST."""
    from importlib.resources import files

    from pixelmill import api

    photo = files("pixelmill") / "data" / "sample.jpg"
    outcome = api.run(str(photo), dst)
    click.echo(f"wrote {outcome.destination} ({outcome.width}×{outcome.height})", err=True)


_STOPPED_BY: list[int] = []
PARENT_ENV = "PIXELMILL_SERVE_PID"
"""Set for the workers ``serve`` starts: the process they end with."""
SERVICE_ENV = "PIXELMILL_SERVICE"
"""Set for the workers ``serve`` starts: the name of that service, in their heartbeats."""
_ON_STOP: list[Callable[[], None]] = []
"""What else a signal stops (a worker's loop)."""


def _stop(signum: int, frame: object) -> None:
    """SIGINT or SIGTERM: cancel every image in progress. Raising here would not do, as the
    handler may run inside a libvips callback that swallows exceptions."""
    from pixelmill.engine import cancel

    _STOPPED_BY.append(signum)
    cancel()
    for then in _ON_STOP:
        then()


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the command, turning every failure into a message and an exit code."""
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    debug = "--debug" in (argv or sys.argv[1:]) or os.environ.get("PIXELMILL_DEBUG", "").lower() in (
        "1", "true", "yes", "on",
    )  # fmt: skip
    try:
        code = cli.main(args=argv, prog_name="pixelmill", standalone_mode=False)
    except Cancelled as exc:
        click.echo(f"pixelmill: stopped: {exc}", err=True)
        code = 128 + _STOPPED_BY[0] if _STOPPED_BY else exc.exit_code
    except PixelmillError as exc:
        if debug:
            raise
        click.echo(f"pixelmill: {exc.kind} error: {exc}", err=True)
        code = exc.exit_code
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.ClickException as exc:
        exc.show()
        code = exc.exit_code
    except click.Abort:
        click.echo("pixelmill: interrupted", err=True)
        code = 130
    except Exception as exc:  # a bug: one line, traceback with --debug
        if debug:
            raise
        click.echo(f"pixelmill: internal error: {type(exc).__name__}: {exc} "
                   "(run with --debug for the traceback)", err=True)  # fmt: skip
        code = 1
    sys.exit(code or 0)
