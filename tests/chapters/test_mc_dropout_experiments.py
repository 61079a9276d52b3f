"""experiments.mc_dropout: the shifted and out-of-distribution digits, and chapter 12's experiments."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from dropoutlib.course.data import load_digits
from dropoutlib.course.models import mlp
from dropoutlib.experiments.mc_dropout import (
    MAX_PIXEL,
    OOD_SETS,
    FastPathTrap,
    auroc,
    calibration_experiment,
    digit_pixels,
    distinct_passes,
    fast_path_claims,
    hand_rolled_mc,
    invert_digits,
    noise_images,
    ood_sets,
    ood_uncertainty,
    passes_experiment,
    plot_reliability,
    rotate_digits,
    shift_digits,
    train_mc_model,
    transform_sweep,
)


@pytest.fixture(scope="module")
def pixels():
    return digit_pixels(seed=0)


@pytest.fixture(scope="module")
def small_model():
    return train_mc_model(0, epochs=3)[0]


# --- raw pixels ------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 3])
def test_digit_pixels_reproduce_load_digits(seed):
    pixels, data = digit_pixels(seed), load_digits(seed=seed)
    assert torch.allclose(pixels.standardize(pixels.test), data.x_test, atol=1e-5)
    assert torch.allclose(pixels.standardize(pixels.train), data.x_train, atol=1e-5)
    assert np.array_equal(pixels.y_test, data.y_test.numpy())
    assert np.array_equal(pixels.y_train, data.y_train.numpy())
    assert pixels.test.min() >= 0 and pixels.test.max() == MAX_PIXEL


def test_other_test_fractions_match_too():
    pixels, data = digit_pixels(0, test_fraction=0.5), load_digits(0.5, seed=0)
    assert torch.allclose(pixels.standardize(pixels.test), data.x_test, atol=1e-5)


def test_standardize_rejects_wrong_shapes(pixels):
    with pytest.raises(ValueError, match="shape"):
        pixels.standardize(np.zeros((3, 8, 8)))
    with pytest.raises(TypeError, match="NumPy"):
        pixels.standardize([[0.0] * 64])


# --- transformations -------------------------------------------------------------------------------


def test_rotation_by_zero_is_the_identity_and_by_90_a_quarter_turn(pixels):
    images = pixels.test[:20]
    assert np.allclose(rotate_digits(images, 0), images)
    quarter = np.rot90(images.reshape(-1, 8, 8), 1, axes=(1, 2)).reshape(-1, 64)
    assert np.allclose(rotate_digits(images, 90), quarter, atol=1e-9)
    assert np.allclose(rotate_digits(images, 360), images, atol=1e-6)


def test_rotation_keeps_the_value_range(pixels):
    turned = rotate_digits(pixels.test, 37.5)
    assert turned.shape == pixels.test.shape
    assert turned.min() >= 0 and turned.max() <= MAX_PIXEL
    assert not np.allclose(turned, pixels.test)


def test_rotation_rejects_bad_angles(pixels):
    with pytest.raises(TypeError, match="degrees"):
        rotate_digits(pixels.test, "45")
    with pytest.raises(ValueError, match="finite"):
        rotate_digits(pixels.test, float("nan"))


def test_shift_moves_pixels_and_fills_with_background():
    image = np.arange(1.0, 65.0).reshape(1, 64)
    square = image.reshape(8, 8)
    moved = shift_digits(image, right=2, down=1).reshape(8, 8)
    assert np.array_equal(moved[1:, 2:], square[:-1, :-2])
    assert (moved[0] == 0).all() and (moved[:, :2] == 0).all()
    back = shift_digits(image, right=-3).reshape(8, 8)
    assert np.array_equal(back[:, :5], square[:, 3:]) and (back[:, 5:] == 0).all()
    assert np.array_equal(shift_digits(image), image)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"right": 8}, ValueError),
        ({"down": -9}, ValueError),
        ({"right": 1.5}, TypeError),
        ({"down": True}, TypeError),
    ],
)
def test_shift_rejects_bad_amounts(kwargs, error):
    with pytest.raises(error):
        shift_digits(np.zeros((1, 64)), **kwargs)


def test_invert_twice_is_the_identity(pixels):
    assert np.array_equal(invert_digits(invert_digits(pixels.test)), pixels.test)
    assert invert_digits(pixels.test).min() >= 0


def test_noise_images(pixels):
    uniform = noise_images(2000, "uniform", pixels, seed=1)
    assert uniform.shape == (2000, 64) and uniform.min() >= 0 and uniform.max() <= MAX_PIXEL
    assert abs(uniform.mean() - 8) < 0.1
    assert np.array_equal(uniform, noise_images(2000, "uniform", pixels, seed=1))
    assert not np.array_equal(uniform, noise_images(2000, "uniform", pixels, seed=2))
    gaussian = noise_images(4000, "gaussian", pixels, seed=1)
    assert gaussian.min() >= 0 and gaussian.max() <= MAX_PIXEL
    # clipping at 0 raises the mean of nearly-blank pixels a little; elsewhere the means match
    assert np.abs(gaussian.mean(axis=0) - pixels.mean).max() < 1.5
    with pytest.raises(ValueError, match="kind"):
        noise_images(3, "salt", pixels)
    with pytest.raises(TypeError, match="DigitPixels"):
        noise_images(3, "uniform", pixels.test)


def test_ood_sets(pixels):
    sets = ood_sets(pixels, seed=0)
    assert tuple(sets) == OOD_SETS
    assert all(x.shape == (540, 64) and x.dtype == torch.float32 for x in sets.values())
    assert torch.allclose(sets["test digits"], load_digits(seed=0).x_test, atol=1e-5)
    assert torch.equal(sets["uniform noise"], ood_sets(pixels, seed=0)["uniform noise"])
    assert not torch.equal(sets["uniform noise"], ood_sets(pixels, seed=1)["uniform noise"])


# --- AUROC -----------------------------------------------------------------------------------------


def brute_force(a, b):
    a, b = np.asarray(a)[:, None], np.asarray(b)[None, :]
    return float((b > a).mean() + (b == a).mean() / 2)


def test_auroc_equals_the_pairwise_definition():
    rng = np.random.default_rng(0)
    for _ in range(5):
        a = np.round(rng.normal(size=37), 1)  # ties
        b = np.round(rng.normal(0.4, size=23), 1)
        assert auroc(a, b) == pytest.approx(brute_force(a, b), abs=1e-12)
        assert auroc(a, b) + auroc(b, a) == pytest.approx(1.0)
    assert auroc([0.0, 1.0], [2.0, 3.0]) == 1.0 and auroc([2.0, 3.0], [0.0, 1.0]) == 0.0
    assert auroc(torch.ones(4), torch.ones(3)) == 0.5


def test_auroc_rejects_empty_and_nan():
    with pytest.raises(ValueError, match="non-empty"):
        auroc([], [1.0])
    with pytest.raises(ValueError, match="finite"):
        auroc([float("nan")], [1.0])


# --- experiments -----------------------------------------------------------------------------------


def test_train_mc_model_is_deterministic():
    a, history = train_mc_model(1, epochs=2)
    b, _ = train_mc_model(1, epochs=2)
    assert not a.training and history.epoch == [2]
    assert all(
        torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )


def test_ood_uncertainty(small_model, pixels):
    sets = ood_sets(pixels, seed=0)
    results, predictions = ood_uncertainty(small_model, sets, samples=5, seed=0)
    assert tuple(results) == OOD_SETS
    reference = results["test digits"]
    assert reference.auroc_entropy == 0.5 and reference.auroc_mi == 0.5
    for name, r in results.items():
        assert predictions[name].samples.shape == (5, 540, 10)
        assert r.predictive_entropy == pytest.approx(r.expected_entropy + r.mutual_information, abs=1e-5)
        assert 0.0 <= r.auroc_entropy <= 1.0 and 0.1 <= r.confidence <= 1.0
    again, _ = ood_uncertainty(small_model, sets, samples=5, seed=0)
    assert again == results
    with pytest.raises(TypeError, match="dict"):
        ood_uncertainty(small_model, [sets["test digits"]])


def test_transform_sweep(small_model, pixels):
    sweep = transform_sweep(small_model, pixels, "shift", [0, 1], samples=3)
    assert sweep.amounts.tolist() == [0, 1] and sweep.error.shape == (2,)
    data = load_digits(seed=0)
    from dropoutlib.uncertainty import mc_predict

    pred = mc_predict(small_model, data.x_test, samples=3, seed=0)
    assert sweep.error[0] == pytest.approx(float((pred.predicted != data.y_test).double().mean()))
    with pytest.raises(ValueError, match="kind"):
        transform_sweep(small_model, pixels, "flip", [0])


def test_calibration_experiment(small_model):
    data = load_digits(seed=0)
    c = calibration_experiment(small_model, data, samples=4, seed=0)
    assert 0 <= c.eval_ece <= 1 and 0 <= c.mc_ece <= 1
    assert int(c.eval_bins.count.sum()) == data.n_test == int(c.mc_bins.count.sum())
    assert c.mc_confidence < c.eval_confidence  # averaging probabilities lowers the top one


def test_passes_experiment(small_model):
    data = load_digits(seed=0)
    curve = passes_experiment(small_model, data.x_test, data.y_test, [1, 3, 6], repeats=2, seed=4)
    assert curve.error.shape == (2, 3) and curve.passes.tolist() == [1, 3, 6]
    assert (curve.mutual_information[:, 0] == 0).all()
    assert (curve.predictive_entropy >= curve.mutual_information).all()
    with pytest.raises(ValueError):
        passes_experiment(small_model, data.x_test, data.y_test, [0, 2])


def test_plot_reliability_draws_the_diagonal_and_one_point_per_filled_bin():
    from dropoutlib.uncertainty import calibration_bins

    probs = torch.tensor([[0.95, 0.05], [0.9, 0.1], [0.6, 0.4]])
    bins = calibration_bins(probs, torch.tensor([0, 1, 0]), bins=10)
    fig, ax = plt.subplots()
    plot_reliability(ax, bins, "model", "C0")
    assert len(ax.lines) == 2 and len(ax.collections[0].get_offsets()) == 3
    plt.close(fig)


def test_fast_path_claims_fail_when_the_recipes_behave_otherwise():
    good = FastPathTrap(8, 1, 8, 8, 0.0, 0.1, True)
    bert = FastPathTrap(8, 8, 8, 8, 0.1, 0.1, True)
    assert all(c.holds for c in fast_path_claims(good, bert, good))
    trapped_mc = FastPathTrap(8, 1, 8, 1, 0.0, 0.0, True)  # mc_predict fell into the trap too
    assert not fast_path_claims(trapped_mc, bert, good)[2].holds
    no_trap = FastPathTrap(8, 8, 8, 8, 0.1, 0.1, True)  # the fused kernel was not taken
    assert not fast_path_claims(no_trap, bert, good)[0].holds
    assert not fast_path_claims(good, bert, FastPathTrap(8, 1, 8, 1, 0.0, 0.0, True))[5].holds
    assert not fast_path_claims(good, bert, FastPathTrap(8, 1, 8, 8, 0.0, 0.1, False))[3].holds


def test_hand_rolled_mc_varies_on_an_mlp_and_refuses_bad_samples():
    model = mlp(4, [16], 3, p=0.5)
    assert distinct_passes(hand_rolled_mc(model, torch.randn(2, 4), 4).samples) == 4
    assert not model.training
    with pytest.raises(ValueError, match="samples"):
        hand_rolled_mc(model, torch.randn(2, 4), 0)
