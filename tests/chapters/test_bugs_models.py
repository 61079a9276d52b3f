"""Each model of dropoutlib.experiments.bugs really has its bug, and its correct twin does not."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dropoutlib.course.models import mlp
from dropoutlib.diagnostics import dropout_layers
from dropoutlib.experiments.bugs import (
    REUSE_MODES,
    FunctionalDropoutMLP,
    KeepProbDropout,
    KeyedDropout,
    ReusedMaskMLP,
    bn_mlp,
    careful_mc_predict,
    mlp_with_output_dropout,
    naive_mc_predict,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def keep_patterns(model: nn.Module, x: torch.Tensor, calls: int) -> list[list[torch.Tensor]]:
    """Per call, each dropout layer's keep pattern (output != 0) on the elements with a nonzero input."""
    records: list[list[tuple[torch.Tensor, torch.Tensor]]] = []

    def hook(module, args, output):
        records[-1].append((args[0] != 0, output != 0))

    handles = [layer.register_forward_hook(hook) for _, layer in dropout_layers(model)]
    try:
        for _ in range(calls):
            records.append([])
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    return records


def same_on_common(a: tuple[torch.Tensor, torch.Tensor], b: tuple[torch.Tensor, torch.Tensor]) -> bool:
    both = a[0] & b[0]
    assert both.sum() > 50, "too few nonzero inputs for the comparison to mean anything"
    return torch.equal(a[1][both], b[1][both])


# ----------------------------------------------------------------------------------------------------
# FunctionalDropoutMLP


def test_functional_bug_keeps_dropout_on_in_eval_mode():
    torch.manual_seed(0)
    x = torch.randn(16, 8)
    buggy = FunctionalDropoutMLP(8, 32, 3, p=0.5, respect_training=False).eval()
    assert not torch.equal(buggy(x), buggy(x))


def test_functional_twin_is_deterministic_in_eval_and_random_in_training():
    torch.manual_seed(0)
    x = torch.randn(16, 8)
    model = FunctionalDropoutMLP(8, 32, 3, p=0.5)
    assert not torch.equal(model(x), model(x))
    model.eval()
    assert torch.equal(model(x), model(x))


def test_functional_twins_compute_the_same_network():
    torch.manual_seed(0)
    x = torch.randn(4, 8)
    good = FunctionalDropoutMLP(8, [16, 16], 3, p=0.5)
    bad = FunctionalDropoutMLP(8, [16, 16], 3, p=0.5, respect_training=False)
    bad.load_state_dict(good.state_dict())
    torch.manual_seed(1)
    a = good(x)
    torch.manual_seed(1)
    assert torch.equal(a, bad(x))  # same masks in training mode: only eval mode differs


def test_functional_mlp_has_no_dropout_modules_and_two_layers_for_an_int_hidden():
    model = FunctionalDropoutMLP(8, 16, 3)
    assert dropout_layers(model) == []
    assert [layer.out_features for layer in model.hidden] == [16, 16]
    assert "respect_training=True" in repr(model)


# ----------------------------------------------------------------------------------------------------
# KeyedDropout and ReusedMaskMLP


def test_keyed_dropout_one_key_one_mask_and_none_is_nn_dropout():
    x = torch.ones(8, 32)
    layer = KeyedDropout(0.5)
    assert torch.equal(layer(x, key=3), layer(x, key=3))
    assert not torch.equal(layer(x, key=3), layer(x, key=4))
    torch.manual_seed(0)
    ours = layer(x)
    torch.manual_seed(0)
    assert torch.equal(ours, nn.Dropout(0.5)(x))
    assert layer.eval()(x, key=3) is x


def test_reuse_steps_gives_identical_masks_on_every_call_but_different_layers():
    torch.manual_seed(0)
    model = ReusedMaskMLP(8, 64, 3, p=0.5, reuse="steps")
    calls = keep_patterns(model, torch.randn(16, 8), calls=3)
    for layer in range(2):
        assert same_on_common(calls[0][layer], calls[1][layer])
        assert same_on_common(calls[0][layer], calls[2][layer])
    assert not same_on_common(calls[0][0], calls[0][1])


def test_reuse_layers_gives_identical_masks_across_layers_but_new_ones_each_call():
    torch.manual_seed(0)
    model = ReusedMaskMLP(8, 64, 3, p=0.5, reuse="layers")
    calls = keep_patterns(model, torch.randn(16, 8), calls=2)
    assert same_on_common(calls[0][0], calls[0][1])
    assert same_on_common(calls[1][0], calls[1][1])
    assert not same_on_common(calls[0][0], calls[1][0])


def test_reuse_none_gives_fresh_masks_everywhere():
    torch.manual_seed(0)
    model = ReusedMaskMLP(8, 64, 3, p=0.5, reuse=None)
    calls = keep_patterns(model, torch.randn(16, 8), calls=2)
    assert not same_on_common(calls[0][0], calls[0][1])
    assert not same_on_common(calls[0][0], calls[1][0])
    assert not same_on_common(calls[0][1], calls[1][1])


@pytest.mark.parametrize("reuse", REUSE_MODES)
def test_reused_mask_mlp_is_the_same_network_in_eval_mode(reuse):
    torch.manual_seed(0)
    x = torch.randn(4, 8)
    model = ReusedMaskMLP(8, 16, 3, reuse=reuse).eval()
    plain = mlp(8, [16, 16], 3)
    plain.load_state_dict(
        {
            "0.weight": model.hidden[0].weight,
            "0.bias": model.hidden[0].bias,
            "2.weight": model.hidden[1].weight,
            "2.bias": model.hidden[1].bias,
            "4.weight": model.out.weight,
            "4.bias": model.out.bias,
        }
    )
    assert torch.equal(model(x), plain(x))
    assert [name for name, _ in dropout_layers(model)] == ["dropouts.0", "dropouts.1"]


def test_reuse_layers_is_reproducible_from_the_global_seed():
    x = torch.randn(4, 8)
    model = ReusedMaskMLP(8, 16, 3, reuse="layers")
    torch.manual_seed(5)
    a = model(x)
    torch.manual_seed(5)
    assert torch.equal(a, model(x))


# ----------------------------------------------------------------------------------------------------
# KeepProbDropout, output dropout, BatchNorm and Monte Carlo prediction


def test_keep_prob_dropout_drops_one_minus_p():
    torch.manual_seed(0)
    y = KeepProbDropout(0.2)(torch.ones(20_000))
    assert abs((y == 0).float().mean().item() - 0.8) < 0.02
    assert set(y.unique().tolist()) == {0.0, 5.0}
    x = torch.ones(3)
    assert KeepProbDropout(0.2).eval()(x) is x


def test_output_dropout_zeroes_predictions_in_training_only():
    torch.manual_seed(0)
    x = torch.randn(256, 4)
    model = mlp_with_output_dropout(4, [16], 1, p=0.5)
    assert isinstance(model[-1], nn.Dropout) and isinstance(model[-2], nn.Linear)
    zeros = (model(x) == 0).float().mean().item()
    assert 0.35 < zeros < 0.65
    model.eval()
    assert (model(x) == 0).sum() == 0
    assert torch.equal(model(x), model[:-1](x))


def test_bn_mlp_layout():
    model = bn_mlp(4, 8, 3, p=0.5)
    kinds = [type(m).__name__ for m in model]
    assert kinds == ["Linear", "BatchNorm1d", "ReLU", "Dropout"] * 2 + ["Linear"]
    assert [type(m).__name__ for m in bn_mlp(4, [8], 3, p=0.0)] == ["Linear", "BatchNorm1d", "ReLU", "Linear"]


def trained_bn_model() -> nn.Sequential:
    torch.manual_seed(0)
    model = bn_mlp(4, [16], 3, p=0.5)
    with torch.no_grad():
        for _ in range(20):  # give BatchNorm running statistics that differ from the test batch's
            model(torch.randn(32, 4) * 3 + 2)
    return model.eval()


def test_naive_mc_predict_overwrites_batchnorm_statistics():
    model = trained_bn_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    probs = naive_mc_predict(model, torch.randn(16, 4), samples=3)
    assert probs.shape == (16, 3) and torch.allclose(probs.sum(dim=1), torch.ones(16))
    assert not torch.equal(before["1.running_mean"], model[1].running_mean)
    assert not any(m.training for m in model.modules())  # modes restored


def test_naive_mc_prediction_depends_on_the_rest_of_the_batch():
    model = trained_bn_model()
    x = torch.randn(16, 4)
    torch.manual_seed(1)
    alone = naive_mc_predict(model, x[:8], samples=1)
    model = trained_bn_model()
    torch.manual_seed(1)
    together = naive_mc_predict(model, x, samples=1)[:8]
    assert not torch.allclose(alone, together)


def test_careful_mc_predict_leaves_batchnorm_alone_and_samples_vary():
    model = trained_bn_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(16, 4)
    first = careful_mc_predict(model, x, samples=1)
    second = careful_mc_predict(model, x, samples=1)
    assert not torch.equal(first, second)  # dropout is on
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not any(m.training for m in model.modules())


def test_mc_predicts_restore_a_training_mode_too():
    model = bn_mlp(4, [8], 3).train()
    model[1].eval()
    modes = [m.training for m in model.modules()]
    for predict in (naive_mc_predict, careful_mc_predict):
        predict(model, torch.randn(8, 4), samples=2)
        assert [m.training for m in model.modules()] == modes


# ----------------------------------------------------------------------------------------------------
# Arguments


@pytest.mark.parametrize(
    ("build", "error", "match"),
    [
        (lambda: FunctionalDropoutMLP(8, "16", 3), TypeError, "hidden='16'"),
        (lambda: FunctionalDropoutMLP(8, [], 3), ValueError, "hidden"),
        (lambda: FunctionalDropoutMLP(8, [16, 0], 3), ValueError, r"hidden\[1\]=0"),
        (lambda: FunctionalDropoutMLP(8, 16, 3, p=1.5), ValueError, "p=1.5"),
        (lambda: FunctionalDropoutMLP(8, 16, 3, respect_training=1), TypeError, "respect_training=1"),
        (lambda: FunctionalDropoutMLP(0, 16, 3), ValueError, "in_features=0"),
        (lambda: ReusedMaskMLP(8, 16, 3, reuse="epochs"), ValueError, "reuse='epochs'"),
        (lambda: ReusedMaskMLP(8, 16, 3, seed=-1), ValueError, "seed=-1"),
        (lambda: KeepProbDropout(0.0), ValueError, "p=0.0"),
        (lambda: KeyedDropout(-0.1), ValueError, "p=-0.1"),
        (lambda: mlp_with_output_dropout(4, [8], 1, p=2), ValueError, "p=2"),
        (lambda: bn_mlp(4, True, 3), TypeError, "hidden=True"),
        (lambda: naive_mc_predict(nn.Linear(2, 2), torch.ones(2, 2), samples=0), ValueError, "samples=0"),
        (lambda: careful_mc_predict("model", torch.ones(2, 2), samples=1), TypeError, "model='model'"),
        (lambda: careful_mc_predict(nn.Linear(2, 2), torch.ones(2, 2, dtype=torch.int64), 1), TypeError, "x"),
    ],
)
def test_bad_arguments_are_refused_with_their_name_and_value(build, error, match):
    with pytest.raises(error, match=match):
        build()
