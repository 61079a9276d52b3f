"""A small CNN for the 8x8 digits, and the measurements behind chapter 10 (dropout in CNNs).

The network (:func:`small_cnn`) reads the 64 pixels of :func:`dropoutlib.course.data.load_digits` rows,
folds them back into a ``1 x 8 x 8`` image with ``nn.Unflatten`` (so :func:`dropoutlib.course.train.fit`
trains it unchanged), and has two 3x3 convolution blocks with an optional dropout layer after each::

    image -> conv1 -> relu1 -> [drop1] -> conv2 -> relu2 -> pool -> [drop2] -> flatten -> out

``kind`` chooses the dropout: ``"none"``, ``"element"`` (one coin per number,
:class:`dropoutlib.nn.Dropout`) or ``"spatial"`` (one coin per channel of each example,
:class:`dropoutlib.nn.spatial.SpatialDropout`).

Measurements on feature maps ``a`` of shape ``(N, C, H, W)``:

- :func:`neighbour_correlation`: Pearson correlation, per channel, between activations ``offset``
  positions apart (pooled over examples and positions);
- :func:`neighbour_r2`: how much of an interior activation's variance the mean of its four
  neighbours explains (squared correlation), i.e. what a dropped element leaves behind;
- :func:`next_layer_noise`: the variance of the noise that each kind of dropout on ``relu1``'s maps
  adds to ``conv2``'s pre-activations, relative to their variance without dropout.

The training comparison is :func:`train_cnn` (one run) and :func:`compare_dropout` (kinds x seeds).
The chapter trains its networks with :func:`sweep_dropout`: per seed, the network without dropout and
each kind at each ``p`` of its grid (:data:`P_GRIDS`), with a validation split that training never
sees (:func:`digits_with_validation`, :func:`train_tracked`, equal to :func:`train_cnn` to the bit).
:func:`fair_comparison` chooses each kind's ``p`` on validation and adds the early-stopped baseline;
:func:`injected_noise` and :func:`matched_noise` compare the kinds at equal noise in ``conv2``.
A trained network and its final numbers are a :class:`TrainedRun`, made by :func:`train_run`, which
chapter 13 (:mod:`dropoutlib.experiments.dropout_family`) uses for its own networks too.

The chapter's claims are written once, here, in the ``*_claims`` functions (one per section: the
from-scratch checks, the neighbour correlations, the noise in the next layer and its change with
resolution, the training comparison, and exercise 5); the chapter's check cells and
``tests/chapters/test_convolutions_claims.py`` call the same functions.

Notation: ``p`` is the probability of dropping (a number or a channel), ``q = 1 - p``.
"""

from __future__ import annotations

import math
import numbers
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from dropoutlib._modes import restored_modes
from dropoutlib._validation import (
    check_choice,
    check_floating,
    check_generator,
    check_positive_int,
    check_probability,
)
from dropoutlib.course.claims import Claim, above, below
from dropoutlib.course.data import Split, check_split, load_digits
from dropoutlib.course.seeding import check_seed, seed_everything
from dropoutlib.course.train import History, fit
from dropoutlib.nn.dropout import Dropout, dropout
from dropoutlib.nn.spatial import SpatialDropout, spatial_dropout

__all__ = [
    "BATCH_SIZE",
    "CHANNELS",
    "DROPOUT_KINDS",
    "EPOCHS",
    "LR",
    "N_SE",
    "N_TRAIN",
    "N_VALIDATION",
    "P",
    "P_GRIDS",
    "SWEEP_SEEDS",
    "MapStats",
    "TrackedRun",
    "TrainedRun",
    "by_kind",
    "compare_dropout",
    "digits_with_validation",
    "fair_claims",
    "fair_comparison",
    "fair_direction_claims",
    "feature_maps",
    "between",
    "fraction_tolerance",
    "injected_noise",
    "map_statistics",
    "matched_noise",
    "neighbour_claims",
    "neighbour_correlation",
    "neighbour_r2",
    "next_layer_noise",
    "noise_at_test_time_claims",
    "noise_formula_claims",
    "on_every_seed",
    "paired_rows",
    "resolution_claims",
    "runs_at",
    "small_cnn",
    "spatial_dropout_claims",
    "summarize_runs",
    "sweep_dropout",
    "train_cnn",
    "train_run",
    "train_tracked",
    "training_claims",
]

#: The three networks compared: no dropout, element-wise dropout, spatial (channel) dropout.
DROPOUT_KINDS = ("none", "element", "spatial")
#: Channels of the two convolution layers.
CHANNELS = (16, 32)
#: Dropout probability of both dropout layers (element-wise or spatial).
P = 0.2
#: Training: Adam, minibatches of 64, on a stratified subsample of 500 training images.
EPOCHS = 20
LR = 3e-3
BATCH_SIZE = 64
N_TRAIN = 500

_SIDE = 8  # the digits are 8x8 images


def _check_maps(maps: Any, name: str = "maps") -> torch.Tensor:
    check_floating(maps, name)
    if maps.ndim != 4:
        raise ValueError(
            f"{name} must be a 4-D tensor of feature maps (N, C, H, W), got shape {tuple(maps.shape)}"
        )
    return maps


def small_cnn(
    kind: str = "none",
    p: float = 0.0,
    channels: Sequence[int] = CHANNELS,
    n_classes: int = 10,
    upsample: int = 1,
) -> nn.Sequential:
    r"""A two-block CNN for the flattened 8x8 digits, with optional dropout on its feature maps.

    With :math:`D` the chosen dropout (``kind``, probability ``p``) and :math:`x` reshaped to
    ``(1, 8u, 8u)`` (``u = upsample``: bilinear upsampling, 1 by default)::

        a1 = D(relu(conv1(x)))                  (C1, 8u, 8u)
        a2 = D(maxpool_{2u}(relu(conv2(a1))))   (C2, 4, 4)
        logits = out(flatten(a2))               (n_classes,)

    Both convolutions are 3x3 with padding 1 (the maps keep their size). The layers are named
    (``model.conv1``, ``model.relu1``, ``model.drop1``, ...; ``drop1``/``drop2`` and ``upsample``
    only when used) so that :func:`feature_maps` can read any intermediate output.

    Args:
        kind: ``"none"``, ``"element"`` (:class:`~dropoutlib.nn.Dropout`) or ``"spatial"``
            (:class:`~dropoutlib.nn.spatial.SpatialDropout`).
        p: dropout probability of both dropout layers, in ``[0, 1)``; must be 0 for ``"none"`` and
            positive otherwise.
        channels: ``(C1, C2)``, the channels of the two convolutions.
        n_classes: number of outputs.
        upsample: integer factor by which the image is enlarged before ``conv1`` (1: none).

    Shapes: input ``(n, 64)``, output ``(n, n_classes)``.

    Example:
        >>> model = small_cnn("spatial", p=0.2, channels=(4, 8))
        >>> model.drop1, model.out
        (SpatialDropout(p=0.2, inplace=False), Linear(in_features=128, out_features=10, bias=True))
        >>> model(torch.zeros(5, 64)).shape
        torch.Size([5, 10])
    """
    kind = check_choice(kind, "kind", DROPOUT_KINDS)
    p = check_probability(p)
    if kind == "none" and p != 0:
        raise ValueError(f"kind='none' has no dropout layer: p must be 0, got p={p!r}")
    if kind != "none" and not 0 < p < 1:
        raise ValueError(f"kind={kind!r} needs a dropout probability 0 < p < 1, got p={p!r}")
    if isinstance(channels, str | bytes) or not isinstance(channels, Sequence) or len(channels) != 2:
        raise TypeError(f"channels must be a pair of positive ints (C1, C2), got channels={channels!r}")
    c1 = check_positive_int(channels[0], "channels[0]")
    c2 = check_positive_int(channels[1], "channels[1]")
    n_classes = check_positive_int(n_classes, "n_classes")
    upsample = check_positive_int(upsample, "upsample")

    def drop() -> nn.Module:
        return Dropout(p) if kind == "element" else SpatialDropout(p)

    layers: list[tuple[str, nn.Module]] = [("image", nn.Unflatten(1, (1, _SIDE, _SIDE)))]
    if upsample > 1:
        layers.append(("upsample", nn.Upsample(scale_factor=upsample, mode="bilinear")))
    layers += [("conv1", nn.Conv2d(1, c1, 3, padding=1)), ("relu1", nn.ReLU())]
    if kind != "none":
        layers.append(("drop1", drop()))
    layers += [
        ("conv2", nn.Conv2d(c1, c2, 3, padding=1)),
        ("relu2", nn.ReLU()),
        ("pool", nn.MaxPool2d(2 * upsample)),
    ]
    if kind != "none":
        layers.append(("drop2", drop()))
    side = _SIDE // 2
    layers += [("flatten", nn.Flatten()), ("out", nn.Linear(c2 * side * side, n_classes))]
    return nn.Sequential(OrderedDict(layers))


def feature_maps(model: nn.Sequential, x: torch.Tensor, upto: str = "relu1") -> torch.Tensor:
    """The output of the layer named ``upto`` of a :func:`small_cnn`, in evaluation mode, no gradient.

    The model's submodules are run in order up to and including ``upto``; every submodule's
    training flag is restored afterwards.

    Example:
        >>> model = small_cnn(channels=(4, 8))
        >>> feature_maps(model, torch.zeros(3, 64)).shape
        torch.Size([3, 4, 8, 8])
        >>> feature_maps(model, torch.zeros(3, 64), upto="pool").shape
        torch.Size([3, 8, 4, 4])
    """
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"model must be an nn.Sequential from small_cnn(), got {type(model).__name__}")
    names = [name for name, _ in model.named_children()]
    if upto not in names:
        raise ValueError(f"upto must name a layer of the model, one of {names}, got upto={upto!r}")
    check_floating(x, "x")
    with restored_modes(model), torch.no_grad():
        model.eval()
        for name, layer in model.named_children():
            x = layer(x)
            if name == upto:
                return x
    raise AssertionError("unreachable")  # pragma: no cover


def _pearson_per_channel(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Pearson correlation of ``u[:, c]`` and ``v[:, c]`` pooled over all other axes, per channel."""
    c = u.shape[1]
    u = u.transpose(0, 1).reshape(c, -1).double()
    v = v.transpose(0, 1).reshape(c, -1).double()
    u = u - u.mean(dim=1, keepdim=True)
    v = v - v.mean(dim=1, keepdim=True)
    denominator = (u.square().sum(dim=1) * v.square().sum(dim=1)).sqrt()
    r = (u * v).sum(dim=1) / denominator
    return torch.where(denominator > 0, r, torch.full_like(r, float("nan")))


def neighbour_correlation(maps: torch.Tensor, offset: int = 1, axis: str = "horizontal") -> torch.Tensor:
    r"""Per channel, the Pearson correlation between activations ``offset`` positions apart.

    For channel :math:`c` the pairs are :math:`(a_{n,c,i,j},\ a_{n,c,i,j+d})` (``"horizontal"``)
    or :math:`(a_{n,c,i,j},\ a_{n,c,i+d,j})` (``"vertical"``) over all examples :math:`n` and all
    positions where both exist, and

    .. math::

        r_c(d) = \frac{\sum (u - \bar u)(v - \bar v)}{\sqrt{\sum (u - \bar u)^2 \sum (v - \bar v)^2}} .

    Pooling over positions is what a convolution sees: the same filter slides over every position,
    so what matters to it is how much a value agrees with its neighbour wherever it is.

    Returns:
        A float64 tensor of shape ``(C,)``; ``nan`` for a channel that is constant (e.g. a ReLU
        channel that is zero everywhere).

    Example:
        >>> ramp = torch.arange(8.0).repeat(2, 1, 8, 1)  # each row is 0, 1, ..., 7
        >>> neighbour_correlation(ramp)
        tensor([1.], dtype=torch.float64)
        >>> stripes = torch.tensor([1.0, -1.0]).repeat(2, 1, 8, 4)  # each row is 1, -1, 1, -1, ...
        >>> neighbour_correlation(stripes), neighbour_correlation(stripes, offset=2)
        (tensor([-1.], dtype=torch.float64), tensor([1.], dtype=torch.float64))
    """
    maps = _check_maps(maps)
    if axis not in ("horizontal", "vertical"):
        raise ValueError(f"axis must be 'horizontal' or 'vertical', got axis={axis!r}")
    offset = check_positive_int(offset, "offset")
    size = maps.shape[3] if axis == "horizontal" else maps.shape[2]
    if offset >= size:
        raise ValueError(f"offset must be smaller than the maps' {axis} size {size}, got offset={offset}")
    if axis == "horizontal":
        return _pearson_per_channel(maps[..., :-offset], maps[..., offset:])
    return _pearson_per_channel(maps[:, :, :-offset, :], maps[:, :, offset:, :])


def neighbour_r2(maps: torch.Tensor) -> torch.Tensor:
    r"""Per channel, the squared correlation between an interior activation and its 4 neighbours' mean.

    For each interior position :math:`(i, j)` (not on the border) the predictor is
    :math:`\bar a_{ij} = \tfrac14 (a_{i-1,j} + a_{i+1,j} + a_{i,j-1} + a_{i,j+1})`, and the result
    is :math:`R^2_c = \mathrm{corr}(a, \bar a)^2` over all examples and interior positions: the
    fraction of an element's variance that the best linear function of its neighbours' mean
    explains. When element-wise dropout removes that element, this much of it can still be read
    off its (probably kept) neighbours; spatial dropout removes the neighbours too.

    Returns:
        A float64 tensor of shape ``(C,)`` with values in ``[0, 1]`` (``nan`` for a constant
        channel). Needs maps of at least 3x3.

    Example:
        >>> ramp = torch.arange(5.0).repeat(1, 1, 5, 1) + torch.arange(5.0).reshape(1, 1, 5, 1)
        >>> neighbour_r2(ramp)  # a linear ramp: the mean of the neighbours is the value itself
        tensor([1.], dtype=torch.float64)
    """
    maps = _check_maps(maps)
    if maps.shape[2] < 3 or maps.shape[3] < 3:
        raise ValueError(f"maps must be at least 3x3 to have interior positions, got {tuple(maps.shape)}")
    centre = maps[:, :, 1:-1, 1:-1]
    around = (maps[:, :, :-2, 1:-1] + maps[:, :, 2:, 1:-1] + maps[:, :, 1:-1, :-2] + maps[:, :, 1:-1, 2:]) / 4
    return _pearson_per_channel(centre, around).square()


def next_layer_noise(
    model: nn.Sequential,
    x: torch.Tensor,
    kind: str,
    p: float,
    repeats: int | None = None,
    generator: torch.Generator | None = None,
) -> float:
    r"""How much noise dropout on ``relu1``'s maps puts into ``conv2``, relative to ``conv2``'s signal.

    With :math:`a` the maps after ``relu1`` (evaluation mode), :math:`z = \mathrm{conv2}(a)` and
    :math:`\tilde z = \mathrm{conv2}(D(a))` for a dropout :math:`D` of the given ``kind`` and ``p``,
    the result is

    .. math::

        \frac{\operatorname{mean} \mathbb E_m (\tilde z - z)^2}{\operatorname{mean}_k \operatorname{Var} z_k},

    the expected squared noise, averaged over all outputs, divided by the variance of the clean
    pre-activations of each output channel :math:`k` (over examples and positions), averaged over
    channels. With weights :math:`w_{k,c,u}` (``u`` runs over the window) and ``q = 1 - p``, the
    expectation is exact:

    .. math::

        \text{element-wise: } \frac pq \sum_{c,u} w_{k,c,u}^2 a_{c,u}^2, \qquad
        \text{spatial: } \frac pq \sum_c \Big(\sum_u w_{k,c,u} a_{c,u}\Big)^2 ,

    computed with one convolution of :math:`a^2` by :math:`w^2`, or one convolution per input
    channel. Both kinds give each input the same variance :math:`a^2 p/q`; they
    differ in whether the values of one window are dropped independently or together. With
    ``repeats`` set, the expectation is instead estimated from that many sampled masks (drawn from
    ``generator``), which is how the formulas can be checked.

    Example:
        >>> model = small_cnn(channels=(4, 8))
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(64, 64, generator=g)
        >>> exact = next_layer_noise(model, x, "spatial", 0.5)
        >>> sampled = next_layer_noise(model, x, "spatial", 0.5, repeats=200, generator=g)
        >>> abs(sampled / exact - 1) < 0.1
        True
    """
    kind = check_choice(kind, "kind", DROPOUT_KINDS)
    if kind == "none":
        raise ValueError("kind must be 'element' or 'spatial' (there is no noise without dropout)")
    p = check_probability(p)
    if p == 1:
        raise ValueError("p must be below 1: with p=1 the scale 1/q is infinite")
    if repeats is not None:
        repeats = check_positive_int(repeats, "repeats")
    check_generator(generator)
    maps = feature_maps(model, x, "relu1")
    conv = model.conv2
    if not isinstance(conv, nn.Conv2d) or conv.groups != 1 or conv.padding_mode != "zeros":
        raise ValueError("model.conv2 must be an ordinary nn.Conv2d, as small_cnn builds it")
    options = {"stride": conv.stride, "padding": conv.padding, "dilation": conv.dilation}
    with torch.no_grad():
        clean = conv(maps)
        signal = clean.var(dim=(0, 2, 3)).mean()
        if repeats is not None:
            drop = dropout if kind == "element" else spatial_dropout
            noise = torch.stack(
                [(conv(drop(maps, p, generator=generator)) - clean).square().mean() for _ in range(repeats)]
            ).mean()
            return float(noise / signal)
        weight = conv.weight
        if kind == "element":
            variance = F.conv2d(maps.square(), weight.square(), **options)
        else:
            variance = sum(  # channel by channel: what one input channel adds to every output
                F.conv2d(maps[:, i : i + 1], weight[:, i : i + 1], **options).square()
                for i in range(maps.shape[1])
            )
        noise = p / (1 - p) * variance.mean()
    return float(noise / signal)


@dataclass
class MapStats:
    """What :func:`map_statistics` measures on the ``relu1`` maps of a :func:`small_cnn`.

    Attributes:
        correlation: mean over channels of :func:`neighbour_correlation` at offset 1 (horizontal).
        r2: mean over channels of :func:`neighbour_r2`.
        noise_element, noise_spatial: :func:`next_layer_noise` of each kind of dropout.

    Example:
        >>> MapStats(0.3, 0.4, 0.05, 0.1).ratio
        2.0
    """

    correlation: float
    r2: float
    noise_element: float
    noise_spatial: float

    @property
    def ratio(self) -> float:
        """How many times more noise spatial dropout passes to ``conv2`` than element-wise dropout."""
        return self.noise_spatial / self.noise_element


def map_statistics(model: nn.Sequential, x: torch.Tensor, p: float = P) -> MapStats:
    """Neighbour correlation, neighbour R^2 and next-layer noise of ``model``'s ``relu1`` maps on ``x``.

    Channels that are constant on ``x`` (dead ReLU channels) are left out of the means; the noises
    are the exact expectations of :func:`next_layer_noise` (no sampling).

    Example:
        >>> model = small_cnn(channels=(4, 8))
        >>> stats = map_statistics(model, torch.randn(32, 64))
        >>> -1 <= stats.correlation <= 1 and 0 <= stats.r2 <= 1 and stats.ratio > 0
        True
    """
    maps = feature_maps(model, x, "relu1")
    return MapStats(
        correlation=float(torch.nanmean(neighbour_correlation(maps))),
        r2=float(torch.nanmean(neighbour_r2(maps))),
        noise_element=next_layer_noise(model, x, "element", p),
        noise_spatial=next_layer_noise(model, x, "spatial", p),
    )


@dataclass
class TrainedRun:
    """One trained network of a comparison, its training history and its final numbers.

    Chapter 10 names a run by its kind of dropout (:func:`train_cnn`), chapter 13 by its variant
    (:func:`~dropoutlib.experiments.dropout_family.train_variant`); both train through
    :func:`train_run`.

    Attributes:
        name, seed: what was trained (a dropout kind or a variant) and its seed (split, initial
            weights, minibatch order, masks).
        train_acc, test_acc, train_loss, test_loss: of the full network (evaluation mode) at the end.
        model: the trained network.
        history: the training :class:`~dropoutlib.course.train.History` (recorded at the last epoch only).
        p: the dropout probability (chapter 10; 0 without dropout).
        random_numbers: random numbers one training step draws (chapter 13), or ``None``.

    Example:
        >>> run = TrainedRun("none", 0, 1.0, 0.96, 0.01, 0.15, nn.Identity())
        >>> round(run.gap, 4), round(run.loss_gap, 4)
        (0.04, 0.14)
    """

    name: str
    seed: int
    train_acc: float
    test_acc: float
    train_loss: float
    test_loss: float
    model: nn.Module
    history: History = field(default_factory=History)
    p: float = 0.0
    random_numbers: int | None = None

    @property
    def gap(self) -> float:
        """Train accuracy minus test accuracy."""
        return self.train_acc - self.test_acc

    @property
    def loss_gap(self) -> float:
        """Test loss minus train loss."""
        return self.test_loss - self.train_loss


def train_run(
    name: str,
    build: Callable[[], nn.Module],
    *,
    seed: int,
    data: Split | None,
    n_train: int,
    epochs: int,
    lr: float,
    batch_size: int | None = None,
    p: float = 0.0,
    count: Callable[[nn.Module, torch.Tensor], int] | None = None,
) -> TrainedRun:
    """Build a network with ``build()`` after ``seed_everything(seed)``, train it: a :class:`TrainedRun`.

    Data: ``load_digits(seed=seed, n_train=n_train)`` unless ``data`` is given. Training is
    :func:`~dropoutlib.course.train.fit` with Adam at learning rate ``lr`` for ``epochs`` epochs, in
    minibatches of ``batch_size`` (``None``: the full batch), seeded with ``seed`` (minibatch order
    and dropout masks), recording the metrics at the last epoch only. ``count``, if given, is called
    as ``count(model, data.x_train)`` before training and its result stored as ``random_numbers``.

    Example:
        >>> run = train_run("tiny", lambda: nn.Linear(64, 10), seed=0, data=None, n_train=50,
        ...                 epochs=2, lr=1e-2)
        >>> run.name, len(run.history.epoch), run.random_numbers
        ('tiny', 1, None)
    """
    seed = check_seed(seed)
    data = check_split(data, lambda: load_digits(seed=seed, n_train=n_train))
    epochs = check_positive_int(epochs, "epochs")
    seed_everything(seed)
    model = build()
    random_numbers = None if count is None else count(model, data.x_train)
    history = fit(
        model, data, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, progress=False, eval_every=epochs
    )
    last = history.final()
    return TrainedRun(
        name,
        seed,
        last["train_acc"],
        last["test_acc"],
        last["train_loss"],
        last["test_loss"],
        model,
        history,
        p,
        random_numbers,
    )


def train_cnn(
    kind: str,
    p: float = P,
    *,
    seed: int = 0,
    data: Split | None = None,
    channels: Sequence[int] = CHANNELS,
    epochs: int = EPOCHS,
    lr: float = LR,
    batch_size: int = BATCH_SIZE,
    upsample: int = 1,
) -> TrainedRun:
    """Train :func:`small_cnn` ``(kind, p)`` on the digits with Adam and return a :class:`TrainedRun`.

    Data: ``load_digits(seed=seed, n_train=N_TRAIN)`` unless ``data`` is given. The weights are
    initialized after ``seed_everything(seed)``, so the three kinds start from identical weights
    for one seed, and :func:`~dropoutlib.course.train.fit` is called with ``seed``, which fixes the
    minibatch order and the dropout masks (:func:`train_run`). ``p`` is ignored (taken as 0) for
    ``kind="none"``.

    Example:
        >>> run = train_cnn("spatial", 0.2, channels=(4, 8), epochs=1)
        >>> run.name, run.p, 0.0 <= run.test_acc <= 1.0
        ('spatial', 0.2, True)
    """
    kind = check_choice(kind, "kind", DROPOUT_KINDS)
    p = 0.0 if kind == "none" else check_probability(p)
    return train_run(
        kind,
        lambda: small_cnn(kind, p, channels, upsample=upsample),
        seed=seed,
        data=data,
        n_train=N_TRAIN,
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        p=p,
    )


def compare_dropout(
    seeds: Iterable[int],
    p: float = P,
    kinds: Sequence[str] = DROPOUT_KINDS,
    **options: Any,
) -> dict[tuple[str, int], TrainedRun]:
    """Train one :func:`small_cnn` per kind and seed (:func:`train_cnn`); return them by ``(kind, seed)``.

    Each seed uses its own split of the digits (``load_digits(seed=seed, n_train=N_TRAIN)``, shared by
    the kinds of that seed, unless ``data=`` is passed in ``options``, which go to :func:`train_cnn`).

    Example:
        >>> runs = compare_dropout([0], kinds=("none", "element"), channels=(4, 8), epochs=1)
        >>> sorted(runs)
        [('element', 0), ('none', 0)]
    """
    seeds = [check_seed(seed) for seed in seeds]
    if not seeds:
        raise ValueError("seeds must hold at least one seed")
    kinds = [check_choice(kind, "kind", DROPOUT_KINDS) for kind in kinds]
    given = options.pop("data", None)
    runs: dict[tuple[str, int], TrainedRun] = {}
    for seed in seeds:
        data = given if given is not None else load_digits(seed=seed, n_train=N_TRAIN)
        for kind in kinds:
            runs[kind, seed] = train_cnn(kind, p, seed=seed, data=data, **options)
    return runs


def summarize_runs(runs: dict[tuple[str, int], TrainedRun], attribute: str) -> dict[str, tuple[float, float]]:
    """Mean and standard deviation (over seeds, ``ddof=1``; 0 for one seed) of an attribute, per kind.

    ``attribute`` is a :class:`TrainedRun` number: ``test_acc``, ``test_loss``, ``gap``, ``loss_gap``, ...

    Example:
        >>> run = TrainedRun("none", 0, 1.0, 0.96, 0.01, 0.15, nn.Identity())
        >>> summarize_runs({("none", 0): run, ("none", 1): run}, "test_acc")
        {'none': (0.96, 0.0)}
    """
    if not isinstance(runs, dict) or not runs:
        raise TypeError("runs must be a non-empty dict {(kind, seed): TrainedRun} from compare_dropout")
    values: dict[str, list[float]] = {}
    for (kind, _), run in runs.items():
        value = getattr(run, attribute, None)
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ValueError(f"attribute must name a number of TrainedRun, got attribute={attribute!r}")
        values.setdefault(kind, []).append(float(value))
    out = {}
    for kind, numbers_ in values.items():
        tensor = torch.tensor(numbers_, dtype=torch.float64)
        std = float(tensor.std()) if len(numbers_) > 1 else 0.0
        out[kind] = (float(tensor.mean()), std)
    return out


# --- the chapter's claims -------------------------------------------------------------------------------

#: How many standard deviations of a binomial fraction a measured fraction of dropped channels may be from p.
FRACTION_SIGMAS = 4
#: How far ``mean(y) / mean(x)`` of spatial dropout may be from 1 on the chapter's 200 x 64 channels.
MEAN_RATIO_TOLERANCE = 0.02
#: How far the noise measured with sampled masks may be from the formula, relative to it.
SAMPLED_NOISE_TOLERANCE = 0.1
#: Spatial / element-wise noise in ``conv2`` on the 8x8 digits: above 1, but far below 9.
NOISE_RATIO_RANGE = (1.0, 2.5)
#: The neighbour correlation of ``relu1`` (offset 1): moderate, not strong.
RELU1_CORRELATION_RANGE = (0.15, 0.6)
#: Below this, activations 3 or more positions apart count as nearly uncorrelated.
DISTANT_CORRELATION = 0.1
#: Above this, upsampled digits count as smooth (neighbour correlation).
SMOOTH_CORRELATION = 0.8
#: How much finer maps must raise the neighbour correlation, and the spatial / element-wise noise ratio.
FINER_CORRELATION_GAIN = 0.2
FINER_RATIO_GAIN = 0.5
#: Training accuracy above which a network counts as fitting its training set.
FITS = 0.99
#: Mean test accuracies within this of each other count as "within a point".
ACCURACY_SPREAD = 0.01
#: Exercise 5: the two kinds of test-time noise do similar damage if the accuracies differ by less.
SIMILAR_DAMAGE = 0.02


def fraction_tolerance(p: float, n: int) -> float:
    r"""How far the fraction of ``n`` coins dropped with probability ``p`` may fall from ``p``.

    :data:`FRACTION_SIGMAS` standard deviations of a binomial fraction, :math:`4 \sqrt{p q / n}`.

    Example:
        >>> round(fraction_tolerance(0.3, 12800), 4)
        0.0162
    """
    return FRACTION_SIGMAS * math.sqrt(p * (1 - p) / n)


def between(statement: str, value: float, low: float, high: float) -> Claim:
    """The claim that ``low < value < high`` (a :class:`~dropoutlib.course.claims.Claim`).

    Example:
        >>> print(between("the ratio is moderate", 1.3, 1.0, 2.5))
        ✓ the ratio is moderate (1 < 1.3 < 2.5)
    """
    return Claim(statement, low < value < high, f"{low:.4g} < {value:.4g} < {high:.4g}")


def on_every_seed(statement: str, pairs: Mapping[int, tuple[float, float]], relation: str) -> Claim:
    """The claim that ``a < b`` (``relation="<"``) or ``a > b`` (``">"``) for the pair of every seed.

    Example:
        >>> print(on_every_seed("dropout lowers the loss", {0: (0.2, 0.3), 1: (0.25, 0.3)}, "<"))
        ✓ dropout lowers the loss (seed 0: 0.2000 < 0.3000; seed 1: 0.2500 < 0.3000)
    """
    if relation not in ("<", ">"):
        raise ValueError(f"relation must be '<' or '>', got relation={relation!r}")
    holds = all(a < b if relation == "<" else a > b for a, b in pairs.values())
    evidence = "; ".join(f"seed {seed}: {a:.4f} {relation} {b:.4f}" for seed, (a, b) in pairs.items())
    return Claim(statement, holds, evidence)


def spatial_dropout_claims(
    *,
    equal_to_dropout2d: Sequence[bool],
    same_outputs: bool,
    same_gradients: bool,
    fraction: float,
    p: float,
    channels: int,
    whole: bool,
    mean_ratio: float,
    gradcheck: bool,
) -> list[Claim]:
    """Section "Spatial dropout from scratch": it is ``F.dropout2d``, and its statistics are right.

    Args:
        equal_to_dropout2d: for each seed and ``p`` tried, whether ``spatial_dropout`` equalled
            ``F.dropout2d`` bit for bit after the same ``torch.manual_seed``.
        same_outputs, same_gradients: whether a :func:`small_cnn` with ``SpatialDropout`` gave
            ``nn.Dropout2d``'s outputs and gradients.
        fraction, p, channels: the fraction of ``channels`` channels dropped at probability ``p``
            (within :func:`fraction_tolerance` of ``p``).
        whole: whether every channel came out all zero or exactly ``x / q``.
        mean_ratio: ``mean(y) / mean(x)`` (within :data:`MEAN_RATIO_TOLERANCE` of 1).
        gradcheck: whether ``torch.autograd.gradcheck`` passed.

    Example:
        >>> claims = spatial_dropout_claims(
        ...     equal_to_dropout2d=[True] * 15, same_outputs=True, same_gradients=True,
        ...     fraction=0.3, p=0.3, channels=12800, whole=True, mean_ratio=1.0, gradcheck=True)
        >>> all(claim.holds for claim in claims), len(claims)
        (True, 6)
    """
    same = list(equal_to_dropout2d)
    return [
        Claim(
            "spatial_dropout equals F.dropout2d bit for bit",
            bool(same) and all(same),
            f"{sum(same)} of {len(same)} seeds and values of p",
        ),
        Claim(
            "SpatialDropout gives nn.Dropout2d's outputs and gradients",
            same_outputs and same_gradients,
            f"same outputs: {same_outputs}, same gradients: {same_gradients}",
        ),
        below(
            f"about a fraction p = {p} of the channels is dropped (|fraction - p|)",
            abs(fraction - p),
            fraction_tolerance(p, channels),
        ),
        Claim("every channel is all zero or x/q", whole, f"all channels whole: {whole}"),
        below("the mean is kept (|mean(y)/mean(x) - 1|)", abs(mean_ratio - 1), MEAN_RATIO_TOLERANCE),
        Claim("the backward pass matches finite differences", gradcheck, f"gradcheck passed: {gradcheck}"),
    ]


def neighbour_claims(relu1: Sequence[float], upsampled: Sequence[float]) -> list[Claim]:
    """Section "How much do neighbours know?": moderate correlation at 8x8, strong on upsampled digits.

    Args:
        relu1: the mean neighbour correlation of the ``relu1`` maps at offsets 1, 2, 3, ...
            (:func:`neighbour_correlation`, averaged over channels).
        upsampled: the mean neighbour correlation at offset 1 of each upsampled version of the digits.

    Example:
        >>> [c.holds for c in neighbour_claims([0.3, 0.1, 0.02, -0.01], [0.9, 0.97])]
        [True, True, True]
    """
    relu1, upsampled = list(relu1), list(upsampled)
    if len(relu1) < 3 or not upsampled:
        raise ValueError("relu1 needs the correlations at offsets 1 to 3 at least, upsampled one value")
    low, high = RELU1_CORRELATION_RANGE
    return [
        between("relu1 neighbours are moderately correlated (r at d = 1)", relu1[0], low, high),
        below(
            "relu1 activations 3 or more apart are nearly uncorrelated (largest |r|)",
            max(abs(r) for r in relu1[2:]),
            DISTANT_CORRELATION,
        ),
        above(
            "neighbouring pixels of upsampled digits are strongly correlated",
            min(upsampled),
            SMOOTH_CORRELATION,
        ),
    ]


def noise_formula_claims(exact: Mapping[str, float], sampled: Mapping[str, float]) -> list[Claim]:
    """Section "What reaches the next layer": the formulas match sampled masks; spatial passes on more.

    ``exact`` and ``sampled`` map ``"element"`` and ``"spatial"`` to :func:`next_layer_noise`
    computed from the formulas and from sampled masks.

    Example:
        >>> [c.holds for c in noise_formula_claims({"element": 0.1, "spatial": 0.15},
        ...                                        {"element": 0.102, "spatial": 0.149})]
        [True, True, True]
    """
    claims = [
        below(
            f"{kind}: the formula and the sampled masks agree (|sampled / formula - 1|)",
            abs(sampled[kind] / exact[kind] - 1),
            SAMPLED_NOISE_TOLERANCE,
        )
        for kind in ("element", "spatial")
    ]
    low, high = NOISE_RATIO_RANGE
    ratio = exact["spatial"] / exact["element"]
    claims.append(between("spatial dropout passes on a little more noise", ratio, low, high))
    return claims


def resolution_claims(native: MapStats, fine: MapStats) -> list[Claim]:
    """Section "What reaches the next layer": on finer maps, neighbours agree more and spatial noise wins.

    ``native`` and ``fine`` are the :func:`map_statistics` of the networks for the 8x8 digits and for
    the digits upsampled to 16x16.

    Example:
        >>> native, fine = MapStats(0.3, 0.2, 0.1, 0.15), MapStats(0.7, 0.6, 0.05, 0.12)
        >>> [c.holds for c in resolution_claims(native, fine)]
        [True, True, True]
    """
    return [
        above(
            "finer maps have more correlated neighbours (gain in r)",
            fine.correlation - native.correlation,
            FINER_CORRELATION_GAIN,
        ),
        below("element-wise dropout's noise shrinks on finer maps", fine.noise_element, native.noise_element),
        above(
            "the spatial / element-wise noise ratio grows on finer maps (gain)",
            fine.ratio - native.ratio,
            FINER_RATIO_GAIN,
        ),
    ]


def training_claims(runs: Mapping[tuple[str, int], TrainedRun], n_test: int | None = None) -> list[Claim]:
    """Section "Training with each kind of dropout": the three kinds at the same ``p``, over the seeds.

    By test loss, paired by seed (:func:`~dropoutlib.course.stats.paired_gain`): element-wise
    dropout lowers it by more than :data:`N_SE` standard errors, spatial dropout's is above
    element-wise dropout's by more than :data:`N_SE` standard errors, and spatial dropout does not
    lower it on average. Every network fits its training set (accuracy above :data:`FITS`), and the
    mean test accuracies lie within :data:`ACCURACY_SPREAD` of each other. With ``n_test`` (the
    number of test images), also: every paired difference of test accuracy is smaller than the
    binomial standard error of a single accuracy (that of the network without dropout).

    Example:
        >>> def run(kind, seed, loss, acc):
        ...     return TrainedRun(kind, seed, 1.0, acc, 0.0, loss, nn.Identity())
        >>> runs = {}
        >>> for seed, shift in enumerate([0.0, 0.01, -0.01]):
        ...     for kind, loss in (("none", 0.15), ("element", 0.12), ("spatial", 0.16)):
        ...         runs[kind, seed] = run(kind, seed, loss + shift + 0.001 * seed**2, 0.96)
        >>> [c.holds for c in training_claims(runs, n_test=540)]
        [True, True, True, True, True, True]
    """
    from dropoutlib.course.stats import binomial_standard_error

    loss, acc = by_kind(runs, "test_loss"), by_kind(runs, "test_acc")
    means = [acc[kind].mean() for kind in DROPOUT_KINDS]
    spatial_gain, _ = _paired(loss["none"], loss["spatial"])
    claims = [
        _clear("element-wise dropout lowers the test loss", loss["none"], loss["element"], -1, N_SE),
        _clear(
            "spatial dropout's test loss is above element-wise dropout's",
            loss["element"],
            loss["spatial"],
            1,
            N_SE,
        ),
        above("spatial dropout does not lower the test loss (mean paired difference)", spatial_gain, 0.0),
        above(
            "every network fits its training set (lowest train accuracy)",
            min(r.train_acc for r in runs.values()),
            FITS,
        ),
        below("the mean test accuracies lie within a point", max(means) - min(means), ACCURACY_SPREAD),
    ]
    if n_test is not None:
        largest = max(
            abs(_paired(acc[a], acc[b])[0])
            for a, b in (("none", "element"), ("none", "spatial"), ("element", "spatial"))
        )
        claims.append(
            below(
                "every paired accuracy difference is below one binomial SE of an accuracy",
                largest,
                binomial_standard_error(1 - float(acc["none"].mean()), n_test),
            )
        )
    return claims


def noise_at_test_time_claims(accuracy: Mapping[tuple[str, float], float], p: float = 0.3) -> list[Claim]:
    """Exercise 5: element-wise and spatial dropout left on at test time do similar damage at ``p``.

    ``accuracy`` maps ``(kind, p)`` to the test accuracy of the network trained without dropout with
    that dropout switched on (averaged over a few masks).

    Example:
        >>> noise_at_test_time_claims({("element", 0.3): 0.93, ("spatial", 0.3): 0.94})[0].holds
        True
    """
    difference = abs(accuracy["spatial", p] - accuracy["element", p])
    return [
        below(
            f"both kinds do similar damage at p = {p} (|difference of accuracies|)",
            difference,
            SIMILAR_DAMAGE,
        )
    ]


# --- a fair comparison: p chosen on a validation split, early stopping as a baseline --------------------

#: Dropout probabilities tried for each kind, its ``p`` chosen among them on the validation split:
#: the chapter's :data:`P` and one step towards the other kind's noise in ``conv2`` (spatial dropout
#: passes on more noise at the same ``p``, so its grid goes down and element-wise dropout's up).
P_GRIDS: dict[str, tuple[float, ...]] = {"element": (0.2, 0.5), "spatial": (0.05, 0.2)}
#: Seeds of the sweep (split, initial weights, minibatch order, masks), and of the chapter's comparison.
SWEEP_SEEDS: tuple[int, ...] = (0, 1, 2, 3, 4)
#: Validation images, drawn from the training images that the subsample of ``N_TRAIN`` leaves out.
N_VALIDATION = 270
#: A paired difference counts as clear when its mean is more than this many standard errors from 0.
N_SE = 2


def digits_with_validation(
    seed: int = 0, n_train: int = N_TRAIN, n_validation: int = N_VALIDATION
) -> tuple[Split, tuple[torch.Tensor, torch.Tensor]]:
    """``load_digits(seed=seed, n_train=n_train)`` and a validation set that training never sees.

    The split into training pool and test set and the stratified subsample of ``n_train`` images
    are those of :func:`~dropoutlib.course.data.load_digits` (same calls, same ``random_state``),
    so the :class:`~dropoutlib.course.data.Split` returned is the same. From the pool's images
    left out of the subsample, a stratified, seeded sample of ``n_validation`` becomes the
    validation set, standardized with the statistics of the ``n_train`` training images. The test
    set plays no part in it.

    Returns:
        ``(data, (x_val, y_val))``.

    Example:
        >>> data, (x_val, y_val) = digits_with_validation(0, n_train=100, n_validation=50)
        >>> data.n_train, tuple(x_val.shape), y_val.dtype
        (100, (50, 64), torch.int64)
    """
    import numpy as np
    import sklearn.datasets
    from sklearn.model_selection import train_test_split

    from dropoutlib.course.data import standardize

    seed = check_seed(seed)
    n_train = check_positive_int(n_train, "n_train")
    n_validation = check_positive_int(n_validation, "n_validation")
    data = load_digits(seed=seed, n_train=n_train)
    x, y = sklearn.datasets.load_digits(return_X_y=True)
    n_test = math.ceil(0.3 * len(y))  # load_digits' default test_fraction
    x_pool, _, y_pool, _ = train_test_split(x, y, test_size=n_test, stratify=y, random_state=seed)
    x_train, x_rest, _, y_rest = train_test_split(
        x_pool, y_pool, train_size=n_train, stratify=y_pool, random_state=seed
    )
    if not 10 <= n_validation <= len(y_rest):
        raise ValueError(
            f"n_validation must be between 10 and the {len(y_rest)} images the subsample leaves out, "
            f"got n_validation={n_validation}"
        )
    if n_validation < len(y_rest):
        x_rest, _, y_rest, _ = train_test_split(
            x_rest, y_rest, train_size=n_validation, stratify=y_rest, random_state=seed
        )
    _, x_val, _, _ = standardize(x_train, x_rest)
    x_val_t = torch.from_numpy(np.asarray(x_val)).to(torch.float32)
    return data, (x_val_t, torch.from_numpy(np.asarray(y_rest)).to(torch.int64))


@dataclass
class TrackedRun(TrainedRun):
    """A :class:`TrainedRun` that also knows its validation loss, and where early stopping would stop.

    Attributes (besides :class:`TrainedRun`'s):
        val_loss, val_acc: at the last epoch (evaluation mode), on the validation set.
        val_losses: the validation loss after every epoch (``every_epoch=True``), else the last only.
        best_epoch: the epoch (1-based) of lowest validation loss among ``val_losses``.
        early_test_loss, early_test_acc: test loss and accuracy of the weights of ``best_epoch``.
    """

    val_loss: float = math.nan
    val_acc: float = math.nan
    val_losses: list[float] = field(default_factory=list)
    best_epoch: int = 0
    early_test_loss: float = math.nan
    early_test_acc: float = math.nan


def _loss_acc(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    with torch.no_grad():
        out = model(x)
        return F.cross_entropy(out, y).item(), (out.argmax(dim=1) == y).sum().item() / len(y)


def train_tracked(
    kind: str,
    p: float = P,
    *,
    seed: int = 0,
    data: Split,
    validation: tuple[torch.Tensor, torch.Tensor],
    every_epoch: bool = False,
    epochs: int = EPOCHS,
) -> TrackedRun:
    """:func:`train_cnn` with a validation set: the same network, trained step for step the same way.

    The loop is :func:`~dropoutlib.course.train.fit`'s for Adam on minibatches of
    :data:`BATCH_SIZE` (same seeding, same minibatch order, same masks), so the final weights and
    test numbers equal ``train_cnn(kind, p, seed=seed, data=data, epochs=epochs)``'s to the last
    bit (a unit test checks it). What it adds: the loss on the validation set ``(x_val, y_val)``
    after the last epoch or, with ``every_epoch=True``, after every epoch, keeping a copy of the
    weights where it is lowest: the test numbers of those weights are early stopping's.
    """
    import copy

    from dropoutlib.course._threads import torch_threads

    kind = check_choice(kind, "kind", DROPOUT_KINDS)
    p = 0.0 if kind == "none" else check_probability(p)
    seed = check_seed(seed)
    data = check_split(data)
    epochs = check_positive_int(epochs, "epochs")
    x_val, y_val = validation
    seed_everything(seed)
    model = small_cnn(kind, p, CHANNELS)
    opt = torch.optim.Adam(model.parameters(), lr=LR, weight_decay=0.0, foreach=True)
    n = data.n_train
    torch.manual_seed(seed)
    shuffler = torch.Generator().manual_seed(seed)
    val_losses: list[float] = []
    best_state, best_epoch = None, epochs
    with torch_threads(1):
        for epoch in range(1, epochs + 1):
            model.train()
            order = torch.randperm(n, generator=shuffler)
            xs, ys = data.x_train[order], data.y_train[order]
            for i in range(0, n, BATCH_SIZE):
                opt.zero_grad(set_to_none=True)
                F.cross_entropy(model(xs[i : i + BATCH_SIZE]), ys[i : i + BATCH_SIZE]).backward()
                opt.step()
            if every_epoch or epoch == epochs:
                model.eval()
                val_losses.append(_loss_acc(model, x_val, y_val)[0])
                if every_epoch and val_losses[-1] == min(val_losses):
                    best_state, best_epoch = copy.deepcopy(model.state_dict()), epoch
        model.eval()
        train_loss, train_acc = _loss_acc(model, data.x_train, data.y_train)
        test_loss, test_acc = _loss_acc(model, data.x_test, data.y_test)
        val_loss, val_acc = _loss_acc(model, x_val, y_val)
        early_loss, early_acc = test_loss, test_acc
        if best_state is not None:
            final_state = copy.deepcopy(model.state_dict())
            model.load_state_dict(best_state)
            early_loss, early_acc = _loss_acc(model, data.x_test, data.y_test)
            model.load_state_dict(final_state)
    return TrackedRun(
        kind, seed, train_acc, test_acc, train_loss, test_loss, model, History(), p, None,
        val_loss, val_acc, val_losses, best_epoch, early_loss, early_acc,
    )  # fmt: skip


def sweep_dropout(
    seeds: Iterable[int] = SWEEP_SEEDS, grids: Mapping[str, Sequence[float]] = P_GRIDS
) -> dict[tuple[str, float, int], TrackedRun]:
    """For every seed: the network without dropout (validation loss after every epoch, for early
    stopping) and one network per kind of dropout and ``p`` of its grid (:func:`train_tracked`).

    Every network of one seed trains on the same images (:func:`digits_with_validation`), from the
    same initial weights, on the same minibatches: the comparisons are paired by seed.

    Returns:
        ``(kind, p, seed) -> TrackedRun``; the network without dropout under ``p = 0.0``.
    """
    seeds = [check_seed(seed) for seed in seeds]
    if not seeds:
        raise ValueError("seeds must hold at least one seed")
    if set(grids) != {"element", "spatial"}:
        raise ValueError(f"grids must map 'element' and 'spatial' to their p's, got {dict(grids)!r}")
    for kind, grid in grids.items():
        if not grid or not all(0 < check_probability(p) < 1 for p in grid):
            raise ValueError(f"grids[{kind!r}] must hold dropout probabilities 0 < p < 1, got {grid!r}")
    runs: dict[tuple[str, float, int], TrackedRun] = {}
    for seed in seeds:
        data, validation = digits_with_validation(seed)
        runs["none", 0.0, seed] = train_tracked(
            "none", seed=seed, data=data, validation=validation, every_epoch=True
        )
        for kind in ("element", "spatial"):
            for p in grids[kind]:
                runs[kind, p, seed] = train_tracked(kind, p, seed=seed, data=data, validation=validation)
    return runs


def runs_at(
    sweep: Mapping[tuple[str, float, int], TrainedRun], p: float = P
) -> dict[tuple[str, int], TrainedRun]:
    """The networks of a sweep at one ``p`` (and those without dropout), keyed ``(kind, seed)`` as
    :func:`compare_dropout` keys them."""
    out = {(kind, seed): run for (kind, q, seed), run in sweep.items() if kind == "none" or q == p}
    if {kind for kind, _ in out} != set(DROPOUT_KINDS):
        raise ValueError(f"the sweep has networks of every kind at p={p!r} only if both grids hold it")
    return out


def _grid(sweep: Mapping[tuple[str, float, int], Any], kind: str) -> list[float]:
    return sorted({p for k, p, _ in sweep if k == kind})


def fair_comparison(sweep: Mapping[tuple[str, float, int], TrackedRun]) -> dict[str, Any]:
    """Each kind of dropout at its own ``p``, chosen on the validation split, and the baselines.

    The ``p`` of each kind is the one of its grid with the lowest validation loss, averaged over
    the seeds (the test set plays no part). Returns:

    - ``"test_loss"``, ``"test_acc"``: ``name -> array over the sorted seeds`` for ``"none"`` (no
      dropout, last epoch), ``"early"`` (no dropout, the epoch of lowest validation loss),
      ``"element"`` and ``"spatial"`` (each at its chosen ``p``);
    - ``"p"``: the chosen ``p`` per kind; ``"val_loss"``: ``(kind, p) -> (mean, standard error)``
      of the validation loss over the seeds;
    - ``"best_epoch"``: early stopping's epoch per seed; ``"seeds"``.
    """
    import numpy as np

    seeds = sorted({seed for _, _, seed in sweep})
    val_loss = {}
    for kind in ("element", "spatial"):
        for p in _grid(sweep, kind):
            values = np.array([sweep[kind, p, s].val_loss for s in seeds])
            se = values.std(ddof=1) / math.sqrt(len(seeds)) if len(seeds) > 1 else 0.0
            val_loss[kind, p] = (float(values.mean()), float(se))
    chosen = {
        kind: min(_grid(sweep, kind), key=lambda p, k=kind: val_loss[k, p][0])
        for kind in ("element", "spatial")
    }
    none = [sweep["none", 0.0, s] for s in seeds]
    out: dict[str, Any] = {"seeds": seeds, "p": chosen, "val_loss": val_loss}
    for metric in ("test_loss", "test_acc"):
        out[metric] = {
            "none": np.array([getattr(r, metric) for r in none]),
            "early": np.array([getattr(r, "early_" + metric) for r in none]),
        } | {
            kind: np.array([getattr(sweep[kind, p, s], metric) for s in seeds]) for kind, p in chosen.items()
        }
    out["best_epoch"] = np.array([r.best_epoch for r in none])
    return out


def injected_noise(
    sweep: Mapping[tuple[str, float, int], TrainedRun], x: Mapping[int, torch.Tensor]
) -> dict[tuple[str, float, int], float]:
    """The noise each network of a sweep puts into ``conv2``: :func:`next_layer_noise` of its kind
    and ``p`` on the network without dropout of its seed, for that seed's images ``x[seed]``.

    The formula is :math:`p/q` times a number per kind and seed, which is computed once.
    """
    unit: dict[tuple[str, int], float] = {}
    out = {}
    for kind, p, seed in sweep:
        if kind == "none":
            continue
        if (kind, seed) not in unit:
            unit[kind, seed] = next_layer_noise(sweep["none", 0.0, seed].model, x[seed], kind, 0.5)
        out[kind, p, seed] = p / (1 - p) * unit[kind, seed]
    return out


def matched_noise(
    sweep: Mapping[tuple[str, float, int], TrainedRun],
    noise: Mapping[tuple[str, float, int], float],
    metric: str = "test_loss",
) -> dict[float, Any]:
    """Spatial against element-wise dropout at the same noise in ``conv2``, per seed.

    For every seed and every ``p`` of spatial dropout whose :func:`injected_noise` lies within the
    range of element-wise dropout's grid, element-wise dropout's ``metric`` is interpolated
    linearly in the logarithm of the noise between its grid points, and subtracted from spatial
    dropout's. Returns ``p -> array over the sorted seeds of (spatial - element-wise)``, for the
    values of ``p`` that are inside the range on every seed.

    Example:
        >>> class R:
        ...     def __init__(self, loss): self.test_loss = loss
        >>> sweep = {("element", 0.2, 0): R(0.3), ("element", 0.5, 0): R(0.1),
        ...          ("spatial", 0.05, 0): R(0.5), ("spatial", 0.2, 0): R(0.4)}
        >>> noise = {("element", 0.2, 0): 1.0, ("element", 0.5, 0): 100.0,
        ...          ("spatial", 0.05, 0): 0.5, ("spatial", 0.2, 0): 10.0}
        >>> {p: d.round(4).tolist() for p, d in matched_noise(sweep, noise).items()}
        {0.2: [0.2]}
    """
    import numpy as np

    seeds = sorted({seed for _, _, seed in sweep})
    grid = _grid(sweep, "element")
    out: dict[float, Any] = {}
    for p in _grid(sweep, "spatial"):
        differences = []
        for seed in seeds:
            xs = np.log([noise["element", q, seed] for q in grid])
            ys = [getattr(sweep["element", q, seed], metric) for q in grid]
            at = math.log(noise["spatial", p, seed])
            if not xs[0] <= at <= xs[-1]:
                break
            differences.append(getattr(sweep["spatial", p, seed], metric) - float(np.interp(at, xs, ys)))
        else:
            out[p] = np.array(differences)
    return out


def by_kind(runs: Mapping[tuple[str, int], TrainedRun], metric: str) -> dict[str, Any]:
    """``kind -> array over the sorted seeds`` of a :class:`TrainedRun` number (``test_loss``, ...).

    Example:
        >>> run = TrainedRun("none", 0, 1.0, 0.96, 0.01, 0.15, nn.Identity())
        >>> by_kind({("none", 0): run, ("none", 1): run}, "test_acc")
        {'none': array([0.96, 0.96])}
    """
    import numpy as np

    seeds = sorted({seed for _, seed in runs})
    kinds = [kind for kind in DROPOUT_KINDS if (kind, seeds[0]) in runs]
    return {kind: np.array([float(getattr(runs[kind, s], metric)) for s in seeds]) for kind in kinds}


def paired_rows(
    values: Mapping[str, Mapping[str, Any]], pairs: Sequence[tuple[str, str]], digits: int = 4
) -> list[dict[str, Any]]:
    """Rows for a table of paired differences: for each ``(base, other)`` and each metric of
    ``values`` (``metric -> name -> per-seed array``), ``other - base`` as mean ± standard error
    over the seeds (:func:`~dropoutlib.course.stats.paired_gain`), and that mean in standard errors.

    Example:
        >>> import numpy as np
        >>> values = {"test loss": {"a": np.array([0.2, 0.3]), "b": np.array([0.1, 0.25])}}
        >>> paired_rows(values, [("a", "b")])
        [{'difference': 'b - a', 'test loss': '-0.0750 ± 0.0250', 'test loss / SE': -3.0}]
    """
    from dropoutlib.course.stats import paired_gain

    rows = []
    for base, other in pairs:
        row: dict[str, Any] = {"difference": f"{other} - {base}"}
        for metric, named in values.items():
            mean, _, se = paired_gain(named[base], named[other])
            row[metric] = f"{mean:+.{digits}f} ± {se:.{digits}f}"
            row[f"{metric} / SE"] = round(mean / se, 1) if se > 0 else math.inf
        rows.append(row)
    return rows


def _paired(base: Any, other: Any) -> tuple[float, float]:
    from dropoutlib.course.stats import paired_gain

    mean, _, se = paired_gain(base, other)
    return mean, se


def _clear(statement: str, base: Any, other: Any, sign: int, n_se: float) -> Claim:
    """The claim that ``other - base`` is clearly below 0 (``sign=-1``: mean + n_se SE < 0) or above."""
    mean, se = _paired(base, other)
    if sign < 0:
        return below(f"{statement} (mean + {n_se:g} SE)", mean + n_se * se, 0.0)
    return above(f"{statement} (mean - {n_se:g} SE)", mean - n_se * se, 0.0)


def _inside(statement: str, base: Any, other: Any) -> Claim:
    """The claim that ``other - base`` is inside the noise: ``|mean| < N_SE`` standard errors."""
    mean, se = _paired(base, other)
    return below(f"{statement} (|mean| / SE)", abs(mean) / se if se > 0 else math.inf, N_SE)


def _fair_directions(result: Mapping[str, Any], matched: Mapping[float, Any], n_se: float) -> list[Claim]:
    loss = result["test_loss"]
    element, spatial = "element-wise dropout", "spatial dropout"
    claims = [
        _clear(f"at its p, {element} beats no dropout by test loss", loss["none"], loss["element"], -1, n_se),
        _clear(
            f"at its p, {element} beats early stopping by test loss", loss["early"], loss["element"], -1, n_se
        ),
        _clear(
            f"at their p's, {spatial}'s test loss is above {element}'s",
            loss["element"],
            loss["spatial"],
            1,
            n_se,
        ),
    ]
    zeros = [0.0] * len(loss["none"])
    claims += [
        _clear(
            f"at the same noise in conv2, {spatial} (p = {p:g}) has the higher test loss", zeros, d, 1, n_se
        )
        for p, d in matched.items()
    ]
    return claims


def fair_claims(
    result: Mapping[str, Any], matched: Mapping[float, Any], matched_acc: Mapping[float, Any]
) -> list[Claim]:
    """Section "A fair comparison": each kind at the ``p`` chosen on validation, and at equal noise.

    ``result`` comes from :func:`fair_comparison`, ``matched`` and ``matched_acc`` from
    :func:`matched_noise` (test loss and test accuracy). Validation moves element-wise dropout's
    ``p`` above :data:`P` and spatial dropout's below it. By test loss, paired by seed, by more than
    :data:`N_SE` standard errors: element-wise dropout at its ``p`` beats no dropout, early
    stopping and spatial dropout at its ``p``, and spatial dropout is worse at equal noise. Inside
    the noise (less than :data:`N_SE` standard errors): spatial dropout at its ``p`` against no
    dropout and early stopping against the last epoch, by test loss; and by test accuracy, every
    difference of the section's table.

    Example:
        >>> import numpy as np
        >>> a = np.array
        >>> result = {"p": {"element": 0.5, "spatial": 0.05},
        ...           "test_loss": {"none": a([.15, .12, .14]), "early": a([.15, .13, .14]),
        ...                         "element": a([.13, .10, .12]), "spatial": a([.15, .125, .14])},
        ...           "test_acc": {"none": a([.96, .97, .96]), "early": a([.96, .97, .97]),
        ...                        "element": a([.97, .96, .96]), "spatial": a([.965, .97, .96])}}
        >>> claims = fair_claims(result, {0.2: a([0.02, 0.03, 0.025])}, {0.2: a([0.0, -0.01, 0.01])})
        >>> [c.holds for c in claims]
        [True, True, True, True, True, True, True, True]
    """
    loss, acc = result["test_loss"], result["test_acc"]
    chosen = result["p"]
    claims = [
        Claim(
            f"validation moves element-wise dropout's p above {P:g} and spatial dropout's below",
            chosen["element"] > P > chosen["spatial"],
            f"element-wise p = {chosen['element']:g}, spatial p = {chosen['spatial']:g}",
        )
    ]
    claims += _fair_directions(result, matched, N_SE)
    claims += [
        _inside("at its p, spatial dropout against no dropout: test loss", loss["none"], loss["spatial"]),
        _inside("early stopping against the last epoch: test loss", loss["none"], loss["early"]),
    ]
    pairs = [
        ("none", "element"),
        ("early", "element"),
        ("none", "spatial"),
        ("none", "early"),
        ("element", "spatial"),
    ]
    zeros = [0.0] * len(acc["none"])
    ratios = [abs(m) / se if se > 0 else math.inf for m, se in (_paired(acc[a], acc[b]) for a, b in pairs)]
    ratios += [
        abs(m) / se if se > 0 else math.inf for m, se in (_paired(zeros, d) for d in matched_acc.values())
    ]
    claims.append(
        below(
            "by test accuracy, every difference is inside the noise (largest |mean| / SE)", max(ratios), N_SE
        )
    )
    return claims


def fair_direction_claims(result: Mapping[str, Any], matched: Mapping[float, Any]) -> list[Claim]:
    """The directions of :func:`fair_claims`' clear differences, without their size: the sign of
    each paired mean (what the tests check on fresh seeds, where five seeds may not make the
    differences clear).

    Example:
        >>> import numpy as np
        >>> a = np.array
        >>> result = {"test_loss": {"none": a([.15, .12]), "early": a([.15, .13]),
        ...                         "element": a([.13, .10]), "spatial": a([.15, .125])}}
        >>> [c.holds for c in fair_direction_claims(result, {0.2: a([0.02, -0.01])})]
        [True, True, True, True]
    """
    return _fair_directions(result, matched, 0.0)
