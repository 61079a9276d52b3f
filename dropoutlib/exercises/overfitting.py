"""Checks for the exercises of chapter 1, "Overfitting and the idea of dropout".

Each ``check_*`` takes the student's function, prints one line when it is right, and otherwise raises
an ``AssertionError`` whose message names the mistake. A stub (returning ``None`` or ``...``, raising
``NotImplementedError``) never passes. Passing something that is not a function raises ``TypeError``.

Notation: ``p`` is the probability of dropping a unit, ``q = 1 - p`` the probability of keeping it.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from dropoutlib.exercises._answers import as_number, call_answer, require_function

__all__ = [
    "check_expected_kept_units",
    "check_mask_probability",
    "check_subnetwork_count",
    "check_total_variation",
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
