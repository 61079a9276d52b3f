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
    "N_TRAIN",
    "P",
    "MapStats",
    "TrainedRun",
    "compare_dropout",
    "feature_maps",
    "between",
    "fraction_tolerance",
    "map_statistics",
    "neighbour_claims",
    "neighbour_correlation",
    "neighbour_r2",
    "next_layer_noise",
    "noise_at_test_time_claims",
    "noise_formula_claims",
    "on_every_seed",
    "resolution_claims",
    "small_cnn",
    "spatial_dropout_claims",
    "summarize_runs",
    "train_cnn",
    "train_run",
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


def training_claims(runs: Mapping[tuple[str, int], TrainedRun]) -> list[Claim]:
    """Section "Training with each kind of dropout", for every seed in ``runs`` and on their means.

    On every seed: element-wise dropout lowers the test loss, spatial dropout's is above element-wise
    dropout's, and every network fits its training set (accuracy above :data:`FITS`). On the means
    over the seeds: spatial dropout does not lower the test loss, and the test accuracies lie within
    :data:`ACCURACY_SPREAD` of each other.

    Example:
        >>> def run(kind, loss, acc):
        ...     return TrainedRun(kind, 0, 1.0, acc, 0.0, loss, nn.Identity())
        >>> runs = {("none", 0): run("none", 0.15, 0.96), ("element", 0): run("element", 0.12, 0.965),
        ...         ("spatial", 0): run("spatial", 0.16, 0.962)}
        >>> [c.holds for c in training_claims(runs)]
        [True, True, True, True, True]
    """
    seeds = sorted({seed for _, seed in runs})
    loss = summarize_runs(dict(runs), "test_loss")
    acc = summarize_runs(dict(runs), "test_acc")
    means = [acc[kind][0] for kind in DROPOUT_KINDS]
    return [
        on_every_seed(
            "element-wise dropout lowers the test loss on every seed",
            {s: (runs["element", s].test_loss, runs["none", s].test_loss) for s in seeds},
            "<",
        ),
        on_every_seed(
            "spatial dropout's test loss is above element-wise dropout's on every seed",
            {s: (runs["spatial", s].test_loss, runs["element", s].test_loss) for s in seeds},
            ">",
        ),
        above(
            "spatial dropout does not lower the mean test loss",
            loss["spatial"][0],
            loss["none"][0],
        ),
        above(
            "every network fits its training set (lowest train accuracy)",
            min(r.train_acc for r in runs.values()),
            FITS,
        ),
        below("the mean test accuracies lie within a point", max(means) - min(means), ACCURACY_SPREAD),
    ]


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
