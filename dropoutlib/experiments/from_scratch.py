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

The ``*_claims`` functions turn the chapter's measurements into its claims
(:class:`~dropoutlib.course.claims.Claim`), each threshold written once, here: the chapter checks them
for its own seed, ``tests/chapters/test_from_scratch_claims.py`` for five seeds. A statistical claim
allows :data:`STANDARD_ERRORS` standard errors (:func:`sampling_tolerance`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from dropoutlib._validation import check_positive_int, check_probability
from dropoutlib.course.claims import Claim, above, below
from dropoutlib.nn.dropout import Dropout, DropoutFunction, dropout, dropout_mask

__all__ = [
    "HAND_BATCH",
    "HAND_EPOCHS",
    "HAND_LR",
    "HAND_MIN_ACCURACY",
    "STANDARD_ERRORS",
    "DroppedUnitGradients",
    "backward_claims",
    "batch_gradient",
    "bitwise_claims",
    "dropped_unit_gradients",
    "forward_claims",
    "gradcheck_claims",
    "gradcheck_dropout",
    "gradient_claims",
    "hand_loop_claims",
    "init_two_layer",
    "mask_claims",
    "per_example_gradients",
    "rounding_claims",
    "sampling_tolerance",
    "train_by_hand",
    "two_layer_loss",
    "zero_column_claims",
    "zero_gradient_column_frequency",
]

_ACTIVATIONS = {"tanh": torch.tanh, "relu": torch.relu}


def _activation(name: str):
    if name not in _ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got activation={name!r}")
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


# --------------------------------------------------------------------------------------------------
# The chapter's claims. Every threshold they use is one of these constants or written in them.
# --------------------------------------------------------------------------------------------------

#: A measured mean or frequency matches its expected value within this many standard errors.
STANDARD_ERRORS = 4
#: The NumPy backward pass matches the numerical gradient (float64) to this relative error ...
GRADIENT_TOLERANCE = 1e-7
#: ... while a backward that forgets the 1/q is off by more than this.
WRONG_BACKWARD_ERROR = 0.1
#: Dividing after multiplying changes values in the last bit only: by at most this, relatively.
LAST_BIT = 1e-6
#: The per-example gradients average to the batch gradient (float64) up to this.
MEAN_GRADIENT_TOLERANCE = 1e-12


def sampling_tolerance(variance: float, n: int) -> float:
    r"""How far the mean of ``n`` independent draws of the given ``variance`` may stray: the claims' bound.

    :data:`STANDARD_ERRORS` standard errors, :math:`4\sqrt{\mathrm{variance}/n}`: for the fraction
    of units dropped the variance is :math:`pq`, for an output of inverted dropout on ones
    :math:`p/q`.

    Example:
        >>> round(sampling_tolerance(0.3 * 0.7, 100_000), 4)
        0.0058
    """
    return STANDARD_ERRORS * math.sqrt(variance / n)


def mask_claims(
    fractions: Mapping[float, float], n: int, dropped_per_example: torch.Tensor, units: int, p: float
) -> list[Claim]:
    """One coin per unit: the fraction dropped is ``p``, and so is the mean count per example over ``units``.

    ``fractions`` maps each ``p`` to the fraction dropped among ``n`` coins: within
    :func:`sampling_tolerance` ``(p q, n)`` of ``p``. ``dropped_per_example`` counts the units dropped
    in each example of a batch mask of ``units`` columns at drop probability ``p``: its mean is
    ``units p`` within the same number of standard errors.

    Example:
        >>> counts = torch.tensor([19, 20, 18, 20])
        >>> [claim.holds for claim in mask_claims({0.3: 0.301}, 100_000, counts, 64, 0.3)]
        [True, True]
    """
    claims = [
        below(f"p = {p:g}: the fraction dropped is p", abs(fraction - p), sampling_tolerance(p * (1 - p), n))
        for p, fraction in fractions.items()
    ]
    mean = dropped_per_example.double().mean().item()
    claims.append(
        below(
            f"the units dropped per example average {units} p",
            abs(mean - units * p),
            sampling_tolerance(units * p * (1 - p), len(dropped_per_example)),
        )
    )
    return claims


def forward_claims(
    x: torch.Tensor, y: torch.Tensor, y_eval: torch.Tensor, p: float, ones_out: torch.Tensor, ones_p: float
) -> list[Claim]:
    """The forward pass: zero, then rescale by ``1/q``; the identity in evaluation mode; the mean kept.

    ``y`` is ``dropout(x, p)`` in training and ``y_eval`` in evaluation mode; ``ones_out`` is
    ``dropout(ones, ones_p)`` over many units, whose mean is 1 within :func:`sampling_tolerance`
    ``(p / q, n)`` (each output is 0 or ``1/q``).

    Example:
        >>> x = torch.arange(1.0, 5.0)
        >>> y = torch.tensor([2.0, 0.0, 6.0, 0.0])
        >>> [c.holds for c in forward_claims(x, y, x, 0.5, torch.tensor([2.0, 0.0]), 0.5)]
        [True, True, True]
    """
    kept = y != 0
    scale = 1 / (1 - p)
    mean = ones_out.double().mean().item()
    return [
        Claim(
            f"kept values are scaled by 1/q = {scale:g}",
            torch.equal(y[kept], x[kept] * scale),
            f"{int(kept.sum())} kept of {y.numel()}",
        ),
        Claim(
            "in evaluation mode dropout returns its input",
            y_eval is x,
            "the same tensor" if y_eval is x else "another tensor",
        ),
        below(
            f"p = {ones_p:g}: the mean of dropout(ones) is 1",
            abs(mean - 1),
            sampling_tolerance(ones_p / (1 - ones_p), ones_out.numel()),
        ),
    ]


def backward_claims(error: float, forgot_scale: float, analytic: np.ndarray, mask: np.ndarray) -> list[Claim]:
    """The NumPy backward pass against a numerical gradient.

    ``error`` is the relative error of ``analytic`` (the backward pass) against the numerical
    gradient, below :data:`GRADIENT_TOLERANCE`; ``forgot_scale`` that of a backward without the
    ``1/q``, above :data:`WRONG_BACKWARD_ERROR`; and the gradient is exactly zero where ``mask`` is
    zero and nonzero elsewhere.

    Example:
        >>> mask = np.array([0.0, 2.0])
        >>> [c.holds for c in backward_claims(1e-10, 0.5, np.array([0.0, 1.3]), mask)]
        [True, True, True]
    """
    masked = bool(np.all(analytic[mask == 0] == 0) and np.all(analytic[mask != 0] != 0))
    return [
        below("the backward pass matches the numerical gradient", error, GRADIENT_TOLERANCE),
        Claim(
            "dropped entries get exactly zero gradient, kept ones not",
            masked,
            f"{int((mask == 0).sum())} dropped, {int((mask != 0).sum())} kept",
        ),
        above("the check catches a backward that forgets the 1/q", forgot_scale, WRONG_BACKWARD_ERROR),
    ]


def bitwise_claims(
    gradcheck_passed: bool, rows: Sequence[Mapping[str, object]], layers_equal: bool, eval_identity: bool
) -> list[Claim]:
    """The PyTorch version: ``gradcheck`` passes, and ``dropoutlib`` equals PyTorch bit for bit.

    ``rows`` holds, for each ``p``, whether ``dropoutlib.dropout`` and ``F.dropout`` gave equal
    ``"outputs equal"`` and ``"gradients equal"`` after the same seed; ``layers_equal`` whether
    ``dropoutlib.Dropout`` and ``nn.Dropout`` did, ``eval_identity`` whether both return their input
    in evaluation mode.

    Example:
        >>> rows = [{"p": 0.5, "outputs equal": True, "gradients equal": True}]
        >>> len(bitwise_claims(True, rows, True, True))
        4
    """
    claims = [Claim("gradcheck passes for DropoutFunction", bool(gradcheck_passed), f"{gradcheck_passed}")]
    claims += [
        Claim(
            f"p = {row['p']:g}: dropoutlib.dropout is F.dropout, bit for bit",
            bool(row["outputs equal"] and row["gradients equal"]),
            f"outputs equal: {row['outputs equal']}, gradients equal: {row['gradients equal']}",
        )
        for row in rows
    ]
    claims.append(
        Claim("dropoutlib.Dropout is nn.Dropout in training mode", bool(layers_equal), f"{layers_equal}")
    )
    claims.append(Claim("in evaluation mode both return the input", bool(eval_identity), f"{eval_identity}"))
    return claims


def rounding_claims(
    reordered: torch.Tensor, reference: torch.Tensor, uniform_mask: torch.Tensor, p: float
) -> list[Claim]:
    """Two correct dropouts that are not PyTorch's bits: rounding, and the use of the random stream.

    ``reference`` is ``F.dropout(x, p)``; ``reordered`` is ``x * keep / q`` with the same mask
    (divided after multiplying): the same zeros, some values different, by at most :data:`LAST_BIT`
    relatively. ``uniform_mask`` is ``rand_like(x) >= p`` after the same seed: it drops a fraction
    ``p`` (within :func:`sampling_tolerance`) but is not ``F.dropout``'s mask.

    Example:
        >>> ref = torch.tensor([0.0, 1.0 / 0.7, 0.0])
        >>> re = torch.tensor([0.0, 1.0 / 0.7 + 1e-7, 0.0])
        >>> [c.holds for c in rounding_claims(re, ref, torch.tensor([True, False, True]), 0.3)]
        [True, True, True, True, True]
    """
    differ = int((reordered != reference).sum())
    max_rel = ((reordered - reference).abs() / reference.abs().clamp_min(1e-30)).max().item()
    dropped = 1 - uniform_mask.double().mean().item()
    return [
        Claim(
            "x * keep / q has the same zeros as F.dropout",
            torch.equal(reordered == 0, reference == 0),
            f"{int((reordered == 0).sum())} and {int((reference == 0).sum())} zeros",
        ),
        above("x * keep / q rounds some values differently", differ, 0),
        below("by a last bit only (relative difference)", max_rel, LAST_BIT),
        below(
            "the rand >= p mask drops a fraction p",
            abs(dropped - p),
            sampling_tolerance(p * (1 - p), uniform_mask.numel()),
        ),
        Claim(
            "the rand >= p mask is not F.dropout's",
            not torch.equal(uniform_mask, reference != 0),
            f"agrees on {(uniform_mask == (reference != 0)).double().mean().item():.4f} of the units",
        ),
    ]


def gradient_claims(r: DroppedUnitGradients, activation: str = "tanh") -> list[Claim]:
    """Which weights a dropped unit's example leaves untouched (``r`` from :func:`dropped_unit_gradients`).

    A dropped (example, unit) pair sends exactly zero gradient out of and into the unit, and the
    per-example gradients average to the batch gradient (within :data:`MEAN_GRADIENT_TOLERANCE`).
    With ``activation="tanh"`` a kept pair's gradient is nonzero in every entry, so a column of the
    batch gradient is zero exactly for the units dropped in every example. With ``"relu"`` some kept
    units are inactive and get zero gradient too, into and out of the unit.

    Example:
        >>> r = dropped_unit_gradients(seed=0, p=0.5, batch_size=4, hidden=8)
        >>> all(claim.holds for claim in gradient_claims(r))
        True
    """
    _activation(activation)
    dropped = ~r.kept
    n_dropped = int(dropped.sum())
    zero = int(((r.out_norm == 0) & (r.in_norm == 0))[dropped].sum())
    claims = [
        Claim(
            "a dropped unit gets exactly zero gradient, out of and into it",
            zero == n_dropped,
            f"{zero} of {n_dropped} dropped pairs",
        ),
        below(
            "the batch gradient is the mean of the per-example gradients",
            r.mean_error,
            MEAN_GRADIENT_TOLERANCE,
        ),
    ]
    if activation == "tanh":
        nonzero = int((r.out_nonzero & r.in_nonzero)[r.kept].sum())
        n_kept = int(r.kept.sum())
        claims.append(
            Claim(
                "a kept unit gets nonzero gradient in every entry",
                nonzero == n_kept,
                f"{nonzero} of {n_kept} kept pairs",
            )
        )
        zero_in_batch = r.batch_out_norm == 0
        claims.append(
            Claim(
                "a zero batch gradient means dropped in every example",
                torch.equal(r.dropped_everywhere, zero_in_batch),
                f"{int(zero_in_batch.sum())} zero columns, "
                f"{int(r.dropped_everywhere.sum())} units dropped everywhere",
            )
        )
    else:
        kept_zero = r.kept & (r.out_norm == 0)
        claims.append(
            Claim(
                "some kept units are inactive and get zero gradient",
                bool(kept_zero.any()),
                f"{int(kept_zero.sum())} of {int(r.kept.sum())} kept pairs",
            )
        )
        claims.append(
            Claim(
                "an inactive unit also blocks the weights into it",
                bool((r.in_norm[kept_zero] == 0).all()),
                f"{int((r.in_norm[kept_zero] == 0).sum())} of {int(kept_zero.sum())}",
            )
        )
    return claims


def zero_column_claims(measured: Mapping[int, tuple[float, int]], p: float) -> list[Claim]:
    """Columns of ``W2`` get a zero batch gradient with probability ``p^B``.

    ``measured`` maps each batch size ``B`` to :func:`zero_gradient_column_frequency`'s
    ``(frequency, trials)``: within :func:`sampling_tolerance` ``(p^B (1 - p^B), trials)`` of ``p^B``.

    Example:
        >>> [claim.holds for claim in zero_column_claims({1: (0.51, 3200), 2: (0.5, 3200)}, 0.5)]
        [True, False]
    """
    return [
        below(
            f"B = {b}: a zero column has probability p^B",
            abs(frequency - p**b),
            sampling_tolerance(p**b * (1 - p**b), trials),
        )
        for b, (frequency, trials) in measured.items()
    ]


# --------------------------------------------------------------------------------------------------
# gradcheck can fail: a backward that forgets the mask, as a control.
# --------------------------------------------------------------------------------------------------


class _UnmaskedBackward(torch.autograd.Function):
    """``x * mask`` forward, but a wrong backward that passes the gradient through unmasked."""

    @staticmethod
    def forward(input: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return input * mask

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:  # noqa: ANN001 - autograd's signature
        pass

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):  # noqa: ANN001, ANN205 - autograd's signature
        return grad_output, None


def gradcheck_dropout(*, broken: bool = False, p: float = 0.4, seed: int = 0) -> bool:
    """Run ``torch.autograd.gradcheck`` on ``DropoutFunction`` (or, ``broken``, on a wrong backward).

    ``raise_exception=False``, so the answer can be False: with ``broken=True`` the backward ignores
    the mask, which gradcheck must reject. Float64, a 6x5 input and a fixed mask drawn at ``p``.

    Example:
        >>> gradcheck_dropout(), gradcheck_dropout(broken=True)
        (True, False)
    """
    p = check_probability(p)
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(6, 5, dtype=torch.float64, requires_grad=True, generator=generator)
    mask = dropout_mask(x.detach(), p=p, generator=generator)
    function = _UnmaskedBackward if broken else DropoutFunction
    return bool(
        torch.autograd.gradcheck(function.apply, (x, mask), eps=1e-6, atol=1e-8, raise_exception=False)
    )


def gradcheck_claims(broken_passed: bool) -> list[Claim]:
    """The control: gradcheck rejects a backward that forgets the mask (:func:`gradcheck_dropout`).

    Example:
        >>> [c.holds for c in gradcheck_claims(False)]
        [True]
    """
    statement = "gradcheck rejects a backward that ignores the mask"
    return [Claim(statement, not broken_passed, f"{broken_passed}")]


# --------------------------------------------------------------------------------------------------
# The reader's one look inside fit: a small MLP on the from-scratch layer, trained by a visible loop.
# --------------------------------------------------------------------------------------------------

#: Epochs, batch size and learning rate of :func:`train_by_hand`.
HAND_EPOCHS = 8
HAND_BATCH = 64
HAND_LR = 1e-2
#: The hand-trained MLP must beat this test accuracy on the digits (chance: 0.1).
HAND_MIN_ACCURACY = 0.9


def train_by_hand(data, *, p=0.5, seed=0, epochs=HAND_EPOCHS):
    """A 64-128-10 MLP with dropoutlib.Dropout(p), trained by a visible loop.

    Returns (model, losses, accuracy): the model in evaluation mode, the
    mean training-mode loss of each epoch, the test accuracy (eval mode).

    Example:
        >>> from dropoutlib.course.data import load_digits
        >>> _, losses, acc = train_by_hand(load_digits(), epochs=1)
        >>> len(losses), 0 <= acc <= 1
        (1, True)
    """
    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Linear(64, 128), torch.nn.ReLU(),
        Dropout(p), torch.nn.Linear(128, 10),
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=HAND_LR)
    x, y = data.x_train, data.y_train
    losses = []
    for _ in range(epochs):
        model.train()  # dropout on: fresh masks in every forward pass
        total = 0.0
        for batch in torch.randperm(len(x)).split(HAND_BATCH):
            loss = F.cross_entropy(model(x[batch]), y[batch])
            optimizer.zero_grad()
            loss.backward()  # the gradient, through the same masks
            optimizer.step()  # one Adam update
            total += loss.item() * len(batch)
        losses.append(total / len(x))
    model.eval()  # dropout off: the layer returns its input
    with torch.no_grad():
        predicted = model(data.x_test).argmax(dim=1)
    accuracy = (predicted == data.y_test).float().mean().item()
    return model, losses, accuracy


def hand_loop_claims(losses: Sequence[float], accuracy: float, n_test: int) -> list[Claim]:
    """The loop learns: the training loss falls, and the test accuracy beats :data:`HAND_MIN_ACCURACY`
    by more than two binomial standard errors of a test set of ``n_test`` images.

    Example:
        >>> [c.holds for c in hand_loop_claims([2.0, 0.5], 0.97, 540)]
        [True, True]
    """
    se = math.sqrt(accuracy * (1 - accuracy) / n_test)
    return [
        below("the training loss falls over the epochs", losses[-1], losses[0]),
        above(
            f"the test accuracy beats {HAND_MIN_ACCURACY:.0%} by two standard errors",
            accuracy - 2 * se,
            HAND_MIN_ACCURACY,
        ),
    ]
