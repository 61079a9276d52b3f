r"""Dropout as an ensemble: every sub-network of a small network, averaged exactly.

A dropout layer with ``n`` units and drop probability ``p`` draws one of ``2**n`` keep-masks
``m in {0, 1}^n``; the mask that keeps ``k`` units has probability

.. math::

    \pi(m) = q^{k} p^{\,n-k}, \qquad q = 1 - p, \qquad k = \textstyle\sum_j m_j,

and defines a sub-network ``P_m(y | x)``. For ``n`` up to about 14 all masks can be enumerated, and
four ways of predicting with the ensemble can be compared exactly:

- the **arithmetic mean** ``sum_m pi(m) P_m(y | x)``, the prediction of the ensemble itself;
- the **normalized geometric mean** ``prod_m P_m(y | x)**pi(m)``, renormalized over the classes,
  which for softmax outputs equals ``softmax(sum_m pi(m) z_m(x))``, the softmax of the average logits;
- the **weight-scaling rule**, the deterministic network of evaluation mode;
- **Monte Carlo** averages of ``k`` sub-networks drawn as dropout draws them.

:func:`enumerate_subnetworks` runs every sub-network of a network on a batch of inputs and returns a
:class:`SubnetworkTable`; :func:`compare_predictions` measures the four predictions against each
other; :func:`monte_carlo_errors` samples Monte Carlo averages and records their test error for a
grid of ``k`` (a :class:`MonteCarloCurve`). :func:`train_net` trains the two small networks of
chapter 4 on the digits.

Notation: ``p`` is the probability of dropping a unit, ``q = 1 - p`` of keeping it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from dropoutlib._validation import (
    check_floating,
    check_generator,
    check_positive_int,
    check_probability,
)
from dropoutlib.course.claims import Claim, above, below
from dropoutlib.course.data import Split, check_split, load_digits
from dropoutlib.course.seeding import check_seed, seed_everything
from dropoutlib.course.stats import binomial_standard_error
from dropoutlib.course.train import History, fit
from dropoutlib.nn.dropout import Dropout, StandardDropout

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes

__all__ = [
    "ERROR_ROWS",
    "KINDS",
    "MAX_UNITS",
    "NOISE_STANDARD_ERRORS",
    "PREDICTIONS",
    "SEEDS",
    "TAYLOR_CONSTANT",
    "Z_ONE_BOUND",
    "Z_ONE_BOUND_OVER_SEEDS",
    "EnsembleComparison",
    "MonteCarloCurve",
    "PredictionDistance",
    "SeedErrors",
    "SigmoidAverages",
    "SubnetworkTable",
    "all_masks",
    "averaging_claims",
    "binomial_standard_error",
    "build_net",
    "compare_predictions",
    "confidence_claims",
    "deep_network_claims",
    "enumerate_subnetworks",
    "ensemble_over_seeds",
    "error_rate",
    "error_table",
    "expected_over_masks",
    "fast_dropout_claims",
    "fast_dropout_relu",
    "jensen_claims",
    "less_dropout_claims",
    "log_loss",
    "mask_claims",
    "mask_probabilities",
    "monte_carlo_claims",
    "monte_carlo_errors",
    "monte_carlo_table",
    "noise_claims",
    "normalized_geometric_mean",
    "over_seeds_claims",
    "paired_error_difference",
    "plot_monte_carlo",
    "prediction_distance",
    "repaired_weights_claims",
    "scores_claims",
    "scores_table",
    "sigmoid_claims",
    "sigmoid_unit_averages",
    "split_at_dropout",
    "subnetwork_claims",
    "train_net",
]

#: The largest number of droppable units :func:`all_masks` enumerates (``2**20`` masks).
MAX_UNITS = 20
#: The two networks of chapter 4: dropout on the only hidden layer, or a second hidden layer after it.
KINDS = ("shallow", "deep")

_INVERTED = (nn.Dropout, Dropout)


def all_masks(n: int) -> torch.Tensor:
    """Every keep-mask of ``n`` units: a ``(2**n, n)`` float64 tensor of 0s and 1s (1 = kept).

    Row ``i`` holds the binary digits of ``i``: unit ``j`` is kept in mask ``i`` exactly when bit
    ``j`` of ``i`` is set, so a mask ``m`` sits in row ``sum_j m_j 2**j``. Row 0 drops every unit,
    the last row keeps them all.

    Example:
        >>> all_masks(2)
        tensor([[0., 0.],
                [1., 0.],
                [0., 1.],
                [1., 1.]], dtype=torch.float64)
    """
    n = check_positive_int(n, "n")
    if n > MAX_UNITS:
        raise ValueError(f"n must be at most {MAX_UNITS} ({2**MAX_UNITS:,} masks), got n={n}")
    index = torch.arange(2**n)
    return ((index[:, None] >> torch.arange(n)) & 1).to(torch.float64)


def _check_masks(masks: Any) -> torch.Tensor:
    if not isinstance(masks, torch.Tensor):
        raise TypeError(f"masks must be a torch.Tensor, got {type(masks).__name__}")
    if masks.dim() != 2:
        raise ValueError(f"masks must have shape (n_masks, n_units), got shape {tuple(masks.shape)}")
    if not bool(((masks == 0) | (masks == 1)).all()):
        raise ValueError("masks must hold only 0s (dropped) and 1s (kept)")
    return masks


def mask_probabilities(masks: torch.Tensor, p: float) -> torch.Tensor:
    r"""The probability that dropout draws each mask: :math:`q^k p^{n-k}` for a mask keeping ``k`` of ``n``.

    Each unit is kept with probability ``q = 1 - p`` independently of the others, so a kept unit
    contributes a factor ``q`` and a dropped unit a factor ``p``. Over all ``2**n`` masks the
    probabilities add up to ``(q + p)**n = 1``.

    Args:
        masks: ``(n_masks, n)`` tensor of 0s and 1s (1 = kept).
        p: drop probability.

    Returns:
        A float64 tensor of shape ``(n_masks,)``.

    Example:
        >>> mask_probabilities(all_masks(2), 0.25)
        tensor([0.0625, 0.1875, 0.1875, 0.5625], dtype=torch.float64)
        >>> round(float(mask_probabilities(all_masks(10), 0.3).sum()), 12)
        1.0
    """
    masks = _check_masks(masks)
    p = check_probability(p)
    kept = masks.to(torch.float64).sum(dim=1)
    return (1.0 - p) ** kept * p ** (masks.shape[1] - kept)


def split_at_dropout(model: nn.Module) -> tuple[nn.Sequential, nn.Sequential, float, bool]:
    """Cut an ``nn.Sequential`` at its only active dropout layer.

    Returns ``(before, after, p, inverted)``: the layers before the dropout layer (an empty
    ``nn.Sequential``, the identity, for dropout on the inputs), the layers after it, its drop
    probability, and whether it rescales the kept units by ``1/q`` in training (``torch.nn.Dropout``,
    :class:`dropoutlib.Dropout`) or not (:class:`dropoutlib.StandardDropout`, which multiplies by
    ``q`` in evaluation mode instead). The model computes ``after(dropout(before(x)))``.

    Example:
        >>> from dropoutlib.course.models import mlp
        >>> before, after, p, inverted = split_at_dropout(mlp(64, [12], 10, p=0.5))
        >>> len(before), len(after), p, inverted
        (2, 1, 0.5, True)
    """
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"model must be a torch.nn.Sequential, got {type(model).__name__}")
    layers = list(model)
    positions = [
        i
        for i, layer in enumerate(layers)
        if isinstance(layer, (*_INVERTED, StandardDropout)) and float(layer.p) > 0
    ]
    if len(positions) != 1:
        raise ValueError(
            f"model must have exactly one dropout layer with p > 0 (the masks to enumerate), "
            f"got {len(positions)}"
        )
    i = positions[0]
    p = float(layers[i].p)
    if p >= 1.0:
        raise ValueError("the dropout layer drops every unit (p=1): there is no ensemble to average")
    return (
        nn.Sequential(*layers[:i]),
        nn.Sequential(*layers[i + 1 :]),
        p,
        not isinstance(layers[i], StandardDropout),
    )


def normalized_geometric_mean(log_probs: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    r"""The normalized weighted geometric mean of class distributions.

    .. math::

        G(y) = \frac{\prod_m P_m(y)^{w_m}}{\sum_{y'} \prod_m P_m(y')^{w_m}}
             = \operatorname{softmax}_y\Big(\sum_m w_m \log P_m(y)\Big),

    computed in log space (the second form), which never underflows. If the ``P_m`` are softmax
    outputs with logits ``z_m`` and the weights add up to 1, ``G = softmax(sum_m w_m z_m)``: the
    log-normalizers of the members do not depend on ``y`` and cancel.

    Args:
        log_probs: ``(n_members, ..., n_classes)`` log-probabilities of the members.
        weights: ``(n_members,)`` nonnegative weights (typically adding up to 1).

    Returns:
        ``(..., n_classes)`` probabilities, each distribution adding up to 1.

    Example:
        >>> logits = torch.tensor([[[1.0, 0.0]], [[3.0, 0.0]]])  # two members, one input
        >>> g = normalized_geometric_mean(logits.log_softmax(-1), torch.tensor([0.5, 0.5]))
        >>> torch.allclose(g, torch.softmax(torch.tensor([[2.0, 0.0]]), -1))
        True
    """
    check_floating(log_probs, "log_probs")
    check_floating(weights, "weights")
    if weights.dim() != 1 or log_probs.dim() < 2 or len(weights) != len(log_probs):
        raise ValueError(
            f"weights must have shape (n_members,) and log_probs (n_members, ..., n_classes), got "
            f"weights {tuple(weights.shape)} and log_probs {tuple(log_probs.shape)}"
        )
    if bool((weights < 0).any()):
        raise ValueError("weights must be nonnegative")
    w = weights.to(log_probs.dtype).reshape(-1, *([1] * (log_probs.dim() - 1)))
    return torch.softmax((w * log_probs).sum(dim=0), dim=-1)


def error_rate(probs: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of examples whose most probable class (``argmax`` of ``probs``) is not ``y``.

    Example:
        >>> error_rate(torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]]), torch.tensor([0, 1, 1]))
        0.3333333333333333
    """
    check_floating(probs, "probs")
    if not isinstance(y, torch.Tensor) or y.shape != probs.shape[:1]:
        raise ValueError(
            f"y must be a tensor of shape ({len(probs)},) (one label per row of probs), got {y!r}"
        )
    return float((probs.argmax(dim=-1) != y).double().mean())


@dataclass(frozen=True)
class SubnetworkTable:
    """Every sub-network's prediction on a batch of inputs, and the ensemble's averages.

    Attributes:
        masks: ``(2**n, n)`` keep-masks in the order of :func:`all_masks`.
        probabilities: ``(2**n,)`` probability that dropout draws each mask, :math:`q^k p^{n-k}`.
        probs: ``(2**n, N, C)`` float32 class probabilities of every sub-network on the ``N`` inputs.
        arithmetic_mean: ``(N, C)`` exact ensemble prediction ``sum_m pi(m) P_m``.
        geometric_mean: ``(N, C)`` normalized geometric mean ``softmax(sum_m pi(m) log P_m)``.
        weight_scaling: ``(N, C)`` prediction of the network in evaluation mode.
        p: drop probability of the dropout layer.

    The three means are computed in the dtype given to :func:`enumerate_subnetworks` (float64 by
    default), before ``probs`` is rounded to float32 to save memory.
    """

    masks: torch.Tensor
    probabilities: torch.Tensor
    probs: torch.Tensor
    arithmetic_mean: torch.Tensor
    geometric_mean: torch.Tensor
    weight_scaling: torch.Tensor
    p: float

    @property
    def n_units(self) -> int:
        """Number of droppable units ``n``."""
        return int(self.masks.shape[1])

    @property
    def n_masks(self) -> int:
        """Number of sub-networks, ``2**n``."""
        return int(self.masks.shape[0])

    def subnetwork_errors(self, y: torch.Tensor) -> torch.Tensor:
        """``(2**n,)`` float64 test error of each sub-network on its own."""
        return (self.probs.argmax(dim=-1) != y).double().mean(dim=1)

    def expected_subnetwork_error(self, y: torch.Tensor) -> float:
        """Error of one sub-network drawn by dropout, on average: ``sum_m pi(m) error_m``."""
        return float((self.probabilities * self.subnetwork_errors(y)).sum())


def _dropped_inputs(
    h: torch.Tensor, p: float, inverted: bool, chunk_size: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``(weights, inputs)`` chunk by chunk: ``inputs[i] = m_i * h / q`` for every mask ``m_i``."""
    masks = all_masks(h.shape[1]).to(h.dtype)
    weights = mask_probabilities(masks, p).to(h.dtype)
    scaled = h / (1.0 - p) if inverted else h
    for start in range(0, len(masks), chunk_size):
        m = masks[start : start + chunk_size]
        yield weights[start : start + chunk_size], m[:, None, :] * scaled[None]


def expected_over_masks(
    fn: Callable[[torch.Tensor], torch.Tensor],
    h: torch.Tensor,
    p: float,
    *,
    inverted: bool = True,
    chunk_size: int = 64,
) -> torch.Tensor:
    r"""The exact expectation over dropout masks of ``fn`` applied to dropped-out activations.

    .. math::

        \mathbb{E}_m\big[f(m \odot h / q)\big] = \sum_{m \in \{0,1\}^n} q^{k} p^{\,n-k}\, f(m \odot h / q)

    for activations ``h`` of shape ``(N, n)`` (``m * h`` without the ``1/q`` if ``inverted`` is
    False). ``fn`` maps a ``(masks, N, n)`` tensor to ``(masks, N, ...)``; the result has shape
    ``(N, ...)``. For a linear ``fn`` the expectation is ``fn(h)`` (the masks average to ``q``); for a
    convex one such as ReLU it is at least ``fn(h)`` (Jensen's inequality).

    Example:
        >>> h = torch.tensor([[1.0, -2.0]], dtype=torch.float64)
        >>> expected_over_masks(lambda a: a.sum(-1), h, 0.5)  # linear: the input's own sum
        tensor([-1.], dtype=torch.float64)
        >>> expected_over_masks(lambda a: a.sum(-1).relu(), h, 0.5)  # E[relu] >= relu(E) = 0
        tensor([0.5000], dtype=torch.float64)
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    check_floating(h, "h")
    if h.dim() != 2:
        raise ValueError(f"h must have shape (N, n_units), got shape {tuple(h.shape)}")
    all_masks(h.shape[1])  # validates n
    p = check_probability(p)
    if p >= 1.0:
        raise ValueError("p must be below 1: with p=1 every unit is dropped")
    chunk_size = check_positive_int(chunk_size, "chunk_size")
    total = None
    with torch.no_grad():
        for weights, inputs in _dropped_inputs(h, p, inverted, chunk_size):
            out = fn(inputs)
            part = (weights.reshape(-1, *([1] * (out.dim() - 1))) * out).sum(dim=0)
            total = part if total is None else total + part
    return total


def enumerate_subnetworks(
    model: nn.Module, x: torch.Tensor, *, dtype: torch.dtype = torch.float64, chunk_size: int = 64
) -> SubnetworkTable:
    r"""Run every sub-network of ``model`` on ``x``; average them exactly.

    ``model`` is an ``nn.Sequential`` classifier (its outputs are logits) with exactly one dropout
    layer (see :func:`split_at_dropout`). With ``h = before(x)`` the activations that dropout acts
    on, sub-network ``m`` computes ``after(m * h / q)`` (inverted dropout; ``after(m * h)`` for
    :class:`~dropoutlib.StandardDropout`), and the weight-scaling rule ``after(h)`` (``after(q h)``).
    Masks are processed ``chunk_size`` at a time, all inputs at once; nothing changes in ``model``
    (a copy is converted to ``dtype``). The work is ``2**n`` forward passes of ``after``.

    Returns:
        A :class:`SubnetworkTable`.

    Example:
        >>> from dropoutlib.course.models import mlp
        >>> _ = torch.manual_seed(0)
        >>> table = enumerate_subnetworks(mlp(5, [4], 3, p=0.5), torch.randn(7, 5))
        >>> table.n_masks, tuple(table.probs.shape), tuple(table.arithmetic_mean.shape)
        (16, (16, 7, 3), (7, 3))
    """
    check_floating(x, "x")
    chunk_size = check_positive_int(chunk_size, "chunk_size")
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"dtype must be torch.float32 or torch.float64, got dtype={dtype}")
    before, after, p, inverted = split_at_dropout(model)
    before = _copy_to(before, dtype)
    after = _copy_to(after, dtype)
    with torch.no_grad():
        h = before(x.to(dtype))
        if h.dim() != 2:
            raise ValueError(f"the dropout layer must act on (N, n_units) activations, got {tuple(h.shape)}")
        masks = all_masks(h.shape[1])
        weight_scaling = torch.softmax(after(h if inverted else (1.0 - p) * h), dim=-1)
        arithmetic = torch.zeros_like(weight_scaling)
        log_sum = torch.zeros_like(weight_scaling)
        probs = torch.empty(len(masks), *weight_scaling.shape, dtype=torch.float32)
        start = 0
        for weights, inputs in _dropped_inputs(h, p, inverted, chunk_size):
            log_p = torch.log_softmax(after(inputs), dim=-1)
            p_m = log_p.exp()
            arithmetic += (weights[:, None, None] * p_m).sum(dim=0)
            log_sum += (weights[:, None, None] * log_p).sum(dim=0)
            probs[start : start + len(p_m)] = p_m
            start += len(p_m)
    return SubnetworkTable(
        masks=masks,
        probabilities=mask_probabilities(masks, p),
        probs=probs,
        arithmetic_mean=arithmetic,
        geometric_mean=torch.softmax(log_sum, dim=-1),
        weight_scaling=weight_scaling,
        p=p,
    )


def _copy_to(module: nn.Module, dtype: torch.dtype) -> nn.Module:
    import copy

    return copy.deepcopy(module).to(dtype).eval()


@dataclass(frozen=True)
class PredictionDistance:
    """How far two predictions of the same inputs are from each other.

    Attributes:
        max_abs: largest ``|a - b|`` over inputs and classes (probabilities).
        mean_tv: mean over inputs of the total-variation distance ``0.5 * sum_y |a(y) - b(y)|``.
        disagreement: fraction of inputs whose most probable class differs.
    """

    max_abs: float
    mean_tv: float
    disagreement: float


def prediction_distance(a: torch.Tensor, b: torch.Tensor) -> PredictionDistance:
    """Compare two ``(N, C)`` tensors of class probabilities (see :class:`PredictionDistance`).

    Example:
        >>> a = torch.tensor([[0.75, 0.25], [0.25, 0.75]])
        >>> prediction_distance(a, torch.tensor([[0.25, 0.75], [0.25, 0.75]]))
        PredictionDistance(max_abs=0.5, mean_tv=0.25, disagreement=0.5)
    """
    check_floating(a, "a")
    check_floating(b, "b")
    if a.shape != b.shape or a.dim() != 2:
        raise ValueError(f"a and b must both have shape (N, C), got {tuple(a.shape)} and {tuple(b.shape)}")
    difference = (a.double() - b.double()).abs()
    return PredictionDistance(
        max_abs=float(difference.max()),
        mean_tv=float(0.5 * difference.sum(dim=1).mean()),
        disagreement=float((a.argmax(dim=1) != b.argmax(dim=1)).double().mean()),
    )


@dataclass(frozen=True)
class EnsembleComparison:
    """Test errors of the four ways to predict, and the distances between three of them.

    Attributes:
        arithmetic_error: error of the exact ensemble (arithmetic mean over all sub-networks).
        geometric_error: error of the normalized geometric mean.
        scaling_error: error of the weight-scaling rule (the network in evaluation mode).
        subnetwork_error: error of one sub-network drawn by dropout, on average (Monte Carlo, k = 1).
        geometric_vs_scaling, arithmetic_vs_scaling, arithmetic_vs_geometric: distances between
            the predictions (:class:`PredictionDistance`).
    """

    arithmetic_error: float
    geometric_error: float
    scaling_error: float
    subnetwork_error: float
    geometric_vs_scaling: PredictionDistance
    arithmetic_vs_scaling: PredictionDistance
    arithmetic_vs_geometric: PredictionDistance


def compare_predictions(table: SubnetworkTable, y: torch.Tensor) -> EnsembleComparison:
    """Errors and distances of the arithmetic mean, geometric mean and weight-scaling rule.

    Example:
        >>> from dropoutlib.course.models import mlp
        >>> _ = torch.manual_seed(0)
        >>> table = enumerate_subnetworks(mlp(5, [4], 3, p=0.5), torch.randn(7, 5))
        >>> comparison = compare_predictions(table, torch.zeros(7, dtype=torch.int64))
        >>> comparison.geometric_vs_scaling.max_abs < 1e-12  # dropout right before the output layer
        True
    """
    if not isinstance(table, SubnetworkTable):
        raise TypeError(f"table must be a SubnetworkTable, got {type(table).__name__}")
    am, gm, ws = table.arithmetic_mean, table.geometric_mean, table.weight_scaling
    return EnsembleComparison(
        arithmetic_error=error_rate(am, y),
        geometric_error=error_rate(gm, y),
        scaling_error=error_rate(ws, y),
        subnetwork_error=table.expected_subnetwork_error(y),
        geometric_vs_scaling=prediction_distance(gm, ws),
        arithmetic_vs_scaling=prediction_distance(am, ws),
        arithmetic_vs_geometric=prediction_distance(am, gm),
    )


@dataclass(frozen=True)
class MonteCarloCurve:
    """Test errors of Monte Carlo averages of ``k`` sub-networks, for a grid of ``k``, repeated.

    Attributes:
        ks: the numbers of sampled sub-networks, increasing.
        errors: ``(n_repeats, len(ks))`` test error of each repeat at each ``k``.
    """

    ks: tuple[int, ...]
    errors: np.ndarray

    @property
    def mean(self) -> np.ndarray:
        """Mean error over the repeats, one value per ``k``."""
        return self.errors.mean(axis=0)

    @property
    def standard_error(self) -> np.ndarray:
        """Standard error of that mean: sample standard deviation over the repeats / sqrt(repeats)."""
        return self.errors.std(axis=0, ddof=1) / math.sqrt(len(self.errors))

    def meeting_point(self, reference: float) -> int | None:
        """The smallest ``k`` whose mean error is at most ``reference`` plus one standard error.

        That is, the first ``k`` of the grid at which the Monte Carlo average is, within its own
        sampling noise, as good as a deterministic predictor with error ``reference`` (or better).
        ``None`` if no ``k`` of the grid gets there.

        Example:
            >>> curve = MonteCarloCurve((1, 10, 100), np.array([[0.3, 0.1, 0.05], [0.2, 0.1, 0.07]]))
            >>> curve.meeting_point(0.08), curve.meeting_point(0.01)
            (100, None)
        """
        reference = float(reference)
        met = self.mean <= reference + self.standard_error
        return int(self.ks[int(np.argmax(met))]) if bool(met.any()) else None


def monte_carlo_errors(
    table: SubnetworkTable,
    y: torch.Tensor,
    ks: Sequence[int],
    n_repeats: int,
    generator: torch.Generator | None = None,
) -> MonteCarloCurve:
    """Test errors of Monte Carlo averages over ``k`` sub-networks drawn as dropout draws them.

    Each repeat draws ``max(ks)`` masks, every unit kept with probability ``q`` independently (the
    masks of one prediction at test time with dropout left on), looks up those sub-networks'
    predictions in ``table`` and averages the first ``k`` of them, for each ``k`` of the grid:
    ``P_k(y | x) = (1/k) sum_{i <= k} P_{m_i}(y | x)``. So within a repeat the averages for
    different ``k`` share their first masks, as when one keeps sampling; repeats are independent.
    As ``k`` grows, ``P_k`` tends to the table's arithmetic mean. The sums are kept in the dtype of
    ``table.probs`` (float32): only the most probable class of each average is used.

    Example:
        >>> from dropoutlib.course.models import mlp
        >>> _ = torch.manual_seed(0)
        >>> table = enumerate_subnetworks(mlp(5, [4], 3, p=0.5), torch.randn(7, 5))
        >>> y = torch.zeros(7, dtype=torch.int64)
        >>> curve = monte_carlo_errors(table, y, [1, 10], 4, torch.Generator().manual_seed(0))
        >>> curve.errors.shape
        (4, 2)
    """
    if not isinstance(table, SubnetworkTable):
        raise TypeError(f"table must be a SubnetworkTable, got {type(table).__name__}")
    ks = tuple(check_positive_int(k, "k") for k in ks)
    if not ks or any(b <= a for a, b in zip(ks, ks[1:], strict=False)):
        raise ValueError(f"ks must be a nonempty increasing sequence, got ks={ks}")
    n_repeats = check_positive_int(n_repeats, "n_repeats")
    if n_repeats < 2:
        raise ValueError(f"n_repeats must be at least 2 to estimate a standard error, got {n_repeats}")
    check_generator(generator)
    powers = 2 ** torch.arange(table.n_units)
    bounds = (0, *ks)
    errors = np.zeros((n_repeats, len(ks)))
    for r in range(n_repeats):
        kept = torch.rand(ks[-1], table.n_units, generator=generator) < 1.0 - table.p
        rows = (kept.long() * powers).sum(dim=1)
        running = torch.zeros(table.probs.shape[1:], dtype=table.probs.dtype)
        for j, (start, stop) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
            running += table.probs[rows[start:stop]].sum(dim=0)
            errors[r, j] = (running.argmax(dim=-1) != y).double().mean().item()
    return MonteCarloCurve(ks=ks, errors=errors)


def build_net(kind: Literal["shallow", "deep"], p: float = 0.5, n_units: int = 12) -> nn.Sequential:
    """One of chapter 4's two small networks for the digits (64 inputs, 10 classes).

    - ``"shallow"``: ``64 -> n_units`` ReLU, dropout ``p``, then the output layer; the dropped units
      feed the softmax directly.
    - ``"deep"``: the same, with a second hidden layer of 32 ReLU units (no dropout) between the
      dropout and the output layer; the dropped units now pass through a nonlinearity first.

    Both have ``n_units`` droppable units, so ``2**n_units`` sub-networks.

    Example:
        >>> build_net("deep")
        Sequential(
          (0): Linear(in_features=64, out_features=12, bias=True)
          (1): ReLU()
          (2): Dropout(p=0.5, inplace=False)
          (3): Linear(in_features=12, out_features=32, bias=True)
          (4): ReLU()
          (5): Linear(in_features=32, out_features=10, bias=True)
        )
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got kind={kind!r}")
    p = check_probability(p)
    n_units = check_positive_int(n_units, "n_units")
    layers: list[nn.Module] = [nn.Linear(64, n_units), nn.ReLU(), nn.Dropout(p)]
    if kind == "deep":
        layers += [nn.Linear(n_units, 32), nn.ReLU(), nn.Linear(32, 10)]
    else:
        layers.append(nn.Linear(n_units, 10))
    return nn.Sequential(*layers)


def train_net(
    kind: Literal["shallow", "deep"],
    seed: int = 0,
    *,
    p: float = 0.5,
    n_units: int = 12,
    epochs: int = 300,
    lr: float = 1e-2,
    data: Split | None = None,
    progress: bool = False,
) -> tuple[nn.Sequential, History]:
    """Build :func:`build_net` ``(kind, p, n_units)`` and train it on the digits with dropout.

    ``seed`` fixes the initial weights (:func:`~course.seed_everything`) and the training masks;
    training is full batch, ``epochs`` steps of Adam with learning rate ``lr``
    (:func:`~course.fit`, history recorded after the last step only). ``data`` defaults to
    :func:`~course.load_digits` (the book's fixed split). The model is returned in evaluation mode.

    Example:
        >>> model, history = train_net("shallow", epochs=5)
        >>> model.training, len(history.epoch)
        (False, 1)
    """
    seed = check_seed(seed)
    data = check_split(data, load_digits)
    seed_everything(seed)
    model = build_net(kind, p=p, n_units=n_units)
    history = fit(model, data, epochs=epochs, lr=lr, seed=seed, progress=progress, eval_every=epochs)
    return model, history


def plot_monte_carlo(
    ax: Axes,
    curve: MonteCarloCurve,
    *,
    scaling_error: float,
    arithmetic_error: float,
    meeting_point: int | None = None,
) -> None:
    """Draw a Monte Carlo curve (mean error and one standard error) against the deterministic errors.

    The curve is plotted against ``k``, both axes logarithmic, with horizontal lines at the errors of
    the weight-scaling rule and of the exact ensemble, and a marker at ``meeting_point`` if given.

    Example:
        >>> import matplotlib.pyplot as plt
        >>> fig, ax = plt.subplots()
        >>> curve = MonteCarloCurve((1, 10), np.array([[0.3, 0.1], [0.2, 0.1]]))
        >>> plot_monte_carlo(ax, curve, scaling_error=0.1, arithmetic_error=0.09, meeting_point=10)
        >>> plt.close(fig)
    """
    from matplotlib.ticker import NullFormatter

    from dropoutlib.course.plots import COLORS

    ks = np.array(curve.ks)
    mean, se = 100 * curve.mean, 100 * curve.standard_error
    ax.fill_between(ks, mean - se, mean + se, color=COLORS["dropout"], alpha=0.25, lw=0)
    ax.plot(ks, mean, "o-", ms=4, color=COLORS["dropout"], label="Monte Carlo, k sub-networks")
    ax.axhline(
        100 * scaling_error, color=COLORS["baseline"], ls="--", lw=1.6, label="weight scaling (eval mode)"
    )
    ax.axhline(
        100 * arithmetic_error, color=COLORS["neutral"], ls=":", lw=1.6, label="exact ensemble (all masks)"
    )
    if meeting_point is not None:
        j = curve.ks.index(meeting_point)
        ax.plot(
            [meeting_point],
            [mean[j]],
            "s",
            ms=10,
            mfc="none",
            mec="black",
            mew=1.5,
            label=f"meets weight scaling: k = {meeting_point}",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")  # the curve falls by an order of magnitude: show the approach in detail
    low, high = 0.8 * mean.min(), 1.25 * mean.max()
    ticks = [t for t in (1, 2, 3, 4, 6, 8, 10, 15, 20, 30, 50, 70, 100) if low <= t <= high]
    ax.set_yticks(ticks, [f"{t:g}" for t in ticks])
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("number of sampled sub-networks k")
    ax.set_ylabel("test error (%, log scale)")


# --- tables and claims of chapter 4 ---------------------------------------------------------------

#: The rows of :func:`error_table`: label -> attribute of :class:`EnsembleComparison`.
ERROR_ROWS = {
    "exact ensemble (arithmetic mean)": "arithmetic_error",
    "normalized geometric mean": "geometric_error",
    "weight scaling (eval mode)": "scaling_error",
    "one sub-network, on average": "subnetwork_error",
}
#: How many standard errors the Monte Carlo error at ``k = 1`` may lie from one sub-network's exact
#: expected error: in the chapter's own run, and over the claims test's five seeds (which allow for
#: chance: among many seeds one is expected beyond three standard errors now and then).
Z_ONE_BOUND = 3.0
Z_ONE_BOUND_OVER_SEEDS = 4.0


def error_table(comparisons: dict[str, EnsembleComparison]) -> pd.DataFrame:
    """The test errors of the ways to predict, one column per network: a DataFrame (4 decimals).

    Example:
        >>> from dropoutlib.course.models import mlp
        >>> _ = torch.manual_seed(0)
        >>> table = enumerate_subnetworks(mlp(5, [4], 3, p=0.5), torch.randn(7, 5))
        >>> c = compare_predictions(table, torch.zeros(7, dtype=torch.int64))
        >>> error_table({"tiny": c}).shape
        (4, 1)
    """
    from dropoutlib.course.book import table

    rows = [
        {"test error": label, **{name: getattr(c, field) for name, c in comparisons.items()}}
        for label, field in ERROR_ROWS.items()
    ]
    return table(rows, index="test error", digits=4)


def monte_carlo_table(curves: dict[str, MonteCarloCurve]) -> pd.DataFrame:
    """Mean and standard error of the Monte Carlo test error at each ``k``, per network (4 decimals).

    Example:
        >>> curve = MonteCarloCurve((1, 10), np.array([[0.3, 0.1], [0.2, 0.1]]))
        >>> monte_carlo_table({"net": curve}).loc[1].tolist()
        [0.25, 0.05]
    """
    from dropoutlib.course.book import table

    ks = next(iter(curves.values())).ks
    rows = [
        {
            "k": k,
            **{
                f"{name} {what}": float(values[j])
                for name, c in curves.items()
                for what, values in (("mean", c.mean), ("se", c.standard_error))
            },
        }
        for j, k in enumerate(ks)
    ]
    return table(rows, index="k", digits=4)


def mask_claims(weights: torch.Tensor, source_weights: torch.Tensor, kept: torch.Tensor) -> list[Claim]:
    """The mask probabilities ``q^k p^(n-k)`` add up to 1; the source's ``(1-p)^k`` favours keeping nothing.

    Example:
        >>> from dropoutlib.course.claims import check
        >>> masks = all_masks(3)
        >>> kept = masks.sum(dim=1)
        >>> check(mask_claims(mask_probabilities(masks, 0.5), 0.5**kept, kept))
        ✓ the mask probabilities add up to 1 (|1 - 1| < 1e-12)
        ✓ the source's heaviest mask keeps no unit (keeps 0)
    """
    total = weights.sum().item()
    heaviest = int(kept[source_weights.argmax()])
    return [
        Claim("the mask probabilities add up to 1", abs(total - 1) < 1e-12, f"|{total:.12g} - 1| < 1e-12"),
        Claim("the source's heaviest mask keeps no unit", heaviest == 0, f"keeps {heaviest}"),
    ]


def subnetwork_claims(table: SubnetworkTable, error_by_k: np.ndarray) -> list[Claim]:
    """Sub-networks that keep more units err less; the one that keeps none gives one output for all.

    ``error_by_k[k]`` is the mean test error of the sub-networks that keep ``k`` units.
    """
    constant = bool((table.probs[0] == table.probs[0, 0]).all())
    return [
        Claim(
            "sub-networks that keep more units make fewer errors",
            bool(np.all(np.diff(error_by_k) < 0)),
            "mean error for k = 0, 1, ...: " + ", ".join(f"{e:.3f}" for e in error_by_k),
        ),
        Claim(
            "keeping no unit gives one output for every image",
            constant,
            "identical rows" if constant else "rows differ",
        ),
    ]


def averaging_claims(c: EnsembleComparison) -> list[Claim]:
    r"""One hidden layer: weight scaling *is* the geometric mean; the arithmetic mean differs, errs alike.

    And the exact ensemble errs less than a third as often as one sub-network drawn by dropout.
    """
    gm_ws, am_ws = c.geometric_vs_scaling, c.arithmetic_vs_scaling
    return [
        below("weight scaling equals the geometric mean (max |difference|)", gm_ws.max_abs, 1e-13),
        above("the arithmetic mean is another distribution (mean TV)", am_ws.mean_tv, 0.05),
        below(
            "the arithmetic mean and weight scaling err alike (|error gap|)",
            abs(c.arithmetic_error - c.scaling_error),
            0.01,
        ),
        below("they rarely predict different classes", am_ws.disagreement, 0.02),
        below(
            "the ensemble errs < 1/3 as often as one sub-network", c.arithmetic_error, c.subnetwork_error / 3
        ),
    ]


def confidence_claims(confidence_am: float, confidence_ws: float, ws_above: float) -> list[Claim]:
    """Weight scaling is more confident than the arithmetic mean, and favours the correct class.

    ``confidence_*`` are the mean probabilities of the predicted class; ``ws_above`` the share of
    images on which weight scaling gives the correct class more probability than the arithmetic mean.
    """
    return [
        above("weight scaling is more confident than the arithmetic mean", confidence_ws, confidence_am),
        above("it gives the correct class more probability on most images", ws_above, 0.8),
    ]


def jensen_claims(relu_ensemble: torch.Tensor, relu_scaling: torch.Tensor, gm_check: float) -> list[Claim]:
    r"""Jensen, measured: :math:`\mathbb E[\mathrm{relu}(a)] \ge \mathrm{relu}(\mathbb E[a])` everywhere.

    Weight scaling visibly underestimates the second layer's mean activation, and the geometric mean
    is the softmax of the average logits (``gm_check``: its largest difference from it).
    """
    shortfall = (relu_scaling - relu_ensemble).max().item()
    ratio = (relu_scaling.mean() / relu_ensemble.mean()).item()
    return [
        below("E[relu(a)] >= relu(E[a]), for every unit and image (max shortfall)", shortfall, 1e-12),
        below("weight scaling underestimates the mean activation (ratio)", ratio, 0.95),
        below("the geometric mean is the softmax of the average logits", gm_check, 1e-12),
    ]


def deep_network_claims(c: EnsembleComparison, deep_acc: float, shallow_acc: float) -> list[Claim]:
    """With a ReLU layer after the dropout, weight scaling differs from the means and errs more.

    ``deep_acc`` and ``shallow_acc`` are the two networks' test accuracies in evaluation mode (that
    is, with weight scaling): the deep network's is the lower.
    """
    gm_ws = c.geometric_vs_scaling
    return [
        below("in eval mode the deep network is less accurate than the shallow one", deep_acc, shallow_acc),
        above("weight scaling differs from the geometric mean (max |difference|)", gm_ws.max_abs, 0.1),
        above("they predict different classes on some images", gm_ws.disagreement, 0.01),
        above(
            "weight scaling errs clearly more than the geometric mean",
            c.scaling_error,
            c.geometric_error + 0.01,
        ),
        above(
            "weight scaling errs clearly more than the exact ensemble",
            c.scaling_error,
            c.arithmetic_error + 0.01,
        ),
    ]


def monte_carlo_claims(
    curves: dict[str, MonteCarloCurve],
    comparisons: dict[str, EnsembleComparison],
    *,
    z_bound: float = Z_ONE_BOUND,
) -> list[Claim]:
    """Monte Carlo meets weight scaling after tens of samples (shallow) and converges to the ensemble.

    ``curves`` and ``comparisons`` hold the ``"shallow"`` and ``"deep"`` networks. At ``k = 1`` the
    mean error lies within ``z_bound`` standard errors of one sub-network's exact expected error; at
    ``k = 1000`` (the grid's last ``k``) within 0.004 of the exact ensemble's, for both networks. The
    deep network meets weight scaling earlier and ends well below it.
    """
    shallow, deep = curves["shallow"], curves["deep"]
    c_shallow, c_deep = comparisons["shallow"], comparisons["deep"]
    meet_shallow = shallow.meeting_point(c_shallow.scaling_error)
    meet_deep = deep.meeting_point(c_deep.scaling_error)
    z_one = (shallow.mean[0] - c_shallow.subnetwork_error) / shallow.standard_error[0]
    claims = [
        Claim(
            "shallow: Monte Carlo meets weight scaling at 10 <= k <= 100",
            meet_shallow is not None and 10 <= meet_shallow <= 100,
            f"k = {meet_shallow}",
        ),
        above(
            "one sampled sub-network errs > 3 times as often as weight scaling",
            shallow.mean[0],
            3 * c_shallow.scaling_error,
        ),
        below("k = 1 agrees with one sub-network's exact error (|z|)", abs(z_one), z_bound),
    ]
    for name in ("shallow", "deep"):
        gap = abs(curves[name].mean[-1] - comparisons[name].arithmetic_error)
        k = curves[name].ks[-1]
        claims.append(below(f"{name}: k = {k} is at the exact ensemble (|gap|)", gap, 0.004))
    claims += [
        Claim(
            "deep: Monte Carlo meets weight scaling earlier",
            meet_deep is not None and meet_shallow is not None and meet_deep < meet_shallow,
            f"k = {meet_deep} < {meet_shallow}",
        ),
        below("deep: Monte Carlo ends well below weight scaling", deep.mean[-1], c_deep.scaling_error - 0.02),
    ]
    return claims


def repaired_weights_claims(repaired_error: float, c: EnsembleComparison) -> list[Claim]:
    """Exercise 3: the source's weights, renormalized (``p' = 1/(2-p)``), barely change the error."""
    return [
        below(
            "the repaired weights barely change the error (|difference|)",
            abs(repaired_error - c.arithmetic_error),
            0.02,
        )
    ]


def less_dropout_claims(light: EnsembleComparison, heavy: EnsembleComparison) -> list[Claim]:
    """Exercise 5: ``p = 0.2`` (``light``) instead of 0.5 (``heavy``) shrinks the Jensen gap."""
    return [
        below(
            "p = 0.2 cuts the mean TV to weight scaling > 3-fold",
            light.geometric_vs_scaling.mean_tv,
            heavy.geometric_vs_scaling.mean_tv / 3,
        ),
        below(
            "p = 0.2: weight scaling errs like the geometric mean (|gap|)",
            abs(light.scaling_error - light.geometric_error),
            0.01,
        ),
    ]


# --------------------------------------------------------------------------------------------------
# Noise and scores: how far one test set of 540 images can be trusted, and the probabilities themselves.
# --------------------------------------------------------------------------------------------------

#: A difference between two error rates counts as measured, not noise, beyond this many standard errors.
NOISE_STANDARD_ERRORS = 2.0
#: The seeds over which :func:`ensemble_over_seeds` repeats the chapter's two networks.
SEEDS = (0, 1, 2, 3, 4)
#: The three predictions the chapter compares, as attributes of :class:`SubnetworkTable`.
PREDICTIONS = {
    "exact ensemble (arithmetic mean)": "arithmetic_mean",
    "normalized geometric mean": "geometric_mean",
    "weight scaling (eval mode)": "weight_scaling",
}


def paired_error_difference(
    probs_a: torch.Tensor, probs_b: torch.Tensor, y: torch.Tensor
) -> tuple[float, float]:
    r"""Error of ``a`` minus error of ``b`` on the same images, and its standard error.

    With :math:`d_i = [\text{a errs on } i] - [\text{b errs on } i]`, returns :math:`\bar d` and
    :math:`s_d/\sqrt{N}`: pairing removes the images both get right or both get wrong, so this is
    much smaller than the binomial standard error of either rate when the two mostly agree.

    Example:
        >>> y = torch.tensor([0, 0, 0, 0])
        >>> a = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
        >>> b = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
        >>> paired_error_difference(a, b, y)
        (0.25, 0.25)
    """
    wrong_a = (probs_a.argmax(dim=1) != y).double()
    wrong_b = (probs_b.argmax(dim=1) != y).double()
    d = wrong_a - wrong_b
    return float(d.mean()), float(d.std() / math.sqrt(len(d)))


def log_loss(probs: torch.Tensor, y: torch.Tensor) -> float:
    """Mean negative log-probability of the correct class (the test cross-entropy, in nats).

    Example:
        >>> round(log_loss(torch.tensor([[0.5, 0.5], [0.9, 0.1]]), torch.tensor([0, 0])), 4)
        0.3993
    """
    correct = probs.double()[torch.arange(len(y)), y]
    return float(-correct.clamp_min(1e-300).log().mean())


def scores_table(table: SubnetworkTable, y: torch.Tensor) -> pd.DataFrame:
    """Test error (with its binomial standard error), log-loss, calibration and confidence of each rule.

    One row per entry of :data:`PREDICTIONS`; the ECE is
    :func:`dropoutlib.uncertainty.expected_calibration_error` (10 equal-width bins).
    """
    from dropoutlib.course.book import table as frame
    from dropoutlib.uncertainty import expected_calibration_error

    rows = []
    for label, attribute in PREDICTIONS.items():
        probs = getattr(table, attribute).float()
        error = error_rate(probs, y)
        rows.append(
            {
                "prediction": label,
                "test error": error,
                "± (binomial SE)": binomial_standard_error(error, len(y)),
                "log-loss": log_loss(probs, y),
                "ECE": expected_calibration_error(probs, y),
                "mean confidence": float(probs.max(dim=1).values.mean()),
            }
        )
    return frame(rows, index="prediction", digits=4)


def scores_claims(scores: pd.DataFrame) -> list[Claim]:
    """The exact ensemble is the worst of the three by log-loss and calibration; it is underconfident.

    ``scores`` is a :func:`scores_table`. The geometric mean has the lowest log-loss (weight scaling
    ties it when it *is* the geometric mean), the arithmetic mean the highest ECE, and its mean
    confidence lies below its accuracy.
    """
    am, gm, ws = (scores.loc[label] for label in PREDICTIONS)
    return [
        below(
            "the geometric mean has a lower log-loss than the exact ensemble", gm["log-loss"], am["log-loss"]
        ),
        below(
            "the geometric mean's log-loss is at most weight scaling's",
            gm["log-loss"],
            ws["log-loss"] + 1e-4,
        ),
        above(
            "the exact ensemble is the worst calibrated (ECE)", am["ECE"], max(gm["ECE"], ws["ECE"])
        ),
        below(
            "the exact ensemble is underconfident (mean confidence < accuracy)",
            am["mean confidence"],
            1.0 - am["test error"],
        ),
    ]


def noise_claims(table: SubnetworkTable, deep_table: SubnetworkTable, y: torch.Tensor) -> list[Claim]:
    """On one test set: the shallow ensemble-vs-weight-scaling gap is noise, the deep one is not.

    Shallow network: the two error rates differ by less than one binomial standard error of weight
    scaling's error (:func:`binomial_standard_error`), the noise of the test set itself. Deep network:
    weight scaling errs more than the geometric mean by more than :data:`NOISE_STANDARD_ERRORS`
    paired standard errors (:func:`paired_error_difference`).
    """
    shallow_diff, _ = paired_error_difference(table.arithmetic_mean, table.weight_scaling, y)
    shallow_se = binomial_standard_error(error_rate(table.weight_scaling, y), len(y))
    deep_diff, deep_se = paired_error_difference(deep_table.weight_scaling, deep_table.geometric_mean, y)
    return [
        below(
            "shallow: |exact ensemble - weight scaling| < one binomial SE of the error",
            abs(shallow_diff),
            shallow_se,
        ),
        above(
            f"deep: weight scaling errs more than the geometric mean, > {NOISE_STANDARD_ERRORS:g} paired SE",
            deep_diff,
            NOISE_STANDARD_ERRORS * deep_se,
        ),
    ]


@dataclass(frozen=True)
class SeedErrors:
    """Test errors of the three rules for each network and seed.

    ``errors[kind][rule]`` is a tuple over the seeds, ``rule`` an attribute named in :data:`PREDICTIONS`.
    """

    seeds: tuple[int, ...]
    errors: dict[str, dict[str, tuple[float, ...]]]

    def gain(self, kind: str, base: str, other: str) -> tuple[float, float]:
        """Paired mean and standard error over the seeds of ``other``'s error minus ``base``'s."""
        from dropoutlib.course.stats import paired_gain

        mean, _, se = paired_gain(self.errors[kind][base], self.errors[kind][other])
        return mean, se


def ensemble_over_seeds(
    seeds: Sequence[int] = SEEDS, kinds: Sequence[str] = KINDS, data: Split | None = None
) -> SeedErrors:
    """Train the chapter's networks (``kinds``) for each seed and record the three rules' test errors.

    About a second per network and seed on one CPU thread (full-batch training, 4096 sub-networks).
    """
    data = check_split(data, load_digits)
    errors: dict[str, dict[str, list[float]]] = {
        kind: {attr: [] for attr in PREDICTIONS.values()} for kind in kinds
    }
    for seed in seeds:
        for kind in kinds:
            model, _ = train_net(kind, seed, data=data)
            table = enumerate_subnetworks(model, data.x_test)
            for attr in PREDICTIONS.values():
                errors[kind][attr].append(error_rate(getattr(table, attr), data.y_test))
    frozen = {kind: {a: tuple(v) for a, v in rules.items()} for kind, rules in errors.items()}
    return SeedErrors(seeds=tuple(seeds), errors=frozen)


def over_seeds_claims(summary: SeedErrors) -> list[Claim]:
    """Over the seeds: the shallow exact ensemble errs slightly less than weight scaling; deep, clearly.

    Each is a paired mean over the seeds below minus :data:`NOISE_STANDARD_ERRORS` standard errors.
    """
    claims = []
    for kind in summary.errors:
        mean, se = summary.gain(kind, "weight_scaling", "arithmetic_mean")
        claims.append(
            below(
                f"{kind}: over {len(summary.seeds)} seeds the exact ensemble errs less than weight scaling "
                f"(paired mean + {NOISE_STANDARD_ERRORS:g} SE)",
                mean + NOISE_STANDARD_ERRORS * se,
                0.0,
            )
        )
    return claims


# ---------------------------------------------------------------------------------------------
# Sigmoid units (Baldi and Sadowski 2013) and fast dropout (Wang and Manning 2013)

TAYLOR_CONSTANT = 1.0 / (12.0 * math.sqrt(3.0))
"""``max|sigmoid''| / 2``: by Taylor, ``|E[sigmoid(S)] - sigmoid(E[S])| <= TAYLOR_CONSTANT * Var(S)``."""


@dataclass(frozen=True)
class SigmoidAverages:
    """Averages over every dropout mask of sigmoid units ``sigmoid(S(m))``, ``S(m) = w . (m * h / q) + b``.

    Each field has shape ``(N, units)``: ``arithmetic`` is ``E[sigmoid(S)]``; ``geometric`` and
    ``complement`` the weighted geometric means ``G`` of ``sigmoid(S)`` and ``G'`` of ``1 - sigmoid(S)``;
    ``normalized`` is ``G / (G + G')``; ``mean_input`` and ``input_variance`` the mean and variance of
    ``S`` over the masks; ``all_low`` and ``all_high`` mark the units whose outputs are at most (at
    least) one half under every mask.
    """

    arithmetic: torch.Tensor
    geometric: torch.Tensor
    complement: torch.Tensor
    normalized: torch.Tensor
    mean_input: torch.Tensor
    input_variance: torch.Tensor
    all_low: torch.Tensor
    all_high: torch.Tensor

    @property
    def fast_dropout(self) -> torch.Tensor:
        r"""Fast dropout's one-pass estimate of ``E[sigmoid(S)]``: ``S`` taken as Gaussian.

        .. math:: \mathbb E[\sigma(S)] \approx \sigma\big(\mu / \sqrt{1 + \pi v / 8}\big)
        """
        return torch.sigmoid(self.mean_input / torch.sqrt(1.0 + math.pi * self.input_variance / 8.0))


def sigmoid_unit_averages(h: torch.Tensor, linear: nn.Linear, p: float) -> SigmoidAverages:
    """Sigmoid units ``sigmoid(linear(m * h / q))`` averaged exactly over the ``2**n`` masks of ``h``.

    ``h`` has shape ``(N, n)``; every output of ``linear`` is one sigmoid unit. Computed in ``h``'s
    dtype (use float64 for the identities).

    Example:
        >>> h = torch.rand(3, 4, dtype=torch.float64)
        >>> s = sigmoid_unit_averages(h, nn.Linear(4, 2).double(), 0.5)
        >>> bool(torch.allclose(s.normalized, torch.sigmoid(s.mean_input)))  # Baldi and Sadowski
        True
    """
    if not isinstance(linear, nn.Linear):
        raise TypeError(f"linear must be an nn.Linear, got {type(linear).__name__}")
    with torch.no_grad():
        w = _copy_to(linear, h.dtype)

        def statistics(a: torch.Tensor) -> torch.Tensor:
            z = w(a)
            return torch.stack(
                [torch.sigmoid(z), F.logsigmoid(z), F.logsigmoid(-z), z, z**2, z <= 0, z >= 0], dim=-1
            )

        e = expected_over_masks(statistics, h, p).unbind(-1)
        return SigmoidAverages(
            arithmetic=e[0],
            geometric=e[1].exp(),
            complement=e[2].exp(),
            normalized=torch.sigmoid(e[1] - e[2]),
            mean_input=e[3],
            input_variance=e[4] - e[3] ** 2,
            all_low=e[5] > 1 - 1e-9,
            all_high=e[6] > 1 - 1e-9,
        )


def fast_dropout_relu(linear: nn.Linear, h: torch.Tensor, p: float) -> torch.Tensor:
    r"""Fast dropout's estimate of ``E[relu(linear(m * h / q))]``, in one pass.

    The pre-activation ``a`` is a sum of many independently dropped terms; fast dropout takes it as
    Gaussian with the exact mean ``mu = linear(h)`` and variance ``v = (p/q) sum_j w_j^2 h_j^2``, and
    uses the Gaussian's ReLU mean :math:`\mu\,\Phi(\mu/s) + s\,\varphi(\mu/s)`, ``s = sqrt(v)``.

    Example:
        >>> lin = nn.Linear(3, 1).double()
        >>> h = torch.rand(5, 3, dtype=torch.float64)
        >>> bool((fast_dropout_relu(lin, h, 0.5) >= lin(h).relu()).all())  # like E[relu], above relu(E)
        True
    """
    if not isinstance(linear, nn.Linear):
        raise TypeError(f"linear must be an nn.Linear, got {type(linear).__name__}")
    check_floating(h, "h")
    p = check_probability(p)
    if p >= 1.0:
        raise ValueError("p must be below 1: with p=1 every unit is dropped")
    with torch.no_grad():
        mu = linear(h)
        s = torch.sqrt(p / (1.0 - p) * (h**2) @ (linear.weight.T**2)).clamp_min(1e-300)
        z = mu / s
        normal_pdf = torch.exp(-0.5 * z**2) / math.sqrt(2.0 * math.pi)
        normal_cdf = 0.5 * torch.erfc(-z / math.sqrt(2.0))
        return mu * normal_cdf + s * normal_pdf


def sigmoid_claims(s: SigmoidAverages) -> list[Claim]:
    """Baldi and Sadowski's identity and bounds, and fast dropout's estimate, on every unit and image.

    - ``G / (G + G')`` equals the sigmoid of the mean input (to rounding);
    - the arithmetic mean differs from it visibly, within the Taylor bound everywhere;
    - where every output is at most one half, ``G <= NWGM <= E`` (Ky Fan's inequality), and the mirror
      ``E <= NWGM <= 1 - G'`` where every output is at least one half;
    - fast dropout is at least four times closer to the arithmetic mean than weight scaling.
    """
    gap = s.arithmetic - s.normalized
    excess = gap.abs() - TAYLOR_CONSTANT * s.input_variance
    low, high = s.all_low, s.all_high
    tiny = 1e-12
    ky_fan = torch.cat(
        [
            (s.geometric - s.normalized)[low],
            (s.normalized - s.arithmetic)[low],
            (s.arithmetic - s.normalized)[high],
            (s.normalized - 1 + s.complement)[high],
        ]
    )
    fast_error = (s.arithmetic - s.fast_dropout).abs().mean().item()
    return [
        below(
            "G/(G+G') is the sigmoid of the mean input (max |difference|)",
            (s.normalized - torch.sigmoid(s.mean_input)).abs().max().item(),
            tiny,
        ),
        above("the arithmetic mean differs from it (mean |difference|)", gap.abs().mean().item(), 0.02),
        below("|E - NWGM| <= Var(S) / (12 sqrt 3) everywhere (max excess)", excess.max().item(), tiny),
        above("some units have all outputs on one side of 1/2", float((low | high).sum()), 0.0),
        below("Ky Fan: G <= NWGM <= E there (max violation)", ky_fan.max().item(), tiny),
        below("fast dropout is 4x closer to E than weight scaling", 4 * fast_error, gap.abs().mean().item()),
    ]


def fast_dropout_claims(
    relu_fast: torch.Tensor,
    relu_ensemble: torch.Tensor,
    relu_scaling: torch.Tensor,
    fast_error: float,
    scaling_error: float,
    geometric_error: float,
) -> list[Claim]:
    """Fast dropout's ReLU means are at least 4x closer to the exact ones than weight scaling's; its
    test error (``fast_error``) is below weight scaling's and within one point of the geometric mean's."""
    fast_gap = (relu_fast - relu_ensemble).abs().mean().item()
    scaling_gap = (relu_scaling - relu_ensemble).abs().mean().item()
    return [
        below("fast dropout's ReLU means are 4x closer to the exact ones", 4 * fast_gap, scaling_gap),
        below("fast dropout errs less than weight scaling", fast_error, scaling_error),
        below("it errs within one point of the geometric mean", abs(fast_error - geometric_error), 0.01),
    ]
