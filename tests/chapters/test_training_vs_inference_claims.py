"""Chapter 3's statistical claims, re-checked for five seeds through the claims functions the chapter calls.

Every threshold lives in ``dropoutlib.experiments.training_vs_inference``; this file writes none.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import dropoutlib
from dropoutlib import course
from dropoutlib.course.claims import check
from dropoutlib.experiments.training_vs_inference import (
    all_ones_unit,
    big_unit_claims,
    expectation_claims,
    forgotten_eval_claims,
    forgotten_eval_experiment,
    noise_claims,
    rescale_claims,
    training_outputs,
    training_vs_test,
)

SEEDS = [0, 1, 2, 3, 4]
pytestmark = pytest.mark.slow


@pytest.mark.parametrize("seed", SEEDS)
def test_hundred_input_unit_mean_and_spread(seed):
    """Unscaled: mean n q = 60, std sqrt(n p q); scaled by 1/q: mean 100, std sqrt(n p / q)."""
    n, p, n_masks = 100, 0.4, 20_000
    torch.manual_seed(seed)
    unscaled = training_outputs(all_ones_unit(n, p, dropoutlib.StandardDropout), n, n_masks)
    scaled = training_outputs(all_ones_unit(n, p, nn.Dropout), n, n_masks)
    at_inference = all_ones_unit(n, p).eval()(torch.ones(n)).item()
    check(rescale_claims(unscaled, scaled, at_inference, n, p))


@pytest.mark.parametrize("seed", SEEDS)
def test_both_rules_match_their_test_time_output_in_expectation(seed):
    generator = course.seed_everything(seed)
    p = 0.3
    weight = torch.randn(4, 50, generator=generator)
    x = torch.randn(50, generator=generator)
    checks = {
        v: training_vs_test(weight, x, p, variant=v, generator=generator) for v in ("inverted", "standard")
    }
    wrong_test = (p * weight) @ x  # "multiply the weights by p" with p the drop probability
    ratio = (wrong_test.double().norm() / checks["standard"].train_mean.norm()).item()
    check(expectation_claims(checks, ratio, p))


@pytest.mark.parametrize("seed", SEEDS)
def test_noise_is_multiplicative_with_variance_p_over_q_sum_w2x2(seed):
    generator = course.seed_everything(seed)
    p = 0.3
    weight = torch.randn(4, 50, generator=generator)
    x = torch.randn(50, generator=generator)
    measured = {}
    for scale in (1.0, 2.0, 0.0):
        summary = training_vs_test(weight, scale * x, p, variant="inverted", generator=generator)
        measured[scale] = summary.standard_error * summary.n_masks**0.5
    check(noise_claims(measured, weight, x, p))


@pytest.mark.parametrize("seed", SEEDS)
def test_ten_thousand_input_unit(seed):
    torch.manual_seed(seed)
    unit = all_ones_unit(10_000, 0.5)
    outputs = training_outputs(unit, 10_000, 1_000)
    check(big_unit_claims(outputs, unit.eval()(torch.ones(10_000)).item(), 10_000, 0.5))


@pytest.mark.parametrize("seed", SEEDS)
def test_forgetting_eval_lowers_accuracy_and_makes_predictions_unstable(seed):
    result = forgotten_eval_experiment(
        seed=seed, hidden=(256, 256), p=0.5, epochs=40, batch_size=128, n_repeats=20, progress=False
    )
    check(forgotten_eval_claims(result))
