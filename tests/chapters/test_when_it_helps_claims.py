"""Chapter 8's claims, re-checked for five seeds through the code the chapter calls.

Each seed fixes the digits' split, the initial weights, the minibatch order and the dropout masks; the
chapter prints three seeds (0, 1, 2) and asserts its claims on their means. Here every claim is checked
on the means over seeds 0 to 4, with the chapter's thresholds, and the per-seed claims for each seed.
One ``Study`` serves all the tests, so a setting shared by two experiments is trained once.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from dropoutlib.course.batched import DEFAULT_RECIPE, MINIBATCH_RECIPE
from dropoutlib.experiments.when_it_helps import (
    BASELINE,
    INPUT_P,
    P,
    Study,
    compare,
    depth_study,
    p_sweep,
    placement_study,
    recipe_study,
    size_sweep,
    units_needed,
    width_sweep,
)

SEEDS = (0, 1, 2, 3, 4)
SIZES = (50, 100, 200, 400, 800, 1257)
PS = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 0.8)
WIDTHS = (4, 8, 16, 32, 64, 128)
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]


@pytest.fixture(scope="module")
def study():
    return Study()


def test_dropout_beats_the_baseline_and_lowers_the_test_loss_for_every_seed(study):
    settings = [
        BASELINE,
        dataclasses.replace(BASELINE, p=P),
        dataclasses.replace(BASELINE, p=P, input_p=INPUT_P),
    ]
    main = compare(study, SEEDS, settings, eval_every=2)
    acc, loss = main["test_acc"][:, 0], main["test_loss"][:, 0]
    assert acc[1].mean() > acc[0].mean()
    assert main.mean("gap")[1, 0] < main.mean("gap")[0, 0]
    assert (loss[1] < loss[0]).all()
    assert (main["train_acc"][:2] == 1.0).all()
    assert loss[2].mean() < loss[1].mean()
    epochs = np.array(main.epochs)
    train_curve = main.curves["train_acc"][0, 0].mean(axis=0)
    assert train_curve[-1] == 1.0 and epochs[np.argmax(train_curve >= 1.0)] <= 20
    base_loss = main.curves["test_loss"][0, 0].mean(axis=0)
    assert base_loss[-1] > 1.5 * base_loss.min()
    test_curve = main.curves["test_acc"][0, 0].mean(axis=0)
    assert abs(test_curve[-1] - test_curve[np.argmax(train_curve >= 1.0)]) < 0.01


def test_the_gain_shrinks_with_more_data_but_not_as_a_share_of_the_errors(study):
    sizes = size_sweep(study, SIZES, SEEDS)
    gains = sizes.gain()
    errors = 1 - sizes["test_acc"]
    removed = (errors[:, 0] - errors[:, 1]) / errors[:, 0]
    assert gains[0].mean() > 0
    assert gains[:3].mean() > 2 * gains[-3:].mean()
    assert (removed.mean(axis=1) > 0).all()
    assert removed[-3:].mean() > 0.5 * removed[:3].mean()


def test_drop_probabilities(study):
    mean = p_sweep(study, PS, SEEDS).mean("test_acc")
    moderate = [PS.index(p) for p in (0.3, 0.5, 0.7, 0.8)]
    assert (mean[moderate, 0] > mean[0, 0]).all()
    assert 0.3 <= PS[int(mean[:, 0].argmax())] <= 0.7
    assert mean[PS.index(0.8), 1] < mean[:, 1].max()
    assert 0.2 <= PS[int(mean[:, 1].argmax())] <= 0.5
    assert abs(mean[:, 1].max() - mean[:, 0].max()) < 0.01


def test_placement(study):
    places = placement_study(study, SEEDS, activations=("relu", "sigmoid"))
    rows = {name: i for i, name in enumerate(places.rows)}
    after = places["test_acc"][rows["after the activation"]]
    before = places["test_acc"][rows["before the activation"]]
    assert np.array_equal(after[0], before[0])
    assert not np.array_equal(after[1], before[1])
    assert after[1].mean() > before[1].mean()
    mean = places.mean("test_acc")
    assert mean[rows["outputs (logits)"], 0] > mean[rows["no dropout"], 0]
    assert mean[rows["outputs (logits)"], 0] < after[0].mean()


def test_a_dropout_network_needs_more_units(study):
    widths = width_sweep(study, WIDTHS, SEEDS)
    for metric in ("train_acc", "test_acc"):
        mean = widths.mean(metric)
        assert 1.2 < units_needed(WIDTHS, mean[:, 0], mean[:, 1]) < 1 / (1 - P)
        narrow = [WIDTHS.index(w) for w in (8, 16)]
        assert (mean[narrow, 1] < mean[narrow, 0]).all()
    assert widths.mean("test_acc")[-1, 1] > widths.mean("test_acc")[-1, 0]


def test_the_gain_is_small_when_the_baseline_does_not_overfit(study):
    depths = depth_study(study, (1, 2, 3), SEEDS)
    assert depths.gain()[0].mean() < depths.gain()[1].mean()
    assert depths.mean("test_acc")[0, 0] > depths.mean("test_acc")[1, 0]
    recipes = recipe_study(study, (DEFAULT_RECIPE, MINIBATCH_RECIPE), SEEDS)
    assert recipes.mean("test_acc")[1, 0] > recipes.mean("test_acc")[0, 0]
    assert recipes.gain()[1].mean() < recipes.gain()[0].mean()
    assert abs(recipes.mean("test_acc")[1, 0] - recipes.mean("test_acc")[0, 1]) < 0.01
