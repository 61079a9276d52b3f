"""Unit tests of dropoutlib.experiments.when_it_helps: settings, studies, the sweeps, analysis and claims.

The batched trainer these studies run on (``dropoutlib.course.batched``) is tested in
``tests/course/test_batched.py``; the chapter's claims over seeds in ``test_when_it_helps_claims.py``.
"""

from __future__ import annotations

import dataclasses

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest

from dropoutlib.course.batched import Recipe
from dropoutlib.course.book import table
from dropoutlib.course.claims import Claim
from dropoutlib.course.data import load_digits
from dropoutlib.experiments.when_it_helps import (
    BASELINE,
    DROPOUT,
    METRICS,
    Grid,
    Setting,
    Stopped,
    Study,
    baseline_curve,
    best_ps,
    binomial_se,
    carve_validation,
    compare,
    comparison_claims,
    depth_study,
    early_stopping,
    errors_removed,
    member_claims,
    p_claims,
    p_sweep,
    placement_claims,
    placement_study,
    plot_mean_std,
    recipe_study,
    report_failures,
    size_claims,
    size_stopping_claims,
    size_sweep,
    small_gain_claims,
    stopped_row,
    stopping_claims,
    summary_rows,
    units_needed,
    width_claims,
    width_ratio_curve,
    width_ratios,
    width_sweep,
)

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = Setting(hidden=(12,), n_train=60, recipe=Recipe(epochs=5))


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


def test_summary_rows_and_plot():
    values = {m: np.array([[[0.9, 0.92]], [[0.95, 0.93]]]) for m in METRICS}
    grid = Grid(("no dropout", "dropout"), ("all",), ((TINY,), (TINY,)), (0, 1), values)
    rows = summary_rows(grid, ["test_acc", "test_loss"])
    assert rows[0] == {
        "setting": "no dropout",
        "test acc (%)": 91.0,
        "test acc SE": 1.0,
        "test loss": 0.91,
        "test loss SE": 0.01,
    }
    assert rows[1]["test loss"] == 0.94
    frame = table(rows, index="setting", digits=3)
    assert frame.loc["dropout", "test acc (%)"] == 94.0
    with pytest.raises(ValueError, match="metrics"):
        summary_rows(grid, ["accuracy"])
    with pytest.raises(ValueError, match="decimals must be an integer"):
        summary_rows(grid, decimals=-1)
    with pytest.raises(ValueError, match="column must be a column index"):
        summary_rows(grid, column=1)
    assert summary_rows(grid, decimals=1)[0]["test acc SE"] == 1.0
    fig, ax = plt.subplots()
    plot_mean_std(ax, [1, 2], np.array([[0.5, 0.6], [0.7, 0.8]]), label="a", offset=0.1)
    with pytest.raises(ValueError, match="shape"):
        plot_mean_std(ax, [1, 2, 3], np.zeros((2, 2)), label="b")
    plt.close(fig)


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


# --- the chapter's measurements and claims -------------------------------------------------------------


def _grid(rows, columns, test_acc, **metrics) -> Grid:
    """A grid with the given test accuracies (rows x columns x seeds) and zeros elsewhere."""
    test_acc = np.asarray(test_acc, dtype=float)
    values = {m: np.zeros_like(test_acc) for m in METRICS}
    values["test_acc"] = test_acc
    values.update({m: np.asarray(v, dtype=float) for m, v in metrics.items()})
    settings = tuple(tuple(dataclasses.replace(TINY, p=0.5 * j) for j in range(len(columns))) for _ in rows)
    return Grid(tuple(rows), tuple(columns), settings, tuple(range(test_acc.shape[2])), values)


def test_errors_removed_best_ps_and_width_ratios():
    sizes = _grid([10, 20], ["no", "yes"], [[[0.8, 0.9], [0.9, 0.95]], [[0.9, 0.9], [0.95, 0.9]]])
    assert np.allclose(errors_removed(sizes), [[0.5, 0.5], [0.5, 0.0]])
    ps = _grid([0.0, 0.5, 0.8], ["hidden", "input"], [[[0.9], [0.9]], [[0.95], [0.92]], [[0.93], [0.8]]])
    assert best_ps(ps) == (0.5, 0.5)
    widths = [4, 8, 16, 32, 64]
    base, other = [0.5, 0.7, 0.8, 0.85, 0.87], [0.3, 0.5, 0.7, 0.8, 0.85]
    grid = _grid(
        widths,
        ["no", "yes"],
        np.array([base, other]).T[:, :, None],
        train_acc=np.array([base, other]).T[:, :, None],
    )
    assert width_ratios(grid) == pytest.approx((2.0, 2.0))


def test_baseline_curve_reads_the_learning_curves():
    grid = compare(Study(), [0], [TINY, dataclasses.replace(TINY, p=0.5)], eval_every=1)
    curve = baseline_curve(grid)
    assert set(curve) == {"fitted", "fitted_at", "loss_min", "loss_min_epoch", "loss_end", "drift"}
    assert curve["loss_min"] <= curve["loss_end"] and curve["loss_min_epoch"] in grid.epochs
    with pytest.raises(ValueError, match="no learning curves"):
        baseline_curve(Study().grid(["a"], ["x"], lambda *_: TINY, seeds=[0]))


def test_claims_functions_return_claims():
    study = Study()
    claims = [
        member_claims(1e-7),
        comparison_claims(
            compare(
                study,
                [0],
                [TINY, dataclasses.replace(TINY, p=0.5), dataclasses.replace(TINY, p=0.5, input_p=0.2)],
                eval_every=1,
            )
        ),
        size_claims(size_sweep(study, [20, 30, 40, 50], [0, 1], base=TINY)),
        p_claims(p_sweep(study, [0.0, 0.3, 0.5, 0.7, 0.8], [0], base=TINY)),
        placement_claims(placement_study(study, [0], activations=["relu", "sigmoid"], base=TINY)),
        width_claims(width_sweep(study, [8, 16, 128], [0, 1], base=TINY, eval_every=2)),
        stopping_claims(
            compare(study, [0, 1], [TINY, dataclasses.replace(TINY, p=0.5),
                                    dataclasses.replace(TINY, p=0.5, input_p=0.2)], eval_every=2),
            early_stopping(study, [TINY], [0, 1]),
        ),
        small_gain_claims(
            depth_study(study, [1, 2], [0], base=TINY),
            recipe_study(study, [Recipe(epochs=5), Recipe(epochs=2, batch_size=30)], [0], base=TINY),
        ),
    ]
    for result in claims:
        assert result and all(isinstance(claim, Claim) and claim.evidence for claim in result)
    assert claims[4][0].holds  # with ReLU, before and after the activation are the same network


def test_claims_hold_and_fail_where_they_should():
    assert member_claims(1e-6)[0].holds and not member_claims(1e-3)[0].holds
    none = np.array([0.90, 0.91, 0.89])  # p = 0, three seeds; rows p = 0, 0.3, 0.5, 0.7, 0.8
    hidden = [0, [0.03, 0.0, 0.0], [0.02, 0.021, 0.019], [0.025, -0.005, 0.0], [0.02, -0.01, 0.005]]
    inputs = [0, [0.04, 0.0, 0.01], [0.01, -0.01, 0.0], [-0.01] * 3, [-0.05] * 3]
    pairs = zip(hidden, inputs, strict=True)
    acc = np.array([[none + np.asarray(h), none + np.asarray(i)] for h, i in pairs])
    good = _grid([0.0, 0.3, 0.5, 0.7, 0.8], ["hidden", "input"], acc)
    assert all(claim.holds for claim in p_claims(good))
    bad = _grid(good.rows, good.columns, good["test_acc"][::-1])
    assert not all(claim.holds for claim in p_claims(bad))
    clear = acc.copy()
    clear[2, 0] = [0.99, 0.99, 0.99]  # p = 0.5 ahead of p = 0.3 on every seed, by 3-5 points
    (runner,) = [c for c in p_claims(_grid(good.rows, good.columns, clear)) if "runner-up" in c.statement]
    assert not runner.holds


def test_report_failures_prints_only_what_fails(capsys):
    report_failures([Claim("holds", True, "1 < 2"), Claim("fails", False, "3 < 2")])
    assert capsys.readouterr().out == "does not hold on this data set: fails (3 < 2)\n"


# --- early stopping on a validation split ----------------------------------------------------------------


def test_carve_validation_splits_the_training_images_only():
    data = load_digits(seed=0, n_train=120)
    val = carve_validation(data, seed=0)
    assert (val.n_train, val.n_test) == (90, 30)
    train_rows = {tuple(r) for r in val.x_train.tolist()}
    val_rows = {tuple(r) for r in val.x_test.tolist()}
    all_rows = {tuple(r) for r in data.x_train.tolist()}
    assert not train_rows & val_rows and train_rows | val_rows <= all_rows  # disjoint, from training
    assert not val_rows & {tuple(r) for r in data.x_test.tolist()}  # the test set is not used
    assert set(val.y_test.tolist()) == set(range(10))  # stratified: every class validates
    small = carve_validation(load_digits(seed=0, n_train=20), seed=0)
    assert small.n_test == 10 and set(small.y_train.tolist()) == set(range(10))
    with pytest.raises(ValueError, match="fraction"):
        carve_validation(data, 0, fraction=1.0)


def test_early_stopping_reads_the_full_run_at_the_validation_minimum():
    study = Study()
    setting = dataclasses.replace(TINY, recipe=Recipe(epochs=12))
    stopped = early_stopping(study, [setting], [0, 1], every=2)
    on_validation = dataclasses.replace(setting, validation=True)
    val = study.grid([0], ["v"], lambda *_: on_validation, [0, 1], eval_every=2)
    full = study.grid([0], ["f"], lambda *_: setting, [0, 1], eval_every=2)
    for s in range(2):
        best = int(np.argmin(val.curves["test_loss"][0, 0, s]))
        assert stopped.epoch[0, s] == full.epochs[best]
        for metric in ("test_acc", "test_loss", "train_acc"):
            assert stopped[metric][0, s] == full.curves[metric][0, 0, s, best]
    # the validation run is a different run from the full one: the choice does not read the test set
    assert not np.array_equal(val.curves["test_loss"], full.curves["test_loss"])
    row = stopped_row(stopped, "early stopping")
    assert row["test acc (%)"] == pytest.approx(100 * stopped["test_acc"][0].mean(), abs=0.01)
    with pytest.raises(TypeError, match="validation=False"):
        early_stopping(study, [dataclasses.replace(setting, validation=True)], [0])


def test_the_chosen_epoch_does_not_depend_on_the_test_set():
    def shuffled_test(seed, n_train):
        data = load_digits(seed=seed, n_train=n_train)
        flipped = (data.y_test + 1) % 10  # wrong labels everywhere on the test set
        return dataclasses.replace(data, y_test=flipped)

    setting = dataclasses.replace(TINY, recipe=Recipe(epochs=10))
    a = early_stopping(Study(), [setting], [0, 1])
    b = early_stopping(Study(shuffled_test), [setting], [0, 1])
    assert np.array_equal(a.epoch, b.epoch)
    assert not np.array_equal(a["test_acc"], b["test_acc"])


def test_a_run_with_curves_at_other_epochs_is_trained_again():
    study = Study()
    study.grid([0], ["x"], lambda *_: TINY, seeds=[0], eval_every=2)
    grid = study.grid([0], ["x"], lambda *_: TINY, seeds=[0], eval_every=1)
    assert grid.epochs == (1, 2, 3, 4, 5)


def test_width_ratio_curve_per_seed_and_budget():
    base = dataclasses.replace(TINY, recipe=Recipe(epochs=6))
    widths = width_sweep(Study(), [4, 8, 16], [0, 1], base=base, eval_every=3)
    ratios = width_ratio_curve(widths)
    assert ratios["epochs"].tolist() == [3, 6]
    assert ratios["train_acc"].shape == ratios["test_acc"].shape == (2, 2)
    k = 1
    curves = widths.curves["test_acc"]
    expected = units_needed([4, 8, 16], curves[:, 0, 1, k], curves[:, 1, 1, k])
    assert ratios["test_acc"][k, 1] == pytest.approx(expected)


def test_binomial_se():
    assert binomial_se(0.5, 100) == pytest.approx(0.05)
    assert binomial_se(1.0, 540) == 0.0
    with pytest.raises(ValueError, match="accuracy"):
        binomial_se(1.5, 10)


def _stopped(test_acc, test_loss) -> Stopped:
    test_acc, test_loss = np.asarray(test_acc, float), np.asarray(test_loss, float)
    values = {"test_acc": test_acc, "test_loss": test_loss,
              "train_acc": np.ones_like(test_acc), "train_loss": np.zeros_like(test_acc)}
    seeds = tuple(range(test_acc.shape[1]))
    return Stopped((TINY,) * len(test_acc), seeds, np.full(test_acc.shape, 8), values)


def test_stopping_claims_hold_and_fail_where_they_should():
    seeds = 5
    rng = np.random.default_rng(0)
    noise = lambda scale: rng.normal(0, scale, seeds)  # noqa: E731
    acc = np.stack([0.92 + noise(0.003), 0.94 + noise(0.003), 0.94 + noise(0.003)])[:, None]
    loss = np.stack([0.70 + noise(0.05), 0.28 + noise(0.03), 0.20 + noise(0.01)])[:, None]
    main = _grid(["none", "dropout", "both"], ["all"], acc, test_loss=loss)
    tie = _stopped([0.92 + noise(0.01)], [0.28 + noise(0.04)])
    assert all(c.holds for c in stopping_claims(main, tie))
    better = _stopped([0.915 + noise(0.004)], [0.20 + noise(0.005)])  # early stopping wins by loss
    failed = [c.statement for c in stopping_claims(main, better) if not c.holds]
    assert any("dropout against early stopping, test loss" in f for f in failed)
    strong = _stopped([0.95 + noise(0.003)], [0.28 + noise(0.04)])  # and by accuracy
    assert not all(c.holds for c in stopping_claims(main, strong))


def test_size_stopping_claims_hold_and_fail_where_they_should():
    rng = np.random.default_rng(1)
    sizes, seeds = 6, 5
    drop_acc = np.linspace(0.80, 0.97, sizes)[:, None] + rng.normal(0, 0.002, (sizes, seeds))
    drop_loss = np.array([1.2, 0.6, 0.3, 0.2, 0.15, 0.1])[:, None] + rng.normal(0, 0.005, (sizes, seeds))
    acc = np.stack([drop_acc - 0.02, drop_acc], axis=1)
    loss = np.stack([drop_loss + 0.3, drop_loss], axis=1)
    grid = _grid([50, 100, 200, 400, 800, 1257], ["no", "yes"], acc, test_loss=loss)
    shift = np.array([-0.5, -0.2, 0.0, 0.1, 0.1, 0.1])[:, None]
    es_loss = drop_loss + shift + rng.normal(0, 0.01, (sizes, seeds))
    good = _stopped(drop_acc - 0.015, es_loss)
    assert all(c.holds for c in size_stopping_claims(grid, good))
    bad = _stopped(drop_acc + 0.01, drop_loss - shift)  # ahead by accuracy; the loss pattern reversed
    assert not any(c.holds for c in size_stopping_claims(grid, bad)[:1])
    assert sum(not c.holds for c in size_stopping_claims(grid, bad)) >= 5
