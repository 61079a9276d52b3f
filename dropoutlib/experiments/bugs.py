r"""Chapter 11's dropout bugs: small networks that each hold one, and what each one costs on the digits.

The module has two halves. The **models**: each builder holds one classic dropout bug, next to the same
network done right, and :mod:`dropoutlib.diagnostics` is tested against them (each check must fire on
its bug and stay quiet on the correct twin). Every builder takes ``(in_features, hidden, out_features,
p)`` like :func:`~course.mlp`; ``hidden`` is a sequence of widths, or one int ``h`` for two hidden
layers of width ``h`` (two layers of the same width are what makes "one mask shared by layers"
visible). The **experiments**: each trains a network with one bug next to its correct twin and returns
what it measured in a small dataclass.

The bugs, what holds each one, and the experiment that measures it:

- **Dropout left on at test time.** :class:`FunctionalDropoutMLP` with ``respect_training=False`` calls
  ``F.dropout(h, p)``, whose ``training`` argument defaults to ``True``: ``model.eval()`` does not turn it
  off. (Forgetting ``model.eval()`` altogether needs no class: evaluate any model left in training mode.)
  :func:`mode_bug_effect` trains one network and predicts its test set in evaluation mode and,
  repeatedly, with dropout on, in both ways.
- **One mask or random key reused.** :class:`ReusedMaskMLP` with ``reuse="steps"`` draws every mask from a
  generator re-seeded with the same key on every call (the same units are dropped on every step), and
  with ``reuse="layers"`` gives every layer the same key on a call (layers of one width drop the same
  units). This is the PyTorch form of passing one JAX/Flax ``rng`` to every ``nn.Dropout`` and to every
  minibatch of an epoch. :func:`reused_mask_effect` trains both against fresh masks and no dropout.
- **Keep probability passed as the drop probability.** Needs no class: ``mlp(..., p=0.8)`` where a keep
  probability of 0.8 (``p = 0.2``) was meant; :func:`keep_prob_effect` trains both.
  :class:`KeepProbDropout` is the same confusion *inside* a hand-written layer: it keeps each unit with
  probability ``p``.
- **Dropout on the output.** :func:`mlp_with_output_dropout` appends ``nn.Dropout(p)`` after the last
  ``Linear``: in training, a fraction ``p`` of the predictions is zeroed and the rest multiplied by
  ``1/q``. :func:`output_dropout_effect` trains it on :func:`digits_value_regression`; in evaluation
  mode it predicts about ``q`` times the target (see the function's docstring for the derivation).
- **Monte Carlo dropout that also switches BatchNorm to training mode.** :func:`bn_mlp` builds
  Linear-BatchNorm-ReLU-Dropout blocks; :func:`naive_mc_predict` calls ``model.train()`` (BatchNorm then
  normalizes with the statistics of the test batch and overwrites its running statistics), whereas
  :func:`careful_mc_predict` switches only the dropout layers to training mode.
  :func:`mc_batchnorm_effect` measures predictions that depend on the other examples of the batch and
  running statistics overwritten by one request.

Every experiment trains its networks the same way, through one helper: each is built right after
``seed_everything(seed)`` (so twins whose layers agree start from the same weights) and trained by
:func:`~course.fit` (Adam, one thread) on the same minibatches. The results are deterministic given
``seed``, which fixes the digits' training/test split, the initial weights, the minibatch order and
every dropout mask. The ``*_claims`` functions turn the measurements into the claims the chapter makes,
each threshold written once: the chapter's check cells and ``tests/chapters/test_bugs_claims.py`` call
them.

Notation: ``p`` is the probability of dropping a unit, ``q = 1 - p`` the probability of keeping it.
"""

from __future__ import annotations

import copy
import functools
import numbers
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dropoutlib._modes import restored_modes
from dropoutlib._validation import check_bool, check_floating, check_positive_int, check_probability
from dropoutlib.course.claims import Claim, above, below
from dropoutlib.course.data import Split, check_split, load_digits
from dropoutlib.course.models import mlp
from dropoutlib.course.seeding import check_seed, seed_everything
from dropoutlib.course.train import History, evaluate, fit, predict_labels
from dropoutlib.experiments.batchnorm import batchnorm_mlp
from dropoutlib.nn.dropout import dropout

__all__ = [
    "EXPECTED_FAILURES",
    "REUSE_MODES",
    "REUSE_VARIANTS",
    "bn_mlp",
    "careful_mc_predict",
    "companion_claims",
    "detection_claims",
    "diagnose_claims",
    "digits_value_regression",
    "fresh_mask_loss",
    "functional_claims",
    "keep_prob_claims",
    "keep_prob_effect",
    "layers_claims",
    "mc_batchnorm_claims",
    "mc_batchnorm_effect",
    "mlp_with_output_dropout",
    "mode_bug_effect",
    "mode_claims",
    "naive_mc_predict",
    "output_dropout_claims",
    "output_dropout_effect",
    "reused_mask_effect",
    "shrinkage",
    "steps_claims",
    "called_dropout_layers",
    "token_batch",
    "transformer_claims",
    "transformer_diagnosis",
    "TransformerDiagnosis",
    "FunctionalDropoutMLP",
    "KeepProbDropout",
    "KeepProbEffect",
    "KeyedDropout",
    "MCBatchNormEffect",
    "ModeBugEffect",
    "OutputDropoutEffect",
    "ReusedMaskMLP",
    "ReusedMaskRun",
]

# --- the models -----------------------------------------------------------------------------------

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
        self.respect_training = check_bool(respect_training, "respect_training")
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
    r"""``course.mlp(in_features, hidden, out_features, p)`` with ``nn.Dropout(p)`` after the output.

    The bug: in training mode the prediction :math:`\hat y = D_p(W_{L+1} h_L + b_{L+1})` has a fraction
    ``p`` of its entries set to 0 and the rest multiplied by ``1/q``, so a regression loss compares the
    targets with corrupted predictions (and for classification, zeroed logits). The correct twin is
    :func:`~course.mlp` itself, which never puts dropout after the last ``Linear``.

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
    when ``p > 0``. It is :func:`dropoutlib.experiments.batchnorm.batchnorm_mlp` with ``order="bn-dropout"``.
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


# --- the experiments ------------------------------------------------------------------------------

#: The four trainings of :func:`reused_mask_effect`: no dropout, fresh masks (correct), and the two bugs.
REUSE_VARIANTS: tuple[str, ...] = ("no dropout", "fresh", "steps", "layers")

_EVAL_SEED_OFFSET = 10_000  # the masks of predictions made with dropout on: seed + this


def _check_data(data: Any, seed: int, *, regression: bool = False) -> Split:
    return check_split(data, lambda: digits_value_regression(seed) if regression else load_digits(seed=seed))


def _check_batch_size(batch_size: Any) -> int | None:
    return None if batch_size is None else check_positive_int(batch_size, "batch_size")


def _n_classes(data: Split) -> int:
    return int(max(data.y_train.max().item(), data.y_test.max().item())) + 1


def _train_twins(
    builds: Mapping[str, Callable[[], nn.Module]],
    data: Split,
    *,
    seed: int,
    epochs: int,
    batch_size: int | None,
    progress: bool,
    eval_every: int | None = None,
    **fit_options: Any,
) -> dict[str, tuple[nn.Module, History]]:
    """Train every network ``builds[name]()`` on ``data`` the same way: a buggy model and its twin.

    Each network is built right after ``seed_everything(seed)``, so networks whose layers are created in
    the same order start from the same weights, and trained by :func:`~course.fit` with the same
    ``seed`` (the same minibatch order), ``batch_size`` and ``epochs``, recording the test metrics every
    ``eval_every`` epochs (``None``: after the last one only); ``fit_options`` (``lr``, ``task``) go to
    :func:`~course.fit` as they are. Returns ``{name: (model, history)}`` in the order of ``builds``.
    """
    batch_size = _check_batch_size(batch_size)
    trained = {}
    for name, build in builds.items():
        seed_everything(seed)
        model = build()
        history = fit(
            model,
            data,
            epochs=epochs,
            batch_size=batch_size,
            seed=seed,
            progress=progress,
            eval_every=epochs if eval_every is None else eval_every,
            **fit_options,
        )
        trained[name] = model, history
    return trained


# --- dropout left on at test time -----------------------------------------------------------------


@dataclass
class ModeBugEffect:
    """What :func:`mode_bug_effect` measured on one trained network.

    Attributes:
        model: the trained :class:`FunctionalDropoutMLP` (correct flag, eval mode).
        data: the digits split.
        history: its training history.
        eval_accuracy: test accuracy in evaluation mode (dropout off, deterministic).
        forgotten_eval_accuracies: test accuracy of each of ``n_repeats`` predictions made in training
            mode, as when ``model.eval()`` is forgotten.
        functional_accuracies: test accuracy reported by :func:`course.evaluate` (which calls
            ``model.eval()``) on each of ``n_repeats`` calls, with the bug
            ``F.dropout(h, p)`` switched on in the same weights.
        flip_fraction: fraction of test predictions that change between two consecutive predictions
            with dropout on (averaged over the consecutive pairs of the forgotten-``eval()`` repeats).
        eval_disagreement: fraction of predictions with dropout on that differ from the
            evaluation-mode prediction of the same example.
    """

    model: FunctionalDropoutMLP = field(repr=False)
    data: Split = field(repr=False)
    history: History
    eval_accuracy: float
    forgotten_eval_accuracies: np.ndarray
    functional_accuracies: np.ndarray
    flip_fraction: float
    eval_disagreement: float


def mode_bug_effect(
    seed: int = 0,
    *,
    p: float = 0.5,
    hidden: int = 128,
    epochs: int = 20,
    batch_size: int | None = 64,
    n_repeats: int = 20,
    data: Split | None = None,
    progress: bool = False,
) -> ModeBugEffect:
    """Train one MLP with dropout, then predict its test set with dropout off and (wrongly) on.

    The network is ``FunctionalDropoutMLP(64, hidden, 10, p)`` (two hidden layers of ``hidden`` units,
    ``F.dropout(h, p, training=self.training)`` after each), trained with :func:`course.fit`. Then:

    - evaluation mode, once: the correct prediction;
    - training mode, ``n_repeats`` times: the prediction of a model whose ``model.eval()`` was
      forgotten;
    - the same weights with ``respect_training=False`` (``F.dropout(h, p)``), evaluated
      ``n_repeats`` times with :func:`course.evaluate`, which calls ``model.eval()``: the
      functional bug, which ``eval()`` cannot switch off.

    The masks of the predictions with dropout on come from torch's global generator, seeded with
    ``seed + 10000`` before the repeats.

    Example:
        >>> r = mode_bug_effect(0, epochs=2, n_repeats=3)
        >>> r.forgotten_eval_accuracies.shape, r.functional_accuracies.shape
        ((3,), (3,))
        >>> r.model.respect_training, r.model.training
        (True, False)
    """
    seed = check_seed(seed)
    p = check_probability(p)
    n_repeats = check_positive_int(n_repeats, "n_repeats")
    if n_repeats < 2:
        raise ValueError(f"n_repeats must be at least 2 to count flips, got n_repeats={n_repeats}")
    data = _check_data(data, seed)
    trained = _train_twins(
        {"correct": lambda: FunctionalDropoutMLP(data.n_features, hidden, _n_classes(data), p=p)},
        data,
        seed=seed,
        epochs=epochs,
        batch_size=batch_size,
        progress=progress,
    )
    model, history = trained["correct"]
    x, y = data.x_test, data.y_test
    torch.manual_seed(seed + _EVAL_SEED_OFFSET)
    eval_pred = predict_labels(model, x, training=False)
    train_preds = torch.stack([predict_labels(model, x, training=True) for _ in range(n_repeats)])
    model.respect_training = False  # the bug, in the same weights
    try:
        functional = [evaluate(model, x, y)[1] for _ in range(n_repeats)]
    finally:
        model.respect_training = True
    model.eval()
    return ModeBugEffect(
        model=model,
        data=data,
        history=history,
        eval_accuracy=float((eval_pred == y).double().mean()),
        forgotten_eval_accuracies=(train_preds == y).double().mean(dim=1).numpy(),
        functional_accuracies=np.array(functional, dtype=np.float64),
        flip_fraction=float((train_preds[1:] != train_preds[:-1]).double().mean()),
        eval_disagreement=float((train_preds != eval_pred).double().mean()),
    )


# --- masks from a reused key ----------------------------------------------------------------------


def fresh_mask_loss(model: ReusedMaskMLP, data: Split, p: float, *, draws: int = 5, seed: int = 0) -> float:
    """Mean training-set cross-entropy of ``model``'s weights under fresh dropout masks at ``p``.

    The weights are copied into a correct twin, ``ReusedMaskMLP(..., p=p, reuse=None)``, which is run in
    training mode ``draws`` times on the whole training set (masks from a generator seeded with
    ``seed``, without touching torch's global generator); the losses are averaged. For a network trained
    with correct dropout this is close to its training objective; for one trained with the same masks on
    every step it is far larger: it only learned to work with the units its masks kept.

    Example:
        >>> data = load_digits()
        >>> model = ReusedMaskMLP(64, 16, 10, p=0.5, reuse="steps")
        >>> fresh_mask_loss(model, data, 0.5) > 0
        True
    """
    if not isinstance(model, ReusedMaskMLP):
        raise TypeError(f"model must be a ReusedMaskMLP, got {type(model).__name__}")
    check_split(data)
    p = check_probability(p)
    draws = check_positive_int(draws, "draws")
    seed = check_seed(seed)
    widths = [layer.out_features for layer in model.hidden]
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        twin = ReusedMaskMLP(model.hidden[0].in_features, widths, model.out.out_features, p=p, reuse=None)
        twin.load_state_dict(model.state_dict())
        twin.train()
        torch.manual_seed(seed)
        losses = [F.cross_entropy(twin(data.x_train), data.y_train).item() for _ in range(draws)]
    return float(np.mean(losses))


@dataclass
class ReusedMaskRun:
    """One training of :func:`reused_mask_effect`.

    Attributes:
        variant: one of :data:`REUSE_VARIANTS`.
        model: the trained :class:`~dropoutlib.experiments.bugs.ReusedMaskMLP` (evaluation mode).
        history: its training history (``objective``: the loss with the masks it trained with).
        train_acc, test_acc, test_loss: of the full network in evaluation mode, after training.
        objective: the last epoch's training objective (loss with its own masks).
        fresh_loss: the training-set loss of its weights under fresh masks at the experiment's ``p``
            (:func:`fresh_mask_loss`).
    """

    variant: str
    model: ReusedMaskMLP = field(repr=False)
    history: History = field(repr=False)
    train_acc: float
    test_acc: float
    test_loss: float
    objective: float
    fresh_loss: float


def reused_mask_effect(
    seed: int = 0,
    *,
    p: float = 0.5,
    hidden: int = 128,
    epochs: int = 150,
    lr: float = 3e-3,
    batch_size: int | None = None,
    variants: tuple[str, ...] = REUSE_VARIANTS,
    eval_every: int = 10,
    data: Split | None = None,
    progress: bool = False,
) -> dict[str, ReusedMaskRun]:
    """Train the same MLP with fresh dropout masks, with reused masks, and without dropout.

    Every variant is ``ReusedMaskMLP(64, hidden, 10, p, reuse=...)`` from the same initial weights:
    ``"no dropout"`` (``p = 0``), ``"fresh"`` (``reuse=None``, correct), ``"steps"`` (the same key on
    every call: for a batch of a given size, the same masks on every step) and ``"layers"`` (one fresh
    key per call, shared by both layers: both layers drop the same units). With ``batch_size=None``
    (the default, full-batch training) every training example keeps **its own mask for the whole of
    training** under ``"steps"``; with minibatches the masks belong to positions in the batch, and
    reshuffling hands them to different examples every epoch, which softens the bug.

    Example:
        >>> runs = reused_mask_effect(0, epochs=2, eval_every=1, variants=("fresh", "steps"))
        >>> sorted(runs), runs["steps"].model.reuse
        (['fresh', 'steps'], 'steps')
    """
    seed = check_seed(seed)
    p = check_probability(p)
    if isinstance(variants, str) or not all(v in REUSE_VARIANTS for v in variants) or not variants:
        raise ValueError(
            f"variants must be a non-empty tuple of names from {REUSE_VARIANTS}, got variants={variants!r}"
        )
    data = _check_data(data, seed)
    reuse = {"no dropout": None, "fresh": None, "steps": "steps", "layers": "layers"}
    builds = {
        variant: functools.partial(
            ReusedMaskMLP,
            data.n_features,
            hidden,
            _n_classes(data),
            p=0.0 if variant == "no dropout" else p,
            reuse=reuse[variant],
            seed=seed,
        )
        for variant in variants
    }
    trained = _train_twins(
        builds,
        data,
        seed=seed,
        epochs=epochs,
        batch_size=batch_size,
        progress=progress,
        eval_every=eval_every,
        lr=lr,
    )
    runs = {}
    for variant, (model, history) in trained.items():
        last = history.final()
        runs[variant] = ReusedMaskRun(
            variant=variant,
            model=model,
            history=history,
            train_acc=last["train_acc"],
            test_acc=last["test_acc"],
            test_loss=last["test_loss"],
            objective=last["objective"],
            fresh_loss=fresh_mask_loss(model, data, p, seed=seed),
        )
    return runs


# --- keep probability passed as p -----------------------------------------------------------------


@dataclass
class KeepProbEffect:
    """What :func:`keep_prob_effect` measured.

    Attributes:
        intended_p, used_p: the drop probability meant, and the one passed (``1 - intended_p``).
        intended, used: the training histories of ``mlp(..., p=intended_p)`` and ``mlp(..., p=used_p)``.
    """

    intended_p: float
    used_p: float
    intended: History
    used: History


def keep_prob_effect(
    seed: int = 0,
    *,
    intended_p: float = 0.2,
    hidden: int = 128,
    epochs: int = 20,
    batch_size: int | None = 64,
    data: Split | None = None,
    progress: bool = False,
) -> KeepProbEffect:
    """Train ``mlp(64, [hidden, hidden], 10, p)`` with the intended ``p`` and with ``1 - p``.

    ``1 - intended_p`` is what a model gets when a keep probability (TF1's ``keep_prob``, the ``p`` of
    the 2014 dropout paper) is passed to ``nn.Dropout``, whose ``p`` is the probability of dropping.
    Both runs start from the same initial weights and see the same minibatches.

    Example:
        >>> r = keep_prob_effect(0, epochs=1)
        >>> r.intended_p, round(r.used_p, 4), len(r.used.test_acc)
        (0.2, 0.8, 1)
    """
    seed = check_seed(seed)
    intended_p = check_probability(intended_p, "intended_p")
    data = _check_data(data, seed)
    used_p = 1.0 - intended_p
    trained = _train_twins(
        {
            "intended": lambda: mlp(data.n_features, [hidden, hidden], _n_classes(data), p=intended_p),
            "used": lambda: mlp(data.n_features, [hidden, hidden], _n_classes(data), p=used_p),
        },
        data,
        seed=seed,
        epochs=epochs,
        batch_size=batch_size,
        progress=progress,
    )
    return KeepProbEffect(intended_p, used_p, trained["intended"][1], trained["used"][1])


# --- dropout on a regression output ---------------------------------------------------------------


def digits_value_regression(seed: int = 0) -> Split:
    """The digits as a regression task: predict the digit's value (0 to 9) as a real number.

    Inputs as in :func:`course.load_digits` (same split for the same ``seed``, standardized);
    targets are the class labels as float32 of shape ``(n, 1)``, mean about 4.5. Targets far from
    zero make the shrinkage caused by dropout on the output (:func:`output_dropout_effect`) visible.

    Example:
        >>> data = digits_value_regression()
        >>> tuple(data.y_train.shape), data.y_train.dtype, data.name
        ((1257, 1), torch.float32, 'digit value')
    """
    digits = load_digits(seed=check_seed(seed))
    return Split(
        x_train=digits.x_train,
        y_train=digits.y_train.to(torch.float32).unsqueeze(1),
        x_test=digits.x_test,
        y_test=digits.y_test.to(torch.float32).unsqueeze(1),
        name="digit value",
    )


def shrinkage(predictions: torch.Tensor, targets: torch.Tensor) -> float:
    r"""The least-squares factor :math:`s` in ``predictions ≈ s * targets`` (a line through 0).

    .. math::

        s = \frac{\sum_i \hat y_i\, t_i}{\sum_i t_i^2}

    1 for unbiased predictions; ``q`` for a network trained with inverted dropout on its output.

    Example:
        >>> t = torch.tensor([1.0, 2.0, -4.0])
        >>> shrinkage(0.75 * t, t), shrinkage(t, t)
        (0.75, 1.0)
    """
    for name, value in (("predictions", predictions), ("targets", targets)):
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if predictions.shape != targets.shape:
        raise ValueError(
            f"predictions and targets must have the same shape, got "
            f"{tuple(predictions.shape)} and {tuple(targets.shape)}"
        )
    t = targets.double()
    denominator = (t * t).sum()
    if denominator == 0:
        raise ValueError("targets are all zero: the shrinkage factor is undefined")
    return float((predictions.double() * t).sum() / denominator)


@dataclass
class OutputDropoutEffect:
    """What :func:`output_dropout_effect` measured on the digit-value regression.

    Attributes:
        p: the drop probability (after the hidden layers, and for the bug also after the output).
        correct, buggy: training histories of ``mlp(..., p)`` and ``mlp_with_output_dropout(..., p)``.
        correct_model, buggy_model: the trained networks (evaluation mode).
        correct_shrinkage, buggy_shrinkage: :func:`shrinkage` of each network's evaluation-mode test
            predictions against the test targets.
        correct_mean, buggy_mean, target_mean: mean test prediction of each network, and of the targets.
    """

    p: float
    correct: History
    buggy: History
    correct_model: nn.Module = field(repr=False)
    buggy_model: nn.Module = field(repr=False)
    correct_shrinkage: float
    buggy_shrinkage: float
    correct_mean: float
    buggy_mean: float
    target_mean: float


def output_dropout_effect(
    seed: int = 0,
    *,
    p: float = 0.2,
    hidden: int = 128,
    epochs: int = 20,
    batch_size: int | None = 64,
    data: Split | None = None,
    progress: bool = False,
) -> OutputDropoutEffect:
    r"""Train a regression MLP with dropout on its hidden layers, and its twin with dropout on the output too.

    Why the buggy network is biased: with inverted dropout on the output, the training loss for an
    example with target :math:`t` and (evaluation-mode) prediction :math:`y` is
    :math:`(m y / q - t)^2` with :math:`m \sim \mathrm{Bernoulli}(q)`, whose expectation is

    .. math::

        \mathbb E\,(m y / q - t)^2 = \frac{y^2}{q} - 2 y t + t^2 ,

    smallest at :math:`y = q\,t`. A network that fits well therefore predicts about :math:`q` times the
    target once dropout is off: its :func:`shrinkage` is about ``q`` where the correct network's is
    about 1. ``data`` defaults to :func:`digits_value_regression`.

    Example:
        >>> r = output_dropout_effect(0, epochs=1)
        >>> type(r.buggy_model[-1]).__name__, len(r.buggy.test_loss)
        ('Dropout', 1)
    """
    seed = check_seed(seed)
    p = check_probability(p)
    data = _check_data(data, seed, regression=True)
    out = data.y_train.shape[1]
    trained = _train_twins(
        {
            "correct": lambda: mlp(data.n_features, [hidden, hidden], out, p=p),
            "buggy": lambda: mlp_with_output_dropout(data.n_features, [hidden, hidden], out, p=p),
        },
        data,
        seed=seed,
        epochs=epochs,
        batch_size=batch_size,
        progress=progress,
        task="regression",
    )
    (good, good_history), (bad, bad_history) = trained["correct"], trained["buggy"]
    with torch.no_grad():
        good_pred, bad_pred = good.eval()(data.x_test), bad.eval()(data.x_test)
    return OutputDropoutEffect(
        p=p,
        correct=good_history,
        buggy=bad_history,
        correct_model=good,
        buggy_model=bad,
        correct_shrinkage=shrinkage(good_pred, data.y_test),
        buggy_shrinkage=shrinkage(bad_pred, data.y_test),
        correct_mean=float(good_pred.mean()),
        buggy_mean=float(bad_pred.mean()),
        target_mean=float(data.y_test.mean()),
    )


# --- Monte Carlo dropout with BatchNorm in training mode ------------------------------------------


def _accuracy(probs: torch.Tensor, y: torch.Tensor) -> float:
    return float((probs.argmax(dim=1) == y).double().mean())


def _in_groups(
    predict: Callable[[nn.Module, torch.Tensor, int], torch.Tensor],
    model: nn.Module,
    x: torch.Tensor,
    order: torch.Tensor,
    group_size: int,
    samples: int,
) -> torch.Tensor:
    """Predict ``x`` in consecutive groups of ``order``; return the probabilities in the original order."""
    parts = [predict(model, x[order[i : i + group_size]], samples) for i in range(0, len(order), group_size)]
    probs = torch.empty(len(order), parts[0].shape[1])
    probs[order] = torch.cat(parts)
    return probs


@dataclass
class MCBatchNormEffect:
    """What :func:`mc_batchnorm_effect` measured.

    Attributes:
        model: the trained :func:`bn_mlp` (evaluation mode, running statistics intact).
        data: the digits split.
        eval_accuracy: test accuracy in evaluation mode (no Monte Carlo).
        naive_whole, careful_whole: test accuracy of :func:`~dropoutlib.experiments.bugs.naive_mc_predict` /
            :func:`~dropoutlib.experiments.bugs.careful_mc_predict` with the whole test set as one batch.
        naive_grouped, careful_grouped: the same with the test set sorted by class and predicted in
            groups of ``group_size`` (requests that each hold one or two digits).
        naive_changed, careful_changed: fraction of test predictions (labels) that differ between the
            whole-batch and the grouped prediction.
        accuracy_after_request: evaluation-mode test accuracy after one call of ``naive_mc_predict`` on
            the test images of ``request_class`` only (their statistics overwrote BatchNorm's).
        running_mean_shift: relative change of the first BatchNorm layer's running mean caused by that
            call, ``||after - before|| / ||before||``.
    """

    model: nn.Module = field(repr=False)
    data: Split = field(repr=False)
    eval_accuracy: float
    naive_whole: float
    careful_whole: float
    naive_grouped: float
    careful_grouped: float
    naive_changed: float
    careful_changed: float
    accuracy_after_request: float
    running_mean_shift: float


def mc_batchnorm_effect(
    seed: int = 0,
    *,
    p: float = 0.3,
    hidden: int = 128,
    epochs: int = 15,
    batch_size: int | None = 64,
    samples: int = 20,
    group_size: int = 16,
    request_class: int = 1,
    data: Split | None = None,
    progress: bool = False,
) -> MCBatchNormEffect:
    """Train a BatchNorm MLP with dropout correctly, then predict with naive and careful MC dropout.

    The network is ``bn_mlp(64, hidden, 10, p)``. Each Monte Carlo prediction averages the softmax of
    ``samples`` passes, on a copy of the trained model (so that one measurement cannot corrupt the
    next), with the masks drawn after ``torch.manual_seed(seed + 10000)``. Batch composition: the
    whole test set at once, or sorted by class in groups of ``group_size``. Corruption: one naive call
    on the test images of ``request_class``, then an ordinary evaluation-mode pass over the test set.

    Example:
        >>> r = mc_batchnorm_effect(0, epochs=1, samples=2)
        >>> 0 <= r.naive_grouped <= 1 and r.model.training is False
        True
    """
    seed = check_seed(seed)
    p = check_probability(p)
    samples = check_positive_int(samples, "samples")
    group_size = check_positive_int(group_size, "group_size")
    if group_size < 2:
        raise ValueError(
            f"group_size must be at least 2 (BatchNorm in training mode needs two examples "
            f"per batch), got group_size={group_size}"
        )
    data = _check_data(data, seed)
    if not (isinstance(request_class, int) and 0 <= request_class < _n_classes(data)):
        raise ValueError(
            f"request_class must be a class index of the data, got request_class={request_class!r}"
        )
    if data.n_test % group_size == 1:
        raise ValueError(
            f"group_size={group_size} leaves a last group of one example, which BatchNorm "
            "cannot normalize in training mode; choose another group_size"
        )
    trained = _train_twins(
        {"correct": lambda: bn_mlp(data.n_features, hidden, _n_classes(data), p=p)},
        data,
        seed=seed,
        epochs=epochs,
        batch_size=batch_size,
        progress=progress,
    )
    model = trained["correct"][0]
    x, y = data.x_test, data.y_test
    order = torch.argsort(y, stable=True)
    results = {}
    for name, predict in (("naive", naive_mc_predict), ("careful", careful_mc_predict)):
        torch.manual_seed(seed + _EVAL_SEED_OFFSET)
        whole = predict(copy.deepcopy(model), x, samples)
        torch.manual_seed(seed + _EVAL_SEED_OFFSET)
        grouped = _in_groups(predict, copy.deepcopy(model), x, order, group_size, samples)
        changed = float((whole.argmax(1) != grouped.argmax(1)).double().mean())
        results[name] = (_accuracy(whole, y), _accuracy(grouped, y), changed)
    served = copy.deepcopy(model)
    before = served[1].running_mean.clone()
    torch.manual_seed(seed + _EVAL_SEED_OFFSET)
    naive_mc_predict(served, x[y == request_class], samples)
    shift = float((served[1].running_mean - before).norm() / before.norm())
    return MCBatchNormEffect(
        model=model.eval(),
        data=data,
        eval_accuracy=evaluate(model, x, y)[1],
        naive_whole=results["naive"][0],
        careful_whole=results["careful"][0],
        naive_grouped=results["naive"][1],
        careful_grouped=results["careful"][1],
        naive_changed=results["naive"][2],
        careful_changed=results["careful"][2],
        accuracy_after_request=evaluate(served, x, y)[1],
        running_mean_shift=shift,
    )


# --- the chapter's claims -------------------------------------------------------------------------


def mode_claims(modes: ModeBugEffect) -> list[Claim]:
    """Forgetting ``model.eval()``: every call with dropout on scores below evaluation mode, and random.

    The best of the calls in training mode stays below the evaluation-mode accuracy, and more than 1%
    of the test predictions change from one call to the next.
    """
    return [
        below(
            "every call with dropout on scores below eval mode (best call)",
            modes.forgotten_eval_accuracies.max(),
            modes.eval_accuracy,
        ),
        above("predictions change between calls (fraction)", modes.flip_fraction, 0.01),
    ]


def functional_claims(modes: ModeBugEffect) -> list[Claim]:
    """``F.dropout`` without ``training=self.training``: ``course.evaluate`` loses accuracy on every call."""
    return [
        below(
            "the functional bug costs accuracy on every call (best call)",
            modes.functional_accuracies.max(),
            modes.eval_accuracy,
        )
    ]


def steps_claims(runs: Mapping[str, ReusedMaskRun]) -> list[Claim]:
    """A key reused across steps (``"steps"``): the fixed masks are learned, and cost test accuracy.

    Against fresh masks and no dropout (:func:`reused_mask_effect`): its objective is below a tenth of
    the fresh-mask one and below the no-dropout one; under fresh masks its loss is more than 5 times
    the fresh-mask network's; and its test accuracy is below both.
    """
    fresh, steps, plain = runs["fresh"], runs["steps"], runs["no dropout"]
    return [
        below(
            "with one fixed mask per example the noise is learned (objective)",
            steps.objective,
            fresh.objective / 10,
        ),
        below(
            "the fixed thinned networks fit better than no dropout (objective)",
            steps.objective,
            plain.objective,
        ),
        above(
            "trained on fixed masks, fragile to new ones (fresh-mask loss)",
            steps.fresh_loss,
            5 * fresh.fresh_loss,
        ),
        below("reused masks cost test accuracy against fresh masks", steps.test_acc, fresh.test_acc),
        below("and against no dropout at all", steps.test_acc, plain.test_acc),
    ]


def layers_claims(runs: Mapping[str, ReusedMaskRun]) -> list[Claim]:
    """A key shared by layers (``"layers"``): test accuracy within a point of fresh masks, robustness lost.

    Its fresh-mask loss exceeds 1.2 times that of the network trained with fresh masks.
    """
    fresh, layers = runs["fresh"], runs["layers"]
    return [
        below(
            "a key shared by layers changes the test accuracy little (|difference|)",
            abs(layers.test_acc - fresh.test_acc),
            0.01,
        ),
        above(
            "but makes the network less robust to fresh masks (fresh-mask loss)",
            layers.fresh_loss,
            1.2 * fresh.fresh_loss,
        ),
    ]


def keep_prob_claims(keep: KeepProbEffect) -> list[Claim]:
    """A keep probability passed as ``p`` costs more than a point of test accuracy."""
    intended, used = keep.intended.final()["test_acc"], keep.used.final()["test_acc"]
    return [below(f"p = {keep.used_p:g} costs more than a point (test accuracy)", used, intended - 0.01)]


def output_dropout_claims(out: OutputDropoutEffect) -> list[Claim]:
    """Dropout on a regression output shrinks the predictions by ``q``, and costs test error.

    The ratio of the two networks' :func:`shrinkage` is within 0.05 of ``q``; the buggy network's test
    error is larger, and its training objective (a fraction ``p`` of its predictions zeroed) more than 3
    times the correct one's.
    """
    q = 1 - out.p
    ratio = out.buggy_shrinkage / out.correct_shrinkage
    correct, buggy = out.correct.final(), out.buggy.final()
    return [
        below(f"the bug shrinks the predictions by q = {q:g} (|ratio - q|)", abs(ratio - q), 0.05),
        above("the bias costs test error (test MSE)", buggy["test_loss"], correct["test_loss"]),
        above("zeroed predictions inflate the objective", buggy["objective"], 3 * correct["objective"]),
    ]


def companion_claims(changes: Mapping[str, float], moved: Collection[str]) -> list[Claim]:
    """One digit predicted next to two sets of companions, with the same masks: only naive MC cares.

    ``changes`` holds, for ``"naive"`` and ``"careful"``, the largest change of the digit's
    probabilities between the two sets; ``moved`` the names of the buffers the naive calls changed. The
    naive prediction moves by more than 0.01, the careful one not at all, and the naive calls overwrote
    the first BatchNorm layer's running mean (``"1.running_mean"``).

    Example:
        >>> [c.holds for c in companion_claims({"naive": 0.2, "careful": 0.0}, ["1.running_mean"])]
        [True, True, True]
    """
    return [
        above("naive MC: other companions change the digit's prediction", changes["naive"], 0.01),
        Claim(
            "careful MC: the companions change nothing",
            changes["careful"] == 0.0,
            f"{changes['careful']!r} == 0.0",
        ),
        Claim(
            "the naive calls overwrite BatchNorm's running mean",
            "1.running_mean" in moved,
            f"buffers changed: {', '.join(moved) or 'none'}",
        ),
    ]


def mc_batchnorm_claims(bn: MCBatchNormEffect) -> list[Claim]:
    """Naive Monte Carlo dropout on a BatchNorm network depends on the batch and corrupts the model.

    On the class-sorted groups the naive accuracy falls below 50% while the careful one stays above; the
    grouping changes fewer than 3% of the careful predictions and more than 3% of the naive ones; and
    after one naive call the evaluation-mode accuracy is more than 3 points lower.
    """
    return [
        below("grouped batches ruin naive MC (accuracy)", bn.naive_grouped, 0.5),
        above("but not careful MC (accuracy)", bn.careful_grouped, 0.5),
        below("careful MC does not care about the batch (changed)", bn.careful_changed, 0.03),
        above("naive MC does (changed)", bn.naive_changed, 0.03),
        below(
            "one naive call corrupts the model (eval-mode accuracy after it)",
            bn.accuracy_after_request,
            bn.eval_accuracy - 0.03,
        ),
    ]


def detection_claims(results: Mapping[str, Any], fire: Collection[str]) -> list[Claim]:
    """A check fires on its bug and stays quiet elsewhere: one claim per result of a diagnostic check.

    ``results`` maps a label (the model a check ran on) to its
    :class:`~dropoutlib.diagnostics.CheckResult`; the results labelled in ``fire`` must fail (the check
    caught the bug), every other one must pass.

    Example:
        >>> from dropoutlib.diagnostics import CheckResult
        >>> results = {"the bug": CheckResult("masks_vary", False, "same masks."),
        ...            "the fix": CheckResult("masks_vary", True, "fresh masks.")}
        >>> for claim in detection_claims(results, fire=["the bug"]):
        ...     print(claim)
        ✓ check_masks_vary fires on the bug (FAIL)
        ✓ check_masks_vary stays quiet on the fix (pass)
    """
    unknown = set(fire) - set(results)
    if unknown:
        raise ValueError(f"fire must name results, got unknown labels {sorted(unknown)}")
    claims = []
    for label, result in results.items():
        should_fire = label in fire
        claims.append(
            Claim(
                f"check_{result.name} {'fires' if should_fire else 'stays quiet'} on {label}",
                result.passed != should_fire,
                "pass" if result.passed else "FAIL",
            )
        )
    return claims


#: The checks that :func:`~dropoutlib.diagnostics.diagnose` must fail on each of the chapter's models.
EXPECTED_FAILURES: dict[str, list[str]] = {
    "correct mlp": [],
    "F.dropout, no training=": ["eval_deterministic"],
    "key reused across steps": ["masks_vary"],
    "key shared by layers": ["masks_vary"],
    "keep prob. as p": ["drop_rate"],
    "dropout on the output": ["no_output_dropout"],
    "naive MC + BatchNorm": ["mc_batchnorm"],
}


def diagnose_claims(fired: Mapping[str, list[str]], report: Any) -> list[Claim]:
    """Each bug trips exactly its own check (:data:`EXPECTED_FAILURES`), and a correct model passes all.

    ``fired`` maps each model of the chapter's table to the names of the checks that failed on it;
    ``report`` is the :class:`~dropoutlib.diagnostics.Report` of a correct, trained model.
    """
    claims = []
    for case in {**EXPECTED_FAILURES, **fired}:
        expected, got = EXPECTED_FAILURES.get(case), fired.get(case)
        claims.append(
            Claim(
                f"{case}: exactly {', '.join(expected) if expected else 'no check'} fails"
                if expected is not None
                else f"{case}: a model the table should not hold",
                got == expected,
                f"failed: {', '.join(got) if got else 'none'}" if got is not None else "not run",
            )
        )
    failures = [result.name for result in report.failures]
    claims.append(
        Claim("a correct model passes every check", report.passed, f"failed: {', '.join(failures) or 'none'}")
    )
    return claims


# --- diagnose on transformers ---------------------------------------------------------------------


def token_batch(
    n: int = 16, length: int = 16, vocab: int = 32, seed: int = 0
) -> torch.Tensor:
    """Random token ids ``(n, length)`` in ``[1, vocab)``, from a generator seeded with ``seed``."""
    generator = torch.Generator().manual_seed(check_seed(seed))
    return torch.randint(1, vocab, (n, length), generator=generator)


def called_dropout_layers(model: nn.Module, batch: Mapping[str, torch.Tensor]) -> list[str]:
    """The names of the dropout layers (:func:`~dropoutlib.diagnostics.dropout_layers`) that one
    training-mode pass ``model(**batch)`` calls; modes and torch's RNG are restored."""
    from dropoutlib.diagnostics import dropout_layers

    called: list[str] = []
    handles = [
        module.register_forward_hook(lambda *_, name=name: called.append(name))
        for name, module in dropout_layers(model)
    ]
    try:
        with restored_modes(model), torch.random.fork_rng(), torch.no_grad():
            model.train()(**batch)
    finally:
        for handle in handles:
            handle.remove()
    return list(dict.fromkeys(called))


@dataclass
class TransformerDiagnosis:
    """What :func:`transformer_diagnosis` found.

    Attributes:
        encoder: the :class:`~dropoutlib.diagnostics.Report` of ``zoo.char_transformer()``.
        bert: the report of ``zoo.bert_classifier()`` on a dict batch.
        planted: the report of the same BERT with ``nn.Dropout(p)`` appended to its classifier.
        bert_layers: the names of BERT's dropout layers (found by type and name).
        bert_called: those that a training-mode forward pass calls.
    """

    encoder: Any
    bert: Any
    planted: Any
    bert_layers: list[str]
    bert_called: list[str]


def transformer_diagnosis(seed: int = 0, p: float = 0.1) -> TransformerDiagnosis:
    """Run :func:`~dropoutlib.diagnose` on the zoo's transformer and BERT, and on a BERT with a bug.

    Each model is built right after ``seed_everything(seed)`` with dropout ``p`` everywhere; the batches
    are 16 random sequences of 16 tokens (seeded with ``seed``), the last 4 tokens of 4 of BERT's
    sequences padded. The bug: ``nn.Dropout(p)`` appended after BERT's classifier.
    """
    from dropoutlib.course import zoo
    from dropoutlib.diagnostics import diagnose, dropout_layers

    seed = check_seed(seed)
    p = check_probability(p, "p")
    seed_everything(seed)
    encoder = diagnose(zoo.char_transformer(dropout=p), token_batch(seed=seed))
    tokens = token_batch(vocab=100, seed=seed)
    mask = torch.ones_like(tokens)
    mask[:4, 12:] = 0
    batch = {"input_ids": tokens, "attention_mask": mask}
    seed_everything(seed)
    bert = zoo.bert_classifier(dropout=p)
    layers = [name for name, _ in dropout_layers(bert)]
    called = called_dropout_layers(bert, batch)
    report = diagnose(bert, batch)
    bert.classifier = nn.Sequential(bert.classifier, nn.Dropout(p))
    planted = diagnose(bert, batch)
    return TransformerDiagnosis(encoder, report, planted, layers, called)


def transformer_claims(d: TransformerDiagnosis) -> list[Claim]:
    """``diagnose`` on transformers: correct models pass, attention dropout is named, the bug is caught.

    The transformer and BERT fail no check and measure masks (``masks_vary`` and ``drop_rate`` PASS,
    not SKIP); their attention dropout is named as not measured (``MultiheadAttention``,
    ``scaled_dot_product_attention``); BERT's forward pass calls fewer dropout layers than it holds
    (its attention-probability ``Dropout`` is handed to SDPA); and on the BERT with dropout after its
    classifier exactly ``no_output_dropout`` fails.
    """

    def status(report: Any, name: str) -> str:
        return next(r.status for r in report.results if r.name == name)

    claims = []
    for label, report, unseen in (
        ("the transformer", d.encoder, "MultiheadAttention"),
        ("BERT", d.bert, "scaled_dot_product_attention"),
    ):
        failed = [r.name for r in report.failures]
        claims.append(Claim(f"{label} fails no check", not failed, f"failed: {', '.join(failed) or 'none'}"))
        measured = [status(report, name) for name in ("masks_vary", "drop_rate")]
        claims.append(
            Claim(f"{label}: masks read and measured", measured == ["pass", "pass"], ", ".join(measured))
        )
        text = str(report)
        claims.append(
            Claim(
                f"{label}: its attention dropout is named as not measured",
                unseen in text and "is not measured" in text,
                f"{unseen!r} {'named' if unseen in text else 'not named'}",
            )
        )
    claims.append(
        below("BERT calls fewer dropout layers than it holds", len(d.bert_called), len(d.bert_layers))
    )
    failed = [r.name for r in d.planted.failures]
    claims.append(
        Claim(
            "dropout after BERT's classifier: exactly no_output_dropout fails",
            failed == ["no_output_dropout"],
            f"failed: {', '.join(failed) or 'none'}",
        )
    )
    return claims
