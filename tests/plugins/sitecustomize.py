"""Test-only steps, in every Python process started with this folder on ``PYTHONPATH`` (the
service's API, its workers and their job processes alike): the failures a production pipeline
must survive, made on purpose.

- ``crash``: leaves a spool file in the temporary folder, then kills its own process with
  SIGSEGV, as a decoder's segfault would;
- ``hog``: takes memory, 64 MiB at a time, until its process is killed;
- ``hang``: never returns.
"""

import os
import signal
import tempfile
import time

from pixelmill.engine.ops import OPS, Op
from pixelmill.pipeline.spec import declare


def crash(image, step):
    tempfile.mkstemp(prefix="pixelmill-", suffix=".part")  # as a spool left mid-write
    os.kill(os.getpid(), signal.SIGSEGV)


def hog(image, step):
    held = []
    while True:
        held.append(b"x" * (64 << 20))


def hang(image, step):
    while True:
        time.sleep(1)


for name, apply in (("crash", crash), ("hog", hog), ("hang", hang)):
    declare(name, f"test only: {apply.__name__}")
    OPS[name] = Op(apply)
