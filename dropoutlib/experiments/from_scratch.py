"""Which weights does a dropped unit's gradient reach? Per-example gradient measurements.

The network studied is the smallest one where the question makes sense::

    z = x W1^T + b1            (B, H)   the layer *into* the hidden units
    h = act(z)                 (B, H)   act = tanh or relu
    d = h * s                  (B, H)   dropout with a fixed scaled mask s = m / q, m ~ Bernoulli(q)
    o = d W2^T + b2            (B, C)   the layer *out of* the hidden units
    L = mean_n CE(o_n, y_n)

For one example ``n``, with ``delta_n = dCE/do_n = softmax(o_n) - onehot(y_n)``::

    dL_n/dW2[:, j] = delta_n * h_nj * s_nj          (column j of W2: the weights out of unit j)
    dL_n/dW1[j, :] = (W2[:, j] . delta_n) * s_nj * act'(z_nj) * x_n   (row j of W1: into unit j)

Both carry the factor ``s_nj``, so both are exactly zero when unit ``j`` was dropped for example
``n``. The mini-batch gradient is the average over the batch, so it is zero in column ``j`` only
when unit ``j`` was dropped in every example, which happens with probability ``p^B``.

Every network here is float64 so that "exactly zero" and "nonzero" are not blurred by rounding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from dropoutlib._validation import check_positive_int, check_probability
from dropoutlib.nn.dropout import DropoutFunction, dropout, dropout_mask

__all__ = [
    "DroppedUnitGradients",
    "batch_gradient",
    "dropped_unit_gradients",
    "init_two_layer",
    "per_example_gradients",
    "two_layer_loss",
    "zero_gradient_column_frequency",
]

_ACTIVATIONS = {"tanh": torch.tanh, "relu": torch.relu}


def _activation(name: str):
    if name not in _ACTIVATIONS:
        raise ValueError(
            f"activation must be one of {sorted(_ACTIVATIONS)}, got activation={name!r}"
        )
    return _ACTIVATIONS[name]


def init_two_layer(
    in_features: int, hidden: int, out_features: int, generator: torch.Generator
) -> dict[str, torch.Tensor]:
    """Float64 parameters ``W1 (H, D), b1 (H,), W2 (C, H), b2 (C,)``, initialised as nn.Linear.

    Each entry is uniform on ``[-1/sqrt(fan_in), 1/sqrt(fan_in)]``; the tensors require grad.

    Example:
        >>> params = init_two_layer(3, 5, 2, torch.Generator().manual_seed(0))
        >>> {name: tuple(t.shape) for name, t in params.items()}
        {'W1': (5, 3), 'b1': (5,), 'W2': (2, 5), 'b2': (2,)}
    """
    in_features = check_positive_int(in_features, "in_features")
    hidden = check_positive_int(hidden, "hidden")
    out_features = check_positive_int(out_features, "out_features")
    shapes = {
        "W1": ((hidden, in_features), in_features),
        "b1": ((hidden,), in_features),
        "W2": ((out_features, hidden), hidden),
        "b2": ((out_features,), hidden),
    }
    params = {}
    for name, (shape, fan_in) in shapes.items():
        bound = 1.0 / math.sqrt(fan_in)
        values = torch.rand(shape, generator=generator, dtype=torch.float64) * 2 * bound - bound
        params[name] = values.requires_grad_()
    return params


def two_layer_loss(
    params: dict[str, torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    mask: torch.Tensor,
    activation: str = "tanh",
) -> torch.Tensor:
    """Mean cross-entropy of ``Linear(W2) o dropout(mask) o act o Linear(W1)`` on ``(x, y)``.

    ``mask`` is the scaled dropout mask ``s = m / q`` of shape ``(B, H)``, applied with
    :class:`~dropoutlib.nn.DropoutFunction` (fixed, so the loss is a deterministic function of
    the parameters and can be differentiated example by example).

    Example:
        >>> params = init_two_layer(3, 4, 2, torch.Generator().manual_seed(0))
        >>> x, y = torch.ones(1, 3, dtype=torch.float64), torch.tensor([1])
        >>> mask = torch.tensor([[2.0, 0.0, 2.0, 0.0]], dtype=torch.float64)
        >>> two_layer_loss(params, x, y, mask).shape
        torch.Size([])
    """
    act = _activation(activation)
    h = act(x @ params["W1"].T + params["b1"])
    logits = DropoutFunction.apply(h, mask) @ params["W2"].T + params["b2"]
    return F.cross_entropy(logits, y)


def batch_gradient(
    params: dict[str, torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    mask: torch.Tensor,
    activation: str = "tanh",
) -> dict[str, torch.Tensor]:
    """Gradient of the mini-batch loss (the mean over the batch), one backward pass.

    Example:
        >>> params = init_two_layer(3, 4, 2, torch.Generator().manual_seed(0))
        >>> x, y = torch.ones(2, 3, dtype=torch.float64), torch.tensor([0, 1])
        >>> grads = batch_gradient(params, x, y, torch.ones(2, 4, dtype=torch.float64))
        >>> tuple(grads["W2"].shape)
        (2, 4)
    """
    names = list(params)
    loss = two_layer_loss(params, x, y, mask, activation)
    grads = torch.autograd.grad(loss, [params[name] for name in names])
    return dict(zip(names, grads, strict=True))


def per_example_gradients(
    params: dict[str, torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    mask: torch.Tensor,
    activation: str = "tanh",
) -> dict[str, torch.Tensor]:
    """Gradient of each example's own loss: a tensor of shape ``(B, *param.shape)`` per parameter.

    Example ``n`` is run alone through the network with its own row ``mask[n]`` of the mask,
    exactly the computation it takes part in inside the batch. Averaging over the batch dimension
    gives :func:`batch_gradient` (up to rounding).

    Example:
        >>> params = init_two_layer(3, 4, 2, torch.Generator().manual_seed(0))
        >>> x, y = torch.ones(2, 3, dtype=torch.float64), torch.tensor([0, 1])
        >>> grads = per_example_gradients(params, x, y, torch.ones(2, 4, dtype=torch.float64))
        >>> tuple(grads["W2"].shape)
        (2, 2, 4)
    """
    rows = [
        batch_gradient(params, x[n : n + 1], y[n : n + 1], mask[n : n + 1], activation)
        for n in range(x.shape[0])
    ]
    return {name: torch.stack([row[name] for row in rows]) for name in params}


@dataclass(frozen=True)
class DroppedUnitGradients:
    """One batch of the two-layer network, measured example by example.

    Shapes use ``B`` examples and ``H`` hidden units; every tensor is float64 except the boolean ones.

    Attributes:
        kept: ``(B, H)`` bool, True where unit ``j`` was kept for example ``n``.
        out_norm: ``(B, H)``, ``||dL_n/dW2[:, j]||``: the weights *out of* unit ``j``.
        in_norm: ``(B, H)``, ``||(dL_n/dW1[j, :], dL_n/db1[j])||``: the weights *into* unit ``j``.
        out_nonzero: ``(B, H)`` bool, True where *every* entry of ``dL_n/dW2[:, j]`` is nonzero.
        in_nonzero: ``(B, H)`` bool, the same for row ``j`` of ``W1`` and ``b1[j]``.
        batch_out_norm: ``(H,)``, ``||dL/dW2[:, j]||`` for the mini-batch loss (one backward pass).
        mean_error: ``max |mean_n(dL_n/dtheta) - dL/dtheta|`` over all parameters: the per-example
            gradients average to the mini-batch gradient.
        p: the drop probability used.
    """

    kept: torch.Tensor
    out_norm: torch.Tensor
    in_norm: torch.Tensor
    out_nonzero: torch.Tensor
    in_nonzero: torch.Tensor
    batch_out_norm: torch.Tensor
    mean_error: float
    p: float

    @property
    def dropped_everywhere(self) -> torch.Tensor:
        """``(H,)`` bool: units dropped in every example of the batch."""
        return ~self.kept.any(dim=0)


def dropped_unit_gradients(
    seed: int = 0,
    p: float = 0.5,
    batch_size: int = 4,
    in_features: int = 10,
    hidden: int = 32,
    classes: int = 3,
    activation: str = "tanh",
) -> DroppedUnitGradients:
    """Draw a batch and a dropout mask, and measure which weights each example's gradient reaches.

    Inputs ``x ~ N(0, 1)``, random labels, parameters from :func:`init_two_layer`, and a mask
    from :func:`~dropoutlib.functional.dropout_mask`, all drawn from one generator seeded with
    ``seed``. With ``activation="tanh"`` a kept unit's activation is never exactly zero, so the
    zeros in the per-example gradients are exactly the dropped units; with ``"relu"`` a kept unit
    whose pre-activation is negative also gets zero gradient (for a different reason).

    Example:
        >>> r = dropped_unit_gradients(seed=0, p=0.5, batch_size=4, hidden=8)
        >>> bool((r.out_norm[~r.kept] == 0).all()), bool(r.out_nonzero[r.kept].all())
        (True, True)
    """
    p = check_probability(p)
    if p == 1.0:
        raise ValueError("p must be below 1 here (every unit dropped leaves nothing to compare)")
    batch_size = check_positive_int(batch_size, "batch_size")
    classes = check_positive_int(classes, "classes")
    generator = torch.Generator().manual_seed(seed)
    params = init_two_layer(in_features, hidden, classes, generator)
    x = torch.randn(batch_size, in_features, generator=generator, dtype=torch.float64)
    y = torch.randint(classes, (batch_size,), generator=generator)
    mask = dropout_mask(torch.empty(batch_size, hidden, dtype=torch.float64), p, generator)

    each = per_example_gradients(params, x, y, mask, activation)
    whole = batch_gradient(params, x, y, mask, activation)
    into = torch.cat([each["W1"], each["b1"].unsqueeze(-1)], dim=-1)  # (B, H, D + 1)
    out = each["W2"].transpose(1, 2)  # (B, H, C): column j of W2, per example
    mean_error = max(float((each[k].mean(0) - whole[k]).abs().max()) for k in params)
    return DroppedUnitGradients(
        kept=mask != 0,
        out_norm=out.norm(dim=-1),
        in_norm=into.norm(dim=-1),
        out_nonzero=(out != 0).all(dim=-1),
        in_nonzero=(into != 0).all(dim=-1),
        batch_out_norm=whole["W2"].norm(dim=0),
        mean_error=mean_error,
        p=p,
    )


def zero_gradient_column_frequency(
    p: float,
    batch_size: int,
    seed: int = 0,
    n_batches: int = 500,
    in_features: int = 10,
    hidden: int = 64,
    classes: int = 3,
) -> tuple[float, int]:
    """How often a column of ``W2`` (the weights out of a unit) gets an exactly zero batch gradient.

    Draws ``n_batches`` independent batches, runs the tanh network on them with
    :func:`~dropoutlib.functional.dropout` (a fresh mask for every example, as in training) and
    obtains each batch's gradient of its mean loss with respect to ``W2`` from one ``backward()``
    (every batch uses its own copy of ``W2``, so the copies' gradients are the batches' gradients).
    Counts the columns of those gradients that are exactly zero. Only gradients are looked at, not
    masks. Theory: a column is zero exactly when its unit was dropped in all ``B`` examples of the
    batch, which has probability ``p^B``.

    Returns:
        ``(frequency, trials)``: the fraction of zero columns over ``trials = n_batches * hidden``
        (batch, unit) pairs. Its binomial standard error is ``sqrt(p^B (1 - p^B) / trials)``.

    Example:
        >>> freq, trials = zero_gradient_column_frequency(0.5, batch_size=1, n_batches=50)
        >>> trials, abs(freq - 0.5) < 0.1
        (3200, True)
    """
    p = check_probability(p)
    batch_size = check_positive_int(batch_size, "batch_size")
    n_batches = check_positive_int(n_batches, "n_batches")
    generator = torch.Generator().manual_seed(seed)
    params = init_two_layer(in_features, hidden, classes, generator)
    shape = (n_batches, batch_size)
    x = torch.randn(*shape, in_features, generator=generator, dtype=torch.float64)
    y = torch.randint(classes, shape, generator=generator)
    w2 = params["W2"].detach().expand(n_batches, classes, hidden).clone().requires_grad_()
    with torch.no_grad():
        h = torch.tanh(x @ params["W1"].T + params["b1"])  # W1 is not studied here
    logits = dropout(h, p, generator=generator) @ w2.transpose(1, 2) + params["b2"].detach()
    per_example = F.cross_entropy(logits.reshape(-1, classes), y.reshape(-1), reduction="none")
    (grad_w2,) = torch.autograd.grad(per_example.view(shape).mean(dim=1).sum(), [w2])
    zero_columns = int((grad_w2 == 0).all(dim=1).sum())  # grad_w2: (n_batches, C, H)
    trials = n_batches * hidden
    return zero_columns / trials, trials
