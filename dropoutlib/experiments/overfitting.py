"""Ten noisy points and a wide network: the overfitting experiments behind chapter 1.

The data are :func:`dropoutlib.course.data.toy_regression`: ten training points on the line ``y = 1.5 x``
with Gaussian noise, and a dense grid of test points on the same interval. A 1-200-200-200-1 ReLU
network has about 80,000 parameters for ten equations, so without a regularizer it can pass through
every training point and fits the noise.

- :func:`fit_toy_regression` trains one network (dropout probability ``p`` after each hidden
  activation, ``p = 0`` for none) and returns a :class:`ToyFit`: its prediction on the test grid,
  its training and test losses and the total variation of the fitted curve.
- :func:`tuned_weight_decay_fits` trains the network without dropout with each L2 penalty of a grid
  (all draws and penalties as one batched model) and keeps, per draw, the penalty a validation set
  prefers: weight decay tuned as honestly as early stopping is.
- :func:`bagged_ensemble` trains ``k`` networks without dropout, each on a bootstrap resample of the
  training points, and averages their predictions (bagging): a smoother fit for ``k`` times the cost.
- :func:`total_variation` measures how much a curve goes up and down; :func:`count_droppable_units`
  counts the units a dropout layer can silence, ``n``, so that there are ``2**n`` masks.
- :func:`plot_toy_fits` draws fits over the training and test points.
- The ``*_claims`` functions turn those measurements into the chapter's claims
  (:class:`~dropoutlib.course.claims.Claim`), each threshold written once, here: the chapter checks
  them for its own draw of the data, ``tests/chapters/test_overfitting_claims.py`` for five draws.

Notation: ``p`` is the probability of dropping a unit, ``q = 1 - p`` of keeping it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from dropoutlib._validation import check_positive_int, check_probability
from dropoutlib.course.claims import Claim, above, below
from dropoutlib.course.data import Split, check_split, toy_regression
from dropoutlib.course.models import mlp
from dropoutlib.course.seeding import check_seed
from dropoutlib.course.stats import paired_gain
from dropoutlib.course.train import History, fit
from dropoutlib.nn.dropout import Dropout, StandardDropout

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "EPOCHS",
    "HIDDEN",
    "LINE_TOLERANCE",
    "LR",
    "SE_MULTIPLE",
    "VALIDATION_OFFSET",
    "WEIGHT_DECAY_GRID",
    "DrawComparison",
    "ToyFit",
    "bagged_ensemble",
    "compare_draws",
    "controls_claims",
    "early_stopped_fit",
    "paired_test_losses",
    "count_droppable_units",
    "draws_claims",
    "ensemble_claims",
    "fit_claims",
    "fit_toy_regression",
    "loss_gain_claims",
    "loss_gain_claims_over_draws",
    "plot_toy_fits",
    "straight_line_claims",
    "sweep_claims",
    "total_variation",
    "tuned_weight_decay_fits",
]

#: Hidden widths of the network of chapter 1 (as in the blog post's demo).
HIDDEN = (200, 200, 200)
#: Full-batch Adam steps: enough for the network without dropout to interpolate the ten points.
EPOCHS = 300
#: Adam's learning rate.
LR = 2e-3
#: Early stopping's validation points for ``seed`` are the training points of
#: ``toy_regression(seed=seed + VALIDATION_OFFSET)``: ten fresh noisy points at the same inputs.
VALIDATION_OFFSET = 10_000
#: The L2 penalties :func:`tuned_weight_decay_fits` chooses from (about a factor 3 apart; below 3e-3
#: the fit is that of no penalty, and 1 is far too strong on every draw the chapter uses).
WEIGHT_DECAY_GRID: tuple[float, ...] = (3e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0)

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
            ensemble and for tuned weight decay).
        stopped_at: the step early stopping chose (:func:`early_stopped_fit`), else ``None``.
        weight_decay: the L2 penalty the validation set chose (:func:`tuned_weight_decay_fits`),
            else ``None``.
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
    stopped_at: int | None = None
    weight_decay: float | None = None


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
    return check_split(data, lambda: toy_regression(seed=seed))


def _train(
    data: Split,
    hidden: Sequence[int],
    p: float,
    seed: int,
    epochs: int,
    lr: float,
    progress: bool,
    eval_every: int,
) -> tuple[nn.Module, History]:
    """A fresh ``mlp(1, hidden, 1, p=p)`` from ``torch.manual_seed(seed)``, fitted full batch on ``data``."""
    torch.manual_seed(seed)
    model = mlp(data.n_features, list(hidden), 1, p=p)
    history = fit(model, data, epochs=epochs, lr=lr, task="regression", seed=seed,
                  progress=progress, eval_every=eval_every)
    return model, history


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
    model, history = _train(data, hidden, p, seed, epochs, lr, progress, eval_every)
    n_parameters = sum(parameter.numel() for parameter in model.parameters())
    label = "no dropout" if p == 0 else f"p = {p:g}"
    return _summarize(
        label,
        p,
        seed,
        data,
        _predict(model, data.x_train),
        _predict(model, data.x_test),
        n_parameters,
        1,
        history,
    )


def early_stopped_fit(
    *,
    seed: int = 0,
    hidden: Sequence[int] = HIDDEN,
    epochs: int = EPOCHS,
    lr: float = LR,
    eval_every: int = 10,
) -> ToyFit:
    r"""Early stopping: the network without dropout, stopped where a validation set says.

    The validation set is ten fresh noisy points at the training inputs (the training points of
    ``toy_regression(seed=seed + VALIDATION_OFFSET)``); the test grid is never looked at. The
    network is trained for ``epochs`` steps as in :func:`fit_toy_regression` with ``p = 0``, its
    validation loss recorded every ``eval_every`` steps; the step with the lowest one is chosen, and
    the same run (same seed, full batch, so the same trajectory) is replayed up to that step. The
    budget is one training run of ``epochs`` steps, as for dropout, plus the validation points.

    Returns:
        A :class:`ToyFit` labelled ``"early stopping"``, with ``stopped_at`` the chosen step and the
        ``history`` of the replayed run.

    Example:
        >>> stopped = early_stopped_fit(hidden=(16,), epochs=40)
        >>> stopped.stopped_at in range(10, 41, 10)
        True
    """
    seed = check_seed(seed)
    data = toy_regression(seed=seed)
    validation = _validation_split(seed)
    watched = fit_toy_regression(0.0, seed=seed, data=validation, hidden=hidden, epochs=epochs, lr=lr,
                                 eval_every=eval_every).history
    step = watched.epoch[int(np.argmin(watched.test_loss))]
    replay = fit_toy_regression(0.0, seed=seed, data=data, hidden=hidden, epochs=step, lr=lr,
                                eval_every=eval_every)
    return ToyFit(
        label="early stopping",
        p=0.0,
        seed=seed,
        prediction=replay.prediction,
        train_loss=replay.train_loss,
        test_loss=replay.test_loss,
        roughness=replay.roughness,
        n_parameters=replay.n_parameters,
        history=replay.history,
        stopped_at=step,
    )


def _validation_split(seed: int) -> Split:
    """The draw's training points, with ten fresh noisy points at the same inputs as its test set."""
    data = toy_regression(seed=seed)
    held_out = toy_regression(seed=seed + VALIDATION_OFFSET)
    return Split(data.x_train, data.y_train, held_out.x_train, held_out.y_train, name="validation")


def tuned_weight_decay_fits(
    seeds: Sequence[int],
    *,
    weight_decays: Sequence[float] = WEIGHT_DECAY_GRID,
    hidden: Sequence[int] = HIDDEN,
    epochs: int = EPOCHS,
    lr: float = LR,
) -> list[ToyFit]:
    r"""Weight decay tuned on a validation set: for each seed, the network without dropout trained
    with every penalty of ``weight_decays``, and the one whose validation loss is lowest.

    Each run is :func:`fit_toy_regression` with ``p = 0`` plus an L2 term: full-batch Adam on

    .. math::

        \frac{1}{10}\sum_{i=1}^{10} \big(f_\theta(x_i) - y_i\big)^2 + \frac{\lambda}{2}\|\theta\|^2

    (the gradient gains :math:`\lambda\theta`, as with ``torch.optim.Adam(weight_decay=λ)``), for
    ``epochs`` steps, from the same initial weights as ``fit_toy_regression(0.0, seed=seed)``. All
    seeds and penalties are members of one :class:`~dropoutlib.course.batched.BatchedMLP`, so the
    whole grid costs about one batched run. The validation points are those of
    :func:`early_stopped_fit` (ten fresh noisy points at the training inputs); the penalty with the
    lowest validation loss after the last step is kept, and the test grid plays no part in choosing
    it. The budget per run is that of dropout; tuning costs ``len(weight_decays)`` runs.

    Returns:
        One :class:`ToyFit` per seed, labelled ``"weight decay, tuned"``, with ``weight_decay`` the
        chosen penalty.

    Example:
        >>> fits = tuned_weight_decay_fits([0, 1], weight_decays=[1e-2, 1e3], hidden=(16,), epochs=40)
        >>> [fit.weight_decay for fit in fits]  # a penalty of 1000 flattens the fit: never chosen
        [0.01, 0.01]
    """
    from dropoutlib.course.batched import BatchedMLP

    if isinstance(seeds, (str, int)) or not isinstance(seeds, Sequence) or len(seeds) == 0:
        raise TypeError(f"seeds must be a non-empty sequence of seeds, got seeds={seeds!r}")
    seeds = [check_seed(s) for s in seeds]
    if isinstance(weight_decays, str) or not isinstance(weight_decays, Sequence) or not weight_decays:
        raise TypeError(f"weight_decays must be a non-empty sequence of penalties, got {weight_decays!r}")
    decays = [float(lam) for lam in weight_decays]
    for lam in decays:
        if not np.isfinite(lam) or lam <= 0:
            raise ValueError(f"weight_decays must hold finite numbers > 0, got {lam!r}")
    epochs = check_positive_int(epochs, "epochs")
    k = len(decays)
    model = BatchedMLP(1, list(hidden), 1, seeds=[seed for seed in seeds for _ in decays])
    with torch.no_grad():  # the initial weights of fit_toy_regression(0.0, seed=seed), k members each
        for i, seed in enumerate(seeds):
            torch.manual_seed(seed)
            linears = [layer for layer in mlp(1, list(hidden), 1) if isinstance(layer, nn.Linear)]
            for weight, bias, linear in zip(model.weights, model.biases, linears, strict=True):
                weight[i * k : (i + 1) * k] = linear.weight.T
                bias[i * k : (i + 1) * k, 0] = linear.bias
    data = [toy_regression(seed=seed) for seed in seeds]
    splits = [_validation_split(seed) for seed in seeds]

    def per_member(tensors: list[torch.Tensor]) -> torch.Tensor:
        return torch.stack(tensors).repeat_interleave(k, dim=0)

    x, y = per_member([s.x_train for s in splits]), per_member([s.y_train for s in splits])
    decay = torch.tensor(decays * len(seeds))
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()  # no dropout anywhere: training and evaluation mode compute the same function
    for _ in range(epochs):
        optimizer.zero_grad(set_to_none=True)
        (model(x) - y).pow(2).mean(dim=(1, 2)).sum().backward()
        model.add_weight_decay(decay)
        optimizer.step()
    model.eval()
    with torch.no_grad():
        train_predictions = model(x)
        validation = (train_predictions - per_member([s.y_test for s in splits])).pow(2).mean(dim=(1, 2))
        test_predictions = model(data[0].x_test)
    n_parameters = sum(parameter[0].numel() for parameter in model.parameters())
    chosen = validation.view(len(seeds), k).argmin(dim=1)
    fits = []
    for i, seed in enumerate(seeds):
        m = i * k + int(chosen[i])
        fit = _summarize("weight decay, tuned", 0.0, seed, data[i], train_predictions[m],
                         test_predictions[m], n_parameters, 1, None)
        fits.append(replace(fit, weight_decay=decays[int(chosen[i])]))
    return fits


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
        resample = Split(
            data.x_train[rows],
            data.y_train[rows],
            data.x_test,
            data.y_test,
            name=f"{data.name} (bootstrap)" if bootstrap else data.name,
        )
        model, _ = _train(resample, hidden, 0.0, member_seed, epochs, lr, False, epochs)
        train_sum += _predict(model, data.x_train)
        test_sum += _predict(model, data.x_test)
        n_parameters += sum(parameter.numel() for parameter in model.parameters())
    return _summarize(
        f"bagging, k = {k}", 0.0, seed, data, train_sum / k, test_sum / k, n_parameters, k, None
    )


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

    check_split(data)
    fits = list(fits)
    if colors is None:
        palette = [COLORS["baseline"], COLORS["dropout"], COLORS["accent"], "0.35", "tab:purple"]
        colors = [palette[i % len(palette)] for i in range(len(fits))]
    x_test = data.x_test[:, 0].numpy()
    ax.scatter(
        x_test,
        data.y_test[:, 0].numpy(),
        s=7,
        color=COLORS["test"],
        alpha=0.35,
        label="test points",
        zorder=1,
    )
    ax.scatter(
        data.x_train[:, 0].numpy(),
        data.y_train[:, 0].numpy(),
        s=45,
        color=COLORS["train"],
        edgecolor="white",
        linewidth=0.8,
        label="training points",
        zorder=4,
    )
    if show_truth:
        ax.plot(x_test, 1.5 * x_test, "--", color="0.45", lw=1.2, label="true line y = 1.5x", zorder=2)
    for result, color in zip(fits, colors, strict=True):
        ax.plot(x_test, result.prediction.numpy(), color=color, lw=2.2, label=result.label, zorder=3)
    ax.set_xlabel("input x")
    ax.set_ylabel("output y")
    if legend:
        ax.legend(loc="upper left", fontsize=8)


# --------------------------------------------------------------------------------------------------
# The chapter's claims. Every threshold they use is one of these constants or written in them.
# --------------------------------------------------------------------------------------------------

#: Without dropout the training loss is "near zero": below this.
NEAR_ZERO = 0.02
#: ... and far below the true line's training loss: below it divided by this.
INTERPOLATION_FACTOR = 10
#: With dropout the training loss stays "at the noise scale": above the line's divided by this.
NOISE_FACTOR = 10
#: Where dropout loses on a draw it loses "by little": less than its mean gain divided by this.
LOSS_GAIN_RATIO = 5
#: A paired mean change over draws "is an effect" beyond this many standard errors, "noise" within.
SE_MULTIPLE = 2
#: A fit "is a straight line" when its largest second difference on the grid is below this.
LINE_TOLERANCE = 1e-4


def _method(result: ToyFit) -> str:
    return "bagging" if result.n_networks > 1 else "dropout"


def fit_claims(baseline: ToyFit, dropped: ToyFit, line_train: float) -> list[Claim]:
    """The claims of the chapter's first fits that hold on every draw of the data.

    Without dropout the network interpolates: its training loss is below :data:`NEAR_ZERO` and below
    ``line_train / INTERPOLATION_FACTOR`` (``line_train``: the true line's training MSE), and its test
    loss is lowest before the end of training. With dropout the fit is smoother (lower
    :func:`total_variation`) and the training loss stays above ``line_train / NOISE_FACTOR``. That
    dropout also lowers the test loss holds on most draws only: see :func:`loss_gain_claims`.

    Example:
        >>> base = fit_toy_regression(0.0, hidden=(8,), epochs=5)
        >>> len(fit_claims(base, base, 0.25)), fit_claims(base, base, 0.25)[2].holds
        (5, False)
    """
    history = baseline.history
    best = int(np.argmin(history.test_loss))
    best_step, last_step = history.epoch[best], history.epoch[-1]
    lowest, final = history.test_loss[best], history.test_loss[-1]
    return [
        below("without dropout the training loss is near zero", baseline.train_loss, NEAR_ZERO),
        below(
            "without dropout the fit beats the true line on the ten points",
            baseline.train_loss,
            line_train / INTERPOLATION_FACTOR,
        ),
        below("dropout gives the smoother fit", dropped.roughness, baseline.roughness),
        above(
            "with dropout the training loss stays at the noise scale",
            dropped.train_loss,
            line_train / NOISE_FACTOR,
        ),
        Claim(
            "without dropout the test loss is lowest before the end of training",
            best_step < last_step and lowest < final,
            f"{lowest:.4f} at step {best_step}, {final:.4f} at step {last_step}",
        ),
    ]


def loss_gain_claims(baseline: ToyFit, other: ToyFit) -> list[Claim]:
    """The claim, for one draw of the data, that ``other`` (dropout or bagging) lowers the test loss.

    It holds on most draws, not on all: over several draws, :func:`loss_gain_claims_over_draws`.

    Example:
        >>> base = fit_toy_regression(0.0, hidden=(8,), epochs=5)
        >>> print(loss_gain_claims(base, base)[0])
        ✗ dropout lowers the test loss on this draw (... < ...)
    """
    return [below(f"{_method(other)} lowers the test loss on this draw", other.test_loss, baseline.test_loss)]


@dataclass(frozen=True)
class DrawComparison:
    """The test losses of fits without (``base``) and with a regularizer (``other``) over draws.

    Attributes:
        n: the number of draws.
        wins: on how many draws the regularizer has the lower test loss.
        mean_base, mean_other: the mean test losses over the draws.
        worst_loss: the largest increase of the test loss, ``max(other - base)`` (negative when the
            regularizer wins on every draw).
        mean_gain: the mean decrease of the test loss over the draws it wins (nan if none).
    """

    n: int
    wins: int
    mean_base: float
    mean_other: float
    worst_loss: float
    mean_gain: float


def compare_draws(pairs: Sequence[tuple[ToyFit, ToyFit]]) -> DrawComparison:
    """Compare the test losses of ``(base, other)`` pairs of fits, one pair per draw of the data.

    Example:
        >>> short = fit_toy_regression(0.0, hidden=(8,), epochs=5)
        >>> longer = fit_toy_regression(0.0, hidden=(8,), epochs=50)
        >>> comparison = compare_draws([(short, longer)])
        >>> comparison.n, comparison.wins
        (1, 1)
    """
    pairs = list(pairs)
    if not pairs:
        raise ValueError("pairs must hold at least one (base, other) pair of fits")
    changes = [other.test_loss - base.test_loss for base, other in pairs]
    gains = [-change for change in changes if change < 0]
    return DrawComparison(
        n=len(pairs),
        wins=len(gains),
        mean_base=float(np.mean([base.test_loss for base, _ in pairs])),
        mean_other=float(np.mean([other.test_loss for _, other in pairs])),
        worst_loss=max(changes),
        mean_gain=float(np.mean(gains)) if gains else float("nan"),
    )


def loss_gain_claims_over_draws(pairs: Sequence[tuple[ToyFit, ToyFit]]) -> list[Claim]:
    """Over ``n`` draws, the regularizer lowers the test loss on at least ``n - 1`` and on average.

    ``pairs`` holds one ``(base, other)`` pair of fits per draw (``other``: dropout or bagging).

    Example:
        >>> base = fit_toy_regression(0.0, hidden=(8,), epochs=5)
        >>> [claim.holds for claim in loss_gain_claims_over_draws([(base, base)])]
        [True, False]
    """
    comparison = compare_draws(pairs)
    name, n = _method(pairs[0][1]), comparison.n
    return [
        Claim(
            f"{name} lowers the test loss on at least {n - 1} of {n} draws",
            comparison.wins >= n - 1,
            f"{comparison.wins} of {n}",
        ),
        below(
            f"{name} lowers the mean test loss over the draws", comparison.mean_other, comparison.mean_base
        ),
    ]


def paired_test_losses(
    base: Sequence[ToyFit], other: Sequence[ToyFit]
) -> tuple[float, float]:
    """Mean and standard error of the paired test-loss change ``other - base``, one pair per draw.

    Example:
        >>> short = fit_toy_regression(0.0, hidden=(8,), epochs=5)
        >>> paired_test_losses([short], [short])
        (0.0, 0.0)
    """
    mean, _, se = paired_gain([fit.test_loss for fit in base], [fit.test_loss for fit in other])
    return mean, se


def _effect(name: str, base: Sequence[ToyFit], other: Sequence[ToyFit]) -> Claim:
    mean, se = paired_test_losses(base, other)
    return Claim(
        f"{name} over {len(base)} draws, by more than {SE_MULTIPLE} standard errors",
        mean < -SE_MULTIPLE * se,
        f"change {mean:+.4f} ± {se:.4f}",
    )


def _no_effect(name: str, base: Sequence[ToyFit], other: Sequence[ToyFit]) -> Claim:
    mean, se = paired_test_losses(base, other)
    return Claim(
        f"{name} over {len(base)} draws: within {SE_MULTIPLE} standard errors of zero",
        abs(mean) < SE_MULTIPLE * se,
        f"change {mean:+.4f} ± {se:.4f}",
    )


def draws_claims(pairs: Sequence[tuple[ToyFit, ToyFit]]) -> list[Claim]:
    """The chapter's claims over several draws, from ``(baseline, dropped)`` pairs, one per draw.

    On every draw the network without dropout interpolates (training loss below :data:`NEAR_ZERO`)
    and dropout gives the smoother fit; over the draws dropout lowers the test loss by more than
    :data:`SE_MULTIPLE` standard errors of the paired difference; and where it loses, it loses less
    than its mean gain where it wins divided by :data:`LOSS_GAIN_RATIO`.

    Example:
        >>> base = fit_toy_regression(0.0, hidden=(8,), epochs=5)
        >>> len(draws_claims([(base, base)]))
        4
    """
    pairs = list(pairs)
    comparison = compare_draws(pairs)
    n = comparison.n
    smoother = sum(drop.roughness < base.roughness for base, drop in pairs)
    return [
        below(
            "without dropout the training loss is near zero on every draw",
            max(base.train_loss for base, _ in pairs),
            NEAR_ZERO,
        ),
        Claim("dropout gives the smoother fit on every draw", smoother == n, f"{smoother} of {n}"),
        _effect("dropout lowers the test loss", [b for b, _ in pairs], [d for _, d in pairs]),
        below(
            "where dropout loses, it loses by little next to its mean gain",
            comparison.worst_loss,
            comparison.mean_gain / LOSS_GAIN_RATIO,
        ),
    ]


def controls_claims(
    base: Sequence[ToyFit],
    dropped: Sequence[ToyFit],
    stopped: Sequence[ToyFit],
    decayed: Sequence[ToyFit],
    bagged: Sequence[ToyFit],
) -> list[Claim]:
    """Dropout against its baselines over the same draws (one fit of each kind per draw).

    Early stopping on a validation set (:func:`early_stopped_fit`) and weight decay tuned on it
    (:func:`tuned_weight_decay_fits`) each lower the test loss of the network without dropout by
    more than :data:`SE_MULTIPLE` standard errors, and neither can be told apart from dropout (the
    paired difference is within :data:`SE_MULTIPLE` standard errors of zero); the tuned penalty is
    never an end of :data:`WEIGHT_DECAY_GRID`. Nor can bagging and dropout be told apart, and
    bagging's gain over no dropout is within the noise too.

    Example:
        >>> base = fit_toy_regression(0.0, hidden=(8,), epochs=5)
        >>> [claim.holds for claim in controls_claims([base], [base], [base], [base], [base])]
        [False, False, False, False, False, False, False]
    """
    chosen = [fit.weight_decay for fit in decayed]
    inside = sum(WEIGHT_DECAY_GRID[0] < lam < WEIGHT_DECAY_GRID[-1] for lam in chosen if lam is not None)
    return [
        _effect("early stopping lowers the test loss", base, stopped),
        _no_effect("dropout against early stopping", stopped, dropped),
        _effect("tuned weight decay lowers the test loss", base, decayed),
        _no_effect("dropout against tuned weight decay", decayed, dropped),
        Claim(
            "the validation set never chooses an end of the weight-decay grid",
            inside == len(decayed),
            f"{inside} of {len(decayed)} inside {WEIGHT_DECAY_GRID[0]:g} .. {WEIGHT_DECAY_GRID[-1]:g}",
        ),
        _no_effect("bagging against dropout", dropped, bagged),
        _no_effect("bagging against no dropout", base, bagged),
    ]


def sweep_claims(fits: dict[float, ToyFit], line_train: float, line_tv: float) -> list[Claim]:
    """The claims of the sweep over ``p`` (``fits``: one fit per ``p``, including 0, 0.5 and 0.9).

    The best test loss comes at a ``p`` strictly inside the grid; from ``p = 0`` to 0.5 to the
    largest ``p`` the training loss grows and the fit flattens; the largest ``p`` does worse on the
    test set than 0.5 and underfits: a training loss above the true line's (``line_train``) and a
    total variation below half the line's (``line_tv``).

    Example:
        >>> fits = {p: fit_toy_regression(p, hidden=(8,), epochs=5) for p in (0.0, 0.5, 0.9)}
        >>> len(sweep_claims(fits, 0.25, 3.0))
        6
    """
    ps = sorted(fits)
    low, mid, high = fits[ps[0]], fits[0.5], fits[ps[-1]]
    best_p = min(ps, key=lambda p: fits[p].test_loss)
    return [
        Claim(
            "the best p lies strictly inside the grid",
            ps[0] < best_p < ps[-1],
            f"best p = {best_p:g}, grid {ps[0]:g} to {ps[-1]:g}",
        ),
        Claim(
            f"the training loss grows with p (p = {ps[0]:g}, 0.5, {ps[-1]:g})",
            low.train_loss < mid.train_loss < high.train_loss,
            f"{low.train_loss:.4f} < {mid.train_loss:.4f} < {high.train_loss:.4f}",
        ),
        Claim(
            f"the fit gets flatter with p (p = {ps[0]:g}, 0.5, {ps[-1]:g})",
            low.roughness > mid.roughness > high.roughness,
            f"{low.roughness:.4f} > {mid.roughness:.4f} > {high.roughness:.4f}",
        ),
        above(f"p = {ps[-1]:g} does worse on the test set than 0.5", high.test_loss, mid.test_loss),
        above(
            f"p = {ps[-1]:g} underfits: a training loss above the true line's", high.train_loss, line_train
        ),
        below(
            f"p = {ps[-1]:g} is nearly flat: under half the line's total variation",
            high.roughness,
            line_tv / 2,
        ),
    ]


def ensemble_claims(baseline: ToyFit, bagged: ToyFit, dropped: ToyFit) -> list[Claim]:
    """The claims of the bagging section for one draw: bagging smooths the fit; and its test
    loss against dropout's on this draw (the chapter's draw; over draws see :func:`controls_claims`).

    Example:
        >>> base = fit_toy_regression(0.0, hidden=(8,), epochs=5)
        >>> bag = bagged_ensemble(2, hidden=(8,), epochs=5)
        >>> len(ensemble_claims(base, bag, base))
        2
    """
    return [
        below("bagging smooths the fit", bagged.roughness, baseline.roughness),
        below("on this draw bagging beats dropout on the test set", bagged.test_loss, dropped.test_loss),
    ]


def straight_line_claims(prediction: torch.Tensor, line: torch.Tensor | None = None) -> list[Claim]:
    """A network without activations computes a straight line (exercise 6).

    ``prediction`` is its output on the evenly spaced test grid: its largest second difference is
    below :data:`LINE_TOLERANCE`. With ``line`` (the line ``w x + b`` read off the weights, on the
    same grid) the prediction is also that line, within the same tolerance.

    Example:
        >>> x = torch.linspace(-1, 1, 200, dtype=torch.float64)
        >>> print(straight_line_claims(2 * x + 1)[0])
        ✓ without activations the network computes a straight line (... < 0.0001)
    """
    prediction = torch.as_tensor(prediction, dtype=torch.float64).flatten()
    curvature = prediction.diff().diff().abs().max().item()
    claims = [below("without activations the network computes a straight line", curvature, LINE_TOLERANCE)]
    if line is not None:
        line = torch.as_tensor(line, dtype=torch.float64).flatten()
        gap = (prediction - line).abs().max().item()
        claims.append(below("it is the line that its weights give", gap, LINE_TOLERANCE))
    return claims
