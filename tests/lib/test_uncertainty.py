"""mc_predict samples with only the dropout layers on and restores every mode; the summaries are right."""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
import pytest
import torch
from torch import nn

from dropoutlib.course.models import mlp
from dropoutlib.experiments.batchnorm import batchnorm_mlp
from dropoutlib.uncertainty import (
    MCPrediction,
    calibration_bins,
    entropy,
    eval_predict,
    expected_calibration_error,
    mc_predict,
    stochastic_layers,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def modes(model: nn.Module) -> list[bool]:
    return [module.training for module in model.modules()]


def bn_model() -> nn.Module:
    torch.manual_seed(0)
    return batchnorm_mlp(6, [16, 16], 3, p=0.5, order="bn-dropout")


class Noise(nn.Module):
    """A hand-written stochastic layer that mc_predict must recognise through ``dropout_variant``."""

    dropout_variant: ClassVar[bool] = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.randn_like(x) if self.training else x


class Explodes(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("boom")


# --- mc_predict: what is switched on, and what is put back ------------------------------------------


def test_only_dropout_layers_sample_during_the_passes():
    model = bn_model().train()
    seen: dict[str, bool] = {}
    for name, module in model.named_modules():
        module.register_forward_pre_hook(lambda m, args, name=name: seen.__setitem__(name, m.training))
    mc_predict(model, torch.randn(4, 6), samples=2, seed=0)
    for name, module in model.named_modules():
        expected = isinstance(module, nn.Dropout)
        assert seen[name] is expected, (
            f"{name or 'model'} ({type(module).__name__}) ran with training={seen[name]}"
        )


@pytest.mark.parametrize("setup", ["train", "eval", "mixed"])
def test_modes_are_restored(setup):
    model = bn_model()
    if setup == "eval":
        model.eval()
    elif setup == "mixed":
        model.eval()
        model[1].train()  # a BatchNorm in training mode, the dropout layers in eval mode
    before = modes(model)
    mc_predict(model, torch.randn(4, 6), samples=3, seed=0)
    assert modes(model) == before


def test_modes_are_restored_when_the_forward_raises():
    model = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3), nn.Dropout(0.5), Explodes()).train()
    model[1].eval()
    before = modes(model)
    with pytest.raises(RuntimeError, match="boom"):
        mc_predict(model, torch.randn(4, 3), samples=3)
    assert modes(model) == before


def test_batchnorm_uses_running_statistics_and_keeps_them():
    model = nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.0), nn.Linear(16, 3))
    model(torch.randn(64, 6) * 3 + 1)  # give the running statistics something other than (0, 1)
    buffers = {name: b.clone() for name, b in model.named_buffers()}
    x = torch.randn(10, 6)
    pred = mc_predict(model, x, samples=2, task="regression", seed=0)
    # with p = 0 every pass is the evaluation pass, whatever the rest of the batch holds
    expected = eval_predict(model, x, task="regression")
    assert torch.equal(pred.samples[0], expected) and torch.equal(pred.samples[1], expected)
    alone = mc_predict(model, x[:1], samples=1, task="regression", seed=0)
    torch.testing.assert_close(alone.samples[0], expected[:1])  # equal up to the matmul's rounding
    for name, b in model.named_buffers():
        assert torch.equal(b, buffers[name]), f"buffer {name} changed"


def test_passes_differ_and_a_seed_reproduces_them_without_touching_the_global_rng():
    model = mlp(5, [32], 4, p=0.5)
    x = torch.randn(6, 5)
    state = torch.get_rng_state()
    a = mc_predict(model, x, samples=8, seed=3)
    b = mc_predict(model, x, samples=8, seed=3)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(a.samples, b.samples)
    assert not torch.equal(a.samples[0], a.samples[1])
    assert not torch.equal(mc_predict(model, x, samples=8, seed=4).samples, a.samples)
    mc_predict(model, x, samples=2)  # seed=None draws from the global RNG
    assert not torch.equal(torch.get_rng_state(), state)


def test_classification_samples_are_distributions():
    pred = mc_predict(mlp(5, [16], 3, p=0.3), torch.randn(7, 5), samples=4, seed=0)
    assert pred.samples.shape == (4, 7, 3) and pred.passes == 4
    torch.testing.assert_close(pred.samples.sum(dim=-1), torch.ones(4, 7))


def test_the_mc_mean_of_a_linear_readout_is_the_evaluation_output():
    # E over masks of w . (m * x / q) = w . x, so the MC mean converges to the eval pass
    torch.manual_seed(0)
    model = nn.Sequential(nn.Dropout(0.5), nn.Linear(20, 1))
    x = torch.randn(3, 20)
    pred = mc_predict(model, x, samples=4000, task="regression", seed=1)
    standard_error = pred.samples.std(dim=0) / math.sqrt(pred.passes)
    gap = (pred.mean - eval_predict(model, x, task="regression")).abs()
    assert bool((gap < 4 * standard_error).all()), (
        f"gaps {gap.flatten()} vs 4 SE {4 * standard_error.flatten()}"
    )


def test_variant_layers_are_switched_on_and_containers_are_not():
    model = nn.Sequential(nn.Linear(3, 3), Noise(), nn.AlphaDropout(0.2), nn.Sequential(nn.Dropout(0.1)))
    names = [name for name, _ in stochastic_layers(model)]
    assert names == ["1", "2", "3.0"]
    pred = mc_predict(nn.Sequential(nn.Linear(3, 3), Noise()), torch.randn(2, 3), samples=2, seed=0)
    assert not torch.equal(pred.samples[0], pred.samples[1])


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"model": nn.Linear(3, 2)}, ValueError, "at least one dropout layer"),
        ({"model": "net"}, TypeError, "model must be a torch.nn.Module"),
        ({"x": [[1.0, 2.0, 3.0]]}, TypeError, "batch must be a torch.Tensor"),
        ({"samples": 0}, ValueError, "samples=0"),
        ({"samples": True}, TypeError, "samples=True"),
        ({"samples": 2.5}, TypeError, "samples=2.5"),
        ({"task": "ranking"}, ValueError, "task='ranking'"),
        ({"seed": 1.5}, TypeError, "seed=1.5"),
    ],
)
def test_bad_arguments_are_named(kwargs, error, match):
    args = {"model": mlp(3, [4], 2, p=0.5), "x": torch.randn(2, 3), "samples": 2} | kwargs
    with pytest.raises(error, match=match):
        mc_predict(args.pop("model"), args.pop("x"), **args)


def test_eval_predict_is_deterministic_and_restores_modes():
    model = bn_model().train()
    x = torch.randn(5, 6)
    before = modes(model)
    assert torch.equal(eval_predict(model, x), eval_predict(model, x))
    assert modes(model) == before
    with pytest.raises(ValueError, match="task='x'"):
        eval_predict(model, x, task="x")


# --- the summaries --------------------------------------------------------------------------------


def test_entropy_values_and_errors():
    torch.testing.assert_close(entropy(torch.full((2, 4), 0.25)), torch.full((2,), math.log(4)))
    assert entropy(torch.tensor([0.0, 1.0])).item() == 0.0
    with pytest.raises(ValueError, match="non-negative"):
        entropy(torch.tensor([1.5, -0.5]))
    with pytest.raises(ValueError, match="sum to 1"):
        entropy(torch.tensor([0.5, 0.6]))
    with pytest.raises(TypeError, match="floating-point"):
        entropy(torch.tensor([0, 1]))


def test_mutual_information_is_the_disagreement_between_passes():
    agree = MCPrediction(torch.tensor([[[0.7, 0.3]], [[0.7, 0.3]]]))
    assert agree.mutual_information.item() == pytest.approx(0.0, abs=1e-7)
    assert agree.predictive_entropy.item() == pytest.approx(agree.expected_entropy.item())
    disagree = MCPrediction(torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]]))
    assert disagree.mutual_information.item() == pytest.approx(math.log(2))
    assert disagree.expected_entropy.item() == 0.0
    assert disagree.predicted.tolist() == [0]


def test_summaries_on_random_passes_obey_their_inequalities():
    probs = torch.softmax(torch.randn(30, 50, 5, generator=torch.Generator().manual_seed(0)) * 2, dim=-1)
    pred = MCPrediction(probs)
    assert bool((pred.predictive_entropy >= pred.expected_entropy - 1e-6).all())
    assert bool((pred.mutual_information >= 0).all())
    assert bool((pred.predictive_entropy <= math.log(5) + 1e-6).all())
    torch.testing.assert_close(pred.variance, probs.var(dim=0, unbiased=False))
    assert torch.equal(pred.first(3).samples, probs[:3])
    with pytest.raises(ValueError, match="t=31"):
        pred.first(31)
    with pytest.raises(ValueError, match="t=0"):
        pred.first(0)


def test_regression_predictions_refuse_entropy():
    pred = MCPrediction(torch.randn(3, 4, 1), "regression")
    assert pred.mean.shape == (4, 1)
    with pytest.raises(ValueError, match="task='regression'"):
        _ = pred.predictive_entropy
    with pytest.raises(ValueError, match="task='ranking'"):
        MCPrediction(torch.randn(3, 4, 1), "ranking")


# --- calibration ----------------------------------------------------------------------------------


def reference_ece(probs: np.ndarray, labels: np.ndarray, bins: int) -> float:
    """ECE written out plainly with a loop over bins (b/bins, (b+1)/bins]."""
    confidence, predicted = probs.max(axis=1), probs.argmax(axis=1)
    total = 0.0
    for b in range(bins):
        low, high = b / bins, (b + 1) / bins
        inside = (confidence > low) & (confidence <= high) if b else (confidence <= high)
        if inside.any():
            total += inside.mean() * abs(
                (predicted[inside] == labels[inside]).mean() - confidence[inside].mean()
            )
    return total


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("bins", [1, 5, 15])
def test_ece_matches_a_plain_loop(seed, bins):
    g = torch.Generator().manual_seed(seed)
    probs = torch.softmax(torch.randn(200, 4, generator=g, dtype=torch.float64) * 3, dim=1)
    labels = torch.randint(0, 4, (200,), generator=g)
    expected = reference_ece(probs.numpy(), labels.numpy(), bins)
    assert expected_calibration_error(probs, labels, bins) == pytest.approx(expected, abs=1e-6)


def test_calibration_bins_edges_and_counts():
    probs = torch.tensor([[0.5, 0.5], [0.6, 0.4], [1.0, 0.0], [0.75, 0.25]])
    cal = calibration_bins(probs, torch.tensor([0, 0, 0, 1]), bins=4)
    assert cal.count.tolist() == [0, 1, 2, 1]  # 0.5 in (0.25, 0.5]; 0.6 and 0.75 in (0.5, 0.75]; 1.0 last
    assert cal.edges.tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert math.isnan(cal.accuracy[0]) and cal.accuracy[2].item() == 0.5
    assert expected_calibration_error(torch.tensor([[1.0, 0.0]] * 3), torch.tensor([0, 0, 0])) == 0.0


@pytest.mark.parametrize(
    ("probs", "labels", "bins", "match"),
    [
        (torch.ones(3), torch.zeros(3, dtype=torch.long), 10, "probs must be a floating-point tensor"),
        (torch.full((3, 2), 0.5), torch.zeros(3), 10, "labels must be an integer tensor"),
        (torch.full((3, 2), 0.5), torch.zeros(4, dtype=torch.long), 10, r"shape \(3,\)"),
        (torch.full((3, 2), 0.6), torch.zeros(3, dtype=torch.long), 10, "sum to 1"),
        (torch.full((3, 2), 0.5), torch.zeros(3, dtype=torch.long), 0, "bins=0"),
        (torch.zeros(0, 2), torch.zeros(0, dtype=torch.long), 10, "n=0"),
    ],
)
def test_calibration_rejects_bad_input(probs, labels, bins, match):
    with pytest.raises((ValueError, TypeError), match=match):
        expected_calibration_error(probs, labels, bins)
