"""On-demand image URLs: ``GET /img/{signature}/{pipeline}/{source}``, rendered on the first
request and served from the storage's cache after.

- ``pipeline`` is the text form (its steps keep their ``/``); ``source`` is the last path
  segment, the base64url (unpadded) of a path or URL, so neither can be mistaken for the other.
- ``signature`` is the unpadded base64url of HMAC-SHA256 over ``{pipeline}/{source}`` (the
  path after it), checked in constant time against every configured key: the first signs, the
  others still verify, for rotation. Without keys the endpoint refuses everything.
- Sources must lie below a configured prefix (default: the service's storage), with symbolic
  links resolved, and outside the service's own areas (the cache). An http(s) source whose host
  resolves to a loopback, link-local or private address is refused unless allowed (no SSRF
  through the service).
- Results are cached in the storage under ``cache/`` with a key of the source's bytes, the
  canonical pipeline and the versions of its models, so a changed source or model renders anew
  while an unchanged one is never rendered twice. The key is an HMAC with a secret derived from
  the first signing key: nobody without it can tell a render's name in the cache (so nobody
  could plant a file there for a URL to serve; jobs may not write there anyway). Responses
  carry an ``ETag`` (the key), ``Cache-Control`` and ``Vary: Accept``; ``If-None-Match`` gets
  ``304``.
- A repeat of a render kept in a local cache, from a local source, is answered on the event
  loop from memory after one ``stat`` of the source (see :class:`Hits`); anything else is worked
  out in a thread.
- A pipeline with quality gates sends the renders they flag or hold to review (see
  :mod:`pixelmill.review.intake`). A held render is queued before it is stored, and every
  request of a gated pipeline asks the review queues first: until a reviewer approves it (or
  after one rejected it with ``withhold``) the answer is ``423`` with the reason. A held render
  is stored even when ``render_cache`` is off, for the reviewer to see.
- ``encode:auto`` picks AVIF, else WebP, when the ``Accept`` header names it, else JPEG (PNG
  for sources that may have alpha); each choice is cached apart.
- Each render (not its repeats from the cache) records its usage (:mod:`pixelmill.usage`) for
  the API key given with the request, if any: the API process's CPU time while it rendered
  (libvips renders in its own threads, so the calling thread's time would miss most of it;
  under concurrent renders the figure also holds theirs), the bytes read, stored in the cache
  and served.
"""

from __future__ import annotations

import base64
import binascii
import collections
import contextlib
import dataclasses
import functools
import hashlib
import hmac
import logging
import mimetypes
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, StreamingResponse
from starlette.datastructures import Headers

from pixelmill import api, storage
from pixelmill.codecs.sniff import identify
from pixelmill.config import Settings
from pixelmill.engine import Outcome, output_suffix, settle_format
from pixelmill.engine.output import CHOSEN
from pixelmill.errors import PixelmillError, StorageError, UsageError
from pixelmill.jobs import telemetry
from pixelmill.pipeline import Pipeline, Step
from pixelmill.pipeline.formats import AUTO, FORMAT_ALIASES, FORMATS
from pixelmill.review.intake import Run, holds, intake, withheld
from pixelmill.review.store import Reviews
from pixelmill.service.areas import RESERVED
from pixelmill.service.renders import RenderLog
from pixelmill.service.views import Refused
from pixelmill.storage import Location, Scope
from pixelmill.storage.hosts import refusal
from pixelmill.usage import Meter, Usage

LOG = logging.getLogger("pixelmill.usage")

CACHE_CONTROL = "public, max-age=86400"
ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/*": {"schema": {"type": "string", "format": "binary"}}},
          "description": "the image"},
    304: {"description": "not modified (If-None-Match)"},
    **{status: {"model": Refused} for status in (400, 403, 413, 422, 423)},
}  # fmt: skip
HITS = 10_000
"""Renders the fast path remembers (the least recently served go first)."""
HIT_BYTES = 64 * 1024**2
"""Bytes of renders the fast path keeps in memory at most."""
HIT_SIZE = 1024**2
"""Largest render the fast path keeps (bigger ones are streamed from the cache)."""
MAX_ACCEPT = 512
"""Longest ``Accept`` header the fast path keys on (clients choose it)."""
MEDIA = {".avif": "image/avif", ".jxl": "image/jxl", ".webp": "image/webp",
         ".heic": "image/heic"}  # fmt: skip
"""Media types Python's table may lack."""
SNIFFED = {"JPEG": ".jpg", "PNG": ".png", "WebP": ".webp", "AVIF": ".avif", "JPEG XL": ".jxl",
           "GIF": ".gif", "TIFF": ".tif", "HEIC": ".heic"}  # fmt: skip
"""The suffix of what :func:`pixelmill.codecs.sniff.identify` names."""


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
    prefixes = tuple(storage.locate(p.strip()) for p in (settings.sources or root.url).split(",")
                     if p.strip())  # fmt: skip
    sources = Scope(prefixes, tuple(root.child(name) for name in RESERVED))
    secret = (hmac.new(keys[0].encode(), b"pixelmill render cache", hashlib.sha256).digest()
              if keys else b"")  # fmt: skip

    hits = Hits()
    log = RenderLog.of(settings)
    ledger = Usage.of(settings)
    reviews = functools.cache(lambda: Reviews.of(settings))

    @routes.get("/img/{sig}/{rest:path}", tags=["images"], response_class=Response,
                responses=ANSWERS)  # fmt: skip
    async def image(sig: str, rest: str, request: Request) -> Any:
        """An image rendered by a signed pipeline, from the cache when it was rendered before."""
        # what was signed is the path as sent (percent-encoded); the route's decoded parts must
        # be exactly it, or an encoded slash could move steps in front of a signed pipeline
        _, _, raw_sig, raw = request.scope["raw_path"].decode().split("/", 3)
        if raw_sig != sig or unquote(raw) != rest:
            raise HTTPException(403, {"kind": "signature", "message": "bad signature"})
        if not keys or not any(hmac.compare_digest(signature(k, raw), sig) for k in keys):
            raise HTTPException(403, {"kind": "signature", "message": "bad signature"})
        accept = request.headers.get("accept", "")
        hit = hits.find(raw, accept)
        if hit is not None:
            if request.headers.get("if-none-match") == hit.headers["ETag"]:
                return Response(status_code=304, headers=hit.headers)
            return Response(hit.body, media_type=hit.media, headers=hit.headers)
        key = request.scope.get("state", {}).get("key")
        return await run_in_threadpool(answer, rest, raw, accept, request.headers,
                                       key.name if key else None)  # fmt: skip

    def answer(rest: str, raw: str, accept: str, given: Headers, key: str | None) -> Response:
        """Parse, hash, render or find in the cache; remember what the fast path may serve."""
        render = functools.partial(_render, settings=settings, log=log,
                                   account=functools.partial(_account, ledger, key))
        text, _, encoded = rest.rpartition("/")
        source = _source(encoded, sources, settings.allow_private_hosts)
        pipeline = _encoded(settle_format(Pipeline.parse(text), source.name, accept), source)
        version = storage.version(source)  # before the digest: a change after it renders anew
        key = _cache_key(source, pipeline, settings, secret)
        chooses = _chooses_format(pipeline)
        suffix = CHOSEN if chooses else output_suffix(pipeline, source.name)
        cached = root.child(f"cache/{key[:2]}/{key}{suffix}")
        headers = {"ETag": f'"{key}"', "Cache-Control": CACHE_CONTROL, "Vary": "Accept"}
        if given.get("if-none-match") == headers["ETag"]:
            return Response(status_code=304, headers=headers)
        media = None if chooses else _media(suffix)
        gated = any(step.op == "qc" for step in pipeline.steps)
        run = Run(f"render:{key}", source.url, pipeline)
        if gated:
            _refuse_held(reviews(), key)
        if not settings.render_cache and not holds(pipeline):
            outcome = render(source, None, pipeline)
            if gated:
                _review(reviews, run, outcome)
            return Response(outcome.data, media_type=media or _media(outcome.format),
                            headers=headers)  # fmt: skip
        if not storage.exists(cached):
            made = cached if not holds(pipeline) else None  # held: queued before it is stored
            outcome = render(source, made, pipeline)
            media = media or _media(outcome.format)
            if gated:
                _review(reviews, dataclasses.replace(run, output=cached.url), outcome)
            if made is None:
                _store(outcome.data or b"", cached, settings.tmp_dir)
                _refuse_held(reviews(), key)
        media = media or _media(_sniffed(cached))
        if cached.is_local:
            if version is not None and not api.models_of(pipeline) and not gated:  # models may change
                hits.remember(raw, accept, source, version, cached, media, headers)
            return FileResponse(cached.path, media_type=media, headers=headers)
        return StreamingResponse(storage.chunks(cached), media_type=media, headers=headers)

    return routes


@dataclass(frozen=True)
class Hit:
    """A cached render the fast path may serve while its source file is unchanged."""

    source: Location
    version: tuple[int, int, int]
    media: str
    headers: dict[str, str]
    body: bytes = b""


class Hits:
    """The renders served lately from a local cache, by signed path and ``Accept`` header,
    with their bytes: a repeat is answered on the event loop from one ``stat`` of its local
    source, without parsing, hashing or a thread (small outputs of pipelines without models
    only, whose models could change; anything else takes the full path)."""

    def __init__(self, most: int = HITS, most_bytes: int = HIT_BYTES) -> None:
        self._hits: collections.OrderedDict[tuple[str, str], Hit] = collections.OrderedDict()
        self._most, self._most_bytes, self._bytes = most, most_bytes, 0
        self._lock = threading.Lock()

    def find(self, raw: str, accept: str) -> Hit | None:
        with self._lock:
            hit = self._hits.get((raw, accept))
        if hit is None:
            return None
        if storage.version(hit.source) != hit.version:
            self._forget((raw, accept))
            return None
        with self._lock:
            if (raw, accept) in self._hits:
                self._hits.move_to_end((raw, accept))
        return hit

    def remember(self, raw: str, accept: str, source: Location, version: tuple[int, int, int],
                 cached: Location, media: str, headers: dict[str, str]) -> None:  # fmt: skip
        if len(accept) > MAX_ACCEPT:
            return
        try:
            if (storage.input_size(cached) or 0) > HIT_SIZE:
                return
            body = storage.read_bytes(cached)
        except StorageError:
            return
        hit = Hit(source, version, media, headers, body)
        with self._lock:
            self._forget((raw, accept), locked=True)
            self._hits[raw, accept] = hit
            self._bytes += len(body)
            while len(self._hits) > self._most or self._bytes > self._most_bytes:
                _, dropped = self._hits.popitem(last=False)
                self._bytes -= len(dropped.body)

    def _forget(self, key: tuple[str, str], locked: bool = False) -> None:
        with contextlib.nullcontext() if locked else self._lock:
            dropped = self._hits.pop(key, None)
            if dropped is not None:
                self._bytes -= len(dropped.body)


def _render(source: Location, destination: Location | None, pipeline: Pipeline,
            settings: Settings, log: RenderLog | None,
            account: Callable[[Meter, Pipeline, Location, bool], None]) -> Outcome:  # fmt: skip
    """Render into ``destination``, or into memory (``outcome.data``), counted in the service's
    metrics, its usage given to ``account`` and remembered in the ``log``'s dataset."""
    meter = Meter()
    try:
        with meter:
            if destination is None:
                outcome = api.render(source, pipeline, settings=settings)
            else:
                outcome = api.run(source, destination, pipeline, settings=settings)
    except PixelmillError as exc:
        telemetry.failed(exc.kind, "ondemand")
        account(meter, pipeline, source, True)
        raise
    telemetry.succeeded(outcome, "ondemand")
    meter.add_outcome(outcome, stored=destination is not None)
    meter.add_bytes(served=outcome.bytes_written)
    account(meter, pipeline, source, False)
    if log is not None:
        log.record(source, outcome, pipeline)
    return outcome


def _account(ledger: Usage, key: str | None, meter: Meter, pipeline: Pipeline, source: Location,
             failed: bool) -> None:  # fmt: skip
    """Record a render's usage for ``key`` (a failure to do so is logged, never the
    render's)."""
    work = meter.result("ondemand", key, str(pipeline), ref=source.url[:2000], failed=failed)
    try:
        ledger.record(work)
    except Exception:  # the answer must never suffer from its record
        LOG.exception("usage not recorded", extra={"key": key, "source": source.url[:300]})


def _review(reviews: Callable[[], Reviews], run: Run, outcome: Outcome) -> None:
    """Send a render its gates flagged or held to review (spot checks are for jobs)."""
    intake(reviews(), run, outcome, spot_checks=False)


def _refuse_held(reviews: Reviews, key: str) -> None:
    """Refuse (``423``) a render that review holds back."""
    if (held := reviews.held(key=f"render:{key}")) is not None:
        raise HTTPException(423, {"kind": "held", "message": withheld("this image", held)})


def _chooses_format(pipeline: Pipeline) -> bool:
    """Whether the render chooses its format itself (``encode:auto:target=``): its cached copy
    is named ``KEY.auto`` and its type read from its first bytes."""
    encode = pipeline.encoder()
    return encode is not None and encode["format"] == AUTO and encode["target"] is not None


def _media(fmt: str) -> str:
    """The media type of a format (a name, or a suffix such as ``.webp``)."""
    suffix = fmt if fmt.startswith(".") else FORMATS[fmt].extensions[0]
    return MEDIA.get(suffix) or mimetypes.guess_type(f"x{suffix}")[0] or "application/octet-stream"


def _sniffed(cached: Location) -> str:
    """The suffix of a cached render's format, read from its first bytes (``KEY.auto``)."""
    found = identify(storage.read_bytes(cached, 16))
    return SNIFFED.get(found[0] if found else "", ".bin")


def _store(data: bytes, cached: Location, tmp_dir: str | None) -> None:
    with storage.atomic_output(cached, tmp_dir) as spool, open(spool, "wb") as out:
        out.write(data)


def _encoded(pipeline: Pipeline, source: Location) -> Pipeline:
    """The pipeline ending with its encode step, or with the one its output would get."""
    if pipeline.encoder() is not None:
        return pipeline
    fmt = output_suffix(pipeline, source.name).lstrip(".")
    return Pipeline((*pipeline.steps, Step.make("encode", format=FORMAT_ALIASES.get(fmt, fmt))))


def _source(encoded: str, sources: Scope, allow_private: bool) -> Location:
    try:
        padded = encoded + "=" * (-len(encoded) % 4)
        text = base64.b64decode(padded, altchars=b"-_", validate=True).decode()
        if not text:
            raise ValueError(text)
    except (binascii.Error, ValueError):
        raise HTTPException(400, {"kind": "usage", "message": "the source is not base64url "
                                  "of a path or URL"}) from None  # fmt: skip
    try:
        source = sources.check(storage.locate(text), "source")
    except (UsageError, StorageError) as exc:
        raise HTTPException(403, {"kind": "source", "message": str(exc)}) from None
    if source.url.startswith(("http:", "https:")):
        refused = refusal(source.url, allow_private)
        if refused:
            raise HTTPException(403, {"kind": "source", "message": f"source {refused}"})
    return source


def _content_digest(source: Location) -> str:
    """SHA-256 of a source's bytes, read once per version of a local file."""
    version = storage.version(source)
    return _hash(source) if version is None else _local_digest(source, version)


@functools.lru_cache(maxsize=4096)
def _local_digest(source: Location, version: tuple[int, int, int]) -> str:
    """``version`` (size, modification time, inode) tells a file's versions apart."""
    return _hash(source)


def _hash(source: Location) -> str:
    digest = hashlib.sha256()
    for chunk in storage.chunks(source):
        digest.update(chunk)
    return digest.hexdigest()


def _cache_key(source: Location, pipeline: Pipeline, settings: Settings, secret: bytes) -> str:
    """HMAC-SHA256 with ``secret`` of the source's bytes, the canonical pipeline and its
    models' versions."""
    from pixelmill.models import find

    digest = hmac.new(secret, _content_digest(source).encode(), hashlib.sha256)
    digest.update(str(pipeline).encode())
    for name in api.models_of(pipeline):
        model = find(name, settings)
        digest.update(f"{model.manifest.name}@{model.manifest.version}:"
                      f"{model.path.stat().st_size}".encode())  # fmt: skip
    return digest.hexdigest()
