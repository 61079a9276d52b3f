"""Chapter 2's statistical claims, re-checked for five seeds through the claims functions the chapter calls.

Each test measures what the chapter measures, with another seed, and checks it with the chapter's claims
function; every threshold lives in ``dropoutlib.experiments.from_scratch``, this file writes none.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import dropoutlib
from dropoutlib import DropoutFunction, dropout, dropout_mask, keep_mask, numpy_ref
from dropoutlib.course.claims import check
from dropoutlib.experiments.from_scratch import (
    backward_claims,
    bitwise_claims,
    dropped_unit_gradients,
    forward_claims,
    gradcheck_claims,
    gradcheck_dropout,
    gradient_claims,
    hand_loop_claims,
    mask_claims,
    rounding_claims,
    train_by_hand,
    zero_column_claims,
    zero_gradient_column_frequency,
)

SEEDS = [0, 1, 2, 3, 4]
pytestmark = pytest.mark.slow


@pytest.mark.parametrize("seed", SEEDS)
def test_the_fraction_dropped_is_p_per_layer_and_per_example(seed):
    generator = torch.Generator().manual_seed(seed)
    n = 100_000
    fractions = {p: 1 - keep_mask(torch.empty(n), p, generator=generator).mean().item()
                 for p in (0.1, 0.3, 0.5, 0.8)}
    p, units, examples = 0.3, 64, 5_000
    dropped = (keep_mask(torch.empty(examples, units), p, generator=generator) == 0).sum(dim=1)
    check(mask_claims(fractions, n, dropped, units, p))


@pytest.mark.parametrize("seed", SEEDS)
def test_inverted_dropout_scales_the_kept_values_and_preserves_the_mean(seed):
    generator = torch.Generator().manual_seed(seed)
    x = torch.arange(1.0, 9.0)
    y = dropout(x, p=0.5, generator=generator)
    out = dropout(torch.ones(100_000), 0.3, generator=generator)
    check(forward_claims(x, y, dropout(x, p=0.5, training=False), 0.5, out, 0.3))


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
    analytic = numpy_ref.dropout_backward(g, mask)
    error = numpy_ref.relative_error(analytic, numeric)
    check(backward_claims(error, numpy_ref.relative_error(g * (mask != 0), numeric), analytic, mask))


@pytest.mark.parametrize("seed", SEEDS)
def test_dropoutlib_is_pytorch_bit_for_bit(seed):
    generator = torch.Generator().manual_seed(seed)
    x64 = torch.randn(6, 5, dtype=torch.float64, requires_grad=True, generator=generator)
    mask = dropout_mask(x64.detach(), p=0.4, generator=generator)
    passed = torch.autograd.gradcheck(DropoutFunction.apply, (x64, mask), eps=1e-6, atol=1e-8)
    x = torch.randn(512, 64, generator=generator)
    upstream = torch.randn(512, 64, generator=generator)
    rows = []
    for p in (0.1, 0.3, 0.5, 0.8):
        x_ours, x_torch = x.clone().requires_grad_(), x.clone().requires_grad_()
        torch.manual_seed(seed)
        ours = dropout(x_ours, p)
        torch.manual_seed(seed)
        theirs = F.dropout(x_torch, p)
        ours.backward(upstream)
        theirs.backward(upstream)
        rows.append({"p": p, "outputs equal": torch.equal(ours, theirs),
                     "gradients equal": torch.equal(x_ours.grad, x_torch.grad)})
    layer_ours, layer_torch = dropoutlib.Dropout(p=0.3), nn.Dropout(p=0.3)
    torch.manual_seed(seed)
    a = layer_ours(x)
    torch.manual_seed(seed)
    layers_equal = torch.equal(a, layer_torch(x))
    layer_ours.eval(), layer_torch.eval()
    eval_identity = torch.equal(layer_ours(x), x) and torch.equal(layer_torch(x), x)
    check(bitwise_claims(passed, rows, layers_equal, eval_identity))


@pytest.mark.parametrize("seed", SEEDS)
def test_rounding_and_the_random_stream_break_bitwise_equality_only(seed):
    p, n = 0.3, 100_000
    x = torch.randn(n, generator=torch.Generator().manual_seed(seed))
    torch.manual_seed(seed)
    reference = F.dropout(x, p)
    torch.manual_seed(seed)
    reordered = x * torch.empty_like(x).bernoulli_(1 - p) / (1 - p)
    torch.manual_seed(seed)
    uniform_mask = torch.rand_like(x) >= p
    check(rounding_claims(reordered, reference, uniform_mask, p))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_dropped_units_get_exactly_zero_gradient_per_example(seed, activation):
    r = dropped_unit_gradients(seed=seed, p=0.5, batch_size=4, hidden=32, activation=activation)
    check(gradient_claims(r, activation))


@pytest.mark.parametrize("seed", SEEDS)
def test_zero_gradient_columns_occur_with_probability_p_to_the_b(seed):
    p = 0.5
    measured = {b: zero_gradient_column_frequency(p, b, seed=seed, n_batches=2000) for b in (1, 2, 4, 8, 12)}
    check(zero_column_claims(measured, p))


@pytest.mark.parametrize("seed", SEEDS)
def test_gradcheck_accepts_dropout_and_rejects_a_backward_without_the_mask(seed):
    assert gradcheck_dropout(seed=seed), "gradcheck should pass for DropoutFunction"
    check(gradcheck_claims(gradcheck_dropout(broken=True, seed=seed)))


@pytest.fixture(scope="module")
def digits():
    from dropoutlib.course.data import load_digits

    return load_digits()


@pytest.mark.parametrize("seed", SEEDS)
def test_the_hand_written_loop_trains_the_network(seed, digits):
    _, losses, accuracy = train_by_hand(digits, seed=seed)
    check(hand_loop_claims(losses, accuracy, digits.n_test))
