"""Chapter 2's statistical claims, re-checked for five seeds through the code the chapter calls.

Each test states the claim as the chapter does and uses the chapter's tolerances.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dropoutlib import dropout, keep_mask, numpy_ref
from dropoutlib.experiments.from_scratch import (
    dropped_unit_gradients,
    zero_gradient_column_frequency,
)

SEEDS = [0, 1, 2, 3, 4]
pytestmark = pytest.mark.slow


@pytest.mark.parametrize("seed", SEEDS)
def test_fraction_dropped_is_p_within_binomial_tolerance(seed):
    generator = torch.Generator().manual_seed(seed)
    n = 100_000
    for p in (0.1, 0.3, 0.5, 0.8):
        fraction = 1 - keep_mask(torch.empty(n), p, generator=generator).mean().item()
        assert abs(fraction - p) < 4 * math.sqrt(p * (1 - p) / n)


@pytest.mark.parametrize("seed", SEEDS)
def test_units_dropped_per_example_average_to_64p(seed):
    generator = torch.Generator().manual_seed(seed)
    p, units, examples = 0.3, 64, 5_000
    dropped = (keep_mask(torch.empty(examples, units), p, generator=generator) == 0).sum(dim=1)
    standard_error = math.sqrt(units * p * (1 - p) / examples)
    assert abs(dropped.float().mean().item() - units * p) < 4 * standard_error


@pytest.mark.parametrize("seed", SEEDS)
def test_inverted_dropout_preserves_the_mean(seed):
    generator = torch.Generator().manual_seed(seed)
    p, n = 0.3, 100_000
    mean_out = dropout(torch.ones(n), p, generator=generator).mean().item()
    assert abs(mean_out - 1) < 4 * math.sqrt(p / (1 - p) / n)


@pytest.mark.parametrize("seed", SEEDS)
def test_numpy_backward_matches_the_numerical_gradient(seed):
    p = 0.4
    x = np.random.default_rng(seed + 100).normal(size=(5, 8))
    g = np.random.default_rng(seed + 200).normal(size=x.shape)

    def loss(values):
        out, _ = numpy_ref.dropout_forward(values, p, np.random.default_rng(seed))
        return float(np.sum(g * out))

    _, mask = numpy_ref.dropout_forward(x, p, np.random.default_rng(seed))
    numeric = numpy_ref.numerical_gradient(loss, x)
    assert numpy_ref.relative_error(numpy_ref.dropout_backward(g, mask), numeric) < 1e-7
    assert numpy_ref.relative_error(g * (mask != 0), numeric) > 0.1


@pytest.mark.parametrize("seed", SEEDS)
def test_same_seed_same_bits_and_rand_mask_has_the_right_distribution_only(seed):
    p, n = 0.3, 100_000
    x = torch.randn(n, generator=torch.Generator().manual_seed(seed))
    torch.manual_seed(seed)
    reference = F.dropout(x, p)
    torch.manual_seed(seed)
    assert torch.equal(dropout(x, p), reference)
    torch.manual_seed(seed)
    reordered = x * torch.empty_like(x).bernoulli_(1 - p) / (1 - p)
    torch.manual_seed(seed)
    uniform_mask = torch.rand_like(x) >= p
    assert torch.equal(reordered == 0, reference == 0)
    assert (reordered != reference).any()
    assert abs((1 - uniform_mask.float().mean().item()) - p) < 4 * math.sqrt(p * (1 - p) / n)
    assert not torch.equal(uniform_mask, reference != 0)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_dropped_units_get_exactly_zero_gradient_per_example(seed, activation):
    r = dropped_unit_gradients(seed=seed, p=0.5, batch_size=4, hidden=32, activation=activation)
    dropped = ~r.kept
    assert (r.out_norm[dropped] == 0).all() and (r.in_norm[dropped] == 0).all()
    assert r.mean_error < 1e-12
    if activation == "tanh":  # kept => every entry nonzero; batch zero <=> dropped everywhere
        assert r.out_nonzero[r.kept].all() and r.in_nonzero[r.kept].all()
        assert torch.equal(r.dropped_everywhere, r.batch_out_norm == 0)
    else:  # some kept units are inactive ReLUs: zero gradient into and out of them
        kept_zero = r.kept & (r.out_norm == 0)
        assert kept_zero.any() and (r.in_norm[kept_zero] == 0).all()


@pytest.mark.parametrize("seed", SEEDS)
def test_zero_gradient_columns_occur_with_probability_p_to_the_b(seed):
    p = 0.5
    for b in (1, 2, 4, 8, 12):
        frequency, trials = zero_gradient_column_frequency(p, b, seed=seed, n_batches=2000)
        expected = p**b
        assert abs(frequency - expected) < 4 * math.sqrt(expected * (1 - expected) / trials)
