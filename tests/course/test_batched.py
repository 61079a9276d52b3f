"""Batched training of many MLPs (course.batched): every member is the network it would be alone."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import numpy as np
import pytest
import torch
from torch.nn import functional as F

from dropoutlib.course.batched import BatchedMLP, Recipe, fit_members
from dropoutlib.course.data import Split, load_digits
from dropoutlib.course.stats import paired_gain
from dropoutlib.course.train import fit

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def digits() -> Split:
    return load_digits(n_train=80)


def _same_parameters(model: torch.nn.Module, other: torch.nn.Module, atol: float = 1e-5) -> bool:
    a, b = list(model.parameters()), list(other.parameters())
    return len(a) == len(b) and all(torch.allclose(x, y, atol=atol) for x, y in zip(a, b, strict=True))


# --- one member is one network -----------------------------------------------------------------------


def test_member_computes_what_the_batched_model_computes():
    model = BatchedMLP(64, [20, 16], 10, seeds=[3, 4, 5], p=[0.0, 0.5, 0.2], input_p=0.1).eval()
    x = torch.randn(7, 64)
    out = model(x)
    for m in range(3):
        assert torch.allclose(out[m], model.member(m).eval()(x), atol=1e-6)


def test_initial_weights_depend_only_on_the_seed_and_match_nn_linear_bounds():
    a = BatchedMLP(64, [32], 10, seeds=[7, 8], p=[0.0, 0.5])
    b = BatchedMLP(64, [32], 10, seeds=[9, 7], p=[0.3, 0.0])
    assert torch.equal(a.weights[0][0], b.weights[0][1]) and torch.equal(a.biases[1][0], b.biases[1][1])
    assert not torch.equal(a.weights[0][0], a.weights[0][1])
    assert a.weights[0].abs().max() <= 1 / 8 and a.weights[1].abs().max() <= 1 / 32**0.5


def test_member_layers_follow_the_placement():
    model = BatchedMLP(
        8, [4], 3, seeds=[0, 1], p=0.5, placement=["after", "before"], input_p=0.2, output_p=0.1
    )
    after = [type(layer).__name__ for layer in model.member(0)]
    before = [type(layer).__name__ for layer in model.member(1)]
    assert after == ["Dropout", "Linear", "ReLU", "Dropout", "Linear", "Dropout"]
    assert before == ["Dropout", "Linear", "Dropout", "ReLU", "Linear", "Dropout"]


def test_full_batch_training_without_dropout_matches_fit(digits):
    model = BatchedMLP(64, [16, 16], 10, seeds=[0, 1])
    single = model.member(1)
    history = fit_members(model, digits, epochs=15, lr=1e-2)
    reference = fit(single, digits, epochs=15, lr=1e-2, progress=False)
    assert _same_parameters(model.member(1), single)
    assert history.final("test_acc")[1] == pytest.approx(reference.test_acc[-1], abs=1e-9)
    assert history.final("train_loss")[1] == pytest.approx(reference.train_loss[-1], rel=1e-4)


def _train_alone(
    model: BatchedMLP, m: int, data: Split, *, epochs: int, lr: float, batch_size: int
) -> torch.nn.Module:
    """Member m trained by hand as an ordinary network, with the same generators as fit_members."""
    net = model.member(m)
    seed = model.seeds[m]
    order_generator = torch.Generator().manual_seed(seed + 2**32)
    mask_generator = torch.Generator().manual_seed(seed + 2**33)
    optimizer = torch.optim.Adam(net.parameters(), lr=lr, foreach=True)
    p = model.p[m]
    linears = [layer for layer in net if isinstance(layer, torch.nn.Linear)]
    n = data.n_train
    for _ in range(epochs):
        order = torch.randperm(n, generator=order_generator)
        for i in range(0, n, batch_size):
            xb, yb = data.x_train[order[i : i + batch_size]], data.y_train[order[i : i + batch_size]]
            h = xb
            for layer, linear in enumerate(linears):
                h = linear(h)
                if layer < len(linears) - 1:
                    h = torch.relu(h)
                    if p > 0:
                        keep = torch.empty(h.shape).uniform_(generator=mask_generator) >= p
                        h = h * keep / (1 - p)
            optimizer.zero_grad()
            F.cross_entropy(h, yb).backward()
            optimizer.step()
    return net


@pytest.mark.parametrize("m", [0, 1, 2])
def test_a_batched_member_matches_a_separately_trained_network_with_the_same_masks(digits, m):
    model = BatchedMLP(64, [24, 16], 10, seeds=[5, 6, 5], p=[0.5, 0.0, 0.3])
    alone = _train_alone(model, m, digits, epochs=3, lr=3e-3, batch_size=32)
    fit_members(model, digits, epochs=3, lr=3e-3, batch_size=32)
    assert _same_parameters(model.member(m), alone, atol=1e-5)


def test_a_member_does_not_depend_on_the_other_members(digits):
    crowd = BatchedMLP(64, [16], 10, seeds=[0, 1, 2], p=[0.5, 0.0, 0.3], input_p=[0.0, 0.2, 0.1])
    alone = BatchedMLP(64, [16], 10, seeds=[2], p=0.3, input_p=0.1)
    h_crowd = fit_members(crowd, digits, epochs=4, batch_size=20)
    h_alone = fit_members(alone, digits, epochs=4, batch_size=20)
    assert _same_parameters(crowd.member(2), alone.member(0), atol=1e-6)
    assert h_crowd.final("test_acc")[2] == h_alone.final("test_acc")[0]


def test_dropout_before_and_after_relu_give_identical_runs(digits):
    model = BatchedMLP(64, [16, 16], 10, seeds=[4, 4], p=0.5, placement=["after", "before"])
    history = fit_members(model, digits, epochs=5, batch_size=40)
    assert torch.equal(model.weights[0][0], model.weights[0][1])
    assert history.final("test_loss")[0] == history.final("test_loss")[1]


def test_dropout_before_and_after_sigmoid_differ(digits):
    model = BatchedMLP(64, [16], 10, seeds=[4, 4], p=0.5, placement=["after", "before"], activation="sigmoid")
    fit_members(model, digits, epochs=3)
    assert not torch.allclose(model.weights[0][0], model.weights[0][1])


def test_training_mode_drops_and_rescales_with_each_members_probability():
    model = BatchedMLP(1, [4000], 1, seeds=[0, 1], p=[0.0, 0.75])
    with torch.no_grad():
        model.weights[0].fill_(1.0)
        model.biases[0].zero_()
        model.weights[1].fill_(1.0)
        model.biases[1].zero_()
    generators = [torch.Generator().manual_seed(0), torch.Generator().manual_seed(1)]
    model.train()
    hidden = torch.ones(2, 1, 1)
    h = torch.relu(torch.baddbmm(model.biases[0], hidden, model.weights[0]))
    dropped = model._drop(h, "after", generators)
    assert torch.equal(dropped[0], h[0])
    kept = dropped[1] > 0
    assert kept.float().mean().item() == pytest.approx(0.25, abs=0.03)
    assert torch.allclose(dropped[1][kept], torch.tensor(4.0))


def test_history_records_curves_every_eval_every_epochs(digits):
    model = BatchedMLP(64, [8], 10, seeds=[0])
    history = fit_members(model, digits, epochs=7, eval_every=3)
    assert history.epoch == [3, 6, 7]
    assert history.train_acc.shape == history.objective.shape == (1, 3)
    assert not model.training


# --- analysis ---------------------------------------------------------------------------------------


def test_paired_gain():
    mean, std, se = paired_gain([0.9, 0.8, 0.85], [0.92, 0.83, 0.86])
    d = np.array([0.02, 0.03, 0.01])
    assert mean == pytest.approx(d.mean()) and std == pytest.approx(d.std(ddof=1))
    assert se == pytest.approx(std / 3**0.5)
    assert paired_gain([0.5], [0.7])[1:] == (0.0, 0.0)
    with pytest.raises(ValueError, match="one value per seed"):
        paired_gain([0.5, 0.6], [0.7])
    with pytest.raises(TypeError, match="base must be numbers"):
        paired_gain("abc", [0.1])


# --- arguments ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"epochs": 1.5}, TypeError, "epochs must be an integer"),
        ({"lr": 0}, ValueError, "lr must be a finite positive number"),
        ({"batch_size": 0}, ValueError, "batch_size must be a positive integer"),
    ],
)
def test_recipe_rejects_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        Recipe(**kwargs)


def test_batched_model_and_fit_members_reject_bad_arguments(digits):
    with pytest.raises(TypeError, match="seeds must be a non-empty sequence"):
        BatchedMLP(4, [3], 2, seeds=[])
    with pytest.raises(ValueError, match="one value or one per member"):
        BatchedMLP(4, [3], 2, seeds=[0, 1], p=[0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="seeds\\[1\\] must be an integer in"):
        BatchedMLP(4, [3], 2, seeds=[0, -1])
    model = BatchedMLP(64, [3], 10, seeds=[0, 1])
    with pytest.raises(ValueError, match="x must have shape"):
        model(torch.zeros(3, 2, 64))
    with pytest.raises(ValueError, match="m must be a member index"):
        model.member(2)
    with pytest.raises(TypeError, match="model must be a BatchedMLP"):
        fit_members(torch.nn.Linear(2, 2), digits, epochs=1)
    with pytest.raises(TypeError, match="sequence of 2 Splits"):
        fit_members(model, [digits], epochs=1)
    with pytest.raises(ValueError, match="same sizes"):
        fit_members(model, [digits, load_digits(n_train=90)], epochs=1)


def test_add_weight_decay_adds_each_members_l2_gradient_and_checks_its_shape():
    model = BatchedMLP(3, [4], 2, seeds=[0, 1, 2])
    model(torch.ones(5, 3)).sum().backward()
    before = [p.grad.clone() for p in model.parameters()]
    decay = torch.tensor([0.0, 0.1, 1.0])
    model.add_weight_decay(decay)
    for parameter, grad in zip(model.parameters(), before, strict=True):
        for m in range(3):
            torch.testing.assert_close(parameter.grad[m], grad[m] + decay[m] * parameter[m].detach())
    with pytest.raises(ValueError, match="one value per member"):
        model.add_weight_decay(torch.tensor([0.1, 0.1]))
