"""Chapter 4's statistical claims, re-checked for five seeds through the claims functions the chapter calls.

The thresholds live in :mod:`dropoutlib.experiments.ensemble` only. The networks of one seed are trained
and enumerated once, their claims computed (cached) and shared by the tests of that seed; the
sub-network tables themselves are not kept (ten of them would fill memory).
"""

from __future__ import annotations

import copy
import functools

import numpy as np
import pytest
import torch

from dropoutlib import course
from dropoutlib.course.claims import Claim, check
from dropoutlib.experiments.ensemble import (
    Z_ONE_BOUND_OVER_SEEDS,
    averaging_claims,
    compare_predictions,
    confidence_claims,
    deep_network_claims,
    ensemble_over_seeds,
    enumerate_subnetworks,
    error_rate,
    expected_over_masks,
    fast_dropout_claims,
    fast_dropout_relu,
    jensen_claims,
    less_dropout_claims,
    mask_probabilities,
    monte_carlo_claims,
    monte_carlo_errors,
    noise_claims,
    over_seeds_claims,
    repaired_weights_claims,
    scores_claims,
    scores_table,
    sigmoid_claims,
    sigmoid_unit_averages,
    subnetwork_claims,
    train_net,
)

SEEDS = [0, 1, 2, 3, 4]
KS = (1, 2, 3, 5, 10, 20, 30, 50, 100, 200, 500, 1000)  # as in the chapter
REPEATS = 50
P = 0.5
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]


@functools.cache
def _data():
    return course.load_digits()


def _measure(model, seed: int):
    """What the chapter measures on one network: its table's comparison, Monte Carlo curve, claims."""
    data = _data()
    y = data.y_test
    table = enumerate_subnetworks(model, data.x_test)
    comparison = compare_predictions(table, y)
    curve = monte_carlo_errors(table, y, KS, REPEATS, torch.Generator().manual_seed(seed))
    errors, kept = table.subnetwork_errors(y), table.masks.sum(dim=1)
    by_k = np.array([errors[kept == k].mean().item() for k in range(table.n_units + 1)])
    rows = torch.arange(len(y))
    confidence_am = table.arithmetic_mean.max(dim=1).values.mean().item()
    confidence_ws = table.weight_scaling.max(dim=1).values.mean().item()
    ws_above = (table.weight_scaling[rows, y] > table.arithmetic_mean[rows, y]).double().mean().item()
    repaired = mask_probabilities(table.masks, 1 / (2 - P))  # exercise 3
    repaired_mean = (repaired[:, None, None] * table.probs.double()).sum(dim=0)
    repaired_error = (repaired_mean.argmax(dim=1) != y).double().mean().item()
    claims = {
        "subnetworks": subnetwork_claims(table, by_k),
        "averaging": averaging_claims(comparison),
        "confidence": confidence_claims(confidence_am, confidence_ws, ws_above),
        "repaired": repaired_weights_claims(repaired_error, comparison),
        "scores": scores_claims(scores_table(table, y)),
    }
    return comparison, curve, claims, table


@functools.cache
def _seed(seed: int) -> dict[str, list[Claim]]:
    """Every claim of the chapter for one seed (both networks, the Jensen measurements, exercise 5)."""
    data = _data()
    shallow, shallow_history = train_net("shallow", seed, data=data)
    deep, deep_history = train_net("deep", seed, data=data)
    c_shallow, curve_shallow, claims, shallow_table = _measure(shallow, seed)
    c_deep, curve_deep, deep_claims, deep_table = _measure(deep, seed)
    claims["scores"] += deep_claims["scores"]
    claims["noise"] = noise_claims(shallow_table, deep_table, data.y_test)
    del shallow_table
    deep64 = copy.deepcopy(deep).double()
    with torch.no_grad():
        h = deep64[:2](data.x_test.double())
        relu_ensemble = expected_over_masks(deep64[3:5], h, P)
        relu_scaling = deep64[3:5](h)
        logits_ensemble = deep64[5](relu_ensemble)
    gm_check = (deep_table.geometric_mean - torch.softmax(logits_ensemble, dim=1)).abs().max().item()
    del deep_table
    light, _ = train_net("deep", seed, p=0.2, data=data)
    light_table = enumerate_subnetworks(light, data.x_test, dtype=torch.float32)  # precision not at stake
    claims["jensen"] = jensen_claims(relu_ensemble, relu_scaling, gm_check)
    claims["deep"] = deep_network_claims(c_deep, deep_history.test_acc[-1], shallow_history.test_acc[-1])
    claims["monte_carlo"] = monte_carlo_claims(
        {"shallow": curve_shallow, "deep": curve_deep},
        {"shallow": c_shallow, "deep": c_deep},
        z_bound=Z_ONE_BOUND_OVER_SEEDS,
    )
    claims["light"] = less_dropout_claims(compare_predictions(light_table, data.y_test), c_deep)
    return claims


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(
    "section",
    [
        "subnetworks",
        "averaging",
        "confidence",
        "jensen",
        "deep",
        "monte_carlo",
        "repaired",
        "light",
        "scores",
        "noise",
    ],
)
def test_chapter_claims_hold(seed, section):
    """Each section's claims (and exercises 3 and 5's) hold for every seed, as the chapter checks them."""
    check(_seed(seed)[section])


def test_over_seeds_claims_hold():
    """The chapter's five-seed comparison of the exact ensemble with weight scaling (one network)."""
    check(over_seeds_claims(ensemble_over_seeds(SEEDS, kinds=("shallow",), data=_data())))


@pytest.mark.parametrize("seed", SEEDS)
def test_sigmoid_units_and_fast_dropout(seed):
    """Baldi and Sadowski's identity and bounds, and fast dropout against the exact ensemble, per seed."""
    data = _data()
    shallow, _ = train_net("shallow", seed, data=data)
    shallow = copy.deepcopy(shallow).double()
    deep, _ = train_net("deep", seed, data=data)
    deep = copy.deepcopy(deep).double()
    with torch.no_grad():
        units = sigmoid_unit_averages(shallow[:2](data.x_test.double()), shallow[3], P)
        h = deep[:2](data.x_test.double())
        relu_ensemble = expected_over_masks(deep[3:5], h, P)
        relu_scaling = deep[3:5](h)
        relu_fast = fast_dropout_relu(deep[3], h, P)
        errors = [error_rate(torch.softmax(deep[5](a), dim=1), data.y_test)
                  for a in (relu_fast, relu_scaling, relu_ensemble)]
    check(sigmoid_claims(units) + fast_dropout_claims(relu_fast, relu_ensemble, relu_scaling, *errors))
