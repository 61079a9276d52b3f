"""DropoutFunction: the hand-written backward is gradient masking, checked several ways."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.autograd import gradcheck, gradgradcheck

from dropoutlib.nn.dropout import DropoutFunction, dropout, dropout_mask, standard_dropout

FAST = settings(max_examples=50, deadline=None)
DTYPES = [torch.float32, torch.float64, torch.bfloat16, torch.float16]

shapes = st.lists(st.integers(0, 5), min_size=0, max_size=4).map(tuple)
seeds = st.integers(0, 2**32 - 1)
open_probabilities = st.floats(0.0, 1.0, exclude_min=True, exclude_max=True)


def fixed_mask(shape: tuple[int, ...], p: float, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return dropout_mask(torch.empty(shape, dtype=torch.float64), p, generator=generator)


def random_pair(
    shape: tuple[int, ...], dtype: torch.dtype, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    x, upstream = torch.randn((2, *shape), dtype=torch.float64, generator=generator).to(dtype)
    return x.clone(), upstream.clone()


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
@pytest.mark.parametrize("shape", [(), (7,), (3, 4), (2, 3, 5)])
def test_gradcheck_with_a_fixed_mask(shape: tuple[int, ...], p: float) -> None:
    torch.manual_seed(0)
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    mask = fixed_mask(shape, p)
    assert gradcheck(DropoutFunction.apply, (x, mask), eps=1e-6, atol=1e-8)
    assert gradgradcheck(DropoutFunction.apply, (x, mask), eps=1e-6, atol=1e-8)


@pytest.mark.parametrize("p", [0.2, 0.5, 0.75])
def test_gradient_is_zero_where_dropped_and_one_over_q_where_kept(p: float) -> None:
    torch.manual_seed(0)
    x = torch.randn(1000, dtype=torch.float64, requires_grad=True)
    mask = fixed_mask((1000,), p, seed=1)
    DropoutFunction.apply(x, mask).sum().backward()
    assert x.grad is not None
    dropped = mask == 0
    assert 0 < int(dropped.sum()) < 1000
    assert torch.all(x.grad[dropped] == 0)
    assert torch.all(x.grad[~dropped] == 1 / (1 - p))


def test_backward_multiplies_the_upstream_gradient_by_the_mask() -> None:
    torch.manual_seed(0)
    x = torch.randn(50, dtype=torch.float64, requires_grad=True)
    mask = fixed_mask((50,), 0.5, seed=2)
    upstream = torch.randn(50, dtype=torch.float64)
    DropoutFunction.apply(x, mask).backward(upstream)
    assert torch.equal(x.grad, upstream * mask)


def test_no_gradient_flows_to_the_mask() -> None:
    x = torch.randn(5, requires_grad=True)
    mask = torch.tensor([2.0, 0.0, 2.0, 0.0, 2.0], requires_grad=True)
    DropoutFunction.apply(x, mask).sum().backward()
    assert mask.grad is None


@FAST
@given(shape=shapes, dtype=st.sampled_from(DTYPES), p=open_probabilities, seed=seeds)
def test_dropout_gradients_are_masked(shape, dtype, p, seed) -> None:
    x, upstream = random_pair(shape, dtype, seed)
    x.requires_grad_()
    torch.manual_seed(seed)
    mask = dropout_mask(x.detach(), p)
    torch.manual_seed(seed)
    y = dropout(x, p)
    if x.numel() == 0:
        return
    assert y.grad_fn is not None and "DropoutFunction" in type(y.grad_fn).__name__
    y.backward(upstream)
    assert torch.equal(x.grad, upstream * mask)
    assert torch.all(x.grad[mask == 0] == 0)


@FAST
@given(shape=shapes, dtype=st.sampled_from(DTYPES), p=open_probabilities, seed=seeds)
def test_dropout_gradients_equal_torch(shape, dtype, p, seed) -> None:
    x, upstream = random_pair(shape, dtype, seed)
    grads = []
    for fn in (F.dropout, dropout):
        leaf = x.clone().requires_grad_()
        torch.manual_seed(seed)
        out = fn(leaf, p)
        if out.requires_grad:
            out.backward(upstream)
        grads.append(leaf.grad)
    if x.numel() > 0:
        assert torch.equal(grads[0], grads[1])


def test_gradient_at_the_edges() -> None:
    torch.manual_seed(0)
    x = torch.randn(4, 3, requires_grad=True)
    dropout(x, 1.0).sum().backward()
    assert torch.equal(x.grad, torch.zeros(4, 3)), "p = 1: nothing passes, no gradient"
    x.grad = None
    dropout(x, 0.5, training=False).sum().backward()
    assert torch.equal(x.grad, torch.ones(4, 3)), "evaluation: identity, gradient 1"


def test_inplace_on_a_non_leaf_is_differentiable() -> None:
    x = torch.randn(20, generator=torch.Generator().manual_seed(0), requires_grad=True)
    torch.manual_seed(4)
    mask = dropout_mask(x.detach(), 0.5)
    torch.manual_seed(4)
    y = dropout(x * 1.0, 0.5, inplace=True)
    y.sum().backward()
    assert torch.equal(x.grad, mask)


def test_standard_dropout_gradient_is_the_unscaled_mask() -> None:
    torch.manual_seed(5)
    x = torch.randn(100, requires_grad=True)
    y = standard_dropout(x, 0.5)
    y.sum().backward()
    kept = y != 0
    assert torch.all(x.grad[kept] == 1) and torch.all(x.grad[~kept] == 0)
