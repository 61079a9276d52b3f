"""The checks of chapter 2: each classic mistake fails with its own message; right answers pass."""

from __future__ import annotations

import functools
import math
import re
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dropoutlib import dropout
from dropoutlib.exercises.from_scratch import (
    check_bitwise_dropout,
    check_dropout,
    check_dropout_backward,
    check_units_needed,
    check_zero_gradient_move,
    check_zero_gradient_pairs,
)


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
    (reseeds_inside, "reseed the random generator inside the function"),
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


def test_mistake_fragments_are_pairwise_distinct():
    fragments = [message for _, message in MISTAKES]
    assert len(set(fragments)) == len(fragments)
    for a in fragments:
        for b in fragments:
            assert a == b or a not in b, f"{a!r} is part of {b!r}"


def test_the_mistakes_instructors_are_promised_are_all_covered():
    """README ("For instructors") lists what check_dropout recognizes: each has its own buggy twin."""
    promised = {no_scaling, scales_by_one_over_p, drops_with_one_minus_p, one_mask_for_every_call,
                drops_in_eval, in_place, wrong_dtype, wrong_shape, gradient_not_masked}
    assert promised <= {buggy for buggy, _ in MISTAKES}


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


# --- check_bitwise_dropout -----------------------------------------------------------------------


def bitwise(x, p):
    return x * torch.empty_like(x).bernoulli_(1 - p).div_(1 - p)


def bitwise_in_steps(x, p):
    mask = torch.empty_like(x)
    mask.bernoulli_(1 - p)
    mask.div_(1 - p)
    return mask * x


def test_bitwise_references_pass(capsys):
    for answer in (bitwise, bitwise_in_steps):
        check_bitwise_dropout(answer)
        assert "bit for bit equal to F.dropout" in capsys.readouterr().out


def _keep(x, p):
    return torch.empty_like(x).bernoulli_(1 - p)


def reseeds(x, p):
    torch.manual_seed(0)
    return bitwise(x, p)


def draws_before(x, p):
    torch.rand(1)
    return bitwise(x, p)


def bitwise_in_place(x, p):
    return x.mul_(_keep(x, p).div_(1 - p))


BITWISE_MISTAKES = [
    (lambda x, p: F.dropout(x, p), "calls PyTorch's own dropout"),
    (lambda x, p: torch.nn.Dropout(p)(x), "calls PyTorch's own dropout"),
    (lambda x, p: x * _keep(x, p) / (1 - p), "you divide the product x \\* mask by 1-p"),
    (lambda x, p: x * _keep(x, p) * (1 / (1 - p)), "your operations are not F.dropout's"),
    (lambda x, p: x * _keep(x, p), "forgets the 1/\\(1-p\\) scaling"),
    (lambda x, p: x * _keep(x, p) / p, "scales the kept values by 1/p"),
    (lambda x, p: x * _keep(x, p) * (1 - p), "multiplies the kept values by 1-p"),
    (lambda x, p: x * _keep(x, p) * 3, "multiplies the kept values by 3.0000"),
    (lambda x, p: x * (torch.rand_like(x) >= p) / (1 - p), "torch.rand_like\\(x\\) >= p"),
    (lambda x, p: x * (torch.rand_like(x) < 1 - p) / (1 - p), "torch.rand_like\\(x\\) < 1-p"),
    (lambda x, p: x * torch.empty_like(x).bernoulli_(p).div_(1 - p), "draws bernoulli_\\(p\\)"),
    (lambda x, p: x * (1 - _keep(x, p)) / (1 - p), "inverts the mask"),
    (lambda x, p: x * torch.bernoulli(torch.full_like(x, 1 - p)).div_(1 - p),
     "or torch.bernoulli\\(torch.full_like"),
    (reseeds, "you seed inside the function"),
    (draws_before, "draw nothing random before it"),
    (bitwise_in_place, "changed x in place"),
    (lambda x, p: bitwise(x, p).double(), "must keep the input's dtype"),
    (lambda x, p: bitwise(x, p).flatten()[:-1], "must keep the input's shape"),
    (lambda x, p: bitwise(x, p).tolist(), "return a torch.Tensor"),
    (lambda x, p: x, "returned x unchanged"),
]


@pytest.mark.parametrize(("answer", "message"), BITWISE_MISTAKES)
def test_bitwise_mistakes_are_named(answer, message):
    with pytest.raises(AssertionError, match=message):
        check_bitwise_dropout(answer)


def test_bitwise_check_leaves_the_global_rng_alone():
    torch.manual_seed(3)
    expected = torch.rand(3)
    torch.manual_seed(3)
    check_bitwise_dropout(bitwise)
    assert torch.equal(torch.rand(3), expected)


# --- check_zero_gradient_pairs ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        lambda z, keep: ~keep | (z <= 0),
        lambda z, keep: torch.logical_or(keep.logical_not(), torch.relu(z) == 0),
        lambda z, keep: ((keep.double() * torch.relu(z)) == 0).numpy(),
    ],
)
def test_zero_gradient_pairs_references_pass(answer, capsys):
    check_zero_gradient_pairs(answer)
    assert "a zero does not prove a unit was dropped" in capsys.readouterr().out


def _pairs_in_place(z, keep):
    keep.logical_not_()
    return keep | (z <= 0)


PAIR_MISTAKES = [
    (lambda z, keep: ~keep, "you marked only the dropped pairs"),
    (lambda z, keep: ~keep | (z < 0), "you left out z == 0"),
    (lambda z, keep: z <= 0, "you marked only the inactive ReLUs"),
    (lambda z, keep: z < 0, "you marked only the units with z < 0"),
    (lambda z, keep: keep & (z <= 0), "only the kept units with an inactive ReLU"),
    (lambda z, keep: ~keep & (z <= 0), "you ask for dropped AND inactive"),
    (lambda z, keep: keep & (z > 0), "NOT zero"),
    (lambda z, keep: keep.clone(), "you marked the kept pairs"),
    (lambda z, keep: ~keep | (z <= -0.1), "is wrong for"),
    (lambda z, keep: (~keep | (z <= 0)).any(dim=0), "returned shape \\(12,\\)"),
    (lambda z, keep: (~keep | (z <= 0)).double(), "returned dtype torch.float64"),
    (lambda z, keep: z, "returned its argument z unchanged"),
    (lambda z, keep: keep, "returned its argument keep unchanged"),
    (lambda z, keep: (~keep | (z <= 0)).tolist(), "should return a boolean tensor"),
    (_pairs_in_place, "changed its arguments in place"),
]


@pytest.mark.parametrize(("answer", "message"), PAIR_MISTAKES)
def test_zero_gradient_pairs_mistakes_are_named(answer, message):
    with pytest.raises(AssertionError, match=message):
        check_zero_gradient_pairs(answer)


def test_zero_gradient_pairs_reference_is_measured_and_covers_every_case():
    """The check's reference comes from autograd; it holds all four kinds of pairs, and z == 0."""
    from dropoutlib.exercises.from_scratch import _relu_batches

    for z, keep, zero in _relu_batches():
        assert torch.equal(zero, ~keep | (z <= 0))
        for kind in (keep & (z > 0), keep & (z < 0), ~keep & (z > 0), ~keep & (z <= 0), keep & (z == 0)):
            assert kind.any()


# --- check_zero_gradient_move ----------------------------------------------------------------------

ZERO_COLUMN = torch.tensor([[0.0, 1.0, 1.0], [0.0, 1.0, 1.0]])


def move(make_optimizer, measure="step", second_grad=ZERO_COLUMN, new_optimizer=False, steps=2):
    w = torch.ones(2, 3, requires_grad=True)
    optimizer = make_optimizer([w])
    start = w.detach().clone()
    for k, grad in enumerate((torch.ones(2, 3), second_grad, ZERO_COLUMN)[:steps]):
        if k == 1 and new_optimizer:
            optimizer = make_optimizer([w])
        before = w.detach().clone()
        view = w.detach()[:, 0]
        w.grad = None if grad is None else grad.clone()
        optimizer.step()
        if k == 0:
            after_first = w.detach().clone()
    after = w.detach()
    return {
        "step": lambda: (after - before)[:, 0].abs().max().item(),
        "view": lambda: (after[:, 0] - view).abs().max().item(),
        "total": lambda: (after - start)[:, 0].abs().max().item(),
        "first": lambda: (after_first - start)[:, 0].abs().max().item(),
        "all": lambda: (after - before).abs().max().item(),
        "signed": lambda: (after - before)[:, 0].min().item(),
    }[measure]()


def test_zero_gradient_move_reference_passes(capsys):
    check_zero_gradient_move(move)
    assert "momentum, Adam and weight decay move it" in capsys.readouterr().out


MOVE_MISTAKES = [
    (lambda make: 0.0, "you assumed that a zero gradient means no update"),
    (lambda make: 0.1, "never calls make_optimizer"),
    (functools.partial(move, measure="view"), "That is a view"),
    (functools.partial(move, measure="total"), "over both steps"),
    (functools.partial(move, measure="first"), "you measured the first step"),
    (functools.partial(move, measure="all"), "largest change in all of W"),
    (functools.partial(move, measure="signed"), "signed change"),
    (functools.partial(move, new_optimizer=True), "a new optimizer for the second step"),
    (functools.partial(move, second_grad=None), "W.grad is None"),
    (functools.partial(move, second_grad=ZERO_COLUMN.T.reshape(2, 3).roll(1, 0).T.reshape(2, 3)),
     "should be ones with zeros"),
    (functools.partial(move, second_grad=torch.tensor([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])), "ROW 0"),
    (functools.partial(move, steps=3), "took 3 optimizer steps"),
    (functools.partial(move, steps=1), "took 1 optimizer steps"),
    (lambda make: move(make) + 0.01, "but column 0 moved by"),
    (lambda make: "0.09", "should return a number"),
]


@pytest.mark.parametrize(("answer", "message"), MOVE_MISTAKES)
def test_zero_gradient_move_mistakes_are_named(answer, message):
    with pytest.raises(AssertionError, match=message):
        check_zero_gradient_move(answer)


def test_zero_gradient_move_catches_a_wrong_start_and_a_wrong_first_gradient():
    def starts_at_zero(make):
        w = torch.zeros(2, 3, requires_grad=True)
        optimizer = make([w])
        for grad in (torch.ones(2, 3), ZERO_COLUMN):
            w.grad = grad
            optimizer.step()
        return 0.0

    def first_gradient_twice(make):
        w = torch.ones(2, 3, requires_grad=True)
        optimizer = make([w])
        for grad in (2 * torch.ones(2, 3), ZERO_COLUMN):
            w.grad = grad
            optimizer.step()
        return 0.0

    with pytest.raises(AssertionError, match="W should start as torch.ones"):
        check_zero_gradient_move(starts_at_zero)
    with pytest.raises(AssertionError, match="first step's gradient"):
        check_zero_gradient_move(first_gradient_twice)


# --- sizing a test of the fraction dropped ----------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [lambda p, tol, z: math.ceil(z**2 * p * (1 - p) / tol**2),
     lambda p, tol, z: int(np.ceil((z / tol) ** 2 * p * (1 - p)))],
)
def test_units_needed_references_pass(answer, capsys):
    check_units_needed(answer)
    assert "Correct" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda p, tol, z: z**2 * p * (1 - p) / tol**2, "round UP"),
        (lambda p, tol, z: math.ceil(z**2 * math.sqrt(p * (1 - p)) / tol**2), "without the square root"),
        (lambda p, tol, z: math.ceil(z * p * (1 - p) / tol**2), "z enters squared"),
        (lambda p, tol, z: math.ceil(z**2 * p / tol**2), "variance"),
        (lambda p, tol, z: math.ceil(z**2 * p * (1 - p) / tol), "expected"),
        (lambda p, tol, z: "many", "number"),
    ],
)
def test_units_needed_mistakes_are_named(answer, message):
    with pytest.raises(AssertionError, match=message):
        check_units_needed(answer)
