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
- :func:`compare_regularizers`: dropout, weight decay and both on the digits, over several seeds;
  :func:`plot_comparison` draws the result.

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
from dropoutlib.course.data import Split, load_digits
from dropoutlib.course.models import mlp
from dropoutlib.course.seeding import check_seed, seed_everything
from dropoutlib.course.train import fit

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes

__all__ = [
    "DEFAULT_CONFIGS",
    "REGULARIZED",
    "SMALL_SCALES",
    "SMALL_WEIGHTS",
    "LinearUnitRun",
    "RegularizationComparison",
    "WideUnitResult",
    "compare_regularizers",
    "comparison_table",
    "dropout_ridge_penalty",
    "dropout_ridge_solution",
    "enumeration_claims",
    "equivalent_weight_decay",
    "exact_dropout_loss",
    "expected_dropout_loss",
    "identity_claims",
    "linear_problem",
    "per_seed_loss_claims",
    "plot_comparison",
    "regularizer_claims",
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

#: The four training set-ups of :func:`compare_regularizers`: name -> (input_p, p, weight_decay).
DEFAULT_CONFIGS: dict[str, tuple[float, float, float]] = {
    "none": (0.0, 0.0, 0.0),
    "dropout": (0.2, 0.5, 0.0),
    "weight decay": (0.0, 0.0, 1e-2),
    "both": (0.2, 0.5, 1e-2),
}


@dataclass(frozen=True, eq=False)
class RegularizationComparison:
    """What :func:`compare_regularizers` measured: one array per set-up, one entry per seed.

    Attributes:
        seeds: the seeds (each fixes the data split and subsample, the initial weights, the masks).
        configs: name -> (input_p, p, weight_decay).
        test_acc, train_acc, test_loss: name -> array of shape ``(len(seeds),)``, in evaluation mode.
        weight_norm: name -> Euclidean norm of all parameters after training, same shape.
    """

    seeds: tuple[int, ...]
    configs: dict[str, tuple[float, float, float]]
    test_acc: dict[str, np.ndarray]
    train_acc: dict[str, np.ndarray]
    test_loss: dict[str, np.ndarray]
    weight_norm: dict[str, np.ndarray]

    def summary(self, metric: str = "test_acc") -> dict[str, tuple[float, float]]:
        """name -> (mean, sample standard deviation over the seeds) of ``metric``.

        Example:
            >>> one = {"a": np.array([0.9, 0.8])}
            >>> r = RegularizationComparison((0, 1), {"a": (0, 0, 0)}, one, one, one, one)
            >>> {k: tuple(round(v, 4) for v in s) for k, s in r.summary().items()}
            {'a': (0.85, 0.0707)}
        """
        if metric not in ("test_acc", "train_acc", "test_loss", "weight_norm"):
            raise ValueError(f"unknown metric {metric!r}")
        table: dict[str, np.ndarray] = getattr(self, metric)
        ddof = 1 if len(self.seeds) > 1 else 0
        return {name: (float(v.mean()), float(v.std(ddof=ddof))) for name, v in table.items()}


def compare_regularizers(
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    *,
    configs: dict[str, tuple[float, float, float]] | None = None,
    n_train: int = 200,
    hidden: Sequence[int] = (64,),
    epochs: int = 40,
    lr: float = 2e-2,
) -> RegularizationComparison:
    """Train the same small MLP on the digits with dropout, weight decay, both or neither.

    For every seed ``s``: the split ``load_digits(seed=s, n_train=n_train)`` (a small training set,
    so that regularization has something to do), the initial weights (:func:`seed_everything`),
    and the masks are fixed by ``s``, and the same for every set-up. Each set-up trains
    ``mlp(64, hidden, 10, p=p, input_p=input_p)`` with :func:`course.fit` (full-batch Adam,
    ``weight_decay`` as an L2 term in the gradient) and is measured in evaluation mode.

    Example:
        >>> r = compare_regularizers([0], configs={"none": (0, 0, 0)}, n_train=50, epochs=2)
        >>> r.test_acc["none"].shape
        (1,)
    """
    seeds = tuple(check_seed(s) for s in seeds)
    if not seeds:
        raise ValueError("seeds must hold at least one seed")
    configs = dict(DEFAULT_CONFIGS if configs is None else configs)
    tables: dict[str, dict[str, list[float]]] = {
        metric: {name: [] for name in configs}
        for metric in ("test_acc", "train_acc", "test_loss", "weight_norm")
    }
    for seed in seeds:
        data = load_digits(seed=seed, n_train=n_train)
        for name, (input_p, p, weight_decay) in configs.items():
            seed_everything(seed)
            model = mlp(data.n_features, list(hidden), 10, p=p, input_p=input_p)
            history = fit(
                model,
                data,
                epochs=epochs,
                lr=lr,
                weight_decay=weight_decay,
                seed=seed,
                progress=False,
                eval_every=epochs,
            )
            tables["test_acc"][name].append(history.test_acc[-1])
            tables["train_acc"][name].append(history.train_acc[-1])
            tables["test_loss"][name].append(history.test_loss[-1])
            with torch.no_grad():
                squared = sum(float((q * q).sum()) for q in model.parameters())
            tables["weight_norm"][name].append(math.sqrt(squared))
    arrays = {m: {name: np.array(v) for name, v in t.items()} for m, t in tables.items()}
    return RegularizationComparison(seeds=seeds, configs=configs, **arrays)


def plot_comparison(ax: Axes, result: RegularizationComparison, metric: str = "test_acc") -> None:
    """Draw ``metric`` per set-up: one dot per seed, the mean as a bar, one standard deviation as whiskers.

    Accuracies are drawn in percent. No bars from zero, so a truncated axis exaggerates nothing.

    Example:
        >>> import matplotlib.pyplot as plt
        >>> one = {"a": np.array([0.9, 0.8])}
        >>> r = RegularizationComparison((0, 1), {"a": (0, 0, 0)}, one, one, one, one)
        >>> fig, ax = plt.subplots()
        >>> plot_comparison(ax, r)
        >>> plt.close(fig)
    """
    from dropoutlib.course.plots import COLORS

    summary = result.summary(metric)
    factor = 100.0 if metric.endswith("acc") else 1.0
    colors = [COLORS["baseline"], COLORS["dropout"], COLORS["accent"], COLORS["train"], COLORS["test"]]
    jitter = np.linspace(-0.12, 0.12, len(result.seeds))
    for i, (name, (mean, std)) in enumerate(summary.items()):
        color = colors[i % len(colors)]
        ax.scatter(i + jitter, getattr(result, metric)[name] * factor, color=color, s=22, alpha=0.8, zorder=2)
        ax.errorbar(
            i,
            mean * factor,
            yerr=std * factor,
            fmt="_",
            color="black",
            markersize=28,
            markeredgewidth=2.5,
            capsize=7,
            elinewidth=1.5,
            zorder=3,
        )
    ax.set_xticks(range(len(summary)), list(summary))
    ax.set_xlim(-0.6, len(summary) - 0.4)



# --- tables and claims of chapter 6 ----------------------------------------------------------------

#: The regularized set-ups of :func:`compare_regularizers` that the chapter sets against ``"none"``.
REGULARIZED = ("dropout", "weight decay", "both")


def comparison_table(result: RegularizationComparison, metrics: dict[str, str]) -> pd.DataFrame:
    """Mean and standard deviation over the seeds of each metric, one row per set-up (4 decimals).

    ``metrics`` maps a metric of :meth:`RegularizationComparison.summary` to its column label; each
    gets two columns, the label (the mean) and ``label std``.

    Example:
        >>> one = {"a": np.array([0.9, 0.8])}
        >>> r = RegularizationComparison((0, 1), {"a": (0, 0, 0)}, one, one, one, one)
        >>> comparison_table(r, {"test_acc": "test accuracy"}).loc["a"].tolist()
        [0.85, 0.0707]
    """
    from dropoutlib.course.book import table

    summaries = {metric: result.summary(metric) for metric in metrics}
    rows = []
    for name in result.configs:
        row: dict[str, Any] = {"set-up": name}
        for metric, label in metrics.items():
            row[label], row[f"{label} std"] = summaries[metric][name]
        rows.append(row)
    return table(rows, index="set-up", digits=4)


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


def regularizer_claims(result: RegularizationComparison) -> list[Claim]:
    """On the digits, every regularizer raises the mean test accuracy and lowers the mean test loss.

    Every model fits its training images; weight decay halves the weight norm, dropout keeps it more
    than twice as large; "both" is within the seed-to-seed spread of the better single regularizer.
    """
    acc, loss = result.summary("test_acc"), result.summary("test_loss")
    norm = result.summary("weight_norm")
    claims = []
    for name in REGULARIZED:
        claims += [
            above(f"{name} raises the mean test accuracy", acc[name][0], acc["none"][0]),
            below(f"{name} lowers the mean test loss", loss[name][0], loss["none"][0]),
        ]
    fitted = all(bool((v == 1.0).all()) for v in result.train_acc.values())
    best_single = max(acc["dropout"][0], acc["weight decay"][0])
    spread = max(acc[name][1] for name in REGULARIZED)
    return claims + [
        Claim("every model fits its training images", fitted,
              "training accuracy 1" if fitted else "below 1"),
        below("weight decay halves the weight norm", norm["weight decay"][0], 0.5 * norm["none"][0]),
        above("dropout shrinks the weights far less (vs twice weight decay's)", norm["dropout"][0],
              2 * norm["weight decay"][0]),
        below("both is within the spread of the better single one (|difference|)",
              abs(acc["both"][0] - best_single), spread),
    ]


def per_seed_loss_claims(result: RegularizationComparison) -> list[Claim]:
    """Seed by seed, not only on average: each regularizer lowers the test loss on every seed.

    Stronger than :func:`regularizer_claims`; the claims test checks it on its own seeds.
    """
    claims = []
    for name in REGULARIZED:
        worst = float((result.test_loss[name] - result.test_loss["none"]).max())
        claims.append(below(f"{name} lowers the test loss on every seed (largest change)", worst, 0.0))
    return claims
