"""Checks for the exercises of chapter 2, "Dropout from scratch".

Each ``check_*`` takes the student's function, prints one line when it is right, and otherwise
raises an ``AssertionError`` whose message names the mistake. A stub (returning ``None`` or the
input unchanged, raising ``NotImplementedError``) never passes. The checks seed their own random
numbers (without disturbing the caller's) so that they give the same verdict every time.

Notation: ``p`` is the probability of dropping a unit, ``q = 1 - p`` the probability of keeping it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from dropoutlib.exercises._answers import call_answer, require_function
from dropoutlib.numpy_ref import numerical_gradient, relative_error

__all__ = ["check_dropout", "check_dropout_backward"]

_SEED = 2024
_SHAPE = (200, 50)  # 10,000 units: the fraction dropped is within 0.023 of p at 5 standard errors


def _tensor_result(result: Any, x: torch.Tensor, call: str) -> torch.Tensor:
    if not isinstance(result, torch.Tensor):
        raise AssertionError(
            f"{call} returned a value of type {type(result).__name__}; return a torch.Tensor "
            "(build the mask with torch, not NumPy, so that autograd can follow it)"
        )
    if result.shape != x.shape:
        raise AssertionError(
            f"{call} returned shape {tuple(result.shape)} for an input of shape {tuple(x.shape)}: "
            "dropout must keep the input's shape (one mask entry per unit)"
        )
    if result.dtype != x.dtype:
        raise AssertionError(
            f"{call} returned dtype {result.dtype} for a {x.dtype} input: dropout must keep the "
            "input's dtype (build the mask with torch.rand_like(x) or convert it with .to(x.dtype))"
        )
    return result


def _check_one_p(fn: Callable[..., Any], p: float) -> torch.Tensor:
    """Fraction dropped and scaling of kept units for one p; return the output."""
    q = 1 - p
    x = 1 + torch.rand(_SHAPE)  # in [1, 2): no zeros, so a zero in the output is a dropped unit
    before = x.clone()
    call = f"dropout(x, p={p})"
    out = _tensor_result(call_answer(fn, x, p), x, call)
    if not torch.equal(x, before):
        raise AssertionError(
            f"{call} changed x in place: dropout must leave its input as it was and return a new "
            "tensor (write `x * mask`, not `x *= mask` or `x.mul_(mask)`)"
        )
    if torch.equal(out, x):
        raise AssertionError(
            f"{call} returned the input unchanged: in training mode each unit must be zeroed with "
            "probability p and the kept ones scaled by 1/(1-p)"
        )
    dropped = out == 0
    if (dropped == dropped[:1]).all():
        raise AssertionError(
            f"{call} gave every row of a {_SHAPE[0]}x{_SHAPE[1]} batch the same mask: each "
            "example must get its own mask (draw the mask with the shape of x, not of one row)"
        )
    fraction = float(dropped.float().mean())
    tolerance = 5 * math.sqrt(p * q / x.numel())
    if abs(fraction - q) <= tolerance and abs(fraction - p) > tolerance:
        raise AssertionError(
            f"{call} zeroed {fraction:.1%} of the units, about 1-p = {q:.0%}: you drop with "
            f"probability 1-p instead of p (p is the DROP probability; keep a unit when "
            f"rand >= p, i.e. with probability 1-p)"
        )
    if abs(fraction - p) > tolerance:
        raise AssertionError(
            f"{call} zeroed {fraction:.1%} of the units; expected about p = {p:.0%} "
            f"(within {tolerance:.1%}): each unit must be zeroed independently with probability p"
        )
    ratio = out[~dropped] / x[~dropped]
    low, high = float(ratio.min()), float(ratio.max())
    if not math.isclose(low, high, rel_tol=1e-5):
        raise AssertionError(
            f"{call} multiplied kept units by factors from {low:.4f} to {high:.4f}; every kept "
            f"unit must be multiplied by the same 1/(1-p) = {1 / q:.4f}"
        )
    scale = low
    candidates = [
        (
            1.0,
            "forgets the 1/(1-p) scaling: kept units equal the input, so the output's mean is "
            f"only (1-p) = {q:.2f} times the input's; divide the kept units by 1-p",
        ),
        (
            1 / p,
            f"scales kept units by 1/p = {1 / p:.4f} instead of 1/(1-p) = {1 / q:.4f}: the "
            "scale is the inverse of the KEEP probability, not of the drop rate p",
        ),
        (
            q,
            f"multiplies kept units by 1-p = {q:.4f}: inverted dropout DIVIDES by 1-p "
            f"(factor {1 / q:.4f}) so that the mean is preserved",
        ),
        (
            p,
            f"multiplies kept units by p = {p:.4f}: inverted dropout divides by 1-p "
            f"(factor {1 / q:.4f})",
        ),
    ]
    if math.isclose(scale, 1 / q, rel_tol=1e-5):
        return out
    for value, mistake in candidates:
        if math.isclose(scale, value, rel_tol=1e-5):
            raise AssertionError(f"{call} {mistake}")
    raise AssertionError(
        f"{call} multiplied kept units by {scale:.4f}; expected 1/(1-p) = {1 / q:.4f}"
    )


def check_dropout(fn: Callable[..., Any]) -> None:
    """Check a from-scratch PyTorch dropout ``fn(x, p, training=True)`` (p = drop probability).

    What is checked, in this order, each failure with a message naming the mistake: the call works
    and returns a tensor of the input's shape and dtype; the input is not changed in place; in
    training, about a fraction ``p`` of the units is zeroed (not ``1-p``) and every kept unit is
    multiplied by ``1/(1-p)`` (not 1, ``1/p``, ``1-p``); each example of a batch gets its own mask
    and every call draws a new one; ``p`` is really used (a second value, 0.75); ``p = 0`` changes
    nothing and ``p = 1`` gives zeros (not NaN); ``training=False`` returns the input unchanged;
    float64 inputs stay float64; and the gradient is masked: ``dL/dx = dL/dy * m / (1-p)``.

    Runs in well under a second, with its own seed (torch's global RNG is restored afterwards).

    Example:
        >>> def my_dropout(x, p, training=True):
        ...     if not training or p == 0:
        ...         return x
        ...     if p == 1:
        ...         return torch.zeros_like(x)
        ...     return x * (torch.rand_like(x) >= p) / (1 - p)
        >>> check_dropout(my_dropout)
        check_dropout: all checks passed (mask, scaling, fresh masks, evaluation mode, gradient).
    """
    require_function(fn, "dropout function fn(x, p, training=True)")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_SEED)
        _check_dropout(fn)
    print(
        "check_dropout: all checks passed (mask, scaling, fresh masks, evaluation mode, gradient)."
    )


def _check_dropout(fn: Callable[..., Any]) -> None:
    p = 0.3
    first = _check_one_p(fn, p)
    dropped = first == 0
    second = _check_one_p(fn, p)
    if torch.equal(second == 0, dropped):
        raise AssertionError(
            f"two calls of dropout(x, p={p}) dropped exactly the same units: you reuse one mask "
            "for every call; draw a new mask on each call (and do not reseed inside the function)"
        )
    _check_one_p(fn, 0.75)

    x = 1 + torch.rand(_SHAPE)
    out = _tensor_result(call_answer(fn, x, 0.0), x, "dropout(x, p=0.0)")
    if not torch.equal(out, x):
        raise AssertionError("dropout(x, p=0.0) changed the input: with p = 0 nothing is dropped")
    out = _tensor_result(call_answer(fn, x, 1.0), x, "dropout(x, p=1.0)")
    if torch.isnan(out).any():
        raise AssertionError(
            "dropout(x, p=1.0) returned NaN: dividing by 1-p = 0 gives 0/0 = NaN; "
            "for p = 1 return zeros (torch.zeros_like(x))"
        )
    if not (out == 0).all():
        raise AssertionError("dropout(x, p=1.0) kept some units: with p = 1 every unit is dropped")

    before = x.clone()
    call = "dropout(x, p=0.3, training=False)"
    out = _tensor_result(call_answer(fn, x, 0.3, training=False), x, call)
    if not torch.equal(x, before):
        raise AssertionError(f"{call} changed x in place: evaluation mode must not touch the input")
    if (out == 0).any():
        raise AssertionError(
            f"{call} dropped {float((out == 0).float().mean()):.1%} of the units: dropout drops in "
            "training only; in evaluation mode (training=False) it must return the input unchanged"
        )
    if not torch.equal(out, x):
        scale = float((out / x).mean())
        raise AssertionError(
            f"{call} multiplied the input by {scale:.4f}: with inverted dropout the scaling "
            "happens in training, so evaluation mode must return the input unchanged"
        )

    x64 = 1 + torch.rand(_SHAPE, dtype=torch.float64)
    _tensor_result(call_answer(fn, x64, 0.3), x64, "dropout(x, p=0.3) with a float64 x")

    _check_gradient(fn, p)


def _check_gradient(fn: Callable[..., Any], p: float) -> None:
    q = 1 - p
    x = (1 + torch.rand(_SHAPE)).requires_grad_()
    call = f"dropout(x, p={p}) with x.requires_grad"
    out = _tensor_result(call_answer(fn, x, p), x, call)
    if not out.requires_grad:
        raise AssertionError(
            f"{call}: the output is not connected to x in the autograd graph, so no gradient "
            "reaches x (avoid .detach(), .data, .numpy() and torch.no_grad() on the path from x)"
        )
    upstream = torch.rand(_SHAPE) + 0.5  # no zeros: a zero in x.grad is a masked gradient
    try:
        out.backward(upstream)
    except Exception as error:
        raise AssertionError(
            f"{call}: backward() failed with {type(error).__name__}: {error}"
        ) from error
    grad = x.grad
    if grad is None:
        raise AssertionError(f"{call}: after backward(), x.grad is None: no gradient reaches x")
    dropped = out.detach() == 0
    if (grad[dropped] != 0).any():
        raise AssertionError(
            f"{call}: the gradient is not masked: {float((grad[dropped] != 0).float().mean()):.0%} "
            "of the dropped units received gradient; a dropped unit did not affect the output, so "
            "its gradient must be exactly zero (multiply the gradient by the same mask)"
        )
    expected = upstream[~dropped] / q
    if not torch.allclose(grad[~dropped], expected, rtol=1e-5, atol=0):
        scale = float((grad[~dropped] / upstream[~dropped]).mean())
        raise AssertionError(
            f"{call}: the gradient of kept units is {scale:.4f} times the upstream gradient; "
            f"the forward pass multiplied them by 1/(1-p) = {1 / q:.4f}, so the backward must too"
        )


def check_dropout_backward(fn: Callable[..., Any]) -> None:
    """Check a NumPy backward pass ``fn(grad_out, keep, p) -> grad_x`` of inverted dropout.

    The forward pass it belongs to is ``y = x * keep / (1 - p)``, with ``keep`` the boolean mask
    (True where a unit was kept). The answer is compared with a numerical gradient
    (:func:`dropoutlib.numpy_ref.numerical_gradient`) of ``L(x) = sum(grad_out * y(x))``.

    Example:
        >>> def my_backward(grad_out, keep, p):
        ...     return grad_out * keep / (1 - p)
        >>> check_dropout_backward(my_backward)
        check_dropout_backward: matches the numerical gradient (relative error < 1e-7).
    """
    require_function(fn, "backward function fn(grad_out, keep, p)")
    rng = np.random.default_rng(_SEED)
    p = 0.3
    q = 1 - p
    x = rng.normal(size=(6, 10))
    keep = rng.random(x.shape) >= p
    grad_out = rng.uniform(0.5, 1.5, size=x.shape)  # no zeros: a zero gradient is a masked one

    def loss(values: np.ndarray) -> float:
        return float(np.sum(grad_out * values * keep / q))

    expected = numerical_gradient(loss, x)
    keep_before, grad_before = keep.copy(), grad_out.copy()
    call = f"backward(grad_out, keep, p={p})"
    result = call_answer(fn, grad_out, keep, p)
    if not np.array_equal(keep, keep_before) or not np.array_equal(grad_out, grad_before):
        raise AssertionError(f"{call} changed its arguments in place: return a new array")
    if isinstance(result, torch.Tensor):
        result = result.detach().numpy()
    result = np.asarray(result)
    if result.shape != x.shape:
        raise AssertionError(
            f"{call} returned shape {result.shape}; the gradient with respect to x has the shape "
            f"of x, {x.shape}"
        )
    if not np.issubdtype(result.dtype, np.floating):
        raise AssertionError(f"{call} returned dtype {result.dtype}; expected a float array")
    if np.allclose(result, grad_out):
        raise AssertionError(
            f"{call} returned grad_out unchanged: the gradient is not masked (dropped units must "
            "get zero gradient) nor scaled by 1/(1-p)"
        )
    if np.any(result[~keep] != 0):
        if np.all(result[keep] == 0):
            raise AssertionError(
                f"{call} sends gradient to the dropped units and none to the kept ones: the mask "
                "is inverted (multiply by keep, not by ~keep or 1 - keep)"
            )
        raise AssertionError(
            f"{call}: the gradient is not masked: dropped units received gradient; they did not "
            "affect the output, so their gradient must be exactly zero"
        )
    scale = float(np.mean(result[keep] / grad_out[keep]))
    error = relative_error(result, expected)
    if error > 1e-7:
        for value, mistake in [
            (
                1.0,
                "forgets the 1/(1-p) factor: the forward pass multiplied kept units by "
                f"1/(1-p) = {1 / q:.4f}, so their gradient must be multiplied by it too",
            ),
            (1 / p, f"scales by 1/p = {1 / p:.4f} instead of 1/(1-p) = {1 / q:.4f}"),
            (q, f"multiplies by 1-p = {q:.4f} instead of dividing by it"),
        ]:
            if math.isclose(scale, value, rel_tol=1e-6):
                raise AssertionError(f"{call} {mistake}")
        raise AssertionError(
            f"{call} disagrees with the numerical gradient (relative error {error:.1e}): kept "
            f"units' gradients are {scale:.4f} times grad_out, expected 1/(1-p) = {1 / q:.4f}"
        )
    print(
        "check_dropout_backward: matches the numerical gradient (relative error < 1e-7)."
    )
