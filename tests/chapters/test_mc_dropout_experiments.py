"""experiments.mc_dropout: the shifted and out-of-distribution digits, and chapter 12's experiments."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from dropoutlib.course.batched import BatchedMLP
from dropoutlib.course.data import load_digits
from dropoutlib.course.models import mlp
from dropoutlib.experiments.mc_dropout import (
    MAX_PIXEL,
    METHODS,
    OOD_SETS,
    VALIDATION,
    BaselinesResult,
    FastPathTrap,
    auroc,
    baseline_split,
    baselines_claims,
    baselines_experiment,
    calibration_experiment,
    data_size_claims,
    digit_pixels,
    disagreement,
    distinct_passes,
    fast_path_claims,
    fit_temperature,
    hand_rolled_mc,
    invert_digits,
    low_p_claims,
    low_p_rows,
    member_passes,
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
from dropoutlib.uncertainty import MCPrediction, entropy, mc_predict


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
        # the set's means, recomputed in float64 from its passes (not the identity H = E[H] + MI)
        passes = predictions[name].samples
        assert r.mutual_information == pytest.approx(float(disagreement(passes).mean()), abs=1e-5)
        assert r.expected_entropy == pytest.approx(float(entropy(passes.double()).mean()), abs=1e-5)
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
    for r in range(2):  # repeat r is mc_predict with seed 4 + r; T = 6 uses all its passes, T = 1 the first
        full = mc_predict(small_model, data.x_test, samples=6, seed=4 + r)
        assert curve.error[r, 2] == float((full.predicted != data.y_test).double().mean())
        assert curve.predictive_entropy[r, 2] == pytest.approx(float(full.predictive_entropy.mean()))
        assert curve.predictive_entropy[r, 0] == pytest.approx(float(entropy(full.samples[0]).mean()))
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


# --- baselines and data size -------------------------------------------------------------------------


def test_baseline_split_holds_out_a_validation_split_and_keeps_the_test_digits():
    data, held = baseline_split(3)
    full = load_digits(seed=3)
    assert (data.n_train, held.n_test) == (full.n_train - VALIDATION, VALIDATION)
    assert torch.equal(data.x_test, full.x_test) and torch.equal(data.y_test, full.y_test)
    rows = {tuple(r) for r in data.x_train.numpy().round(5)}
    assert not any(tuple(r) in rows for r in held.x_test.numpy().round(5))  # disjoint
    assert np.bincount(held.y_test.numpy(), minlength=10).min() >= 24  # stratified: ~25.7 per class
    small, _ = baseline_split(3, n_train=125)
    assert small.n_train == 125 and {tuple(r) for r in small.x_train.numpy().round(5)} <= rows
    with pytest.raises(ValueError, match="n_train"):
        baseline_split(3, n_train=5000)


def test_fit_temperature_recovers_the_temperature_that_made_the_labels():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(20000, 5, generator=generator) * 3
    for true in (0.5, 2.0):
        labels = torch.multinomial(torch.softmax(logits / true, -1), 1, generator=generator)[:, 0]
        assert abs(fit_temperature(logits, labels) - true) < 0.05 * true


def test_disagreement_is_zero_for_agreement_and_matches_the_library():
    same = torch.softmax(torch.randn(1, 7, 4), -1).expand(3, 7, 4)
    assert disagreement(same).abs().max() < 1e-12
    passes = torch.softmax(torch.randn(6, 7, 4) * 2, -1)
    assert torch.allclose(disagreement(passes).float(), MCPrediction(passes).mutual_information, atol=1e-6)
    assert (disagreement(passes) > 0).all()


def test_member_passes_sample_each_member_and_restore_evaluation_mode():
    model = BatchedMLP(64, [16], 10, seeds=[0, 1], p=0.5)
    x = torch.randn(2, 5, 64)
    passes = member_passes(model, x, samples=4, seed=3)
    assert passes.shape == (4, 2, 5, 10) and not model.training
    assert torch.allclose(passes.sum(-1), torch.ones(4, 2, 5))
    assert not torch.allclose(passes[0], passes[1])  # fresh masks every pass
    assert torch.equal(passes, member_passes(model, x, samples=4, seed=3))  # seeded
    no_dropout = BatchedMLP(64, [16], 10, seeds=[0, 1], p=0.0)
    still = member_passes(no_dropout, x, samples=3)
    assert torch.allclose(still[0], still[2])


def test_baselines_experiment_shapes_and_a_one_network_ensemble():
    r = baselines_experiment([0, 1], sizes=[60, 120], members=2, samples=3, epochs=3)
    assert r.mc_mi.shape == r.ensemble_mi.shape == (2, 2) and r.temperature.shape == (2, 2)
    assert all(r.ece[m].shape == (2,) for m in METHODS)
    assert (r.mc_mi > 0).all() and (r.ensemble_mi > 0).all()
    one = baselines_experiment([0], sizes=[60], members=1, samples=3, epochs=3)
    assert abs(one.ensemble_mi).max() < 1e-9  # one network cannot disagree with itself
    assert np.allclose(one.nll["ensemble"], one.nll["plain"])


JITTER = np.array([1.0, -1.0, 1.0, -1.0, 0.0]) * 1e-3  # zero mean, standard error 4.5e-4


def _result(mc, ens, ensemble_gain=0.02):
    """A synthetic result: MC dropout worse by 0.05 in ECE and NLL, equal in error; temperature scaling
    equal; the ensemble better by ``ensemble_gain`` in everything (all up to ``JITTER``)."""
    plain = np.array([0.10, 0.12, 0.11, 0.13, 0.10])

    def scores(mc_shift):
        return {"plain": plain, "MC dropout": plain + mc_shift + JITTER, "temperature": plain - JITTER,
                "ensemble": plain - ensemble_gain + JITTER[::-1]}

    return BaselinesResult(np.array([125, 250, 500, 1000]), np.asarray(mc), np.asarray(ens), scores(0.05),
                           scores(0.05), scores(0.0), np.ones((5, 5)), 50)


def test_data_size_claims_fail_when_the_mutual_information_concentrates():
    falling_slower = np.array([0.30, 0.24, 0.20, 0.18]) * np.linspace(0.95, 1.05, 5)[:, None]
    ensemble = np.array([0.05, 0.03, 0.018, 0.011]) * np.ones((5, 1))
    assert all(c.holds for c in data_size_claims(_result(falling_slower, ensemble)))
    concentrating = np.array([0.30, 0.15, 0.075, 0.0375]) * np.linspace(0.95, 1.05, 5)[:, None]
    failed = [c.statement for c in data_size_claims(_result(concentrating, ensemble)) if not c.holds]
    assert len(failed) == 3  # keeps more than half; ten times the ensemble's; slows down


def test_baselines_claims_fail_when_the_ensemble_does_not_help():
    ones = np.ones((5, 4))
    assert all(c.holds for c in baselines_claims(_result(ones, ones)))
    failed = {c.statement for c in baselines_claims(_result(ones, ones, ensemble_gain=0.0)) if not c.holds}
    assert len(failed) == 5 and "and MC dropout's" not in failed  # MC dropout is still worse


def test_low_p_claims_fail_when_the_temperature_does_nothing():
    ones = np.ones((5, 4))
    good = _result(ones, ones)  # MC dropout worse by 0.05: it lowers nothing
    assert not low_p_claims(good)[0].holds and not low_p_claims(good)[1].holds
    cooled = BaselinesResult(good.sizes, ones, ones, good.ece, good.nll, good.error, np.full((5, 1), 0.9), 50)
    assert not low_p_claims(cooled)[-1].holds  # a temperature below 1: not overconfident
    assert low_p_rows(good)[1]["Δ ECE"].startswith("+0.0500")
