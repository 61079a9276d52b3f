"""Looking inside a network while it trains: the hidden activations of an MLP, with and without dropout.

The measurements behind chapter 7 ("Sparse activations and the variance of a layer"):

- :func:`hidden_modules` finds the activation module of each hidden layer of an :func:`~course.mlp`;
  :func:`layer_activations` runs one forward pass with forward hooks on them and returns what each
  hidden layer computed, in evaluation mode (dropout off) or in training mode (dropout on).
- :func:`active_units`, :func:`dead_units` and :func:`layer_statistics` summarize one layer's
  activations ``A`` of shape ``(n_examples, width)``: the number of units with ``A > 0`` per example,
  the units that are never positive, and the mean, standard deviation and variance of all entries.
- :class:`ActivationRecorder` listens, with forward hooks, to the evaluation passes that
  :func:`~course.fit` already makes on the test set every ``eval_every`` epochs and keeps the
  statistics of each layer: the training loop is not touched and no extra forward pass is made.
- :func:`activation_experiment` trains one MLP on the digits with the recorder attached and returns an
  :class:`ActivationRun`; :func:`plot_trace` and :func:`plot_histograms` draw what it recorded.

Notation: ``p`` is the probability of dropping a unit, ``q = 1 - p`` the probability of keeping it.
A unit is *active* on an example when its activation is positive (for ReLU: its pre-activation is).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from dropoutlib._modes import restored_modes
from dropoutlib._validation import check_floating, check_positive_int, check_probability
from dropoutlib.course.claims import Claim, above, below
from dropoutlib.course.data import Split, check_split, load_digits
from dropoutlib.course.models import mlp
from dropoutlib.course.seeding import check_seed, seed_everything
from dropoutlib.course.train import History, fit

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "BATCH_SIZE",
    "EPOCHS",
    "EVAL_EVERY",
    "HIDDEN",
    "LR",
    "MID",
    "N_SE",
    "N_VALIDATION",
    "P",
    "SEEDS",
    "STATISTICS",
    "ActivationRecorder",
    "ActivationRun",
    "ActivationTrace",
    "accuracy_claims",
    "activation_experiment",
    "active_unit_claims",
    "active_units",
    "dead_counts",
    "dead_unit_claims",
    "dead_units",
    "early_stopping_claims",
    "early_stopping_comparison",
    "WEIGHT_DECAY_GRID",
    "growth",
    "growth_claims",
    "hidden_modules",
    "histogram_claims",
    "layer_activations",
    "layer_statistics",
    "positive_means",
    "predicted_train_variance",
    "seed_claims",
    "seed_differences",
    "variance_claims",
    "variances",
    "plot_histograms",
    "plot_trace",
]

#: Hidden widths of the chapter's MLP (64 inputs, 10 classes): 64-256-128-64-10.
HIDDEN: tuple[int, ...] = (256, 128, 64)
#: Drop probability of the dropout model (after every hidden ReLU).
P = 0.5
#: Training: epochs, minibatch size and Adam's learning rate.
EPOCHS = 60
BATCH_SIZE = 256
LR = 1e-3
#: Statistics are recorded every this many epochs (and before training).
EVAL_EVERY = 3
#: "The second half of training" runs from this epoch to the end.
MID = EPOCHS // 2

#: The per-layer statistics that :func:`layer_statistics` computes and a trace records.
STATISTICS: tuple[str, ...] = ("active", "active_fraction", "mean", "std", "variance", "dead")


def _check_activations(activations: Any, name: str = "activations") -> torch.Tensor:
    check_floating(activations, name)
    if activations.ndim != 2 or activations.shape[0] == 0:
        raise ValueError(
            f"{name} must have shape (n_examples, width) with n_examples >= 1, "
            f"got shape {tuple(activations.shape)}"
        )
    return activations


def active_units(activations: torch.Tensor) -> torch.Tensor:
    r"""The number of active units of each example: :math:`k_i = \#\{j : A_{ij} > 0\}`.

    Args:
        activations: one layer's activations ``A``, shape ``(n_examples, width)``.

    Returns:
        An int64 tensor of shape ``(n_examples,)``.

    Example:
        >>> active_units(torch.tensor([[0.0, 1.5, 2.0], [0.0, 0.0, 0.3]]))
        tensor([2, 1])
    """
    activations = _check_activations(activations)
    return (activations > 0).sum(dim=1)


def dead_units(activations: torch.Tensor) -> torch.Tensor:
    r"""Which units are *dead* on these examples: never active, :math:`A_{ij} \le 0` for every ``i``.

    A dead ReLU unit passes no gradient back from any of these examples either (the derivative of
    ReLU is 0 where its input is negative), so on these data it cannot come back to life.

    Args:
        activations: one layer's activations ``A``, shape ``(n_examples, width)``.

    Returns:
        A bool tensor of shape ``(width,)``, True for the dead units.

    Example:
        >>> dead_units(torch.tensor([[0.0, 1.5, 0.0], [0.0, 0.0, 0.3]]))
        tensor([ True, False, False])
    """
    activations = _check_activations(activations)
    return ~(activations > 0).any(dim=0)


def layer_statistics(activations: torch.Tensor) -> dict[str, float]:
    r"""Summary statistics of one layer's activations ``A`` (shape ``(n, width)``).

    - ``active``: mean number of active units per example, :math:`\frac1n\sum_i k_i`
      (:func:`active_units`); ``active_fraction``: the same divided by the width;
    - ``mean``, ``std``, ``variance``: of all :math:`n \cdot \text{width}` entries together (zeros
      included; population variance, divided by the number of entries), as the source measured them;
    - ``dead``: the number of units never active on these examples (:func:`dead_units`).

    Returns:
        A dict with the keys of :data:`STATISTICS`, values as Python floats.

    Example:
        >>> stats = layer_statistics(torch.tensor([[0.0, 2.0], [0.0, 4.0]]))
        >>> stats["active"], stats["mean"], stats["variance"], stats["dead"]
        (1.0, 1.5, 2.75, 1.0)
    """
    activations = _check_activations(activations).detach().double()
    width = activations.shape[1]
    active = active_units(activations).double().mean().item()
    return {
        "active": active,
        "active_fraction": active / width,
        "mean": activations.mean().item(),
        "std": activations.std(correction=0).item(),
        "variance": activations.var(correction=0).item(),
        "dead": float(dead_units(activations).sum().item()),
    }


def hidden_modules(model: nn.Module, *, after_dropout: bool = False) -> list[nn.Module]:
    """The module whose output is each hidden layer's activation, in an ``nn.Sequential`` MLP.

    For the layout of :func:`~course.mlp` (``Linear act [Dropout] ... Linear``) these are the
    modules right after every ``Linear`` but the last (the activations). With ``after_dropout=True``
    a hidden layer followed by an ``nn.Dropout`` (or :class:`dropoutlib.Dropout`) is represented by
    that dropout module instead: its output is what the next layer receives (the same as the
    activation in evaluation mode; thinned and scaled by ``1/q`` in training mode).

    Example:
        >>> model = mlp(64, [32, 16], 10, p=0.5)
        >>> [type(m).__name__ for m in hidden_modules(model)]
        ['ReLU', 'ReLU']
        >>> [type(m).__name__ for m in hidden_modules(model, after_dropout=True)]
        ['Dropout', 'Dropout']
    """
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"model must be an nn.Sequential MLP, got {type(model).__name__}")
    layers = list(model)
    linear_positions = [i for i, layer in enumerate(layers) if isinstance(layer, nn.Linear)]
    if not linear_positions:
        raise ValueError("model has no nn.Linear layer: it is not an MLP")
    found = []
    for position in linear_positions[:-1]:
        index = position + 1
        if index >= len(layers) or isinstance(layers[index], nn.Linear):
            raise ValueError(f"the Linear layer at index {position} is not followed by an activation")
        follower = layers[index + 1] if index + 1 < len(layers) else None
        if after_dropout and "dropout" in type(follower).__name__.lower():
            index += 1
        found.append(layers[index])
    return found


def layer_activations(
    model: nn.Module, x: torch.Tensor, *, training: bool = False, after_dropout: bool = False
) -> list[torch.Tensor]:
    """Each hidden layer's activations on ``x``, read with forward hooks during one forward pass.

    Args:
        model: an ``nn.Sequential`` MLP (see :func:`hidden_modules`).
        x: inputs, shape ``(n, in_features)``.
        training: run the pass in training mode (dropout on, masks from torch's global generator:
            seed it first) instead of evaluation mode. Every submodule's mode is restored afterwards.
        after_dropout: read each layer after its dropout module (what the next layer receives).

    Returns:
        One tensor of shape ``(n, width)`` per hidden layer, detached.

    Example:
        >>> _ = torch.manual_seed(0)
        >>> model = mlp(4, [8, 6], 3, p=0.5)
        >>> [tuple(a.shape) for a in layer_activations(model, torch.randn(5, 4))]
        [(5, 8), (5, 6)]
    """
    check_floating(x, "x")
    modules = hidden_modules(model, after_dropout=after_dropout)
    outputs: list[torch.Tensor] = []
    handles = [
        module.register_forward_hook(lambda _m, _i, out: outputs.append(out.detach().clone()))
        for module in modules
    ]
    try:
        with restored_modes(model), torch.no_grad():
            model.train(training)
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    return outputs


@dataclass(frozen=True, eq=False)
class ActivationTrace:
    """Per-layer statistics of the hidden activations, recorded at several epochs.

    Attributes:
        epoch: the epochs at which the statistics were recorded (0: before training), shape ``(R,)``.
        widths: the widths of the hidden layers.
        stats: for each name in :data:`STATISTICS`, an array of shape ``(R, n_layers)``.

    Example:
        >>> trace = ActivationTrace(np.array([0, 3]), (2,), {"mean": np.array([[0.5], [0.7]])})
        >>> trace["mean"][:, 0].tolist(), trace.at(3, "mean").tolist()
        ([0.5, 0.7], [0.7])
    """

    epoch: np.ndarray
    widths: tuple[int, ...]
    stats: dict[str, np.ndarray]

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self.stats:
            raise KeyError(f"no statistic {name!r}; recorded: {sorted(self.stats)}")
        return self.stats[name]

    def at(self, epoch: int, name: str) -> np.ndarray:
        """The statistic ``name`` of every layer at the recorded epoch closest to ``epoch``."""
        row = int(np.argmin(np.abs(self.epoch - epoch)))
        return self[name][row]


class ActivationRecorder:
    """Record per-layer activation statistics whenever ``model`` runs in evaluation mode on ``probe``.

    Used as a context manager around :func:`~course.fit`: fit evaluates the model on the whole
    test set every ``eval_every`` epochs, in evaluation mode; with ``probe=data.x_test`` the recorder
    keeps :func:`layer_statistics` of every hidden layer at each of those passes. Forward hooks do the
    work (a pre-hook on the model recognizes the probe, by shape and storage; hooks on the hidden
    activations compute the statistics), so the training loop is unchanged, and passes in training
    mode, on minibatches or on other data are ignored. Call :meth:`snapshot` for a record outside
    fit (before training, for instance).

    Example:
        >>> _ = torch.manual_seed(0)
        >>> model, probe = mlp(4, [8], 2, p=0.5), torch.randn(20, 4)
        >>> with ActivationRecorder(model, probe) as recorder:
        ...     recorder.snapshot()
        ...     _ = model.train()(probe)  # training mode: not recorded
        ...     _ = model.eval()(probe)   # recorded
        >>> len(recorder.records), sorted(recorder.records[0][0]) == sorted(STATISTICS)
        (2, True)
    """

    def __init__(self, model: nn.Module, probe: torch.Tensor) -> None:
        check_floating(probe, "probe")
        self.model = model
        self.probe = probe
        self.modules = hidden_modules(model)
        #: One entry per recorded pass: a list with one statistics dict per hidden layer.
        self.records: list[list[dict[str, float]]] = []
        self._current: list[dict[str, float]] | None = None
        self._handles: list[Any] = []

    def _is_probe(self, x: torch.Tensor) -> bool:
        return (
            isinstance(x, torch.Tensor)
            and x.shape == self.probe.shape
            and x.device == self.probe.device
            and (x is self.probe or x.data_ptr() == self.probe.data_ptr())
        )

    def _before(self, model: nn.Module, inputs: tuple[Any, ...]) -> None:
        if not model.training and inputs and self._is_probe(inputs[0]):
            self._current = []

    def _after(self, _model: nn.Module, _inputs: Any, _output: Any) -> None:
        if self._current is not None:
            self.records.append(self._current)
            self._current = None

    def _layer(self, _module: nn.Module, _inputs: Any, output: torch.Tensor) -> None:
        if self._current is not None:
            self._current.append(layer_statistics(output))

    def __enter__(self) -> ActivationRecorder:
        self._handles = [
            self.model.register_forward_pre_hook(self._before),
            self.model.register_forward_hook(self._after),
            *(module.register_forward_hook(self._layer) for module in self.modules),
        ]
        return self

    def __exit__(self, *exc: Any) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def snapshot(self) -> None:
        """Run the model once on the probe in evaluation mode (restoring its mode) and record it."""
        if not self._handles:
            raise RuntimeError("use the recorder as a context manager: `with ActivationRecorder(...)`")
        with restored_modes(self.model), torch.no_grad():
            self.model.eval()
            self.model(self.probe)

    def trace(self, epochs: Sequence[int]) -> ActivationTrace:
        """The records as an :class:`ActivationTrace`, labelled with ``epochs`` (one per record)."""
        if len(epochs) != len(self.records):
            raise ValueError(f"got {len(epochs)} epochs for {len(self.records)} records")
        widths = tuple(module.out_features for module in self.model if isinstance(module, nn.Linear))
        stats = {
            name: np.array([[layer[name] for layer in record] for record in self.records])
            for name in STATISTICS
        }
        return ActivationTrace(np.asarray(epochs), widths[:-1], stats)


@dataclass(frozen=True, eq=False)
class ActivationRun:
    """One trained MLP and what was measured inside it (see :func:`activation_experiment`).

    Attributes:
        p: drop probability after every hidden ReLU (0: no dropout).
        seed: the seed of the initial weights, the dropout masks and the minibatch order.
        model: the trained network (in evaluation mode).
        history: losses and accuracies per epoch (:class:`~dropoutlib.course.train.History`).
        trace: activation statistics on the test set over training, evaluation mode.
        activations: each hidden layer's activations on the test set after training, evaluation mode.
        train_mode_activations: what each hidden layer passes on (after its dropout) on the test set
            after training, in training mode, one draw of the masks (the same as ``activations``
            without dropout).
    """

    p: float
    seed: int
    model: nn.Module
    history: History
    trace: ActivationTrace
    activations: list[torch.Tensor]
    train_mode_activations: list[torch.Tensor]

    @property
    def label(self) -> str:
        """``"no dropout"`` or ``"p = 0.5"``."""
        return "no dropout" if self.p == 0 else f"p = {self.p:g}"


def activation_experiment(
    p: float = P,
    *,
    seed: int = 0,
    hidden: Sequence[int] = HIDDEN,
    epochs: int = EPOCHS,
    batch_size: int = BATCH_SIZE,
    lr: float = LR,
    eval_every: int = EVAL_EVERY,
    data: Split | None = None,
    progress: bool = False,
) -> ActivationRun:
    """Train an MLP on the digits and record its hidden activations on the test set over training.

    The network is ``mlp(64, hidden, 10, p=p)`` (ReLU, dropout ``p`` after each hidden ReLU), built
    right after ``seed_everything(seed)``, so runs with the same seed start from the same weights
    whatever ``p``. It is trained by :func:`~course.fit` (Adam, learning rate ``lr``, minibatches
    of ``batch_size``) with an :class:`ActivationRecorder` on the test set, which records before
    training and every ``eval_every`` epochs, in evaluation mode. After training, the test set's
    activations are read once in evaluation mode and once in training mode (masks seeded by
    ``seed``).

    Args:
        p: drop probability (0 for the baseline).
        seed: seeds the weights, the masks and the minibatch order.
        hidden, epochs, batch_size, lr, eval_every: the network and its training.
        data: the data (default: ``load_digits()``, standardized with training statistics).
        progress: show fit's progress bar.

    Example:
        >>> run = activation_experiment(0.5, hidden=(16,), epochs=2, eval_every=1)
        >>> run.trace.epoch.tolist(), run.trace["active"].shape, run.label
        ([0, 1, 2], (3, 1), 'p = 0.5')
    """
    p = check_probability(p)
    seed = check_seed(seed)
    eval_every = check_positive_int(eval_every, "eval_every")
    data = check_split(data, load_digits)
    seed_everything(seed)
    n_classes = int(torch.cat([data.y_train, data.y_test]).max().item()) + 1
    model = mlp(data.n_features, list(hidden), n_classes, p=p)
    with ActivationRecorder(model, data.x_test) as recorder:
        recorder.snapshot()
        history = fit(
            model,
            data,
            epochs=epochs,
            lr=lr,
            batch_size=batch_size,
            seed=seed,
            progress=progress,
            eval_every=eval_every,
        )
    trace = recorder.trace([0, *history.epoch])
    activations = layer_activations(model, data.x_test)
    torch.manual_seed(seed)
    train_mode = layer_activations(model, data.x_test, training=True, after_dropout=True)
    return ActivationRun(p, seed, model, history, trace, activations, train_mode)


# --- what the chapter measures on two runs, and its claims ------------------------------------------


def growth(run: ActivationRun, statistic: str, mid: int = MID) -> np.ndarray:
    r"""Relative change of a recorded statistic over the second half of training, per layer.

    :math:`s_\text{end} / s_\text{mid} - 1`, with :math:`s_\text{mid}` the value at the recorded epoch
    closest to ``mid``.

    Example:
        >>> trace = ActivationTrace(np.array([0, 2, 4]), (1,), {"std": np.array([[1.0], [2.0], [3.0]])})
        >>> run = ActivationRun(0.0, 0, nn.Identity(), History(), trace, [], [])
        >>> growth(run, "std", mid=2).tolist()
        [0.5]
    """
    return run.trace[statistic][-1] / run.trace.at(mid, statistic) - 1


def positive_means(run: ActivationRun) -> np.ndarray:
    """The mean of each hidden layer's positive activations after training (evaluation mode)."""
    return np.array([A[A > 0].mean().item() for A in run.activations])


def dead_counts(run: ActivationRun) -> np.ndarray:
    """The number of dead units of each hidden layer after training, on the test set."""
    return np.array([int(dead_units(A).sum()) for A in run.activations])


def variances(activations: Sequence[torch.Tensor]) -> np.ndarray:
    """The variance of all entries of each layer's activations (population variance, in float64)."""
    return np.array([A.double().var(correction=0).item() for A in activations])


def predicted_train_variance(run: ActivationRun) -> float:
    r"""The training-mode variance of what the first hidden layer passes on, predicted from evaluation mode.

    The first layer's activations :math:`a` are the same in both modes (its inputs are never
    dropped); in training mode it passes on :math:`y = m a / q`, whose mask adds
    :math:`a^2 p / q` of variance to every entry. So the prediction is the evaluation-mode variance
    plus :math:`\frac{p}{q}\,\overline{a^2}`.
    """
    first = run.activations[0].double()
    return float(variances(run.activations)[0] + run.p / (1 - run.p) * first.pow(2).mean().item())


def _numbers(values: Any, digits: int = 4) -> str:
    return ", ".join(f"{v:.{digits}g}" for v in np.ravel(values))


def _every(statement: str, values: Any, bounds: Any, relation: str = "<") -> Claim:
    """The claim that ``values < bounds`` (or ``>``) holds in every entry, per layer."""
    values, bounds = np.asarray(values, dtype=float), np.asarray(bounds, dtype=float)
    holds = (values < bounds) if relation == "<" else (values > bounds)
    return Claim(statement, bool(holds.all()), f"{_numbers(values)} {relation} {_numbers(bounds)}")


def accuracy_claims(baseline: ActivationRun, dropped: ActivationRun) -> list[Claim]:
    """Both runs start from the same weights, and both classify the test digits well, within a point.

    Example:
        >>> base = activation_experiment(0.0, hidden=(8,), epochs=1)
        >>> accuracy_claims(base, base)[0].holds
        True
    """
    same = all(
        np.array_equal(baseline.trace[name][0], dropped.trace[name][0])
        for name in ("active", "mean", "std", "dead")
    )
    accuracies = [baseline.history.test_acc[-1], dropped.history.test_acc[-1]]
    return [
        Claim("both runs start from the same weights", same, "the same statistics at epoch 0"),
        _every("both networks classify more than 95% of the test digits", accuracies, 0.95, ">"),
        below(
            "the two test accuracies are within one percentage point",
            abs(accuracies[1] - accuracies[0]),
            0.01,
        ),
    ]


def active_unit_claims(baseline: ActivationRun, dropped: ActivationRun, mid: int = MID) -> list[Claim]:
    """Dropout leaves fewer active units per example, and keeps shedding them; the baseline holds steady."""
    base_active, drop_active = baseline.trace["active"][-1], dropped.trace["active"][-1]
    deeper = dropped.trace["active"][:, 1:]
    return [
        _every("dropout leaves fewer active units per example in every layer", drop_active, base_active),
        _every(
            "with dropout the count keeps falling in the second half",
            drop_active,
            dropped.trace.at(mid, "active"),
        ),
        _every("with dropout the deeper layers first gain active units", deeper.max(axis=0), deeper[0], ">"),
        _every(
            "without dropout the count changes by less than 2% in the second half",
            np.abs(growth(baseline, "active", mid)),
            0.02,
        ),
    ]


def growth_claims(baseline: ActivationRun, dropped: ActivationRun, mid: int = MID) -> list[Claim]:
    """The activations grow with and without dropout; with dropout they are smaller (layers 2 and 3).

    The growth is the relative change over the second half of training (:func:`growth`); the levels
    are those at the end of training.
    """
    base_std, drop_std = growth(baseline, "std", mid), growth(dropped, "std", mid)
    base_end, drop_end = baseline.trace["std"][-1], dropped.trace["std"][-1]
    return [
        _every("without dropout the mean grows in every layer", growth(baseline, "mean", mid), 0.0, ">"),
        _every("without dropout the standard deviation grows in every layer", base_std, 0.0, ">"),
        _every("with dropout it grows in every layer too: it does not level off", drop_std, 0.0, ">"),
        _every("with dropout it grows at least 0.8 times as fast (relative)", drop_std, 0.8 * base_std, ">"),
        above("in the last layer (layer 3) it grows faster with dropout", drop_std[-1], base_std[-1]),
        _every(
            "the mean is lower with dropout in every layer",
            dropped.trace["mean"][-1],
            baseline.trace["mean"][-1],
        ),
        _every("the standard deviation is lower with dropout in layers 2 and 3", drop_end[1:], base_end[1:]),
        below(
            "in layer 1 the two standard deviations are within 5%",
            abs(drop_end[0] / base_end[0] - 1),
            0.05,
        ),
    ]


def histogram_claims(baseline: ActivationRun, dropped: ActivationRun) -> list[Claim]:
    """With dropout the positive activations are smaller, in every layer (:func:`positive_means`)."""
    return [
        _every(
            "the positive activations are smaller with dropout in every layer",
            positive_means(dropped),
            positive_means(baseline),
        )
    ]


def dead_unit_claims(baseline: ActivationRun, dropped: ActivationRun) -> list[Claim]:
    """Dropout leaves fewer dead units, and no unit of the first layer dies (:func:`dead_counts`)."""
    base_dead, drop_dead = dead_counts(baseline), dead_counts(dropped)
    return [
        below("dropout leaves fewer dead units", int(drop_dead.sum()), int(base_dead.sum())),
        Claim(
            "no unit of layer 1 dies, with or without dropout",
            bool(base_dead[0] == 0 and drop_dead[0] == 0),
            f"{base_dead[0]} and {drop_dead[0]} dead",
        ),
    ]


def variance_claims(baseline: ActivationRun, dropped: ActivationRun) -> list[Claim]:
    r"""Smaller in evaluation mode (layers 2 and 3), larger in training mode, as :math:`a^2 p/q` predicts.

    The training-mode variances are those of ``dropped.train_mode_activations`` (one draw of the
    masks); layer 1's must match :func:`predicted_train_variance` within 5%.
    """
    base_eval, drop_eval = variances(baseline.activations), variances(dropped.activations)
    train = variances(dropped.train_mode_activations)
    predicted = predicted_train_variance(dropped)
    return [
        below(
            "layer 1's training-mode variance matches var + (p/q) mean(a^2) within 5%",
            abs(train[0] / predicted - 1),
            0.05,
        ),
        _every("dropout's noise raises the variance in training mode", train, drop_eval, ">"),
        _every("in training mode the dropout network varies more than the baseline", train, base_eval, ">"),
        _every(
            "in evaluation mode the variance is lower with dropout in layers 2 and 3",
            drop_eval[1:],
            base_eval[1:],
        ),
    ]


def plot_trace(
    axes: Sequence[Axes],
    runs: Sequence[ActivationRun],
    statistic: str,
    colors: Sequence[str] | None = None,
    legend: bool = True,
) -> None:
    """Plot one recorded statistic against the epoch, one panel per hidden layer.

    Args:
        axes: one matplotlib ``Axes`` per hidden layer.
        runs: the runs to compare (one line each, labelled with :attr:`ActivationRun.label`).
        statistic: a name from :data:`STATISTICS`.
        colors: one colour per run (default: the axes' colour cycle).
        legend: draw a legend in the first panel.

    Example:
        >>> import matplotlib.pyplot as plt
        >>> run = activation_experiment(0.5, hidden=(8, 4), epochs=2, eval_every=1)
        >>> fig, axes = plt.subplots(1, 2)
        >>> plot_trace(axes, [run], "active")
        >>> axes[0].get_title()
        'layer 1 (8 units)'
        >>> plt.close(fig)
    """
    if statistic not in STATISTICS:
        raise ValueError(f"statistic must be one of {STATISTICS}, got statistic={statistic!r}")
    axes = list(np.ravel(np.asarray(axes, dtype=object)))
    widths = runs[0].trace.widths
    if len(axes) != len(widths):
        raise ValueError(f"need one axes per hidden layer ({len(widths)}), got {len(axes)}")
    for k, run in enumerate(runs):
        color = None if colors is None else colors[k]
        for layer, ax in enumerate(axes):
            ax.plot(run.trace.epoch, run.trace[statistic][:, layer], color=color, label=run.label)
    for layer, ax in enumerate(axes):
        ax.set_title(f"layer {layer + 1} ({widths[layer]} units)")
        ax.set_xlabel("epoch")
    if legend:
        axes[0].legend()


def plot_histograms(
    axes: Sequence[Axes],
    runs: Sequence[ActivationRun],
    colors: Sequence[str] | None = None,
    bins: int = 40,
) -> None:
    """Histograms of the positive activations of each hidden layer after training (evaluation mode).

    Zeros (inactive units) would dwarf everything else, so only positive entries are binned and the
    legend gives the share of zeros. The y axis is the share of all entries of the layer per bin, so
    that the runs compare directly.

    Example:
        >>> import matplotlib.pyplot as plt
        >>> run = activation_experiment(0.0, hidden=(8,), epochs=1)
        >>> fig, ax = plt.subplots()
        >>> plot_histograms([ax], [run])
        >>> ax.get_xlabel()
        'activation (positive entries)'
        >>> plt.close(fig)
    """
    axes = list(np.ravel(np.asarray(axes, dtype=object)))
    widths = runs[0].trace.widths
    if len(axes) != len(widths):
        raise ValueError(f"need one axes per hidden layer ({len(widths)}), got {len(axes)}")
    for layer, ax in enumerate(axes):
        top = max(run.activations[layer].max().item() for run in runs)
        edges = np.linspace(0.0, max(top, 1e-6), bins + 1)
        for k, run in enumerate(runs):
            values = run.activations[layer].flatten().double().numpy()
            positive = values[values > 0]
            zeros = 1.0 - positive.size / values.size
            ax.hist(
                positive,
                bins=edges,
                weights=np.full(positive.size, 1.0 / values.size),
                histtype="step",
                lw=1.8,
                color=None if colors is None else colors[k],
                label=f"{run.label}: {zeros:.0%} zeros",
            )
        ax.set_title(f"layer {layer + 1} ({widths[layer]} units)")
        ax.set_xlabel("activation (positive entries)")
        ax.set_yscale("log")
        ax.legend(fontsize=8, loc="upper right")
    axes[0].set_ylabel("share of entries per bin")


# --- several seeds (issue 13) ----------------------------------------------------------------------

#: The seeds the chapter trains both networks for, to state its differences with standard errors.
SEEDS: tuple[int, ...] = (0, 1, 2, 3, 4)
#: An effect over seeds counts as measured when its mean is this many standard errors from zero.
N_SE = 2.0


def seed_differences(runs_by_seed: dict[int, tuple[ActivationRun, ActivationRun]]) -> dict[str, Any]:
    """Paired differences (dropout minus baseline) over seeds, with their standard errors.

    ``runs_by_seed[seed]`` is ``(baseline, dropped)`` trained with that seed. Returns a dict with
    ``"acc"`` and ``"dead"``: ``(mean, standard error)`` of the per-seed differences of the final
    test accuracy and of the number of dead units (:func:`dropoutlib.course.stats.paired_gain`);
    ``"acc_positive"``: on how many seeds dropout's accuracy is higher; ``"binomial_se"``: the
    standard error :math:`\\sqrt{a(1-a)/n}` of one test accuracy :math:`a` (the mean of the
    baseline's over seeds) on the :math:`n` test images; ``"n_seeds"``.
    """
    from dropoutlib.course.stats import paired_gain

    seeds = sorted(runs_by_seed)
    if len(seeds) < 2:
        raise ValueError(f"runs_by_seed needs at least two seeds, got {seeds}")
    base_acc = [runs_by_seed[s][0].history.test_acc[-1] for s in seeds]
    drop_acc = [runs_by_seed[s][1].history.test_acc[-1] for s in seeds]
    base_dead = [int(dead_counts(runs_by_seed[s][0]).sum()) for s in seeds]
    drop_dead = [int(dead_counts(runs_by_seed[s][1]).sum()) for s in seeds]
    n_test = runs_by_seed[seeds[0]][0].activations[0].shape[0]
    accuracy = float(np.mean(base_acc))
    acc_mean, _, acc_se = paired_gain(base_acc, drop_acc)
    dead_mean, _, dead_se = paired_gain(base_dead, drop_dead)
    return {
        "acc": (acc_mean, acc_se),
        "dead": (dead_mean, dead_se),
        "acc_positive": sum(d > b for b, d in zip(base_acc, drop_acc, strict=True)),
        "binomial_se": float(np.sqrt(accuracy * (1 - accuracy) / n_test)),
        "base_dead": (float(np.mean(base_dead)), float(np.std(base_dead, ddof=1) / np.sqrt(len(seeds)))),
        "drop_dead": (float(np.mean(drop_dead)), float(np.std(drop_dead, ddof=1) / np.sqrt(len(seeds)))),
        "n_seeds": len(seeds),
    }


def seed_claims(differences: dict[str, Any]) -> list[Claim]:
    """Over seeds: the accuracy gain is below one test accuracy's standard error; dead units are fewer.

    ``differences`` comes from :func:`seed_differences`; "fewer" means by more than :data:`N_SE`
    standard errors.
    """
    acc_mean, _ = differences["acc"]
    dead_mean, dead_se = differences["dead"]
    return [
        below(
            "dropout's mean accuracy gain is below one binomial standard error",
            abs(acc_mean),
            differences["binomial_se"],
        ),
        below("dropout leaves fewer dead units (mean + 2 SE)", dead_mean + N_SE * dead_se, 0.0),
    ]


#: Training images held out as a validation split for the early-stopping baseline.
N_VALIDATION = 270
#: Weight decays (Adam's L2 term) tried on the validation split for the baseline without dropout.
WEIGHT_DECAY_GRID: tuple[float, ...] = (1e-4, 1e-3, 1e-2)


def early_stopping_comparison(
    data: Split | None = None,
    *,
    seeds: Sequence[int] = SEEDS,
    n_validation: int = N_VALIDATION,
    epochs: int = EPOCHS,
    weight_decays: Sequence[float] = WEIGHT_DECAY_GRID,
) -> dict[str, Any]:
    """Test accuracies of the chapter's two networks, last epoch and early-stopped, one per seed, and
    of the network without dropout with weight decay tuned on the validation split.

    The training images of ``data`` (default :func:`load_digits`) are split, stratified and
    seeded per seed, into ``n_validation`` validation images and the rest for training. For every
    seed both networks (``p = 0`` and :data:`P`, the chapter's widths) are members of one
    :class:`dropoutlib.course.batched.BatchedMLP`, trained together with Adam at :data:`LR` on
    minibatches of :data:`BATCH_SIZE` (each member its own order and masks, seeded by its seed);
    after every epoch each member is evaluated, dropout off, on its validation split and on the
    test set. "Early stopped" is the test accuracy at the epoch of lowest validation loss: the test
    set plays no part in choosing it. One more member per seed and value of ``weight_decays``
    trains without dropout with that L2 term; "wd tuned" is the last-epoch test accuracy of the
    decay with the lowest final validation loss (chosen per seed).

    Returns:
        ``name -> array (len(seeds),)`` for ``"none last"``, ``"none early"``, ``"dropout last"``,
        ``"dropout early"``, ``"none best epoch"``, ``"dropout best epoch"`` (1-based), and, when
        ``weight_decays`` is not empty, ``"wd tuned"`` and ``"wd choice"``; and ``"n_test"``, the
        number of test images.

    Example:
        >>> r = early_stopping_comparison(seeds=[0, 1], epochs=2)
        >>> r["none early"].shape, bool(r["dropout best epoch"].max() <= 2)
        ((2,), True)
    """
    from sklearn.model_selection import train_test_split
    from torch.nn import functional as F

    from dropoutlib.course.batched import BatchedMLP

    data = check_split(data, load_digits)
    seeds = [check_seed(s) for s in seeds]
    n_validation = check_positive_int(n_validation, "n_validation")
    epochs = check_positive_int(epochs, "epochs")
    weight_decays = tuple(float(lam) for lam in weight_decays)
    for lam in weight_decays:
        if not np.isfinite(lam) or lam <= 0:
            raise ValueError(f"weight_decays must hold finite numbers > 0, got {lam!r}")
    configs = [("none", 0.0, 0.0), ("dropout", P, 0.0)]
    configs += [(f"wd {lam:g}", 0.0, lam) for lam in weight_decays]
    parts: dict[str, list[torch.Tensor]] = {"x": [], "y": [], "x_val": [], "y_val": []}
    for seed in seeds:
        train, val = train_test_split(
            np.arange(data.n_train), test_size=n_validation, stratify=data.y_train.numpy(), random_state=seed
        )
        for _ in configs:
            parts["x"].append(data.x_train[train])
            parts["y"].append(data.y_train[train])
            parts["x_val"].append(data.x_train[val])
            parts["y_val"].append(data.y_train[val])
    x, y, x_val, y_val = (torch.stack(parts[k]) for k in ("x", "y", "x_val", "y_val"))
    members = [s for s in seeds for _ in configs]
    n_classes = int(torch.cat([data.y_train, data.y_test]).max().item()) + 1
    model = BatchedMLP(
        data.n_features, list(HIDDEN), n_classes, seeds=members, p=[c[1] for c in configs] * len(seeds)
    )
    decay = torch.tensor([c[2] for c in configs] * len(seeds))
    m, n = x.shape[0], x.shape[1]
    orders = [torch.Generator().manual_seed(s + 2**32) for s in members]
    masks = [torch.Generator().manual_seed(s + 2**33) for s in members]
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    rows = torch.arange(m).unsqueeze(1)

    def losses(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        flat = F.cross_entropy(logits.reshape(-1, n_classes), target.reshape(-1), reduction="none")
        return flat.view(m, -1).mean(dim=1)

    val_loss, test_acc = [], []
    for _ in range(epochs):
        model.train()
        order = torch.stack([torch.randperm(n, generator=g) for g in orders])
        xs, ys = x[rows, order], y[rows, order]
        for i in range(0, n, BATCH_SIZE):
            optimizer.zero_grad(set_to_none=True)
            losses(model(xs[:, i : i + BATCH_SIZE], masks), ys[:, i : i + BATCH_SIZE]).sum().backward()
            if weight_decays:
                model.add_weight_decay(decay)
            optimizer.step()
        model.eval()
        with torch.no_grad():
            val_loss.append(losses(model(x_val), y_val))
            test_acc.append((model(data.x_test).argmax(dim=2) == data.y_test).double().mean(dim=1))
    k = len(configs)
    loss_path = torch.stack(val_loss, dim=1).view(len(seeds), k, epochs).numpy()
    acc_path = torch.stack(test_acc, dim=1).view(len(seeds), k, epochs).numpy()
    best = loss_path.argmin(axis=2)
    index = np.arange(len(seeds))
    out: dict[str, Any] = {}
    for j, (name, _, _) in enumerate(configs[:2]):
        out[f"{name} last"] = acc_path[:, j, -1]
        out[f"{name} early"] = acc_path[index, j, best[:, j]]
        out[f"{name} best epoch"] = best[:, j] + 1
    if weight_decays:  # the decay with the lowest final validation loss, per seed
        choice = 2 + loss_path[:, 2:, -1].argmin(axis=1)
        out["wd tuned"] = acc_path[index, choice, -1]
        out["wd choice"] = np.asarray(weight_decays)[choice - 2]
    out["n_test"] = data.n_test
    return out


def early_stopping_claims(result: dict[str, Any]) -> list[Claim]:
    """Dropout (last epoch) beats the early-stopped baseline by more than :data:`N_SE` standard errors,
    by less than one binomial standard error of a single test accuracy; where the result holds the
    tuned weight decay, it beats early stopping as well, and differs from dropout inside the noise.

    ``result`` comes from :func:`early_stopping_comparison`; the binomial standard error is that of
    the early-stopped baseline's mean accuracy on the test images.
    """
    from dropoutlib.course.stats import paired_gain

    mean, _, se = paired_gain(result["none early"], result["dropout last"])
    accuracy = float(np.mean(result["none early"]))
    binomial = float(np.sqrt(accuracy * (1 - accuracy) / result["n_test"]))
    claims = [
        above("dropout beats early stopping (mean - 2 SE of the paired gain)", mean - N_SE * se, 0.0),
        below("the gain is below one binomial SE of a single test accuracy", mean, binomial),
    ]
    if "wd tuned" in result:
        mean, _, se = paired_gain(result["none early"], result["wd tuned"])
        claims.append(above("tuned weight decay beats early stopping too (mean - 2 SE)",
                            mean - N_SE * se, 0.0))
        mean, _, se = paired_gain(result["wd tuned"], result["dropout last"])
        claims.append(below("dropout and tuned weight decay differ inside the noise (|mean| - 2 SE)",
                            abs(mean) - N_SE * se, 0.0))
    return claims
