"""What every dropout layer of dropoutlib shares: a validated ``p``, a functional form, a repr.

Like ``torch.nn.modules.dropout._DropoutNd``, one base class holds what the layers have in common, so
that each layer file only says which function it calls and which options it takes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import nn

from dropoutlib._validation import check_probability

__all__ = ["DropoutLayer"]


def _zeros_like_product(input: torch.Tensor) -> torch.Tensor:
    # p = 1: every unit dropped. Multiply by a zero (not torch.zeros_like) so that the result stays in
    # the autograd graph, with a zero gradient, as F.dropout(x, 1.0) does.
    return input * torch.zeros((), dtype=input.dtype, device=input.device)


def _stored_p(p: float) -> float:
    # Validate, but keep a plain int/float as given so that the repr matches torch's
    # (torch.nn.Dropout(0) prints "p=0"); other real types become a float.
    as_float = check_probability(p)
    return p if type(p) in (int, float) else as_float


class DropoutLayer(nn.Module):
    """The base of every dropout layer here: ``forward`` calls ``function(input, p, training=...)``.

    A subclass sets ``function`` (its functional form, as a ``staticmethod``) and passes its options
    (``inplace``, ``block_size``, ...) to ``__init__`` as keywords; they become attributes, are handed
    to ``function`` by name, and appear in the repr after ``p``. ``p`` is validated (a real number in
    ``[0, 1]``; the error names the value) and stored as given, so the repr matches torch's.

    Example:
        >>> from dropoutlib.nn.dropout import dropout
        >>> class MyDropout(DropoutLayer):
        ...     function = staticmethod(dropout)
        ...     def __init__(self, p=0.5, inplace=False):
        ...         super().__init__(p, inplace=inplace)
        >>> MyDropout(0.25)
        MyDropout(p=0.25, inplace=False)
        >>> MyDropout(0.25).eval()(torch.ones(3))
        tensor([1., 1., 1.])
        >>> MyDropout(1.5)
        Traceback (most recent call last):
        ...
        ValueError: p must be a probability in [0, 1], got p=1.5
    """

    function: ClassVar[Callable[..., torch.Tensor]]

    def __init__(self, p: float = 0.5, **options: Any) -> None:
        super().__init__()
        self.p = _stored_p(p)
        self._options = tuple(options)
        for name, value in options.items():
            setattr(self, name, value)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        options = {name: getattr(self, name) for name in self._options}
        return self.function(input, self.p, training=self.training, **options)

    def extra_repr(self) -> str:
        return ", ".join([f"p={self.p}", *(f"{name}={getattr(self, name)}" for name in self._options)])
