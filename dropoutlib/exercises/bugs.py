"""Checks for the exercises of chapter 11, "Dropout bugs and how to catch them".

Each ``check_*`` takes the student's function, prints one line when it is right, and otherwise raises
an ``AssertionError`` whose message names the mistake. A stub (returning ``None`` or ``...``, raising
``NotImplementedError``) never passes; something that is not a function is a ``TypeError``. The checks
draw their own random numbers and leave torch's global generator as they found it.

Notation: ``p`` is the probability of dropping a unit, ``q = 1 - p`` the probability of keeping it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from dropoutlib.course._threads import torch_threads
from dropoutlib.course.models import mlp
from dropoutlib.exercises._answers import as_number, call_answer, describe, require_function
from dropoutlib.experiments.bugs import FunctionalDropoutMLP, bn_mlp

__all__ = ["check_eval_determinism_test", "check_mc_predict", "check_output_dropout_optimum"]

_SEED = 11


# --- a diagnostic: is the model deterministic in evaluation mode? ---------------------------------


class _NoisyInEval(nn.Module):
    """A linear layer that adds Gaussian noise whatever its mode (randomness left on at test time)."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x) + 0.01 * torch.randn(x.shape[0], 3)


def _mode_recorder(model: nn.Module) -> tuple[list[bool], Any]:
    """Record ``model.training`` at every forward call of ``model``."""
    seen: list[bool] = []
    handle = model.register_forward_pre_hook(lambda module, args: seen.append(module.training))
    return seen, handle


def _determinism_verdict(answer: Callable[..., Any], model: nn.Module, x: torch.Tensor, what: str) -> bool:
    call = f"is_deterministic(model, x) on {what}"
    before = {name: t.detach().clone() for name, t in model.state_dict().items()}
    modes = [m.training for m in model.modules()]
    seen, handle = _mode_recorder(model)
    try:
        result = call_answer(answer, model, x.clone())
    finally:
        handle.remove()
    if isinstance(result, torch.Tensor) and result.numel() == 1 and result.dtype == torch.bool:
        result = bool(result.item())
    if not isinstance(result, bool):
        raise AssertionError(f"{call} returned {describe(result)}: return True or False")
    changed = [name for name, t in model.state_dict().items() if not torch.equal(t, before[name])]
    if changed:
        raise AssertionError(
            f"{call} changed the model's {', '.join(changed)}: a diagnostic must "
            "leave the weights alone (run the passes under torch.no_grad())"
        )
    if [m.training for m in model.modules()] != modes:
        was = "training" if modes[0] else "evaluation"
        raise AssertionError(
            f"{call} left the model in another mode than it was handed in ({was} "
            "mode): remember model.training and restore it with model.train(was_training)"
        )
    if len(seen) < 2:
        raise AssertionError(
            f"{call} ran the model {len(seen)} time(s): compare at least two forward passes on the same input"
        )
    if any(seen):
        raise AssertionError(
            f"{call} ran a forward pass with the model in training mode: the question is "
            "whether evaluation mode is deterministic, so call model.eval() before the passes"
        )
    return result


def check_eval_determinism_test(is_deterministic: Callable[[nn.Module, torch.Tensor], Any]) -> None:
    """Check a diagnostic that tells whether a model is deterministic in evaluation mode.

    ``is_deterministic(model, x)`` must put the model in evaluation mode, run it at least twice on
    ``x``, return ``True`` when the outputs are identical and ``False`` otherwise, and hand the model
    back in the mode it was in, weights untouched. The check runs it on correct models (with
    ``nn.Dropout``, with ``F.dropout(..., training=self.training)``, without dropout; handed over in
    training or evaluation mode) and on buggy ones (``F.dropout`` without ``training=``, noise that
    ignores the mode).

    Example:
        >>> def is_deterministic(model, x):
        ...     was_training = model.training
        ...     model.eval()
        ...     with torch.no_grad():
        ...         same = torch.equal(model(x), model(x))
        ...     model.train(was_training)
        ...     return same
        >>> check_eval_determinism_test(is_deterministic)
        Correct: True for 4 correct models, False for 3 with randomness left on.
    """
    require_function(is_deterministic, "diagnostic is_deterministic(model, x)")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_SEED)
        x = torch.randn(16, 8)
        correct = [
            ("mlp(8, [32], 3, p=0.5) in training mode", mlp(8, [32], 3, p=0.5).train()),
            ("mlp(8, [32], 3, p=0.5) in evaluation mode", mlp(8, [32], 3, p=0.5).eval()),
            (
                "an MLP with F.dropout(h, p, training=self.training)",
                FunctionalDropoutMLP(8, 32, 3, 0.5).train(),
            ),
            ("mlp(8, [32], 3) without dropout", mlp(8, [32], 3).train()),
        ]
        buggy = [
            (
                "an MLP with F.dropout(h, p) (training= left out)",
                FunctionalDropoutMLP(8, 32, 3, 0.5, respect_training=False).train(),
            ),
            (
                "the same MLP, handed over in evaluation mode",
                FunctionalDropoutMLP(8, 32, 3, 0.5, respect_training=False).eval(),
            ),
            ("a layer that adds noise whatever its mode", _NoisyInEval().train()),
        ]
        for what, model in correct:
            if not _determinism_verdict(is_deterministic, model, x, what):
                raise AssertionError(
                    f"is_deterministic returned False for {what}, which is deterministic in evaluation "
                    "mode: compare the outputs exactly (torch.equal) or with a tiny tolerance"
                )
        for what, model in buggy:
            if _determinism_verdict(is_deterministic, model, x, what):
                raise AssertionError(
                    f"is_deterministic returned True for {what}, whose evaluation-mode outputs differ "
                    "from call to call: compare two separate forward passes, without re-seeding the "
                    "generator between them"
                )
    print(f"Correct: True for {len(correct)} correct models, False for {len(buggy)} with randomness left on.")


# --- Monte Carlo dropout that leaves BatchNorm alone ----------------------------------------------


def _mc_test_model() -> tuple[nn.Sequential, torch.Tensor]:
    """A BatchNorm MLP whose running statistics differ clearly from any test batch's statistics."""
    model = bn_mlp(8, [24, 24], 4, p=0.5)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm1d):
            module.running_mean.normal_(0.0, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.num_batches_tracked.fill_(100)
    with torch.no_grad():
        model[-1].weight.mul_(6.0)  # large logits: the mean of softmaxes differs from the softmax of means
    x = torch.randn(12, 8) * 1.5 + 0.7
    return model.eval(), x


def _recorders(model: nn.Module) -> tuple[dict[str, list[bool]], list[Any]]:
    seen: dict[str, list[bool]] = {"batchnorm": [], "dropout": []}
    handles = []
    for module in model.modules():
        kind = (
            "batchnorm"
            if isinstance(module, nn.modules.batchnorm._BatchNorm)
            else "dropout"
            if isinstance(module, nn.Dropout)
            else None
        )
        if kind is not None:
            handles.append(
                module.register_forward_pre_hook(lambda m, args, kind=kind: seen[kind].append(m.training))
            )
    return seen, handles


def _as_probabilities(result: Any, shape: tuple[int, int], call: str) -> torch.Tensor:
    if not isinstance(result, torch.Tensor):
        raise AssertionError(f"{call} returned {describe(result)}: return a tensor of shape {shape}")
    if tuple(result.shape) != shape:
        raise AssertionError(
            f"{call} returned a tensor of shape {tuple(result.shape)}, expected {shape} "
            "(one row of class probabilities per example)"
        )
    probs = result.detach().double()
    if not torch.allclose(probs.sum(dim=1), torch.ones(shape[0], dtype=torch.float64), atol=1e-4) or (
        probs.min() < -1e-6
    ):
        raise AssertionError(
            f"{call}: the rows do not sum to 1; return the average of the softmax "
            "probabilities over the samples, not of the logits"
        )
    return probs


def _reference_samples(model: nn.Module, x: torch.Tensor, samples: int) -> torch.Tensor:
    """``samples`` logits per example with only dropout in training mode, shape ``(samples, n, k)``.

    One pass over ``samples`` stacked copies of ``x``: with BatchNorm in evaluation mode every row is
    computed on its own, with its own dropout mask.
    """
    model.eval()
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.train()
    with torch.no_grad():
        logits = model(x.repeat(samples, 1)).double().reshape(samples, len(x), -1)
    model.eval()
    return logits


def check_mc_predict(mc_predict: Callable[[nn.Module, torch.Tensor, int], Any]) -> None:
    """Check a Monte Carlo dropout prediction that leaves BatchNorm in evaluation mode.

    ``mc_predict(model, x, samples)`` must return the mean of the softmax probabilities over
    ``samples`` forward passes with fresh dropout masks, shape ``(n, n_classes)``, while every
    BatchNorm layer keeps normalizing with its running statistics (evaluation mode) and does not
    update them; it must hand every module back in the mode it was in (the check hands the model
    over in evaluation mode, in training mode and in a mixed mode). The check uses a
    ``bn_mlp(8, [24, 24], 4, p=0.5)`` whose running statistics differ from the test batch's, records
    the mode of every BatchNorm and dropout layer during your call, compares your probabilities with a
    long Monte Carlo run (within 6 standard errors), and predicts a single example alone.

    Example:
        >>> from dropoutlib.experiments.bugs import careful_mc_predict
        >>> check_mc_predict(careful_mc_predict)
        Correct: dropout sampled, BatchNorm in eval mode, its statistics untouched.
    """
    require_function(mc_predict, "function mc_predict(model, x, samples)")
    samples = 200
    call = f"mc_predict(model, x, samples={samples})"
    with torch.random.fork_rng(devices=[]), torch_threads(1):
        torch.manual_seed(_SEED)
        model, x = _mc_test_model()
        buffers = {name: t.clone() for name, t in model.named_buffers()}
        seen, handles = _recorders(model)
        try:
            result = call_answer(mc_predict, model, x.clone(), samples)
        finally:
            for handle in handles:
                handle.remove()
        if any(seen["batchnorm"]):
            raise AssertionError(
                f"{call} ran BatchNorm in training mode: model.train() switches every layer, BatchNorm "
                "included, which then normalizes with the statistics of the batch being predicted. "
                "Put the model in evaluation mode and switch only its nn.Dropout layers to training mode"
            )
        moved = [name for name, t in model.named_buffers() if not torch.equal(t, buffers[name])]
        if moved:
            raise AssertionError(
                f"{call} changed BatchNorm's running statistics ({', '.join(moved)}): "
                "prediction must not update them"
            )
        if not any(seen["dropout"]):
            raise AssertionError(
                f"{call} never ran a dropout layer in training mode: every sample is the "
                "same network, so the average is just the evaluation-mode prediction. "
                "Switch the nn.Dropout layers to training mode for the passes"
            )
        if any(m.training for m in model.modules()):
            left = sorted({type(m).__name__ for m in model.modules() if m.training})
            raise AssertionError(
                f"{call} left layers in training mode ({', '.join(left)}); the model was "
                "handed over in evaluation mode: restore every layer's mode afterwards"
            )
        probs = _as_probabilities(result, (len(x), 4), call)
        logits = _reference_samples(model, x, 4000)
        softmax = torch.softmax(logits, dim=-1)
        reference = softmax.mean(dim=0)
        tolerance = 6 * softmax.std(dim=0) * math.sqrt(1 / samples + 1 / 4000) + 1e-6
        if not bool(((probs - reference).abs() <= tolerance).all()):
            of_mean_logits = torch.softmax(logits.mean(dim=0), dim=-1)
            if (probs - of_mean_logits).abs().max() < (probs - reference).abs().max() / 3:
                raise AssertionError(
                    f"{call} looks like the softmax of the average logits: average the "
                    "softmax probabilities of the samples instead"
                )
            raise AssertionError(
                f"{call} differs from the mean softmax of a long Monte Carlo run by up to "
                f"{(probs - reference).abs().max():.3f} (more than 6 standard errors): average "
                "softmax(model(x)) over the samples, with only dropout in training mode"
            )
        single = _as_probabilities(
            call_answer(mc_predict, model, x[:1].clone(), samples),
            (1, 4),
            "mc_predict(model, x[:1], samples) (one example alone)",
        )
        if not torch.allclose(single, reference[:1], atol=float(tolerance[0].max()) + 1e-6):
            raise AssertionError(
                "one example predicted alone gets other probabilities than in a batch: "
                "the prediction of an example must not depend on its companions"
            )
        _check_modes_restored(mc_predict, model, x, samples)
    print("Correct: dropout sampled, BatchNorm in eval mode, its statistics untouched.")


def _modes(model: nn.Module) -> list[tuple[str, bool]]:
    return [(name or type(model).__name__, module.training) for name, module in model.named_modules()]


def _check_modes_restored(mc_predict: Callable[..., Any], model: nn.Module, x: torch.Tensor,
                          samples: int) -> None:
    """Hand the model over in training mode (as in the middle of training), then in a mixed mode (one
    layer in training mode, the rest in evaluation mode): BatchNorm must still run in evaluation mode,
    and each module must get its own mode back, not the mode ``model.eval()`` or ``model.train(flag)``
    gives all of them."""
    first_linear = next(m for m in model.modules() if isinstance(m, nn.Linear))
    handovers = {
        "training mode (as in the middle of training)": lambda: model.train(),
        "a mixed mode (the model in evaluation mode, its first Linear in training mode)": lambda: (
            model.eval(), first_linear.train()),
    }
    for handed, arrange in handovers.items():
        arrange()
        before = _modes(model)
        buffers = {name: t.clone() for name, t in model.named_buffers()}
        call = f"mc_predict(model, x, samples={samples}) on a model in {handed}"
        seen, handles = _recorders(model)
        try:
            call_answer(mc_predict, model, x.clone(), samples)
        finally:
            for handle in handles:
                handle.remove()
        if any(seen["batchnorm"]):
            raise AssertionError(
                f"{call} ran BatchNorm in training mode: put the model in evaluation mode for the passes "
                "whatever mode it arrives in, and switch only its nn.Dropout layers to training mode"
            )
        if any(not torch.equal(t, buffers[name]) for name, t in model.named_buffers()):
            raise AssertionError(f"{call} changed BatchNorm's running statistics: prediction must not")
        after = _modes(model)
        changed = [name for (name, was), (_, now) in zip(before, after, strict=True) if was != now]
        if not changed:
            continue
        if all(was for _, was in before) and not any(now for _, now in after):
            raise AssertionError(
                f"{call} handed it back in evaluation mode: the model was handed over in training mode, "
                "and your answer ends with model.eval(), which is right only for a model that was "
                "in evaluation mode. Save every module's mode before the passes "
                "([m.training for m in model.modules()]) and restore each afterwards"
            )
        raise AssertionError(
            f"{call} changed the mode of {', '.join(changed)}: restore each module's own mode (save "
            "[m.training for m in model.modules()] before the passes and set every flag back after), "
            "not one mode for the whole model as model.eval() or model.train(was_training) do"
        )
    model.eval()


# --- where dropout on the output sends the prediction ---------------------------------------------


def check_output_dropout_optimum(optimum: Callable[[float, float], Any]) -> None:
    """Check the evaluation-mode prediction favoured by training with inverted dropout on the output.

    In training, the network's output ``y`` for an example with target ``t`` is passed through
    inverted dropout, ``m * y / q`` with ``m ~ Bernoulli(q)``, and the squared error is minimized.
    ``optimum(t, p)`` must return the ``y`` that minimizes the expected loss
    ``E[(m y / q - t)^2]``: the value a flexible network predicts once dropout is off.

    Example:
        >>> check_output_dropout_optimum(lambda t, p: (1 - p) * t)
        Correct: y* = q t, so in eval mode the prediction is shrunk by q = 1 - p.
    """
    require_function(optimum, "function optimum(t, p)")
    for t, p in ((4.5, 0.2), (-2.0, 0.5), (10.0, 0.1), (3.0, 0.0), (1.5, 0.75)):
        q = 1.0 - p
        got = as_number(call_answer(optimum, t, p), f"optimum({t}, {p})")
        want = q * t
        if math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-9):
            continue
        call = f"optimum(t={t}, p={p}) = {got:.4g}"
        if math.isclose(got, t, rel_tol=1e-6):
            raise AssertionError(
                f"{call} is the target itself: that is where dropout's expectation is "
                "right, but the loss is quadratic: expand E[(m y/q - t)^2] and use E[m^2] = q"
            )
        if math.isclose(got, t / q, rel_tol=1e-6):
            raise AssertionError(
                f"{call} is t / q: you divided where the minimum multiplies; "
                "E[(m y/q)^2] = y^2 / q, so the derivative gives y = q t"
            )
        if math.isclose(got, p * t, rel_tol=1e-6):
            raise AssertionError(
                f"{call} is p t: p is the DROP probability; the factor is the keep probability q = 1 - p"
            )
        if math.isclose(got, q * q * t, rel_tol=1e-6):
            raise AssertionError(f"{call} is q^2 t: E[m^2] = E[m] = q for a Bernoulli mask, not q^2")
        raise AssertionError(f"{call}, expected {want:.4g}")
    print("Correct: y* = q t, so in eval mode the prediction is shrunk by q = 1 - p.")
