r"""What each classic dropout bug costs, measured on the digits: the experiments behind chapter 11.

Each function trains a small network with one bug from :mod:`dropoutlib.buggy` next to its correct
twin (same data, same seed, same initial weights where the architectures agree) and returns what was
measured in a small dataclass:

- :func:`mode_bug_effect`: dropout left on at test time, either because ``model.eval()`` was forgotten
  or because ``F.dropout`` was called without ``training=self.training``. One trained network; its test
  set is predicted in evaluation mode and, repeatedly, with dropout on.
- :func:`reused_mask_effect`: dropout masks drawn from a reused random key (the same masks on every
  step, or the same mask in every layer), against fresh masks and against no dropout.
- :func:`keep_prob_effect`: a keep probability passed where the drop probability is expected
  (``p = 0.8`` where ``p = 0.2`` was meant).
- :func:`output_dropout_effect`: dropout after the output layer of a regression network, on
  :func:`digits_value_regression`. In evaluation mode such a network predicts about ``q`` times the
  target (see the function's docstring for the derivation).
- :func:`mc_batchnorm_effect`: Monte Carlo dropout with ``model.train()``, which also switches
  BatchNorm to batch statistics: predictions that depend on the other examples of the batch, and
  running statistics overwritten by one request.

All of them use :func:`dropoutlib.fit` (Adam, one thread) and are deterministic given ``seed``, which
fixes the digits' training/test split, the initial weights, the minibatch order and every dropout
mask. Notation: ``p`` is the probability of dropping a unit, ``q = 1 - p`` the probability of keeping
it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from dropoutlib._validation import check_positive_int, check_probability
from dropoutlib.buggy import (
    FunctionalDropoutMLP,
    ReusedMaskMLP,
    bn_mlp,
    careful_mc_predict,
    mlp_with_output_dropout,
    naive_mc_predict,
)
from dropoutlib.data import Split, load_digits
from dropoutlib.inference import predict_labels
from dropoutlib.models import mlp
from dropoutlib.seeding import check_seed, seed_everything
from dropoutlib.train import History, evaluate, fit

__all__ = [
    "REUSE_VARIANTS",
    "KeepProbEffect",
    "MCBatchNormEffect",
    "ModeBugEffect",
    "OutputDropoutEffect",
    "ReusedMaskRun",
    "digits_value_regression",
    "fresh_mask_loss",
    "keep_prob_effect",
    "mc_batchnorm_effect",
    "mode_bug_effect",
    "output_dropout_effect",
    "reused_mask_effect",
    "shrinkage",
]

#: The four trainings of :func:`reused_mask_effect`: no dropout, fresh masks (correct), and the two bugs.
REUSE_VARIANTS: tuple[str, ...] = ("no dropout", "fresh", "steps", "layers")

_EVAL_SEED_OFFSET = 10_000  # the masks of predictions made with dropout on: seed + this


def _check_data(data: Any, seed: int, *, regression: bool = False) -> Split:
    if data is None:
        return digits_value_regression(seed) if regression else load_digits(seed=seed)
    if not isinstance(data, Split):
        raise TypeError(f"data must be a dropoutlib.data.Split or None, got {type(data).__name__}")
    return data


def _check_batch_size(batch_size: Any) -> int | None:
    return None if batch_size is None else check_positive_int(batch_size, "batch_size")


def _n_classes(data: Split) -> int:
    return int(max(data.y_train.max().item(), data.y_test.max().item())) + 1


# --- dropout left on at test time -----------------------------------------------------------------


@dataclass
class ModeBugEffect:
    """What :func:`mode_bug_effect` measured on one trained network.

    Attributes:
        model: the trained :class:`~dropoutlib.buggy.FunctionalDropoutMLP` (correct flag, eval mode).
        data: the digits split.
        history: its training history.
        eval_accuracy: test accuracy in evaluation mode (dropout off, deterministic).
        forgotten_eval_accuracies: test accuracy of each of ``n_repeats`` predictions made in training
            mode, as when ``model.eval()`` is forgotten.
        functional_accuracies: test accuracy reported by :func:`dropoutlib.evaluate` (which calls
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
    ``F.dropout(h, p, training=self.training)`` after each), trained with :func:`dropoutlib.fit`. Then:

    - evaluation mode, once: the correct prediction;
    - training mode, ``n_repeats`` times: the prediction of a model whose ``model.eval()`` was
      forgotten;
    - the same weights with ``respect_training=False`` (``F.dropout(h, p)``), evaluated
      ``n_repeats`` times with :func:`dropoutlib.evaluate`, which calls ``model.eval()``: the
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
    seed_everything(seed)
    model = FunctionalDropoutMLP(data.n_features, hidden, _n_classes(data), p=p)
    history = fit(
        model,
        data,
        epochs=epochs,
        batch_size=_check_batch_size(batch_size),
        seed=seed,
        progress=progress,
        eval_every=epochs,
    )
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
        raise TypeError(f"model must be a dropoutlib.buggy.ReusedMaskMLP, got {type(model).__name__}")
    if not isinstance(data, Split):
        raise TypeError(f"data must be a dropoutlib.data.Split, got {type(data).__name__}")
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
        model: the trained :class:`~dropoutlib.buggy.ReusedMaskMLP` (evaluation mode).
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
    runs = {}
    for variant in variants:
        seed_everything(seed)
        model = ReusedMaskMLP(
            data.n_features,
            hidden,
            _n_classes(data),
            p=0.0 if variant == "no dropout" else p,
            reuse=reuse[variant],
            seed=seed,
        )
        history = fit(
            model,
            data,
            epochs=epochs,
            lr=lr,
            batch_size=_check_batch_size(batch_size),
            seed=seed,
            progress=progress,
            eval_every=eval_every,
        )
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
    histories = []
    for p in (intended_p, 1.0 - intended_p):
        seed_everything(seed)
        model = mlp(data.n_features, [hidden, hidden], _n_classes(data), p=p)
        histories.append(
            fit(
                model,
                data,
                epochs=epochs,
                batch_size=_check_batch_size(batch_size),
                seed=seed,
                progress=progress,
                eval_every=epochs,
            )
        )
    return KeepProbEffect(intended_p, 1.0 - intended_p, histories[0], histories[1])


# --- dropout on a regression output ---------------------------------------------------------------


def digits_value_regression(seed: int = 0) -> Split:
    """The digits as a regression task: predict the digit's value (0 to 9) as a real number.

    Inputs as in :func:`dropoutlib.load_digits` (same split for the same ``seed``, standardized);
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
    fitted = []
    for build in (
        lambda: mlp(data.n_features, [hidden, hidden], out, p=p),
        lambda: mlp_with_output_dropout(data.n_features, [hidden, hidden], out, p=p),
    ):
        seed_everything(seed)
        model = build()
        history = fit(
            model,
            data,
            epochs=epochs,
            batch_size=_check_batch_size(batch_size),
            seed=seed,
            task="regression",
            progress=progress,
            eval_every=epochs,
        )
        with torch.no_grad():
            predictions = model.eval()(data.x_test)
        fitted.append((model, history, predictions))
    (good, good_history, good_pred), (bad, bad_history, bad_pred) = fitted
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
        model: the trained :func:`~dropoutlib.buggy.bn_mlp` (evaluation mode, running statistics intact).
        data: the digits split.
        eval_accuracy: test accuracy in evaluation mode (no Monte Carlo).
        naive_whole, careful_whole: test accuracy of :func:`~dropoutlib.buggy.naive_mc_predict` /
            :func:`~dropoutlib.buggy.careful_mc_predict` with the whole test set as one batch.
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
    seed_everything(seed)
    model = bn_mlp(data.n_features, hidden, _n_classes(data), p=p)
    fit(
        model,
        data,
        epochs=epochs,
        batch_size=_check_batch_size(batch_size),
        seed=seed,
        progress=progress,
        eval_every=epochs,
    )
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
