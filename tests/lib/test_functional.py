"""dropoutlib.functional: exact agreement with torch, properties, and statistics."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from dropoutlib.nn.dropout import (
    dropout,
    dropout_mask,
    keep_mask,
    scale_weights_for_inference,
    standard_dropout,
)

FAST = settings(max_examples=50, deadline=None)
DTYPES = [torch.float32, torch.float64, torch.bfloat16, torch.float16]

shapes = st.lists(st.integers(0, 5), min_size=0, max_size=4).map(tuple)  # incl. () and empty
nonempty_shapes = st.lists(st.integers(1, 5), min_size=0, max_size=4).map(tuple)
dtypes = st.sampled_from(DTYPES)
seeds = st.integers(0, 2**32 - 1)
# p anywhere in [0, 1], with the edges and usual values tried often.
probabilities = st.one_of(st.sampled_from([0.0, 0.1, 0.5, 0.9, 1.0]), st.floats(0.0, 1.0))
open_probabilities = st.floats(0.0, 1.0, exclude_min=True, exclude_max=True)


def make_input(shape: tuple[int, ...], dtype: torch.dtype, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=generator, dtype=torch.float64).to(dtype)


def aten_scale(p: float, dtype: torch.dtype) -> torch.Tensor:
    """1/q as ATen computes it for the mask: a one divided in place by the python float q."""
    return torch.ones((), dtype=dtype).div_(1 - p)


# --- properties ---------------------------------------------------------------------------


@FAST
@given(shape=shapes, dtype=dtypes, p=probabilities, seed=seeds, inplace=st.booleans())
def test_output_has_shape_dtype_device_of_input(shape, dtype, p, seed, inplace) -> None:
    x = make_input(shape, dtype, seed)
    y = dropout(x, p, inplace=inplace)
    assert y.shape == x.shape
    assert y.dtype == x.dtype
    assert y.device == x.device


@FAST
@given(shape=nonempty_shapes, dtype=dtypes, p=open_probabilities, seed=seeds)
def test_every_entry_is_zero_or_input_times_one_over_q(shape, dtype, p, seed) -> None:
    x = make_input(shape, dtype, seed)
    y = dropout(x, p)
    kept = y != 0
    assert torch.equal(y[kept], (x * aten_scale(p, dtype))[kept])
    assert torch.all(y[~kept] == 0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p", [0.2, 0.5, 0.75, 1 / 3])
def test_kept_entries_are_scaled_by_exactly_one_over_q(dtype: torch.dtype, p: float) -> None:
    # A deterministic version of the property above, where kept entries surely exist.
    torch.manual_seed(0)
    x = torch.randn(2000, dtype=torch.float64).to(dtype)
    y = dropout(x, p)
    kept = y != 0
    assert 0 < int(kept.sum()) < x.numel()
    assert torch.equal(y[kept], (x * aten_scale(p, dtype))[kept])
    if dtype == torch.float64:
        assert torch.allclose(y[kept], x[kept] / (1 - p), rtol=1e-15, atol=0)


@FAST
@given(shape=shapes, dtype=dtypes, p=probabilities, seed=seeds, inplace=st.booleans())
def test_evaluation_mode_returns_the_input_itself(shape, dtype, p, seed, inplace) -> None:
    x = make_input(shape, dtype, seed)
    before = x.clone()
    assert dropout(x, p, training=False, inplace=inplace) is x
    assert torch.equal(x, before)


@FAST
@given(shape=shapes, dtype=dtypes, seed=seeds, inplace=st.booleans())
def test_p_zero_returns_the_input_itself(shape, dtype, seed, inplace) -> None:
    x = make_input(shape, dtype, seed)
    before = x.clone()
    assert dropout(x, 0.0, inplace=inplace) is x
    assert dropout(x, 0, inplace=inplace) is x
    assert torch.equal(x, before)


@FAST
@given(shape=shapes, dtype=dtypes, seed=seeds)
def test_p_one_gives_zeros(shape, dtype, seed) -> None:
    x = make_input(shape, dtype, seed)
    before = x.clone()
    y = dropout(x, 1.0)
    assert torch.equal(y, torch.zeros_like(x))
    assert torch.equal(x, before)
    y_inplace = dropout(x, 1.0, inplace=True)
    assert y_inplace is x
    assert torch.equal(x, torch.zeros_like(x))


@pytest.mark.parametrize("p", [0.0, 0.5, 1.0])
def test_empty_input_is_returned_as_is(p: float) -> None:
    x = torch.empty(0, 3)
    assert dropout(x, p) is x


@FAST
@given(shape=shapes, dtype=dtypes, p=probabilities, seed=seeds, inplace=st.booleans())
def test_exactly_equal_to_torch_for_the_same_seed(shape, dtype, p, seed, inplace) -> None:
    x = make_input(shape, dtype, seed)
    torch.manual_seed(seed)
    expected = F.dropout(x.clone(), p, training=True, inplace=inplace)
    torch.manual_seed(seed)
    actual = dropout(x.clone(), p, training=True, inplace=inplace)
    assert torch.equal(actual, expected)


@pytest.mark.parametrize("inplace", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p", [0.1, 0.25, 0.5, 0.8, 0.9, 1 / 3, 0.999])
def test_exactly_equal_to_torch_on_a_large_tensor(dtype, p: float, inplace: bool) -> None:
    x = make_input((64, 129), dtype, seed=1)  # odd sizes exercise the vectorised loops' tails
    for seed in (0, 1, 12345):
        torch.manual_seed(seed)
        expected = F.dropout(x.clone(), p, inplace=inplace)
        after_expected = torch.rand(4)
        torch.manual_seed(seed)
        actual = dropout(x.clone(), p, inplace=inplace)
        after_actual = torch.rand(4)
        assert torch.equal(actual, expected), (dtype, p, seed)
        assert torch.equal(after_actual, after_expected), "the RNG must advance as torch's does"


@FAST
@given(shape=shapes, dtype=dtypes, p=probabilities, seed=seeds)
def test_inplace_modifies_and_returns_the_input(shape, dtype, p, seed) -> None:
    x = make_input(shape, dtype, seed)
    torch.manual_seed(seed)
    expected = dropout(x.clone(), p)
    torch.manual_seed(seed)
    y = dropout(x, p, inplace=True)
    assert y is x
    assert torch.equal(x, expected)


@FAST
@given(shape=shapes, dtype=dtypes, p=probabilities, seed=seeds, training=st.booleans())
def test_non_inplace_never_changes_the_input(shape, dtype, p, seed, training) -> None:
    x = make_input(shape, dtype, seed)
    before = x.clone()
    y = dropout(x, p, training=training)
    assert torch.equal(x, before)
    if training and 0 < p and x.numel() > 0:
        assert y is not x


@FAST
@given(shape=shapes, dtype=dtypes, p=probabilities, seed=seeds)
def test_generator_gives_the_same_masks_as_the_seeded_global_rng(shape, dtype, p, seed) -> None:
    x = make_input(shape, dtype, seed)
    torch.manual_seed(seed)
    expected = dropout(x, p)
    torch.manual_seed(seed + 1)
    state = torch.get_rng_state()
    actual = dropout(x, p, generator=torch.Generator().manual_seed(seed))
    assert torch.equal(actual, expected)
    assert torch.equal(torch.get_rng_state(), state), "a generator must leave the global RNG alone"


def test_outputs_are_non_contiguous_safe() -> None:
    x = torch.randn(6, 4).t()  # a non-contiguous view
    torch.manual_seed(3)
    expected = F.dropout(x, 0.5)
    torch.manual_seed(3)
    assert torch.equal(dropout(x, 0.5), expected)


# --- masks ----------------------------------------------------------------------------------


@FAST
@given(shape=shapes, dtype=dtypes, p=open_probabilities, seed=seeds)
def test_masks(shape, dtype, p, seed) -> None:
    x = make_input(shape, dtype, seed)
    torch.manual_seed(seed)
    m = keep_mask(x, p)
    torch.manual_seed(seed)
    s = dropout_mask(x, p)
    assert m.shape == s.shape == x.shape and m.dtype == s.dtype == dtype
    assert torch.all((m == 0) | (m == 1))
    assert torch.equal(s, torch.where(m == 1, aten_scale(p, dtype), 0.0).to(dtype))
    torch.manual_seed(seed)
    assert torch.equal(dropout(x, p), x * s)


def test_dropout_mask_refuses_p_one() -> None:
    with pytest.raises(ValueError, match=r"p < 1.*got p=1.0"):
        dropout_mask(torch.ones(3), 1.0)


# --- statistics (deterministic seeds; tolerances are 5 binomial standard deviations) ----------

N = 200_000


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p", [0.05, 0.2, 0.5, 0.8, 0.95])
def test_fraction_zeroed_is_p(dtype: torch.dtype, p: float) -> None:
    torch.manual_seed(0)
    x = torch.ones(N, dtype=dtype)
    zeroed = int((dropout(x, p) == 0).sum())
    sigma = math.sqrt(N * p * (1 - p))
    message = f"{zeroed} zeros, expected {N * p:.0f} ± {5 * sigma:.0f}"
    assert abs(zeroed - N * p) < 5 * sigma, message


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5, 0.7, 0.9])
def test_mean_is_preserved(p: float) -> None:
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(N, dtype=torch.float64, generator=generator) + 2.0
    y = dropout(x, p, generator=generator)
    # y_i = m_i x_i / q has mean x_i and variance x_i^2 p / q.
    sigma = math.sqrt(float((x**2).sum()) * p / (1 - p)) / N
    assert abs(float(y.mean()) - float(x.mean())) < 5 * sigma


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_keep_mask_and_standard_dropout_statistics(p: float) -> None:
    torch.manual_seed(2)
    q = 1 - p
    m = keep_mask(torch.empty(N, dtype=torch.float64), p)
    assert abs(float(m.mean()) - q) < 5 * math.sqrt(p * q / N)
    x = torch.full((N,), 3.0, dtype=torch.float64)
    y = standard_dropout(x, p)
    assert abs(float(y.mean()) - 3.0 * q) < 5 * 3.0 * math.sqrt(p * q / N)


# --- standard dropout and the weight-scaling rule ------------------------------------------


@FAST
@given(shape=shapes, dtype=dtypes, p=probabilities, seed=seeds)
def test_standard_dropout(shape, dtype, p, seed) -> None:
    x = make_input(shape, dtype, seed)
    before = x.clone()
    y = standard_dropout(x, p)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert torch.all((y == 0) | (y == x)), "training: kept units are not rescaled"
    assert torch.equal(standard_dropout(x, p, training=False), x * (1 - p))
    torch.manual_seed(seed)
    y = standard_dropout(x, p)
    torch.manual_seed(seed)
    assert torch.equal(y, x * keep_mask(x, p))
    assert torch.equal(x, before)


def test_scale_weights_for_inference() -> None:
    weight = torch.randn(3, 5)
    before = weight.clone()
    scaled = scale_weights_for_inference(weight, 0.25)
    assert torch.equal(scaled, 0.75 * before)
    assert torch.equal(weight, before) and scaled is not weight


@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
def test_three_rules_give_the_same_expected_linear_output(p: float) -> None:
    """Standard dropout (train) ≈ weight scaling (eval) = inverted dropout with q W."""
    q = 1 - p
    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(3, 8, dtype=torch.float64, generator=generator)
    x = torch.randn(8, dtype=torch.float64, generator=generator)
    n_masks = 20_000
    batch = x.expand(n_masks, 8)

    torch.manual_seed(1)
    standard_train = standard_dropout(batch, p) @ weight.T  # one mask per row
    torch.manual_seed(1)
    inverted_train = dropout(batch, p) @ (q * weight).T  # same masks

    weight_scaled_eval = standard_dropout(x, p, training=False) @ weight.T
    assert torch.allclose(weight_scaled_eval, x @ scale_weights_for_inference(weight, p).T)
    assert torch.allclose(dropout(x, p, training=False) @ (q * weight).T, weight_scaled_eval)

    # Mask by mask, standard dropout with W is inverted dropout with qW.
    assert torch.allclose(standard_train, inverted_train, rtol=1e-12, atol=1e-12)
    # Averaged over masks, both match the deterministic weight-scaled layer.
    sigma = torch.sqrt((weight**2 * x**2).sum(dim=1) * p * q / n_masks)  # per output unit
    for train in (standard_train, inverted_train):
        assert torch.all((train.mean(dim=0) - weight_scaled_eval).abs() < 5 * sigma)
    # And not the unscaled layer (the reason the rule exists).
    assert torch.all((standard_train.mean(dim=0) - x @ weight.T).abs() > 5 * sigma)
