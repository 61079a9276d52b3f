"""The house style: what use_style promises, the role colours, new_figure and plot_history."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import matplotlib
import matplotlib.colors as mcolors
import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.axes import Axes

from dropoutlib.course.plots import (
    COLORS,
    LINESTYLES,
    OKABE_ITO,
    STYLE,
    new_figure,
    plot_history,
    use_style,
)
from dropoutlib.course.train import History


@pytest.fixture(autouse=True)
def isolated_style() -> Iterator[None]:
    """Every test starts from matplotlib's defaults and leaves the global rcParams as it found them."""
    plt.switch_backend("Agg")
    with matplotlib.rc_context():
        matplotlib.rcdefaults()
        yield
    plt.close("all")


def history(classification: bool = True) -> History:
    acc = ([0.5, 0.8, 0.9], [0.45, 0.7, 0.8]) if classification else ([], [])
    return History([1, 2, 3], [1.0, 0.5, 0.3], [1.1, 0.7, 0.6], *acc, [1.2, 0.7, 0.5])


def test_use_style_sets_every_rcparam_it_promises() -> None:
    use_style()
    rc = matplotlib.rcParams
    assert rc["figure.dpi"] == 110
    assert rc["figure.constrained_layout.use"] is True
    assert rc["axes.grid"] is True and rc["axes.axisbelow"] is True
    assert rc["axes.spines.top"] is False and rc["axes.spines.right"] is False
    assert rc["legend.frameon"] is False
    assert rc["axes.prop_cycle"].by_key()["color"] == list(OKABE_ITO.values())
    for key in ("font.size", "axes.titlesize", "axes.labelsize", "xtick.labelsize", "legend.fontsize"):
        assert rc[key] >= 10, f"{key}={rc[key]} is too small to read at 110 dpi"
    for key, value in STYLE.items():
        assert rc[key] == value or rc[key] == matplotlib.rcParams.validate[key](value), key


def test_use_style_is_idempotent() -> None:
    use_style()
    first = dict(matplotlib.rcParams)
    use_style()
    assert dict(matplotlib.rcParams) == first


def test_role_colours_are_okabe_ito_and_distinct() -> None:
    assert {"baseline", "dropout", "train", "test", "accent"} <= COLORS.keys()
    assert all(mcolors.is_color_like(c) for c in COLORS.values())
    assert len(set(COLORS.values())) == len(COLORS)
    palette = set(OKABE_ITO.values())
    for role in ("baseline", "dropout", "train", "test", "accent"):
        assert COLORS[role] in palette, role
    assert LINESTYLES["train"] != LINESTYLES["test"]


@pytest.mark.parametrize(
    ("ncols", "nrows", "shape"), [(1, 1, None), (2, 1, (2,)), (1, 3, (3,)), (3, 2, (2, 3))]
)
def test_new_figure_returns_the_right_axes(ncols: int, nrows: int, shape: tuple | None) -> None:
    fig, axes = new_figure(ncols=ncols, nrows=nrows)
    if shape is None:
        assert isinstance(axes, Axes)
    else:
        assert np.shape(axes) == shape
        assert all(isinstance(ax, Axes) for ax in np.ravel(axes))
    assert len(fig.axes) == ncols * nrows


def test_new_figure_size() -> None:
    fig, _ = new_figure(width=5, height=2.5)
    assert fig.get_size_inches().tolist() == [5.0, 2.5]
    fig, _ = new_figure(ncols=4)
    assert fig.get_size_inches()[0] <= 11.0


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [({"ncols": 0}, "ncols=0"), ({"nrows": 1.5}, "nrows=1.5"), ({"width": -1}, "width=-1")],
)
def test_new_figure_refuses_bad_arguments(kwargs: dict, fragment: str) -> None:
    with pytest.raises(ValueError) as info:
        new_figure(**kwargs)
    assert fragment in str(info.value)


def test_plot_history_draws_train_dashed_and_test_solid_in_one_colour() -> None:
    ax = plot_history(history(), metric="acc", label="dropout", color=COLORS["dropout"])
    train, test = ax.get_lines()
    assert (train.get_label(), test.get_label()) == ("dropout (train)", "dropout (test)")
    assert train.get_linestyle() == "--" and test.get_linestyle() == "-"
    assert train.get_color() == test.get_color() == COLORS["dropout"]
    assert test.get_ydata().tolist() == [0.45, 0.7, 0.8]
    assert ax.get_ylabel() == "accuracy"


def test_plot_history_takes_the_next_cycle_colour_for_each_model() -> None:
    use_style()
    _, ax = new_figure()
    plot_history(history(), ax=ax)
    plot_history(history(), ax=ax)
    colours = [line.get_color() for line in ax.get_lines()]
    assert colours[0] == colours[1] != colours[2] == colours[3]


def test_plot_history_refuses_accuracy_of_a_regression_and_unknown_metrics() -> None:
    with pytest.raises(ValueError, match="train_acc is empty"):
        plot_history(history(classification=False), metric="acc")
    with pytest.raises(ValueError, match="metric='f1'"):
        plot_history(history(), metric="f1")


def test_sample_figure_renders_at_110_dpi(tmp_path: Path) -> None:
    use_style()
    fig, ax = new_figure()
    ax.plot([0, 1, 2], [0, 1, 4], label="a curve")
    ax.set(title="Title", xlabel="x", ylabel="y")
    ax.legend()
    path = tmp_path / "sample.png"
    fig.savefig(path)
    width, height = plt.imread(path).shape[1::-1]
    assert (width, height) == (round(6.4 * 110), round(4.0 * 110))
