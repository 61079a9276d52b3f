"""Batched training of many MLPs (course.batched): every member is the network it would be alone."""

from __future__ import annotations

import dataclasses

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from torch.nn import functional as F

from dropoutlib.course.batched import BatchedMLP, Recipe, fit_members
from dropoutlib.course.data import Split, load_digits
from dropoutlib.course.stats import paired_gain
from dropoutlib.course.train import fit
from dropoutlib.experiments.when_it_helps import (
    BASELINE,
    DROPOUT,
    METRICS,
    Grid,
    Setting,
    Study,
    compare,
    depth_study,
    format_table,
    p_sweep,
    placement_study,
    plot_mean_std,
    recipe_study,
    size_sweep,
    units_needed,
    width_sweep,
)

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = Setting(hidden=(12,), n_train=60, recipe=Recipe(epochs=5))


@pytest.fixture(scope="module")
def digits() -> Split:
    return load_digits(n_train=80)


def _same_parameters(model: torch.nn.Module, other: torch.nn.Module, atol: float = 1e-5) -> bool:
    a, b = list(model.parameters()), list(other.parameters())
    return len(a) == len(b) and all(torch.allclose(x, y, atol=atol) for x, y in zip(a, b, strict=True))


# --- one member is one network -----------------------------------------------------------------------


def test_member_computes_what_the_batched_model_computes():
    model = BatchedMLP(64, [20, 16], 10, seeds=[3, 4, 5], p=[0.0, 0.5, 0.2], input_p=0.1).eval()
    x = torch.randn(7, 64)
    out = model(x)
    for m in range(3):
        assert torch.allclose(out[m], model.member(m).eval()(x), atol=1e-6)


def test_initial_weights_depend_only_on_the_seed_and_match_nn_linear_bounds():
    a = BatchedMLP(64, [32], 10, seeds=[7, 8], p=[0.0, 0.5])
    b = BatchedMLP(64, [32], 10, seeds=[9, 7], p=[0.3, 0.0])
    assert torch.equal(a.weights[0][0], b.weights[0][1]) and torch.equal(a.biases[1][0], b.biases[1][1])
    assert not torch.equal(a.weights[0][0], a.weights[0][1])
    assert a.weights[0].abs().max() <= 1 / 8 and a.weights[1].abs().max() <= 1 / 32**0.5


def test_member_layers_follow_the_placement():
    model = BatchedMLP(
        8, [4], 3, seeds=[0, 1], p=0.5, placement=["after", "before"], input_p=0.2, output_p=0.1
    )
    after = [type(layer).__name__ for layer in model.member(0)]
    before = [type(layer).__name__ for layer in model.member(1)]
    assert after == ["Dropout", "Linear", "ReLU", "Dropout", "Linear", "Dropout"]
    assert before == ["Dropout", "Linear", "Dropout", "ReLU", "Linear", "Dropout"]


def test_full_batch_training_without_dropout_matches_fit(digits):
    model = BatchedMLP(64, [16, 16], 10, seeds=[0, 1])
    single = model.member(1)
    history = fit_members(model, digits, epochs=15, lr=1e-2)
    reference = fit(single, digits, epochs=15, lr=1e-2, progress=False)
    assert _same_parameters(model.member(1), single)
    assert history.final("test_acc")[1] == pytest.approx(reference.test_acc[-1], abs=1e-9)
    assert history.final("train_loss")[1] == pytest.approx(reference.train_loss[-1], rel=1e-4)


def _train_alone(
    model: BatchedMLP, m: int, data: Split, *, epochs: int, lr: float, batch_size: int
) -> torch.nn.Module:
    """Member m trained by hand as an ordinary network, with the same generators as fit_members."""
    net = model.member(m)
    seed = model.seeds[m]
    order_generator = torch.Generator().manual_seed(seed + 2**32)
    mask_generator = torch.Generator().manual_seed(seed + 2**33)
    optimizer = torch.optim.Adam(net.parameters(), lr=lr, foreach=True)
    p = model.p[m]
    linears = [layer for layer in net if isinstance(layer, torch.nn.Linear)]
    n = data.n_train
    for _ in range(epochs):
        order = torch.randperm(n, generator=order_generator)
        for i in range(0, n, batch_size):
            xb, yb = data.x_train[order[i : i + batch_size]], data.y_train[order[i : i + batch_size]]
            h = xb
            for layer, linear in enumerate(linears):
                h = linear(h)
                if layer < len(linears) - 1:
                    h = torch.relu(h)
                    if p > 0:
                        keep = torch.empty(h.shape).uniform_(generator=mask_generator) >= p
                        h = h * keep / (1 - p)
            optimizer.zero_grad()
            F.cross_entropy(h, yb).backward()
            optimizer.step()
    return net


@pytest.mark.parametrize("m", [0, 1, 2])
def test_a_batched_member_matches_a_separately_trained_network_with_the_same_masks(digits, m):
    model = BatchedMLP(64, [24, 16], 10, seeds=[5, 6, 5], p=[0.5, 0.0, 0.3])
    alone = _train_alone(model, m, digits, epochs=3, lr=3e-3, batch_size=32)
    fit_members(model, digits, epochs=3, lr=3e-3, batch_size=32)
    assert _same_parameters(model.member(m), alone, atol=1e-5)


def test_a_member_does_not_depend_on_the_other_members(digits):
    crowd = BatchedMLP(64, [16], 10, seeds=[0, 1, 2], p=[0.5, 0.0, 0.3], input_p=[0.0, 0.2, 0.1])
    alone = BatchedMLP(64, [16], 10, seeds=[2], p=0.3, input_p=0.1)
    h_crowd = fit_members(crowd, digits, epochs=4, batch_size=20)
    h_alone = fit_members(alone, digits, epochs=4, batch_size=20)
    assert _same_parameters(crowd.member(2), alone.member(0), atol=1e-6)
    assert h_crowd.final("test_acc")[2] == h_alone.final("test_acc")[0]


def test_dropout_before_and_after_relu_give_identical_runs(digits):
    model = BatchedMLP(64, [16, 16], 10, seeds=[4, 4], p=0.5, placement=["after", "before"])
    history = fit_members(model, digits, epochs=5, batch_size=40)
    assert torch.equal(model.weights[0][0], model.weights[0][1])
    assert history.final("test_loss")[0] == history.final("test_loss")[1]


def test_dropout_before_and_after_sigmoid_differ(digits):
    model = BatchedMLP(64, [16], 10, seeds=[4, 4], p=0.5, placement=["after", "before"], activation="sigmoid")
    fit_members(model, digits, epochs=3)
    assert not torch.allclose(model.weights[0][0], model.weights[0][1])


def test_training_mode_drops_and_rescales_with_each_members_probability():
    model = BatchedMLP(1, [4000], 1, seeds=[0, 1], p=[0.0, 0.75])
    with torch.no_grad():
        model.weights[0].fill_(1.0)
        model.biases[0].zero_()
        model.weights[1].fill_(1.0)
        model.biases[1].zero_()
    generators = [torch.Generator().manual_seed(0), torch.Generator().manual_seed(1)]
    model.train()
    hidden = torch.ones(2, 1, 1)
    h = torch.relu(torch.baddbmm(model.biases[0], hidden, model.weights[0]))
    dropped = model._drop(h, "after", generators)
    assert torch.equal(dropped[0], h[0])
    kept = dropped[1] > 0
    assert kept.float().mean().item() == pytest.approx(0.25, abs=0.03)
    assert torch.allclose(dropped[1][kept], torch.tensor(4.0))


def test_history_records_curves_every_eval_every_epochs(digits):
    model = BatchedMLP(64, [8], 10, seeds=[0])
    history = fit_members(model, digits, epochs=7, eval_every=3)
    assert history.epoch == [3, 6, 7]
    assert history.train_acc.shape == history.objective.shape == (1, 3)
    assert not model.training


# --- studies -------------------------------------------------------------------------------------------


def test_study_remembers_runs_and_pairs_settings_by_seed():
    study = Study()
    settings = {"none": TINY, "drop": dataclasses.replace(TINY, p=0.5)}
    grid = study.grid(["none", "drop"], ["x"], lambda r, _: settings[r], seeds=[0, 1])
    assert study.n_runs == 4
    again = study.grid(["drop"], ["x"], lambda r, _: settings[r], seeds=[1, 0])
    assert study.n_runs == 4
    assert again["test_acc"][0, 0, 0] == grid["test_acc"][1, 0, 1]
    assert grid["gap"].shape == (2, 1, 2)
    assert np.allclose(grid["gap"], grid["train_acc"] - grid["test_acc"])


def test_grid_gain_is_the_paired_difference_between_columns():
    values = {m: np.zeros((2, 2, 3)) for m in METRICS}
    values["test_acc"][:, 1] = [[0.1, 0.2, 0.3], [0.0, 0.0, 0.5]]
    grid = Grid((1, 2), ("a", "b"), ((TINY, TINY), (TINY, TINY)), (0, 1, 2), values)
    assert np.allclose(grid.gain(), [[0.1, 0.2, 0.3], [0.0, 0.0, 0.5]])
    assert np.allclose(grid.std("test_acc")[:, 0], 0.0)
    with pytest.raises(IndexError, match="other=5"):
        grid.gain(other=5)
    with pytest.raises(KeyError, match="metric"):
        grid["accuracy"]


def test_curves_are_recorded_and_a_run_without_them_is_trained_again():
    study = Study()
    study.grid(["a"], ["x"], lambda *_: TINY, seeds=[0])
    grid = compare(study, [0], [TINY, dataclasses.replace(TINY, p=0.5)], eval_every=2)
    assert grid.epochs == (2, 4, 5)
    assert grid.curves["test_acc"].shape == (2, 1, 1, 3)
    assert grid.curves["test_acc"][0, 0, 0, -1] == grid["test_acc"][0, 0, 0]


def test_the_chapters_sweeps_build_the_intended_settings():
    study = Study()
    sizes = size_sweep(study, [30, 60], [0], base=TINY, p=0.4)
    assert [s.n_train for s, _ in sizes.settings] == [30, 60]
    assert [(a.p, b.p) for a, b in sizes.settings] == [(0.0, 0.4), (0.0, 0.4)]
    ps = p_sweep(study, [0.0, 0.3], [0], base=TINY)
    assert ps.settings[1][0].p == 0.3 and ps.settings[1][1].input_p == 0.3
    assert ps.settings[0][0] == ps.settings[0][1]
    places = placement_study(study, [0], activations=["relu", "sigmoid"], base=TINY)
    assert places.settings[2][1].placement == "before" and places.settings[2][1].activation == "sigmoid"
    assert places.settings[4][0].output_p > 0 and places.settings[4][0].p == 0
    assert np.array_equal(places["test_acc"][1, 0], places["test_acc"][2, 0])  # ReLU: before == after
    widths = width_sweep(study, [4, 8], [0], base=dataclasses.replace(TINY, hidden=(12, 12)))
    assert widths.settings[1][1].hidden == (8, 8)
    depths = depth_study(study, [1, 3], [0], base=TINY)
    assert depths.settings[1][0].hidden == (12, 12, 12)
    recipes = recipe_study(study, [Recipe(epochs=2), Recipe(epochs=2, batch_size=30)], [0], base=TINY)
    assert recipes.settings[1][1].recipe.batch_size == 30


def test_study_accepts_any_data_source():
    calls = []

    def source(seed, n_train):
        calls.append((seed, n_train))
        return load_digits(seed=seed, n_train=n_train)

    study = Study(source)
    study.grid([0], [0], lambda *_: TINY, seeds=[3])
    study.grid([0], [0], lambda *_: dataclasses.replace(TINY, p=0.5), seeds=[3])
    assert calls == [(3, 60)]


# --- analysis ---------------------------------------------------------------------------------------


def test_paired_gain():
    mean, std, se = paired_gain([0.9, 0.8, 0.85], [0.92, 0.83, 0.86])
    d = np.array([0.02, 0.03, 0.01])
    assert mean == pytest.approx(d.mean()) and std == pytest.approx(d.std(ddof=1))
    assert se == pytest.approx(std / 3**0.5)
    assert paired_gain([0.5], [0.7])[1:] == (0.0, 0.0)
    with pytest.raises(ValueError, match="one value per seed"):
        paired_gain([0.5, 0.6], [0.7])
    with pytest.raises(TypeError, match="base must be numbers"):
        paired_gain("abc", [0.1])


@pytest.mark.parametrize("ratio", [1.0, 2.0, 4.0])
def test_units_needed_recovers_a_known_shift(ratio):
    widths = 2.0 ** np.arange(2, 10)
    curve = lambda w: 1 - np.exp(-w / 20)  # noqa: E731
    assert units_needed(widths, curve(widths), curve(widths / ratio)) == pytest.approx(ratio, rel=0.02)


def test_units_needed_ignores_a_falling_tail_and_rejects_bad_input():
    widths = [4, 8, 16, 32]
    assert units_needed(widths, [0.5, 0.7, 0.9, 0.85], [0.3, 0.5, 0.7, 0.9]) == pytest.approx(2.0, rel=1e-6)
    with pytest.raises(ValueError, match="increasing"):
        units_needed([8, 4], [0.1, 0.2], [0.1, 0.2])
    with pytest.raises(ValueError, match="share no range"):
        units_needed([1, 2], [0.1, 0.2], [0.5, 0.6])
    with pytest.raises(ValueError, match="one accuracy per width"):
        units_needed([1, 2], [0.1, 0.2], [0.5])


def test_format_table_and_plot():
    values = {m: np.array([[[0.9, 0.92]], [[0.95, 0.93]]]) for m in METRICS}
    grid = Grid(("no dropout", "dropout"), ("all",), ((TINY,), (TINY,)), (0, 1), values)
    text = format_table(grid, ["test_acc", "test_loss"])
    assert "91.00 ± 1.41" in text and "0.940 ± 0.014" in text
    with pytest.raises(ValueError, match="metrics"):
        format_table(grid, ["accuracy"])
    with pytest.raises(ValueError, match="decimals must be an integer"):
        format_table(grid, decimals=-1)
    assert "91.0 ± 1.4" in format_table(grid, decimals=1)
    fig, ax = plt.subplots()
    plot_mean_std(ax, [1, 2], np.array([[0.5, 0.6], [0.7, 0.8]]), label="a", offset=0.1)
    with pytest.raises(ValueError, match="shape"):
        plot_mean_std(ax, [1, 2, 3], np.zeros((2, 2)), label="b")
    plt.close(fig)


# --- arguments ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"p": 1.0}, ValueError, "p must be below 1"),
        ({"input_p": -0.1}, ValueError, "input_p must be a probability"),
        ({"placement": "middle"}, ValueError, "placement must be one of"),
        ({"activation": "gelu"}, ValueError, "activation must be one of"),
        ({"hidden": ()}, TypeError, "hidden must be a non-empty sequence"),
        ({"hidden": (8, 0)}, ValueError, "hidden\\[1\\] must be a positive integer"),
        ({"n_train": 0}, ValueError, "n_train must be a positive integer"),
        ({"recipe": "fast"}, TypeError, "recipe must be a Recipe"),
    ],
)
def test_setting_rejects_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        Setting(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"epochs": 1.5}, TypeError, "epochs must be an integer"),
        ({"lr": 0}, ValueError, "lr must be a finite positive number"),
        ({"batch_size": 0}, ValueError, "batch_size must be a positive integer"),
    ],
)
def test_recipe_rejects_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        Recipe(**kwargs)


def test_batched_model_and_fit_members_reject_bad_arguments(digits):
    with pytest.raises(TypeError, match="seeds must be a non-empty sequence"):
        BatchedMLP(4, [3], 2, seeds=[])
    with pytest.raises(ValueError, match="one value or one per member"):
        BatchedMLP(4, [3], 2, seeds=[0, 1], p=[0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="seeds\\[1\\] must be an integer in"):
        BatchedMLP(4, [3], 2, seeds=[0, -1])
    model = BatchedMLP(64, [3], 10, seeds=[0, 1])
    with pytest.raises(ValueError, match="x must have shape"):
        model(torch.zeros(3, 2, 64))
    with pytest.raises(ValueError, match="m must be a member index"):
        model.member(2)
    with pytest.raises(TypeError, match="model must be a BatchedMLP"):
        fit_members(torch.nn.Linear(2, 2), digits, epochs=1)
    with pytest.raises(TypeError, match="sequence of 2 Splits"):
        fit_members(model, [digits], epochs=1)
    with pytest.raises(ValueError, match="same sizes"):
        fit_members(model, [digits, load_digits(n_train=90)], epochs=1)


def test_study_rejects_bad_arguments():
    with pytest.raises(TypeError, match="data must be a function"):
        Study(data="digits")
    study = Study(lambda seed, n: "not a split")
    with pytest.raises(TypeError, match="must return a Split"):
        study.grid([0], [0], lambda *_: TINY, seeds=[0])
    with pytest.raises(TypeError, match="make must return a Setting"):
        Study().grid([0], [0], lambda *_: "setting", seeds=[0])
    with pytest.raises(TypeError, match="seeds must be a non-empty sequence"):
        Study().grid([0], [0], lambda *_: TINY, seeds=[])
    with pytest.raises(ValueError, match="differ in their dropout"):
        compare(Study(), [0], [BASELINE, BASELINE])
    assert DROPOUT.describe() == "dropout p=0.5"
