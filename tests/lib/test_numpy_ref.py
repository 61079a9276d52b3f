"""The NumPy reference: forward, backward, and the analytic gradient vs central differences."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dropoutlib.nn.dropout import DropoutFunction
from dropoutlib.numpy_ref import (
    dropout_backward,
    dropout_forward,
    numerical_gradient,
    relative_error,
)

FAST = settings(max_examples=50, deadline=None)

shapes = st.lists(st.integers(0, 4), max_size=3).map(tuple)
seeds = st.integers(0, 2**32 - 1)


@FAST
@given(
    shape=shapes,
    dtype=st.sampled_from([np.float32, np.float64]),
    p=st.floats(0.0, 1.0),
    seed=seeds,
)
def test_forward(shape, dtype, p: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    before = x.copy()
    out, mask = dropout_forward(x, p, np.random.default_rng(seed))
    assert mask is not None
    assert out.shape == mask.shape == x.shape
    assert out.dtype == mask.dtype == x.dtype
    scale = dtype(0.0 if p == 1 else 1 / (1 - p))
    assert np.all((mask == 0) | (mask == scale))
    np.testing.assert_array_equal(out, x * mask)
    np.testing.assert_array_equal(x, before)
    # Same seed, same mask.
    _, again = dropout_forward(x, p, np.random.default_rng(seed))
    np.testing.assert_array_equal(mask, again)


def test_forward_edges_and_eval() -> None:
    x = np.arange(1.0, 7.0).reshape(2, 3)
    rng = np.random.default_rng(0)
    out, mask = dropout_forward(x, 0.0, rng)
    np.testing.assert_array_equal(out, x)
    out, mask = dropout_forward(x, 1.0, rng)
    np.testing.assert_array_equal(out, np.zeros_like(x))
    state = rng.bit_generator.state
    out, mask = dropout_forward(x, 0.5, rng, training=False)
    assert out is x and mask is None
    assert rng.bit_generator.state == state, "evaluation draws no random numbers"


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_forward_statistics(p: float) -> None:
    n = 200_000
    x = np.ones(n)
    out, _ = dropout_forward(x, p, np.random.default_rng(1))
    zeroed = int(np.sum(out == 0))
    assert abs(zeroed - n * p) < 5 * math.sqrt(n * p * (1 - p))
    assert abs(out.mean() - 1.0) < 5 * math.sqrt(p / (1 - p) / n)


@FAST
@given(shape=st.lists(st.integers(1, 4), max_size=3).map(tuple), p=st.floats(0.0, 0.95), seed=seeds)
def test_backward_matches_numerical_gradient(shape, p: float, seed: int) -> None:
    """Loss L(x) = sum(w * dropout(x)) with a fixed mask; dL/dx = w * mask."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    # |w_i| in [0.5, 2]: the rounding error of a difference quotient is absolute (~1e-16 |L| / eps),
    # so a gradient entry very close to zero would have a large *relative* error for no fault
    # of the backward pass.
    w = rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.5, 2.0, size=shape)
    _, mask = dropout_forward(x, p, rng)
    assert mask is not None

    def loss(v: np.ndarray) -> float:
        return float(np.sum(w * (v * mask)))

    analytic = dropout_backward(w, mask)
    numerical = numerical_gradient(loss, x)
    assert relative_error(analytic, numerical) < 1e-7
    assert np.all(analytic[mask == 0] == 0) and np.all(numerical[mask == 0] == 0)


def test_a_wrong_backward_is_caught_by_the_numerical_check() -> None:
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal(20), rng.standard_normal(20)
    _, mask = dropout_forward(x, 0.5, rng)
    numerical = numerical_gradient(lambda v: float(np.sum(w * v * mask)), x)
    assert relative_error(w * (mask != 0), numerical) > 0.1, "forgot the 1/q"
    assert relative_error(w, numerical) > 0.1, "forgot the mask"


def test_agrees_with_the_torch_version() -> None:
    rng = np.random.default_rng(3)
    x, upstream = rng.standard_normal((2, 5, 7))
    out, mask = dropout_forward(x, 0.3, rng)
    x_t = torch.tensor(x, requires_grad=True)
    out_t = DropoutFunction.apply(x_t, torch.tensor(mask))
    out_t.backward(torch.tensor(upstream))
    np.testing.assert_array_equal(out_t.detach().numpy(), out)
    np.testing.assert_array_equal(x_t.grad.numpy(), dropout_backward(upstream, mask))


def test_numerical_gradient_of_known_functions() -> None:
    x = np.array([[0.5, -1.0], [2.0, 0.0]])
    before = x.copy()
    np.testing.assert_allclose(numerical_gradient(lambda v: float(np.sum(v**2)), x), 2 * x)
    np.testing.assert_allclose(
        numerical_gradient(lambda v: float(np.sum(np.sin(v))), x), np.cos(x), rtol=1e-8
    )
    np.testing.assert_array_equal(x, before)
    assert numerical_gradient(lambda v: float(v**3), np.array(2.0)) == pytest.approx(12.0)
    with pytest.raises(ValueError, match="eps must be positive"):
        numerical_gradient(lambda v: 0.0, x, eps=0.0)


def test_relative_error() -> None:
    a, b = np.array([1.0, 2.0, 0.0]), np.array([1.0, 2.2, 0.0])
    assert relative_error(a, a) == 0.0
    assert relative_error(a, b) == relative_error(b, a) == pytest.approx(0.2 / 4.2)
    assert relative_error(np.zeros(3), np.zeros(3)) == 0.0
    assert relative_error(np.array([]), np.array([])) == 0.0
    assert relative_error(np.array([1.0]), np.array([-1.0])) == 1.0
    with pytest.raises(ValueError, match="same shape"):
        relative_error(np.ones(2), np.ones(3))
