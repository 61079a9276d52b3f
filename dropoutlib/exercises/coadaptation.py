"""Checks for the exercises of chapter 5, "Co-adaptation and lazy units".

Each ``check_*`` takes the student's function, prints one line when it is right, and otherwise raises
an ``AssertionError`` whose message names the mistake. A stub (returning ``None`` or ``...``, raising
``NotImplementedError``) never passes. Passing something that is not a function raises ``TypeError``.
The checks draw their own random numbers without disturbing the caller's generators.

Notation: ``p`` is the probability of dropping a unit, ``q = 1 - p`` the probability of keeping it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from dropoutlib.course.models import mlp
from dropoutlib.exercises._answers import as_number, call_answer, describe, require_function
from dropoutlib.experiments.coadaptation import ablation_importance, hidden_activations

__all__ = ["check_ablation_importance", "check_copies_equilibrium", "check_gini"]

_SEED = 5


def _close(got: float, want: float, tol: float = 1e-6) -> bool:
    return math.isclose(got, want, rel_tol=tol, abs_tol=1e-9)


# --- importance by ablation ----------------------------------------------------------------------


def _as_vector(result: Any, n: int, call: str) -> torch.Tensor:
    if isinstance(result, np.ndarray | list | tuple):
        try:
            result = torch.as_tensor(np.asarray(result, dtype=np.float64))
        except (TypeError, ValueError):
            raise AssertionError(f"{call} returned {describe(result)}: return numbers") from None
    if not isinstance(result, torch.Tensor):
        raise AssertionError(
            f"{call} returned {describe(result)}; return a 1-D tensor with one importance per unit"
        )
    vector = result.detach().double().flatten()
    if vector.numel() != n:
        raise AssertionError(
            f"{call} returned {vector.numel()} values for a layer of {n} hidden units: return one "
            "importance per hidden unit, a tensor of shape (hidden,)"
        )
    return vector


def _test_model() -> tuple[nn.Sequential, torch.Tensor, torch.Tensor]:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_SEED)
        model = mlp(8, [6], 3, p=0.5)
        with torch.no_grad():
            model[0].bias.copy_(torch.tensor([0.6, -0.4, 0.8, 0.5, -0.2, 0.7]))
        x = torch.randn(60, 8)
        y = torch.randint(3, (60,))
    model.train()  # as during training: the student must switch dropout off to measure
    return model, x, y


def _variants(model: nn.Sequential, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    """What common mistakes compute, for naming them."""
    first, last = model[0], model[-1]
    h = hidden_activations(model, x).double()
    w, b = last.weight.detach().double(), last.bias.detach().double()
    base = F.cross_entropy(h @ w.T + b, y)
    base_sum = F.cross_entropy(h @ w.T + b, y, reduction="sum")
    base_acc = ((h @ w.T + b).argmax(1) == y).double().mean()
    xd = x.double()
    w1, b1 = first.weight.detach().double(), first.bias.detach().double()
    ablated, summed, acc_drop, bias_left = [], [], [], []
    for j in range(h.shape[1]):
        hj = h.clone()
        hj[:, j] = 0
        logits = hj @ w.T + b
        ablated.append(F.cross_entropy(logits, y))
        summed.append(F.cross_entropy(logits, y, reduction="sum") - base_sum)
        acc_drop.append(base_acc - (logits.argmax(1) == y).double().mean())
        w1j = w1.clone()
        w1j[j] = 0  # incoming weights zeroed, bias left: the unit outputs relu(b_j), not 0
        hb = torch.relu(xd @ w1j.T + b1)
        bias_left.append(F.cross_entropy(hb @ w.T + b, y) - base)
    return {
        "ablated": torch.stack(ablated),
        "summed": torch.stack(summed),
        "acc_drop": torch.stack(acc_drop),
        "bias_left": torch.stack(bias_left),
    }


def check_ablation_importance(
    importance: Callable[[nn.Sequential, torch.Tensor, torch.Tensor], Any],
) -> None:
    """Check a function that measures each hidden unit's importance by ablation.

    ``importance(model, x, y)`` gets a one-hidden-layer network from ``mlp(in, [hidden], out, p)``
    (Linear, ReLU, Dropout, Linear; handed over in training mode), inputs and class labels, and
    returns a 1-D tensor whose entry ``j`` is the increase of the mean cross-entropy on ``(x, y)``
    when hidden unit ``j`` alone is set to zero, measured with dropout off. The model must be left
    as it was found (weights and training mode).

    Example:
        >>> from dropoutlib.experiments.coadaptation import ablation_importance
        >>> check_ablation_importance(ablation_importance)
        Correct: I_j = loss with unit j zeroed - loss of the full network, with dropout off.
    """
    require_function(importance, "importance function importance(model, x, y)")
    model, x, y = _test_model()
    want = ablation_importance(model, x, y)
    n = want.numel()
    before = {name: t.detach().clone() for name, t in model.state_dict().items()}
    call = "importance(model, x, y)"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_SEED + 1)
        got = _as_vector(call_answer(importance, model, x.clone(), y.clone()), n, call)
        changed = [name for name, t in model.state_dict().items() if not torch.equal(t, before[name])]
        if changed:
            raise AssertionError(
                f"{call} changed the model's {', '.join(changed)}: ablate on a copy of the "
                "activations (or restore the weights) so that the model is left as it was"
            )
        if not model.training:
            raise AssertionError(
                f"{call} left the model in evaluation mode; it was handed over in training mode: "
                "switch back with model.train(was_training) when you are done"
            )
        again = _as_vector(call_answer(importance, model, x.clone(), y.clone()), n, call)
    model.train()
    if torch.allclose(got, want, rtol=1e-3, atol=1e-4):
        print("Correct: I_j = loss with unit j zeroed - loss of the full network, with dropout off.")
        return
    if not torch.allclose(got, again, rtol=1e-6, atol=1e-7):
        raise AssertionError(
            f"{call} gave different answers in two calls: dropout was still active; measure in "
            "evaluation mode (model.eval()) so that only the ablated unit is missing"
        )
    variants = _variants(model, x, y)
    mistakes = [
        (-want, "has the wrong sign: importance is the loss WITH unit j zeroed minus the loss of "
                "the full network (positive when the unit helps)"),
        (variants["ablated"], "returned the loss of each ablated network; subtract the loss of the "
                              "full network to get the increase"),
        (variants["summed"], "summed the cross-entropy over the examples; use the mean (the "
                             "default of F.cross_entropy)"),
        (variants["acc_drop"], "measured the drop in accuracy; the exercise asks for the increase "
                               "of the mean cross-entropy"),
        (variants["bias_left"], "zeroed the unit's incoming weights but not its bias, so the unit "
                                "still outputs relu(b_j); set its activation (or its outgoing "
                                "weights) to zero instead"),
    ]
    for values, message in mistakes:
        if torch.allclose(got, values.double(), rtol=1e-3, atol=1e-4):
            raise AssertionError(f"{call} {message}")
    worst = int((got - want).abs().argmax())
    raise AssertionError(
        f"{call} gave {got[worst].item():.4f} for unit {worst}, expected {want[worst].item():.4f} "
        "(the increase of the mean cross-entropy when that unit's activation is zero, dropout off)"
    )


# --- Gini coefficient ----------------------------------------------------------------------------


def _gini(values: list[float]) -> float:
    v = np.sort(np.clip(np.asarray(values, dtype=np.float64), 0, None))
    n = len(v)
    return float(np.dot(2 * np.arange(1, n + 1) - n - 1, v) / (n * v.sum()))


def check_gini(gini: Callable[[torch.Tensor], Any]) -> None:
    r"""Check a Gini coefficient of importances, ``gini(values) -> float``.

    ``values`` is a 1-D float tensor; negative entries count as 0; with the (clipped) values sorted
    increasingly, :math:`G = \sum_{i=1}^n (2i - n - 1) v_{(i)} / (n \sum_i v_i)`: 0 when all are
    equal, :math:`(n-1)/n` when one unit holds everything.

    Example:
        >>> from dropoutlib.experiments.coadaptation import gini
        >>> check_gini(gini)
        Correct: 0 for equal importances, (n-1)/n for one unit, unchanged by scaling.
    """
    require_function(gini, "gini(values)")
    cases = [
        [1.0, 1.0, 1.0, 1.0],
        [0.0, 0.0, 0.0, 2.0],
        [4.0, 1.0, 3.0, 2.0],
        [0.3, -0.5, 3.0, 0.0, 1.0],
        [0.02, 0.5, 0.07, 0.01, 0.3, 0.9, 0.04, 0.11],
        [8.0, 2.0, 2.0, 2.0],
        [4.0, 1.0, 1.0, 1.0],
    ]
    for values in cases:
        tensor = torch.tensor(values, dtype=torch.float64)
        call = f"gini(torch.tensor({values}))"
        got = as_number(call_answer(gini, tensor), call)
        if not torch.equal(tensor, torch.tensor(values, dtype=torch.float64)):
            raise AssertionError(
                f"{call} changed its argument in place (e.g. with sort_ or clamp_): work on a copy"
            )
        want = _gini(values)
        if _close(got, want):
            continue
        n = len(values)
        clipped = np.clip(values, 0, None)
        unsorted = float(np.dot(2 * np.arange(1, n + 1) - n - 1, clipped) / (n * clipped.sum()))
        if any(v < 0 for v in values):
            v = np.sort(np.asarray(values))
            if _close(got, float(np.dot(2 * np.arange(1, n + 1) - n - 1, v) / (n * v.sum()))):
                raise AssertionError(
                    f"{call} returned {got:.4f}: negative importances must count as 0 (clip them "
                    f"before sorting); expected {want:.4f}"
                )
        if _close(got, -want) and want != 0:
            raise AssertionError(
                f"{call} returned {got:.4f}, minus the right value: sort the values in INCREASING "
                "order, so that the largest value gets the largest weight 2i - n - 1"
            )
        if _close(got, unsorted) and not _close(unsorted, want):
            raise AssertionError(
                f"{call} returned {got:.4f}: the formula needs the values sorted increasingly "
                f"first; expected {want:.4f}"
            )
        if _close(got, want * n / (n - 1)):
            raise AssertionError(
                f"{call} returned {got:.4f} = n/(n-1) times the expected {want:.4f}: divide by "
                "n * sum(v) as in the formula (one unit holding everything gives (n-1)/n)"
            )
        if _close(got, want - 2 / n):
            raise AssertionError(
                f"{call} returned {got:.4f}: the ranks i run from 1 to n, not from 0 to n-1; "
                f"expected {want:.4f}"
            )
        raise AssertionError(f"{call} returned {got:.4f}, expected {want:.4f}")
    print("Correct: 0 for equal importances, (n-1)/n for one unit, unchanged by scaling.")


# --- the copies' equilibrium ---------------------------------------------------------------------


def check_copies_equilibrium(equilibrium: Callable[[int, float, float], Any]) -> None:
    """Check the weight at which dropout makes ``n`` copies of one feature meet.

    ``equilibrium(n, p, c)``: a linear unit ``y = sum_i w_i m_i x_i / q`` reads ``n`` identical
    copies ``x_i = s`` of a feature with ``E s^2 = 1``, has target ``c s`` and dropout ``p`` on its
    inputs. Its expected squared error ``(sum_i w_i - c)^2 + (p/q) sum_i w_i^2`` is smallest when
    every weight equals ``c / (n + p/q)``.

    Example:
        >>> check_copies_equilibrium(lambda n, p, c: c / (n + p / (1 - p)))
        Correct: every copy ends at c / (n + p/q), c/n without dropout.
    """
    require_function(equilibrium, "equilibrium(n, p, c)")
    for n, p, c in ((4, 0.5, 2.0), (3, 0.25, 1.5), (10, 0.2, 1.0), (2, 0.8, 3.0), (5, 0.0, 2.0)):
        q = 1.0 - p
        call = f"equilibrium(n={n}, p={p}, c={c})"
        got = as_number(call_answer(equilibrium, n, p, c), call)
        want = c / (n + p / q)
        if _close(got, want):
            continue
        mistakes = [
            (c / n, "ignores dropout: c/n splits the target equally, but dropout adds the penalty "
                    "(p/q) * sum w_i^2, so the weights end smaller: c / (n + p/q)"),
            (c / (n + p), "uses p where the variance of m_i/q is p/q: Var(m/q) = q(1-q)/q^2 = p/q"),
            (c / (n + q / p) if p > 0 else math.nan,
             "swaps p and q: the variance of the scaled mask m/q is p/q, not q/p"),
            (c * q / n, "multiplies c/n by q, which is also c / (n (1 + p/q)): the weights do not "
                        "simply shrink by q, and the penalty (p/q) w^2 counts once per weight, not "
                        "n times: setting the derivative to zero gives 2(n w - c) + 2 (p/q) w = 0"),
        ]
        for value, message in mistakes:
            if not math.isnan(value) and _close(got, value) and not _close(value, want):
                raise AssertionError(f"{call} returned {got:.4f}: your formula {message}")
        raise AssertionError(f"{call} returned {got:.4f}, expected c / (n + p/q) = {want:.4f}")
    print("Correct: every copy ends at c / (n + p/q), c/n without dropout.")
