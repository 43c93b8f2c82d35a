"""Batch runs: one pipeline over every image of a folder or bucket prefix, on the driver's
threads or on a Ray cluster, resumable after any crash (``pixelmill batch``).

- :mod:`~pixelmill.batch.manifest`: the run and its items in the job database;
- :mod:`~pixelmill.batch.work`: what a worker does with one item;
- :mod:`~pixelmill.batch.engines`: the local threads and the Ray actors;
- :mod:`~pixelmill.batch.run`: the driver.
"""

from pixelmill.batch.engines import Local, Ray, available
from pixelmill.batch.run import Summary, run

__all__ = ["Local", "Ray", "Summary", "available", "run"]
