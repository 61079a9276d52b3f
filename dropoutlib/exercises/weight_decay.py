"""Checks for the exercises of chapter 6, "Dropout as adaptive weight decay".

Each ``check_*`` takes the student's function, prints one line when it is right, and otherwise raises
an ``AssertionError`` whose message names the mistake. A stub (returning ``None``, raising
``NotImplementedError``) never passes.

Notation: ``p`` is the probability of dropping an input, ``q = 1 - p`` the probability of keeping it.
For a linear unit with inverted dropout on its inputs the expected squared error is
``||y - X w||^2 + (p / q) sum_j w_j^2 ||X[:, j]||^2``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from dropoutlib.exercises._answers import as_number, call_answer, describe, require_function

__all__ = [
    "check_dropout_penalty",
    "check_dropout_ridge_solution",
    "check_equivalent_weight_decay",
    "check_standard_dropout_loss",
]


def _problem(n: int, d: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A small regression with inputs of clearly different scales (so mistakes show)."""
    generator = torch.Generator().manual_seed(seed)
    scales = torch.linspace(0.5, 3.0, d, dtype=torch.float64)
    x = torch.randn(n, d, generator=generator, dtype=torch.float64) * scales
    y = torch.randn(n, generator=generator, dtype=torch.float64)
    w = torch.randn(d, generator=generator, dtype=torch.float64)
    return x, y, w


def _count(value: Any) -> int | None:
    """How many numbers ``value`` holds, for tensors, arrays, lists and tuples (else ``None``)."""
    if isinstance(value, torch.Tensor):
        return value.numel()
    if isinstance(value, np.ndarray):
        return int(value.size)
    if isinstance(value, list | tuple):
        return len(value)
    return None


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-6 * max(1.0, abs(b))


def _as_vector(value: Any, length: int, what: str) -> torch.Tensor:
    """``value`` (tensor, array or list) as a float64 vector of ``length`` entries, else AssertionError."""
    if isinstance(value, torch.Tensor):
        vector = value.detach().double()
    elif isinstance(value, np.ndarray | list | tuple):
        vector = torch.as_tensor(np.asarray(value, dtype=np.float64))
    else:
        raise AssertionError(f"{what} should return a tensor of {length} numbers, got {describe(value)}")
    if vector.numel() != length:
        raise AssertionError(
            f"{what} should return {length} numbers (one per input), got {describe(value)}"
        )
    return vector.reshape(length)


def check_dropout_penalty(ridge_penalty: Callable[[torch.Tensor, torch.Tensor, float], Any]) -> None:
    r"""Check ``ridge_penalty(x, w, p)``: the penalty that input dropout adds to the squared error.

    The right answer is :math:`\frac{p}{q}\sum_j w_j^2 \|X_{:,j}\|^2` (a number; the loss is the sum,
    not the mean, of the squared errors).

    Example:
        >>> def ridge_penalty(x, w, p):
        ...     return p / (1 - p) * (w**2 * (x**2).sum(dim=0)).sum()
        >>> check_dropout_penalty(ridge_penalty)
        Correct: the penalty is (p/q) * sum_j w_j^2 ||X[:, j]||^2.
    """
    require_function(ridge_penalty, "ridge_penalty")
    x, _, w = _problem(6, 4, seed=1)
    columns = (x * x).sum(dim=0)
    for p in (0.3, 0.5, 0.75, 0.0):
        q = 1.0 - p
        result = call_answer(ridge_penalty, x.clone(), w.clone(), p)
        if _count(result) == w.numel():
            raise AssertionError(
                f"ridge_penalty returned {describe(result)}, one term per weight: add them up "
                f"(the penalty is one number)"
            )
        got = as_number(result, "ridge_penalty")
        want = p / q * float((w * w * columns).sum())
        if _close(got, want):
            continue
        where = f"at p={p}, ridge_penalty returned {got:.6g}, expected {want:.6g}"
        candidates = [
            (q / p if p > 0 else None, "the factor is p/q (drop over keep), not q/p"),
            (p, "the factor is p/q, not p: the variance of m/q for m ~ Bernoulli(q) is p/q"),
            (p * q, "p*q is the variance of an unscaled mask m; inverted dropout divides by q, "
                    "so the variance of m/q is p*q/q^2 = p/q"),
        ]
        weighted = float((w * w * columns).sum())
        for factor, message in candidates:
            if factor is not None and _close(got, factor * weighted):
                raise AssertionError(f"{where}: {message}")
        if _close(got, p / q * float((w * w).sum())):
            raise AssertionError(
                f"{where}: you left out the inputs: every w_j^2 is multiplied by ||X[:, j]||^2, the "
                f"squared norm of its own column"
            )
        if _close(got, p / q * float((w * w).sum()) * float(columns.sum())):
            raise AssertionError(
                f"{where}: you multiplied ||w||^2 by the squared norm of the whole matrix; each "
                f"w_j^2 is charged by its own column's ||X[:, j]||^2"
            )
        if _close(got, p / q * float((w * w * columns.sqrt()).sum())):
            raise AssertionError(f"{where}: use the SQUARED column norms ||X[:, j]||^2")
        if _close(got, want / x.shape[0]):
            raise AssertionError(
                f"{where}: you divided by n; the identity is for the sum of the squared errors"
            )
        if _close(got, p / q * float((w.abs() * columns).sum())):
            raise AssertionError(f"{where}: square the weights (w_j^2, not |w_j|)")
        raise AssertionError(where)
    print("Correct: the penalty is (p/q) * sum_j w_j^2 ||X[:, j]||^2.")


def check_dropout_ridge_solution(
    dropout_ridge: Callable[[torch.Tensor, torch.Tensor, float], Any],
) -> None:
    r"""Check ``dropout_ridge(x, y, p)``: the weights that minimize the expected dropout loss.

    The right answer is :math:`\big(X^\top X + \frac{p}{q}\,\mathrm{diag}(X^\top X)\big)^{-1} X^\top y`,
    a vector with one weight per input. Tried on a problem with more examples than inputs and on one
    with fewer.

    Example:
        >>> def dropout_ridge(x, y, p):
        ...     gram = x.T @ x
        ...     return torch.linalg.solve(gram + p / (1 - p) * torch.diag(torch.diag(gram)), x.T @ y)
        >>> check_dropout_ridge_solution(dropout_ridge)
        Correct: w* = (X^T X + (p/q) diag(X^T X))^(-1) X^T y.
    """
    require_function(dropout_ridge, "dropout_ridge")
    for n, d, seed in ((30, 4, 2), (5, 8, 3)):
        x, y, _ = _problem(n, d, seed)
        gram = x.T @ x
        diagonal = torch.diag(torch.diag(gram))
        for p in (0.2, 0.5, 0.8):
            q = 1.0 - p
            got = _as_vector(call_answer(dropout_ridge, x.clone(), y.clone(), p), d, "dropout_ridge")
            want = torch.linalg.solve(gram + p / q * diagonal, x.T @ y)
            if torch.allclose(got, want, rtol=1e-6, atol=1e-9):
                continue
            where = f"with {n} examples, {d} inputs and p={p}"

            def matches(matrix: torch.Tensor, got: torch.Tensor = got, rhs: torch.Tensor = x.T @ y) -> bool:
                return torch.allclose(got, torch.linalg.solve(matrix, rhs), rtol=1e-6, atol=1e-9)

            if matches(gram + q / p * diagonal):
                raise AssertionError(f"{where}: p/q and q/p are swapped (the penalty is (p/q) diag)")
            if matches(gram + p / q * torch.eye(d, dtype=torch.float64)):
                raise AssertionError(
                    f"{where}: you added (p/q) I, plain ridge; dropout's penalty charges each weight "
                    f"by its column's squared norm: add (p/q) diag(X^T X)"
                )
            if matches((1.0 + p / q) * gram):
                raise AssertionError(
                    f"{where}: you scaled all of X^T X; only its diagonal gets the extra (p/q)"
                )
            if matches(gram + p * diagonal):
                raise AssertionError(f"{where}: the coefficient is p/q, not p")
            if n >= d and torch.allclose(got, torch.linalg.lstsq(x, y.unsqueeze(1)).solution[:, 0]):
                raise AssertionError(f"{where}: that is least squares; your answer ignores p")
            raise AssertionError(f"{where}: the weights are not (X^T X + (p/q) diag(X^T X))^(-1) X^T y")
    print("Correct: w* = (X^T X + (p/q) diag(X^T X))^(-1) X^T y.")


def check_equivalent_weight_decay(weight_decay_for: Callable[[torch.Tensor, float], Any]) -> None:
    r"""Check ``weight_decay_for(x, p)``: PyTorch ``weight_decay`` coefficients that mimic dropout.

    Training on the mean squared error :math:`\frac1n\|y - \hat y\|^2` with input dropout minimizes,
    on average, :math:`\frac1n\|y - Xw\|^2 + \frac1n\frac{p}{q}\sum_j \|X_{:,j}\|^2 w_j^2`.
    ``torch.optim.SGD(weight_decay=lam)`` adds ``lam * w`` to the gradient, so the answer is one
    coefficient per input, :math:`\lambda_j = \frac{2p}{q}\cdot\frac{\|X_{:,j}\|^2}{n}`.

    Example:
        >>> def weight_decay_for(x, p):
        ...     return 2 * p / (1 - p) * (x**2).sum(dim=0) / x.shape[0]
        >>> check_equivalent_weight_decay(weight_decay_for)
        Correct: lambda_j = (2p/q) ||X[:, j]||^2 / n, one coefficient per input.
    """
    require_function(weight_decay_for, "weight_decay_for")
    x, _, _ = _problem(20, 5, seed=4)
    n, d = x.shape
    per_input = (x * x).sum(dim=0) / n
    for p in (0.2, 0.5, 0.8):
        q = 1.0 - p
        result = call_answer(weight_decay_for, x.clone(), p)
        want = 2 * p / q * per_input
        where = f"at p={p}"
        if _count(result) in (None, 1):
            value = as_number(result, "weight_decay_for")
            if _close(value, float(want.mean())):
                raise AssertionError(
                    f"{where}: a single number, the average coefficient; dropout gives every input its "
                    f"own lambda_j, proportional to ||X[:, j]||^2: return one per input"
                )
            raise AssertionError(
                f"{where}: return one coefficient per input (a tensor of {d}), got {value!r}"
            )
        got = _as_vector(result, d, "weight_decay_for")
        if torch.allclose(got, want, rtol=1e-6, atol=1e-12):
            continue
        for wrong, message in (
            (p / q * per_input, "the factor 2 is missing: the gradient of (p/q) c w^2 is 2 (p/q) c w"),
            (2 * p / q * per_input * n, "divide by n: the loss is the MEAN squared error"),
            (p / q * per_input * n, "the factor 2 and the division by n are missing"),
            (2 * q / p * per_input, "p/q and q/p are swapped"),
            (2 * p * per_input, "the coefficient is 2p/q, not 2p"),
            (2 * p / q * per_input.sqrt(), "use the squared column norms ||X[:, j]||^2 / n"),
        ):
            if torch.allclose(got, wrong, rtol=1e-6, atol=1e-12):
                raise AssertionError(f"{where}: {message}")
        raise AssertionError(f"{where}: the coefficients are not (2p/q) ||X[:, j]||^2 / n")
    print("Correct: lambda_j = (2p/q) ||X[:, j]||^2 / n, one coefficient per input.")


def check_standard_dropout_loss(
    expected_loss: Callable[[torch.Tensor, torch.Tensor, torch.Tensor, float], Any],
) -> None:
    r"""Check ``expected_loss(x, y, w, p)`` for STANDARD (non-inverted) dropout on the inputs.

    With masks :math:`m_{ij} \sim \mathrm{Bernoulli}(q)` and no rescaling, the prediction
    :math:`\sum_j x_{ij} m_{ij} w_j` has mean :math:`q\,(Xw)_i` and variance
    :math:`pq\sum_j x_{ij}^2 w_j^2`, so

    .. math::

        \mathbb E \|y - (X \odot M) w\|^2 = \|y - qXw\|^2 + pq \sum_j w_j^2 \|X_{:,j}\|^2 .

    This is the 2014 paper's section 9.1, whose ``p`` (probability of keeping) is our ``q``.

    Example:
        >>> def expected_loss(x, y, w, p):
        ...     q = 1 - p
        ...     return ((y - q * x @ w) ** 2).sum() + p * q * (w**2 * (x**2).sum(dim=0)).sum()
        >>> check_standard_dropout_loss(expected_loss)
        Correct: E||y - (X*M) w||^2 = ||y - qXw||^2 + pq sum_j w_j^2 ||X[:, j]||^2.
    """
    require_function(expected_loss, "expected_loss")
    x, y, w = _problem(7, 3, seed=5)
    columns = (x * x).sum(dim=0)
    weighted = float((w * w * columns).sum())
    for p in (0.3, 0.5, 0.8):
        q = 1.0 - p
        got = as_number(call_answer(expected_loss, x.clone(), y.clone(), w.clone(), p), "expected_loss")

        def fit(scale: float) -> float:
            residual = y - scale * (x @ w)
            return float(residual @ residual)

        want = fit(q) + p * q * weighted
        if _close(got, want):
            continue
        where = f"at p={p}, expected_loss returned {got:.6g}, expected {want:.6g}"
        for wrong, message in (
            (fit(1.0) + p / q * weighted,
             "that is INVERTED dropout's loss; without rescaling the mean prediction is q X w, "
             "not X w, and the variance is pq, not p/q, times sum_j w_j^2 ||X[:, j]||^2"),
            (fit(1.0) + p * q * weighted, "without rescaling the mean prediction is q X w, not X w"),
            (fit(q), "you left out the variance of the prediction, pq sum_j w_j^2 ||X[:, j]||^2"),
            (fit(p) + p * q * weighted,
             "the mean prediction is q X w (q = 1 - p keeps), not p X w: the 2014 paper's p is our q"),
            (fit(q) + p / q * weighted, "the variance of an unscaled mask is pq, not p/q"),
            (fit(q) + q * q * weighted, "the variance of a Bernoulli(q) mask is pq, not q^2"),
        ):
            if _close(got, wrong):
                raise AssertionError(f"{where}: {message}")
        raise AssertionError(where)
    print("Correct: E||y - (X*M) w||^2 = ||y - qXw||^2 + pq sum_j w_j^2 ||X[:, j]||^2.")
