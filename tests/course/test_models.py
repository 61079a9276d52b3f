"""mlp: layer order, where dropout goes (and where it never goes), and argument checks."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from dropoutlib.course.models import mlp
from dropoutlib.nn.dropout import Dropout

FAST = settings(max_examples=60, deadline=None)


def kinds(model: nn.Sequential) -> list[str]:
    return [type(layer).__name__ for layer in model]


def test_layer_order_with_input_and_hidden_dropout() -> None:
    model = mlp(64, [32, 16], 10, p=0.5, input_p=0.2)
    assert kinds(model) == [
        "Dropout", "Linear", "ReLU", "Dropout", "Linear", "ReLU", "Dropout", "Linear",
    ]  # fmt: skip
    assert [layer.p for layer in model if isinstance(layer, nn.Dropout)] == [0.2, 0.5, 0.5]
    widths = [(layer.in_features, layer.out_features) for layer in model if isinstance(layer, nn.Linear)]
    assert widths == [(64, 32), (32, 16), (16, 10)]


def test_no_dropout_layers_when_p_is_zero() -> None:
    assert kinds(mlp(64, [32, 16], 10)) == ["Linear", "ReLU", "Linear", "ReLU", "Linear"]


def test_input_dropout_only() -> None:
    assert kinds(mlp(8, [4], 2, input_p=0.1)) == ["Dropout", "Linear", "ReLU", "Linear"]


def test_empty_hidden_is_logistic_regression() -> None:
    assert kinds(mlp(64, [], 10)) == ["Linear"]
    assert kinds(mlp(64, (), 10, input_p=0.2)) == ["Dropout", "Linear"]


@FAST
@given(
    hidden=st.lists(st.integers(1, 8), max_size=4),
    p=st.sampled_from([0.0, 0.1, 0.5, 1.0]),
    input_p=st.sampled_from([0.0, 0.3]),
)
def test_dropout_placement_for_any_architecture(hidden: list[int], p: float, input_p: float) -> None:
    if not hidden:
        p = 0.0
    model = mlp(3, hidden, 2, p=p, input_p=input_p)
    layers = list(model)
    assert isinstance(layers[-1], nn.Linear), "the output layer is never followed by dropout"
    assert layers[-1].out_features == 2
    assert isinstance(layers[0], nn.Dropout) == (input_p > 0)
    n_dropout = sum(isinstance(layer, nn.Dropout) for layer in layers)
    assert n_dropout == (input_p > 0) + len(hidden) * (p > 0)
    for before, layer in zip(layers, layers[1:], strict=False):
        if isinstance(layer, nn.Dropout):
            assert isinstance(before, nn.ReLU), "hidden dropout comes right after an activation"
    for i, layer in enumerate(layers):
        if isinstance(layer, nn.ReLU):
            assert isinstance(layers[i + 1], nn.Dropout) == (p > 0), "dropout after each activation"


def test_custom_activation_and_dropout_layer() -> None:
    model = mlp(5, [7], 3, p=0.25, activation=nn.Tanh, dropout_layer=Dropout)
    assert kinds(model) == ["Linear", "Tanh", "Dropout", "Linear"]
    assert isinstance(model[2], Dropout) and model[2].p == 0.25
    assert model[1] is not mlp(5, [7], 3, activation=nn.Tanh)[1]


def test_ours_and_torchs_dropout_give_the_same_network_outputs() -> None:
    torch.manual_seed(0)
    reference = mlp(6, [16, 16], 3, p=0.5, input_p=0.2)
    torch.manual_seed(0)
    ours = mlp(6, [16, 16], 3, p=0.5, input_p=0.2, dropout_layer=Dropout)
    x = torch.randn(8, 6)
    torch.manual_seed(1)
    a = reference(x)
    torch.manual_seed(1)
    assert torch.equal(a, ours(x))


def test_output_shape_and_modes() -> None:
    model = mlp(4, [32], 3, p=0.5)
    x = torch.randn(10, 4)
    assert model(x).shape == (10, 3)
    model.eval()
    assert torch.equal(model(x), model(x)), "evaluation mode is deterministic"
    model.train()
    assert not torch.equal(model(x), model(x)), "training mode samples new dropout masks"


@pytest.mark.parametrize(
    ("kwargs", "error", "fragment"),
    [
        ({"hidden": [64, -3]}, ValueError, "hidden[1]=-3"),
        ({"hidden": [0]}, ValueError, "hidden[0]=0"),
        ({"hidden": [2.5]}, TypeError, "hidden[0]=2.5"),
        ({"hidden": 64}, TypeError, "hidden=64 (int)"),
        ({"hidden": "64"}, TypeError, "hidden='64' (str)"),
        ({"in_features": 0}, ValueError, "in_features=0"),
        ({"out_features": -1}, ValueError, "out_features=-1"),
        ({"p": 1.5}, ValueError, "p=1.5"),
        ({"p": -0.1}, ValueError, "p=-0.1"),
        ({"p": "0.5"}, TypeError, "p='0.5'"),
        ({"input_p": 2}, ValueError, "input_p=2"),
        ({"hidden": [], "p": 0.5}, ValueError, "p=0.5 would have no effect"),
        ({"activation": "relu"}, TypeError, "activation='relu'"),
        ({"dropout_layer": 0.5}, TypeError, "dropout_layer=0.5"),
        ({"activation": lambda: "relu"}, TypeError, "must return nn.Module"),
    ],
)
def test_bad_arguments_name_the_argument_and_value(kwargs: dict, error: type, fragment: str) -> None:
    arguments = {"in_features": 8, "hidden": [4], "out_features": 2} | kwargs
    with pytest.raises(error) as info:
        mlp(**arguments)
    assert fragment in str(info.value)
