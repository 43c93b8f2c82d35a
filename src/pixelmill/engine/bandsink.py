"""Where a model's output bands go: straight into the following steps through a pipe, or
into a spool file first when a later step needs random access.

Streaming runs the model on a thread that writes a PNG into an OS pipe while libvips reads it
on the other end, so inference, the steps after it and the encoder all work at once, and the
pipe's few megabytes are all the output held between them. A step that reads out of order (a
rotation, a smart crop) gets the output from a PNG spool on disk once the model is done.
"""

from __future__ import annotations

import fcntl
import os
import select
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import pyvips

from pixelmill.codecs import classify
from pixelmill.engine.pngstream import PngBandWriter, Sink
from pixelmill.engine.tiled import ModelRun
from pixelmill.errors import Cancelled, LimitError

Progress = Callable[[float], None]
PIPE_BYTES = 1 << 20
"""Pipe buffer asked for (Linux's default limit for an unprivileged process)."""
F_SETPIPE_SZ = 1031


def write_png(run: ModelRun, out: Sink, progress: Progress | None = None) -> None:
    """The model's whole output as a PNG into ``out``."""
    writer = PngBandWriter(out, run.width, run.height, run.bands, run.depth)
    for rows in run.output_bands(progress):
        writer.write(rows)
    writer.close()


def spooled(run: ModelRun, path: Path, progress: Progress | None = None) -> pyvips.Image:
    """Run the model to the end into a PNG at ``path``; the output read back for random
    access (``path`` must live as long as the image)."""
    with open(path, "wb") as out:
        write_png(run, out, progress)
    return run.finish(pyvips.Image.new_from_file(str(path), access="random"))


class Stream:
    """A context giving the model's output as a sequential lazy image while a thread computes
    it; on the way out the thread is stopped and joined, and if the run failed because the
    model failed, the model's error is raised."""

    def __init__(self, run: ModelRun, source: str, progress: Progress | None = None) -> None:
        self._run, self._source, self._progress = run, source, progress
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> pyvips.Image:
        read_end, write_end = os.pipe()
        try:
            fcntl.fcntl(write_end, F_SETPIPE_SZ, PIPE_BYTES)
        except OSError:
            pass  # the default size works, with more switches between the two ends
        os.set_blocking(write_end, False)
        self._thread = threading.Thread(target=self._produce, args=(write_end,),
                                        name="pixelmill-model", daemon=True)  # fmt: skip
        self._thread.start()
        try:
            source = pyvips.Source.new_from_descriptor(read_end)  # libvips keeps a duplicate
            return self._run.finish(pyvips.Image.pngload_source(source, access="sequential"))
        except pyvips.Error as exc:
            self._end()
            raise self._failure() or classify(str(exc), self._source) from None
        finally:
            os.close(read_end)

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:  # fmt: skip
        self._end()
        failure = self._failure()
        if exc is not None and failure is not None and not isinstance(exc, Cancelled | LimitError):
            raise failure from None

    def _end(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _failure(self) -> BaseException | None:
        if isinstance(self._error, pyvips.Error):
            return classify(str(self._error), self._source)
        return self._error

    def _produce(self, descriptor: int) -> None:
        try:
            write_png(self._run, _PipeWriter(descriptor, self._stop), self._progress)
        except _Stopped:
            pass
        except BaseException as exc:  # noqa: BLE001  # handed to the reading side, which raises it
            self._error = exc
        finally:
            os.close(descriptor)


class _Stopped(Exception):
    """The reading side has finished or given up."""


class _PipeWriter:
    """Writes to a non-blocking pipe, giving up when told to or when the reader is gone."""

    def __init__(self, descriptor: int, stop: threading.Event) -> None:
        self._descriptor, self._stop = descriptor, stop

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            if self._stop.is_set():
                raise _Stopped
            if not select.select([], [self._descriptor], [], 0.1)[1]:
                continue
            try:
                view = view[os.write(self._descriptor, view) :]
            except BlockingIOError:
                continue
            except BrokenPipeError:
                raise _Stopped from None
