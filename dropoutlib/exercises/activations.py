"""Checks for the exercises of chapter 7, "Sparse activations and stable training".

Each ``check_*`` takes the student's function, prints one line when it is right, and otherwise raises
an ``AssertionError`` whose message names the mistake. A stub (returning ``None`` or ``...``, raising
``NotImplementedError``) never passes. Passing something that is not a function raises ``TypeError``.

A hidden layer's activations are a matrix ``A`` of shape ``(n_examples, width)``: one row per example,
one column per unit. A unit is *active* on an example when its activation is positive, and *dead* on a
set of examples when it is active on none of them. Notation: ``p`` is the probability of dropping a
unit, ``q = 1 - p`` the probability of keeping it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from dropoutlib.exercises._answers import as_number, call_answer, require_function
from dropoutlib.experiments.activations import active_units, dead_units

__all__ = ["check_active_units", "check_dead_unit_fraction", "check_dropout_noise_variance"]


def _cases() -> list[torch.Tensor]:
    """Activation matrices on which the usual mistakes give different answers."""
    handmade = torch.tensor(
        [
            [0.0, 1.2, 0.0, 0.0, 0.0],
            [0.0, 0.4, 2.5, 0.0, 0.0],
            [0.0, 3.1, 0.0, 0.0, 0.7],
            [0.0, 0.9, 1.1, 0.0, 0.0],
            [0.0, 0.0, 0.0, 0.0, 0.0],
            [0.0, 2.2, 0.3, 0.0, 0.0],
        ]
    )
    generator = torch.Generator().manual_seed(7)
    relu = torch.relu(torch.randn(9, 12, generator=generator) - 0.3)
    relu[:, 4] = 0.0  # a dead unit
    leaky = torch.nn.functional.leaky_relu(torch.randn(8, 6, generator=generator), 0.1)
    leaky[:, 2] = -leaky[:, 2].abs() - 0.05  # negative everywhere: never active, hence dead
    return [handmade, relu, leaky]


def _as_counts(value: Any, call: str) -> torch.Tensor:
    if isinstance(value, np.ndarray | list | tuple):
        value = torch.as_tensor(np.asarray(value, dtype=np.float64))
    if isinstance(value, torch.Tensor):
        return value.detach().double().reshape(-1) if value.ndim <= 1 else value.detach().double()
    number = as_number(value, call)
    return torch.tensor([float(number)], dtype=torch.float64)


def check_active_units(count_active: Callable[[torch.Tensor], Any]) -> None:
    """Check a function that counts the active units of every example.

    ``count_active(A)`` gets one layer's activations ``A`` of shape ``(n_examples, width)`` and returns
    the number of units with a positive activation, one count per example: a tensor (or array or
    list) of shape ``(n_examples,)``, ``(A > 0).sum(dim=1)``.

    Example:
        >>> check_active_units(lambda A: (A > 0).sum(dim=1))
        Correct: one count per example, the units with a positive activation (row sums of A > 0).
    """
    require_function(count_active, "count_active")
    for activations in _cases():
        n, width = activations.shape
        got = _as_counts(call_answer(count_active, activations.clone()), "count_active(A)")
        want = active_units(activations).double()
        if got.shape == want.shape and torch.equal(got, want):
            continue
        positive = activations > 0
        if got.numel() == 1:
            if math.isclose(got.item(), want.mean().item(), rel_tol=1e-6):
                raise AssertionError(
                    "you returned the average count over the examples: return one count per "
                    f"example, a tensor of shape ({n},)"
                )
            raise AssertionError(f"return one count per example, shape ({n},), not a single number")
        if got.shape == (width,) and torch.allclose(got, positive.sum(dim=0).double()):
            raise AssertionError(
                "you counted per unit (how many examples activate each unit, a sum over dim=0); "
                "count per example instead: sum over the units, dim=1"
            )
        if got.shape != want.shape:
            raise AssertionError(
                f"return one count per example, shape ({n},); got shape {tuple(got.shape)}"
            )
        if torch.allclose(got, want / width):
            raise AssertionError(
                "you returned the fraction of active units (a mean over the units); the count is "
                f"that fraction times the width ({width}): use .sum(dim=1), not .mean(dim=1)"
            )
        if torch.allclose(got, (activations >= 0).sum(dim=1).double()):
            raise AssertionError(
                "you counted zeros as active (A >= 0): a unit is active only when its activation is "
                "strictly positive, A > 0"
            )
        if torch.allclose(got, (activations != 0).sum(dim=1).double()):
            raise AssertionError(
                "you counted the non-zero activations (A != 0): a negative activation (here from a "
                "leaky ReLU) is not active either; count A > 0"
            )
        if torch.allclose(got, activations.double().sum(dim=1)):
            raise AssertionError(
                "you summed the activation values: count the entries that are positive, "
                "(A > 0).sum(dim=1)"
            )
        raise AssertionError(
            f"wrong counts: for a {n} x {width} matrix you returned {got.tolist()}, "
            f"expected {want.tolist()}"
        )
    print("Correct: one count per example, the units with a positive activation (row sums of A > 0).")


def check_dead_unit_fraction(dead_fraction: Callable[[torch.Tensor], Any]) -> None:
    """Check a function that returns the fraction of a layer's units that are dead on some examples.

    ``dead_fraction(A)`` gets one layer's activations ``A`` of shape ``(n_examples, width)`` and returns
    a number: the share of the ``width`` units (columns) that are active (``> 0``) on none of the
    examples, ``(~(A > 0).any(dim=0)).float().mean()``.

    Example:
        >>> check_dead_unit_fraction(lambda A: (A <= 0).all(dim=0).float().mean())
        Correct: a unit is dead when its column has no positive entry; here 2 of 5 units are dead.
    """
    require_function(dead_fraction, "dead_fraction")
    for activations in _cases():
        n, width = activations.shape
        got = as_number(call_answer(dead_fraction, activations.clone()), "dead_fraction(A)")
        dead = dead_units(activations)
        want = dead.double().mean().item()
        if math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-9):
            continue
        positive = activations > 0
        if math.isclose(got, float(dead.sum().item())) and got >= 1:
            raise AssertionError(
                f"you returned the number of dead units ({got:g}); divide by the width ({width}) "
                "for the fraction"
            )
        if math.isclose(got, 1 - want, rel_tol=1e-6):
            raise AssertionError(
                "you returned the fraction of units that are active at least once: the dead ones are "
                "the others (1 minus your answer)"
            )
        if math.isclose(got, (~positive).double().mean().item(), rel_tol=1e-6):
            raise AssertionError(
                "you returned the share of zero entries (inactive unit-example pairs); a unit is dead "
                "only when it is inactive on EVERY example: look at whole columns"
            )
        if math.isclose(got, (~positive).any(dim=0).double().mean().item(), rel_tol=1e-6):
            raise AssertionError(
                "you counted the units that are inactive on SOME example; a dead unit is inactive on "
                "ALL examples (use .all(dim=0) on A <= 0, or negate .any(dim=0) on A > 0)"
            )
        if math.isclose(got, (activations == 0).all(dim=0).double().mean().item(), rel_tol=1e-6):
            raise AssertionError(
                "you counted only the units that are exactly 0 everywhere; a unit whose activation "
                "is negative on every example (a leaky ReLU's, here) is never active either: test A > 0"
            )
        if math.isclose(got, (~positive.any(dim=1)).double().mean().item(), rel_tol=1e-6):
            raise AssertionError(
                "you looked at the rows (examples on which no unit is active); units are the "
                "columns: reduce over the examples, dim=0"
            )
        raise AssertionError(
            f"wrong fraction: for a {n} x {width} matrix with {int(dead.sum())} dead units you returned "
            f"{got:.4g}, expected {want:.4g}"
        )
    print("Correct: a unit is dead when its column has no positive entry; here 2 of 5 units are dead.")


def check_dropout_noise_variance(noise_variance: Callable[[float, float], Any]) -> None:
    """Check the variance that inverted dropout adds to one activation.

    A unit with activation ``a`` passes ``y = m a / q`` on, with ``m ~ Bernoulli(q)``. Its mean is
    ``a`` (what evaluation mode passes) and its variance ``a**2 * q * (1 - q) / q**2 = a**2 * p / q``.
    ``noise_variance(a, p)`` gets the activation ``a`` and the drop probability ``p`` (< 1) and returns
    that variance.

    Example:
        >>> check_dropout_noise_variance(lambda a, p: a**2 * p / (1 - p))
        Correct: Var(m a / q) = a^2 p / q; at p = 0.5 the noise is as large as a^2 itself.
    """
    require_function(noise_variance, "noise_variance")
    for a, p in ((2.0, 0.2), (-1.5, 0.5), (0.5, 0.8), (3.0, 0.3), (0.0, 0.5), (1.7, 0.0)):
        call = f"noise_variance({a}, {p})"
        got = as_number(call_answer(noise_variance, a, p), call)
        q = 1.0 - p
        want = a * a * p / q
        if math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-12):
            continue
        mistakes = (
            (a * a * p * q, "that is the variance of m a, without the 1/q scaling: inverted dropout "
                            "divides the kept values by q, which divides the variance by q^2 more"),
            (a * a * p, "that is a^2 p: the variance of m/q is q(1 - q)/q^2 = p/q, so divide by q"),
            (a * a * q / p if p > 0 else math.nan, "you swapped p and q: the variance is a^2 p / q "
                                                   "(no noise at all when p = 0)"),
            (a * a / q, "that is the second moment E[y^2] = a^2/q; the variance subtracts the "
                        "squared mean, a^2"),
            (abs(a) * math.sqrt(p / q), "that is the standard deviation; the variance is its square"),
            (a * p / q, "the variance grows with a^2, not with a: scaling an activation by c scales "
                        "its noise variance by c^2"),
        )
        for value, message in mistakes:
            if math.isclose(got, value, rel_tol=1e-6, abs_tol=1e-12):
                raise AssertionError(f"{call} returned {got:.4g}: {message}")
        raise AssertionError(f"{call} returned {got:.4g}, expected a^2 p / q = {want:.4g}")
    print("Correct: Var(m a / q) = a^2 p / q; at p = 0.5 the noise is as large as a^2 itself.")
