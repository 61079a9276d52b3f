"""Chapter 12's claims, re-checked for five seeds through the code the chapter calls.

Each seed fixes the digits' split, the initial weights, the training masks, the Monte Carlo masks and
the noise images (``train_mc_model(seed)``, ``ood_uncertainty(..., seed)``, ...). Every claim the
chapter asserts for seed 0 is checked here for each seed, with the chapter's thresholds; the one claim
about the five runs together (the entropy misses some OOD set in some run) is checked over all of them.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from dropoutlib.course.data import load_digits
from dropoutlib.experiments.mc_dropout import (
    OOD_SETS,
    calibration_experiment,
    digit_pixels,
    ood_sets,
    ood_uncertainty,
    passes_experiment,
    train_mc_model,
    transform_sweep,
)

SEEDS = [0, 1, 2, 3, 4]
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]
OOD = OOD_SETS[1:]
ANGLES = np.arange(0, 181, 15)
SHIFTS = np.arange(-3, 4)
PASSES = [1, 2, 5, 10, 20, 50, 100]


@functools.cache
def model(seed, p=0.5):
    return train_mc_model(seed, p)[0]


@functools.cache
def ood(seed):
    return ood_uncertainty(model(seed), ood_sets(digit_pixels(seed), seed=seed), samples=50, seed=seed)[0]


def above(run, name, attribute):
    return getattr(run[name], attribute) > getattr(run["test digits"], attribute)


@pytest.mark.parametrize("seed", SEEDS)
def test_mc_and_eval_errors_are_close_on_test_digits(seed):
    c = calibration_experiment(model(seed), load_digits(seed=seed), samples=50, seed=seed)
    assert abs(c.mc_error - c.eval_error) < 0.015


@pytest.mark.parametrize("seed", SEEDS)
def test_mutual_information_is_higher_on_every_ood_set(seed):
    run = ood(seed)
    for name in OOD:
        assert above(run, name, "mutual_information"), name
        assert run[name].auroc_mi > 0.5, name


@pytest.mark.parametrize("seed", SEEDS)
def test_entropy_is_higher_on_shifted_digits_and_gaussian_noise(seed):
    run = ood(seed)
    for name in ("shifted 2 px", "Gaussian noise"):
        assert above(run, name, "predictive_entropy"), name


@pytest.mark.parametrize("seed", SEEDS)
def test_mi_separates_better_where_single_passes_are_confident(seed):
    run = ood(seed)
    for name in ("rotated 45°", "shifted 2 px", "inverted", "uniform noise"):
        assert run[name].auroc_mi > run[name].auroc_entropy, name
        assert not above(run, name, "expected_entropy"), name


@pytest.mark.parametrize("seed", SEEDS)
def test_entropy_separates_better_on_gaussian_noise(seed):
    run = ood(seed)
    assert run["Gaussian noise"].auroc_entropy > run["Gaussian noise"].auroc_mi
    assert above(run, "Gaussian noise", "expected_entropy")


def test_the_entropy_misses_some_ood_set_in_some_run():
    misses = sum(not above(ood(seed), name, "predictive_entropy") for seed in SEEDS for name in OOD)
    assert misses >= 1


@pytest.mark.parametrize("seed", SEEDS)
def test_rotation_and_shift_sweeps(seed):
    pixels = digit_pixels(seed)
    rotation = transform_sweep(model(seed), pixels, "rotate", ANGLES, samples=50, seed=seed)
    far = (ANGLES >= 60) & (ANGLES <= 150)
    at_30 = int(np.flatnonzero(ANGLES == 30)[0])
    assert (rotation.error[far] > 0.8).all()
    assert rotation.predictive_entropy[far].max() < rotation.predictive_entropy[at_30]
    shifting = transform_sweep(model(seed), pixels, "shift", SHIFTS, samples=50, seed=seed)
    moved = SHIFTS != 0
    assert (shifting.error[moved] > 0.5).all()
    assert (shifting.mutual_information[moved] > shifting.mutual_information[~moved]).all()


@pytest.mark.parametrize("seed", SEEDS)
def test_mc_averaging_helps_calibration_at_p_01_and_hurts_at_p_05(seed):
    data = load_digits(seed=seed)
    low = calibration_experiment(model(seed, 0.1), data, samples=50, seed=seed)
    high = calibration_experiment(model(seed, 0.5), data, samples=50, seed=seed)
    for c in (low, high):
        assert c.mc_confidence < c.eval_confidence
    assert low.mc_ece < low.eval_ece
    assert high.mc_ece > high.eval_ece
    assert high.mc_confidence < 1 - high.mc_error
    assert low.eval_confidence > 1 - low.eval_error


@pytest.mark.parametrize("seed", SEEDS)
def test_how_many_passes(seed):
    data = load_digits(seed=seed)
    curve = passes_experiment(model(seed), data.x_test, data.y_test, PASSES, repeats=10, seed=seed)
    deviation = np.abs(curve.error - curve.error[:, -1:]).max(axis=0)
    enough = next(t for k, t in enumerate(PASSES) if (deviation[k:] <= 0.01).all())
    assert enough <= 20
    assert curve.error[:, 0].mean() > 2 * curve.error[:, -1].mean()
    assert (np.diff(curve.predictive_entropy.mean(axis=0)) > 0).all()
    assert (curve.mutual_information[:, 0] == 0).all()


def test_at_p_025_mc_averaging_goes_either_way():
    better = [
        calibration_experiment(model(seed, 0.25), load_digits(seed=seed), samples=50, seed=seed)
        for seed in SEEDS
    ]
    assert any(c.mc_ece < c.eval_ece for c in better) and any(c.mc_ece > c.eval_ece for c in better)
