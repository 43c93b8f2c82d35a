"""The decoders' warnings, kept to name the cause of a failure they brought about.

libvips reports a decoder's warnings through GLib's log, which pyvips forwards to the
``pyvips`` logger; at ``fail_on=warning`` a loader then stops with no message of its own (a
TIFF tag with the wrong count, say), so the warning is the only account of what was wrong.
"""

from __future__ import annotations

import collections
import logging
import threading
import time

KEPT = 32
"""Warnings remembered (the newest)."""
_NOISE = ("read gave ",)


class _Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: collections.deque[tuple[float, str]] = collections.deque(maxlen=KEPT)
        self.guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage().removeprefix("VIPS: ").strip()
        if text and not text.startswith(_NOISE):
            with self.guard:
                self.lines.append((time.monotonic(), text))


_KEPT = _Kept()
logging.getLogger("pyvips").addHandler(_KEPT)


def since(moment: float) -> list[str]:
    """The decoders' warnings since ``moment`` (``time.monotonic()``), oldest first."""
    with _KEPT.guard:
        return [text for at, text in _KEPT.lines if at >= moment]
