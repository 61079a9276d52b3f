"""Chapter 9's exercise checks: reference solutions pass, typical mistakes fail by name, stubs fail."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from dropoutlib.exercises.batchnorm import (
    check_mixed_variance,
    check_recalibrate_batchnorm,
    check_train_mode_variance,
)
from dropoutlib.experiments.batchnorm import batchnorm_layers, recalibrate_batchnorm


@pytest.mark.parametrize("check", [check_train_mode_variance, check_mixed_variance])
def test_a_non_number_is_named(check):
    with pytest.raises(AssertionError, match="should return a number"):
        check(lambda *args: "0.5")


# --- one feature ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        lambda mean, var, p: (var + mean**2) / (1 - p) - mean**2,
        lambda mean, var, p: var / (1 - p) + p / (1 - p) * mean**2,
        lambda mean, var, p: np.float64(var + mean * mean) / (1 - p) - mean * mean,
        lambda mean, var, p: torch.tensor((var + mean**2) / (1 - p) - mean**2),
    ],
)
def test_train_mode_variance_references_pass(answer, capsys):
    check_train_mode_variance(answer)
    assert "Correct" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda mean, var, p: var / (1 - p), "right only for a zero mean"),
        (lambda mean, var, p: (var + mean**2) / (1 - p), "second moment"),
        (lambda mean, var, p: var, "evaluation mode"),
        (lambda mean, var, p: (1 - p) * (var + mean**2) - ((1 - p) * mean) ** 2, "without inverted"),
        (lambda mean, var, p: var / (1 - p) + p * mean**2, "not p mu\\^2"),
        (lambda mean, var, p: (var + mean**2) / p - mean**2 if p else var, "swapped p and q"),
        (lambda mean, var, p: (1 + p * mean**2 / var) / (1 - p) if var else 0.0, "ratio"),
        (lambda mean, var, p: var * (1 - p), "divide by q"),
        (lambda mean, var, p: var + 10, "expected"),
    ],
)
def test_train_mode_variance_mistakes_are_named(answer, message):
    with pytest.raises(AssertionError, match=message):
        check_train_mode_variance(answer)


# --- a weighted sum of dropped units ------------------------------------------------------------------


def _noise(a, w, p):
    return p / (1 - p) * (w**2 * (a**2).mean(dim=0)).sum()


@pytest.mark.parametrize(
    "answer",
    [
        lambda a, w, p: (a @ w).var(correction=0) + _noise(a, w, p),
        lambda a, w, p: float((a @ w).var() + _noise(a, w, p) * len(a) / (len(a) - 1)),
        lambda a, w, p: np.var((a @ w).numpy()) + _noise(a, w, p).item(),
    ],
)
def test_mixed_variance_references_pass(answer, capsys):
    check_mixed_variance(answer)
    assert "Correct" in capsys.readouterr().out


def test_mixed_variance_reference_by_simulation_passes(capsys):
    """Many mask draws converge on the formula (the check's tolerance is tight: use a close estimate)."""

    def simulated(a, w, p):
        generator = torch.Generator().manual_seed(0)
        draws = torch.bernoulli(torch.full((400, *a.shape), 1 - p, dtype=a.dtype), generator=generator)
        z = (draws * a / (1 - p)) @ w
        return z.var(correction=0).item()

    with pytest.raises(AssertionError, match="expected"):  # 400 draws are close, not within 1e-6
        check_mixed_variance(simulated)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda a, w, p: _noise(a, w, p), "only the noise"),
        (
            lambda a, w, p: (
                (a @ w).var(correction=0) + p / (1 - p) * (w**2 * a.var(dim=0, correction=0)).sum()
            ),
            "not the variance of a_i",
        ),
        (
            lambda a, w, p: (
                w**2 * (a.var(dim=0, correction=0) / (1 - p) + p / (1 - p) * a.mean(0) ** 2)
            ).sum(),
            "uncorrelated",
        ),
        (lambda a, w, p: (a @ w).var(correction=0) + _noise(a, w, p) * (1 - p), "not p a\\^2"),
        (lambda a, w, p: (a @ w).var(correction=0) + _noise(a, w, p) * (1 - p) ** 2, "without inverted"),
        (lambda a, w, p: (a @ w).var(correction=0), "evaluation mode"),
        (lambda a, w, p: 1 + _noise(a, w, p) / (a @ w).var(correction=0), "ratio"),
        (lambda a, w, p: (a @ w).var(correction=0) + _noise(a, w, p) * ((1 - p) / p) ** 2, "swapped"),
        (lambda a, w, p: 1.0, "expected"),
    ],
)
def test_mixed_variance_mistakes_are_named(answer, message):
    with pytest.raises(AssertionError, match=message):
        check_mixed_variance(answer)


# --- re-estimating BatchNorm statistics --------------------------------------------------------------


def _student_reference(model, x):
    """How a student might write it: save modes, switch, one pass, restore."""
    modes = [m.training for m in model.modules()]
    layers = [m for m in model.modules() if isinstance(m, nn.BatchNorm1d)]
    momenta = [layer.momentum for layer in layers]
    model.eval()
    for layer in layers:
        layer.reset_running_stats()
        layer.momentum = None
        layer.train()
    with torch.no_grad():
        model(x)
    for layer, momentum in zip(layers, momenta, strict=True):
        layer.momentum = momentum
    for m, mode in zip(model.modules(), modes, strict=True):
        m.training = mode
    return model


def _layer_by_layer(model, x):
    """Exact statistics, one BN layer at a time, in evaluation mode (no train-mode BN at all)."""
    modes = [m.training for m in model.modules()]
    model.eval()
    for layer in batchnorm_layers(model):
        seen = []
        handle = layer.register_forward_hook(lambda _m, inputs, _o, seen=seen: seen.append(inputs[0]))
        with torch.no_grad():
            model(x)
        handle.remove()
        layer.running_mean.copy_(seen[0].mean(dim=0))
        layer.running_var.copy_(seen[0].var(dim=0))
    for m, mode in zip(model.modules(), modes, strict=True):
        m.training = mode
    return model


@pytest.mark.parametrize("answer", [recalibrate_batchnorm, _student_reference, _layer_by_layer])
def test_recalibration_references_pass(answer, capsys):
    check_recalibrate_batchnorm(answer)
    assert "Correct" in capsys.readouterr().out


def _variant(
    *,
    dropout_on=False,
    reset=True,
    momentum=None,
    restore_modes=True,
    restore_momentum=True,
    bn_train=True,
    returns=True,
    step=False,
):
    def answer(model, x):
        modes = [m.training for m in model.modules()]
        layers = batchnorm_layers(model)
        momenta = [layer.momentum for layer in layers]
        model.train(dropout_on)
        for layer in layers:
            if reset:
                layer.reset_running_stats()
            layer.momentum = momentum
            layer.train(bn_train)
        if step:
            with torch.no_grad():
                next(model.parameters()).add_(0.01)
        with torch.no_grad():
            model(x)
        if restore_momentum:
            for layer, value in zip(layers, momenta, strict=True):
                layer.momentum = value
        if restore_modes:
            for m, mode in zip(model.modules(), modes, strict=True):
                m.training = mode
        else:
            model.train()
        return model if returns else "done"

    return answer


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (_variant(dropout_on=True), "dropout's noise"),
        (_variant(reset=False, momentum=0.1), "kept 90%"),
        (_variant(momentum=0.1), "kept momentum=0.1"),
        (_variant(reset=False), "num_batches_tracked"),
        (_variant(bn_train=False), "did not change during the pass"),
        (_variant(restore_modes=False), "restore every module's mode"),
        (_variant(restore_momentum=False), "momentum"),
        (_variant(returns=False), "return the model"),
        (_variant(step=True), "changed parameters"),
        (lambda model, x: model, "did not change"),
    ],
)
def test_recalibration_mistakes_are_named(answer, message):
    with pytest.raises(AssertionError, match=message):
        check_recalibrate_batchnorm(answer)


def test_recalibration_in_minibatches_is_close_but_named():
    def in_batches(model, x):
        return recalibrate_batchnorm(model, x, batch_size=16)

    with pytest.raises(AssertionError, match="running_var is off|running_mean"):
        check_recalibrate_batchnorm(in_batches)
