r"""Many small MLPs trained as one batched model: the trainer behind chapter 8's sweeps.

:class:`BatchedMLP` holds :math:`M` independent networks ("members"). Member :math:`m` has its own
weights :math:`W^{(m)}_l` (stacked into a tensor of shape ``(M, in, out)``) and computes

.. math::

    h^{(m)}_l = \phi\big(h^{(m)}_{l-1} W^{(m)}_l + b^{(m)}_l\big),

for all members at once with one batched matrix product (``torch.baddbmm``). Training minimizes the
*sum* of the members' losses, :math:`L = \sum_m L_m(\theta_m)`. Member :math:`m`'s parameters appear
only in :math:`L_m`, so :math:`\partial L / \partial \theta_m = \partial L_m / \partial \theta_m`, and
Adam's update is computed element by element: every member follows exactly the trajectory it would
follow alone. Each member also draws its initial weights, its minibatch order and its dropout masks
from its own generators, seeded by its seed: its result does not depend on which other members share
the batch (the tests check both facts against separately trained ``nn.Sequential`` networks).

:class:`Recipe` says how to train (epochs, learning rate, minibatch size); :func:`fit_members` trains;
:meth:`BatchedMLP.member` returns one member as an ordinary ``nn.Sequential``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from dropoutlib._validation import (
    check_choice,
    check_positive_int,
    check_probability,
    check_real,
    check_widths,
)
from dropoutlib.course.data import Split
from dropoutlib.course.seeding import check_seed

if TYPE_CHECKING:
    pass

__all__ = [
    "ACTIVATIONS",
    "DEFAULT_RECIPE",
    "MINIBATCH_RECIPE",
    "PLACEMENTS",
    "fit_members",
    "BatchedMLP",
    "MemberHistory",
    "Recipe",
]

_INIT_OFFSET, _ORDER_OFFSET, _MASK_OFFSET = 0, 2**32, 2**33  # separate generator streams per seed

#: Activations a :class:`Setting` may name: the function and the ``nn.Module`` class computing it.
ACTIVATIONS: dict[str, tuple[Callable[[torch.Tensor], torch.Tensor], type[nn.Module]]] = {
    "relu": (torch.relu, nn.ReLU),
    "tanh": (torch.tanh, nn.Tanh),
    "sigmoid": (torch.sigmoid, nn.Sigmoid),
}
#: Where hidden dropout sits: after the activation (``Linear, act, Dropout``, as in
#: :func:`~course.mlp`) or before it (``Linear, Dropout, act``).
PLACEMENTS: tuple[str, ...] = ("after", "before")


def _check_drop(value: Any, name: str) -> float:
    value = check_probability(value, name)
    if value == 1.0:
        raise ValueError(f"{name} must be below 1 (with {name}=1 every unit is dropped and 1/q is infinite)")
    return value


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
        object.__setattr__(self, "lr", check_real(self.lr, "lr", positive=True))
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


# --- many networks as one ---------------------------------------------------------------------------


def _per_member(value: Any, n: int, name: str, check: Callable[[Any, str], Any]) -> list[Any]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        return [check(value, name)] * n
    if len(value) != n:
        raise ValueError(f"{name} must be one value or one per member ({n}), got {len(value)} values")
    return [check(v, f"{name}[{i}]") for i, v in enumerate(value)]


class BatchedMLP(nn.Module):
    r"""``len(seeds)`` independent MLPs of one architecture, computed together.

    Member :math:`m` is the network that :func:`~course.mlp` would build for its drop
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
        self.hidden = check_widths(hidden)
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
        places = _per_member(placement, n, "placement", lambda v, name: check_choice(v, name, PLACEMENTS))
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

    def add_weight_decay(self, decay: torch.Tensor) -> None:
        r"""Add each member's L2 gradient to the gradients: :math:`\lambda_m \theta_m` for member
        :math:`m`, as ``torch.optim.Adam(weight_decay=λ)`` would for that member alone.

        ``decay`` holds one :math:`\lambda_m` per member, shape ``(M,)``. Call it after
        ``backward()`` and before the optimizer's step.

        Example:
            >>> model = BatchedMLP(2, [3], 1, seeds=[0, 1])
            >>> model(torch.ones(4, 2)).sum().backward()
            >>> before = model.weights[0].grad.clone()
            >>> model.add_weight_decay(torch.tensor([0.0, 0.5]))
            >>> torch.equal(model.weights[0].grad[0], before[0])
            True
        """
        if decay.shape != (self.n_members,):
            raise ValueError(f"decay must hold one value per member, shape ({self.n_members},), "
                             f"got shape {tuple(decay.shape)}")
        with torch.no_grad():
            for parameter in self.parameters():
                parameter.grad.add_(decay.view(-1, 1, 1) * parameter)

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
    ``torch.optim.Adam(lr=lr)`` on :math:`L_m`: like :func:`course.fit` with ``optimizer="adam"``.
    Member :math:`m`'s minibatch order and masks come from generators seeded with ``seeds[m]``
    (separate streams from its initialization), reshuffled every epoch.

    Args:
        model: the :class:`BatchedMLP`.
        data: one :class:`~dropoutlib.course.data.Split` shared by all members, or one per member (all of
            the same sizes); classification, int64 labels.
        epochs: passes over the training set.
        lr: Adam's learning rate.
        batch_size: minibatch size, or ``None`` for full batch.
        eval_every: record the history every this many epochs (``None``: only after the last).

    Returns:
        The history; the model is left in evaluation mode.

    Example:
        >>> from dropoutlib.course.data import load_digits
        >>> model = BatchedMLP(64, [16], 10, seeds=[0, 1], p=[0.0, 0.5])
        >>> history = fit_members(model, load_digits(n_train=100), epochs=20)
        >>> history.final("train_acc").shape, bool(history.final("train_acc").min() > 0.5)
        ((2,), True)
    """
    if not isinstance(model, BatchedMLP):
        raise TypeError(f"model must be a BatchedMLP, got {type(model).__name__}")
    epochs = check_positive_int(epochs, "epochs")
    lr = check_real(lr, "lr", positive=True)
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
