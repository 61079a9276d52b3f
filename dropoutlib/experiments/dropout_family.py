r"""The experiments of chapter 13, "The dropout family": what each variant preserves, costs and gains.

The layers themselves live in :mod:`dropoutlib.nn` (DropConnect, Gaussian dropout, alpha dropout,
DropPath, DropBlock). This module measures them:

- **Moments.** :func:`measure_moments` draws a noise function many times on a fixed input and reports
  the mean and variance of the output over all values (the *population*, what the next layer sees),
  and, per value, how the mean output depends on the input (:attr:`Moments.slope`, 1 when every value
  is kept on average) and how large the noise is relative to :math:`x^2` (:attr:`Moments.noise`,
  :math:`p/q` for inverted dropout). :data:`ELEMENTWISE_NOISES` names the noises it compares.
- **Noise structure.** :func:`noise_structure` compares dropout on a linear layer's inputs with
  DropConnect on its weights: same mean, same variance per output unit, but different correlations
  between the units and between the examples of a batch. :func:`mask_structure` measures how
  dropped positions of a feature map cluster (element-wise, DropBlock, spatial).
- **SELU and depth.** :func:`selu_mlp` builds a self-normalizing network (SELU, LeCun-normal weights,
  optional alpha or standard dropout); :func:`depth_statistics` follows the mean and variance of its
  activations through the layers.
- **Stochastic depth.** :func:`residual_mlp` stacks residual blocks (:class:`ResidualBlock`,
  ``x + DropPath(p)(f(x))``) with the drop rates of :func:`~dropoutlib.nn.drop_path.drop_path_schedule`.
- **One task.** :data:`VARIANTS` lists the networks compared on the digits (a ReLU MLP without
  dropout, with dropout, DropConnect and Gaussian dropout; a SELU MLP without dropout, with alpha and
  with standard dropout; a residual MLP with and without DropPath; a small CNN without dropout, with
  element-wise dropout and with DropBlock), :func:`train_variant` trains one with the shared budget
  (:data:`N_TRAIN` images, full-batch Adam, :data:`EPOCHS` steps, learning rate :data:`LR`) into a
  :class:`~dropoutlib.experiments.convolutions.TrainedRun`, and :func:`compare_family` trains them all
  over seeds. :func:`random_numbers_per_step` counts the random numbers a training step draws, a cost
  that does not depend on the machine.
- **Claims.** The chapter's claims are written once, here, in the ``*_claims`` functions (one per
  section, and for exercises 4 and 5); the chapter's check cells and
  ``tests/chapters/test_dropout_family_claims.py`` call the same functions.

Notation: ``p`` is the probability of dropping (a unit, a weight, a branch, a block), ``q = 1 - p``.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from torch.overrides import TorchFunctionMode

from dropoutlib._modes import restored_modes
from dropoutlib._validation import (
    check_choice,
    check_floating,
    check_generator,
    check_positive_int,
    check_probability,
)
from dropoutlib.course.claims import Claim, above, below
from dropoutlib.course.data import Split, load_digits
from dropoutlib.course.models import mlp
from dropoutlib.course.seeding import check_seed, seed_everything
from dropoutlib.course.stats import paired_gain
from dropoutlib.experiments.convolutions import (
    FITS,
    TrainedRun,
    between,
    neighbour_correlation,
    on_every_seed,
    small_cnn,
    summarize_runs,
    train_run,
)
from dropoutlib.nn.alpha import AlphaDropout, alpha_dropout
from dropoutlib.nn.drop_path import DropPath, drop_path, drop_path_schedule
from dropoutlib.nn.dropblock import DropBlock2d, dropblock
from dropoutlib.nn.dropconnect import DropConnectLinear
from dropoutlib.nn.dropout import Dropout, dropout
from dropoutlib.nn.gaussian import GaussianDropout, gaussian_dropout
from dropoutlib.nn.spatial import spatial_dropout

__all__ = [
    "droppath_unresolved_claims",
    "MLP_SEEDS",
    "scores",
    "droppath_skip_rates",
    "droppath_rate_claims",
    "dropconnect_probabilities",
    "dropconnect_inference_claims",
    "dropconnect_inference",
    "Scores",
    "RampedDropBlock2d",
    "MOMENT_SAMPLES",
    "MC_PASSES",
    "INFERENCE_RULES",
    "BLOCK_SIZES",
    "CNN_CHANNELS",
    "CNN_P",
    "DEPTH",
    "DROP_PATH",
    "ELEMENTWISE_NOISES",
    "EPOCHS",
    "FAMILIES",
    "HIDDEN",
    "LR",
    "MASK_KINDS",
    "N_TRAIN",
    "P",
    "SELU_P",
    "VARIANTS",
    "DepthStatistics",
    "MaskStructure",
    "Moments",
    "NoiseStructure",
    "ResidualBlock",
    "Variant",
    "alpha_claims",
    "build_variant",
    "comparison_claims",
    "correlation_formula_claims",
    "depth_claims",
    "dropblock_claims",
    "compare_family",
    "depth_statistics",
    "mask_structure",
    "measure_moments",
    "moment_claims",
    "multiplier_claims",
    "noise_structure",
    "noise_structure_claims",
    "random_numbers_per_step",
    "residual_mlp",
    "selu_mlp",
    "shallow_droppath_claims",
    "train_variant",
]

#: The shared budget: a stratified subsample of 200 training digits, full-batch Adam, 100 steps.
N_TRAIN = 200
EPOCHS = 100
LR = 1e-2
#: Hidden widths of the MLPs (ReLU and SELU).
HIDDEN: tuple[int, ...] = (64, 64)
#: Drop probability of dropout, DropConnect and Gaussian dropout in the ReLU MLP.
P = 0.5
#: Drop probability of alpha and standard dropout in the SELU MLP (Klambauer et al. use 0.05 to 0.1).
SELU_P = 0.1
#: Residual MLP: number of blocks and the DropPath rate of the last block (linear schedule).
DEPTH = 8
DROP_PATH = 0.5
#: CNN (``small_cnn`` of chapter 10 with fewer channels): drop probability and DropBlock's block sizes
#: after the first (8x8 maps) and the second (4x4 maps) convolution block.
CNN_CHANNELS: tuple[int, int] = (8, 16)
CNN_P = 0.2
BLOCK_SIZES: tuple[int, int] = (3, 2)

_IN, _OUT = 64, 10  # the digits: 64 pixels, 10 classes


# --- the networks compared ------------------------------------------------------------------------------


def _lecun_normal_(linear: nn.Linear) -> nn.Linear:
    nn.init.normal_(linear.weight, 0.0, 1.0 / math.sqrt(linear.in_features))
    nn.init.zeros_(linear.bias)
    return linear


_SELU_DROPOUTS = ("none", "alpha", "standard")


def selu_mlp(
    in_features: int,
    hidden: Sequence[int],
    out_features: int,
    dropout: str = "none",
    p: float = 0.0,
) -> nn.Sequential:
    r"""A self-normalizing MLP: ``Linear, SELU, [dropout]`` per hidden layer, then ``Linear``.

    Weights are drawn from :math:`N(0, 1/\text{fan-in})` ("LeCun normal") and biases are zero, the
    initialization under which SELU keeps activations near mean 0 and variance 1 layer after layer
    (Klambauer et al., 2017). PyTorch's default ``nn.Linear`` initialization has a third of that
    variance, so it is overwritten. ``dropout`` is ``"none"``, ``"alpha"``
    (:class:`~dropoutlib.nn.AlphaDropout`) or ``"standard"`` (inverted dropout,
    :class:`~dropoutlib.nn.Dropout`), with probability ``p`` after every SELU.

    Example:
        >>> _ = torch.manual_seed(0)
        >>> net = selu_mlp(64, [32, 32], 10, dropout="alpha", p=0.1)
        >>> [type(m).__name__ for m in net]
        ['Linear', 'SELU', 'AlphaDropout', 'Linear', 'SELU', 'AlphaDropout', 'Linear']
        >>> round(net[0].weight.std().item(), 2), round(1 / 64**0.5, 2)
        (0.12, 0.12)
    """
    in_features = check_positive_int(in_features, "in_features")
    out_features = check_positive_int(out_features, "out_features")
    if isinstance(hidden, str | bytes) or not isinstance(hidden, Sequence) or len(hidden) == 0:
        raise TypeError(
            f"hidden must be a non-empty sequence of widths such as (64, 64), got hidden={hidden!r}"
        )
    widths = [check_positive_int(w, f"hidden[{i}]") for i, w in enumerate(hidden)]
    if dropout not in _SELU_DROPOUTS:
        raise ValueError(f"dropout must be one of {_SELU_DROPOUTS}, got dropout={dropout!r}")
    p = check_probability(p)
    if dropout != "none" and not 0 < p < 1:
        raise ValueError(f"dropout={dropout!r} needs 0 < p < 1, got p={p!r}")
    layers: list[nn.Module] = []
    fan_in = in_features
    for width in widths:
        layers += [_lecun_normal_(nn.Linear(fan_in, width)), nn.SELU()]
        if dropout == "alpha":
            layers.append(AlphaDropout(p))
        elif dropout == "standard":
            layers.append(Dropout(p))
        fan_in = width
    layers.append(_lecun_normal_(nn.Linear(fan_in, out_features)))
    return nn.Sequential(*layers)


class ResidualBlock(nn.Module):
    """A fully connected residual block with stochastic depth: ``y = x + DropPath(p)(branch(x))``.

    ``branch`` is ``Linear(width, width) -> ReLU -> Linear(width, width)``. In training, each example
    skips the branch (``y = x``) with probability ``p``; otherwise it gets ``x + branch(x) / q``. In
    evaluation ``y = x + branch(x)``. Shapes: ``(N, width)`` to ``(N, width)``.

    The block itself is not a dropout layer (it has no ``dropout_variant`` attribute); its submodule
    ``drop_path`` (a :class:`DropPath`) is, so Monte Carlo dropout switches on exactly that.

    Args:
        width: number of features in and out.
        p: probability of skipping the branch, in ``[0, 1]``. Default 0.0 (a plain residual block).

    Example:
        >>> block = ResidualBlock(4, p=0.2)
        >>> block
        ResidualBlock(
          width=4, p=0.2
          (branch): Sequential(
            (0): Linear(in_features=4, out_features=4, bias=True)
            (1): ReLU()
            (2): Linear(in_features=4, out_features=4, bias=True)
          )
          (drop_path): DropPath(p=0.2)
        )
        >>> block(torch.randn(3, 4)).shape
        torch.Size([3, 4])
    """

    def __init__(self, width: int, p: float = 0.0) -> None:
        super().__init__()
        self.width = check_positive_int(width, "width")
        self.branch = nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, width))
        self.drop_path = DropPath(p)

    @property
    def p(self) -> float:
        """The probability of skipping the branch (that of the block's :class:`DropPath`)."""
        return self.drop_path.p

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return input + self.drop_path(self.branch(input))

    def extra_repr(self) -> str:
        return f"width={self.width}, p={self.p}"


def residual_mlp(
    in_features: int,
    width: int,
    out_features: int,
    depth: int,
    drop_path: float = 0.0,
    *,
    schedule: str = "linear",
) -> nn.Sequential:
    """A residual MLP with stochastic depth: ``Linear(in, width), ReLU, depth x ResidualBlock, Linear(width,
    out)``.

    Block ``l`` (``l = 1, ..., depth``) gets the DropPath rate of :func:`drop_path_schedule`:
    ``drop_path * l / depth`` (``schedule="linear"``, Huang et al., 2016) or ``drop_path``
    (``"uniform"``). Module indices: ``0`` input Linear, ``1`` ReLU, ``2 .. depth + 1`` the blocks,
    ``depth + 2`` the output Linear. Shapes: ``(N, in_features)`` to ``(N, out_features)``.

    Example:
        >>> net = residual_mlp(64, 32, 10, depth=4, drop_path=0.2)
        >>> [round(block.p, 3) for block in net[2:-1]]
        [0.05, 0.1, 0.15, 0.2]
        >>> net(torch.randn(5, 64)).shape
        torch.Size([5, 10])
    """
    in_features = check_positive_int(in_features, "in_features")
    width = check_positive_int(width, "width")
    out_features = check_positive_int(out_features, "out_features")
    rates = drop_path_schedule(drop_path, depth, schedule)
    return nn.Sequential(
        nn.Linear(in_features, width),
        nn.ReLU(),
        *(ResidualBlock(width, rate) for rate in rates),
        nn.Linear(width, out_features),
    )


def droppath_skip_rates(
    model: nn.Sequential, x: torch.Tensor, passes: int = 20, seed: int = 0
) -> list[float]:
    """How often each residual block of ``model`` skips its branch, measured in training mode.

    ``model`` is a :func:`residual_mlp`. ``x`` is run through it ``passes`` times in training mode
    (no gradients, masks from torch's global generator seeded with ``seed``, restored after); a
    block skipped an example when its DropPath output row is all zeros while the branch's is not.
    Returns one fraction per block, in order: Huang et al.'s linear rule predicts
    ``drop_path * l / depth`` for block ``l``.

    Example:
        >>> net = residual_mlp(64, 32, 10, depth=4, drop_path=0.4)
        >>> [round(rate, 1) for rate in droppath_skip_rates(net, torch.randn(500, 64), 10)]
        [0.1, 0.2, 0.3, 0.4]
    """
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"model must be an nn.Sequential from residual_mlp(), got {type(model).__name__}")
    check_floating(x, "x")
    passes = check_positive_int(passes, "passes")
    seed = check_seed(seed)
    blocks = [module for module in model if isinstance(module, ResidualBlock)]
    if not blocks:
        raise ValueError("model has no ResidualBlock")
    skipped = [0] * len(blocks)
    seen = [0] * len(blocks)

    def recorder(index: int) -> Callable[..., None]:
        def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
            live = inputs[0].flatten(1).ne(0).any(dim=1)  # rows the branch computed something for
            dropped = output.flatten(1).eq(0).all(dim=1) & live
            skipped[index] += int(dropped.sum())
            seen[index] += int(live.sum())

        return hook

    handles = [block.drop_path.register_forward_hook(recorder(i)) for i, block in enumerate(blocks)]
    try:
        with restored_modes(model), torch.no_grad(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model.train()
            for _ in range(passes):
                model(x)
    finally:
        for handle in handles:
            handle.remove()
    return [k / max(n, 1) for k, n in zip(skipped, seen, strict=True)]


def _gaussian_mlp() -> nn.Sequential:
    return mlp(_IN, HIDDEN, _OUT, p=P, dropout_layer=GaussianDropout)


def _dropconnect_mlp() -> nn.Sequential:
    net = mlp(_IN, HIDDEN, _OUT)  # Linear, ReLU, Linear, ReLU, Linear: same initial weights as the others
    for index in (2, 4):  # the layers that read hidden units, where dropout would drop their inputs
        net[index] = DropConnectLinear.from_linear(net[index], P)
    return net


class RampedDropBlock2d(DropBlock2d):
    """DropBlock with Ghiasi et al.'s schedule: the drop probability grows linearly to ``p`` over training.

    Training step ``t = 1, 2, ...`` (a forward pass in training mode with gradients on) drops with
    probability ``p * min(1, t / steps)``: the keep probability falls linearly from nearly 1 to its
    final value ``1 - p`` over the first ``steps`` steps and stays there. Forward passes without
    gradients (evaluation, counting random numbers) do not advance the schedule and use the rate of
    the next step. Evaluation: the identity, like :class:`~dropoutlib.nn.DropBlock2d`.

    Example:
        >>> layer = RampedDropBlock2d(0.2, 3, steps=4)
        >>> layer
        RampedDropBlock2d(p=0.2, block_size=3, steps=4)
        >>> x = torch.ones(2, 1, 8, 8, requires_grad=True)
        >>> rates = []
        >>> for _ in range(5):
        ...     rates.append(round(layer.current_p, 3))
        ...     _ = layer(x)
        >>> rates
        [0.05, 0.1, 0.15, 0.2, 0.2]
    """

    def __init__(self, p: float = 0.5, block_size: int = 3, steps: int = EPOCHS) -> None:
        super().__init__(p, block_size)
        self.steps = check_positive_int(steps, "steps")
        self.steps_taken = 0

    @property
    def current_p(self) -> float:
        """The drop probability of the next training step."""
        return self.p * min(1.0, (self.steps_taken + 1) / self.steps)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        p = self.current_p
        if self.training and torch.is_grad_enabled():
            self.steps_taken += 1
        return dropblock(input, p, self.block_size, training=self.training)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, steps={self.steps}"


def _dropblock_cnn(ramp: bool = False) -> nn.Sequential:
    net = small_cnn("element", CNN_P, CNN_CHANNELS)
    for name, size in zip(("drop1", "drop2"), BLOCK_SIZES, strict=True):
        layer = RampedDropBlock2d(CNN_P, size, EPOCHS) if ramp else DropBlock2d(CNN_P, size)
        setattr(net, name, layer)
    return net


@dataclass(frozen=True)
class Variant:
    """One network of the comparison: its name, its family (the architecture), a label and a builder.

    Example:
        >>> VARIANTS["mlp-gaussian"].family, VARIANTS["mlp-gaussian"].label
        ('ReLU MLP', 'Gaussian dropout')
    """

    name: str
    family: str
    label: str
    build: Callable[[], nn.Module]


_VARIANT_LIST = [
    Variant("mlp", "ReLU MLP", "no dropout", lambda: mlp(_IN, HIDDEN, _OUT)),
    Variant("mlp-dropout", "ReLU MLP", "dropout", lambda: mlp(_IN, HIDDEN, _OUT, p=P, dropout_layer=Dropout)),
    Variant("mlp-dropconnect", "ReLU MLP", "DropConnect", _dropconnect_mlp),
    Variant("mlp-gaussian", "ReLU MLP", "Gaussian dropout", _gaussian_mlp),
    Variant("selu", "SELU MLP", "no dropout", lambda: selu_mlp(_IN, HIDDEN, _OUT)),
    Variant("selu-alpha", "SELU MLP", "alpha dropout", lambda: selu_mlp(_IN, HIDDEN, _OUT, "alpha", SELU_P)),
    Variant(
        "selu-dropout",
        "SELU MLP",
        "standard dropout",
        lambda: selu_mlp(_IN, HIDDEN, _OUT, "standard", SELU_P),
    ),
    Variant("residual", "residual MLP", "no dropout", lambda: residual_mlp(_IN, HIDDEN[0], _OUT, DEPTH)),
    Variant(
        "residual-droppath",
        "residual MLP",
        "DropPath",
        lambda: residual_mlp(_IN, HIDDEN[0], _OUT, DEPTH, DROP_PATH),
    ),
    Variant("cnn", "CNN", "no dropout", lambda: small_cnn("none", 0.0, CNN_CHANNELS)),
    Variant("cnn-dropout", "CNN", "element-wise dropout", lambda: small_cnn("element", CNN_P, CNN_CHANNELS)),
    Variant("cnn-dropblock", "CNN", "DropBlock", _dropblock_cnn),
    Variant("cnn-dropblock-ramp", "CNN", "DropBlock, ramped", lambda: _dropblock_cnn(ramp=True)),
]
#: The networks compared, by name; in each family the first one has no dropout (the baseline).
VARIANTS: dict[str, Variant] = {v.name: v for v in _VARIANT_LIST}
#: The families in order, each with its variants' names (baseline first).
FAMILIES: dict[str, tuple[str, ...]] = {}
for _variant in _VARIANT_LIST:
    FAMILIES[_variant.family] = (*FAMILIES.get(_variant.family, ()), _variant.name)


def build_variant(name: str, seed: int = 0) -> nn.Module:
    """A fresh network of variant ``name``, its weights drawn after ``seed_everything(seed)``.

    The variants of one family draw their initial weights in the same order, so for one seed they
    start from identical weights and differ only in their dropout.

    Example:
        >>> build_variant("mlp-dropconnect")[2]
        DropConnectLinear(in_features=64, out_features=64, bias=True, p=0.5)
        >>> torch.equal(build_variant("mlp")[2].weight, build_variant("mlp-dropconnect")[2].weight)
        True
    """
    name = check_choice(name, "name", tuple(VARIANTS))
    seed_everything(check_seed(seed))
    return VARIANTS[name].build()


# --- counting random numbers ----------------------------------------------------------------------------

_DRAWING_METHODS = {"bernoulli_", "uniform_", "normal_", "random_", "exponential_", "geometric_"}
_DRAWING_FUNCTIONS = {
    "bernoulli",
    "rand",
    "randn",
    "rand_like",
    "randn_like",
    "randint",
    "randint_like",
    "normal",
    "multinomial",
}


_TORCH_DROPOUTS = {
    F.dropout,
    F.alpha_dropout,
    F.feature_alpha_dropout,
    F.dropout1d,
    F.dropout2d,
    F.dropout3d,
}


class _DrawCounter(TorchFunctionMode):
    """Adds up the number of random values every sampling call returns (seen at the outermost call)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        result = func(*args, **(kwargs or {}))
        name = getattr(func, "__name__", "")
        if name in _DRAWING_METHODS or name in _DRAWING_FUNCTIONS:
            self.count += result.numel() if isinstance(result, torch.Tensor) else 0
        elif func in _TORCH_DROPOUTS:  # torch's own F.dropout & co draw inside C++: count their masks
            bound = inspect.signature(func).bind(*args, **(kwargs or {}))
            bound.apply_defaults()
            if bound.arguments["training"] and bound.arguments["p"] > 0:
                shape = bound.arguments["input"].shape
                per_channel = name not in ("dropout", "alpha_dropout")
                self.count += math.prod(shape[:2]) if per_channel else math.prod(shape)
        return result


def random_numbers_per_step(model: nn.Module, x: torch.Tensor) -> int:
    """How many random numbers one forward pass of ``model`` in training mode draws on the batch ``x``.

    Every sampling call (``bernoulli_``, ``normal_``, ``torch.rand`` ...) is intercepted and the size
    of what it returns is added up; the model's modes and torch's global generator are restored
    afterwards. A cost that does not depend on the machine: per unit for dropout, per weight for
    DropConnect (whatever the batch size), per example for DropPath.

    Example:
        >>> x = torch.zeros(32, 64)
        >>> random_numbers_per_step(build_variant("mlp-dropout"), x)  # 32 x (64 + 64) units
        4096
        >>> random_numbers_per_step(build_variant("mlp-dropconnect"), x)  # 64 x 64 + 10 x 64 weights
        4736
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    check_floating(x, "x")
    counter = _DrawCounter()
    with restored_modes(model), torch.no_grad(), torch.random.fork_rng(devices=[]):
        model.train()
        with counter:
            model(x)
    return counter.count


# --- training on one task --------------------------------------------------------------------------------


def train_variant(
    name: str,
    seed: int = 0,
    *,
    data: Split | None = None,
    epochs: int = EPOCHS,
    lr: float = LR,
) -> TrainedRun:
    """Train variant ``name`` on the digits with the shared budget and return its :class:`TrainedRun`.

    Data: ``load_digits(seed=seed, n_train=N_TRAIN)`` unless ``data`` is given. The network is built
    as :func:`build_variant` builds it (weights after ``seed_everything(seed)``), its
    :func:`random_numbers_per_step` on the training images is counted, and it is trained by
    :func:`~dropoutlib.experiments.convolutions.train_run`: full-batch Adam, ``epochs`` steps at
    learning rate ``lr``, masks drawn from torch's global generator seeded with ``seed``.

    Example:
        >>> run = train_variant("mlp-gaussian", epochs=5)
        >>> run.name, 0.0 <= run.test_acc <= 1.0, run.random_numbers  # 200 x 128 normal draws
        ('mlp-gaussian', True, 25600)
    """
    name = check_choice(name, "name", tuple(VARIANTS))
    return train_run(
        name,
        VARIANTS[name].build,
        seed=seed,
        data=data,
        n_train=N_TRAIN,
        epochs=epochs,
        lr=lr,
        count=random_numbers_per_step,
    )


def compare_family(
    seeds: Iterable[int], names: Sequence[str] | None = None, **options: Any
) -> dict[tuple[str, int], TrainedRun]:
    """Train every variant in ``names`` (default: all of :data:`VARIANTS`) for every seed.

    Each seed has its own split of the digits, shared by the variants of that seed. ``options`` go
    to :func:`train_variant`. Returns the runs by ``(name, seed)``; summarize them with
    :func:`dropoutlib.experiments.convolutions.summarize_runs`.

    Example:
        >>> runs = compare_family([0, 1], ["mlp", "mlp-dropout"], epochs=3)
        >>> sorted(runs)
        [('mlp', 0), ('mlp', 1), ('mlp-dropout', 0), ('mlp-dropout', 1)]
    """
    seeds = [check_seed(seed) for seed in seeds]
    if not seeds:
        raise ValueError("seeds must hold at least one seed")
    if names is None:
        names = list(VARIANTS)
    names = [check_choice(name, "name", tuple(VARIANTS)) for name in names]
    runs: dict[tuple[str, int], TrainedRun] = {}
    for seed in seeds:
        data = load_digits(seed=seed, n_train=N_TRAIN)
        for name in names:
            runs[name, seed] = train_variant(name, seed, data=data, **options)
    return runs


# --- moments --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Moments:
    r"""What a noise does to the first two moments, measured over many draws on a fixed input ``x``.

    Attributes:
        mean_in, var_in: mean and variance of the values of ``x``.
        mean_out, var_out: mean and variance of the outputs, over all values and draws.
        slope: :math:`\sum_i x_i \bar y_i / \sum_i x_i^2`, with :math:`\bar y_i` the mean output of
            value :math:`i` over the draws. 1 when every value is kept on average
            (:math:`\mathbb E[y_i \mid x_i] = x_i`); ``c`` when the mean output is ``c x``.
        noise: :math:`\sum_i \operatorname{Var}(y_i \mid x_i) / \sum_i x_i^2`, the noise variance
            relative to the squared input (:math:`p/q` for inverted dropout).

    Example:
        >>> m = Moments(0.0, 1.0, 0.0, 1.25, 1.0, 0.25)
        >>> m.mean_shift, m.var_ratio
        (0.0, 1.25)
    """

    mean_in: float
    var_in: float
    mean_out: float
    var_out: float
    slope: float
    noise: float

    @property
    def mean_shift(self) -> float:
        """``mean_out - mean_in``."""
        return self.mean_out - self.mean_in

    @property
    def var_ratio(self) -> float:
        """``var_out / var_in``."""
        return self.var_out / self.var_in


def measure_moments(
    noise: Callable[[torch.Tensor, torch.Generator], torch.Tensor],
    x: torch.Tensor,
    samples: int = 200,
    generator: torch.Generator | None = None,
) -> Moments:
    """Draw ``noise(x, generator)`` ``samples`` times and measure its :class:`Moments` (in float64).

    Example:
        >>> x = torch.randn(1000, 8, generator=torch.Generator().manual_seed(0))
        >>> m = measure_moments(lambda t, g: dropout(t, 0.2, generator=g), x, 400,
        ...                     torch.Generator().manual_seed(1))
        >>> round(m.slope, 2), round(m.noise, 2)  # kept on average; noise p/q = 0.25
        (1.0, 0.25)
    """
    if not callable(noise):
        raise TypeError(f"noise must be a function (x, generator) -> y, got {type(noise).__name__}")
    check_floating(x, "x")
    samples = check_positive_int(samples, "samples")
    if samples < 2:
        raise ValueError(f"samples must be at least 2 to measure a variance, got samples={samples}")
    check_generator(generator)
    x64 = x.detach().double()
    total = torch.zeros_like(x64)
    total_sq = torch.zeros_like(x64)
    with torch.no_grad():
        for _ in range(samples):
            y = noise(x, generator).detach().double()
            total += y
            total_sq += y.square()
    mean_y = total / samples
    second = total_sq / samples
    var_given_x = (second - mean_y.square()) * samples / (samples - 1)
    mean_out = mean_y.mean()
    var_out = second.mean() - mean_out.square()
    norm = x64.square().sum()
    return Moments(
        mean_in=float(x64.mean()),
        var_in=float(x64.var(unbiased=False)),
        mean_out=float(mean_out),
        var_out=float(var_out),
        slope=float((x64 * mean_y).sum() / norm),
        noise=float(var_given_x.sum() / norm),
    )


#: The element-wise noises of the moment table, as functions ``(x, p, generator) -> y``. DropPath
#: drops whole rows (examples) of ``x``.
ELEMENTWISE_NOISES: dict[str, Callable[[torch.Tensor, float, torch.Generator | None], torch.Tensor]] = {
    "dropout": lambda x, p, g: dropout(x, p, generator=g),
    "Gaussian": lambda x, p, g: gaussian_dropout(x, p, generator=g),
    "alpha": lambda x, p, g: alpha_dropout(x, p, generator=g),
    "DropPath": lambda x, p, g: drop_path(x, p, generator=g),
}


# --- DropConnect: noise structure ----------------------------------------------------------------------


@dataclass(frozen=True)
class NoiseStructure:
    r"""The noise :math:`e = \tilde y - x W^\top` that a dropout puts into a linear layer's output.

    Attributes:
        bias: mean over outputs of the mean noise, relative to the outputs' RMS (0: unbiased).
        variance_ratio: measured noise variance divided by :math:`\frac pq \sum_j W_{kj}^2 x_{nj}^2`,
            summed over outputs (1 for both dropout on the inputs and DropConnect).
        unit_correlation: mean absolute correlation of the noise of two output units of one example.
        example_correlation: mean correlation of the noise of one output unit for two examples of a batch.
        floor: the mean absolute correlation that sampling alone gives with this many draws,
            :math:`\sqrt{2/(\pi S)}`.

    Example:
        >>> NoiseStructure(0.0, 1.0, 0.2, 0.0, 0.05).unit_correlation
        0.2
    """

    bias: float
    variance_ratio: float
    unit_correlation: float
    example_correlation: float
    floor: float


_LINEAR_NOISES = ("dropout", "dropconnect")


def noise_structure(
    kind: str,
    x: torch.Tensor,
    weight: torch.Tensor,
    p: float,
    samples: int = 400,
    generator: torch.Generator | None = None,
) -> NoiseStructure:
    r"""Measure the noise of dropout on the inputs (``"dropout"``) or DropConnect on the weights.

    ``"dropout"``: :math:`\tilde y = (m \odot x / q) W^\top`, one mask per example and input unit.
    ``"dropconnect"``: :math:`\tilde y = x (M \odot W / q)^\top`, one mask per weight, shared by the
    batch (:func:`~dropoutlib.nn.dropconnect_linear`). Both have mean :math:`x W^\top` and, for
    output :math:`k` of example :math:`n`, variance :math:`\frac pq \sum_j W_{kj}^2 x_{nj}^2`. They
    differ in covariances: dropout's noise in units :math:`k, l` shares the coins of the inputs,
    :math:`\frac pq \sum_j W_{kj} W_{lj} x_j^2`, while DropConnect's units use separate weights (no
    correlation); DropConnect's noise in two examples shares the coins of the weights,
    :math:`\frac pq \sum_j W_{kj}^2 x_{nj} x_{mj}`, while dropout's examples draw separate masks.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> x, w = torch.rand(20, 16, generator=g), torch.randn(8, 16, generator=g)
        >>> s = noise_structure("dropconnect", x, w, 0.5, 200, g)
        >>> abs(s.variance_ratio - 1) < 0.1, s.example_correlation > 0.5
        (True, True)
    """
    if kind not in _LINEAR_NOISES:
        raise ValueError(f"kind must be one of {_LINEAR_NOISES}, got kind={kind!r}")
    check_floating(x, "x")
    check_floating(weight, "weight")
    if x.ndim != 2 or weight.ndim != 2 or x.shape[1] != weight.shape[1]:
        raise ValueError(
            f"x must be (n, in) and weight (out, in) with the same in, got {tuple(x.shape)} and "
            f"{tuple(weight.shape)}"
        )
    p = check_probability(p)
    if not 0 < p < 1:
        raise ValueError(f"p must be in (0, 1), got p={p!r}")
    samples = check_positive_int(samples, "samples")
    if samples < 3:
        raise ValueError(f"samples must be at least 3, got samples={samples}")
    check_generator(generator)
    x64, w64 = x.detach().double(), weight.detach().double()
    clean = x64 @ w64.T
    q = 1 - p
    with torch.no_grad():
        if kind == "dropout":
            draws = [dropout(x64, p, generator=generator) @ w64.T for _ in range(samples)]
        else:
            draws = [x64 @ dropout(w64, p, generator=generator).T for _ in range(samples)]
    errors = torch.stack(draws) - clean  # (S, n, out)
    predicted = p / q * (x64.square() @ w64.square().T)  # (n, out)
    centred = errors - errors.mean(dim=0)
    scaled = centred / centred.square().mean(dim=0).sqrt().clamp_min(1e-12)
    units = torch.einsum("snk,snl->nkl", scaled, scaled) / samples  # (n, out, out)
    out = units.shape[1]
    off_units = units.abs().sum() - units.diagonal(dim1=1, dim2=2).abs().sum()
    examples = torch.einsum("snk,smk->knm", scaled, scaled) / samples  # (out, n, n)
    n = examples.shape[1]
    off_examples = examples.sum() - examples.diagonal(dim1=1, dim2=2).sum()
    rms = clean.square().mean().sqrt()
    return NoiseStructure(
        bias=float(errors.mean(dim=0).mean() / rms),
        variance_ratio=float(errors.var(dim=0).sum() / predicted.sum()),
        unit_correlation=float(off_units / (units.shape[0] * out * (out - 1))),
        example_correlation=float(off_examples / (out * n * (n - 1))),
        floor=math.sqrt(2 / (math.pi * samples)),
    )


# --- DropBlock: where the dropped values are ------------------------------------------------------------


@dataclass(frozen=True)
class MaskStructure:
    """How a structured dropout drops values of feature maps ``(N, C, H, W)``.

    Attributes:
        dropped: fraction of values dropped (output exactly 0 for an input without zeros).
        neighbour_correlation: correlation of the keep/drop indicator of horizontal neighbours
            (mean over channels; 0 for independent coins, 1 when whole maps go together).
        mean_ratio: mean of the output divided by the mean of the input.

    Example:
        >>> MaskStructure(0.2, 0.0, 1.0).dropped
        0.2
    """

    dropped: float
    neighbour_correlation: float
    mean_ratio: float


#: The ways of dropping values of a feature map that :func:`mask_structure` compares.
MASK_KINDS = ("element-wise", "DropBlock", "spatial")


def mask_structure(
    kind: str,
    p: float,
    shape: Sequence[int] = (256, 8, 8, 8),
    block_size: int = BLOCK_SIZES[0],
    generator: torch.Generator | None = None,
) -> MaskStructure:
    """Drop values of positive feature maps of ``shape`` with ``kind`` and measure the mask's structure.

    ``kind`` is ``"element-wise"`` (:func:`~dropoutlib.dropout`), ``"DropBlock"``
    (:func:`~dropoutlib.nn.dropblock` with ``block_size``) or ``"spatial"``
    (:func:`~dropoutlib.nn.spatial.spatial_dropout`).

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> s = mask_structure("spatial", 0.2, generator=g)
        >>> round(s.neighbour_correlation, 4)
        1.0
    """
    if kind not in MASK_KINDS:
        raise ValueError(f"kind must be one of {MASK_KINDS}, got kind={kind!r}")
    p = check_probability(p)
    if not 0 < p < 1:
        raise ValueError(f"p must be in (0, 1), got p={p!r}")
    if isinstance(shape, str | bytes) or not isinstance(shape, Sequence) or len(shape) != 4:
        raise TypeError(f"shape must be (N, C, H, W), got shape={shape!r}")
    shape = tuple(check_positive_int(s, f"shape[{i}]") for i, s in enumerate(shape))
    check_generator(generator)
    x = 1 + torch.rand(shape, generator=generator, dtype=torch.float64)  # no zeros: 0 means dropped
    if kind == "element-wise":
        y = dropout(x, p, generator=generator)
    elif kind == "DropBlock":
        y = dropblock(x, p, block_size, generator=generator)
    else:
        y = spatial_dropout(x, p, generator=generator)
    kept = (y != 0).double()
    return MaskStructure(
        dropped=float(1 - kept.mean()),
        neighbour_correlation=float(torch.nanmean(neighbour_correlation(kept))),
        mean_ratio=float(y.mean() / x.mean()),
    )


# --- SELU networks across depth -------------------------------------------------------------------------


@dataclass(frozen=True)
class DepthStatistics:
    """Mean and variance of a network's hidden activations, layer by layer (over examples and units).

    Attributes:
        mean, var: one value per hidden layer, measured after its activation and its dropout.

    Example:
        >>> DepthStatistics([0.0, 0.1], [1.0, 1.2]).var[-1]
        1.2
    """

    mean: list[float]
    var: list[float]


def depth_statistics(model: nn.Sequential, x: torch.Tensor, *, training: bool = True) -> DepthStatistics:
    """Run ``x`` through ``model`` (a :func:`selu_mlp`) and record every hidden layer's mean and variance.

    A hidden layer's output is read after its SELU and, if there is one, after its dropout layer
    (what the next linear layer receives). ``training`` chooses the mode (dropout on or off); the
    model's modes are restored afterwards.

    Example:
        >>> _ = torch.manual_seed(0)
        >>> net = selu_mlp(64, [128] * 8, 10)
        >>> stats = depth_statistics(net, torch.randn(500, 64))
        >>> len(stats.var), all(0.8 < v < 1.2 for v in stats.var)
        (8, True)
    """
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"model must be an nn.Sequential from selu_mlp(), got {type(model).__name__}")
    check_floating(x, "x")
    if not isinstance(training, bool):
        raise TypeError(f"training must be True or False, got training={training!r}")
    layers = list(model)
    means: list[float] = []
    variances: list[float] = []
    with restored_modes(model), torch.no_grad():
        model.train(training)
        h = x
        for index, layer in enumerate(layers[:-1]):
            h = layer(h)
            following = layers[index + 1]
            if isinstance(following, nn.Linear):  # h is what the next linear layer reads
                means.append(float(h.mean()))
                variances.append(float(h.var(unbiased=False)))
    return DepthStatistics(means, variances)


# --- DropConnect: three inference rules -----------------------------------------------------------------

#: DropConnect inference: Gaussian samples per unit for moment matching (Wan et al.'s Z) and forward
#: passes with real masks for the Monte Carlo reference.
MOMENT_SAMPLES = 300
MC_PASSES = 200
#: The rules of :func:`dropconnect_probabilities`, in the order the chapter reports them.
INFERENCE_RULES = ("mean network", "moment matching", "MC masks")
_CHUNK = 250  # Gaussian samples drawn at once (memory: chunk x examples x units)


def _moment_matched(
    h: torch.Tensor,
    layer: DropConnectLinear,
    activation: Callable[[torch.Tensor], torch.Tensor],
    samples: int,
    generator: torch.Generator,
) -> torch.Tensor:
    # u = x (M * W / q)^T + b: mean x W^T + b, variance p/q (x * x)(W * W)^T, one Gaussian per unit
    mean = F.linear(h, layer.weight, layer.bias)
    std = (layer.p / (1 - layer.p) * F.linear(h.square(), layer.weight.square())).sqrt()
    total = torch.zeros_like(mean)
    for start in range(0, samples, _CHUNK):
        k = min(_CHUNK, samples - start)
        noise = torch.randn((k, *mean.shape), generator=generator, dtype=mean.dtype)
        total += activation(mean + std * noise).sum(dim=0)
    return total / samples


def dropconnect_probabilities(
    model: nn.Sequential,
    x: torch.Tensor,
    rule: str,
    *,
    samples: int | None = None,
    seed: int = 0,
) -> torch.Tensor:
    r"""Class probabilities of a network trained with DropConnect, by one of three inference rules.

    ``model`` is a ``nn.Sequential`` whose :class:`~dropoutlib.nn.DropConnectLinear` layers are each
    followed by an element-wise activation (applied to every sample) or are the last layer (then the
    activation is the softmax). With :math:`q = 1 - p`, such a layer's pre-activation for input
    :math:`v` is :math:`u = (M \odot W / q) v + b`, :math:`M_{kj} \sim \operatorname{Bern}(q)`.

    - ``"mean network"``: evaluation mode, :math:`u = Wv + b`: the mean of :math:`u`, passed through
      the activation (what ``model.eval()`` computes).
    - ``"moment matching"`` (Wan et al., 2013, inference algorithm): each unit's :math:`u_k` is
      replaced by a Gaussian with its mean :math:`(Wv)_k + b_k` and variance
      :math:`\frac pq \sum_j W_{kj}^2 v_j^2` (the paper, without the :math:`1/q` scaling and with
      :math:`p` its keep probability, writes :math:`pWv` and :math:`p(1-p)(W \odot W)(v \odot v)`);
      ``samples`` draws of it (default :data:`MOMENT_SAMPLES`) go through the activation and are
      averaged, and that average is the next layer's input :math:`v`.
    - ``"MC masks"``: training mode, real masks, the softmax averaged over ``samples`` forward
      passes (default :data:`MC_PASSES`): the Monte Carlo estimate of the predictive distribution
      that both other rules approximate. Our layer shares one mask across the batch in a pass; the
      average for each example is still over independent masks.

    ``seed`` seeds the Gaussian draws or the masks (torch's global generator is restored after).

    Example:
        >>> net = build_variant("mlp-dropconnect")
        >>> x = torch.randn(5, 64)
        >>> probs = {rule: dropconnect_probabilities(net, x, rule, samples=50) for rule in INFERENCE_RULES}
        >>> [tuple(p.shape) for p in probs.values()]
        [(5, 10), (5, 10), (5, 10)]
        >>> torch.allclose(probs["mean network"], torch.softmax(net.eval()(x), dim=1))
        True
    """
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"model must be an nn.Sequential, got {type(model).__name__}")
    check_floating(x, "x")
    rule = check_choice(rule, "rule", INFERENCE_RULES)
    if samples is None:
        samples = MC_PASSES if rule == "MC masks" else MOMENT_SAMPLES
    samples = check_positive_int(samples, "samples")
    seed = check_seed(seed)
    if not any(isinstance(layer, DropConnectLinear) for layer in model):
        raise ValueError("model has no DropConnectLinear layer")
    with restored_modes(model), torch.no_grad():
        if rule == "mean network":
            model.eval()
            return torch.softmax(model(x), dim=1)
        if rule == "MC masks":
            model.train()
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                total = sum(torch.softmax(model(x), dim=1) for _ in range(samples))
            return total / samples
        model.eval()
        generator = torch.Generator().manual_seed(seed)
        layers = list(model)
        h, index = x, 0
        while index < len(layers):
            layer = layers[index]
            if not isinstance(layer, DropConnectLinear):
                h, index = layer(h), index + 1
            elif index == len(layers) - 1:
                return _moment_matched(h, layer, lambda u: torch.softmax(u, dim=-1), samples, generator)
            else:
                h = _moment_matched(h, layer, layers[index + 1], samples, generator)
                index += 2
        return torch.softmax(h, dim=1)


@dataclass(frozen=True)
class Scores:
    """Test cross-entropy (nats, of the predicted probabilities), accuracy and mean confidence.

    ``confidence`` is the mean over examples of the largest predicted probability.

    Example:
        >>> Scores(0.3, 0.93, 0.95).loss
        0.3
    """

    loss: float
    acc: float
    confidence: float


def scores(probabilities: torch.Tensor, y: torch.Tensor) -> Scores:
    """The :class:`Scores` of ``probabilities`` ``(N, C)`` against the labels ``y`` ``(N,)``.

    Example:
        >>> s = scores(torch.tensor([[0.5, 0.5], [0.9, 0.1]]), torch.tensor([0, 0]))
        >>> round(s.loss, 4), s.acc, round(s.confidence, 4)  # -log 0.5, -log 0.9; a tie: the first
        (0.3993, 1.0, 0.7)
    """
    picked = probabilities.gather(1, y.view(-1, 1)).squeeze(1).double()
    loss = -picked.clamp_min(torch.finfo(torch.float64).tiny).log().mean()
    top, label = probabilities.double().max(dim=1)
    acc = (label == y).double().mean()
    return Scores(float(loss), float(acc), float(top.mean()))


def dropconnect_inference(
    models: Mapping[int, nn.Sequential], *, samples: Mapping[str, int] | None = None
) -> dict[tuple[str, int], Scores]:
    """Score every rule of :data:`INFERENCE_RULES` for each seed's DropConnect network on its test set.

    ``models`` maps a seed to the network trained on ``load_digits(seed=seed, n_train=N_TRAIN)``
    (such as ``train_variant("mlp-dropconnect", seed).model``); ``samples`` optionally maps a rule to
    its number of samples. The draws of seed ``s`` are seeded with ``s``. Returns the
    :class:`Scores` by ``(rule, seed)``.

    Example:
        >>> models = {0: train_variant("mlp-dropconnect", 0, epochs=5).model}
        >>> result = dropconnect_inference(models, samples={"moment matching": 20, "MC masks": 20})
        >>> sorted(rule for rule, _ in result)
        ['MC masks', 'mean network', 'moment matching']
    """
    samples = dict(samples or {})
    result: dict[tuple[str, int], Scores] = {}
    for seed, model in models.items():
        test = load_digits(seed=seed, n_train=N_TRAIN)
        for rule in INFERENCE_RULES:
            probs = dropconnect_probabilities(model, test.x_test, rule, samples=samples.get(rule), seed=seed)
            result[rule, seed] = scores(probs, test.y_test)
    return result


# --- the chapter's claims -------------------------------------------------------------------------------

#: Moments: how far the slope may be from 1, the noise from p/q and Var(y) from Var(x) + p/q E[x^2]
#: (relative), for dropout, Gaussian dropout and DropPath (200 draws).
SLOPE_TOLERANCE = 0.01
NOISE_TOLERANCE = 0.03
VARIANCE_TOLERANCE = 0.02
#: Alpha dropout on N(0, 1): how far the mean may shift and the variance ratio be from 1; on ReLU
#: activations, the mean must fall by more than this.
ALPHA_NORMAL_TOLERANCE = 0.01
ALPHA_RELU_SHIFT = -0.2
#: Multipliers of one unit (200 000 draws): how far the mean may be from 1 and the variance from p/q.
MULTIPLIER_MEAN_TOLERANCE = 0.01
MULTIPLIER_VAR_TOLERANCE = 0.02
#: Noise structure: bias and variance ratio tolerances; dropout's unit correlation must exceed this many
#: sampling floors, DropConnect's stay below this many; DropConnect's examples correlate above this.
BIAS_TOLERANCE = 0.01
VARIANCE_RATIO_TOLERANCE = 0.03
CORRELATED_FLOORS = 3.0
UNCORRELATED_FLOORS = 1.2
EXAMPLE_CORRELATION = 0.2
#: Exercise 4: the exact mean |correlation| of dropout's noise and the measured one agree within this.
FORMULA_TOLERANCE = 0.05
#: Alpha dropout's mean and variance on N(0, 1) at every p (ours and torch's).
ALPHA_MEAN_TOLERANCE = 0.03
ALPHA_VAR_TOLERANCE = 0.04
#: The deep SELU network (layers 9-32): alpha dropout's variance within this of 1 in training and
#: of its evaluation-mode variance; standard dropout's above STANDARD_VARIANCE in training and above
#: its evaluation-mode variance by more than VARIANCE_SHIFT.
ALPHA_DEPTH_TOLERANCE = 0.1
STANDARD_VARIANCE = 1.4
VARIANCE_SHIFT = 0.3
#: DropBlock: its dropped fraction within this of the formula, its neighbour correlation in this range,
#: element-wise coins' correlation below the next, and its mean ratio within the last of 1.
DROPBLOCK_FRACTION_TOLERANCE = 0.01
DROPBLOCK_CORRELATION_RANGE = (0.3, 0.95)
INDEPENDENT_CORRELATION = 0.02
DROPBLOCK_MEAN_TOLERANCE = 0.01
#: The comparison: how close the SELU networks' mean accuracies must be ("within a point"); a network
#: fits its training images above the training accuracy FITS of chapter 10 (imported from there).
SELU_ACCURACY_TOLERANCE = 0.015
#: The variants that lower the test loss of their family's baseline on every seed.
HELPFUL = (
    "mlp-dropout",
    "mlp-dropconnect",
    "mlp-gaussian",
    "cnn-dropout",
    "cnn-dropblock",
)
#: DropConnect's inference rules: how far (in accuracy) moment matching and MC may move the mean network.
INFERENCE_ACCURACY = 0.005
#: The seeds of the two cheap MLP families in the chapter's comparison (the others use three).
MLP_SEEDS: tuple[int, ...] = (0, 1, 2, 3, 4)
#: The three noises of the ReLU MLP, which regularize alike.
RELU_VARIANTS = ("mlp-dropout", "mlp-dropconnect", "mlp-gaussian")


def moment_claims(normal: Mapping[str, Moments], activations: Mapping[str, Moments], p: float) -> list[Claim]:
    r"""Section "What a dropout keeps": the moments of the four element-wise noises at drop probability ``p``.

    ``normal`` and ``activations`` map each name of :data:`ELEMENTWISE_NOISES` to its
    :func:`measure_moments` on standard normal numbers and on ReLU activations. Dropout, Gaussian
    dropout and DropPath keep every value on average (slope 1), add noise :math:`p/q` and so give
    :math:`\operatorname{Var}(y) = \operatorname{Var}(x) + \frac pq \mathbb E[x^2]` on both inputs
    (the claims report the worse of the two); alpha dropout keeps N(0, 1) at mean 0 and variance 1
    and lowers the mean of ReLU activations.

    Example:
        >>> keep = Moments(0.0, 1.0, 0.0, 1.25, 1.0, 0.25)
        >>> alpha = Moments(0.0, 1.0, 0.0, 1.0, 0.8, 0.1)
        >>> relu_alpha = Moments(0.5, 0.5, 0.1, 0.4, 0.8, 0.1)
        >>> normal = {"dropout": keep, "Gaussian": keep, "DropPath": keep, "alpha": alpha}
        >>> relu = {**normal, "alpha": relu_alpha}
        >>> [c.holds for c in moment_claims(normal, relu, 0.2)][-4:]
        [True, True, True, True]
    """
    pq = p / (1 - p)

    def predicted(m: Moments) -> float:  # Var(x) + p/q E[x^2], with E[x^2] = Var(x) + mean^2
        return m.var_in + pq * (m.var_in + m.mean_in**2)

    claims = []
    for name in ("dropout", "Gaussian", "DropPath"):
        pair = (normal[name], activations[name])
        claims += [
            below(
                f"{name} keeps every value on average (|slope - 1|)",
                max(abs(m.slope - 1) for m in pair),
                SLOPE_TOLERANCE,
            ),
            below(
                f"{name} adds noise p/q (|noise / (p/q) - 1|)",
                max(abs(m.noise / pq - 1) for m in pair),
                NOISE_TOLERANCE,
            ),
            below(
                f"{name}: Var(y) = Var(x) + p/q E[x^2] (|ratio - 1|)",
                max(abs(m.var_out / predicted(m) - 1) for m in pair),
                VARIANCE_TOLERANCE,
            ),
        ]
    alpha_n, alpha_relu = normal["alpha"], activations["alpha"]
    claims += [
        below(
            "alpha dropout keeps N(0, 1) at mean 0 and variance 1 (|mean shift|, |var ratio - 1|)",
            max(abs(alpha_n.mean_shift), abs(alpha_n.var_ratio - 1)),
            ALPHA_NORMAL_TOLERANCE,
        ),
        below(
            "alpha dropout lowers the mean of ReLU activations (mean shift)",
            alpha_relu.mean_shift,
            ALPHA_RELU_SHIFT,
        ),
    ]
    return claims


def multiplier_claims(multipliers: Mapping[str, torch.Tensor], p: float) -> list[Claim]:
    """Section "Gaussian dropout": dropout's and Gaussian dropout's multipliers have mean 1, variance p/q.

    ``multipliers`` maps a name to many draws of the multiplier of one unit (the noise applied to ones).

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> ones = torch.ones(200_000)
        >>> claims = multiplier_claims({"Gaussian dropout": gaussian_dropout(ones, 0.5, generator=g)}, 0.5)
        >>> [c.holds for c in claims]
        [True, True]
    """
    claims = []
    for name, r in multipliers.items():
        claims += [
            below(f"{name}: mean 1 (|mean - 1|)", abs(float(r.mean()) - 1), MULTIPLIER_MEAN_TOLERANCE),
            below(
                f"{name}: variance p/q (|var - p/q|)",
                abs(float(r.var()) - p / (1 - p)),
                MULTIPLIER_VAR_TOLERANCE,
            ),
        ]
    return claims


def noise_structure_claims(dropout: NoiseStructure, dropconnect: NoiseStructure) -> list[Claim]:
    """Section "DropConnect": same mean and variance as dropout on the inputs, other correlations.

    ``dropout`` and ``dropconnect`` are the :func:`noise_structure` of the two kinds on one layer.

    Example:
        >>> d = NoiseStructure(0.001, 1.0, 0.3, 0.01, 0.04)
        >>> c = NoiseStructure(-0.002, 1.01, 0.04, 0.5, 0.04)
        >>> all(claim.holds for claim in noise_structure_claims(d, c))
        True
    """
    claims = [
        Claim(
            f"{kind}: unbiased, with the variance of the formula",
            abs(s.bias) < BIAS_TOLERANCE and abs(s.variance_ratio - 1) < VARIANCE_RATIO_TOLERANCE,
            f"|bias| {abs(s.bias):.4f} < {BIAS_TOLERANCE}, |var ratio - 1| {abs(s.variance_ratio - 1):.4f} "
            f"< {VARIANCE_RATIO_TOLERANCE}",
        )
        for kind, s in (("dropout", dropout), ("DropConnect", dropconnect))
    ]
    claims += [
        above(
            f"dropout's noise is correlated across output units (> {CORRELATED_FLOORS:g} sampling floors)",
            dropout.unit_correlation,
            CORRELATED_FLOORS * dropout.floor,
        ),
        below(
            f"DropConnect's output units are uncorrelated (< {UNCORRELATED_FLOORS:g} sampling floors)",
            dropconnect.unit_correlation,
            UNCORRELATED_FLOORS * dropconnect.floor,
        ),
        above(
            "DropConnect's noise is correlated across examples",
            dropconnect.example_correlation,
            EXAMPLE_CORRELATION,
        ),
        below(
            "dropout's noise is not (|correlation across examples|)",
            abs(dropout.example_correlation),
            EXAMPLE_CORRELATION,
        ),
    ]
    return claims


def correlation_formula_claims(exact: float, measured: float) -> list[Claim]:
    """Exercise 4: the mean absolute correlation of dropout's noise from the formula matches the measured.

    Example:
        >>> correlation_formula_claims(0.31, 0.33)[0].holds
        True
    """
    return [
        below(
            "the formula and the measurement agree (|difference|)", abs(exact - measured), FORMULA_TOLERANCE
        )
    ]


def alpha_claims(
    equal_to_torch: bool, moments: Mapping[tuple[float, str], tuple[float, float]]
) -> list[Claim]:
    """Section "Alpha dropout": it is torch's, and it keeps N(0, 1) at mean 0 and variance 1 at every p.

    ``moments`` maps ``(p, who)`` (``who``: ``"ours"`` or ``"torch"``) to the mean and variance of
    alpha dropout's output on standard normal input.

    Example:
        >>> [c.holds for c in alpha_claims(True, {(0.1, "ours"): (0.01, 1.02), (0.1, "torch"): (0.0, 0.99)})]
        [True, True]
    """
    largest_mean = max(abs(mean) for mean, _ in moments.values())
    largest_var = max(abs(var - 1) for _, var in moments.values())
    return [
        Claim(
            "alpha_dropout equals torch.nn.AlphaDropout bit for bit",
            equal_to_torch,
            f"equal: {equal_to_torch}",
        ),
        Claim(
            "ours and torch's keep mean 0 and variance 1 at every p",
            largest_mean < ALPHA_MEAN_TOLERANCE and largest_var < ALPHA_VAR_TOLERANCE,
            f"largest |mean| {largest_mean:.4f} < {ALPHA_MEAN_TOLERANCE}, "
            f"largest |var - 1| {largest_var:.4f} < {ALPHA_VAR_TOLERANCE}",
        ),
    ]


def depth_claims(alpha: float, alpha_eval: float, standard: float, standard_eval: float) -> list[Claim]:
    """Section "Alpha dropout": what each dropout does to the variance of a deep SELU network.

    The arguments are the mean variances of layers 9-32 of :func:`depth_statistics`, with alpha and
    with standard dropout, each in training and in evaluation mode. Alpha dropout keeps the variance
    near 1 and has no shift between the modes; standard dropout raises it in training, and the
    network then predicts with a variance well below the one it was trained with.

    Example:
        >>> [c.holds for c in depth_claims(1.02, 0.99, 1.6, 0.98)]
        [True, True, True, True]
    """
    return [
        below("alpha dropout keeps the variance near 1 (|var - 1|)", abs(alpha - 1), ALPHA_DEPTH_TOLERANCE),
        above("standard dropout moves the variance well above 1", standard, STANDARD_VARIANCE),
        above(
            "standard dropout: evaluation sees a lower variance than training (train - eval)",
            standard - standard_eval,
            VARIANCE_SHIFT,
        ),
        below(
            "alpha dropout has no such shift (|train - eval|)",
            abs(alpha - alpha_eval),
            ALPHA_DEPTH_TOLERANCE,
        ),
    ]


def dropblock_claims(masks: Mapping[str, MaskStructure], expected: float, p: float) -> list[Claim]:
    """Section "DropBlock": it drops clustered blocks, less than ``p`` of the values, and keeps the mean.

    ``masks`` maps ``"DropBlock"`` and ``"element-wise"`` to their :func:`mask_structure` at drop
    probability ``p``; ``expected`` is DropBlock's dropped fraction from
    :func:`~dropoutlib.nn.dropblock.dropblock_drop_fraction`.

    Example:
        >>> masks = {"DropBlock": MaskStructure(0.15, 0.6, 1.0), "element-wise": MaskStructure(0.2, 0.0, 1.0)}
        >>> all(c.holds for c in dropblock_claims(masks, 0.152, 0.2))
        True
    """
    block = masks["DropBlock"]
    low, high = DROPBLOCK_CORRELATION_RANGE
    return [
        below(
            "DropBlock drops the fraction of the formula (|difference|)",
            abs(block.dropped - expected),
            DROPBLOCK_FRACTION_TOLERANCE,
        ),
        below("overlapping blocks drop less than p", block.dropped, p),
        between("DropBlock's mask is clustered, not per channel", block.neighbour_correlation, low, high),
        below(
            "element-wise coins are independent (|neighbour correlation|)",
            abs(masks["element-wise"].neighbour_correlation),
            INDEPENDENT_CORRELATION,
        ),
        below(
            "DropBlock's rescaling keeps the mean (|ratio - 1|)",
            abs(block.mean_ratio - 1),
            DROPBLOCK_MEAN_TOLERANCE,
        ),
    ]


def _paired(
    runs: Mapping[tuple[str, int], TrainedRun], base: str, other: str, attr: str, seeds: Sequence[int]
) -> tuple[float, float]:
    """Paired mean and standard error over ``seeds`` of ``other - base`` in ``attr``."""
    mean, _, se = paired_gain(
        [getattr(runs[base, s], attr) for s in seeds], [getattr(runs[other, s], attr) for s in seeds]
    )
    return mean, se


def _inside_noise(statement: str, mean: float, se: float, seeds: int, unit: str = " nats") -> Claim:
    return Claim(
        f"{statement} (|paired mean| < 2 SE)",
        abs(mean) < 2 * se,
        f"{mean:+.4f} ± {se:.4f}{unit} over {seeds} seeds",
    )


def _resolved(statement: str, mean: float, se: float, seeds: int, unit: str = " nats") -> Claim:
    return Claim(
        f"{statement} (paired mean < -2 SE)",
        mean < -2 * se,
        f"{mean:+.4f} ± {se:.4f}{unit} over {seeds} seeds",
    )


def _seeds_of(runs: Mapping[tuple[str, int], TrainedRun], name: str) -> list[int]:
    return sorted(seed for variant, seed in runs if variant == name)


def comparison_claims(runs: Mapping[tuple[str, int], TrainedRun]) -> list[Claim]:
    """Section "The comparison": on every seed of each family in ``runs`` and paired over them.

    ``runs`` holds every variant of :data:`VARIANTS`; a family may have more seeds than another (the
    chapter trains the MLP families on :data:`MLP_SEEDS`, the others on three seeds), and each
    claim uses the seeds of its family. On every seed: every network fits its training images, each
    variant of :data:`HELPFUL` lowers its baseline's test loss and alpha dropout raises the SELU
    network's. Paired over the seeds (mean ± standard error of the per-seed differences): DropBlock
    with Ghiasi et al.'s schedule lowers the CNN's test loss by more than two standard errors, but
    its difference from constant DropBlock is inside the noise; DropBlock's test loss is above
    element-wise dropout's on average and its accuracy cannot be told from it; DropPath does not
    raise the residual MLP's test loss beyond the noise; standard dropout's effect on the SELU
    MLP's loss is inside the noise; each ReLU variant raises the mean test accuracy, by less than
    two standard errors. On the means: the SELU accuracies stay within about a point, and the three
    ReLU variants' mean losses lie closer together than the largest of their standard deviations
    over seeds.
    """
    loss = summarize_runs(dict(runs), "test_loss")
    acc = summarize_runs(dict(runs), "test_acc")
    cnn, mlp_seeds = _seeds_of(runs, "cnn"), _seeds_of(runs, "mlp")
    selu, residual = _seeds_of(runs, "selu"), _seeds_of(runs, "residual")
    claims = [
        above(
            "every network fits its training images (lowest train accuracy)",
            min(run.train_acc for run in runs.values()),
            FITS,
        )
    ]
    for name in HELPFUL:
        baseline = FAMILIES[VARIANTS[name].family][0]
        claims.append(
            on_every_seed(
                f"{VARIANTS[name].family}: {VARIANTS[name].label} lowers the test loss on every seed",
                {s: (runs[name, s].test_loss, runs[baseline, s].test_loss) for s in _seeds_of(runs, name)},
                "<",
            )
        )
    relu_range = max(loss[n][0] for n in RELU_VARIANTS) - min(loss[n][0] for n in RELU_VARIANTS)
    block_loss = _paired(runs, "cnn-dropout", "cnn-dropblock", "test_loss", cnn)
    droppath = _paired(runs, "residual", "residual-droppath", "test_loss", residual)
    claims += [
        _resolved(
            "CNN: DropBlock with its schedule lowers the test loss",
            *_paired(runs, "cnn", "cnn-dropblock-ramp", "test_loss", cnn),
            len(cnn),
        ),
        _inside_noise(
            "CNN: with or without the schedule, DropBlock's test loss is the same within the noise",
            *_paired(runs, "cnn-dropblock", "cnn-dropblock-ramp", "test_loss", cnn),
            len(cnn),
        ),
        Claim(
            "DropBlock does not beat element-wise dropout: its test loss is higher on average",
            block_loss[0] > 0,
            f"DropBlock - dropout: {block_loss[0]:+.4f} ± {block_loss[1]:.4f} nats over {len(cnn)} seeds",
        ),
        _inside_noise(
            "by test accuracy DropBlock and element-wise dropout are inside the noise",
            *_paired(runs, "cnn-dropout", "cnn-dropblock", "test_acc", cnn),
            len(cnn),
            "",
        ),
        Claim(
            "residual MLP: DropPath does not raise the test loss beyond the noise (paired mean < 2 SE)",
            droppath[0] < 2 * droppath[1],
            f"{droppath[0]:+.4f} ± {droppath[1]:.4f} nats over {len(residual)} seeds",
        ),
        _inside_noise(
            "SELU MLP: standard dropout's effect on the test loss is inside the noise",
            *_paired(runs, "selu", "selu-dropout", "test_loss", selu),
            len(selu),
        ),
        on_every_seed(
            "alpha dropout raises the SELU test loss on every seed",
            {s: (runs["selu-alpha", s].test_loss, runs["selu", s].test_loss) for s in selu},
            ">",
        ),
        below(
            "the SELU accuracies stay within about a point (|difference of means|)",
            abs(acc["selu-alpha"][0] - acc["selu"][0]),
            SELU_ACCURACY_TOLERANCE,
        ),
    ]
    for name in RELU_VARIANTS:
        mean, se = _paired(runs, "mlp", name, "test_acc", mlp_seeds)
        claims.append(
            Claim(
                f"ReLU MLP: {VARIANTS[name].label} raises the mean test accuracy, inside the noise "
                "(0 < paired mean < 2 SE)",
                0 < mean < 2 * se,
                f"{mean:+.4f} ± {se:.4f} over {len(mlp_seeds)} seeds",
            )
        )
    claims.append(
        below(
            "the ReLU variants lie within the seed-to-seed spread (range of mean losses < largest std)",
            relu_range,
            max(loss[n][1] for n in RELU_VARIANTS),
        )
    )
    return claims


def droppath_unresolved_claims(runs: Mapping[tuple[str, int], TrainedRun]) -> list[Claim]:
    """Section "The comparison": over the chapter's three seeds, DropPath's effect is inside the noise.

    The residual MLP's training is chaotic (a last-bit change of the CPU kernels moves its test loss
    by tenths of a nat), so this is a statement about the seeds in ``runs`` only: more seeds may
    resolve the effect on one machine and not on another.

    Example:
        >>> from dropoutlib.experiments.convolutions import TrainedRun
        >>> def run(name, seed, loss):
        ...     return TrainedRun(name, seed, 1.0, 0.9, 0.01, loss, nn.Identity())
        >>> losses = {("residual", 0): 1.0, ("residual-droppath", 0): 0.6, ("residual", 1): 0.8,
        ...           ("residual-droppath", 1): 1.0}
        >>> droppath_unresolved_claims({key: run(*key, v) for key, v in losses.items()})[0].holds
        True
    """
    seeds = _seeds_of(runs, "residual")
    return [
        _inside_noise(
            "residual MLP: DropPath's effect on the test loss is inside the noise",
            *_paired(runs, "residual", "residual-droppath", "test_loss", seeds),
            len(seeds),
        )
    ]


def droppath_rate_claims(measured: Sequence[float], drop_path: float, samples: int) -> list[Claim]:
    """Section "DropPath": the measured skip rate of block ``l`` of ``L`` follows ``drop_path * l / L``.

    ``measured`` is :func:`droppath_skip_rates` (one rate per block, each from ``samples`` examples
    and passes). The claim allows four binomial standard errors at the largest rate.

    Example:
        >>> droppath_rate_claims([0.13, 0.25, 0.37, 0.5], 0.5, 10_000)[0].holds
        True
        >>> droppath_rate_claims([0.5, 0.5, 0.5, 0.5], 0.5, 10_000)[0].holds  # uniform: not the rule
        False
    """
    depth = len(measured)
    rule = [drop_path * layer / depth for layer in range(1, depth + 1)]
    worst = max(abs(m - r) for m, r in zip(measured, rule, strict=True))
    tolerance = 4 * math.sqrt(0.25 / samples)
    return [
        Claim(
            "each block l of L skips its branch at Huang et al.'s rate p_L l / L (largest |measured - rule|)",
            worst < tolerance,
            f"{worst:.4f} < {tolerance:.4f} (4 binomial SE with {samples:,} draws per block)",
        )
    ]


def dropconnect_inference_claims(result: Mapping[tuple[str, int], Scores]) -> list[Claim]:
    """Section "DropConnect", inference: the three rules of :data:`INFERENCE_RULES` on the same networks.

    ``result`` is :func:`dropconnect_inference`. Paired over the seeds: moment matching and the Monte
    Carlo average of real masks each lower the test loss of the mean network by more than two
    standard errors, and neither moves the mean test accuracy by :data:`INFERENCE_ACCURACY` or more;
    on every seed moment matching's test loss is closer to the Monte Carlo average's than the mean
    network's is, and both averages are less confident than the mean network (their mean top
    probability is lower).

    Example:
        >>> r = {("mean network", 0): Scores(0.33, 0.93, 0.97), ("mean network", 1): Scores(0.30, 0.94, 0.97),
        ...      ("moment matching", 0): Scores(0.27, 0.93, 0.93), ("MC masks", 0): Scores(0.27, 0.93, 0.93),
        ...      ("moment matching", 1): Scores(0.25, 0.94, 0.92), ("MC masks", 1): Scores(0.26, 0.94, 0.93)}
        >>> [c.holds for c in dropconnect_inference_claims(r)]
        [True, True, True, True, True, True, True]
    """
    seeds = sorted({seed for _, seed in result})
    k = len(seeds)

    def paired(rule: str, attr: str) -> tuple[float, float]:
        mean, _, se = paired_gain(
            [getattr(result["mean network", s], attr) for s in seeds],
            [getattr(result[rule, s], attr) for s in seeds],
        )
        return mean, se

    claims = []
    for rule in INFERENCE_RULES[1:]:
        claims.append(_resolved(f"{rule} lowers the mean network's test loss", *paired(rule, "loss"), k))
    for rule in INFERENCE_RULES[1:]:
        mean, se = paired(rule, "acc")
        claims.append(
            Claim(
                f"{rule} moves the test accuracy by less than {INFERENCE_ACCURACY:.1%} (|paired mean|)",
                abs(mean) < INFERENCE_ACCURACY,
                f"{mean:+.4f} ± {se:.4f} over {k} seeds",
            )
        )
    gaps = {
        s: (
            abs(result["moment matching", s].loss - result["MC masks", s].loss),
            abs(result["mean network", s].loss - result["MC masks", s].loss),
        )
        for s in seeds
    }
    claims.append(
        on_every_seed(
            "moment matching is closer to the MC average's test loss than the mean network is",
            gaps,
            "<",
        )
    )
    for rule in INFERENCE_RULES[1:]:
        claims.append(
            on_every_seed(
                f"{rule} is less confident than the mean network (mean top probability)",
                {s: (result[rule, s].confidence, result["mean network", s].confidence) for s in seeds},
                "<",
            )
        )
    return claims


def shallow_droppath_claims(shallow: Mapping[tuple[float, int], float]) -> list[Claim]:
    """Exercise 5: with 4 blocks, DropPath does not lower the test loss on every seed.

    ``shallow`` maps ``(rate, seed)`` to the test loss of the 4-block residual MLP trained without
    (``rate=0.0``) and with DropPath (``rate=DROP_PATH``).

    Example:
        >>> shallow_droppath_claims({(0.0, 0): 0.9, (0.5, 0): 0.8, (0.0, 1): 0.7, (0.5, 1): 0.75})[0].holds
        True
    """
    seeds = sorted({seed for _, seed in shallow})
    wins = sum(shallow[DROP_PATH, seed] < shallow[0.0, seed] for seed in seeds)
    return [
        Claim(
            "with 4 blocks DropPath does not lower the test loss on every seed",
            wins < len(seeds),
            f"lower on {wins} of {len(seeds)} seeds",
        )
    ]
