"""Dropout layers: :class:`Dropout` (drop-in for ``torch.nn.Dropout``), :class:`StandardDropout`."""

from __future__ import annotations

import torch
from torch import nn

from dropoutlib._validation import check_probability
from dropoutlib.functional import dropout, standard_dropout

__all__ = ["Dropout", "StandardDropout"]


def _stored_p(p: float) -> float:
    # Validate, but keep a plain int/float as given so that the repr matches torch's
    # (torch.nn.Dropout(0) prints "p=0"); other real types become a float.
    as_float = check_probability(p)
    return p if type(p) in (int, float) else as_float


class Dropout(nn.Module):
    """Inverted dropout layer, a drop-in replacement for ``torch.nn.Dropout``.

    In training mode (``model.train()``): ``y = m * x / q`` with ``m_i ~ Bernoulli(q)``,
    ``q = 1 - p``. In evaluation mode (``model.eval()``): ``y = x``. Input of any shape; the
    output has the same shape. No parameters and no buffers (empty ``state_dict``).

    Args:
        p: probability of zeroing an element, in ``[0, 1]``. Default 0.5.
        inplace: do the operation in place. Default False.

    Example:
        >>> layer = Dropout(p=0.5)
        >>> layer
        Dropout(p=0.5, inplace=False)
        >>> x = torch.ones(4)
        >>> set(layer(x).tolist()) <= {0.0, 2.0}
        True
        >>> layer.eval()(x) is x
        True
    """

    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        self.p = _stored_p(p)
        self.inplace = inplace

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return dropout(input, self.p, self.training, self.inplace)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class StandardDropout(nn.Module):
    """Standard (non-inverted) dropout layer.

    Training: ``y = m * x`` with ``m_i ~ Bernoulli(q)`` (no rescaling). Evaluation: ``y = q * x``.
    Input of any shape; output of the same shape. No parameters.

    Args:
        p: probability of zeroing an element, in ``[0, 1]``. Default 0.5.

    Example:
        >>> layer = StandardDropout(p=0.2)
        >>> layer
        StandardDropout(p=0.2)
        >>> layer.eval()(torch.ones(2))
        tensor([0.8000, 0.8000])
    """

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        self.p = _stored_p(p)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return standard_dropout(input, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"
