"""Checks for the exercises of chapter 10, "Dropout in convolutional networks".

Each ``check_*`` takes the student's function, prints one line when it is right, and otherwise
raises an ``AssertionError`` whose message names the mistake. A stub (returning ``None``, ``...``,
raising ``NotImplementedError``) never passes. The checks draw their own random numbers and restore
torch's global generator afterwards, so they give the same verdict every time.

Notation: ``p`` is the probability of dropping (a channel), ``q = 1 - p`` of keeping it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from dropoutlib.exercises._answers import (
    call_answer,
    check_kept_scale,
    check_tensor_like,
    describe,
    require_function,
)
from dropoutlib.experiments.convolutions import neighbour_correlation

__all__ = ["check_neighbour_correlation", "check_spatial_dropout"]

_SEED = 2024
_SHAPE = (100, 100, 3, 4)  # 10,000 channels: the fraction dropped is within 0.023 of p at 5 sigma


# --- spatial dropout -----------------------------------------------------------------------------


def _spatial_result(result: Any, x: torch.Tensor, call: str) -> torch.Tensor:
    shape_hint = "the output must have the input's shape (the mask (N, C, 1, 1) broadcasts over H, W)"
    return check_tensor_like(result, x, call, shape_hint=shape_hint)


def _channel_structure(out: torch.Tensor, x: torch.Tensor, call: str) -> torch.Tensor:
    """The (N, C) boolean map of dropped channels, after checking that whole channels are dropped."""
    zero = out == 0
    dropped = zero.all(dim=(2, 3))
    partial = zero.any(dim=(2, 3)) & ~dropped
    if partial.any():
        same_positions = (zero == zero[:, :1]).all()
        if same_positions:
            raise AssertionError(
                f"{call} zeroed the same pixels in every channel of an example: that is a mask of "
                "shape (N, 1, H, W), which drops positions; spatial dropout drops channels, with "
                "one coin per (example, channel): a mask of shape (N, C, 1, 1)"
            )
        raise AssertionError(
            f"{call} zeroed single pixels inside {float(partial.float().mean()):.0%} of the "
            "channels: that is element-wise dropout; spatial dropout zeroes whole channels, with "
            "one coin per (example, channel): draw a mask of shape (N, C, 1, 1)"
        )
    if dropped.any() and (dropped == dropped[:, :1]).all():
        raise AssertionError(
            f"{call} dropped every channel of an example together (a mask of shape (N, 1, 1, 1)): "
            "each channel needs its own coin, a mask of shape (N, C, 1, 1)"
        )
    if dropped.any() and (dropped == dropped[:1]).all():
        raise AssertionError(
            f"{call} dropped the same channels in every example of the batch (a mask of shape "
            "(1, C, 1, 1)): each example needs its own coins, a mask of shape (N, C, 1, 1)"
        )
    return dropped


def _check_spatial_p(fn: Callable[..., Any], p: float) -> torch.Tensor:
    q = 1 - p
    x = 1 + torch.rand(_SHAPE)  # no zeros: a zero in the output is a dropped value
    before = x.clone()
    call = f"spatial_dropout(x, p={p}) for x of shape {_SHAPE}"
    out = _spatial_result(call_answer(fn, x, p), x, call)
    if not torch.equal(x, before):
        raise AssertionError(f"{call} changed x in place: return a new tensor (x * mask)")
    if torch.equal(out, x):
        raise AssertionError(
            f"{call} returned the input unchanged: in training mode each channel must be zeroed "
            "with probability p and the kept channels scaled by 1/(1-p)"
        )
    dropped = _channel_structure(out, x, call)
    fraction = float(dropped.float().mean())
    tolerance = 5 * math.sqrt(p * q / dropped.numel())
    if abs(fraction - q) <= tolerance < abs(fraction - p):
        raise AssertionError(
            f"{call} dropped {fraction:.1%} of the channels, about 1-p = {q:.0%}: you drop with "
            "probability 1-p; p is the DROP probability (keep a channel with probability 1-p)"
        )
    if abs(fraction - p) > tolerance:
        raise AssertionError(
            f"{call} dropped {fraction:.1%} of the channels; expected about p = {p:.0%} (within "
            f"{tolerance:.1%}): each channel must be dropped independently with probability p"
        )
    kept = ~dropped
    check_kept_scale(call, out[kept] / x[kept], p, "channels")
    return dropped


def check_spatial_dropout(fn: Callable[..., Any]) -> None:
    """Check a from-scratch spatial dropout ``fn(x, p, training=True)`` on ``(N, C, H, W)`` input.

    What is checked, each failure with a message naming the mistake: the output is a tensor of the
    input's shape and dtype and the input is not changed in place; whole channels are zeroed (not
    single pixels, not the same pixels in every channel, not whole examples, not the same channels
    in every example); about a fraction ``p`` of the channels is dropped (not ``1 - p``), at two
    values of ``p``; kept channels are scaled by ``1/(1-p)`` (not 1, ``1/p``, ``1-p``); every call
    draws a new mask; ``p = 0`` changes nothing and ``p = 1`` gives zeros (not NaN);
    ``training=False`` returns the input; the gradient reaches ``x`` and is masked channel by
    channel, ``dL/dx = dL/dy * m / (1-p)``.

    Example:
        >>> def my_spatial_dropout(x, p, training=True):
        ...     if not training or p == 0:
        ...         return x
        ...     if p == 1:
        ...         return torch.zeros_like(x)
        ...     keep = torch.rand(x.shape[0], x.shape[1], 1, 1) >= p
        ...     return x * keep / (1 - p)
        >>> check_spatial_dropout(my_spatial_dropout)
        check_spatial_dropout: correct (whole channels, fraction p, scale 1/(1-p), new masks, gradient).
    """
    require_function(fn, "spatial dropout function fn(x, p, training=True)")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_SEED)
        _check_spatial(fn)
    print("check_spatial_dropout: correct (whole channels, fraction p, scale 1/(1-p), new masks, gradient).")


def _check_spatial(fn: Callable[..., Any]) -> None:
    p = 0.3
    first = _check_spatial_p(fn, p)
    if torch.equal(_check_spatial_p(fn, p), first):
        raise AssertionError(
            f"two calls of spatial_dropout(x, p={p}) dropped exactly the same channels: each call "
            "must draw a new mask (do not reseed inside the function or reuse a stored mask)"
        )
    _check_spatial_p(fn, 0.75)

    x = 1 + torch.rand(_SHAPE)
    out = _spatial_result(call_answer(fn, x, 0.0), x, "spatial_dropout(x, p=0.0)")
    if not torch.equal(out, x):
        raise AssertionError("spatial_dropout(x, p=0.0) changed the input: with p = 0 nothing is dropped")
    out = _spatial_result(call_answer(fn, x, 1.0), x, "spatial_dropout(x, p=1.0)")
    if torch.isnan(out).any():
        raise AssertionError(
            "spatial_dropout(x, p=1.0) returned NaN: dividing by 1-p = 0 gives 0/0; for p = 1 "
            "return zeros (torch.zeros_like(x))"
        )
    if not (out == 0).all():
        raise AssertionError("spatial_dropout(x, p=1.0) kept some channels: with p = 1 all are dropped")
    call = "spatial_dropout(x, p=0.3, training=False)"
    out = _spatial_result(call_answer(fn, x, 0.3, training=False), x, call)
    if not torch.equal(out, x):
        raise AssertionError(
            f"{call} changed the input: dropout is active in training only; in evaluation mode "
            "return the input unchanged (the 1/(1-p) scaling already happened in training)"
        )
    _check_spatial_gradient(fn, p)


def _check_spatial_gradient(fn: Callable[..., Any], p: float) -> None:
    q = 1 - p
    x = (1 + torch.rand(_SHAPE)).requires_grad_()
    call = f"spatial_dropout(x, p={p}) with x.requires_grad"
    out = _spatial_result(call_answer(fn, x, p), x, call)
    if not out.requires_grad:
        raise AssertionError(
            f"{call}: the output is not connected to x in the autograd graph (avoid .detach(), "
            ".data, .numpy() and torch.no_grad() on the path from x)"
        )
    upstream = torch.rand(_SHAPE) + 0.5
    out.backward(upstream)
    if x.grad is None:
        raise AssertionError(f"{call}: after backward(), x.grad is None: no gradient reaches x")
    dropped = (out.detach() == 0).all(dim=(2, 3), keepdim=True).expand_as(out)
    if (x.grad[dropped] != 0).any():
        raise AssertionError(
            f"{call}: dropped channels received gradient; they did not affect the output, so "
            "their gradient must be exactly zero"
        )
    if not torch.allclose(x.grad[~dropped], upstream[~dropped] / q, rtol=1e-5, atol=0):
        raise AssertionError(
            f"{call}: the gradient of kept channels is not the upstream gradient times 1/(1-p) = {1 / q:.4f}"
        )


# --- neighbour correlation -----------------------------------------------------------------------


def _correlation_maps() -> torch.Tensor:
    """Three channels with different structure: smooth along rows, alternating, noise with an offset."""
    generator = torch.Generator().manual_seed(_SEED)
    n, h, w = 64, 5, 9
    noise = torch.randn(n, 3, h, w + 2, generator=generator, dtype=torch.float64)
    smooth = (noise[:, 0, :, :-2] + noise[:, 0, :, 1:-1] + noise[:, 0, :, 2:]) / 3
    smooth = smooth + torch.linspace(0, 2, w, dtype=torch.float64)  # a ramp: positions differ
    signs = torch.tensor([1.0, -1.0], dtype=torch.float64).repeat(w // 2 + 1)[:w]
    stripes = signs * (1 + noise[:, 1, :, 1:-1].abs()) + 0.3 * noise[:, 1, :, 2:]
    shifted = 3 + 0.5 * noise[:, 2, :, 1:-1] + 0.5 * noise[:, 2, :, :-2]
    return torch.stack([smooth, stripes, shifted], dim=1)


def _as_vector(result: Any, channels: int, call: str) -> torch.Tensor:
    if isinstance(result, list | tuple):
        try:
            result = torch.tensor(result, dtype=torch.float64)
        except (TypeError, ValueError) as error:
            raise AssertionError(f"{call} returned a list that is not numbers: {error}") from error
    if not isinstance(result, torch.Tensor):
        try:
            result = torch.as_tensor(result, dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError):
            raise AssertionError(
                f"{call} returned {describe(result)}; return a 1-D tensor, one correlation per channel"
            ) from None
    result = result.detach().to(torch.float64)
    if result.numel() == 1 and channels > 1:
        raise AssertionError(
            f"{call} returned one number for maps with {channels} channels: compute one correlation "
            "per channel (a filter slides within a channel, so each channel has its own)"
        )
    if result.shape != (channels,):
        raise AssertionError(
            f"{call} returned shape {tuple(result.shape)}; expected ({channels},), one correlation "
            "per channel"
        )
    return result


def _alternatives(maps: torch.Tensor, offset: int) -> list[tuple[torch.Tensor, str]]:
    left, right = maps[..., :-offset], maps[..., offset:]
    c = maps.shape[1]

    def per_channel(u: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return u.transpose(0, 1).reshape(c, -1), v.transpose(0, 1).reshape(c, -1)

    u, v = per_channel(left, right)
    cosine = (u * v).sum(1) / (u.square().sum(1) * v.square().sum(1)).sqrt()
    uc, vc = u - u.mean(1, keepdim=True), v - v.mean(1, keepdim=True)
    covariance = (uc * vc).mean(1)
    rolled = torch.roll(maps, -offset, dims=-1)
    ur, vr = per_channel(maps, rolled)
    urc, vrc = ur - ur.mean(1, keepdim=True), vr - vr.mean(1, keepdim=True)
    wrap = (urc * vrc).sum(1) / (urc.square().sum(1) * vrc.square().sum(1)).sqrt()
    # per example: the correlation over one example's positions, averaged over examples
    ue = left.reshape(maps.shape[0], c, -1)
    ve = right.reshape(maps.shape[0], c, -1)
    uec, vec = ue - ue.mean(2, keepdim=True), ve - ve.mean(2, keepdim=True)
    per_example = ((uec * vec).sum(2) / (uec.square().sum(2) * vec.square().sum(2)).sqrt()).mean(0)
    return [
        (
            neighbour_correlation(maps, offset, axis="vertical"),
            "compares vertical neighbours (rows i and i+offset); the exercise asks for horizontal "
            "neighbours: columns j and j+offset (the last axis)",
        ),
        (
            cosine,
            "does not subtract the means: that is the cosine similarity, not Pearson's "
            "correlation; center u and v first",
        ),
        (covariance, "returns the covariance: divide by the two standard deviations to get a correlation"),
        (
            wrap,
            "wraps around the edge (torch.roll pairs the last column with the first); use only "
            "pairs where both positions exist: x[..., :-offset] with x[..., offset:]",
        ),
        (
            per_example,
            "computes a correlation within each example and averages them; pool all "
            "examples and positions of a channel into one set of pairs, as a convolution sees them",
        ),
    ]


def check_neighbour_correlation(fn: Callable[..., Any]) -> None:
    """Check ``fn(maps, offset)``: per channel, the correlation of horizontal neighbours ``offset`` apart.

    ``maps`` has shape ``(N, C, H, W)``; the answer must return ``C`` numbers, the Pearson correlation
    between ``maps[:, c, :, j]`` and ``maps[:, c, :, j + offset]`` over all examples and all
    positions where both exist (as
    :func:`~dropoutlib.experiments.convolutions.neighbour_correlation` computes).
    Three channels with different structure and two offsets are tried; an answer off by more than
    1e-4 is compared with the usual mistakes (vertical pairs, no centering, covariance, wrap-around,
    per-example averaging, ignoring ``offset``) and the mistake is named.

    Example:
        >>> def my_correlation(maps, offset):
        ...     u = maps[..., :-offset].transpose(0, 1).flatten(1)
        ...     v = maps[..., offset:].transpose(0, 1).flatten(1)
        ...     u = u - u.mean(1, keepdim=True)
        ...     v = v - v.mean(1, keepdim=True)
        ...     return (u * v).sum(1) / (u.square().sum(1) * v.square().sum(1)).sqrt()
        >>> check_neighbour_correlation(my_correlation)
        check_neighbour_correlation: correct for 3 channels at offsets 1 and 2.
    """
    require_function(fn, "correlation function fn(maps, offset)")
    maps = _correlation_maps()
    for offset in (1, 2):
        call = f"your function(maps of shape {tuple(maps.shape)}, offset={offset})"
        given = maps.clone()
        result = _as_vector(call_answer(fn, given, offset), maps.shape[1], call)
        if not torch.equal(given, maps):
            raise AssertionError(f"{call} changed maps in place: work on copies")
        expected = neighbour_correlation(maps, offset)
        if torch.allclose(result, expected, rtol=0, atol=1e-4):
            continue
        if offset > 1 and torch.allclose(result, neighbour_correlation(maps, 1), rtol=0, atol=1e-4):
            raise AssertionError(f"{call} returned the correlation at offset 1: use the offset argument")
        for alternative, mistake in _alternatives(maps, offset):
            if torch.allclose(result, alternative, rtol=0, atol=1e-4):
                raise AssertionError(f"{call} {mistake}")
        raise AssertionError(
            f"{call} returned {[round(v, 4) for v in result.tolist()]}; expected "
            f"{[round(v, 4) for v in expected.tolist()]}"
        )
    print("check_neighbour_correlation: correct for 3 channels at offsets 1 and 2.")
