"""``pixelmill submit``: the client side of ``pixelmill serve`` — upload an image, queue a
pipeline on it, follow the job and download its output, as a user of an image API expects."""

from __future__ import annotations

import os
import time
from typing import Any

import click

from pixelmill.cli.main import cli, pipeline_text
from pixelmill.errors import PixelmillError, UsageError

POLL = 5.0
"""Seconds each long poll of the job waits at most."""


@cli.command()
@click.argument("src", type=click.Path(exists=True, dir_okay=False))
@click.option("-p", "--pipeline", default="", metavar="PIPELINE", help="Steps, e.g. "
              "'model:sr-x2/encode:webp:q=90' (default: re-encode to the same format).")
@click.option("-o", "--out", type=click.Path(dir_okay=False),
              help="Where to write the output (default: its name, in the current folder).")
@click.option("--server", default="http://127.0.0.1:8080", show_default=True,
              envvar="PIXELMILL_SERVER", help="The service's address (or PIXELMILL_SERVER).")
@click.option("--key", envvar="PIXELMILL_API_KEY", help="API key (or PIXELMILL_API_KEY).")
@click.option("--wait/--no-wait", default=True, show_default=True,
              help="Wait for the job and download its output, or print its id and return.")
@click.option("--timeout", default=3600.0, show_default=True, type=click.FloatRange(1),
              help="Seconds to wait for the job at most.")
@click.option("-q", "--quiet", is_flag=True, help="Print only errors.")
def submit(src: str, pipeline: str, out: str | None, server: str, key: str | None, wait: bool,
           timeout: float, quiet: bool) -> None:  # fmt: skip
    """Upload SRC to a running pixelmill serve, run PIPELINE on it as a job, and download the
    output once it is done (a progress bar shows the job's progress).

    \b
    Example:
      pixelmill submit photo.jpg -p 'model:sr-x2/encode:webp:q=90' -o photo-2x.webp
    """
    import httpx

    from pixelmill.cli.progress import bar_for_one

    headers = {"Authorization": f"Bearer {key}"} if key else {}
    with httpx.Client(base_url=server.rstrip("/"), headers=headers, timeout=60) as client:
        with open(src, "rb") as image:
            job = _answer(_request(client, "POST", "/v1/jobs/upload", files={
                "file": (os.path.basename(src), image)},
                data={"pipeline": pipeline_text(pipeline)}))  # fmt: skip
        if not wait:
            click.echo(job["id"])
            return
        deadline = time.monotonic() + timeout
        with bar_for_one(src, quiet) as progress:
            while job["state"] not in ("succeeded", "failed", "dead", "cancelled"):
                if time.monotonic() > deadline:
                    raise UsageError(f"job {job['id']} has not ended after {timeout:.0f} s; "
                                     f"follow it at {server}/v1/jobs/{job['id']}")  # fmt: skip
                job = _answer(_request(client, "GET", f"/v1/jobs/{job['id']}",
                                       params={"wait": POLL}, timeout=POLL + 30))  # fmt: skip
                if progress is not None:
                    progress(job.get("progress") or 0.0)
        if job["state"] != "succeeded":
            error = job.get("error") or {}
            raise _error(error.get("kind", "internal"),
                         f"job {job['id']} {job['state']}: {error.get('message', '')}")
        target = out or os.path.basename(job["output"]["destination"])
        _download(client, f"/v1/jobs/{job['id']}/output", target)
    if not quiet:
        output = job["output"]
        click.echo(f"wrote {target} ({output['format']}, {output['width']}×{output['height']}, "
                   f"{output['bytes']:,} bytes; job {job['id']} in "
                   f"{output['seconds']:.2f} s)", err=True)  # fmt: skip


def _request(client: Any, method: str, path: str, **options: Any) -> Any:
    import httpx

    try:
        return client.request(method, path, **options)
    except httpx.TransportError as exc:
        raise UsageError(f"cannot reach {client.base_url}: {exc}; is pixelmill serve running "
                         "there? (--server or PIXELMILL_SERVER)") from None  # fmt: skip


def _answer(response: Any) -> dict[str, Any]:
    """The JSON of a successful answer; a refusal raised as the error of its kind."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.is_success:
        return body
    detail = body.get("detail") if isinstance(body.get("detail"), dict) else {}
    message = detail.get("message") or f"HTTP {response.status_code}"
    raise _error(detail.get("kind", "usage"), f"the service refused: {message}")


def _download(client: Any, path: str, target: str) -> None:
    from pixelmill import storage

    with client.stream("GET", path) as response:
        if not response.is_success:
            response.read()
            _answer(response)
        with storage.atomic_output(storage.locate(target)) as spool, open(spool, "wb") as file:
            file.writelines(response.iter_bytes())


def _error(kind: str, message: str) -> PixelmillError:
    """The pixelmill error of ``kind`` (its exit code), or a plain one."""
    found: list[type[PixelmillError]] = [PixelmillError]
    for cls in found:
        found.extend(cls.__subclasses__())
    chosen = next((cls for cls in found if cls.kind == kind), PixelmillError)
    return chosen(message)
