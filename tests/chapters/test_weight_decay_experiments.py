"""Unit tests of experiments.weight_decay: the dropout-ridge identity, its closed form, the training loop."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from torch import nn

from dropoutlib.experiments import weight_decay as reg
from dropoutlib.experiments.weight_decay import (
    PROCEDURES,
    ControlledComparison,
    controlled_claims,
    controlled_comparison,
    dropout_ridge_penalty,
    dropout_ridge_solution,
    equivalent_weight_decay,
    exact_dropout_loss,
    expected_dropout_loss,
    fit_logistic,
    linear_problem,
    logistic_dropout_penalty,
    logistic_problem,
    plot_procedures,
    procedure_values,
    project_max_norm,
    sample_dropout_losses,
    sample_logistic_penalty,
    small_problem,
    stable_learning_rate,
    train_linear_unit,
    validation_split,
    wide_unit_experiment,
)


def _data(n, d, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64) * torch.linspace(0.5, 2.0, d, dtype=torch.float64)
    y = torch.randn(n, generator=g, dtype=torch.float64)
    w = torch.randn(d, generator=g, dtype=torch.float64)
    return x, y, w


def _expected_gradient(x, y, w, p):
    """Gradient of ||y - Xw||^2 + (p/q) sum_j w_j^2 ||X_j||^2."""
    return -2 * x.T @ (y - x @ w) + 2 * p / (1 - p) * (x * x).sum(0) * w


# --- the identity ---------------------------------------------------------------------------------


def test_penalty_by_hand():
    x = torch.tensor([[1.0, 2.0], [3.0, 0.0]])
    assert dropout_ridge_penalty(x, torch.tensor([1.0, -1.0]), 0.5) == pytest.approx(14.0)
    assert dropout_ridge_penalty(x, torch.tensor([1.0, -1.0]), 0.2) == pytest.approx(14.0 / 4)
    assert dropout_ridge_penalty(x, torch.tensor([1.0, -1.0]), 0.0) == 0.0


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_formula_equals_enumeration_of_every_mask(p, seed):
    x, y, w = _data(4, 3, seed)
    assert exact_dropout_loss(x, y, w, p) == pytest.approx(expected_dropout_loss(x, y, w, p), rel=1e-12)


def test_enumeration_at_p_zero_is_least_squares():
    x, y, w = _data(3, 2)
    assert exact_dropout_loss(x, y, w, 0.0) == pytest.approx(float(((y - x @ w) ** 2).sum()))


def test_enumeration_refuses_large_problems():
    x, y, w = _data(5, 4)
    with pytest.raises(ValueError, match="sample_dropout_losses"):
        exact_dropout_loss(x, y, w, 0.5)


def test_column_targets_are_accepted():
    x, y, w = _data(6, 2)
    assert expected_dropout_loss(x, y.unsqueeze(1), w, 0.3) == expected_dropout_loss(x, y, w, 0.3)


def test_monte_carlo_mean_matches_formula():
    x, y, w = _data(8, 3)
    losses = sample_dropout_losses(x, y, w, 0.4, 30_000, generator=torch.Generator().manual_seed(1))
    assert losses.shape == (30_000,) and losses.dtype == torch.float64
    se = losses.std().item() / 30_000**0.5
    assert abs(losses.mean().item() - expected_dropout_loss(x, y, w, 0.4)) < 4 * se


def test_monte_carlo_is_seeded_and_chunked(monkeypatch):
    x, y, w = _data(5, 3)
    a = sample_dropout_losses(x, y, w, 0.3, 100, generator=torch.Generator().manual_seed(3))
    b = sample_dropout_losses(x, y, w, 0.3, 100, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    monkeypatch.setattr(reg, "_CHUNK_ELEMENTS", 40)  # 2 masks of 15 entries per chunk
    c = sample_dropout_losses(x, y, w, 0.3, 101, generator=torch.Generator().manual_seed(3))
    assert c.shape == (101,) and bool((c >= 0).all())


def test_at_p_zero_every_mask_gives_least_squares():
    x, y, w = _data(5, 3)
    losses = sample_dropout_losses(x, y, w, 0.0, 10)
    assert torch.allclose(losses, torch.full((10,), float(((y - x @ w) ** 2).sum()), dtype=torch.float64))


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda x, y, w: dropout_ridge_penalty(x, w, 1.0), ValueError, "below 1"),
        (lambda x, y, w: dropout_ridge_penalty(x, w, 1.5), ValueError, "probability"),
        (lambda x, y, w: dropout_ridge_penalty(x, w[:2], 0.5), ValueError, "shape"),
        (lambda x, y, w: dropout_ridge_penalty(x.numpy(), w, 0.5), TypeError, "torch.Tensor"),
        (lambda x, y, w: dropout_ridge_penalty(x.long(), w, 0.5), TypeError, "floating"),
        (lambda x, y, w: dropout_ridge_penalty(x[0], w, 0.5), ValueError, r"\(n, d\)"),
        (lambda x, y, w: expected_dropout_loss(x, y[:3], w, 0.5), ValueError, "one target per row"),
        (lambda x, y, w: sample_dropout_losses(x, y, w, 0.5, 0), ValueError, "n_masks"),
    ],
)
def test_bad_arguments_are_named(call, error, match):
    x, y, w = _data(4, 3)
    with pytest.raises(error, match=match):
        call(x, y, w)


# --- the closed form ------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "d"), [(30, 5), (6, 40)])
@pytest.mark.parametrize("p", [0.2, 0.5, 0.9])
def test_solution_zeroes_the_expected_gradient(n, d, p):
    x, y, _ = _data(n, d)
    w = dropout_ridge_solution(x, y, p)
    assert w.shape == (d,) and w.dtype == torch.float64
    gradient = _expected_gradient(x, y, w, p)
    assert gradient.abs().max() < 1e-8 * (x.T @ y).abs().max()


def test_primal_and_dual_agree():
    x, y, _ = _data(7, 9)
    gram = x.T @ x
    primal = torch.linalg.solve(gram + torch.diag(torch.diag(gram)), x.T @ y)  # p = 0.5
    assert torch.allclose(dropout_ridge_solution(x, y, 0.5), primal, atol=1e-10)


def test_solution_minimizes_the_expected_loss():
    x, y, _ = _data(20, 4)
    w = dropout_ridge_solution(x, y, 0.3)
    best = expected_dropout_loss(x, y, w, 0.3)
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        nudge = 1e-2 * torch.randn(4, generator=g, dtype=torch.float64)
        assert expected_dropout_loss(x, y, w + nudge, 0.3) > best


def test_p_zero_gives_minimum_norm_least_squares():
    x, y, _ = _data(5, 12)
    w = dropout_ridge_solution(x, y, 0.0)
    assert torch.allclose(w, torch.linalg.pinv(x) @ y)
    assert torch.allclose(x @ w, y, atol=1e-10)  # more inputs than examples: interpolates


def test_zero_column_gets_zero_weight():
    x, y, _ = _data(10, 3)
    x[:, 1] = 0
    w = dropout_ridge_solution(x, y, 0.5)
    assert w[1] == 0
    assert torch.allclose(w[[0, 2]], dropout_ridge_solution(x[:, [0, 2]], y, 0.5))


def test_solution_shrinks_toward_zero_as_p_grows():
    x, y, _ = _data(40, 4)
    assert dropout_ridge_solution(x, y, 0.999).norm() < 0.01 * dropout_ridge_solution(x, y, 0.0).norm()


def test_equivalent_weight_decay():
    x, _, _ = _data(50, 3)
    lam = equivalent_weight_decay(x, 0.5)
    assert torch.allclose(lam, 2 * (x * x).sum(0) / 50)
    standardized = (x - x.mean(0)) / x.std(0, unbiased=False)
    six = torch.full((3,), 6.0, dtype=torch.float64)  # 2p/q at p = 0.75
    assert torch.allclose(equivalent_weight_decay(standardized, 0.75), six)


def test_stable_learning_rate():
    assert stable_learning_rate(torch.eye(4) * 2.0, 0.5) == pytest.approx(0.125)
    x, _, _ = _data(30, 4)
    assert stable_learning_rate(x, 0.8) < stable_learning_rate(x, 0.2)
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="fraction"):
            stable_learning_rate(x, 0.5, fraction=bad)


# --- training -------------------------------------------------------------------------------------


def test_one_step_matches_autograd_on_the_torch_unit():
    """train_linear_unit's step is the SGD step of Dropout -> Linear for the same mask."""
    x, y, w0 = _data(6, 4)
    p, lr, seed = 0.3, 0.01, 5
    run = train_linear_unit(x, y, p, steps=1, lr=lr, init=w0, seed=seed)
    keep = torch.rand((1, 6, 4), generator=torch.Generator().manual_seed(seed), dtype=torch.float64)[0] >= p
    unit = nn.Sequential(nn.Identity(), nn.Linear(4, 1, bias=False)).double()
    with torch.no_grad():
        unit[1].weight.copy_(w0)
    loss = ((unit(x * keep / (1 - p))[:, 0] - y) ** 2).mean()
    loss.backward()
    expected = w0 - lr * unit[1].weight.grad[0]
    assert torch.allclose(run.weight, expected, atol=1e-12)
    assert run.losses[0].item() == pytest.approx(loss.item())


def test_shapes_for_one_and_several_units():
    x, y, _ = _data(10, 3)
    one = train_linear_unit(x, y, 0.5, steps=20, record_every=5)
    assert one.weight.shape == (3,) and one.norms.shape == (5,) and one.steps == [0, 5, 10, 15, 20]
    several = train_linear_unit(x, y, [0.0, 0.5], steps=7, record_every=5)
    assert several.weight.shape == (2, 3) and several.norms.shape == (3, 2) and several.steps == [0, 5, 7]
    assert several.p == (0.0, 0.5) and len(several.lr) == 2


def test_training_is_seeded_and_leaves_the_global_rng_alone():
    x, y, _ = _data(10, 3)
    torch.manual_seed(0)
    before = torch.rand(3)
    torch.manual_seed(0)
    a = train_linear_unit(x, y, 0.4, steps=30, seed=2)
    assert torch.equal(torch.rand(3), before)
    b = train_linear_unit(x, y, 0.4, steps=30, seed=2)
    c = train_linear_unit(x, y, 0.4, steps=30, seed=3)
    assert torch.equal(a.weight, b.weight) and not torch.equal(a.weight, c.weight)


def test_without_dropout_training_reaches_least_squares():
    x, y, _ = _data(40, 3)
    run = train_linear_unit(x, y, 0.0, steps=2000)
    assert torch.allclose(run.weight, dropout_ridge_solution(x, y, 0.0), atol=1e-6)


def test_adaptive_weight_decay_reaches_the_ridge_solution():
    """Gradient descent with lambda_j = equivalent_weight_decay is descent on the expected dropout loss."""
    x, y, _ = _data(40, 3)
    run = train_linear_unit(x, y, 0.0, steps=3000, lr=stable_learning_rate(x, 0.0),
                            weight_decay=equivalent_weight_decay(x, 0.5))
    assert torch.allclose(run.weight, dropout_ridge_solution(x, y, 0.5), atol=1e-6)


def test_dropout_training_reaches_the_ridge_solution():
    x, y, _ = _data(50, 3)
    run = train_linear_unit(x, y, [0.3, 0.6], steps=3000, copies=8, decay_steps=300)
    for p, w in zip((0.3, 0.6), run.weight, strict=True):
        target = dropout_ridge_solution(x, y, p)
        assert (w - target).norm() / target.norm() < 0.03


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"p": 1.0}, ValueError, "below 1"),
        ({"p": []}, ValueError, "at least one"),
        ({"lr": -0.1}, ValueError, "lr"),
        ({"lr": [0.1, 0.2]}, ValueError, "one per unit"),
        ({"weight_decay": -1.0}, ValueError, "non-negative"),
        ({"weight_decay": "0.1"}, TypeError, "weight_decay"),
        ({"weight_decay": torch.zeros(2)}, ValueError, "weight_decay"),
        ({"init": torch.zeros(4)}, ValueError, "init"),
        ({"steps": 0}, ValueError, "steps"),
        ({"copies": 1.5}, TypeError, "copies"),
    ],
)
def test_training_rejects_bad_arguments(kwargs, error, match):
    x, y, _ = _data(10, 3)
    arguments = {"p": 0.5, "steps": 3, **kwargs}
    with pytest.raises(error, match=match):
        train_linear_unit(x, y, **arguments)


# --- data and experiments -------------------------------------------------------------------------


def test_linear_problem():
    data = linear_problem([1.0, 0.0, -1.0], 200, n_test=50, noise=0.0, correlation=0.5, scales=[1, 2, 3])
    assert data.x_train.shape == (200, 3) and data.y_test.shape == (50, 1)
    assert torch.allclose(data.y_train[:, 0], data.x_train[:, 0] - data.x_train[:, 2], atol=1e-5)
    corr = np.corrcoef(data.x_train.numpy().T)
    assert 0.3 < corr[0, 1] < 0.7
    assert torch.equal(data.x_train, linear_problem([1.0, 0.0, -1.0], 200, n_test=50, noise=0.0,
                                                    correlation=0.5, scales=[1, 2, 3]).x_train)
    with pytest.raises(ValueError, match="correlation"):
        linear_problem([1.0], 5, correlation=1.0)
    with pytest.raises(ValueError, match="scales"):
        linear_problem([1.0, 2.0], 5, scales=[1.0])
    with pytest.raises(ValueError, match="noise"):
        linear_problem([1.0], 5, noise=-1.0)


def test_small_problem():
    data = small_problem(seed=1)
    assert data.n_train == 50 and data.n_features == 5
    assert torch.equal(data.x_train, small_problem(seed=1).x_train)


def test_wide_unit_experiment_small():
    torch.manual_seed(0)
    before = torch.rand(2)
    torch.manual_seed(0)
    r = wide_unit_experiment(seed=1, n_inputs=300, n_train=20, steps=400)
    assert torch.equal(torch.rand(2), before)
    assert isinstance(r.unit[0], nn.Dropout) and r.unit[1].weight.shape == (1, 300)
    assert torch.equal(r.unit[1].weight.detach()[0], r.init)
    final = {name: run.norms[-1].item() for name, run in r.runs.items()}
    assert final["no dropout"] == pytest.approx(r.limit_without_dropout.norm().item(), rel=1e-3)
    assert final["adaptive weight decay"] < final["no dropout"]
    assert torch.allclose(r.ridge, dropout_ridge_solution(r.data.x_train, r.data.y_train, 0.5))
    with pytest.raises(ValueError, match="positive"):
        wide_unit_experiment(p=0.0, n_inputs=10, n_train=5, steps=1)


def test_validation_split_is_disjoint_standardized_and_keeps_the_test_set():
    from dropoutlib.course.data import load_digits

    d = validation_split(3)
    assert d["x_train"].shape == (200, 64) and d["x_val"].shape == (100, 64)
    assert torch.equal(d["y_test"], load_digits(seed=3).y_test)
    assert d["x_train"].mean(0).abs().max() < 1e-5
    assert set(d["y_train"].tolist()) == set(range(10)) == set(d["y_val"].tolist())
    rows = {tuple(r) for r in d["x_train"].tolist()}
    assert sum(tuple(r) in rows for r in d["x_val"].tolist()) <= 2  # digits has a few duplicate images


def test_controlled_comparison_members_match_plain_adam_with_weight_decay():
    settings = {"none": (0.0, 0.0, 0.0), "wd 0.01": (0.0, 0.0, 1e-2), "dropout 0.5": (0.2, 0.5, 0.0)}
    r = controlled_comparison([2], settings=settings, epochs=5, hidden=16)
    assert r.test_err["none"].shape == (1, 5) and r.train_err["none"].shape == (1,)
    from dropoutlib.course.batched import BatchedMLP

    d = validation_split(2)
    for name in ("none", "wd 0.01"):
        net = BatchedMLP(64, [16], 10, seeds=[2]).member(0)  # the same initial weights
        opt = torch.optim.Adam(net.parameters(), lr=reg.CONTROLLED_LR, weight_decay=settings[name][2])
        for _ in range(5):
            opt.zero_grad()
            nn.functional.cross_entropy(net(d["x_train"]), d["y_train"]).backward()
            opt.step()
        with torch.no_grad():
            val = nn.functional.cross_entropy(net(d["x_val"]), d["y_val"]).item()
            norm = sum(float((q**2).sum()) for q in net.parameters()) ** 0.5
        assert r.val_loss[name][0, -1] == pytest.approx(val, rel=1e-4)
        assert r.weight_norm[name][0, -1] == pytest.approx(norm, rel=1e-4)
    assert r.weight_norm["none"][0, -1] > r.weight_norm["wd 0.01"][0, -1]
    with pytest.raises(ValueError, match="seed"):
        controlled_comparison([], settings=settings)


def test_max_norm_projects_only_the_units_outside_the_ball_and_binds_only_when_small():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(3, 5, 7, generator=g)
    before = w.clone()
    radius = torch.tensor([0.5, 1.0, 100.0]).view(-1, 1, 1)
    project_max_norm(w, radius)
    norms, old = w.norm(dim=1), before.norm(dim=1)
    assert (norms <= radius.view(-1, 1) * (1 + 1e-6)).all()
    inside = old <= radius.view(-1, 1)
    assert torch.equal(w.transpose(1, 2)[inside], before.transpose(1, 2)[inside])  # untouched
    assert torch.allclose(norms[~inside], radius.expand(3, 1, 7).squeeze(1)[~inside])  # on the sphere
    assert not inside[0].all() and inside[2].all()
    # in training: a radius no unit reaches changes nothing; a small one does
    settings = {"dropout 0.5": (0.2, 0.5, 0.0), "loose": (0.2, 0.5, 0.0, 1e6), "tight": (0.2, 0.5, 0.0, 0.3)}
    r = controlled_comparison([1], settings=settings, epochs=4, hidden=8)
    assert np.array_equal(r.val_loss["loose"], r.val_loss["dropout 0.5"])
    assert not np.array_equal(r.val_loss["tight"], r.val_loss["dropout 0.5"])
    for bad in ((0.2, 0.5, 0.0, -1.0), (0.2, 0.5), (0.2, 0.5, 0.0, float("nan"))):
        with pytest.raises(ValueError, match="settings\\['bad'\\]"):
            controlled_comparison([1], settings={"bad": bad}, epochs=1, hidden=4)


def _synthetic(val_loss, test_err):
    arrays = {name: np.asarray(v, dtype=float) for name, v in val_loss.items()}
    errs = {name: np.asarray(v, dtype=float) for name, v in test_err.items()}
    zeros = {name: np.zeros(v.shape[0]) for name, v in arrays.items()}
    settings = dict.fromkeys(arrays, (0.0, 0.0, 0.0))
    return ControlledComparison((0,), settings, arrays, arrays, errs, errs, errs, zeros)


def test_procedures_choose_on_validation_only():
    # one seed, three epochs; the test error is best where the validation loss is worst
    val = {"none": [[0.5, 0.2, 0.4]], "wd 0.001": [[0.3, 0.3, 0.1]], "wd 0.01": [[0.1, 0.1, 0.3]],
           "dropout 0.5": [[0.4, 0.4, 0.4]], "dropout 0.8": [[0.4, 0.4, 0.2]],
           "max-norm 1": [[0.4, 0.4, 0.3]], "max-norm 4": [[0.1, 0.1, 0.35]]}
    test = {"none": [[0.9, 0.3, 0.1]], "wd 0.001": [[0.9, 0.9, 0.2]], "wd 0.01": [[0.0, 0.0, 0.0]],
            "dropout 0.5": [[0.5, 0.5, 0.5]], "dropout 0.8": [[0.9, 0.9, 0.25]],
            "max-norm 1": [[0.9, 0.9, 0.15]], "max-norm 4": [[0.0, 0.0, 0.0]]}
    values = procedure_values(_synthetic(val, test))
    assert list(values) == list(PROCEDURES)
    assert values["no regularization"].tolist() == [0.1]
    assert values["early stopping"].tolist() == [0.3]  # epoch 2, lowest validation loss
    assert values["weight decay, tuned"].tolist() == [0.2]  # wd 0.001: lowest *final* validation loss
    assert values["dropout, tuned"].tolist() == [0.25]
    assert values["dropout, p = 0.5"].tolist() == [0.5]
    assert values["dropout + max-norm, tuned"].tolist() == [0.15]  # max-norm 1: lower final loss


def test_controlled_claims_fail_when_dropout_does_not_help():
    r = controlled_comparison([0, 1], epochs=2, hidden=8)
    fig, ax = plt.subplots()
    plot_procedures(ax, r)
    assert len(ax.get_xticklabels()) == len(PROCEDURES)
    plt.close(fig)
    # three seeds, one epoch: dropout errs exactly as often as no regularization
    flat = {"none": [[0.10], [0.12], [0.08]], "wd 0.001": [[0.05], [0.06], [0.04]],
            "dropout 0.5": [[0.10], [0.12], [0.08]], "max-norm 4": [[0.10], [0.12], [0.08]]}
    synthetic = _synthetic(flat, flat)
    synthetic = ControlledComparison((0, 1, 2), synthetic.settings, *(
        getattr(synthetic, f) for f in ("val_loss", "val_err", "test_loss", "test_err", "weight_norm",
                                         "train_err")))
    holds = {c.statement: c.holds for c in controlled_claims(synthetic)}
    assert not holds["dropout, tuned lowers the test error vs no regularization (mean + 2 SE)"]
    assert holds["weight decay, tuned lowers the test error vs no regularization (mean + 2 SE)"]


def test_logistic_penalty_is_the_second_order_term_and_holds_no_label():
    x, y = logistic_problem(1, n=50)
    beta = torch.tensor([0.2, -0.1, 0.1, 0.05, -0.05], dtype=torch.float64)  # small: the expansion holds
    samples = sample_logistic_penalty(x, beta, 0.2, 40_000, torch.Generator().manual_seed(0))
    assert float(samples.mean()) == pytest.approx(float(logistic_dropout_penalty(x, beta, 0.2)), rel=0.05)
    # the exact penalty is the dropout log-loss minus the clean log-loss, for either labelling
    g = torch.Generator().manual_seed(1)
    keep = torch.rand(4000, *x.shape, generator=g, dtype=torch.float64) >= 0.2
    eta = (x * keep / 0.8) @ beta
    for labels in (y, 1 - y):
        dropped = nn.functional.binary_cross_entropy_with_logits(eta, labels.expand_as(eta), reduction="sum")
        clean = nn.functional.binary_cross_entropy_with_logits(x @ beta, labels, reduction="sum")
        assert float(dropped / 4000 - clean) == pytest.approx(float(samples.mean()), abs=0.02)


def test_fit_logistic_methods():
    x, y = logistic_problem(0, n=100)
    mle = fit_logistic(x, y, 0.0, method="none", steps=2000)
    quadratic = fit_logistic(x, y, 0.3, method="quadratic", steps=2000)
    assert quadratic.norm() < mle.norm()
    with pytest.raises(ValueError, match="method"):
        fit_logistic(x, y, 0.3, method="ridge")
