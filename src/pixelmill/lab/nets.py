"""Small, fast convolutional nets for CPU tiles, each knowing its exact receptive field.

One family serves every task: convolutions with ReLU between them, a last 3×3 convolution to
3·scale² channels, and for upscalers a pixel shuffle (ESPCN, Shi et al. 2016); its output is
added to a base, bicubic upscaling for super-resolution and the input itself for restoration
(residual learning, as VDSR and DnCNN). Input and output are N×3×H×W RGB in 0..1.

Restoration nets may work on pixel-unshuffled input (space to depth, as FFDNet, Zhang et al.
2018): each u×u block of pixels becomes one position with 3·u² channels and the output is
shuffled back. A net u² times wider costs the same per pixel and sees u times further, which
JPEG's 8×8 blocks call for.

The bicubic base is computed as a fixed grouped 5×5 convolution to the same 3·scale² phases,
added before the pixel shuffle: it equals torch's bicubic interpolation (edges replicated) and
exports to Pad and Conv, which onnxruntime runs many times faster than its cubic Resize.

Architectures are named stacks of (kernel, width) pairs; a recipe may change the widths.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from pixelmill.errors import UsageError

ARCHITECTURES: dict[str, tuple[tuple[int, int], ...]] = {
    "espcn": ((5, 64), (3, 32)),
    "fsrcnn": ((5, 56), (1, 12), (3, 12), (3, 12), (3, 12), (3, 12), (1, 56)),
    "dncnn": ((3, 32),) * 6,
    "dncnn-s2": ((3, 64),) * 8,
}
"""Hidden layers as (kernel side, output channels); the last 3×3 convolution is added."""
UNSHUFFLED = {"dncnn-s2": 2}
"""Architectures that run on pixel-unshuffled input, by their block side (scale 1 only)."""
BICUBIC_RADIUS = 2
"""Input pixels bicubic upscaling reaches beyond the one an output pixel lies in."""
LAST_LAYER_GAIN = 0.1
"""The last convolution starts small, so a new net starts close to its base."""
BICUBIC = "bicubic"
"""Name of the bicubic base's fixed weight: a buffer in torch, an initializer in ONNX."""


@dataclass(frozen=True)
class NetSpec:
    """What builds a net: the architecture, its widths, and the scale."""

    arch: str
    scale: int
    widths: tuple[int, ...] = ()
    """Channels of each hidden layer (default: the architecture's)."""

    def __post_init__(self) -> None:
        if self.arch not in ARCHITECTURES:
            raise UsageError(f"arch {self.arch!r} is not one of {', '.join(ARCHITECTURES)}")
        if self.unshuffle > 1 and self.scale > 1:
            raise UsageError(f"arch {self.arch!r} is for restoration (scale 1), not ×{self.scale}")
        layers = len(ARCHITECTURES[self.arch])
        if self.widths and (len(self.widths) != layers or min(self.widths) < 1):
            raise UsageError(f"widths {list(self.widths)}: {self.arch} needs {layers} "
                             "positive widths, one a hidden layer")  # fmt: skip

    @property
    def layers(self) -> tuple[tuple[int, int], ...]:
        base = ARCHITECTURES[self.arch]
        return tuple(zip((k for k, _ in base), self.widths)) if self.widths else base

    @property
    def unshuffle(self) -> int:
        """Side of the pixel blocks the net sees as one position (1: plain pixels)."""
        return UNSHUFFLED.get(self.arch, 1)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ConvNet(nn.Module):
    """Convolutions over the input less 0.5, pixel-shuffled for upscaling, added to the
    bicubic upscale (scale above 1) or to the input (scale 1)."""

    def __init__(self, spec: NetSpec) -> None:
        super().__init__()
        self.spec = spec
        layers: list[nn.Module] = []
        channels = 3 * spec.unshuffle**2
        for kernel, width in spec.layers:
            hidden = nn.Conv2d(channels, width, kernel, padding=kernel // 2)
            nn.init.kaiming_normal_(hidden.weight, nonlinearity="relu")  # keeps signals alive
            nn.init.zeros_(hidden.bias)
            layers += [hidden, nn.ReLU()]
            channels = width
        last = nn.Conv2d(channels, 3 * (spec.scale * spec.unshuffle) ** 2, 3, padding=1)
        with torch.no_grad():
            last.weight.mul_(LAST_LAYER_GAIN)
            last.bias.zero_()
        layers.append(last)
        self.body = nn.Sequential(*layers)
        if spec.scale > 1:  # not saved: a function of the scale alone
            self.register_buffer(BICUBIC, bicubic_phases(spec.scale), persistent=False)

    @property
    def receptive_field(self) -> int:
        """Radius, in input pixels, of the input one output pixel depends on: the sum of the
        convolutions' radii (in blocks of ``unshuffle`` pixels, plus the block's own reach),
        or bicubic upscaling's reach if larger."""
        block = self.spec.unshuffle
        radius = block * (sum(k // 2 for k, _ in self.spec.layers) + 1) + block - 1
        return max(radius, BICUBIC_RADIUS) if self.spec.scale > 1 else radius

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale, block = self.spec.scale, self.spec.unshuffle
        if block > 1:  # sides padded to whole blocks, by repeating the last row and column
            height, width = x.shape[-2:]
            padded = F.pad(x - 0.5, (0, -width % block, 0, -height % block), mode="replicate")
            residual = F.pixel_shuffle(self.body(F.pixel_unshuffle(padded, block)), block)
            return x + residual[..., :height, :width]
        if scale == 1:
            return x + self.body(x - 0.5)
        pad = BICUBIC_RADIUS
        weight = getattr(self, BICUBIC)
        base = F.conv2d(F.pad(x, (pad, pad, pad, pad), mode="replicate"), weight, groups=3)
        return F.pixel_shuffle(base + self.body(x - 0.5), scale)


def bicubic_phases(scale: int) -> torch.Tensor:
    """Bicubic upscaling by ``scale`` (align_corners false, as ``F.interpolate``) as the
    weight of a grouped convolution over the input padded by 2: 3·scale² × 1 × 5 × 5, one
    kernel per output phase in pixel-shuffle order. The kernels are read from torch's own
    interpolation of an impulse, so the two agree to rounding."""
    side, centre = 2 * BICUBIC_RADIUS + 1, 2 * BICUBIC_RADIUS
    impulse = torch.zeros(1, 1, 2 * centre + 1, 2 * centre + 1)
    impulse[..., centre, centre] = 1
    with torch.no_grad():
        up = F.interpolate(impulse, scale_factor=scale, mode="bicubic", align_corners=False)[0, 0]
    # output pixel scale·i + r reads input i + k − 2 with weight up[scale·(centre + 2 − k) + r]
    taps = scale * (centre + BICUBIC_RADIUS - torch.arange(side))
    phases = torch.arange(scale)
    rows = taps[None, :] + phases[:, None]  # phase × tap
    kernels = up[rows[:, None, :, None], rows[None, :, None, :]]  # ry × rx × ky × kx
    return kernels.reshape(scale * scale, 1, side, side).repeat(3, 1, 1, 1).contiguous()


def parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())
