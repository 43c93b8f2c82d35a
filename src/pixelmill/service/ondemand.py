"""On-demand image URLs: ``GET /img/{signature}/{pipeline}/{source}``, rendered on the first
request and served from the storage's cache after.

- ``pipeline`` is the text form (its steps keep their ``/``); ``source`` is the last path
  segment, the base64url (unpadded) of a path or URL, so neither can be mistaken for the other.
- ``signature`` is the unpadded base64url of HMAC-SHA256 over ``{pipeline}/{source}`` (the
  path after it), checked in constant time against every configured key: the first signs, the
  others still verify, for rotation. Without keys the endpoint refuses everything.
- Sources must lie below a configured prefix (default: the service's storage). An http(s)
  source whose host resolves to a loopback, link-local or private address is refused unless
  allowed (no SSRF through the service).
- Results are cached in the storage under ``cache/`` with a key of the source's bytes, the
  canonical pipeline and the versions of its models, so a changed source or model renders anew
  while an unchanged one is never rendered twice. Responses carry an ``ETag`` (the key),
  ``Cache-Control`` and ``Vary: Accept``; ``If-None-Match`` gets ``304``.
- ``encode:auto`` picks AVIF, else WebP, when the ``Accept`` header names it, else JPEG (PNG
  for sources that may have alpha); each choice is cached apart.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import hashlib
import hmac
import mimetypes
import os
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import FileResponse, StreamingResponse

from pixelmill import api, storage
from pixelmill.config import Settings
from pixelmill.engine import output_suffix, settle_format
from pixelmill.errors import PixelmillError
from pixelmill.jobs import telemetry
from pixelmill.pipeline import Pipeline, Step
from pixelmill.pipeline.formats import FORMAT_ALIASES
from pixelmill.storage import Location
from pixelmill.storage.hosts import refusal

CACHE_CONTROL = "public, max-age=86400"


def signature(key: str, rest: str) -> str:
    """The signature of the path ``rest`` (``{pipeline}/{source}``) with ``key``."""
    digest = hmac.new(key.encode(), rest.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def signed_path(key: str, pipeline: str, source: str) -> str:
    """``/img/{signature}/{pipeline}/{source}`` for a pipeline (text form) and a source."""
    text = str(Pipeline.parse(pipeline))
    encoded = base64.urlsafe_b64encode(source.encode()).rstrip(b"=").decode()
    rest = f"{quote(text, safe='/:=,')}/{encoded}" if text else encoded
    return f"/img/{signature(key, rest)}/{rest}"


def router(settings: Settings, root: Location) -> APIRouter:
    """The ``/img`` endpoint over ``settings``' keys, sources and the storage ``root``."""
    routes = APIRouter()
    keys = [k.strip() for k in (settings.signing_keys or "").split(",") if k.strip()]
    prefixes = [storage.locate(p.strip()) for p in (settings.sources or root.url).split(",")
                if p.strip()]  # fmt: skip

    @routes.get("/img/{sig}/{rest:path}", include_in_schema=True)
    def image(sig: str, rest: str, request: Request) -> Any:
        """An image rendered by a signed pipeline, from the cache when it was rendered before."""
        raw = request.scope["raw_path"].decode().split("/", 3)[3]  # as signed: percent-encoded
        if not keys or not any(hmac.compare_digest(signature(k, raw), sig) for k in keys):
            raise HTTPException(403, {"kind": "signature", "message": "bad signature"})
        text, _, encoded = rest.rpartition("/")
        source = _source(encoded, prefixes, settings.allow_private_hosts)
        pipeline = _encoded(settle_format(Pipeline.parse(text), source.name,
                                          request.headers.get("accept", "")), source)  # fmt: skip
        key = _cache_key(source, pipeline, settings)
        cached = root.child(f"cache/{key[:2]}/{key}{output_suffix(pipeline, source.name)}")
        headers = {"ETag": f'"{key}"', "Cache-Control": CACHE_CONTROL, "Vary": "Accept"}
        if request.headers.get("if-none-match") == headers["ETag"]:
            return Response(status_code=304, headers=headers)
        media = mimetypes.guess_type(cached.name)[0] or "application/octet-stream"
        if not settings.render_cache:
            data = _render(source, None, pipeline, settings)
            return Response(data, media_type=media, headers=headers)
        if not storage.exists(cached):
            _render(source, cached, pipeline, settings)
        if cached.is_local:
            return FileResponse(cached.path, media_type=media, headers=headers)
        return StreamingResponse(storage.chunks(cached), media_type=media, headers=headers)

    return routes


def _render(source: Location, destination: Location | None, pipeline: Pipeline,
            settings: Settings) -> bytes | None:  # fmt: skip
    """Render into ``destination``, or into memory (its bytes returned), counted in the
    service's metrics."""
    try:
        if destination is None:
            outcome = api.render(source, pipeline, settings=settings)
        else:
            outcome = api.run(source, destination, pipeline, settings=settings)
    except PixelmillError as exc:
        telemetry.failed(exc.kind, "ondemand")
        raise
    telemetry.succeeded(outcome, "ondemand")
    return outcome.data


def _encoded(pipeline: Pipeline, source: Location) -> Pipeline:
    """The pipeline ending with its encode step, or with the one its output would get."""
    if pipeline.find("encode") is not None:
        return pipeline
    fmt = output_suffix(pipeline, source.name).lstrip(".")
    return Pipeline((*pipeline.steps, Step.make("encode", format=FORMAT_ALIASES.get(fmt, fmt))))


def _source(encoded: str, prefixes: list[Location], allow_private: bool) -> Location:
    try:
        padded = encoded + "=" * (-len(encoded) % 4)
        text = base64.b64decode(padded, altchars=b"-_", validate=True).decode()
        if not text:
            raise ValueError(text)
    except (binascii.Error, ValueError):
        raise HTTPException(400, {"kind": "usage", "message": "the source is not base64url "
                                  "of a path or URL"}) from None  # fmt: skip
    source = storage.locate(text)
    if not any(prefix.contains(source) and prefix.url != source.url for prefix in prefixes):
        raise HTTPException(403, {"kind": "source", "message": f"source {text!r} is not "
                                  "below an allowed prefix"})  # fmt: skip
    if source.url.startswith(("http:", "https:")):
        refused = refusal(source.url, allow_private)
        if refused:
            raise HTTPException(403, {"kind": "source", "message": f"source {refused}"})
    return source


def _content_digest(source: Location) -> str:
    """SHA-256 of a source's bytes, read once per version of a local file."""
    if source.is_local:
        with contextlib.suppress(OSError):
            found = os.stat(source.path)
            return _local_digest(source, (found.st_size, found.st_mtime_ns, found.st_ino))
    return _hash(source)


@functools.lru_cache(maxsize=4096)
def _local_digest(source: Location, version: tuple[int, int, int]) -> str:
    """``version`` (size, modification time, inode) tells a file's versions apart."""
    return _hash(source)


def _hash(source: Location) -> str:
    digest = hashlib.sha256()
    for chunk in storage.chunks(source):
        digest.update(chunk)
    return digest.hexdigest()


def _cache_key(source: Location, pipeline: Pipeline, settings: Settings) -> str:
    """SHA-256 of the source's bytes, the canonical pipeline and its models' versions."""
    from pixelmill.models import find

    digest = hashlib.sha256(_content_digest(source).encode())
    digest.update(str(pipeline).encode())
    for step in pipeline.steps:
        if step.op == "model":
            model = find(step["name"], settings)
            digest.update(f"{model.manifest.name}@{model.manifest.version}:"
                          f"{model.path.stat().st_size}".encode())  # fmt: skip
    return digest.hexdigest()
