"""Chapter 13's claims, re-checked for five seeds through the code the chapter calls.

Each seed fixes the digits' split and training subsample, the initial weights and the masks of every
network (``compare_family([seed])``), the weights of the deep SELU networks and the generator of the
measurements. Every claim the chapter checks for seed 0 is checked here for each of five seeds through
the same ``*_claims`` functions of :mod:`dropoutlib.experiments.dropout_family`, which hold the
thresholds; the claims about means over seeds are checked on the means over five seeds.

The residual MLP's training is chaotic: rounding differences in the last bit (which kernels ATen picks
for the CPU, e.g. ``ATEN_CPU_CAPABILITY=avx2`` against ``avx512``, or MKL on Intel against AMD) change
its test loss by tenths of a nat. With AVX2 kernels everywhere (tools/chapters.py pins ATen, oneDNN and
MKL) DropPath lowered the test loss on every seed on one machine and not on another; on an AMD EPYC
machine its paired change over these five seeds was -0.71 ± 0.27 nats, resolved, where another
machine's was inside the noise. So the chapter says only that its three seeds leave the effect inside
the noise (``droppath_unresolved_claims``), and over five seeds this file checks only that DropPath
does not raise the loss beyond the noise (in ``comparison_claims``).
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from dropoutlib.course.claims import check
from dropoutlib.course.data import load_digits
from dropoutlib.course.seeding import seed_everything
from dropoutlib.course.train import fit
from dropoutlib.experiments.dropout_family import (
    BLOCK_SIZES,
    CNN_P,
    DEPTH,
    DROP_PATH,
    ELEMENTWISE_NOISES,
    EPOCHS,
    LR,
    N_TRAIN,
    SELU_P,
    P,
    alpha_claims,
    compare_family,
    comparison_claims,
    correlation_formula_claims,
    depth_claims,
    depth_statistics,
    dropblock_claims,
    dropconnect_inference,
    dropconnect_inference_claims,
    droppath_rate_claims,
    droppath_skip_rates,
    mask_structure,
    measure_moments,
    moment_claims,
    noise_structure,
    noise_structure_claims,
    residual_mlp,
    selu_mlp,
    shallow_droppath_claims,
    train_variant,
)
from dropoutlib.nn.alpha import alpha_dropout
from dropoutlib.nn.dropblock import dropblock_drop_fraction

SEEDS = [0, 1, 2, 3, 4]
#: Fresh seeds for the cheap DropConnect inference comparison (eight seeds in all).
FRESH_SEEDS = [5, 6, 7]
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]


@functools.cache
def runs():
    """The chapter's comparison for five seeds: 65 networks."""
    return compare_family(SEEDS)


@functools.cache
def digits(seed):
    return load_digits(seed=seed, n_train=N_TRAIN)


def relu_layer(seed):
    return torch.relu(runs()["mlp", seed].model[0](digits(seed).x_test)).detach()


@pytest.mark.parametrize("seed", SEEDS)
def test_dropout_gaussian_droppath_keep_values_and_add_p_over_q_alpha_keeps_n01(seed):
    g = torch.Generator().manual_seed(seed)
    p = 0.2
    inputs = {"normal": torch.randn(1000, 64, generator=g), "relu": relu_layer(seed)}
    moments = {
        source: {
            name: measure_moments(lambda t, gen, f=noise: f(t, p, gen), x, 200, g)
            for name, noise in ELEMENTWISE_NOISES.items()
        }
        for source, x in inputs.items()
    }
    check(moment_claims(moments["normal"], moments["relu"], p))


@pytest.mark.parametrize("seed", SEEDS)
def test_dropconnect_same_mean_and_variance_other_correlations(seed):
    model = runs()["mlp", seed].model
    hidden = torch.relu(model[0](digits(seed).x_test[:100])).detach()
    weight = model[2].weight.detach()
    g = torch.Generator().manual_seed(seed)
    d = noise_structure("dropout", hidden, weight, P, 400, g)
    c = noise_structure("dropconnect", hidden, weight, P, 400, g)
    check(noise_structure_claims(d, c))
    # exercise 4: the exact correlation of dropout's noise agrees with the measured one
    scaled = hidden.double().unsqueeze(1) * weight.double()
    covariance = P / (1 - P) * scaled @ scaled.transpose(1, 2)
    std = covariance.diagonal(dim1=1, dim2=2).sqrt()
    correlation = covariance / (std.unsqueeze(2) * std.unsqueeze(1))
    k = correlation.shape[1]
    off = correlation.abs().sum() - correlation.diagonal(dim1=1, dim2=2).abs().sum()
    exact = (off / (len(hidden) * k * (k - 1))).item()
    check(correlation_formula_claims(exact, d.unit_correlation))


def test_moment_matching_and_mc_lower_the_mean_networks_loss_not_its_accuracy():
    # the chapter's five seeds, then eight (three fresh): the same claims, paired over the seeds
    models = {seed: runs()["mlp-dropconnect", seed].model for seed in SEEDS}
    result = dropconnect_inference(models)
    check(dropconnect_inference_claims(result))
    fresh = {seed: train_variant("mlp-dropconnect", seed).model for seed in FRESH_SEEDS}
    check(dropconnect_inference_claims({**result, **dropconnect_inference(fresh)}))


@pytest.mark.parametrize("seed", SEEDS)
def test_droppath_blocks_skip_at_huangs_linear_rates(seed):
    x = digits(seed).x_test
    skips = droppath_skip_rates(runs()["residual-droppath", seed].model, x, 20, seed)
    assert len(skips) == DEPTH
    check(droppath_rate_claims(skips, DROP_PATH, 20 * len(x)))


@pytest.mark.parametrize("seed", SEEDS)
def test_standard_dropout_moves_a_deep_selu_network_alpha_does_not(seed):
    late = {}
    for kind in ("none", "alpha", "standard"):
        torch.manual_seed(seed)
        net = selu_mlp(64, [128] * 32, 10, kind, SELU_P if kind != "none" else 0.0)
        for mode in ("train", "eval"):
            stats = depth_statistics(net, digits(seed).x_test, training=mode == "train")
            late[kind, mode] = float(np.mean(stats.var[8:]))
    check(
        depth_claims(
            late["alpha", "train"], late["alpha", "eval"], late["standard", "train"], late["standard", "eval"]
        )
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_alpha_dropout_is_torchs_and_keeps_mean_zero_variance_one(seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2000, 64, generator=g)
    torch.manual_seed(seed)
    ours = alpha_dropout(x, SELU_P)
    torch.manual_seed(seed)
    same_as_torch = torch.equal(ours, torch.nn.AlphaDropout(SELU_P)(x))
    moments = {}
    for p in (0.05, 0.1, 0.2, 0.5):
        torch.manual_seed(seed)
        for who, y in (
            ("ours", ELEMENTWISE_NOISES["alpha"](x, p, g)),
            ("torch", torch.nn.functional.alpha_dropout(x, p, training=True)),
        ):
            moments[p, who] = (y.mean().item(), y.var().item())
    check(alpha_claims(same_as_torch, moments))


@pytest.mark.parametrize("seed", SEEDS)
def test_dropblock_drops_clustered_blocks_below_p_and_keeps_the_mean(seed):
    g = torch.Generator().manual_seed(seed)
    masks = {
        kind: mask_structure(kind, CNN_P, block_size=BLOCK_SIZES[0], generator=g)
        for kind in ("element-wise", "DropBlock")
    }
    check(dropblock_claims(masks, dropblock_drop_fraction(CNN_P, BLOCK_SIZES[0], 8, 8), CNN_P))


def test_every_network_fits_the_variants_lower_the_test_loss_and_the_means_agree():
    # on every one of the five seeds (fit, the helpful variants, alpha dropout), paired over them
    # (ramped DropBlock, DropBlock against dropout, the ReLU accuracies, what is inside the noise)
    # and on the means
    check(comparison_claims(runs()))


def test_droppath_with_four_blocks_does_not_win_on_every_seed():
    # exercise 5: the chapter's three seeds give one win; over five seeds it still does not always win
    shallow = {}
    for seed in SEEDS:
        for rate in (0.0, DROP_PATH):
            seed_everything(seed)
            model = residual_mlp(64, 64, 10, 4, rate)
            history = fit(
                model, digits(seed), epochs=EPOCHS, lr=LR, seed=seed, progress=False, eval_every=EPOCHS
            )
            shallow[rate, seed] = history.final()["test_loss"]
    check(shallow_droppath_claims(shallow))
