#!/usr/bin/env python3
"""atheris harness: the image loaders, with bounded decoding.

Each input is written to one temporary file of this process and opened with
``pixelmill.codecs.open_source`` under small limits (4 MP, 256 MiB of decoder memory, 1 MiB
files); when the header is accepted the source is described (``pixelmill info``) and the
top-left 64 × 64 pixels are decoded and averaged, a libvips failure there being classified as
the engine does. Anything but a ``PixelmillError`` is a crash: see ``fuzz_checks.py`` and
``README.md`` (next to this file).

    .venv/bin/python fuzz/fuzz_loaders.py fuzz/work/loaders fuzz/corpus/loaders \\
        -max_len=65536 -rss_limit_mb=2048 -timeout=10 -atheris_runs=100000 \\
        -artifact_prefix=fuzz/work/artifacts/loaders/

libvips is C without coverage instrumentation: the fuzzer is guided by pixelmill's Python code
only, and libvips sees mutations of the seeds. ``VIPS_CONCURRENCY`` defaults to 1 here (one
worker thread: steadier timing on a shared machine, and reproducible failures).
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile

os.environ.setdefault("VIPS_CONCURRENCY", "1")

import atheris

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

with atheris.instrument_imports(include=["pixelmill"]):
    import fuzz_checks

    import pixelmill.codecs
    import pixelmill.errors
    import pixelmill.storage  # noqa: F401

PREFIX = "pixelmill-fuzz-"
PATH = os.path.join(tempfile.gettempdir(), f"{PREFIX}{os.getpid()}")
"""The one file this process writes each input to. libFuzzer ends the process from C, where
Python's atexit handlers do not run, so each start removes the files of processes that are gone."""


def _remove_stale() -> None:
    for name in os.listdir(tempfile.gettempdir()):
        stem = name.removeprefix(PREFIX).removesuffix(".part")
        if not name.startswith(PREFIX) or not stem.isdigit() or int(stem) == os.getpid():
            continue
        try:
            os.kill(int(stem), 0)
        except ProcessLookupError:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(tempfile.gettempdir(), name))
        except PermissionError:  # alive, someone else's
            pass


_remove_stale()


def test_one_input(data: bytes) -> None:
    fuzz_checks.check_loader(data, PATH)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
