"""Checks for the exercises of chapter 4, "Dropout as an ensemble".

Each ``check_*`` takes the student's function, prints one line when it is right, and otherwise raises an
``AssertionError`` whose message names the mistake. A stub (returning ``None`` or ``...``, raising
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

from dropoutlib.exercises._answers import as_number, call_answer, describe, require_function
from dropoutlib.experiments.ensemble import all_masks, expected_over_masks, mask_probabilities

__all__ = [
    "check_exact_average",
    "check_normalized_geometric_mean",
    "check_renormalized_drop_rate",
]


def _as_float64(value: Any, what: str, shape: tuple[int, ...]) -> torch.Tensor:
    """The answer as a float64 tensor of the expected shape, else an AssertionError saying why."""
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(value)
    if not isinstance(value, torch.Tensor):
        raise AssertionError(f"{what} should return a tensor, got {describe(value)}")
    if tuple(value.shape) != shape:
        raise AssertionError(f"{what} returned shape {tuple(value.shape)}, expected {shape}")
    value = value.detach().to(torch.float64)
    if not bool(torch.isfinite(value).all()):
        raise AssertionError(f"{what} returned NaN or infinite values")
    return value


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return torch.allclose(a, b, rtol=1e-6, atol=1e-9)


def check_normalized_geometric_mean(
    geometric_mean: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
) -> None:
    r"""Check a function computing the normalized weighted geometric mean of class distributions.

    ``geometric_mean(probs, weights)`` gets ``probs``, a ``(M, C)`` float64 tensor whose rows are the
    class distributions of ``M`` ensemble members on one input, and ``weights``, ``(M,)``
    nonnegative and adding up to 1. It returns the ``(C,)`` distribution

    .. math::

        G(y) = \frac{\prod_m P_m(y)^{w_m}}{\sum_{y'} \prod_m P_m(y')^{w_m}}.

    Example:
        >>> def geometric_mean(probs, weights):
        ...     g = (weights[:, None] * probs.log()).sum(0).exp()
        ...     return g / g.sum()
        >>> check_normalized_geometric_mean(geometric_mean)
        Correct: prod_m P_m(y)**w_m, renormalized over the classes.
    """
    require_function(geometric_mean, "geometric_mean")
    generator = torch.Generator().manual_seed(4)
    cases = []
    for members, classes in ((3, 4), (8, 10), (2, 2), (16, 5)):
        probs = torch.softmax(3 * torch.randn(members, classes, generator=generator, dtype=torch.float64), 1)
        weights = torch.rand(members, generator=generator, dtype=torch.float64) + 0.1
        cases.append((probs, weights / weights.sum()))
    for probs, weights in cases:
        call = f"geometric_mean(probs of shape {tuple(probs.shape)}, weights)"
        got = _as_float64(call_answer(geometric_mean, probs.clone(), weights.clone()), call, probs.shape[1:])
        log_g = (weights[:, None] * probs.log()).sum(dim=0)
        want = torch.softmax(log_g, dim=0)
        if _close(got, want):
            continue
        unnormalized = log_g.exp()
        if _close(got, unnormalized):
            raise AssertionError(
                f"{call} sums to {float(got.sum()):.4f}, not 1: the weighted geometric mean of "
                f"distributions is not a distribution; divide it by its sum over the classes"
            )
        if _close(got, (weights[:, None] * probs).sum(dim=0)):
            raise AssertionError(
                f"{call} returned the weighted ARITHMETIC mean sum_m w_m P_m(y); the geometric mean "
                f"multiplies: prod_m P_m(y)**w_m (a weighted mean of the log-probabilities)"
            )
        plain = torch.softmax(probs.log().mean(dim=0), dim=0)
        if _close(got, plain):
            raise AssertionError(
                f"{call} ignores the weights: every member counted equally. Each P_m(y) is raised "
                f"to the power w_m"
            )
        product = torch.softmax(probs.log().sum(dim=0), dim=0)
        if _close(got, product):
            raise AssertionError(
                f"{call} multiplies the distributions without the weights as exponents "
                f"(prod_m P_m(y), renormalized): raise each P_m(y) to the power w_m"
            )
        times = (weights[:, None] * probs).prod(dim=0)
        if _close(got, times / times.sum()) or _close(got, times):
            raise AssertionError(
                f"{call} multiplies w_m * P_m(y): the weights belong in the exponents, "
                f"P_m(y)**w_m"
            )
        raise AssertionError(
            f"{call} returned {[round(v, 4) for v in got.tolist()]}, expected "
            f"{[round(v, 4) for v in want.tolist()]}"
        )
    print("Correct: prod_m P_m(y)**w_m, renormalized over the classes.")


def _exact_average_reference(h: torch.Tensor, layer: nn.Linear, p: float) -> torch.Tensor:
    return expected_over_masks(lambda a: torch.softmax(layer(a), dim=-1), h, p)


def _average_with(h: torch.Tensor, layer: nn.Linear, weights: torch.Tensor, scale: float) -> torch.Tensor:
    masks = all_masks(h.shape[1])
    with torch.no_grad():
        probs = torch.softmax(layer(masks[:, None, :] * h[None] * scale), dim=-1)
    return (weights[:, None, None] * probs).sum(dim=0)


def check_exact_average(
    exact_average: Callable[[torch.Tensor, nn.Linear, float], torch.Tensor],
) -> None:
    r"""Check a function computing the exact ensemble prediction of a dropout layer and an output layer.

    ``exact_average(h, layer, p)`` gets activations ``h`` of shape ``(N, n)`` (float64), the output
    layer ``layer`` (an ``nn.Linear(n, C)``, float64) and the drop probability ``p`` of an inverted
    dropout layer between them. It returns the ``(N, C)`` arithmetic mean over all ``2**n`` masks,

    .. math::

        \sum_{m \in \{0,1\}^n} q^{k(m)} p^{\,n-k(m)}\;
        \operatorname{softmax}\big(\text{layer}(m \odot h / q)\big).

    Example:
        >>> from dropoutlib.experiments.ensemble import expected_over_masks
        >>> def exact_average(h, layer, p):
        ...     return expected_over_masks(lambda a: torch.softmax(layer(a), -1), h, p)
        >>> check_exact_average(exact_average)
        Correct: every mask, weighted by q**k * p**(n - k), kept units scaled by 1/q.
    """
    require_function(exact_average, "exact_average")
    generator = torch.Generator().manual_seed(5)
    for n, n_classes, p in ((4, 3, 0.3), (5, 4, 0.7), (3, 2, 0.5), (6, 5, 0.2)):
        h = torch.rand(7, n, generator=generator, dtype=torch.float64) * 2
        layer = nn.Linear(n, n_classes).to(torch.float64)
        with torch.no_grad():
            layer.weight.copy_(torch.randn(n_classes, n, generator=generator, dtype=torch.float64) * 2)
            layer.bias.copy_(torch.randn(n_classes, generator=generator, dtype=torch.float64))
        call = f"exact_average(h of shape {tuple(h.shape)}, layer, p={p})"
        got = _as_float64(call_answer(exact_average, h.clone(), layer, p), call, (7, n_classes))
        want = _exact_average_reference(h, layer, p)
        if _close(got, want):
            continue
        q = 1.0 - p
        masks = all_masks(n)
        kept = masks.sum(dim=1)
        right = mask_probabilities(masks, p)
        uniform = torch.full_like(right, 2.0**-n)
        source = q**kept
        with torch.no_grad():
            log_avg = sum(
                w * torch.log_softmax(layer(m * h / q), dim=-1) for w, m in zip(right, masks, strict=True)
            )
        mistakes = [
            (_average_with(h, layer, uniform, 1 / q),
             f"every mask got the same weight 1/2**n: that is right only at p = 0.5 (here p={p}); "
             f"a mask keeping k of n units has probability q**k * p**(n - k)"),
            (_average_with(h, layer, source, 1 / q),
             f"the weights (1 - p)**k leave out the factor p**(n - k) of the dropped units; they add "
             f"up to {float(source.sum()):.3f}, not 1"),
            (_average_with(h, layer, source / source.sum(), 1 / q),
             "the weights (1 - p)**k, renormalized, describe dropout at another rate: a mask keeping "
             "k of n units has probability q**k * p**(n - k)"),
            (_average_with(h, layer, right, 1.0),
             "the kept activations were not scaled by 1/q: inverted dropout trains every "
             "sub-network on m * h / q"),
            (_average_with(h, layer, right, q),
             "the kept activations were multiplied by q: inverted dropout divides them by q"),
            (_average_with(h, layer, p**kept * q ** (n - kept), 1 / q),
             "the weights p**k * q**(n - k) swap p and q: a kept unit contributes a factor "
             "q = 1 - p, a dropped one a factor p"),
            (torch.softmax(log_avg, dim=-1),
             "that is the normalized GEOMETRIC mean of the sub-networks, which for dropout right "
             "before the output layer equals the weight-scaling prediction softmax(layer(h)); the "
             "ensemble's prediction is their weighted ARITHMETIC mean"),
        ]
        for candidate, message in mistakes:
            if _close(got, candidate):
                raise AssertionError(f"{call}: {message}")
        sums = got.sum(dim=1)
        if not torch.allclose(sums, torch.ones_like(sums), atol=1e-6):
            raise AssertionError(
                f"{call}: the rows of the result add up to {float(sums.min()):.4f} to "
                f"{float(sums.max()):.4f}, not 1: are the weights q**k * p**(n - k), over all 2**n masks?"
            )
        raise AssertionError(
            f"{call}: the result differs from the exact average by up to "
            f"{float((got - want).abs().max()):.3g}"
        )
    print("Correct: every mask, weighted by q**k * p**(n - k), kept units scaled by 1/q.")


def check_renormalized_drop_rate(renormalized_drop_rate: Callable[[float], float]) -> None:
    r"""Check the drop probability that the weights ``(1 - p)**k``, renormalized, correspond to.

    Dividing ``q**k`` (``k`` kept units out of ``n``) by its sum over all masks, ``(1 + q)**n``,
    gives ``(q / (1 + q))**k * (1 / (1 + q))**(n - k)``: dropout that keeps each unit with
    probability ``q / (1 + q)``, that is drops it with probability ``p' = 1 / (1 + q) = 1 / (2 - p)``.

    Example:
        >>> check_renormalized_drop_rate(lambda p: 1 / (2 - p))
        Correct: renormalized, (1 - p)**k is dropout with p' = 1 / (2 - p) (2/3 at p = 0.5).
    """
    require_function(renormalized_drop_rate, "renormalized_drop_rate")
    for p in (0.5, 0.2, 0.8, 0.0, 0.35):
        call = f"renormalized_drop_rate({p})"
        got = as_number(call_answer(renormalized_drop_rate, p), call)
        q = 1.0 - p
        want = 1.0 / (1.0 + q)
        if math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-9):
            continue
        if math.isclose(got, q / (1.0 + q), rel_tol=1e-6):
            raise AssertionError(
                f"{call} returned q / (1 + q) = {got:.4f}: that is the new KEEP probability; "
                f"the drop probability is 1 minus it"
            )
        if math.isclose(got, p, rel_tol=1e-6, abs_tol=1e-9):
            raise AssertionError(
                f"{call} returned p unchanged: renormalizing (1 - p)**k does not give back dropout "
                f"at rate p (check with n = 1: weights 1 and q, so the unit is dropped with "
                f"probability 1 / (1 + q))"
            )
        if not 0.0 <= got <= 1.0:
            raise AssertionError(f"{call} returned {got:.4g}, which is not a probability")
        raise AssertionError(f"{call} returned {got:.4g}, expected {want:.4g}")
    print("Correct: renormalized, (1 - p)**k is dropout with p' = 1 / (2 - p) (2/3 at p = 0.5).")
