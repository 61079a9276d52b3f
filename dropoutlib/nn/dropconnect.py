"""DropConnect (Wan et al., 2013): drop each weight of a linear layer, not each unit."""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from dropoutlib._validation import (
    check_bool,
    check_floating,
    check_generator,
    check_probability,
)
from dropoutlib.nn._base import _stored_p, _zeros_like_product
from dropoutlib.nn.dropout import DropoutFunction, dropout_mask

__all__ = [
    "dropconnect_linear",
    "DropConnectLinear",
]


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

    Three documented simplifications of the paper:

    * **One mask per call, shared by the batch.** Wan et al. draw an independent mask for every example.
      That needs one ``(out, in)`` weight matrix per example, i.e. ``N`` times the memory and a batched
      matrix product instead of one matrix multiply; sharing the mask keeps DropConnect as cheap as a
      plain linear layer. The price: the examples of a batch all see the same thinned network, so the
      noise in one minibatch gradient is correlated across examples (its variance is larger).
    * **Mean-weight inference.** At test time the paper approximates the distribution of each unit's
      pre-activation by a Gaussian (moment matching) and averages the activation over samples from it.
      Here evaluation uses the mean weights ``W``, the same deterministic rule as inverted dropout; it is
      exact for the linear layer's output, not for what a nonlinearity makes of it.
    * **The bias is kept.** The paper masks the biases with the weights; here only ``W`` is dropped, so
      the bias adds to the output's mean and nothing to its variance.

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
    training = check_bool(training, "training")
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
