"""One helper for the many functions that switch a model's modes and must put them back.

Example:
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5))
    >>> with restored_modes(model):
    ...     _ = model.eval()
    >>> model.training, model[1].training
    (True, True)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn


@contextmanager
def restored_modes(model: nn.Module) -> Iterator[nn.Module]:
    """Give every submodule of ``model`` back its ``training`` flag on exit, also after an exception."""
    modes = [module.training for module in model.modules()]
    try:
        yield model
    finally:
        for module, mode in zip(model.modules(), modes, strict=True):
            module.training = mode
