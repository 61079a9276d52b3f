"""dropoutlib.nn: DropConnect, Gaussian, alpha, DropPath and DropBlock.

Statistical checks use fixed seeds and tolerances of a few standard errors (``Z`` below), with the standard
error computed from the distribution the test asserts (binomial, normal, or the sample's own moments).
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dropoutlib.experiments.dropout_family import ResidualBlock, residual_mlp
from dropoutlib.nn.alpha import SELU_SATURATION, AlphaDropout, alpha_dropout
from dropoutlib.nn.drop_path import DropPath, drop_path, drop_path_schedule
from dropoutlib.nn.dropblock import DropBlock2d, dropblock, dropblock_drop_fraction, dropblock_gamma
from dropoutlib.nn.dropconnect import DropConnectLinear, dropconnect_linear
from dropoutlib.nn.gaussian import GaussianDropout, gaussian_dropout

Z = 5.0  # tolerance in standard errors: a correct implementation fails a given check with prob. < 1e-6
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def randn(*shape, seed=0, dtype=torch.float32):
    return torch.randn(shape, generator=gen(seed), dtype=torch.float64).to(dtype)


# Every stochastic function as f(x, p, training, generator) on an input shape it accepts; DropConnect gets a
# fixed weight matrix (6 -> 5) and bias.
_W = randn(5, 6, seed=100)
_B = randn(5, seed=101)


def _dropconnect(x, p=0.5, training=True, generator=None):
    dtype = x.dtype if isinstance(x, torch.Tensor) and x.is_floating_point() else torch.float32
    return dropconnect_linear(x, _W.to(dtype), _B.to(dtype), p, training, generator=generator)


def _dropblock(x, p=0.5, training=True, generator=None):
    return dropblock(x, p, 3, training, generator=generator)


FUNCTIONS = {
    "dropconnect": (_dropconnect, (4, 6)),
    "gaussian": (gaussian_dropout, (4, 6)),
    "alpha": (alpha_dropout, (4, 6)),
    "drop_path": (drop_path, (8, 3, 2)),
    "dropblock": (_dropblock, (2, 2, 6, 6)),
}
IDENTITY_IN_EVAL = ["gaussian", "alpha", "drop_path", "dropblock"]
LAYERS = [
    lambda: DropConnectLinear(6, 5, p=0.3),
    lambda: GaussianDropout(0.3),
    lambda: AlphaDropout(0.3),
    lambda: DropPath(0.3),
    lambda: DropBlock2d(0.3, block_size=3),
]


def layer_input(layer):
    if isinstance(layer, DropBlock2d):
        return randn(2, 3, 7, 7)
    return randn(4, 6)


# --- common behaviour ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", IDENTITY_IN_EVAL)
def test_eval_mode_returns_the_input_itself(name):
    fn, shape = FUNCTIONS[name]
    x = randn(*shape)
    assert fn(x, 0.5, training=False) is x


@pytest.mark.parametrize("name", IDENTITY_IN_EVAL)
def test_p_zero_returns_the_input_itself(name):
    fn, shape = FUNCTIONS[name]
    x = randn(*shape)
    assert fn(x, 0.0) is x


@pytest.mark.parametrize("p", [0.0, 0.5])
def test_dropconnect_in_eval_or_at_p_zero_is_the_plain_linear_map(p):
    x = randn(4, 6)
    expected = F.linear(x, _W, _B)
    assert torch.equal(_dropconnect(x, 0.5, training=False), expected)
    assert torch.equal(_dropconnect(x, 0.0), expected)


@pytest.mark.parametrize("make", LAYERS)
def test_layers_are_identity_in_eval_and_random_in_training(make):
    layer = make()
    x = layer_input(layer)
    layer.eval()
    out = layer(x)
    if isinstance(layer, DropConnectLinear):
        assert torch.equal(out, F.linear(x, layer.weight, layer.bias))
    else:
        assert out is x
    layer.train()
    torch.manual_seed(0)
    first = layer(x)
    second = layer(x)
    assert not torch.equal(first, second)


@pytest.mark.parametrize("make", LAYERS)
def test_layers_are_marked_as_dropout_variants_and_store_p(make):
    layer = make()
    assert type(layer).dropout_variant is True
    assert "dropout_variant" not in vars(layer)  # a class attribute, not an instance one
    assert layer.p == 0.3
    assert "p=0.3" in repr(layer)


def test_reprs():
    assert repr(GaussianDropout(0.2)) == "GaussianDropout(p=0.2)"
    assert repr(AlphaDropout()) == "AlphaDropout(p=0.5)"
    assert repr(DropPath(0)) == "DropPath(p=0)"
    assert repr(DropBlock2d(0.1, 5)) == "DropBlock2d(p=0.1, block_size=5)"
    assert repr(DropConnectLinear(3, 2, 0.4, bias=False)) == (
        "DropConnectLinear(in_features=3, out_features=2, bias=False, p=0.4)"
    )


def test_residual_block_is_not_itself_a_dropout_layer():
    block = ResidualBlock(4, p=0.2)
    assert not getattr(type(block), "dropout_variant", False)
    assert block.p == 0.2 and block.drop_path.p == 0.2


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("device", DEVICES)
def test_shape_dtype_and_device_are_kept(name, dtype, device):
    fn, shape = FUNCTIONS[name]
    x = randn(*shape, dtype=dtype).to(device)
    out = fn(x, 0.3)
    expected_shape = (*shape[:-1], 5) if name == "dropconnect" else shape
    assert out.shape == expected_shape and out.dtype == dtype and out.device == x.device
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_masks_differ_between_calls(name):
    fn, shape = FUNCTIONS[name]
    x = randn(*shape)
    torch.manual_seed(0)
    outs = [fn(x, 0.5) for _ in range(3)]
    assert not torch.equal(outs[0], outs[1]) and not torch.equal(outs[1], outs[2])


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_a_seeded_generator_reproduces_the_result_and_leaves_the_global_rng_alone(name):
    fn, shape = FUNCTIONS[name]
    x = randn(*shape)
    torch.manual_seed(0)
    expected_global = torch.rand(3)
    torch.manual_seed(0)
    first = fn(x, 0.5, generator=gen(7))
    second = fn(x, 0.5, generator=gen(7))
    assert torch.equal(torch.rand(3), expected_global)
    assert torch.equal(first, second)
    assert not torch.equal(first, fn(x, 0.5, generator=gen(8)))
    torch.manual_seed(7)  # a generator seeded with s draws what the global RNG seeded with s draws
    assert torch.equal(fn(x, 0.5), first)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_gradients_pass_gradcheck_for_a_fixed_mask(name):
    fn, shape = FUNCTIONS[name]
    x = randn(*shape, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: fn(t, 0.4, generator=gen(3)), (x,))


def test_dropconnect_gradients_for_input_weight_and_bias_pass_gradcheck():
    x, w, b = (
        randn(*s, seed=i, dtype=torch.float64).requires_grad_() for i, s in enumerate([(3, 4), (2, 4), (2,)])
    )
    assert torch.autograd.gradcheck(lambda *a: dropconnect_linear(*a, p=0.4, generator=gen(1)), (x, w, b))


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
@pytest.mark.parametrize("p", [1.5, -0.1, float("nan")])
def test_a_p_outside_zero_one_is_refused(name, p):
    fn, shape = FUNCTIONS[name]
    with pytest.raises(ValueError, match=r"p must be a probability in \[0, 1\], got p="):
        fn(randn(*shape), p)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_bad_types_are_refused_with_the_argument_named(name):
    fn, shape = FUNCTIONS[name]
    with pytest.raises(TypeError, match="p must be a real number, got p='0.5'"):
        fn(randn(*shape), "0.5")
    with pytest.raises(TypeError, match="generator must be a torch.Generator or None, got generator=0"):
        fn(randn(*shape), 0.5, generator=0)
    with pytest.raises(TypeError, match="input must be a floating-point tensor"):
        fn(torch.ones(shape, dtype=torch.int64), 0.5)
    with pytest.raises(TypeError, match="input must be a torch.Tensor"):
        fn([[1.0]], 0.5)


@pytest.mark.parametrize("make", [GaussianDropout, AlphaDropout, DropPath, DropBlock2d])
def test_layers_refuse_a_bad_p_at_construction(make):
    with pytest.raises(ValueError, match="p must be a probability"):
        make(1.5)
    with pytest.raises(ValueError, match="p must be a probability"):
        DropConnectLinear(2, 2, p=-0.5)


# --- DropConnect ---------------------------------------------------------------------------------------


def test_dropconnect_reveals_one_mask_on_the_weights_scaled_by_one_over_q():
    # With x = I, row i of the output is column i of the thinned weight matrix: y = (M * W / q)^T.
    p, w = 0.3, randn(40, 50, seed=1)
    y = dropconnect_linear(torch.eye(50), w, p=p, generator=gen(0))
    thinned = y.T
    kept = thinned != 0
    assert torch.allclose(thinned[kept], w[kept] / (1 - p))
    n = w.numel()
    dropped = 1 - kept.float().mean().item()
    assert abs(dropped - p) < Z * math.sqrt(p * (1 - p) / n), f"dropped fraction {dropped:.4f}, p = {p}"


def test_dropconnect_shares_the_mask_across_the_batch():
    x = randn(1, 6, dtype=torch.float64).repeat(16, 1)
    y = _dropconnect(x, 0.5, generator=gen(0))
    # (allclose, not equal: the matrix product may round rows differently; a mask per row differs by O(1))
    assert torch.allclose(y, y[:1].expand_as(y), rtol=0, atol=1e-12), "identical inputs, different outputs"


def test_dropconnect_mean_over_masks_is_the_eval_output():
    # y_j = sum_i W_ji x_i m_ji / q + b_j: each output is a sum of independent terms, with variance
    # sum_i (W_ji x_i)^2 p / q; the mean of K draws has standard error sqrt(that / K).
    p, K = 0.5, 4000
    x = randn(1, 6, seed=3)
    generator = gen(0)
    draws = torch.cat([_dropconnect(x, p, generator=generator) for _ in range(K)])
    expected = F.linear(x, _W, _B)[0]
    se = ((_W * x).square().sum(dim=1) * p / (1 - p) / K).sqrt()
    z = ((draws.mean(dim=0) - expected) / se).abs()
    assert z.max() < Z, f"mean over masks is {z.max():.1f} standard errors from the eval output"


def test_dropconnect_dropped_weights_get_no_gradient():
    w = randn(5, 6).requires_grad_()
    y = dropconnect_linear(randn(8, 6), w, p=0.5, generator=gen(2))
    y.square().sum().backward()
    thinned = dropconnect_linear(torch.eye(6), w.detach(), p=0.5, generator=gen(2)).T  # the same mask
    assert torch.equal(w.grad == 0, thinned == 0)


def test_dropconnect_never_drops_the_bias():
    # With x = 0 the weights contribute nothing: every call must return the bias itself, unscaled.
    generator = gen(0)
    for _ in range(20):
        assert torch.equal(_dropconnect(torch.zeros(3, 6), 0.5, generator=generator), _B.expand(3, 5))


def test_dropconnect_p_one_leaves_the_bias():
    x = randn(3, 6)
    assert torch.equal(_dropconnect(x, 1.0), _B.expand(3, 5))
    assert torch.equal(dropconnect_linear(x, _W, None, 1.0), torch.zeros(3, 5))


def test_dropconnect_linear_layer_loads_a_linear_state_dict_and_back():
    torch.manual_seed(0)
    plain = nn.Linear(6, 5)
    layer = DropConnectLinear(6, 5, p=0.4)
    layer.load_state_dict(plain.state_dict())
    assert set(layer.state_dict()) == {"weight", "bias"}
    x = randn(7, 6)
    assert torch.equal(layer.eval()(x), plain(x))
    copied = DropConnectLinear.from_linear(plain, p=0.2)
    assert copied.p == 0.2 and torch.equal(copied.weight, plain.weight) and copied.weight is not plain.weight
    assert torch.equal(copied.eval()(x), plain(x))
    layer.train()
    torch.manual_seed(5)
    ours = layer(x)
    assert torch.equal(ours, dropconnect_linear(x, plain.weight, plain.bias, 0.4, generator=gen(5)))


def test_dropconnect_rejects_bad_shapes_naming_the_argument():
    with pytest.raises(ValueError, match=r"weight must be a 2-D .* got weight of shape \(6,\)"):
        dropconnect_linear(randn(2, 6), randn(6))
    with pytest.raises(ValueError, match=r"in_features=6, got input of shape \(2, 4\)"):
        dropconnect_linear(randn(2, 4), randn(5, 6))
    with pytest.raises(ValueError, match=r"bias must have shape \(5,\).* got bias of shape \(6,\)"):
        dropconnect_linear(randn(2, 6), randn(5, 6), randn(6))
    with pytest.raises(TypeError, match="weight must be a floating-point tensor"):
        dropconnect_linear(randn(2, 6), torch.ones(5, 6, dtype=torch.int64))
    with pytest.raises(TypeError, match="linear must be an nn.Linear"):
        DropConnectLinear.from_linear(nn.Conv2d(1, 1, 1))


# --- Gaussian dropout ----------------------------------------------------------------------------------


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_gaussian_noise_has_mean_one_and_the_bernoulli_variance_p_over_q(p):
    n = 200_000
    x = torch.full((n,), 3.0, dtype=torch.float64)
    r = gaussian_dropout(x, p, generator=gen(0)) / x
    var = p / (1 - p)
    assert abs(r.mean().item() - 1) < Z * math.sqrt(var / n)
    assert abs(r.var().item() - var) < Z * var * math.sqrt(2 / (n - 1))  # normal: Var(s^2) = 2 s^4 / (n-1)
    bernoulli = F.dropout(x, p) / x  # the variance it matches
    assert abs(bernoulli.var().item() - var) < Z * math.sqrt(var**2 * 2 / n + var / n * (1 + var) ** 2)


def test_gaussian_dropout_refuses_p_one_with_the_reason():
    with pytest.raises(ValueError, match=r"p < 1 .*infinite.* got p=1.0"):
        gaussian_dropout(randn(3), 1.0)
    with pytest.raises(ValueError, match=r"got p=1.0"):
        gaussian_dropout(randn(3), 1.0, training=False)
    with pytest.raises(ValueError, match=r"got p=1.0"):
        GaussianDropout(1)


# --- Alpha dropout -------------------------------------------------------------------------------------


def alpha_constants(p):
    q = 1 - p
    a = (q + SELU_SATURATION**2 * p * q) ** -0.5
    return a, -a * SELU_SATURATION * p


def test_selu_saturation_is_minus_lambda_alpha():
    selu = torch.nn.SELU()(torch.tensor(-50.0, dtype=torch.float64)).item()
    assert SELU_SATURATION == pytest.approx(selu, abs=1e-15)
    assert SELU_SATURATION == pytest.approx(-1.7581, abs=1e-4)


def alpha_statistics(y, p):
    a, b = alpha_constants(p)
    dropped_value = a * SELU_SATURATION + b
    dropped = torch.isclose(y, torch.tensor(dropped_value, dtype=y.dtype))
    return y.mean().item(), y.var().item(), dropped.float().mean().item()


@pytest.mark.parametrize("p", [0.05, 0.2, 0.5])
def test_alpha_dropout_keeps_mean_zero_and_variance_one_like_torch(p):
    n = 400_000
    x = randn(n, seed=1, dtype=torch.float64)
    ours = alpha_dropout(x, p, generator=gen(2))
    torch.manual_seed(3)  # a different mask: the two are compared as samples
    theirs = nn.AlphaDropout(p)(x)
    se_mean = 1 / math.sqrt(n)
    fourth = ((ours - ours.mean()) ** 4).mean().item()
    se_var = math.sqrt((fourth - ours.var().item() ** 2) / n)
    se_frac = math.sqrt(p * (1 - p) / n)
    mean, var, frac = alpha_statistics(ours, p)
    t_mean, t_var, t_frac = alpha_statistics(theirs, p)
    assert abs(mean) < Z * se_mean and abs(var - 1) < Z * se_var and abs(frac - p) < Z * se_frac
    assert abs(mean - t_mean) < Z * math.sqrt(2) * se_mean
    assert abs(var - t_var) < Z * math.sqrt(2) * se_var
    assert abs(frac - t_frac) < Z * math.sqrt(2) * se_frac


def test_alpha_dropout_maps_dropped_units_to_the_saturation_then_the_affine_map():
    p = 0.3
    a, b = alpha_constants(p)
    x = randn(1000, seed=4, dtype=torch.float64)
    y = alpha_dropout(x, p, generator=gen(0))
    kept = torch.isclose(y, a * x + b, rtol=0, atol=1e-12)
    assert torch.allclose(y[~kept], torch.tensor(a * SELU_SATURATION + b, dtype=torch.float64))
    assert 0.2 < 1 - kept.float().mean().item() < 0.4


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("p", [0.1, 0.5, 1 / 3, 0.9, 1.0])
@pytest.mark.parametrize("layout", ["contiguous", "transposed", "strided", "channels_last"])
def test_alpha_dropout_equals_torch_bit_for_bit_for_the_same_seed(dtype, p, layout):
    x = randn(6, 5, 7, 4, seed=5, dtype=dtype)
    x = {
        "contiguous": x,
        "transposed": x.transpose(0, 3),
        "strided": x[:, :, ::2],
        "channels_last": x.to(memory_format=torch.channels_last),
    }[layout]
    for seed in range(3):
        torch.manual_seed(seed)
        theirs = F.alpha_dropout(x, p, training=True)
        torch.manual_seed(seed)
        ours = alpha_dropout(x, p)
        assert torch.equal(ours, theirs)
        assert torch.equal(alpha_dropout(x, p, generator=gen(seed)), theirs)


def test_alpha_dropout_layer_matches_torch_in_a_selu_network_outputs_and_gradients():
    torch.manual_seed(0)
    reference = nn.Sequential(nn.Linear(8, 16), nn.SELU(), nn.AlphaDropout(0.2), nn.Linear(16, 3))
    ours = nn.Sequential(*list(reference)[:2], AlphaDropout(0.2), reference[3])
    x = randn(10, 8)
    results = []
    for net in (reference, ours):
        net.zero_grad()
        torch.manual_seed(4)
        out = net(x)
        out.square().sum().backward()
        results.append((out, [param.grad.clone() for param in net.parameters()]))
    assert torch.equal(results[0][0], results[1][0])
    for g_ref, g_ours in zip(results[0][1], results[1][1], strict=True):
        assert torch.equal(g_ref, g_ours)


# --- DropPath and the residual MLP ---------------------------------------------------------------------


def test_drop_path_drops_whole_examples_at_rate_p_and_scales_the_rest():
    p, n = 0.3, 20_000
    x = randn(n, 4, 3, seed=6)
    y = drop_path(x, p, generator=gen(0))
    dropped = (y == 0).flatten(1).all(dim=1)
    kept = ~dropped
    assert torch.allclose(y[kept], x[kept] / (1 - p))
    rate = dropped.float().mean().item()
    assert abs(rate - p) < Z * math.sqrt(p * (1 - p) / n), f"dropped {rate:.4f} of the examples, p = {p}"


def test_drop_path_draws_one_coin_per_example_not_one_per_batch():
    x = torch.ones(64, 5)
    for seed in range(5):
        per_example = drop_path(x, 0.5, generator=gen(seed))[:, 0]
        assert 0 < (per_example == 0).sum() < 64, "all examples dropped or kept together"


def test_drop_path_is_unbiased():
    # mean of K calls of y = m x / q: each entry has variance x^2 p / q, so SE = |x| sqrt(p / q / K)
    p, K = 0.4, 5000
    x = randn(4, 3, seed=7)
    generator = gen(0)
    mean = torch.stack([drop_path(x, p, generator=generator) for _ in range(K)]).mean(dim=0)
    se = x.abs() * math.sqrt(p / (1 - p) / K)
    assert ((mean - x).abs() / se).max() < Z


def test_drop_path_p_one_and_zero_d_input():
    x = randn(4, 3).requires_grad_()
    y = drop_path(x, 1.0)
    assert torch.equal(y, torch.zeros(4, 3)) and y.requires_grad
    with pytest.raises(ValueError, match="batch dimension"):
        drop_path(torch.tensor(1.0), 0.5)


def test_residual_block_skips_the_branch_or_adds_it():
    torch.manual_seed(0)
    block = ResidualBlock(6, p=1.0)
    x = randn(5, 6)
    assert torch.equal(block(x), x), "p = 1: every example skips the branch"
    full = x + block.branch(x)
    assert torch.allclose(block.eval()(x), full)
    block.drop_path.p = 0.0
    assert torch.allclose(block.train()(x), full)
    block.drop_path.p = 0.5
    y = block(torch.cat([x] * 40))
    skipped = torch.isclose(y, torch.cat([x] * 40)).all(dim=1)
    scaled = torch.isclose(y, torch.cat([x + 2 * (full - x)] * 40), atol=1e-6).all(dim=1)
    assert bool((skipped | scaled).all()) and skipped.any() and scaled.any()


def test_drop_path_schedules():
    assert drop_path_schedule(0.5, 5) == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5])
    assert drop_path_schedule(0.3, 3) == [0.1, 0.2, 0.3]  # rounded: no 0.09999999999999999
    assert drop_path_schedule(0.2, 3, schedule="uniform") == [0.2, 0.2, 0.2]
    assert drop_path_schedule(0.0, 4) == [0.0] * 4
    assert drop_path_schedule(0.7, 1) == [0.7]


def test_residual_mlp_structure_and_schedule():
    net = residual_mlp(10, 16, 3, depth=4, drop_path=0.4)
    assert isinstance(net, nn.Sequential) and len(net) == 4 + 3
    assert isinstance(net[0], nn.Linear) and (net[0].in_features, net[0].out_features) == (10, 16)
    assert isinstance(net[1], nn.ReLU)
    blocks = list(net[2:-1])
    assert all(isinstance(block, ResidualBlock) and block.width == 16 for block in blocks)
    assert [block.p for block in blocks] == pytest.approx([0.1, 0.2, 0.3, 0.4])
    assert (net[-1].in_features, net[-1].out_features) == (16, 3)
    uniform = residual_mlp(10, 16, 3, depth=3, drop_path=0.25, schedule="uniform")
    assert [block.p for block in uniform[2:-1]] == [0.25, 0.25, 0.25]
    assert [block.p for block in residual_mlp(2, 4, 1, depth=2)[2:-1]] == [0.0, 0.0]
    x = randn(7, 10)
    assert net(x).shape == (7, 3)
    assert torch.equal(net.eval()(x), net(x))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (
            {"schedule": "cosine"},
            ValueError,
            r"schedule must be one of \('linear', 'uniform'\), got schedule='cosine'",
        ),
        ({"depth": 0}, ValueError, "depth must be a positive integer, got depth=0"),
        ({"depth": 2.0}, TypeError, "depth must be an integer, got depth=2.0"),
        ({"drop_path": 1.5}, ValueError, r"drop_path must be a probability in \[0, 1\], got drop_path=1.5"),
        ({"width": 0}, ValueError, "width must be a positive integer, got width=0"),
        ({"in_features": -1}, ValueError, "in_features must be a positive integer, got in_features=-1"),
        ({"out_features": True}, TypeError, "out_features must be an integer, got out_features=True"),
    ],
)
def test_residual_mlp_rejects_bad_arguments(kwargs, error, match):
    arguments = {"in_features": 4, "width": 8, "out_features": 2, "depth": 3, "drop_path": 0.1} | kwargs
    with pytest.raises(error, match=match):
        residual_mlp(**arguments)


# --- DropBlock -----------------------------------------------------------------------------------------


def test_dropblock_gamma_is_the_paper_s_formula():
    assert dropblock_gamma(0.1, 3, 8, 8) == pytest.approx(0.1 / 9 * 64 / 36)
    assert dropblock_gamma(0.2, 2, 5, 7) == pytest.approx(0.2 / 4 * 35 / (4 * 6))
    assert dropblock_gamma(0.3, 1, 4, 4) == pytest.approx(0.3)
    assert dropblock_gamma(1.0, 5, 5, 5) == pytest.approx(1.0)  # one position, every seed drops the map
    for size in range(1, 12):  # b (H - b + 1) >= H for 1 <= b <= H, so gamma <= p
        for block_size in range(1, size + 1):
            assert dropblock_gamma(0.7, block_size, size, size + 3) <= 0.7 + 1e-12


def test_dropblock_drops_whole_blocks():
    # Every dropped unit lies in a fully dropped block_size x block_size square: regrowing the squares that
    # are entirely dropped gives back the whole dropped set (a morphological opening leaves it unchanged).
    for block_size in (2, 3, 5):
        x = torch.ones(4, 8, 16, 16)
        y = dropblock(x, 0.15, block_size, generator=gen(block_size))
        dropped = (y == 0).float()
        assert dropped.any() and (dropped < 1).any()
        full_squares = F.avg_pool2d(dropped, block_size, stride=1) > 1 - 1e-6
        regrown = F.max_pool2d(F.pad(full_squares.float(), (block_size - 1,) * 4), block_size, stride=1)
        assert torch.equal(regrown, dropped)


def test_dropblock_rescales_by_numel_over_kept_so_the_mean_is_kept():
    x = torch.ones(3, 4, 10, 10)
    y = dropblock(x, 0.3, 3, generator=gen(0))
    kept = y != 0
    assert torch.allclose(y[kept], torch.tensor(x.numel() / kept.sum().item()))
    assert y.mean().item() == pytest.approx(1.0, abs=1e-6)
    z = randn(3, 4, 10, 10, seed=8, dtype=torch.float64)
    w = dropblock(z, 0.3, 3, generator=gen(0))  # the same mask
    assert torch.allclose(w, z * (y.double()))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_dropblock_normalises_half_precision_maps_with_more_units_than_float16_can_count(dtype):
    x = torch.ones(8, 16, 32, 32, dtype=dtype)  # 131072 units > 65504, float16's largest value
    y = dropblock(x, 0.1, 3, generator=gen(0))
    assert 0.8 < (y != 0).float().mean().item() < 0.95
    assert y.float().mean().item() == pytest.approx(1.0, abs=2**-8)  # bfloat16 keeps 8 significant bits


@pytest.mark.parametrize(("p", "block_size", "size"), [(0.1, 3, 12), (0.2, 5, 16), (0.3, 7, 14), (0.1, 1, 8)])
def test_dropblock_per_position_drop_rate_is_one_minus_one_minus_gamma_to_the_covering_seeds(
    p, block_size, size
):
    # Unit (i, j) is dropped unless the c_ij seeds whose block covers it are all off: 1 - (1 - gamma)^c_ij.
    # The N*C maps are independent, so each position's rate is binomial over N*C*calls draws.
    n, c, calls = 64, 16, 4
    generator = gen(11)
    dropped = torch.stack(
        [
            (dropblock(torch.ones(n, c, size, size), p, block_size, generator=generator) == 0)
            for _ in range(calls)
        ]
    )
    rate = dropped.double().mean(dim=(0, 1, 2))
    gamma = dropblock_gamma(p, block_size, size, size)
    idx = torch.arange(size, dtype=torch.float64)
    cover = torch.minimum(idx, torch.tensor(size - block_size)) - (idx - block_size + 1).clamp(min=0) + 1
    expected = 1 - (1 - gamma) ** torch.outer(cover, cover)
    se = (expected * (1 - expected) / (n * c * calls)).sqrt()
    assert ((rate - expected).abs() / se).max() < Z
    overall = rate.mean().item()
    assert overall == pytest.approx(
        dropblock_drop_fraction(p, block_size, size, size), abs=Z * se.max().item()
    )


def test_dropblock_realised_fraction_is_below_p_and_close_to_it_for_typical_sizes():
    # Overlapping blocks make the expected dropped fraction smaller than p; for the sizes of a small
    # convnet (p <= 0.2, block_size 3 to 7 on 14x14 to 28x28 maps) it stays within 20% of p.
    for size in (14, 28):
        for block_size in (3, 5, 7):
            for p in (0.05, 0.1, 0.2):
                fraction = dropblock_drop_fraction(p, block_size, size, size)
                assert 0.8 * p < fraction < p, (size, block_size, p, fraction)
    assert dropblock_drop_fraction(0.1, 1, 9, 9) == pytest.approx(0.1)  # no overlap with 1x1 blocks
    assert dropblock_drop_fraction(1.0, 3, 9, 9) == 1.0


def test_dropblock_all_dropped_gives_zeros_not_nan():
    x = randn(1, 1, 3, 3).requires_grad_()
    assert torch.equal(dropblock(x, 1.0, 2), torch.zeros(1, 1, 3, 3))
    # block_size = H = W: one seed position, gamma = p, so with this seed the only block is dropped
    outs = [dropblock(x, 0.5, 3, generator=gen(seed)) for seed in range(20)]
    assert any(bool((out == 0).all()) for out in outs) and all(torch.isfinite(out).all() for out in outs)


@pytest.mark.parametrize(
    ("block_size", "shape", "error", "match"),
    [
        (0, (1, 1, 5, 5), ValueError, "block_size must be a positive integer, got block_size=0"),
        (1.5, (1, 1, 5, 5), TypeError, "block_size must be an integer, got block_size=1.5"),
        (6, (1, 1, 5, 8), ValueError, r"block_size must be at most min\(H, W\) = 5 .* got block_size=6"),
        (
            3,
            (1, 5, 5),
            ValueError,
            r"4-D batch of feature maps \(N, C, H, W\), got input of shape \(1, 5, 5\)",
        ),
        (3, (1, 1, 0, 5), ValueError, "non-empty feature maps"),
    ],
)
def test_dropblock_rejects_bad_block_sizes_and_shapes_also_in_eval(block_size, shape, error, match):
    x = torch.ones(shape)
    for training in (True, False):
        with pytest.raises(error, match=match):
            dropblock(x, 0.1, block_size, training)


def test_dropblock_layer_checks_block_size_at_construction():
    with pytest.raises(ValueError, match="block_size must be a positive integer, got block_size=0"):
        DropBlock2d(0.1, block_size=0)
    with pytest.raises(ValueError, match="block_size must be at most"):
        DropBlock2d(0.1, block_size=9)(torch.ones(1, 1, 8, 8))
