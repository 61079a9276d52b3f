"""Training versus inference: the experiments behind chapter 3.

Three questions, each answered by one function or two:

- **Why scale?** A bias-free unit whose ``n`` inputs all have activation 1 and weight 1 receives
  ``n`` at inference time. In training, with dropout in front of it, it receives
  ``S = sum_i m_i / q`` (inverted dropout) or ``K = sum_i m_i`` (no scaling), where
  ``m_i ~ Bernoulli(q)`` and ``K ~ Binomial(n, q)``. :func:`all_ones_unit` builds that unit,
  :func:`training_outputs` samples ``S`` or ``K`` over many masks, :func:`all_ones_unit_moments` gives
  their exact mean and standard deviation.
- **Inverted or standard dropout?** :func:`training_vs_test` averages a layer's training-time output
  over many masks and compares it with the deterministic test-time output of the same rule.
- **What if ``model.eval()`` is forgotten?** :func:`forgotten_eval_experiment` trains an MLP with dropout
  on the digits and predicts the test set in evaluation mode and, repeatedly, in training mode.

The ``*_claims`` functions turn those measurements into the chapter's claims
(:class:`~dropoutlib.course.claims.Claim`), each threshold written once, here: the chapter checks them
for its own seed, ``tests/chapters/test_training_vs_inference_claims.py`` for five seeds.

Notation: ``p`` is the probability of dropping a unit, ``q = 1 - p`` of keeping it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch
from torch import nn

from dropoutlib._modes import restored_modes
from dropoutlib._validation import check_floating, check_positive_int, check_probability
from dropoutlib.course.claims import Claim, above, below
from dropoutlib.course.data import Split, load_digits
from dropoutlib.course.models import mlp
from dropoutlib.course.seeding import seed_everything
from dropoutlib.course.train import History, fit, predict_labels
from dropoutlib.nn.dropout import dropout, scale_weights_for_inference, standard_dropout

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "all_ones_unit",
    "all_ones_unit_moments",
    "big_unit_claims",
    "equivalence_claims",
    "expectation_claims",
    "forgotten_eval_claims",
    "forgotten_eval_experiment",
    "mode_claims",
    "noise_claims",
    "noise_std",
    "other_layers_claims",
    "plot_unit_inputs",
    "rescale_claims",
    "training_outputs",
    "training_vs_test",
    "ExpectationCheck",
    "ForgottenEval",
]

_CHUNK_ELEMENTS = 2**22  # at most this many input entries per forward pass in training_outputs


def all_ones_unit(n_inputs: int, p: float, dropout_layer: type[nn.Module] = nn.Dropout) -> nn.Sequential:
    """A bias-free linear unit with ``n_inputs`` weights equal to 1, behind a dropout layer.

    ``nn.Sequential(dropout_layer(p), nn.Linear(n_inputs, 1, bias=False))`` with every weight set to 1.
    Fed an all-ones input, it outputs the number of inputs that get through, each counted with the
    factor its dropout layer gives it: in evaluation mode exactly ``n_inputs`` for ``nn.Dropout``
    (nothing is dropped or scaled); in training mode ``sum_i m_i / q`` for ``nn.Dropout`` and
    ``sum_i m_i`` for :class:`dropoutlib.StandardDropout`, with ``m_i ~ Bernoulli(q)``.

    Args:
        n_inputs: number of inputs ``n`` (>= 1).
        p: drop probability of the dropout layer.
        dropout_layer: a module class taking ``p`` as its first argument (``torch.nn.Dropout``,
            :class:`dropoutlib.Dropout`, :class:`dropoutlib.StandardDropout`).

    Example:
        >>> unit = all_ones_unit(10_000, 0.5).eval()
        >>> unit(torch.ones(10_000)).item()
        10000.0
    """
    n_inputs = check_positive_int(n_inputs, "n_inputs")
    p = check_probability(p)
    linear = nn.Linear(n_inputs, 1, bias=False)
    with torch.no_grad():
        linear.weight.fill_(1.0)
    return nn.Sequential(dropout_layer(p), linear)


def training_outputs(unit: nn.Module, n_inputs: int, n_masks: int) -> torch.Tensor:
    """The outputs of ``unit`` in training mode on an all-ones input, for ``n_masks`` independent masks.

    Feeds ``n_masks`` rows of ``n_inputs`` ones (in chunks, to bound memory); each row gets its own
    dropout mask. Uses the global torch RNG (seed it first); restores the unit's mode afterwards.

    Returns:
        A float64 tensor of shape ``(n_masks,)``.

    Example:
        >>> _ = torch.manual_seed(0)
        >>> outputs = training_outputs(all_ones_unit(100, 0.4), 100, 1000)
        >>> outputs.shape, bool(abs(outputs.mean() - 100) < 2)
        (torch.Size([1000]), True)
    """
    if not isinstance(unit, nn.Module):
        raise TypeError(f"unit must be a torch.nn.Module, got {type(unit).__name__}")
    n_inputs = check_positive_int(n_inputs, "n_inputs")
    n_masks = check_positive_int(n_masks, "n_masks")
    rows_per_chunk = max(1, _CHUNK_ELEMENTS // n_inputs)
    chunks = []
    with restored_modes(unit), torch.no_grad():
        unit.train()
        for start in range(0, n_masks, rows_per_chunk):
            rows = min(rows_per_chunk, n_masks - start)
            chunks.append(unit(torch.ones(rows, n_inputs)).reshape(rows).double())
    return torch.cat(chunks)


def all_ones_unit_moments(n_inputs: int, p: float, *, scaled: bool = True) -> tuple[float, float]:
    """Exact mean and standard deviation of the all-ones unit's training-time output.

    With ``K ~ Binomial(n, q)`` inputs kept:

    - unscaled (standard dropout in training): the output is ``K``, mean ``n q``, std ``sqrt(n p q)``;
    - scaled (inverted dropout): the output is ``K / q``, a sum of ``n`` terms that are ``1/q`` with
      probability ``q`` and ``0`` with probability ``p``. Each term has mean 1 and variance
      ``q (1/q)^2 - 1 = p / q``, so the mean is ``n`` and the std ``sqrt(n p / q)``.

    Example:
        >>> all_ones_unit_moments(100, 0.4, scaled=False)
        (60.0, 4.898979485566356)
        >>> all_ones_unit_moments(10_000, 0.5)
        (10000.0, 100.0)
    """
    n = check_positive_int(n_inputs, "n_inputs")
    p = check_probability(p)
    q = 1.0 - p
    if q == 0.0:
        raise ValueError("p must be below 1 (with p=1 every input is dropped), got p=1.0")
    if scaled:
        return float(n), math.sqrt(n * p / q)
    return n * q, math.sqrt(n * p * q)


def plot_unit_inputs(ax: Axes, n_inputs: int, p: float, n_masks: int = 20_000) -> None:
    """Histogram the all-ones unit's training-time input, unscaled and scaled, on ``ax``.

    Samples ``n_masks`` masks for each of :class:`dropoutlib.StandardDropout` (no scaling: the unit
    receives ``K``) and ``torch.nn.Dropout`` (inverted: ``K / q``), with the global torch RNG, and draws
    both as densities, with one bin per attainable value, next to a line at the inference-time input
    ``n_inputs``.

    Example:
        >>> import matplotlib.pyplot as plt
        >>> fig, ax = plt.subplots()
        >>> plot_unit_inputs(ax, 100, 0.4, n_masks=500)
        >>> plt.close(fig)
    """
    from dropoutlib.course.plots import COLORS
    from dropoutlib.nn.dropout import StandardDropout

    n = check_positive_int(n_inputs, "n_inputs")
    p = check_probability(p)
    q = 1.0 - p
    edges = np.arange(n + 2) - 0.5  # one bin per number of kept inputs k = 0..n
    largest = float(n)
    for layer, factor, label, color in (
        (StandardDropout, 1.0, "training, not scaled", COLORS["baseline"]),
        (nn.Dropout, 1.0 / q, "training, scaled by 1/(1-p)", COLORS["dropout"]),
    ):
        values = training_outputs(all_ones_unit(n, p, layer), n, n_masks).numpy()
        ax.hist(values, bins=edges * factor, density=True, color=color, alpha=0.75, label=label)
        largest = max(largest, float(values.max()))
    ax.axvline(n, color="black", linestyle="--", linewidth=1.5, label=f"inference: {n}")
    ax.set_xlim(0, 1.05 * largest)
    ax.set_title(f"p = {p:g}")
    ax.set_xlabel("input received by the unit")
    ax.set_ylabel("probability density")


@dataclass(frozen=True)
class ExpectationCheck:
    """A layer's training-time output averaged over masks, next to its test-time output.

    Attributes:
        train_mean: mean of the training-time outputs over the masks, shape ``(out_features,)``.
        standard_error: standard error of that mean (sample std / sqrt(n_masks)), same shape.
        test_output: the deterministic test-time output, same shape.
        n_masks: number of masks averaged.
    """

    train_mean: torch.Tensor
    standard_error: torch.Tensor
    test_output: torch.Tensor
    n_masks: int

    @property
    def z_scores(self) -> torch.Tensor:
        """``(train_mean - test_output) / standard_error``: about N(0, 1) when the rule is right."""
        return (self.train_mean - self.test_output) / self.standard_error

    @property
    def max_abs_z(self) -> float:
        """The largest ``|z|`` over the outputs."""
        return float(self.z_scores.abs().max())


def training_vs_test(
    weight: torch.Tensor,
    x: torch.Tensor,
    p: float,
    *,
    variant: Literal["inverted", "standard"],
    n_masks: int = 20_000,
    generator: torch.Generator | None = None,
) -> ExpectationCheck:
    """Average a linear layer's training-time output over masks; compare it with the test-time output.

    The layer computes ``W x`` with dropout applied to its input ``x`` (shape ``(in_features,)``);
    ``W`` has shape ``(out_features, in_features)``.

    - ``variant="inverted"``: training ``W (m * x / q)`` (:func:`dropoutlib.dropout`), test ``W x``.
    - ``variant="standard"``: training ``W (m * x)`` (:func:`dropoutlib.standard_dropout`), test
      ``(q W) x`` (:func:`dropoutlib.scale_weights_for_inference`).

    In both cases ``E[training output] = test output``, so every z-score of the result is about N(0, 1).

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> w, x = torch.randn(3, 20, generator=g), torch.randn(20, generator=g)
        >>> training_vs_test(w, x, 0.3, variant="standard", generator=g).max_abs_z < 4.5
        True
    """
    check_floating(weight, "weight")
    check_floating(x, "x")
    if weight.dim() != 2 or x.dim() != 1 or weight.shape[1] != x.shape[0]:
        raise ValueError(
            f"weight must have shape (out_features, in_features) and x shape (in_features,), "
            f"got weight {tuple(weight.shape)} and x {tuple(x.shape)}"
        )
    p = check_probability(p)
    n_masks = check_positive_int(n_masks, "n_masks")
    if n_masks < 2:
        raise ValueError(f"n_masks must be at least 2 to estimate a standard error, got {n_masks}")
    rows = x.expand(n_masks, -1)
    with torch.no_grad():
        if variant == "inverted":
            train = dropout(rows, p, training=True, generator=generator) @ weight.T
            test = weight @ x
        elif variant == "standard":
            train = standard_dropout(rows, p, training=True, generator=generator) @ weight.T
            test = scale_weights_for_inference(weight, p) @ x
        else:
            raise ValueError(f"variant must be 'inverted' or 'standard', got variant={variant!r}")
    train = train.double()
    return ExpectationCheck(
        train_mean=train.mean(dim=0),
        standard_error=train.std(dim=0) / math.sqrt(n_masks),
        test_output=test.double(),
        n_masks=n_masks,
    )


@dataclass
class ForgottenEval:
    """What :func:`forgotten_eval_experiment` measured.

    Attributes:
        model: the trained MLP (left in evaluation mode).
        data: the digits split it was trained and tested on.
        history: its training history (recorded after the last epoch only).
        eval_accuracy: test accuracy in evaluation mode (deterministic).
        train_mode_accuracies: test accuracy of each of ``n_repeats`` predictions in training mode.
        flip_fraction: fraction of test predictions that change between two consecutive training-mode
            predictions, averaged over the ``n_repeats - 1`` consecutive pairs.
        eval_disagreement: fraction of training-mode predictions that differ from the evaluation-mode
            prediction of the same example, averaged over the repeats.
        accuracy_drop_se: standard error of the accuracy lost in training mode (evaluation-mode
            accuracy minus the mean training-mode accuracy), from the per-image differences
            ``d_i = [eval mode right on i] - mean_r [call r right on i]``: ``std(d) / sqrt(N)``.
    """

    model: nn.Module
    data: Split
    history: History
    eval_accuracy: float
    train_mode_accuracies: np.ndarray
    flip_fraction: float
    eval_disagreement: float
    accuracy_drop_se: float = float("nan")

    @property
    def accuracy_drop(self) -> float:
        """Evaluation-mode test accuracy minus the mean training-mode accuracy."""
        return self.eval_accuracy - float(self.train_mode_accuracies.mean())


def forgotten_eval_experiment(
    seed: int = 0,
    *,
    hidden: Sequence[int] = (256, 256),
    p: float = 0.5,
    epochs: int = 40,
    batch_size: int = 128,
    lr: float = 1e-3,
    n_repeats: int = 20,
    progress: bool = True,
) -> ForgottenEval:
    """Train an MLP with dropout on the digits, then predict the test set in both modes.

    The model is ``mlp(64, hidden, 10, p=p)`` trained with :func:`course.fit` (Adam) on
    ``load_digits()`` (the book's fixed split). ``seed`` fixes the initialization, the training masks
    and the masks of the training-mode predictions. The test set is predicted once in evaluation mode
    and ``n_repeats`` times in training mode, as if ``model.eval()`` had been forgotten.

    Example:
        >>> result = forgotten_eval_experiment(0, epochs=2, n_repeats=3, progress=False)
        >>> result.train_mode_accuracies.shape
        (3,)
    """
    n_repeats = check_positive_int(n_repeats, "n_repeats")
    if n_repeats < 2:
        raise ValueError(f"n_repeats must be at least 2 to count flips, got {n_repeats}")
    seed_everything(seed)
    data = load_digits()
    model = mlp(data.n_features, list(hidden), 10, p=p)
    history = fit(  # the history is only needed at the end: evaluate once, after the last epoch
        model,
        data,
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        seed=seed,
        progress=progress,
        eval_every=epochs,
    )
    torch.manual_seed(seed + 10_000)  # the masks of the training-mode predictions
    eval_pred = predict_labels(model, data.x_test, training=False)
    train_preds = torch.stack([predict_labels(model, data.x_test, training=True) for _ in range(n_repeats)])
    y = data.y_test
    flips = (train_preds[1:] != train_preds[:-1]).double().mean()
    per_image = (eval_pred == y).double() - (train_preds == y).double().mean(dim=0)
    return ForgottenEval(
        model=model.eval(),
        data=data,
        history=history,
        eval_accuracy=float((eval_pred == y).double().mean()),
        train_mode_accuracies=(train_preds == y).double().mean(dim=1).numpy(),
        flip_fraction=float(flips),
        eval_disagreement=float((train_preds != eval_pred).double().mean()),
        accuracy_drop_se=float(per_image.std() / math.sqrt(len(y))),
    )


# --------------------------------------------------------------------------------------------------
# The chapter's claims. Every threshold they use is one of these constants or written in them.
# --------------------------------------------------------------------------------------------------

#: A measured mean "matches" its exact value when it lies within this many standard errors of it.
MEAN_STANDARD_ERRORS = 4
#: The measured std of the 100-input unit (20,000 masks) lies within this fraction of the exact std.
STD_TOLERANCE = 0.03
#: ... and that of the 10,000-input unit (1,000 masks, a noisier estimate) within this fraction.
BIG_UNIT_STD_TOLERANCE = 0.1
#: Scaling by ``1/p`` gives ``q/p`` times the inference-time input, within this.
RATIO_TOLERANCE = 0.01
#: "Multiply the weights by p" shrinks the test-time outputs by ``p/q``, within this.
WRONG_RATIO_TOLERANCE = 0.02
#: Standard and inverted dropout agree, mask for mask, up to this (float32 rounding).
ROUNDING_TOLERANCE = 1e-5
#: A rule matches its test-time output in expectation: no z-score beyond this (4 outputs x 2 rules).
MAX_Z = 4.5
#: The measured std of a layer's training-time output lies within this fraction of sqrt(p/q sum w^2 x^2).
NOISE_STD_TOLERANCE = 0.05
#: Forgetting ``eval()`` costs accuracy: the drop exceeds this many (paired, per-image) standard errors.
DROP_STANDARD_ERRORS = 3.0
#: ... and more than this fraction of the test predictions change between two training-mode calls.
MIN_FLIP_FRACTION = 0.02


def _moment_claims(
    name: str, values: torch.Tensor, n: int, p: float, *, scaled: bool, std_tolerance: float
) -> list[Claim]:
    mean, std = all_ones_unit_moments(n, p, scaled=scaled)
    measured_mean, measured_std = values.mean().item(), values.std().item()
    exact = f"n = {mean:g}" if scaled else f"n q = {mean:g}"
    return [
        below(
            f"{name}: the mean input is {exact}, within {MEAN_STANDARD_ERRORS} standard errors",
            abs(measured_mean - mean),
            MEAN_STANDARD_ERRORS * std / math.sqrt(len(values)),
        ),
        below(
            f"{name}: its std is the binomial {std:.3f}, within {std_tolerance:.0%}",
            abs(measured_std / std - 1),
            std_tolerance,
        ),
    ]


def rescale_claims(
    unscaled: torch.Tensor, scaled: torch.Tensor, at_inference: float, n: int, p: float
) -> list[Claim]:
    """Why dropout rescales: the claims of the 100-input unit (``n`` inputs, drop probability ``p``).

    ``unscaled`` and ``scaled`` are :func:`training_outputs` of :func:`all_ones_unit` behind
    :class:`dropoutlib.StandardDropout` and ``torch.nn.Dropout``, ``at_inference`` its output in
    evaluation mode. Without scaling the unit receives ``K ~ Binomial(n, q)``, with scaling ``K / q``:
    each mean matches :func:`all_ones_unit_moments` within :data:`MEAN_STANDARD_ERRORS` standard
    errors, each std within :data:`STD_TOLERANCE`; at inference it receives ``n``; and dividing by
    ``p`` instead of ``q`` ("the inverse of the dropout rate") gives ``q / p`` times that.

    Example:
        >>> _ = torch.manual_seed(0)
        >>> unscaled = training_outputs(all_ones_unit(100, 0.4, nn.Identity), 100, 10)
        >>> print(rescale_claims(unscaled, unscaled, 100.0, 100, 0.4)[-2])
        ✓ at inference the unit receives n = 100 (100.0)
    """
    q = 1.0 - p
    ratio = (unscaled / p).mean().item() / at_inference
    return [
        *_moment_claims("not scaled", unscaled, n, p, scaled=False, std_tolerance=STD_TOLERANCE),
        *_moment_claims("scaled by 1/q", scaled, n, p, scaled=True, std_tolerance=STD_TOLERANCE),
        Claim(f"at inference the unit receives n = {n}", at_inference == n, f"{at_inference}"),
        below("scaling by 1/p gives q/p times the inference input", abs(ratio - q / p), RATIO_TOLERANCE),
    ]


def equivalence_claims(train_gap: float, test_gap: float) -> list[Claim]:
    """Standard dropout with weights ``W`` and inverted dropout with ``q W`` are the same model.

    ``train_gap`` is the largest difference of their training-time outputs for the same masks,
    ``test_gap`` of their test-time outputs: both below :data:`ROUNDING_TOLERANCE`.

    Example:
        >>> [claim.holds for claim in equivalence_claims(2e-7, 0.0)]
        [True, True]
    """
    return [
        below("same masks, same training outputs", float(train_gap), ROUNDING_TOLERANCE),
        below("both give q W x at test time", float(test_gap), ROUNDING_TOLERANCE),
    ]


def expectation_claims(checks: dict[str, ExpectationCheck], wrong_ratio: float, p: float) -> list[Claim]:
    """Each rule's test-time output is the expectation of its training-time output; ``p W`` is not.

    ``checks`` maps a variant (``"inverted"``, ``"standard"``) to its :func:`training_vs_test`: no
    z-score beyond :data:`MAX_Z`. ``wrong_ratio`` is ``|(p W) x| / |average training output|`` of
    standard dropout: ``p / q`` within :data:`WRONG_RATIO_TOLERANCE`.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> w, x = torch.randn(3, 20, generator=g), torch.randn(20, generator=g)
        >>> checks = {"standard": training_vs_test(w, x, 0.3, variant="standard", generator=g)}
        >>> [claim.holds for claim in expectation_claims(checks, 0.3 / 0.7, 0.3)]
        [True, True]
    """
    claims = [
        below(
            f"{variant} dropout: its test-time output is its training-time average", summary.max_abs_z, MAX_Z
        )
        for variant, summary in checks.items()
    ]
    claims.append(
        below(
            "multiplying the weights by p shrinks the outputs by p/q",
            abs(wrong_ratio - p / (1 - p)),
            WRONG_RATIO_TOLERANCE,
        )
    )
    return claims


def big_unit_claims(train_out: torch.Tensor, eval_out: float, n: int, p: float) -> list[Claim]:
    """The ``n``-input unit behind ``nn.Dropout(p)`` (10,000 inputs, ``p = 0.5`` in the chapter).

    In evaluation mode it outputs exactly ``n``; in training mode (``train_out``, one output per
    mask) its mean is ``n`` within :data:`MEAN_STANDARD_ERRORS` standard errors, its std
    ``sqrt(n p / q)`` within :data:`BIG_UNIT_STD_TOLERANCE`, and with ``1/q = 2`` every output is even.

    Example:
        >>> _ = torch.manual_seed(0)
        >>> outputs = training_outputs(all_ones_unit(10_000, 0.5), 10_000, 100)
        >>> all(claim.holds for claim in big_unit_claims(outputs, 10_000.0, 10_000, 0.5))
        True
    """
    claims = [
        Claim(f"in evaluation mode the output is exactly {n:,}", eval_out == n, f"{eval_out}"),
        *_moment_claims("training mode", train_out, n, p, scaled=True, std_tolerance=BIG_UNIT_STD_TOLERANCE),
    ]
    if p == 0.5:
        even = int((train_out % 2 == 0).sum())
        claims.append(
            Claim("with 1/q = 2 every output is even", even == len(train_out), f"{even} of {len(train_out)}")
        )
    return claims


def mode_claims(
    net_modes: dict[str, dict[str, bool]],
    grad_rows: Sequence[dict[str, object]],
    leaky_differs: bool,
    fixed_same: bool,
) -> list[Claim]:
    """What ``train()`` and ``eval()`` switch, and what they do not.

    ``net_modes`` maps ``"train"`` and ``"eval"`` to what a network with batch norm and dropout did
    in that mode (``"two calls equal"``, ``"running mean updated"``); ``grad_rows`` has one row per
    mode and grad context (``"mode"``, ``"grad context"``, ``"dropout active"``, ``"graph recorded"``).
    Dropout is active and batch norm updates its running mean in training mode only; the graph is
    recorded whenever grad is enabled, in either mode; an ``F.dropout`` that ignores
    ``self.training`` still drops in evaluation mode (``leaky_differs``), and one that passes it does
    not (``fixed_same``).

    Example:
        >>> modes = {"train": {"two calls equal": False, "running mean updated": True},
        ...          "eval": {"two calls equal": True, "running mean updated": False}}
        >>> rows = [{"mode": "eval", "grad context": "no_grad", "dropout active": False,
        ...          "graph recorded": False}]
        >>> all(claim.holds for claim in mode_claims(modes, rows, True, True))
        True
    """
    claims = []
    for mode, seen in net_modes.items():
        training = mode == "train"
        claims.append(
            Claim(
                f"{mode}(): dropout {'draws a new mask per call' if training else 'is off'}",
                seen["two calls equal"] != training,
                f"two calls equal: {seen['two calls equal']}",
            )
        )
        claims.append(
            Claim(
                f"{mode}(): batch norm {'updates' if training else 'keeps'} its running mean",
                seen["running mean updated"] == training,
                f"running mean updated: {seen['running mean updated']}",
            )
        )
    as_expected = [
        row["dropout active"] == (row["mode"] == "train")
        and row["graph recorded"] == (row["grad context"] == "enabled")
        for row in grad_rows
    ]
    claims.append(
        Claim(
            "eval() switches dropout, no_grad() switches the graph, independently",
            all(as_expected),
            f"{sum(as_expected)} of {len(grad_rows)} combinations",
        )
    )
    claims.append(
        Claim(
            "F.dropout without training=self.training drops in eval mode",
            leaky_differs,
            f"two calls differ: {leaky_differs}",
        )
    )
    claims.append(
        Claim(
            "with training=self.training, eval mode is deterministic",
            fixed_same,
            f"two calls equal: {fixed_same}",
        )
    )
    return claims


def forgotten_eval_claims(result: ForgottenEval) -> list[Claim]:
    """Forgetting ``model.eval()`` lowers the test accuracy and makes the predictions unstable.

    The accuracy lost in training mode exceeds :data:`DROP_STANDARD_ERRORS` of its paired standard
    error (``result.accuracy_drop_se``), so it is no accident of the 540 test images; more than
    :data:`MIN_FLIP_FRACTION` of the predictions change between two consecutive calls; and the share
    of predictions that differ from evaluation mode exceeds the accuracy lost (the instability is
    the more visible symptom).

    Example:
        >>> result = forgotten_eval_experiment(0, epochs=2, n_repeats=3, progress=False)
        >>> len(forgotten_eval_claims(result))
        3
    """
    drop = result.accuracy_drop
    return [
        above(
            f"eval mode beats train mode by > {DROP_STANDARD_ERRORS:g} standard errors",
            drop,
            DROP_STANDARD_ERRORS * result.accuracy_drop_se,
        ),
        above(
            f"more than {MIN_FLIP_FRACTION:.0%} of predictions flip between calls",
            result.flip_fraction,
            MIN_FLIP_FRACTION,
        ),
        above(
            "more predictions change than accuracy is lost",
            result.eval_disagreement,
            drop,
        ),
    ]


def noise_std(weight: torch.Tensor, x: torch.Tensor, p: float) -> torch.Tensor:
    r"""Exact std of each output of ``W (m * x / q)`` over inverted-dropout masks.

    It is :math:`\sqrt{(p/q)\sum_j w_{ij}^2 x_j^2}`: each term :math:`w_{ij} x_j m_j / q` has
    variance :math:`w_{ij}^2 x_j^2 (q/q^2 - 1) = w_{ij}^2 x_j^2 \, p/q`, and the terms are
    independent. The noise scales with the input: it is multiplicative.

    Example:
        >>> noise_std(torch.ones(1, 10_000), torch.ones(10_000), 0.5)
        tensor([100.], dtype=torch.float64)
    """
    p = check_probability(p)
    return torch.sqrt(p / (1 - p) * (weight.double() ** 2 * x.double() ** 2).sum(dim=1))


def noise_claims(
    measured: dict[float, torch.Tensor], weight: torch.Tensor, x: torch.Tensor, p: float
) -> list[Claim]:
    """The training-time noise of a layer: std ``sqrt(p/q sum w^2 x^2)``, proportional to the input.

    ``measured`` maps a scale ``s`` of the input to the measured std of each output of
    ``W (m * s x / q)`` (from :func:`training_vs_test`: ``standard_error * sqrt(n_masks)``). Each is
    within :data:`NOISE_STD_TOLERANCE` of :func:`noise_std` at ``s x``, and for ``s = 0`` it is 0.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> w, x = torch.randn(3, 20, generator=g), torch.randn(20, generator=g)
        >>> c = training_vs_test(w, x, 0.3, variant="inverted", generator=g)
        >>> [claim.holds for claim in noise_claims({1.0: c.standard_error * c.n_masks**0.5}, w, x, 0.3)]
        [True]
    """
    claims = []
    for scale, std in measured.items():
        exact = noise_std(weight, scale * x, p)
        if scale == 0:
            claims.append(below("no input, no noise (largest std)", float(std.abs().max()), 1e-12))
            continue
        error = float((std.double() / exact - 1).abs().max())
        claims.append(
            below(f"input x {scale:g}: std is sqrt(p/q sum w^2 x^2), within", error, NOISE_STD_TOLERANCE)
        )
    return claims


def other_layers_claims(rows: Sequence[dict[str, object]]) -> list[Claim]:
    """Recurrent and attention layers read the flag too: random in ``train()``, deterministic in ``eval()``.

    ``rows`` has one row per layer with ``"layer"``, ``"train: two calls differ"`` and
    ``"eval: two calls equal"``.
    """
    return [
        Claim(
            f"{row['layer']}: dropout in train(), none in eval()",
            bool(row["train: two calls differ"]) and bool(row["eval: two calls equal"]),
            f"train differ {row['train: two calls differ']}, eval equal {row['eval: two calls equal']}",
        )
        for row in rows
    ]
