"""Running models with onnxruntime: sessions made once per process and reused, execution
providers chosen from what is installed, threads set explicitly, and every model checked
against its manifest when it loads."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

import numpy as np

from pixelmill.config import Settings
from pixelmill.errors import ModelError
from pixelmill.models.manifest import Manifest
from pixelmill.models.registry import ModelFile, find

PREFERRED_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")
_SESSIONS: dict[tuple[str, float, int], Session] = {}
_LOCK = threading.Lock()


@dataclass
class Session:
    """A loaded model, ready to run batches of tiles."""

    manifest: Manifest
    providers: tuple[str, ...]
    _session: object
    _input: str
    _dtype: type

    @property
    def on_gpu(self) -> bool:
        return self.providers[0] != "CPUExecutionProvider"

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Run an N×C×H×W float32 batch in the manifest's value range."""
        feed = {self._input: batch.astype(self._dtype, copy=False)}
        out = self._session.run(None, feed)[0]  # type: ignore[attr-defined]
        return out.astype(np.float32, copy=False)


def session_for(name: str, settings: Settings) -> Session:
    """The process-wide session of a named model, loaded on first use."""
    return load_session(find(name, settings), settings)


def load_session(model: ModelFile, settings: Settings) -> Session:
    key = (str(model.path), model.path.stat().st_mtime, settings.threads)
    with _LOCK:
        if key not in _SESSIONS:
            _SESSIONS[key] = _load(model, settings)
        return _SESSIONS[key]


def _load(model: ModelFile, settings: Settings) -> Session:
    import onnxruntime as ort

    manifest = model.manifest
    options = ort.SessionOptions()
    options.intra_op_num_threads = settings.threads or (os.cpu_count() or 1)
    options.inter_op_num_threads = 1
    available = ort.get_available_providers()
    providers = tuple(p for p in PREFERRED_PROVIDERS if p in available) + ("CPUExecutionProvider",)
    try:
        session = ort.InferenceSession(str(model.path), options, providers=list(providers))
    except Exception as exc:  # onnxruntime raises its own exception types
        reason = str(exc).rsplit("failed:", 1)[-1].strip()
        raise ModelError(f"model {manifest.name}: cannot load its ONNX file: {reason}") from None
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1 or len(outputs) < 1:
        raise ModelError(f"model {manifest.name}: takes {len(inputs)} inputs; tiling needs one")
    shape = inputs[0].shape
    fixed_channels = isinstance(shape[1], int) if len(shape) == 4 else False
    if len(shape) != 4 or fixed_channels and shape[1] != manifest.channels:
        raise ModelError(f"model {manifest.name}: input shape {shape} is not N×{manifest.channels}×H×W")
    dtype = np.float16 if inputs[0].type == "tensor(float16)" else np.float32
    loaded = Session(manifest, tuple(session.get_providers()), session, inputs[0].name, dtype)
    _probe(loaded)
    return loaded


def _probe(session: Session) -> None:
    """Run a small tile and check the output shape against the manifest."""
    manifest = session.manifest
    side = 2 * manifest.receptive_field + 8
    try:
        out = session.run(np.zeros((1, manifest.channels, side, side), np.float32))
    except Exception as exc:
        raise ModelError(f"model {manifest.name}: fails on a {side}×{side} tile: {exc}") from None
    expected = (1, manifest.channels, side * manifest.scale, side * manifest.scale)
    if out.shape != expected:
        raise ModelError(
            f"model {manifest.name}: a {side}×{side} input gives output {out.shape}; the manifest "
            f"(scale {manifest.scale}, {manifest.channels} channels) means {expected}"
        )
