r"""Checks for the exercises of chapter 9, "Dropout and batch normalization".

Each ``check_*`` takes the student's function, prints one line when it is right, and otherwise raises
an ``AssertionError`` whose message names the mistake. A stub (returning ``None`` or ``...``, raising
``NotImplementedError``) never passes. Passing something that is not a function raises ``TypeError``.
The checks draw their own random numbers without disturbing the caller's generators.

Notation: ``p`` is the probability of dropping a unit, ``q = 1 - p`` the probability of keeping it.
In training, inverted dropout passes :math:`m x / q` with :math:`m \sim \mathrm{Bernoulli}(q)`; in
evaluation it passes :math:`x`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from dropoutlib.exercises._answers import as_number, call_answer, describe, require_function
from dropoutlib.experiments.batchnorm import batchnorm_layers, train_mode_variance

__all__ = ["check_mixed_variance", "check_recalibrate_batchnorm", "check_train_mode_variance"]

_SEED = 9
_TRACKED = 50  # batches the stale statistics claim to have seen


def _close(got: float, want: float, tol: float = 1e-6) -> bool:
    return math.isclose(got, want, rel_tol=tol, abs_tol=1e-12)


# --- one feature ---------------------------------------------------------------------------------------


def check_train_mode_variance(train_variance: Callable[[float, float, float], Any]) -> None:
    r"""Check the variance of a feature after inverted dropout, in training mode.

    ``train_variance(mean, var, p)`` gets the mean :math:`\mu` and the variance :math:`\sigma^2` of a
    feature :math:`x` and the drop probability ``p`` (< 1), and returns the variance of
    :math:`m x / q` (:math:`m \sim \mathrm{Bernoulli}(q)` independent of :math:`x`):
    :math:`(\sigma^2 + \mu^2)/q - \mu^2`.

    Example:
        >>> check_train_mode_variance(lambda mean, var, p: (var + mean**2) / (1 - p) - mean**2)
        Correct: (sigma^2 + mu^2)/q - mu^2; with a mean, the shift is larger than 1/q.
    """
    require_function(train_variance, "train_variance")
    cases = (
        (1.0, 1.0, 0.5),
        (2.0, 0.5, 0.2),
        (-1.5, 2.0, 0.4),
        (0.0, 3.0, 0.3),
        (0.7, 0.0, 0.6),
        (3.0, 1.0, 0.0),
    )
    for mean, var, p in cases:
        call = f"train_variance({mean}, {var}, {p})"
        got = as_number(call_answer(train_variance, mean, var, p), call)
        want = train_mode_variance(mean, var, p)
        if _close(got, want):
            continue
        q = 1.0 - p
        mistakes = (
            (
                var / q,
                "that is sigma^2/q, right only for a zero mean: the mask also multiplies the mean, "
                "which adds (p/q) mu^2",
            ),
            (
                (var + mean**2) / q,
                "that is the second moment E[y^2]; subtract the squared mean, mu^2 "
                "(the mean is mu in both modes)",
            ),
            (var, "that is the variance in evaluation mode, where dropout passes x unchanged"),
            (
                q * (var + mean**2) - (q * mean) ** 2,
                "that is the variance of m x, without inverted dropout's 1/q scaling",
            ),
            (var / q + p * mean**2, "the mean's term is (p/q) mu^2, not p mu^2"),
            (
                (var + mean**2) / p - mean**2 if p > 0 else math.nan,
                "you swapped p and q: q = 1 - p is the keep probability",
            ),
            (
                (1 + p * mean**2 / var) / q if var > 0 else math.nan,
                "that is the ratio of the two variances; return the variance",
            ),
            (var * q, "dropout adds variance in training: divide by q, do not multiply"),
        )
        for value, message in mistakes:
            if _close(got, value):
                raise AssertionError(f"{call} returned {got:.4g}: {message}")
        raise AssertionError(f"{call} returned {got:.4g}, expected (sigma^2 + mu^2)/q - mu^2 = {want:.4g}")
    print("Correct: (sigma^2 + mu^2)/q - mu^2; with a mean, the shift is larger than 1/q.")


# --- a weighted sum of dropped units ------------------------------------------------------------------


def _mixed_cases() -> list[tuple[torch.Tensor, torch.Tensor, float]]:
    """Activations (non-negative, correlated, with different means) and weights of both signs."""
    generator = torch.Generator().manual_seed(_SEED)
    cases = []
    for n, k, p in ((400, 6, 0.4), (500, 10, 0.2), (300, 4, 0.5)):
        shared = torch.randn(n, 1, generator=generator, dtype=torch.float64)
        own = torch.randn(n, k, generator=generator, dtype=torch.float64)
        offsets = torch.linspace(-0.5, 1.0, k, dtype=torch.float64)
        a = torch.relu(0.8 * shared + 0.6 * own + offsets)
        w = torch.randn(k, generator=generator, dtype=torch.float64)
        w[0] = abs(w[0]) + 0.5  # weights of both signs
        w[1] = -abs(w[1]) - 0.5
        cases.append((a, w, p))
    return cases


def _mixed_variants(a: torch.Tensor, w: torch.Tensor, p: float) -> dict[str, float]:
    q = 1.0 - p
    z = a @ w
    signal = z.var(correction=0).item()
    second = (a**2).mean(dim=0)
    spread = a.var(dim=0, correction=0)
    noise = float((w**2 * second).sum())
    return {
        "want": signal + p / q * noise,
        "noise only": p / q * noise,
        "variance not second moment": signal + p / q * float((w**2 * spread).sum()),
        "independent": float((w**2 * (spread / q + p / q * a.mean(dim=0) ** 2)).sum()),
        "no 1/q": signal + p * noise,
        "pq": signal + p * q * noise,
        "eval": signal,
        "ratio": (signal + p / q * noise) / signal,
        "swapped": signal + q / p * noise,
    }


def check_mixed_variance(mixed_variance: Callable[[torch.Tensor, torch.Tensor, float], Any]) -> None:
    r"""Check the training-mode variance of a weighted sum of dropped units.

    ``mixed_variance(a, w, p)`` gets activations ``a`` of shape ``(n, k)`` (the units before dropout,
    one row per example), weights ``w`` of shape ``(k,)`` and the drop probability ``p``, and returns
    the variance over examples and masks of :math:`z = \sum_i w_i m_i a_i / q` (one mask per example
    and unit). With variances over the ``n`` examples divided by ``n``:

    .. math::

        \mathrm{Var}_\text{train}(z) = \mathrm{Var}(a w) + \frac{p}{q} \sum_i w_i^2\,\overline{a_i^2},

    where :math:`\overline{a_i^2}` is the mean of :math:`a_i^2` over the examples. (The unbiased
    variance, divided by ``n - 1``, is accepted too.)

    Example:
        >>> check_mixed_variance(lambda a, w, p: (a @ w).var(correction=0)
        ...                      + p / (1 - p) * (w**2 * (a**2).mean(dim=0)).sum())
        Correct: Var(a w) + (p/q) sum_i w_i^2 mean(a_i^2); the covariances stay in the signal.
    """
    require_function(mixed_variance, "mixed_variance")
    messages = {
        "noise only": "that is only the noise the masks add; add the variance z has without dropout, "
        "Var(a w)",
        "variance not second moment": "the mask multiplies the whole activation, its mean included: "
        "the noise uses the mean of a_i^2, not the variance of a_i",
        "independent": "you added the units' variances as if the units were uncorrelated; the "
        "covariances between units stay in the signal: compute Var(a w) directly, "
        "then add the noise",
        "no 1/q": "the noise of m a / q has variance (p/q) a^2, not p a^2",
        "pq": "that is the noise without inverted dropout's 1/q scaling; with it, the factor is p/q",
        "eval": "that is the variance in evaluation mode; in training the masks add noise",
        "ratio": "that is the ratio of the training-mode to the evaluation-mode variance; return the "
        "variance",
        "swapped": "you swapped p and q: the noise factor is p/q",
    }
    for a, w, p in _mixed_cases():
        call = f"mixed_variance(a, w, p={p}) with a of shape {tuple(a.shape)}"
        result = call_answer(mixed_variance, a.clone(), w.clone(), p)
        got = as_number(result, call)
        variants = _mixed_variants(a, w, p)
        n = a.shape[0]
        if _close(got, variants["want"], 1e-6) or _close(got, variants["want"] * n / (n - 1), 1e-6):
            continue
        unbiased = n / (n - 1)
        for name, message in messages.items():
            if _close(got, variants[name], 1e-6) or _close(got, variants[name] * unbiased, 1e-6):
                raise AssertionError(f"{call} returned {got:.4g}: {message}")
        raise AssertionError(
            f"{call} returned {got:.4g}, expected Var(a w) + (p/q) sum_i w_i^2 mean(a_i^2) = "
            f"{variants['want']:.4g}"
        )
    print("Correct: Var(a w) + (p/q) sum_i w_i^2 mean(a_i^2); the covariances stay in the signal.")


# --- re-estimating BatchNorm statistics --------------------------------------------------------------


def _recalibration_case() -> tuple[nn.Sequential, torch.Tensor]:
    """A small network with dropout before two BN layers, stale statistics and mixed modes."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_SEED)
        model = nn.Sequential(
            nn.Linear(5, 8),
            nn.Dropout(0.5),
            nn.BatchNorm1d(8),
            nn.ReLU(),
            nn.Linear(8, 6),
            nn.Dropout(0.5),
            nn.BatchNorm1d(6),
            nn.ReLU(),
            nn.Linear(6, 3),
        )
        x = torch.randn(400, 5) + torch.linspace(-1.0, 2.0, 5)
    for layer in batchnorm_layers(model):
        with torch.no_grad():
            layer.running_mean.fill_(3.0)
            layer.running_var.fill_(7.0)
            layer.num_batches_tracked.fill_(_TRACKED)
            layer.weight.uniform_(0.5, 1.5)
            layer.bias.uniform_(-0.5, 0.5)
    model.train()
    model[5].eval()  # one module in another mode: modes must be restored one by one
    return model, x


def _eval_inputs(model: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """Each BN layer's input in evaluation mode, BN layers normalizing with their running statistics."""
    captured: list[torch.Tensor] = []
    handles = [
        layer.register_forward_hook(lambda _m, inputs, _o: captured.append(inputs[0].detach().double()))
        for layer in batchnorm_layers(model)
    ]
    modes = [module.training for module in model.modules()]
    model.eval()
    try:
        with torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
        for module, mode in zip(model.modules(), modes, strict=True):
            module.training = mode
    return captured


def check_recalibrate_batchnorm(recalibrate: Callable[[nn.Module, torch.Tensor], Any]) -> None:
    """Check a function that re-estimates BatchNorm statistics with dropout switched off.

    ``recalibrate(model, x)`` gets a network whose BN layers hold stale running statistics and
    returns the same ``model`` after one pass over ``x`` as a single batch, with every BN layer's
    ``running_mean`` and ``running_var`` replaced by the mean and the variance of the input that layer
    receives in evaluation mode (dropout off, earlier BN layers already re-estimated). The weights,
    every module's ``training`` flag and every BN layer's ``momentum`` must be as they were.

    Example:
        >>> from dropoutlib.experiments.batchnorm import recalibrate_batchnorm
        >>> check_recalibrate_batchnorm(recalibrate_batchnorm)
        Correct: dropout off, BN statistics reset and re-estimated in one pass, modes and momenta restored.
    """
    require_function(recalibrate, "recalibrate")
    model, x = _recalibration_case()
    modes = {name: module.training for name, module in model.named_modules()}
    momenta = [layer.momentum for layer in batchnorm_layers(model)]
    weights = {
        name: value.detach().clone()
        for name, value in model.state_dict().items()
        if not name.endswith(("running_mean", "running_var", "num_batches_tracked"))
    }
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_SEED + 1)
        result = call_answer(recalibrate, model, x.clone())
    if result is not model:
        raise AssertionError(
            f"return the model you were given (recalibrated in place), got {describe(result)}"
        )
    changed = [
        name
        for name, value in model.state_dict().items()
        if name in weights and not torch.equal(value, weights[name])
    ]
    if changed:
        raise AssertionError(
            f"your function changed parameters ({', '.join(changed)}): only the running statistics "
            "should change (no optimizer step, no training)"
        )
    layers = batchnorm_layers(model)
    if all(torch.equal(layer.running_var, torch.full_like(layer.running_var, 7.0)) for layer in layers):
        raise AssertionError(
            "the running statistics did not change: BN layers update them only in training mode, "
            "so put the BN layers (and only them) in training mode during the pass"
        )
    if any(
        torch.equal(layer.running_var, torch.ones_like(layer.running_var))
        and torch.equal(layer.running_mean, torch.zeros_like(layer.running_mean))
        for layer in layers
    ):
        raise AssertionError(
            "the running statistics were reset (mean 0, variance 1) but did not change during the pass: "
            "BN layers update them only in training mode, so put the BN layers in training mode"
        )
    targets = _eval_inputs(model, x)
    first = targets[0].var(dim=0)
    got_first = layers[0].running_var.detach().double()
    mistakes = (
        (
            0.9 * 7.0 + 0.1 * first,
            "the momentum update kept 90% of the stale statistics: reset them "
            "(reset_running_stats()) and set momentum=None for the pass",
        ),
        (
            0.9 + 0.1 * first,
            "you reset the statistics but kept momentum=0.1, so one pass moves them only "
            "10% of the way: set momentum=None (a cumulative average) for the pass",
        ),
        (
            (_TRACKED * 7.0 + first) / (_TRACKED + 1),
            "with momentum=None BN averages over every batch it "
            "has counted (num_batches_tracked): call "
            "reset_running_stats() first",
        ),
    )
    for value, message in mistakes:
        if torch.allclose(got_first, value, rtol=0.03):
            raise AssertionError(f"BN layer 0's running variance is off: {message}")
    if float((got_first / first).median()) > 1.4:
        raise AssertionError(
            "BN layer 0's running variance includes dropout's noise (it is about 1/q times the "
            "variance its input has in evaluation mode): keep the dropout layers in evaluation mode "
            "while the BN layers accumulate"
        )
    for index, (layer, inputs) in enumerate(zip(layers, targets, strict=True)):
        mean, var = inputs.mean(dim=0), inputs.var(dim=0)
        got_mean, got_var = layer.running_mean.detach().double(), layer.running_var.detach().double()
        if not torch.allclose(got_mean, mean, rtol=0.0, atol=0.02 * float(var.sqrt().max())):
            raise AssertionError(
                f"BN layer {index}'s running_mean is not the mean of its evaluation-mode input over x "
                f"(largest error {float((got_mean - mean).abs().max()):.3g})"
            )
        if not torch.allclose(got_var, var, rtol=0.03):
            worst = float((got_var / var - 1).abs().max())
            raise AssertionError(
                f"BN layer {index}'s running_var is off by up to {worst:.1%} from the variance of its "
                "evaluation-mode input over x: pass x through the network once, as one batch, with "
                "dropout off and every BN in training mode"
            )
    if [layer.momentum for layer in layers] != momenta:
        raise AssertionError(
            f"restore every BN layer's momentum: it was {momenta}, your function left "
            f"{[layer.momentum for layer in layers]}"
        )
    wrong = [name or "the model" for name, module in model.named_modules() if module.training != modes[name]]
    if wrong:
        raise AssertionError(
            f"restore every module's mode: {', '.join(wrong)} did not get its training flag back "
            "(model.train(was_training) sets all modules alike; save and restore each one)"
        )
    print(
        "Correct: dropout off, BN statistics reset and re-estimated in one pass, modes and momenta restored."
    )
