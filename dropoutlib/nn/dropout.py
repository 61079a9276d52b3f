"""Dropout from scratch: masks, inverted dropout, and the original (non-inverted) variant.

Notation: ``p`` is the probability of dropping a unit, ``q = 1 - p`` the probability of keeping it.

Inverted dropout (what ``torch.nn.functional.dropout`` computes)::

    training:   y = m * x / q,   m_i ~ Bernoulli(q) independently,   so E[y] = x
    evaluation: y = x

Standard dropout (Srivastava et al., 2014) keeps the training output unscaled and scales at test
time instead::

    training:   y = m * x,       so E[y] = q x
    evaluation: y = q x          (equivalently: multiply the next layer's weights by q)
"""

from __future__ import annotations

from typing import Any

import torch

from dropoutlib._validation import check_bool, check_floating, check_generator, check_probability
from dropoutlib.nn._base import DropoutLayer

__all__ = [
    "dropout",
    "dropout_mask",
    "keep_mask",
    "scale_weights_for_inference",
    "standard_dropout",
    "Dropout",
    "DropoutFunction",
    "StandardDropout",
]


def keep_mask(
    input: torch.Tensor, p: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Sample the 0/1 keep mask ``m`` with ``m_i ~ Bernoulli(q)``, ``q = 1 - p``.

    Shape, dtype and device are those of ``input`` (only its metadata is used, not its values).
    Draws from ``generator``, or from torch's global RNG when it is ``None``.

    Example:
        >>> m = keep_mask(torch.ones(2, 3), p=0.5)
        >>> m.shape, m.dtype
        (torch.Size([2, 3]), torch.float32)
        >>> set(m.unique().tolist()) <= {0.0, 1.0}
        True
        >>> keep_mask(torch.ones(3), p=0.0)
        tensor([1., 1., 1.])
    """
    p = check_probability(p)
    check_floating(input)
    check_generator(generator)
    return torch.empty_like(input).bernoulli_(1 - p, generator=generator)


def dropout_mask(
    input: torch.Tensor, p: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Sample the scaled mask ``m / q``: entries are ``0`` (probability ``p``) or ``1/q``.

    Computed exactly as PyTorch's CPU kernel does (``bernoulli_(q)`` then ``div_(q)`` in the
    dtype of ``input``), so with the same seed the mask matches the one inside ``F.dropout``.
    Requires ``p < 1`` (for ``p = 1`` there is no ``1/q``).

    Example:
        >>> s = dropout_mask(torch.ones(1000), p=0.75)
        >>> set(s.unique().tolist()) <= {0.0, 4.0}
        True
    """
    p = check_probability(p)
    if p == 1.0:
        raise ValueError("dropout_mask needs p < 1 (the scale 1/q is infinite), got p=1.0")
    return keep_mask(input, p, generator).div_(1 - p)


def dropout(
    input: torch.Tensor,
    p: float = 0.5,
    training: bool = True,
    inplace: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Inverted dropout, a from-scratch equivalent of ``torch.nn.functional.dropout``.

    Math (elementwise, ``q = 1 - p``)::

        training:   y_i = m_i * x_i / q,   m_i ~ Bernoulli(q)   (E[y_i] = x_i)
        evaluation: y_i = x_i

    Backward: ``dL/dx = dL/dy * m / q`` (see :class:`~dropoutlib.nn.DropoutFunction`).

    Args:
        input: floating-point tensor of any shape (including 0-d and empty).
        p: probability of zeroing each element, in ``[0, 1]``.
        training: apply dropout if True; return ``input`` unchanged otherwise.
        inplace: overwrite ``input`` with the result (and return it).
        generator: optional ``torch.Generator``; default: torch's global RNG.

    Returns:
        A tensor of the shape, dtype and device of ``input``. When ``training`` is False, ``p == 0``
        or ``input`` is empty, ``input`` itself (the same object). For ``p == 1``, zeros.
        With the same ``torch.manual_seed`` on CPU the result is bitwise equal to ``F.dropout``'s.

    Example:
        >>> x = torch.ones(2, 4)
        >>> y = dropout(x, p=0.5)
        >>> set(y.unique().tolist()) <= {0.0, 2.0}  # dropped, or kept and scaled by 1/q = 2
        True
        >>> dropout(x, p=0.5, training=False) is x
        True
        >>> dropout(x, p=1.0)
        tensor([[0., 0., 0., 0.],
                [0., 0., 0., 0.]])
    """
    p = check_probability(p)
    training = check_bool(training, "training")
    inplace = check_bool(inplace, "inplace")
    check_floating(input)
    check_generator(generator)
    if not training or p == 0.0 or input.numel() == 0:
        return input
    if p == 1.0:
        zero = torch.zeros((), dtype=input.dtype, device=input.device)
        return input.mul_(zero) if inplace else input * zero
    mask = dropout_mask(input, p, generator)
    if inplace:
        return input.mul_(mask)
    return DropoutFunction.apply(input, mask)


def standard_dropout(
    input: torch.Tensor,
    p: float = 0.5,
    training: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Standard (non-inverted) dropout, as in the original papers.

    Math (elementwise, ``q = 1 - p``)::

        training:   y_i = m_i * x_i,   m_i ~ Bernoulli(q)   (E[y_i] = q x_i, no rescaling)
        evaluation: y_i = q * x_i

    The evaluation rule makes the test-time output equal the training-time expectation. Always
    returns a new tensor of the shape, dtype and device of ``input``.

    Example:
        >>> x = torch.ones(3)
        >>> standard_dropout(x, p=0.25, training=False)
        tensor([0.7500, 0.7500, 0.7500])
        >>> set(standard_dropout(x, p=0.25).tolist()) <= {0.0, 1.0}  # never scaled up
        True
    """
    p = check_probability(p)
    training = check_bool(training, "training")
    check_floating(input)
    check_generator(generator)
    if not training:
        return input * (1 - p)
    return DropoutFunction.apply(input, keep_mask(input, p, generator))


def scale_weights_for_inference(weight: torch.Tensor, p: float) -> torch.Tensor:
    """The weight-scaling inference rule of standard dropout: return ``(1 - p) * W``.

    If a layer ``z = W h`` was trained with standard dropout (rate ``p``) on its input ``h``,
    then at test time ``W_test = q W`` gives ``E_m[W (m * h)] = q W h = W_test h``: the
    deterministic network reproduces the average over masks of each linear layer. Returns a new
    tensor of the shape of ``weight``; ``weight`` is not modified.

    Example:
        >>> scale_weights_for_inference(torch.tensor([[2.0, -4.0]]), p=0.5)
        tensor([[ 1., -2.]])
    """
    p = check_probability(p)
    check_floating(weight, "weight")
    return (1 - p) * weight


class Dropout(DropoutLayer):
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

    function = staticmethod(dropout)

    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__(p, inplace=inplace)


class StandardDropout(DropoutLayer):
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

    function = staticmethod(standard_dropout)

    def __init__(self, p: float = 0.5) -> None:
        super().__init__(p)


class DropoutFunction(torch.autograd.Function):
    """``y = x * mask`` with the hand-written backward ``grad_x = grad_y * mask``.

    Called as ``DropoutFunction.apply(input, mask)``. ``forward`` takes no ``ctx``: ``setup_context``
    saves the mask, which is the form ``torch.func.grad`` and ``torch.func.vmap`` need.

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

    generate_vmap_rule = True  # forward is plain torch code, so torch.func.vmap can batch it

    @staticmethod
    def forward(input: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return input * mask

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[torch.Tensor, torch.Tensor], output: torch.Tensor) -> None:
        _, mask = inputs
        ctx.save_for_backward(mask)

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor, None]:
        (mask,) = ctx.saved_tensors
        return grad_output * mask, None
