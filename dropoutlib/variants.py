"""The dropout family: DropConnect, Gaussian, alpha, DropPath (stochastic depth) and DropBlock.

Each variant keeps dropout's idea (train on random thinned networks, predict with the deterministic one)
and changes *what* is dropped or *which* noise is used. ``p`` is always the probability of dropping and
``q = 1 - p`` the probability of keeping, as in :func:`dropoutlib.dropout`::

    variant                  what is random                         training output         evaluation
    dropconnect_linear       each weight W_ij, Bernoulli(q)          (M * W / q) x + b       W x + b
    gaussian_dropout         each unit, multiplicative N(1, p/q)     x * (1 + sqrt(p/q) e)   x
    alpha_dropout            each unit, set to SELU's saturation     a (m x + (1-m) a') + b  x
    drop_path                each example's residual branch          m_n x_n / q             x
    dropblock                square blocks of a feature map          x * M * numel / kept    x

Every function has the signature style of :func:`dropoutlib.dropout` (``input, p, training=True, *,
generator=None`` after the required arguments; ``generator=None`` draws from torch's global RNG) and
validates its arguments (errors name the argument and the value; nothing is clamped). Every layer class
carries the class attribute ``dropout_variant = True``, which :func:`dropoutlib.uncertainty.mc_predict`
uses to switch it on for Monte Carlo dropout, stores ``p`` as an attribute, and is the identity in
evaluation mode (DropConnect: the plain linear map with the full weights).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from dropoutlib._validation import (
    check_floating,
    check_generator,
    check_positive_int,
    check_probability,
)
from dropoutlib.autograd import DropoutFunction
from dropoutlib.functional import dropout_mask, keep_mask
from dropoutlib.modules import _stored_p

__all__ = [
    "SELU_SATURATION",
    "AlphaDropout",
    "DropBlock2d",
    "DropConnectLinear",
    "DropPath",
    "GaussianDropout",
    "ResidualBlock",
    "alpha_dropout",
    "dropblock",
    "dropblock_drop_fraction",
    "dropblock_gamma",
    "dropconnect_linear",
    "drop_path",
    "drop_path_schedule",
    "gaussian_dropout",
    "residual_mlp",
]

# SELU(x) = lambda * x for x > 0 and lambda * alpha * (exp(x) - 1) for x <= 0 (Klambauer et al., 2017);
# as x -> -inf it tends to -lambda * alpha, the value alpha dropout gives to dropped units. This is the
# constant ATen uses (1.7580993408473766 with the sign flipped), so that the results agree bit for bit.
_SELU_LAMBDA_ALPHA = 1.7580993408473766
SELU_SATURATION = -_SELU_LAMBDA_ALPHA
"""``alpha' = -lambda * alpha``, SELU's negative saturation value (about -1.7581)."""


def _zeros_like_product(input: torch.Tensor) -> torch.Tensor:
    # p = 1: every unit dropped. Multiply by a zero (not torch.zeros_like) so that the result stays in
    # the autograd graph, with a zero gradient, as F.dropout(x, 1.0) does.
    return input * torch.zeros((), dtype=input.dtype, device=input.device)


# --- DropConnect -----------------------------------------------------------------------------------------


def _check_linear_arguments(input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
    check_floating(input)
    check_floating(weight, "weight")
    if weight.ndim != 2:
        raise ValueError(
            "weight must be a 2-D (out_features, in_features) matrix, got weight of shape "
            f"{tuple(weight.shape)}"
        )
    if input.ndim < 1 or input.shape[-1] != weight.shape[1]:
        raise ValueError(
            f"input's last dimension must equal weight's in_features={weight.shape[1]}, got input of shape "
            f"{tuple(input.shape)}"
        )
    if bias is not None:
        check_floating(bias, "bias")
        if tuple(bias.shape) != (weight.shape[0],):
            raise ValueError(
                f"bias must have shape ({weight.shape[0]},) (out_features), got bias of shape "
                f"{tuple(bias.shape)}"
            )


def dropconnect_linear(
    input: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    p: float = 0.5,
    training: bool = True,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """DropConnect (Wan et al., 2013): a linear map whose *weights*, not inputs, are dropped.

    Math (``q = 1 - p``; one mask ``M`` for the whole weight matrix, drawn anew at every call)::

        training:   y = x (M * W / q)^T + b,   M_ij ~ Bernoulli(q)
        evaluation: y = x W^T + b

    Since ``y`` is linear in ``W`` and ``E[M_ij / q] = 1``, ``E_M[y] = x W^T + b``: the evaluation output
    is exactly the mean training output (the inverted scaling, as in :func:`dropoutlib.dropout`). The
    bias is never dropped. Backward: ``dL/dW = (dL/dy^T x) * M / q``, so a dropped weight gets no gradient
    at that step; ``dL/dx = dL/dy (M * W / q)``.

    Two documented simplifications of the paper:

    * **One mask per call, shared by the batch.** Wan et al. draw an independent mask for every example.
      That needs one ``(out, in)`` weight matrix per example, i.e. ``N`` times the memory and a batched
      matrix product instead of one matrix multiply; sharing the mask keeps DropConnect as cheap as a
      plain linear layer. The price: the examples of a batch all see the same thinned network, so the
      noise in one minibatch gradient is correlated across examples (its variance is larger).
    * **Mean-weight inference.** At test time the paper approximates the distribution of each unit's
      pre-activation by a Gaussian (moment matching) and averages the activation over samples from it.
      Here evaluation uses the mean weights ``W``, the same deterministic rule as inverted dropout; it is
      exact for the linear layer's output, not for what a nonlinearity makes of it.

    Args:
        input: floating-point tensor ``(*, in_features)``.
        weight: ``(out_features, in_features)``, the layout of ``nn.Linear.weight``.
        bias: ``(out_features,)`` or None.
        p: probability of dropping each weight, in ``[0, 1]``. ``p = 1`` drops all weights (output: the
            bias, or zeros).
        training: drop weights if True; the plain linear map otherwise.
        generator: optional ``torch.Generator`` for the mask; default: torch's global RNG.

    Returns:
        ``(*, out_features)``, in the dtype and on the device of ``input``.

    Example:
        >>> x = torch.ones(3, 4)
        >>> w = torch.ones(2, 4)
        >>> y = dropconnect_linear(x, w, p=0.5, generator=torch.Generator().manual_seed(5))
        >>> y  # one mask for the batch: every row sees the same thinned weights (kept ones scaled to 2)
        tensor([[6., 2.],
                [6., 2.],
                [6., 2.]])
        >>> dropconnect_linear(x, w, p=0.5, training=False)  # full weights: 4 ones summed
        tensor([[4., 4.],
                [4., 4.],
                [4., 4.]])
    """
    p = check_probability(p)
    check_generator(generator)
    _check_linear_arguments(input, weight, bias)
    if not training or p == 0.0:
        return F.linear(input, weight, bias)
    if p == 1.0:
        return F.linear(input, _zeros_like_product(weight), bias)
    thinned = DropoutFunction.apply(weight, dropout_mask(weight, p, generator))
    return F.linear(input, thinned, bias)


class DropConnectLinear(nn.Linear):
    """A linear layer trained with DropConnect: an ``nn.Linear`` whose weights are dropped in training.

    Training: ``y = x (M * W / q)^T + b`` with one mask ``M_ij ~ Bernoulli(q)`` per forward call, shared
    by the batch (see :func:`dropconnect_linear` for why, and for how this differs from the paper).
    Evaluation: ``y = x W^T + b``, the plain linear map. Subclasses ``nn.Linear``: same parameters, same
    initialisation, same ``state_dict`` keys (``weight``, ``bias``), so it loads a trained ``nn.Linear``'s
    state dict and vice versa.

    Shapes: input ``(*, in_features)``, output ``(*, out_features)``.

    Args:
        in_features, out_features: as for ``nn.Linear``.
        p: probability of dropping each weight, in ``[0, 1]``. Default 0.5.
        bias: learn an additive bias (never dropped). Default True.
        device, dtype: as for ``nn.Linear``.

    Example:
        >>> _ = torch.manual_seed(0)
        >>> layer = DropConnectLinear(4, 2, p=0.3)
        >>> layer
        DropConnectLinear(in_features=4, out_features=2, bias=True, p=0.3)
        >>> plain = nn.Linear(4, 2)
        >>> _ = plain.load_state_dict(layer.state_dict())
        >>> x = torch.randn(5, 4)
        >>> torch.equal(layer.eval()(x), plain(x))
        True
    """

    dropout_variant: ClassVar[bool] = True

    def __init__(
        self,
        in_features: int,
        out_features: int,
        p: float = 0.5,
        bias: bool = True,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        stored = _stored_p(p)
        super().__init__(in_features, out_features, bias=bias, device=device, dtype=dtype)
        self.p = stored

    @classmethod
    def from_linear(cls, linear: nn.Linear, p: float = 0.5) -> DropConnectLinear:
        """A DropConnect layer with a copy of ``linear``'s weights and bias (``linear`` is not changed).

        Example:
            >>> DropConnectLinear.from_linear(nn.Linear(3, 2, bias=False), p=0.1)
            DropConnectLinear(in_features=3, out_features=2, bias=False, p=0.1)
        """
        if not isinstance(linear, nn.Linear):
            raise TypeError(f"linear must be an nn.Linear, got linear={type(linear).__name__}")
        layer = cls(
            linear.in_features,
            linear.out_features,
            p,
            bias=linear.bias is not None,
            device=linear.weight.device,
            dtype=linear.weight.dtype,
        )
        layer.load_state_dict(linear.state_dict())
        return layer

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return dropconnect_linear(input, self.weight, self.bias, self.p, self.training)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, p={self.p}"


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
    check_floating(input)
    check_generator(generator)
    if not training or p == 0.0 or input.numel() == 0:
        return input
    noise = torch.empty_like(input).normal_(1.0, math.sqrt(p / (1 - p)), generator=generator)
    return DropoutFunction.apply(input, noise)


class _NoiseLayer(nn.Module):
    """The layer around a functional variant ``noise(input, p, training)``: it stores ``p`` and is the
    identity in evaluation mode (the functions return their input when ``training`` is False)."""

    dropout_variant: ClassVar[bool] = True
    noise: ClassVar[Callable[..., torch.Tensor]]  # a functional variant, as a staticmethod

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        self.p = _stored_p(p)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return self.noise(input, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class GaussianDropout(_NoiseLayer):
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

    noise = staticmethod(gaussian_dropout)

    def __init__(self, p: float = 0.5) -> None:
        _gaussian_p(p)
        super().__init__(p)


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


class AlphaDropout(_NoiseLayer):
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

    noise = staticmethod(alpha_dropout)


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
    example: stochastic depth (Huang et al., 2016), where each example trains a network of random depth.
    The inverted scaling ``1/q`` gives ``E[y] = x``, so evaluation uses the full branch. (Huang et al.
    scale at test time instead, by their survival probability; the two are equivalent, as for standard
    and inverted dropout.) The mask has shape ``(N, 1, ..., 1)`` and broadcasts over the other dimensions.

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


class DropPath(_NoiseLayer):
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

    noise = staticmethod(drop_path)


class ResidualBlock(nn.Module):
    """A fully connected residual block with stochastic depth: ``y = x + DropPath(p)(branch(x))``.

    ``branch`` is ``Linear(width, width) -> ReLU -> Linear(width, width)``. In training, each example
    skips the branch (``y = x``) with probability ``p``; otherwise it gets ``x + branch(x) / q``. In
    evaluation ``y = x + branch(x)``. Shapes: ``(N, width)`` to ``(N, width)``.

    The block itself is not a dropout layer (it has no ``dropout_variant`` attribute); its submodule
    ``drop_path`` (a :class:`DropPath`) is, so Monte Carlo dropout switches on exactly that.

    Args:
        width: number of features in and out.
        p: probability of skipping the branch, in ``[0, 1]``. Default 0.0 (a plain residual block).

    Example:
        >>> block = ResidualBlock(4, p=0.2)
        >>> block
        ResidualBlock(
          width=4, p=0.2
          (branch): Sequential(
            (0): Linear(in_features=4, out_features=4, bias=True)
            (1): ReLU()
            (2): Linear(in_features=4, out_features=4, bias=True)
          )
          (drop_path): DropPath(p=0.2)
        )
        >>> block(torch.randn(3, 4)).shape
        torch.Size([3, 4])
    """

    def __init__(self, width: int, p: float = 0.0) -> None:
        super().__init__()
        self.width = check_positive_int(width, "width")
        self.branch = nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, width))
        self.drop_path = DropPath(p)

    @property
    def p(self) -> float:
        """The probability of skipping the branch (that of the block's :class:`DropPath`)."""
        return self.drop_path.p

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return input + self.drop_path(self.branch(input))

    def extra_repr(self) -> str:
        return f"width={self.width}, p={self.p}"


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


def residual_mlp(
    in_features: int,
    width: int,
    out_features: int,
    depth: int,
    drop_path: float = 0.0,
    *,
    schedule: str = "linear",
) -> nn.Sequential:
    """A residual MLP with stochastic depth: ``Linear(in, width), ReLU, depth x ResidualBlock, Linear(width,
    out)``.

    Block ``l`` (``l = 1, ..., depth``) gets the DropPath rate of :func:`drop_path_schedule`:
    ``drop_path * l / depth`` (``schedule="linear"``, Huang et al., 2016) or ``drop_path``
    (``"uniform"``). Module indices: ``0`` input Linear, ``1`` ReLU, ``2 .. depth + 1`` the blocks,
    ``depth + 2`` the output Linear. Shapes: ``(N, in_features)`` to ``(N, out_features)``.

    Example:
        >>> net = residual_mlp(64, 32, 10, depth=4, drop_path=0.2)
        >>> [round(block.p, 3) for block in net[2:-1]]
        [0.05, 0.1, 0.15, 0.2]
        >>> net(torch.randn(5, 64)).shape
        torch.Size([5, 10])
    """
    in_features = check_positive_int(in_features, "in_features")
    width = check_positive_int(width, "width")
    out_features = check_positive_int(out_features, "out_features")
    rates = drop_path_schedule(drop_path, depth, schedule)
    return nn.Sequential(
        nn.Linear(in_features, width),
        nn.ReLU(),
        *(ResidualBlock(width, rate) for rate in rates),
        nn.Linear(width, out_features),
    )


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


class DropBlock2d(nn.Module):
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

    def __init__(self, p: float = 0.5, block_size: int = 3) -> None:
        super().__init__()
        self.p = _stored_p(p)
        self.block_size = check_positive_int(block_size, "block_size")

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return dropblock(input, self.p, self.block_size, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}, block_size={self.block_size}"
