"""DropBlock (Ghiasi et al., 2018): drop square blocks of a feature map, not single positions."""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F

from dropoutlib._validation import (
    check_bool,
    check_floating,
    check_generator,
    check_positive_int,
    check_probability,
)
from dropoutlib.nn._base import DropoutLayer, _zeros_like_product
from dropoutlib.nn.dropout import DropoutFunction, keep_mask

__all__ = [
    "dropblock",
    "dropblock_drop_fraction",
    "dropblock_gamma",
    "DropBlock2d",
]


# --- DropBlock -------------------------------------------------------------------------------------------


def _check_block_size(block_size: int, height: int, width: int) -> int:
    block_size = check_positive_int(block_size, "block_size")
    if block_size > min(height, width):
        raise ValueError(
            f"block_size must be at most min(H, W) = {min(height, width)} so that a block fits in the "
            f"{height}x{width} feature map, got block_size={block_size}"
        )
    return block_size


def dropblock_gamma(p: float, block_size: int, height: int, width: int) -> float:
    """DropBlock's seed rate ``gamma = p / bs^2 * (H W) / ((H - bs + 1)(W - bs + 1))``, ``bs = block_size``.

    Seeds are drawn only where a whole block fits, ``(H - bs + 1)(W - bs + 1)`` positions, and each seed
    drops ``bs^2`` units, so ``gamma`` makes the expected dropped *area* ``p H W`` if blocks never
    overlapped (Ghiasi et al., 2018, eq. 1). They do overlap, so fewer units are dropped: see
    :func:`dropblock_drop_fraction`. ``gamma <= p`` always.

    Example:
        >>> round(dropblock_gamma(0.1, 3, 8, 8), 5)  # 0.1 / 9 * 64 / 36
        0.01975
        >>> dropblock_gamma(0.1, 1, 8, 8)  # block_size 1: one unit per seed, gamma = p
        0.1
    """
    p = check_probability(p)
    height = check_positive_int(height, "height")
    width = check_positive_int(width, "width")
    block_size = _check_block_size(block_size, height, width)
    valid = (height - block_size + 1) * (width - block_size + 1)
    return p / block_size**2 * (height * width) / valid


def _seed_cover_counts(length: int, block_size: int) -> torch.Tensor:
    # How many valid seed positions a in [0, length - bs] have position i in their block [a, a + bs).
    i = torch.arange(length, dtype=torch.float64)
    return torch.minimum(i, torch.tensor(length - block_size)) - torch.clamp(i - block_size + 1, min=0) + 1


def dropblock_drop_fraction(p: float, block_size: int, height: int, width: int) -> float:
    """The expected fraction of units :func:`dropblock` drops in an ``H x W`` map (exact, overlaps included).

    Unit ``(i, j)`` is dropped unless all ``c_ij`` seed positions whose block covers it stay off, so::

        P(unit (i, j) dropped) = 1 - (1 - gamma)^(c_ij),   c_ij = c_i * c_j

    with ``c_i`` the number of valid seed rows whose block contains row ``i`` (``block_size`` in the
    interior, fewer within ``block_size - 1`` of an edge). Averaged over the map this is below ``p``,
    because overlapping blocks drop some units twice; it is close to ``p`` when ``gamma`` is small. In
    the interior, ``1 - (1 - gamma)^(block_size^2)``. For ``p = 1`` it is 1 (:func:`dropblock` then
    returns zeros).

    Example:
        >>> round(dropblock_drop_fraction(0.1, 3, 16, 16), 4)  # a bit below p = 0.1
        0.0952
        >>> round(dropblock_drop_fraction(0.1, 1, 16, 16), 4)  # no overlaps with 1x1 blocks
        0.1
        >>> round(dropblock_drop_fraction(0.5, 7, 28, 28), 4)  # more overlap: further below p
        0.3723
    """
    gamma = dropblock_gamma(p, block_size, height, width)
    if check_probability(p) == 1.0:
        return 1.0
    counts = torch.outer(_seed_cover_counts(height, block_size), _seed_cover_counts(width, block_size))
    return float((1 - (1 - gamma) ** counts).mean())


def dropblock(
    input: torch.Tensor,
    p: float = 0.5,
    block_size: int = 3,
    training: bool = True,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """DropBlock (Ghiasi et al., 2018): drop square ``block_size x block_size`` regions of feature maps.

    Neighbouring units of a feature map are strongly correlated, so dropping single units (or even single
    pixels of every channel) hides little: the next layer reads the information off the neighbours.
    DropBlock drops contiguous squares instead. For each example and channel independently::

        seeds:     z[a, b] ~ Bernoulli(gamma) at the (H - bs + 1) x (W - bs + 1) positions where a
                   block fits, gamma = dropblock_gamma(p, bs, H, W)
        blocks:    M[i, j] = 0 if a seed's block [a, a + bs) x [b, b + bs) contains (i, j), else 1
                   (computed with a max-pool of the zero-padded seeds: a block grows from its seed)
        training:  y = x * M * numel(M) / sum(M)
        evaluation: y = x

    The normalisation ``numel / kept`` uses the mask of the whole call (all examples and channels), as
    the paper's reference code does: the kept units are scaled so that the mask averages exactly 1 *in
    this call*, rather than by a fixed ``1/q``, since the realised drop fraction varies from call to call
    and is below ``p`` on average (blocks overlap; see :func:`dropblock_drop_fraction`). So ``E[y] = x``
    only approximately; for a constant input the output mean equals the input mean exactly. Nor is it
    exact per position: fewer seeds cover the units near the edges, so they are dropped less often than
    interior units and, with one scale for all, end up slightly above ``x`` on average. If a call
    drops every unit the output is zeros; ``p = 1`` returns zeros. Backward: ``dL/dx = dL/dy * M *
    numel / kept`` (the mask and scale are constants). Not implemented: the paper's linear increase of
    ``p`` over training, and sharing one mask across channels.

    Args:
        input: floating-point tensor ``(N, C, H, W)``.
        p: target drop probability, in ``[0, 1]``.
        block_size: side of the square blocks, an integer in ``[1, min(H, W)]``. ``block_size=1`` is
            element-wise dropout (with the per-call normalisation).
        training: apply DropBlock if True; return ``input`` unchanged otherwise. The shape and
            ``block_size`` are checked in evaluation mode too.
        generator: optional ``torch.Generator``; default: torch's global RNG.

    Returns:
        A tensor of the shape, dtype and device of ``input``; ``input`` itself when ``training`` is False,
        ``p == 0`` or ``input`` is empty.

    Example:
        >>> generator = torch.Generator().manual_seed(13)
        >>> y = dropblock(torch.ones(1, 1, 6, 6), p=0.2, block_size=2, generator=generator)
        >>> (y > 0).int()[0, 0]  # one 2x2 block dropped
        tensor([[1, 1, 1, 1, 1, 1],
                [1, 1, 1, 0, 0, 1],
                [1, 1, 1, 0, 0, 1],
                [1, 1, 1, 1, 1, 1],
                [1, 1, 1, 1, 1, 1],
                [1, 1, 1, 1, 1, 1]], dtype=torch.int32)
        >>> y.mean()  # kept units scaled by 36/32: the mean is kept
        tensor(1.)
    """
    p = check_probability(p)
    training = check_bool(training, "training")
    check_floating(input)
    check_generator(generator)
    if input.ndim != 4:
        raise ValueError(
            "dropblock needs a 4-D batch of feature maps (N, C, H, W), got input of shape "
            f"{tuple(input.shape)}"
        )
    height, width = input.shape[-2:]
    if height == 0 or width == 0:
        raise ValueError(f"dropblock needs non-empty feature maps, got input of shape {tuple(input.shape)}")
    block_size = _check_block_size(block_size, height, width)
    if not training or p == 0.0 or input.numel() == 0:
        return input
    if p == 1.0:
        return _zeros_like_product(input)
    gamma = dropblock_gamma(p, block_size, height, width)
    seed_shape = input.shape[:2] + (height - block_size + 1, width - block_size + 1)
    seeds = keep_mask(input.new_empty(seed_shape), 1.0 - gamma, generator)  # 1 = seed, with prob gamma
    padded = F.pad(seeds, (block_size - 1,) * 4)
    mask = 1 - F.max_pool2d(padded, kernel_size=block_size, stride=1)
    kept = mask.sum(dtype=torch.float32)  # not in float16, whose largest value is 65504
    if kept == 0:
        return _zeros_like_product(input)
    return DropoutFunction.apply(input, mask * (mask.numel() / kept))


class DropBlock2d(DropoutLayer):
    """DropBlock layer for ``(N, C, H, W)`` feature maps: drops ``block_size x block_size`` squares.

    Training: see :func:`dropblock` (seed rate ``gamma``, square blocks, rescaling by ``numel / kept``
    of each call). Evaluation: the identity. No parameters.

    Args:
        p: target drop probability, in ``[0, 1]``. Default 0.5.
        block_size: side of the dropped squares, a positive integer (at most ``min(H, W)`` of the input,
            checked at the forward call). Default 3.

    Example:
        >>> layer = DropBlock2d(p=0.1, block_size=3)
        >>> layer
        DropBlock2d(p=0.1, block_size=3)
        >>> layer(torch.randn(2, 4, 8, 8)).shape
        torch.Size([2, 4, 8, 8])
    """

    dropout_variant: ClassVar[bool] = True

    function = staticmethod(dropblock)

    def __init__(self, p: float = 0.5, block_size: int = 3) -> None:
        super().__init__(p, block_size=check_positive_int(block_size, "block_size"))
