"""The checks of chapter 2: each classic mistake fails with its own message; right answers pass."""

from __future__ import annotations

import re
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dropoutlib import dropout
from dropoutlib.exercises.scratch import check_dropout, check_dropout_backward


def reference(x, p, training=True):
    if not training or p == 0:
        return x
    if p == 1:
        return torch.zeros_like(x)
    return x * (torch.rand_like(x) >= p) / (1 - p)


# --- check_dropout: one buggy function per mistake ------------------------------------------------


def no_scaling(x, p, training=True):
    if not training:
        return x
    return x * (torch.rand_like(x) >= p)


def scales_by_one_over_p(x, p, training=True):
    if not training:
        return x
    return x * (torch.rand_like(x) >= p) / p


def multiplies_by_q(x, p, training=True):
    if not training:
        return x
    return x * (torch.rand_like(x) >= p) * (1 - p)


def drops_with_one_minus_p(x, p, training=True):
    if not training:
        return x
    if p == 1:
        return torch.zeros_like(x)
    return x * (torch.rand_like(x) < p) / (1 - p)


_CACHE: dict[tuple, torch.Tensor] = {}


def one_mask_for_every_call(x, p, training=True):
    if not training or p == 0:
        return x
    if p == 1:
        return torch.zeros_like(x)
    key = (tuple(x.shape), p)
    if key not in _CACHE:
        _CACHE[key] = torch.rand_like(x) >= p
    return x * _CACHE[key] / (1 - p)


def reseeds_inside(x, p, training=True):
    torch.manual_seed(0)
    return reference(x, p, training)


def one_mask_per_batch(x, p, training=True):
    if not training or p == 0:
        return x
    return x * (torch.rand(x.shape[-1]) >= p) / (1 - p)


def drops_in_eval(x, p, training=True):
    if p == 0:
        return x
    if p == 1:
        return torch.zeros_like(x)
    return x * (torch.rand_like(x) >= p) / (1 - p)


def scales_in_eval(x, p, training=True):
    if not training:
        return x * (1 - p)
    return reference(x, p)


def in_place(x, p, training=True):
    if not training or p == 0:
        return x
    if p == 1:
        return x.mul_(0)
    return x.mul_(torch.rand_like(x) >= p).div_(1 - p)


def wrong_dtype(x, p, training=True):
    return reference(x, p, training).float()


def wrong_shape(x, p, training=True):
    return reference(x, p, training).flatten()


def nan_at_p_one(x, p, training=True):
    if not training:
        return x
    return x * (torch.rand_like(x) >= p) / (1 - p)


def hard_coded_half(x, p, training=True):
    return reference(x, 0.3 if p > 0 and p < 1 else p, training)


def returns_numpy(x, p, training=True):
    return reference(x, p, training).detach().numpy()


class _Unmasked(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, scaled_mask):
        return x * scaled_mask

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output, None  # the bug: the mask is not applied to the gradient


def gradient_not_masked(x, p, training=True):
    if not training or p == 0:
        return x
    if p == 1:
        return torch.zeros_like(x)
    return _Unmasked.apply(x, (torch.rand_like(x) >= p) / (1 - p))


def detached(x, p, training=True):
    return reference(x.detach(), p, training)


class _Unscaled(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, keep, q):
        ctx.save_for_backward(keep)
        return x * keep / q

    @staticmethod
    def backward(ctx, grad_output):
        (keep,) = ctx.saved_tensors
        return grad_output * keep, None, None  # the bug: no 1/q


def gradient_not_scaled(x, p, training=True):
    if not training or p == 0:
        return x
    if p == 1:
        return torch.zeros_like(x)
    return _Unscaled.apply(x, (torch.rand_like(x) >= p).to(x.dtype), 1 - p)


MISTAKES = [
    (no_scaling, "forgets the 1/(1-p) scaling"),
    (scales_by_one_over_p, "scales kept units by 1/p"),
    (multiplies_by_q, "multiplies kept units by 1-p"),
    (drops_with_one_minus_p, "drop with probability 1-p instead of p"),
    (one_mask_for_every_call, "reuse one mask for every call"),
    (reseeds_inside, "reuse one mask for every call"),
    (one_mask_per_batch, "every row of a 200x50 batch the same mask"),
    (drops_in_eval, "dropout drops in training only"),
    (scales_in_eval, "evaluation mode must return the input unchanged"),
    (in_place, "changed x in place"),
    (wrong_dtype, "must keep the input's dtype"),
    (wrong_shape, "must keep the input's shape"),
    (nan_at_p_one, "returned NaN"),
    (hard_coded_half, "of the units; expected about p = 75%"),
    (returns_numpy, "return a torch.Tensor"),
    (gradient_not_masked, "the gradient is not masked"),
    (detached, "not connected to x in the autograd graph"),
    (gradient_not_scaled, "the backward must too"),
]


@pytest.mark.parametrize("buggy, message", MISTAKES, ids=[m[0].__name__ for m in MISTAKES])
def test_each_mistake_fails_with_its_own_message(buggy, message):
    with pytest.raises(AssertionError) as caught:
        check_dropout(buggy)
    assert message in str(caught.value), str(caught.value)
    others = [m for b, m in MISTAKES if m != message]
    assert not any(m in str(caught.value) for m in others), str(caught.value)


def stub_none(x, p, training=True):
    pass


def stub_ellipsis(x, p, training=True): ...


def stub_not_implemented(x, p, training=True):
    raise NotImplementedError


def stub_identity(x, p, training=True):
    return x


@pytest.mark.parametrize(
    "stub, message",
    [
        (stub_none, "returned None"),
        (stub_ellipsis, "returned None"),
        (stub_not_implemented, "NotImplementedError"),
        (stub_identity, "returned the input unchanged"),
    ],
)
def test_stubs_never_pass(stub, message):
    with pytest.raises(AssertionError, match=message):
        check_dropout(stub)


@pytest.mark.parametrize(
    "answer", [reference, dropout, F.dropout], ids=["reference", "dropoutlib", "torch"]
)
def test_correct_implementations_pass(answer, capsys):
    check_dropout(answer)
    assert "all checks passed" in capsys.readouterr().out


def test_check_dropout_is_fast_deterministic_and_leaves_the_global_rng_alone():
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    seconds = []
    for _ in range(3):  # the best of three, so that a busy machine does not fail the test
        start = time.perf_counter()
        check_dropout(reference)
        seconds.append(time.perf_counter() - start)
    assert min(seconds) < 0.5
    assert torch.equal(torch.rand(3), expected), "check_dropout disturbed torch's global RNG"
    messages = set()
    for _ in range(3):
        with pytest.raises(AssertionError) as caught:
            check_dropout(scales_by_one_over_p)
        messages.add(str(caught.value))
    assert len(messages) == 1


def test_check_dropout_refuses_non_functions():
    with pytest.raises(TypeError, match="got 0.5"):
        check_dropout(0.5)
    with pytest.raises(TypeError, match="Dropout"):
        check_dropout(torch.nn.Dropout)


def test_a_crash_is_reported_with_the_call():
    def crashes(x, p, training=True):
        return x @ x

    with pytest.raises(AssertionError, match=r"raised RuntimeError.*called with Tensor of shape"):
        check_dropout(crashes)


# --- check_dropout_backward ----------------------------------------------------------------------


def test_backward_reference_passes(capsys):
    check_dropout_backward(lambda grad_out, keep, p: grad_out * keep / (1 - p))
    assert "matches the numerical gradient" in capsys.readouterr().out


@pytest.mark.parametrize(
    "buggy, message",
    [
        (lambda g, keep, p: g * keep, "forgets the 1/(1-p) factor"),
        (lambda g, keep, p: g * keep / p, "scales by 1/p"),
        (lambda g, keep, p: g * keep * (1 - p), "multiplies by 1-p"),
        (lambda g, keep, p: g / (1 - p), "the gradient is not masked"),
        (lambda g, keep, p: g * ~keep / (1 - p), "the mask is inverted"),
        (lambda g, keep, p: g, "returned grad_out unchanged"),
        (lambda g, keep, p: (g * keep / (1 - p)).ravel(), "returned shape"),
        (lambda g, keep, p: None, "returned None"),
        (lambda g, keep, p: np.multiply(g, keep, out=g), "changed its arguments in place"),
    ],
    ids=[
        "no-scale",
        "one-over-p",
        "times-q",
        "unmasked",
        "inverted",
        "unchanged",
        "shape",
        "none",
        "in-place",
    ],
)
def test_backward_mistakes_fail_with_their_own_message(buggy, message):
    with pytest.raises(AssertionError, match=re.escape(message)):
        check_dropout_backward(buggy)


def test_backward_stub_not_implemented_fails():
    def stub(grad_out, keep, p):
        raise NotImplementedError

    with pytest.raises(AssertionError, match="NotImplementedError"):
        check_dropout_backward(stub)
