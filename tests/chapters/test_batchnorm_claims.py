"""Chapter 9's claims, re-checked for five seeds through the code the chapter calls.

Each seed fixes the digits' split, the initial weights, the minibatch order and the dropout masks
(``batchnorm_experiment(order, p, seed=seed, ...)``). Every claim the chapter asserts for seed 0 is
checked here for each seed, with the chapter's thresholds.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from dropoutlib.course.data import load_digits
from dropoutlib.experiments.batchnorm import (
    HIDDEN,
    SHALLOW,
    STACK_004_HIDDEN,
    STACK_004_P,
    P,
    batchnorm_experiment,
    measure_variance_shift,
    mixed_train_variance,
    variance_shift_ratio,
)

SEEDS = [0, 1, 2, 3, 4]
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]


@functools.cache
def data(seed):
    return load_digits(seed=seed)


@functools.cache
def run(kind, seed):
    if kind == "shallow":
        return batchnorm_experiment("dropout-bn", P, seed=seed, hidden=SHALLOW, data=data(seed))
    if kind == "004":
        return batchnorm_experiment(
            "bn-dropout", STACK_004_P, seed=seed, hidden=STACK_004_HIDDEN, data=data(seed)
        )
    return batchnorm_experiment(kind, P, seed=seed, hidden=HIDDEN, data=data(seed))


@pytest.mark.parametrize("seed", SEEDS)
def test_shallow_shift_follows_the_formula_and_costs_no_accuracy(seed):
    shallow = run("shallow", seed)
    shift = shallow.shift
    predicted = variance_shift_ratio(shift.eval_mean[0], shift.eval_var[0], P)
    assert float((shift.per_feature(0) / predicted - 1).abs().median()) < 0.05
    assert (shift.ratio() > 1.2).all()
    assert np.allclose(shift.ratio("running"), shift.ratio(), rtol=0.1)
    assert abs(shallow.recalibrated_acc - shallow.test_acc) <= 0.01


@pytest.mark.parametrize("seed", SEEDS)
def test_deep_shift_compounds_costs_accuracy_and_both_fixes_work(seed):
    deep, last = run("dropout-bn", seed), run("last", seed)
    ratios = deep.shift.ratio()
    assert ratios[-4:].min() > ratios[0]
    assert ratios.max() > 2.5
    assert deep.history.objective[-1] > 1.0
    assert deep.recalibrated_acc - deep.test_acc >= 0.025
    assert last.test_acc > 0.94
    assert np.allclose(last.shift.ratio(), 1.0, atol=0.1)
    assert last.test_acc - deep.recalibrated_acc > 0.2
    assert deep.shift.mean_shift()[-1] > 2 * last.shift.mean_shift().max()
    fixed = measure_variance_shift(deep.recalibrated, data(seed).x_train, seed=seed)
    assert np.allclose(fixed.ratio("running"), 1.0, atol=0.02)


@pytest.mark.parametrize("seed", SEEDS)
def test_the_004_stack_shifts_little_and_the_mixing_formula_predicts_it(seed):
    stack = run("004", seed)
    ratios = stack.shift.ratio()
    assert ratios[0] == pytest.approx(1.0, abs=1e-6)
    assert (ratios[1:] > 1.02).all() and (ratios[1:] < 1.5).all()
    model = stack.model
    with torch.no_grad():
        activations = model[:3](data(seed).x_train)
    predicted = mixed_train_variance(activations, model[4].weight, STACK_004_P[0])
    assert float((stack.shift.train_var[1] / predicted - 1).abs().median()) < 0.05
    assert abs(stack.recalibrated_acc - stack.test_acc) <= 0.01
