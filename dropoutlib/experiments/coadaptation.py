"""Lazy units and co-adaptation: the measurements behind chapter 5.

A discussion thread under a textbook's dropout section offers an intuition: if two of four hidden
units (A and B) start with weights near zero, a network without dropout lets the other two (C and D)
do the work and A and B stay "lazy"; dropout, which sometimes removes C and D, forces A and B to
learn. A reply objects that the gradient on a weight depends on its input, not on its value. This
module turns both into measurements.

Gradients (exact, float64):

- :func:`linear_unit_gradients`: for ``y = w . x`` and a squared error, autograd's ``dL/dw`` next
  to ``dL/dy * x``; two weights with equal inputs get equal gradients whatever their values.
- :func:`unit_gradient_norms`: in ``o = W2 relu(W1 x + b1) + b2``, the gradient reaching the weights
  into and out of one hidden unit when those weights are scaled by ``scale_in``/``scale_out``. The
  gradient into a unit is proportional to its *outgoing* weights; the gradient out of it to its
  activation, hence (ReLU being positively homogeneous) to its *incoming* weights.
- :func:`train_copies`: a linear unit reading four identical copies of one feature, trained by
  gradient descent with or without dropout on its inputs. Without dropout all four weights get the
  same gradient, so a weight that starts small stays behind for ever; with dropout they converge
  to one common value, ``t / (n + p/q)``.

The digits experiment (:func:`train_handicapped`): a 64-16-10 ReLU network in which the first
``n_handicapped`` hidden units start with their incoming weights (``"in"``), outgoing weights
(``"out"``) or both (``"both"``) multiplied by ``scale``, trained with plain SGD, with or without
dropout. Its measures:

- :func:`ablation_importance`: the loss increase when one hidden unit alone is zeroed;
- :func:`gini`, :func:`top_k_share`, :func:`effective_units`: how concentrated importance is;
- :func:`mean_abs_correlation`: the mean absolute correlation between hidden units' activations;
- :func:`unit_strength`: ``||W1[j]|| * ||W2[:, j]||``, the size of a unit's path through the net.

Notation: ``p`` is the probability of dropping a unit, ``q = 1 - p`` of keeping it.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from dropoutlib._modes import restored_modes
from dropoutlib._validation import check_positive_int, check_probability, check_real
from dropoutlib.course.claims import Claim, above, below
from dropoutlib.course.data import Split, check_split, load_digits
from dropoutlib.course.models import mlp
from dropoutlib.course.seeding import check_seed
from dropoutlib.course.train import History, fit
from dropoutlib.experiments.from_scratch import _activation, init_two_layer

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "BATCH_SIZE",
    "EPOCHS",
    "HANDICAPS",
    "HIDDEN",
    "LR",
    "N_HANDICAPPED",
    "ADAM_LR",
    "LR_CONTROL",
    "N_SE",
    "SCALE",
    "SEEDS",
    "SYNERGY_HANDICAPS",
    "TAIL",
    "HandicapRun",
    "ablation_importance",
    "adam_claims",
    "copies_claims",
    "copies_equilibrium",
    "correlation_claims",
    "correlation_sign_claims_over_seeds",
    "correlation_table",
    "dynamics_claims",
    "effective_units",
    "gini",
    "gradient_claims",
    "gradient_norm_claims",
    "handicap_claims",
    "handicap_runs",
    "handicap_units",
    "handicapped_mlp",
    "hidden_activations",
    "linear_unit_gradients",
    "lr_control_claims",
    "pairwise_synergy",
    "mean_abs_correlation",
    "runs_table",
    "seed_claims",
    "seed_differences",
    "spread_claims",
    "subadditive_fraction",
    "synergy_claims",
    "top_k_share",
    "train_copies",
    "train_handicapped",
    "unit_gradient_norms",
    "unit_strength",
]

#: Hidden units of the digits network (64 inputs, 10 classes).
HIDDEN = 16
#: How many hidden units (the first ones) start handicapped: "A and B" of the thread.
N_HANDICAPPED = 8
#: The factor their weights are multiplied by at initialization.
SCALE = 0.01
#: Where the handicap applies: nowhere, incoming weights (and bias), outgoing weights, or both.
HANDICAPS = ("none", "in", "out", "both")
#: Plain SGD (no momentum): the size of a gradient is the size of the step.
EPOCHS = 20
LR = 0.1
BATCH_SIZE = 64


# --- small checks --------------------------------------------------------------------------------


def _as_1d(values: Any, name: str) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    if not isinstance(values, np.ndarray | list | tuple):
        raise TypeError(f"{name} must be a 1-D tensor, array or list of numbers, got {type(values).__name__}")
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} must be finite, got {array.tolist()}")
    return array


def _nonnegative_weights(values: Any, name: str = "importance") -> np.ndarray:
    """Importances as non-negative weights summing to 1 (negative entries count as 0)."""
    array = np.clip(_as_1d(values, name), 0.0, None)
    total = array.sum()
    if total <= 0:
        raise ValueError(f"{name} must have a positive entry, got {np.asarray(values).tolist()}")
    return array / total


def _one_hidden_layer(model: Any) -> tuple[nn.Linear, nn.Linear]:
    """The first and last Linear of a one-hidden-layer :func:`~dropoutlib.course.models.mlp`."""
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"model must be an nn.Sequential from mlp(), got {type(model).__name__}")
    linears = [m for m in model if isinstance(m, nn.Linear)]
    if len(linears) != 2 or model[0] is not linears[0] or model[-1] is not linears[1]:
        raise ValueError(
            "model must have exactly one hidden layer, Linear first and Linear last, as "
            f"mlp(in, [hidden], out) builds; got {len(linears)} Linear layers"
        )
    return linears[0], linears[1]


# --- gradients -----------------------------------------------------------------------------------


def linear_unit_gradients(
    w: Sequence[float], x: Sequence[float], target: float
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Autograd's gradient of ``L = (w . x - t)^2`` with respect to ``w``, and ``dL/dy * x``.

    For a linear unit :math:`y = \sum_i w_i x_i` the chain rule gives
    :math:`\partial L/\partial w_i = (\partial L/\partial y)\, x_i = 2 (y - t)\, x_i`: the weight's
    own value enters only through the error :math:`y - t`, which all weights share. Two weights whose
    inputs are equal get equal gradients, however different the weights are.

    Returns:
        ``(autograd, formula)``, two float64 tensors of the shape of ``w``.

    Example:
        >>> auto, formula = linear_unit_gradients([0.001, 2.0], [0.5, 0.5], target=1.0)
        >>> torch.allclose(auto, formula), bool(auto[0] == auto[1])
        (True, True)
    """
    weights = torch.tensor(_as_1d(w, "w"), requires_grad=True)
    inputs = torch.tensor(_as_1d(x, "x"))
    if weights.shape != inputs.shape:
        raise ValueError(f"w and x must have the same length, got {len(weights)} and {len(inputs)}")
    y = weights @ inputs
    loss = (y - float(target)) ** 2
    (grad,) = torch.autograd.grad(loss, [weights])
    return grad, 2 * (y.detach() - float(target)) * inputs


def unit_gradient_norms(
    scale_in: float = 1.0,
    scale_out: float = 1.0,
    *,
    unit: int = 0,
    seed: int = 0,
    in_features: int = 10,
    hidden: int = 8,
    out_features: int = 3,
    batch_size: int = 32,
    activation: str = "relu",
) -> tuple[float, float]:
    r"""Gradient norms of the weights into and out of one hidden unit, after scaling them.

    Network (float64): ``o = W2 act(W1 x + b1) + b2`` (``act``: ``"relu"`` or ``"tanh"``),
    parameters from :func:`dropoutlib.experiments.from_scratch.init_two_layer`, inputs ``x ~ N(0, 1)``. Row
    ``unit`` of ``W1`` and ``b1[unit]`` are multiplied by ``scale_in``, column ``unit`` of ``W2``
    by ``scale_out``. The loss is linear in the output, :math:`L = \frac1B \sum_n g_n \cdot o_n`
    with a fixed random ``g``, so the error signal :math:`\delta_n = \partial L/\partial o_n =
    g_n / B` does not change with the scales and only the weights' values do. Then, for unit
    :math:`j` with pre-activation :math:`z_{nj}` and activation :math:`h_{nj}`,

    .. math::

        \frac{\partial L}{\partial W_1[j,:]} = \sum_n \big(W_2[:,j]\cdot\delta_n\big)\,
        \mathrm{relu}'(z_{nj})\, x_n, \qquad
        \frac{\partial L}{\partial W_2[:,j]} = \sum_n \delta_n\, h_{nj}.

    The first is proportional to ``scale_out`` and independent of ``scale_in``
    (:math:`\mathrm{relu}'(s z) = \mathrm{relu}'(z)` for :math:`s > 0`); the second is
    proportional to ``scale_in`` (:math:`\mathrm{relu}(s z) = s\,\mathrm{relu}(z)`) and independent
    of ``scale_out``. With ``activation="tanh"`` only the proportionality to ``scale_out`` is
    exact: :math:`\tanh(s z) \approx s z` and :math:`\tanh'(s z) \to 1` hold only for small
    :math:`s z`.

    Returns:
        ``(into, out_of)``: the norm of the gradient on ``(W1[unit], b1[unit])`` and on
        ``W2[:, unit]``.

    Example:
        >>> into, out_of = unit_gradient_norms()
        >>> small_into, same_out = unit_gradient_norms(scale_out=0.01)
        >>> round(small_into / into, 6), round(same_out / out_of, 6)
        (0.01, 1.0)
    """
    scale_in = check_real(scale_in, "scale_in", positive=True)
    scale_out = check_real(scale_out, "scale_out", positive=True)
    hidden = check_positive_int(hidden, "hidden")
    batch_size = check_positive_int(batch_size, "batch_size")
    if isinstance(unit, bool) or not isinstance(unit, numbers.Integral) or not 0 <= unit < hidden:
        raise ValueError(f"unit must be an integer in [0, {hidden - 1}], got unit={unit!r}")
    act = _activation(activation)
    generator = torch.Generator().manual_seed(check_seed(seed))
    params = init_two_layer(in_features, hidden, out_features, generator)
    x = torch.randn(batch_size, in_features, generator=generator, dtype=torch.float64)
    g = torch.randn(batch_size, out_features, generator=generator, dtype=torch.float64)
    with torch.no_grad():
        params["W1"][unit] *= scale_in
        params["b1"][unit] *= scale_in
        params["W2"][:, unit] *= scale_out
    h = act(x @ params["W1"].T + params["b1"])
    out = h @ params["W2"].T + params["b2"]
    loss = (g * out).sum() / batch_size
    grad_w1, grad_b1, grad_w2 = torch.autograd.grad(loss, [params["W1"], params["b1"], params["W2"]])
    into = torch.cat([grad_w1[unit], grad_b1[unit : unit + 1]]).norm().item()
    return into, grad_w2[:, unit].norm().item()


def train_copies(
    p: float,
    *,
    init: Sequence[float] = (0.01, 0.01, 1.0, 1.0),
    target_slope: float = 2.0,
    steps: int = 2000,
    lr: float = 0.01,
    batch_size: int = 16,
    seed: int = 0,
) -> torch.Tensor:
    r"""Train ``y = sum_i w_i m_i x_i / q`` on ``n`` identical copies ``x_i = s`` of one feature.

    Data: ``s ~ N(0, 1)``, target ``t = target_slope * s``; loss :math:`(y - t)^2` averaged over a
    minibatch of fresh examples, plain SGD, an independent dropout mask :math:`m` on the inputs of
    every example (``p = 0``: no dropout). All copies carry the same input, so without dropout every
    weight gets the *same* gradient :math:`2(y - t)s` at every step: the differences between the
    weights never change, and a weight that starts near zero stays behind the others by exactly as
    much as it started. With dropout the expected loss is

    .. math::

        \mathbb E\,(y - t)^2 = \Big(\sum_i w_i - c\Big)^2 + \frac{p}{q} \sum_i w_i^2
        \qquad (\mathbb E\, s^2 = 1,\ c = \text{target\_slope}),

    whose minimum has all weights equal, :math:`w_i = c / (n + p/q)`.

    Returns:
        The weights after every step, shape ``(steps + 1, n)``, float64 (row 0: ``init``).

    Example:
        >>> path = train_copies(0.0, steps=200)
        >>> differences = path[:, 2] - path[:, 0]
        >>> bool((differences - differences[0]).abs().max() < 1e-12)
        True
    """
    p = check_probability(p)
    if p == 1:
        raise ValueError("p=1 drops every input: the unit would see nothing")
    w = torch.tensor(_as_1d(init, "init"))
    steps = check_positive_int(steps, "steps")
    batch_size = check_positive_int(batch_size, "batch_size")
    lr = check_real(lr, "lr", positive=True)
    generator = torch.Generator().manual_seed(check_seed(seed))
    q = 1.0 - p
    path = [w.clone()]
    for _ in range(steps):
        s = torch.randn(batch_size, 1, generator=generator, dtype=torch.float64)
        x = s.expand(batch_size, len(w))
        if p > 0:
            keep = torch.rand(batch_size, len(w), generator=generator, dtype=torch.float64) >= p
            x = x * keep / q
        residual = x @ w - target_slope * s[:, 0]
        w = w - lr * 2 * (residual @ x) / batch_size
        path.append(w.clone())
    return torch.stack(path)


# --- the network and its handicap ----------------------------------------------------------------


def handicap_units(model: nn.Sequential, n_handicapped: int, scale: float, where: str) -> nn.Sequential:
    """Multiply the weights of the first ``n_handicapped`` hidden units by ``scale``, in place.

    ``where="in"``: their rows of the first Linear layer and their biases (the unit's
    pre-activation, hence its ReLU output, shrinks by ``scale``); ``"out"``: their columns of the
    last Linear layer; ``"both"``: both; ``"none"``: nothing.

    Example:
        >>> model = mlp(4, [3], 2)
        >>> before = model[-1].weight[:, 0].clone()
        >>> _ = handicap_units(model, 1, 0.5, "out")
        >>> torch.allclose(model[-1].weight[:, 0], 0.5 * before)
        True
    """
    first, last = _one_hidden_layer(model)
    if where not in HANDICAPS:
        raise ValueError(f"where must be one of {HANDICAPS}, got where={where!r}")
    n_handicapped = check_positive_int(n_handicapped, "n_handicapped")
    if n_handicapped > first.out_features:
        raise ValueError(
            f"n_handicapped must be at most the {first.out_features} hidden units, "
            f"got n_handicapped={n_handicapped}"
        )
    scale = check_real(scale, "scale", positive=True)
    with torch.no_grad():
        if where in ("in", "both"):
            first.weight[:n_handicapped] *= scale
            first.bias[:n_handicapped] *= scale
        if where in ("out", "both"):
            last.weight[:, :n_handicapped] *= scale
    return model


def handicapped_mlp(
    p: float,
    handicap: str = "both",
    *,
    seed: int = 0,
    in_features: int = 64,
    hidden: int = HIDDEN,
    out_features: int = 10,
    n_handicapped: int = N_HANDICAPPED,
    scale: float = SCALE,
) -> nn.Sequential:
    """``mlp(in_features, [hidden], out_features, p=p)`` from ``torch.manual_seed(seed)``, handicapped.

    For one ``seed`` every ``p`` and every ``handicap`` start from the same draw of the weights;
    only the handicapped units' weights (the first ``n_handicapped``) differ, by the factor
    ``scale`` (see :func:`handicap_units`).

    Example:
        >>> a, b = handicapped_mlp(0.0, "none"), handicapped_mlp(0.5, "both")
        >>> torch.equal(a[0].weight[8:], b[0].weight[8:]), len(b)
        (True, 4)
    """
    p = check_probability(p)
    torch.manual_seed(check_seed(seed))
    model = mlp(in_features, [hidden], out_features, p=p)
    return handicap_units(model, n_handicapped, scale, handicap)


# --- measurements --------------------------------------------------------------------------------


def hidden_activations(model: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """The hidden layer's activations ``relu(W1 x + b1)`` in evaluation mode: shape ``(n, hidden)``.

    Everything but the last Linear layer is applied, with dropout off; the model's modes are
    restored afterwards.

    Example:
        >>> model = mlp(4, [3], 2, p=0.5)
        >>> hidden_activations(model, torch.ones(5, 4)).shape
        torch.Size([5, 3])
    """
    _one_hidden_layer(model)
    with restored_modes(model), torch.no_grad():
        model.eval()
        return model[:-1](x)


def ablation_importance(model: nn.Sequential, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    r"""The loss increase when one hidden unit alone is zeroed, for every hidden unit.

    .. math::

        I_j = \mathrm{CE}\big(W_2\,(h \odot e_{-j}) + b_2,\ y\big) - \mathrm{CE}(W_2 h + b_2,\ y),

    where :math:`h` are the hidden activations in evaluation mode and :math:`e_{-j}` is all ones
    except a zero at unit :math:`j` (the same as setting column :math:`j` of :math:`W_2` to zero).
    ``I_j`` is usually positive; it can be negative for a unit whose removal happens to help.

    Returns:
        float64 tensor of shape ``(hidden,)``.

    Example:
        >>> model = mlp(4, [3], 2)
        >>> with torch.no_grad():
        ...     model[-1].weight[:, 1] = 0.0  # unit 1 is disconnected from the output
        >>> importance = ablation_importance(model, torch.randn(20, 4), torch.randint(2, (20,)))
        >>> importance.shape, float(importance[1])
        (torch.Size([3]), 0.0)
    """
    if not isinstance(y, torch.Tensor) or y.dtype != torch.int64:
        raise TypeError("y must be an int64 tensor of class indices")
    _, last = _one_hidden_layer(model)
    h = hidden_activations(model, x).double()
    weight, bias = last.weight.detach().double(), last.bias.detach().double()
    with torch.no_grad():
        base = F.cross_entropy(h @ weight.T + bias, y)
        n_hidden = h.shape[1]
        # one forward pass per unit, stacked: out[j] = (h without unit j) W2^T + b2
        without = h.unsqueeze(0) * (1 - torch.eye(n_hidden, dtype=h.dtype)).unsqueeze(1)
        logits = without @ weight.T + bias  # (hidden, n, classes)
        losses = torch.stack([F.cross_entropy(logits[j], y) for j in range(n_hidden)])
    return losses - base


def gini(importance: Any) -> float:
    r"""Gini coefficient of a distribution of importance: 0 when equal, ``1 - 1/n`` when one unit has all.

    Negative entries count as zero. With the values sorted, :math:`v_{(1)} \le \dots \le v_{(n)}`,

    .. math::

        G = \frac{\sum_{i=1}^n (2i - n - 1)\, v_{(i)}}{n \sum_i v_i}
          = \frac{\sum_{i,k} |v_i - v_k|}{2 n \sum_i v_i}.

    Example:
        >>> gini([1, 1, 1, 1]), gini([0, 0, 0, 1])
        (0.0, 0.75)
    """
    v = np.sort(_nonnegative_weights(importance))
    n = len(v)
    return float(np.dot(2 * np.arange(1, n + 1) - n - 1, v) / n)


def top_k_share(importance: Any, k: int) -> float:
    """The share of the total importance held by the ``k`` most important units (negatives as 0).

    Equal importance gives ``k / n``; all of it on one unit gives 1.

    Example:
        >>> top_k_share([4, 3, 2, 1], 1), top_k_share([1, 1, 1, 1], 2)
        (0.4, 0.5)
    """
    weights = _nonnegative_weights(importance)
    k = check_positive_int(k, "k")
    return float(np.sort(weights)[::-1][:k].sum())


def effective_units(importance: Any) -> float:
    r"""The effective number of units: the exponential of the entropy of the importances.

    :math:`\exp(-\sum_j \pi_j \log \pi_j)`, with :math:`\pi` the importance normalized to sum
    to 1. It is ``n`` when all ``n`` units are equally important and 1 when one unit holds everything
    (negative entries count as zero).

    Example:
        >>> round(effective_units([1, 1, 1, 1]), 6), effective_units([0, 5, 0])
        (4.0, 1.0)
    """
    weights = _nonnegative_weights(importance)
    nonzero = weights[weights > 0]
    return float(np.exp(-(nonzero * np.log(nonzero)).sum()))


def mean_abs_correlation(activations: torch.Tensor) -> float:
    r"""Mean absolute Pearson correlation between the columns (units) of ``activations``.

    Averaged over all pairs of units whose activation varies over the examples; units that are
    constant (e.g. a ReLU that never fires) have no correlation and are left out.

    Example:
        >>> a = torch.tensor([[1.0, 2.0, 0.0], [2.0, 4.0, 0.0], [3.0, 5.0, 0.0]])
        >>> round(mean_abs_correlation(a), 4)
        0.982
    """
    if not isinstance(activations, torch.Tensor) or activations.ndim != 2:
        raise TypeError("activations must be a 2-D tensor (examples, units)")
    a = activations.detach().double()
    a = a[:, a.std(dim=0) > 0]
    if a.shape[1] < 2:
        raise ValueError("need at least two units whose activation varies")
    c = torch.corrcoef(a.T)
    off_diagonal = ~torch.eye(c.shape[0], dtype=torch.bool)
    return c[off_diagonal].abs().mean().item()


def unit_strength(model: nn.Sequential) -> torch.Tensor:
    """``||(W1[j], b1[j])|| * ||W2[:, j]||`` for every hidden unit ``j``: the size of its path.

    Scaling a unit's incoming or outgoing weights by ``s`` scales its strength by ``s``.

    Example:
        >>> model = handicap_units(mlp(4, [3], 2), 1, 0.1, "both")
        >>> strength = unit_strength(model)
        >>> bool(strength[0] < strength[1:].min())
        True
    """
    first, last = _one_hidden_layer(model)
    with torch.no_grad():
        into = torch.cat([first.weight, first.bias.unsqueeze(1)], dim=1).norm(dim=1)
        return (into * last.weight.norm(dim=0)).double()


# --- the experiment ------------------------------------------------------------------------------


@dataclass(eq=False)
class HandicapRun:
    """One training run of the digits experiment and what was measured on it.

    Attributes:
        p, handicap, seed, optimizer: how it was trained.
        handicapped: ``(hidden,)`` bool, True for the handicapped units ("A, B").
        importance: ``(hidden,)`` :func:`ablation_importance` on the test set at the end.
        share: the handicapped units' share of the total (positive) importance.
        gini, top_share, effective: :func:`gini`, :func:`top_k_share` (k = a quarter of the
            units) and :func:`effective_units` of ``importance``.
        correlation: :func:`mean_abs_correlation` of the hidden activations on the test set.
        strength: ``(hidden,)`` :func:`unit_strength` at the end.
        test_acc, train_loss: of the full network (evaluation mode) at the end.
        history: the training :class:`~dropoutlib.course.train.History`.
        epochs, share_path, strength_path: per epoch (from 0, the initialization), the
            handicapped units' share of importance and their mean strength divided by the other
            units' (plain SGD only; empty for Adam).
        model: the trained network.
    """

    p: float
    handicap: str
    seed: int
    optimizer: str
    handicapped: torch.Tensor
    importance: torch.Tensor
    share: float
    gini: float
    top_share: float
    effective: float
    correlation: float
    strength: torch.Tensor
    test_acc: float
    train_loss: float
    history: History
    model: nn.Sequential
    epochs: list[int] = field(default_factory=list)
    share_path: list[float] = field(default_factory=list)
    strength_path: list[float] = field(default_factory=list)


def _share(importance: torch.Tensor, handicapped: torch.Tensor) -> float:
    positive = importance.clamp_min(0)
    total = positive.sum().item()
    return positive[handicapped].sum().item() / total if total > 0 else float("nan")


def _relative_strength(model: nn.Sequential, handicapped: torch.Tensor) -> float:
    strength = unit_strength(model)
    return (strength[handicapped].mean() / strength[~handicapped].mean()).item()


def _extend(history: History, part: History, offset: int) -> None:
    history.epoch.extend(e + offset for e in part.epoch)
    for name in ("train_loss", "test_loss", "train_acc", "test_acc", "objective"):
        getattr(history, name).extend(getattr(part, name))


def train_handicapped(
    p: float,
    handicap: str = "both",
    *,
    seed: int = 0,
    optimizer: str = "sgd",
    epochs: int = EPOCHS,
    lr: float = LR,
    batch_size: int = BATCH_SIZE,
    data: Split | None = None,
    n_handicapped: int = N_HANDICAPPED,
    scale: float = SCALE,
) -> HandicapRun:
    """Train :func:`handicapped_mlp` on the digits and measure importance, concentration, correlation.

    Data: :func:`dropoutlib.course.data.load_digits` ``(seed=seed)`` unless ``data`` is given. Training:
    :func:`dropoutlib.course.train.fit` with minibatches of ``batch_size``, cross-entropy, and either plain
    SGD (``optimizer="sgd"``, no momentum: a step is the learning rate times the gradient) or Adam.
    Plain SGD has no state, so it is run one epoch per ``fit`` call (epoch ``e`` seeded with
    ``1000 * seed + e``), and after every epoch the handicapped units' share of importance and
    their relative strength are recorded (``epochs``, ``share_path``, ``strength_path``). Adam
    keeps running averages between steps, so it is run in one call and records no paths.

    Example:
        >>> run = train_handicapped(0.5, "both", epochs=2)
        >>> run.epochs, len(run.share_path), run.handicapped.sum().item()
        ([0, 1, 2], 3, 8)
    """
    p = check_probability(p)
    if p == 1:
        raise ValueError("p=1 drops every hidden unit: the network could not learn anything")
    if handicap not in HANDICAPS:
        raise ValueError(f"handicap must be one of {HANDICAPS}, got handicap={handicap!r}")
    if optimizer not in ("sgd", "adam"):
        raise ValueError(f"optimizer must be 'sgd' or 'adam', got optimizer={optimizer!r}")
    seed = check_seed(seed)
    epochs = check_positive_int(epochs, "epochs")
    data = check_split(data, lambda: load_digits(seed=seed))
    model = handicapped_mlp(
        p, handicap, seed=seed, in_features=data.n_features, n_handicapped=n_handicapped, scale=scale
    )
    hidden = model[0].out_features
    handicapped = torch.arange(hidden) < n_handicapped
    x, y = data.x_test, data.y_test
    options = {"lr": lr, "batch_size": batch_size, "optimizer": optimizer, "progress": False}
    if optimizer == "sgd":
        options["momentum"] = 0.0
    run_epochs: list[int] = []
    share_path: list[float] = []
    strength_path: list[float] = []
    if optimizer == "sgd":
        history = History()
        for epoch in range(epochs + 1):
            if epoch > 0:
                part = fit(model, data, epochs=1, seed=seed * 1000 + epoch, **options)
                _extend(history, part, epoch - 1)
            run_epochs.append(epoch)
            share_path.append(_share(ablation_importance(model, x, y), handicapped))
            strength_path.append(_relative_strength(model, handicapped))
    else:
        history = fit(model, data, epochs=epochs, seed=seed, **options)
    importance = ablation_importance(model, x, y)
    quarter = max(1, hidden // 4)
    return HandicapRun(
        p=p,
        handicap=handicap,
        seed=seed,
        optimizer=optimizer,
        handicapped=handicapped,
        importance=importance,
        share=_share(importance, handicapped),
        gini=gini(importance),
        top_share=top_k_share(importance, quarter),
        effective=effective_units(importance),
        correlation=mean_abs_correlation(hidden_activations(model, x)),
        strength=unit_strength(model),
        test_acc=history.test_acc[-1],
        train_loss=history.train_loss[-1],
        history=history,
        model=model,
        epochs=run_epochs,
        share_path=share_path,
        strength_path=strength_path,
    )


# --- tables and claims of chapter 5 ---------------------------------------------------------------

#: The steps at the end of a :func:`train_copies` run averaged to read off where SGD settles.
TAIL = 500

Runs = dict[tuple[str, float], HandicapRun]


def copies_equilibrium(p: float, n: int = 4, target_slope: float = 2.0) -> float:
    """Where dropout's penalty puts every copy: ``c / (n + p/q)`` (2/5 for the chapter's unit).

    Example:
        >>> copies_equilibrium(0.5)
        0.4
    """
    return target_slope / (n + p / (1 - p))


def runs_table(runs: Runs) -> pd.DataFrame:
    """The digits runs, one row per (handicap, p), rounded as the chapter reads them (a DataFrame).

    Accuracy to 4 decimals, the effective number of units to 2, the other measures to 3.
    """
    from dropoutlib.course.book import table

    rows = [
        {
            "handicap": handicap,
            "p": p,
            "test acc": round(r.test_acc, 4),
            "A-share": round(r.share, 3),
            "Gini": round(r.gini, 3),
            "top-4": round(r.top_share, 3),
            "eff. units": round(r.effective, 2),
            "max I": round(r.importance.max().item(), 3),
            "mean |r|": round(r.correlation, 3),
        }
        for (handicap, p), r in runs.items()
    ]
    return table(rows, index="handicap", digits=4)


def correlation_table(runs: Runs) -> pd.DataFrame:
    """Mean absolute correlation of the hidden units without and with dropout, per handicap (3 decimals)."""
    from dropoutlib.course.book import table

    rows = [
        {
            "handicap": h,
            "no dropout": runs[h, 0.0].correlation,
            "p = 0.5": runs[h, 0.5].correlation,
            "change": runs[h, 0.5].correlation - runs[h, 0.0].correlation,
        }
        for h in HANDICAPS
    ]
    return table(rows, index="handicap", digits=3)


def gradient_claims(auto: torch.Tensor, formula: torch.Tensor) -> list[Claim]:
    """Autograd's gradient is ``2 (y - t) x``; weights with equal inputs get equal gradients (A = C, B = D).

    Example:
        >>> from dropoutlib.course.claims import check
        >>> check(gradient_claims(*linear_unit_gradients([0.001, 1.0], [0.5, 0.5], target=1.0)))
        ✓ autograd matches dL/dy * x (max |difference|) (0 < 1e-12)
        ✓ equal inputs give equal gradients (A = C, B = D) (equal)
    """
    difference = (auto - formula).abs().max().item()
    half = len(auto) // 2
    equal = bool((auto[:half] == auto[half:]).all())
    return [
        below("autograd matches dL/dy * x (max |difference|)", difference, 1e-12),
        Claim("equal inputs give equal gradients (A = C, B = D)", equal, "equal" if equal else "differ"),
    ]


def copies_claims(plain: torch.Tensor, dropped: torch.Tensor, p: float) -> list[Claim]:
    """Four copies: without dropout the gap C - A never moves and A ends no larger; with dropout they meet.

    ``plain`` and ``dropped`` are :func:`train_copies` paths without and with dropout ``p``; "meet"
    means the mean of the last :data:`TAIL` steps is within 0.03 of :func:`copies_equilibrium`.
    """
    gap = plain[:, 2] - plain[:, 0]
    tail = dropped[-TAIL:].mean(dim=0)
    return [
        below("without dropout the gap C - A does not move", (gap - gap[0]).abs().max().item(), 1e-12),
        below("without dropout A ends no larger than it started", plain[-1, 0].item(), 0.01),
        below(
            "with dropout all weights meet at 2/(4 + p/q) (max |distance|)",
            (tail - copies_equilibrium(p)).abs().max().item(),
            0.03,
        ),
    ]


def gradient_norm_claims(ratios: dict[tuple[str, float], tuple[float, float]]) -> list[Claim]:
    """Scaling a unit's weights by ``s``: in -> the outgoing gradient scales by ``s``; out -> the incoming.

    ``ratios[where, s]`` is ``(gradient into / at s=1, gradient out of / at s=1)`` with the weights
    into the unit (``"in"``), out of it (``"out"``) or ``"both"`` scaled by ``s``.
    """
    expected = {"in": lambda s: (1.0, s), "out": lambda s: (s, 1.0), "both": lambda s: (s, s)}
    statements = {
        "in": "incoming scaled: own gradient unchanged, outgoing gradient x s",
        "out": "outgoing scaled: own gradient unchanged, incoming gradient x s",
        "both": "both scaled: both gradients x s",
    }
    claims = []
    for where, statement in statements.items():
        pairs = [(ratios[key], expected[where](key[1])) for key in ratios if key[0] == where]
        holds = all(np.allclose(got, want) for got, want in pairs)
        claims.append(Claim(statement, holds, f"{len(pairs)} values of s, within np.allclose"))
    return claims


def handicap_claims(runs: Runs) -> list[Claim]:
    """The handicaps on digits: "both" minor without dropout, a part with it; "in" recovers; "out" marks.

    And dropout changes the test accuracy by less than 0.03 in every condition.
    """
    share = {key: r.share for key, r in runs.items()}
    acc_change = max(abs(runs[h, 0.5].test_acc - runs[h, 0.0].test_acc) for h in HANDICAPS)
    return [
        below("both handicapped, no dropout: they stay minor (A-share)", share["both", 0.0], 0.1),
        above("both handicapped, dropout: they take a part (A-share)", share["both", 0.5], 0.2),
        above("handicapped on the inputs only: they recover (A-share)", share["in", 0.0], 0.3),
        below(
            "a small outgoing weight leaves a mark (A-share vs no handicap)",
            share["out", 0.0],
            share["none", 0.0],
        ),
        above("dropout gives out-handicapped units more (A-share)", share["out", 0.5], share["out", 0.0]),
        below("dropout changes the test accuracy only a little (max |change|)", acc_change, 0.03),
    ]


def dynamics_claims(runs: Runs) -> list[Claim]:
    """Doubly handicapped units end far stronger with dropout, lead early, and the error stays larger.

    Strength: > 3 times that without dropout at the end; share after 10 epochs: larger; the
    training loss of the last epoch (dropout active): more than twice that without dropout.
    """
    plain, dropped = runs["both", 0.0], runs["both", 0.5]
    return [
        above(
            "with dropout they end far stronger (relative strength)",
            dropped.strength_path[-1],
            3 * plain.strength_path[-1],
        ),
        above(
            "dropout helps them early (A-share after 10 epochs)", dropped.share_path[10], plain.share_path[10]
        ),
        above(
            "with dropout the error stays much larger (last epoch's loss)",
            dropped.history.objective[-1],
            2 * plain.history.objective[-1],
        ),
    ]


def spread_claims(runs: Runs) -> list[Claim]:
    """In every condition dropout lowers the Gini coefficient, adds effective units, halves the top unit."""
    claims = []
    for h in HANDICAPS:
        plain, dropped = runs[h, 0.0], runs[h, 0.5]
        claims += [
            below(f"{h}: dropout lowers the Gini coefficient", dropped.gini, plain.gini),
            above(f"{h}: dropout gives more effective units", dropped.effective, plain.effective),
            below(
                f"{h}: the most important unit matters half as much",
                dropped.importance.max().item(),
                plain.importance.max().item() / 2,
            ),
        ]
    return claims


def correlation_claims(runs: Runs) -> list[Claim]:
    """Dropout changes the mean absolute correlation of the hidden units by < 0.1 in every condition."""
    change = max(abs(runs[h, 0.5].correlation - runs[h, 0.0].correlation) for h in HANDICAPS)
    return [below("dropout changes the mean |correlation| only a little (max |change|)", change, 0.1)]


def correlation_sign_claims_over_seeds(runs_by_seed: Sequence[Runs]) -> list[Claim]:
    """Over several seeds the change in correlation has no consistent sign: some go up, some down.

    A claim about seeds together (one seed's four changes may all share a sign), so the chapter
    states it from the course's tests and does not check it on its own seed.
    """
    changes = [
        runs[h, 0.5].correlation - runs[h, 0.0].correlation for runs in runs_by_seed for h in HANDICAPS
    ]
    return [
        Claim(
            "the change in correlation takes both signs",
            min(changes) < 0 < max(changes),
            f"from {min(changes):+.3f} to {max(changes):+.3f}",
        )
    ]


def adam_claims(adam: HandicapRun) -> list[Claim]:
    """Adam, no dropout: doubly handicapped units recover, > 1/5 of the importance, > 1/2 the strength."""
    relative = (adam.strength[adam.handicapped].mean() / adam.strength[~adam.handicapped].mean()).item()
    return [
        above("with Adam the handicapped units recover without dropout (A-share)", adam.share, 0.2),
        above("they reach half the others' strength", relative, 0.5),
    ]


# --- controls, pairwise synergy and several seeds (issue 13) ------------------------------------

#: The seeds the chapter runs its eight digits runs for, to state means with standard errors.
SEEDS = (0, 1, 2, 3, 4)
#: An effect over seeds counts as measured when its mean is this many standard errors from zero.
N_SE = 2.0
#: Adam's learning rate in the chapter (SGD's is :data:`LR`).
ADAM_LR = 3e-3
#: The control for Adam's other learning rate: plain SGD at three times :data:`LR`.
LR_CONTROL = 3 * LR
#: The handicaps for which dropout lowers the share of sub-additive pairs on every seed.
SYNERGY_HANDICAPS = ("none", "in", "out")


def handicap_runs(seed: int = 0, data: Split | None = None) -> Runs:
    """The chapter's eight digits runs for one seed: four handicaps, without and with dropout 0.5."""
    seed = check_seed(seed)
    data = check_split(data, lambda: load_digits(seed=seed))
    return {(h, p): train_handicapped(p, h, seed=seed, data=data) for h in HANDICAPS for p in (0.0, 0.5)}


def pairwise_synergy(model: nn.Sequential, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    r"""The synergy of every pair of hidden units: :math:`S_{jk} = I_{jk} - I_j - I_k`.

    :math:`I_j` is unit :math:`j`'s importance (:func:`ablation_importance`: the rise in the mean
    cross-entropy when it alone is zeroed) and :math:`I_{jk}` the rise when units :math:`j` and
    :math:`k` are zeroed together, in evaluation mode. :math:`S_{jk} < 0` (**sub-additive**): losing
    both costs less than the two losses added, because each is worth less without the other, the
    "useful only together" of co-adaptation. :math:`S_{jk} > 0` (super-additive): each covers for the
    other, redundancy.

    Returns:
        A float tensor of the :math:`n(n-1)/2` values for :math:`j < k`, in row-major order.

    Example:
        >>> model = mlp(4, [3], 2)
        >>> pairwise_synergy(model, torch.randn(20, 4), torch.randint(0, 2, (20,))).shape
        torch.Size([3])
    """
    _, last = _one_hidden_layer(model)
    single = ablation_importance(model, x, y)
    h = hidden_activations(model, x)
    n = h.shape[1]
    with restored_modes(model), torch.no_grad():
        model.eval()
        base = F.cross_entropy(last(h), y)
        values = []
        for j in range(n):
            for k in range(j + 1, n):
                ablated = h.clone()
                ablated[:, [j, k]] = 0
                pair = F.cross_entropy(last(ablated), y) - base
                values.append(pair - single[j] - single[k])
    return torch.stack(values)


def subadditive_fraction(run: HandicapRun, data: Split) -> float:
    """The fraction of pairs of hidden units with negative synergy (:func:`pairwise_synergy`), test set."""
    return float((pairwise_synergy(run.model, data.x_test, data.y_test) < 0).float().mean())


def synergy_claims(runs: Runs, data: Split) -> list[Claim]:
    """For the handicaps in :data:`SYNERGY_HANDICAPS`, dropout lowers the share of sub-additive pairs."""
    claims = []
    for h in SYNERGY_HANDICAPS:
        plain, dropped = subadditive_fraction(runs[h, 0.0], data), subadditive_fraction(runs[h, 0.5], data)
        claims.append(below(f"{h}: dropout lowers the share of sub-additive pairs", dropped, plain))
    return claims


def seed_differences(runs_by_seed: dict[int, Runs]) -> dict[str, tuple[float, float]]:
    """Paired differences over seeds, ``name -> (mean, standard error)`` (:func:`course.stats.paired_gain`).

    ``"acc <h>"``: dropout's change of the test accuracy under handicap ``h``; ``"out mark"``: the
    A-share of out-handicapped units minus that of the unhandicapped half, no dropout; ``"out
    dropout"``: dropout's change of the out-handicapped units' A-share; ``"subadd <h>"``: dropout's
    change of the fraction of sub-additive pairs (the test set of each seed's own split).
    """
    from dropoutlib.course.stats import paired_gain

    seeds = sorted(runs_by_seed)
    if len(seeds) < 2:
        raise ValueError(f"runs_by_seed needs at least two seeds, got {seeds}")
    splits = {seed: load_digits(seed=seed) for seed in seeds}

    def pair(first: Any, second: Any) -> tuple[float, float]:
        mean, _, se = paired_gain([first(s) for s in seeds], [second(s) for s in seeds])
        return mean, se

    out: dict[str, tuple[float, float]] = {}
    for h in HANDICAPS:
        out[f"acc {h}"] = pair(
            lambda s, h=h: runs_by_seed[s][h, 0.0].test_acc, lambda s, h=h: runs_by_seed[s][h, 0.5].test_acc
        )
    out["out mark"] = pair(
        lambda s: runs_by_seed[s]["none", 0.0].share, lambda s: runs_by_seed[s]["out", 0.0].share
    )
    out["out dropout"] = pair(
        lambda s: runs_by_seed[s]["out", 0.0].share, lambda s: runs_by_seed[s]["out", 0.5].share
    )
    for h in HANDICAPS:
        out[f"subadd {h}"] = pair(
            lambda s, h=h: subadditive_fraction(runs_by_seed[s][h, 0.0], splits[s]),
            lambda s, h=h: subadditive_fraction(runs_by_seed[s][h, 0.5], splits[s]),
        )
    return out


def seed_claims(differences: dict[str, tuple[float, float]]) -> list[Claim]:
    """Over seeds: dropout lowers the accuracy on average everywhere; the out-handicap effects are measured.

    "Measured" means at least :data:`N_SE` standard errors from zero. ``differences`` comes from
    :func:`seed_differences`.
    """

    def bound(name: str) -> tuple[float, float]:
        mean, se = differences[name]
        return mean, N_SE * se

    claims = [
        below(f"{h}: dropout lowers the mean test accuracy", differences[f"acc {h}"][0], 0.0)
        for h in HANDICAPS
    ]
    mean, margin = bound("acc none")
    claims.append(below("no handicap: by more than 2 standard errors (mean + 2 SE)", mean + margin, 0.0))
    mean, margin = bound("out mark")
    claims.append(below("a small outgoing weight leaves a mark (mean + 2 SE)", mean + margin, 0.0))
    mean, margin = bound("out dropout")
    claims.append(above("dropout gives out-handicapped units more (mean - 2 SE)", mean - margin, 0.0))
    mean, margin = bound("subadd none")
    claims.append(
        below("no handicap: dropout lowers the sub-additive share (mean + 2 SE)", mean + margin, 0.0)
    )
    return claims


def lr_control_claims(run: HandicapRun) -> list[Claim]:
    """Plain SGD at :data:`LR_CONTROL`, no dropout, both handicapped: the units still stay minor."""
    return [below("SGD at 3 x the learning rate: they still stay minor (A-share)", run.share, 0.1)]
