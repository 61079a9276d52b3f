"""Alpha dropout (Klambauer et al., 2017): dropout for SELU networks that keeps mean and variance."""

from __future__ import annotations

import math
from typing import ClassVar

import torch

from dropoutlib._validation import (
    check_bool,
    check_floating,
    check_generator,
    check_probability,
)
from dropoutlib.nn._base import DropoutLayer, _zeros_like_product
from dropoutlib.nn.dropout import DropoutFunction

__all__ = [
    "SELU_SATURATION",
    "alpha_dropout",
    "AlphaDropout",
]

# SELU(x) = lambda * x for x > 0 and lambda * alpha * (exp(x) - 1) for x <= 0 (Klambauer et al., 2017);
# as x -> -inf it tends to -lambda * alpha, the value alpha dropout gives to dropped units. This is the
# constant ATen uses (1.7580993408473766 with the sign flipped), so that the results agree bit for bit.
_SELU_LAMBDA_ALPHA = 1.7580993408473766
SELU_SATURATION = -_SELU_LAMBDA_ALPHA
"""``alpha' = -lambda * alpha``, SELU's negative saturation value (about -1.7581)."""


# --- Alpha dropout ---------------------------------------------------------------------------------------


def alpha_dropout(
    input: torch.Tensor,
    p: float = 0.5,
    training: bool = True,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Alpha dropout (Klambauer et al., 2017): dropout that keeps SELU activations self-normalised.

    Zeroing a unit of a SELU network moves it to 0, which is not SELU's "off" value and changes the mean
    and variance the next layer sees. Alpha dropout sets dropped units to SELU's negative saturation
    ``a' = -lambda * alpha`` (about -1.7581, :data:`SELU_SATURATION`) and then applies the affine map that
    restores mean 0 and variance 1 (``q = 1 - p``, ``m_i ~ Bernoulli(q)``)::

        training:   y_i = a * (m_i x_i + (1 - m_i) a') + b
                    a = (q + a'^2 p q)^(-1/2),   b = -a a' p
        evaluation: y_i = x_i

    For ``x ~ N(0, 1)``: ``E[y] = a (p a') + b = 0`` and ``Var[y] = a^2 (q + a'^2 p q) = 1``. A dropped
    unit outputs ``a a' q`` (about -0.776 at ``p = 0.5``), a kept one ``a x_i + b``. ``p = 1`` returns
    zeros, the limit of ``a a' q`` as ``q -> 0``. Backward: ``dL/dx = dL/dy * a m``.

    Computed as ATen computes it: ``m`` drawn as ``bernoulli_(q)`` on a tensor of the input's shape and
    dtype, ``b_i = (m_i - 1) (lambda alpha a) + lambda alpha a p``, ``y = x * (a m) + b``. So with the same
    ``torch.manual_seed`` (or a generator seeded alike) on CPU the result is bitwise equal to
    ``torch.nn.functional.alpha_dropout(x, p, training=True)``, for any memory layout. Note torch's
    ``F.alpha_dropout`` defaults to ``training=False``; here, as for every dropout function of the
    course, the default is ``training=True``.

    Args:
        input: floating-point tensor of any shape (meant for the output of a SELU layer).
        p: probability of dropping each unit, in ``[0, 1]``.
        training: apply alpha dropout if True; return ``input`` unchanged otherwise.
        generator: optional ``torch.Generator``; default: torch's global RNG.

    Returns:
        A tensor of the shape, dtype and device of ``input``; ``input`` itself when ``training`` is False,
        ``p == 0`` or ``input`` is empty.

    Example:
        >>> x = torch.randn(200_000, generator=torch.Generator().manual_seed(0))
        >>> y = alpha_dropout(x, p=0.2, generator=torch.Generator().manual_seed(1))
        >>> abs(y.mean().item()) < 0.01, round(y.var().item(), 2)  # still mean 0, variance 1
        (True, 1.0)
        >>> _ = torch.manual_seed(3)
        >>> ours = alpha_dropout(x, p=0.2)
        >>> _ = torch.manual_seed(3)
        >>> torch.equal(ours, torch.nn.functional.alpha_dropout(x, p=0.2, training=True))
        True
    """
    p = check_probability(p)
    training = check_bool(training, "training")
    check_floating(input)
    check_generator(generator)
    if not training or p == 0.0 or input.numel() == 0:
        return input
    if p == 1.0:
        return _zeros_like_product(input)
    q = 1.0 - p
    # The same double-precision scalars, in the same order, as ATen's _dropout_impl.
    a = 1.0 / math.sqrt((_SELU_LAMBDA_ALPHA * _SELU_LAMBDA_ALPHA * p + 1) * q)
    # empty_like, as ATen: the draws follow the input's memory layout (transposed, channels_last, ...).
    kept = torch.empty_like(input).bernoulli_(q, generator=generator)
    shift = kept.add(-1).mul_(_SELU_LAMBDA_ALPHA * a).add_(_SELU_LAMBDA_ALPHA * a * p)
    return DropoutFunction.apply(input, kept.mul_(a)) + shift


class AlphaDropout(DropoutLayer):
    """Alpha dropout layer, the same computation as ``torch.nn.AlphaDropout`` (written out here).

    In training mode, dropped units are set to SELU's saturation value and an affine map restores mean 0
    and variance 1 for standard-normal input; in evaluation mode the input is returned unchanged. See
    :func:`alpha_dropout`. Use it after SELU activations (with LeCun-normal initialisation). Input of any
    shape; output of the same shape. No parameters.

    Args:
        p: probability of dropping each unit, in ``[0, 1]``. Default 0.5.

    Example:
        >>> layer = AlphaDropout(p=0.1)
        >>> layer
        AlphaDropout(p=0.1)
        >>> x = torch.randn(4, 8)
        >>> _ = torch.manual_seed(0)
        >>> ours = layer(x)
        >>> _ = torch.manual_seed(0)
        >>> torch.equal(ours, torch.nn.AlphaDropout(p=0.1)(x))
        True
    """

    dropout_variant: ClassVar[bool] = True
    function = staticmethod(alpha_dropout)

    def __init__(self, p: float = 0.5) -> None:
        super().__init__(p)
