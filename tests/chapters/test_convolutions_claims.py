"""Chapter 10's claims, re-checked through the code the chapter calls: its five seeds, and five fresh ones.

Each seed fixes the digits' split and training subsample, the validation split, the initial weights,
the minibatch order and the dropout masks (``sweep_dropout([seed])``, ``train_cnn(..., seed=seed)``).
The chapter trains its networks for seeds 0-4; every claim it checks for seed 0 is checked here for
each of those five seeds, and its claims about the five seeds together through the same ``*_claims``
functions of :mod:`dropoutlib.experiments.convolutions`, which hold the thresholds. The whole sweep
is then repeated on five fresh seeds (5-9): the comparison at the same ``p`` must hold there as it
stands, and the fair comparison in its directions (:func:`fair_direction_claims`: the sign of each
difference the chapter calls clear).
"""

from __future__ import annotations

import functools

import pytest
import torch
import torch.nn.functional as F

from dropoutlib.course.claims import check
from dropoutlib.course.data import load_digits
from dropoutlib.experiments.convolutions import (
    N_TRAIN,
    SWEEP_SEEDS,
    P,
    fair_claims,
    fair_comparison,
    fair_direction_claims,
    feature_maps,
    injected_noise,
    map_statistics,
    matched_noise,
    neighbour_claims,
    neighbour_correlation,
    next_layer_noise,
    noise_at_test_time_claims,
    noise_formula_claims,
    resolution_claims,
    runs_at,
    small_cnn,
    sweep_dropout,
    train_cnn,
    training_claims,
)

SEEDS = list(SWEEP_SEEDS)  # the chapter's
FRESH = [5, 6, 7, 8, 9]
UP_EPOCHS = 10  # as in the chapter
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]


@functools.cache
def digits(seed):
    return load_digits(seed=seed, n_train=N_TRAIN)


@functools.cache
def sweep(seeds):
    """The chapter's networks for ``seeds``: per seed, no dropout and each kind at each p of its grid."""
    return sweep_dropout(seeds)


def runs():
    return runs_at(sweep(tuple(SEEDS)), P)


@functools.cache
def upsampled(seed):
    return train_cnn("none", seed=seed, data=digits(seed), upsample=2, epochs=UP_EPOCHS)


@pytest.mark.parametrize("seed", SEEDS)
def test_neighbours_are_moderately_correlated_and_distant_activations_not(seed):
    x = digits(seed).x_test
    relu1 = feature_maps(runs()["none", seed].model, x, "relu1")
    curve = [torch.nanmean(neighbour_correlation(relu1, d)).item() for d in range(1, 8)]
    image = x.view(-1, 1, 8, 8)
    fine = [
        torch.nanmean(neighbour_correlation(F.interpolate(image, scale_factor=k, mode="bilinear"))).item()
        for k in (2, 4)
    ]
    check(neighbour_claims(curve, fine))


@pytest.mark.parametrize("seed", SEEDS)
def test_spatial_passes_on_a_little_more_noise_and_the_formula_matches_masks(seed):
    model, x = runs()["none", seed].model, digits(seed).x_test
    generator = torch.Generator().manual_seed(seed)
    noise, sampled = {}, {}
    for kind in ("element", "spatial"):
        noise[kind] = next_layer_noise(model, x, kind, P)
        sampled[kind] = next_layer_noise(model, x, kind, P, repeats=20, generator=generator)
    check(noise_formula_claims(noise, sampled))


@pytest.mark.parametrize("seed", SEEDS)
def test_finer_maps_are_smoother_and_favour_spatial_noise(seed):
    x = digits(seed).x_test
    native = map_statistics(runs()["none", seed].model, x)
    fine = map_statistics(upsampled(seed).model, x)
    check(resolution_claims(native, fine))


@pytest.mark.parametrize("seeds", [SEEDS, FRESH], ids=["chapter seeds", "fresh seeds"])
def test_at_the_same_p_element_wise_lowers_the_test_loss_and_spatial_does_not(seeds):
    # paired over five seeds (losses, accuracies against the binomial SE), and every network fits
    check(training_claims(runs_at(sweep(tuple(seeds)), P), n_test=digits(seeds[0]).n_test))


def fair(seeds):
    networks = sweep(tuple(seeds))
    x = {seed: digits(seed).x_test for seed in seeds}
    noise = injected_noise(networks, x)
    return (
        fair_comparison(networks),
        matched_noise(networks, noise),
        matched_noise(networks, noise, "test_acc"),
    )


def test_each_kind_at_its_validation_p_and_at_equal_noise():
    result, matched, matched_acc = fair(SEEDS)
    check(fair_claims(result, matched, matched_acc))


def test_the_fair_comparison_points_the_same_way_on_fresh_seeds():
    result, matched, _ = fair(FRESH)
    check(fair_direction_claims(result, matched))


@pytest.mark.parametrize("seed", SEEDS)
def test_both_kinds_of_noise_at_test_time_do_similar_damage(seed):
    # exercise 5: the network trained without dropout, with dropout layers switched on
    baseline, data = runs()["none", seed].model, digits(seed)
    torch.manual_seed(seed)
    accuracy = {}
    for kind in ("element", "spatial"):
        noisy = small_cnn(kind, 0.3)
        noisy.load_state_dict(baseline.state_dict())
        noisy.train()
        with torch.no_grad():
            hits = [(noisy(data.x_test).argmax(1) == data.y_test).float().mean().item() for _ in range(5)]
        accuracy[kind, 0.3] = sum(hits) / len(hits)
    check(noise_at_test_time_claims(accuracy, 0.3))
