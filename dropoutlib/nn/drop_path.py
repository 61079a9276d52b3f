"""DropPath, or stochastic depth (Huang et al., 2016): skip each example's residual branch at random."""

from __future__ import annotations

from typing import ClassVar

import torch

from dropoutlib._validation import (
    check_bool,
    check_floating,
    check_generator,
    check_positive_int,
    check_probability,
)
from dropoutlib.nn._base import DropoutLayer, _zeros_like_product
from dropoutlib.nn.dropout import DropoutFunction, dropout_mask

__all__ = [
    "drop_path",
    "drop_path_schedule",
    "DropPath",
]


# --- DropPath (stochastic depth) -------------------------------------------------------------------------


def drop_path(
    input: torch.Tensor,
    p: float = 0.5,
    training: bool = True,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """DropPath: drop a whole example's tensor (a residual branch's output) with probability ``p``.

    Math (one coin per example ``n``, i.e. per index of dimension 0; ``q = 1 - p``)::

        training:   y[n] = m_n * x[n] / q,   m_n ~ Bernoulli(q)
        evaluation: y = x

    Applied to the branch of a residual block, ``h + drop_path(f(h))``, it skips the block for that
    example, so that each example trains a network of random depth. Huang et al.'s stochastic depth
    (2016) draws one coin per block for the whole mini-batch instead, which lets the skipped block's
    computation be left out; per example, as here and in timm, the draws average over more depths per
    step. The inverted scaling ``1/q`` gives ``E[y] = x``, so evaluation uses the full branch. (Huang et
    al. scale at test time instead, by their survival probability; the two are equivalent, as for
    standard and inverted dropout.) The mask has shape ``(N, 1, ..., 1)`` and broadcasts over the other
    dimensions.

    Args:
        input: floating-point tensor ``(N, *)`` with at least one dimension; dimension 0 is the batch.
        p: probability of dropping each example's tensor, in ``[0, 1]``.
        training: apply DropPath if True; return ``input`` unchanged otherwise.
        generator: optional ``torch.Generator``; default: torch's global RNG.

    Returns:
        A tensor of the shape, dtype and device of ``input``; ``input`` itself when ``training`` is False,
        ``p == 0`` or ``input`` is empty. For ``p == 1``, zeros.

    Example:
        >>> x = torch.ones(6, 3)
        >>> drop_path(x, p=0.5, generator=torch.Generator().manual_seed(3))  # whole rows: 0 or 1/q = 2
        tensor([[2., 2., 2.],
                [2., 2., 2.],
                [0., 0., 0.],
                [2., 2., 2.],
                [0., 0., 0.],
                [0., 0., 0.]])
    """
    p = check_probability(p)
    training = check_bool(training, "training")
    check_floating(input)
    check_generator(generator)
    if input.ndim == 0:
        raise ValueError("drop_path needs input with a batch dimension (N, *), got a 0-D tensor")
    if not training or p == 0.0 or input.numel() == 0:
        return input
    if p == 1.0:
        return _zeros_like_product(input)
    mask_shape = (input.shape[0],) + (1,) * (input.ndim - 1)
    return DropoutFunction.apply(input, dropout_mask(input.new_empty(mask_shape), p, generator))


class DropPath(DropoutLayer):
    """DropPath (stochastic depth) layer: zero each example's input with probability ``p``, scale by 1/q.

    Put it on a residual branch: ``h + DropPath(p)(f(h))``. See :func:`drop_path` for the math. Input
    ``(N, *)``; output of the same shape. No parameters.

    Args:
        p: probability of dropping an example's branch, in ``[0, 1]``. Default 0.5.

    Example:
        >>> layer = DropPath(p=0.25)
        >>> layer
        DropPath(p=0.25)
        >>> y = layer(torch.ones(8, 5))
        >>> bool(((y == 0).all(dim=1) | (y == 4 / 3).all(dim=1)).all())  # each row all 0 or all 1/q
        True
    """

    dropout_variant: ClassVar[bool] = True
    function = staticmethod(drop_path)

    def __init__(self, p: float = 0.5) -> None:
        super().__init__(p)


_SCHEDULES = ("linear", "uniform")


def drop_path_schedule(drop_path: float, depth: int, schedule: str = "linear") -> list[float]:
    """The DropPath rates of blocks ``1, ..., depth``: ``drop_path * l / depth`` or ``drop_path`` for all.

    ``"linear"`` is the rule of Huang et al. (2016): the first blocks, whose features everything later
    builds on, are rarely skipped, and the last block is skipped with probability ``drop_path``. (The
    paper writes it in survival probabilities, ``p_l = 1 - l / L (1 - p_L)`` with ``p_L = 0.5``: the
    same rule with ``drop_path = 1 - p_L``.) ``"uniform"`` gives every block the rate ``drop_path``. The
    linear rates are rounded to 12 decimals (so that ``0.3 * 1 / 3`` prints as ``0.1``).

    Example:
        >>> drop_path_schedule(0.5, 4)
        [0.125, 0.25, 0.375, 0.5]
        >>> drop_path_schedule(0.5, 2, schedule="uniform")
        [0.5, 0.5]
    """
    drop_path = check_probability(drop_path, "drop_path")
    depth = check_positive_int(depth, "depth")
    if schedule not in _SCHEDULES:
        raise ValueError(f"schedule must be one of {_SCHEDULES}, got schedule={schedule!r}")
    if schedule == "uniform":
        return [drop_path] * depth
    # Rounded to 12 decimals so that reprs read p=0.1, not p=0.09999999999999999 (0.3 * 1 / 3).
    return [round(drop_path * layer / depth, 12) for layer in range(1, depth + 1)]
