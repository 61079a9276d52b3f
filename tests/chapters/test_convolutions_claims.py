"""Chapter 10's claims, re-checked for five seeds through the code the chapter calls.

Each seed fixes the digits' split and training subsample, the initial weights, the minibatch order
and the dropout masks (``compare_dropout([seed])``, ``train_cnn(..., seed=seed)``). Every claim the
chapter checks for seed 0 (or for its three seeds 0-2) is checked here for each of five seeds through
the same ``*_claims`` functions of :mod:`dropoutlib.experiments.convolutions`, which hold the
thresholds; the claims about means are checked on the means over the five seeds.
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
    P,
    compare_dropout,
    feature_maps,
    map_statistics,
    neighbour_claims,
    neighbour_correlation,
    next_layer_noise,
    noise_at_test_time_claims,
    noise_formula_claims,
    resolution_claims,
    small_cnn,
    train_cnn,
    training_claims,
)

SEEDS = [0, 1, 2, 3, 4]
UP_EPOCHS = 10  # as in the chapter
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]


@functools.cache
def digits(seed):
    return load_digits(seed=seed, n_train=N_TRAIN)


@functools.cache
def runs():
    """The chapter's comparison, for five seeds: 15 networks."""
    return compare_dropout(SEEDS)


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


def test_element_wise_lowers_the_test_loss_on_every_seed_and_spatial_does_not_on_average():
    # per seed for each of the five seeds (losses, fit), and on the means over the five seeds
    check(training_claims(runs()))


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
