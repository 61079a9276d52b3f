"""dropoutlib.diagnostics: each check fires on its bug, stays quiet on correct models, changes nothing."""

from __future__ import annotations

import functools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import dropoutlib
from dropoutlib import nn as variants
from dropoutlib.course.models import mlp
from dropoutlib.diagnostics import (
    CHECKS,
    CheckResult,
    DropoutBugError,
    Report,
    check_drop_rate,
    check_eval_deterministic,
    check_eval_mode,
    check_masks_vary,
    check_mc_batchnorm,
    check_no_output_dropout,
    diagnose,
    dropout_layers,
)
from dropoutlib.experiments.bugs import (
    FunctionalDropoutMLP,
    KeepProbDropout,
    ReusedMaskMLP,
    bn_mlp,
    careful_mc_predict,
    mlp_with_output_dropout,
    naive_mc_predict,
)

pytestmark = pytest.mark.usefixtures("one_thread")


# ----------------------------------------------------------------------------------------------------
# Models


class ConvNet(nn.Module):
    """A small CNN with nn.Dropout2d (channel-wise masks) between its convolution and its classifier."""

    def __init__(self, p: float = 0.3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 8, 3, padding=1)
        self.drop = nn.Dropout2d(p)
        self.head = nn.Linear(8 * 6 * 6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.drop(torch.relu(self.conv(x))).flatten(1))


class UnscaledDropout(nn.Module):
    """A hand-written dropout layer that forgets the 1/q scaling."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.empty_like(x).bernoulli_(1 - self.p) if self.training else x


class FunctionalOutputDropout(nn.Module):
    """Dropout on the output, written with F.dropout (respecting self.training)."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden, self.out = nn.Linear(4, 16), nn.Linear(16, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.dropout(self.out(torch.relu(self.hidden(x))), 0.5, training=self.training).squeeze(-1)


class NoisyInEval(nn.Module):
    """Randomness at test time that is not dropout."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x) + 0.1 * torch.randn(x.shape[0], 2)


def x_for(in_features: int = 8, n: int = 64, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, in_features, generator=torch.Generator().manual_seed(seed))


# Correct models, each with an input batch. Built fresh (torch.manual_seed(0)) by the fixture.
CORRECT = {
    "mlp": lambda: (mlp(8, [32, 32], 3, p=0.5, input_p=0.2), x_for()),
    "sequential": lambda: (
        nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Dropout(0.3), nn.Linear(32, 3)),
        x_for(),
    ),
    "batchnorm": lambda: (bn_mlp(8, [32, 32], 3, p=0.5), x_for()),
    "dropout2d": lambda: (ConvNet(), torch.randn(16, 2, 6, 6, generator=torch.Generator().manual_seed(0))),
    "no_dropout": lambda: (mlp(8, [32], 3), x_for()),
    "dropoutlib_layers": lambda: (mlp(8, [32, 32], 3, p=0.5, dropout_layer=dropoutlib.Dropout), x_for()),
    "standard_dropout": lambda: (mlp(8, [32], 3, p=0.5, dropout_layer=dropoutlib.StandardDropout), x_for()),
    "inplace": lambda: (
        nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Dropout(0.5, inplace=True), nn.Linear(32, 3)),
        x_for(),
    ),
    "functional_twin": lambda: (FunctionalDropoutMLP(8, 32, 3, p=0.5), x_for()),
    "reuse_none_twin": lambda: (ReusedMaskMLP(8, 32, 3, p=0.5, reuse=None), x_for()),
}


@pytest.fixture(params=sorted(CORRECT))
def correct(request):
    torch.manual_seed(0)
    return CORRECT[request.param]()


def careful(model, x):
    return careful_mc_predict(model, x, samples=3)


def naive(model, x):
    return naive_mc_predict(model, x, samples=3)


def assert_fires(result: CheckResult, name: str, *phrases: str) -> None:
    assert isinstance(result, CheckResult) and result.name == name
    assert not result.passed, f"{name} should have fired: {result.message}"
    for phrase in phrases:
        assert phrase in result.message, f"{phrase!r} not in the message: {result.message}"
    assert "Fix" in result.message or "fix" in result.message, result.message


def assert_quiet(result: CheckResult, name: str) -> None:
    assert isinstance(result, CheckResult) and result.name == name
    assert result.passed, f"{name} fired on a correct model: {result.message}"


# ----------------------------------------------------------------------------------------------------
# Quiet on correct models


def test_every_check_is_quiet_on_correct_models(correct):
    model, x = correct
    assert_quiet(check_eval_mode(model.eval()), "eval_mode")
    for training in (True, False):  # whatever mode the model is in when the checks are called
        model.train(training)
        assert_quiet(check_eval_deterministic(model, x), "eval_deterministic")
        assert_quiet(check_masks_vary(model, x), "masks_vary")
        assert_quiet(check_masks_vary(model, x, calls=4), "masks_vary")
        assert_quiet(check_drop_rate(model, x), "drop_rate")
        assert_quiet(check_no_output_dropout(model, x), "no_output_dropout")
        assert_quiet(check_mc_batchnorm(model, x, careful), "mc_batchnorm")
        report = diagnose(model, x, predict=careful)
        assert report.passed, str(report)
        assert [r.name for r in report.results] == list(CHECKS[1:])


def test_a_model_without_dropout_says_so():
    model, x = mlp(8, [16], 3), x_for()
    for result in (check_masks_vary(model, x), check_drop_rate(model, x), check_no_output_dropout(model, x)):
        assert result.passed and "no dropout layers found" in result.message
        assert result.status == "skip" and str(result).startswith("SKIP ")
    assert "no BatchNorm layers found" in check_mc_batchnorm(model, x, careful).message


def test_functional_dropout_is_reported_as_not_inspected():
    model, x = FunctionalDropoutMLP(8, 16, 3), x_for()
    for result in (check_masks_vary(model, x), check_drop_rate(model, x)):
        assert result.passed and result.status == "skip"
        assert "no dropout layers found" in result.message
        assert "torch.nn.functional.dropout" in result.message


@pytest.mark.parametrize("seed", range(20))
def test_drop_rate_and_masks_are_quiet_on_small_correct_models_over_many_seeds(seed):
    torch.manual_seed(seed)
    x = x_for(n=4, seed=seed)  # 4 examples of widths 8 and 16: few units per layer
    for model in (
        mlp(8, [16, 16], 3, p=0.5, input_p=0.2),
        mlp(8, [16], 3, p=0.1),
        bn_mlp(8, [16, 16], 3, p=0.3),
        ReusedMaskMLP(8, 16, 3, p=0.5, reuse=None),
    ):
        assert_quiet(check_drop_rate(model, x), "drop_rate")
        assert_quiet(check_masks_vary(model, x, calls=3), "masks_vary")


def test_masks_vary_says_when_a_batch_is_too_small_to_tell():
    torch.manual_seed(0)
    model = ReusedMaskMLP(8, 4, 3, p=0.5, reuse="steps")
    result = check_masks_vary(model, x_for(n=1))
    assert result.passed
    assert "too few nonzero inputs" in result.message and "use a larger batch" in result.message


# ----------------------------------------------------------------------------------------------------
# Firing on each bug


def test_eval_mode_fires_on_a_model_left_in_training_mode():
    model = bn_mlp(8, [16], 3, p=0.5)
    assert_fires(check_eval_mode(model), "eval_mode", "training mode", "'1'", "'3'", "model.eval()")
    model.eval()
    model[3].train()  # only one dropout layer left on
    result = check_eval_mode(model)
    assert_fires(result, "eval_mode", "1 of 6 modules is in training mode", "dropout layer '3'")


def test_eval_mode_fires_without_dropout_too_but_says_which_modules():
    result = check_eval_mode(mlp(8, [16], 3))
    assert_fires(result, "eval_mode", "the model itself", "'0'")


def test_eval_deterministic_fires_on_functional_dropout_without_training():
    model = FunctionalDropoutMLP(8, 32, 3, p=0.5, respect_training=False)
    result = check_eval_deterministic(model, x_for())
    assert_fires(
        result,
        "eval_deterministic",
        "two forward passes on the same batch differ",
        "2 calls of torch.nn.functional.dropout",
        "training=self.training",
    )


def test_eval_deterministic_fires_on_other_randomness():
    result = check_eval_deterministic(NoisyInEval(), x_for(4))
    assert_fires(result, "eval_deterministic", "differ", "other randomness")


def test_eval_deterministic_fires_when_forward_switches_dropout_on():
    class SwitchesOn(nn.Sequential):
        def forward(self, x):
            self[1].train()
            return super().forward(x)

    model = SwitchesOn(nn.Linear(8, 16), nn.Dropout(0.5), nn.Linear(16, 2))
    result = check_eval_deterministic(model, x_for())
    assert_fires(result, "eval_deterministic", "'1'", "ran in training mode")
    assert model.training  # the check restored the mode it found (training, as built)


def test_masks_vary_fires_on_masks_reused_across_steps():
    torch.manual_seed(0)
    model = ReusedMaskMLP(8, 32, 3, p=0.5, reuse="steps")
    result = check_masks_vary(model, x_for())
    assert_fires(result, "masks_vary", "'dropouts.0'", "'dropouts.1'", "consecutive calls", "reused")


def test_masks_vary_fires_on_one_key_shared_by_layers():
    torch.manual_seed(0)
    model = ReusedMaskMLP(8, 32, 3, p=0.5, reuse="layers")
    result = check_masks_vary(model, x_for(), calls=3)
    assert_fires(result, "masks_vary", "'dropouts.0' and 'dropouts.1'", "shared by several layers")
    assert "consecutive calls" not in result.message  # masks do change between calls


def test_masks_vary_fires_on_a_forward_that_reseeds():
    class Reseeds(nn.Sequential):
        def forward(self, x):
            torch.manual_seed(0)
            return super().forward(x)

    model = Reseeds(nn.Linear(8, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 2))
    result = check_masks_vary(model, torch.randn(64, 8))
    assert_fires(result, "masks_vary", "'2'", "consecutive calls")


@pytest.mark.parametrize("seed", range(20))
def test_mask_bugs_fire_over_many_seeds(seed):
    torch.manual_seed(seed)
    x = x_for(n=8, seed=seed)
    assert not check_masks_vary(ReusedMaskMLP(8, 32, 3, reuse="steps", seed=seed), x).passed
    assert not check_masks_vary(ReusedMaskMLP(8, 32, 3, reuse="layers"), x).passed


def test_drop_rate_fires_on_a_keep_probability_passed_as_p():
    torch.manual_seed(0)
    model, x = mlp(8, [32], 3, p=0.8), x_for()
    assert_fires(check_drop_rate(model, x), "drop_rate", "p=0.8", "keep probability", "use p=0.2")
    result = check_drop_rate(model, x, expected_p=0.2)
    assert_fires(result, "drop_rate", "configured with p=0.8 but you expected p=0.2", "keep probability")
    assert_fires(check_drop_rate(model, x, expected_p={"2": 0.2}), "drop_rate", "expected p=0.2")
    assert_quiet(check_drop_rate(model, x, expected_p=0.8), "drop_rate")  # confirmed on purpose


def test_drop_rate_fires_when_the_measured_rate_is_not_p():
    torch.manual_seed(0)
    model = mlp(8, [32], 3, p=0.2, dropout_layer=KeepProbDropout)
    result = check_drop_rate(model, x_for())
    assert_fires(result, "drop_rate", "KeepProbDropout", "zeroed 7", "its p is 0.2", "bernoulli_(1 - p)")


@pytest.mark.parametrize("seed", range(20))
def test_drop_rate_fires_on_keep_drop_confusion_over_many_seeds(seed):
    torch.manual_seed(seed)
    x = x_for(n=16, seed=seed)
    assert not check_drop_rate(mlp(8, [16], 3, p=0.2, dropout_layer=KeepProbDropout), x).passed
    assert not check_drop_rate(mlp(8, [16], 3, p=0.8), x).passed
    assert not check_drop_rate(mlp(8, [16], 3, p=0.8), x, expected_p=0.2).passed


class MisconfiguredDropout(nn.Module):
    """Says p=0.3 but drops half of its units (and scales by 2, consistently with what it drops)."""

    p = 0.3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.dropout(x, 0.5, self.training)


def test_drop_rate_fires_on_a_moderate_mismatch_given_enough_units():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 64), nn.ReLU(), MisconfiguredDropout(), nn.Linear(64, 2))
    result = check_drop_rate(model, x_for(n=128))
    assert_fires(result, "drop_rate", "MisconfiguredDropout", "its p is 0.3", "not by 1/q")


@pytest.mark.parametrize(
    ("check", "model"),
    [
        (check_drop_rate, lambda: mlp(8, [32], 3, p=0.2, dropout_layer=KeepProbDropout)),
        (check_masks_vary, lambda: ReusedMaskMLP(8, 32, 3, reuse="steps")),
        (check_no_output_dropout, lambda: mlp_with_output_dropout(8, [32], 1, p=0.5)),
    ],
)
def test_training_mode_checks_switch_to_training_mode_themselves(check, model):
    torch.manual_seed(0)
    model = model().eval()
    assert not check(model, x_for()).passed
    assert not model.training


class FixedDropout(nn.Module):
    """Says p=0.05 and zeroes a fixed 40% of its inputs (kept values scaled by 1/q)."""

    p = 0.05

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dropped = torch.arange(x.numel()).reshape(x.shape) % 10 < 4
        return torch.where(dropped, torch.zeros_like(x), x / 0.95)


@pytest.mark.parametrize(("n", "fires"), [(10, False), (100, True)])
def test_drop_rate_confirms_small_samples_with_the_exact_binomial_tail(n, fires):
    # 4 of 10 dropped at p = 0.05 lies beyond 4 standard errors (normal approximation) but has a
    # binomial tail probability of 0.001 (two-sided 0.002): too likely to call a bug; 40 of 100 is not.
    model = nn.Sequential(FixedDropout())
    result = check_drop_rate(model, torch.ones(1, n))
    assert result.passed is not fires, result.message


def test_drop_rate_fires_on_missing_scaling():
    torch.manual_seed(0)
    model = mlp(8, [32], 3, p=0.5, dropout_layer=UnscaledDropout)
    assert_fires(check_drop_rate(model, x_for()), "drop_rate", "UnscaledDropout", "by 1, not by 1/q = 2")


def test_drop_rate_tolerance_and_expected_p_for_layers_without_p():
    class NoP(nn.Module):  # a dropout layer with no attribute p: only expected_p can be compared
        def forward(self, x):
            return F.dropout(x, 0.5, self.training)

    class NoPDropout(NoP):
        pass

    torch.manual_seed(0)
    model, x = nn.Sequential(nn.Linear(8, 64), nn.ReLU(), NoPDropout(), nn.Linear(64, 2)), x_for()
    assert check_drop_rate(model, x).passed
    assert check_drop_rate(model, x, expected_p=0.5).passed
    assert_fires(check_drop_rate(model, x, expected_p=0.1), "drop_rate", "you expected 0.1")
    assert check_drop_rate(mlp(8, [32], 3, p=0.5), x, tolerance=0.2).passed
    assert "+/- 0.2" in check_drop_rate(mlp(8, [32], 3, p=0.5), x, tolerance=0.2).message


def test_no_output_dropout_fires_on_dropout_after_the_last_layer():
    torch.manual_seed(0)
    result = check_no_output_dropout(mlp_with_output_dropout(8, [16], 1, p=0.5), x_for())
    assert_fires(result, "no_output_dropout", "dropout layer '4'", "remove the dropout after the last layer")


def test_no_output_dropout_fires_on_functional_dropout_and_views():
    result = check_no_output_dropout(FunctionalOutputDropout(), x_for(4))
    assert_fires(result, "no_output_dropout", "torch.nn.functional.dropout")


def test_no_output_dropout_ignores_a_final_dropout_with_p_zero():
    model = nn.Sequential(nn.Linear(8, 2), nn.Dropout(0.0))
    assert check_no_output_dropout(model, x_for()).passed


def test_mc_batchnorm_fires_on_model_train_in_mc_dropout():
    model, x = bn_mlp(8, [16, 16], 3, p=0.5), x_for()
    result = check_mc_batchnorm(model, x, naive)
    assert_fires(result, "mc_batchnorm", "'1'", "'5'", "ran in training mode", "running statistics", "eval()")


def test_mc_batchnorm_fires_when_predict_does_not_restore_modes():
    model, x = mlp(8, [16], 3, p=0.5), x_for()  # no BatchNorm at all

    def leaves_training_on(model, x):
        model.train()
        return model(x)

    result = check_mc_batchnorm(model, x, leaves_training_on)
    assert_fires(result, "mc_batchnorm", "training instead of eval")


def test_mc_batchnorm_notes_a_predict_that_never_turns_dropout_on():
    model, x = bn_mlp(8, [16], 3, p=0.5), x_for()
    result = check_mc_batchnorm(model, x, lambda m, xs: m(xs))
    assert result.passed and "samples do not vary" in result.message


def test_diagnose_finds_each_bug():
    torch.manual_seed(0)
    x = x_for()
    cases = [
        (FunctionalDropoutMLP(8, 32, 3, respect_training=False), {}, {"eval_deterministic"}),
        (ReusedMaskMLP(8, 32, 3, reuse="steps"), {}, {"masks_vary"}),
        (ReusedMaskMLP(8, 32, 3, reuse="layers"), {}, {"masks_vary"}),
        (mlp(8, [32], 3, p=0.8), {"expected_p": 0.2}, {"drop_rate"}),
        (mlp_with_output_dropout(8, [32], 1, p=0.5), {}, {"no_output_dropout"}),
        (bn_mlp(8, [32], 3, p=0.5), {"predict": naive}, {"mc_batchnorm"}),
    ]
    for model, kwargs, failed in cases:
        report = diagnose(model, x, **kwargs)
        assert {r.name for r in report.failures} == failed, str(report)
        with pytest.raises(DropoutBugError):
            report.raise_on_failure()


# ----------------------------------------------------------------------------------------------------
# Nothing is changed: modes, parameters, buffers, torch's RNG; hooks are removed


def snapshot(model: nn.Module) -> tuple:
    return (
        [m.training for m in model.modules()],
        {k: v.clone() for k, v in model.state_dict().items()},
        torch.get_rng_state(),
    )


def assert_unchanged(model: nn.Module, before: tuple) -> None:
    modes, state, rng = before
    assert [m.training for m in model.modules()] == modes
    now = model.state_dict()
    assert now.keys() == state.keys()
    for key, value in state.items():
        assert torch.equal(now[key], value), f"{key} changed"
    assert torch.equal(torch.get_rng_state(), rng), "torch's global RNG state changed"
    for module in model.modules():
        assert not module._forward_hooks and not module._forward_pre_hooks


CHECK_CALLS = {
    "eval_mode": lambda m, x: check_eval_mode(m),
    "eval_deterministic": check_eval_deterministic,
    "masks_vary": functools.partial(check_masks_vary, calls=3),
    "drop_rate": check_drop_rate,
    "no_output_dropout": check_no_output_dropout,
    "mc_batchnorm_careful": functools.partial(check_mc_batchnorm, predict=careful),
    "mc_batchnorm_naive": functools.partial(check_mc_batchnorm, predict=naive),
    "diagnose": functools.partial(diagnose, predict=naive),
}


@pytest.mark.parametrize("check", sorted(CHECK_CALLS))
@pytest.mark.parametrize("modes", ["train", "eval", "mixed"])
def test_checks_leave_modes_parameters_buffers_and_rng_unchanged(check, modes):
    torch.manual_seed(0)
    model, x = bn_mlp(8, [16, 16], 3, p=0.5), x_for()
    with torch.no_grad():
        model(x * 2 + 1)  # running statistics that a training-mode pass on x would move
    if modes == "eval":
        model.eval()
    elif modes == "mixed":
        model[1].eval()
        model[7].eval()
    before = snapshot(model)
    CHECK_CALLS[check](model, x)
    assert_unchanged(model, before)


@pytest.mark.parametrize("check", sorted(CHECK_CALLS))
def test_checks_leave_buggy_models_unchanged(check):
    torch.manual_seed(0)
    for model in (
        FunctionalDropoutMLP(8, 16, 3, respect_training=False),
        ReusedMaskMLP(8, 16, 3, reuse="layers"),
        mlp_with_output_dropout(8, [16], 3, p=0.5),
    ):
        before = snapshot(model)
        CHECK_CALLS[check](model, x_for())
        assert_unchanged(model, before)


def test_mc_batchnorm_restores_the_model_even_when_predict_raises():
    model, x = bn_mlp(8, [16], 3, p=0.5), x_for()
    before = snapshot(model)

    def broken(model, x):
        model.train()
        model(x)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        check_mc_batchnorm(model, x, broken)
    assert_unchanged(model, before)


def test_an_error_in_the_model_names_the_mode_and_leaves_the_model_unchanged():
    model = bn_mlp(8, [16], 3, p=0.5).eval()
    before = snapshot(model)
    with pytest.raises(RuntimeError, match=r"training mode.*Expected more than 1 value per channel"):
        check_masks_vary(model, x_for(n=1))  # BatchNorm cannot train on one example
    assert_unchanged(model, before)


def test_checks_run_without_gradients():
    model, x = mlp(8, [16], 3, p=0.5), x_for().requires_grad_()
    seen = []
    model[2].register_forward_hook(lambda m, i, o: seen.append(torch.is_grad_enabled()))
    check_drop_rate(model, x)
    assert seen == [False]


# ----------------------------------------------------------------------------------------------------
# dropout_layers


def test_dropout_layers_finds_every_kind_and_skips_containers():
    class MyDropout(nn.Module):
        p = 0.5

        def forward(self, x):
            return x

    model = FunctionalDropoutMLP(8, 16, 3)  # a container whose class name contains "Dropout"
    model.extra = nn.ModuleList(
        [
            nn.Dropout(0.1),
            nn.Dropout2d(0.1),
            nn.AlphaDropout(0.1),
            dropoutlib.Dropout(0.1),
            dropoutlib.StandardDropout(0.1),
            MyDropout(),
            nn.ReLU(),
        ]
    )
    assert [name for name, _ in dropout_layers(model)] == [f"extra.{i}" for i in range(6)]


@pytest.mark.parametrize(
    "layer", [nn.AlphaDropout(0.2), variants.AlphaDropout(0.2), variants.GaussianDropout(0.2)]
)
def test_noise_that_zeroes_no_units_is_skipped_not_misread(layer):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 32), nn.SELU(), layer, nn.Linear(32, 2))
    for result in (check_drop_rate(model, x_for()), check_masks_vary(model, x_for())):
        assert result.passed and "'2'" in result.message and "skipped" in result.message.lower()
        assert result.status == "skip", str(result)  # nothing else was measured


# ----------------------------------------------------------------------------------------------------
# Arguments


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: check_eval_mode("model"), TypeError, "model='model'"),
        (
            lambda: check_eval_deterministic(nn.Linear(2, 2), [[1.0, 2.0]]),
            TypeError,
            "batch must be a torch.Tensor",
        ),
        (lambda: check_masks_vary(nn.Linear(2, 2), torch.ones(0, 2)), ValueError, r"shape \(0, 2\)"),
        (lambda: check_masks_vary(nn.Linear(2, 2), torch.ones(1, 2), calls=1), ValueError, "calls=1"),
        (lambda: check_masks_vary(nn.Linear(2, 2), torch.ones(1, 2), calls=2.0), TypeError, "calls=2.0"),
        (lambda: check_drop_rate(mlp(2, [4], 1, p=0.5), torch.ones(1, 2), 1.5), ValueError, "expected_p=1.5"),
        (
            lambda: check_drop_rate(mlp(2, [4], 1, p=0.5), torch.ones(1, 2), "0.2"),
            TypeError,
            "expected_p='0.2'",
        ),
        (
            lambda: check_drop_rate(mlp(2, [4], 1, p=0.5), torch.ones(1, 2), {"3": 0.5}),
            ValueError,
            r"'3' \(dropout layers: \['2'\]\)",
        ),
        (
            lambda: check_drop_rate(mlp(2, [4], 1, p=0.5), torch.ones(1, 2), {"2": 2}),
            ValueError,
            r"expected_p\['2'\]=2",
        ),
        (lambda: check_drop_rate(nn.Linear(2, 2), torch.ones(1, 2), tolerance=0), ValueError, "tolerance=0"),
        (
            lambda: check_drop_rate(nn.Linear(2, 2), torch.ones(1, 2), tolerance="1"),
            TypeError,
            "tolerance='1'",
        ),
        (lambda: check_no_output_dropout(None, torch.ones(1, 2)), TypeError, "model=None"),
        (lambda: check_mc_batchnorm(nn.Linear(2, 2), torch.ones(1, 2), predict=3), TypeError, "predict=3"),
        (lambda: diagnose(nn.Linear(2, 2), torch.ones(1, 2), predict="mc"), TypeError, "predict='mc'"),
        (lambda: diagnose(nn.Linear(2, 2), torch.ones(1, 2), expected_p=-1), ValueError, "expected_p=-1"),
        (lambda: dropout_layers(nn.Linear), TypeError, "model="),
    ],
)
def test_bad_arguments_are_refused_with_their_name_and_value(call, error, match):
    with pytest.raises(error, match=match):
        call()


# ----------------------------------------------------------------------------------------------------
# CheckResult and Report


def test_check_result_str_and_validation():
    assert str(CheckResult("x", True, "fine.")) == "PASS x: fine."
    assert str(CheckResult("x", False, "broken.")) == "FAIL x: broken."
    assert str(CheckResult("x", True, "nothing.", status="skip")) == "SKIP x: nothing."
    with pytest.raises(TypeError, match="passed"):
        CheckResult("x", 1, "fine.")
    with pytest.raises(TypeError, match="name"):
        CheckResult("", True, "fine.")


def test_report_formatting_and_properties():
    ok, bad1, bad2 = (
        CheckResult("a", True, "ok."),
        CheckResult("b", False, "no."),
        CheckResult("c", False, "no!"),
    )
    report = Report((ok, bad1, bad2))
    assert not report.passed and report.failures == (bad1, bad2)
    assert str(report) == "PASS a: ok.\nFAIL b: no.\nFAIL c: no!"
    assert Report([ok]).results == (ok,)  # a list is accepted and stored as a tuple
    assert Report().passed and str(Report()) == "(no checks were run)"
    with pytest.raises(TypeError, match=r"results\[1\]"):
        Report((ok, "b"))
    with pytest.raises(TypeError, match="results"):
        Report(ok)


def test_raise_on_failure_lists_every_failure():
    report = Report(
        (CheckResult("a", True, "ok."), CheckResult("b", False, "no."), CheckResult("c", False, "x"))
    )
    with pytest.raises(DropoutBugError) as caught:
        report.raise_on_failure()
    message = str(caught.value)
    assert message.startswith("2 of 3 dropout checks failed:")
    assert "FAIL b: no." in message and "FAIL c: x" in message and "PASS" not in message
    assert isinstance(caught.value, AssertionError)
    Report((CheckResult("a", True, "ok."),)).raise_on_failure()  # no exception
