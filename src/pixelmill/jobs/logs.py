"""JSON log lines for the service's processes: one object per line with the time, level,
message and whatever the call passes in ``extra`` (job id, worker, state, seconds…), ready for
a log shipper. Written here because the standard library has no JSON formatter and it is ten
lines."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
"""Attributes every log record has; the others came from ``extra``."""


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(), "logger": record.name,
            "message": record.getMessage(),
        }  # fmt: skip
        line.update({k: v for k, v in record.__dict__.items() if k not in STANDARD})
        if record.exc_info:
            line["traceback"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def to_stderr(level: int = logging.INFO) -> None:
    """Send pixelmill's logs to stderr as JSON lines."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("pixelmill")
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False
