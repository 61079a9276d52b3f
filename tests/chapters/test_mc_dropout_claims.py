"""Chapter 12's claims, re-checked for five seeds through the claims functions the chapter calls.

Each seed fixes the digits' split, the initial weights, the training masks, the Monte Carlo masks and
the noise images (``train_mc_model(seed)``, ``ood_uncertainty(..., seed)``, ...). The thresholds live
in ``dropoutlib.experiments.mc_dropout``; this file only feeds the claims functions other seeds. The
OOD claims are about the chapter's five runs together (seeds 0 to 4), as the chapter states them, and
one claim, that MC averaging goes either way at p = 0.25, is about five seeds and checked only here.
The baselines, data-size and p = 0.1 temperature claims are about five seeds together (paired
differences); they are checked on the chapter's seeds 0 to 4 and on five fresh seeds, 5 to 9.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from dropoutlib.course import zoo
from dropoutlib.course.claims import check
from dropoutlib.course.data import load_digits
from dropoutlib.experiments.mc_dropout import (
    attention_dropout_only,
    baselines_claims,
    baselines_experiment,
    calibration_claims,
    calibration_experiment,
    data_size_claims,
    digit_pixels,
    fast_path_claims,
    fast_path_trap,
    low_p_claims,
    mixed_calibration_claims,
    ood_claims,
    ood_sets,
    ood_uncertainty,
    passes_claims,
    passes_experiment,
    prediction_claims,
    sweep_claims,
    train_mc_model,
    transform_sweep,
)
from dropoutlib.uncertainty import mc_predict

SEEDS = [0, 1, 2, 3, 4]
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]
ANGLES = np.arange(0, 181, 15)
SHIFTS = np.arange(-3, 4)
PASSES = [1, 2, 5, 10, 20, 50, 100]


@functools.cache
def model(seed, p=0.5):
    return train_mc_model(seed, p)[0]


@functools.cache
def calibration(seed, p):
    return calibration_experiment(model(seed, p), load_digits(seed=seed), samples=50, seed=seed)


def ood(seed):
    return ood_uncertainty(model(seed), ood_sets(digit_pixels(seed), seed=seed), samples=50, seed=seed)[0]


@pytest.mark.parametrize("seed", SEEDS)
def test_the_entropy_splits_and_both_predictions_err_as_often(seed):
    data = load_digits(seed=seed)
    pred = mc_predict(model(seed), data.x_test, samples=50, seed=seed)
    c = calibration(seed, 0.5)
    check(prediction_claims(pred, c.eval_error, c.mc_error))


def test_the_ood_findings_hold_in_all_five_runs():
    check(ood_claims([ood(seed) for seed in SEEDS]))


@pytest.mark.parametrize("seed", SEEDS)
def test_rotation_and_shift_sweeps(seed):
    pixels = digit_pixels(seed)
    rotation = transform_sweep(model(seed), pixels, "rotate", ANGLES, samples=50, seed=seed)
    shifting = transform_sweep(model(seed), pixels, "shift", SHIFTS, samples=50, seed=seed)
    check(sweep_claims(rotation, shifting))


@pytest.mark.parametrize("seed", SEEDS)
def test_mc_averaging_helps_calibration_at_p_01_and_hurts_at_p_05(seed):
    check(calibration_claims({p: calibration(seed, p) for p in (0.1, 0.25, 0.5)}))


def test_at_p_025_mc_averaging_goes_either_way():
    check(mixed_calibration_claims([calibration(seed, 0.25) for seed in SEEDS]))


@pytest.mark.parametrize("seed", SEEDS)
def test_how_many_passes(seed):
    data = load_digits(seed=seed)
    curve = passes_experiment(model(seed), data.x_test, data.y_test, PASSES, repeats=10, seed=seed)
    check(passes_claims(curve))


@pytest.mark.parametrize("seed", SEEDS)
def test_fast_path_claims(seed):
    """The fast-path trap and BERT's attention dropout, for other weights, tokens and masks."""
    pytest.importorskip("transformers")
    torch.manual_seed(seed)
    tokens = torch.randint(0, 32, (8, 16))
    trap = fast_path_trap(zoo.char_transformer(dropout=0.1), tokens, passes=8, seed=seed)
    ids = torch.randint(1, 100, (8, 16))
    text = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    bert = fast_path_trap(zoo.bert_classifier(), text, passes=8, seed=seed)
    attention = fast_path_trap(attention_dropout_only(zoo.bert_classifier()), text, passes=8, seed=seed)
    check(fast_path_claims(trap, bert, attention))


@pytest.mark.parametrize("seeds", [range(0, 5), range(5, 10)], ids=["seeds 0-4", "fresh seeds 5-9"])
def test_baselines_and_data_size(seeds):
    result = baselines_experiment(seeds, samples=50)
    low = baselines_experiment(seeds, sizes=[1000], p=0.1, members=1)
    check(baselines_claims(result) + data_size_claims(result) + low_p_claims(low))
