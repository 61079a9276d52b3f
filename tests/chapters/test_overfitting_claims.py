"""Chapter 1's claims, re-checked for five seeds through the claims functions the chapter calls.

Each seed fixes the ten training points, the initial weights and the dropout masks
(``fit_toy_regression(p, seed=seed)``). Claims the chapter makes for its own seed and that hold on
every draw are checked per seed; claims about the test loss are checked as the chapter states them
for five draws: paired mean changes against their standard errors (dropout, early stopping and tuned
weight decay beyond the noise; dropout against early stopping, weight decay and bagging within it).
Every threshold lives in ``dropoutlib.experiments.overfitting``; this file writes none.
"""

from __future__ import annotations

import functools

import pytest
import torch

from dropoutlib import course
from dropoutlib.course.claims import check
from dropoutlib.course.data import toy_regression
from dropoutlib.experiments.overfitting import (
    EPOCHS,
    HIDDEN,
    LR,
    ToyFit,
    bagged_ensemble,
    controls_claims,
    draws_claims,
    early_stopped_fit,
    ensemble_claims,
    fit_claims,
    fit_toy_regression,
    straight_line_claims,
    sweep_claims,
    total_variation,
    tuned_weight_decay_fits,
)

SEEDS = [0, 1, 2, 3, 4]
P_GRID = (0.0, 0.2, 0.4, 0.5, 0.6, 0.8, 0.9)  # the chapter's grid
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]


@functools.cache
def sweep(seed: int) -> dict[float, ToyFit]:
    return {p: fit_toy_regression(p, seed=seed) for p in P_GRID}


@functools.cache
def bagged(seed: int) -> ToyFit:
    return bagged_ensemble(5, seed=seed)


def line(seed: int) -> tuple[float, float]:
    """Training MSE and total variation of the true line y = 1.5 x on the seed's data."""
    data = toy_regression(seed=seed)
    return (1.5 * data.x_train - data.y_train).pow(2).mean().item(), total_variation(1.5 * data.x_test)


@pytest.mark.parametrize("seed", SEEDS)
def test_without_dropout_the_network_fits_the_noise_and_dropout_does_not(seed):
    fits = sweep(seed)
    check(fit_claims(fits[0.0], fits[0.5], line(seed)[0]))


def test_dropout_helps_on_most_draws_and_on_average():
    check(draws_claims([(sweep(seed)[0.0], sweep(seed)[0.5]) for seed in SEEDS]))


@pytest.mark.parametrize("seed", SEEDS)
def test_too_little_dropout_overfits_and_too_much_underfits(seed):
    check(sweep_claims(sweep(seed), *line(seed)))


@pytest.mark.parametrize("seed", SEEDS)
def test_bagging_smooths_the_fit(seed):
    claims = ensemble_claims(sweep(seed)[0.0], bagged(seed), sweep(seed)[0.5])
    # the second claim (bagging beats dropout on this draw) is the chapter's draw only
    check(claims if seed == 0 else claims[:1])


def test_early_stopping_weight_decay_and_bagging_against_dropout_over_draws():
    """Early stopping and tuned weight decay help beyond the noise; against dropout, they and
    bagging are within it."""
    check(
        controls_claims(
            [sweep(seed)[0.0] for seed in SEEDS],
            [sweep(seed)[0.5] for seed in SEEDS],
            [early_stopped_fit(seed=seed) for seed in SEEDS],
            tuned_weight_decay_fits(SEEDS),
            [bagged(seed) for seed in SEEDS],
        )
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_without_activations_the_network_computes_a_line(seed):
    """Exercise 6: the demo as printed (Linear layers only) fits a straight line."""
    data = toy_regression(seed=seed)
    torch.manual_seed(seed)
    model = course.mlp(1, list(HIDDEN), 1, activation=torch.nn.Identity)
    course.fit(model, data, epochs=EPOCHS, lr=LR, task="regression", progress=False, eval_every=EPOCHS)
    with torch.no_grad():
        check(straight_line_claims(model(data.x_test)[:, 0]))
