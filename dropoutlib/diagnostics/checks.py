"""The checks themselves: each runs the model, measures one thing and returns a CheckResult."""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.overrides import TorchFunctionMode

from dropoutlib import _batches
from dropoutlib._modes import restored_modes
from dropoutlib._validation import check_positive_int, check_probability
from dropoutlib.diagnostics.layers import (
    _CHANNEL_WISE,
    _FUNCTIONAL_DROPOUTS,
    _attention_dropouts,
    _check_model,
    _configured_p,
    _is_dropout_layer,
    _is_stochastic_depth,
    _may_change_its_input,
    _zeroes_units,
    dropout_layers,
)
from dropoutlib.diagnostics.report import CheckResult, Report, _listed, _plural
from dropoutlib.nn.dropout import StandardDropout

__all__ = [
    "CHANCE_LEVEL",
    "CHECKS",
    "DROP_RATE_Z",
    "check_drop_rate",
    "check_eval_deterministic",
    "check_eval_mode",
    "check_masks_vary",
    "check_mc_batchnorm",
    "check_no_output_dropout",
    "diagnose",
]

#: Default tolerance of :func:`check_drop_rate`, in binomial standard errors
#: :math:`\sqrt{p(1-p)/n}` of the measured drop rate.
DROP_RATE_Z = 4.0
#: :func:`check_masks_vary` reports two identical masks as a bug only when independent masks would be
#: identical with a probability below this (otherwise it says there were too few units to tell).
CHANCE_LEVEL = 1e-6
#: The names of the checks, in the order :func:`diagnose` runs them (``eval_mode`` excepted).
CHECKS: tuple[str, ...] = (
    "eval_mode",
    "eval_deterministic",
    "masks_vary",
    "drop_rate",
    "no_output_dropout",
    "mc_batchnorm",
)


def _label(name: str, module: nn.Module | None = None, detail: str = "") -> str:
    shown = f"'{name}'" if name else "the model itself"
    parts = []
    if module is not None:
        p = _configured_p(module)
        parts.append(f"{type(module).__name__}{'' if p is None else f', p={p:g}'}")
    if detail:
        parts.append(detail)
    return f"{shown} ({'; '.join(parts)})" if parts else shown


@contextmanager
def _preserved(model: nn.Module, batch: Any) -> Iterator[None]:
    """Run the body under no_grad and a forked RNG; restore every module's mode and every buffer."""
    buffers = [
        (module, name, buffer, buffer.detach().clone())
        for module in model.modules()
        for name, buffer in module._buffers.items()
        if buffer is not None
    ]
    devices = _batches.cuda_indices(model, batch)
    try:
        with restored_modes(model), torch.random.fork_rng(devices=devices), torch.no_grad():
            yield
    finally:
        with torch.no_grad():
            for module, name, buffer, saved in buffers:
                module._buffers[name] = buffer  # the original object, even if forward replaced it
                buffer.copy_(saved)


# ----------------------------------------------------------------------------------------------------
# Recording what the dropout layers (and functional dropout calls) did during forward passes


def _storage(tensor: torch.Tensor) -> tuple[str, int]:
    """Which memory a tensor lives in (a view shares its base's): in-place ops do not change it."""
    return str(tensor.device), tensor.untyped_storage().data_ptr()


@dataclass
class _Site:
    """One call of one dropout layer, summarised when the layer returned (later in-place ops on its
    output, such as ``ReLU(inplace=True)`` or ``h += x``, cannot change what was measured).

    ``readable``: input and output were tensors of one shape. Among the layer's units (elements, or
    channels / examples for channel-wise dropout and stochastic depth), ``eligible`` had a nonzero input
    and ``kept`` of those a nonzero output. ``ratio_min``, ``ratio_max``, ``ratio_median``: the factor
    ``|output / input|`` over the elements kept (None when none was). ``pattern``: the flat bool tensors
    ``(eligible, kept)`` over the units, only when the masks are compared. ``storage``: where the output
    lives, to recognise the model's output (with ``storage_ref`` holding that memory, only when asked
    for: once freed, it could be reused by another tensor, the model's output among them).
    """

    name: str
    module: nn.Module
    training: bool
    readable: bool = False
    dtype: torch.dtype | None = None
    eligible: int = 0
    kept: int = 0
    ratio_min: float | None = None
    ratio_max: float | None = None
    ratio_median: float | None = None
    pattern: tuple[torch.Tensor, torch.Tensor] | None = None
    storage: tuple[str, int] | None = None
    numel: int = 0
    storage_ref: Any = None


@dataclass
class _FunctionalCall:
    """One call of ``torch.nn.functional.*dropout*`` made outside any dropout layer, or (``attention``)
    one of ``F.scaled_dot_product_attention`` with its ``dropout_p`` as ``p``."""

    function: str
    p: float | None
    training: bool
    storage: tuple[str, int] | None
    numel: int
    attention: bool = False
    storage_ref: Any = None


_SDPA = torch.nn.functional.scaled_dot_product_attention


class _FunctionalRecorder(TorchFunctionMode):
    def __init__(self, depth: list[int], calls: list[_FunctionalCall], keep_storage: bool = False) -> None:
        super().__init__()
        self.depth = depth
        self.calls = calls
        self.keep_storage = keep_storage

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        kwargs = kwargs or {}
        result = func(*args, **kwargs)
        if (func in _FUNCTIONAL_DROPOUTS or func is _SDPA) and self.depth[0] == 0:
            attention = func is _SDPA
            try:
                bound = inspect.signature(func).bind(*args, **kwargs)
                bound.apply_defaults()
                arguments = bound.arguments
            except (TypeError, ValueError):  # no Python signature (SDPA is a builtin): keywords only
                arguments = dict(kwargs)
            if attention:
                p = arguments.get("dropout_p", args[4] if len(args) > 4 else 0.0)
                training = isinstance(p, numbers.Real) and float(p) > 0.0
            else:
                p, training = arguments.get("p", 0.5), bool(arguments.get("training", True))
            p = float(p) if isinstance(p, numbers.Real) else None
            out = result if isinstance(result, torch.Tensor) else None
            self.calls.append(
                _FunctionalCall(
                    f"torch.nn.functional.{func.__name__}",
                    p,
                    training,
                    None if out is None else _storage(out),
                    0 if out is None else out.numel(),
                    attention,
                    out.untyped_storage() if out is not None and self.keep_storage else None,
                )
            )
        return result


def _first_tensor(values: Any) -> torch.Tensor | None:
    for value in values:
        if isinstance(value, torch.Tensor):
            return value
    return None


def _unit_masks(
    module: nn.Module, input: torch.Tensor, output: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat bool tensors ``(eligible, kept)`` over the independent units of one call of a layer.

    A unit is an element, a channel of one example for channel-wise dropout (``nn.Dropout1d/2d/3d``), an
    example for stochastic depth (or the whole batch with torchvision's ``mode="batch"``); it is
    *eligible* when its input is nonzero (a zero input says nothing about the mask) and *kept* when its
    output is nonzero.
    """
    nonzero_in = input != 0
    nonzero_out = (output != 0) & nonzero_in
    dims: tuple[int, ...] = ()
    unbatched_ndim = next((n for cls, n in _CHANNEL_WISE.items() if isinstance(module, cls)), None)
    if unbatched_ndim is not None and input.ndim >= 2:
        start = 1 if input.ndim == unbatched_ndim and unbatched_ndim != 3 else 2
        dims = tuple(range(start, input.ndim))
    elif _is_stochastic_depth(module) and input.ndim >= 1:
        dims = tuple(range(0 if getattr(module, "mode", "row") == "batch" else 1, input.ndim))
    if dims:
        nonzero_in, nonzero_out = nonzero_in.any(dim=dims), nonzero_out.any(dim=dims)
    return nonzero_in.reshape(-1), nonzero_out.reshape(-1)


def _summarise(
    site: _Site, input: torch.Tensor | None, output: Any, patterns: bool, keep_storage: bool
) -> None:
    """Fill ``site`` from what the layer received and returned, at the moment it returned."""
    if not isinstance(output, torch.Tensor):
        return
    site.storage, site.numel = _storage(output), output.numel()
    if keep_storage:
        site.storage_ref = output.untyped_storage()
    if input is None or input.shape != output.shape:
        return
    site.readable, site.dtype = True, input.dtype
    eligible, kept = _unit_masks(site.module, input, output)
    site.eligible, site.kept = int(eligible.sum().item()), int(kept.sum().item())
    if patterns:
        site.pattern = (eligible, kept)
    kept_elements = (input != 0) & (output != 0)
    if bool(kept_elements.any()):
        ratio = (output[kept_elements].double() / input[kept_elements].double()).abs()
        site.ratio_min, site.ratio_max = float(ratio.min().item()), float(ratio.max().item())
        site.ratio_median = float(ratio.median().item())


def _record_passes(
    model: nn.Module, batch: Any, passes: int, *, patterns: bool = False, keep_storage: bool = False
) -> tuple[list[list[_Site]], list[list[_FunctionalCall]], list[Any]]:
    """Run ``passes`` forward passes (in the model's current modes) with hooks on every dropout layer.

    Returns, per pass, the sites (a layer called twice in a pass gives two sites, named ``"name (call
    k)"``), the functional dropout and attention calls made outside dropout layers, and the model's
    output. Each site is summarised by its forward hook (counts and scale statistics, and with
    ``patterns`` the keep pattern as bool tensors): no input or output tensor is kept (with
    ``keep_storage``, the memory of each output stays held until the sites are dropped). The input of a
    layer that may change it in place is copied for the duration of its call only. The model runs on a
    copy of the batch in every pass, so the caller's tensors are never modified.
    """
    layers = dropout_layers(model)
    depth = [0]
    current: list[_Site] = []
    pending: list[torch.Tensor | None] = []
    handles = []

    def pre_hook(module: nn.Module, args: tuple) -> None:
        tensor = _first_tensor(args)
        if tensor is not None:
            tensor = tensor.detach()
            if _may_change_its_input(module):
                tensor = tensor.clone()
        pending.append(tensor)
        depth[0] += 1

    def make_hook(name: str) -> Callable[..., None]:
        def hook(module: nn.Module, args: tuple, output: Any) -> None:
            depth[0] -= 1
            site = _Site(name, module, module.training)
            out = output.detach() if isinstance(output, torch.Tensor) else output
            _summarise(site, pending.pop(), out, patterns, keep_storage)
            current.append(site)

        return hook

    sites: list[list[_Site]] = []
    calls: list[list[_FunctionalCall]] = []
    outputs: list[Any] = []
    try:
        for name, module in layers:
            handles.append(module.register_forward_pre_hook(pre_hook))
            handles.append(module.register_forward_hook(make_hook(name)))
        for _ in range(passes):
            current, pending[:], depth[0] = [], [], 0
            pass_calls: list[_FunctionalCall] = []
            try:
                with _FunctionalRecorder(depth, pass_calls, keep_storage):
                    outputs.append(_batches.call(model, batch))
            except Exception as error:
                mode = "training" if model.training else "evaluation"
                raise RuntimeError(
                    f"the model raised on {_batches.describe(batch)} in {mode} mode, where this check runs "
                    f"it: {type(error).__name__}: {error}"
                ) from error
            counts: dict[str, int] = {}
            for site in current:
                counts[site.name] = counts.get(site.name, 0) + 1
            seen: dict[str, int] = {}
            for site in current:
                if counts[site.name] > 1:
                    seen[site.name] = seen.get(site.name, 0) + 1
                    site.name = f"{site.name} (call {seen[site.name]})"
            sites.append(current)
            calls.append(pass_calls)
    finally:
        for handle in handles:
            handle.remove()
    return sites, calls, outputs


def _dropout_calls(calls: list[_FunctionalCall]) -> list[_FunctionalCall]:
    return [call for call in calls if not call.attention]


def _functional_note(calls: list[_FunctionalCall]) -> str:
    calls = _dropout_calls(calls)
    if not calls:
        return ""
    names = sorted({call.function for call in calls})
    return (
        f" Dropout called as a function inside forward ({_plural(len(calls), 'call')} of "
        f"{', '.join(names)} per pass) has no layer to hook and is not inspected by this check."
    )


def _unseen(model: nn.Module, calls: list[_FunctionalCall]) -> list[str]:
    """The dropout no hook can read: ``nn.MultiheadAttention`` modules with ``dropout > 0`` and calls of
    ``F.scaled_dot_product_attention`` with ``dropout_p > 0`` (recorded in a training-mode pass)."""
    attention = _attention_dropouts(model)
    found = [f"{_label(name)} (MultiheadAttention, dropout={p:g})" for name, _, p in attention]
    ps = sorted({call.p for call in calls if call.attention and call.training and call.p is not None})
    if ps:
        found.append(
            f"torch.nn.functional.scaled_dot_product_attention (dropout_p={', '.join(f'{p:g}' for p in ps)})"
        )
    return found


def _unseen_note(unseen: list[str]) -> str:
    if not unseen:
        return ""
    return (
        f" The attention dropout of {_listed(unseen)} is not measured: its masks are drawn inside the "
        "attention computation, where no hook can read them (eval_deterministic still covers it)."
    )


def _no_layers(name: str, calls: list[_FunctionalCall], unseen: list[str] | None = None) -> CheckResult:
    """SKIP: the model has no dropout layer to hook (what else it has is named)."""
    message = "no dropout layers found, nothing to check." + _unseen_note(unseen or [])
    return CheckResult.skip(name, message + _functional_note(calls))


# ----------------------------------------------------------------------------------------------------
# The checks


def check_eval_mode(model: nn.Module) -> CheckResult:
    """Is every submodule in evaluation mode? Call it where you evaluate or predict.

    ``model.train()`` and ``model.eval()`` set the ``training`` flag of every submodule; dropout layers
    drop units only when it is True and BatchNorm normalizes with batch statistics. Evaluating a model
    left in training mode (forgetting ``model.eval()``) gives random predictions that are, on average,
    worse than the deterministic ones. The check fails if any submodule (the model included) has
    ``training=True`` and lists them, dropout and BatchNorm layers first. It runs nothing.

    Example:
        >>> from dropoutlib.course.models import mlp
        >>> model = mlp(4, [8], 2, p=0.5)  # a new module is in training mode
        >>> print(check_eval_mode(model))  # doctest: +ELLIPSIS
        FAIL eval_mode: 5 of 5 modules are in training mode, among them the dropout layer '2'...
        >>> check_eval_mode(model.eval()).passed
        True
    """
    _check_model(model)
    named = list(model.named_modules())
    training = [(name, module) for name, module in named if module.training]
    if not training:
        return CheckResult("eval_mode", True, f"all {_plural(len(named), 'module')} are in evaluation mode.")
    key = [(name, m) for name, m in training if _is_dropout_layer(m) or isinstance(m, _BatchNorm)]
    rest = [(name, m) for name, m in training if (name, m) not in key]
    verb = "is" if len(training) == 1 else "are"
    if key:
        kinds = [
            f"the {'dropout' if _is_dropout_layer(m) else 'BatchNorm'} layer {_label(name)}"
            for name, m in key
        ]
        among = f", among them {_listed(kinds)}"
        effect = (
            "so predictions made now are random (dropout drops units) or depend on the batch (BatchNorm "
            "uses batch statistics)"
        )
    else:
        among = f": {_listed([_label(name) for name, _ in rest])}"
        effect = "so any layer that behaves differently in training makes predictions made now differ"
    return CheckResult(
        "eval_mode",
        False,
        f"{len(training)} of {_plural(len(named), 'module')} {verb} in training mode{among}, {effect}. "
        "Fix: call model.eval() before evaluating or predicting (and model.train() before training again).",
    )


def check_eval_deterministic(model: nn.Module, batch: Any) -> CheckResult:
    r"""In evaluation mode, do two forward passes on the batch give the same outputs?

    After ``model.eval()`` a network with dropout must be a deterministic function: every dropout layer
    is the identity. The classic way to break this is ``F.dropout(h, p)`` inside ``forward`` without
    ``training=self.training``: the functional form's ``training`` argument defaults to True and does not
    know the module's mode. The check puts the model in evaluation mode, runs the model on the batch twice and
    fails if any output differs beyond a tolerance that follows its dtype (a relative ``1e-5`` in float32
    and float64, a few units in the last place, :math:`4\varepsilon`, in float16 and bfloat16); the
    message gives the largest difference, the fraction of outputs that changed, and any
    ``torch.nn.functional`` dropout call that ran with ``training=True`` (or
    ``F.scaled_dot_product_attention`` with ``dropout_p > 0``). Modes and torch's global RNG are restored.

    Example:
        >>> from dropoutlib.experiments.bugs import FunctionalDropoutMLP
        >>> _ = torch.manual_seed(0)
        >>> x = torch.randn(8, 4)
        >>> print(check_eval_deterministic(FunctionalDropoutMLP(4, 16, 2, respect_training=True), x))
        ... # doctest: +ELLIPSIS
        PASS eval_deterministic: in evaluation mode, two forward passes on the same batch gave the same...
        >>> result = check_eval_deterministic(FunctionalDropoutMLP(4, 16, 2, respect_training=False), x)
        >>> result.passed, "training=self.training" in result.message
        (False, True)
    """
    _check_model(model)
    batch = _batches.check_batch(batch)
    with _preserved(model, batch):
        model.eval()
        sites, calls, outputs = _record_passes(model, batch, passes=2)
    first, second = list(_batches.tensors(outputs[0])), list(_batches.tensors(outputs[1]))
    if not first:
        raise TypeError(f"the model's output holds no tensor, got {type(outputs[0]).__name__}")
    if len(first) != len(second) or any(a.shape != b.shape for a, b in zip(first, second, strict=True)):
        return CheckResult(
            "eval_deterministic",
            False,
            "in evaluation mode, two forward passes on the same batch returned outputs of different shapes: "
            "the model's forward is not a function of its input.",
        )
    changed = total = 0
    largest = 0.0
    for a, b in zip(first, second, strict=True):
        a, b = a.detach(), b.detach()
        total += a.numel()
        if a.is_floating_point() or a.is_complex():
            rtol, atol = _eval_tolerances(a, b)
            close = torch.isclose(a, b, rtol=rtol, atol=atol, equal_nan=True)
        else:
            close = a == b
        changed += int((~close).sum().item())
        if not bool(close.all()):
            diff = (a.double() - b.double()).abs()[~close]
            largest = max(largest, float(diff.max().item()))
    if changed == 0:
        return CheckResult(
            "eval_deterministic",
            True,
            "in evaluation mode, two forward passes on the same batch gave the same outputs.",
        )
    on = [call for call in _dropout_calls(calls[0]) if call.training]
    attention_on = [call for call in calls[0] if call.attention and call.training]
    still_training = sorted({site.name for site in sites[0] if site.training})
    if on:
        names = sorted({call.function for call in on})
        cause = (
            f"{_plural(len(on), 'call')} of {', '.join(names)} per pass ran with training=True although "
            "the model is in evaluation mode: the functional form's training argument defaults to True. "
            "Fix: write F.dropout(h, p, training=self.training), or use nn.Dropout layers, which "
            "model.eval() turns off."
        )
    elif still_training:
        cause = (
            f"The dropout layers {_listed([repr(n) for n in still_training])} ran in training mode although "
            "model.eval() was called (forward switches them on). Fix: leave the modes to model.train() "
            "and model.eval()."
        )
    elif attention_on:
        ps = ", ".join(sorted({f"{call.p:g}" for call in attention_on}))
        cause = (
            f"{_plural(len(attention_on), 'call')} of torch.nn.functional.scaled_dot_product_attention per "
            f"pass ran with dropout_p={ps} although the model is in evaluation mode: the function has no "
            "training flag. Fix: pass dropout_p=self.p if self.training else 0.0."
        )
    else:
        cause = (
            "No dropout layer or functional dropout call ran in training mode. Fix: look for other "
            "randomness in forward (torch.rand, torch.randn_like, noise layers) and make it depend on "
            "self.training, as in F.dropout(h, p, training=self.training)."
        )
    return CheckResult(
        "eval_deterministic",
        False,
        f"in evaluation mode, two forward passes on the same batch differ ({changed} of {total} outputs "
        f"changed, by up to {largest:.3g}): dropout or other randomness is still on at test time. {cause}",
    )


def _eval_tolerances(a: torch.Tensor, b: torch.Tensor) -> tuple[float, float]:
    r"""``(rtol, atol)`` for comparing two evaluation-mode outputs ``a`` and ``b`` of one floating dtype:
    :math:`\mathrm{rtol} = \max(10^{-5}, 4\varepsilon)` and
    :math:`\mathrm{atol} = \max(\text{tiny}, 4\varepsilon \max(|a|, |b|))`, with :math:`\varepsilon` the
    dtype's machine epsilon and tiny its smallest normal number (``torch.finfo``): a few units in the last
    place of the largest output, so that the rounding of nondeterministic kernels in float16 or bfloat16
    is not mistaken for dropout left on, and no fixed floor hides a difference in outputs that are all
    small (an untrained EfficientNet's logits are about 1e-14 in evaluation mode)."""
    info = torch.finfo(a.dtype)
    magnitudes = torch.cat([a.detach().abs().flatten(), b.detach().abs().flatten()])
    finite = magnitudes[torch.isfinite(magnitudes)]
    scale = float(finite.max().item()) if finite.numel() else 0.0
    return max(1e-5, 4 * info.eps), max(info.tiny, 4 * info.eps * scale)


def _identical(
    a: tuple[torch.Tensor, torch.Tensor], b: tuple[torch.Tensor, torch.Tensor]
) -> tuple[bool, int, float]:
    """Are two keep patterns identical on the ``n`` units eligible in both? With ``n`` and the log-chance.

    The chance that independent masks agree on all ``n`` units is :math:`(r_a r_b + (1-r_a)(1-r_b))^n`,
    with :math:`r_a, r_b` the fractions kept on those units (so that a layer that kept everything there,
    or dropped everything, never counts as evidence).
    """
    both = a[0] & b[0]
    n = int(both.sum().item())
    if n == 0:
        return False, 0, 0.0
    kept_a, kept_b = a[1][both], b[1][both]
    same = bool(torch.equal(kept_a, kept_b))
    r_a, r_b = kept_a.double().mean().item(), kept_b.double().mean().item()
    agree = r_a * r_b + (1 - r_a) * (1 - r_b)  # P(two independent units agree)
    log_chance = n * math.log(agree) if agree > 0 else -math.inf
    return same, n, log_chance


def _site_p(site: _Site) -> float | None:
    p = _configured_p(site.module)
    if p is not None:
        return p
    return None if site.eligible == 0 else 1.0 - site.kept / site.eligible


def check_masks_vary(model: nn.Module, batch: Any, calls: int = 2) -> CheckResult:
    r"""In training mode, does every dropout layer draw a new mask on every call, and a mask of its own?

    Dropout trains a different thinned network on every step: each layer's mask must be a fresh draw,
    independent of the previous step's and of the other layers'. Re-seeding a generator with one key on
    every step (or passing one JAX key to every step or every layer, as in the 004 source) breaks this.

    How: the model runs ``calls`` forward passes on the batch in training mode; forward hooks read every
    dropout layer's *keep pattern*: for each unit whose input is nonzero, whether its output is nonzero
    (a unit is an element, or a channel of one example for ``nn.Dropout1d/2d/3d``). The check fails if a
    layer's pattern is identical on two consecutive calls (a mask reused across steps), or if two layers
    whose outputs have the same shape have identical patterns on one call (one key shared by layers).
    Identical patterns are reported only when independent masks would agree on all :math:`n` units with
    probability :math:`(p_1 p_2 + q_1 q_2)^n <` :data:`CHANCE_LEVEL`; with fewer units the message says
    the batch is too small to tell. Layers with ``p`` equal to 0 or 1 have nothing random to compare,
    and layers whose noise does not zero units (``nn.AlphaDropout``, the layers of
    :mod:`dropoutlib.nn`) are skipped; when no layer is left to compare, the result is SKIP. For
    stochastic depth (``DropPath``, ``StochasticDepth``) a unit is an example. The attention dropout of
    ``nn.MultiheadAttention`` and ``F.scaled_dot_product_attention`` is named as not measured. Modes,
    buffers (BatchNorm's running statistics) and torch's global RNG are restored.

    Args:
        model: any ``nn.Module``.
        batch: a batch it accepts (a tensor, tuple or dict, see :func:`diagnose`).
        calls: number of forward passes, an int ``>= 2``.

    Example:
        >>> from dropoutlib.experiments.bugs import ReusedMaskMLP
        >>> _ = torch.manual_seed(0)
        >>> x = torch.randn(32, 8)
        >>> print(check_masks_vary(ReusedMaskMLP(8, 32, 2, p=0.5, reuse=None), x))  # doctest: +ELLIPSIS
        PASS masks_vary: 2 dropout layers drew new masks on each of 2 calls, and no two layers ...
        >>> print(check_masks_vary(ReusedMaskMLP(8, 32, 2, p=0.5, reuse="steps"), x))  # doctest: +ELLIPSIS
        FAIL masks_vary: the same units were dropped on consecutive calls by 'dropouts.0' ...
    """
    _check_model(model)
    batch = _batches.check_batch(batch)
    calls = check_positive_int(calls, "calls")
    if calls < 2:
        raise ValueError(f"calls must be at least 2 (masks are compared between calls), got calls={calls}")
    if not dropout_layers(model):
        with _preserved(model, batch):
            model.train()
            _, functional, _ = _record_passes(model, batch, passes=1)
        return _no_layers("masks_vary", functional[0], _unseen(model, functional[0]))
    with _preserved(model, batch):
        model.train()
        sites, functional, _ = _record_passes(model, batch, passes=calls, patterns=True)

    reused_steps: list[str] = []
    shared_layers: list[str] = []
    undecided: list[str] = []
    skipped: list[str] = []
    # Per pass: the keep pattern of every site that has random masks to compare.
    patterns: list[dict[str, tuple[torch.Tensor, torch.Tensor]]] = [{} for _ in sites]
    for site in sites[0]:
        units = site.pattern if _zeroes_units(site.module) else None
        p = None if units is None else _site_p(site)
        if units is None:
            skipped.append(_label(site.name, site.module, "cannot read a keep pattern"))
        elif p is None or p in (0.0, 1.0):
            skipped.append(_label(site.name, site.module, "nothing random"))
        else:
            patterns[0][site.name] = units
    for k, pass_sites in enumerate(sites[1:], start=1):
        for site in pass_sites:
            units = site.pattern if site.name in patterns[0] else None
            if units is not None:
                patterns[k][site.name] = units

    def evidence(
        a: tuple[torch.Tensor, torch.Tensor], b: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[str, int]:
        """("bug", n) if identical beyond chance, ("undecided", n) if on too few units, else ("", n)."""
        if a[0].shape != b[0].shape:
            return "", 0
        same, n, log_chance = _identical(a, b)
        if not same:
            return "", n
        return ("bug" if log_chance < math.log(CHANCE_LEVEL) else "undecided"), n

    for name in patterns[0]:
        site = next(site for site in sites[0] if site.name == name)
        for k in range(calls - 1):
            if name not in patterns[k] or name not in patterns[k + 1]:
                continue
            verdict, n = evidence(patterns[k][name], patterns[k + 1][name])
            if verdict == "bug":
                reused_steps.append(_label(name, site.module, f"calls {k + 1} and {k + 2}, {n} units"))
                break
            if verdict:
                undecided.append(_label(name, detail=f"calls {k + 1} and {k + 2}, {n} units"))
    names = list(patterns[0])
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            verdict, n = evidence(patterns[0][first], patterns[0][second])
            if verdict == "bug":
                shared_layers.append(f"{_label(first)} and {_label(second)} ({n} units)")
            elif verdict:
                undecided.append(f"{_label(first)} and {_label(second)} ({n} units)")
    checked = names

    problems = []
    if reused_steps:
        problems.append(
            f"the same units were dropped on consecutive calls by {_listed(reused_steps)}: the mask (or the "
            "random key or seed it is drawn from) is reused across training steps, so the network trains "
            "one fixed thinned subnetwork instead of a new one each step"
        )
    if shared_layers:
        problems.append(
            f"layers {_listed(shared_layers)} dropped exactly the same units on one call: one random key "
            "or seed is shared by several layers"
        )
    note = ""
    if skipped:
        note += f" Skipped: {_listed(skipped)}."
    if undecided:
        note += (
            f" Identical but too few nonzero inputs to tell from chance: {_listed(undecided)}; "
            "use a larger batch."
        )
    note += _unseen_note(_unseen(model, functional[0])) + _functional_note(functional[0])
    if problems:
        return CheckResult(
            "masks_vary",
            False,
            "; ".join(problems)
            + ". Fix: draw every mask from a generator that advances (torch's global generator, as "
            "nn.Dropout does), or split a fresh key for every layer and every step (jax.random.split)."
            + note,
        )
    if not checked:
        return CheckResult.skip("masks_vary", "no dropout layer with random masks to compare." + note)
    return CheckResult(
        "masks_vary",
        True,
        f"{_plural(len(checked), 'dropout layer')} drew new masks on each of {calls} calls, and no two "
        "layers of the same output shape shared a mask." + note,
    )


def _binomial_tail(k: int, n: int, p: float) -> float:
    r"""Two-sided exact tail of :math:`K \sim \mathrm{Binomial}(n, p)`: twice the smaller of
    :math:`P(K \le k)` and :math:`P(K \ge k)` (at most 1)."""
    if p in (0.0, 1.0):
        return 1.0 if k == round(p * n) else 0.0
    ks = torch.arange(n + 1, dtype=torch.float64)
    log_pmf = (
        math.lgamma(n + 1)
        - torch.lgamma(ks + 1)
        - torch.lgamma(n - ks + 1)
        + ks * math.log(p)
        + (n - ks) * math.log1p(-p)
    )
    lower = torch.logsumexp(log_pmf[: k + 1], dim=0).exp().item()
    upper = torch.logsumexp(log_pmf[k:], dim=0).exp().item()
    return min(1.0, 2.0 * min(lower, upper))


def _check_expected_p(expected_p: Any, names: list[str]) -> dict[str, float] | float | None:
    if expected_p is None:
        return None
    if isinstance(expected_p, Mapping):
        checked = {}
        for key, value in expected_p.items():
            if key not in names:
                raise ValueError(
                    f"expected_p names a layer that is not a dropout layer of the model: {key!r} "
                    f"(dropout layers: {names})"
                )
            checked[key] = check_probability(value, f"expected_p[{key!r}]")
        return checked
    if isinstance(expected_p, bool) or not isinstance(expected_p, numbers.Real):
        raise TypeError(
            "expected_p must be None, a probability, or a dict {layer name: probability}, "
            f"got expected_p={expected_p!r} ({type(expected_p).__name__})"
        )
    return check_probability(expected_p, "expected_p")


def _check_tolerance(tolerance: Any) -> float | None:
    if tolerance is None:
        return None
    if isinstance(tolerance, bool) or not isinstance(tolerance, numbers.Real):
        raise TypeError(
            f"tolerance must be None or a number in (0, 1), got tolerance={tolerance!r} "
            f"({type(tolerance).__name__})"
        )
    if not 0.0 < float(tolerance) < 1.0:
        raise ValueError(f"tolerance must be in (0, 1) (an absolute drop rate), got tolerance={tolerance!r}")
    return float(tolerance)


def _expected_scale(module: nn.Module, p: float) -> float:
    """1 for standard dropout (and timm's ``DropPath(scale_by_keep=False)``), else 1/q."""
    unscaled = isinstance(module, StandardDropout) or getattr(module, "scale_by_keep", True) is False
    return 1.0 if unscaled else 1.0 / (1.0 - p)


def _scale_rtol(dtype: torch.dtype | None) -> float:
    """The relative tolerance on the factor kept values are multiplied by: ``1e-3``, or four units in
    the last place (:math:`4\\varepsilon`) of a coarser dtype (float16, bfloat16)."""
    if dtype is None or not dtype.is_floating_point:
        return 1e-3
    return max(1e-3, 4 * torch.finfo(dtype).eps)


def check_drop_rate(
    model: nn.Module,
    batch: Any,
    expected_p: float | Mapping[str, float] | None = None,
    tolerance: float | None = None,
) -> CheckResult:
    r"""In training mode, does each dropout layer drop a fraction ``p`` of its units and scale the rest?

    The model runs one forward pass on the batch in training mode; forward hooks read each dropout layer's
    input and output. Among the :math:`n` units whose input is nonzero, the measured drop rate is
    :math:`\hat p = \#\{\text{output} = 0\}/n`; for the layer's configured ``p`` (its attribute ``p``)
    :math:`\hat p` has standard error :math:`\sqrt{p(1-p)/n}`. The check fails when

    - :math:`|\hat p - p|` exceeds ``tolerance``: the layer does not do what its ``p`` says (e.g. a
      hand-written layer that keeps with probability ``p``). The default tolerance is
      :data:`DROP_RATE_Z` = 4 standard errors plus :math:`1/(2n)`, and a deviation beyond it is confirmed
      with the exact binomial test (two-sided tail probability below :math:`6.3 \times 10^{-5}`, that of
      4 standard errors of a normal), so that small layers and ``p`` near 0 give no false alarms;
    - kept values are not scaled by :math:`1/q` (inverted dropout; 1 for
      :class:`dropoutlib.StandardDropout`) to a relative ``1e-3`` (:math:`4\varepsilon` in float16 and
      bfloat16): the expectation of the output is not the input;
    - ``expected_p`` (a float for every layer, or a dict ``{layer name: p}``) differs from the
      configured ``p``: say which ``p`` you meant, and the check compares;
    - without ``expected_p``, a layer has ``p > 0.5``: the message asks whether a keep probability
      (TF1's ``keep_prob``, the 2014 paper's :math:`p`) was passed where PyTorch expects the drop
      probability; pass ``expected_p`` to confirm a large ``p`` on purpose.

    For a layer without a ``p`` attribute (or timm's ``drop_prob``), :math:`\hat p` is compared with
    ``expected_p`` when given. A unit is an element, a channel of one example for ``nn.Dropout1d/2d/3d``,
    an example for stochastic depth. The counts are taken when each layer returns, so in-place
    operations after it do not change them. With no layer to measure the result is SKIP (attention
    dropout, which no hook can read, is named). Modes, buffers and torch's global RNG are restored.

    Example:
        >>> from dropoutlib.course.models import mlp
        >>> _ = torch.manual_seed(0)
        >>> x = torch.randn(64, 8)
        >>> print(check_drop_rate(mlp(8, [64], 2, p=0.2), x))  # doctest: +ELLIPSIS
        PASS drop_rate: 1 dropout layer: measured drop rates 0.1... match the configured p (0.2) within 4 ...
        >>> print(check_drop_rate(mlp(8, [64], 2, p=0.8), x))  # doctest: +ELLIPSIS
        FAIL drop_rate: layer '2' (Dropout, p=0.8) drops ...% of its units: ... keep probability ...
        >>> check_drop_rate(mlp(8, [64], 2, p=0.8), x, expected_p=0.2).passed
        False
    """
    _check_model(model)
    batch = _batches.check_batch(batch)
    layers = dropout_layers(model)
    expected = _check_expected_p(expected_p, [name for name, _ in layers])
    tolerance = _check_tolerance(tolerance)
    with _preserved(model, batch):
        model.train()
        sites, functional, _ = _record_passes(model, batch, passes=1)
    unseen = _unseen(model, functional[0])
    if not layers:
        return _no_layers("drop_rate", functional[0], unseen)

    problems: list[str] = []
    notes: list[str] = []
    rates: list[str] = []
    configured: list[str] = []
    for site in sites[0]:
        base = site.name.split(" (call ")[0]
        label = _label(site.name, site.module)
        if not _zeroes_units(site.module):
            notes.append(f"{label} skipped (its noise does not zero single units with probability p)")
            continue
        if not site.readable:
            notes.append(f"{label} skipped (its input and output are not tensors of one shape)")
            continue
        n = site.eligible
        if n == 0:
            notes.append(f"{label} not measured (all its inputs were zero)")
            continue
        rate = 1.0 - site.kept / n
        p = _configured_p(site.module)
        want = expected.get(base) if isinstance(expected, dict) else expected
        reference = p if p is not None else want
        rates.append(f"{rate:.3g}")
        if reference is not None:
            configured.append(f"{reference:g}")
            se = math.sqrt(reference * (1.0 - reference) / n)
            allowed = tolerance if tolerance is not None else DROP_RATE_Z * se + 0.5 / n
            dropped = n - site.kept
            off = abs(rate - reference) > allowed + 1e-12
            if off and tolerance is None:  # confirm with the exact binomial tail (small n, p near 0 or 1)
                off = _binomial_tail(dropped, n, reference) < math.erfc(DROP_RATE_Z / math.sqrt(2))
            if off:
                what = "its p is" if p is not None else "you expected"
                problems.append(
                    f"layer {label} zeroed {rate:.1%} of its {n} nonzero inputs but {what} {reference:g} "
                    f"(allowed: {reference:.1%} +/- {allowed:.1%}): the layer does not drop with the "
                    "probability it is configured with; if it is hand-written, check that it keeps a unit "
                    "with probability q = 1 - p (torch.empty_like(x).bernoulli_(1 - p)), not p"
                )
            if reference < 1.0:
                if site.ratio_min is not None and site.ratio_max is not None:
                    scale = _expected_scale(site.module, reference)
                    scale_name = "1 (standard dropout)" if scale == 1.0 else "1/q"
                    rtol = _scale_rtol(site.dtype)
                    worst = max(abs(site.ratio_min / scale - 1.0), abs(site.ratio_max / scale - 1.0))
                    if worst > rtol:
                        problems.append(
                            f"layer {label} multiplies the values it keeps by {site.ratio_median:.4g}, "
                            f"not by {scale_name} = {scale:.4g}: the expected output in training is then not "
                            "the input, so the next layer sees activations of another scale in training than "
                            "at test time; fix: divide the kept values by q = 1 - p (inverted dropout)"
                        )
        if p is not None and want is not None and abs(p - want) > 1e-9:
            keep_hint = (
                f" it looks like the keep probability q = {p:g} was passed where the drop probability "
                f"p = {want:g} is expected;"
                if abs(p - (1.0 - want)) < 1e-9
                else ""
            )
            problems.append(
                f"layer {label} is configured with p={p:g} but you expected p={want:g}:{keep_hint} fix: "
                f"construct it with p={want:g}"
            )
        elif p is not None and want is None and p > 0.5:
            problems.append(
                f"layer {label} drops {rate:.0%} of its units: in PyTorch p is the probability of dropping "
                f"a unit, so p={p:g} keeps only q = {1 - p:g}. Was {p:g} meant as the keep probability "
                f"(TF1's keep_prob, or the 2014 paper's p)? Fix: use p={1 - p:g}; if you do mean to drop "
                f"{p:.0%}, pass expected_p={p:g} to confirm"
            )
    note = (" " + "; ".join(notes) + ".") if notes else ""
    note += _unseen_note(unseen) + _functional_note(functional[0])
    if problems:
        return CheckResult("drop_rate", False, "; ".join(problems) + "." + note)
    if not rates:
        return CheckResult.skip("drop_rate", "no dropout layer could be measured." + note)
    basis = f"{DROP_RATE_Z:g} standard errors" if tolerance is None else f"+/- {tolerance:g}"
    compared = f" match the configured p ({', '.join(configured)}) within {basis}" if configured else ""
    return CheckResult(
        "drop_rate",
        True,
        f"{_plural(len(rates), 'dropout layer')}: measured drop rates {', '.join(rates)}{compared}, and kept "
        "values are scaled as the layer type says (1/q for inverted dropout)." + note,
    )


def check_no_output_dropout(
    model: nn.Module, batch: Any, *, output: Callable[[Any], torch.Tensor] | None = None
) -> CheckResult:
    """Is the model's output produced by a dropout layer (dropout after the last layer)?

    Dropout belongs between hidden layers. Applied to the output, in training mode it sets a fraction
    ``p`` of the predictions to 0 and multiplies the rest by ``1/q``: a regression loss then compares the
    targets with corrupted predictions (and a classifier's logits are zeroed at random). How: one forward
    pass on the batch in training mode; the check fails if the model's prediction (the tensor that
    ``output`` picks from what the model returns; by default the tensor itself, the first element of a
    tuple, ``["logits"]`` or ``.logits``) is the output of a dropout layer with ``p > 0``, or of a
    functional dropout call in ``forward``, or a view of one (they share storage). Modes, buffers and
    torch's global RNG are restored.

    Example:
        >>> from dropoutlib.course.models import mlp
        >>> from dropoutlib.experiments.bugs import mlp_with_output_dropout
        >>> _ = torch.manual_seed(0)
        >>> x = torch.randn(16, 4)
        >>> check_no_output_dropout(mlp(4, [8], 1, p=0.5), x).passed
        True
        >>> print(check_no_output_dropout(mlp_with_output_dropout(4, [8], 1, p=0.5), x))  # doctest: +ELLIPSIS
        FAIL no_output_dropout: the model's output is the output of the dropout layer '4' (Dropout, p=0.5)...
    """
    _check_model(model)
    batch = _batches.check_batch(batch)
    with _preserved(model, batch):
        model.train()
        sites, functional, outputs = _record_passes(model, batch, passes=1, keep_storage=True)
    dropout_calls = _dropout_calls(functional[0])
    if not dropout_layers(model) and not dropout_calls:
        return _no_layers("no_output_dropout", [], _unseen(model, functional[0]))
    prediction = _batches.pick(outputs[0], output, "check_no_output_dropout")
    out_storages = {_storage(prediction)} if prediction.numel() > 0 else set()
    culprits = []
    for site in sites[0]:
        p = _configured_p(site.module)
        if site.storage is not None and site.numel > 0 and p != 0.0 and site.storage in out_storages:
            culprits.append(f"the dropout layer {_label(site.name, site.module)}")
    for call in dropout_calls:
        if call.storage is not None and call.training and call.p != 0.0 and call.numel:
            if call.storage in out_storages:
                culprits.append(f"a call of {call.function} in forward (p={call.p:g})")
    if culprits:
        return CheckResult(
            "no_output_dropout",
            False,
            f"the model's output is the output of {_listed(culprits)}: in training, a fraction p of the "
            "predictions is set to 0 and the rest multiplied by 1/q, so the loss is computed on corrupted "
            "predictions (for regression, the targets can never be fitted). Fix: remove the dropout after "
            "the last layer; put dropout only between hidden layers.",
        )
    found = len(sites[0]) + len([c for c in dropout_calls if c.training])
    return CheckResult(
        "no_output_dropout",
        True,
        f"none of the {found} dropout calls of a training-mode forward pass produces the model's output "
        "(dropout sits before the last layer).",
    )


def check_mc_batchnorm(
    model: nn.Module, batch: Any, predict: Callable[[nn.Module, Any], Any]
) -> CheckResult:
    """Does your Monte Carlo dropout prediction leave BatchNorm alone and restore the model's modes?

    Monte Carlo dropout averages several predictions with dropout switched on. Switching it on with
    ``model.train()`` also puts every BatchNorm layer in training mode: it then normalizes each pass with
    the mean and variance of the batch (a prediction depends on the other examples in the batch)
    and overwrites the running statistics learned in training. How: the model is put in evaluation mode
    (as after training), ``predict(model, batch)`` is called with forward pre-hooks on every BatchNorm
    layer; the check fails if a BatchNorm layer ran in training mode, if its running statistics changed,
    or if ``predict`` left any submodule in a different mode than it found it. The message also notes
    when no dropout layer ran in training mode (then the "samples" do not vary). Afterwards the modes,
    buffers and torch's global RNG are restored, whatever ``predict`` did.

    Args:
        model: any ``nn.Module``.
        batch: a batch it accepts (a tensor, tuple or dict, see :func:`diagnose`).
        predict: your prediction function, called as ``predict(model, batch)`` on a copy of the batch;
            its result is not used.

    Example:
        >>> from dropoutlib.experiments.bugs import bn_mlp, careful_mc_predict, naive_mc_predict
        >>> _ = torch.manual_seed(0)
        >>> model, x = bn_mlp(4, [8], 3, p=0.5), torch.randn(16, 4)
        >>> check_mc_batchnorm(model, x, lambda m, xs: careful_mc_predict(m, xs, samples=4)).passed
        True
        >>> result = check_mc_batchnorm(model, x, lambda m, xs: naive_mc_predict(m, xs, samples=4))
        >>> print(result)  # doctest: +ELLIPSIS
        FAIL mc_batchnorm: during predict, the BatchNorm layer '1' ran in training mode...
    """
    _check_model(model)
    batch = _batches.check_batch(batch)
    if not callable(predict):
        raise TypeError(
            "predict must be a callable predict(model, batch), e.g. your Monte Carlo dropout function, "
            f"got predict={predict!r} ({type(predict).__name__})"
        )
    norms = [(name, m) for name, m in model.named_modules() if isinstance(m, _BatchNorm)]
    drops = dropout_layers(model)
    ran_training: dict[str, bool] = {}
    dropout_on: list[bool] = []
    handles = []
    with _preserved(model, batch):
        model.eval()
        before_modes = [(name, m.training) for name, m in model.named_modules()]
        before = {
            name: {key: buf.detach().clone() for key, buf in m._buffers.items() if buf is not None}
            for name, m in norms
        }
        try:
            for name, m in norms:
                handles.append(
                    m.register_forward_pre_hook(
                        lambda mod, args, name=name: ran_training.__setitem__(
                            name, ran_training.get(name, False) or mod.training
                        )
                    )
                )
            for _, m in drops:
                handles.append(m.register_forward_pre_hook(lambda mod, args: dropout_on.append(mod.training)))
            predict(model, _batches.clone(batch))  # predict (or an in-place first layer) may change it
        finally:
            for handle in handles:
                handle.remove()
        after_modes = [(name, m.training) for name, m in model.named_modules()]
        changed_stats = []
        for name, m in norms:
            moved = []
            for key, saved in before[name].items():
                now = m._buffers.get(key)
                if now is None or now.shape != saved.shape or not torch.equal(now, saved):
                    moved.append(key)
            if moved:
                changed_stats.append(f"{_label(name)} ({', '.join(moved)})")
    in_training = [_label(name) for name, on in ran_training.items() if on]
    not_restored = [
        f"{_label(name)} ({'training' if now else 'eval'} instead of {'training' if was else 'eval'})"
        for (name, was), (_, now) in zip(before_modes, after_modes, strict=True)
        if was != now
    ]
    problems = []
    if in_training:
        kind = "layer" if len(in_training) == 1 else "layers"
        problems.append(
            f"during predict, the BatchNorm {kind} {_listed(in_training)} ran in training mode: each pass "
            "normalized with the mean and variance of the batch instead of the running statistics, so a "
            "prediction depends on the other examples in the batch"
        )
    if changed_stats:
        problems.append(
            f"predict changed the running statistics of {_listed(changed_stats)}: the statistics learned "
            "in training are overwritten by the test batch's"
        )
    if not_restored:
        problems.append(
            f"predict left {_listed(not_restored)} in a different mode than it found them; restore every "
            "module's mode at the end"
        )
    dropout_note = ""
    if drops and not any(dropout_on):
        dropout_note = (
            " Note: no dropout layer ran in training mode during predict, so its samples do not vary."
        )
    if problems:
        return CheckResult(
            "mc_batchnorm",
            False,
            "; ".join(problems)
            + ". Likely cause: model.train() to switch dropout on. Fix: call model.eval(), then .train() "
            "on the dropout layers only (as chapter 11's careful_mc_predict does), and restore the modes "
            "afterwards." + dropout_note,
        )
    if not norms:
        message = "no BatchNorm layers found, so Monte Carlo dropout cannot disturb them"
    else:
        message = (
            f"during predict, every BatchNorm layer ({len(norms)}) stayed in evaluation mode and its running "
            "statistics did not change"
        )
    return CheckResult("mc_batchnorm", True, message + "; the modes were restored." + dropout_note)


def diagnose(
    model: nn.Module,
    batch: Any,
    *,
    expected_p: float | Mapping[str, float] | None = None,
    predict: Callable[[nn.Module, Any], Any] | None = None,
    output: Callable[[Any], torch.Tensor] | None = None,
) -> Report:
    """Run every check that applies to ``model`` on ``batch`` and return a :class:`Report`.

    ``batch`` is a tensor (called as ``model(batch)``), a tuple (``model(*batch)``) or a dict
    (``model(**batch)``, the way Hugging Face models are called); every pass runs on a copy of it.
    ``output`` picks the model's prediction from what it returns, for :func:`check_no_output_dropout`
    (default: the tensor itself, the first element of a tuple, ``out["logits"]`` or ``out.logits``);
    :func:`check_eval_deterministic` compares every tensor the model returns.

    In order: :func:`check_eval_deterministic`, :func:`check_masks_vary`, :func:`check_drop_rate`
    (with ``expected_p``), :func:`check_no_output_dropout`, and :func:`check_mc_batchnorm` when a
    ``predict(model, batch)`` function is given. :func:`check_eval_mode` is not run: a model is in training
    mode when built and during training, so its mode says something only at the moment you evaluate;
    call that check there. The model's modes, parameters, buffers, torch's global RNG state and the batch
    are left exactly as they were. A check with nothing to measure (the mask checks on a model without
    dropout layers, or whose only dropout is inside attention) reports SKIP, not PASS. Call
    :meth:`Report.raise_on_failure` to turn failures into an exception.

    Example:
        >>> from dropoutlib.course.models import mlp
        >>> from dropoutlib.experiments.bugs import mlp_with_output_dropout
        >>> _ = torch.manual_seed(0)
        >>> x = torch.randn(64, 8)
        >>> print(diagnose(mlp(8, [32, 32], 2, p=0.5), x))  # doctest: +ELLIPSIS
        PASS eval_deterministic: ...
        PASS masks_vary: ...
        PASS drop_rate: ...
        PASS no_output_dropout: ...
        >>> report = diagnose(mlp_with_output_dropout(8, [32], 1, p=0.5), x)
        >>> [result.name for result in report.failures]
        ['no_output_dropout']
        >>> [result.status for result in diagnose(mlp(8, [32], 2), x).results]  # no dropout at all
        ['pass', 'skip', 'skip', 'skip']
    """
    _check_model(model)
    batch = _batches.check_batch(batch)
    output = _batches.check_output(output)
    if predict is not None and not callable(predict):
        raise TypeError(
            f"predict must be None or a callable predict(model, batch), got predict={predict!r} "
            f"({type(predict).__name__})"
        )
    _check_expected_p(expected_p, [name for name, _ in dropout_layers(model)])
    results = [
        check_eval_deterministic(model, batch),
        check_masks_vary(model, batch),
        check_drop_rate(model, batch, expected_p=expected_p),
        check_no_output_dropout(model, batch, output=output),
    ]
    if predict is not None:
        results.append(check_mc_batchnorm(model, batch, predict))
    return Report(tuple(results))
