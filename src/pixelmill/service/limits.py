"""The ceiling on request bodies, as ASGI middleware: a body whose ``Content-Length`` is over
the limit is refused before a byte of it is read, and one sent without a length (chunked) is
answered with the same ``413`` as soon as it passes the limit; the application then sees the
client gone and stops reading (what it would answer is dropped). Uploads (multipart forms,
streamed to disk) have one limit, every other body (JSON, parsed whole in memory) a small one.

Written here because Starlette has no body limit of its own; the check must stand in front of
the parser, so it cannot be a route dependency.
"""

from __future__ import annotations

import json
from typing import Any

from pixelmill.service.requests import JSON_BYTES

Scope = dict[str, Any]
Receive = Any
Send = Any


class BodyLimit:
    def __init__(self, app: Any, limit: int, other: int = JSON_BYTES) -> None:
        """``limit`` bytes for uploads (multipart forms), ``other`` for any other body."""
        self.app, self.uploads, self.other = app, limit, other

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        form = headers.get(b"content-type", b"").lower().startswith(b"multipart/form-data")
        limit, setting = (self.uploads, "max_upload_bytes") if form else (self.other, "")
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _refuse(send, limit, setting)
            return
        seen, started, refused = 0, False, False

        async def counted() -> dict[str, Any]:
            nonlocal seen, refused
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit and not refused:
                refused = True
                if not started:
                    await _refuse(send, limit, setting)
                return {"type": "http.disconnect"}  # the app stops reading; its answer is dropped
            return message

        async def watched(message: dict[str, Any]) -> None:
            nonlocal started
            if refused:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except Exception:
            if not refused:
                raise


async def _refuse(send: Send, limit: int, setting: str) -> None:
    named = f" ({setting})" if setting else " (uploads are multipart forms)"
    body = json.dumps({"detail": {"kind": "limit", "message": "the request body is over the "
                                  f"limit of {limit:,} bytes{named}"}})
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})  # fmt: skip
    await send({"type": "http.response.body", "body": body.encode()})
