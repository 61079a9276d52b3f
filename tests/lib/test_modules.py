"""Dropout is a drop-in for torch.nn.Dropout; StandardDropout is its non-inverted sibling."""

from __future__ import annotations

import copy
import pickle

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from dropoutlib.nn.dropout import Dropout, StandardDropout

FAST = settings(max_examples=50, deadline=None)


def twin_networks(p: float, inplace: bool = False) -> tuple[nn.Sequential, nn.Sequential]:
    """The same MLP twice, once with torch's dropout layers and once with ours."""
    torch.manual_seed(0)
    # (In-place dropout right after a Linear is safe for autograd; after a ReLU it is not.)
    reference = nn.Sequential(
        nn.Linear(6, 16), nn.Dropout(p, inplace), nn.ReLU(), nn.Linear(16, 3), nn.Dropout(p)
    )
    ours = copy.deepcopy(reference)
    ours[1] = Dropout(p, inplace)
    ours[4] = Dropout(p)
    return reference, ours


@pytest.mark.parametrize("p", [0.0, 0.1, 0.5, 1.0, 0, 1, 1 / 3])
@pytest.mark.parametrize("inplace", [False, True])
def test_repr_matches_torch(p: float, inplace: bool) -> None:
    assert repr(Dropout(p, inplace)) == repr(nn.Dropout(p, inplace))
    assert repr(Dropout()) == repr(nn.Dropout()) == "Dropout(p=0.5, inplace=False)"


def test_default_attributes_match_torch() -> None:
    ours, theirs = Dropout(), nn.Dropout()
    assert (ours.p, ours.inplace, ours.training) == (theirs.p, theirs.inplace, theirs.training)


@pytest.mark.parametrize("p", [0.2, 0.5, 0.9])
@pytest.mark.parametrize("inplace", [False, True])
def test_sequential_matches_torch_in_training_and_eval(p: float, inplace: bool) -> None:
    reference, ours = twin_networks(p, inplace)
    x = torch.randn(32, 6)
    for seed in range(3):
        outputs, grads = [], []
        for net in (reference, ours):
            net.zero_grad()
            torch.manual_seed(seed)
            out = net(x)
            out.square().sum().backward()
            outputs.append(out)
            grads.append([param.grad for param in net.parameters()])
        assert torch.equal(outputs[0], outputs[1])
        for g_ref, g_ours in zip(*grads, strict=True):
            assert torch.equal(g_ref, g_ours)
    reference.eval()
    ours.eval()
    assert torch.equal(reference(x), ours(x))
    assert torch.equal(ours(x), ours(x)), "evaluation is deterministic"


def test_train_and_eval_modes() -> None:
    layer = Dropout(0.5)
    x = torch.ones(1000)
    assert layer.training
    assert (layer(x) == 0).any()
    assert layer.eval() is layer and not layer.training
    assert layer(x) is x
    layer.train()
    assert (layer(x) == 0).any()


@FAST
@given(
    p=st.floats(0.0, 1.0),
    shape=st.lists(st.integers(0, 5), max_size=4).map(tuple),
    seed=st.integers(0, 2**32 - 1),
    inplace=st.booleans(),
)
def test_layer_matches_torch_layer(p: float, shape, seed: int, inplace: bool) -> None:
    x = torch.randn(shape, generator=torch.Generator().manual_seed(seed))
    torch.manual_seed(seed)
    expected = nn.Dropout(p, inplace)(x.clone())
    torch.manual_seed(seed)
    actual = Dropout(p, inplace)(x.clone())
    assert torch.equal(actual, expected)


def test_inplace_layer_overwrites_its_input() -> None:
    x = torch.ones(100)
    y = Dropout(0.5, inplace=True)(x)
    assert y is x and (x == 0).any()


def test_state_dict_is_empty_like_torch() -> None:
    assert Dropout().state_dict() == nn.Dropout().state_dict() == {}
    assert list(Dropout().parameters()) == [] and list(Dropout().buffers()) == []
    reference, ours = twin_networks(0.5)
    assert list(ours.state_dict()) == list(reference.state_dict())
    ours.load_state_dict(reference.state_dict(), strict=True)


@pytest.mark.parametrize("make", [lambda: Dropout(0.3, inplace=True), lambda: StandardDropout(0.3)])
def test_deepcopy_and_pickle_round_trip(make) -> None:
    layer = make().eval()
    for clone in (copy.deepcopy(layer), pickle.loads(pickle.dumps(layer))):
        assert type(clone) is type(layer)
        assert clone is not layer
        assert repr(clone) == repr(layer)
        assert vars(clone)["p"] == layer.p and clone.training is False
        clone.train()
        x = torch.randn(50)
        torch.manual_seed(7)
        expected = make()(x.clone())
        torch.manual_seed(7)
        assert torch.equal(clone(x.clone()), expected)


def test_pickle_a_whole_network() -> None:
    _, ours = twin_networks(0.5)
    restored = pickle.loads(pickle.dumps(ours))
    x = torch.randn(4, 6)
    torch.manual_seed(0)
    expected = ours(x)
    torch.manual_seed(0)
    assert torch.equal(restored(x), expected)


@pytest.mark.parametrize("bad", [-0.1, 1.1, float("nan")])
def test_constructor_validates_p(bad: float) -> None:
    with pytest.raises(ValueError, match="p must be a probability"):
        Dropout(bad)
    with pytest.raises(ValueError, match="p must be a probability"):
        StandardDropout(bad)
    with pytest.raises(TypeError, match="p must be a real number"):
        Dropout("0.5")  # type: ignore[arg-type]


def test_standard_dropout_layer() -> None:
    layer = StandardDropout(0.25)
    assert repr(layer) == "StandardDropout(p=0.25)"
    x = torch.randn(200)
    y = layer(x)
    assert torch.all((y == 0) | (y == x)) and (y == 0).any()
    layer.eval()
    assert torch.equal(layer(x), 0.75 * x)
    assert layer.state_dict() == {}
