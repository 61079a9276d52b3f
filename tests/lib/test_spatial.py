"""dropoutlib.nn.spatial: bitwise agreement with F.dropout2d / nn.Dropout2d, statistics, gradients, errors."""

from __future__ import annotations

import copy
import math
import re
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dropoutlib.nn.spatial import SpatialDropout, channel_mask_shape, spatial_dropout

DTYPES = [torch.float32, torch.float64, torch.bfloat16, torch.float16]
SHAPES = [(2, 3, 4, 4), (7, 16, 8, 8), (1, 1, 1, 1), (5, 32, 3, 5), (64, 8, 2, 2)]


def make_input(shape, dtype=torch.float32, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=generator, dtype=torch.float64).to(dtype)


def aten_scale(p, dtype):
    """1/q as ATen rounds it: a one divided in place by the python float q, in the input's dtype."""
    return torch.ones((), dtype=dtype).div_(1 - p)


# --- bit for bit -------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("p", [0.1, 0.5, 0.9, 1 / 3])
def test_equals_dropout2d_for_the_same_seed(dtype, shape, p):
    x = make_input(shape, dtype)
    for seed in range(4):
        torch.manual_seed(seed)
        theirs = F.dropout2d(x, p)
        torch.manual_seed(seed)
        ours = spatial_dropout(x, p)
        assert torch.equal(ours, theirs)
        assert ours.dtype == dtype and ours.shape == x.shape


@pytest.mark.parametrize("p", [0.2, 0.5])
def test_in_place_equals_dropout2d_in_place(p):
    x = make_input((6, 5, 3, 3))
    a, b = x.clone(), x.clone()
    torch.manual_seed(3)
    theirs = F.dropout2d(a, p, inplace=True)
    torch.manual_seed(3)
    ours = spatial_dropout(b, p, inplace=True)
    assert ours is b and theirs is a
    assert torch.equal(a, b)
    assert not torch.equal(b, x)


def test_a_seeded_generator_gives_the_same_mask_as_the_same_global_seed():
    x = make_input((8, 16, 4, 4))
    torch.manual_seed(11)
    from_global = spatial_dropout(x, 0.4)
    from_generator = spatial_dropout(x, 0.4, generator=torch.Generator().manual_seed(11))
    assert torch.equal(from_global, from_generator)


def test_a_generator_leaves_the_global_stream_alone():
    x = make_input((8, 16, 4, 4))
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    spatial_dropout(x, 0.4, generator=torch.Generator().manual_seed(5))
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("p", [0.3, 0.7])
def test_3d_input_is_one_example_without_batch_dimension(p):
    x = make_input((6, 4, 5))
    torch.manual_seed(2)
    expected = F.dropout2d(x.unsqueeze(0), p).squeeze(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning, unlike F.dropout2d on 3-D input
        torch.manual_seed(2)
        ours = spatial_dropout(x, p)
    assert torch.equal(ours, expected)
    dropped = (ours == 0).all(dim=(1, 2))
    assert torch.equal((ours == 0).any(dim=(1, 2)), dropped)  # whole channels only


def twin_networks(p, inplace=False):
    torch.manual_seed(0)
    reference = nn.Sequential(
        nn.Conv2d(2, 6, 3, padding=1),
        nn.Dropout2d(p, inplace),
        nn.ReLU(),
        nn.Conv2d(6, 4, 3),
        nn.Dropout2d(p),
        nn.Flatten(),
        nn.Linear(4 * 3 * 3, 3),
    )
    ours = copy.deepcopy(reference)
    ours[1] = SpatialDropout(p, inplace)
    ours[4] = SpatialDropout(p)
    return reference, ours


@pytest.mark.parametrize("p", [0.2, 0.5])
@pytest.mark.parametrize("inplace", [False, True])
def test_layer_matches_dropout2d_in_a_network_outputs_and_gradients(p, inplace):
    reference, ours = twin_networks(p, inplace)
    x = make_input((10, 2, 5, 5))
    for seed in range(3):
        results = []
        for net in (reference, ours):
            net.zero_grad()
            torch.manual_seed(seed)
            out = net(x)
            out.square().sum().backward()
            results.append((out, [param.grad.clone() for param in net.parameters()]))
        assert torch.equal(results[0][0], results[1][0])
        for g_ref, g_ours in zip(results[0][1], results[1][1], strict=True):
            assert torch.equal(g_ref, g_ours)


# --- the layer -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("p", [0.0, 0.1, 0.5, 1.0, 0, 1, 1 / 3])
@pytest.mark.parametrize("inplace", [False, True])
def test_repr_is_torch_s_with_our_name(p, inplace):
    expected = repr(nn.Dropout2d(p, inplace)).replace("Dropout2d", "SpatialDropout")
    assert repr(SpatialDropout(p, inplace)) == expected
    assert repr(SpatialDropout()) == "SpatialDropout(p=0.5, inplace=False)"


def test_layer_has_no_state_and_follows_train_and_eval():
    layer = SpatialDropout(0.5)
    assert layer.state_dict() == {} and list(layer.parameters()) == []
    x = make_input((4, 8, 3, 3))
    assert layer.eval()(x) is x
    layer.train()
    torch.manual_seed(0)
    assert not torch.equal(layer(x), x)


def test_layer_rejects_a_bad_p():
    with pytest.raises(ValueError, match="p must be a probability"):
        SpatialDropout(1.5)
    with pytest.raises(TypeError, match="p must be a real number"):
        SpatialDropout("0.5")


# --- edge cases ----------------------------------------------------------------------------------------


def test_evaluation_mode_p_zero_and_empty_input_return_the_input_itself():
    x = make_input((3, 4, 2, 2))
    assert spatial_dropout(x, 0.5, training=False) is x
    assert spatial_dropout(x, 0.0) is x
    empty = torch.empty(0, 4, 2, 2)
    assert spatial_dropout(empty, 0.5) is empty


@pytest.mark.parametrize("inplace", [False, True])
def test_p_one_gives_zeros_like_torch(inplace):
    x = make_input((3, 4, 2, 2))
    expected = F.dropout2d(x.clone(), 1.0)
    given = x.clone()
    out = spatial_dropout(given, 1.0, inplace=inplace)
    assert torch.equal(out, expected) and torch.equal(out, torch.zeros_like(x))
    assert (out is given) == inplace


def test_evaluation_mode_still_checks_the_shape():
    with pytest.raises(ValueError, match=r"got a 2-D tensor of shape \(5, 64\)"):
        spatial_dropout(torch.zeros(5, 64), 0.5, training=False)


# --- statistics ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("p", [0.1, 0.3, 0.75])
def test_about_p_of_the_channels_drop_and_each_is_all_zero_or_scaled(p):
    generator = torch.Generator().manual_seed(42)
    x = 1 + torch.rand(250, 40, 3, 3, generator=generator)  # no zeros: zero means dropped
    y = spatial_dropout(x, p, generator=generator)
    dropped = (y == 0).all(dim=(2, 3))
    assert torch.equal((y == 0).any(dim=(2, 3)), dropped)  # never part of a channel
    kept = ~dropped
    assert torch.equal(y[kept], x[kept] * aten_scale(p, x.dtype))
    fraction = dropped.float().mean().item()
    assert abs(fraction - p) < 5 * math.sqrt(p * (1 - p) / dropped.numel())


def test_masks_differ_between_examples_and_channels_and_calls():
    generator = torch.Generator().manual_seed(1)
    x = torch.ones(500, 64, 2, 2)
    dropped = (spatial_dropout(x, 0.5, generator=generator) == 0).all(dim=(2, 3)).double()
    # independent coins: no correlation between two channels, nor between two examples
    assert abs(torch.corrcoef(dropped[:, :2].T)[0, 1]) < 0.2
    assert abs(torch.corrcoef(dropped[:2])[0, 1]) < 0.4
    again = (spatial_dropout(x, 0.5, generator=generator) == 0).all(dim=(2, 3)).double()
    assert not torch.equal(dropped, again)


def test_the_mean_is_preserved():
    generator = torch.Generator().manual_seed(3)
    x = torch.ones(400, 100, 2, 2)
    y = spatial_dropout(x, 0.4, generator=generator)
    standard_error = math.sqrt(0.4 / 0.6 / (400 * 100))
    assert abs(y.mean().item() - 1) < 5 * standard_error


# --- gradients ----------------------------------------------------------------------------------------


def test_gradcheck_with_a_fixed_mask():
    x = make_input((3, 4, 2, 3), torch.float64).requires_grad_()

    def fixed(t):
        return spatial_dropout(t, 0.5, generator=torch.Generator().manual_seed(0))

    assert torch.autograd.gradcheck(fixed, (x,))
    assert torch.autograd.gradgradcheck(fixed, (x,))


def test_gradient_is_the_broadcast_mask():
    x = make_input((20, 6, 4, 4)).requires_grad_()
    y = spatial_dropout(x, 0.3, generator=torch.Generator().manual_seed(0))
    upstream = torch.rand_like(y) + 0.5
    y.backward(upstream)
    assert x.grad.shape == x.shape
    dropped = (y.detach() == 0).all(dim=(2, 3), keepdim=True).expand_as(x)
    assert (x.grad[dropped] == 0).all()
    assert torch.equal(x.grad[~dropped], (upstream * aten_scale(0.3, torch.float32))[~dropped])


# --- errors ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(5,), (5, 64), (2, 3, 4, 4, 4)])
def test_other_shapes_are_refused_with_the_shape_named(shape):
    with pytest.raises(ValueError, match=rf"{len(shape)}-D tensor of shape {re.escape(str(shape))}"):
        spatial_dropout(torch.zeros(shape), 0.5)


def test_bad_arguments_are_named():
    x = torch.zeros(2, 3, 4, 4)
    with pytest.raises(ValueError, match="p must be a probability in \\[0, 1\\], got p=1.5"):
        spatial_dropout(x, 1.5)
    with pytest.raises(TypeError, match="p must be a real number"):
        spatial_dropout(x, True)
    with pytest.raises(TypeError, match="input must be a floating-point tensor, got dtype torch.int64"):
        spatial_dropout(torch.zeros(2, 3, 4, 4, dtype=torch.int64), 0.5)
    with pytest.raises(TypeError, match="input must be a torch.Tensor, got list"):
        spatial_dropout([[[[1.0]]]], 0.5)
    with pytest.raises(TypeError, match="generator must be a torch.Generator or None"):
        spatial_dropout(x, 0.5, generator=0)


def test_channel_mask_shape():
    assert channel_mask_shape(torch.empty(5, 3, 8, 8)) == (5, 3, 1, 1)
    assert channel_mask_shape(torch.empty(3, 8, 8)) == (3, 1, 1)
    assert channel_mask_shape(torch.empty(0, 3, 8, 8)) == (0, 3, 1, 1)
