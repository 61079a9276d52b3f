"""Chapter 3's statistical claims, re-checked for five seeds through the code the chapter calls.

Each test states the claim as the chapter does and uses the chapter's tolerances.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import dropoutlib
from dropoutlib import course
from dropoutlib.experiments.training_vs_inference import (
    all_ones_unit,
    all_ones_unit_moments,
    forgotten_eval_experiment,
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
    for layer, scaled in ((dropoutlib.StandardDropout, False), (nn.Dropout, True)):
        values = training_outputs(all_ones_unit(n, p, layer), n, n_masks)
        mean, std = all_ones_unit_moments(n, p, scaled=scaled)
        assert abs(values.mean() - mean) < 4 * std / math.sqrt(n_masks)
        assert abs(values.std() / std - 1) < 0.03
        if not scaled:  # the literal "inverse of the dropout rate" gives a q/p-fold input
            assert abs((values / p).mean() / n - (1 - p) / p) < 0.01


@pytest.mark.parametrize("seed", SEEDS)
def test_both_rules_match_their_test_time_output_in_expectation(seed):
    generator = course.seed_everything(seed)
    p = 0.3
    weight = torch.randn(4, 50, generator=generator)
    x = torch.randn(50, generator=generator)
    checks = {
        v: training_vs_test(weight, x, p, variant=v, generator=generator) for v in ("inverted", "standard")
    }
    for variant, check in checks.items():
        assert check.max_abs_z < 4.5, f"{variant}: {check.max_abs_z:.2f} standard errors off"
    wrong_test = (p * weight) @ x  # "multiply the weights by p" with p the drop probability
    ratio = (wrong_test.double().norm() / checks["standard"].train_mean.norm()).item()
    assert abs(ratio - p / (1 - p)) < 0.02


@pytest.mark.parametrize("seed", SEEDS)
def test_ten_thousand_input_unit(seed):
    torch.manual_seed(seed)
    unit = all_ones_unit(10_000, 0.5)
    outputs = training_outputs(unit, 10_000, 1_000)
    mean, std = all_ones_unit_moments(10_000, 0.5)
    assert abs(outputs.mean() - mean) < 4 * std / math.sqrt(1_000)
    assert abs(outputs.std() / std - 1) < 0.1
    assert bool((outputs % 2 == 0).all())
    assert unit.eval()(torch.ones(10_000)).item() == 10_000.0


@pytest.mark.parametrize("seed", SEEDS)
def test_forgetting_eval_lowers_accuracy_and_makes_predictions_unstable(seed):
    result = forgotten_eval_experiment(
        seed=seed, hidden=(256, 256), p=0.5, epochs=40, batch_size=128, n_repeats=20, progress=False
    )
    accs = result.train_mode_accuracies
    assert result.eval_accuracy > accs.mean(), (result.eval_accuracy, accs.mean())
    assert accs.std() > 0 and result.flip_fraction > 0
