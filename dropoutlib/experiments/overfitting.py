"""Ten noisy points and a wide network: the overfitting experiments behind chapter 1.

The data are :func:`dropoutlib.course.data.toy_regression`: ten training points on the line ``y = 1.5 x``
with Gaussian noise, and a dense grid of test points on the same interval. A 1-200-200-200-1 ReLU
network has about 80,000 parameters for ten equations, so without a regularizer it can pass through
every training point and fits the noise.

- :func:`fit_toy_regression` trains one network (dropout probability ``p`` after each hidden
  activation, ``p = 0`` for none) and returns a :class:`ToyFit`: its prediction on the test grid,
  its training and test losses and the total variation of the fitted curve.
- :func:`bagged_ensemble` trains ``k`` networks without dropout, each on a bootstrap resample of the
  training points, and averages their predictions (bagging): a smoother fit for ``k`` times the cost.
- :func:`total_variation` measures how much a curve goes up and down; :func:`count_droppable_units`
  counts the units a dropout layer can silence, ``n``, so that there are ``2**n`` masks.
- :func:`plot_toy_fits` draws fits over the training and test points.

Notation: ``p`` is the probability of dropping a unit, ``q = 1 - p`` of keeping it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.nn import functional as F

from dropoutlib._validation import check_positive_int, check_probability
from dropoutlib.course.data import Split, toy_regression
from dropoutlib.course.models import mlp
from dropoutlib.course.seeding import check_seed
from dropoutlib.course.train import History, fit
from dropoutlib.nn.dropout import Dropout, StandardDropout

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "EPOCHS",
    "HIDDEN",
    "LR",
    "ToyFit",
    "bagged_ensemble",
    "count_droppable_units",
    "fit_toy_regression",
    "plot_toy_fits",
    "total_variation",
]

#: Hidden widths of the network of chapter 1 (as in the blog post's demo).
HIDDEN = (200, 200, 200)
#: Full-batch Adam steps: enough for the network without dropout to interpolate the ten points.
EPOCHS = 300
#: Adam's learning rate.
LR = 2e-3

_DROPOUT_TYPES = (nn.Dropout, nn.AlphaDropout, Dropout, StandardDropout)


@dataclass(frozen=True, eq=False)
class ToyFit:
    """One fitted curve on the toy regression, and the numbers that describe it.

    Attributes:
        label: a short name for legends, e.g. ``"p = 0.5"``.
        p: the dropout probability it was trained with (0 for none; 0 for a bagged ensemble).
        seed: the seed of the data, the initial weights and the dropout masks.
        prediction: the fitted curve on the test grid ``data.x_test``, shape ``(n_test,)``,
            computed in evaluation mode (dropout off).
        train_loss: mean squared error on the training points, in evaluation mode.
        test_loss: mean squared error on the test points, in evaluation mode.
        roughness: :func:`total_variation` of ``prediction``.
        n_parameters: number of trained parameters, summed over all networks.
        n_networks: how many networks were trained (1, or ``k`` for an ensemble).
        history: the :class:`~dropoutlib.course.train.History` of the training run (``None`` for an
            ensemble).
    """

    label: str
    p: float
    seed: int
    prediction: torch.Tensor
    train_loss: float
    test_loss: float
    roughness: float
    n_parameters: int
    n_networks: int = 1
    history: History | None = None


def total_variation(values: Any) -> float:
    r"""Total variation of a curve sampled on a sorted grid: how far it travels up and down.

    .. math::

        \mathrm{TV}(f) = \sum_{i=1}^{N-1} |f(x_{i+1}) - f(x_i)|.

    For a monotone curve this is just ``|f(x_N) - f(x_1)|`` (the line ``y = 1.5 x`` on ``[-1, 1]``
    has total variation 3); every wiggle adds twice its height. It does not depend on the spacing of
    the grid, only on the values, so it measures wiggliness without units of slope.

    Args:
        values: the curve's values, a 1-D tensor, array or sequence (or shape ``(N, 1)``).

    Example:
        >>> total_variation([0.0, 1.0, 0.5, 2.0])
        3.0
        >>> round(total_variation(torch.linspace(-1.5, 1.5, 200)), 6)
        3.0
    """
    tensor = torch.as_tensor(values, dtype=torch.float64)
    if tensor.ndim == 2 and tensor.shape[1] == 1:
        tensor = tensor[:, 0]
    if tensor.ndim != 1:
        raise ValueError(f"values must be a curve of shape (N,) or (N, 1), got {tuple(tensor.shape)}")
    return tensor.diff().abs().sum().item()


def count_droppable_units(model: nn.Module) -> int:
    """Number of units whose output goes through a dropout layer with ``p > 0``: ``n``, for ``2**n`` masks.

    The model is read in order (``model.modules()``, as :func:`dropoutlib.course.models.mlp` builds it):
    a dropout layer after a ``Linear`` (and its activation) can silence that layer's
    ``out_features`` units; a dropout layer before the first ``Linear`` silences its
    ``in_features`` inputs. Each of those units is kept or dropped independently in every forward
    pass, so a training step samples one of ``2**n`` sub-networks.

    Example:
        >>> count_droppable_units(mlp(1, [200, 200, 200], 1, p=0.5))
        600
        >>> count_droppable_units(mlp(64, [32], 10, p=0.5, input_p=0.2))
        96
        >>> count_droppable_units(mlp(1, [200], 1))
        0
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    count, width, pending_input_dropout = 0, None, False
    for module in model.modules():
        if isinstance(module, nn.Linear):
            if pending_input_dropout:
                count += module.in_features
                pending_input_dropout = False
            width = module.out_features
        elif isinstance(module, _DROPOUT_TYPES) and float(module.p) > 0:
            if width is None:
                pending_input_dropout = True
            else:
                count += width
    return count


def _check_data(data: Any, seed: int) -> Split:
    if data is None:
        return toy_regression(seed=seed)
    if not isinstance(data, Split):
        raise TypeError(f"data must be a dropoutlib.course.data.Split or None, got {type(data).__name__}")
    return data


def _predict(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(x)


def _summarize(
    label: str,
    p: float,
    seed: int,
    data: Split,
    train_prediction: torch.Tensor,
    test_prediction: torch.Tensor,
    n_parameters: int,
    n_networks: int,
    history: History | None,
) -> ToyFit:
    return ToyFit(
        label=label,
        p=p,
        seed=seed,
        prediction=test_prediction[:, 0].clone(),
        train_loss=F.mse_loss(train_prediction, data.y_train).item(),
        test_loss=F.mse_loss(test_prediction, data.y_test).item(),
        roughness=total_variation(test_prediction[:, 0]),
        n_parameters=n_parameters,
        n_networks=n_networks,
        history=history,
    )


def fit_toy_regression(
    p: float = 0.0,
    *,
    seed: int = 0,
    data: Split | None = None,
    hidden: Sequence[int] = HIDDEN,
    epochs: int = EPOCHS,
    lr: float = LR,
    progress: bool = False,
    eval_every: int = 10,
) -> ToyFit:
    r"""Train a wide ReLU MLP on the toy regression, with dropout ``p`` after each hidden activation.

    The network is :func:`dropoutlib.course.models.mlp` ``(1, hidden, 1, p=p)``. Its initial weights come
    from ``torch.manual_seed(seed)``, so for one ``seed`` every ``p`` starts from the same weights
    and sees the same data: the only difference between two runs is dropout. Training is
    :func:`dropoutlib.course.train.fit`: full batch, Adam, mean squared error

    .. math::

        \frac{1}{10}\sum_{i=1}^{10} \big(f_\theta(x_i; m) - y_i\big)^2

    with a fresh dropout mask :math:`m` every step, for ``epochs`` steps; the global torch
    generator is reseeded with ``seed`` (it draws the masks).

    Args:
        p: drop probability after every hidden activation, in ``[0, 1)`` (0: no dropout).
        seed: seeds the data (when ``data`` is None), the initial weights and the masks.
        data: a :class:`~dropoutlib.course.data.Split`; default ``toy_regression(seed=seed)``.
        hidden: hidden widths (default 200, 200, 200).
        epochs, lr: full-batch Adam steps and learning rate.
        progress: show a progress bar on stderr.
        eval_every: record the training and test losses every this many epochs.

    Returns:
        A :class:`ToyFit` labelled ``"p = {p}"`` (``"no dropout"`` for ``p = 0``).

    Example:
        >>> result = fit_toy_regression(0.0, hidden=(32,), epochs=50)
        >>> result.prediction.shape, result.n_networks
        (torch.Size([200]), 1)
        >>> result.train_loss < result.history.train_loss[0]
        True
    """
    p = check_probability(p)
    if p == 1:
        raise ValueError("p=1 drops every hidden unit: the network could not learn anything")
    seed = check_seed(seed)
    data = _check_data(data, seed)
    torch.manual_seed(seed)
    model = mlp(data.n_features, list(hidden), 1, p=p)
    history = fit(model, data, epochs=epochs, lr=lr, task="regression", seed=seed,
                  progress=progress, eval_every=eval_every)
    n_parameters = sum(parameter.numel() for parameter in model.parameters())
    label = "no dropout" if p == 0 else f"p = {p:g}"
    return _summarize(label, p, seed, data, _predict(model, data.x_train),
                      _predict(model, data.x_test), n_parameters, 1, history)


def bagged_ensemble(
    k: int,
    *,
    seed: int = 0,
    data: Split | None = None,
    hidden: Sequence[int] = HIDDEN,
    epochs: int = EPOCHS,
    lr: float = LR,
    bootstrap: bool = True,
) -> ToyFit:
    r"""Bagging: ``k`` networks without dropout, each trained on a bootstrap resample, averaged.

    Network :math:`j` is trained (as in :func:`fit_toy_regression` with ``p = 0``) on ten points
    drawn with replacement from the ten training points (or on all of them with
    ``bootstrap=False``, so that only the initial weights differ) and the ensemble predicts

    .. math::

        \bar f(x) = \frac{1}{k}\sum_{j=1}^{k} f_{\theta_j}(x).

    The cost is ``k`` trainings, ``k`` times the parameters and ``k`` forward passes per
    prediction. The resamples and the networks' seeds are drawn from a generator seeded with
    ``seed``; the data default to ``toy_regression(seed=seed)``.

    Returns:
        A :class:`ToyFit` labelled ``"bagging, k = {k}"``, whose losses and roughness are those of
        the averaged prediction, with ``n_networks = k`` and ``history = None``.

    Example:
        >>> ensemble = bagged_ensemble(2, hidden=(16,), epochs=50)
        >>> ensemble.n_networks, ensemble.n_parameters == 2 * (16 * 1 + 16 + 16 + 1)
        (2, True)
    """
    k = check_positive_int(k, "k")
    seed = check_seed(seed)
    if not isinstance(bootstrap, bool):
        raise TypeError(f"bootstrap must be True or False, got bootstrap={bootstrap!r}")
    data = _check_data(data, seed)
    generator = torch.Generator().manual_seed(seed)
    train_sum = torch.zeros_like(data.y_train)
    test_sum = torch.zeros_like(data.y_test)
    n_parameters = 0
    for _ in range(k):
        member_seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
        if bootstrap:
            rows = torch.randint(0, data.n_train, (data.n_train,), generator=generator)
        else:
            rows = torch.arange(data.n_train)
        resample = Split(data.x_train[rows], data.y_train[rows], data.x_test, data.y_test,
                         name=f"{data.name} (bootstrap)" if bootstrap else data.name)
        torch.manual_seed(member_seed)
        model = mlp(data.n_features, list(hidden), 1)
        fit(model, resample, epochs=epochs, lr=lr, task="regression", seed=member_seed,
            progress=False, eval_every=epochs)
        train_sum += _predict(model, data.x_train)
        test_sum += _predict(model, data.x_test)
        n_parameters += sum(parameter.numel() for parameter in model.parameters())
    return _summarize(f"bagging, k = {k}", 0.0, seed, data, train_sum / k, test_sum / k,
                      n_parameters, k, None)


def plot_toy_fits(
    ax: Axes,
    data: Split,
    fits: Sequence[ToyFit],
    *,
    colors: Sequence[str] | None = None,
    show_truth: bool = True,
    legend: bool = True,
) -> None:
    """Draw fitted curves over the training points (large dots) and test points (small, faint).

    The noise-free line ``y = 1.5 x`` is drawn dashed when ``show_truth``. Axis labels are set; the
    title is left to the caller.

    Example:
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> import matplotlib.pyplot as plt
        >>> data = toy_regression()
        >>> fig, ax = plt.subplots()
        >>> plot_toy_fits(ax, data, [fit_toy_regression(0.0, hidden=(8,), epochs=20)])
        >>> len(ax.lines)
        2
        >>> plt.close(fig)
    """
    from dropoutlib.course.plots import COLORS

    if not isinstance(data, Split):
        raise TypeError(f"data must be a dropoutlib.course.data.Split, got {type(data).__name__}")
    fits = list(fits)
    if colors is None:
        palette = [COLORS["baseline"], COLORS["dropout"], COLORS["accent"], "0.35", "tab:purple"]
        colors = [palette[i % len(palette)] for i in range(len(fits))]
    x_test = data.x_test[:, 0].numpy()
    ax.scatter(x_test, data.y_test[:, 0].numpy(), s=7, color=COLORS["test"], alpha=0.35,
               label="test points", zorder=1)
    ax.scatter(data.x_train[:, 0].numpy(), data.y_train[:, 0].numpy(), s=45, color=COLORS["train"],
               edgecolor="white", linewidth=0.8, label="training points", zorder=4)
    if show_truth:
        ax.plot(x_test, 1.5 * x_test, "--", color="0.45", lw=1.2, label="true line y = 1.5x",
                zorder=2)
    for result, color in zip(fits, colors, strict=True):
        ax.plot(x_test, result.prediction.numpy(), color=color, lw=2.2, label=result.label, zorder=3)
    ax.set_xlabel("input x")
    ax.set_ylabel("output y")
    if legend:
        ax.legend(loc="upper left", fontsize=8)
