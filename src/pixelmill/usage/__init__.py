"""What each piece of work cost: jobs, on-demand renders and batch items are measured, priced
by the settings' price table and recorded in the job database; reports, Prometheus counters
and API keys' monthly budgets are read from there (docs/usage.md).

Every face records the same way::

    from pixelmill.usage import Meter, Usage

    with Meter() as meter:            # this process's CPU seconds and peak RSS, enter to exit
        ... do the work ...
    meter.add_bytes(read=n_in, written=n_out)   # bytes the caller knows (served= too)
    meter.add_outcome(outcome)        # or: a run's Outcome gives its bytes and GPU inference
    work = meter.result(origin="batch", key=None, pipeline=canonical_text, dataset=None)
    Usage.of(settings).record(work)   # one row (and the key's month); returns its cost

:class:`Meter` (:mod:`pixelmill.usage.meter`) says exactly what is measured and how;
:class:`Work` is what it measured (``to_json()``); :class:`Usage` (:mod:`.ledger`) records and
reports; :class:`Budgets` (:mod:`.budgets`) holds the keys' budgets and their alerts.
"""

from pixelmill.usage.budgets import THRESHOLDS, Alert, Budgets, Standing
from pixelmill.usage.ledger import BY, Report, Usage
from pixelmill.usage.meter import Meter, Work
from pixelmill.usage.periods import since
from pixelmill.usage.prices import Prices

__all__ = ["BY", "THRESHOLDS", "Alert", "Budgets", "Meter", "Prices", "Report", "Standing",
           "Usage", "Work", "since"]  # fmt: skip
