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
Notation: ``p`` is the probability of dropping (a number or a channel), ``q = 1 - p``.
"""

from __future__ import annotations

import numbers
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
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
from dropoutlib.course.data import Split, load_digits
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
    "CNNRun",
    "MapStats",
    "compare_dropout",
    "feature_maps",
    "map_statistics",
    "neighbour_correlation",
    "neighbour_r2",
    "next_layer_noise",
    "small_cnn",
    "summarize_runs",
    "train_cnn",
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
class CNNRun:
    """One training run of :func:`small_cnn` on the digits, and its final numbers.

    Attributes:
        kind, p, seed: how it was trained.
        train_acc, test_acc, train_loss, test_loss: of the full network (evaluation mode) at the end.
        history: the training :class:`~dropoutlib.course.train.History` (recorded at the last epoch only).
        model: the trained network.

    Example:
        >>> run = CNNRun("none", 0.0, 0, 1.0, 0.96, 0.01, 0.15, History(), nn.Identity())
        >>> round(run.gap, 4), round(run.loss_gap, 4)
        (0.04, 0.14)
    """

    kind: str
    p: float
    seed: int
    train_acc: float
    test_acc: float
    train_loss: float
    test_loss: float
    history: History
    model: nn.Module

    @property
    def gap(self) -> float:
        """Train accuracy minus test accuracy."""
        return self.train_acc - self.test_acc

    @property
    def loss_gap(self) -> float:
        """Test loss minus train loss."""
        return self.test_loss - self.train_loss


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
) -> CNNRun:
    """Train :func:`small_cnn` ``(kind, p)`` on the digits with Adam and return a :class:`CNNRun`.

    Data: ``load_digits(seed=seed, n_train=N_TRAIN)`` unless ``data`` is given. The weights are
    initialized after ``seed_everything(seed)``, so the three kinds start from identical weights
    for one seed, and :func:`~dropoutlib.course.train.fit` is called with ``seed``, which fixes the
    minibatch order and the dropout masks. ``p`` is ignored (taken as 0) for ``kind="none"``.

    Example:
        >>> run = train_cnn("spatial", 0.2, channels=(4, 8), epochs=1)
        >>> run.kind, run.p, 0.0 <= run.test_acc <= 1.0
        ('spatial', 0.2, True)
    """
    kind = check_choice(kind, "kind", DROPOUT_KINDS)
    p = 0.0 if kind == "none" else check_probability(p)
    seed = check_seed(seed)
    if data is None:
        data = load_digits(seed=seed, n_train=N_TRAIN)
    elif not isinstance(data, Split):
        raise TypeError(f"data must be a dropoutlib.course.data.Split or None, got {type(data).__name__}")
    epochs = check_positive_int(epochs, "epochs")
    seed_everything(seed)
    model = small_cnn(kind, p, channels, upsample=upsample)
    history = fit(
        model, data, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, progress=False, eval_every=epochs
    )
    last = history.final()
    return CNNRun(
        kind,
        p,
        seed,
        last["train_acc"],
        last["test_acc"],
        last["train_loss"],
        last["test_loss"],
        history,
        model,
    )


def compare_dropout(
    seeds: Iterable[int],
    p: float = P,
    kinds: Sequence[str] = DROPOUT_KINDS,
    **options: Any,
) -> dict[tuple[str, int], CNNRun]:
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
    runs: dict[tuple[str, int], CNNRun] = {}
    for seed in seeds:
        data = given if given is not None else load_digits(seed=seed, n_train=N_TRAIN)
        for kind in kinds:
            runs[kind, seed] = train_cnn(kind, p, seed=seed, data=data, **options)
    return runs


def summarize_runs(runs: dict[tuple[str, int], CNNRun], attribute: str) -> dict[str, tuple[float, float]]:
    """Mean and standard deviation (over seeds, ``ddof=1``; 0 for one seed) of an attribute, per kind.

    ``attribute`` is a :class:`CNNRun` number: ``test_acc``, ``test_loss``, ``gap``, ``loss_gap``, ...

    Example:
        >>> run = CNNRun("none", 0.0, 0, 1.0, 0.96, 0.01, 0.15, History(), nn.Identity())
        >>> summarize_runs({("none", 0): run, ("none", 1): run}, "test_acc")
        {'none': (0.96, 0.0)}
    """
    if not isinstance(runs, dict) or not runs:
        raise TypeError("runs must be a non-empty dict {(kind, seed): CNNRun} from compare_dropout")
    values: dict[str, list[float]] = {}
    for (kind, _), run in runs.items():
        value = getattr(run, attribute, None)
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ValueError(f"attribute must name a number of CNNRun, got attribute={attribute!r}")
        values.setdefault(kind, []).append(float(value))
    out = {}
    for kind, numbers_ in values.items():
        tensor = torch.tensor(numbers_, dtype=torch.float64)
        std = float(tensor.std()) if len(numbers_) > 1 else 0.0
        out[kind] = (float(tensor.mean()), std)
    return out
