"""Finding the dropout layers of a model, and what each is configured to drop."""

from __future__ import annotations

import numbers
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.dropout import _DropoutNd

from dropoutlib.nn.dropout import Dropout, StandardDropout

__all__ = [
    "dropout_layers",
]

_FUNCTIONAL_DROPOUTS = (F.dropout, F.dropout1d, F.dropout2d, F.dropout3d, F.alpha_dropout)
_CHANNEL_WISE = {nn.Dropout1d: 2, nn.Dropout2d: 3, nn.Dropout3d: 4}  # class: ndim of an unbatched input
_NON_ZEROING = (nn.AlphaDropout, nn.FeatureAlphaDropout)


def _zeroes_units(module: nn.Module) -> bool:
    """False for layers whose noise is not "zero a unit with probability p": alpha dropout, and the
    layers of :mod:`dropoutlib.nn` (they mark themselves ``dropout_variant = True``)."""
    return not isinstance(module, _NON_ZEROING) and not getattr(type(module), "dropout_variant", False)


def _is_dropout_layer(module: nn.Module) -> bool:
    if isinstance(module, _DropoutNd | Dropout | StandardDropout):
        return True
    return "Dropout" in type(module).__name__ and next(module.children(), None) is None


def dropout_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The dropout layers of ``model``, as ``(name, module)`` pairs in the order of ``named_modules()``.

    A submodule counts as a dropout layer if it is an instance of one of torch's dropout classes
    (``torch.nn.modules.dropout._DropoutNd``: ``nn.Dropout``, ``nn.Dropout1d/2d/3d``, ``nn.AlphaDropout``,
    ``nn.FeatureAlphaDropout``), of :class:`dropoutlib.Dropout` or :class:`dropoutlib.StandardDropout`, or
    if it is a leaf module (no children) whose class name contains ``"Dropout"`` (hand-written layers;
    the leaf condition keeps containers such as ``MyDropoutNet`` out). The model itself is named ``""``.
    Dropout called as a function inside ``forward`` has no module and is not listed.

    Example:
        >>> from dropoutlib.course.models import mlp
        >>> dropout_layers(mlp(4, [8], 2, p=0.5, input_p=0.2))
        [('0', Dropout(p=0.2, inplace=False)), ('3', Dropout(p=0.5, inplace=False))]
        >>> dropout_layers(nn.Linear(2, 2))
        []
    """
    _check_model(model)
    return [(name, module) for name, module in model.named_modules() if _is_dropout_layer(module)]


def _configured_p(module: nn.Module) -> float | None:
    """The layer's drop probability ``module.p`` when it has one that is a probability, else None."""
    p = getattr(module, "p", None)
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0.0 <= float(p) <= 1.0:
        return None
    return float(p)


# ----------------------------------------------------------------------------------------------------
# Finding dropout layers, validating arguments, leaving the model as it was


def _check_model(model: Any) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got model={model!r} ({type(model).__name__})")
    return model


def _check_x(x: Any) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor (a batch of inputs), got x of type {type(x).__name__}")
    if x.numel() == 0:
        raise ValueError(f"x must hold at least one input, got an empty tensor of shape {tuple(x.shape)}")
    return x
