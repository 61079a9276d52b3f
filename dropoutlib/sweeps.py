r"""When does dropout help, and how much: the experiments behind chapter 8, many networks at a time.

The chapter trains the same small MLP hundreds of times: with and without dropout, for several seeds,
training-set sizes, drop probabilities, placements, widths, depths and training recipes. One network
after the other that takes minutes on a laptop core, so this module trains them side by side, as
one *batched* model.

**Batched training.** :class:`BatchedMLP` holds :math:`M` independent networks ("members"). Member
:math:`m` has its own weights :math:`W^{(m)}_l` (stacked into a tensor of shape ``(M, in, out)``)
and computes

.. math::

    h^{(m)}_l = \phi\big(h^{(m)}_{l-1} W^{(m)}_l + b^{(m)}_l\big),

for all members at once with one batched matrix product (``torch.baddbmm``). Training minimizes the
*sum* of the members' losses, :math:`L = \sum_m L_m(\theta_m)`. Member :math:`m`'s parameters appear
only in :math:`L_m`, so :math:`\partial L / \partial \theta_m = \partial L_m / \partial \theta_m`, and
Adam's update is computed element by element: every member follows exactly the trajectory it would
follow alone. Each member also draws its initial weights, its minibatch order and its dropout masks
from its own generators, seeded by its seed: its result does not depend on which other members share
the batch (the tests check both facts against separately trained ``nn.Sequential`` networks).

**The pieces.**

- :class:`Recipe` (how to train: epochs, learning rate, minibatch size) and :class:`Setting` (what
  to train: drop probabilities on the inputs, hidden layers and outputs, placement of the hidden
  dropout before or after the activation, hidden widths, activation, training-set size, recipe).
- :class:`BatchedMLP` and :func:`fit_members`: the batched networks and their training loop;
  :meth:`BatchedMLP.member` returns one member as an ordinary ``nn.Sequential``.
- :class:`Study`: trains settings over seeds on one data source (:func:`digits_data` by default, or
  any function ``(seed, n_train) -> Split``, e.g. :func:`idx_data`, a folder of MNIST-style files
  read by :func:`~dropoutlib.data.load_idx`), grouping compatible settings into batched models and
  remembering every run, so a setting shared by two sweeps is trained once. :meth:`Study.grid`
  returns a :class:`Grid` of results (rows x columns x seeds).
- The chapter's experiments: :func:`compare`, :func:`size_sweep`, :func:`p_sweep`,
  :func:`placement_study`, :func:`width_sweep`, :func:`depth_study`, :func:`recipe_study`.
- Analysis: :func:`paired_gain`, :func:`units_needed`, :func:`format_table`, :func:`plot_mean_std`.

Notation: ``p`` is the probability of dropping a unit, ``q = 1 - p`` of keeping it. The 2014 JMLR
paper writes ``p`` for the probability of *retaining* a unit: its ``p = 0.5`` is ours too, but its
input retention ``0.8`` is our ``input_p = 0.2``.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from dropoutlib._threads import torch_threads
from dropoutlib._validation import check_positive_int, check_probability
from dropoutlib.data import Split, load_digits, load_idx
from dropoutlib.seeding import check_seed

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "ACTIVATIONS",
    "BASELINE",
    "DEFAULT_RECIPE",
    "DROPOUT",
    "DROPOUT_INPUT",
    "HIDDEN",
    "INPUT_P",
    "METRICS",
    "MINIBATCH_RECIPE",
    "N_TRAIN",
    "P",
    "PLACEMENTS",
    "BatchedMLP",
    "Grid",
    "MemberHistory",
    "Recipe",
    "Setting",
    "Study",
    "compare",
    "depth_study",
    "digits_data",
    "fit_members",
    "format_table",
    "idx_data",
    "p_sweep",
    "paired_gain",
    "placement_study",
    "plot_mean_std",
    "recipe_study",
    "size_sweep",
    "units_needed",
    "width_sweep",
]

#: Activations a :class:`Setting` may name: the function and the ``nn.Module`` class computing it.
ACTIVATIONS: dict[str, tuple[Callable[[torch.Tensor], torch.Tensor], type[nn.Module]]] = {
    "relu": (torch.relu, nn.ReLU),
    "tanh": (torch.tanh, nn.Tanh),
    "sigmoid": (torch.sigmoid, nn.Sigmoid),
}
#: Where hidden dropout sits: after the activation (``Linear, act, Dropout``, as in
#: :func:`~dropoutlib.mlp`) or before it (``Linear, Dropout, act``).
PLACEMENTS: tuple[str, ...] = ("after", "before")
#: What :class:`Grid` records for every run (``gap`` is ``train_acc - test_acc``).
METRICS: tuple[str, ...] = ("train_acc", "test_acc", "gap", "train_loss", "test_loss")

#: The chapter's network: 64 inputs, two hidden ReLU layers of 128 units, 10 classes.
HIDDEN: tuple[int, ...] = (128, 128)
#: Hidden drop probability of the dropout network, and input drop probability where inputs are dropped.
P = 0.5
INPUT_P = 0.2
#: Training-set size of the experiments that do not vary it (a quarter of the digits' training set).
N_TRAIN = 300

_INIT_OFFSET, _ORDER_OFFSET, _MASK_OFFSET = 0, 2**32, 2**33  # separate generator streams per seed


def _check_real(value: Any, name: str, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {name}={value!r} ({type(value).__name__})")
    as_float = float(value)
    if not math.isfinite(as_float) or (positive and as_float <= 0):
        kind = "a finite positive" if positive else "a finite"
        raise ValueError(f"{name} must be {kind} number, got {name}={value!r}")
    return as_float


def _check_drop(value: Any, name: str) -> float:
    value = check_probability(value, name)
    if value == 1.0:
        raise ValueError(f"{name} must be below 1 (with {name}=1 every unit is dropped and 1/q is infinite)")
    return value


def _check_widths(hidden: Any, name: str = "hidden") -> tuple[int, ...]:
    if isinstance(hidden, str | bytes) or not isinstance(hidden, Sequence) or len(hidden) == 0:
        raise TypeError(
            f"{name} must be a non-empty sequence of layer widths such as (128, 128), got {name}={hidden!r}"
        )
    return tuple(check_positive_int(w, f"{name}[{i}]") for i, w in enumerate(hidden))


# --- what to train ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recipe:
    """How a network is trained: Adam for ``epochs`` passes over the training set.

    Attributes:
        epochs: passes over the training set (positive int).
        lr: Adam's learning rate (> 0).
        batch_size: minibatch size, or ``None`` for full-batch training (one step per epoch).

    Example:
        >>> Recipe()
        Recipe(epochs=40, lr=0.01, batch_size=None)
        >>> Recipe(epochs=0)
        Traceback (most recent call last):
        ...
        ValueError: epochs must be a positive integer, got epochs=0
    """

    epochs: int = 40
    lr: float = 1e-2
    batch_size: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "epochs", check_positive_int(self.epochs, "epochs"))
        object.__setattr__(self, "lr", _check_real(self.lr, "lr", positive=True))
        if self.batch_size is not None:
            object.__setattr__(self, "batch_size", check_positive_int(self.batch_size, "batch_size"))

    def describe(self) -> str:
        """A short description, e.g. ``"full batch, lr 0.01, 40 epochs"``.

        Example:
            >>> Recipe(epochs=40, lr=1e-3, batch_size=32).describe()
            'minibatches of 32, lr 0.001, 40 epochs'
        """
        batches = "full batch" if self.batch_size is None else f"minibatches of {self.batch_size}"
        return f"{batches}, lr {self.lr:g}, {self.epochs} epochs"


#: The chapter's recipe: full-batch Adam, learning rate 0.01, 40 steps (one per epoch).
DEFAULT_RECIPE = Recipe()
#: A gentler recipe for the baseline check: minibatches of 32, learning rate 0.001, 40 epochs.
MINIBATCH_RECIPE = Recipe(epochs=40, lr=1e-3, batch_size=32)


@dataclass(frozen=True)
class Setting:
    r"""One network configuration, trained with one :class:`Recipe`.

    The network is an MLP with hidden widths ``hidden`` and activation ``activation``; dropout with
    probability ``input_p`` on its inputs, ``p`` in every hidden layer (``placement="after"``:
    ``Linear, act, Dropout`` as in :func:`~dropoutlib.mlp`; ``"before"``: ``Linear, Dropout, act``)
    and ``output_p`` on its outputs (the logits; shown in the chapter as what not to do). A
    probability of 0 means no dropout there. ``n_train`` is the training-set size (``None``: all
    of it).

    Example:
        >>> Setting(p=0.5).describe()
        'dropout p=0.5'
        >>> Setting(p=0.5, placement="before", hidden=[32]).hidden
        (32,)
        >>> Setting(p=1.0)
        Traceback (most recent call last):
        ...
        ValueError: p must be below 1 (with p=1 every unit is dropped and 1/q is infinite)
    """

    p: float = 0.0
    input_p: float = 0.0
    output_p: float = 0.0
    placement: str = "after"
    hidden: tuple[int, ...] = HIDDEN
    activation: str = "relu"
    n_train: int | None = N_TRAIN
    recipe: Recipe = DEFAULT_RECIPE

    def __post_init__(self) -> None:
        for name in ("p", "input_p", "output_p"):
            object.__setattr__(self, name, _check_drop(getattr(self, name), name))
        if self.placement not in PLACEMENTS:
            raise ValueError(f"placement must be one of {PLACEMENTS}, got placement={self.placement!r}")
        object.__setattr__(self, "hidden", _check_widths(self.hidden))
        if self.activation not in ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {tuple(ACTIVATIONS)}, got activation={self.activation!r}"
            )
        if self.n_train is not None:
            object.__setattr__(self, "n_train", check_positive_int(self.n_train, "n_train"))
        if not isinstance(self.recipe, Recipe):
            raise TypeError(
                f"recipe must be a Recipe, got recipe={self.recipe!r} ({type(self.recipe).__name__})"
            )

    def describe(self) -> str:
        """The dropout part of the setting in a few words (``"no dropout"`` when there is none).

        Example:
            >>> Setting(p=0.5, input_p=0.2, placement="before").describe()
            'input 0.2, dropout p=0.5 before the activation'
        """
        parts = []
        if self.input_p:
            parts.append(f"input {self.input_p:g}")
        if self.p:
            where = " before the activation" if self.placement == "before" else ""
            parts.append(f"dropout p={self.p:g}{where}")
        if self.output_p:
            parts.append(f"output {self.output_p:g}")
        return ", ".join(parts) if parts else "no dropout"


#: The chapter's three networks: without dropout, with hidden dropout, with input and hidden dropout.
BASELINE = Setting()
DROPOUT = Setting(p=P)
DROPOUT_INPUT = Setting(p=P, input_p=INPUT_P)


# --- many networks as one ---------------------------------------------------------------------------


def _per_member(value: Any, n: int, name: str, check: Callable[[Any, str], Any]) -> list[Any]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        return [check(value, name)] * n
    if len(value) != n:
        raise ValueError(f"{name} must be one value or one per member ({n}), got {len(value)} values")
    return [check(v, f"{name}[{i}]") for i, v in enumerate(value)]


def _check_placement(value: Any, name: str) -> str:
    if value not in PLACEMENTS:
        raise ValueError(f"{name} must be one of {PLACEMENTS}, got {name}={value!r}")
    return str(value)


class BatchedMLP(nn.Module):
    r"""``len(seeds)`` independent MLPs of one architecture, computed together.

    Member :math:`m` is the network that :func:`~dropoutlib.mlp` would build for its drop
    probabilities (with hidden dropout before or after the activation as ``placement`` says, and
    optional dropout on the outputs), initialized like ``nn.Linear`` (weights and biases uniform
    on :math:`\pm 1/\sqrt{\text{fan-in}}`) from a generator seeded with ``seeds[m]``. Its weights
    are ``weights[l][m]`` (shape ``(in, out)``, the transpose of ``nn.Linear.weight``) and
    ``biases[l][m]`` (shape ``(1, out)``).

    In training mode, each dropout location draws one uniform number per unit for every member
    that drops there, from that member's generator (``generators[m]``, or torch's global generator
    when none is given), and keeps a unit when its number is at least :math:`p_m`, scaling it by
    :math:`1/q_m` (inverted dropout). Per member and location the draws come in the order input,
    then for each hidden layer before and after the activation, then output. In evaluation mode
    nothing is dropped.

    Args:
        in_features, hidden, out_features: the architecture, shared by all members.
        seeds: one seed per member (its initial weights).
        p, input_p, output_p: drop probabilities in ``[0, 1)``, one value or one per member.
        placement: ``"after"`` or ``"before"`` the activation, one value or one per member.
        activation: a name from :data:`ACTIVATIONS`, shared by all members.

    Shapes: input ``(M, n, in_features)``, or ``(n, in_features)`` shared by all members; output
    ``(M, n, out_features)``.

    Example:
        >>> model = BatchedMLP(64, [32], 10, seeds=[0, 1, 2], p=[0.0, 0.5, 0.5])
        >>> model(torch.zeros(5, 64)).shape
        torch.Size([3, 5, 10])
        >>> model.member(1)
        Sequential(
          (0): Linear(in_features=64, out_features=32, bias=True)
          (1): ReLU()
          (2): Dropout(p=0.5, inplace=False)
          (3): Linear(in_features=32, out_features=10, bias=True)
        )
    """

    def __init__(
        self,
        in_features: int,
        hidden: Sequence[int],
        out_features: int,
        *,
        seeds: Sequence[int],
        p: float | Sequence[float] = 0.0,
        input_p: float | Sequence[float] = 0.0,
        output_p: float | Sequence[float] = 0.0,
        placement: str | Sequence[str] = "after",
        activation: str = "relu",
    ) -> None:
        super().__init__()
        in_features = check_positive_int(in_features, "in_features")
        out_features = check_positive_int(out_features, "out_features")
        self.hidden = _check_widths(hidden)
        if isinstance(seeds, str) or not isinstance(seeds, Sequence) or len(seeds) == 0:
            raise TypeError(
                f"seeds must be a non-empty sequence of seeds, one per member, got seeds={seeds!r}"
            )
        self.seeds = tuple(check_seed(s, f"seeds[{i}]") for i, s in enumerate(seeds))
        n = len(self.seeds)
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {tuple(ACTIVATIONS)}, got activation={activation!r}")
        self.activation = activation
        p_list = _per_member(p, n, "p", _check_drop)
        places = _per_member(placement, n, "placement", _check_placement)
        probabilities = {
            "input": _per_member(input_p, n, "input_p", _check_drop),
            "before": [pm if pl == "before" else 0.0 for pm, pl in zip(p_list, places, strict=True)],
            "after": [pm if pl == "after" else 0.0 for pm, pl in zip(p_list, places, strict=True)],
            "output": _per_member(output_p, n, "output_p", _check_drop),
        }
        self.p = p_list
        self.placement = places
        self.drop_probabilities = probabilities
        dims = [in_features, *self.hidden, out_features]
        layers: list[tuple[list[torch.Tensor], list[torch.Tensor]]] = [([], []) for _ in dims[1:]]
        for seed in self.seeds:
            generator = torch.Generator().manual_seed(seed + _INIT_OFFSET)
            for (weights, biases), fan_in, fan_out in zip(layers, dims[:-1], dims[1:], strict=True):
                bound = 1.0 / math.sqrt(fan_in)
                weights.append((torch.rand(fan_out, fan_in, generator=generator) * 2 - 1) * bound)
                biases.append((torch.rand(fan_out, generator=generator) * 2 - 1) * bound)
        self.weights = nn.ParameterList(
            nn.Parameter(torch.stack(w).transpose(1, 2).contiguous()) for w, _ in layers
        )
        self.biases = nn.ParameterList(nn.Parameter(torch.stack(b).unsqueeze(1)) for _, b in layers)

    @property
    def n_members(self) -> int:
        """The number of networks ``M``."""
        return len(self.seeds)

    def _drop(
        self, x: torch.Tensor, where: str, generators: Sequence[torch.Generator | None]
    ) -> torch.Tensor:
        probabilities = self.drop_probabilities[where]
        if not self.training or not any(probabilities):
            return x
        mask = torch.ones(x.shape, dtype=x.dtype)
        for m, p in enumerate(probabilities):
            if p > 0:
                mask[m].uniform_(generator=generators[m])
        p_column = torch.tensor(probabilities, dtype=x.dtype).view(-1, 1, 1)
        mask.ge_(p_column).div_(1.0 - p_column)  # in place: 1/q where the uniform is >= p, else 0
        return x * mask

    def forward(
        self, x: torch.Tensor, generators: Sequence[torch.Generator | None] | None = None
    ) -> torch.Tensor:
        """Outputs of every member; ``generators`` (one per member) draw the masks in training mode."""
        if x.dim() == 2:
            x = x.expand(self.n_members, *x.shape)
        if x.dim() != 3 or x.shape[0] != self.n_members:
            raise ValueError(
                f"x must have shape (n, in_features) or ({self.n_members}, n, in_features), "
                f"got {tuple(x.shape)}"
            )
        if generators is None:
            generators = [None] * self.n_members
        elif len(generators) != self.n_members:
            raise ValueError(
                f"generators must hold one generator per member ({self.n_members}), got {len(generators)}"
            )
        act = ACTIVATIONS[self.activation][0]
        x = self._drop(x, "input", generators)
        last = len(self.weights) - 1
        for layer, (weight, bias) in enumerate(zip(self.weights, self.biases, strict=True)):
            x = torch.baddbmm(bias, x, weight)
            if layer < last:
                x = self._drop(x, "before", generators)
                x = act(x)
                x = self._drop(x, "after", generators)
        return self._drop(x, "output", generators)

    def member(self, m: int) -> nn.Sequential:
        """Member ``m`` as an ordinary ``nn.Sequential`` with a copy of its current weights.

        Layers: ``[Dropout(input_p)]``, then per hidden layer ``Linear, [Dropout(p)], act`` (before)
        or ``Linear, act, [Dropout(p)]`` (after), then ``Linear, [Dropout(output_p)]``; a dropout
        layer only where its probability is positive. In evaluation mode it computes exactly what
        the member computes.

        Example:
            >>> model = BatchedMLP(4, [3], 2, seeds=[0, 1]).eval()
            >>> x = torch.randn(6, 4)
            >>> torch.allclose(model(x)[1], model.member(1).eval()(x), atol=1e-6)
            True
        """
        if isinstance(m, bool) or not isinstance(m, numbers.Integral) or not 0 <= m < self.n_members:
            raise ValueError(f"m must be a member index in [0, {self.n_members - 1}], got m={m!r}")
        probabilities = {where: values[m] for where, values in self.drop_probabilities.items()}
        act = ACTIVATIONS[self.activation][1]
        layers: list[nn.Module] = []
        if probabilities["input"]:
            layers.append(nn.Dropout(probabilities["input"]))
        last = len(self.weights) - 1
        for index, (weight, bias) in enumerate(zip(self.weights, self.biases, strict=True)):
            linear = nn.Linear(weight.shape[1], weight.shape[2])
            with torch.no_grad():
                linear.weight.copy_(weight[m].T)
                linear.bias.copy_(bias[m, 0])
            layers.append(linear)
            if index < last:
                for where in ("before", "act", "after"):
                    if where == "act":
                        layers.append(act())
                    elif probabilities[where]:
                        layers.append(nn.Dropout(probabilities[where]))
        if probabilities["output"]:
            layers.append(nn.Dropout(probabilities["output"]))
        return nn.Sequential(*layers)


@dataclass
class MemberHistory:
    """What :func:`fit_members` records: one row per member, one column per evaluated epoch.

    Attributes:
        epoch: the epochs (1-based) at which the columns were recorded.
        train_loss, test_loss, train_acc, test_acc: evaluation mode (dropout off), whole sets;
            arrays of shape ``(M, len(epoch))``.
        objective: mean minibatch loss of the epoch in training mode (dropout on), same shape.

    Example:
        >>> h = MemberHistory([1], *(np.zeros((2, 1)) for _ in range(5)))
        >>> h.final("test_acc").shape
        (2,)
    """

    epoch: list[int]
    train_loss: np.ndarray
    test_loss: np.ndarray
    train_acc: np.ndarray
    test_acc: np.ndarray
    objective: np.ndarray

    def final(self, metric: str) -> np.ndarray:
        """The last recorded value of ``metric`` for every member, shape ``(M,)``."""
        if metric not in ("train_loss", "test_loss", "train_acc", "test_acc", "objective"):
            raise ValueError(f"unknown metric={metric!r}")
        return getattr(self, metric)[:, -1]


def _stack_data(data: Split | Sequence[Split], n: int) -> tuple[torch.Tensor, ...]:
    if isinstance(data, Split):
        splits = [data]
    elif isinstance(data, Sequence) and len(data) == n and all(isinstance(d, Split) for d in data):
        splits = list(data)
    else:
        raise TypeError(f"data must be a Split or a sequence of {n} Splits (one per member), got {data!r}")
    shapes = {(d.n_train, d.n_test, d.n_features) for d in splits}
    if len(shapes) != 1:
        raise ValueError(
            f"every member's Split needs the same sizes (n_train, n_test, n_features), got {shapes}"
        )
    for d in splits:
        if d.y_train.dtype != torch.int64 or d.y_test.dtype != torch.int64:
            raise TypeError(
                "fit_members trains classifiers: y_train and y_test must hold int64 class indices"
            )
    if len(splits) == 1:
        parts = (splits[0].x_train, splits[0].y_train, splits[0].x_test, splits[0].y_test)
        return tuple(t.expand(n, *t.shape) for t in parts)
    return tuple(
        torch.stack([getattr(d, f) for d in splits]) for f in ("x_train", "y_train", "x_test", "y_test")
    )


def _member_losses(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of every member, shape ``(M,)``."""
    m, n, c = logits.shape
    return (
        F.cross_entropy(logits.reshape(m * n, c), y.reshape(m * n), reduction="none").view(m, n).mean(dim=1)
    )


def fit_members(
    model: BatchedMLP,
    data: Split | Sequence[Split],
    *,
    epochs: int,
    lr: float = 1e-2,
    batch_size: int | None = None,
    eval_every: int | None = None,
) -> MemberHistory:
    r"""Train every member of ``model`` on its data with Adam, and record a :class:`MemberHistory`.

    Each step minimizes :math:`L = \sum_m L_m`, the sum over members of each member's mean
    cross-entropy on its minibatch (with its dropout masks). As the module docstring explains,
    every member then follows the trajectory it would follow if trained alone with
    ``torch.optim.Adam(lr=lr)`` on :math:`L_m`: like :func:`dropoutlib.fit` with ``optimizer="adam"``.
    Member :math:`m`'s minibatch order and masks come from generators seeded with ``seeds[m]``
    (separate streams from its initialization), reshuffled every epoch.

    Args:
        model: the :class:`BatchedMLP`.
        data: one :class:`~dropoutlib.data.Split` shared by all members, or one per member (all of
            the same sizes); classification, int64 labels.
        epochs: passes over the training set.
        lr: Adam's learning rate.
        batch_size: minibatch size, or ``None`` for full batch.
        eval_every: record the history every this many epochs (``None``: only after the last).

    Returns:
        The history; the model is left in evaluation mode.

    Example:
        >>> from dropoutlib.data import load_digits
        >>> model = BatchedMLP(64, [16], 10, seeds=[0, 1], p=[0.0, 0.5])
        >>> history = fit_members(model, load_digits(n_train=100), epochs=20)
        >>> history.final("train_acc").shape, bool(history.final("train_acc").min() > 0.5)
        ((2,), True)
    """
    if not isinstance(model, BatchedMLP):
        raise TypeError(f"model must be a BatchedMLP, got {type(model).__name__}")
    epochs = check_positive_int(epochs, "epochs")
    lr = _check_real(lr, "lr", positive=True)
    if batch_size is not None:
        batch_size = check_positive_int(batch_size, "batch_size")
    if eval_every is not None:
        eval_every = check_positive_int(eval_every, "eval_every")
    members = model.n_members
    x_train, y_train, x_test, y_test = _stack_data(data, members)
    n = x_train.shape[1]
    step = n if batch_size is None else min(batch_size, n)
    order_generators = [torch.Generator().manual_seed(s + _ORDER_OFFSET) for s in model.seeds]
    mask_generators = [torch.Generator().manual_seed(s + _MASK_OFFSET) for s in model.seeds]
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, foreach=True)
    rows = torch.arange(members).unsqueeze(1)
    records: dict[str, list[torch.Tensor]] = {
        k: [] for k in ("train_loss", "test_loss", "train_acc", "test_acc")
    }
    objective: list[torch.Tensor] = []
    recorded: list[int] = []
    for epoch in range(1, epochs + 1):
        model.train()
        if step >= n:
            batches = [(x_train, y_train)]
        else:
            order = torch.stack([torch.randperm(n, generator=g) for g in order_generators])
            x_shuffled, y_shuffled = x_train[rows, order], y_train[rows, order]
            batches = [(x_shuffled[:, i : i + step], y_shuffled[:, i : i + step]) for i in range(0, n, step)]
        total = torch.zeros(members)
        for xb, yb in batches:
            losses = _member_losses(model(xb, mask_generators), yb)
            optimizer.zero_grad(set_to_none=True)
            losses.sum().backward()
            optimizer.step()
            total += losses.detach() * yb.shape[1]
        if (eval_every is not None and epoch % eval_every == 0) or epoch == epochs:
            model.eval()
            with torch.no_grad():
                for part, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
                    logits = model(x)
                    records[f"{part}_loss"].append(_member_losses(logits, y))
                    records[f"{part}_acc"].append((logits.argmax(dim=2) == y).double().mean(dim=1))
            objective.append(total / n)
            recorded.append(epoch)
    model.eval()
    arrays = {k: torch.stack(v, dim=1).double().numpy() for k, v in records.items()}
    return MemberHistory(epoch=recorded, objective=torch.stack(objective, dim=1).double().numpy(), **arrays)


# --- studies ----------------------------------------------------------------------------------------


def digits_data(seed: int, n_train: int | None) -> Split:
    """The digits split for ``seed``, with ``n_train`` training images (``None``: all 1257).

    The default data source of a :class:`Study`: ``load_digits(seed=seed, n_train=n_train)``.

    Example:
        >>> digits_data(0, 100).n_train, digits_data(0, None).n_train
        (100, 1257)
    """
    return load_digits(seed=seed, n_train=n_train)


def idx_data(folder: Any, *, n_test: int | None = None) -> Callable[[int, int | None], Split]:
    """A data source for :class:`Study` from a folder of MNIST-style IDX files (the chapter's switch).

    Returns ``source(seed, n_train) = load_idx(folder, n_train=n_train, n_test=n_test, seed=seed)``:
    for every seed a stratified training subsample of ``n_train`` images and a test subsample of
    ``n_test`` images (all of them for ``None``), standardized with the training subsample's
    statistics (see :func:`~dropoutlib.data.load_idx`). The files are read and checked once, now,
    so a wrong folder fails here rather than in the middle of a sweep.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from dropoutlib.data import IDX_FILES
        >>> def idx(dims, values):  # magic number (unsigned bytes), sizes, values
        ...     sizes = b"".join(d.to_bytes(4, "big") for d in dims)
        ...     return bytes([0, 0, 8, len(dims)]) + sizes + bytes(values)
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     for field, stem in IDX_FILES.items():
        ...         n = 8 if "train" in field else 4
        ...         images, labels = idx([n, 2, 2], range(4 * n)), idx([n], [0, 1] * (n // 2))
        ...         _ = (Path(folder) / stem).write_bytes(images if field.startswith("x") else labels)
        ...     source = idx_data(folder, n_test=2)
        ...     split = source(0, 4)
        >>> split.n_train, split.n_test, split.n_features
        (4, 2, 4)
    """
    load_idx(folder, n_test=n_test)  # fail early on a missing or malformed file

    def source(seed: int, n_train: int | None) -> Split:
        return load_idx(folder, n_train=n_train, n_test=n_test, seed=seed)

    return source


@dataclass
class _Run:
    final: dict[str, float]
    curves: dict[str, np.ndarray] | None = None
    epochs: tuple[int, ...] | None = None


@dataclass(frozen=True)
class Grid:
    """Results of a grid of settings over seeds: ``rows x columns``, every cell trained for each seed.

    Attributes:
        rows, columns: the labels of the rows and columns (numbers or strings).
        settings: the :class:`Setting` of each cell, a tuple of rows of columns.
        seeds: the seeds.
        values: for every name of :data:`METRICS`, an array of shape ``(rows, columns, seeds)``.
        epochs, curves: when the grid was run with ``eval_every``: the evaluated epochs, and for
            ``train_acc``, ``test_acc``, ``train_loss``, ``test_loss`` an array of shape
            ``(rows, columns, seeds, epochs)``; otherwise ``None``.

    Example:
        >>> study = Study()
        >>> tiny = Setting(hidden=(8,), n_train=50, recipe=Recipe(epochs=3))
        >>> grid = study.grid([0.0, 0.5], ["p"], lambda p, _: dataclasses.replace(tiny, p=p), seeds=[0, 1])
        >>> grid["test_acc"].shape, grid.mean("gap").shape
        ((2, 1, 2), (2, 1))
    """

    rows: tuple[Any, ...]
    columns: tuple[Any, ...]
    settings: tuple[tuple[Setting, ...], ...]
    seeds: tuple[int, ...]
    values: dict[str, np.ndarray]
    epochs: tuple[int, ...] | None = None
    curves: dict[str, np.ndarray] | None = field(default=None, repr=False)

    def __getitem__(self, metric: str) -> np.ndarray:
        if metric not in self.values:
            raise KeyError(f"metric must be one of {METRICS}, got {metric!r}")
        return self.values[metric]

    def mean(self, metric: str) -> np.ndarray:
        """Mean over seeds, shape ``(rows, columns)``."""
        return self[metric].mean(axis=2)

    def std(self, metric: str) -> np.ndarray:
        """Standard deviation over seeds (``ddof=1``; 0 for a single seed), shape ``(rows, columns)``."""
        values = self[metric]
        return values.std(axis=2, ddof=1) if values.shape[2] > 1 else np.zeros(values.shape[:2])

    def gain(self, metric: str = "test_acc", base: int = 0, other: int = 1) -> np.ndarray:
        """Per-seed difference ``other - base`` between two columns, shape ``(rows, seeds)``.

        With the default columns (0: no dropout, 1: dropout) and ``"test_acc"``: the accuracy that
        dropout adds, per row and seed. Paired by seed: same data, initial weights and order.
        """
        values = self[metric]
        for name, index in (("base", base), ("other", other)):
            if not -values.shape[1] <= index < values.shape[1]:
                raise IndexError(f"{name}={index} is not a column index (the grid has {values.shape[1]})")
        return values[:, other] - values[:, base]


class Study:
    """Trains :class:`Setting` s over seeds on one data source, and remembers every run.

    ``data(seed, n_train)`` must return a :class:`~dropoutlib.data.Split` (classification, int64
    labels); the default is :func:`digits_data`. A run is fixed by its setting and its seed: the seed
    picks the data split, the initial weights, the minibatch order and the dropout masks, so two
    settings with the same seed are *paired* (same data, same start). Settings that share the
    architecture, the training-set size and the recipe are trained together as one
    :class:`BatchedMLP`; a run already done is not repeated (asking again returns the same numbers).

    Example:
        >>> study = Study()
        >>> tiny = Setting(hidden=(8,), n_train=50, recipe=Recipe(epochs=3))
        >>> grid = study.grid(["no dropout", "dropout"], ["digits"],
        ...                   lambda row, _: dataclasses.replace(tiny, p=0.5 * (row == "dropout")), seeds=[0])
        >>> study.n_runs
        2
    """

    def __init__(self, data: Callable[[int, int | None], Split] = digits_data) -> None:
        if not callable(data):
            raise TypeError(f"data must be a function (seed, n_train) -> Split, got data={data!r}")
        self.data = data
        self._runs: dict[tuple[Setting, int], _Run] = {}
        self._splits: dict[tuple[int, int | None], Split] = {}

    @property
    def n_runs(self) -> int:
        """How many (setting, seed) runs have been trained so far."""
        return len(self._runs)

    def split(self, seed: int, n_train: int | None) -> Split:
        """The data for ``seed`` and ``n_train`` (loaded once, then remembered)."""
        key = (check_seed(seed), n_train)
        if key not in self._splits:
            split = self.data(seed, n_train)
            if not isinstance(split, Split):
                raise TypeError(f"data(seed, n_train) must return a Split, got {type(split).__name__}")
            self._splits[key] = split
        return self._splits[key]

    def _train(self, jobs: list[tuple[Setting, int]], eval_every: int | None) -> None:
        groups: dict[tuple[Any, ...], list[tuple[Setting, int]]] = {}
        for setting, seed in jobs:
            key = (setting.hidden, setting.activation, setting.n_train, setting.recipe)
            groups.setdefault(key, []).append((setting, seed))
        for (hidden, activation, n_train, recipe), members in groups.items():
            splits = [self.split(seed, n_train) for _, seed in members]
            n_classes = max(int(torch.cat([s.y_train, s.y_test]).max()) for s in splits) + 1
            model = BatchedMLP(
                splits[0].n_features,
                hidden,
                n_classes,
                seeds=[seed for _, seed in members],
                p=[s.p for s, _ in members],
                input_p=[s.input_p for s, _ in members],
                output_p=[s.output_p for s, _ in members],
                placement=[s.placement for s, _ in members],
                activation=activation,
            )
            with torch_threads(1):  # small matrices: one thread is faster and does not fight others
                history = fit_members(
                    model,
                    splits,
                    epochs=recipe.epochs,
                    lr=recipe.lr,
                    batch_size=recipe.batch_size,
                    eval_every=eval_every,
                )
            for m, job in enumerate(members):
                final = {
                    k: float(getattr(history, k)[m, -1])
                    for k in ("train_acc", "test_acc", "train_loss", "test_loss")
                }
                final["gap"] = final["train_acc"] - final["test_acc"]
                curves = None
                if eval_every is not None:
                    curves = {
                        k: getattr(history, k)[m].copy()
                        for k in ("train_acc", "test_acc", "train_loss", "test_loss")
                    }
                self._runs[job] = _Run(final, curves, tuple(history.epoch) if curves else None)

    def grid(
        self,
        rows: Sequence[Hashable],
        columns: Sequence[Hashable],
        make: Callable[[Any, Any], Setting],
        seeds: Sequence[int],
        *,
        eval_every: int | None = None,
    ) -> Grid:
        """Train ``make(row, column)`` for every row, column and seed; return the :class:`Grid`.

        With ``eval_every``, every run also records its learning curves (evaluated every that many
        epochs); runs remembered without curves are trained again to get them.
        """
        rows, columns = tuple(rows), tuple(columns)
        if not rows or not columns:
            raise ValueError("rows and columns must each hold at least one label")
        if not callable(make):
            raise TypeError(f"make must be a function (row, column) -> Setting, got make={make!r}")
        if isinstance(seeds, str) or not isinstance(seeds, Sequence) or len(seeds) == 0:
            raise TypeError(f"seeds must be a non-empty sequence of seeds, got seeds={seeds!r}")
        seeds = tuple(check_seed(s, f"seeds[{i}]") for i, s in enumerate(seeds))
        if eval_every is not None:
            eval_every = check_positive_int(eval_every, "eval_every")
        settings = tuple(tuple(make(r, c) for c in columns) for r in rows)
        for row in settings:
            for s in row:
                if not isinstance(s, Setting):
                    raise TypeError(f"make must return a Setting, got {s!r}")
        jobs: list[tuple[Setting, int]] = []
        for row in settings:
            for s in row:
                for seed in seeds:
                    run = self._runs.get((s, seed))
                    missing = run is None or (eval_every is not None and run.epochs is None)
                    if missing and (s, seed) not in jobs:
                        jobs.append((s, seed))
        if jobs:
            self._train(jobs, eval_every)
        runs = [[[self._runs[(s, seed)] for seed in seeds] for s in row] for row in settings]
        values = {
            m: np.array([[[run.final[m] for run in cell] for cell in row] for row in runs]) for m in METRICS
        }
        epochs, curves = None, None
        if eval_every is not None:
            epochs = runs[0][0][0].epochs
            if any(run.epochs != epochs for row in runs for cell in row for run in cell):
                raise ValueError("the runs of a grid with curves need the same number of epochs")
            curves = {
                m: np.array([[[run.curves[m] for run in cell] for cell in row] for row in runs])  # type: ignore[index]
                for m in ("train_acc", "test_acc", "train_loss", "test_loss")
            }
        return Grid(rows, columns, settings, seeds, values, epochs, curves)


# --- the chapter's experiments ----------------------------------------------------------------------


def _columns(p: float) -> tuple[str, str]:
    return ("no dropout", f"dropout p={p:g}")


def compare(
    study: Study,
    seeds: Sequence[int],
    settings: Sequence[Setting] = (BASELINE, DROPOUT, DROPOUT_INPUT),
    *,
    eval_every: int | None = 2,
) -> Grid:
    """Baseline against dropout: one row per setting (labelled by :meth:`Setting.describe`), one column.

    Records learning curves every ``eval_every`` epochs.

    Example:
        >>> tiny = [Setting(hidden=(8,), n_train=50, recipe=Recipe(epochs=4), p=p) for p in (0.0, 0.5)]
        >>> grid = compare(Study(), [0], tiny)
        >>> grid.rows, grid.epochs
        (('no dropout', 'dropout p=0.5'), (2, 4))
    """
    settings = tuple(settings)
    labels = [s.describe() for s in settings]
    if len(set(labels)) != len(labels):
        raise ValueError(f"the settings must differ in their dropout, got {labels}")
    by_label = dict(zip(labels, settings, strict=True))
    return study.grid(labels, ["all"], lambda row, _: by_label[row], seeds, eval_every=eval_every)


def size_sweep(
    study: Study, sizes: Sequence[int], seeds: Sequence[int], *, base: Setting = BASELINE, p: float = P
) -> Grid:
    """Training-set size against dropout: rows ``sizes``, columns no dropout / dropout ``p``.

    Example:
        >>> tiny = Setting(hidden=(8,), recipe=Recipe(epochs=2))
        >>> size_sweep(Study(), [20, 40], [0], base=tiny).gain().shape
        (2, 1)
    """
    sizes = [check_positive_int(n, "sizes[i]") for n in sizes]
    p = _check_drop(p, "p")
    return study.grid(
        sizes,
        _columns(p),
        lambda n, c: dataclasses.replace(base, n_train=n, p=0.0 if c == "no dropout" else p),
        seeds,
    )


def p_sweep(study: Study, ps: Sequence[float], seeds: Sequence[int], *, base: Setting = BASELINE) -> Grid:
    """Drop probability: rows ``ps``; column ``"hidden"`` drops hidden units, column ``"input"`` inputs.

    The other probability stays at ``base``'s (0 by default), so each column shows one kind of
    dropout alone. Row ``p = 0`` is the same network in both columns.

    Example:
        >>> tiny = Setting(hidden=(8,), n_train=50, recipe=Recipe(epochs=2))
        >>> p_sweep(Study(), [0.0, 0.5], [0], base=tiny).columns
        ('hidden', 'input')
    """
    ps = [_check_drop(p, "ps[i]") for p in ps]

    def make(p: float, where: str) -> Setting:
        return dataclasses.replace(base, **({"p": p} if where == "hidden" else {"input_p": p}))

    return study.grid(ps, ("hidden", "input"), make, seeds)


#: The rows of :func:`placement_study`: a label and the drop probabilities it sets.
_PLACEMENT_ROWS: dict[str, dict[str, Any]] = {
    "no dropout": {},
    "after the activation": {"p": P},
    "before the activation": {"p": P, "placement": "before"},
    "inputs only": {"input_p": INPUT_P},
    "outputs (logits)": {"output_p": P},
}


def placement_study(
    study: Study,
    seeds: Sequence[int],
    *,
    activations: Sequence[str] = ("relu", "tanh"),
    base: Setting = BASELINE,
) -> Grid:
    """Where the dropout layer goes: rows are placements, columns activations.

    Rows: no dropout; hidden dropout ``P`` after the activation; the same before the activation;
    input dropout ``INPUT_P`` only; dropout ``P`` on the outputs (logits) only.

    Example:
        >>> tiny = Setting(hidden=(8,), n_train=50, recipe=Recipe(epochs=2))
        >>> grid = placement_study(Study(), [0], activations=["relu"], base=tiny)
        >>> grid.rows[1:3]
        ('after the activation', 'before the activation')
    """
    for a in activations:
        if a not in ACTIVATIONS:
            raise ValueError(f"activations must be names from {tuple(ACTIVATIONS)}, got {a!r}")
    return study.grid(
        list(_PLACEMENT_ROWS),
        list(activations),
        lambda row, act: dataclasses.replace(base, activation=act, **_PLACEMENT_ROWS[row]),
        seeds,
    )


def width_sweep(
    study: Study, widths: Sequence[int], seeds: Sequence[int], *, base: Setting = BASELINE, p: float = P
) -> Grid:
    """Hidden width (every hidden layer as wide): rows ``widths``, columns no dropout / dropout ``p``.

    Example:
        >>> tiny = Setting(hidden=(8,), n_train=50, recipe=Recipe(epochs=2))
        >>> width_sweep(Study(), [4, 8], [0], base=tiny).settings[1][1].hidden
        (8,)
    """
    widths = [check_positive_int(w, "widths[i]") for w in widths]
    p = _check_drop(p, "p")
    depth = len(base.hidden)
    return study.grid(
        widths,
        _columns(p),
        lambda w, c: dataclasses.replace(base, hidden=(w,) * depth, p=0.0 if c == "no dropout" else p),
        seeds,
    )


def depth_study(
    study: Study, depths: Sequence[int], seeds: Sequence[int], *, base: Setting = BASELINE, p: float = P
) -> Grid:
    """Number of hidden layers, each as wide as ``base``'s first: rows ``depths``, columns no dropout / ``p``.

    Example:
        >>> tiny = Setting(hidden=(8,), n_train=50, recipe=Recipe(epochs=2))
        >>> depth_study(Study(), [1, 2], [0], base=tiny).settings[1][0].hidden
        (8, 8)
    """
    depths = [check_positive_int(d, "depths[i]") for d in depths]
    p = _check_drop(p, "p")
    width = base.hidden[0]
    return study.grid(
        depths,
        _columns(p),
        lambda d, c: dataclasses.replace(base, hidden=(width,) * d, p=0.0 if c == "no dropout" else p),
        seeds,
    )


def recipe_study(
    study: Study,
    recipes: Sequence[Recipe],
    seeds: Sequence[int],
    *,
    base: Setting = BASELINE,
    p: float = P,
) -> Grid:
    """Training recipe: rows ``recipes`` (labelled by :meth:`Recipe.describe`), columns no dropout / ``p``.

    Example:
        >>> tiny = Setting(hidden=(8,), n_train=50)
        >>> recipe_study(Study(), [Recipe(epochs=2), Recipe(epochs=1, batch_size=25)], [0], base=tiny).rows
        ('full batch, lr 0.01, 2 epochs', 'minibatches of 25, lr 0.01, 1 epochs')
    """
    recipes = list(recipes)
    for r in recipes:
        if not isinstance(r, Recipe):
            raise TypeError(f"recipes must hold Recipe objects, got {r!r}")
    p = _check_drop(p, "p")
    by_label = {r.describe(): r for r in recipes}
    return study.grid(
        list(by_label),
        _columns(p),
        lambda label, c: dataclasses.replace(base, recipe=by_label[label], p=0.0 if c == "no dropout" else p),
        seeds,
    )


# --- analysis ---------------------------------------------------------------------------------------


def _as_array(values: Any, name: str) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be numbers (a sequence or an array), got {name}={values!r}") from None
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} must be finite, got {name}={values!r}")
    return array


def paired_gain(base: Sequence[float], other: Sequence[float]) -> tuple[float, float, float]:
    r"""Mean, standard deviation and standard error of the per-seed differences ``other - base``.

    With :math:`d_s = \text{other}_s - \text{base}_s` over :math:`k` seeds:

    .. math::

        \bar d = \frac1k\sum_s d_s, \qquad
        s_d = \sqrt{\frac{1}{k-1}\sum_s (d_s - \bar d)^2}, \qquad
        \mathrm{SE} = s_d / \sqrt k .

    Pairing (same split, same initial weights for both) removes what the two runs share, so
    :math:`s_d` is usually much smaller than the spread of either accuracy over seeds. With one
    seed the deviation and standard error are 0.

    Example:
        >>> mean, std, se = paired_gain([0.90, 0.94, 0.92], [0.92, 0.95, 0.95])
        >>> round(mean, 4), round(std, 4), round(se, 4)
        (0.02, 0.01, 0.0058)
    """
    base_array, other_array = _as_array(base, "base"), _as_array(other, "other")
    if base_array.shape != other_array.shape:
        raise ValueError(
            f"base and other need one value per seed each, got {base_array.size} and {other_array.size}"
        )
    d = other_array - base_array
    k = d.size
    std = float(d.std(ddof=1)) if k > 1 else 0.0
    return float(d.mean()), std, std / math.sqrt(k)


def units_needed(widths: Sequence[float], base: Sequence[float], other: Sequence[float]) -> float:
    r"""How many times wider a network must be to reach the same accuracy: the horizontal shift of two curves.

    ``base[i]`` and ``other[i]`` are accuracies (e.g. means over seeds) at ``widths[i]``
    (increasing). On a :math:`\log_2` width axis, each curve is made increasing (running maximum,
    so only its rising part counts) and inverted by linear interpolation, :math:`w(a)`. For
    accuracy levels :math:`a` evenly spaced over the range both curves cover, the function returns

    .. math::

        r = 2^{\operatorname{mean}_a\left[\log_2 w_{\text{other}}(a) - \log_2 w_{\text{base}}(a)\right]},

    the geometric mean of the width ratios at equal accuracy. The JMLR paper's rule of thumb
    (a dropout network needs :math:`n/q` units where a network without dropout needs :math:`n`)
    predicts :math:`r = 1/q`.

    Example:
        >>> widths = [4, 8, 16, 32, 64]
        >>> base = [0.5, 0.7, 0.8, 0.85, 0.87]
        >>> round(units_needed(widths, base, [0.3, 0.5, 0.7, 0.8, 0.85]), 4)  # the same curve, shifted
        2.0
    """
    w = _as_array(widths, "widths")
    if (w <= 0).any() or (np.diff(w) <= 0).any():
        raise ValueError(f"widths must be positive and increasing, got widths={list(widths)!r}")
    curves = [_as_array(v, name) for v, name in ((base, "base"), (other, "other"))]
    for curve, name in zip(curves, ("base", "other"), strict=True):
        if curve.shape != w.shape:
            raise ValueError(f"{name} needs one accuracy per width ({w.size}), got {curve.size}")
    rising = [np.maximum.accumulate(c) for c in curves]
    low = max(r[0] for r in rising)
    high = min(r[-1] for r in rising)
    if not high > low:
        raise ValueError(
            f"the two curves share no range of accuracies (base covers {rising[0][0]:.4g} to "
            f"{rising[0][-1]:.4g}, other {rising[1][0]:.4g} to {rising[1][-1]:.4g})"
        )
    levels = np.linspace(low, high, 101)
    log_w = np.log2(w)

    def inverse(curve: np.ndarray) -> np.ndarray:
        # Strictly increasing breakpoints: keep the first width reaching each new running maximum.
        keep = np.concatenate([[True], np.diff(curve) > 0])
        return np.interp(levels, curve[keep], log_w[keep])

    return float(2.0 ** np.mean(inverse(rising[1]) - inverse(rising[0])))


def format_table(
    grid: Grid,
    metrics: Sequence[str] = ("train_acc", "test_acc", "gap", "test_loss"),
    column: int = 0,
    *,
    decimals: int = 2,
) -> str:
    """A text table of one column of ``grid``: a line per row, ``mean ± std`` over seeds per metric.

    Accuracies and the gap are printed in percent with ``decimals`` decimals, losses with three
    (the headers are the metric names, without units).
    Columns are as narrow as their contents allow.

    Example:
        >>> values = {m: np.full((1, 1, 2), 0.5) for m in METRICS}
        >>> grid = Grid(("a",), ("c",), ((Setting(),),), (0, 1), values)
        >>> print(format_table(grid, ["test_acc", "test_loss"], decimals=1))
             test acc      test loss
        a  50.0 ± 0.0  0.500 ± 0.000
    """
    for m in metrics:
        if m not in METRICS:
            raise ValueError(f"metrics must be names from {METRICS}, got {m!r}")
    if isinstance(column, bool) or not isinstance(column, int) or not 0 <= column < len(grid.columns):
        raise ValueError(f"column must be a column index below {len(grid.columns)}, got column={column!r}")
    if isinstance(decimals, bool) or not isinstance(decimals, int) or not 0 <= decimals <= 6:
        raise ValueError(f"decimals must be an integer from 0 to 6, got decimals={decimals!r}")
    headers, columns = [], []
    for m in metrics:
        percent = m.endswith("acc") or m == "gap"
        factor, digits = (100.0, decimals) if percent else (1.0, 3)
        means, stds = grid.mean(m)[:, column] * factor, grid.std(m)[:, column] * factor
        headers.append(m.replace("_", " "))
        columns.append(
            [f"{mean:.{digits}f} ± {std:.{digits}f}" for mean, std in zip(means, stds, strict=True)]
        )
    widths = [max(len(h), *(len(c) for c in cells)) + 2 for h, cells in zip(headers, columns, strict=True)]
    label_width = max(len(str(r)) for r in grid.rows)
    lines = [" " * label_width + "".join(f"{h:>{w}}" for h, w in zip(headers, widths, strict=True))]
    for i, row in enumerate(grid.rows):
        cells = "".join(f"{cells[i]:>{w}}" for cells, w in zip(columns, widths, strict=True))
        lines.append(f"{row!s:<{label_width}}" + cells)
    return "\n".join(lines)


def plot_mean_std(
    ax: Axes,
    x: Sequence[float],
    values: np.ndarray,
    *,
    label: str,
    color: str | None = None,
    percent: bool = True,
    marker: str = "o",
    offset: float = 0.0,
) -> None:
    """Draw the mean over seeds of ``values`` (shape ``(len(x), seeds)``) with ±1 standard deviation bars.

    ``percent`` multiplies by 100; ``offset`` shifts the points sideways (multiplying ``x`` by
    ``2 ** offset``, for log axes) so that two series at the same ``x`` do not hide each other.

    Example:
        >>> import matplotlib.pyplot as plt
        >>> fig, ax = plt.subplots()
        >>> plot_mean_std(ax, [1, 2], np.array([[0.5, 0.6], [0.7, 0.8]]), label="a")
        >>> len(ax.lines) > 0
        True
        >>> plt.close(fig)
    """
    values = np.asarray(values, dtype=np.float64)
    x_array = np.asarray(x, dtype=np.float64)
    if values.ndim != 2 or values.shape[0] != x_array.size:
        raise ValueError(f"values must have shape (len(x), seeds) = ({x_array.size}, k), got {values.shape}")
    factor = 100.0 if percent else 1.0
    std = values.std(axis=1, ddof=1) if values.shape[1] > 1 else np.zeros(len(values))
    ax.errorbar(
        x_array * 2.0**offset,
        values.mean(axis=1) * factor,
        yerr=std * factor,
        label=label,
        color=color,
        marker=marker,
        capsize=3,
        lw=1.8,
        ms=5,
    )
