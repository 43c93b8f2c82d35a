"""Webhooks: when a job ends, its description is POSTed as JSON to the URL given with it,
signed so the receiver can tell it came from this service and was not replayed.

Headers: ``X-Pixelmill-Timestamp`` (Unix seconds) and ``X-Pixelmill-Signature:
sha256=HEX``, the HMAC-SHA256 of ``{timestamp}.{body}`` with the setting ``webhook_secret``.
A 2xx answer is a delivery; anything else, or no answer in ten seconds, is retried with
backoff by :class:`~pixelmill.jobs.queue.JobQueue` (at least once: a receiver should ignore a
job id and state it has seen). Redirects are not followed, and hosts are checked again at each
delivery (an address may change).

Written on urllib: one POST needs no HTTP client library.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from typing import Any

from pixelmill.storage.hosts import refusal

TIMEOUT = 10.0


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Pixelmill-Signature`` value of a body sent at ``timestamp``."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def deliver(url: str, payload: dict[str, Any], secret: str | None,
            allow_private: bool) -> tuple[bool, str]:  # fmt: skip
    """POST ``payload``; whether it was delivered, and how it went in a few words."""
    refused = refusal(url, allow_private)
    if refused:
        return False, f"refused: {refused}"
    body = json.dumps(payload, separators=(",", ":")).encode()
    timestamp = str(int(time.time()))
    headers = {"Content-Type": "application/json", "User-Agent": "pixelmill-webhook",
               "X-Pixelmill-Timestamp": timestamp}  # fmt: skip
    if secret:
        headers["X-Pixelmill-Signature"] = signature(secret, timestamp, body)
    request = urllib.request.Request(url, body, headers, method="POST")
    try:
        with _OPENER.open(request, timeout=TIMEOUT) as answer:
            return True, f"delivered (HTTP {answer.status})"
    except urllib.error.HTTPError as exc:
        return False, f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        return False, f"unreachable: {getattr(exc, 'reason', exc)}"
    except Exception as exc:  # noqa: BLE001  http.client's own (InvalidURL…): a failed attempt
        return False, f"failed: {type(exc).__name__}: {exc}"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)
