"""The house style of every figure in the course.

Call :func:`use_style` once at the top of a chapter, make figures with :func:`new_figure`, and colour
lines by role with :data:`COLORS` (baseline vs dropout, train vs test). Colours come from the
Okabe-Ito palette, which stays distinguishable for the common forms of colour blindness; train and
test curves also differ by line style (:data:`LINESTYLES`), so figures survive greyscale printing.
"""

from __future__ import annotations

from typing import Any

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
from cycler import cycler
from matplotlib.axes import Axes
from matplotlib.figure import Figure

__all__ = ["COLORS", "LINESTYLES", "OKABE_ITO", "STYLE", "new_figure", "plot_history", "use_style"]

#: The Okabe-Ito palette (Okabe & Ito, 2008), in the order of the colour cycle.
OKABE_ITO: dict[str, str] = {
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "bluish green": "#009E73",
    "orange": "#E69F00",
    "reddish purple": "#CC79A7",
    "sky blue": "#56B4E9",
    "yellow": "#F0E442",
    "black": "#000000",
}

#: Colours by role. ``baseline``/``dropout`` are the first two colours of the cycle.
COLORS: dict[str, str] = {
    "baseline": OKABE_ITO["blue"],
    "dropout": OKABE_ITO["vermillion"],
    "train": OKABE_ITO["bluish green"],
    "test": OKABE_ITO["orange"],
    "accent": OKABE_ITO["reddish purple"],
    "neutral": "#7F7F7F",
}

#: Line styles by role: training curves dashed, test curves solid.
LINESTYLES: dict[str, str] = {"train": "--", "test": "-"}

#: The rcParams that :func:`use_style` sets.
STYLE: dict[str, Any] = {
    "figure.dpi": 110,
    "savefig.dpi": 110,
    "figure.figsize": (6.4, 4.0),
    "figure.constrained_layout.use": True,
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
    "font.size": 11,
    "axes.titlesize": 12.5,
    "axes.titleweight": "bold",
    "axes.labelsize": 11,
    "xtick.labelsize": 10,
    "ytick.labelsize": 10,
    "legend.fontsize": 10,
    "legend.title_fontsize": 10,
    "legend.frameon": False,
    "axes.prop_cycle": cycler(color=list(OKABE_ITO.values())),
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.axisbelow": True,
    "grid.color": "#D9D9D9",
    "grid.linewidth": 0.7,
    "grid.alpha": 1.0,
    "lines.linewidth": 2.0,
    "lines.markersize": 6,
    "image.cmap": "viridis",
}


def use_style() -> None:
    """Apply the house style (:data:`STYLE`) to matplotlib's global ``rcParams``.

    Readable sizes at 110 dpi (font 11 pt, titles 12.5 pt), a light grid behind the data, the
    colour-blind-safe Okabe-Ito colour cycle, no top/right spines, constrained layout (labels are
    never cut off) and legends without a frame. Idempotent; affects figures created afterwards.

    Example:
        >>> use_style()
        >>> mpl.rcParams["figure.dpi"], mpl.rcParams["legend.frameon"]
        (110.0, False)
    """
    mpl.rcParams.update(STYLE)


def new_figure(
    ncols: int = 1,
    nrows: int = 1,
    width: float | None = None,
    height: float | None = None,
    *,
    sharex: bool = False,
    sharey: bool = False,
) -> tuple[Figure, Any]:
    """A figure with a grid of ``nrows x ncols`` axes, sized for the book's page.

    Default size: 6.4 x 4.0 inches for one panel; 3.6 inches per column (at most 11) and 3.2 inches
    per row for several. ``axes`` is returned as by ``plt.subplots`` (squeezed): one ``Axes`` for a
    single panel, a 1-D array for one row or column, a 2-D array ``(nrows, ncols)`` otherwise.
    Call :func:`use_style` first for the house style.

    Example:
        >>> fig, axes = new_figure(ncols=2)
        >>> len(axes), fig.get_size_inches().tolist()
        (2, [7.2, 4.0])
        >>> plt.close(fig)
    """
    for name, value in (("ncols", ncols), ("nrows", nrows)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {name}={value!r}")
    for name, size in (("width", width), ("height", height)):
        if size is not None and not (isinstance(size, int | float) and size > 0):
            raise ValueError(f"{name} must be a positive number of inches or None, got {name}={size!r}")
    single = ncols == 1 and nrows == 1
    if width is None:
        width = 6.4 if single else min(3.6 * ncols, 11.0)
    if height is None:
        height = 4.0 if nrows == 1 else 3.2 * nrows
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(width, height), sharex=sharex, sharey=sharey, squeeze=True
    )
    return fig, axes


def plot_history(
    history: Any,
    metric: str = "loss",
    ax: Axes | None = None,
    label: str | None = None,
    color: str | None = None,
) -> Axes:
    """Plot the training (dashed) and test (solid) curves of a :class:`~dropoutlib.course.train.History`.

    ``metric="loss"`` plots ``train_loss``/``test_loss``, ``"acc"`` plots ``train_acc``/``test_acc``,
    ``"objective"`` plots the training objective (dropout active) against the evaluation-mode
    training loss. Both curves share ``color`` (default: the axes' next colour) so that several
    models can share one axes; ``label`` names the model in the legend.

    Returns:
        The axes (a new figure's if ``ax`` is None).

    Example:
        >>> from dropoutlib.course.train import History
        >>> h = History([1, 2], [0.9, 0.5], [1.0, 0.7], [], [], [1.1, 0.6])
        >>> ax = plot_history(h, label="baseline", color=COLORS["baseline"])
        >>> [line.get_label() for line in ax.get_lines()]
        ['baseline (train)', 'baseline (test)']
        >>> plt.close(ax.figure)
    """
    pairs = {
        "loss": (("train_loss", "train"), ("test_loss", "test")),
        "acc": (("train_acc", "train"), ("test_acc", "test")),
        "objective": (("objective", "objective, dropout on"), ("train_loss", "train, dropout off")),
    }
    if metric not in pairs:
        raise ValueError(f"metric must be one of {tuple(pairs)}, got metric={metric!r}")
    if ax is None:
        _, ax = new_figure()
    for attr, _ in pairs[metric]:
        if not getattr(history, attr):
            raise ValueError(f"history.{attr} is empty (accuracies exist only for classification)")
    epochs = np.asarray(history.epoch)
    for (attr, role), style in zip(pairs[metric], ("--", "-"), strict=True):
        name = role if label is None else f"{label} ({role})"
        (line,) = ax.plot(epochs, getattr(history, attr), linestyle=style, color=color, label=name)
        color = line.get_color()  # the second curve takes the first one's colour
    ax.set_xlabel("epoch")
    ax.set_ylabel({"loss": "loss", "acc": "accuracy", "objective": "loss"}[metric])
    return ax
