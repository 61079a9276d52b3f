"""Small networks: :func:`mlp` builds the multilayer perceptrons every chapter trains."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from torch import nn

from dropoutlib._validation import check_positive_int, check_probability

__all__ = ["mlp"]


def _check_factory(value: Any, name: str) -> None:
    if not callable(value):
        raise TypeError(
            f"{name} must be a callable that returns an nn.Module (e.g. a class such as nn.ReLU), "
            f"got {name}={value!r} ({type(value).__name__})"
        )


def mlp(
    in_features: int,
    hidden: Sequence[int],
    out_features: int,
    p: float = 0.0,
    input_p: float = 0.0,
    activation: Callable[[], nn.Module] = nn.ReLU,
    dropout_layer: Callable[[float], nn.Module] = nn.Dropout,
) -> nn.Sequential:
    r"""A multilayer perceptron with optional dropout on its inputs and after each hidden layer.

    For hidden widths :math:`h_1, \dots, h_L` the network computes

    .. math::

        a_0 = \tilde D_{p_{\text{in}}}(x), \qquad
        a_l = D_p\big(\phi(W_l a_{l-1} + b_l)\big) \ (l = 1, \dots, L), \qquad
        \hat y = W_{L+1} a_L + b_{L+1},

    where :math:`\phi` is ``activation``, :math:`D_p` is ``dropout_layer(p)`` and
    :math:`\tilde D_{p_{\text{in}}}` is ``dropout_layer(input_p)``. Layer order in the returned
    ``nn.Sequential``::

        [Dropout(input_p)]  Linear act [Dropout(p)]  ...  Linear act [Dropout(p)]  Linear

    A dropout layer is inserted only when its probability is positive, and never after the last
    ``Linear``: the outputs (logits, or regression values) are not dropped. ``hidden=[]`` gives a
    single ``Linear`` layer (logistic or linear regression, with ``input_p`` its only dropout).

    Args:
        in_features: number of inputs, a positive int.
        hidden: widths of the hidden layers, a sequence of positive ints (may be empty).
        out_features: number of outputs (classes, or 1 for regression).
        p: dropout probability after every hidden activation, in ``[0, 1]``.
        input_p: dropout probability on the inputs, in ``[0, 1]``.
        activation: called with no arguments to make each hidden activation (default ``nn.ReLU``).
        dropout_layer: called with a probability to make each dropout layer. Default
            ``torch.nn.Dropout``; ``dropoutlib.Dropout`` computes the same numbers (same masks for
            the same seed) and can be passed instead.

    Shapes: input ``(n, in_features)``, output ``(n, out_features)``.

    Example:
        >>> mlp(64, [32], 10, p=0.5)
        Sequential(
          (0): Linear(in_features=64, out_features=32, bias=True)
          (1): ReLU()
          (2): Dropout(p=0.5, inplace=False)
          (3): Linear(in_features=32, out_features=10, bias=True)
        )
        >>> mlp(64, [], 10)
        Sequential(
          (0): Linear(in_features=64, out_features=10, bias=True)
        )
    """
    in_features = check_positive_int(in_features, "in_features")
    out_features = check_positive_int(out_features, "out_features")
    if isinstance(hidden, str | bytes) or not isinstance(hidden, Sequence):
        raise TypeError(
            "hidden must be a sequence of layer widths such as [256, 256] (or [] for none), "
            f"got hidden={hidden!r} ({type(hidden).__name__})"
        )
    widths = [check_positive_int(width, f"hidden[{i}]") for i, width in enumerate(hidden)]
    p = check_probability(p, "p")
    input_p = check_probability(input_p, "input_p")
    if not widths and p > 0:
        raise ValueError(
            f"p={p!r} would have no effect: there are no hidden layers to drop "
            "(use input_p to drop inputs, or p=0)"
        )
    _check_factory(activation, "activation")
    _check_factory(dropout_layer, "dropout_layer")

    layers: list[nn.Module] = []
    if input_p > 0:
        layers.append(dropout_layer(input_p))
    width_in = in_features
    for width in widths:
        layers += [nn.Linear(width_in, width), activation()]
        if p > 0:
            layers.append(dropout_layer(p))
        width_in = width
    layers.append(nn.Linear(width_in, out_features))
    for layer in layers:
        if not isinstance(layer, nn.Module):
            raise TypeError(
                f"activation and dropout_layer must return nn.Module instances, got {layer!r}"
            )
    return nn.Sequential(*layers)
