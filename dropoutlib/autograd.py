"""Dropout as an autograd function whose backward pass is written out by hand.

Forward, for a fixed scaled mask ``s`` (entries ``0`` or ``1/q``)::

    y = x * s

Backward: ``y_i`` depends only on ``x_i``, with ``dy_i/dx_i = s_i``, so for any loss ``L``::

    dL/dx = dL/dy * s

The gradient is *masked*: a unit dropped in the forward pass gets exactly zero gradient, a kept
unit gets its upstream gradient times ``1/q``. The mask is a constant (no gradient flows to it).
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["DropoutFunction"]


class DropoutFunction(torch.autograd.Function):
    """``y = x * mask`` with the hand-written backward ``grad_x = grad_y * mask``.

    Called as ``DropoutFunction.apply(input, mask)``.

    Args:
        input: tensor ``x`` of any shape.
        mask: tensor of the same shape, e.g. the scaled mask ``m / q`` with
            ``m_i ~ Bernoulli(q)``. Treated as a constant.

    Returns:
        ``x * mask``, same shape as ``x``.

    Example:
        >>> x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
        >>> mask = torch.tensor([2.0, 0.0, 2.0])  # p = 0.5: kept units are scaled by 1/q = 2
        >>> y = DropoutFunction.apply(x, mask)
        >>> y
        tensor([2., 0., 6.], grad_fn=<DropoutFunctionBackward>)
        >>> y.sum().backward()
        >>> x.grad
        tensor([2., 0., 2.])
    """

    @staticmethod
    def forward(ctx: Any, input: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(mask)
        return input * mask

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor, None]:
        (mask,) = ctx.saved_tensors
        return grad_output * mask, None
