"""Chapter 10's exercise checks: reference solutions pass, typical mistakes fail by name, stubs fail."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dropoutlib.exercises.convolutions import check_neighbour_correlation, check_spatial_dropout
from dropoutlib.experiments.convolutions import neighbour_correlation
from dropoutlib.nn.spatial import spatial_dropout

CHECKS = [check_spatial_dropout, check_neighbour_correlation]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_checks_do_not_disturb_the_global_generator(check):
    answer = chapter_spatial if check is check_spatial_dropout else chapter_correlation
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    check(answer)
    assert torch.equal(torch.rand(3), expected)


# --- spatial dropout ---------------------------------------------------------------------------------


def chapter_spatial(x, p, training=True):
    if not training or p == 0:
        return x
    if p == 1:
        return torch.zeros_like(x)
    keep = torch.rand(x.shape[0], x.shape[1], 1, 1) >= p
    return x * keep / (1 - p)


def with_bernoulli(x, p, training=True):
    if not training or p == 0:
        return x
    if p == 1:
        return x * 0
    mask = torch.empty(x.shape[0], x.shape[1], 1, 1).bernoulli_(1 - p)
    return x * mask / (1 - p)


def library(x, p, training=True):
    return spatial_dropout(x, p, training)


@pytest.mark.parametrize("answer", [chapter_spatial, with_bernoulli, library])
def test_spatial_references_pass(answer, capsys):
    check_spatial_dropout(answer)
    assert "correct" in capsys.readouterr().out


def _with_mask(make_keep):
    def answer(x, p, training=True):
        if not training or p == 0:
            return x
        if p == 1:
            return torch.zeros_like(x)
        return x * make_keep(x, p) / (1 - p)

    return answer


element_wise = _with_mask(lambda x, p: torch.rand_like(x) >= p)
positions = _with_mask(lambda x, p: torch.rand(x.shape[0], 1, *x.shape[2:]) >= p)
whole_examples = _with_mask(lambda x, p: torch.rand(x.shape[0], 1, 1, 1) >= p)
shared_by_batch = _with_mask(lambda x, p: torch.rand(1, x.shape[1], 1, 1) >= p)
drops_with_q = _with_mask(lambda x, p: torch.rand(x.shape[0], x.shape[1], 1, 1) < p)
drops_half_as_often = _with_mask(lambda x, p: torch.rand(x.shape[0], x.shape[1], 1, 1) >= p / 2)


def scaled(factor):
    def answer(x, p, training=True):
        if not training or p == 0:
            return x
        if p == 1:
            return torch.zeros_like(x)
        return x * (torch.rand(x.shape[0], x.shape[1], 1, 1) >= p) * factor(p)

    return answer


_STORED = {}


def one_mask_for_every_call(x, p, training=True):
    if not training or p == 0:
        return x
    key = (tuple(x.shape), p)
    if key not in _STORED:
        _STORED[key] = torch.rand(x.shape[0], x.shape[1], 1, 1) >= p
    return x * _STORED[key] / (1 - p)


def in_place(x, p, training=True):
    if not training or p == 0:
        return x
    if p == 1:
        return x.zero_()
    return x.mul_((torch.rand(x.shape[0], x.shape[1], 1, 1) >= p) / (1 - p))


def no_special_case_for_p_one(x, p, training=True):
    if not training or p == 0:
        return x
    return x * (torch.rand(x.shape[0], x.shape[1], 1, 1) >= p) / (1 - p)


def ignores_training(x, p, training=True):
    return chapter_spatial(x, p)


def detached(x, p, training=True):
    return chapter_spatial(x.detach(), p, training)


def as_numpy(x, p, training=True):
    return chapter_spatial(x, p, training).detach().numpy()


def wrong_mask_shape(x, p, training=True):
    if not training or p == 0:
        return x
    return x * (torch.rand(x.shape[0], x.shape[1]) >= p) / (1 - p)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (element_wise, "zeroed single pixels"),
        (positions, "same pixels in every channel"),
        (whole_examples, "every channel of an example together"),
        (shared_by_batch, "same channels in every example"),
        (drops_with_q, "probability 1-p"),
        (drops_half_as_often, "expected about p"),
        (scaled(lambda p: 1.0), "forgets the 1/\\(1-p\\) scaling"),
        (scaled(lambda p: 1 / p), "1/p"),
        (scaled(lambda p: 1 - p), "multiplies kept channels by 1-p"),
        (scaled(lambda p: 1.5), "multiplied kept channels by 1.5000"),
        (one_mask_for_every_call, "dropped exactly the same channels"),
        (in_place, "changed x in place"),
        (no_special_case_for_p_one, "NaN"),
        (ignores_training, "training=False\\) changed the input"),
        (detached, "not connected to x"),
        (as_numpy, "returned ndarray"),
        (wrong_mask_shape, "your function raised RuntimeError"),
    ],
)
def test_spatial_mistakes_are_named(answer, message):
    with pytest.raises(AssertionError, match=message):
        check_spatial_dropout(answer)


# --- neighbour correlation ---------------------------------------------------------------------------


def chapter_correlation(maps, offset):
    u = maps[..., :-offset].transpose(0, 1).flatten(1)
    v = maps[..., offset:].transpose(0, 1).flatten(1)
    u = u - u.mean(dim=1, keepdim=True)
    v = v - v.mean(dim=1, keepdim=True)
    return (u * v).sum(dim=1) / (u.square().sum(dim=1) * v.square().sum(dim=1)).sqrt()


def with_corrcoef(maps, offset):
    out = []
    for c in range(maps.shape[1]):
        u, v = maps[:, c, :, :-offset].flatten(), maps[:, c, :, offset:].flatten()
        out.append(float(np.corrcoef(u.numpy(), v.numpy())[0, 1]))
    return out


def in_float32(maps, offset):
    return chapter_correlation(maps.float(), offset)


@pytest.mark.parametrize("answer", [chapter_correlation, with_corrcoef, in_float32, neighbour_correlation])
def test_correlation_references_pass(answer, capsys):
    check_neighbour_correlation(answer)
    assert "correct" in capsys.readouterr().out


def vertical(maps, offset):
    return chapter_correlation(maps.transpose(-1, -2), offset)


def cosine(maps, offset):
    u = maps[..., :-offset].transpose(0, 1).flatten(1)
    v = maps[..., offset:].transpose(0, 1).flatten(1)
    return (u * v).sum(dim=1) / (u.square().sum(dim=1) * v.square().sum(dim=1)).sqrt()


def covariance(maps, offset):
    u = maps[..., :-offset].transpose(0, 1).flatten(1)
    v = maps[..., offset:].transpose(0, 1).flatten(1)
    return ((u - u.mean(1, keepdim=True)) * (v - v.mean(1, keepdim=True))).mean(1)


def rolled(maps, offset):
    u = maps.transpose(0, 1).flatten(1)
    v = torch.roll(maps, -offset, dims=-1).transpose(0, 1).flatten(1)
    return torch.stack([torch.corrcoef(torch.stack([a, b]))[0, 1] for a, b in zip(u, v, strict=True)])


def per_example(maps, offset):
    out = []
    for c in range(maps.shape[1]):
        rs = [
            torch.corrcoef(torch.stack([m[:, :-offset].flatten(), m[:, offset:].flatten()]))[0, 1]
            for m in maps[:, c]
        ]
        out.append(torch.stack(rs).mean())
    return torch.stack(out)


def pooled_over_channels(maps, offset):
    u, v = maps[..., :-offset].flatten(), maps[..., offset:].flatten()
    return torch.corrcoef(torch.stack([u, v]))[0, 1]


def ignores_offset(maps, offset):
    return chapter_correlation(maps, 1)


def centers_in_place(maps, offset):
    maps -= maps.mean()
    return chapter_correlation(maps, offset)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (vertical, "vertical neighbours"),
        (cosine, "cosine similarity"),
        (covariance, "returns the covariance"),
        (rolled, "wraps around the edge"),
        (per_example, "within each example"),
        (pooled_over_channels, "one number for maps with 3 channels"),
        (ignores_offset, "use the offset argument"),
        (centers_in_place, "changed maps in place"),
        (lambda maps, offset: chapter_correlation(maps, offset)[:2], "expected \\(3,\\)"),
        (lambda maps, offset: "r", "return a 1-D tensor"),
        (lambda maps, offset: chapter_correlation(maps, offset) * 0.9, "expected \\["),
    ],
)
def test_correlation_mistakes_are_named(answer, message):
    with pytest.raises(AssertionError, match=message):
        check_neighbour_correlation(answer)
