"""Stand-ins for the stochastic-depth layers of timm and torchvision, under their class names.

timm and torchvision are not installed for the tests; dropoutlib recognises these layers by class name,
so the tests of diagnose and mc_predict use these small copies of how each library writes its layer.
"""

import torch
from torch import nn


class DropPath(nn.Module):
    """Stochastic depth as timm writes it: drop whole examples with probability drop_prob, scale by 1/q."""

    def __init__(self, drop_prob: float = 0.0) -> None:
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.drop_prob == 0.0 or not self.training:
            return x
        q = 1 - self.drop_prob
        keep = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(q)
        return x * keep / q


class StochasticDepth(nn.Module):
    """Stochastic depth as torchvision writes it (mode "row")."""

    def __init__(self, p: float, mode: str = "row") -> None:
        super().__init__()
        self.p, self.mode = p, mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        size = [x.shape[0]] + [1] * (x.ndim - 1) if self.mode == "row" else [1] * x.ndim
        keep = torch.empty(size, dtype=x.dtype).bernoulli_(1 - self.p)
        return x * keep / (1 - self.p)
