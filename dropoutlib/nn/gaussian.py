"""Gaussian dropout: multiply each unit by noise N(1, p/q) instead of a Bernoulli mask scaled by 1/q."""

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
from dropoutlib.nn._base import DropoutLayer
from dropoutlib.nn.dropout import DropoutFunction

__all__ = [
    "gaussian_dropout",
    "GaussianDropout",
]


# --- Gaussian dropout ------------------------------------------------------------------------------------


def _gaussian_p(p: float) -> float:
    p = check_probability(p)
    if p == 1.0:
        raise ValueError(
            "Gaussian dropout needs p < 1 (its noise variance p/q is infinite at p = 1), got p=1.0"
        )
    return p


def gaussian_dropout(
    input: torch.Tensor,
    p: float = 0.5,
    training: bool = True,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Gaussian (multiplicative) dropout (Srivastava et al., 2014, section 10).

    Math (elementwise, ``q = 1 - p``)::

        training:   y_i = x_i * r_i,   r_i ~ N(1, p/q)   i.e.  r_i = 1 + sqrt(p/q) * e_i,  e_i ~ N(0, 1)
        evaluation: y_i = x_i

    Why ``p/q``: inverted Bernoulli dropout multiplies by ``m_i / q`` with ``m_i ~ Bernoulli(q)``, whose
    mean is 1 and variance ``q (1 - q) / q^2 = p / q``. Gaussian dropout keeps these two moments and
    replaces the two-point distribution by a normal one, so ``E[y] = x`` and ``Var[y_i] = x_i^2 p / q``,
    as for Bernoulli dropout. (The paper writes the variance as ``(1 - p)/p`` with its ``p`` the *keep*
    probability: the same number.) ``p`` must be below 1: at ``p = 1`` the variance is infinite.
    Backward: ``dL/dx = dL/dy * r`` (the noise is a constant).

    Args:
        input: floating-point tensor of any shape.
        p: the drop probability whose Bernoulli variance is matched, in ``[0, 1)``.
        training: add the noise if True; return ``input`` unchanged otherwise.
        generator: optional ``torch.Generator``; default: torch's global RNG.

    Returns:
        A tensor of the shape, dtype and device of ``input``; ``input`` itself when ``training`` is False,
        ``p == 0`` or ``input`` is empty.

    Example:
        >>> x = torch.full((100_000,), 2.0)
        >>> y = gaussian_dropout(x, p=0.5, generator=torch.Generator().manual_seed(0))
        >>> round(y.mean().item(), 1), round(y.var().item(), 1)  # E = x = 2, Var = x^2 p/q = 4
        (2.0, 4.0)
        >>> gaussian_dropout(x, p=0.5, training=False) is x
        True
    """
    p = _gaussian_p(p)
    training = check_bool(training, "training")
    check_floating(input)
    check_generator(generator)
    if not training or p == 0.0 or input.numel() == 0:
        return input
    noise = torch.empty_like(input).normal_(1.0, math.sqrt(p / (1 - p)), generator=generator)
    return DropoutFunction.apply(input, noise)


class GaussianDropout(DropoutLayer):
    """Gaussian dropout layer: multiplicative ``N(1, p/q)`` noise in training, the identity in evaluation.

    See :func:`gaussian_dropout` for the math. Input of any shape; output of the same shape. No
    parameters.

    Args:
        p: drop probability whose Bernoulli variance ``p/q`` the noise has, in ``[0, 1)``. Default 0.5.

    Example:
        >>> layer = GaussianDropout(p=0.2)
        >>> layer
        GaussianDropout(p=0.2)
        >>> x = torch.ones(3)
        >>> layer.eval()(x) is x
        True
    """

    dropout_variant: ClassVar[bool] = True
    function = staticmethod(gaussian_dropout)

    def __init__(self, p: float = 0.5) -> None:
        _gaussian_p(p)
        super().__init__(p)
