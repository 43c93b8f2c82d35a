"""Test-only steps, a pixelmill plugin: the failures a production pipeline must survive, made
on purpose, in every process started with this plugin on ``PYTHONPATH`` (the service's API,
its workers and their job processes alike).

- ``crash``: leaves a spool file in the temporary folder, then kills its own process with
  SIGSEGV, as a decoder's segfault would;
- ``hog``: takes memory, 64 MiB at a time, until its process is killed;
- ``hang``: never returns.
"""

import os
import signal
import tempfile
import time

from pixelmill.engine.step import Op
from pixelmill.pipeline.spec import declare


def crash(image, step, ctx):
    tempfile.mkstemp(prefix="pixelmill-", suffix=".part")  # as a spool left mid-write
    os.kill(os.getpid(), signal.SIGSEGV)


def hog(image, step, ctx):
    held = []
    while True:
        held.append(b"x" * (64 << 20))


def hang(image, step, ctx):
    while True:
        time.sleep(1)


CRASH = Op(declare("crash", "test only: segfaults"), crash)
HOG = Op(declare("hog", "test only: takes all the memory"), hog)
HANG = Op(declare("hang", "test only: never returns"), hang)
