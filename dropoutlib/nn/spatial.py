"""Spatial (channel-wise) dropout from scratch: a drop-in for ``torch.nn.Dropout2d``.

Element-wise dropout flips one coin per number. On a convolutional feature map of shape
``(N, C, H, W)`` that means one coin per pixel of every channel, and since neighbouring pixels of a
feature map carry nearly the same value, the next layer can read a dropped pixel's value off its
neighbours. Spatial dropout (Tompson et al., 2015) flips one coin per *channel* of each example and
drops the whole ``H x W`` map at once::

    training:   y[n, c, i, j] = m[n, c] * x[n, c, i, j] / q,   m[n, c] ~ Bernoulli(q) independently
    evaluation: y = x

with ``p`` the probability of dropping a channel and ``q = 1 - p``. As with element-wise inverted
dropout, ``E[y] = x``. The mask has shape ``(N, C, 1, 1)`` and broadcasts over the spatial positions.

The mask is drawn exactly as ATen's ``feature_dropout`` draws it (a tensor of shape ``(N, C, 1, 1)``
in the input's dtype, ``bernoulli_(q)``, ``div_(q)``, then ``input * mask``), so with the same
``torch.manual_seed`` on CPU :func:`spatial_dropout` is bitwise equal to
``torch.nn.functional.dropout2d`` for 4-D input.
"""

from __future__ import annotations

import torch

from dropoutlib._validation import check_bool, check_floating, check_generator, check_probability
from dropoutlib.nn._base import DropoutLayer
from dropoutlib.nn.dropout import DropoutFunction, dropout_mask

__all__ = ["SpatialDropout", "channel_mask_shape", "spatial_dropout"]


def channel_mask_shape(input: torch.Tensor) -> tuple[int, ...]:
    """The shape of the channel mask for ``input``: one entry per (sample, channel), ones elsewhere.

    Accepted inputs are a batch of feature maps ``(N, C, H, W)`` (mask ``(N, C, 1, 1)``) and a single
    example without batch dimension ``(C, H, W)`` (mask ``(C, 1, 1)``). Any other number of
    dimensions is refused with a ``ValueError`` naming the shape.

    Example:
        >>> channel_mask_shape(torch.empty(5, 3, 8, 8))
        (5, 3, 1, 1)
        >>> channel_mask_shape(torch.empty(3, 8, 8))
        (3, 1, 1)
        >>> channel_mask_shape(torch.empty(5, 64))
        Traceback (most recent call last):
        ...
        ValueError: input must be a 4-D batch ... got a 2-D tensor of shape (5, 64); ...
    """
    check_floating(input)
    if input.ndim == 4:
        return (input.shape[0], input.shape[1], 1, 1)
    if input.ndim == 3:
        return (input.shape[0], 1, 1)
    raise ValueError(
        "input must be a 4-D batch of feature maps (N, C, H, W) or a 3-D example (C, H, W), got a "
        f"{input.ndim}-D tensor of shape {tuple(input.shape)}; for element-wise dropout use "
        "dropoutlib.dropout"
    )


def spatial_dropout(
    input: torch.Tensor,
    p: float = 0.5,
    training: bool = True,
    inplace: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Spatial dropout: zero whole channels, a from-scratch equivalent of ``F.dropout2d``.

    Math (``q = 1 - p``, one coin per sample ``n`` and channel ``c``)::

        training:   y[n, c, :, :] = m[n, c] * x[n, c, :, :] / q,   m[n, c] ~ Bernoulli(q)
        evaluation: y = x

    so ``E[y] = x``, and every channel of the output is either all zero or the input's channel
    times ``1/q``. Backward: ``dL/dx[n, c] = dL/dy[n, c] * m[n, c] / q`` (through
    :class:`~dropoutlib.nn.DropoutFunction`, whose product broadcasts the ``(N, C, 1, 1)``
    mask over the spatial positions in both directions).

    Args:
        input: floating-point tensor ``(N, C, H, W)``, or ``(C, H, W)`` for one example without a
            batch dimension (one coin per channel). Other shapes raise a ``ValueError``, also in
            evaluation mode. ``torch.nn.functional.dropout2d`` treats 3-D input as ``(N, C, L)``
            for historical reasons and only warns on other shapes; here 3-D input means ``(C, H,
            W)``, and the result equals ``F.dropout2d(input.unsqueeze(0)).squeeze(0)``.
        p: probability of zeroing each channel, in ``[0, 1]``.
        training: apply dropout if True; return ``input`` unchanged otherwise.
        inplace: overwrite ``input`` with the result (and return it).
        generator: optional ``torch.Generator``; default: torch's global RNG.

    Returns:
        A tensor of the shape, dtype and device of ``input``. When ``training`` is False, ``p == 0``
        or ``input`` is empty, ``input`` itself (the same object). For ``p == 1``, zeros.
        With the same ``torch.manual_seed`` on CPU the result of a 4-D input is bitwise equal to
        ``F.dropout2d``'s.

    Example:
        >>> _ = torch.manual_seed(0)
        >>> x = torch.ones(1, 4, 2, 2)
        >>> y = spatial_dropout(x, p=0.5)
        >>> y[0, :, :, 0]  # each channel is all 0 or all 1/q = 2
        tensor([[0., 0.],
                [0., 0.],
                [2., 2.],
                [0., 0.]])
        >>> _ = torch.manual_seed(0)
        >>> torch.equal(y, torch.nn.functional.dropout2d(x, p=0.5))
        True
        >>> spatial_dropout(x, p=0.5, training=False) is x
        True
    """
    p = check_probability(p)
    training = check_bool(training, "training")
    inplace = check_bool(inplace, "inplace")
    check_generator(generator)
    mask_shape = channel_mask_shape(input)
    if not training or p == 0.0 or input.numel() == 0:
        return input
    if p == 1.0:
        zero = torch.zeros((), dtype=input.dtype, device=input.device)
        return input.mul_(zero) if inplace else input * zero
    mask = dropout_mask(input.new_empty(mask_shape), p, generator)
    if inplace:
        return input.mul_(mask)
    return DropoutFunction.apply(input, mask)


class SpatialDropout(DropoutLayer):
    """Spatial (channel-wise) dropout layer, a drop-in replacement for ``torch.nn.Dropout2d``.

    In training mode each channel of each example is zeroed with probability ``p`` and the kept
    channels are scaled by ``1/q``; in evaluation mode the input is returned unchanged. No
    parameters and no buffers. See :func:`spatial_dropout` for the math.

    Shapes: input ``(N, C, H, W)`` or ``(C, H, W)`` (one example, no batch dimension); output of
    the same shape. For ``(N, C, H, W)`` it computes exactly what ``nn.Dropout2d`` computes for the
    same seed; for 3-D input it differs on purpose (``nn.Dropout2d`` reads it as ``(N, C, L)``).

    Args:
        p: probability of zeroing a channel, in ``[0, 1]``. Default 0.5.
        inplace: do the operation in place. Default False.

    Example:
        >>> layer = SpatialDropout(p=0.2)
        >>> layer
        SpatialDropout(p=0.2, inplace=False)
        >>> y = layer(torch.ones(8, 16, 4, 4))
        >>> bool(((y == 0) | (y == 1.25)).all())  # channels dropped, or kept and scaled by 1/q
        True
        >>> x = torch.ones(16, 4, 4)
        >>> layer.eval()(x) is x
        True
    """

    function = staticmethod(spatial_dropout)

    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__(p, inplace=inplace)
