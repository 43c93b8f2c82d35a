"""PyTorch checkpoints of the community's restoration networks, exported to ONNX through
spandrel, which recognises ESRGAN, Real-ESRGAN's compact net, SwinIR, HAT, DAT, SPAN and many
more from their state dicts alone (``pip install 'pixelmill[import]'``).

Checkpoints are read only as data: pickles through spandrel's restricted unpickler (a ``.pt``
file is read as a pickle too, never as TorchScript, which would run the file's code), and
safetensors as tensors.
"""

from __future__ import annotations

import contextlib
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

from pixelmill import storage
from pixelmill.errors import ModelError

OPSET = 17
PROBE_SIDE = 64


@contextlib.contextmanager
def exported(url: str, name: str = "") -> Iterator[tuple[Path, str, int]]:
    """The checkpoint at ``url`` as ONNX in a temporary folder (named ``name`` or after the
    checkpoint), what spandrel recognised, and the step its sides must be multiples of."""
    loader = _loader()
    source = storage.locate(url)
    with tempfile.TemporaryDirectory(prefix="pixelmill-import-") as folder:
        suffix = ".safetensors" if source.name.lower().endswith(".safetensors") else ".pth"
        local = Path(folder) / f"checkpoint{suffix}"
        local.write_bytes(storage.read_bytes(source))
        try:
            descriptor = loader.load_from_file(local)
        except Exception as exc:  # noqa: BLE001  # spandrel raises many types for foreign files
            raise ModelError(f"{url}: spandrel does not recognise this checkpoint: "
                             f"{type(exc).__name__}: {exc}") from None  # fmt: skip
        described, align = _checked(descriptor, url)
        target = Path(folder) / f"{name or Path(source.name).stem}.onnx"
        _export(descriptor, target, align)
        yield target, described, align


def _loader() -> object:
    try:
        from spandrel import ModelLoader
    except Exception as exc:  # noqa: BLE001  # a broken torchvision raises RuntimeError
        raise ModelError("PyTorch checkpoints need spandrel with a working torch and "
                         "torchvision: pip install 'pixelmill[import]' (importing it failed: "
                         f"{type(exc).__name__}: {exc})") from None  # fmt: skip
    return ModelLoader(device="cpu")


def _checked(descriptor: object, url: str) -> tuple[str, int]:
    """What the descriptor says, in words, and its alignment; refused where pixelmill cannot
    run it."""
    from spandrel import ImageModelDescriptor, ModelTiling

    arch = descriptor.architecture.name  # type: ignore[attr-defined]
    if not isinstance(descriptor, ImageModelDescriptor):
        raise ModelError(f"{url}: spandrel recognises {arch}, which needs more than one image "
                         "(an inpainting mask); pixelmill runs single-image models")
    if descriptor.tiling == ModelTiling.INTERNAL:
        raise ModelError(f"{url}: {arch} must see the whole image (it tiles internally); "
                         "pixelmill cannot tile it")  # fmt: skip
    channels = (descriptor.input_channels, descriptor.output_channels)
    if channels not in ((3, 3), (1, 1)):
        raise ModelError(f"{url}: {arch} maps {channels[0]} channel(s) to {channels[1]}; "
                         "pixelmill runs 3 to 3 or 1 to 1")  # fmt: skip
    needs = descriptor.size_requirements
    if needs.square:
        raise ModelError(f"{url}: {arch} takes square images only; pixelmill tiles are not "
                         "always square")  # fmt: skip
    return (f"spandrel: {arch}, ×{descriptor.scale}, {channels[0]} channel(s), sides a "
            f"multiple of {needs.multiple_of}"), needs.multiple_of  # fmt: skip


def _export(descriptor: object, target: Path, align: int) -> None:
    import torch

    model = descriptor.model.eval()  # type: ignore[attr-defined]
    needs = descriptor.size_requirements  # type: ignore[attr-defined]
    side = -(-max(PROBE_SIDE, needs.minimum) // align) * align
    dummy = torch.rand(1, descriptor.input_channels, side, side)  # type: ignore[attr-defined]
    axes = {0: "n", 2: "h", 3: "w"}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (dummy,), str(target), input_names=["image"],
                          output_names=["output"], opset_version=OPSET, dynamo=False,
                          dynamic_axes={"image": axes, "output": axes})  # fmt: skip
