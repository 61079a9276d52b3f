"""fit and evaluate: determinism for a seed, what the history records, modes, output, arguments."""

from __future__ import annotations

import copy
import math
import re
from pathlib import Path

import pytest
import torch
from torch import nn

from dropoutlib.course.data import Split, load_digits, toy_regression
from dropoutlib.course.models import mlp
from dropoutlib.course.seeding import seed_everything
from dropoutlib.course.train import History, evaluate, fit

SANITIZE = Path(__file__).resolve().parents[1] / "nbval_sanitize.cfg"


@pytest.fixture(scope="module")
def digits() -> Split:
    return load_digits(n_train=300)


def run(data: Split, seed: int, *, init_seed: int | None = None, **kwargs) -> tuple[History, nn.Module]:
    """Build the model right after seeding (the chapters' pattern), then fit it."""
    seed_everything(seed if init_seed is None else init_seed)
    model = mlp(64, [32], 10, p=0.5)
    options = {"epochs": 4, "batch_size": 64, "progress": False} | kwargs
    return fit(model, data, seed=seed, **options), model


def same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# --- determinism ------------------------------------------------------------------------------------


def test_same_seed_gives_identical_history_and_weights(digits: Split) -> None:
    h1, m1 = run(digits, seed=11)
    h2, m2 = run(digits, seed=11)
    assert h1 == h2
    assert same_weights(m1, m2)


def test_different_seed_gives_a_different_run(digits: Split) -> None:
    h1, m1 = run(digits, seed=0)
    h2, m2 = run(digits, seed=1)
    assert h1 != h2
    assert not same_weights(m1, m2)


def test_result_does_not_depend_on_the_global_rng_before_the_call(digits: Split) -> None:
    seed_everything(0)
    model = mlp(64, [32], 10, p=0.5)
    twin = copy.deepcopy(model)
    h1 = fit(model, digits, epochs=3, batch_size=64, seed=5, progress=False)
    torch.rand(1000)  # move the global generator on: fit must reseed it for the dropout masks
    h2 = fit(twin, digits, epochs=3, batch_size=64, seed=5, progress=False)
    assert h1 == h2
    assert same_weights(model, twin)


def test_seed_sets_the_dropout_masks(digits: Split) -> None:
    # full batch: no shuffling, so only the dropout masks can differ between the two seeds
    h1, _ = run(digits, seed=0, init_seed=0, batch_size=None)
    h2, _ = run(digits, seed=1, init_seed=0, batch_size=None)
    assert h1.objective != h2.objective


def test_seed_sets_the_minibatch_order(digits: Split) -> None:
    # no dropout: only the order of the minibatches can differ between the two seeds
    def without_dropout(seed: int) -> History:
        seed_everything(0)
        return fit(mlp(64, [32], 10), digits, epochs=2, batch_size=64, seed=seed, progress=False)

    assert without_dropout(3) == without_dropout(3)
    assert without_dropout(3) != without_dropout(4)


# --- what the history records ----------------------------------------------------------------------


def test_history_records_every_epoch(digits: Split) -> None:
    history, model = run(digits, seed=0, epochs=5)
    assert history.epoch == [1, 2, 3, 4, 5]
    for values in (history.train_loss, history.test_loss, history.objective):
        assert len(values) == 5 and all(math.isfinite(v) and v >= 0 for v in values)
    assert all(0 <= a <= 1 for a in history.train_acc + history.test_acc)
    assert len(history.train_acc) == len(history.test_acc) == 5


def test_eval_every_records_every_kth_epoch_and_the_last(digits: Split) -> None:
    history, _ = run(digits, seed=0, epochs=7, eval_every=3)
    assert history.epoch == [3, 6, 7]
    assert len(history.objective) == len(history.test_acc) == 3


def test_recorded_losses_are_eval_mode_losses_on_the_whole_sets(digits: Split) -> None:
    history, model = run(digits, seed=0)
    model.train()  # evaluate must switch dropout off by itself
    assert evaluate(model, digits.x_train, digits.y_train) == (
        history.train_loss[-1],
        history.train_acc[-1],
    )
    assert evaluate(model, digits.x_test, digits.y_test) == (history.test_loss[-1], history.test_acc[-1])


def test_objective_is_the_training_loss_before_each_step(digits: Split) -> None:
    # Without dropout and with one full batch per epoch, epoch k's objective is the loss of the
    # weights left by epoch k-1, which the history recorded as epoch k-1's train_loss.
    seed_everything(0)
    model = mlp(64, [32], 10)
    history = fit(model, digits, epochs=5, batch_size=None, lr=1e-2, progress=False)
    assert history.objective[1:] == pytest.approx(history.train_loss[:-1], rel=1e-5)


def test_dropout_objective_is_above_the_eval_mode_training_loss(digits: Split) -> None:
    seed_everything(0)
    model = mlp(64, [64], 10, p=0.7)
    history = fit(model, digits, epochs=30, batch_size=None, lr=1e-2, progress=False)
    assert history.objective[-1] > history.train_loss[-1]


def test_training_learns_digits(digits: Split) -> None:
    history, _ = run(digits, seed=0, epochs=20, batch_size=32)
    assert history.test_acc[-1] > 0.85, history.final()
    assert history.train_loss[-1] < history.train_loss[0]


def test_regression_records_no_accuracy_and_reduces_the_loss() -> None:
    seed_everything(0)
    model = mlp(1, [16], 1)
    data = toy_regression()
    history = fit(model, data, epochs=100, lr=1e-2, task="regression", progress=False)
    assert history.train_acc == [] and history.test_acc == []
    assert history.train_loss[-1] < history.train_loss[0]
    assert "train_acc" not in history.final()
    assert history.gap() == history.test_loss[-1] - history.train_loss[-1]


def test_sgd_with_momentum_and_weight_decay_trains(digits: Split) -> None:
    history, _ = run(digits, seed=0, optimizer="sgd", lr=0.05, momentum=0.9, weight_decay=1e-4)
    assert history.train_loss[-1] < history.train_loss[0]


def test_weight_decay_shrinks_the_weights(digits: Split) -> None:
    _, plain = run(digits, seed=0, optimizer="sgd", lr=0.05, epochs=6)
    _, decayed = run(digits, seed=0, optimizer="sgd", lr=0.05, epochs=6, weight_decay=0.05)
    norm = lambda m: sum(p.square().sum() for p in m.parameters())  # noqa: E731
    assert norm(decayed) < norm(plain)


def test_history_final_and_gap() -> None:
    h = History([1, 2], [0.9, 0.4], [1.0, 0.6], [0.5, 0.95], [0.5, 0.9], [1.2, 0.5])
    assert h.final() == {
        "epoch": 2, "train_loss": 0.4, "test_loss": 0.6, "train_acc": 0.95, "test_acc": 0.9,
        "objective": 0.5,
    }  # fmt: skip
    assert h.gap() == pytest.approx(0.05)
    with pytest.raises(ValueError, match="empty"):
        History().final()


# --- modes, threads and output ----------------------------------------------------------------------


def test_model_is_left_in_eval_mode(digits: Split) -> None:
    _, model = run(digits, seed=0)
    assert not model.training
    assert not any(module.training for module in model.modules())


def test_torch_thread_setting_is_restored(digits: Split) -> None:
    before = torch.get_num_threads()
    run(digits, seed=0, epochs=1)
    assert torch.get_num_threads() == before


def test_evaluate_restores_every_submodules_mode() -> None:
    model = mlp(4, [8], 3, p=0.5)
    model.train()
    model[2].eval()  # a mixed state must come back exactly
    modes = [m.training for m in model.modules()]
    evaluate(model, torch.randn(5, 4), torch.tensor([0, 1, 2, 0, 1]))
    assert [m.training for m in model.modules()] == modes
    model.eval()
    evaluate(model, torch.randn(5, 4), torch.tensor([0, 1, 2, 0, 1]))
    assert not model.training


def test_evaluate_known_values() -> None:
    logits = nn.Linear(1, 2)
    with torch.no_grad():
        logits.weight.copy_(torch.tensor([[1.0], [-1.0]]))
        logits.bias.zero_()
    x = torch.tensor([[1.0], [-1.0], [2.0]])
    loss, acc = evaluate(logits, x, torch.tensor([0, 1, 1]))
    expected = torch.nn.functional.cross_entropy(logits(x), torch.tensor([0, 1, 1])).item()
    assert loss == pytest.approx(expected)
    assert acc == pytest.approx(2 / 3)
    assert evaluate(nn.Identity(), x, torch.zeros(3, 1), task="regression") == (2.0, None)


def test_nothing_on_stdout_and_one_sanitizable_progress_line(
    digits: Split, capsys: pytest.CaptureFixture[str]
) -> None:
    run(digits, seed=0, epochs=3, progress=True)
    out, err = capsys.readouterr()
    assert out == ""
    assert "training" in err and "100%" in err
    # what nbval does to a stored stream: drop what carriage returns overwrote, then sanitize
    plugin = pytest.importorskip("nbval.plugin")
    sanitized = plugin.carriagereturn_pat.sub("", err)
    for regex, replace in plugin.get_sanitize_patterns(SANITIZE.read_text()):
        sanitized = re.sub(regex, replace, sanitized)
    assert sanitized.strip() == "training: <progress bar>", repr(sanitized)


def test_progress_false_prints_nothing(digits: Split, capsys: pytest.CaptureFixture[str]) -> None:
    run(digits, seed=0, epochs=2, progress=False)
    assert capsys.readouterr() == ("", "")


# --- argument checks --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "fragment"),
    [
        ({"epochs": 0}, ValueError, "epochs=0"),
        ({"epochs": -3}, ValueError, "epochs=-3"),
        ({"epochs": 2.0}, TypeError, "epochs=2.0"),
        ({"epochs": True}, TypeError, "epochs=True"),
        ({"lr": 0}, ValueError, "lr=0"),
        ({"lr": -1e-3}, ValueError, "lr=-0.001"),
        ({"lr": float("nan")}, ValueError, "lr=nan"),
        ({"lr": "0.1"}, TypeError, "lr='0.1'"),
        ({"batch_size": 0}, ValueError, "batch_size=0"),
        ({"batch_size": 32.5}, TypeError, "batch_size=32.5"),
        ({"optimizer": "rmsprop"}, ValueError, "optimizer='rmsprop'"),
        ({"momentum": -0.5}, ValueError, "momentum=-0.5"),
        ({"weight_decay": -1}, ValueError, "weight_decay=-1"),
        ({"task": "classify"}, ValueError, "task='classify'"),
        ({"seed": -1}, ValueError, "seed=-1"),
        ({"progress": 1}, TypeError, "progress=1"),
        ({"eval_every": 0}, ValueError, "eval_every=0"),
        ({"num_threads": 0}, ValueError, "num_threads=0"),
    ],
)
def test_bad_arguments_name_the_argument_and_value(
    digits: Split, kwargs: dict, error: type, fragment: str
) -> None:
    options = {"epochs": 1, "progress": False} | kwargs
    with pytest.raises(error) as info:
        fit(mlp(64, [8], 10), digits, **options)
    assert fragment in str(info.value)


def test_bad_model_data_and_task_combinations(digits: Split) -> None:
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        fit("model", digits, epochs=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="data must be a dropoutlib.course.data.Split"):
        fit(mlp(64, [8], 10), (digits.x_train, digits.y_train), epochs=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="task='regression' needs floating-point targets"):
        fit(mlp(64, [8], 10), digits, epochs=1, task="regression")
    with pytest.raises(TypeError, match="task='classification' needs int64 class indices"):
        fit(mlp(1, [8], 1), toy_regression(), epochs=1)
    with pytest.raises(ValueError, match="n_classes >= 10"):
        fit(mlp(64, [8], 5), digits, epochs=1)
    with pytest.raises(ValueError, match="output shape must match"):
        fit(mlp(1, [8], 3), toy_regression(), epochs=1, task="regression")
    with pytest.raises(ValueError, match="task must be one of"):
        evaluate(nn.Identity(), torch.zeros(2, 1), torch.zeros(2, 1), task="mse")
