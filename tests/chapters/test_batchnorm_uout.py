"""experiments.batchnorm: Uout's variance formula, the batched Linear-BN network and the deep comparison."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from dropoutlib.course.data import load_digits
from dropoutlib.experiments.batchnorm import (
    KINDS,
    LR,
    BatchedBNMLP,
    Uout,
    batchnorm_mlp,
    comparison_summary,
    deep_comparison,
    fit_bn_members,
    measure_variance_shift,
    train_mode_variance,
    uout_shift_ratio,
    uout_train_variance,
    variance_shift_ratio,
)

pytestmark = pytest.mark.usefixtures("one_thread")

# --- Uout and its formula ----------------------------------------------------------------------------


@pytest.mark.parametrize(("mean", "var", "beta"), [(0.0, 1.0, 0.3), (1.5, 0.3, 0.5), (-2.0, 4.0, 1.0)])
def test_uout_train_variance_matches_simulation(mean, var, beta):
    generator = torch.Generator().manual_seed(0)
    x = mean + var**0.5 * torch.randn(400_000, generator=generator, dtype=torch.float64)
    layer = Uout(beta).train()
    torch.manual_seed(1)
    y = layer(x)
    assert y.mean().item() == pytest.approx(mean, abs=0.02)
    # the noise's share of the variance, measured against the formula's (not just the total)
    added = y.var().item() - x.var().item()
    assert added == pytest.approx(uout_train_variance(mean, var, beta) - var, rel=0.1)
    assert torch.equal(layer.eval()(x), x)


def test_uout_noise_is_uniform_on_plus_minus_beta():
    torch.manual_seed(0)
    factors = Uout(0.3).train()(torch.ones(200_000))
    assert factors.min().item() >= 0.7 and factors.max().item() <= 1.3
    assert factors.var().item() == pytest.approx(0.3**2 / 3, rel=0.02)


def test_uout_ratio_is_the_dropout_ratio_with_beta_squared_over_three_for_p_over_q():
    mean, var = torch.tensor([0.0, 0.5, 2.0]), torch.tensor([1.0, 2.0, 0.5])
    p = 0.2
    beta = (3 * p / (1 - p)) ** 0.5  # the same noise variance as dropout's p/q
    assert torch.allclose(uout_shift_ratio(mean, var, beta), variance_shift_ratio(mean, var, p))
    assert torch.allclose(
        uout_train_variance(mean, var, beta), train_mode_variance(mean, var, p).to(torch.float32)
    )
    assert uout_shift_ratio(0.0, 1.0, 0.1) == pytest.approx(1 + 0.01 / 3)


@pytest.mark.parametrize("beta", [-0.1, 1.5, True, "0.1"])
def test_uout_rejects_bad_beta(beta):
    with pytest.raises(ValueError, match="beta must be"):
        Uout(beta)
    with pytest.raises(ValueError, match="beta must be"):
        uout_train_variance(0.0, 1.0, beta)


def test_uout_measured_in_a_network_follows_its_formula():
    model = nn.Sequential(Uout(0.5), nn.BatchNorm1d(3))
    generator = torch.Generator().manual_seed(1)  # x from its own stream, not the noise's
    x = torch.randn(50_000, 3, generator=generator) + torch.tensor([0.0, 1.0, 2.0])
    shift = measure_variance_shift(model, x, seed=0)
    predicted = uout_shift_ratio(shift.eval_mean[0], shift.eval_var[0], 0.5)
    assert torch.allclose(shift.per_feature(0) - 1, predicted - 1, rtol=0.1)


# --- the batched network -----------------------------------------------------------------------------


def test_members_are_the_networks_batchnorm_mlp_builds():
    model = BatchedBNMLP(64, [8, 8], 10, seeds=[0, 0, 0, 0], kinds=list(KINDS), p=0.3, beta=0.2)
    names = [[type(m).__name__ for m in model.member(i)] for i in range(4)]
    assert names[0] == [type(m).__name__ for m in batchnorm_mlp(64, [8, 8], 10, p=0.3)]
    assert names[1] == [type(m).__name__ for m in batchnorm_mlp(64, [8, 8], 10, p=0.3, order="last")]
    assert names[2].count("Uout") == 2 and "Dropout" not in names[2]
    assert "Dropout" not in names[3] and "Uout" not in names[3]
    # one seed, one start: the kinds differ only in their noise
    for i in range(1, 4):
        assert torch.equal(model.member(i)[0].weight, model.member(0)[0].weight)


def test_member_computes_what_the_batched_model_computes_in_both_modes():
    model = BatchedBNMLP(64, [16, 16], 10, seeds=[1, 2, 3], kinds=["plain", "last", "uout-bn"])
    with torch.no_grad():
        for k in range(2):  # non-trivial statistics and BN parameters
            getattr(model, f"running_mean_{k}").normal_()
            getattr(model, f"running_var_{k}").uniform_(0.5, 2.0)
            model.gammas[k].normal_()
    x = torch.randn(32, 64)
    model.eval()
    out = model(x)
    for m in range(3):
        assert torch.allclose(model.member(m)(x), out[m], atol=1e-5)
    # training mode, no noise: batch statistics, and the same running-statistics update as nn.BatchNorm1d
    plain = model.member(0).train()
    model.train()
    batched = model(x)[0]
    assert torch.allclose(plain(x), batched, atol=1e-5)
    assert torch.allclose(plain[1].running_var, model.running_var_0[0], atol=1e-6)


def test_a_member_follows_the_trajectory_it_would_follow_alone():
    split = load_digits(n_train=200)
    model = BatchedBNMLP(64, [16, 16], 10, seeds=[3], kinds=["plain"])
    net = model.member(0).train()
    fit_bn_members(model, [split], epochs=3, batch_size=64)
    optimizer = torch.optim.Adam(net.parameters(), lr=LR)
    order_generator = torch.Generator().manual_seed(3 + 2**32)
    for _ in range(3):
        order = torch.randperm(split.n_train, generator=order_generator)
        for first in range(0, split.n_train, 64):
            batch = order[first : first + 64]
            loss = nn.functional.cross_entropy(net(split.x_train[batch]), split.y_train[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    # gradients that are zero up to rounding (the biases before BN, weights of nearly constant
    # pixels) become Adam steps of either sign, 0.001 each: after 12 steps the two networks agree to
    # about one step, and compute the same logits to within 0.02 (logits of order 1)
    trained = model.member(0)
    x = split.x_test
    assert torch.allclose(net.eval()(x), trained(x), atol=0.02)
    for k, tolerance in ((0, 2e-3), (3, 5e-4), (6, 5e-4)):
        assert torch.allclose(net[k].weight, trained[k].weight, atol=tolerance)
    for k in (1, 4):
        assert torch.allclose(net[k].running_var, trained[k].running_var, atol=1e-3)


def test_a_member_does_not_depend_on_the_others():
    split = load_digits(n_train=200)
    alone = BatchedBNMLP(64, [16, 16], 10, seeds=[5], kinds=["dropout-bn"], p=0.3)
    together = BatchedBNMLP(64, [16, 16], 10, seeds=[7, 5, 5], kinds=["uout-bn", "dropout-bn", "last"], p=0.3)
    fit_bn_members(alone, [split], epochs=2)
    fit_bn_members(together, [split] * 3, epochs=2)
    x = split.x_test
    assert torch.allclose(alone.member(0)(x), together.member(1)(x), atol=1e-5)


def test_batched_model_rejects_bad_arguments():
    with pytest.raises(ValueError, match="kinds must hold one kind per seed"):
        BatchedBNMLP(4, [4], 2, seeds=[0, 1], kinds=["plain"])
    with pytest.raises(ValueError, match="kinds\\[0\\]"):
        BatchedBNMLP(4, [4], 2, seeds=[0], kinds=["dropout"])
    with pytest.raises(ValueError, match="p must be one value or one per member"):
        BatchedBNMLP(4, [4], 2, seeds=[0, 1], kinds=["plain"] * 2, p=[0.1])
    with pytest.raises(ValueError, match="splits must hold one Split per member"):
        fit_bn_members(BatchedBNMLP(64, [4], 10, seeds=[0], kinds=["plain"]), [])


# --- the comparison ----------------------------------------------------------------------------------


def test_deep_comparison_measures_every_kind_and_both_formulas():
    comp = deep_comparison([0, 1], p=0.3, beta=0.5, hidden=(16, 16), epochs=2, repeats=5)
    assert comp.test_acc.shape == (len(KINDS), 2) and comp.ratios.shape == (len(KINDS), 2, 2)
    d, u = comp.row("dropout-bn"), comp.row("uout-bn")
    assert np.allclose(comp.first_formula[[comp.row("last"), comp.row("plain")]], 1.0)
    # BN 1's shift: dropout's near 1/q - 1 or more, Uout's near beta^2/3 or more, each as its formula says
    assert (comp.first_formula[d] >= 1 / 0.7 - 1e-9).all() and (comp.first_formula[u] >= 1 + 0.25 / 3).all()
    assert np.allclose(comp.first_measured[d] - 1, comp.first_formula[d] - 1, rtol=0.1)
    assert np.allclose(comp.first_measured[u] - 1, comp.first_formula[u] - 1, rtol=0.2)


def test_comparison_summary_pairs_by_seed():
    comp = deep_comparison([0, 1], hidden=(8,), epochs=1, repeats=1)
    summary = comparison_summary(comp)
    d = comp.row("dropout-bn")
    gains = comp.recalibrated_acc[d] - comp.test_acc[d]
    assert summary["cost"][0] == pytest.approx(gains.mean())
    assert summary["cost"][1] == pytest.approx(gains.std(ddof=1) / 2**0.5)
    u, plain = comp.row("uout-bn"), comp.row("plain")
    assert summary["uout-bn - plain"][0] == pytest.approx((comp.test_acc[u] - comp.test_acc[plain]).mean())
