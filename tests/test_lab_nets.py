"""The lab's nets: shapes, size, and a receptive field that is exact."""

from __future__ import annotations

import pytest
import torch

from pixelmill.errors import UsageError
from pixelmill.lab.nets import ARCHITECTURES, UNSHUFFLED, ConvNet, NetSpec, parameters

torch.set_num_threads(1)


def support_radius(net: ConvNet) -> int:
    """How far from an input pixel the inputs reach that its output pixels depend on,
    measured from the gradient of those outputs."""
    scale, side = net.spec.scale, 2 * net.receptive_field + 9
    image = torch.rand(1, 3, side, side, requires_grad=True)
    centre = side // 2
    outputs = net(image)[..., centre * scale : (centre + 1) * scale,
                         centre * scale : (centre + 1) * scale]  # fmt: skip
    outputs.sum().backward()
    ys, xs = torch.nonzero(image.grad.abs().sum(dim=(0, 1)), as_tuple=True)
    return int(max((ys - centre).abs().max(), (xs - centre).abs().max()))


@pytest.mark.parametrize(
    ("arch", "scale"),
    [("espcn", 2), ("espcn", 4), ("fsrcnn", 3), ("fsrcnn", 1), ("dncnn", 1), ("dncnn", 2),
     ("dncnn-s2", 1)],
)
def test_receptive_field_is_exact(arch: str, scale: int) -> None:
    torch.manual_seed(0)
    net = ConvNet(NetSpec(arch, scale))
    assert support_radius(net) == net.receptive_field
    image = torch.rand(2, 3, 19, 23)
    assert net(image).shape == (2, 3, 19 * scale, 23 * scale)


@pytest.mark.parametrize("scale", [2, 4])
def test_bicubic_base_reaches_two_pixels(scale: int) -> None:
    net = ConvNet(NetSpec("espcn", scale))
    with torch.no_grad():
        for layer in net.body:
            if isinstance(layer, torch.nn.Conv2d):
                layer.weight.zero_()
    assert support_radius(net) == 2


def test_a_new_net_starts_close_to_its_base() -> None:
    torch.manual_seed(0)
    image = torch.rand(1, 3, 32, 32)
    for arch, scale in (("espcn", 2), ("dncnn", 1)):
        net = ConvNet(NetSpec(arch, scale))
        base = image if scale == 1 else torch.nn.functional.interpolate(
            image, scale_factor=scale, mode="bicubic")  # fmt: skip
        assert (net(image) - base).abs().mean() < 0.05


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_nets_are_small(arch: str) -> None:
    count = parameters(ConvNet(NetSpec(arch, 1 if arch in UNSHUFFLED else 4)))
    assert 2_000 <= count <= 2**21 // 4  # at most 2 MB of float32 weights


def test_an_unshuffled_net_takes_any_size_and_restores_only() -> None:
    torch.manual_seed(0)
    net = ConvNet(NetSpec("dncnn-s2", 1))
    for height, width in ((1, 1), (2, 5), (17, 16)):
        image = torch.rand(1, 3, height, width)
        assert net(image).shape == image.shape
    odd = torch.rand(1, 3, 17, 21)  # sides are padded to whole blocks by repeating the last
    even = torch.nn.functional.pad(odd, (0, 1, 0, 1), mode="replicate")
    with torch.no_grad():
        assert torch.allclose(net(odd), net(even)[..., :17, :21], atol=1e-6)
    with pytest.raises(UsageError, match="restoration"):
        NetSpec("dncnn-s2", 2)


@pytest.mark.parametrize("scale", [2, 3, 4, 8])
def test_the_bicubic_base_is_torch_bicubic_interpolation(scale: int) -> None:
    net = ConvNet(NetSpec("espcn", scale, (4, 4)))
    with torch.no_grad():
        net.body[-1].weight.zero_()
        image = torch.rand(2, 3, 13, 17)
        expected = torch.nn.functional.interpolate(image, scale_factor=scale, mode="bicubic",
                                                   align_corners=False)  # fmt: skip
        assert (net(image) - expected).abs().max() < 1e-5
    assert "bicubic" not in net.state_dict()  # a function of the scale, not a weight
