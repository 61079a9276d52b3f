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
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from dropoutlib.course.stats import samples_needed
from dropoutlib.exercises._answers import (
    as_number,
    call_answer,
    check_tensor_like,
    describe,
    require_function,
)
from dropoutlib.experiments.from_scratch import init_two_layer, per_example_gradients
from dropoutlib.numpy_ref import numerical_gradient, relative_error

__all__ = [
    "check_bitwise_dropout",
    "check_dropout",
    "check_dropout_backward",
    "check_units_needed",
    "check_zero_gradient_move",
    "check_zero_gradient_pairs",
]

_SEED = 2024
_SHAPE = (200, 50)  # 10,000 units: the fraction dropped is within 0.023 of p at 5 standard errors


def _tensor_result(result: Any, x: torch.Tensor, call: str) -> torch.Tensor:
    return check_tensor_like(
        result,
        x,
        call,
        tensor_hint=" (build the mask with torch, not NumPy, so that autograd can follow it)",
        shape_hint="dropout must keep the input's shape (one mask entry per unit)",
        dtype_hint="dropout must keep the input's dtype (build the mask with torch.rand_like(x) or convert "
        "it with .to(x.dtype))",
    )


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
        _same_mask_mistake(fn, p)
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


def _same_mask_mistake(fn: Callable[..., Any], p: float) -> None:
    """Two calls dropped the same units: say whether a reseeded generator or a stored mask did it."""
    call = f"two calls of dropout(x, p={p})"
    states = []
    for seed in (1, 2):
        x = 1 + torch.rand(_SHAPE)
        torch.manual_seed(seed)
        before = torch.get_rng_state()
        call_answer(fn, x, p)
        states.append((before, torch.get_rng_state()))
    if torch.equal(states[0][1], states[1][1]):
        raise AssertionError(
            f"{call} dropped exactly the same units, whatever the seed set before the call: you "
            "reseed the random generator inside the function (torch.manual_seed in its body), so "
            "every call draws the same mask; seed once, outside, before training"
        )
    if all(torch.equal(before, after) for before, after in states):
        raise AssertionError(
            f"{call} dropped exactly the same units, and drew no random numbers from torch's "
            "generator: you reuse one mask for every call (or a generator you re-create with the "
            "same seed each time); draw a new mask on each call"
        )
    raise AssertionError(f"{call} dropped exactly the same units: each call must draw a new mask")


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


# --- bit for bit: the same computation as F.dropout --------------------------------------------------


class _CallLog(TorchFunctionMode):
    """Records the names of the torch functions and tensor methods called inside it."""

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.names.append(getattr(func, "__name__", str(func)))
        return func(*args, **(kwargs or {}))


def _bitwise_cases() -> list[tuple[torch.Tensor, float, int]]:
    generator = torch.Generator().manual_seed(_SEED)
    return [
        (torch.randn(2_000, generator=generator), 0.3, 0),
        (torch.randn(2_000, generator=generator), 0.45, 1),
        (torch.randn(40, 50, generator=generator), 0.7, 123),
        (torch.randn(2_000, generator=generator, dtype=torch.float64), 0.2, 7),
        (torch.randn(2_000, generator=generator), 0.5, 8),
    ]


def _seeded(seed: int, make: Callable[[], torch.Tensor]) -> torch.Tensor:
    torch.manual_seed(seed)
    return make()


def _bitwise_mistake(fn: Callable[..., Any], x: torch.Tensor, p: float, seed: int,
                     out: torch.Tensor, want: torch.Tensor, call: str) -> str:
    """Name what makes ``out`` differ from ``want = F.dropout(x, p)`` after the same seed."""
    q = 1 - p
    if torch.equal(out, x):
        return f"{call} returned x unchanged: in training mode it must drop and rescale"
    if torch.equal(out == 0, want == 0):
        if torch.allclose(out, want, rtol=1e-6, atol=0):
            differ = int((out != want).sum())
            keep = _seeded(seed, lambda: torch.empty_like(x).bernoulli_(q))
            if torch.equal(out, x * keep / q):
                return (f"{call} drops the same units as F.dropout, but {differ} values differ in "
                        "the last bits: you divide the product x * mask by 1-p; F.dropout divides "
                        "the MASK by 1-p (div_) and then multiplies, which rounds differently")
            return (f"{call} drops the same units as F.dropout, but {differ} values differ in the "
                    "last bits: your operations are not F.dropout's, in F.dropout's order (mask = "
                    "empty_like(x).bernoulli_(1-p), then mask.div_(1-p), then x * mask)")
        kept = want != 0
        scale = float((out[kept] / x[kept]).mean())
        for value, mistake in (
            (1.0, "forgets the 1/(1-p) scaling: the kept values equal the input"),
            (1 / p, f"scales the kept values by 1/p = {1 / p:.4f} instead of 1/(1-p) = {1 / q:.4f}"),
            (q, f"multiplies the kept values by 1-p = {q:.4f} instead of dividing by it"),
        ):
            if math.isclose(scale, value, rel_tol=1e-5):
                return f"{call} drops the same units as F.dropout but {mistake}"
        return (f"{call} drops the same units as F.dropout but multiplies the kept values by "
                f"{scale:.4f}; expected 1/(1-p) = {1 / q:.4f}")
    outputs = [_seeded(s, lambda: call_answer(fn, x.clone(), p)) for s in (1, 2)]
    if torch.equal(outputs[0], outputs[1]):
        return (f"{call} gives the same output after torch.manual_seed(1) and torch.manual_seed(2): "
                "you seed inside the function (or reuse a stored mask); draw from the generator as "
                "the caller's seed left it")
    dropped = out == 0
    masks = [
        (lambda: torch.rand_like(x) >= p,
         "draws its mask with torch.rand_like(x) >= p: the right distribution, but it turns the "
         "same generator state into different coins; use torch.empty_like(x).bernoulli_(1-p)"),
        (lambda: torch.rand_like(x) < q,
         "draws its mask with torch.rand_like(x) < 1-p (or torch.bernoulli(torch.full_like(x, "
         "1-p)), which draws the same coins): the right distribution, but it turns the same "
         "generator state into different coins; use torch.empty_like(x).bernoulli_(1-p)"),
        (lambda: torch.empty_like(x).bernoulli_(p) > 0,
         "draws bernoulli_(p), which keeps a unit with probability p: the argument of bernoulli_ "
         "is the probability of a 1, here of KEEPING, so pass 1-p"),
        (lambda: torch.empty_like(x).bernoulli_(q) == 0,
         "inverts the mask: it keeps the units F.dropout drops (bernoulli_(1-p) gives 1 for a KEPT "
         "unit; multiply by it, not by 1 minus it)"),
    ]
    for draw, mistake in masks:
        if torch.equal(dropped, ~_seeded(seed, draw)):
            return f"{call} {mistake}"
    return (f"{call} drops other units than F.dropout after the same torch.manual_seed({seed}): "
            "draw the mask with torch.empty_like(x).bernoulli_(1-p), and draw nothing random "
            "before it")


def check_bitwise_dropout(fn: Callable[..., Any]) -> None:
    """Check a dropout ``fn(x, p)`` (training mode) that equals ``F.dropout(x, p)`` bit for bit.

    After the same ``torch.manual_seed``, ``fn(x, p)`` must be ``torch.equal`` to
    ``torch.nn.functional.dropout(x, p)`` on the CPU, for several ``p`` (``0 < p < 1``), shapes and
    float dtypes. That takes F.dropout's own computation: a mask from
    ``torch.empty_like(x).bernoulli_(1 - p)``, divided in place by ``1 - p``, then ``x * mask``.
    The check names the usual reasons for a difference: calling F.dropout itself, a mask drawn
    another way (``rand_like(x) >= p``: right distribution, other coins), ``bernoulli_(p)``, an
    inverted mask, seeding inside the function, dividing the product instead of the mask (the same
    zeros, other rounding), a wrong scale, and changing ``x`` in place.

    Example:
        >>> def bitwise_dropout(x, p):
        ...     return x * torch.empty_like(x).bernoulli_(1 - p).div_(1 - p)
        >>> check_bitwise_dropout(bitwise_dropout)
        Correct: bit for bit equal to F.dropout (same coins, same rounding) for 5 inputs.
    """
    require_function(fn, "bitwise_dropout(x, p)")
    cases = _bitwise_cases()
    with torch.random.fork_rng(devices=[]):
        for x, p, seed in cases:
            call = f"bitwise_dropout(x, p={p}) (x: {describe(x)})"
            before = x.clone()
            torch.manual_seed(seed)
            with _CallLog() as log:
                out = call_answer(fn, x, p)
            if any("dropout" in name for name in log.names):
                raise AssertionError(
                    f"{call} calls PyTorch's own dropout ({', '.join(sorted(set(log.names)))}): "
                    "build it from empty_like, bernoulli_, div_ and a multiplication instead"
                )
            if not torch.equal(x, before):
                raise AssertionError(f"{call} changed x in place: return a new tensor (x * mask)")
            out = _tensor_result(out, x, call)
            want = _seeded(seed, lambda x=x, p=p: F.dropout(x, p))
            if not torch.equal(out, want):
                raise AssertionError(_bitwise_mistake(fn, x, p, seed, out, want, call))
    print(f"Correct: bit for bit equal to F.dropout (same coins, same rounding) for {len(cases)} "
          "inputs.")


# --- zero gradients that are not dropout -------------------------------------------------------------


def _relu_batches() -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """``(z, keep, zero)`` for two batches of the two-layer ReLU network of chapter 2.

    ``zero[n, j]`` is measured: True where example ``n`` sends exactly zero gradient to every weight
    into and out of hidden unit ``j`` (per-example autograd, float64). Unit 0 has zero weights and
    bias, so its pre-activation is exactly 0 in every example.
    """
    batches = []
    for seed in (0, 1):
        generator = torch.Generator().manual_seed(seed)
        p, batch, features, hidden, classes = 0.5, 6, 5, 12, 3
        params = init_two_layer(features, hidden, classes, generator)
        with torch.no_grad():
            params["W1"][0] = 0.0
            params["b1"][0] = 0.0
        x = torch.randn(batch, features, generator=generator, dtype=torch.float64)
        y = torch.randint(classes, (batch,), generator=generator)
        keep = torch.rand(batch, hidden, generator=generator, dtype=torch.float64) >= p
        each = per_example_gradients(params, x, y, keep.double() / (1 - p), "relu")
        into = torch.cat([each["W1"], each["b1"].unsqueeze(-1)], dim=-1)
        zero = (each["W2"].transpose(1, 2) == 0).all(-1) & (into == 0).all(-1)
        z = (x @ params["W1"].T + params["b1"]).detach()
        batches.append((z, keep, zero))
    return batches


def _as_pairs(result: Any, z: torch.Tensor, keep: torch.Tensor, call: str) -> torch.Tensor:
    if result is z or result is keep:
        which = "z" if result is z else "keep"
        raise AssertionError(f"{call} returned its argument {which} unchanged: return a new "
                             "boolean tensor, True where the gradient is exactly zero")
    if isinstance(result, np.ndarray):
        result = torch.from_numpy(result)
    if not isinstance(result, torch.Tensor):
        raise AssertionError(f"{call} should return a boolean tensor, got {describe(result)}")
    if tuple(result.shape) != tuple(z.shape):
        raise AssertionError(
            f"{call} returned shape {tuple(result.shape)}: answer for every (example, unit) pair, "
            f"shape {tuple(z.shape)} like z"
        )
    if result.dtype != torch.bool:
        raise AssertionError(
            f"{call} returned dtype {result.dtype}: return a boolean tensor (a comparison such as "
            "z <= 0 gives one), True where the gradient is exactly zero"
        )
    return result


_PAIR_MISTAKES = [
    (lambda z, keep: ~keep,
     "you marked only the dropped pairs: a KEPT unit whose ReLU is inactive (z <= 0) has "
     "relu(z) = 0 and relu'(z) = 0, so the weights into and out of it get zero gradient too"),
    (lambda z, keep: ~keep | (z < 0),
     "you left out z == 0: relu(0) = 0 and PyTorch takes relu'(0) = 0, so a unit whose "
     "pre-activation is exactly 0 (unit 0 here) gets zero gradient as well; use z <= 0"),
    (lambda z, keep: z <= 0,
     "you marked only the inactive ReLUs: a dropped unit gets zero gradient even when z > 0, "
     "through the mask factor m = 0"),
    (lambda z, keep: z < 0,
     "you marked only the units with z < 0: a dropped unit gets zero gradient even when z > 0 "
     "(the mask factor m = 0), and relu'(0) = 0 counts z == 0 too"),
    (lambda z, keep: keep & (z <= 0),
     "you marked only the kept units with an inactive ReLU: the dropped units get zero gradient "
     "too, whatever z is"),
    (lambda z, keep: ~keep & (z <= 0),
     "you ask for dropped AND inactive: either one is enough, since the gradient is a product "
     "with both factors m and relu'(z) (use |, not &)"),
    (lambda z, keep: keep & (z > 0),
     "you marked the pairs whose gradient is NOT zero (kept and active): invert your answer"),
    (lambda z, keep: keep,
     "you marked the kept pairs: the dropped ones are those with zero gradient (~keep), plus the "
     "kept ones with z <= 0"),
]


def check_zero_gradient_pairs(zero_gradient_pairs: Callable[..., Any]) -> None:
    """Check a function that predicts which (example, unit) pairs get exactly zero gradient.

    The network is the two-layer one of :mod:`dropoutlib.experiments.from_scratch` with ReLU: pre-activations
    ``z = x W1^T + b1`` of shape ``(B, H)``, ``h = relu(z)``, dropout with the boolean ``keep``
    mask, then the output layer. ``zero_gradient_pairs(z, keep)`` returns a boolean ``(B, H)``
    tensor, True where example ``n`` sends exactly zero gradient to the weights into and out of
    unit ``j``: where the unit was dropped (``m = 0``) or its ReLU is inactive (``z <= 0``, since
    ``relu(z) = relu'(z) = 0`` there). The reference is measured by per-example autograd, on two
    batches in which one unit has ``z`` exactly 0.

    Example:
        >>> check_zero_gradient_pairs(lambda z, keep: ~keep | (z <= 0))
        Correct: zero gradient = dropped OR inactive ReLU; a zero does not prove a unit was dropped.
    """
    require_function(zero_gradient_pairs, "zero_gradient_pairs")
    for z, keep, zero in _relu_batches():
        call = f"zero_gradient_pairs(z, keep) (z: {describe(z)})"
        z_before, keep_before = z.clone(), keep.clone()
        got = _as_pairs(call_answer(zero_gradient_pairs, z, keep), z, keep, call)
        if not (torch.equal(z, z_before) and torch.equal(keep, keep_before)):
            raise AssertionError(f"{call} changed its arguments in place: leave z and keep as "
                                 "they are")
        if torch.equal(got, zero):
            continue
        for rule, mistake in _PAIR_MISTAKES:
            if torch.equal(got, rule(z, keep)):
                raise AssertionError(mistake)
        wrong = got != zero
        raise AssertionError(
            f"{call} is wrong for {int(wrong.sum())} of {wrong.numel()} pairs (the measured "
            f"zeros are {int(zero.sum())}): a pair has zero gradient when the unit was dropped "
            "or its ReLU is inactive"
        )
    print("Correct: zero gradient = dropped OR inactive ReLU; a zero does not prove a unit was "
          "dropped.")


# --- a zero gradient, a moving weight ----------------------------------------------------------------


def _zero_column_gradient() -> torch.Tensor:
    grad = torch.ones(2, 3)
    grad[:, 0] = 0.0
    return grad


def _reference_move(make: Callable[[list[torch.Tensor]], torch.optim.Optimizer]) -> float:
    weight = torch.ones(2, 3, requires_grad=True)
    optimizer = make([weight])
    for grad in (torch.ones(2, 3), _zero_column_gradient()):
        before = weight.detach().clone()
        weight.grad = grad
        optimizer.step()
    return (weight.detach() - before)[:, 0].abs().max().item()


class _StepLog:
    """The optimizers a student's function builds, and every step they take (weights and grads)."""

    def __init__(self, make: Callable[[Any], torch.optim.Optimizer]) -> None:
        self.make = make
        self.optimizers: list[torch.optim.Optimizer] = []
        self.steps: list[dict[str, list[torch.Tensor | None]]] = []

    def __call__(self, params: Any) -> torch.optim.Optimizer:
        optimizer = self.make(params)
        self.optimizers.append(optimizer)
        step = optimizer.step

        def logged_step(*args: Any, **kwargs: Any) -> Any:
            tensors = [t for group in optimizer.param_groups for t in group["params"]]
            entry = {
                "grads": [None if t.grad is None else t.grad.detach().clone() for t in tensors],
                "before": [t.detach().clone() for t in tensors],
            }
            result = step(*args, **kwargs)
            entry["after"] = [t.detach().clone() for t in tensors]
            self.steps.append(entry)
            return result

        optimizer.step = logged_step
        return optimizer


def _optimizer_cases() -> list[tuple[str, Callable[[Any], torch.optim.Optimizer]]]:
    return [
        ("SGD(lr=0.1)", lambda params: torch.optim.SGD(params, lr=0.1)),
        ("SGD(lr=0.1, momentum=0.9)", lambda params: torch.optim.SGD(params, lr=0.1, momentum=0.9)),
        ("Adam(lr=0.1)", lambda params: torch.optim.Adam(params, lr=0.1)),
        ("SGD(lr=0.1, weight_decay=0.01)",
         lambda params: torch.optim.SGD(params, lr=0.1, weight_decay=0.01)),
        ("SGD(lr=0.05, momentum=0.5)", lambda params: torch.optim.SGD(params, lr=0.05, momentum=0.5)),
        ("RMSprop(lr=0.01)", lambda params: torch.optim.RMSprop(params, lr=0.01)),
        ("AdamW(lr=0.01, weight_decay=0.1)",
         lambda params: torch.optim.AdamW(params, lr=0.01, weight_decay=0.1)),
    ]


def _run_structure(log: _StepLog, got: float, call: str) -> tuple[dict[str, float], float]:
    """Check what the student's run did; return what it could have measured, and the truth."""
    if not log.optimizers:
        if got == 0:
            raise AssertionError(
                f"{call} returned 0 without building the optimizer: you assumed that a zero "
                "gradient means no update, but momentum carries the previous step, Adam's moment "
                "estimates remember it and weight decay shrinks the weight anyway; measure it"
            )
        raise AssertionError(f"{call} never calls make_optimizer([W]): build the optimizer with it "
                             "and take the two steps")
    if len(log.optimizers) > 1:
        raise AssertionError(
            f"{call} built {len(log.optimizers)} optimizers: a new optimizer for the second step "
            "starts with no momentum and no moment estimates, so it forgets the first step; build "
            "one and call its step() twice"
        )
    if len(log.steps) != 2:
        raise AssertionError(f"{call} took {len(log.steps)} optimizer steps; take exactly two")
    first, second = log.steps
    ones = torch.ones(2, 3)
    if len(first["before"]) != 1 or first["before"][0].shape != ones.shape:
        raise AssertionError(f"{call}: optimize a single weight matrix W = torch.ones(2, 3, "
                             "requires_grad=True), make_optimizer([W])")
    if not torch.equal(first["before"][0], ones):
        raise AssertionError(f"{call}: W should start as torch.ones(2, 3)")
    grad1, grad2 = first["grads"][0], second["grads"][0]
    if grad1 is None or not torch.equal(grad1, ones):
        raise AssertionError(f"{call}: the first step's gradient (W.grad) should be torch.ones(2, 3), "
                             f"got {grad1}")
    if grad2 is None:
        raise AssertionError(
            f"{call}: in the second step W.grad is None, and an optimizer skips a parameter without "
            "a gradient altogether (not even momentum moves it); set a gradient of zeros in "
            "column 0 and ones elsewhere"
        )
    if not torch.equal(grad2, _zero_column_gradient()):
        if (grad2[0] == 0).all() and (grad2[1] != 0).all():
            raise AssertionError(f"{call}: the second step's gradient is zero in ROW 0; the weights "
                                 "out of a dropped unit are column 0, W[:, 0]")
        raise AssertionError(f"{call}: the second step's gradient should be ones with zeros in "
                             f"column 0 (W[:, 0]), got {grad2}")
    start, middle, end = first["before"][0], second["before"][0], second["after"][0]
    moved = (end - middle)[:, 0].abs().max().item()
    could = {
        "zero": 0.0,
        "total": (end - start)[:, 0].abs().max().item(),
        "first": (middle - start)[:, 0].abs().max().item(),
        "all": (end - middle).abs().max().item(),
        "signed": -moved,
    }
    return could, moved


_MOVE_MISTAKES = {
    "zero": "you return 0, but in your own run column 0 did move in the second step (momentum "
            "carries the previous step): did you save the weights as `before = W[:, 0]`? That is a "
            "view, and the in-place update changes it too; copy them with W.detach().clone()",
    "total": "you measured the change from the initial weights, over both steps; measure the "
             "second step only (copy W just before it)",
    "first": "you measured the first step, where column 0 still has gradient 1; measure the second "
             "step, the one with the zero gradient",
    "all": "you measured the largest change in all of W: columns 1 and 2 have gradient 1 and move "
           "anyway; measure column 0, W[:, 0], the one with zero gradient",
    "signed": "you returned a signed change; return its size, the largest absolute change",
}


def _move_close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-9)


def check_zero_gradient_move(zero_gradient_move: Callable[..., Any]) -> None:
    """Check a function that measures how far a zero-gradient step moves a weight.

    ``zero_gradient_move(make_optimizer)`` creates ``W = torch.ones(2, 3, requires_grad=True)`` and
    ``optimizer = make_optimizer([W])``, takes one step with gradient ``torch.ones(2, 3)`` and one
    with a gradient that is zero in column 0 (the weights out of a unit dropped in every example)
    and ones elsewhere, and returns how far column 0 moved in the second step (the largest absolute
    change, a float). The check runs it with seven optimizers (plain SGD, SGD with momentum, Adam,
    SGD with weight decay, RMSprop, AdamW), watches the steps it takes, and compares with its own
    measurement. Only plain SGD (and RMSprop without momentum) leave column 0 in place.

    Example:
        >>> def zero_gradient_move(make_optimizer):
        ...     W = torch.ones(2, 3, requires_grad=True)
        ...     optimizer = make_optimizer([W])
        ...     for grad in (torch.ones(2, 3), torch.tensor([[0.0, 1, 1], [0.0, 1, 1]])):
        ...         before = W.detach().clone()
        ...         W.grad = grad
        ...         optimizer.step()
        ...     return (W.detach() - before)[:, 0].abs().max().item()
        >>> check_zero_gradient_move(zero_gradient_move)
        Correct: plain SGD leaves column 0 in place; momentum, Adam and weight decay move it.
    """
    require_function(zero_gradient_move, "zero_gradient_move")
    rows = []
    for name, make in _optimizer_cases():
        call = f"zero_gradient_move(<{name}>)"
        log = _StepLog(make)
        got = as_number(call_answer(zero_gradient_move, log), call)
        could, moved = _run_structure(log, got, call)
        want = _reference_move(make)
        if not _move_close(moved, want):  # cannot happen with the structure checked above
            raise AssertionError(f"{call}: column 0 moved by {moved:.4g}, expected {want:.4g}")
        rows.append((call, got, could, want))
    if all(_move_close(got, want) for _, got, _, want in rows):
        print("Correct: plain SGD leaves column 0 in place; momentum, Adam and weight decay move it.")
        return
    for key, mistake in _MOVE_MISTAKES.items():
        if all(_move_close(got, could[key]) for _, got, could, _ in rows):
            raise AssertionError(mistake)
    call, got, _, want = next(row for row in rows if not _move_close(row[1], row[3]))
    raise AssertionError(f"{call} returned {got:.4g}, but column 0 moved by {want:.4g} in the "
                         "second step")


def check_units_needed(units_needed: Callable[[float, float, float], Any]) -> None:
    r"""Check a function that sizes a test of the fraction of units a dropout layer drops.

    ``units_needed(p, tolerance, z)`` returns the fewest units :math:`n` for which ``z`` standard
    errors of the fraction dropped fit within ``tolerance``. The fraction dropped from :math:`n`
    units is a binomial proportion with standard error :math:`\sqrt{p(1-p)/n}`, so
    :math:`n = \lceil z^2 p (1-p) / \text{tolerance}^2 \rceil`.

    Example:
        >>> import math
        >>> check_units_needed(lambda p, tol, z: math.ceil(z**2 * p * (1 - p) / tol**2))
        Correct: n = ceil(z**2 p (1 - p) / tolerance**2) units (62,500 for p = 0.5, 0.01, z = 5).
    """
    require_function(units_needed, "units_needed")
    for p, tolerance, z in ((0.2, 0.01, 5.0), (0.5, 0.01, 5.0), (0.1, 0.02, 3.0), (0.9, 0.005, 2.0),
                            (0.3, 0.03, 4.0)):
        call = f"units_needed(p={p}, tolerance={tolerance}, z={z})"
        got = as_number(call_answer(units_needed, p, tolerance, z), call)
        want = samples_needed(math.sqrt(p * (1 - p)), tolerance, z)
        if got == want:
            continue
        exact = z**2 * p * (1 - p) / tolerance**2
        if math.isclose(got, exact, rel_tol=1e-6) or got == math.floor(exact):
            raise AssertionError(f"{call} returned {got:.6g}: round UP to a whole number of units, {want}")
        if got == math.ceil(z**2 * math.sqrt(p * (1 - p)) / tolerance**2):
            raise AssertionError(
                f"{call} returned {got:.6g}: the standard error of the fraction is sqrt(p (1 - p) / n); "
                f"squaring it gives p (1 - p) / n, without the square root"
            )
        if got == samples_needed(math.sqrt(p * (1 - p)), tolerance, math.sqrt(z)):
            raise AssertionError(f"{call} returned {got:.6g}: z enters squared, like the tolerance")
        one_sided = (samples_needed(math.sqrt(v), tolerance, z) for v in (p, 1 - p))
        if got in tuple(one_sided):
            raise AssertionError(
                f"{call} returned {got:.6g}: a unit dropped with probability p is a coin with variance "
                f"p (1 - p), not p or 1 - p"
            )
        raise AssertionError(f"{call} returned {got:.6g}, expected {want}")
    print("Correct: n = ceil(z**2 p (1 - p) / tolerance**2) units (62,500 for p = 0.5, 0.01, z = 5).")
