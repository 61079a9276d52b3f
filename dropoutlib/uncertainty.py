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
running statistics, so each example's prediction depends on that example alone. The calibration helpers
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
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from dropoutlib._modes import restored_modes
from dropoutlib._validation import check_choice, check_positive_int
from dropoutlib.diagnostics import dropout_layers

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


def _check_model_and_input(model: Any, x: Any) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got model={type(model).__name__}")
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got x={type(x).__name__}")


def entropy(probs: torch.Tensor, dim: int = -1) -> torch.Tensor:
    r"""Shannon entropy :math:`-\sum_k p_k \log p_k` in nats along ``dim``, with :math:`0 \log 0 = 0`.

    ``probs`` must be a floating-point tensor of probabilities (non-negative; each slice along ``dim``
    summing to 1 within ``1e-3``): an error names the offending values rather than returning a number
    for something that is not a distribution.

    Example:
        >>> entropy(torch.tensor([[0.5, 0.5], [1.0, 0.0]]))
        tensor([0.6931, 0.0000])
    """
    if not isinstance(probs, torch.Tensor) or not probs.is_floating_point():
        raise TypeError(f"probs must be a floating-point torch.Tensor, got {type(probs).__name__}")
    if probs.numel() and float(probs.min()) < 0:
        raise ValueError(f"probs must be non-negative, got a minimum of {float(probs.min()):.4g}")
    sums = probs.sum(dim=dim)
    if sums.numel() and float((sums - 1).abs().max()) > 1e-3:
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
        """The variance over the passes (divided by ``T``)."""
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


def stochastic_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The layers :func:`mc_predict` switches into sampling mode, as ``(name, module)`` pairs.

    These are the dropout layers of :func:`dropoutlib.diagnostics.dropout_layers` and every module whose
    class sets ``dropout_variant = True`` (the layers of :mod:`dropoutlib.nn`: DropConnect,
    Gaussian and alpha dropout, DropPath, DropBlock).

    Example:
        >>> from dropoutlib.course.models import mlp
        >>> stochastic_layers(mlp(4, [8], 2, p=0.5))
        [('2', Dropout(p=0.5, inplace=False))]
    """
    listed = {id(module) for _, module in dropout_layers(model)}
    return [
        (name, module)
        for name, module in model.named_modules()
        if id(module) in listed or getattr(type(module), "dropout_variant", False) is True
    ]


def _forward(model: nn.Module, x: torch.Tensor, task: str) -> torch.Tensor:
    out = model(x)
    return torch.softmax(out, dim=-1) if task == "classification" else out


def mc_predict(
    model: nn.Module,
    x: torch.Tensor,
    samples: int = 50,
    *,
    task: str = "classification",
    seed: int | None = None,
) -> MCPrediction:
    """Monte Carlo dropout: ``samples`` forward passes with only the dropout layers sampling.

    The whole model goes into evaluation mode (BatchNorm normalizes with its running statistics and
    does not update them), then the layers of :func:`stochastic_layers` go into training mode, and the
    passes run under ``torch.no_grad()``. Every module's ``training`` flag is restored afterwards, also
    when a forward pass raises.

    Args:
        model: the network; it must contain at least one dropout layer (ValueError otherwise: with none,
            every pass would be the same and the "uncertainty" would be zero by construction).
        x: a batch of inputs.
        samples: the number of passes ``T``, a positive integer.
        task: ``"classification"`` applies softmax over the last dimension of each output;
            ``"regression"`` keeps the raw outputs.
        seed: ``None`` draws the masks from torch's global RNG (and advances it); an int draws them from
            a forked RNG seeded with it, so the result is reproducible and the global RNG is left alone.

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
    """
    _check_model_and_input(model, x)
    samples = check_positive_int(samples, "samples")
    task = check_choice(task, "task", TASKS)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
        raise TypeError(f"seed must be an int or None, got seed={seed!r} ({type(seed).__name__})")
    layers = stochastic_layers(model)
    if not layers:
        raise ValueError(
            f"mc_predict needs a model with at least one dropout layer; {type(model).__name__} has none, "
            "so every pass would be identical"
        )
    with restored_modes(model), torch.no_grad(), torch.random.fork_rng(devices=[], enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(int(seed))
        model.eval()
        for _, layer in layers:
            layer.train()
        outputs = [_forward(model, x, task) for _ in range(samples)]
    return MCPrediction(torch.stack(outputs), task)


def eval_predict(model: nn.Module, x: torch.Tensor, *, task: str = "classification") -> torch.Tensor:
    """One deterministic pass in evaluation mode (dropout off), with the model's modes restored after.

    For ``task="classification"`` the softmax probabilities, shape ``(n, k)``; for regression the raw
    outputs. This is the weight-scaling prediction that :func:`mc_predict` is compared with.

    Example:
        >>> from dropoutlib.course.models import mlp
        >>> model = mlp(4, [16], 3, p=0.5)
        >>> x = torch.randn(5, 4)
        >>> torch.equal(eval_predict(model, x), eval_predict(model, x)), model.training
        (True, True)
    """
    _check_model_and_input(model, x)
    task = check_choice(task, "task", TASKS)
    with restored_modes(model), torch.no_grad():
        model.eval()
        return _forward(model, x, task)


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
