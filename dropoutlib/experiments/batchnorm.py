r"""Dropout and batch normalization: the variance shift, how to measure it, and two ways around it.

Batch normalization (BN) learns, during training, a running mean and variance for every feature of its
input, and uses them at test time. When dropout sits *before* a BN layer, the variance BN sees in
training includes dropout's noise, and the variance it sees at test time does not: the stored
statistics no longer describe the test-time input. Li et al. (2019) call this the *variance shift*.

For one feature :math:`x` with mean :math:`\mu` and variance :math:`\sigma^2`, inverted dropout
passes :math:`y = m x / q` in training (:math:`m \sim \mathrm{Bernoulli}(q)`, independent of
:math:`x`) and :math:`y = x` in evaluation, so

.. math::

    \mathrm E[y] = \mu \text{ in both modes}, \qquad
    \mathrm{Var}_\text{train}(y) = \frac{\sigma^2 + \mu^2}{q} - \mu^2, \qquad
    \mathrm{Var}_\text{eval}(y) = \sigma^2,

and the ratio is :math:`(1 + p\,\mu^2/\sigma^2)/q \ge 1/q` (:func:`train_mode_variance`,
:func:`variance_shift_ratio`).

The pieces:

- :func:`batchnorm_mlp` builds MLPs with the block orders the chapter compares (:data:`ORDERS`).
- :func:`measure_variance_shift` reads, with forward hooks, the per-feature variance of every BN
  layer's input in training and in evaluation mode, next to the BN's running variance.
- :func:`recalibrate_batchnorm` re-estimates the running statistics with dropout switched off.
- :func:`batchnorm_experiment` trains one network on the digits and measures all of the above.
- The ``*_claims`` functions (:func:`feature_claims`, :func:`shallow_shift_claims`, ...) turn what the
  chapter measured into the claims its prose makes, each with its threshold; the chapter's check cells
  and ``tests/chapters/test_batchnorm_claims.py`` call the same functions.

Notation: ``p`` is the probability of dropping a unit, ``q = 1 - p`` the probability of keeping it.
(Li et al. write :math:`p` for the keep probability.)
"""

from __future__ import annotations

import copy
import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.modules.batchnorm import _BatchNorm

from dropoutlib._modes import restored_modes
from dropoutlib._validation import (
    check_choice,
    check_floating,
    check_positive_int,
    check_probability,
    check_widths,
)
from dropoutlib.course.claims import Claim, above, below
from dropoutlib.course.data import Split, check_split, load_digits
from dropoutlib.course.seeding import check_seed, seed_everything
from dropoutlib.course.stats import binomial_standard_error, paired_gain
from dropoutlib.course.train import History, evaluate, fit

__all__ = [
    "BATCH_SIZE",
    "EPOCHS",
    "HIDDEN",
    "LR",
    "ORDERS",
    "ORDER_LABELS",
    "P",
    "SHALLOW",
    "STACK_004_HIDDEN",
    "STACK_004_P",
    "BETA",
    "GRID_SEEDS",
    "KINDS",
    "P_TRAINS",
    "BatchNormRun",
    "BatchedBNMLP",
    "DeepComparison",
    "Uout",
    "VarianceShift",
    "batchnorm_experiment",
    "batchnorm_layers",
    "batchnorm_mlp",
    "comparison_summary",
    "deep_comparison",
    "fit_bn_members",
    "learning_shift_claims",
    "one_accuracy_se",
    "shift_cost_claims",
    "uout_claims",
    "uout_shift_ratio",
    "uout_train_variance",
    "deep_cost_claims",
    "feature_claims",
    "measure_variance_shift",
    "median_relative_error",
    "mixed_train_variance",
    "recalibrate_batchnorm",
    "recalibration_claims",
    "shallow_cost_claims",
    "shallow_shift_claims",
    "shift_versus_p",
    "stack_claims",
    "sweep_claims",
    "train_mode_variance",
    "uncorrelated_ratio",
    "variance_shift_ratio",
]

#: The block orders :func:`batchnorm_mlp` builds.
ORDERS: tuple[str, ...] = ("dropout-bn", "bn-dropout", "last")

#: What each order puts in a hidden block, for tables and legends.
ORDER_LABELS: dict[str, str] = {
    "dropout-bn": "Linear-Dropout-BN-ReLU",
    "bn-dropout": "Linear-BN-ReLU-Dropout",
    "last": "Linear-BN-ReLU, dropout after the last block",
}

#: The chapter's deep network (eight blocks) and its shallow twin (three blocks of the same width).
HIDDEN: tuple[int, ...] = (64,) * 8
SHALLOW: tuple[int, ...] = (64,) * 3
#: Drop probability, epochs, minibatch size and Adam's learning rate of the chapter's runs.
P = 0.4
EPOCHS = 30
BATCH_SIZE = 64
LR = 1e-3
#: The 004 notebook's hidden widths and drop probabilities (Dense-BatchNorm-ReLU-Dropout blocks).
STACK_004_HIDDEN: tuple[int, ...] = (256, 128, 64, 32)
STACK_004_P: tuple[float, ...] = (0.4, 0.3, 0.2, 0.2)


# --- the formula --------------------------------------------------------------------------------------


def _as_array(value: Any, name: str) -> Any:
    """Numbers stay numbers; tensors and arrays are returned as they are; anything else is refused."""
    if isinstance(value, torch.Tensor | np.ndarray):
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, a tensor or an array, got {name}={value!r}")
    return float(value)


def _check_variance(var: Any) -> Any:
    var = _as_array(var, "var")
    negative = (var < 0).any() if isinstance(var, torch.Tensor | np.ndarray) else var < 0
    if negative:
        raise ValueError(f"var must be non-negative, got var={var!r}")
    return var


def _check_keep(p: Any) -> float:
    p = check_probability(p)
    if p == 1:
        raise ValueError("p must be below 1: with p=1 every unit is dropped and nothing is scaled")
    return p


def train_mode_variance(mean: Any, var: Any, p: float) -> Any:
    r"""The variance of :math:`y = m x / q` when :math:`x` has mean ``mean`` and variance ``var``.

    With :math:`m \sim \mathrm{Bernoulli}(q)` independent of :math:`x`,
    :math:`\mathrm E[y^2] = \mathrm E[m]\,\mathrm E[x^2]/q^2 = (\sigma^2 + \mu^2)/q`, and
    :math:`\mathrm E[y] = \mu`, so

    .. math::

        \mathrm{Var}_\text{train}(y) = \frac{\sigma^2 + \mu^2}{q} - \mu^2
        = \frac{\sigma^2}{q} + \frac{p}{q}\,\mu^2 .

    In evaluation mode dropout passes :math:`x` unchanged, with variance :math:`\sigma^2`.

    Args:
        mean: :math:`\mu`, a number, tensor or array.
        var: :math:`\sigma^2 \ge 0`, broadcastable with ``mean``.
        p: drop probability in ``[0, 1)``.

    Example:
        >>> train_mode_variance(0.0, 1.0, 0.5)  # zero mean: the variance doubles at p = 0.5
        2.0
        >>> train_mode_variance(1.0, 1.0, 0.5)  # a mean adds (p/q) mu^2
        3.0
    """
    mean = _as_array(mean, "mean")
    var = _check_variance(var)
    q = 1.0 - _check_keep(p)
    return (var + mean * mean) / q - mean * mean


def variance_shift_ratio(mean: Any, var: Any, p: float) -> Any:
    r"""Training-mode over evaluation-mode variance after dropout: :math:`(1 + p\,\mu^2/\sigma^2)/q`.

    The ratio is at least :math:`1/q`, reached when the mean is zero, and grows with
    :math:`\mu^2/\sigma^2`: dropping a feature that is mostly a constant offset makes a lot of noise
    relative to its spread.

    Args:
        mean, var, p: as in :func:`train_mode_variance`; ``var`` must be positive.

    Example:
        >>> variance_shift_ratio(0.0, 4.0, 0.2)
        1.25
        >>> variance_shift_ratio(2.0, 1.0, 0.5)
        6.0
    """
    var = _check_variance(var)
    zero = (var == 0).any() if isinstance(var, torch.Tensor | np.ndarray) else var == 0
    if zero:
        raise ValueError("var must be positive: the ratio is undefined for a constant feature")
    return train_mode_variance(mean, var, p) / var


def median_relative_error(measured: torch.Tensor, predicted: torch.Tensor) -> float:
    r"""How far a measurement is from a formula: the median over features of :math:`|m_j / f_j - 1|`.

    Example:
        >>> median_relative_error(torch.tensor([1.0, 3.0, 5.0]), torch.tensor([1.0, 2.0, 4.0]))
        0.25
    """
    return float((measured / predicted - 1).abs().median())


# --- the networks --------------------------------------------------------------------------------------


def _check_block_probabilities(p: Any, n_blocks: int) -> list[float]:
    if isinstance(p, Sequence) and not isinstance(p, str | bytes):
        if len(p) != n_blocks:
            raise ValueError(f"p must hold one probability per hidden block ({n_blocks}), got p={p!r}")
        return [check_probability(value, f"p[{i}]") for i, value in enumerate(p)]
    return [check_probability(p)] * n_blocks


def batchnorm_mlp(
    in_features: int,
    hidden: Sequence[int],
    out_features: int,
    p: float | Sequence[float] = 0.0,
    order: str = "dropout-bn",
) -> nn.Sequential:
    r"""An MLP of blocks of ``Linear``, ``BatchNorm1d``, ReLU and dropout, in one of three orders.

    For hidden widths :math:`h_1, \dots, h_L`, each block is

    - ``"dropout-bn"``: Linear, Dropout, BN, ReLU. Dropout acts right before every BN: each BN sees the
      variance shift of :func:`train_mode_variance`.
    - ``"bn-dropout"``: Linear, BN, ReLU, Dropout: the stack of the 004 notebook (Dense, BatchNorm,
      ReLU, dropout). The first BN sees no dropout; every later one sees dropped units mixed by a
      ``Linear``.
    - ``"last"``: Linear, BN, ReLU, with a single Dropout after the last block, so that no BN comes
      after any dropout.

    and a final ``Linear`` gives the outputs. With ``p = 0`` no dropout layer is inserted and the
    three orders are the same network. Built right after the same seed, the three orders have the same
    initial weights (dropout has none, and the layers are created in the same order).

    Args:
        in_features, out_features: positive ints.
        hidden: the hidden widths, a non-empty sequence of positive ints.
        p: drop probability of every dropout layer, in ``[0, 1]``, or one per hidden block (the
            ``"last"`` order uses the last one).
        order: one of :data:`ORDERS`.

    Example:
        >>> [type(m).__name__ for m in batchnorm_mlp(4, [8], 3, p=0.5)]
        ['Linear', 'Dropout', 'BatchNorm1d', 'ReLU', 'Linear']
        >>> [type(m).__name__ for m in batchnorm_mlp(4, [8, 8], 3, p=0.5, order="last")][-3:]
        ['ReLU', 'Dropout', 'Linear']
    """
    in_features = check_positive_int(in_features, "in_features")
    out_features = check_positive_int(out_features, "out_features")
    widths = list(check_widths(hidden))
    probabilities = _check_block_probabilities(p, len(widths))
    order = check_choice(order, "order", ORDERS)

    def dropout(block: int) -> list[nn.Module]:
        return [nn.Dropout(probabilities[block])] if probabilities[block] > 0 else []

    layers: list[nn.Module] = []
    width_in = in_features
    for block, width in enumerate(widths):
        if order == "dropout-bn":
            layers += [nn.Linear(width_in, width), *dropout(block), nn.BatchNorm1d(width), nn.ReLU()]
        elif order == "bn-dropout":
            layers += [nn.Linear(width_in, width), nn.BatchNorm1d(width), nn.ReLU(), *dropout(block)]
        else:
            layers += [nn.Linear(width_in, width), nn.BatchNorm1d(width), nn.ReLU()]
        width_in = width
    if order == "last":
        layers += dropout(len(widths) - 1)
    layers.append(nn.Linear(width_in, out_features))
    return nn.Sequential(*layers)


def batchnorm_layers(model: nn.Module) -> list[_BatchNorm]:
    """The batch-normalization layers of ``model`` (``BatchNorm1d``, ``2d``, ``3d``), in forward order.

    Example:
        >>> len(batchnorm_layers(batchnorm_mlp(4, [8, 8], 3, p=0.5)))
        2
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got model={model!r} ({type(model).__name__})")
    return [module for module in model.modules() if isinstance(module, _BatchNorm)]


def _check_model_with_bn(model: Any) -> list[_BatchNorm]:
    layers = batchnorm_layers(model)
    if not layers:
        raise ValueError("model has no BatchNorm layer: there are no statistics to measure or re-estimate")
    for layer in layers:
        if not layer.track_running_stats:
            raise ValueError(
                f"{layer} does not track running statistics (track_running_stats=False): it always "
                "normalizes with the statistics of its batch"
            )
    return layers


# --- measuring the shift --------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class VarianceShift:
    r"""Per-feature statistics of every BN layer's input, in both modes, and the BN's running statistics.

    One entry per BN layer (forward order), each a float64 tensor with one value per feature.

    Attributes:
        train_mean, train_var: mean and variance (over the examples) of the BN's input in training mode
            (dropout on, one draw of the masks; BN layers normalizing with the batch's statistics).
        eval_mean, eval_var: the same in evaluation mode (dropout off, BN using running statistics).
        running_mean, running_var: the BN's stored statistics, which evaluation mode normalizes with.

    Example:
        >>> one = [torch.tensor([2.0, 4.0])]
        >>> shift = VarianceShift(one, [torch.tensor([4.0, 8.0])], one, [torch.tensor([2.0, 2.0])],
        ...                       one, [torch.tensor([4.0, 6.0])])
        >>> shift.ratio().tolist(), shift.ratio("running").tolist()
        ([3.0], [2.5])
    """

    train_mean: list[torch.Tensor]
    train_var: list[torch.Tensor]
    eval_mean: list[torch.Tensor]
    eval_var: list[torch.Tensor]
    running_mean: list[torch.Tensor]
    running_var: list[torch.Tensor]

    @property
    def n_layers(self) -> int:
        """The number of BN layers measured."""
        return len(self.eval_var)

    def ratio(self, of: str = "train", *, reduce: str = "median") -> np.ndarray:
        r"""Per layer, the median (or mean) over features of ``train_var`` (or ``running_var``) / ``eval_var``

        A ratio of 1 means that the BN's input varies as much at test time as BN expects; above 1, the
        test-time input varies less, and BN scales it down by the square root of the ratio more than it
        did in training. Features whose evaluation-mode variance is zero are left out.

        Args:
            of: ``"train"`` (training-mode variance) or ``"running"`` (the stored running variance).
            reduce: ``"median"`` or ``"mean"`` over the features.

        Returns:
            An array of shape ``(n_layers,)``.
        """
        if of not in ("train", "running"):
            raise ValueError(f"of must be 'train' or 'running', got of={of!r}")
        if reduce not in ("median", "mean"):
            raise ValueError(f"reduce must be 'median' or 'mean', got reduce={reduce!r}")
        top = self.train_var if of == "train" else self.running_var
        out = []
        for numerator, denominator in zip(top, self.eval_var, strict=True):
            keep = denominator > 0
            values = numerator[keep] / denominator[keep]
            array = values.numpy()
            out.append(float(np.median(array) if reduce == "median" else array.mean()))
        return np.array(out)

    def per_feature(self, layer: int, of: str = "train") -> torch.Tensor:
        """One layer's (0-based) per-feature ratio, ``train_var / eval_var`` or ``running_var / eval_var``."""
        if not isinstance(layer, int) or not -self.n_layers <= layer < self.n_layers:
            raise ValueError(f"layer must be an index below {self.n_layers}, got layer={layer!r}")
        if of not in ("train", "running"):
            raise ValueError(f"of must be 'train' or 'running', got of={of!r}")
        top = self.train_var if of == "train" else self.running_var
        return top[layer] / self.eval_var[layer]

    def mean_shift(self, *, reduce: str = "median") -> np.ndarray:
        r"""Per layer, how far the evaluation-mode mean is from the running mean, in running std units.

        The median (or mean) over features of
        :math:`|ar x_	ext{eval} - \mu_	ext{running}| / \sqrt{\sigma^2_	ext{running}}`. Inverted dropout
        keeps a unit's mean, so right after a dropout layer this is close to 0; behind a nonlinearity
        (a ReLU between two dropout-BN pairs) the two modes' means part ways as well.

        Example:
            >>> one = [torch.tensor([1.0])]
            >>> shift = VarianceShift(one, one, [torch.tensor([1.5])], one, one, [torch.tensor([4.0])])
            >>> shift.mean_shift().tolist()
            [0.25]
        """
        if reduce not in ("median", "mean"):
            raise ValueError(f"reduce must be 'median' or 'mean', got reduce={reduce!r}")
        out = []
        for mean, running_mean, running_var in zip(
            self.eval_mean, self.running_mean, self.running_var, strict=True
        ):
            values = ((mean - running_mean).abs() / running_var.clamp_min(1e-12).sqrt()).numpy()
            out.append(float(np.median(values) if reduce == "median" else values.mean()))
        return np.array(out)


def _bn_inputs(model: nn.Module, layers: list[_BatchNorm], x: torch.Tensor) -> list[torch.Tensor]:
    captured: list[torch.Tensor] = []
    handles = [
        layer.register_forward_hook(lambda _m, inputs, _o: captured.append(inputs[0].detach().double()))
        for layer in layers
    ]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    return captured


def _features_last(values: torch.Tensor) -> torch.Tensor:
    """``(n, C)`` or ``(n, C, ...)`` as ``(examples, C)``: BN's statistics are per channel."""
    if values.ndim == 2:
        return values
    return values.transpose(0, 1).reshape(values.shape[1], -1).T


def measure_variance_shift(model: nn.Module, x: torch.Tensor, *, seed: int = 0) -> VarianceShift:
    r"""Read every BN layer's input on ``x`` in training and in evaluation mode, with forward hooks.

    For each BN layer and each feature :math:`j` it records the mean and the variance (over the
    examples of ``x``, divided by :math:`n`) of the layer's input, once with the network in training
    mode and once in evaluation mode, and the layer's ``running_mean`` and ``running_var``.

    The training-mode pass runs on a copy of the model, so that the running statistics of ``model``
    are not updated; its dropout masks are drawn from torch's global generator seeded with ``seed``
    inside :func:`torch.random.fork_rng` (the global stream is left as it was). In that pass each BN
    normalizes with the statistics of ``x`` as one batch. Every module's mode is restored.

    Example:
        >>> _ = torch.manual_seed(0)
        >>> model = nn.Sequential(nn.Dropout(0.5), nn.BatchNorm1d(3))
        >>> shift = measure_variance_shift(model, torch.randn(20000, 3))
        >>> [round(r, 1) for r in shift.per_feature(0).tolist()]  # zero mean: 1/q = 2
        [2.0, 2.0, 2.0]
    """
    layers = _check_model_with_bn(model)
    check_floating(x, "x")
    seed = check_seed(seed)
    if x.shape[0] < 2:
        raise ValueError(f"x must hold at least two examples to have a variance, got shape {tuple(x.shape)}")

    with restored_modes(model):
        model.eval()
        eval_inputs = _bn_inputs(model, layers, x)
    twin = copy.deepcopy(model).train()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        train_inputs = _bn_inputs(twin, batchnorm_layers(twin), x)

    def stats(inputs: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        flat = [_features_last(values) for values in inputs]
        return [f.mean(dim=0) for f in flat], [f.var(dim=0, correction=0) for f in flat]

    train_mean, train_var = stats(train_inputs)
    eval_mean, eval_var = stats(eval_inputs)
    running_mean = [layer.running_mean.detach().double().clone() for layer in layers]  # type: ignore[union-attr]
    running_var = [layer.running_var.detach().double().clone() for layer in layers]  # type: ignore[union-attr]
    return VarianceShift(train_mean, train_var, eval_mean, eval_var, running_mean, running_var)


def shift_versus_p(model: nn.Module, x: torch.Tensor, ps: Sequence[float], *, seed: int = 0) -> np.ndarray:
    """The median variance ratio of every BN layer (:meth:`VarianceShift.ratio`) for each ``p`` in ``ps``.

    The weights stay as they are (on a copy of ``model``). For each ``p``, every ``nn.Dropout`` gets
    that ``p``, the BN layers' running statistics are re-estimated *in training mode*, dropout on, on
    ``x`` as one batch (the statistics training at that ``p`` would have stored for these weights;
    masks seeded by ``seed``), and :func:`measure_variance_shift` compares the two modes.

    Returns:
        An array of shape ``(len(ps), n_bn_layers)``.

    Example:
        >>> model = nn.Sequential(nn.Dropout(0.5), nn.BatchNorm1d(2))
        >>> _ = torch.manual_seed(0)
        >>> shift_versus_p(model, torch.randn(20000, 2), [0.0, 0.75]).round(1).tolist()
        [[1.0], [4.0]]
    """
    _check_model_with_bn(model)
    check_floating(x, "x")
    seed = check_seed(seed)
    if isinstance(ps, str | bytes) or not isinstance(ps, Sequence) or not ps:
        raise TypeError(f"ps must be a non-empty sequence of probabilities, got ps={ps!r}")
    values = [_check_keep(value) for value in ps]
    twin = copy.deepcopy(model)
    dropouts = [module for module in twin.modules() if isinstance(module, nn.Dropout)]
    if not dropouts:
        raise ValueError("model has no nn.Dropout layer whose p could be changed")
    layers = batchnorm_layers(twin)
    rows = []
    for p in values:
        for dropout in dropouts:
            dropout.p = p
        twin.train()
        for layer in layers:
            layer.reset_running_stats()
            layer.momentum = None
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(seed)
            twin(x)
        rows.append(measure_variance_shift(twin, x, seed=seed).ratio())
    return np.array(rows)


def mixed_train_variance(activations: torch.Tensor, weight: torch.Tensor, p: float) -> torch.Tensor:
    r"""Training-mode variance of :math:`z = W (m \odot a) / q`, dropout acting on the units ``a``.

    For activations :math:`a` (one row per example) and a ``Linear`` layer's weight :math:`W` of shape
    ``(out, in)``, with independent masks :math:`m_i \sim \mathrm{Bernoulli}(q)`, output :math:`j` has

    .. math::

        \mathrm{Var}_\text{train}(z_j) = \mathrm{Var}\Big(\sum_i W_{ji} a_i\Big)
        + \frac{p}{q} \sum_i W_{ji}^2\, \overline{a_i^2},

    where :math:`\overline{a_i^2}` is the mean of :math:`a_i^2` over the examples and the variance
    is over the examples (divided by :math:`n`). The first term is the evaluation-mode variance: it
    keeps the covariances between units. The second is the masks' noise, which adds up unit by unit.

    Args:
        activations: shape ``(n, in)``, the units before dropout.
        weight: shape ``(out, in)``, or ``(in,)`` for a single output.
        p: drop probability in ``[0, 1)``.

    Returns:
        A float64 tensor of shape ``(out,)`` (or a 0-d tensor for a 1-D ``weight``).

    Example:
        >>> a = torch.tensor([[1.0, 0.0], [3.0, 2.0]])
        >>> mixed_train_variance(a, torch.tensor([1.0, 1.0]), 0.5).item()  # Var(a w) = 4, noise 5 + 2
        11.0
    """
    check_floating(activations, "activations")
    check_floating(weight, "weight")
    q = 1.0 - _check_keep(p)
    if activations.ndim != 2:
        raise ValueError(f"activations must have shape (n, in), got {tuple(activations.shape)}")
    if weight.ndim not in (1, 2) or weight.shape[-1] != activations.shape[1]:
        raise ValueError(
            f"weight must have shape (out, {activations.shape[1]}) or ({activations.shape[1]},), "
            f"got {tuple(weight.shape)}"
        )
    a, w = activations.detach().double(), weight.detach().double()
    signal = (a @ (w.T if w.ndim == 2 else w)).var(dim=0, correction=0)
    noise = (w**2) @ (a**2).mean(dim=0)
    return signal + (1.0 - q) / q * noise


def uncorrelated_ratio(activations: torch.Tensor, weight: torch.Tensor, p: float) -> float:
    r"""The median train/eval variance ratio after ``Linear(dropout(a))`` if the units were uncorrelated.

    If the units :math:`a_i` were uncorrelated, output :math:`j` of the dense layer would have the
    evaluation-mode variance :math:`\sum_i W_{ji}^2 \sigma_i^2` and, with dropout before it, the
    training-mode variance :math:`\sum_i W_{ji}^2 \big(\sigma_i^2/q + (p/q)\,\mu_i^2\big)`
    (:func:`train_mode_variance` unit by unit), with :math:`\mu_i, \sigma_i^2` the mean and the
    variance of :math:`a_i` over the examples. This returns the median over the outputs of the ratio
    of the two. Against the ratio of :func:`mixed_train_variance`, which keeps the units'
    covariances, it shows how much the correlations shrink the shift.

    Args:
        activations: shape ``(n, in)``, the units before dropout.
        weight: shape ``(out, in)``, the dense layer's weight.
        p: drop probability in ``[0, 1)``.

    Example:
        >>> a = torch.tensor([[1.0, 0.0], [3.0, 2.0]])  # variances 1 and 1, means 2 and 1
        >>> uncorrelated_ratio(a, torch.tensor([[1.0, 1.0]]), 0.5)  # (2 + 4 + 2 + 1) / 2
        4.5
    """
    check_floating(activations, "activations")
    check_floating(weight, "weight")
    p = _check_keep(p)
    a, w = activations.detach().double(), weight.detach().double()
    independent = (w**2) @ (a.var(dim=0, correction=0) / (1 - p) + p / (1 - p) * a.mean(dim=0) ** 2)
    return float((independent / ((w**2) @ a.var(dim=0, correction=0))).median())


# --- the fix --------------------------------------------------------------------------------------------


def recalibrate_batchnorm(model: nn.Module, x: torch.Tensor, *, batch_size: int | None = None) -> nn.Module:
    r"""Re-estimate every BN layer's running statistics on ``x`` with dropout switched off.

    The statistics a BN layer stores during training describe its input in training mode, dropout's
    noise included. This function replaces them by statistics of the input the layer will see at test
    time: every dropout layer (indeed every module) is put in evaluation mode, every BN layer in
    training mode with its running statistics reset and ``momentum=None``, and ``x`` is passed through
    the network without gradients. With ``momentum=None`` PyTorch keeps the cumulative average of the
    batches' statistics,

    .. math::

        \hat\mu = \frac1K \sum_{k=1}^K \bar x_k, \qquad
        \hat\sigma^2 = \frac1K \sum_{k=1}^K s_k^2 ,

    over the :math:`K` batches (:math:`s_k^2` the unbiased variance of batch :math:`k`). With
    ``batch_size=None`` ``x`` is one batch, and each BN layer stores exactly the mean and the
    (unbiased) variance of its evaluation-mode input over ``x``. (Downstream layers then see inputs
    normalized with the batch's biased variance, which differs from the stored one by the factor
    :math:`n/(n-1)`.) Nothing is random and no weight changes; the momenta and the modes of all
    modules are restored afterwards. Pass training data: the statistics are part of the model.

    Unlike ``torch.optim.swa_utils.update_bn``, which calls ``model.train()`` and so re-estimates
    the statistics *with* dropout's noise, this leaves dropout off.

    Args:
        model: a network with at least one BN layer that tracks running statistics.
        x: inputs, e.g. the training set.
        batch_size: pass ``x`` in batches of this size (positive int), or all at once (``None``).

    Returns:
        ``model``, re-estimated in place.

    Example:
        >>> bn = nn.BatchNorm1d(2)
        >>> x = torch.tensor([[1.0, 10.0], [3.0, 20.0], [5.0, 60.0]])
        >>> bn = recalibrate_batchnorm(nn.Sequential(nn.Dropout(0.5), bn), x)[1]
        >>> bn.running_mean.tolist(), bn.running_var.tolist(), bn.training, bn.momentum
        ([3.0, 30.0], [4.0, 700.0], True, 0.1)
    """
    layers = _check_model_with_bn(model)
    check_floating(x, "x")
    step = len(x) if batch_size is None else check_positive_int(batch_size, "batch_size")
    if len(x) < 2 or (len(x) % step == 1 and step < len(x)) or step < 2:
        raise ValueError(
            f"every batch needs at least two examples for BN to have a variance: got {len(x)} examples "
            f"in batches of batch_size={batch_size!r}"
        )
    momenta = [layer.momentum for layer in layers]
    with restored_modes(model):
        try:
            model.eval()
            for layer in layers:
                layer.reset_running_stats()
                layer.momentum = None
                layer.train()
            with torch.no_grad():
                for start in range(0, len(x), step):
                    model(x[start : start + step])
        finally:
            for layer, momentum in zip(layers, momenta, strict=True):
                layer.momentum = momentum
    return model


# --- the experiment -------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class BatchNormRun:
    """One network trained on the digits, and what :func:`batchnorm_experiment` measured in it.

    Attributes:
        order, p, seed: the block order, the drop probability, the seed.
        model: the trained network, with the running statistics it learned (evaluation mode).
        recalibrated: a copy of ``model`` whose BN statistics were re-estimated on the training set
            with dropout off (:func:`recalibrate_batchnorm`).
        history: :func:`~course.fit`'s record.
        test_acc: test accuracy of ``model`` in evaluation mode.
        recalibrated_acc: test accuracy of ``recalibrated``.
        test_loss, recalibrated_loss: the corresponding test cross-entropies.
        shift: :func:`measure_variance_shift` of ``model`` on the training set (the data its running
            statistics were estimated on).
    """

    order: str
    p: float | tuple[float, ...]
    seed: int
    model: nn.Module
    recalibrated: nn.Module
    history: History
    test_acc: float
    recalibrated_acc: float
    test_loss: float
    recalibrated_loss: float
    shift: VarianceShift

    @property
    def label(self) -> str:
        """The order's block, and ``p``."""
        p = self.p if isinstance(self.p, float) else ", ".join(f"{value:g}" for value in self.p)
        return f"{ORDER_LABELS[self.order]}, p = {p}"


def batchnorm_experiment(
    order: str,
    p: float | Sequence[float] = P,
    *,
    seed: int = 0,
    hidden: Sequence[int] = HIDDEN,
    epochs: int = EPOCHS,
    batch_size: int = BATCH_SIZE,
    lr: float = LR,
    data: Split | None = None,
    progress: bool = False,
) -> BatchNormRun:
    """Train ``batchnorm_mlp(64, hidden, 10, p, order)`` on the digits; measure the shift and the fix.

    The network is built right after ``seed_everything(seed)`` (so every order starts from the same
    weights) and trained by :func:`~course.fit` with Adam and minibatches of ``batch_size``; BN's
    running statistics use PyTorch's default momentum, 0.1. Then: the test accuracy and loss in
    evaluation mode; :func:`measure_variance_shift` on the training set (masks seeded by ``seed``); and
    the test accuracy and loss of a copy recalibrated on the training set (:func:`recalibrate_batchnorm`).

    Example:
        >>> run = batchnorm_experiment("dropout-bn", 0.5, hidden=(16, 16), epochs=2)
        >>> run.shift.n_layers, 0 <= run.recalibrated_acc <= 1, run.model.training
        (2, True, False)
    """
    order = check_choice(order, "order", ORDERS)
    widths = list(check_widths(hidden))
    probabilities = _check_block_probabilities(p, len(widths))
    p = probabilities[0] if isinstance(p, numbers.Real) else tuple(probabilities)
    seed = check_seed(seed)
    data = check_split(data, load_digits)
    seed_everything(seed)
    n_classes = int(torch.cat([data.y_train, data.y_test]).max().item()) + 1
    model = batchnorm_mlp(data.n_features, widths, n_classes, p=p, order=order)
    history = fit(
        model,
        data,
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        seed=seed,
        progress=progress,
        eval_every=epochs,
    )
    test_loss, test_acc = evaluate(model, data.x_test, data.y_test)
    shift = measure_variance_shift(model, data.x_train, seed=seed)
    recalibrated = recalibrate_batchnorm(copy.deepcopy(model), data.x_train)
    recalibrated_loss, recalibrated_acc = evaluate(recalibrated, data.x_test, data.y_test)
    return BatchNormRun(
        order,
        p,
        seed,
        model.eval(),
        recalibrated.eval(),
        history,
        float(test_acc or 0.0),
        float(recalibrated_acc or 0.0),
        test_loss,
        recalibrated_loss,
        shift,
    )


# --- the chapter's claims -------------------------------------------------------------------------------


def _first_p(run: BatchNormRun) -> float:
    """The drop probability of the run's first dropout layer."""
    return run.p if isinstance(run.p, float) else run.p[0]


def _within(statement: str, values: Any, target: Any, **tolerance: float) -> Claim:
    """The claim that ``np.allclose(values, target, **tolerance)``, with the largest deviation shown."""
    values = np.asarray(values, dtype=float)
    target = np.broadcast_to(np.asarray(target, dtype=float), values.shape)
    holds = bool(np.allclose(values, target, **tolerance))
    if "rtol" in tolerance:
        worst = float(np.max(np.abs(values - target) / np.abs(target)))
        return Claim(statement, holds, f"largest relative deviation {worst:.4g} <= {tolerance['rtol']:g}")
    worst = float(np.max(np.abs(values - target)))
    return Claim(statement, holds, f"largest deviation {worst:.4g} <= {tolerance['atol']:g}")


def feature_claims(
    mu: float, sigma2: float, p: float, y_train: torch.Tensor, running_var: float, out_eval: torch.Tensor
) -> list[Claim]:
    r"""One feature through dropout, then BN: the simulation agrees with the formula.

    ``y_train`` is the training-mode output of ``nn.Dropout(p)`` on a feature of mean ``mu`` and
    variance ``sigma2``; ``running_var`` the running variance a BN layer after it learned in training
    mode; ``out_eval`` that BN's evaluation-mode output. With :math:`v` =
    :func:`train_mode_variance` ``(mu, sigma2, p)``, the claims are: the variance of ``y_train`` is
    :math:`v` and its mean :math:`\mu`; the running variance is :math:`v`; and the evaluation-mode
    output's standard deviation is :math:`\sqrt{\sigma^2 / v}` instead of 1 (relative errors below 2%,
    5% and 5%, the mean within 0.01).

    Example:
        >>> y = torch.tensor([0.0, 2.0, 0.0, 2.0])  # mean 1, variance 4/3: sigma^2 = 1/6 at p = 0.5
        >>> [c.holds for c in feature_claims(1.0, 1 / 6, 0.5, y, 4 / 3, torch.tensor([0.0, 1.0]))]
        [True, True, True, False]
    """
    predicted = train_mode_variance(mu, sigma2, p)
    expected_std = (sigma2 / predicted) ** 0.5
    return [
        below(
            "the training-mode variance matches the formula (relative error)",
            abs(y_train.var().item() / predicted - 1),
            0.02,
        ),
        below("inverted dropout keeps the mean (|mean - mu|)", abs(y_train.mean().item() - mu), 0.01),
        below(
            "BN stores the training-mode variance (relative error)", abs(running_var / predicted - 1), 0.05
        ),
        below(
            "BN's test-time output shrinks to std sqrt(sigma^2 / v) (relative error)",
            abs(out_eval.std().item() / expected_std - 1),
            0.05,
        ),
    ]


def shallow_shift_claims(shallow: BatchNormRun) -> list[Claim]:
    r"""The shift in the three-block network: the formula predicts BN 1, and every BN layer is shifted.

    BN layer 1's per-feature ratios follow :func:`variance_shift_ratio` with each feature's own mean
    and variance (median relative error below 5%); every layer's median ratio exceeds 1.2; and the
    running variance is the training-mode variance (within 10%).
    """
    shift = shallow.shift
    predicted = variance_shift_ratio(shift.eval_mean[0], shift.eval_var[0], _first_p(shallow))
    return [
        below(
            "BN 1's ratios follow the formula (median relative error)",
            median_relative_error(shift.per_feature(0), predicted),
            0.05,
        ),
        above(
            "every BN layer sees a larger variance in training mode (smallest ratio)",
            shift.ratio().min(),
            1.2,
        ),
        _within(
            "the running variance is the training-mode variance, within 10%",
            shift.ratio("running"),
            shift.ratio(),
            rtol=0.1,
        ),
    ]


def sweep_claims(
    shallow: BatchNormRun, ps: Sequence[float], sweep: np.ndarray, many: VarianceShift
) -> list[Claim]:
    r"""The shift against ``p`` (:func:`shift_versus_p`), and the measurement with more masks.

    ``sweep`` is :func:`shift_versus_p` of ``shallow.model`` for the drop probabilities ``ps``;
    ``many`` is :func:`measure_variance_shift` on the training set repeated (several masks per
    example). BN layer 1's median ratio follows the median of the formula at every ``p`` (worst
    relative error below 5%) and grows with ``p``; and with more masks per example the measured
    ratios come closer to the formula than with one.
    """
    shift = shallow.shift
    mean, var = shift.eval_mean[0], shift.eval_var[0]
    formula = [float(variance_shift_ratio(mean, var, p).median()) for p in ps]
    worst = max(abs(sweep[i, 0] / formula[i] - 1) for i in range(len(ps)))
    predicted = variance_shift_ratio(mean, var, _first_p(shallow))
    first = sweep[:, 0]
    return [
        below("BN 1's shift follows the formula at every p (worst relative error)", worst, 0.05),
        Claim(
            "BN 1's shift grows with p",
            bool((np.diff(first) > 0).all()),
            "ratios " + ", ".join(f"{value:.3f}" for value in first),
        ),
        below(
            "more masks per example bring the measurement closer to the formula (median error)",
            median_relative_error(many.per_feature(0), predicted),
            median_relative_error(shift.per_feature(0), predicted),
        ),
    ]


def shallow_cost_claims(shallow: BatchNormRun) -> list[Claim]:
    """In the three-block network the shift costs at most one point of test accuracy."""
    gap = abs(shallow.recalibrated_acc - shallow.test_acc)
    return [
        Claim(
            "3 blocks: re-estimating the statistics changes the accuracy by at most one point",
            gap <= 0.01,
            f"|{shallow.recalibrated_acc:.4f} - {shallow.test_acc:.4f}| = {gap:.4f} <= 0.01",
        )
    ]


def deep_cost_claims(deep: BatchNormRun, last: BatchNormRun) -> list[Claim]:
    """The eight-block network: the shift compounds and costs accuracy; dropout after the last BN fixes both.

    ``deep`` has dropout before every BN (``"dropout-bn"``), ``last`` one dropout after the last BN
    (``"last"``), both with :data:`HIDDEN`. The shift grows with depth (the last four layers' ratios all
    above the first's, the largest above 2.5); the deep network fits its training set poorly (final
    objective above 1); re-estimating its statistics recovers at least 2.5 points; ``last`` classifies
    more than 94% of the test digits, has no shift (every ratio within 0.1 of 1), beats the re-estimated
    deep network by more than 20 points, and its means drift less than half as much as the deep one's
    last layer.
    """
    ratios, drift = deep.shift.ratio(), deep.shift.mean_shift()
    gain = deep.recalibrated_acc - deep.test_acc
    return [
        above("the shift grows with depth (last four layers vs the first)", ratios[-4:].min(), ratios[0]),
        above("the shift grows with depth (largest ratio)", ratios.max(), 2.5),
        above("the deep network fits the training set poorly (objective)", deep.history.objective[-1], 1.0),
        Claim(
            "re-estimated statistics recover at least 2.5 points",
            gain >= 0.025,
            f"{deep.test_acc:.4f} -> {deep.recalibrated_acc:.4f}, {gain:.4f} >= 0.025",
        ),
        above("dropout after the last BN classifies more than 94% correctly", last.test_acc, 0.94),
        _within("with no dropout before a BN, no shift", last.shift.ratio(), 1.0, atol=0.1),
        above(
            "the last order is far better than the re-estimated deep network (gap)",
            last.test_acc - deep.recalibrated_acc,
            0.2,
        ),
        above(
            "the deep drift exceeds twice the lag of the last order's",
            drift[-1],
            2 * last.shift.mean_shift().max(),
        ),
    ]


def recalibration_claims(
    before_test: VarianceShift, fixed_test: VarianceShift, updated: VarianceShift
) -> list[Claim]:
    """After :func:`recalibrate_batchnorm` the statistics fit the test-time input; after ``update_bn`` not.

    ``before_test`` and ``fixed_test`` are :func:`measure_variance_shift` of the deep network and of
    its re-estimated copy on the *test* inputs, which the re-estimation never saw; ``updated`` the
    measurement (on the training inputs) of a copy re-estimated by
    ``torch.optim.swa_utils.update_bn``, which leaves dropout on. On the test inputs, before
    re-estimation every BN's running variance is more than 1.3 times the variance it receives; after,
    within 25% of it (what is left is the difference between the training and the test digits), and
    every running mean within 0.1 running standard deviations of the mean the layer receives (median
    over features). After ``update_bn`` every BN's running variance is still more than 1.3 times the
    variance it receives at test time.
    """
    return [
        above(
            "on the test digits, training's statistics are shifted (smallest running/eval ratio)",
            before_test.ratio("running").min(),
            1.3,
        ),
        _within(
            "on the test digits, re-estimated variances match the test-time input within 25%",
            fixed_test.ratio("running"),
            1.0,
            atol=0.25,
        ),
        below(
            "on the test digits, the re-estimated means match too (largest drift, running std)",
            fixed_test.mean_shift().max(),
            0.1,
        ),
        above(
            "update_bn, dropout on, stores shifted statistics again (smallest running/eval ratio)",
            updated.ratio("running").min(),
            1.3,
        ),
    ]


def stack_claims(stack: BatchNormRun, x_train: torch.Tensor) -> list[Claim]:
    r"""The 004 notebook's Dense-BN-ReLU-Dropout stack: a small shift, predicted by the mixing formula.

    ``stack`` is the ``"bn-dropout"`` run with :data:`STACK_004_HIDDEN` and :data:`STACK_004_P`, and
    ``x_train`` its training inputs. The first BN's running variance fits its test-time input (within 5%,
    the lag of the moving average: no shift); the later ones see a small shift (every ratio between
    1.02 and 1.5); :func:`mixed_train_variance` on the first
    block's ReLU outputs predicts BN 2's training-mode variance (median relative error below 5%); units
    treated as uncorrelated (:func:`uncorrelated_ratio`) would give a ratio more than 0.3 larger; and
    re-estimating the statistics changes the test accuracy by at most one point.
    """
    model, p = stack.model, _first_p(stack)
    with torch.no_grad():
        activations = model[:3](x_train)  # the first block's ReLU outputs, evaluation mode
    predicted = mixed_train_variance(activations, model[4].weight, p)
    ratios = stack.shift.ratio()
    later = ratios[1:]
    gap = abs(stack.recalibrated_acc - stack.test_acc)
    return [
        below(
            "the first BN sees no dropout: its running variance fits (|running/eval - 1|)",
            abs(stack.shift.ratio("running")[0] - 1),
            0.05,
        ),
        Claim(
            "the later BN layers see a small shift (ratios between 1.02 and 1.5)",
            bool((later > 1.02).all() and (later < 1.5).all()),
            "ratios " + ", ".join(f"{value:.3f}" for value in later),
        ),
        below(
            "the formula predicts BN 2's variance (median relative error)",
            median_relative_error(stack.shift.train_var[1], predicted),
            0.05,
        ),
        above(
            "correlated units shrink the shift a lot (uncorrelated ratio vs BN 2's + 0.3)",
            uncorrelated_ratio(activations, model[4].weight, p),
            ratios[1] + 0.3,
        ),
        Claim(
            "re-estimating the statistics changes the accuracy by at most one point",
            gap <= 0.01,
            f"|{stack.recalibrated_acc:.4f} - {stack.test_acc:.4f}| = {gap:.4f} <= 0.01",
        ),
    ]


# --- Li et al.'s variance-stable dropout ------------------------------------------------------------------


def uout_train_variance(mean: Any, var: Any, beta: float) -> Any:
    r"""The variance of :math:`y = (1 + r)\,x` for :math:`r \sim \mathrm{Uniform}(-\beta, \beta)`.

    :math:`r` is independent of :math:`x`, which has mean ``mean`` and variance ``var``.

    :math:`\mathrm E[1 + r] = 1` keeps the mean, and :math:`\mathrm E[(1 + r)^2] = 1 + \beta^2/3`, so

    .. math::

        \mathrm{Var}_\text{train}(y) = \Big(1 + \frac{\beta^2}{3}\Big)(\sigma^2 + \mu^2) - \mu^2
        = \sigma^2 + \frac{\beta^2}{3}(\sigma^2 + \mu^2),

    the counterpart of :func:`train_mode_variance` with :math:`\beta^2/3` in place of
    :math:`\operatorname{Var}(m/q) = p/q`. In evaluation mode :class:`Uout` passes :math:`x` unchanged.

    Example:
        >>> round(uout_train_variance(0.0, 1.0, 0.3), 6)  # 1 + 0.09 / 3
        1.03
    """
    mean = _as_array(mean, "mean")
    var = _check_variance(var)
    beta = _check_beta(beta)
    return var + beta * beta / 3.0 * (var + mean * mean)


def uout_shift_ratio(mean: Any, var: Any, beta: float) -> Any:
    r"""Training-mode over evaluation-mode variance after :class:`Uout`.

    It is :math:`1 + (\beta^2/3)(1 + \mu^2/\sigma^2)`.

    Against dropout's :math:`(1 + p\,\mu^2/\sigma^2)/q = 1 + (p/q)(1 + \mu^2/\sigma^2)`: the same
    form with the noise's variance :math:`\beta^2/3` for :math:`p/q`; at :math:`\beta = 0.1` it is
    0.0033, against 0.67 for dropout at :math:`p = 0.4`.

    Example:
        >>> round(uout_shift_ratio(1.0, 1.0, 0.3), 6)
        1.06
    """
    var = _check_variance(var)
    zero = (var == 0).any() if isinstance(var, torch.Tensor | np.ndarray) else var == 0
    if zero:
        raise ValueError("var must be positive: the ratio is undefined for a constant feature")
    return uout_train_variance(mean, var, beta) / var


def _check_beta(beta: Any) -> float:
    if isinstance(beta, bool) or not isinstance(beta, numbers.Real) or not 0.0 <= float(beta) <= 1.0:
        raise ValueError(f"beta must be a real number in [0, 1], got beta={beta!r}")
    return float(beta)


class Uout(nn.Module):
    r"""Li et al.'s "Uout": every unit times :math:`1 + r`, :math:`r \sim \mathrm{Uniform}(-\beta, \beta)`.

    In training mode :math:`y = (1 + r)\,x` with an independent :math:`r` per element (drawn from
    torch's global generator); in evaluation mode :math:`y = x`. The mean is kept, and the variance
    grows only by :math:`\beta^2/3` of the second moment (:func:`uout_train_variance`), so a BN
    layer after it sees nearly the same variance in both modes. A course helper for chapter 9, not
    part of the library.

    Example:
        >>> layer = Uout(0.1).eval()
        >>> layer(torch.ones(3)).tolist()
        [1.0, 1.0, 1.0]
        >>> Uout(0.1)
        Uout(beta=0.1)
    """

    def __init__(self, beta: float = 0.1) -> None:
        super().__init__()
        self.beta = _check_beta(beta)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.beta == 0:
            return x
        return x * (1.0 + self.beta * (2.0 * torch.rand_like(x) - 1.0))

    def extra_repr(self) -> str:
        return f"beta={self.beta:g}"


# --- many deep networks at once -------------------------------------------------------------------------

#: What a member of :class:`BatchedBNMLP` puts where: dropout before every BN (``"dropout-bn"``), one
#: dropout after the last block (``"last"``), :class:`Uout` before every BN (``"uout-bn"``), or no
#: noise at all (``"plain"``).
KINDS: tuple[str, ...] = ("dropout-bn", "last", "uout-bn", "plain")
#: The drop probability at which the eight-block ``"dropout-bn"`` network trains, and Uout's
#: :math:`\beta` (the value Li et al. use).
P_TRAINS = 0.2
BETA = 0.1
#: The seeds of the chapter's multi-seed comparison.
GRID_SEEDS: tuple[int, ...] = (0, 1, 2, 3, 4)
_ORDER_STREAM, _NOISE_STREAM = 2**32, 2**33  # a member's minibatch order and noise: own generator streams


class BatchedBNMLP(nn.Module):
    r"""``len(seeds)`` MLPs of Linear-BN-ReLU blocks, each with its own noise, computed together.

    Member :math:`m` is the network that :func:`batchnorm_mlp` builds for ``kinds[m]`` (see
    :data:`KINDS`; ``"uout-bn"`` is ``"dropout-bn"`` with :class:`Uout` in place of dropout, and
    ``"plain"`` has no noise), with weights of shape ``(M, in, out)`` and per-member BN parameters
    and running statistics (shape ``(M, width)``). Its ``Linear`` layers are initialized like
    PyTorch's (uniform on :math:`\pm 1/\sqrt{\text{fan-in}}`) from a generator seeded with
    ``seeds[m]``, so that members with one seed start from the same weights whatever their kind.
    BN works as ``nn.BatchNorm1d`` does: in training mode each member normalizes with its batch's
    mean and biased variance and moves its running mean and unbiased variance by ``momentum``; in
    evaluation mode it uses the running statistics. Every member's noise is drawn from its own
    generator, so that a member's result does not depend on the others (the tests check this
    against a separately trained ``nn.Sequential``).

    ``p`` is the drop probability of the dropout members, one value or one per member; ``beta``
    the :class:`Uout` members' :math:`\beta`.

    Shapes: input ``(M, n, in_features)`` or ``(n, in_features)``; output ``(M, n, out_features)``.

    Example:
        >>> model = BatchedBNMLP(64, [8, 8], 10, seeds=[0, 0], kinds=["dropout-bn", "uout-bn"])
        >>> model(torch.zeros(5, 64)).shape
        torch.Size([2, 5, 10])
        >>> [type(m).__name__ for m in model.member(1)]
        ['Linear', 'Uout', 'BatchNorm1d', 'ReLU', 'Linear', 'Uout', 'BatchNorm1d', 'ReLU', 'Linear']
    """

    def __init__(
        self,
        in_features: int,
        hidden: Sequence[int],
        out_features: int,
        *,
        seeds: Sequence[int],
        kinds: Sequence[str],
        p: float | Sequence[float] = P,
        beta: float = BETA,
        momentum: float = 0.1,
        eps: float = 1e-5,
    ) -> None:
        super().__init__()
        self.in_features = check_positive_int(in_features, "in_features")
        self.out_features = check_positive_int(out_features, "out_features")
        self.hidden = tuple(check_widths(hidden))
        if isinstance(seeds, str) or not isinstance(seeds, Sequence) or not seeds:
            raise TypeError(f"seeds must be a non-empty sequence of seeds, got seeds={seeds!r}")
        self.seeds = tuple(check_seed(s, f"seeds[{i}]") for i, s in enumerate(seeds))
        if isinstance(kinds, str) or not isinstance(kinds, Sequence) or len(kinds) != len(self.seeds):
            raise ValueError(f"kinds must hold one kind per seed ({len(self.seeds)}), got kinds={kinds!r}")
        self.kinds = tuple(check_choice(k, f"kinds[{i}]", KINDS) for i, k in enumerate(kinds))
        if isinstance(p, Sequence) and not isinstance(p, str):
            if len(p) != len(self.seeds):
                raise ValueError(f"p must be one value or one per member ({len(self.seeds)}), got p={p!r}")
            self.p = tuple(_check_keep(value) for value in p)
        else:
            self.p = (_check_keep(p),) * len(self.seeds)
        self.beta = _check_beta(beta)
        self.momentum, self.eps = float(momentum), float(eps)
        # who draws noise where ("bn": before every BN; "last": after the last block), and how
        self._noisy: dict[str, list[int]] = {}
        self._is_uout: dict[str, torch.Tensor] = {}
        self._drop_p: dict[str, torch.Tensor] = {}
        self._keep_q: dict[str, torch.Tensor] = {}
        for where, wanted in (("bn", ("dropout-bn", "uout-bn")), ("last", ("last",))):
            members = [m for m, kind in enumerate(self.kinds) if kind in wanted]
            self._noisy[where] = members
            self._is_uout[where] = torch.tensor([self.kinds[m] == "uout-bn" for m in members]).view(-1, 1, 1)
            p_members = [self.p[m] for m in members]
            self._drop_p[where] = torch.tensor(p_members, dtype=torch.float32).view(-1, 1, 1)
            self._keep_q[where] = torch.tensor([1.0 - v for v in p_members], dtype=torch.float32).view(
                -1, 1, 1
            )
        dims = [self.in_features, *self.hidden, self.out_features]
        weights: list[list[torch.Tensor]] = [[] for _ in dims[1:]]
        biases: list[list[torch.Tensor]] = [[] for _ in dims[1:]]
        for seed in self.seeds:
            generator = torch.Generator().manual_seed(seed)
            for layer, (fan_in, fan_out) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
                bound = 1.0 / math.sqrt(fan_in)
                weights[layer].append((torch.rand(fan_out, fan_in, generator=generator) * 2 - 1) * bound)
                biases[layer].append((torch.rand(fan_out, generator=generator) * 2 - 1) * bound)
        m = len(self.seeds)
        self.weights = nn.ParameterList(
            nn.Parameter(torch.stack(w).transpose(1, 2).contiguous()) for w in weights
        )
        self.biases = nn.ParameterList(nn.Parameter(torch.stack(b).unsqueeze(1)) for b in biases)
        self.gammas = nn.ParameterList(nn.Parameter(torch.ones(m, w)) for w in self.hidden)
        self.shifts = nn.ParameterList(nn.Parameter(torch.zeros(m, w)) for w in self.hidden)
        for k, width in enumerate(self.hidden):
            self.register_buffer(f"running_mean_{k}", torch.zeros(m, width))
            self.register_buffer(f"running_var_{k}", torch.ones(m, width))

    @property
    def n_members(self) -> int:
        """The number of networks ``M``."""
        return len(self.seeds)

    def _noise(
        self, shape: torch.Size, where: str, generators: Sequence[torch.Generator | None]
    ) -> torch.Tensor | None:
        """The factor each member's units are multiplied by at ``where`` ("bn" or "last"), or None.

        Every noisy member draws one uniform number per unit from its own generator, in member order;
        dropout keeps a unit where the number is at least :math:`p` (and scales it by :math:`1/q`),
        Uout multiplies it by :math:`1 + \beta(2u - 1)`.
        """
        members = self._noisy[where]
        if not self.training or not members:
            return None
        uniform = torch.stack([torch.rand(shape[1:], generator=generators[m]) for m in members])
        values = torch.where(
            self._is_uout[where],
            1.0 + self.beta * (2.0 * uniform - 1.0),
            (uniform >= self._drop_p[where]).float() / self._keep_q[where],
        )
        if len(members) == self.n_members:
            return values
        factor = torch.ones(shape)
        factor[members] = values
        return factor

    def forward(
        self, x: torch.Tensor, generators: Sequence[torch.Generator | None] | None = None
    ) -> torch.Tensor:
        """Outputs of every member; ``generators`` (one per member) draw the noise in training mode."""
        if x.ndim == 2:
            x = x.expand(self.n_members, *x.shape)
        generators = list(generators) if generators is not None else [None] * self.n_members
        h = x
        for k in range(len(self.hidden)):
            h = torch.baddbmm(self.biases[k], h, self.weights[k])
            noise = self._noise(h.shape, "bn", generators)
            if noise is not None:
                h = h * noise
            # every member's features side by side, (n, M * width): one fused batch_norm call, which
            # normalizes with the batch's biased variance and moves the running (unbiased) statistics
            members, n, width = h.shape
            flat = F.batch_norm(
                h.transpose(0, 1).reshape(n, members * width),
                getattr(self, f"running_mean_{k}").view(-1),
                getattr(self, f"running_var_{k}").view(-1),
                self.gammas[k].view(-1),
                self.shifts[k].view(-1),
                training=self.training,
                momentum=self.momentum,
                eps=self.eps,
            )
            h = torch.relu(flat.view(n, members, width).transpose(0, 1))
        noise = self._noise(h.shape, "last", generators)
        if noise is not None:
            h = h * noise
        return torch.baddbmm(self.biases[-1], h, self.weights[-1])

    def member(self, m: int) -> nn.Sequential:
        """Member ``m`` as an ordinary ``nn.Sequential`` (a copy, in evaluation mode)."""
        if not isinstance(m, int) or not 0 <= m < self.n_members:
            raise ValueError(f"m must be a member index below {self.n_members}, got m={m!r}")
        kind = self.kinds[m]
        order = "dropout-bn" if kind in ("uout-bn", "plain") else kind
        p = 0.0 if kind == "plain" else (0.5 if kind == "uout-bn" else self.p[m])
        model = batchnorm_mlp(self.in_features, self.hidden, self.out_features, p=p, order=order)
        if kind == "uout-bn":
            model = nn.Sequential(
                *(Uout(self.beta) if isinstance(layer, nn.Dropout) else layer for layer in model)
            )
        linears = [layer for layer in model if isinstance(layer, nn.Linear)]
        with torch.no_grad():
            for k, linear in enumerate(linears):
                linear.weight.copy_(self.weights[k][m].T)
                linear.bias.copy_(self.biases[k][m, 0])
            for k, bn in enumerate(batchnorm_layers(model)):
                bn.weight.copy_(self.gammas[k][m])
                bn.bias.copy_(self.shifts[k][m])
                bn.running_mean.copy_(getattr(self, f"running_mean_{k}")[m])
                bn.running_var.copy_(getattr(self, f"running_var_{k}")[m])
                bn.eps, bn.momentum = self.eps, self.momentum
        return model.eval()


def fit_bn_members(
    model: BatchedBNMLP,
    splits: Sequence[Split],
    *,
    epochs: int = EPOCHS,
    lr: float = LR,
    batch_size: int = BATCH_SIZE,
) -> np.ndarray:
    r"""Train every member of ``model`` on its own split with Adam; return each member's final objective.

    Each step minimizes the sum over members of each member's mean cross-entropy on its minibatch.
    Member :math:`m`'s parameters appear only in its own loss and Adam works element by element, so
    every member follows the trajectory it would follow alone (:func:`~course.fit` with the same
    recipe, up to the generators). Member :math:`m`'s minibatch order and noise come from generators
    seeded by ``seeds[m]``, reshuffled every epoch.

    Args:
        model: the :class:`BatchedBNMLP`.
        splits: one :class:`~dropoutlib.course.data.Split` per member, all of the same sizes.
        epochs, lr, batch_size: the recipe (the chapter's: :data:`EPOCHS`, :data:`LR`, :data:`BATCH_SIZE`).

    Returns:
        The size-weighted mean training objective of the last epoch, one per member; ``model`` is left
        in evaluation mode.
    """
    if not isinstance(model, BatchedBNMLP):
        raise TypeError(f"model must be a BatchedBNMLP, got {type(model).__name__}")
    if isinstance(splits, Split) or len(splits) != model.n_members:
        raise ValueError(f"splits must hold one Split per member ({model.n_members})")
    epochs = check_positive_int(epochs, "epochs")
    batch_size = check_positive_int(batch_size, "batch_size")
    x_train = torch.stack([split.x_train for split in splits])
    y_train = torch.stack([split.y_train for split in splits])
    n = x_train.shape[1]
    order_generators = [torch.Generator().manual_seed(s + _ORDER_STREAM) for s in model.seeds]
    noise_generators = [torch.Generator().manual_seed(s + _NOISE_STREAM) for s in model.seeds]
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, foreach=True)
    rows = torch.arange(model.n_members).unsqueeze(1)
    total = torch.zeros(model.n_members)
    for _ in range(epochs):
        model.train()
        order = torch.stack([torch.randperm(n, generator=g) for g in order_generators])
        x_shuffled, y_shuffled = x_train[rows, order], y_train[rows, order]
        total = torch.zeros(model.n_members)
        for start in range(0, n, batch_size):
            xb, yb = x_shuffled[:, start : start + batch_size], y_shuffled[:, start : start + batch_size]
            logits = model(xb, noise_generators)
            losses = (
                nn.functional.cross_entropy(
                    logits.reshape(-1, logits.shape[-1]), yb.reshape(-1), reduction="none"
                )
                .view(yb.shape)
                .mean(dim=1)
            )
            optimizer.zero_grad(set_to_none=True)
            losses.sum().backward()
            optimizer.step()
            total += losses.detach() * yb.shape[1]
    model.eval()
    return (total / n).double().numpy()


@dataclass(frozen=True, eq=False)
class DeepComparison:
    """The eight-block network in every kind of :data:`KINDS`, over several seeds, trained together.

    Arrays have one row per kind (in :data:`KINDS` order) and one column per seed; ``ratios`` has a
    third axis, the BN layers.

    Attributes:
        seeds, p, beta, hidden: the seeds, the drop probability, Uout's :math:`\\beta`, the widths.
        objective: each network's training objective in its last epoch (noise on).
        test_acc, test_loss: test accuracy and cross-entropy with the running statistics from training.
        recalibrated_acc, recalibrated_loss: the same after :func:`recalibrate_batchnorm` on the
            training set.
        ratios: :meth:`VarianceShift.ratio` of every BN layer on the training set (one draw of noise).
        first_measured: BN layer 1's median train/eval variance ratio, measured on the training set
            repeated ``repeats`` times (several draws of noise per example).
        first_formula: the median over BN 1's features of the formula's ratio
            (:func:`variance_shift_ratio` or :func:`uout_shift_ratio` with each feature's own mean and
            variance; 1 where no noise comes before BN 1).
        n_test: the number of test images (for a binomial standard error).
    """

    seeds: tuple[int, ...]
    p: float
    beta: float
    hidden: tuple[int, ...]
    objective: np.ndarray
    test_acc: np.ndarray
    test_loss: np.ndarray
    recalibrated_acc: np.ndarray
    recalibrated_loss: np.ndarray
    ratios: np.ndarray
    first_measured: np.ndarray
    first_formula: np.ndarray
    n_test: int

    def row(self, kind: str) -> int:
        """The row of ``kind`` in the arrays."""
        return KINDS.index(check_choice(kind, "kind", KINDS))


def deep_comparison(
    seeds: Sequence[int] = GRID_SEEDS,
    *,
    p: float = P_TRAINS,
    beta: float = BETA,
    hidden: Sequence[int] = HIDDEN,
    epochs: int = EPOCHS,
    lr: float = LR,
    batch_size: int = BATCH_SIZE,
    repeats: int = 10,
) -> DeepComparison:
    """Train the deep network in every kind of :data:`KINDS` for every seed, and measure each one.

    Seed ``s`` fixes the digits' split (``load_digits(seed=s)``), the initial weights (the same for
    every kind: the pairs are paired), the minibatch order and the noise. All ``len(KINDS) *
    len(seeds)`` networks are one :class:`BatchedBNMLP` trained by :func:`fit_bn_members` with the
    chapter's recipe. Each is then evaluated on its test set, re-estimated on its training set
    (:func:`recalibrate_batchnorm`) and evaluated again, and its shift is measured
    (:func:`measure_variance_shift`, with noise seeded by ``s``).
    """
    seeds = [check_seed(s, f"seeds[{i}]") for i, s in enumerate(seeds)]
    repeats = check_positive_int(repeats, "repeats")
    widths = tuple(check_widths(hidden))
    splits = {s: load_digits(seed=s) for s in seeds}
    kinds = [kind for kind in KINDS for _ in seeds]
    member_seeds = [s for _ in KINDS for s in seeds]
    first = splits[seeds[0]]
    n_classes = int(torch.cat([first.y_train, first.y_test]).max().item()) + 1
    model = BatchedBNMLP(first.n_features, widths, n_classes, seeds=member_seeds, kinds=kinds, p=p, beta=beta)
    objective = fit_bn_members(
        model, [splits[s] for s in member_seeds], epochs=epochs, lr=lr, batch_size=batch_size
    )
    rows: dict[str, list[Any]] = {
        k: [] for k in ("test_acc", "test_loss", "recal_acc", "recal_loss", "ratios", "measured", "formula")
    }
    for m, (kind, seed) in enumerate(zip(kinds, member_seeds, strict=True)):
        split, net = splits[seed], model.member(m)
        test_loss, test_acc = evaluate(net, split.x_test, split.y_test)
        recalibrated = recalibrate_batchnorm(copy.deepcopy(net), split.x_train)
        recal_loss, recal_acc = evaluate(recalibrated, split.x_test, split.y_test)
        rows["test_acc"].append(test_acc)
        rows["test_loss"].append(test_loss)
        rows["recal_acc"].append(recal_acc)
        rows["recal_loss"].append(recal_loss)
        rows["ratios"].append(measure_variance_shift(net, split.x_train, seed=seed).ratio())
        head = net[:3]  # the first Linear, the noise (if any) and BN 1
        shift = measure_variance_shift(head, split.x_train.repeat(repeats, 1), seed=seed)
        rows["measured"].append(shift.ratio()[0])
        mean, var = shift.eval_mean[0], shift.eval_var[0]
        if kind == "dropout-bn":
            formula = variance_shift_ratio(mean, var, model.p[m])
        elif kind == "uout-bn":
            formula = uout_shift_ratio(mean, var, beta)
        else:
            formula = torch.ones_like(var)
        rows["formula"].append(float(formula.median()))

    def grid(values: list[Any]) -> np.ndarray:
        array = np.array(values, dtype=float)
        return array.reshape(len(KINDS), len(seeds), *array.shape[1:])

    return DeepComparison(
        tuple(seeds),
        float(p),
        float(beta),
        widths,
        grid(list(objective)),
        grid(rows["test_acc"]),
        grid(rows["test_loss"]),
        grid(rows["recal_acc"]),
        grid(rows["recal_loss"]),
        grid(rows["ratios"]),
        grid(rows["measured"]),
        grid(rows["formula"]),
        first.n_test,
    )


# --- the deep network where it learns: claims -------------------------------------------------------------


def comparison_summary(comp: DeepComparison) -> dict[str, tuple[float, float]]:
    """The paired differences the chapter quotes, each as (mean, standard error) over the seeds.

    Keys: ``"cost"`` (re-estimated minus training statistics, ``"dropout-bn"``); ``"lag"`` (the same
    for ``"last"``, which has no shift: what re-estimating gains from the moving averages' lag alone);
    ``"cost - lag"``; and for each kind ``k`` the accuracy difference ``"k - plain"`` and
    ``"uout-bn - k"`` (``"uout-bn - recalibrated"`` against the re-estimated ``"dropout-bn"``
    networks), plus ``"objective uout-bn - plain"``, ``"objective dropout-bn - plain"`` and
    ``"loss uout-bn - plain"``. Accuracies are fractions.
    """

    def diff(base: np.ndarray, other: np.ndarray) -> tuple[float, float]:
        mean, _, se = paired_gain(list(base), list(other))
        return mean, se

    acc = {kind: comp.test_acc[comp.row(kind)] for kind in KINDS}
    recal = comp.recalibrated_acc[comp.row("dropout-bn")]
    gain = {kind: comp.recalibrated_acc[comp.row(kind)] - acc[kind] for kind in KINDS}
    objective = {kind: comp.objective[comp.row(kind)] for kind in KINDS}
    out = {
        "cost": diff(acc["dropout-bn"], recal),
        "lag": diff(acc["last"], comp.recalibrated_acc[comp.row("last")]),
        "cost - lag": diff(gain["last"], gain["dropout-bn"]),
        "uout-bn - recalibrated": diff(recal, acc["uout-bn"]),
        "objective uout-bn - plain": diff(objective["plain"], objective["uout-bn"]),
        "objective dropout-bn - plain": diff(objective["plain"], objective["dropout-bn"]),
        "loss uout-bn - plain": diff(comp.test_loss[comp.row("plain")], comp.test_loss[comp.row("uout-bn")]),
    }
    for kind in KINDS[:-1]:
        out[f"{kind} - plain"] = diff(acc["plain"], acc[kind])
    for kind in ("dropout-bn", "last"):
        out[f"uout-bn - {kind}"] = diff(acc[kind], acc["uout-bn"])
    return out


def one_accuracy_se(comp: DeepComparison) -> float:
    """The binomial standard error of one network's test accuracy, at the comparison's mean accuracy."""
    return binomial_standard_error(1.0 - float(comp.test_acc.mean()), comp.n_test)


def learning_shift_claims(comp: DeepComparison) -> list[Claim]:
    r"""The eight blocks at :data:`P_TRAINS` learn, the shift is there, and both formulas predict BN 1.

    On every seed: the ``"dropout-bn"`` networks' final training objective is below 0.5 and their test
    accuracy above 94%; their largest BN-layer ratio is above 1.3. Averaged over the seeds, BN 1's
    measured shift (ratio - 1) is within 10% of the formula's, for dropout
    (:func:`variance_shift_ratio`) and for Uout (:func:`uout_shift_ratio`); and on every seed Uout's
    shift is less than a twentieth of dropout's.
    """
    d, u = comp.row("dropout-bn"), comp.row("uout-bn")

    def formula_error(row: int) -> float:
        measured = comp.first_measured[row].mean() - 1
        predicted = comp.first_formula[row].mean() - 1
        return float(abs(measured / predicted - 1))

    fraction = (comp.first_measured[u] - 1) / (comp.first_measured[d] - 1)
    n = len(comp.seeds)
    return [
        below(
            f"at p = {comp.p:g} the deep network fits its training set (largest objective, {n} seeds)",
            comp.objective[d].max(),
            0.5,
        ),
        above(
            f"at p = {comp.p:g} the deep network learns (lowest test accuracy, {n} seeds)",
            comp.test_acc[d].min(),
            0.94,
        ),
        above(
            "the variance shift is still there (smallest over seeds of the largest BN ratio)",
            comp.ratios[d].max(axis=1).min(),
            1.3,
        ),
        below(
            "dropout: BN 1's measured shift follows the formula (relative error of ratio - 1)",
            formula_error(d),
            0.1,
        ),
        below(
            "Uout: BN 1's measured shift follows beta^2/3 (relative error of ratio - 1)",
            formula_error(u),
            0.1,
        ),
        below("Uout's shift is under a twentieth of dropout's (largest over seeds)", fraction.max(), 0.05),
    ]


def shift_cost_claims(comp: DeepComparison) -> list[Claim]:
    """Where the deep network learns, the shift costs less than the test set can resolve.

    Re-estimating the statistics of the ``"dropout-bn"`` networks gains, on average over the seeds,
    less than the binomial standard error of one accuracy; and no more than it gains for the
    ``"last"`` networks, which have no shift (the paired difference within two standard errors of 0).
    """
    summary = comparison_summary(comp)
    se_one = one_accuracy_se(comp)
    cost, _ = summary["cost"]
    excess, excess_se = summary["cost - lag"]
    return [
        below("re-estimating gains less than one accuracy's binomial SE (mean gain)", cost, se_one),
        below(
            "the gain is no larger than the lag alone gives ('last'): |difference| vs 2 SE",
            abs(excess),
            2 * excess_se,
        ),
    ]


def uout_claims(comp: DeepComparison) -> list[Claim]:
    """Uout is the weaker regularizer: inside the noise of no noise at all, behind dropout.

    Averaged over the seeds (paired differences): Uout raises the training objective above the plain
    network's by less than a quarter of what dropout at :data:`P_TRAINS` adds (in absolute value); its
    test accuracy and its test loss are within two standard errors of the plain network's; dropout
    before BN beats the plain network's accuracy by more than two standard errors; and Uout trails
    dropout before BN, with or without re-estimated statistics.
    """
    summary = comparison_summary(comp)
    uout_objective, _ = summary["objective uout-bn - plain"]
    dropout_objective, _ = summary["objective dropout-bn - plain"]
    accuracy, accuracy_se = summary["uout-bn - plain"]
    loss, loss_se = summary["loss uout-bn - plain"]
    dropout_gain, dropout_se = summary["dropout-bn - plain"]
    behind = max(summary["uout-bn - dropout-bn"][0], summary["uout-bn - recalibrated"][0])
    return [
        below(
            "Uout barely perturbs training: |objective gap to plain| / dropout's gap",
            abs(uout_objective) / dropout_objective,
            0.25,
        ),
        below(
            "Uout's test accuracy is inside the noise of plain's (|diff| vs 2 SE)",
            abs(accuracy),
            2 * accuracy_se,
        ),
        below("Uout's test loss is inside the noise of plain's (|diff| vs 2 SE)", abs(loss), 2 * loss_se),
        above(
            "dropout before BN beats no noise by more than 2 SE (accuracy gain)",
            dropout_gain,
            2 * dropout_se,
        ),
        below("Uout trails dropout, re-estimated or not (the larger of the two differences)", behind, 0.0),
    ]
