"""Checks for the exercises of chapter 13, "The dropout family".

Each ``check_*`` takes the student's function, prints one line when it is right, and otherwise raises an
``AssertionError`` whose message names the mistake. A stub (returning ``None``, ``...``, raising
``NotImplementedError``) never passes. The checks draw their own random numbers and restore torch's
global generator afterwards, so they give the same verdict every time.

Notation: ``p`` is the drop probability, ``q = 1 - p`` the keep probability.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from dropoutlib.exercises._answers import (
    as_number,
    call_answer,
    check_kept_scale,
    check_tensor_like,
    describe,
    require_function,
)
from dropoutlib.nn.alpha import SELU_SATURATION

__all__ = ["check_alpha_constants", "check_drop_path", "check_gaussian_dropout"]

_SEED = 2024


def _tensor_result(result: Any, x: torch.Tensor, call: str) -> torch.Tensor:
    return check_tensor_like(result, x, call)


# --- Gaussian dropout ------------------------------------------------------------------------------------


def check_gaussian_dropout(fn: Callable[..., Any]) -> None:
    """Check a Gaussian dropout ``fn(x, p, training=True)``: ``y = x * r`` with ``r ~ N(1, p/q)``.

    What is checked, each failure with a message naming the mistake: a tensor of the input's shape
    and dtype, the input not changed in place; the multiplier ``y / x`` has mean 1 (not ``q``) and
    variance ``p/q`` (not ``p``, ``p q``, ``q/p`` or the standard deviation ``sqrt(p/q)``), at two
    values of ``p``; it is continuous (not dropout's two values ``0`` and ``1/q``); independent per
    value (not one number for the whole tensor or per row); new noise at every call; ``p = 0`` and
    ``training=False`` return the input; the gradient reaches ``x`` and equals ``dL/dy * r``.

    Example:
        >>> def my_gaussian_dropout(x, p, training=True):
        ...     if not training or p == 0:
        ...         return x
        ...     return x * (1 + math.sqrt(p / (1 - p)) * torch.randn_like(x))
        >>> check_gaussian_dropout(my_gaussian_dropout)
        check_gaussian_dropout: correct (multiplier N(1, p/q), independent, new noise, gradient).
    """
    require_function(fn, "Gaussian dropout function fn(x, p, training=True)")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_SEED)
        _check_gaussian(fn)
    print("check_gaussian_dropout: correct (multiplier N(1, p/q), independent, new noise, gradient).")


def _gaussian_multiplier(
    fn: Callable[..., Any], p: float, shape: tuple[int, ...] = (400, 250)
) -> torch.Tensor:
    # positive, no zeros (r = y / x); the first half of the columns in [1, 1.5), the rest in [1.5, 2)
    x = 1 + torch.rand(shape, dtype=torch.float64) / 2
    x[:, shape[1] // 2 :] += 0.5
    before = x.clone()
    call = f"gaussian_dropout(x, p={p}) for x of shape {shape}"
    y = _tensor_result(call_answer(fn, x, p), x, call)
    if not torch.equal(x, before):
        raise AssertionError(f"{call} changed x in place: return a new tensor (x * noise)")
    if torch.equal(y, x):
        raise AssertionError(f"{call} returned the input unchanged: in training mode multiply by noise")
    return (y / x).detach()


def _check_gaussian_moments(fn: Callable[..., Any], p: float) -> torch.Tensor:
    q = 1 - p
    r = _gaussian_multiplier(fn, p)
    call = f"gaussian_dropout(x, p={p})"
    values = r.unique()
    if len(values) <= 2:
        raise AssertionError(
            f"{call}: the multiplier y/x takes only the values {[round(v, 4) for v in values.tolist()]}: "
            "that is Bernoulli dropout; Gaussian dropout multiplies by a normal N(1, p/q)"
        )
    if (r.std(dim=1) < 1e-9).all():
        raise AssertionError(
            f"{call}: every row is multiplied by one number; draw independent noise for every value"
        )
    if r.std() < 1e-9:
        raise AssertionError(f"{call}: the whole tensor is multiplied by one number; draw noise per value")
    half = r.shape[1] // 2
    small, large = float(r[:, :half].var()), float(r[:, half:].var())
    if small > 1.5 * large:
        raise AssertionError(
            f"{call}: the noise of y/x is larger for small x ({small:.4f}) than for large x "
            f"({large:.4f}): you added noise to x; Gaussian dropout multiplies, y = x * r"
        )
    mean, var = float(r.mean()), float(r.var())
    n = r.numel()
    want = p / q
    mean_tol = 6 * math.sqrt(want / n)
    if abs(mean - 1) > mean_tol:
        if abs(mean - q) < mean_tol:
            raise AssertionError(
                f"{call}: the multiplier has mean {mean:.4f}, about q = {q:.4f}: Gaussian dropout keeps "
                "the mean, its noise has mean 1 (inverted dropout's m/q has mean 1 too)"
            )
        raise AssertionError(
            f"{call}: the multiplier y/x has mean {mean:.4f}; it must be 1, so that E[y] = x"
        )
    var_tol = 6 * want * math.sqrt(2 / n)
    if abs(var - want) <= var_tol:
        return r
    for value, mistake in (
        (p, "that is p: the variance of inverted dropout's multiplier m/q is q(1-q)/q^2 = p/q"),
        (p * q, "that is p q, the variance of m without the 1/q scaling; use p/q"),
        (q / p, "you swapped p and q: the variance is p/q (no noise at p = 0)"),
        (
            want**2,
            "you used p/q as the standard deviation; p/q is the variance, so the standard "
            "deviation is sqrt(p/q)",
        ),
        (1.0, "the variance is 1 whatever p: scale the standard normal noise by sqrt(p/q)"),
    ):
        if abs(var - value) <= 6 * value * math.sqrt(2 / n):
            raise AssertionError(
                f"{call}: the multiplier has variance {var:.4f} instead of p/q = {want:.4f}; {mistake}"
            )
    raise AssertionError(f"{call}: the multiplier has variance {var:.4f}; expected p/q = {want:.4f}")


def _check_gaussian(fn: Callable[..., Any]) -> None:
    first = _check_gaussian_moments(fn, 0.5)
    if torch.allclose(_gaussian_multiplier(fn, 0.5), first, rtol=1e-6, atol=0):
        raise AssertionError(
            "two calls of gaussian_dropout(x, p=0.5) used exactly the same noise: draw new noise at "
            "every call (do not reseed inside the function or reuse stored noise)"
        )
    _check_gaussian_moments(fn, 0.2)
    x = 1 + torch.rand(50, 20)
    out = _tensor_result(call_answer(fn, x, 0.0), x, "gaussian_dropout(x, p=0.0)")
    if not torch.allclose(out, x):
        raise AssertionError(
            "gaussian_dropout(x, p=0.0) changed the input: with p = 0 the noise variance is 0"
        )
    call = "gaussian_dropout(x, p=0.3, training=False)"
    out = _tensor_result(call_answer(fn, x, 0.3, training=False), x, call)
    if not torch.equal(out, x):
        raise AssertionError(f"{call} changed the input: in evaluation mode return x unchanged")
    xg = (1 + torch.rand(50, 20, dtype=torch.float64)).requires_grad_()
    call = "gaussian_dropout(x, p=0.3) with x.requires_grad"
    out = _tensor_result(call_answer(fn, xg, 0.3), xg, call)
    if not out.requires_grad:
        raise AssertionError(
            f"{call}: the output is not connected to x in the autograd graph (avoid .detach())"
        )
    upstream = torch.rand(50, 20, dtype=torch.float64) + 0.5
    out.backward(upstream)
    if xg.grad is None or not torch.allclose(xg.grad, upstream * out.detach() / xg.detach(), rtol=1e-6):
        raise AssertionError(f"{call}: the gradient of x should be dL/dy times the noise r = y/x")


# --- alpha dropout's constants ---------------------------------------------------------------------------


def _alpha_reference(p: float) -> tuple[float, float]:
    q = 1 - p
    a = (q + SELU_SATURATION**2 * p * q) ** -0.5
    return a, -a * SELU_SATURATION * p


def check_alpha_constants(fn: Callable[[float], Any]) -> None:
    """Check ``fn(p) -> (a, b)``, the affine constants of alpha dropout for drop probability ``p``.

    With ``alpha' = SELU_SATURATION`` and ``u = m x + (1 - m) alpha'``, ``m ~ Bernoulli(q)``,
    ``x ~ N(0, 1)``: ``a = (q + alpha'^2 p q)^(-1/2)`` and ``b = -a alpha' p`` give ``a u + b`` mean 0
    and variance 1. Checked at several ``p``; common mistakes are named (``b`` with the wrong sign,
    ``p`` and ``q`` swapped, the variance without the ``-p^2 alpha'^2`` term, ``a`` not inverted or
    not square-rooted, ``+lambda alpha`` instead of ``-lambda alpha``).

    Example:
        >>> def alpha_constants(p):
        ...     q = 1 - p
        ...     a = (q + SELU_SATURATION**2 * p * q) ** -0.5
        ...     return a, -a * SELU_SATURATION * p
        >>> check_alpha_constants(alpha_constants)
        check_alpha_constants: correct (mean 0 and variance 1 after alpha dropout, for every p tried).
    """
    require_function(fn, "function alpha_constants(p) -> (a, b)")
    s = SELU_SATURATION
    for p in (0.05, 0.1, 0.2, 0.5, 0.8):
        q = 1 - p
        call = f"alpha_constants({p})"
        result = call_answer(fn, p)
        if isinstance(result, torch.Tensor) and result.numel() == 2:
            result = tuple(result.tolist())
        if not isinstance(result, tuple | list) or len(result) != 2:
            raise AssertionError(f"{call} returned {describe(result)}; return a pair (a, b)")
        a = as_number(result[0], f"{call}[0]")
        b = as_number(result[1], f"{call}[1]")
        want_a, want_b = _alpha_reference(p)
        if math.isclose(a, want_a, rel_tol=1e-6) and math.isclose(b, want_b, rel_tol=1e-6, abs_tol=1e-12):
            continue
        if math.isclose(a, want_b, rel_tol=1e-6) and math.isclose(b, want_a, rel_tol=1e-6):
            raise AssertionError(f"{call} returned (b, a): return the scale a first, then the shift b")
        if math.isclose(a, want_a, rel_tol=1e-6):
            if math.isclose(b, -want_b, rel_tol=1e-6):
                raise AssertionError(
                    f"{call}: b has the wrong sign (or you used +lambda alpha): dropped units go to "
                    f"the negative alpha' = {s:.4f}, so E[u] = p alpha' < 0 and b = -a p alpha' > 0"
                )
            if math.isclose(b, -s * p, rel_tol=1e-6):
                raise AssertionError(
                    f"{call}: b = -p alpha' forgets the factor a: shift after scaling, b = -a p alpha'"
                )
            mean = a * p * s + b
            raise AssertionError(
                f"{call}: a is right but b = {b:.6f} leaves the mean at {mean:.4f}; "
                "b must cancel a E[u] = a p alpha'"
            )
        mistakes = (
            ((p + s**2 * q * p) ** -0.5, "you swapped p and q: a unit is kept with probability q = 1 - p"),
            (
                (q + s**2 * p) ** -0.5,
                "Var[u] is q + alpha'^2 p - (p alpha')^2 = q + alpha'^2 p q: subtract the squared mean",
            ),
            (
                q + s**2 * p * q,
                "a must be the inverse square root of Var[u] = q + alpha'^2 p q, not Var[u] itself",
            ),
            ((q + s**2 * p * q) ** -1, "a must be the inverse *square root* of Var[u], not its inverse"),
            ((q + s**2 * p * q) ** 0.5, "a must be the inverse of the standard deviation sqrt(Var[u])"),
        )
        for value, mistake in mistakes:
            if math.isclose(a, value, rel_tol=1e-6):
                raise AssertionError(f"{call}: a = {a:.6f}; {mistake}")
        raise AssertionError(
            f"{call} returned a = {a:.6f}, b = {b:.6f}; expected a = {want_a:.6f}, b = {want_b:.6f}"
        )
    print("check_alpha_constants: correct (mean 0 and variance 1 after alpha dropout, for every p tried).")


# --- DropPath --------------------------------------------------------------------------------------------


def check_drop_path(fn: Callable[..., Any]) -> None:
    """Check a DropPath ``fn(x, p, training=True)``: each example of ``x`` (shape ``(N, ...)``) is zeroed
    with probability ``p`` or kept and scaled by ``1/q``.

    What is checked, each failure with a message naming the mistake: a tensor of the input's shape and
    dtype, the input not changed in place; whole examples are dropped (not single values, not the same
    features for every example, not the whole batch), for 2-D and 4-D input; about a fraction ``p`` of
    the examples is dropped (not ``1 - p``); kept examples are scaled by ``1/q`` (not 1, ``1/p``, ``q``);
    new coins at every call; ``p = 1`` gives zeros (not NaN), ``training=False`` returns the input; the
    gradient of a kept example is ``dL/dy / q`` and of a dropped one 0.

    Example:
        >>> def my_drop_path(x, p, training=True):
        ...     if not training or p == 0:
        ...         return x
        ...     if p == 1:
        ...         return x * 0
        ...     keep = (torch.rand((x.shape[0],) + (1,) * (x.ndim - 1)) >= p).to(x.dtype)
        ...     return x * keep / (1 - p)
        >>> check_drop_path(my_drop_path)
        check_drop_path: correct (whole examples, fraction p, scale 1/(1-p), new coins, gradient).
    """
    require_function(fn, "DropPath function fn(x, p, training=True)")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_SEED)
        _check_drop_path(fn)
    print("check_drop_path: correct (whole examples, fraction p, scale 1/(1-p), new coins, gradient).")


def _drop_path_once(fn: Callable[..., Any], p: float, shape: tuple[int, ...]) -> torch.Tensor:
    q = 1 - p
    x = 1 + torch.rand(shape)
    before = x.clone()
    call = f"drop_path(x, p={p}) for x of shape {shape}"
    out = _tensor_result(call_answer(fn, x, p), x, call)
    if not torch.equal(x, before):
        raise AssertionError(f"{call} changed x in place: return a new tensor (x * mask)")
    if torch.equal(out, x):
        raise AssertionError(f"{call} returned the input unchanged: in training mode drop examples")
    flat = (out == 0).flatten(1)
    dropped = flat.all(dim=1)
    partial = flat.any(dim=1) & ~dropped
    if partial.any():
        raise AssertionError(
            f"{call} zeroed single values inside {float(partial.float().mean()):.0%} of the examples: "
            "DropPath drops whole examples, one coin per example, a mask of shape (N, 1, ..., 1)"
        )
    if dropped.all():
        raise AssertionError(
            f"{call} dropped every example: draw one coin per example, not one for the batch"
        )
    n = shape[0]
    fraction = float(dropped.float().mean())
    tolerance = 5 * math.sqrt(p * q / n)
    if not dropped.any():
        raise AssertionError(
            f"{call} dropped none of the {n} examples: did you draw one coin for the whole batch? "
            "Draw one per example, a mask of shape (N, 1, ..., 1)"
        )
    if abs(fraction - q) <= tolerance < abs(fraction - p):
        raise AssertionError(
            f"{call} dropped {fraction:.1%} of the examples, about 1-p = {q:.0%}: p is the DROP probability"
        )
    if abs(fraction - p) > tolerance:
        raise AssertionError(f"{call} dropped {fraction:.1%} of the examples; expected about p = {p:.0%}")
    check_kept_scale(call, out[~dropped] / x[~dropped], p, "examples")
    return dropped


def _check_drop_path(fn: Callable[..., Any]) -> None:
    first = _drop_path_once(fn, 0.3, (4000, 6))
    if torch.equal(_drop_path_once(fn, 0.3, (4000, 6)), first):
        raise AssertionError(
            "two calls of drop_path(x, p=0.3) dropped exactly the same examples: draw new coins at every call"
        )
    _drop_path_once(fn, 0.7, (4000, 6))
    _drop_path_once(fn, 0.3, (2000, 3, 2, 2))
    x = 1 + torch.rand(50, 8)
    out = _tensor_result(call_answer(fn, x, 1.0), x, "drop_path(x, p=1.0)")
    if torch.isnan(out).any():
        raise AssertionError("drop_path(x, p=1.0) returned NaN: dividing by 1-p = 0; for p = 1 return zeros")
    if not (out == 0).all():
        raise AssertionError("drop_path(x, p=1.0) kept some examples: with p = 1 all are dropped")
    call = "drop_path(x, p=0.3, training=False)"
    out = _tensor_result(call_answer(fn, x, 0.3, training=False), x, call)
    if not torch.equal(out, x):
        raise AssertionError(f"{call} changed the input: in evaluation mode return x unchanged")
    xg = (1 + torch.rand(500, 8)).requires_grad_()
    call = "drop_path(x, p=0.3) with x.requires_grad"
    out = _tensor_result(call_answer(fn, xg, 0.3), xg, call)
    if not out.requires_grad:
        raise AssertionError(
            f"{call}: the output is not connected to x in the autograd graph (avoid .detach())"
        )
    upstream = torch.rand(500, 8) + 0.5
    out.backward(upstream)
    dropped = (out.detach() == 0).all(dim=1)
    if xg.grad is None or (xg.grad[dropped] != 0).any():
        raise AssertionError(f"{call}: dropped examples must get zero gradient")
    if not torch.allclose(xg.grad[~dropped], upstream[~dropped] / 0.7, rtol=1e-5):
        raise AssertionError(f"{call}: the gradient of kept examples must be dL/dy times 1/(1-p)")
