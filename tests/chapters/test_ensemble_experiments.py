"""Unit tests of experiments.ensemble: masks, their probabilities, exact averages, Monte Carlo curves."""

from __future__ import annotations

import itertools
import math

import matplotlib
import numpy as np
import pytest
import torch
from torch import nn

import dropoutlib
from dropoutlib import course
from dropoutlib.experiments.ensemble import (
    KINDS,
    MAX_UNITS,
    MonteCarloCurve,
    SubnetworkTable,
    all_masks,
    build_net,
    compare_predictions,
    enumerate_subnetworks,
    error_rate,
    expected_over_masks,
    mask_probabilities,
    monte_carlo_errors,
    normalized_geometric_mean,
    plot_monte_carlo,
    prediction_distance,
    split_at_dropout,
    train_net,
)

matplotlib.use("Agg")


def _tiny(p=0.3, kind=nn.Dropout, deep=False, seed=0):
    torch.manual_seed(seed)
    layers = [nn.Linear(5, 4), nn.Tanh(), kind(p)]
    layers += [nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3)] if deep else [nn.Linear(4, 3)]
    return nn.Sequential(*layers), torch.randn(9, 5)


def _brute_force(model, x):
    """Every sub-network, one mask at a time, through a dropout layer that applies that mask."""
    before, after, p, inverted = split_at_dropout(model)
    model = model.double().eval()
    with torch.no_grad():
        h = before(x.double())
        n = h.shape[1]
        q = 1 - p
        outs, weights = [], []
        for bits in itertools.product([0.0, 1.0], repeat=n):
            m = torch.tensor(bits[::-1], dtype=torch.float64)  # any order: we sort by weight below
            outs.append(torch.softmax(after(m * h / q if inverted else m * h), dim=-1))
            weights.append(q ** m.sum().item() * p ** (n - m.sum().item()))
    return torch.stack(outs), torch.tensor(weights, dtype=torch.float64)


# --- masks and their probabilities -----------------------------------------------------------------


def test_all_masks_are_every_binary_vector_in_binary_order():
    masks = all_masks(4)
    assert masks.shape == (16, 4) and masks.dtype == torch.float64
    assert len({tuple(row.tolist()) for row in masks}) == 16
    index = (masks * 2 ** torch.arange(4)).sum(dim=1)
    assert torch.equal(index, torch.arange(16, dtype=torch.float64))


@pytest.mark.parametrize("n", [0, -1, MAX_UNITS + 1])
def test_all_masks_rejects_bad_sizes(n):
    with pytest.raises(ValueError, match="n must"):
        all_masks(n)


def test_all_masks_rejects_non_integers():
    with pytest.raises(TypeError):
        all_masks(3.0)


@pytest.mark.parametrize("p", [0.0, 0.1, 0.5, 0.8, 1.0])
def test_mask_probabilities_sum_to_one_and_follow_the_formula(p):
    masks = all_masks(6)
    probs = mask_probabilities(masks, p)
    assert math.isclose(probs.sum().item(), 1.0, abs_tol=1e-12)
    kept = masks.sum(dim=1)
    assert torch.allclose(probs, (1 - p) ** kept * p ** (6 - kept))


def test_mask_probabilities_match_the_frequency_of_dropout_masks():
    torch.manual_seed(0)
    draws = 40_000
    kept = (torch.nn.functional.dropout(torch.ones(draws, 3), 0.3) != 0).double()
    index = (kept * 2 ** torch.arange(3)).sum(dim=1).long()
    frequency = torch.bincount(index, minlength=8).double() / draws
    want = mask_probabilities(all_masks(3), 0.3)
    assert torch.allclose(frequency, want, atol=4 * math.sqrt(0.25 / draws))


def test_mask_probabilities_validate_their_arguments():
    with pytest.raises(ValueError, match="0s"):
        mask_probabilities(torch.tensor([[0.5, 1.0]]), 0.3)
    with pytest.raises(ValueError, match="shape"):
        mask_probabilities(torch.ones(3), 0.3)
    with pytest.raises(TypeError):
        mask_probabilities([[0, 1]], 0.3)
    with pytest.raises(ValueError, match="p must be"):
        mask_probabilities(all_masks(2), 1.5)


# --- cutting a network at its dropout layer -------------------------------------------------------


def test_split_at_dropout_recomposes_the_model():
    model, x = _tiny()
    before, after, p, inverted = split_at_dropout(model)
    model.eval()
    assert (p, inverted) == (0.3, True)
    assert torch.equal(after(before(x)), model(x))


def test_split_at_dropout_handles_input_dropout_and_standard_dropout():
    before, after, p, inverted = split_at_dropout(course.mlp(4, [], 3, input_p=0.2))
    assert len(before) == 0 and len(after) == 1 and p == 0.2 and inverted
    *_, inverted = split_at_dropout(nn.Sequential(nn.Linear(3, 3), dropoutlib.StandardDropout(0.4)))
    assert not inverted


@pytest.mark.parametrize(
    "model",
    [
        course.mlp(4, [3, 3], 2, p=0.5),  # two dropout layers
        course.mlp(4, [3], 2),  # none
        nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.0)),  # p = 0 is not dropout
    ],
)
def test_split_at_dropout_needs_exactly_one_active_dropout_layer(model):
    with pytest.raises(ValueError, match="exactly one dropout layer"):
        split_at_dropout(model)


def test_split_at_dropout_rejects_p_one_and_non_sequential_models():
    with pytest.raises(ValueError, match="p=1"):
        split_at_dropout(nn.Sequential(nn.Linear(2, 2), nn.Dropout(1.0)))
    with pytest.raises(TypeError, match="Sequential"):
        split_at_dropout(nn.Linear(2, 2))


# --- exact averages --------------------------------------------------------------------------------


@pytest.mark.parametrize("deep", [False, True])
@pytest.mark.parametrize("kind", [nn.Dropout, dropoutlib.Dropout, dropoutlib.StandardDropout])
def test_enumeration_matches_a_brute_force_loop(kind, deep):
    model, x = _tiny(0.3, kind, deep)
    table = enumerate_subnetworks(model, x)
    outs, weights = _brute_force(model, x)
    assert table.n_masks == 16 and table.n_units == 4
    assert torch.allclose(table.arithmetic_mean, (weights[:, None, None] * outs).sum(dim=0))
    log_mean = (weights[:, None, None] * outs.log()).sum(dim=0)
    assert torch.allclose(table.geometric_mean, torch.softmax(log_mean, dim=-1))
    model.eval()
    assert torch.allclose(table.weight_scaling, torch.softmax(model.double()(x.double()), -1))


def test_enumeration_leaves_the_model_alone():
    model, x = _tiny()
    model.train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    enumerate_subnetworks(model, x)
    assert model.training and next(model.parameters()).dtype == torch.float32
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())


def test_table_rows_follow_all_masks_order():
    model, x = _tiny()
    table = enumerate_subnetworks(model, x)
    before, after, p, _ = split_at_dropout(model.double().eval())
    with torch.no_grad():
        h = before(x.double())
        row = 11
        want = torch.softmax(after(table.masks[row] * h / (1 - p)), dim=-1)
    assert torch.allclose(table.probs[row].double(), want, atol=1e-6)


@pytest.mark.parametrize("kind", [nn.Dropout, dropoutlib.StandardDropout])
def test_weight_scaling_is_the_geometric_mean_when_dropout_feeds_the_output_layer(kind):
    model, x = _tiny(0.6, kind)
    table = enumerate_subnetworks(model, x)
    assert (table.geometric_mean - table.weight_scaling).abs().max() < 1e-13
    assert (table.arithmetic_mean - table.weight_scaling).abs().max() > 1e-3


def test_softmax_regression_with_input_dropout():
    model = course.mlp(7, [], 4, input_p=0.35)
    x = torch.randn(11, 7)
    table = enumerate_subnetworks(model, x)
    assert table.n_masks == 2**7
    assert (table.geometric_mean - table.weight_scaling).abs().max() < 1e-13


def test_a_layer_after_the_dropout_breaks_the_equality():
    model, x = _tiny(0.5, deep=True)
    with torch.no_grad():  # make the ReLU layer bite: large weights, biases around zero
        model[3].weight.mul_(4)
    table = enumerate_subnetworks(model, x)
    assert (table.geometric_mean - table.weight_scaling).abs().max() > 1e-3


def test_float32_enumeration_agrees_with_float64():
    model, x = _tiny(deep=True)
    t64, t32 = enumerate_subnetworks(model, x), enumerate_subnetworks(model, x, dtype=torch.float32)
    assert t32.arithmetic_mean.dtype == torch.float32
    assert torch.allclose(t32.arithmetic_mean.double(), t64.arithmetic_mean, atol=1e-5)


def test_enumerate_validates_its_arguments():
    model, x = _tiny()
    with pytest.raises(ValueError, match="dtype"):
        enumerate_subnetworks(model, x, dtype=torch.float16)
    with pytest.raises(TypeError, match="floating"):
        enumerate_subnetworks(model, x.long())
    with pytest.raises(ValueError, match="chunk_size"):
        enumerate_subnetworks(model, x, chunk_size=0)


def test_chunk_size_does_not_change_the_result():
    model, x = _tiny(deep=True)
    a, b = enumerate_subnetworks(model, x, chunk_size=3), enumerate_subnetworks(model, x, chunk_size=1000)
    assert torch.allclose(a.arithmetic_mean, b.arithmetic_mean, atol=1e-14)
    assert torch.equal(a.probs, b.probs)


def test_expected_over_masks_linear_and_convex():
    h = torch.randn(5, 6, dtype=torch.float64)
    w = torch.randn(6, 3, dtype=torch.float64)
    assert torch.allclose(expected_over_masks(lambda a: a @ w, h, 0.4), h @ w)
    relu = expected_over_masks(lambda a: (a @ w).relu(), h, 0.4)
    assert bool((relu >= (h @ w).relu() - 1e-12).all())
    unscaled = expected_over_masks(lambda a: a @ w, h, 0.4, inverted=False)
    assert torch.allclose(unscaled, 0.6 * h @ w)


def test_expected_over_masks_validates():
    h = torch.randn(2, 3)
    with pytest.raises(TypeError, match="callable"):
        expected_over_masks(3, h, 0.5)
    with pytest.raises(ValueError, match="shape"):
        expected_over_masks(lambda a: a, torch.randn(3), 0.5)
    with pytest.raises(ValueError, match="below 1"):
        expected_over_masks(lambda a: a, h, 1.0)


# --- geometric mean, errors, distances -------------------------------------------------------------


def test_normalized_geometric_mean_of_softmaxes_is_the_softmax_of_the_mean_logits():
    logits = torch.randn(6, 4, 5, dtype=torch.float64)
    weights = torch.rand(6, dtype=torch.float64)
    weights /= weights.sum()
    got = normalized_geometric_mean(logits.log_softmax(-1), weights)
    want = torch.softmax((weights[:, None, None] * logits).sum(0), -1)
    assert torch.allclose(got, want)
    assert torch.allclose(got.sum(-1), torch.ones(4, dtype=torch.float64))


def test_normalized_geometric_mean_validates():
    with pytest.raises(ValueError, match="shape"):
        normalized_geometric_mean(torch.zeros(3, 2), torch.ones(2))
    with pytest.raises(ValueError, match="nonnegative"):
        normalized_geometric_mean(torch.zeros(2, 2), torch.tensor([1.0, -1.0]))


def test_error_rate_and_distance():
    probs = torch.tensor([[0.9, 0.1], [0.3, 0.7]])
    assert error_rate(probs, torch.tensor([0, 0])) == 0.5
    with pytest.raises(ValueError, match="one label per row"):
        error_rate(probs, torch.tensor([0]))
    d = prediction_distance(probs, probs)
    assert (d.max_abs, d.mean_tv, d.disagreement) == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="shape"):
        prediction_distance(probs, probs[0])


def test_compare_predictions():
    model, x = _tiny(0.5)
    table = enumerate_subnetworks(model, x)
    y = table.weight_scaling.argmax(dim=1)
    c = compare_predictions(table, y)
    assert c.scaling_error == 0.0 and c.geometric_error == 0.0
    errors = table.subnetwork_errors(y)
    assert math.isclose(c.subnetwork_error, float((table.probabilities * errors).sum()))
    assert c.geometric_vs_scaling.max_abs < 1e-13
    with pytest.raises(TypeError, match="SubnetworkTable"):
        compare_predictions("table", y)


# --- Monte Carlo --------------------------------------------------------------------------------


def _table(seed=0):
    model, x = _tiny(0.5, seed=seed)
    return enumerate_subnetworks(model, torch.randn(40, 5))


def test_monte_carlo_converges_to_the_arithmetic_mean():
    table = _table()
    y = table.arithmetic_mean.argmax(dim=1)  # labels the exact ensemble gets all right
    margin = table.arithmetic_mean.topk(2, dim=1).values.diff(dim=1).abs().min()
    assert margin > 1e-3  # no near-ties, so a long Monte Carlo average must agree everywhere
    curve = monte_carlo_errors(table, y, [1, 100, 20_000], 3, torch.Generator().manual_seed(0))
    assert curve.errors.shape == (3, 3)
    assert curve.mean[-1] == 0.0 and curve.mean[0] > 0


def test_monte_carlo_k1_matches_the_expected_subnetwork_error():
    table = _table()
    y = torch.zeros(40, dtype=torch.int64)
    curve = monte_carlo_errors(table, y, [1], 3000, torch.Generator().manual_seed(1))
    want = table.expected_subnetwork_error(y)
    assert abs(curve.mean[0] - want) < 4 * curve.standard_error[0] + 1e-12


def test_monte_carlo_is_deterministic_for_a_generator():
    table, y = _table(), torch.zeros(40, dtype=torch.int64)
    a = monte_carlo_errors(table, y, [1, 5], 4, torch.Generator().manual_seed(3))
    b = monte_carlo_errors(table, y, [1, 5], 4, torch.Generator().manual_seed(3))
    assert np.array_equal(a.errors, b.errors)


@pytest.mark.parametrize(
    ("ks", "repeats", "error"),
    [([5, 1], 3, ValueError), ([], 3, ValueError), ([1, 2], 1, ValueError), ([0, 1], 3, ValueError)],
)
def test_monte_carlo_validates(ks, repeats, error):
    with pytest.raises(error):
        monte_carlo_errors(_table(), torch.zeros(40, dtype=torch.int64), ks, repeats)


def test_meeting_point():
    curve = MonteCarloCurve((1, 10, 100), np.array([[0.30, 0.10, 0.06], [0.20, 0.12, 0.06]]))
    assert curve.meeting_point(0.11) == 10  # mean 0.11 <= 0.11 + se
    assert curve.meeting_point(0.06) == 100
    assert curve.meeting_point(0.01) is None
    assert np.allclose(curve.standard_error, [0.05, 0.01, 0.0])


def test_plot_monte_carlo_draws_lines_and_marker():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    curve = MonteCarloCurve((1, 10, 100), np.array([[0.30, 0.10, 0.06], [0.20, 0.12, 0.06]]))
    plot_monte_carlo(ax, curve, scaling_error=0.07, arithmetic_error=0.06, meeting_point=100)
    assert len(ax.get_legend_handles_labels()[0]) == 4
    plt.close(fig)


# --- the chapter's networks ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_build_net_has_twelve_droppable_units(kind):
    from dropoutlib.experiments.overfitting import count_droppable_units

    model = build_net(kind)
    assert count_droppable_units(model) == 12
    assert model(torch.zeros(2, 64)).shape == (2, 10)


def test_build_net_rejects_unknown_kinds():
    with pytest.raises(ValueError, match="kind"):
        build_net("wide")


def test_train_net_is_deterministic():
    data = course.load_digits()
    a, _ = train_net("shallow", 3, epochs=5, data=data)
    b, _ = train_net("shallow", 3, epochs=5, data=data)
    pairs = zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    assert all(torch.equal(u, v) for u, v in pairs)
    with pytest.raises(TypeError, match="Split"):
        train_net("shallow", data="digits")


def test_subnetwork_table_is_frozen():
    table = _table()
    assert isinstance(table, SubnetworkTable)
    with pytest.raises(AttributeError):
        table.p = 0.1
