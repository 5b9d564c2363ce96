"""torchvision's SqueezeExcitation (torchvision/ops/misc.py), for any spatial rank: the same
module names (avgpool, fc1, fc2, activation, scale_activation), so its state_dict and its leaf
modules are torchvision's. Imported only by the builder (the `squeeze-excitation` layer type)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

ACTIVATIONS: dict[str, Any] = {"relu": nn.ReLU, "silu": nn.SiLU, "sigmoid": nn.Sigmoid, "hardsigmoid": nn.Hardsigmoid}


class SqueezeExcitation(nn.Module):
    def __init__(self, channels: int, squeeze: int, rank: int = 2, act: str = "relu", gate: str = "sigmoid") -> None:
        super().__init__()
        pool: Any = (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d)[rank - 1]
        conv: Any = (nn.Conv1d, nn.Conv2d, nn.Conv3d)[rank - 1]
        self.avgpool = pool(1)
        self.fc1 = conv(channels, squeeze, 1)
        self.fc2 = conv(squeeze, channels, 1)
        self.activation = ACTIVATIONS[act]()
        self.scale_activation = ACTIVATIONS[gate]()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x)))))
        return scale * x
