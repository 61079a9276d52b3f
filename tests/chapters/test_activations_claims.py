"""Chapter 7's claims, re-checked for five seeds through the code the chapter calls.

Each test states a claim as the chapter does and uses the chapter's tolerances. All statistics are in
evaluation mode on the test set unless the test says otherwise; "the second half" is from epoch
EPOCHS // 2 to the end.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from dropoutlib.experiments.activations import (
    EPOCHS,
    ActivationRun,
    P,
    activation_experiment,
    dead_units,
)

SEEDS = [0, 1, 2, 3, 4]
MID = EPOCHS // 2
pytestmark = pytest.mark.slow


@functools.cache
def runs(seed: int) -> tuple[ActivationRun, ActivationRun]:
    return activation_experiment(0.0, seed=seed), activation_experiment(P, seed=seed)


def growth(run: ActivationRun, statistic: str) -> np.ndarray:
    return run.trace[statistic][-1] / run.trace.at(MID, statistic) - 1


def variances(activations) -> np.ndarray:
    return np.array([a.double().var(correction=0).item() for a in activations])


@pytest.mark.parametrize("seed", SEEDS)
def test_both_runs_start_from_the_same_weights(seed):
    base, drop = runs(seed)
    for name in ("active", "mean", "std", "dead"):
        assert np.array_equal(base.trace[name][0], drop.trace[name][0]), name


@pytest.mark.parametrize("seed", SEEDS)
def test_dropout_leaves_fewer_active_units_and_keeps_shedding_them(seed):
    base, drop = runs(seed)
    assert (drop.trace["active"][-1] < base.trace["active"][-1]).all()
    assert (drop.trace["active"][-1] < drop.trace.at(MID, "active")).all()
    assert (np.abs(growth(base, "active")) < 0.02).all()
    assert (drop.trace["active"][:, 1:].max(axis=0) > drop.trace["active"][0, 1:]).all()


@pytest.mark.parametrize("seed", SEEDS)
def test_activations_grow_with_and_without_dropout(seed):
    base, drop = runs(seed)
    assert (growth(base, "mean") > 0).all() and (growth(base, "std") > 0).all()
    assert (growth(drop, "std") > 0).all(), "dropout's spread should not level off"
    assert (growth(drop, "std") > 0.8 * growth(base, "std")).all()
    assert growth(drop, "std")[2] > growth(base, "std")[2]


@pytest.mark.parametrize("seed", SEEDS)
def test_dropout_keeps_activations_smaller(seed):
    base, drop = runs(seed)
    assert (drop.trace["mean"][-1] < base.trace["mean"][-1]).all()
    base_std, drop_std = base.trace["std"][-1], drop.trace["std"][-1]
    assert (drop_std[1:] < base_std[1:]).all()
    assert abs(drop_std[0] / base_std[0] - 1) < 0.05
    base_pos = [a[a > 0].mean().item() for a in base.activations]
    drop_pos = [a[a > 0].mean().item() for a in drop.activations]
    assert (np.array(drop_pos) < np.array(base_pos)).all()


@pytest.mark.parametrize("seed", SEEDS)
def test_dropout_leaves_fewer_dead_units_and_none_in_layer_one(seed):
    base, drop = runs(seed)
    base_dead = [int(dead_units(a).sum()) for a in base.activations]
    drop_dead = [int(dead_units(a).sum()) for a in drop.activations]
    assert sum(drop_dead) < sum(base_dead), (drop_dead, base_dead)
    assert base_dead[0] == 0 and drop_dead[0] == 0


@pytest.mark.parametrize("seed", SEEDS)
def test_variance_is_smaller_in_evaluation_mode_and_larger_in_training_mode(seed):
    base, drop = runs(seed)
    base_eval, drop_eval = variances(base.activations), variances(drop.activations)
    train = variances(drop.train_mode_activations)
    first = drop.activations[0].double()
    predicted = drop_eval[0] + P / (1 - P) * first.pow(2).mean().item()
    assert abs(train[0] / predicted - 1) < 0.05
    assert (train > drop_eval).all() and (train > base_eval).all()
    assert train[0] > 2 * drop_eval[0]
    assert (drop_eval[1:] < base_eval[1:]).all()


def test_accuracy_gap_is_under_one_point():
    """Both above 95%, and within one percentage point of each other, for every seed."""
    for seed in SEEDS:
        base, drop = runs(seed)
        assert base.history.test_acc[-1] > 0.95 and drop.history.test_acc[-1] > 0.95
        assert abs(drop.history.test_acc[-1] - base.history.test_acc[-1]) < 0.01
