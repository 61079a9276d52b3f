"""Checks for the exercises of chapter 1, "Overfitting and the idea of dropout".

Each ``check_*`` takes the student's function, prints one line when it is right, and otherwise raises
an ``AssertionError`` whose message names the mistake. A stub (returning ``None`` or ``...``, raising
``NotImplementedError``) never passes. Passing something that is not a function raises ``TypeError``.

Notation: ``p`` is the probability of dropping a unit, ``q = 1 - p`` the probability of keeping it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from dropoutlib.course.models import mlp
from dropoutlib.course.stats import samples_needed
from dropoutlib.exercises._answers import as_number, call_answer, describe, require_function
from dropoutlib.experiments.overfitting import ToyFit, total_variation

__all__ = [
    "check_collapsed_line",
    "check_draws_needed",
    "check_expected_kept_units",
    "check_mask_probability",
    "check_subnetwork_count",
    "check_total_variation",
    "check_underfitting",
]


def _close(got: float, want: float) -> bool:
    return math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-12)


def check_subnetwork_count(count_subnetworks: Callable[[list[int]], int]) -> None:
    """Check a function that counts the sub-networks dropout can sample from an MLP.

    ``count_subnetworks(hidden)`` gets the hidden widths of an MLP with dropout after every hidden
    layer (not on the inputs, not on the output) and returns the number of distinct masks: every one
    of the ``n = sum(hidden)`` hidden units is kept or dropped independently, so there are ``2 ** n``.

    Example:
        >>> check_subnetwork_count(lambda hidden: 2 ** sum(hidden))
        Correct: n = sum(hidden) units, each kept or dropped, give 2**n sub-networks (2**600 here).
    """
    require_function(count_subnetworks, "count_subnetworks")
    for hidden in ([4, 4], [3], [2, 3], [1], [4, 4, 4], [10, 20], [200, 200, 200]):
        call = f"count_subnetworks({hidden})"
        got = as_number(call_answer(count_subnetworks, list(hidden)), call)
        n = sum(hidden)
        want = 2**n
        if got == want or (isinstance(got, float) and _close(got, want)):
            continue
        if isinstance(got, float) and math.isinf(got):
            raise AssertionError(
                f"{call} returned inf: 2**{n} overflowed a floating-point number; compute it with "
                f"Python integers (2 ** n), which are exact at any size"
            )
        if got == 2 ** len(hidden):
            raise AssertionError(
                f"{call} returned 2**{len(hidden)} = {got}: you counted layers, but each UNIT is kept "
                f"or dropped on its own, so the exponent is the number of hidden units, {n}"
            )
        if got == 2 * n:
            raise AssertionError(
                f"{call} returned 2 * {n} = {got}: a mask chooses for all units at once, so the "
                f"choices multiply (2 * 2 * ... * 2 = 2**{n}) rather than add"
            )
        if got in (2 ** (n + 2), 2 ** (n + 1)):
            raise AssertionError(
                f"{call} returned {got}: you counted the input or output unit too; here dropout acts "
                f"only after the hidden layers, so only the {n} hidden units can be dropped"
            )
        if got == n:
            raise AssertionError(
                f"{call} returned {n}, the number of droppable units; each of them has two states, "
                f"so the number of masks is 2**{n}"
            )
        if got == math.comb(n, n // 2):
            raise AssertionError(
                f"{call} returned C({n}, {n // 2}), the masks that drop exactly half the units; "
                f"dropout can drop any number of them, so count every subset: 2**{n}"
            )
        raise AssertionError(f"{call} returned {got}, expected 2**{n}")
    print("Correct: n = sum(hidden) units, each kept or dropped, give 2**n sub-networks "
          "(2**600 here).")


def _masks() -> list[torch.Tensor]:
    return [
        torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0]),
        torch.tensor([1.0, 1.0, 1.0, 1.0]),
        torch.tensor([0.0, 0.0, 1.0]),
        torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0]),
    ]


def check_mask_probability(mask_probability: Callable[[torch.Tensor, float], float]) -> None:
    """Check a function that gives the probability that dropout samples one particular mask.

    ``mask_probability(mask, p)`` gets a 1-D tensor of 0s and 1s (1 = unit kept) and the drop
    probability ``p``. Units are independent, each kept with probability ``q = 1 - p``, so a mask
    that keeps ``k`` of its ``n`` units has probability ``q**k * p**(n - k)``.

    Example:
        >>> def mask_probability(mask, p):
        ...     kept = int(mask.sum())
        ...     return (1 - p) ** kept * p ** (len(mask) - kept)
        >>> check_mask_probability(mask_probability)
        Correct: a mask keeping k of n units has probability q**k * p**(n - k).
    """
    require_function(mask_probability, "mask_probability")
    for mask in _masks():
        for p in (0.3, 0.5, 0.8):
            n, k = len(mask), int(mask.sum())
            q = 1.0 - p
            call = f"mask_probability({mask.int().tolist()}, p={p})"
            got = as_number(call_answer(mask_probability, mask.clone(), p), call)
            want = q**k * p ** (n - k)
            if _close(got, want):
                continue
            if k < n and _close(got, q**k):
                raise AssertionError(
                    f"{call} returned q**k = {got:.4g}, the probability that the {k} kept units are "
                    f"kept; the {n - k} dropped units must also be dropped, a factor p**(n - k): "
                    f"q**k * p**(n - k) = {want:.4g} (leaving this factor out is a published mistake)"
                )
            if _close(got, p**k * q ** (n - k)):
                raise AssertionError(
                    f"{call} returned p**k * q**(n - k) = {got:.4g}: p and q are swapped; p is the "
                    f"probability of DROPPING a unit, so a kept unit contributes q = 1 - p"
                )
            if _close(got, math.comb(n, k) * want):
                raise AssertionError(
                    f"{call} returned C(n, k) q**k p**(n - k) = {got:.4g}: that is the probability "
                    f"of keeping {k} units in ANY arrangement; one particular mask has "
                    f"q**k * p**(n - k) = {want:.4g}"
                )
            if _close(got, 0.5**n):
                raise AssertionError(
                    f"{call} returned 2**-n = {got:.4g}: all masks are equally likely only at "
                    f"p = 0.5; in general q**k * p**(n - k) = {want:.4g}"
                )
            if not 0.0 <= got <= 1.0:
                raise AssertionError(f"{call} returned {got:.4g}, which is not a probability")
            raise AssertionError(f"{call} returned {got:.4g}, expected q**k * p**(n - k) = {want:.4g}")
    print("Correct: a mask keeping k of n units has probability q**k * p**(n - k).")


def check_expected_kept_units(expected_kept: Callable[[list[int], float], float]) -> None:
    """Check a function that gives the expected number of hidden units a training step keeps.

    ``expected_kept(hidden, p)`` gets the hidden widths of an MLP with dropout ``p`` after every
    hidden layer. Each of the ``n = sum(hidden)`` units is kept with probability ``q = 1 - p``, so
    the number kept is Binomial(n, q) with mean ``n * (1 - p)``.

    Example:
        >>> check_expected_kept_units(lambda hidden, p: sum(hidden) * (1 - p))
        Correct: on average n (1 - p) of the n hidden units are kept (300 of 600 at p = 0.5).
    """
    require_function(expected_kept, "expected_kept")
    for hidden, p in (([200, 200, 200], 0.2), ([10], 0.3), ([64, 32], 0.5), ([5, 7, 9], 0.9)):
        n, q = sum(hidden), 1.0 - p
        call = f"expected_kept({hidden}, p={p})"
        got = as_number(call_answer(expected_kept, list(hidden), p), call)
        want = n * q
        if _close(got, want):
            continue
        if _close(got, n * p):
            raise AssertionError(
                f"{call} returned n * p = {got:.4g}: that is the expected number of DROPPED units; "
                f"each unit is kept with probability 1 - p"
            )
        if _close(got, len(hidden) * q):
            raise AssertionError(
                f"{call} returned {got:.4g}, the number of layers times 1 - p: count units, "
                f"n = sum(hidden) = {n}"
            )
        if _close(got, n / q):
            raise AssertionError(
                f"{call} returned n / (1 - p) = {got:.4g}: 1 / (1 - p) is the factor inverted "
                f"dropout scales kept activations by, not the fraction of units kept"
            )
        if _close(got, n * q**n) or _close(got, q**n):
            raise AssertionError(
                f"{call} returned {got:.4g}: q**n is the probability that ALL units are kept; the "
                f"expected number kept is a sum of n Bernoulli(q) variables, n * q"
            )
        raise AssertionError(f"{call} returned {got:.4g}, expected n * (1 - p) = {want:.4g}")
    print("Correct: on average n (1 - p) of the n hidden units are kept (300 of 600 at p = 0.5).")


def check_total_variation(total_variation: Callable[[torch.Tensor], float]) -> None:
    r"""Check a function that measures how much a sampled curve goes up and down.

    ``total_variation(values)`` gets a 1-D float tensor ``f(x_1), ..., f(x_N)`` (a curve on a
    sorted grid) and returns :math:`\sum_{i=1}^{N-1} |f(x_{i+1}) - f(x_i)|`.

    Example:
        >>> check_total_variation(lambda values: (values[1:] - values[:-1]).abs().sum())
        Correct: the total variation sums |f(x_{i+1}) - f(x_i)|; a wiggle costs twice its height.
    """
    require_function(total_variation, "total_variation")
    grid = torch.linspace(-1.0, 1.0, 200)
    curves = {
        "a zigzag [0, 1, 0, 1, 0.5]": torch.tensor([0.0, 1.0, 0.0, 1.0, 0.5]),
        "the line 1.5 x on 200 points": 1.5 * grid,
        "a constant curve": torch.full((50,), 2.0),
        "sin(6 x) + x on 200 points": torch.sin(6 * grid) + grid,
        "a falling curve [3, 1, -2]": torch.tensor([3.0, 1.0, -2.0]),
    }
    for name, values in curves.items():
        call = f"total_variation({name})"
        got = as_number(call_answer(total_variation, values.clone()), call)
        v = values.double()
        diffs = v.diff()
        want = diffs.abs().sum().item()
        if _close(got, want) or math.isclose(got, want, rel_tol=1e-5, abs_tol=1e-6):
            continue
        if math.isclose(got, diffs.sum().item(), abs_tol=1e-5):
            raise AssertionError(
                f"{call} returned {got:.4g}, the sum of the SIGNED differences: it telescopes to "
                f"f(last) - f(first), so every wiggle cancels; take |f(x_(i+1)) - f(x_i)|"
            )
        if math.isclose(got, diffs.pow(2).sum().item(), rel_tol=1e-5, abs_tol=1e-6):
            raise AssertionError(
                f"{call} returned {got:.4g}, the sum of SQUARED differences: it shrinks as the grid "
                f"gets finer; the total variation sums absolute differences"
            )
        if math.isclose(got, diffs.abs().mean().item(), rel_tol=1e-5, abs_tol=1e-6):
            raise AssertionError(
                f"{call} returned {got:.4g}, the MEAN absolute difference: sum the differences, "
                f"do not divide by N - 1"
            )
        if math.isclose(got, v.abs().sum().item(), rel_tol=1e-5, abs_tol=1e-6):
            raise AssertionError(
                f"{call} returned {got:.4g}, the sum of |f(x_i)|: that is the size of the curve, "
                f"not of its changes; use differences of neighbours"
            )
        if math.isclose(got, (v.max() - v.min()).item(), rel_tol=1e-5, abs_tol=1e-6):
            raise AssertionError(
                f"{call} returned {got:.4g}, the range max - min: a curve can wiggle many times "
                f"within the same range; add up every rise and every fall"
            )
        raise AssertionError(f"{call} returned {got:.4g}, expected {want:.4g}")
    print("Correct: the total variation sums |f(x_{i+1}) - f(x_i)|; a wiggle costs twice its height.")


# --- too much dropout: telling an underfit from an overfit -------------------------------------------

_LINE_TRAIN, _LINE_TV = 0.3052, 3.0  # the true line of chapter 1: training MSE and total variation


def _toy_fit(label: str, train_loss: float, test_loss: float, roughness: float) -> ToyFit:
    """A made-up fit whose prediction on a 200-point grid has total variation ``roughness``."""
    x = torch.linspace(-1.0, 1.0, 200, dtype=torch.float64)
    shape = 0.6 * x + (0.4 * torch.sin(7.0 * x) if roughness > 3.5 else 0.0)
    prediction = (shape * roughness / total_variation(shape)).float()
    return ToyFit(label=label, p=0.0, seed=0, prediction=prediction, train_loss=train_loss,
                  test_loss=test_loss, roughness=total_variation(prediction), n_parameters=81_001)


def _underfitting_cases() -> list[ToyFit]:
    return [
        _toy_fit("a fit through all ten points (like p = 0)", 0.0, 0.316, 6.59),
        _toy_fit("a nearly flat fit (like p = 0.9)", 0.994, 0.741, 0.198),
        _toy_fit("the least-squares line", 0.284, 0.095, 2.70),
        _toy_fit("a wiggly fit that misses the points", 0.520, 0.610, 5.10),
        _toy_fit("a smooth fit that is off between the points", 0.250, 0.350, 2.00),
        _toy_fit("a flattened fit (like p = 0.8)", 0.462, 0.282, 1.38),
    ]


def _as_verdict(value: Any, call: str) -> bool:
    if isinstance(value, torch.Tensor) and value.numel() == 1 and value.dtype == torch.bool:
        return bool(value.item())
    if isinstance(value, bool | np.bool_):
        return bool(value)
    raise AssertionError(f"{call} should return True or False, got {describe(value)}")


# What each wrong rule answers on the six cases above, and what is wrong with it. The cases are
# chosen so that every rule gives a different pattern of answers (the tests check this).
_UNDERFITTING_MISTAKES = [
    (
        lambda f, lt, lv: f.train_loss > lt,
        "you looked at the training loss only: a fit that misses the points while wiggling more "
        "than the line is not too simple, it is wrong in another way; underfitting here means "
        "worse than the line on the training points AND flatter than it",
    ),
    (
        lambda f, lt, lv: f.roughness < lv,
        "you looked at the total variation only: a curve flatter than the true line can still fit "
        "the training points better than the line does (the least-squares line does); compare the "
        "training losses too",
    ),
    (
        lambda f, lt, lv: f.train_loss < lt and f.roughness < lv,
        "the training-loss comparison is reversed: an underfit is WORSE than the true line on the "
        "training points (a higher loss), it cannot even capture the signal",
    ),
    (
        lambda f, lt, lv: f.train_loss > lt and f.roughness > lv,
        "the total-variation comparison is reversed: an underfit is FLATTER than the true line "
        "(a lower total variation), not wigglier",
    ),
    (
        lambda f, lt, lv: f.test_loss > lt and f.roughness < lv,
        "you compared the fit's TEST loss with the line's training loss: underfitting shows on the "
        "training points (the model cannot fit even them), so compare training loss with training "
        "loss",
    ),
    (
        lambda f, lt, lv: f.train_loss > lt or f.roughness < lv,
        "you flag a fit when EITHER sign is there; ask for both (and, not or): worse on the "
        "training points and flatter",
    ),
    (
        lambda f, lt, lv: f.train_loss < lt and f.roughness > lv,
        "you flag the OVERFIT: better than the true line on the training points and wigglier is "
        "what fitting the noise looks like; an underfit is the opposite on both counts",
    ),
    (lambda f, lt, lv: False, "your function never says True: it misses the flat fits"),
    (lambda f, lt, lv: True, "your function always says True: it flags the overfit too"),
]


def check_underfitting(underfits: Callable[[ToyFit, float, float], bool]) -> None:
    """Check a function that tells whether a fit of chapter 1 underfits.

    ``underfits(fit, line_train, line_tv)`` gets a :class:`~dropoutlib.experiments.overfitting.ToyFit` (as
    returned by :func:`~dropoutlib.experiments.overfitting.fit_toy_regression`),
    the training MSE of the true line
    and the line's total variation. A fit underfits when it is both worse than the true line on the
    training points (``fit.train_loss > line_train``: it misses even the signal) and flatter than it
    (``fit.roughness < line_tv``). The check tries six fits, from one through every point to a
    nearly flat one, and names the rule the answers reveal when they are wrong.

    Example:
        >>> def underfits(fit, line_train, line_tv):
        ...     return fit.train_loss > line_train and fit.roughness < line_tv
        >>> check_underfitting(underfits)
        Correct: an underfit is worse than the true line on the training points and flatter.
    """
    require_function(underfits, "underfits")
    cases = _underfitting_cases()
    got = []
    for fit in cases:
        call = f"underfits(<{fit.label}>, line_train={_LINE_TRAIN}, line_tv={_LINE_TV})"
        got.append(_as_verdict(call_answer(underfits, fit, _LINE_TRAIN, _LINE_TV), call))
    want = [f.train_loss > _LINE_TRAIN and f.roughness < _LINE_TV for f in cases]
    if got != want:
        for rule, mistake in _UNDERFITTING_MISTAKES:
            if got == [bool(rule(f, _LINE_TRAIN, _LINE_TV)) for f in cases]:
                raise AssertionError(mistake)
        fit, answer = next((f, g) for f, g, w in zip(cases, got, want, strict=True) if g != w)
        raise AssertionError(
            f"for {fit.label} (training MSE {fit.train_loss:.3f}, total variation "
            f"{fit.roughness:.2f}; the line: {_LINE_TRAIN:.3f} and {_LINE_TV:.0f}) your function "
            f"says {answer}, expected {not answer}"
        )
    print("Correct: an underfit is worse than the true line on the training points and flatter.")


# --- the demo as printed: a network without activations is a straight line ---------------------------


def _linear_networks() -> list[tuple[str, nn.Sequential]]:
    """Networks without activations, as ``mlp(..., activation=nn.Identity)`` builds them."""
    networks = []
    with torch.random.fork_rng(devices=[]):
        for seed, hidden in enumerate(([3], [4, 5], [200, 200, 200], [])):
            torch.manual_seed(seed)
            networks.append((f"mlp(1, {hidden}, 1, activation=nn.Identity)",
                             mlp(1, hidden, 1, activation=nn.Identity)))
    return networks


def _affine_parts(model: nn.Module) -> tuple[float, float, dict[str, float]]:
    """Slope, intercept (float64) and the values that typical wrong answers give for them."""
    layers = [m for m in model.modules() if isinstance(m, nn.Linear)]
    slope = torch.ones(1, 1, dtype=torch.float64)
    shift = torch.zeros(1, dtype=torch.float64)
    for layer in layers:
        weight, bias = layer.weight.detach().double(), layer.bias.detach().double()
        slope, shift = weight @ slope, weight @ shift + bias
    wrong = {
        "last bias": layers[-1].bias.item(),
        "sum of biases": sum(layer.bias.double().sum().item() for layer in layers),
    }
    return slope.item(), shift.item(), wrong


def _line_close(got: float, want: float) -> bool:
    return math.isclose(got, want, rel_tol=1e-4, abs_tol=1e-6)


def check_collapsed_line(collapse: Callable[[nn.Module], tuple[float, float]]) -> None:
    """Check a function that finds the straight line a network without activations computes.

    Without activations every layer is affine, ``a -> W a + b``, and so is their composition: the
    network ``mlp(1, hidden, 1, activation=nn.Identity)`` computes ``w x + b`` for one slope ``w``
    and one intercept ``b``, however many layers it has. ``collapse(model)`` returns ``(w, b)`` as
    two numbers, from the ``Linear`` layers' weights and biases (``a -> W a + b`` applied to the
    slope and the intercept layer by layer) or from the model's outputs. Its predictions on a grid
    then lie on a line: their second differences are zero. The check tries four such networks (one
    of them the demo's 1-200-200-200-1) and leaves their weights as they were.

    Example:
        >>> def collapse(model):
        ...     with torch.no_grad():
        ...         b = model(torch.zeros(1, 1)).item()
        ...         return model(torch.ones(1, 1)).item() - b, b
        >>> check_collapsed_line(collapse)
        Correct: without activations the network is one affine map, x -> w x + b.
    """
    require_function(collapse, "collapse")
    for name, model in _linear_networks():
        state = {key: value.clone() for key, value in model.state_dict().items()}
        call = f"collapse({name})"
        result = call_answer(collapse, model)
        if any(not torch.equal(value, model.state_dict()[key]) for key, value in state.items()):
            raise AssertionError(f"{call} changed the model's weights: read them, do not modify them")
        if isinstance(result, nn.Module):
            raise AssertionError(f"{call} returned a model; return the two numbers (w, b)")
        if isinstance(result, torch.Tensor | np.ndarray) and math.prod(result.shape) == 2:
            result = tuple(result.reshape(-1))
        if not isinstance(result, tuple | list) or len(result) != 2:
            raise AssertionError(
                f"{call} should return two numbers, the slope and the intercept (w, b); got "
                f"{describe(result)}"
            )
        w = as_number(result[0], f"{call}[0] (the slope)")
        b = as_number(result[1], f"{call}[1] (the intercept)")
        want_w, want_b, wrong = _affine_parts(model)
        if _line_close(w, want_w) and _line_close(b, want_b):
            continue
        if _line_close(w, want_b) and _line_close(b, want_w):
            raise AssertionError(f"{call} returned (b, w): return the slope first, then the intercept")
        if _line_close(w, want_w + want_b):
            raise AssertionError(
                f"{call} returned the slope {w:.4g} = f(1) = w + b: the output at x = 1 includes the "
                f"intercept; the slope is f(1) - f(0) = {want_w:.4g}"
            )
        if _line_close(w, want_w):
            if b == 0:
                raise AssertionError(
                    f"{call} returned the intercept 0, as if the biases did not count: the "
                    f"output at x = 0 is f(0) = b = {want_b:.4g}, which the biases make nonzero"
                )
            if _line_close(b, wrong["last bias"]):
                raise AssertionError(
                    f"{call} returned only the output layer's bias as the intercept: the hidden "
                    f"layers' biases pass through the later layers' weights too (a -> W a + b, "
                    f"layer by layer), giving b = {want_b:.4g}"
                )
            if _line_close(b, wrong["sum of biases"]):
                raise AssertionError(
                    f"{call} added up the biases as they are: each bias is multiplied by the "
                    f"weights of every layer after it (a -> W a + b, layer by layer), giving "
                    f"b = {want_b:.4g}"
                )
            raise AssertionError(f"{call} has the right slope but intercept {b:.4g}; expected "
                                 f"{want_b:.4g}")
        raise AssertionError(
            f"{call} returned (w, b) = ({w:.4g}, {b:.4g}), expected ({want_w:.4g}, {want_b:.4g}): "
            f"the slope is the product of the weight matrices, W_L ... W_2 W_1"
        )
    print("Correct: without activations the network is one affine map, x -> w x + b.")


def _draws(se: float, n_draws: int, effect: float, z: float) -> int:
    """The smallest n with z * (se * sqrt(n_draws)) / sqrt(n) <= effect."""
    return samples_needed(se * math.sqrt(n_draws), effect, z)


def check_draws_needed(draws_needed: Callable[[float, int, float, float], Any]) -> None:
    r"""Check a function that says how many paired draws make an effect stand out from the noise.

    ``draws_needed(se, n_draws, effect, z)`` gets the standard error ``se`` of a mean paired
    difference measured over ``n_draws`` draws, an ``effect`` size, and a multiple ``z``. The
    per-draw differences have standard deviation :math:`s = \mathrm{se}\sqrt{n_\text{draws}}`; over
    :math:`n` draws the standard error is :math:`s/\sqrt n`, and the answer is the smallest
    integer :math:`n` with :math:`z\,s/\sqrt n \le` ``effect``, that is
    :math:`\lceil (z s / \text{effect})^2 \rceil`.

    Example:
        >>> import math
        >>> check_draws_needed(lambda se, n, effect, z: math.ceil((z * se * n**0.5 / effect) ** 2))
        Correct: s = se * sqrt(n_draws), then n = ceil((z s / effect)**2) draws.
    """
    require_function(draws_needed, "draws_needed")
    cases = ((0.02, 8, 0.015, 1.96), (0.0213, 5, 0.02, 2.0), (0.05, 4, 0.1, 2.0), (0.01, 10, 0.01, 2.84),
             (0.03, 5, 0.05, 2.0))
    for se, n_draws, effect, z in cases:
        call = f"draws_needed(se={se}, n_draws={n_draws}, effect={effect}, z={z})"
        got = as_number(call_answer(draws_needed, se, n_draws, effect, z), call)
        want = _draws(se, n_draws, effect, z)
        if got == want:
            continue
        exact = (z * se * math.sqrt(n_draws) / effect) ** 2
        if math.isclose(got, exact, rel_tol=1e-6) or got == math.floor(exact):
            raise AssertionError(
                f"{call} returned {got:.4g}: round UP to a whole number of draws, {want}; fewer "
                f"draws would leave the standard error above effect / z"
            )
        if got == _draws(se, 1, effect, z):
            raise AssertionError(
                f"{call} returned {got:.4g}: that treats se as the spread of one draw's difference; "
                f"se is the spread of the MEAN of {n_draws} draws, so one draw's is se * sqrt(n_draws)"
            )
        if got == math.ceil(z * se * math.sqrt(n_draws) / effect):
            raise AssertionError(
                f"{call} returned {got:.4g}: the standard error shrinks like 1 / sqrt(n), so n grows "
                f"with the SQUARE of z s / effect"
            )
        if got == _draws(se, n_draws, effect, 1.0):
            raise AssertionError(f"{call} returned {got:.4g}: use z; it is the margin, in standard errors")
        raise AssertionError(f"{call} returned {got:.4g}, expected {want}")
    print("Correct: s = se * sqrt(n_draws), then n = ceil((z s / effect)**2) draws.")
