r"""Monte Carlo dropout: predictions with dropout left on, and what their spread says.

Gal and Ghahramani (2016) read a network trained with dropout as an approximate Bayesian model: each
dropout mask :math:`m_t` picks one plausible network, and averaging :math:`T` stochastic passes
approximates the predictive distribution,

.. math::

    \bar p(y \mid x) = \frac1T \sum_{t=1}^T p(y \mid x, m_t).

Three numbers per example, all in nats, summarize the :math:`T` class-probability vectors :math:`p_t`:

- the **predictive entropy** :math:`H[\bar p]`, the total uncertainty;
- the **expected entropy** :math:`\frac1T \sum_t H[p_t]`, what each sampled network is unsure about on
  its own (the aleatoric part);
- the **mutual information** :math:`H[\bar p] - \frac1T \sum_t H[p_t] \ge 0`, how much the sampled
  networks disagree (the epistemic part; "BALD" in active learning).

:func:`mc_predict` draws the passes with only the dropout layers in training mode: BatchNorm keeps its
running statistics, so each example's prediction depends on that example alone. (Transformer encoder
layers go into training mode too, for the fused path that would skip their dropout.) The calibration helpers
(:func:`calibration_bins`, :func:`expected_calibration_error`) compare confidence with accuracy.

Example:
    >>> from dropoutlib.course.models import mlp
    >>> model = mlp(4, [16], 3, p=0.5)
    >>> pred = mc_predict(model, torch.randn(8, 4), samples=20, seed=0)
    >>> pred.samples.shape, pred.mean.shape, pred.mutual_information.shape
    (torch.Size([20, 8, 3]), torch.Size([8, 3]), torch.Size([8]))
    >>> model.training  # the model's modes are as they were
    True
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from dropoutlib import _batches
from dropoutlib._modes import restored_modes
from dropoutlib._validation import check_choice, check_positive_int
from dropoutlib.diagnostics import dropout_layers
from dropoutlib.diagnostics.layers import _is_stochastic_depth

__all__ = [
    "CalibrationBins",
    "MCPrediction",
    "calibration_bins",
    "entropy",
    "eval_predict",
    "expected_calibration_error",
    "mc_predict",
    "stochastic_layers",
]

TASKS = ("classification", "regression")


def _at_least_float32(t: torch.Tensor) -> torch.Tensor:
    """``t`` in float32 when it is in a narrower floating-point type (float16, bfloat16), else ``t``."""
    return t.to(torch.promote_types(t.dtype, torch.float32))


def entropy(probs: torch.Tensor, dim: int = -1) -> torch.Tensor:
    r"""Shannon entropy :math:`-\sum_k p_k \log p_k` in nats along ``dim``, with :math:`0 \log 0 = 0`.

    ``probs`` must be a floating-point tensor of probabilities (non-negative; each slice along ``dim``
    summing to 1 within ``max(1e-3, eps)``, ``eps`` the machine epsilon of its dtype): an error names the
    offending values rather than returning a number for something that is not a distribution.
    Half-precision probabilities (float16, bfloat16) are summed in float32 and the result is float32;
    rounding each :math:`p_k` to bfloat16 moves a sum by at most :math:`\mathrm{eps}/2 = 2^{-9}`,
    hence the tolerance that follows the dtype.

    Example:
        >>> entropy(torch.tensor([[0.5, 0.5], [1.0, 0.0]]))
        tensor([0.6931, 0.0000])
    """
    if not isinstance(probs, torch.Tensor) or not probs.is_floating_point():
        raise TypeError(f"probs must be a floating-point torch.Tensor, got {type(probs).__name__}")
    tolerance = max(1e-3, torch.finfo(probs.dtype).eps)
    probs = _at_least_float32(probs)
    if probs.numel() and float(probs.min()) < 0:
        raise ValueError(f"probs must be non-negative, got a minimum of {float(probs.min()):.4g}")
    sums = probs.sum(dim=dim)
    if sums.numel() and float((sums - 1).abs().max()) > tolerance:
        raise ValueError(
            f"probs must sum to 1 along dim={dim}, got sums between {float(sums.min()):.4g} and "
            f"{float(sums.max()):.4g}"
        )
    return torch.special.entr(probs).sum(dim=dim)


@dataclass(frozen=True)
class MCPrediction:
    """The ``T`` stochastic passes of :func:`mc_predict` and the summaries read off them.

    ``samples`` has shape ``(T, n, k)``: softmax probabilities for ``task="classification"``, the raw
    outputs for ``task="regression"``. The entropy-based summaries need class probabilities and raise
    for regression.

    Example:
        >>> probs = torch.tensor([[[0.9, 0.1]], [[0.1, 0.9]]])  # two passes that disagree
        >>> pred = MCPrediction(probs, "classification")
        >>> pred.mean
        tensor([[0.5000, 0.5000]])
        >>> round(float(pred.mutual_information), 4)  # log 2 - H(0.9, 0.1)
        0.3681
    """

    samples: torch.Tensor
    task: str = "classification"

    def __post_init__(self) -> None:
        check_choice(self.task, "task", TASKS)
        if not isinstance(self.samples, torch.Tensor) or self.samples.dim() < 2:
            raise ValueError("samples must be a tensor of shape (T, n, ...) with T passes")

    @property
    def passes(self) -> int:
        """The number of stochastic passes ``T``."""
        return self.samples.shape[0]

    @property
    def mean(self) -> torch.Tensor:
        """The predictive mean, the average over the passes."""
        return self.samples.mean(dim=0)

    @property
    def variance(self) -> torch.Tensor:
        r"""The variance over the passes (divided by ``T``).

        For a regression model this is not the predictive variance of Gal and Ghahramani's
        approximation: that adds the observation noise :math:`\tau^{-1}`, with the model precision
        :math:`\tau = l^2 q / (2 N \lambda)` set by the prior length-scale :math:`l`, the keep
        probability :math:`q`, the :math:`N` training points and the weight decay :math:`\lambda`
        (chapter 12). Add it yourself: ``pred.variance + 1 / tau``.
        """
        return self.samples.var(dim=0, unbiased=False)

    def _classification(self, name: str) -> None:
        if self.task != "classification":
            raise ValueError(f"{name} needs class probabilities; this prediction has task={self.task!r}")

    @property
    def predicted(self) -> torch.Tensor:
        """The class with the highest predictive mean, shape ``(n,)``."""
        self._classification("predicted")
        return self.mean.argmax(dim=-1)

    @property
    def predictive_entropy(self) -> torch.Tensor:
        """:math:`H[\\bar p]`, the entropy of the predictive mean (total uncertainty), shape ``(n,)``."""
        self._classification("predictive_entropy")
        return entropy(self.mean)

    @property
    def expected_entropy(self) -> torch.Tensor:
        """The average entropy of the single passes (the aleatoric part), shape ``(n,)``."""
        self._classification("expected_entropy")
        return entropy(self.samples).mean(dim=0)

    @property
    def mutual_information(self) -> torch.Tensor:
        """Predictive minus expected entropy (the epistemic part), shape ``(n,)``.

        It is non-negative (entropy is concave); rounding errors below zero, at most a few ulps, are
        reported as 0.
        """
        return (self.predictive_entropy - self.expected_entropy).clamp_min(0.0)

    def first(self, t: int) -> MCPrediction:
        """The prediction made from the first ``t`` passes only (for asking how many are enough)."""
        t = check_positive_int(t, "t")
        if t > self.passes:
            raise ValueError(f"t must be at most the number of passes {self.passes}, got t={t}")
        return MCPrediction(self.samples[:t], self.task)


def _is_stochastic(module: nn.Module) -> bool:
    """Stochastic depth (timm's ``DropPath``, torchvision's ``StochasticDepth``) or timm's ``DropBlock*``,
    recognised by class name (of the class or a base class); they follow their ``training`` flag."""
    block = any(cls.__name__.startswith("DropBlock") for cls in type(module).__mro__)
    return block or _is_stochastic_depth(module)


def _has_attention_dropout(module: nn.Module) -> bool:
    dropout = getattr(module, "dropout", 0.0)
    return isinstance(module, nn.MultiheadAttention) and isinstance(dropout, numbers.Real) and dropout > 0


def stochastic_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The layers :func:`mc_predict` switches into sampling mode, as ``(name, module)`` pairs.

    These are, in the order of ``named_modules()``:

    - the dropout layers of :func:`dropoutlib.diagnostics.dropout_layers`;
    - every module whose class sets ``dropout_variant = True`` (the layers of :mod:`dropoutlib.nn`:
      DropConnect, Gaussian and alpha dropout, DropPath, DropBlock);
    - stochastic-depth layers of other libraries, recognised by class name: ``DropPath`` and
      ``DropBlock*`` (timm), ``StochasticDepth`` (torchvision);
    - every ``nn.MultiheadAttention`` with ``dropout > 0``: its dropout on the attention weights follows
      its own ``training`` flag, not that of the layer around it.

    Dropout called as a function inside a ``forward`` (``F.dropout``,
    ``F.scaled_dot_product_attention(dropout_p=...)``) belongs to no layer and is not listed.

    Example:
        >>> from dropoutlib.course.models import mlp
        >>> stochastic_layers(mlp(4, [8], 2, p=0.5))
        [('2', Dropout(p=0.5, inplace=False))]
        >>> layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.1, batch_first=True)
        >>> [name for name, _ in stochastic_layers(layer)]
        ['self_attn', 'dropout', 'dropout1', 'dropout2']
    """
    listed = {id(module) for _, module in dropout_layers(model)}
    return [
        (name, module)
        for name, module in model.named_modules()
        if id(module) in listed
        or getattr(type(module), "dropout_variant", False) is True
        or _is_stochastic(module)
        or _has_attention_dropout(module)
    ]


def _fused_path_layers(model: nn.Module) -> list[nn.Module]:
    """The modules whose ``training`` flag, when False, lets PyTorch take a fused "fast path" that never
    calls their dropout submodules: ``nn.TransformerEncoderLayer`` (``torch._transformer_encoder_layer_fwd``;
    the first layer's flag also decides whether ``nn.TransformerEncoder`` converts to nested tensors).
    Their flag governs nothing else, so switching it on only routes the pass through the dropout layers."""
    return [module for module in model.modules() if isinstance(module, nn.TransformerEncoderLayer)]


def _configured_rate(module: nn.Module) -> float | None:
    """The drop rate the layer is configured with (``p``, ``drop_prob``, ``dropout``), None if unknown."""
    for attribute in ("p", "drop_prob", "dropout"):
        value = getattr(module, attribute, None)
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            return float(value)
    return None


# --- outputs, seeds ----------------------------------------------------------------------------


def _forward(model: nn.Module, batch: Any, task: str, output: Callable[[Any], Any] | None) -> torch.Tensor:
    out = _batches.pick(_batches.call(model, batch), output, "eval_predict")
    return _to_probabilities(out) if task == "classification" else out


def _to_probabilities(out: torch.Tensor) -> torch.Tensor:
    """Softmax over the last dimension, in float32 at least (a bfloat16 softmax sums to 1 only within
    about 4e-3, beyond the tolerance of :func:`entropy`)."""
    return torch.softmax(_at_least_float32(out), dim=-1)


@contextmanager
def _seeded(seed: int | None, cuda: list[int]) -> Iterator[None]:
    """With ``seed=None`` nothing; else the CPU generator and those of the CUDA devices ``cuda`` seeded
    with ``seed`` and restored on exit. No other device's generator is read, seeded or initialized."""
    with torch.random.fork_rng(devices=cuda, enabled=seed is not None, device_type="cuda"):
        if seed is not None:
            torch.default_generator.manual_seed(seed)
            for index in cuda:
                with torch.cuda.device(index):
                    torch.cuda.manual_seed(seed)
        yield


def _uncalled_dropout_parents(
    model: nn.Module, layers: list[tuple[str, nn.Module]], called: set[int]
) -> list[nn.Module]:
    """The modules that own a dropout layer with a nonzero rate that the forward pass did not call.

    Such a module reads its child's rate and applies the dropout itself, gated by its *own* ``training``
    flag: Hugging Face's attention modules pass ``self.dropout.p`` to
    ``F.scaled_dot_product_attention`` (or to ``F.dropout``) only when ``self.training`` is set."""
    modules = dict(model.named_modules())
    parents = []
    for name, layer in layers:
        rate = _configured_rate(layer)
        if id(layer) not in called and (rate is None or rate > 0) and name:
            parent = modules[name.rpartition(".")[0]]
            if all(parent is not seen for seen in parents):
                parents.append(parent)
    return parents


def _passes(
    model: nn.Module, batch: Any, samples: int, layers: list[tuple[str, nn.Module]], output: Any
) -> list[torch.Tensor]:
    """The ``samples`` outputs, the model already in its sampling modes. Forward pre-hooks record which
    dropout layers are called; when the first pass leaves some uncalled, their owners' own flags are
    switched on (see :func:`_uncalled_dropout_parents`) and the first pass is run again. The hooks stay
    on for every pass, so that all passes take the same path (a hook can turn a fused path off)."""
    called: set[int] = set()
    handles = [layer.register_forward_pre_hook(lambda m, args: called.add(id(m))) for _, layer in layers]
    try:
        first = _batches.pick(_batches.call(model, batch), output, "mc_predict")
        owners = _uncalled_dropout_parents(model, layers, called)
        for owner in owners:
            owner.training = True  # its own flag only: its children keep their modes
        if owners:
            first = _batches.pick(_batches.call(model, batch), output, "mc_predict")
        rest = [_batches.pick(_batches.call(model, batch), output, "mc_predict") for _ in range(samples - 1)]
    finally:
        for handle in handles:
            handle.remove()
    return [first, *rest]


def mc_predict(
    model: nn.Module,
    batch: Any,
    samples: int = 50,
    *,
    task: str = "classification",
    seed: int | None = None,
    output: Callable[[Any], torch.Tensor] | None = None,
) -> MCPrediction:
    """Monte Carlo dropout: ``samples`` forward passes with only the dropout layers sampling.

    The whole model goes into evaluation mode (BatchNorm normalizes with its running statistics and
    does not update them), then the layers of :func:`stochastic_layers` go into training mode, and the
    passes run under ``torch.no_grad()``. The ``nn.TransformerEncoderLayer`` modules go into training
    mode too: in evaluation mode PyTorch runs them through a fused kernel that skips their dropout
    layers (their flag decides nothing else). A dropout layer that the first pass does not call is read,
    not run, by the module that owns it, which applies the dropout itself when its own flag is set
    (Hugging Face's attention passes ``self.dropout.p`` to ``F.scaled_dot_product_attention`` only when
    ``self.training``): that owner's flag is switched on too (not its children's) and the first pass run
    again. Every module's ``training`` flag is restored afterwards, also when a forward pass raises.

    Each pass gets its own copy of the batch, so a layer that writes in place (a first
    ``nn.Dropout(inplace=True)``) changes neither the caller's tensors nor the next pass's input; the
    copy costs one read and write of the input, little next to a forward pass.

    Args:
        model: the network; it must contain at least one layer of :func:`stochastic_layers`
            (ValueError otherwise: with none, every pass would be the same and the "uncertainty" zero by
            construction). If its layers have a positive drop rate and every pass still comes out
            identical, a RuntimeError says so (a dropout that does not follow its ``training`` flag, a
            fused path that skips it) rather than reporting zero uncertainty.
        batch: a tensor (called as ``model(batch)``), a tuple (``model(*batch)``) or a dict
            (``model(**batch)``, the way Hugging Face models are called). It is not modified.
        samples: the number of passes ``T``, a positive integer.
        task: ``"classification"`` applies softmax over the last dimension of each output, in float32
            for half-precision models; ``"regression"`` keeps the raw outputs.
        seed: ``None`` draws the masks from torch's global RNG (and advances it); an int draws them from
            forked generators seeded with it, so the result is reproducible and the global RNG is left
            alone: the CPU generator and those of the CUDA devices the model and batch live on, each
            restored afterwards; no other device's generator is touched.
        output: a function from what the model returns to the tensor of outputs, for models that return
            something else. Default: the tensor itself, the first element of a tuple, ``out["logits"]``
            of a dict (or ``ModelOutput``), ``out.logits`` of an object; anything else is a TypeError.

    Returns:
        An :class:`MCPrediction` holding the ``T`` outputs, shape ``(T, n, k)``.

    Example:
        >>> from dropoutlib.course.models import mlp
        >>> model = mlp(4, [16], 3, p=0.5).eval()
        >>> x = torch.randn(5, 4)
        >>> a, b = mc_predict(model, x, 10, seed=1), mc_predict(model, x, 10, seed=1)
        >>> torch.equal(a.samples, b.samples), bool((a.samples[0] != a.samples[1]).any())
        (True, True)
        >>> model.training, model[3].training  # the eval model is back in eval mode
        (False, False)

        A transformer in evaluation mode, called with a dict batch:

        >>> layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.2, batch_first=True)
        >>> encoder = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False).eval()
        >>> pred = mc_predict(encoder, {"src": torch.randn(2, 3, 8)}, 4, seed=0, task="regression")
        >>> bool((pred.samples[0] != pred.samples[1]).any()), encoder.layers[0].training
        (True, False)
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got model={type(model).__name__}")
    batch = _batches.check_batch(batch)
    samples = check_positive_int(samples, "samples")
    task = check_choice(task, "task", TASKS)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
        raise TypeError(f"seed must be an int or None, got seed={seed!r} ({type(seed).__name__})")
    output = _batches.check_output(output)
    layers = stochastic_layers(model)
    if not layers:
        raise ValueError(
            f"mc_predict needs a model with at least one dropout layer; {type(model).__name__} has none, "
            "so every pass would be identical (dropout called as a function in forward, F.dropout or "
            "F.scaled_dot_product_attention(dropout_p=...), belongs to no layer that mc_predict can "
            "switch on)"
        )
    fused = _fused_path_layers(model)
    with restored_modes(model), torch.no_grad(), _seeded(seed, _batches.cuda_indices(model, batch)):
        model.eval()
        for module in (*fused, *(layer for _, layer in layers)):
            module.train()
        raw = _passes(model, batch, samples, layers, output)
    rates = [_configured_rate(layer) for _, layer in layers]
    may_drop = any(rate is None or rate > 0 for rate in rates)
    if samples > 1 and may_drop and raw[0].numel() and all(torch.equal(raw[0], out) for out in raw[1:]):
        names = ", ".join(f"{name or 'model'} ({type(layer).__name__})" for name, layer in layers[:4])
        names += f" and {len(layers) - 4} more" if len(layers) > 4 else ""
        raise RuntimeError(
            f"all {samples} passes of mc_predict came out identical although dropout was switched on in "
            f"{names}: the model's dropout does not follow the training flag (a fused or compiled path, "
            "a layer with a flag of its own), so the passes measure no uncertainty"
        )
    outputs = [_to_probabilities(out) for out in raw] if task == "classification" else raw
    return MCPrediction(torch.stack(outputs), task)


def eval_predict(
    model: nn.Module,
    batch: Any,
    *,
    task: str = "classification",
    output: Callable[[Any], torch.Tensor] | None = None,
) -> torch.Tensor:
    """One deterministic pass in evaluation mode (dropout off), with the model's modes restored after.

    For ``task="classification"`` the softmax probabilities (in float32 at least), shape ``(n, k)``; for
    regression the raw outputs. This is the weight-scaling prediction that :func:`mc_predict` is compared
    with; ``batch`` and ``output`` are read as there.

    Example:
        >>> from dropoutlib.course.models import mlp
        >>> model = mlp(4, [16], 3, p=0.5)
        >>> x = torch.randn(5, 4)
        >>> torch.equal(eval_predict(model, x), eval_predict(model, x)), model.training
        (True, True)
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got model={type(model).__name__}")
    batch = _batches.check_batch(batch)
    task = check_choice(task, "task", TASKS)
    output = _batches.check_output(output)
    with restored_modes(model), torch.no_grad():
        model.eval()
        return _forward(model, batch, task, output)


@dataclass(frozen=True)
class CalibrationBins:
    """Equal-width confidence bins: for each, the mean confidence, the accuracy, and the count.

    ``confidence`` and ``accuracy`` are NaN in empty bins. Plotting ``accuracy`` against ``confidence``
    is a reliability diagram: a calibrated model lies on the diagonal.
    """

    edges: torch.Tensor
    confidence: torch.Tensor
    accuracy: torch.Tensor
    count: torch.Tensor


def _check_probs_and_labels(probs: Any, labels: Any, bins: Any) -> int:
    if not isinstance(probs, torch.Tensor) or probs.dim() != 2 or not probs.is_floating_point():
        shape = tuple(probs.shape) if isinstance(probs, torch.Tensor) else type(probs).__name__
        raise ValueError(f"probs must be a floating-point tensor of shape (n, k), got {shape}")
    if not isinstance(labels, torch.Tensor) or labels.shape != probs.shape[:1] or labels.is_floating_point():
        shape = tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__
        raise ValueError(f"labels must be an integer tensor of shape ({probs.shape[0]},), got {shape}")
    if probs.shape[0] == 0:
        raise ValueError("probs and labels must hold at least one example, got n=0")
    entropy(probs)  # validates that each row is a distribution
    return check_positive_int(bins, "bins")


def calibration_bins(probs: torch.Tensor, labels: torch.Tensor, bins: int = 10) -> CalibrationBins:
    """Sort predictions into ``bins`` equal-width bins of confidence (the top class's probability).

    Bin ``b`` holds confidences in ``(b/bins, (b+1)/bins]`` (the first bin also holds 0).

    Example:
        >>> probs = torch.tensor([[0.95, 0.05], [0.9, 0.1], [0.6, 0.4]])
        >>> cal = calibration_bins(probs, torch.tensor([0, 1, 0]), bins=2)
        >>> cal.count.tolist(), cal.accuracy.tolist()
        ([0, 3], [nan, 0.6666666865348816])
    """
    bins = _check_probs_and_labels(probs, labels, bins)
    confidence, predicted = probs.max(dim=1)
    correct = (predicted == labels).float()
    index = (torch.ceil(confidence * bins).long() - 1).clamp(0, bins - 1)
    count = torch.bincount(index, minlength=bins)
    total_conf = torch.zeros(bins).index_add_(0, index, confidence.float())
    total_correct = torch.zeros(bins).index_add_(0, index, correct)
    empty = count == 0
    safe = count.clamp_min(1).float()
    nan = torch.tensor(float("nan"))
    return CalibrationBins(
        edges=torch.linspace(0.0, 1.0, bins + 1),
        confidence=torch.where(empty, nan, total_conf / safe),
        accuracy=torch.where(empty, nan, total_correct / safe),
        count=count,
    )


def expected_calibration_error(probs: torch.Tensor, labels: torch.Tensor, bins: int = 10) -> float:
    r"""The expected calibration error :math:`\sum_b \frac{n_b}{n} |\mathrm{acc}_b - \mathrm{conf}_b|`.

    Equal-width bins as in :func:`calibration_bins` (Guo et al., 2017). 0 is perfectly calibrated.

    Example:
        >>> probs = torch.tensor([[0.9, 0.1], [0.9, 0.1]])
        >>> round(expected_calibration_error(probs, torch.tensor([0, 1]), bins=10), 4)  # 90% sure, 50% right
        0.4
    """
    cal = calibration_bins(probs, labels, bins)
    filled = cal.count > 0
    weights = cal.count[filled].float() / probs.shape[0]
    return float((weights * (cal.accuracy[filled] - cal.confidence[filled]).abs()).sum())
