"""Chapter 11's claims, re-checked for five seeds through the code the chapter calls.

Each seed fixes the digits' training/test split, the initial weights, the minibatch order and every
dropout mask of the experiments in ``dropoutlib.experiments.bugs``. Every claim the chapter asserts for seed 0
is checked here for each seed, with the chapter's thresholds.
"""

from __future__ import annotations

import functools

import pytest

from dropoutlib.experiments.bugs import (
    keep_prob_effect,
    mc_batchnorm_effect,
    mode_bug_effect,
    output_dropout_effect,
    reused_mask_effect,
)

SEEDS = [0, 1, 2, 3, 4]
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]


@functools.cache
def reused(seed):
    return reused_mask_effect(seed)


@pytest.mark.parametrize("seed", SEEDS)
def test_dropout_left_on_costs_accuracy_and_makes_predictions_random(seed):
    r = mode_bug_effect(seed)
    assert r.forgotten_eval_accuracies.max() < r.eval_accuracy
    assert r.functional_accuracies.max() < r.eval_accuracy
    assert r.flip_fraction > 0.01


@pytest.mark.parametrize("seed", SEEDS)
def test_masks_reused_across_steps_are_memorized_and_cost_test_accuracy(seed):
    runs = reused(seed)
    fresh, steps, plain = runs["fresh"], runs["steps"], runs["no dropout"]
    assert steps.objective < fresh.objective / 10
    assert steps.objective < plain.objective
    assert steps.fresh_loss > 5 * fresh.fresh_loss
    assert steps.test_acc < fresh.test_acc
    assert steps.test_acc < plain.test_acc


@pytest.mark.parametrize("seed", SEEDS)
def test_a_key_shared_by_layers_costs_little_accuracy_but_robustness(seed):
    runs = reused(seed)
    fresh, layers = runs["fresh"], runs["layers"]
    assert abs(layers.test_acc - fresh.test_acc) < 0.01
    assert layers.fresh_loss > 1.2 * fresh.fresh_loss


@pytest.mark.parametrize("seed", SEEDS)
def test_keep_probability_passed_as_p_costs_more_than_a_point(seed):
    r = keep_prob_effect(seed)
    assert r.used.final()["test_acc"] < r.intended.final()["test_acc"] - 0.01


@pytest.mark.parametrize("seed", SEEDS)
def test_output_dropout_shrinks_regression_predictions_by_q(seed):
    r = output_dropout_effect(seed)
    assert abs(r.buggy_shrinkage / r.correct_shrinkage - (1 - r.p)) < 0.05
    assert r.buggy.final()["test_loss"] > r.correct.final()["test_loss"]
    assert r.buggy.final()["objective"] > 3 * r.correct.final()["objective"]


@pytest.mark.parametrize("seed", SEEDS)
def test_naive_mc_dropout_depends_on_the_batch_and_corrupts_batchnorm(seed):
    r = mc_batchnorm_effect(seed)
    assert r.naive_grouped < 0.5 < r.careful_grouped
    assert r.careful_changed < 0.03 < r.naive_changed
    assert r.accuracy_after_request < r.eval_accuracy - 0.03
