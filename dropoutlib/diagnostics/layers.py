"""Finding the dropout layers of a model, and what each is configured to drop."""

from __future__ import annotations

import numbers
from typing import Any

import torch.nn.functional as F
from torch import nn
from torch.nn.modules.dropout import _DropoutNd

from dropoutlib.nn._base import DropoutLayer
from dropoutlib.nn.dropout import Dropout, StandardDropout

__all__ = [
    "dropout_layers",
]

_FUNCTIONAL_DROPOUTS = (F.dropout, F.dropout1d, F.dropout2d, F.dropout3d, F.alpha_dropout)
_CHANNEL_WISE = {nn.Dropout1d: 2, nn.Dropout2d: 3, nn.Dropout3d: 4}  # class: ndim of an unbatched input
_NON_ZEROING = (nn.AlphaDropout, nn.FeatureAlphaDropout)
#: Class names (substrings) of the leaf modules counted as dropout layers: hand-written dropout, and
#: stochastic depth (timm's ``DropPath``, torchvision's ``StochasticDepth``), which drops whole examples.
_DROPOUT_NAMES = ("Dropout", "DropPath", "StochasticDepth")
_STOCHASTIC_DEPTH_NAMES = ("DropPath", "StochasticDepth")


def _zeroes_units(module: nn.Module) -> bool:
    """False for layers whose noise is not "zero a unit with probability p": alpha dropout, and the
    layers of :mod:`dropoutlib.nn` (they mark themselves ``dropout_variant = True``)."""
    return not isinstance(module, _NON_ZEROING) and not getattr(type(module), "dropout_variant", False)


def _is_dropout_layer(module: nn.Module) -> bool:
    if isinstance(module, _DropoutNd | Dropout | StandardDropout):
        return True
    name = type(module).__name__
    return any(word in name for word in _DROPOUT_NAMES) and next(module.children(), None) is None


def _is_stochastic_depth(module: nn.Module) -> bool:
    """A stochastic-depth layer (by class name): it drops whole examples, or with torchvision's
    ``mode="batch"`` the whole batch, rather than single units."""
    return any(word in cls.__name__ for cls in type(module).__mro__ for word in _STOCHASTIC_DEPTH_NAMES)


def _knows_its_inplace(module: nn.Module) -> bool:
    """True for the layers of torch and dropoutlib, which change their input only when ``inplace=True``;
    a hand-written layer may change it without saying so."""
    return isinstance(module, _DropoutNd | DropoutLayer)


def _may_change_its_input(module: nn.Module) -> bool:
    return not _knows_its_inplace(module) or getattr(module, "inplace", False) is True


def _attention_dropouts(model: nn.Module) -> list[tuple[str, nn.Module, float]]:
    """The ``nn.MultiheadAttention`` modules of ``model`` with ``dropout > 0``, as ``(name, module, p)``:
    their dropout acts on the attention weights inside the module, where no hook can read its masks."""
    found = []
    for name, module in model.named_modules():
        if isinstance(module, nn.MultiheadAttention):
            p = getattr(module, "dropout", 0.0)
            if isinstance(p, numbers.Real) and not isinstance(p, bool) and float(p) > 0.0:
                found.append((name, module, float(p)))
    return found


def dropout_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The dropout layers of ``model``, as ``(name, module)`` pairs in the order of ``named_modules()``.

    A submodule counts as a dropout layer if it is an instance of one of torch's dropout classes
    (``torch.nn.modules.dropout._DropoutNd``: ``nn.Dropout``, ``nn.Dropout1d/2d/3d``, ``nn.AlphaDropout``,
    ``nn.FeatureAlphaDropout``), of :class:`dropoutlib.Dropout` or :class:`dropoutlib.StandardDropout`, or
    if it is a leaf module (no children) whose class name contains ``"Dropout"`` (hand-written layers;
    the leaf condition keeps containers such as ``MyDropoutNet`` out), ``"DropPath"`` or
    ``"StochasticDepth"`` (stochastic depth: timm's ``DropPath``, torchvision's ``StochasticDepth``,
    dropoutlib's :class:`~dropoutlib.nn.DropPath`). The model itself is named ``""``. Dropout called as a
    function inside ``forward`` has no module and is not listed, nor is the attention dropout of
    ``nn.MultiheadAttention`` (an argument of the module, not a submodule).

    Example:
        >>> from dropoutlib.course.models import mlp
        >>> dropout_layers(mlp(4, [8], 2, p=0.5, input_p=0.2))
        [('0', Dropout(p=0.2, inplace=False)), ('3', Dropout(p=0.5, inplace=False))]
        >>> dropout_layers(nn.Linear(2, 2))
        []
        >>> class DropPath(nn.Module):  # stochastic depth, as timm names it
        ...     def __init__(self, drop_prob):
        ...         super().__init__()
        ...         self.drop_prob = drop_prob
        >>> dropout_layers(nn.Sequential(nn.Linear(2, 2), DropPath(0.1)))
        [('1', DropPath())]
    """
    _check_model(model)
    return [(name, module) for name, module in model.named_modules() if _is_dropout_layer(module)]


def _configured_p(module: nn.Module) -> float | None:
    """The layer's drop probability ``module.p`` (or timm's ``module.drop_prob``) when it has one that is
    a probability, else None."""
    p = getattr(module, "p", None)
    if p is None:
        p = getattr(module, "drop_prob", None)
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0.0 <= float(p) <= 1.0:
        return None
    return float(p)


# ----------------------------------------------------------------------------------------------------
# Finding dropout layers, validating arguments, leaving the model as it was


def _check_model(model: Any) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got model={model!r} ({type(model).__name__})")
    return model
