"""dropoutlib.diagnostics on the models people have: in-place ops, attention, stochastic depth, float16.

Every model is built here from torch alone (random weights, nothing downloaded).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from standins import DropPath, StochasticDepth
from torch import nn

from dropoutlib.diagnostics import (
    CheckResult,
    Report,
    check_drop_rate,
    check_eval_deterministic,
    check_masks_vary,
    check_mc_batchnorm,
    check_no_output_dropout,
    diagnose,
    dropout_layers,
)

pytestmark = pytest.mark.usefixtures("one_thread")

MASK_CHECKS = ("masks_vary", "drop_rate", "no_output_dropout")


def x_for(in_features: int = 8, n: int = 64, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, in_features, generator=torch.Generator().manual_seed(seed))


def by_name(report: Report) -> dict[str, CheckResult]:
    return {result.name: result for result in report.results}


# ----------------------------------------------------------------------------------------------------
# 1. In-place ops after a dropout layer change its output after it returned


class ResidualDropout(nn.Module):
    """``h = drop(fc(x)); h += x``: a residual added in place to the dropout layer's output."""

    def __init__(self, width: int = 8, p: float = 0.3) -> None:
        super().__init__()
        self.fc, self.drop, self.out = nn.Linear(width, width), nn.Dropout(p), nn.Linear(width, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.drop(self.fc(x))
        h += x
        return self.out(h)


IN_PLACE_AFTER = {
    "relu_inplace": lambda: nn.Sequential(
        nn.Linear(8, 64), nn.Dropout(0.3), nn.ReLU(inplace=True), nn.Linear(64, 3)
    ),
    "residual_add": ResidualDropout,
}


@pytest.mark.parametrize("name", sorted(IN_PLACE_AFTER))
def test_in_place_ops_after_dropout_do_not_change_what_was_measured(name):
    torch.manual_seed(0)
    model, x = IN_PLACE_AFTER[name](), x_for()
    result = check_drop_rate(model, x)
    assert result.status == "pass", result.message
    report = diagnose(model, x)
    assert [r.status for r in report.results] == ["pass"] * 4, str(report)


def test_in_place_ops_after_dropout_still_let_a_wrong_rate_be_caught():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 64), nn.Dropout(0.3), nn.ReLU(inplace=True), nn.Linear(64, 3))
    result = check_drop_rate(model, x_for(), expected_p=0.6)
    assert result.status == "fail" and "p=0.3 but you expected p=0.6" in result.message


def test_the_recorder_keeps_no_tensor_of_a_pass():
    """What a layer returned is summarised in its hook: no recorded site holds a tensor of the pass."""
    from dropoutlib.diagnostics.checks import _record_passes

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 64), nn.Dropout(0.3), nn.ReLU(inplace=True), nn.Linear(64, 3))
    sites, calls, _ = _record_passes(model.train(), x_for(), passes=2)
    for site in (site for pass_sites in sites for site in pass_sites):
        held = [k for k, v in vars(site).items() if isinstance(v, torch.Tensor) and v.dtype != torch.bool]
        assert not held, f"site {site.name} holds tensors {held}"
        assert site.eligible == 64 * 64 and 0 < site.kept < site.eligible


# ----------------------------------------------------------------------------------------------------
# 2. Dropout(inplace=True) as the first layer must not change the caller's x


def test_an_in_place_first_dropout_layer_leaves_the_callers_x_alone():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Dropout(0.2, inplace=True), nn.Linear(8, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 3)
    )
    x = x_for()
    before = x.clone()
    for check in (check_masks_vary, check_drop_rate, check_no_output_dropout, check_eval_deterministic):
        result = check(model, x)
        assert result.status == "pass", str(result)
        assert torch.equal(x, before), f"{check.__name__} changed x"
    report = diagnose(model, x, predict=lambda m, xs: m(xs))
    assert [r.status for r in report.results] == ["pass"] * 5, str(report)
    assert torch.equal(x, before)


def test_predict_gets_a_copy_of_x():
    model, x = nn.Sequential(nn.Linear(8, 3)), x_for()
    before = x.clone()
    check_mc_batchnorm(model, x, lambda m, xs: xs.mul_(0.0))
    assert torch.equal(x, before)


# ----------------------------------------------------------------------------------------------------
# 3. Nothing to measure is SKIP, not PASS


def test_a_model_without_dropout_gets_skip_for_the_mask_checks():
    torch.manual_seed(0)
    model, x = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3)), x_for()
    results = by_name(diagnose(model, x))
    assert results["eval_deterministic"].status == "pass"
    for name in MASK_CHECKS:
        assert results[name].status == "skip", str(results[name])
        assert str(results[name]).startswith(f"SKIP {name}: ")
        assert "no dropout" in results[name].message


def test_check_result_status():
    assert CheckResult("a", True, "ok.").status == "pass"
    assert CheckResult("a", False, "no.").status == "fail"
    skipped = CheckResult("a", True, "nothing to measure.", status="skip")
    assert str(skipped) == "SKIP a: nothing to measure." and skipped.passed
    assert CheckResult("a", True, "ok.", status="pass") == CheckResult("a", True, "ok.")
    with pytest.raises(ValueError, match="status='maybe'"):
        CheckResult("a", True, "x", status="maybe")
    with pytest.raises(ValueError, match="passed=True.*status='fail'"):
        CheckResult("a", True, "x", status="fail")
    with pytest.raises(ValueError, match="passed=False.*status='skip'"):
        CheckResult("a", False, "x", status="skip")


def test_report_with_skips_fails_only_on_failures():
    ok = CheckResult("a", True, "ok.")
    skip = CheckResult("b", True, "nothing.", status="skip")
    bad = CheckResult("c", False, "no.")
    report = Report((ok, skip))
    assert report.passed and report.failures == () and report.skipped == (skip,)
    report.raise_on_failure()
    assert str(report) == "PASS a: ok.\nSKIP b: nothing."
    with pytest.raises(AssertionError, match="1 of 3 dropout checks failed") as caught:
        Report((ok, skip, bad)).raise_on_failure()
    assert "SKIP" not in str(caught.value)


# ----------------------------------------------------------------------------------------------------
# 4. Dropout the checks cannot see: attention dropout; stochastic depth


class AttentionNet(nn.Module):
    """Tokens -> nn.MultiheadAttention(dropout=p) -> mean -> Linear: its only dropout is the attention's."""

    def __init__(self, p: float = 0.2, extra_dropout: float | None = None) -> None:
        super().__init__()
        self.embed = nn.Linear(8, 16)
        self.attn = nn.MultiheadAttention(16, 2, dropout=p, batch_first=True)
        self.drop = nn.Dropout(extra_dropout) if extra_dropout is not None else nn.Identity()
        self.head = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x)
        h, _ = self.attn(h, h, h)
        return self.head(self.drop(h).mean(dim=1))


class SDPANet(nn.Module):
    """Self-attention written with F.scaled_dot_product_attention(dropout_p=...)."""

    def __init__(self, p: float = 0.3, respect_training: bool = True) -> None:
        super().__init__()
        self.p, self.respect_training = p, respect_training
        self.qkv, self.head = nn.Linear(8, 48), nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        p = self.p if (self.training or not self.respect_training) else 0.0
        h = F.scaled_dot_product_attention(q, k, v, dropout_p=p)
        return self.head(h.mean(dim=1))


def tokens(seed: int = 0) -> torch.Tensor:
    return torch.randn(16, 5, 8, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize(
    ("model", "named"),
    [
        (lambda: AttentionNet(0.2), "'attn' (MultiheadAttention, dropout=0.2)"),
        (lambda: SDPANet(0.3), "torch.nn.functional.scaled_dot_product_attention (dropout_p=0.3)"),
    ],
)
def test_attention_dropout_is_named_and_skipped_not_passed(model, named):
    torch.manual_seed(0)
    results = by_name(diagnose(model(), tokens()))
    assert results["eval_deterministic"].status == "pass", str(results["eval_deterministic"])
    for name in MASK_CHECKS:
        result = results[name]
        assert result.status == "skip", str(result)
        assert named in result.message and "not measured" in result.message, result.message


def test_attention_dropout_beside_measured_layers_is_noted():
    torch.manual_seed(0)
    results = by_name(diagnose(AttentionNet(0.2, extra_dropout=0.3), tokens()))
    for name in MASK_CHECKS:
        assert results[name].status == "pass", str(results[name])
    for name in ("masks_vary", "drop_rate"):
        assert "'attn' (MultiheadAttention, dropout=0.2)" in results[name].message
        assert "not measured" in results[name].message


def test_attention_without_dropout_is_not_mentioned():
    torch.manual_seed(0)
    result = check_drop_rate(AttentionNet(0.0, extra_dropout=0.3), tokens())
    assert result.status == "pass" and "attn" not in result.message


def test_sdpa_dropout_left_on_in_eval_is_caught_and_named():
    torch.manual_seed(0)
    result = check_eval_deterministic(SDPANet(0.3, respect_training=False), tokens())
    assert result.status == "fail"
    assert "scaled_dot_product_attention" in result.message and "dropout_p" in result.message




class ResidualBlocks(nn.Module):
    def __init__(self, drop: type[nn.Module], p: float) -> None:
        super().__init__()
        self.fc1, self.fc2, self.head = nn.Linear(8, 8), nn.Linear(8, 8), nn.Linear(8, 3)
        self.path1, self.path2 = drop(p), drop(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.path1(torch.relu(self.fc1(x)))
        x = x + self.path2(torch.relu(self.fc2(x)))
        return self.head(x)


@pytest.mark.parametrize("drop", [DropPath, StochasticDepth])
def test_stochastic_depth_layers_are_found_and_measured_per_example(drop):
    torch.manual_seed(0)
    model = ResidualBlocks(drop, 0.2)
    assert [name for name, _ in dropout_layers(model)] == ["path1", "path2"]
    report = diagnose(model, x_for(n=256))
    assert [r.status for r in report.results] == ["pass"] * 4, str(report)
    assert "configured p (0.2, 0.2)" in by_name(report)["drop_rate"].message


def test_dropoutlibs_drop_path_is_found_and_its_rate_not_misread():
    from dropoutlib.nn import DropPath as LibDropPath

    torch.manual_seed(0)
    model = ResidualBlocks(LibDropPath, 0.2)
    assert [name for name, _ in dropout_layers(model)] == ["path1", "path2"]
    result = check_drop_rate(model, x_for())
    assert result.status == "skip" and "'path1'" in result.message, str(result)


def test_stochastic_depth_with_a_keep_probability_as_p_is_caught():
    torch.manual_seed(0)
    model = ResidualBlocks(DropPath, 0.8)
    result = check_drop_rate(model, x_for(n=256), expected_p=0.2)
    assert result.status == "fail" and "p=0.8 but you expected p=0.2" in result.message


# ----------------------------------------------------------------------------------------------------
# 5. Tolerances follow the dtype


class RoundingJitter(nn.Module):
    """A model whose evaluation outputs differ by one unit in the last place from call to call (as
    nondeterministic reductions on a GPU do), but whose dropout is off in evaluation."""

    def __init__(self, dtype: torch.dtype) -> None:
        super().__init__()
        self.fc, self.drop, self.out = nn.Linear(8, 32), nn.Dropout(0.5), nn.Linear(32, 3)
        self.to(dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.out(self.drop(torch.relu(self.fc(x.to(self.fc.weight.dtype)))))
        jitter = torch.rand(y.shape) < 0.5
        return torch.where(jitter, torch.nextafter(y, torch.full_like(y, float("inf"))), y)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_eval_deterministic_tolerates_rounding_in_half_precision(dtype):
    torch.manual_seed(0)
    result = check_eval_deterministic(RoundingJitter(dtype), x_for())
    assert result.status == "pass", result.message


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_eval_deterministic_still_catches_dropout_in_half_precision(dtype):
    class LeftOn(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc, self.out = nn.Linear(8, 32).to(dtype), nn.Linear(32, 3).to(dtype)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.out(F.dropout(torch.relu(self.fc(x.to(dtype))), 0.1))

    torch.manual_seed(0)
    result = check_eval_deterministic(LeftOn(), x_for())
    assert result.status == "fail" and "training=self.training" in result.message


def test_eval_deterministic_is_still_exact_enough_in_float32():
    class Drift(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc, self.calls = nn.Linear(8, 3), 0

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.calls += 1
            return self.fc(x) * (1 + 1e-4 * self.calls)

    assert check_eval_deterministic(Drift(), x_for()).status == "fail"
