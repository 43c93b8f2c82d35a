"""Running models with onnxruntime: sessions made once per process and reused, execution
providers chosen from what is installed, threads set explicitly, and every model checked
against its manifest when it loads."""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np

from pixelmill.config import Settings
from pixelmill.errors import ModelError
from pixelmill.models.manifest import Manifest
from pixelmill.models.pixelio import PIXELS
from pixelmill.models.prepared import Prepared, cache_folder
from pixelmill.models.registry import ModelFile, find

T = TypeVar("T")
PREFERRED_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")
_SESSIONS: dict[tuple[str, float, int], Session] = {}
_LOCK = threading.Lock()


class Session:
    """A loaded model, ready to run batches of tiles given as pixels.

    Its runtime sessions take 8- or 16-bit tiles (see :mod:`pixelmill.models.pixelio`): one
    per pixel layout met, made on first use and kept."""

    def __init__(self, model: ModelFile, options: object, providers: tuple[str, ...],
                 cache: Path | None = None) -> None:  # fmt: skip
        self.manifest: Manifest = model.manifest
        self.providers = providers
        self._prepared = Prepared(model.path, model.manifest, cache)
        self._options = options
        self._runners: dict[tuple[int, int], object] = {}
        self._lock = threading.Lock()

    @functools.cached_property
    def working_bytes(self) -> float:
        """Bytes of intermediate tensors per input pixel of a tile."""
        return self._prepared.working_bytes()

    @property
    def on_gpu(self) -> bool:
        return self.providers[0] != "CPUExecutionProvider"

    def run(self, tiles: np.ndarray) -> np.ndarray:
        """N×H×W×B tiles of uint8 or uint16 → N×(H·scale)×(W·scale)×B of the same type."""
        layout = (16 if tiles.dtype == np.uint16 else 8, tiles.shape[3])
        runner = self._runners.get(layout) or self._runner(layout)
        return runner.run(None, {PIXELS: tiles})[0]  # type: ignore[attr-defined]

    def _runner(self, layout: tuple[int, int]) -> object:
        with self._lock:
            if layout not in self._runners:
                try:
                    runner = self._session(self._prepared.wrapped(*layout))
                except Exception:  # noqa: BLE001  # onnxruntime raises its own types
                    runner = None  # perhaps a damaged cache entry: derived again below
                if runner is None:
                    wrapped = self._prepared.wrapped(*layout, fresh=True)
                    try:
                        runner = self._session(wrapped)
                    except Exception as exc:  # noqa: BLE001
                        reason = str(exc).rsplit("failed:", 1)[-1].strip()
                        raise ModelError(f"model {self.manifest.name}: cannot load: {reason}"
                                         ) from None  # fmt: skip
                self._runners[layout] = runner
            return self._runners[layout]

    def _session(self, wrapped: bytes) -> object:
        import onnxruntime as ort

        return ort.InferenceSession(wrapped, self._options, providers=list(self.providers))


def session_for(name: str, settings: Settings) -> Session:
    """The process-wide session of a named model, loaded on first use."""
    return load_session(find(name, settings), settings)


def loaded() -> list[str]:
    """Names of the models loaded in this process."""
    with _LOCK:
        return sorted({session.manifest.name for session in _SESSIONS.values()})


def load_session(model: ModelFile, settings: Settings) -> Session:
    key = (str(model.path), model.path.stat().st_mtime, settings.threads)
    with _LOCK:
        if key not in _SESSIONS:
            _SESSIONS[key] = _load(model, settings)
        return _SESSIONS[key]


def _load(model: ModelFile, settings: Settings) -> Session:
    import onnxruntime as ort

    available = ort.get_available_providers()
    providers = tuple(p for p in PREFERRED_PROVIDERS if p in available) + ("CPUExecutionProvider",)
    session = Session(model, session_options(settings), providers, cache_folder(settings))
    _probe(session)
    return session


def session_options(settings: Settings) -> object:
    """onnxruntime options: ``threads`` for each operator (every core by default), one
    operator at a time, and threads that sleep rather than spin between operators, so that
    decoding and encoding, which run beside inference, get the cores while they wait."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = settings.threads or (os.cpu_count() or 1)
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def _probe(session: Session) -> None:
    """Run a small tile and check the output shape against the manifest."""
    manifest = session.manifest
    side = -(-(2 * manifest.overlap + 8) // manifest.align) * manifest.align
    try:
        out = session.run(np.zeros((1, side, side, manifest.bands), np.uint8))
    except ModelError:
        raise
    except Exception as exc:  # noqa: BLE001  # onnxruntime raises its own types
        raise ModelError(f"model {manifest.name}: fails on a {side}×{side} tile: {exc}") from None
    expected = (1, side * manifest.scale, side * manifest.scale, manifest.bands)
    if out.shape != expected:
        raise ModelError(
            f"model {manifest.name}: a {side}×{side} input gives {out.shape[1]}×{out.shape[2]} "
            f"with {out.shape[3]} band(s); the manifest (scale {manifest.scale}, "
            f"{manifest.bands} band(s)) means {expected[1]}×{expected[2]}"
        )


def inference_session(model: ModelFile, settings: Settings, task: str, doing: str,
                      quiet: bool = False) -> object:  # fmt: skip
    """An onnxruntime session of a model whose manifest's task must be ``task`` (``doing``
    says what such a model does, for the refusal), on the preferred providers; ``quiet``
    keeps onnxruntime's warnings out of the log."""
    import onnxruntime as ort

    manifest = model.manifest
    if manifest.task != task:
        raise ModelError(f"model {manifest.name}: its task is {manifest.task!r}, not "
                         f"{task!r}: it does not {doing}")  # fmt: skip
    options = session_options(settings)
    if quiet:
        options.log_severity_level = 3
    available = ort.get_available_providers()
    providers = [p for p in PREFERRED_PROVIDERS if p in available] + ["CPUExecutionProvider"]
    try:
        return ort.InferenceSession(str(model.path), options, providers=providers)
    except Exception as exc:  # noqa: BLE001  # onnxruntime raises its own types
        raise ModelError(f"model {manifest.name}: cannot load: {exc}") from None


_ONCE: dict[tuple[str, str, float, int], object] = {}
_ONCE_LOCK = threading.Lock()


def once(kind: str, name: str, settings: Settings, make: Callable[[ModelFile], T]) -> T:
    """The process-wide ``kind`` of the named model (a detector, a classifier, an embedder),
    made by ``make`` on first use and again when the model's file changes."""
    model = find(name, settings)
    key = (kind, str(model.path), model.path.stat().st_mtime, settings.threads)
    with _ONCE_LOCK:
        if key not in _ONCE:
            _ONCE[key] = make(model)
        return _ONCE[key]  # type: ignore[return-value]
