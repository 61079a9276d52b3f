r"""Dropout as adaptive weight decay: the analysis behind chapter 6.

For a linear unit :math:`\hat y = x^\top w` with inverted dropout on its inputs, a mask :math:`M`
(entries :math:`M_{ij} \sim \mathrm{Bernoulli}(q)`, one per example and input) turns the design
matrix :math:`X` (shape ``(n, d)``) into :math:`X \odot M / q`, and the expected squared error over
the masks is least squares plus a ridge penalty whose weights come from the data:

.. math::

    \mathbb E_M \big\| y - (X \odot M / q)\, w \big\|^2
    = \| y - X w \|^2 + \frac{p}{q} \sum_{j=1}^{d} w_j^2 \, \| X_{:,j} \|^2 .

(Each prediction is unbiased, :math:`\mathbb E[\hat y_i] = (Xw)_i`, and has variance
:math:`\frac{p}{q}\sum_j X_{ij}^2 w_j^2`; the expected squared error is the squared bias plus that
variance.) Its minimizer is the closed form

.. math::

    w^\star = \Big(X^\top X + \frac{p}{q}\, \mathrm{diag}(X^\top X)\Big)^{-1} X^\top y .

- :func:`dropout_ridge_penalty`, :func:`expected_dropout_loss`: the two sides of the identity;
  :func:`sample_dropout_losses` (Monte Carlo over masks) and :func:`exact_dropout_loss` (every mask
  of a tiny problem, weighted by its probability) check it.
- :func:`dropout_ridge_solution`: :math:`w^\star`, also when :math:`d \gg n` (through the
  :math:`n \times n` dual system), and the minimum-norm least-squares solution at ``p = 0``.
- :func:`equivalent_weight_decay`: the per-weight decay that dropout amounts to, in PyTorch's
  ``weight_decay`` convention.
- :func:`train_linear_unit`: trains bias-free linear units with dropout on their inputs by SGD
  (one unit per drop probability, side by side) and records their weight norms.
- :func:`linear_problem`: the regression data sets of the chapter.
- :func:`controlled_comparison`: dropout, weight decay and no regularization on the digits, with a
  validation split for early stopping and for tuning, over several seeds (one batched model);
  :func:`procedure_values`, :func:`controlled_table` and :func:`controlled_claims` read it.

Notation: ``p`` is the probability of dropping an input, ``q = 1 - p`` of keeping it. The 2014 JMLR
paper (section 9.1) writes ``p`` for the probability of *keeping* a unit and uses standard
(non-inverted) dropout; its penalty coefficient ``(1 - p) / p`` is our ``p / q``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from dropoutlib._validation import check_floating, check_positive_int, check_probability
from dropoutlib.course._threads import torch_threads
from dropoutlib.course.claims import Claim, above, below
from dropoutlib.course.data import Split
from dropoutlib.course.seeding import check_seed

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes

__all__ = [
    "CONTROLLED_EPOCHS",
    "DROPOUT_GRID",
    "MAX_NORM_GRID",
    "project_max_norm",
    "PROCEDURES",
    "WEIGHT_DECAY_GRID",
    "ControlledComparison",
    "controlled_claims",
    "controlled_comparison",
    "controlled_settings",
    "controlled_table",
    "plot_procedures",
    "procedure_values",
    "validation_split",
    "SMALL_SCALES",
    "SMALL_WEIGHTS",
    "LinearUnitRun",
    "WideUnitResult",
    "dropout_ridge_penalty",
    "dropout_ridge_solution",
    "enumeration_claims",
    "fit_logistic",
    "glm_claims",
    "glm_experiment",
    "logistic_dropout_penalty",
    "logistic_problem",
    "sample_logistic_penalty",
    "equivalent_weight_decay",
    "exact_dropout_loss",
    "expected_dropout_loss",
    "identity_claims",
    "linear_problem",
    "ridge_claims",
    "sample_dropout_losses",
    "small_problem",
    "stable_learning_rate",
    "train_linear_unit",
    "wide_unit_claims",
    "wide_unit_experiment",
]

_MAX_ENUMERATED_ENTRIES = 16  # exact_dropout_loss enumerates 2 ** (n * d) masks: at most 65,536
_CHUNK_ELEMENTS = 2**22  # at most this many mask entries at once in sample_dropout_losses


# --- argument checks ----------------------------------------------------------------------------


def _design(x: Any) -> torch.Tensor:
    check_floating(x, "x")
    if x.dim() != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"x must be a non-empty matrix of shape (n, d), got shape {tuple(x.shape)}")
    return x.detach().double()


def _vector(v: Any, name: str, length: int, what: str) -> torch.Tensor:
    check_floating(v, name)
    if v.dim() == 2 and v.shape[1] == 1:  # a column, as in a regression Split
        v = v[:, 0]
    if v.dim() != 1 or v.shape[0] != length:
        raise ValueError(f"{name} must have shape ({length},) ({what}), got shape {tuple(v.shape)}")
    return v.detach().double()


def _drop_probability(p: Any, *, allow_zero: bool = True) -> float:
    p = check_probability(p)
    if p == 1.0:
        raise ValueError("p must be below 1: with p=1 every input is dropped and p/q is infinite")
    if p == 0.0 and not allow_zero:
        raise ValueError("p must be positive here, got p=0.0")
    return p


def _column_norms_squared(x: torch.Tensor) -> torch.Tensor:
    return (x * x).sum(dim=0)


# --- the identity -------------------------------------------------------------------------------


def dropout_ridge_penalty(x: torch.Tensor, w: torch.Tensor, p: float) -> float:
    r"""The penalty that inverted dropout on the inputs adds to the squared error of a linear unit.

    .. math::

        R(w) = \frac{p}{q} \sum_{j=1}^{d} w_j^2 \, \|X_{:,j}\|^2 ,

    a ridge penalty in which every weight is charged by the squared norm of its input column: it is
    the summed variance of the predictions over the masks (sum of squared errors, not their mean).

    Args:
        x: the design matrix :math:`X`, shape ``(n, d)``, floating point.
        w: the weights, shape ``(d,)``.
        p: drop probability, ``0 <= p < 1``.

    Example:
        >>> x = torch.tensor([[1.0, 2.0], [3.0, 0.0]])
        >>> dropout_ridge_penalty(x, torch.tensor([1.0, -1.0]), 0.5)  # 1 * 10 + 1 * 4
        14.0
    """
    x = _design(x)
    w = _vector(w, "w", x.shape[1], "one weight per column of x")
    p = _drop_probability(p)
    return float(p / (1.0 - p) * (w * w * _column_norms_squared(x)).sum())


def expected_dropout_loss(x: torch.Tensor, y: torch.Tensor, w: torch.Tensor, p: float) -> float:
    r"""The squared error of a linear unit with inverted input dropout, averaged over all masks.

    .. math::

        \mathbb E_M \big\| y - (X \odot M / q)\, w \big\|^2
        = \| y - X w \|^2 + \frac{p}{q} \sum_j w_j^2 \|X_{:,j}\|^2

    (least squares plus :func:`dropout_ridge_penalty`), with :math:`M_{ij} \sim \mathrm{Bernoulli}(q)`
    independent. ``y`` may have shape ``(n,)`` or ``(n, 1)``.

    Example:
        >>> x, y = torch.tensor([[1.0, 2.0], [3.0, 0.0]]), torch.tensor([1.0, 2.0])
        >>> expected_dropout_loss(x, y, torch.tensor([1.0, -1.0]), 0.5)  # (2^2 + 1^2) + 14
        19.0
    """
    x = _design(x)
    y = _vector(y, "y", x.shape[0], "one target per row of x")
    w = _vector(w, "w", x.shape[1], "one weight per column of x")
    residual = y - x @ w
    return float(residual @ residual) + dropout_ridge_penalty(x, w, p)


def sample_dropout_losses(
    x: torch.Tensor,
    y: torch.Tensor,
    w: torch.Tensor,
    p: float,
    n_masks: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""The squared error :math:`\|y - (X \odot M / q) w\|^2` for ``n_masks`` independent masks.

    Every mask has one entry per example and input (``n * d`` entries), kept with probability ``q``;
    masks are drawn in chunks from ``generator`` (the global generator if ``None``). Their mean
    estimates :func:`expected_dropout_loss`.

    Returns:
        A float64 tensor of shape ``(n_masks,)``.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> x, y, w = torch.randn(5, 3, generator=g), torch.randn(5, generator=g), torch.ones(3)
        >>> losses = sample_dropout_losses(x, y, w, 0.3, 20_000, generator=g)
        >>> error = abs(losses.mean().item() - expected_dropout_loss(x, y, w, 0.3))
        >>> bool(error < 4 * losses.std().item() / 20_000 ** 0.5)
        True
    """
    x = _design(x)
    y = _vector(y, "y", x.shape[0], "one target per row of x")
    w = _vector(w, "w", x.shape[1], "one weight per column of x")
    p = _drop_probability(p)
    n_masks = check_positive_int(n_masks, "n_masks")
    q = 1.0 - p
    per_chunk = max(1, _CHUNK_ELEMENTS // x.numel())
    chunks = []
    with torch_threads(1):
        for start in range(0, n_masks, per_chunk):
            k = min(per_chunk, n_masks - start)
            keep = torch.rand((k, *x.shape), generator=generator, dtype=torch.float64) >= p
            thinned = x * keep / q  # (k, n, d)
            residual = y - thinned @ w
            chunks.append((residual * residual).sum(dim=1))
    return torch.cat(chunks)


def exact_dropout_loss(x: torch.Tensor, y: torch.Tensor, w: torch.Tensor, p: float) -> float:
    r"""The expected dropout loss of a tiny problem, by enumerating every mask.

    Sums :math:`\Pr(M)\, \|y - (X \odot M / q) w\|^2` over all :math:`2^{nd}` masks, where a mask
    that keeps :math:`k` of the :math:`nd` entries has probability :math:`q^k p^{nd - k}`. No
    sampling, no formula: a check of :func:`expected_dropout_loss` up to rounding. Limited to
    ``n * d <= 16`` (65,536 masks).

    Example:
        >>> x, y = torch.tensor([[1.0, 2.0], [3.0, 0.0]]), torch.tensor([1.0, 2.0])
        >>> round(exact_dropout_loss(x, y, torch.tensor([1.0, -1.0]), 0.5), 10)
        19.0
    """
    x = _design(x)
    y = _vector(y, "y", x.shape[0], "one target per row of x")
    w = _vector(w, "w", x.shape[1], "one weight per column of x")
    p = _drop_probability(p)
    entries = x.numel()
    if entries > _MAX_ENUMERATED_ENTRIES:
        raise ValueError(
            f"x has {entries} entries, so 2**{entries} masks to enumerate; at most "
            f"{_MAX_ENUMERATED_ENTRIES} entries are allowed (use sample_dropout_losses instead)"
        )
    q = 1.0 - p
    codes = torch.arange(2**entries).unsqueeze(1)
    keep = ((codes >> torch.arange(entries)) & 1).double()  # (2**entries, entries): every mask
    kept = keep.sum(dim=1)
    probability = q**kept * p ** (entries - kept)
    thinned = x * keep.reshape(-1, *x.shape) / q
    residual = y - thinned @ w
    return float((probability * (residual * residual).sum(dim=1)).sum())


# --- the closed form ------------------------------------------------------------------------------


def dropout_ridge_solution(x: torch.Tensor, y: torch.Tensor, p: float) -> torch.Tensor:
    r"""The weights that minimize the expected dropout loss of a linear unit: a ridge solution.

    .. math::

        w^\star = \Big(X^\top X + \frac{p}{q}\, D\Big)^{-1} X^\top y,
        \qquad D = \mathrm{diag}\big(\|X_{:,1}\|^2, \dots, \|X_{:,d}\|^2\big).

    When ``d > n`` the same vector is computed through the :math:`n \times n` system
    :math:`w^\star = \Lambda^{-1} X^\top (I + X \Lambda^{-1} X^\top)^{-1} y`, with
    :math:`\Lambda = \frac{p}{q} D` (the push-through identity), so a unit with 10,000 inputs costs a
    100 x 100 solve. At ``p = 0`` there is no penalty, and the result is the minimum-norm
    least-squares solution :math:`X^+ y`, the limit of gradient descent started from zero weights.
    An all-zero column gets weight 0 (it changes neither the fit nor, then, the penalty).

    Returns:
        A float64 tensor of shape ``(d,)``.

    Example:
        >>> x = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
        >>> y = torch.tensor([1.0, 2.0, 3.0])
        >>> dropout_ridge_solution(x, y, 0.5)  # ([[2, 1], [1, 5]] + diag(2, 5))^-1 (4, 7)
        tensor([0.8462, 0.6154], dtype=torch.float64)
    """
    x = _design(x)
    y = _vector(y, "y", x.shape[0], "one target per row of x")
    p = _drop_probability(p)
    with torch_threads(1):
        return _ridge_solution(x, y, p)


def _ridge_solution(x: torch.Tensor, y: torch.Tensor, p: float) -> torch.Tensor:
    n, d = x.shape
    if p == 0.0:
        return torch.linalg.pinv(x) @ y
    used = _column_norms_squared(x) > 0
    w = torch.zeros(d, dtype=torch.float64)
    xs = x[:, used]
    penalty = p / (1.0 - p) * _column_norms_squared(xs)
    if xs.shape[1] <= n:
        w[used] = torch.linalg.solve(xs.T @ xs + torch.diag(penalty), xs.T @ y)
    else:
        scaled = xs / penalty  # X Lambda^{-1}
        alpha = torch.linalg.solve(torch.eye(n, dtype=torch.float64) + scaled @ xs.T, y)
        w[used] = scaled.T @ alpha
    return w


def equivalent_weight_decay(x: torch.Tensor, p: float) -> torch.Tensor:
    r"""The per-weight decay that input dropout amounts to, for a mean-squared-error loss.

    Training on :math:`\frac1n \|y - \hat y\|^2` with dropout minimizes, in expectation,
    :math:`\frac1n\|y - Xw\|^2 + \frac1n \frac{p}{q}\sum_j \|X_{:,j}\|^2 w_j^2`. The gradient of
    the penalty is :math:`\lambda_j w_j` with

    .. math::

        \lambda_j = \frac{2p}{q} \cdot \frac{\|X_{:,j}\|^2}{n},

    the ``weight_decay`` coefficient of ``torch.optim.SGD`` (which adds :math:`\lambda w` to the
    gradient), one per input. For standardized inputs (:math:`\|X_{:,j}\|^2 = n`) every
    :math:`\lambda_j = 2p/q`: 2 at ``p = 0.5``.

    Returns:
        A float64 tensor of shape ``(d,)``.

    Example:
        >>> equivalent_weight_decay(torch.tensor([[1.0, 2.0], [-1.0, 0.0]]), 0.5)
        tensor([2., 4.], dtype=torch.float64)
    """
    x = _design(x)
    p = _drop_probability(p)
    return 2.0 * p / (1.0 - p) * _column_norms_squared(x) / x.shape[0]


# --- training -----------------------------------------------------------------------------------


def _top_eigenvalue(x: torch.Tensor) -> float:
    """Largest eigenvalue of X^T X / n, through the smaller of the two Gram matrices."""
    n, d = x.shape
    gram = x @ x.T if n <= d else x.T @ x
    return float(torch.linalg.eigvalsh(gram / n)[-1])


def stable_learning_rate(x: torch.Tensor, p: float, fraction: float = 0.5) -> float:
    r"""A learning rate at which SGD on a linear unit with input dropout does not diverge.

    The mean-squared-error loss of one thinned design :math:`\tilde X = X \odot M / q` has Hessian
    :math:`2 \tilde X^\top \tilde X / n`; gradient descent on it is stable below
    :math:`1 / \lambda_{\max}(\tilde X^\top \tilde X / n)`. In expectation
    :math:`\tilde X^\top \tilde X / n = H + \frac{p}{q}\mathrm{diag}(H)` with :math:`H = X^\top X/n`,
    but a single mask can do worse, by up to a factor :math:`1/q` when :math:`n \ll d`. The step
    returned is

    .. math::

        \eta = \text{fraction} \cdot \frac{q}{\lambda_{\max}(H) + \frac{p}{q} \max_j H_{jj}} .

    Example:
        >>> round(stable_learning_rate(torch.eye(4) * 2.0, 0.5), 4)  # H = I: 0.5 * 0.5 / 2
        0.125
    """
    x = _design(x)
    p = _drop_probability(p)
    if isinstance(fraction, bool) or not isinstance(fraction, numbers.Real) or not 0 < fraction <= 1:
        raise ValueError(f"fraction must be a number in (0, 1], got fraction={fraction!r}")
    q = 1.0 - p
    diagonal = float(_column_norms_squared(x).max()) / x.shape[0]
    return float(fraction) * q / (_top_eigenvalue(x) + p / q * diagonal)


@dataclass(frozen=True, eq=False)
class LinearUnitRun:
    """What :func:`train_linear_unit` recorded.

    With a single drop probability ``p`` the leading "unit" dimension below is absent: ``weight`` has
    shape ``(d,)`` and ``norms`` shape ``(n_records,)``.

    Attributes:
        p: the drop probabilities, one per unit.
        lr: the (initial) learning rates, one per unit.
        weight: the final weights, shape ``(k, d)``.
        steps: the step numbers at which ``norms`` and ``losses`` were recorded (0 = before training).
        norms: the Euclidean norm of each unit's weights, shape ``(n_records, k)``.
        losses: the mean squared error of each unit's thinned predictions at the recorded steps
            (the loss SGD saw; at step 0 the loss of the initial weights), same shape.
    """

    p: tuple[float, ...]
    lr: tuple[float, ...]
    weight: torch.Tensor
    steps: list[int] = field(repr=False)
    norms: torch.Tensor = field(repr=False)
    losses: torch.Tensor = field(repr=False)


def _per_unit(value: Any, k: int, name: str) -> list[float] | None:
    if value is None:
        return None
    values = list(value) if isinstance(value, Sequence) else [value] * k
    if len(values) != k:
        raise ValueError(f"{name} must be a number or one per unit ({k}), got {len(values)} values")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not v > 0 or not math.isfinite(v):
            raise ValueError(f"{name} must hold positive numbers, got {name}={value!r}")
    return [float(v) for v in values]


def train_linear_unit(
    x: torch.Tensor,
    y: torch.Tensor,
    p: float | Sequence[float],
    *,
    steps: int,
    lr: float | Sequence[float] | None = None,
    weight_decay: float | torch.Tensor = 0.0,
    init: torch.Tensor | None = None,
    copies: int = 1,
    decay_steps: int | None = None,
    record_every: int = 1,
    seed: int = 0,
) -> LinearUnitRun:
    r"""Train bias-free linear units with inverted dropout on their inputs, by full-batch SGD.

    Each unit computes what ``nn.Sequential(nn.Dropout(p), nn.Linear(d, 1, bias=False))`` computes in
    training mode, with the gradient written out. At step :math:`t` every example appears ``copies``
    times, each copy with its own mask (``copies > 1`` averages the gradient over more masks: a less
    noisy gradient of the same expected loss), and

    .. math::

        \tilde X = X \odot M / q, \qquad
        g = \frac{2}{n}\tilde X^\top (\tilde X w - y) + \lambda \odot w, \qquad
        w \leftarrow w - \eta_t\, g, \qquad \eta_t = \frac{\eta}{1 + t / t_0},

    with :math:`\lambda` = ``weight_decay`` (a number, or one per input as from
    :func:`equivalent_weight_decay`) and :math:`t_0` = ``decay_steps`` (``None``: constant rate).

    Args:
        x, y: the training data, shapes ``(n, d)`` and ``(n,)`` (or ``(n, 1)``). Training runs in
            ``x``'s dtype.
        p: a drop probability, or a sequence of them: one unit per value, trained side by side on the
            same data with independent masks.
        steps: number of SGD steps.
        lr: the learning rate :math:`\eta` (a number or one per unit); ``None`` picks
            :func:`stable_learning_rate` for each ``p``.
        weight_decay: :math:`\lambda \ge 0`, a number or a tensor of shape ``(d,)``.
        init: initial weights, shape ``(d,)``, the same for every unit (default: zeros).
        copies: masks per example and step.
        decay_steps: :math:`t_0` of the decaying learning rate, or ``None``.
        record_every: record norms and losses every this many steps (and after the last).
        seed: seeds the masks (a private ``torch.Generator``; the global RNG is untouched).

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(50, 3, generator=g, dtype=torch.float64)
        >>> y = x @ torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
        >>> run = train_linear_unit(x, y, 0.3, steps=2000, copies=4, decay_steps=200)
        >>> error = (run.weight - dropout_ridge_solution(x, y, 0.3)).norm() / run.weight.norm()
        >>> run.weight.shape, bool(error < 0.02)
        (torch.Size([3]), True)
    """
    check_floating(x, "x")
    if x.dim() != 2:
        raise ValueError(f"x must have shape (n, d), got shape {tuple(x.shape)}")
    n, d = x.shape
    dtype = x.dtype
    yv = _vector(y, "y", n, "one target per row of x").to(dtype)
    single = not isinstance(p, Sequence)
    ps = [_drop_probability(p)] if single else [_drop_probability(v) for v in p]
    if not ps:
        raise ValueError("p must hold at least one drop probability")
    k = len(ps)
    steps = check_positive_int(steps, "steps")
    copies = check_positive_int(copies, "copies")
    record_every = check_positive_int(record_every, "record_every")
    if decay_steps is not None:
        decay_steps = check_positive_int(decay_steps, "decay_steps")
    rates = _per_unit(lr, k, "lr") or [stable_learning_rate(x, v) for v in ps]
    if isinstance(weight_decay, torch.Tensor):
        decay = _vector(weight_decay, "weight_decay", d, "one decay per input").to(dtype)
    elif isinstance(weight_decay, bool) or not isinstance(weight_decay, numbers.Real):
        raise TypeError(f"weight_decay must be a number or a tensor, got {type(weight_decay).__name__}")
    else:
        decay = torch.full((d,), float(weight_decay), dtype=dtype)
    if bool((decay < 0).any()) or not bool(torch.isfinite(decay).all()):
        raise ValueError("weight_decay must be finite and non-negative")
    start = torch.zeros(d, dtype=dtype) if init is None else _vector(init, "init", d, "one weight per input")
    generator = torch.Generator().manual_seed(check_seed(seed))

    drop = torch.tensor(ps, dtype=dtype).reshape(k, 1, 1)
    rate = torch.tensor(rates, dtype=dtype).reshape(k, 1)
    xr = x.detach().repeat(copies, 1)  # (copies * n, d)
    x_over_q = xr / (1.0 - drop)  # (k, copies * n, d): what a kept entry becomes
    yr = yv.repeat(copies)
    w = start.to(dtype).repeat(k, 1)  # (k, d)
    no_dropout = all(v == 0.0 for v in ps)
    with torch_threads(1):
        w, records, norms, losses = _sgd_loop(
            xr, yr, w, drop, x_over_q, rate, decay, steps, decay_steps, record_every, no_dropout, generator
        )
    norm_table, loss_table = torch.stack(norms), torch.stack(losses)
    if single:
        return LinearUnitRun(tuple(ps), tuple(rates), w[0], records, norm_table[:, 0], loss_table[:, 0])
    return LinearUnitRun(tuple(ps), tuple(rates), w, records, norm_table, loss_table)


def _sgd_loop(
    xr: torch.Tensor,
    yr: torch.Tensor,
    w: torch.Tensor,
    drop: torch.Tensor,
    x_over_q: torch.Tensor,
    rate: torch.Tensor,
    decay: torch.Tensor,
    steps: int,
    decay_steps: int | None,
    record_every: int,
    no_dropout: bool,
    generator: torch.Generator,
) -> tuple[torch.Tensor, list[int], list[torch.Tensor], list[torch.Tensor]]:
    """The loop of :func:`train_linear_unit` (k units side by side)."""
    k = w.shape[0]
    records: list[int] = []
    norms: list[torch.Tensor] = []
    losses: list[torch.Tensor] = []
    for t in range(steps + 1):
        if no_dropout:  # nothing to draw: every unit sees the data as they are
            thinned = xr.expand(k, *xr.shape)
        else:
            uniform = torch.rand((k, *xr.shape), generator=generator, dtype=xr.dtype)
            thinned = uniform.ge_(drop).mul_(x_over_q)  # kept (u >= p) entries become x / q
        residual = torch.einsum("kmd,kd->km", thinned, w) - yr
        if t % record_every == 0 or t == steps:
            records.append(t)
            norms.append(w.norm(dim=1).double())
            losses.append((residual * residual).mean(dim=1).double())
        if t == steps:
            break
        gradient = 2.0 / len(yr) * torch.einsum("kmd,km->kd", thinned, residual) + decay * w
        factor = 1.0 if decay_steps is None else 1.0 / (1.0 + t / decay_steps)
        w = w - factor * rate * gradient
    return w, records, norms, losses


# --- data -----------------------------------------------------------------------------------------


def linear_problem(
    weights: torch.Tensor | Sequence[float],
    n_train: int,
    *,
    n_test: int = 500,
    noise: float = 1.0,
    correlation: float = 0.0,
    scales: torch.Tensor | Sequence[float] | None = None,
    seed: int = 0,
) -> Split:
    r"""A linear regression data set: :math:`y = X w_{\text{true}} + \varepsilon`.

    Rows of :math:`X` are Gaussian with unit variances and pairwise ``correlation`` :math:`\rho`
    (:math:`\mathrm{Cov} = (1 - \rho) I + \rho\, \mathbf 1 \mathbf 1^\top`, :math:`0 \le \rho < 1`),
    then column :math:`j` is multiplied by ``scales[j]``. Noise :math:`\varepsilon \sim
    \mathcal N(0, \text{noise}^2)`. Everything comes from a ``torch.Generator`` seeded with ``seed``.

    Returns:
        A :class:`~dropoutlib.course.data.Split`, float32, ``y`` of shape ``(n, 1)``, ``name="linear"``.

    Example:
        >>> data = linear_problem([1.0, -1.0, 0.0], 40, n_test=10, correlation=0.5)
        >>> data.n_train, data.n_test, data.n_features
        (40, 10, 3)
    """
    w_true = torch.as_tensor(weights, dtype=torch.float64).flatten()
    d = w_true.numel()
    if d == 0:
        raise ValueError("weights must hold at least one weight")
    n_train = check_positive_int(n_train, "n_train")
    n_test = check_positive_int(n_test, "n_test")
    if isinstance(noise, bool) or not isinstance(noise, numbers.Real) or not noise >= 0:
        raise ValueError(f"noise must be a non-negative number, got noise={noise!r}")
    if isinstance(correlation, bool) or not isinstance(correlation, numbers.Real):
        raise TypeError(f"correlation must be a number, got correlation={correlation!r}")
    if not 0.0 <= correlation < 1.0:
        raise ValueError(f"correlation must be in [0, 1), got correlation={correlation!r}")
    scale = torch.ones(d, dtype=torch.float64) if scales is None else torch.as_tensor(scales).double()
    if scale.shape != (d,):
        raise ValueError(f"scales must have one entry per weight ({d}), got shape {tuple(scale.shape)}")
    generator = torch.Generator().manual_seed(check_seed(seed))

    def sample(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        shared = torch.randn(n, 1, generator=generator, dtype=torch.float64)
        own = torch.randn(n, d, generator=generator, dtype=torch.float64)
        x = (math.sqrt(correlation) * shared + math.sqrt(1.0 - correlation) * own) * scale
        y = x @ w_true + noise * torch.randn(n, generator=generator, dtype=torch.float64)
        return x.float(), y.float().unsqueeze(1)

    x_train, y_train = sample(n_train)
    x_test, y_test = sample(n_test)
    return Split(x_train, y_train, x_test, y_test, name="linear")


def small_problem(seed: int = 0) -> Split:
    """The chapter's small regression: 50 examples, 5 correlated inputs of unequal scales.

    :func:`linear_problem` with true weights ``(1, -1, 0.5, 0, 0.25)``, pairwise input correlation
    0.6, input scales ``(0.5, 0.75, 1, 1.5, 2)`` and noise 1: few enough examples, and correlated
    enough inputs, that least squares overfits and the penalty has visible work to do.

    Example:
        >>> small_problem().x_train.shape
        torch.Size([50, 5])
    """
    return linear_problem(SMALL_WEIGHTS, 50, noise=1.0, correlation=0.6, scales=SMALL_SCALES, seed=seed)


#: True weights and input scales of :func:`small_problem`.
SMALL_WEIGHTS = (1.0, -1.0, 0.5, 0.0, 0.25)
SMALL_SCALES = (0.5, 0.75, 1.0, 1.5, 2.0)


@dataclass(frozen=True, eq=False)
class WideUnitResult:
    """What :func:`wide_unit_experiment` measured.

    Attributes:
        data: the regression data (``n_train`` examples, ``n_inputs`` inputs).
        unit: ``nn.Sequential(nn.Dropout(p), nn.Linear(n_inputs, 1, bias=False))`` holding the
            initial weights (PyTorch's default initialization).
        init: those initial weights, shape ``(n_inputs,)``.
        p: the drop probability of the dropout run.
        weight_decay: :func:`equivalent_weight_decay` of the inputs at ``p``, shape ``(n_inputs,)``.
        runs: ``"no dropout"``, ``"dropout"`` and ``"adaptive weight decay"`` (no dropout, the
            per-weight decay ``weight_decay``): :class:`LinearUnitRun` each, same learning rate.
        limit_without_dropout: where gradient descent without dropout converges from ``init``:
            :math:`w_0 + X^+ (y - X w_0)`.
        ridge: :func:`dropout_ridge_solution` at ``p``, where dropout training heads.
    """

    data: Split
    unit: torch.nn.Module
    init: torch.Tensor
    p: float
    weight_decay: torch.Tensor
    runs: dict[str, LinearUnitRun]
    limit_without_dropout: torch.Tensor
    ridge: torch.Tensor


def wide_unit_experiment(
    seed: int = 0, *, n_inputs: int = 10_000, n_train: int = 100, p: float = 0.5, steps: int = 200
) -> WideUnitResult:
    r"""Train the blog post's wide linear unit on a small regression, with and without dropout.

    The unit is ``nn.Dropout(p)`` followed by ``nn.Linear(n_inputs, 1, bias=False)`` (built by
    :func:`~dropoutlib.experiments.training_vs_inference.all_ones_unit`,
    then given PyTorch's default initial weights, drawn
    with ``seed``). The data are ``n_train`` examples of independent standard normal inputs and the
    target :math:`y = \frac{1}{\sqrt{d}}\sum_j x_j + \varepsilon`, :math:`\varepsilon \sim
    \mathcal N(0, 0.5^2)`: the all-ones unit's output, scaled down. Three runs of ``steps`` full-batch
    SGD steps, all from the same initial weights and at the same learning rate
    (:func:`stable_learning_rate` at ``p``): without dropout, with dropout ``p``, and without dropout
    but with the per-weight decay of :func:`equivalent_weight_decay` (gradient descent on the
    expected dropout loss). The global RNG is left untouched.

    Example:
        >>> r = wide_unit_experiment(n_inputs=200, n_train=20, steps=5)
        >>> sorted(r.runs), r.init.shape
        (['adaptive weight decay', 'dropout', 'no dropout'], torch.Size([200]))
    """
    seed = check_seed(seed)
    n_inputs = check_positive_int(n_inputs, "n_inputs")
    p = _drop_probability(p, allow_zero=False)
    with torch_threads(1):
        return _wide_unit_experiment(seed, n_inputs, n_train, p, steps)


def _wide_unit_experiment(seed: int, n_inputs: int, n_train: int, p: float, steps: int) -> WideUnitResult:
    from dropoutlib.experiments.training_vs_inference import all_ones_unit

    data = linear_problem(torch.full((n_inputs,), n_inputs**-0.5), n_train, n_test=100, noise=0.5, seed=seed)
    with torch.random.fork_rng(devices=[]):  # building and initializing the unit use the global RNG
        torch.manual_seed(seed)
        unit = all_ones_unit(n_inputs, p)
        unit[1].reset_parameters()
    init = unit[1].weight.detach()[0].clone()
    x, y = data.x_train, data.y_train[:, 0]
    lr = stable_learning_rate(x, p)
    decay = equivalent_weight_decay(x, p)
    settings = {"no dropout": (0.0, 0.0), "dropout": (p, 0.0), "adaptive weight decay": (0.0, decay)}
    runs = {
        name: train_linear_unit(x, y, drop, steps=steps, lr=lr, weight_decay=wd, init=init, seed=seed)
        for name, (drop, wd) in settings.items()
    }
    xd, yd, w0 = x.double(), y.double(), init.double()
    limit = w0 + torch.linalg.pinv(xd) @ (yd - xd @ w0)
    return WideUnitResult(data, unit, init, p, decay, runs, limit, dropout_ridge_solution(x, y, p))


# --- dropout and weight decay on the digits ------------------------------------------------------

# --- claims of chapter 6 ----------------------------------------------------------------------------


def identity_claims(
    losses: torch.Tensor, formula: float, penalty: float, least_squares: float
) -> list[Claim]:
    """The average over masks matches least squares + penalty; at ``p = 0.5`` the penalty weighs a lot.

    ``losses`` are :func:`sample_dropout_losses` at the least-squares weights; the average must lie
    within 4 standard errors of :func:`expected_dropout_loss` (``formula``), and the penalty must be
    more than half the least-squares loss.
    """
    mean, standard_error = losses.mean().item(), losses.std().item() / len(losses) ** 0.5
    z = (mean - formula) / standard_error
    return [
        below("the average over masks matches the formula (|z|)", abs(z), 4.0),
        above("the penalty is a large part of the loss (vs half the least squares)", penalty,
              0.5 * least_squares),
    ]


def enumeration_claims(pairs: Sequence[tuple[float, float]]) -> list[Claim]:
    """Enumerating every mask gives the formula's value to rounding (``(exact, closed)`` pairs, 1e-9)."""
    worst = max(abs(exact - closed) / closed for exact, closed in pairs)
    return [below("all masks, enumerated, give the formula (largest relative difference)", worst, 1e-9)]


def ridge_claims(trained: torch.Tensor, closed_forms: torch.Tensor) -> list[Claim]:
    """SGD with dropout lands within 3% of ``w*`` for every ``p``, and ``|w*|`` falls as ``p`` grows.

    Row ``k`` of ``trained`` and of ``closed_forms`` belongs to the ``k``-th drop probability (increasing).
    """
    errors = (trained - closed_forms).norm(dim=1) / closed_forms.norm(dim=1)
    norms = closed_forms.norm(dim=1)
    return [
        below("SGD with dropout lands on w* (largest relative error)", errors.max().item(), 0.03),
        Claim("|w*| falls as p grows", bool((norms[1:] < norms[:-1]).all()),
              " > ".join(f"{v:.4f}" for v in norms.tolist())),
    ]


def wide_unit_claims(wide: WideUnitResult) -> list[Claim]:
    """The wide unit: without dropout it reaches ``w0 + X^+(y - X w0)``; dropout shrinks the norm.

    Dropout ends below 0.7 of the norm without it, above the noiseless weight-decay path; ``w*`` is
    far smaller than the limit without dropout. Started from zero, dropout hardly changes the norm
    (``|w*|`` within 1% of ``|X^+ y|``) and the masks barely move the predictions at ``w*``
    (variance below 5% of the targets').
    """
    final = {name: run.norms[-1].item() for name, run in wide.runs.items()}
    limit = wide.limit_without_dropout.norm().item()
    ridge = wide.ridge.norm().item()
    x, y = wide.data.x_train, wide.data.y_train[:, 0]
    w_min = dropout_ridge_solution(x, y, 0.0)
    variance = float((x.double() ** 2 @ wide.ridge**2).mean()) * wide.p / (1 - wide.p)
    return [
        below("without dropout the unit reaches w0 + X^+(y - X w0) (|ratio - 1|)",
              abs(final["no dropout"] / limit - 1), 1e-3),
        below("dropout shrinks the weights (vs 0.7 of no dropout)", final["dropout"],
              0.7 * final["no dropout"]),
        below("the noiseless weight-decay path ends below dropout", final["adaptive weight decay"],
              final["dropout"]),
        below("w* is far smaller than the limit (vs 0.3 of it)", ridge, 0.3 * limit),
        below("from zero, dropout hardly changes the norm (|ratio - 1|)",
              abs(ridge / w_min.norm().item() - 1), 0.01),
        below("the masks barely move the predictions at w* (vs 5% of the targets' variance)", variance,
              0.05 * y.var().item()),
    ]


# --- the controlled comparison: validation split, early stopping, tuned weight decay -----------------

#: Weight decays tried on the validation split (Adam's L2 term on every parameter).
WEIGHT_DECAY_GRID: tuple[float, ...] = (1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
#: Hidden drop probabilities tried on the validation split (input dropout fixed at 0.2).
DROPOUT_GRID: tuple[float, ...] = (0.2, 0.35, 0.5, 0.65, 0.8)
#: Max-norm radii c for dropout at p = 0.5, chosen per seed on the validation split like the others.
MAX_NORM_GRID: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0)
DROPOUT_INPUT_P = 0.2
#: Full-batch Adam epochs every network gets (the same budget for every set-up).
CONTROLLED_EPOCHS = 150
CONTROLLED_LR = 2e-2
N_TRAIN, N_VALIDATION = 200, 100


def validation_split(seed: int, n_train: int = N_TRAIN, n_validation: int = N_VALIDATION) -> dict:
    """Digits: ``n_train`` training and ``n_validation`` validation images, and the 540 test images.

    The test set is :func:`load_digits`'s for ``seed``; training and validation images are a
    stratified, seeded draw from its 1257 training images (disjoint), standardized with the
    statistics of the ``n_train`` training images only. Returns tensors ``x_train, y_train, x_val,
    y_val, x_test, y_test``.

    Example:
        >>> d = validation_split(0)
        >>> d["x_train"].shape, d["x_val"].shape, d["x_test"].shape
        (torch.Size([200, 64]), torch.Size([100, 64]), torch.Size([540, 64]))
    """
    import sklearn.datasets
    from sklearn.model_selection import train_test_split

    from dropoutlib.course.data import standardize

    seed = check_seed(seed)
    x_all, y_all = sklearn.datasets.load_digits(return_X_y=True)
    x, x_test, y, y_test = train_test_split(  # load_digits's split for this seed
        x_all, y_all, test_size=math.ceil(0.3 * len(y_all)), stratify=y_all, random_state=seed
    )
    index = np.arange(len(y))
    chosen, _ = train_test_split(index, train_size=n_train + n_validation, stratify=y, random_state=seed)
    train, val = train_test_split(chosen, train_size=n_train, stratify=y[chosen], random_state=seed)
    x_train, rest_z, _, _ = standardize(x[train], np.concatenate([x[val], x_test]))
    as_x = lambda a: torch.as_tensor(a, dtype=torch.float32)  # noqa: E731
    return {
        "x_train": as_x(x_train), "y_train": torch.as_tensor(y[train]),
        "x_val": as_x(rest_z[: len(val)]), "y_val": torch.as_tensor(y[val]),
        "x_test": as_x(rest_z[len(val):]), "y_test": torch.as_tensor(y_test),
    }


@dataclass(frozen=True, eq=False)
class ControlledComparison:
    """What :func:`controlled_comparison` measured.

    Attributes:
        seeds: the seeds (each fixes the split, the initial weights and the masks).
        settings: name -> (input_p, p, weight_decay), one network per setting and seed.
        val_loss, val_err, test_loss, test_err: name -> array ``(seeds, epochs)``, evaluation mode,
            after every epoch; weight_norm: the Euclidean norm of all parameters, the same shape.
        train_err: name -> array ``(seeds,)`` after the last epoch.
    """

    seeds: tuple[int, ...]
    settings: dict[str, tuple[float, float, float]]
    val_loss: dict[str, np.ndarray]
    val_err: dict[str, np.ndarray]
    test_loss: dict[str, np.ndarray]
    test_err: dict[str, np.ndarray]
    weight_norm: dict[str, np.ndarray]
    train_err: dict[str, np.ndarray]

    def last(self, name: str, metric: str = "test_err", epoch: int | None = None) -> np.ndarray:
        """``metric`` of setting ``name`` after the last epoch (or after ``epoch``), one value per seed."""
        values = getattr(self, metric)[name]
        if values.ndim == 1:
            return values
        return values[:, -1 if epoch is None else epoch - 1]

    def early_stopped(self, name: str, metric: str = "test_err", epoch: int | None = None) -> np.ndarray:
        """``metric`` at the epoch of lowest validation loss (chosen per seed, among the first
        ``epoch`` epochs if given), one value per seed."""
        best = self.val_loss[name][:, :epoch].argmin(axis=1)
        return getattr(self, metric)[name][np.arange(len(self.seeds)), best]

    def best_epoch(self, name: str) -> np.ndarray:
        """The (1-based) epoch of lowest validation loss, per seed."""
        return self.val_loss[name].argmin(axis=1) + 1

    def tuned(
        self, names: Sequence[str], metric: str = "test_err", epoch: int | None = None
    ) -> tuple[np.ndarray, list[str]]:
        """Per seed, ``metric`` after the last epoch (or ``epoch``) of the setting in ``names`` with
        the lowest validation loss then, and the chosen settings."""
        vals = np.stack([self.last(n, "val_loss", epoch) for n in names])  # (settings, seeds)
        pick = vals.argmin(axis=0)
        values = np.stack([self.last(n, metric, epoch) for n in names])
        return values[pick, np.arange(len(self.seeds))], [names[k] for k in pick]


def controlled_settings() -> dict[str, tuple[float, ...]]:
    """name -> (input_p, p, weight_decay[, max_norm]): no regularization, the weight-decay grid, the
    dropout grid, and dropout at p = 0.5 with the max-norm grid."""
    settings = {"none": (0.0, 0.0, 0.0)}
    settings |= {f"wd {lam:g}": (0.0, 0.0, lam) for lam in WEIGHT_DECAY_GRID}
    settings |= {f"dropout {p:g}": (DROPOUT_INPUT_P, p, 0.0) for p in DROPOUT_GRID}
    settings |= {f"max-norm {c:g}": (DROPOUT_INPUT_P, 0.5, 0.0, c) for c in MAX_NORM_GRID}
    return settings


def project_max_norm(weight: torch.Tensor, radius: torch.Tensor | float) -> torch.Tensor:
    """Project, in place, each hidden unit's incoming weight vector onto the ball ``||w|| <= radius``.

    ``weight`` has the batched layout ``(M, in, out)``: unit ``j`` of member ``m`` reads column
    ``weight[m, :, j]``. ``radius`` broadcasts against ``(M, 1, 1)``; vectors inside the ball are left
    exactly as they are (the 2014 paper's max-norm constraint, applied after each step).

    Example:
        >>> w = torch.tensor([[[3.0, 0.1], [4.0, 0.0]]])  # one member, two units: norms 5 and 0.1
        >>> project_max_norm(w, 1.0)
        tensor([[[0.6000, 0.1000],
                 [0.8000, 0.0000]]])
    """
    norms = weight.norm(dim=1, keepdim=True)
    scale = torch.where(norms > radius, radius / norms.clamp_min(1e-12), torch.ones_like(norms))
    return weight.mul_(scale)


def _max_norm(setting: tuple[float, ...], name: str) -> float:
    """The max-norm radius of a setting ``(input_p, p, weight_decay[, max_norm])``; 0 means none."""
    if len(setting) not in (3, 4):
        raise ValueError(
            f"settings[{name!r}] must be (input_p, p, weight_decay) or (input_p, p, weight_decay, max_norm), "
            f"got {setting!r}"
        )
    c = float(setting[3]) if len(setting) == 4 else 0.0
    if not math.isfinite(c) or c < 0:
        raise ValueError(f"settings[{name!r}]: max_norm must be a finite number >= 0, got {c!r}")
    return c


def controlled_comparison(
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    *,
    settings: dict[str, tuple[float, ...]] | None = None,
    epochs: int = CONTROLLED_EPOCHS,
    lr: float = CONTROLLED_LR,
    hidden: int = 64,
) -> ControlledComparison:
    """Train one MLP (64 -> ``hidden`` -> 10, ReLU) per setting and seed, all at once, and record
    validation and test metrics after every full-batch Adam epoch.

    Every network of a seed starts from the same weights (:class:`~course.batched.BatchedMLP`
    seeds them by the seed) and sees the same :func:`validation_split`; weight decay is Adam's
    L2 term on every parameter (as ``torch.optim.Adam(weight_decay=...)``), per network.

    Example:
        >>> r = controlled_comparison([0], settings={"none": (0, 0, 0)}, epochs=3)
        >>> r.test_err["none"].shape
        (1, 3)
    """
    from dropoutlib.course.batched import BatchedMLP

    seeds = tuple(check_seed(s) for s in seeds)
    if not seeds:
        raise ValueError("seeds must hold at least one seed")
    epochs = check_positive_int(epochs, "epochs")
    settings = dict(controlled_settings() if settings is None else settings)
    radii = {name: _max_norm(setting, name) for name, setting in settings.items()}  # validates each
    names = list(settings)
    members = [(name, k) for name in names for k in range(len(seeds))]
    splits = [validation_split(s) for s in seeds]
    stack = lambda key: torch.stack([splits[k][key] for _, k in members])  # noqa: E731
    data = {key: stack(key) for key in splits[0]}
    model = BatchedMLP(
        64, [hidden], 10, seeds=[seeds[k] for _, k in members],
        p=[settings[n][1] for n, _ in members], input_p=[settings[n][0] for n, _ in members],
    )
    # max-norm c (0: none): each hidden unit's incoming weight vector is projected onto ||w|| <= c
    radius = torch.tensor([radii[n] for n, _ in members]).view(-1, 1, 1)
    decay = torch.tensor([float(settings[n][2]) for n, _ in members]).view(-1, 1, 1)
    constrained = bool((radius > 0).any())
    radius = torch.where(radius > 0, radius, torch.inf)
    generators = [torch.Generator().manual_seed(seeds[k] + 2**33) for _, k in members]
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, foreach=True)
    params = list(model.parameters())
    m = len(members)

    def losses(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        flat = torch.nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none")
        return flat.view(m, -1).mean(dim=1)

    keys = ("val_loss", "val_err", "test_loss", "test_err", "weight_norm")
    record: dict[str, list[torch.Tensor]] = {k: [] for k in keys}
    with torch_threads(1):
        for _ in range(epochs):
            model.train()
            loss = losses(model(data["x_train"], generators), data["y_train"]).sum()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            with torch.no_grad():
                for q in params:
                    q.grad.add_(decay * q)
            optimizer.step()
            if constrained:
                with torch.no_grad():
                    for weight in model.weights[:-1]:
                        project_max_norm(weight, radius)
            model.eval()
            with torch.no_grad():
                logits = model(data["x_val"])
                record["val_loss"].append(losses(logits, data["y_val"]))
                record["val_err"].append((logits.argmax(dim=2) != data["y_val"]).double().mean(dim=1))
                logits = model(data["x_test"])
                record["test_loss"].append(losses(logits, data["y_test"]))
                record["test_err"].append((logits.argmax(dim=2) != data["y_test"]).double().mean(dim=1))
                record["weight_norm"].append(sum((q**2).flatten(1).sum(dim=1) for q in params).sqrt())
        with torch.no_grad():
            train_err = (model(data["x_train"]).argmax(dim=2) != data["y_train"]).double().mean(dim=1)
    k = len(seeds)
    per_epoch = {key: torch.stack(v, dim=1).double().numpy() for key, v in record.items()}
    split = lambda a: {n: a[i * k : (i + 1) * k] for i, n in enumerate(names)}  # noqa: E731
    return ControlledComparison(
        seeds=seeds, settings=settings,
        **{key: split(a) for key, a in per_epoch.items()},
        train_err=split(train_err.double().numpy()),
    )


#: The procedures the chapter compares, each a way to get one network per seed from the runs.
PROCEDURES = (
    "no regularization",
    "early stopping",
    "weight decay, tuned",
    "dropout, p = 0.5",
    "dropout, tuned",
    "dropout + max-norm, tuned",
)
#: A paired difference counts as a gain when it lies this many standard errors below zero, and as
#: inside the noise when its mean lies within this many standard errors of zero.
Z_GAIN = 2.0
WD_NORM_RATIO = 0.6  # tuned weight decay ends below this fraction of the unregularized norm
DROPOUT_NORM_RATIO = 0.9  # dropout ends above this fraction of it


def procedure_values(
    result: ControlledComparison, metric: str = "test_err", epoch: int | None = None
) -> dict[str, np.ndarray]:
    """procedure -> ``metric`` per seed for each of :data:`PROCEDURES`.

    "no regularization": the last epoch; "early stopping": the same runs at their epoch of lowest
    validation loss; "weight decay, tuned" and "dropout, tuned": the last epoch of the grid setting
    with the lowest final validation loss, chosen per seed; "dropout, p = 0.5": that setting, untuned.
    The test set is never used to choose. With ``epoch``, training is taken to stop there (a
    shorter budget read off the same runs).
    """
    names = list(result.settings)
    wd = [n for n in names if n.startswith("wd ")]
    dropout = [n for n in names if n.startswith("dropout ")]
    max_norm = [n for n in names if n.startswith("max-norm ")]
    return {
        "no regularization": result.last("none", metric, epoch),
        "early stopping": result.early_stopped("none", metric, epoch),
        "weight decay, tuned": result.tuned(wd, metric, epoch)[0],
        "dropout, p = 0.5": result.last("dropout 0.5", metric, epoch),
        "dropout, tuned": result.tuned(dropout, metric, epoch)[0],
        "dropout + max-norm, tuned": result.tuned(max_norm, metric, epoch)[0],
    }


def controlled_table(result: ControlledComparison) -> pd.DataFrame:
    """One row per procedure: test error (mean over seeds, in %), its paired difference to early
    stopping (mean ± standard error, points), and the test cross-entropy."""
    from dropoutlib.course.book import table
    from dropoutlib.course.stats import paired_gain

    err, loss = procedure_values(result), procedure_values(result, "test_loss")
    rows = []
    for name in PROCEDURES:
        mean, _, se = paired_gain(err["early stopping"], err[name])
        rows.append({
            "procedure": name, "test error (%)": 100 * err[name].mean(),
            "vs early stopping (points)": 100 * mean, "± SE": 100 * se,
            "test loss": loss[name].mean(),
        })
    return table(rows, index="procedure", digits=2)


def controlled_claims(result: ControlledComparison) -> list[Claim]:
    """The digits comparison, with its baselines: paired differences over the seeds.

    Tuned dropout and tuned weight decay each beat both unregularized baselines (last epoch, early
    stopping) by more than :data:`Z_GAIN` standard errors; early stopping gains nothing over the last
    epoch; dropout and weight decay differ by less than :data:`Z_GAIN` standard errors; max-norm lowers
    dropout's test loss but leaves its error inside the noise, and its largest radius never binds; tuned
    weight decay reaches the lowest test loss; weight decay shrinks the weights, dropout does not.
    """
    from dropoutlib.course.stats import paired_gain

    err = procedure_values(result)
    claims = []
    for name in ("dropout, tuned", "weight decay, tuned"):
        for base in ("no regularization", "early stopping"):
            mean, _, se = paired_gain(err[base], err[name])
            claims.append(below(f"{name} lowers the test error vs {base} (mean + {Z_GAIN:g} SE)",
                                mean + Z_GAIN * se, 0.0))
    mean, _, se = paired_gain(err["no regularization"], err["early stopping"])
    claims.append(above(f"early stopping gains nothing over the last epoch (mean + {Z_GAIN:g} SE)",
                        mean + Z_GAIN * se, 0.0))
    mean, _, se = paired_gain(err["weight decay, tuned"], err["dropout, tuned"])
    claims.append(below(f"tuned dropout and weight decay differ inside the noise (|mean| - {Z_GAIN:g} SE)",
                        abs(mean) - Z_GAIN * se, 0.0))
    losses = procedure_values(result, "test_loss")
    mean, _, se = paired_gain(losses["dropout, p = 0.5"], losses["dropout + max-norm, tuned"])
    claims.append(below(f"max-norm lowers dropout's test loss (mean + {Z_GAIN:g} SE)",
                        mean + Z_GAIN * se, 0.0))
    mean, _, se = paired_gain(err["dropout, p = 0.5"], err["dropout + max-norm, tuned"])
    claims.append(below(f"but not its test error: inside the noise (|mean| - {Z_GAIN:g} SE)",
                        abs(mean) - Z_GAIN * se, 0.0))
    loose = f"max-norm {max(MAX_NORM_GRID):g}"
    same = np.array_equal(result.test_loss[loose], result.test_loss["dropout 0.5"])
    claims.append(above(f"{loose} never binds: its runs are dropout 0.5's to the bit", float(same), 0.5))
    loss = {name: v.mean() for name, v in losses.items()}
    others = min(v for name, v in loss.items() if name != "weight decay, tuned")
    claims.append(below("tuned weight decay has the lowest test loss (vs the next lowest)",
                        loss["weight decay, tuned"], others))
    norm = procedure_values(result, "weight_norm")
    none = norm["no regularization"].mean()
    claims += [
        below(f"weight decay shrinks the weights (vs {WD_NORM_RATIO:g} of none)",
              norm["weight decay, tuned"].mean(), WD_NORM_RATIO * none),
        above(f"dropout's weights stay about as large (vs {DROPOUT_NORM_RATIO:g} of none)",
              norm["dropout, tuned"].mean(), DROPOUT_NORM_RATIO * none),
    ]
    return claims


_TICK_LABELS = {
    "no regularization": "none",
    "early stopping": "early\nstopping",
    "weight decay, tuned": "weight\ndecay,\ntuned",
    "dropout, p = 0.5": "dropout,\np = 0.5",
    "dropout, tuned": "dropout,\ntuned",
    "dropout + max-norm, tuned": "dropout +\nmax-norm,\ntuned",
}


def plot_procedures(ax: Axes, result: ControlledComparison) -> None:
    """Test error (%) of each of :data:`PROCEDURES`: one dot per seed, joined across procedures by
    seed (the comparison is paired), and the mean as a black bar.

    Example:
        >>> import matplotlib.pyplot as plt
        >>> r = controlled_comparison([0, 1], epochs=2)
        >>> fig, ax = plt.subplots()
        >>> plot_procedures(ax, r)
        >>> plt.close(fig)
    """
    from dropoutlib.course.plots import COLORS

    err = procedure_values(result)
    values = 100 * np.stack([err[name] for name in PROCEDURES])  # (procedures, seeds)
    positions = np.arange(len(PROCEDURES))
    for k in range(values.shape[1]):
        ax.plot(positions, values[:, k], color=COLORS["neutral"], lw=0.8, alpha=0.7, marker="o",
                markersize=4, zorder=2)
    ax.scatter(positions, values.mean(axis=1), marker="_", s=600, color="black", linewidths=2.5, zorder=3,
               label="mean over seeds")
    ax.set_xticks(positions, [_TICK_LABELS.get(name, name) for name in PROCEDURES], fontsize=8)
    ax.set_xlim(-0.5, len(PROCEDURES) - 0.5)


# --- logistic regression: Wager et al.'s quadratic penalty -------------------------------------------

GLM_WEIGHTS = (1.5, -1.0, 0.5, 0.0, 1.0)
GLM_P = (0.1, 0.3, 0.5)


def logistic_problem(seed: int = 0, n: int = 200) -> tuple[torch.Tensor, torch.Tensor]:
    """A logistic regression: ``n`` examples, 5 inputs of scales 0.5 to 2 (as :func:`small_problem`),
    labels drawn from the logistic model with weights :data:`GLM_WEIGHTS`; float64 ``(x, y)``.

    Example:
        >>> x, y = logistic_problem(0)
        >>> x.shape, sorted(set(y.tolist()))
        (torch.Size([200, 5]), [0.0, 1.0])
    """
    g = torch.Generator().manual_seed(check_seed(seed))
    scales = torch.tensor(SMALL_SCALES, dtype=torch.float64)
    x = torch.randn(n, len(scales), generator=g, dtype=torch.float64) * scales
    logits = x @ (torch.tensor(GLM_WEIGHTS, dtype=torch.float64) / scales)
    y = (torch.rand(n, generator=g, dtype=torch.float64) < torch.sigmoid(logits)).double()
    return x, y


def logistic_dropout_penalty(x: torch.Tensor, beta: torch.Tensor, p: float) -> torch.Tensor:
    r"""Wager et al.'s quadratic dropout penalty for logistic regression (a tensor, differentiable):

    .. math::

        R(\beta) = \frac{p}{2q} \sum_i \hat p_i (1 - \hat p_i) \sum_j x_{ij}^2 \beta_j^2,
        \qquad \hat p_i = \sigma(x_i^\top \beta).

    It holds no label: the expected log-loss under the masks, minus the clean log-loss, is
    :math:`\sum_i \mathbb E[A(\tilde\eta_i)] - A(\eta_i)` with :math:`A = \log(1 + e^\eta)` (the label
    term :math:`y_i\eta_i` is linear, and the masks leave :math:`\eta` unbiased), and :math:`R` is
    its second-order Taylor expansion.

    Example:
        >>> x = torch.ones(2, 1, dtype=torch.float64)
        >>> round(float(logistic_dropout_penalty(x, torch.zeros(1, dtype=torch.float64) + 2, 0.5)), 4)
        0.42
    """
    p = _drop_probability(p)
    probs = torch.sigmoid(x @ beta)
    return p / (1 - p) / 2 * (probs * (1 - probs) * (x**2 @ beta**2)).sum()


def sample_logistic_penalty(
    x: torch.Tensor, beta: torch.Tensor, p: float, n_masks: int, generator: torch.Generator
) -> torch.Tensor:
    r""":math:`\sum_i A(\tilde\eta_i) - A(\eta_i)` for ``n_masks`` independent masks (inverted dropout
    on the inputs): Monte Carlo samples whose mean is the exact dropout penalty."""
    p = _drop_probability(p, allow_zero=False)
    n_masks = check_positive_int(n_masks, "n_masks")
    clean = torch.nn.functional.softplus(x @ beta).sum()
    keep = torch.rand(n_masks, *x.shape, generator=generator, dtype=x.dtype) >= p
    eta = (x * keep / (1 - p)) @ beta
    return torch.nn.functional.softplus(eta).sum(dim=1) - clean


def fit_logistic(
    x: torch.Tensor, y: torch.Tensor, p: float, *, method: str, steps: int = 2000, copies: int = 8,
    lr: float = 0.5, seed: int = 0,
) -> torch.Tensor:
    """Fit logistic regression (mean log-loss, no bias) by full-batch gradient descent.

    ``method``: ``"none"`` (maximum likelihood), ``"quadratic"`` (plus :func:`logistic_dropout_penalty`
    divided by ``n``), or ``"dropout"`` (inverted dropout on the inputs, ``copies`` masks per
    example and step, learning rate decaying as ``lr / (1 + t / 300)``).

    Example:
        >>> x, y = logistic_problem(0)
        >>> fit_logistic(x, y, 0.0, method="none", steps=10).shape
        torch.Size([5])
    """
    if method not in ("none", "quadratic", "dropout"):
        raise ValueError(f"method must be 'none', 'quadratic' or 'dropout', got method={method!r}")
    p = _drop_probability(p)
    g = torch.Generator().manual_seed(check_seed(seed))
    beta = torch.zeros(x.shape[1], dtype=x.dtype, requires_grad=True)
    n = x.shape[0]
    for t in range(check_positive_int(steps, "steps")):
        if method == "dropout":
            keep = torch.rand(copies, *x.shape, generator=g, dtype=x.dtype) >= p
            eta = (x * keep / (1 - p)) @ beta
            loss = torch.nn.functional.binary_cross_entropy_with_logits(eta, y.expand_as(eta))
            step = lr / (1 + t / 300)
        else:
            loss = torch.nn.functional.binary_cross_entropy_with_logits(x @ beta, y)
            if method == "quadratic":
                loss = loss + logistic_dropout_penalty(x, beta, p) / n
            step = lr
        (grad,) = torch.autograd.grad(loss, beta)
        with torch.no_grad():
            beta -= step * grad
    return beta.detach()


def glm_experiment(seed: int = 0, ps: Sequence[float] = GLM_P, n_masks: int = 20_000) -> dict[str, Any]:
    """For each ``p``: the penalty at the maximum-likelihood weights, exact (Monte Carlo, with its
    standard error) and quadratic; and the weights from dropout training, from the quadratic
    penalty, and without regularization."""
    x, y = logistic_problem(seed)
    g = torch.Generator().manual_seed(check_seed(seed) + 1)
    mle = fit_logistic(x, y, 0.0, method="none")
    rows = []
    with torch_threads(1):
        for p in ps:
            samples = sample_logistic_penalty(x, mle, p, n_masks, g)
            dropout = fit_logistic(x, y, p, method="dropout", seed=seed)
            quadratic = fit_logistic(x, y, p, method="quadratic")
            rows.append({
                "p": p, "mc": float(samples.mean()), "mc_se": float(samples.std() / n_masks**0.5),
                "quadratic": float(logistic_dropout_penalty(x, mle, p)),
                "dropout": dropout, "quadratic_fit": quadratic,
            })
    return {"x": x, "y": y, "mle": mle, "rows": rows}


GLM_PENALTY_TOLERANCE = 0.3  # the quadratic penalty lies within 30% of the exact one
GLM_FIT_RATIO = 0.5  # the quadratic fit lies closer to dropout's than half the distance to the MLE


def glm_claims(result: dict[str, Any]) -> list[Claim]:
    """Logistic regression: the quadratic penalty approximates the exact dropout penalty (within
    :data:`GLM_PENALTY_TOLERANCE`, relative), its minimizer lands near dropout training's weights
    (distance below :data:`GLM_FIT_RATIO` of dropout's distance from the maximum-likelihood weights),
    and dropout shrinks the weights more as ``p`` grows."""
    mle = result["mle"]
    rows = result["rows"]
    worst_penalty = max(abs(r["quadratic"] / r["mc"] - 1) for r in rows)
    worst_fit = max(float((r["dropout"] - r["quadratic_fit"]).norm() / (r["dropout"] - mle).norm())
                    for r in rows)
    norms = [float(mle.norm())] + [float(r["dropout"].norm()) for r in rows]
    return [
        below("the quadratic penalty is close to the exact one (largest |ratio - 1|)", worst_penalty,
              GLM_PENALTY_TOLERANCE),
        below("at the smallest p it underestimates it (quadratic - exact)",
              rows[0]["quadratic"] - rows[0]["mc"], -3 * rows[0]["mc_se"]),
        below("its minimizer lands near dropout training (distance / distance to the MLE)", worst_fit,
              GLM_FIT_RATIO),
        Claim("dropout shrinks the weights more as p grows", all(np.diff(norms) < 0),
              " > ".join(f"{v:.3f}" for v in norms)),
    ]
