"""Chapter 10's claims, re-checked for five seeds through the code the chapter calls.

Each seed fixes the digits' split and training subsample, the initial weights, the minibatch order
and the dropout masks (``compare_dropout([seed])``, ``train_cnn(..., seed=seed)``). Every claim the
chapter asserts for seed 0 (or for its three seeds 0-2) is checked here for each of five seeds, with
the chapter's thresholds; the claims about means are checked on the means over the five seeds.
"""

from __future__ import annotations

import functools

import pytest
import torch
import torch.nn.functional as F

from dropoutlib.course.data import load_digits
from dropoutlib.experiments.convolutions import (
    DROPOUT_KINDS,
    N_TRAIN,
    P,
    compare_dropout,
    feature_maps,
    map_statistics,
    neighbour_correlation,
    next_layer_noise,
    small_cnn,
    summarize_runs,
    train_cnn,
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
    assert 0.15 < curve[0] < 0.6
    assert max(abs(r) for r in curve[2:]) < 0.1
    image = x.view(-1, 1, 8, 8)
    for k in (2, 4):
        fine = F.interpolate(image, scale_factor=k, mode="bilinear")
        assert torch.nanmean(neighbour_correlation(fine)).item() > 0.8


@pytest.mark.parametrize("seed", SEEDS)
def test_spatial_passes_on_a_little_more_noise_and_the_formula_matches_masks(seed):
    model, x = runs()["none", seed].model, digits(seed).x_test
    generator = torch.Generator().manual_seed(seed)
    noise = {}
    for kind in ("element", "spatial"):
        noise[kind] = next_layer_noise(model, x, kind, P)
        sampled = next_layer_noise(model, x, kind, P, repeats=20, generator=generator)
        assert abs(sampled / noise[kind] - 1) < 0.1
    assert 1 < noise["spatial"] / noise["element"] < 2.5


@pytest.mark.parametrize("seed", SEEDS)
def test_finer_maps_are_smoother_and_favour_spatial_noise(seed):
    x = digits(seed).x_test
    native = map_statistics(runs()["none", seed].model, x)
    fine = map_statistics(upsampled(seed).model, x)
    assert fine.correlation > native.correlation + 0.2
    assert fine.noise_element < native.noise_element
    assert fine.ratio > native.ratio + 0.5


@pytest.mark.parametrize("seed", SEEDS)
def test_element_wise_lowers_the_test_loss_and_spatial_does_worse_than_element_wise(seed):
    r = runs()
    assert r["element", seed].test_loss < r["none", seed].test_loss
    assert r["spatial", seed].test_loss > r["element", seed].test_loss
    assert min(r[kind, seed].train_acc for kind in DROPOUT_KINDS) > 0.99


def test_on_average_spatial_does_not_lower_the_loss_and_accuracies_stay_within_a_point():
    loss = summarize_runs(runs(), "test_loss")
    acc = summarize_runs(runs(), "test_acc")
    assert loss["spatial"][0] > loss["none"][0]
    means = [acc[kind][0] for kind in DROPOUT_KINDS]
    assert max(means) - min(means) < 0.01


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
        accuracy[kind] = sum(hits) / len(hits)
    assert abs(accuracy["spatial"] - accuracy["element"]) < 0.02
