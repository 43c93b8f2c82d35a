"""Days, months and report periods, in UTC, from times given by the caller's clock."""

from __future__ import annotations

import calendar
import datetime as dt
import re
import time

from pixelmill.errors import UsageError

SPAN = re.compile(r"(\d+(?:\.\d+)?)([hdw])")
UNIT = {"h": 3600, "d": 86400, "w": 7 * 86400}


def day_of(at: float) -> str:
    """``YYYY-MM-DD`` of a time."""
    return time.strftime("%Y-%m-%d", time.gmtime(at))


def month_of(at: float) -> str:
    """``YYYY-MM`` of a time: the month a budget runs for."""
    return time.strftime("%Y-%m", time.gmtime(at))


def month_start(at: float) -> float:
    """The first second of the month of ``at``."""
    moment = time.gmtime(at)
    return float(calendar.timegm((moment.tm_year, moment.tm_mon, 1, 0, 0, 0)))


def since(text: str, now: float) -> float:
    """The start of a report period: ``30d``, ``12h``, ``2w`` back from ``now``, ``month``
    (this month's start), or a date ``YYYY-MM-DD``."""
    text = text.strip().lower()
    if text == "month":
        return month_start(now)
    if found := SPAN.fullmatch(text):
        return now - float(found[1]) * UNIT[found[2]]
    try:
        return dt.datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=dt.UTC).timestamp()
    except ValueError:
        raise UsageError(f"since {text!r}: give a span such as 30d, 12h or 2w, 'month', or a "
                         "date YYYY-MM-DD") from None  # fmt: skip
