"""``pixelmill serve``, ``worker``, ``keys`` and ``sign``: the service."""

from __future__ import annotations

import os
from typing import Any

import click

from pixelmill.cli.main import ON_STOP, STOPPED_BY, cli, pipeline_text, settings_of
from pixelmill.errors import UsageError
from pixelmill.service.serve import PARENT_ENV, SERVICE_ENV


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
    from pixelmill.jobs import logs
    from pixelmill.service.serve import serve as run_service

    logs.to_stderr()
    run_service(settings_of(ctx, data_dir=data_dir, db=db, storage=storage), host, port,
                workers, ctx.obj["config"], lambda line: click.echo(line, err=True))  # fmt: skip


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
    settings = settings_of(ctx, db=db, data_dir=data_dir)
    queue = JobQueue.of(settings)
    stop = threading.Event()
    ON_STOP.append(stop.set)
    parent = os.environ.get(PARENT_ENV)
    if STOPPED_BY or parent and os.getppid() != int(parent):  # stopped, or serve gone, already
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
_BUDGET = click.option("--budget", type=click.FloatRange(0, min_open=True), metavar="AMOUNT",
                       help="Monthly budget, in the money of the price table (cost.*): past "
                            "it the key's new work is refused with 402.")  # fmt: skip
_SOFT = click.option("--soft-budget", is_flag=True, help="Only alert at 80 % and 100 % of the "
                     "budget; never refuse work.")  # fmt: skip

@keys.command("add")
@click.argument("name")
@click.option("--rate", type=click.IntRange(1), metavar="N", help="Requests a minute at most.")
@click.option("--max-bytes", type=click.IntRange(1), metavar="N", help="Largest upload, bytes.")
@click.option("--prefix", "prefixes", multiple=True, metavar="PATH|URL",
              help="Where in the storage the key may read and write besides its own "
                   "keys/NAME/ (relative to the storage, or a URL; repeatable).")
@_BUDGET
@_SOFT
@_KEYS_DB
@_KEYS_DATA
@click.pass_context
def keys_add(ctx: click.Context, name: str, rate: int | None, max_bytes: int | None,
             prefixes: tuple[str, ...], budget: float | None, soft_budget: bool,
             db: str | None, data_dir: str | None) -> None:  # fmt: skip
    """Make a key called NAME and print its secret (shown this once)."""
    click.echo(_api_keys(ctx, db, data_dir).add(name, rate, max_bytes, prefixes, budget,
                                                soft_budget))  # fmt: skip

@keys.command("budget")
@click.argument("name")
@click.argument("amount", type=click.FloatRange(0, min_open=True), required=False)
@_SOFT
@_KEYS_DB
@_KEYS_DATA
@click.pass_context
def keys_budget(ctx: click.Context, name: str, amount: float | None, soft_budget: bool,
                db: str | None, data_dir: str | None) -> None:  # fmt: skip
    """Set the monthly budget of the key NAME to AMOUNT, or take its budget away (no
    AMOUNT)."""
    _api_keys(ctx, db, data_dir).budget(name, amount, soft_budget)

@keys.command("list")
@_KEYS_DB
@_KEYS_DATA
@click.pass_context
def keys_list(ctx: click.Context, db: str | None, data_dir: str | None) -> None:
    """List the keys with their limits and this month's budget."""
    found = _api_keys(ctx, db, data_dir)
    budgets = {standing.key: standing for standing in found.budgets.standing()}
    for key in found.list():
        budget = budgets.get(key.name)
        shown = (f"{budget.spent:.2f}/{budget.budget:g}{' soft' if budget.soft else ''}"
                 if budget else "-")  # fmt: skip
        click.echo(f"{key.name}\trate={key.rate or '-'}/min\tmax_bytes={key.max_bytes or '-'}"
                   f"\tprefixes={','.join(key.prefixes) or '-'}\tbudget={shown}")

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

    return ApiKeys(JobQueue(settings_of(ctx, db=db, data_dir=data_dir).job_database).engine)

@cli.command()
@click.argument("pipeline")
@click.argument("source")
@click.option("--base", default="", metavar="URL", help="Service address to put in front, "
              "e.g. https://img.example.com.")
@click.pass_context
def sign(ctx: click.Context, pipeline: str, source: str, base: str) -> None:
    """Print the signed on-demand URL of PIPELINE (text form) applied to SOURCE, with the first
    of the signing keys (setting signing_keys, or PIXELMILL_SIGNING_KEYS)."""
    from pixelmill import storage
    from pixelmill.service.ondemand import signed_path

    keys = [k.strip() for k in (settings_of(ctx).signing_keys or "").split(",") if k.strip()]
    if not keys:
        raise UsageError("no signing key: set signing_keys (or PIXELMILL_SIGNING_KEYS)")
    click.echo(base.rstrip("/") + signed_path(keys[0], pipeline_text(pipeline), source))
    if not source.startswith(("http://", "https://")) and not storage.exists(
            storage.locate(source)):  # fmt: skip
        click.echo(f"warning: {source} does not exist (here); the URL answers only once it "
                   "does, on the server", err=True)  # fmt: skip
    click.echo("the server must run with the same signing keys (PIXELMILL_SIGNING_KEYS)",
               err=True)  # fmt: skip
