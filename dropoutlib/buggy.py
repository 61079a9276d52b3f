r"""Small networks that each contain one classic dropout bug, next to the same network done right.

Chapter 11 trains these on the digits to measure what each bug costs, and
:mod:`dropoutlib.diagnostics` is tested against them: each check must fire on its bug and stay quiet on
the correct twin. Every builder takes ``(in_features, hidden, out_features, p)`` like
:func:`~dropoutlib.mlp`; ``hidden`` is a sequence of widths, or one int ``h`` for two hidden layers of
width ``h`` (two layers of the same width are what makes "one mask shared by layers" visible).

The bugs, and what holds each one:

- **Dropout left on at test time.** :class:`FunctionalDropoutMLP` with ``respect_training=False`` calls
  ``F.dropout(h, p)``, whose ``training`` argument defaults to ``True``: ``model.eval()`` does not turn it
  off. (Forgetting ``model.eval()`` altogether needs no class: evaluate any model left in training mode.)
- **One mask or random key reused.** :class:`ReusedMaskMLP` with ``reuse="steps"`` draws every mask from a
  generator re-seeded with the same key on every call (the same units are dropped on every step), and
  with ``reuse="layers"`` gives every layer the same key on a call (layers of one width drop the same
  units). This is the PyTorch form of passing one JAX/Flax ``rng`` to every ``nn.Dropout`` and to every
  minibatch of an epoch.
- **Keep probability passed as the drop probability.** Needs no class: ``mlp(..., p=0.8)`` where a keep
  probability of 0.8 (``p = 0.2``) was meant. :class:`KeepProbDropout` is the same confusion *inside* a
  hand-written layer: it keeps each unit with probability ``p``.
- **Dropout on the output.** :func:`mlp_with_output_dropout` appends ``nn.Dropout(p)`` after the last
  ``Linear``: in training, a fraction ``p`` of the predictions is zeroed and the rest multiplied by
  ``1/q``.
- **Monte Carlo dropout that also switches BatchNorm to training mode.** :func:`bn_mlp` builds
  Linear-BatchNorm-ReLU-Dropout blocks; :func:`naive_mc_predict` calls ``model.train()`` (BatchNorm then
  normalizes with the statistics of the test batch and overwrites its running statistics), whereas
  :func:`careful_mc_predict` switches only the dropout layers to training mode.

Notation: ``p`` is the probability of dropping a unit, ``q = 1 - p`` the probability of keeping it.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from dropoutlib._modes import restored_modes
from dropoutlib._validation import check_floating, check_positive_int, check_probability
from dropoutlib.batchnorm import batchnorm_mlp
from dropoutlib.functional import dropout
from dropoutlib.models import mlp

__all__ = [
    "REUSE_MODES",
    "FunctionalDropoutMLP",
    "KeepProbDropout",
    "KeyedDropout",
    "ReusedMaskMLP",
    "bn_mlp",
    "careful_mc_predict",
    "mlp_with_output_dropout",
    "naive_mc_predict",
]

#: The values of ``ReusedMaskMLP(reuse=...)``: the two bugs, and ``None`` for correct fresh masks.
REUSE_MODES: tuple[str | None, ...] = ("steps", "layers", None)


def _widths(hidden: Any) -> list[int]:
    """``hidden`` as a list of widths: an int ``h`` means two hidden layers of width ``h``."""
    if isinstance(hidden, numbers.Integral) and not isinstance(hidden, bool):
        width = check_positive_int(hidden, "hidden")
        return [width, width]
    if isinstance(hidden, str | bytes) or not isinstance(hidden, Sequence):
        raise TypeError(
            "hidden must be an int (two hidden layers of that width) or a sequence of widths such as "
            f"[64, 64], got hidden={hidden!r} ({type(hidden).__name__})"
        )
    widths = [check_positive_int(width, f"hidden[{i}]") for i, width in enumerate(hidden)]
    if not widths:
        raise ValueError("hidden must name at least one hidden layer, got hidden=[]")
    return widths


def _check_bool(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {name}={value!r} ({type(value).__name__})")
    return value


class FunctionalDropoutMLP(nn.Module):
    r"""An MLP that applies dropout with ``torch.nn.functional.dropout`` inside ``forward``.

    Each hidden layer computes :math:`h_l = D_p(\mathrm{ReLU}(W_l h_{l-1} + b_l))` and the output is
    :math:`W_{L+1} h_L + b_{L+1}` (no dropout on it). With ``respect_training=True`` (correct),
    :math:`D_p` is ``F.dropout(h, p, training=self.training)``: masks in training mode, the identity
    after ``model.eval()``. With ``respect_training=False`` (the bug) it is ``F.dropout(h, p)``: the
    functional form's ``training`` argument defaults to ``True`` and knows nothing of the module's mode,
    so dropout stays on at test time and predictions are random.

    There are no dropout *modules* inside (forward hooks cannot see the masks): the bug shows in the
    outputs, e.g. with :func:`dropoutlib.diagnostics.check_eval_deterministic`.

    Args:
        in_features, out_features: positive ints.
        hidden: a sequence of hidden widths, or an int ``h`` for two hidden layers of width ``h``.
        p: drop probability of every hidden layer, in ``[0, 1]``.
        respect_training: pass ``training=self.training`` to ``F.dropout`` (correct) or not (bug).

    Example:
        >>> _ = torch.manual_seed(0)
        >>> x = torch.randn(4, 8)
        >>> buggy = FunctionalDropoutMLP(8, 16, 3, p=0.5, respect_training=False).eval()
        >>> torch.equal(buggy(x), buggy(x))  # eval mode, yet two passes differ
        False
        >>> fixed = FunctionalDropoutMLP(8, 16, 3, p=0.5).eval()
        >>> torch.equal(fixed(x), fixed(x))
        True
    """

    def __init__(
        self,
        in_features: int,
        hidden: int | Sequence[int],
        out_features: int,
        p: float = 0.5,
        respect_training: bool = True,
    ) -> None:
        super().__init__()
        in_features = check_positive_int(in_features, "in_features")
        out_features = check_positive_int(out_features, "out_features")
        widths = _widths(hidden)
        self.p = check_probability(p, "p")
        self.respect_training = _check_bool(respect_training, "respect_training")
        sizes = [in_features, *widths]
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True))
        self.out = nn.Linear(sizes[-1], out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for layer in self.hidden:
            h = torch.relu(layer(h))
            if self.respect_training:
                h = F.dropout(h, self.p, training=self.training)
            else:
                h = F.dropout(h, self.p)  # the bug: training defaults to True
        return self.out(h)

    def extra_repr(self) -> str:
        return f"p={self.p}, respect_training={self.respect_training}"


class KeyedDropout(nn.Module):
    r"""Inverted dropout whose mask can be drawn from an explicit integer key (a seed).

    ``forward(input, key=None)``: in training mode, :math:`y = m \odot x / q` with
    :math:`m_i \sim \mathrm{Bernoulli}(q)`; the mask comes from torch's global generator when ``key`` is
    ``None`` (exactly as ``nn.Dropout``) and otherwise from a fresh ``torch.Generator`` seeded with
    ``key``, so that **the same key gives the same mask** (for the same input shape). In evaluation mode,
    ``y = x``. This is the building block of :class:`ReusedMaskMLP`: a key is to a PyTorch generator what
    a PRNG key is to ``jax.random``.

    Args:
        p: drop probability, in ``[0, 1]``.

    Example:
        >>> layer = KeyedDropout(0.5)
        >>> x = torch.ones(2, 6)
        >>> torch.equal(layer(x, key=7), layer(x, key=7))  # one key, one mask
        True
        >>> layer.eval()(x, key=7) is x
        True
    """

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        self.p = check_probability(p, "p")

    def forward(self, input: torch.Tensor, key: int | None = None) -> torch.Tensor:
        if not self.training:
            return input
        if key is None:
            return dropout(input, self.p)
        generator = torch.Generator(device=input.device).manual_seed(int(key))
        return dropout(input, self.p, generator=generator)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class ReusedMaskMLP(nn.Module):
    r"""An MLP whose dropout masks are drawn from reused random keys: the bug of the 004 source.

    The network is :math:`h_l = D^{(l)}_p(\mathrm{ReLU}(W_l h_{l-1} + b_l))`, output
    :math:`W_{L+1} h_L + b_{L+1}`, with one :class:`KeyedDropout` per hidden layer (``self.dropouts``).
    What changes is the key each layer receives in training mode:

    - ``reuse="steps"`` (bug): layer ``l`` always gets the key ``seed + l``. Its generator is re-seeded
      with the same key on every forward call, so for a batch of the same size the same units are
      dropped on every training step (the thinned network never changes), as when one JAX key is passed
      to every minibatch of an epoch.
    - ``reuse="layers"`` (bug): on each call one key is drawn from torch's global generator and given to
      every layer. Masks change between calls, but layers of the same width drop the same units, as when
      one JAX key is passed to every ``nn.Dropout`` of a model.
    - ``reuse=None`` (correct): no key; every mask is a fresh draw from torch's global generator.

    Args:
        in_features, out_features: positive ints.
        hidden: a sequence of hidden widths, or an int ``h`` for two hidden layers of width ``h``.
        p: drop probability of every hidden layer, in ``[0, 1]``.
        reuse: ``"steps"``, ``"layers"`` or ``None`` (see :data:`REUSE_MODES`).
        seed: the fixed key of ``reuse="steps"`` (a non-negative int).

    Example:
        >>> _ = torch.manual_seed(0)
        >>> x = torch.randn(4, 8)
        >>> steps = ReusedMaskMLP(8, 16, 3, p=0.5, reuse="steps")
        >>> torch.equal(steps(x), steps(x))  # training mode, yet the same masks on every call
        True
        >>> fresh = ReusedMaskMLP(8, 16, 3, p=0.5, reuse=None)
        >>> torch.equal(fresh(x), fresh(x))
        False
    """

    def __init__(
        self,
        in_features: int,
        hidden: int | Sequence[int],
        out_features: int,
        p: float = 0.5,
        reuse: str | None = "steps",
        seed: int = 0,
    ) -> None:
        super().__init__()
        in_features = check_positive_int(in_features, "in_features")
        out_features = check_positive_int(out_features, "out_features")
        widths = _widths(hidden)
        self.p = check_probability(p, "p")
        if reuse not in REUSE_MODES:
            raise ValueError(f"reuse must be one of {REUSE_MODES}, got reuse={reuse!r}")
        self.reuse = reuse
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got seed={seed!r}")
        self.seed = int(seed)
        sizes = [in_features, *widths]
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True))
        self.dropouts = nn.ModuleList(KeyedDropout(self.p) for _ in widths)
        self.out = nn.Linear(sizes[-1], out_features)

    def _keys(self) -> list[int | None]:
        n = len(self.dropouts)
        if self.reuse == "steps":
            return [self.seed + layer for layer in range(n)]
        if self.reuse == "layers" and self.training:
            key = int(torch.randint(0, 2**62, ()).item())  # fresh per call, shared by every layer
            return [key] * n
        return [None] * n

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for layer, drop, key in zip(self.hidden, self.dropouts, self._keys(), strict=True):
            h = drop(torch.relu(layer(h)), key=key)
        return self.out(h)

    def extra_repr(self) -> str:
        return f"p={self.p}, reuse={self.reuse!r}, seed={self.seed}"


class KeepProbDropout(nn.Module):
    r"""A hand-written dropout layer with the keep/drop confusion inside: it treats ``p`` as ``q``.

    In training mode it computes :math:`y = m \odot x / p` with :math:`m_i \sim \mathrm{Bernoulli}(p)`:
    it **keeps** each unit with probability ``p`` (TF1's ``keep_prob`` convention) while its attribute,
    its repr and every caller say ``p`` is the probability of **dropping**. ``KeepProbDropout(0.2)``
    drops 80% of the units. In evaluation mode, ``y = x``. Pass it to ``mlp(..., dropout_layer=...)``.
    :func:`dropoutlib.diagnostics.check_drop_rate` measures the zeroed fraction and finds ``1 - p``.

    Args:
        p: the (misread) drop probability, in ``(0, 1]``.

    Example:
        >>> _ = torch.manual_seed(0)
        >>> y = KeepProbDropout(0.2)(torch.ones(10_000))
        >>> round((y == 0).float().mean().item(), 1)  # drops 80%, not 20%
        0.8
    """

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        self.p = check_probability(p, "p")
        if self.p == 0.0:
            raise ValueError("KeepProbDropout needs p > 0 (it keeps with probability p), got p=0.0")

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return input
        mask = torch.empty_like(input).bernoulli_(self.p)  # the bug: p used as the keep probability
        return input * mask / self.p

    def extra_repr(self) -> str:
        return f"p={self.p}"


def mlp_with_output_dropout(
    in_features: int, hidden: int | Sequence[int], out_features: int, p: float = 0.5
) -> nn.Sequential:
    r"""``dropoutlib.mlp(in_features, hidden, out_features, p)`` with ``nn.Dropout(p)`` after the output.

    The bug: in training mode the prediction :math:`\hat y = D_p(W_{L+1} h_L + b_{L+1})` has a fraction
    ``p`` of its entries set to 0 and the rest multiplied by ``1/q``, so a regression loss compares the
    targets with corrupted predictions (and for classification, zeroed logits). The correct twin is
    :func:`~dropoutlib.mlp` itself, which never puts dropout after the last ``Linear``.

    Args:
        in_features, out_features: positive ints.
        hidden: a sequence of hidden widths, or an int ``h`` for two hidden layers of width ``h``.
        p: drop probability after every hidden layer and on the output, in ``[0, 1]``.

    Example:
        >>> model = mlp_with_output_dropout(4, [8], 1, p=0.5)
        >>> [type(m).__name__ for m in model]
        ['Linear', 'ReLU', 'Dropout', 'Linear', 'Dropout']
    """
    model = mlp(in_features, _widths(hidden), out_features, p=p)
    model.append(nn.Dropout(check_probability(p, "p")))
    return model


def bn_mlp(in_features: int, hidden: int | Sequence[int], out_features: int, p: float = 0.5) -> nn.Sequential:
    r"""An MLP of Linear-BatchNorm1d-ReLU-Dropout blocks (the 004 source's stack), then a Linear.

    Hidden layer ``l`` computes :math:`h_l = D_p(\mathrm{ReLU}(\mathrm{BN}_l(W_l h_{l-1} + b_l)))`.
    In training mode BatchNorm normalizes with the mean and variance of the current batch and updates its
    running statistics; in evaluation mode it uses the running statistics. A dropout layer is added only
    when ``p > 0``. It is :func:`dropoutlib.batchnorm.batchnorm_mlp` with ``order="bn-dropout"``.
    This is the model on which Monte Carlo dropout must switch on *only* dropout
    (:func:`careful_mc_predict`), not the whole model (:func:`naive_mc_predict`).

    Args:
        in_features, out_features: positive ints.
        hidden: a sequence of hidden widths, or an int ``h`` for two hidden layers of width ``h``.
        p: drop probability after every hidden block, in ``[0, 1]``.

    Example:
        >>> [type(m).__name__ for m in bn_mlp(4, [8], 3, p=0.5)]
        ['Linear', 'BatchNorm1d', 'ReLU', 'Dropout', 'Linear']
    """
    return batchnorm_mlp(in_features, _widths(hidden), out_features, p=p, order="bn-dropout")


def _check_mc_args(model: Any, x: Any, samples: Any) -> int:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got model={model!r} ({type(model).__name__})")
    check_floating(x, "x")
    return check_positive_int(samples, "samples")


def _mean_softmax(model: nn.Module, x: torch.Tensor, samples: int) -> torch.Tensor:
    with torch.no_grad():
        total = torch.softmax(model(x), dim=-1)
        for _ in range(samples - 1):
            total += torch.softmax(model(x), dim=-1)
    return total / samples


def naive_mc_predict(model: nn.Module, x: torch.Tensor, samples: int) -> torch.Tensor:
    r"""Monte Carlo dropout done wrong: ``model.train()``, then average the softmax over ``samples`` passes.

    Returns :math:`\frac1T \sum_{t=1}^T \mathrm{softmax}(f(x; m_t))` with :math:`T` = ``samples`` and
    fresh dropout masks :math:`m_t` (torch's global generator), shape ``(n, n_classes)``. The bug:
    ``model.train()`` also puts every BatchNorm layer in training mode, so each pass normalizes with the
    mean and variance of ``x`` itself (a prediction then depends on the other test examples in the batch)
    and **overwrites the running statistics** learned in training (each pass moves them towards the test
    batch's). The modes of all submodules are restored afterwards; the running statistics are not.

    Example:
        >>> _ = torch.manual_seed(0)
        >>> model = bn_mlp(4, [8], 3, p=0.5).eval()
        >>> before = model[1].running_mean.clone()
        >>> probs = naive_mc_predict(model, torch.randn(16, 4), samples=5)
        >>> probs.shape, model.training
        (torch.Size([16, 3]), False)
        >>> torch.equal(before, model[1].running_mean)  # BatchNorm's running mean was overwritten
        False
    """
    samples = _check_mc_args(model, x, samples)
    with restored_modes(model):
        model.train()  # the bug: BatchNorm too
        return _mean_softmax(model, x, samples)


def careful_mc_predict(model: nn.Module, x: torch.Tensor, samples: int) -> torch.Tensor:
    r"""Monte Carlo dropout done right: evaluation mode, with only the dropout layers in training mode.

    Returns :math:`\frac1T \sum_{t=1}^T \mathrm{softmax}(f(x; m_t))` with :math:`T` = ``samples``, shape
    ``(n, n_classes)``: the masks :math:`m_t` are random, while BatchNorm keeps normalizing with its
    running statistics and does not update them, so each example's prediction depends on that example
    alone. Dropout layers are found by :func:`dropoutlib.diagnostics.dropout_layers` (dropout called
    as a function inside ``forward`` is not switched on). Modes are restored afterwards.

    Example:
        >>> _ = torch.manual_seed(0)
        >>> model = bn_mlp(4, [8], 3, p=0.5).eval()
        >>> before = model[1].running_mean.clone()
        >>> probs = careful_mc_predict(model, torch.randn(16, 4), samples=5)
        >>> torch.allclose(probs.sum(dim=1), torch.ones(16)), torch.equal(before, model[1].running_mean)
        (True, True)
    """
    from dropoutlib.diagnostics import dropout_layers

    samples = _check_mc_args(model, x, samples)
    with restored_modes(model):
        model.eval()
        for _, layer in dropout_layers(model):
            layer.train()
        return _mean_softmax(model, x, samples)
