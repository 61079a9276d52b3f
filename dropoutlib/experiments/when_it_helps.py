r"""When does dropout help, and how much: the experiments behind chapter 8, many networks at a time.

The chapter trains the same small MLP hundreds of times: with and without dropout, for several seeds,
training-set sizes, drop probabilities, placements, widths, depths and training recipes. One network
after the other that takes minutes on a laptop core, so this module trains them side by side, as
one *batched* model.

**Batched training.** :class:`BatchedMLP` holds :math:`M` independent networks ("members"). Member
:math:`m` has its own weights :math:`W^{(m)}_l` (stacked into a tensor of shape ``(M, in, out)``)
and computes

.. math::

    h^{(m)}_l = \phi\big(h^{(m)}_{l-1} W^{(m)}_l + b^{(m)}_l\big),

for all members at once with one batched matrix product (``torch.baddbmm``). Training minimizes the
*sum* of the members' losses, :math:`L = \sum_m L_m(\theta_m)`. Member :math:`m`'s parameters appear
only in :math:`L_m`, so :math:`\partial L / \partial \theta_m = \partial L_m / \partial \theta_m`, and
Adam's update is computed element by element: every member follows exactly the trajectory it would
follow alone. Each member also draws its initial weights, its minibatch order and its dropout masks
from its own generators, seeded by its seed: its result does not depend on which other members share
the batch (the tests check both facts against separately trained ``nn.Sequential`` networks).

**The pieces.**

- :class:`Recipe` (how to train: epochs, learning rate, minibatch size) and :class:`Setting` (what
  to train: drop probabilities on the inputs, hidden layers and outputs, placement of the hidden
  dropout before or after the activation, hidden widths, activation, training-set size, recipe).
- :class:`BatchedMLP` and :func:`fit_members`: the batched networks and their training loop;
  :meth:`BatchedMLP.member` returns one member as an ordinary ``nn.Sequential``.
- :class:`Study`: trains settings over seeds on one data source (:func:`digits_data` by default, or
  any function ``(seed, n_train) -> Split``, e.g. :func:`idx_data`, a folder of MNIST-style files
  read by :func:`~dropoutlib.course.data.load_idx`), grouping compatible settings into batched models and
  remembering every run, so a setting shared by two sweeps is trained once. :meth:`Study.grid`
  returns a :class:`Grid` of results (rows x columns x seeds).
- The chapter's experiments: :func:`compare`, :func:`size_sweep`, :func:`p_sweep`,
  :func:`placement_study`, :func:`width_sweep`, :func:`depth_study`, :func:`recipe_study`.
- Analysis: :func:`units_needed`, :func:`errors_removed`, :func:`baseline_curve`,
  :func:`summary_rows` (the rows of a results table, for :func:`~dropoutlib.course.book.table`),
  :func:`plot_mean_std`.
- The chapter's claims, one function per section (:func:`member_claims`, :func:`comparison_claims`,
  :func:`size_claims`, :func:`p_claims`, :func:`placement_claims`, :func:`width_claims`,
  :func:`small_gain_claims`): each takes what the section measured and returns a list of
  :class:`~dropoutlib.course.claims.Claim`, with its thresholds. The chapter and
  ``tests/chapters/test_when_it_helps_claims.py`` call the same functions;
  :func:`report_failures` is the chapter's lenient ``check`` on a data set other than the digits.

Notation: ``p`` is the probability of dropping a unit, ``q = 1 - p`` of keeping it. The 2014 JMLR
paper writes ``p`` for the probability of *retaining* a unit: its ``p = 0.5`` is ours too, but its
input retention ``0.8`` is our ``input_p = 0.2``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from dropoutlib._validation import check_positive_int, check_widths
from dropoutlib.course._threads import torch_threads
from dropoutlib.course.batched import (
    ACTIVATIONS,
    DEFAULT_RECIPE,
    PLACEMENTS,
    BatchedMLP,
    Recipe,
    _check_drop,
    fit_members,
)
from dropoutlib.course.claims import Claim, above, below
from dropoutlib.course.data import Split, load_digits, load_idx
from dropoutlib.course.seeding import check_seed
from dropoutlib.course.stats import _as_array, paired_gain

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "BASELINE",
    "DROPOUT",
    "DROPOUT_INPUT",
    "HIDDEN",
    "INPUT_P",
    "METRICS",
    "N_TRAIN",
    "P",
    "baseline_curve",
    "best_ps",
    "binomial_se",
    "carve_validation",
    "early_stopping",
    "size_stopping_claims",
    "stopping_claims",
    "stopped_row",
    "width_ratio_curve",
    "Stopped",
    "STOP_EVERY",
    "VALIDATION_FRACTION",
    "WIDTH_EVERY",
    "WIDTH_RECIPE",
    "runner_up",
    "compare",
    "comparison_claims",
    "depth_study",
    "digits_data",
    "errors_removed",
    "idx_data",
    "member_claims",
    "p_claims",
    "p_sweep",
    "placement_claims",
    "placement_study",
    "plot_mean_std",
    "recipe_study",
    "report_failures",
    "size_claims",
    "size_sweep",
    "small_gain_claims",
    "summary_rows",
    "units_needed",
    "width_claims",
    "width_ratios",
    "width_sweep",
    "Grid",
    "Setting",
    "Study",
]
#: What :class:`Grid` records for every run (``gap`` is ``train_acc - test_acc``).
METRICS: tuple[str, ...] = ("train_acc", "test_acc", "gap", "train_loss", "test_loss")

#: The chapter's network: 64 inputs, two hidden ReLU layers of 128 units, 10 classes.
HIDDEN: tuple[int, ...] = (128, 128)
#: Hidden drop probability of the dropout network, and input drop probability where inputs are dropped.
P = 0.5
INPUT_P = 0.2
#: Training-set size of the experiments that do not vary it (a quarter of the digits' training set).
N_TRAIN = 300


@dataclass(frozen=True)
class Setting:
    r"""One network configuration, trained with one :class:`Recipe`.

    The network is an MLP with hidden widths ``hidden`` and activation ``activation``; dropout with
    probability ``input_p`` on its inputs, ``p`` in every hidden layer (``placement="after"``:
    ``Linear, act, Dropout`` as in :func:`~course.mlp`; ``"before"``: ``Linear, Dropout, act``)
    and ``output_p`` on its outputs (the logits; shown in the chapter as what not to do). A
    probability of 0 means no dropout there. ``n_train`` is the training-set size (``None``: all
    of it). ``validation=True`` trains on the training part of :meth:`Study.validation_split` and
    evaluates on its validation images instead of the test set (the "test" metrics of such a run
    are validation metrics): the run that chooses an early-stopping epoch.

    Example:
        >>> Setting(p=0.5).describe()
        'dropout p=0.5'
        >>> Setting(p=0.5, placement="before", hidden=[32]).hidden
        (32,)
        >>> Setting(p=1.0)
        Traceback (most recent call last):
        ...
        ValueError: p must be below 1 (with p=1 every unit is dropped and 1/q is infinite)
    """

    p: float = 0.0
    input_p: float = 0.0
    output_p: float = 0.0
    placement: str = "after"
    hidden: tuple[int, ...] = HIDDEN
    activation: str = "relu"
    n_train: int | None = N_TRAIN
    recipe: Recipe = DEFAULT_RECIPE
    validation: bool = False

    def __post_init__(self) -> None:
        for name in ("p", "input_p", "output_p"):
            object.__setattr__(self, name, _check_drop(getattr(self, name), name))
        if self.placement not in PLACEMENTS:
            raise ValueError(f"placement must be one of {PLACEMENTS}, got placement={self.placement!r}")
        object.__setattr__(self, "hidden", check_widths(self.hidden))
        if self.activation not in ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {tuple(ACTIVATIONS)}, got activation={self.activation!r}"
            )
        if self.n_train is not None:
            object.__setattr__(self, "n_train", check_positive_int(self.n_train, "n_train"))
        if not isinstance(self.recipe, Recipe):
            raise TypeError(
                f"recipe must be a Recipe, got recipe={self.recipe!r} ({type(self.recipe).__name__})"
            )
        if not isinstance(self.validation, bool):
            raise TypeError(f"validation must be True or False, got validation={self.validation!r}")

    def describe(self) -> str:
        """The dropout part of the setting in a few words (``"no dropout"`` when there is none).

        Example:
            >>> Setting(p=0.5, input_p=0.2, placement="before").describe()
            'input 0.2, dropout p=0.5 before the activation'
        """
        parts = []
        if self.input_p:
            parts.append(f"input {self.input_p:g}")
        if self.p:
            where = " before the activation" if self.placement == "before" else ""
            parts.append(f"dropout p={self.p:g}{where}")
        if self.output_p:
            parts.append(f"output {self.output_p:g}")
        return ", ".join(parts) if parts else "no dropout"


#: The chapter's three networks: without dropout, with hidden dropout, with input and hidden dropout.
BASELINE = Setting()
DROPOUT = Setting(p=P)
DROPOUT_INPUT = Setting(p=P, input_p=INPUT_P)


# --- studies ----------------------------------------------------------------------------------------


def digits_data(seed: int, n_train: int | None) -> Split:
    """The digits split for ``seed``, with ``n_train`` training images (``None``: all 1257).

    The default data source of a :class:`Study`: ``load_digits(seed=seed, n_train=n_train)``.

    Example:
        >>> digits_data(0, 100).n_train, digits_data(0, None).n_train
        (100, 1257)
    """
    return load_digits(seed=seed, n_train=n_train)


def idx_data(folder: Any, *, n_test: int | None = None) -> Callable[[int, int | None], Split]:
    """A data source for :class:`Study` from a folder of MNIST-style IDX files (the chapter's switch).

    Returns ``source(seed, n_train) = load_idx(folder, n_train=n_train, n_test=n_test, seed=seed)``:
    for every seed a stratified training subsample of ``n_train`` images and a test subsample of
    ``n_test`` images (all of them for ``None``), standardized with the training subsample's
    statistics (see :func:`~dropoutlib.course.data.load_idx`). The files are read and checked once, now,
    so a wrong folder fails here rather than in the middle of a sweep.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from dropoutlib.course.data import IDX_FILES
        >>> def idx(dims, values):  # magic number (unsigned bytes), sizes, values
        ...     sizes = b"".join(d.to_bytes(4, "big") for d in dims)
        ...     return bytes([0, 0, 8, len(dims)]) + sizes + bytes(values)
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     for field, stem in IDX_FILES.items():
        ...         n = 8 if "train" in field else 4
        ...         images, labels = idx([n, 2, 2], range(4 * n)), idx([n], [0, 1] * (n // 2))
        ...         _ = (Path(folder) / stem).write_bytes(images if field.startswith("x") else labels)
        ...     source = idx_data(folder, n_test=2)
        ...     split = source(0, 4)
        >>> split.n_train, split.n_test, split.n_features
        (4, 2, 4)
    """
    load_idx(folder, n_test=n_test)  # fail early on a missing or malformed file

    def source(seed: int, n_train: int | None) -> Split:
        return load_idx(folder, n_train=n_train, n_test=n_test, seed=seed)

    return source


#: Share of a training set held out (stratified) as validation images, to choose a stopping epoch.
VALIDATION_FRACTION = 0.25
#: Early stopping looks at the validation loss every this many epochs (:func:`early_stopping`).
STOP_EVERY = 2


def carve_validation(split: Split, seed: int, fraction: float = VALIDATION_FRACTION) -> Split:
    """Cut ``split``'s training images in two: train on one part, validate on the other.

    Returns a :class:`Split` whose training part is a stratified, seeded (``seed``) ``1 - fraction``
    of ``split``'s training images and whose "test" part is the rest, the validation images; the
    rounding keeps at least one image per class on each side. ``split``'s test images are not used.

    Example:
        >>> data = digits_data(0, 300)
        >>> val = carve_validation(data, 0)
        >>> val.n_train, val.n_test, bool(val.x_test.shape[1] == data.n_features)
        (225, 75, True)
    """
    from sklearn.model_selection import train_test_split

    fraction = float(fraction)
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be in (0, 1), got fraction={fraction!r}")
    labels = split.y_train.numpy()
    n_classes = len(np.unique(labels))
    n_val = min(max(round(fraction * split.n_train), n_classes), split.n_train - n_classes)
    if n_val < n_classes:
        raise ValueError(
            f"{split.n_train} training images cannot give {n_classes} classes "
            "a validation and a training image each"
        )
    train, val = train_test_split(
        np.arange(split.n_train), test_size=n_val, stratify=labels, random_state=check_seed(seed)
    )
    train, val = torch.from_numpy(np.sort(train)), torch.from_numpy(np.sort(val))
    return Split(
        split.x_train[train], split.y_train[train], split.x_train[val], split.y_train[val],
        name=f"{split.name} (validation)",
    )


def _evaluated(setting: Setting, eval_every: int) -> tuple[int, ...]:
    """The epochs at which :func:`fit_members` records a run of ``setting`` with ``eval_every``."""
    epochs = setting.recipe.epochs
    return tuple(e for e in range(1, epochs + 1) if e % eval_every == 0 or e == epochs)


@dataclass
class _Run:
    final: dict[str, float]
    curves: dict[str, np.ndarray] | None = None
    epochs: tuple[int, ...] | None = None


@dataclass(frozen=True)
class Grid:
    """Results of a grid of settings over seeds: ``rows x columns``, every cell trained for each seed.

    Attributes:
        rows, columns: the labels of the rows and columns (numbers or strings).
        settings: the :class:`Setting` of each cell, a tuple of rows of columns.
        seeds: the seeds.
        values: for every name of :data:`METRICS`, an array of shape ``(rows, columns, seeds)``.
        epochs, curves: when the grid was run with ``eval_every``: the evaluated epochs, and for
            ``train_acc``, ``test_acc``, ``train_loss``, ``test_loss`` an array of shape
            ``(rows, columns, seeds, epochs)``; otherwise ``None``.

    Example:
        >>> study = Study()
        >>> tiny = Setting(hidden=(8,), n_train=50, recipe=Recipe(epochs=3))
        >>> grid = study.grid([0.0, 0.5], ["p"], lambda p, _: dataclasses.replace(tiny, p=p), seeds=[0, 1])
        >>> grid["test_acc"].shape, grid.mean("gap").shape
        ((2, 1, 2), (2, 1))
    """

    rows: tuple[Any, ...]
    columns: tuple[Any, ...]
    settings: tuple[tuple[Setting, ...], ...]
    seeds: tuple[int, ...]
    values: dict[str, np.ndarray]
    epochs: tuple[int, ...] | None = None
    curves: dict[str, np.ndarray] | None = field(default=None, repr=False)

    def __getitem__(self, metric: str) -> np.ndarray:
        if metric not in self.values:
            raise KeyError(f"metric must be one of {METRICS}, got {metric!r}")
        return self.values[metric]

    def mean(self, metric: str) -> np.ndarray:
        """Mean over seeds, shape ``(rows, columns)``."""
        return self[metric].mean(axis=2)

    def std(self, metric: str) -> np.ndarray:
        """Standard deviation over seeds (``ddof=1``; 0 for a single seed), shape ``(rows, columns)``."""
        values = self[metric]
        return values.std(axis=2, ddof=1) if values.shape[2] > 1 else np.zeros(values.shape[:2])

    def gain(self, metric: str = "test_acc", base: int = 0, other: int = 1) -> np.ndarray:
        """Per-seed difference ``other - base`` between two columns, shape ``(rows, seeds)``.

        With the default columns (0: no dropout, 1: dropout) and ``"test_acc"``: the accuracy that
        dropout adds, per row and seed. Paired by seed: same data, initial weights and order.
        """
        values = self[metric]
        for name, index in (("base", base), ("other", other)):
            if not -values.shape[1] <= index < values.shape[1]:
                raise IndexError(f"{name}={index} is not a column index (the grid has {values.shape[1]})")
        return values[:, other] - values[:, base]


class Study:
    """Trains :class:`Setting` s over seeds on one data source, and remembers every run.

    ``data(seed, n_train)`` must return a :class:`~dropoutlib.course.data.Split` (classification, int64
    labels); the default is :func:`digits_data`. A run is fixed by its setting and its seed: the seed
    picks the data split, the initial weights, the minibatch order and the dropout masks, so two
    settings with the same seed are *paired* (same data, same start). Settings that share the
    architecture, the training-set size and the recipe are trained together as one
    :class:`BatchedMLP`; a run already done is not repeated (asking again returns the same numbers).

    Example:
        >>> study = Study()
        >>> tiny = Setting(hidden=(8,), n_train=50, recipe=Recipe(epochs=3))
        >>> grid = study.grid(["no dropout", "dropout"], ["digits"],
        ...                   lambda row, _: dataclasses.replace(tiny, p=0.5 * (row == "dropout")), seeds=[0])
        >>> study.n_runs
        2
    """

    def __init__(self, data: Callable[[int, int | None], Split] = digits_data) -> None:
        if not callable(data):
            raise TypeError(f"data must be a function (seed, n_train) -> Split, got data={data!r}")
        self.data = data
        self._runs: dict[tuple[Setting, int], _Run] = {}
        self._splits: dict[tuple[int, int | None], Split] = {}

    @property
    def n_runs(self) -> int:
        """How many (setting, seed) runs have been trained so far."""
        return len(self._runs)

    def split(self, seed: int, n_train: int | None) -> Split:
        """The data for ``seed`` and ``n_train`` (loaded once, then remembered)."""
        key = (check_seed(seed), n_train)
        if key not in self._splits:
            split = self.data(seed, n_train)
            if not isinstance(split, Split):
                raise TypeError(f"data(seed, n_train) must return a Split, got {type(split).__name__}")
            self._splits[key] = split
        return self._splits[key]

    def validation_split(self, seed: int, n_train: int | None) -> Split:
        """The training images of :meth:`split` cut in two, stratified and seeded by ``seed``: a
        :class:`Split` whose training part keeps ``1 - VALIDATION_FRACTION`` of them and whose
        "test" part holds the rest, the validation images (at least one per class on each side).
        The test set plays no part. Remembered like :meth:`split`.
        """
        key = (check_seed(seed), n_train, "validation")
        if key not in self._splits:
            self._splits[key] = carve_validation(self.split(seed, n_train), seed)
        return self._splits[key]

    def _train(self, jobs: list[tuple[Setting, int]], eval_every: int | None) -> None:
        groups: dict[tuple[Any, ...], list[tuple[Setting, int]]] = {}
        for setting, seed in jobs:
            key = (setting.hidden, setting.activation, setting.n_train, setting.recipe, setting.validation)
            groups.setdefault(key, []).append((setting, seed))
        for (hidden, activation, n_train, recipe, validation), members in groups.items():
            part = self.validation_split if validation else self.split
            splits = [part(seed, n_train) for _, seed in members]
            n_classes = max(int(torch.cat([s.y_train, s.y_test]).max()) for s in splits) + 1
            model = BatchedMLP(
                splits[0].n_features,
                hidden,
                n_classes,
                seeds=[seed for _, seed in members],
                p=[s.p for s, _ in members],
                input_p=[s.input_p for s, _ in members],
                output_p=[s.output_p for s, _ in members],
                placement=[s.placement for s, _ in members],
                activation=activation,
            )
            with torch_threads(1):  # small matrices: one thread is faster and does not fight others
                history = fit_members(
                    model,
                    splits,
                    epochs=recipe.epochs,
                    lr=recipe.lr,
                    batch_size=recipe.batch_size,
                    eval_every=eval_every,
                )
            for m, job in enumerate(members):
                final = {
                    k: float(getattr(history, k)[m, -1])
                    for k in ("train_acc", "test_acc", "train_loss", "test_loss")
                }
                final["gap"] = final["train_acc"] - final["test_acc"]
                curves = None
                if eval_every is not None:
                    curves = {
                        k: getattr(history, k)[m].copy()
                        for k in ("train_acc", "test_acc", "train_loss", "test_loss")
                    }
                self._runs[job] = _Run(final, curves, tuple(history.epoch) if curves else None)

    def grid(
        self,
        rows: Sequence[Hashable],
        columns: Sequence[Hashable],
        make: Callable[[Any, Any], Setting],
        seeds: Sequence[int],
        *,
        eval_every: int | None = None,
    ) -> Grid:
        """Train ``make(row, column)`` for every row, column and seed; return the :class:`Grid`.

        With ``eval_every``, every run also records its learning curves (evaluated every that many
        epochs, and after the last); runs remembered without these curves (none, or evaluated at
        other epochs) are trained again to get them.
        """
        rows, columns = tuple(rows), tuple(columns)
        if not rows or not columns:
            raise ValueError("rows and columns must each hold at least one label")
        if not callable(make):
            raise TypeError(f"make must be a function (row, column) -> Setting, got make={make!r}")
        if isinstance(seeds, str) or not isinstance(seeds, Sequence) or len(seeds) == 0:
            raise TypeError(f"seeds must be a non-empty sequence of seeds, got seeds={seeds!r}")
        seeds = tuple(check_seed(s, f"seeds[{i}]") for i, s in enumerate(seeds))
        if eval_every is not None:
            eval_every = check_positive_int(eval_every, "eval_every")
        settings = tuple(tuple(make(r, c) for c in columns) for r in rows)
        for row in settings:
            for s in row:
                if not isinstance(s, Setting):
                    raise TypeError(f"make must return a Setting, got {s!r}")
        jobs: list[tuple[Setting, int]] = []
        for row in settings:
            for s in row:
                for seed in seeds:
                    run = self._runs.get((s, seed))
                    wanted = None if eval_every is None else _evaluated(s, eval_every)
                    curves = wanted is None or (run is not None and run.epochs == wanted)
                    if (run is None or not curves) and (s, seed) not in jobs:
                        jobs.append((s, seed))
        if jobs:
            self._train(jobs, eval_every)
        runs = [[[self._runs[(s, seed)] for seed in seeds] for s in row] for row in settings]
        values = {
            m: np.array([[[run.final[m] for run in cell] for cell in row] for row in runs]) for m in METRICS
        }
        epochs, curves = None, None
        if eval_every is not None:
            epochs = runs[0][0][0].epochs
            if any(run.epochs != epochs for row in runs for cell in row for run in cell):
                raise ValueError("the runs of a grid with curves need the same number of epochs")
            curves = {
                m: np.array([[[run.curves[m] for run in cell] for cell in row] for row in runs])  # type: ignore[index]
                for m in ("train_acc", "test_acc", "train_loss", "test_loss")
            }
        return Grid(rows, columns, settings, seeds, values, epochs, curves)


# --- the chapter's experiments ----------------------------------------------------------------------


def _columns(p: float) -> tuple[str, str]:
    return ("no dropout", f"dropout p={p:g}")


def compare(
    study: Study,
    seeds: Sequence[int],
    settings: Sequence[Setting] = (BASELINE, DROPOUT, DROPOUT_INPUT),
    *,
    eval_every: int | None = 2,
) -> Grid:
    """Baseline against dropout: one row per setting (labelled by :meth:`Setting.describe`), one column.

    Records learning curves every ``eval_every`` epochs.

    Example:
        >>> tiny = [Setting(hidden=(8,), n_train=50, recipe=Recipe(epochs=4), p=p) for p in (0.0, 0.5)]
        >>> grid = compare(Study(), [0], tiny)
        >>> grid.rows, grid.epochs
        (('no dropout', 'dropout p=0.5'), (2, 4))
    """
    settings = tuple(settings)
    labels = [s.describe() for s in settings]
    if len(set(labels)) != len(labels):
        raise ValueError(f"the settings must differ in their dropout, got {labels}")
    by_label = dict(zip(labels, settings, strict=True))
    return study.grid(labels, ["all"], lambda row, _: by_label[row], seeds, eval_every=eval_every)


def size_sweep(
    study: Study, sizes: Sequence[int], seeds: Sequence[int], *, base: Setting = BASELINE, p: float = P
) -> Grid:
    """Training-set size against dropout: rows ``sizes``, columns no dropout / dropout ``p``.

    Example:
        >>> tiny = Setting(hidden=(8,), recipe=Recipe(epochs=2))
        >>> size_sweep(Study(), [20, 40], [0], base=tiny).gain().shape
        (2, 1)
    """
    sizes = [check_positive_int(n, "sizes[i]") for n in sizes]
    p = _check_drop(p, "p")
    return study.grid(
        sizes,
        _columns(p),
        lambda n, c: dataclasses.replace(base, n_train=n, p=0.0 if c == "no dropout" else p),
        seeds,
    )


def p_sweep(study: Study, ps: Sequence[float], seeds: Sequence[int], *, base: Setting = BASELINE) -> Grid:
    """Drop probability: rows ``ps``; column ``"hidden"`` drops hidden units, column ``"input"`` inputs.

    The other probability stays at ``base``'s (0 by default), so each column shows one kind of
    dropout alone. Row ``p = 0`` is the same network in both columns.

    Example:
        >>> tiny = Setting(hidden=(8,), n_train=50, recipe=Recipe(epochs=2))
        >>> p_sweep(Study(), [0.0, 0.5], [0], base=tiny).columns
        ('hidden', 'input')
    """
    ps = [_check_drop(p, "ps[i]") for p in ps]

    def make(p: float, where: str) -> Setting:
        return dataclasses.replace(base, **({"p": p} if where == "hidden" else {"input_p": p}))

    return study.grid(ps, ("hidden", "input"), make, seeds)


#: The rows of :func:`placement_study`: a label and the drop probabilities it sets.
_PLACEMENT_ROWS: dict[str, dict[str, Any]] = {
    "no dropout": {},
    "after the activation": {"p": P},
    "before the activation": {"p": P, "placement": "before"},
    "inputs only": {"input_p": INPUT_P},
    "outputs (logits)": {"output_p": P},
}


def placement_study(
    study: Study,
    seeds: Sequence[int],
    *,
    activations: Sequence[str] = ("relu", "tanh"),
    base: Setting = BASELINE,
) -> Grid:
    """Where the dropout layer goes: rows are placements, columns activations.

    Rows: no dropout; hidden dropout ``P`` after the activation; the same before the activation;
    input dropout ``INPUT_P`` only; dropout ``P`` on the outputs (logits) only.

    Example:
        >>> tiny = Setting(hidden=(8,), n_train=50, recipe=Recipe(epochs=2))
        >>> grid = placement_study(Study(), [0], activations=["relu"], base=tiny)
        >>> grid.rows[1:3]
        ('after the activation', 'before the activation')
    """
    for a in activations:
        if a not in ACTIVATIONS:
            raise ValueError(f"activations must be names from {tuple(ACTIVATIONS)}, got {a!r}")
    return study.grid(
        list(_PLACEMENT_ROWS),
        list(activations),
        lambda row, act: dataclasses.replace(base, activation=act, **_PLACEMENT_ROWS[row]),
        seeds,
    )


#: The width sweep's budget: full-batch Adam as :data:`DEFAULT_RECIPE`, but 200 steps (dropout
#: networks converge slower, and 40 steps mixed that with capacity), evaluated every 40 steps.
WIDTH_RECIPE = dataclasses.replace(DEFAULT_RECIPE, epochs=200)
WIDTH_EVERY = 40


def width_sweep(
    study: Study,
    widths: Sequence[int],
    seeds: Sequence[int],
    *,
    base: Setting = BASELINE,
    p: float = P,
    eval_every: int | None = None,
) -> Grid:
    """Hidden width (every hidden layer as wide): rows ``widths``, columns no dropout / dropout ``p``.

    With ``eval_every``, the runs record their curves, so that :func:`width_ratio_curve` can read the
    ratio after each budget of steps.

    Example:
        >>> tiny = Setting(hidden=(8,), n_train=50, recipe=Recipe(epochs=2))
        >>> width_sweep(Study(), [4, 8], [0], base=tiny).settings[1][1].hidden
        (8,)
    """
    widths = [check_positive_int(w, "widths[i]") for w in widths]
    p = _check_drop(p, "p")
    depth = len(base.hidden)
    return study.grid(
        widths,
        _columns(p),
        lambda w, c: dataclasses.replace(base, hidden=(w,) * depth, p=0.0 if c == "no dropout" else p),
        seeds,
        eval_every=eval_every,
    )


def depth_study(
    study: Study, depths: Sequence[int], seeds: Sequence[int], *, base: Setting = BASELINE, p: float = P
) -> Grid:
    """Number of hidden layers, each as wide as ``base``'s first: rows ``depths``, columns no dropout / ``p``.

    Example:
        >>> tiny = Setting(hidden=(8,), n_train=50, recipe=Recipe(epochs=2))
        >>> depth_study(Study(), [1, 2], [0], base=tiny).settings[1][0].hidden
        (8, 8)
    """
    depths = [check_positive_int(d, "depths[i]") for d in depths]
    p = _check_drop(p, "p")
    width = base.hidden[0]
    return study.grid(
        depths,
        _columns(p),
        lambda d, c: dataclasses.replace(base, hidden=(width,) * d, p=0.0 if c == "no dropout" else p),
        seeds,
    )


def recipe_study(
    study: Study,
    recipes: Sequence[Recipe],
    seeds: Sequence[int],
    *,
    base: Setting = BASELINE,
    p: float = P,
) -> Grid:
    """Training recipe: rows ``recipes`` (labelled by :meth:`Recipe.describe`), columns no dropout / ``p``.

    Example:
        >>> tiny = Setting(hidden=(8,), n_train=50)
        >>> recipe_study(Study(), [Recipe(epochs=2), Recipe(epochs=1, batch_size=25)], [0], base=tiny).rows
        ('full batch, lr 0.01, 2 epochs', 'minibatches of 25, lr 0.01, 1 epochs')
    """
    recipes = list(recipes)
    for r in recipes:
        if not isinstance(r, Recipe):
            raise TypeError(f"recipes must hold Recipe objects, got {r!r}")
    p = _check_drop(p, "p")
    by_label = {r.describe(): r for r in recipes}
    return study.grid(
        list(by_label),
        _columns(p),
        lambda label, c: dataclasses.replace(base, recipe=by_label[label], p=0.0 if c == "no dropout" else p),
        seeds,
    )


@dataclass(frozen=True)
class Stopped:
    """What :func:`early_stopping` measured: one row per setting, one column per seed.

    Attributes:
        settings, seeds: what was trained.
        epoch: the stopping epoch (1-based) chosen on the validation images, shape ``(settings, seeds)``.
        values: ``train_acc``, ``test_acc``, ``train_loss``, ``test_loss`` of the network trained on all
            the training images, read at that epoch; each of shape ``(settings, seeds)``.
    """

    settings: tuple[Setting, ...]
    seeds: tuple[int, ...]
    epoch: np.ndarray
    values: dict[str, np.ndarray]

    def __getitem__(self, metric: str) -> np.ndarray:
        return self.values[metric]


def early_stopping(
    study: Study, settings: Sequence[Setting], seeds: Sequence[int], *, every: int = STOP_EVERY
) -> Stopped:
    """Early stopping with the epoch chosen on a validation split carved from the training images.

    For every setting and seed: (1) the setting is trained on the training part of
    :meth:`Study.validation_split` (a quarter of its training images held out) for its recipe's
    epochs, evaluated every ``every`` epochs, and the evaluated epoch of lowest validation loss is
    chosen; (2) the same setting, from the same
    initial weights, trained on *all* its training images (the run :meth:`Study.grid` trains for it
    anyway, now with a curve) is read at that epoch (the retraining recipe of Goodfellow et al.,
    algorithm 7.2). The test set plays no part in the choice. Both runs are remembered by ``study``.

    Example:
        >>> tiny = Setting(hidden=(8,), n_train=60, recipe=Recipe(epochs=5))
        >>> stopped = early_stopping(Study(), [tiny], [0, 1])
        >>> stopped.epoch.shape, bool(1 <= stopped.epoch.min() and stopped.epoch.max() <= 5)
        ((1, 2), True)
    """
    settings = tuple(settings)
    for s in settings:
        if not isinstance(s, Setting) or s.validation:
            raise TypeError(f"settings must hold Settings with validation=False, got {s!r}")
    rows = range(len(settings))
    chosen = study.grid(
        rows, ["validation"], lambda i, _: dataclasses.replace(settings[i], validation=True), seeds,
        eval_every=every,
    )
    full = study.grid(rows, ["all"], lambda i, _: settings[i], seeds, eval_every=every)
    best = chosen.curves["test_loss"][:, 0].argmin(axis=2)  # type: ignore[index]  # (settings, seeds)
    pick = lambda curves: np.take_along_axis(curves[:, 0], best[..., None], axis=2)[..., 0]  # noqa: E731
    values = {m: pick(full.curves[m]) for m in ("train_acc", "test_acc", "train_loss", "test_loss")}  # type: ignore[index]
    return Stopped(settings, full.seeds, np.asarray(full.epochs)[best], values)


def binomial_se(accuracy: float, n_test: int) -> float:
    """The binomial standard error of an accuracy measured on ``n_test`` test images.

    Example:
        >>> round(binomial_se(0.95, 540), 4)
        0.0094
    """
    accuracy = float(accuracy)
    if not 0.0 <= accuracy <= 1.0:
        raise ValueError(f"accuracy must be in [0, 1], got accuracy={accuracy!r}")
    n_test = check_positive_int(n_test, "n_test")
    return float(np.sqrt(accuracy * (1 - accuracy) / n_test))


def units_needed(widths: Sequence[float], base: Sequence[float], other: Sequence[float]) -> float:
    r"""How many times wider a network must be to reach the same accuracy: the horizontal shift of two curves.

    ``base[i]`` and ``other[i]`` are accuracies (e.g. means over seeds) at ``widths[i]``
    (increasing). On a :math:`\log_2` width axis, each curve is made increasing (running maximum,
    so only its rising part counts) and inverted by linear interpolation, :math:`w(a)`. For
    accuracy levels :math:`a` evenly spaced over the range both curves cover, the function returns

    .. math::

        r = 2^{\operatorname{mean}_a\left[\log_2 w_{\text{other}}(a) - \log_2 w_{\text{base}}(a)\right]},

    the geometric mean of the width ratios at equal accuracy. The JMLR paper's rule of thumb
    (a dropout network needs :math:`n/q` units where a network without dropout needs :math:`n`)
    predicts :math:`r = 1/q`.

    Example:
        >>> widths = [4, 8, 16, 32, 64]
        >>> base = [0.5, 0.7, 0.8, 0.85, 0.87]
        >>> round(units_needed(widths, base, [0.3, 0.5, 0.7, 0.8, 0.85]), 4)  # the same curve, shifted
        2.0
    """
    w = _as_array(widths, "widths")
    if (w <= 0).any() or (np.diff(w) <= 0).any():
        raise ValueError(f"widths must be positive and increasing, got widths={list(widths)!r}")
    curves = [_as_array(v, name) for v, name in ((base, "base"), (other, "other"))]
    for curve, name in zip(curves, ("base", "other"), strict=True):
        if curve.shape != w.shape:
            raise ValueError(f"{name} needs one accuracy per width ({w.size}), got {curve.size}")
    rising = [np.maximum.accumulate(c) for c in curves]
    low = max(r[0] for r in rising)
    high = min(r[-1] for r in rising)
    if not high > low:
        raise ValueError(
            f"the two curves share no range of accuracies (base covers {rising[0][0]:.4g} to "
            f"{rising[0][-1]:.4g}, other {rising[1][0]:.4g} to {rising[1][-1]:.4g})"
        )
    levels = np.linspace(low, high, 101)
    log_w = np.log2(w)

    def inverse(curve: np.ndarray) -> np.ndarray:
        # Strictly increasing breakpoints: keep the first width reaching each new running maximum.
        keep = np.concatenate([[True], np.diff(curve) > 0])
        return np.interp(levels, curve[keep], log_w[keep])

    return float(2.0 ** np.mean(inverse(rising[1]) - inverse(rising[0])))


def summary_rows(
    grid: Grid,
    metrics: Sequence[str] = ("train_acc", "test_acc", "gap", "test_loss"),
    column: int = 0,
    *,
    decimals: int = 2,
) -> list[dict[str, Any]]:
    """The rows of a results table of one column of ``grid``: mean and standard error over seeds.

    One dict per row of the grid, labelled ``"setting"``, with two entries per metric: its mean
    (``"test acc (%)"``) and its standard error over the seeds (``"test acc SE"``: the standard
    deviation with ``ddof=1`` over the square root of the number of seeds). Accuracies and the
    gap are in percent, rounded to ``decimals`` decimals, losses rounded to three. Pass the rows to
    :func:`dropoutlib.course.book.table` for a DataFrame.

    Example:
        >>> values = {m: np.array([[[0.9, 0.92]]]) for m in METRICS}
        >>> grid = Grid(("a",), ("c",), ((Setting(),),), (0, 1), values)
        >>> summary_rows(grid, ["test_acc", "test_loss"], decimals=1)
        [{'setting': 'a', 'test acc (%)': 91.0, 'test acc SE': 1.0, 'test loss': 0.91, 'test loss SE': 0.01}]
    """
    for m in metrics:
        if m not in METRICS:
            raise ValueError(f"metrics must be names from {METRICS}, got {m!r}")
    if isinstance(column, bool) or not isinstance(column, int) or not 0 <= column < len(grid.columns):
        raise ValueError(f"column must be a column index below {len(grid.columns)}, got column={column!r}")
    if isinstance(decimals, bool) or not isinstance(decimals, int) or not 0 <= decimals <= 6:
        raise ValueError(f"decimals must be an integer from 0 to 6, got decimals={decimals!r}")
    rows: list[dict[str, Any]] = [{"setting": row} for row in grid.rows]
    for m in metrics:
        percent = m.endswith("acc") or m == "gap"
        factor, digits = (100.0, decimals) if percent else (1.0, 3)
        name = m.replace("_", " ")
        se = grid.std(m)[:, column] / np.sqrt(len(grid.seeds))
        for row, mean, error in zip(rows, grid.mean(m)[:, column] * factor, se * factor, strict=True):
            row[f"{name} (%)" if percent else name] = round(float(mean), digits)
            row[f"{name} SE"] = round(float(error), digits)
    return rows


def stopped_row(
    stopped: Stopped,
    label: str,
    row: int = 0,
    metrics: Sequence[str] = ("train_acc", "test_acc", "gap", "test_loss"),
    *,
    decimals: int = 2,
) -> dict[str, Any]:
    """One row of :func:`summary_rows`' table for setting ``row`` of an :func:`early_stopping` result.

    Example:
        >>> names = ("train_acc", "test_acc", "train_loss", "test_loss")
        >>> values = {m: np.array([[0.9, 0.92]]) for m in names}
        >>> stopped = Stopped((Setting(),), (0, 1), np.array([[4, 6]]), values)
        >>> row = stopped_row(stopped, "early stopping", metrics=["test_acc", "test_loss"], decimals=1)
        >>> row["setting"], row["test acc (%)"], row["test acc SE"], row["test loss SE"]
        ('early stopping', 91.0, 1.0, 0.01)
    """
    values = {m: v[row : row + 1] for m, v in stopped.values.items()}
    values["gap"] = values["train_acc"] - values["test_acc"]
    grid = Grid((label,), ("early stopping",), ((stopped.settings[row],),), stopped.seeds,
                {m: v[:, None, :] for m, v in values.items()})
    return summary_rows(grid, metrics, decimals=decimals)[0]


def errors_removed(grid: Grid) -> np.ndarray:
    r"""The share of the baseline's test errors that dropout removes, per row and seed.

    With :math:`e_0, e_1` the test error rates of columns 0 (no dropout) and 1 (dropout):
    :math:`(e_0 - e_1) / e_0`, shape ``(rows, seeds)``.

    Example:
        >>> values = {m: np.zeros((1, 2, 1)) for m in METRICS}
        >>> values["test_acc"][0, :, 0] = [0.9, 0.95]
        >>> grid = Grid((1,), ("no", "yes"), ((Setting(), Setting()),), (0,), values)
        >>> errors_removed(grid).round(4).tolist()
        [[0.5]]
    """
    errors = 1 - grid["test_acc"]  # (rows, columns, seeds)
    return (errors[:, 0] - errors[:, 1]) / errors[:, 0]


def baseline_curve(grid: Grid) -> dict[str, float]:
    """What the baseline's learning curves show (row 0 of a :func:`compare` grid, means over seeds).

    - ``fitted``: 1.0 if the mean training accuracy ends at 100%, else 0.0;
    - ``fitted_at``: the first evaluated epoch at which it reaches 100% (the first epoch when never);
    - ``loss_min``, ``loss_min_epoch``, ``loss_end``: the lowest mean test loss, its epoch, the last;
    - ``drift``: how much the mean test accuracy moves from ``fitted_at`` to the end (absolute value).
    """
    if grid.curves is None or grid.epochs is None:
        raise ValueError("the grid has no learning curves: run it with eval_every")
    epochs = np.array(grid.epochs)
    train_curve = grid.curves["train_acc"][0, 0].mean(axis=0)
    test_curve = grid.curves["test_acc"][0, 0].mean(axis=0)
    loss = grid.curves["test_loss"][0, 0].mean(axis=0)
    fitted = int(np.argmax(train_curve >= 1.0))
    return {
        "fitted": float(train_curve[-1] == 1.0),
        "fitted_at": int(epochs[fitted]),
        "loss_min": float(loss.min()),
        "loss_min_epoch": int(epochs[np.argmin(loss)]),
        "loss_end": float(loss[-1]),
        "drift": float(abs(test_curve[-1] - test_curve[fitted])),
    }


def best_ps(grid: Grid) -> tuple[float, float]:
    """The drop probabilities with the best mean test accuracy in a :func:`p_sweep`: hidden, input."""
    mean = grid.mean("test_acc")
    return grid.rows[int(mean[:, 0].argmax())], grid.rows[int(mean[:, 1].argmax())]


def runner_up(grid: Grid, column: int = 0) -> tuple[Any, float, float]:
    """The second-best row of a :func:`p_sweep` column by mean test accuracy, and the paired
    difference best minus it over the seeds: ``(row, mean, standard error)``.

    Example:
        >>> acc = np.array([[[0.9, 0.8]], [[0.95, 0.9]]])  # rows p = 0, 0.5; one column; two seeds
        >>> grid = Grid((0.0, 0.5), ("hidden",), (), (0, 1), {"test_acc": acc})
        >>> row, mean, se = runner_up(grid)
        >>> row, round(mean, 3), round(se, 3)
        (0.0, 0.075, 0.025)
    """
    acc = grid["test_acc"][:, column]
    order = np.argsort(-acc.mean(axis=1), kind="stable")
    best, second = order[0], order[1]
    mean, _, se = paired_gain(acc[second], acc[best])
    return grid.rows[int(second)], mean, se


def width_ratios(grid: Grid) -> tuple[float, float]:
    """:func:`units_needed` on a :func:`width_sweep`, for the training and for the test accuracy."""
    return tuple(  # type: ignore[return-value]
        units_needed(grid.rows, grid.mean(m)[:, 0], grid.mean(m)[:, 1]) for m in ("train_acc", "test_acc")
    )


def width_ratio_curve(grid: Grid) -> dict[str, np.ndarray]:
    """:func:`units_needed` for every seed of a :func:`width_sweep`, after every recorded budget.

    Returns ``"epochs"`` (the budgets, in steps of full-batch training) and, for ``"train_acc"`` and
    ``"test_acc"``, the ratio of seed ``s`` after budget ``b`` in an array of shape
    ``(budgets, seeds)``. A grid without curves has one budget, its last epoch.

    Example:
        >>> w = [4, 8, 16, 32, 64]
        >>> acc = np.array([[0.5, 0.3], [0.7, 0.5], [0.8, 0.7], [0.85, 0.8], [0.87, 0.85]])[:, :, None]
        >>> grid = Grid(tuple(w), ("no", "yes"), (), (0,), {"train_acc": acc, "test_acc": acc})
        >>> width_ratio_curve(grid)["test_acc"].round(4).tolist()
        [[2.0]]
    """
    if grid.curves is None or grid.epochs is None:
        budgets = [(None, {m: grid[m] for m in ("train_acc", "test_acc")})]
    else:
        budgets = [(e, {m: grid.curves[m][..., k] for m in ("train_acc", "test_acc")})
                   for k, e in enumerate(grid.epochs)]
    out: dict[str, np.ndarray] = {"epochs": np.array([-1 if e is None else e for e, _ in budgets])}
    for m in ("train_acc", "test_acc"):
        out[m] = np.array([
            [units_needed(grid.rows, acc[m][:, 0, s], acc[m][:, 1, s]) for s in range(len(grid.seeds))]
            for _, acc in budgets
        ])
    return out


# --- the chapter's claims ---------------------------------------------------------------------------


def report_failures(claims: Sequence[Claim]) -> None:
    """Print the claims that do not hold, without stopping: the chapter's ``check`` on other data.

    The chapter's claims were measured on the digits; on another data set (its ``LARGER_DATA``
    switch) a claim that fails is news, not an error.

    Example:
        >>> report_failures([below("the loss is small", 0.3, 0.1), above("the gain is positive", 0.1, 0.0)])
        does not hold on this data set: the loss is small (0.3 < 0.1)
    """
    for claim in claims:
        if not claim.holds:
            print(f"does not hold on this data set: {claim.statement} ({claim.evidence})")


def member_claims(difference: float) -> list[Claim]:
    """A member of a :class:`BatchedMLP` trains like the same network alone: ``difference`` is the
    largest difference between their trained weights.

    Example:
        >>> member_claims(3e-7)[0].holds
        True
    """
    return [below("a member of the batch trains exactly like the network alone", difference, 1e-4)]


def comparison_claims(main: Grid, n_test: int | None = None) -> list[Claim]:
    """Dropout against no dropout (a :func:`compare` grid: baseline, dropout, dropout with input dropout).

    Dropout raises the test accuracy by more than two standard errors (paired by seed), narrows the
    gap and lowers the test loss for every seed; both networks fit every training image; input
    dropout lowers the loss further, by more than two standard errors. With ``n_test``: the gain is
    below two binomial standard errors of the difference of two single accuracies on ``n_test``
    images (one run of each network could not tell them apart). The baseline's
    curves (:func:`baseline_curve`): it fits its training set within 20 epochs, its test loss ends
    more than 1.5 times above its minimum, and after the fit its test accuracy moves less than a
    point.
    """
    acc, loss = main["test_acc"][:, 0], main["test_loss"][:, 0]
    gap = main.mean("gap")[:, 0]
    curve = baseline_curve(main)
    fitted = curve["fitted"] == 1.0 and curve["fitted_at"] <= 20
    gain, further = _paired(acc[0], acc[1]), _paired(loss[1], loss[2])
    claims = [
        above("dropout raises the test accuracy (paired, mean - 2 SE)", gain[0] - 2 * gain[1], 0.0),
        below("dropout narrows the train/test gap", gap[1], gap[0]),
        Claim(
            "dropout lowers the test loss for every seed",
            bool((loss[1] < loss[0]).all()),
            f"{np.round(loss[1], 4).tolist()} < {np.round(loss[0], 4).tolist()}",
        ),
        Claim(
            "both networks fit every training image",
            bool((main["train_acc"][:2] == 1.0).all()),
            f"lowest training accuracy {main['train_acc'][:2].min():.4g}",
        ),
        below("adding input dropout lowers the test loss further (paired, mean + 2 SE)",
              further[0] + 2 * further[1], 0.0),
        Claim(
            "the baseline fits its training set within 20 epochs",
            bool(fitted),
            f"100% at epoch {curve['fitted_at']}" if curve["fitted"] else "never 100%",
        ),
        above(
            "the baseline's test loss climbs after its minimum (x1.5)",
            curve["loss_end"],
            1.5 * curve["loss_min"],
        ),
        below("once it fits, the baseline's test accuracy barely moves", curve["drift"], 0.01),
    ]
    if n_test is not None:
        single = np.sqrt(2) * binomial_se(float(acc[0].mean()), n_test)
        claims.append(below("one run of each could not tell them apart (gain < 2 binomial SE of a "
                            "difference)", gain[0], 2 * single))
    return claims


def _paired(base: np.ndarray, other: np.ndarray) -> tuple[float, float]:
    mean, _, se = paired_gain(base, other)
    return mean, se


def stopping_claims(main: Grid, stopped: Stopped) -> list[Claim]:
    """Dropout against the early-stopped baseline (:func:`early_stopping` of the baseline, row 0 of the
    :func:`compare` grid ``main``; paired by seed, mean ± standard error).

    Early stopping lowers the baseline's test loss by more than two standard errors, and does not
    raise its accuracy (the paired difference is not two standard errors above zero); dropout's test
    loss differs from the early-stopped baseline's inside the noise, but dropout with input dropout
    is lower by more than two standard errors; by test accuracy dropout beats early stopping by more
    than two standard errors.
    """
    loss, acc = main["test_loss"][:, 0], main["test_acc"][:, 0]
    k = len(main.seeds)
    claims = []
    mean, se = _paired(loss[0], stopped["test_loss"][0])
    claims.append(below("early stopping lowers the baseline's test loss (mean + 2 SE)", mean + 2 * se, 0.0))
    mean, se = _paired(acc[0], stopped["test_acc"][0])
    claims.append(below("early stopping does not raise the baseline's test accuracy (mean - 2 SE)",
                        mean - 2 * se, 0.0))
    claims.append(_inside_noise("dropout against early stopping, test loss",
                                *_paired(stopped["test_loss"][0], loss[1]), k))
    mean, se = _paired(stopped["test_loss"][0], loss[2])
    claims.append(below("input and hidden dropout lower the test loss below early stopping's (mean + 2 SE)",
                        mean + 2 * se, 0.0))
    mean, se = _paired(stopped["test_acc"][0], acc[1])
    claims.append(above("dropout beats early stopping by test accuracy (mean - 2 SE)", mean - 2 * se, 0.0))
    return claims


def size_stopping_claims(sizes: Grid, stopped: Stopped) -> list[Claim]:
    """Dropout against the early-stopped baseline at every training-set size (a :func:`size_sweep` and
    :func:`early_stopping` of its baselines, sizes increasing; paired by seed).

    By test accuracy dropout's mean is above early stopping's at every size; by test loss early
    stopping beats dropout on each of the two smallest sets, the two tie (inside the noise) on the
    third, and dropout beats early stopping on each of the three largest, each by more than two
    standard errors.
    """
    acc = sizes["test_acc"][:, 1] - stopped["test_acc"]  # (sizes, seeds)
    loss = [_paired(stopped["test_loss"][i], sizes["test_loss"][i, 1]) for i in range(len(sizes.rows))]
    claims = [
        Claim(
            "by test accuracy, dropout's mean beats early stopping at every size",
            bool((acc.mean(axis=1) > 0).all()),
            f"smallest difference {acc.mean(axis=1).min():+.4f}",
        ),
    ]
    for i in (0, 1):
        claims.append(above(f"by test loss, early stopping beats dropout at {sizes.rows[i]} images "
                            "(mean - 2 SE)", loss[i][0] - 2 * loss[i][1], 0.0))
    claims.append(_inside_noise(f"dropout against early stopping at {sizes.rows[2]} images, test loss",
                                *loss[2], len(sizes.seeds)))
    for i in range(len(loss) - 3, len(loss)):
        claims.append(below(f"by test loss, dropout beats early stopping at {sizes.rows[i]} images "
                            "(mean + 2 SE)", loss[i][0] + 2 * loss[i][1], 0.0))
    return claims


def size_claims(sizes: Grid) -> list[Claim]:
    """How the gain depends on the training-set size (a :func:`size_sweep`, sizes increasing; paired by
    seed, mean ± standard error).

    On the smallest set dropout helps by more than two standard errors; the mean gain on the three
    smallest sets exceeds that on the three largest by more than two standard errors, and is over
    twice as large; dropout removes some errors at every size (:func:`errors_removed`); the share
    removed on the three largest sets is more than half of that on the three smallest, and the two
    shares differ inside the noise.
    """
    gains, removed = sizes.gain(), errors_removed(sizes)
    k = len(sizes.seeds)
    smallest, smallest_se = _mean_se(gains[0])
    shrink, shrink_se = _paired(gains[-3:].mean(axis=0), gains[:3].mean(axis=0))
    return [
        above("on the smallest set dropout helps (mean - 2 SE)", smallest - 2 * smallest_se, 0.0),
        above("the gain on the three smallest sets exceeds that on the three largest (mean - 2 SE)",
              shrink - 2 * shrink_se, 0.0),
        above(
            "the gain on the three smallest sets is over twice that on the three largest",
            gains[:3].mean(),
            2 * gains[-3:].mean(),
        ),
        Claim(
            "dropout removes some of the errors at every size",
            bool((removed.mean(axis=1) > 0).all()),
            f"smallest share {removed.mean(axis=1).min():.4g} > 0",
        ),
        above(
            "the share of errors removed does not collapse as data grow (x0.5)",
            removed[-3:].mean(),
            0.5 * removed[:3].mean(),
        ),
        _inside_noise("the share removed, three largest against three smallest sets",
                      *_paired(removed[:3].mean(axis=0), removed[-3:].mean(axis=0)), k),
    ]


def _inside_noise(name: str, mean: float, se: float, n_seeds: int) -> Claim:
    return Claim(
        f"{name}: within 2 standard errors of zero over {n_seeds} seeds",
        abs(mean) < 2 * se,
        f"{mean:+.4f} ± {se:.4f}",
    )


def p_claims(ps: Grid) -> list[Claim]:
    """How much to drop (a :func:`p_sweep` whose rows include 0, 0.3, 0.5, 0.7 and 0.8).

    Hidden dropout from 0.3 to 0.8 has a higher mean than none, and ``p = 0.5`` beats none by more
    than two standard errors (paired), every other ``p`` by less; the best hidden ``p`` lies in
    [0.3, 0.7]; dropping 80% of the inputs is worse than the best input ``p``, which lies in
    [0.2, 0.5]; the two bests are within a point of each other. The best hidden ``p`` cannot be
    told from the runner-up (:func:`runner_up`): the sweep picks a range, not a value.
    """
    mean, rows = ps.mean("test_acc"), list(ps.rows)
    acc = ps["test_acc"]
    moderate = [rows.index(p) for p in (0.3, 0.5, 0.7, 0.8)]
    best_hidden, best_input = best_ps(ps)
    half, half_se = _paired(acc[0, 0], acc[rows.index(0.5), 0])
    others = []  # |mean| / SE of every other hidden p against p = 0
    for i, p in enumerate(rows):
        if p not in (0.0, 0.5):
            m, se = _paired(acc[0, 0], acc[i, 0])
            others.append(abs(m) / se if se > 0 else np.inf)
    return [
        Claim(
            "hidden dropout from 0.3 to 0.8 has a higher mean than p = 0",
            bool((mean[moderate, 0] > mean[0, 0]).all()),
            f"lowest {mean[moderate, 0].min():.4g} > {mean[0, 0]:.4g}",
        ),
        above("hidden p = 0.5 beats p = 0 (paired, mean - 2 SE)", half - 2 * half_se, 0.0),
        Claim(
            "every other hidden p is within 2 standard errors of p = 0",
            bool(max(others) < 2),
            f"largest |mean| / SE {max(others):.3g} < 2",
        ),
        Claim("the best hidden p is moderate", 0.3 <= best_hidden <= 0.7, f"0.3 <= {best_hidden} <= 0.7"),
        below(
            "dropping 80% of the inputs is worse than the best", mean[rows.index(0.8), 1], mean[:, 1].max()
        ),
        Claim(
            "the best input p lies between 0.2 and 0.5",
            0.2 <= best_input <= 0.5,
            f"0.2 <= {best_input} <= 0.5",
        ),
        _inside_noise("the best hidden p against the runner-up", *runner_up(ps)[1:], len(ps.seeds)),
        _inside_noise("the best input p against p = 0", *_paired(acc[0, 0], acc[rows.index(best_input), 1]),
                      len(ps.seeds)),
        below(
            "the best input and hidden p are within a point",
            abs(mean[:, 1].max() - mean[:, 0].max()),
            0.01,
        ),
    ]


def placement_claims(places: Grid) -> list[Claim]:
    """Where the dropout layer goes (a :func:`placement_study` with columns ReLU, then sigmoid; paired
    by seed, mean ± standard error).

    With ReLU, dropout before and after the activation give identical runs: the same training and
    test losses to the last bit, seed by seed (accuracies alone could agree by chance). With sigmoid
    units they differ; both placements cost accuracy against no dropout by more than two standard
    errors, and after has the higher mean. Output dropout lowers the ReLU network's test loss by more
    than two standard errors, less than hidden dropout does; by accuracy it differs from no dropout
    and from hidden dropout inside the noise.
    """
    rows = {name: i for i, name in enumerate(places.rows)}
    acc, loss = places["test_acc"], places["test_loss"]
    none, after, before = rows["no dropout"], rows["after the activation"], rows["before the activation"]
    out = rows["outputs (logits)"]
    k = len(places.seeds)
    # the float64 mean losses are functions of every logit: equal to the bit, the networks agree
    losses = [(places[m][after, 0], places[m][before, 0]) for m in ("train_loss", "test_loss")]
    same = all(np.array_equal(a, b) for a, b in losses)
    differ = max(float(np.max(np.abs(a - b))) for a, b in losses)
    claims = [
        Claim(
            "with ReLU, dropout before and after the activation are identical to the last bit",
            same,
            f"largest difference of their training and test losses over the seeds: {differ:.1e}",
        ),
        Claim(
            "with sigmoid units the two placements differ",
            not np.array_equal(acc[after, 1], acc[before, 1]),
            f"{np.round(acc[after, 1], 4).tolist()} vs {np.round(acc[before, 1], 4).tolist()}",
        ),
    ]
    for row, where in ((after, "after"), (before, "before")):
        mean, se = _paired(acc[none, 1], acc[row, 1])
        claims.append(below(f"with sigmoid units, dropout {where} the activation costs accuracy "
                            "(mean + 2 SE)", mean + 2 * se, 0.0))
    claims.append(above("with sigmoid units, after the activation has the higher mean accuracy",
                        *_paired(acc[before, 1], acc[after, 1])[:1], 0.0))
    mean, se = _paired(loss[none, 0], loss[out, 0])
    claims.append(below("output dropout lowers the ReLU network's test loss (mean + 2 SE)",
                        mean + 2 * se, 0.0))
    mean, se = _paired(loss[after, 0], loss[out, 0])
    claims.append(above("hidden dropout lowers it more (mean - 2 SE)", mean - 2 * se, 0.0))
    for row, name in ((none, "no dropout"), (after, "hidden dropout")):
        claims.append(_inside_noise(f"output dropout against {name}, accuracy",
                                    *_paired(acc[row, 0], acc[out, 0]), k))
    return claims


def _mean_se(values: np.ndarray) -> tuple[float, float]:
    values = np.asarray(values, dtype=np.float64)
    return float(values.mean()), float(values.std(ddof=1) / np.sqrt(values.size)) if values.size > 1 else 0.0


def width_claims(widths: Grid) -> list[Claim]:
    """A dropout network needs more units (a :func:`width_sweep` with curves, rows including 8, 16
    and 128; the ratios per seed from :func:`width_ratio_curve`, mean ± standard error).

    After the first budget (40 steps) the ratio is below the rule's :math:`1/q` by more than two
    standard errors, for the training and the test accuracy; it grows with the budget (last minus
    first, paired by seed, more than two standard errors); after the last budget the training ratio
    is within two standard errors of :math:`1/q`, and the mean test ratio, which rises with every
    budget, is still below it. After the last budget, at 8 and 16
    units dropout costs accuracy on both sets; at 128 units it wins on the test set.
    """
    q = 1 - widths.settings[0][1].p
    rows = list(widths.rows)
    narrow, wide = [rows.index(w) for w in (8, 16)], rows.index(128)
    ratios = width_ratio_curve(widths)
    first, last = int(ratios["epochs"][0]), int(ratios["epochs"][-1])
    claims = []
    for metric, where in (("train_acc", "training"), ("test_acc", "test")):
        mean, se = _mean_se(ratios[metric][0])
        claims.append(below(f"after {first} steps dropout needs under 1/q times the units ({where} "
                            "accuracy, mean + 2 SE)", mean + 2 * se, 1 / q))
        mean, se = _mean_se(ratios[metric][-1] - ratios[metric][0])
        claims.append(above(f"the ratio grows from {first} to {last} steps ({where}, mean - 2 SE)",
                            mean - 2 * se, 0.0))
    mean, se = _mean_se(ratios["train_acc"][-1])
    claims.append(_inside_noise(f"after {last} steps, the training ratio against 1/q", mean - 1 / q, se,
                                len(widths.seeds)))
    test = ratios["test_acc"].mean(axis=1)
    claims.append(Claim("the test ratio's mean rises with every budget", bool((np.diff(test) > 0).all()),
                        f"{np.round(test, 3).tolist()}"))
    claims.append(below(f"after {last} steps the test ratio's mean is still below 1/q", test[-1], 1 / q))
    final = {m: (widths.curves[m][..., -1] if widths.curves is not None else widths[m]).mean(axis=2)
             for m in ("train_acc", "test_acc")}
    for metric, where in (("train_acc", "training"), ("test_acc", "test")):
        mean = final[metric]
        claims.append(
            Claim(
                f"at 8 and 16 units dropout costs {where} accuracy",
                bool((mean[narrow, 1] < mean[narrow, 0]).all()),
                f"{np.round(mean[narrow, 1], 4).tolist()} < {np.round(mean[narrow, 0], 4).tolist()}",
            )
        )
    claims.append(above("at 128 units dropout has the higher mean test accuracy", final["test_acc"][wide, 1],
                        final["test_acc"][wide, 0]))
    return claims


def small_gain_claims(depths: Grid, recipes: Grid) -> list[Claim]:
    """The gain is small when the baseline does not overfit (a :func:`depth_study` of 1, 2, ... hidden
    layers and a :func:`recipe_study` of the aggressive recipe, then the gentle one; paired by seed,
    mean ± standard error).

    Without dropout one hidden layer beats two by more than two standard errors; dropout's gain is
    inside the noise with one hidden layer and over two standard errors with two; the gentle recipe
    gives a better baseline, over which dropout gains less, each by more than two standard errors
    (its gain there is inside the noise); and the gentle baseline differs from the aggressively
    trained dropout network inside the noise.
    """
    acc = lambda grid, row, col: grid["test_acc"][row, col]  # noqa: E731
    k = len(depths.seeds)
    base_depth = _paired(acc(depths, 1, 0), acc(depths, 0, 0))
    gain_two = _mean_se(depths.gain()[1])
    base_recipe = _paired(acc(recipes, 0, 0), acc(recipes, 1, 0))
    gain_recipe = _paired(recipes.gain()[0], recipes.gain()[1])
    return [
        above("without dropout, one hidden layer beats two (mean - 2 SE)",
              base_depth[0] - 2 * base_depth[1], 0.0),
        _inside_noise("dropout's gain with one hidden layer", *_mean_se(depths.gain()[0]), k),
        above("dropout's gain with two hidden layers (mean - 2 SE)", gain_two[0] - 2 * gain_two[1], 0.0),
        above("the gentle recipe gives a better baseline (mean - 2 SE)",
              base_recipe[0] - 2 * base_recipe[1], 0.0),
        below("dropout gains less over the better baseline (mean + 2 SE)",
              gain_recipe[0] + 2 * gain_recipe[1], 0.0),
        _inside_noise("dropout's gain over the gentle baseline", *_mean_se(recipes.gain()[1]), k),
        _inside_noise("the gentle baseline against the aggressive dropout network",
                      *_paired(acc(recipes, 0, 1), acc(recipes, 1, 0)), k),
    ]


def plot_mean_std(
    ax: Axes,
    x: Sequence[float],
    values: np.ndarray,
    *,
    label: str,
    color: str | None = None,
    percent: bool = True,
    marker: str = "o",
    offset: float = 0.0,
) -> None:
    """Draw the mean over seeds of ``values`` (shape ``(len(x), seeds)``) with ±1 standard deviation bars.

    ``percent`` multiplies by 100; ``offset`` shifts the points sideways (multiplying ``x`` by
    ``2 ** offset``, for log axes) so that two series at the same ``x`` do not hide each other.

    Example:
        >>> import matplotlib.pyplot as plt
        >>> fig, ax = plt.subplots()
        >>> plot_mean_std(ax, [1, 2], np.array([[0.5, 0.6], [0.7, 0.8]]), label="a")
        >>> len(ax.lines) > 0
        True
        >>> plt.close(fig)
    """
    values = np.asarray(values, dtype=np.float64)
    x_array = np.asarray(x, dtype=np.float64)
    if values.ndim != 2 or values.shape[0] != x_array.size:
        raise ValueError(f"values must have shape (len(x), seeds) = ({x_array.size}, k), got {values.shape}")
    factor = 100.0 if percent else 1.0
    std = values.std(axis=1, ddof=1) if values.shape[1] > 1 else np.zeros(len(values))
    ax.errorbar(
        x_array * 2.0**offset,
        values.mean(axis=1) * factor,
        yerr=std * factor,
        label=label,
        color=color,
        marker=marker,
        capsize=3,
        lw=1.8,
        ms=5,
    )
