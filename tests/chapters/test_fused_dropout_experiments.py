"""experiments.fused_dropout: saved bytes, the bandwidth model, transformer sizes and the benchmark tables."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

import dropoutlib
from dropoutlib.experiments.fused_dropout import (
    FUSED_TARGETS,
    H100_ANCHOR,
    RESULTS,
    benchmark_tables,
    bytes_moved,
    config_dropout_rates,
    load_benchmark,
    mask_memory_claims,
    mask_statistics,
    roofline_ms,
    rooflines,
    saved_bytes,
    transformer_dropout_elements,
)
from dropoutlib.fused import fused_dropout

pytestmark = pytest.mark.usefixtures("one_thread")


# --- saved bytes -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64])
def test_saved_bytes_per_method(dtype):
    x = torch.randn(1000, dtype=dtype, requires_grad=True)
    size = torch.empty((), dtype=dtype).element_size()
    # on the CPU PyTorch's dropout keeps its mask (the scaled noise) in the input's dtype
    assert saved_bytes(lambda t: F.dropout(t, 0.1), x) == 1000 * size
    assert saved_bytes(lambda t: dropoutlib.dropout(t, 0.1), x) == 1000 * size
    assert saved_bytes(lambda t: fused_dropout(t, 0.1, seed=3), x) == 0


def test_saved_bytes_counts_a_saved_intermediate_but_not_the_input():
    x = torch.randn(100, requires_grad=True)
    assert saved_bytes(lambda t: t * t, x) == 0  # only x itself is saved
    assert saved_bytes(lambda t: (t * 2).sin(), x) == 400  # the product is saved for sin's backward


def test_saved_bytes_rejects_a_non_tensor():
    with pytest.raises(TypeError, match="torch.Tensor"):
        saved_bytes(lambda t: t, [1.0])


# --- the bandwidth model ---------------------------------------------------------------------------------


def test_bytes_moved_by_pass():
    n, s = 1000, 2
    assert bytes_moved(n, s) == 2 * n * s  # a copy or a mask-free forward
    assert bytes_moved(n, s, mask_itemsize=1) == n * (2 * s + 1)
    assert bytes_moved(n, s, mask_itemsize=1, passes="backward") == n * (2 * s + 1)
    both = bytes_moved(n, s, mask_itemsize=1, passes="forward_backward")
    assert both == bytes_moved(n, s, mask_itemsize=1) + bytes_moved(n, s, mask_itemsize=1, passes="backward")
    assert bytes_moved(n, s, mask_bits=8) == bytes_moved(n, s, mask_itemsize=1)
    assert bytes_moved(n, s, mask_bits=1) == 2 * n * s + n // 8
    assert bytes_moved(9, s, mask_bits=1) == 2 * 9 * s + 2  # 9 bits take two whole bytes
    assert bytes_moved(n, s, mask_bits=0) == bytes_moved(n, s)


def test_bytes_moved_takes_one_kind_of_mask():
    with pytest.raises(ValueError, match="mask_itemsize or mask_bits"):
        bytes_moved(1000, 2, mask_itemsize=1, mask_bits=1)
    with pytest.raises(ValueError, match="mask_bits"):
        bytes_moved(1000, 2, mask_bits=-1)


def test_roofline_of_the_projects_anchor():
    """The project's 0.36 ms: 2^27 bfloat16 elements, forward and backward with no mask, at 3.0 TB/s;
    a bitmask adds 1/32 of that, a bool mask 1/4."""
    roof = rooflines(2**27, 2, H100_ANCHOR.copy_bandwidth)
    assert round(roof["mask-free"], 2) == 0.36
    assert roof["with a 1-bit mask"] / roof["mask-free"] == pytest.approx(1 + 1 / 32)
    assert roof["with a bool mask"] / roof["mask-free"] == pytest.approx(1.25)
    assert roofline_ms(3e9, 3e12) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"n": -1, "itemsize": 2}, ValueError),
        ({"n": 10, "itemsize": 0}, ValueError),
        ({"n": 1.5, "itemsize": 2}, TypeError),
        ({"n": 10, "itemsize": 2, "mask_itemsize": True}, TypeError),
        ({"n": 10, "itemsize": 2, "passes": "both"}, ValueError),
    ],
)
def test_bytes_moved_rejects_bad_arguments(kwargs, error):
    with pytest.raises(error):
        bytes_moved(**kwargs)


@pytest.mark.parametrize(("n_bytes", "bandwidth"), [(-1, 1e9), (1, 0), (1, float("nan")), ("1", 1e9)])
def test_roofline_rejects_bad_arguments(n_bytes, bandwidth):
    with pytest.raises(ValueError):
        roofline_ms(n_bytes, bandwidth)


def test_anchor_and_targets():
    assert H100_ANCHOR.size == 2**27 and H100_ANCHOR.dtype == "bfloat16"
    assert H100_ANCHOR.forward_vs_copy["native"]["bfloat16"] < FUSED_TARGETS.forward_vs_copy
    assert FUSED_TARGETS.saved_bytes_per_element == 0


def test_transformer_dropout_elements():
    counts = transformer_dropout_elements(8, 2048, 4096, 32)
    assert counts["attention output"] == counts["MLP output"] == 2**26
    assert counts["attention probabilities"] == 2**30
    with pytest.raises(ValueError, match="n_heads"):
        transformer_dropout_elements(8, 2048, 4096, 0)


# --- benchmark tables ------------------------------------------------------------------------------------

META = {"device": "Test GPU", "device_type": "cuda", "date": "2026-01-02", "torch": "2.11"}


def row(method, size=4, dtype="float32", forward_ms=1.0):
    return {
        "method": method,
        "size": size,
        "dtype": dtype,
        "forward_ms": forward_ms,
        "forward_backward_ms": 2 * forward_ms,
        "saved_bytes": 0,
        "forward_vs_copy": 1.0,
    }


def write(folder, name, meta, rows):
    path = folder / name
    path.write_text(json.dumps({"meta": meta, "rows": rows}))
    return path


def test_tables_listed_cpu_first_with_device_and_date(tmp_path):
    write(tmp_path, "dropout_speed-h100.json", META, [row("copy", 8), row("copy", 4), row("fused", 4)])
    write(tmp_path, "dropout_speed-cpu.json", META | {"device": "CPU", "device_type": "cpu"}, [row("copy")])
    (tmp_path / "other.json").write_text("{}")  # not a benchmark table: ignored
    tables = benchmark_tables(tmp_path)
    assert [t.meta["device"] for t in tables] == ["CPU", "Test GPU"]
    gpu = tables[1]
    assert gpu.is_gpu and not tables[0].is_gpu
    assert gpu.label == "Test GPU, 2026-01-02"
    assert gpu.sizes() == [4, 8] and gpu.dtypes() == ["float32"]
    assert [r["size"] for r in gpu.select("copy", "float32")] == [4, 8]
    assert gpu.row("fused", "float32", 4)["method"] == "fused"
    with pytest.raises(KeyError, match="no row"):
        gpu.row("native", "float32", 4)
    with pytest.raises(ValueError, match="method"):
        gpu.select("dropout", "float32")
    assert benchmark_tables(tmp_path / "missing") == []


@pytest.mark.parametrize(
    ("meta", "rows", "message"),
    [
        ({"device": "x"}, [row("copy")], "meta lacks"),
        (META, [], "not a benchmark table"),
        (META, [{"method": "copy"}], "a row lacks"),
        (META, [row("dropout")], "unknown method"),
        (META, [row("copy", forward_ms=0.0)], "positive time"),
    ],
)
def test_load_benchmark_rejects_malformed_files(tmp_path, meta, rows, message):
    path = write(tmp_path, "dropout_speed-x.json", meta, rows)
    with pytest.raises(ValueError, match=message):
        load_benchmark(path)


def test_committed_tables_load():
    """Every table under benchmarks/results reads, and holds each method for each size and dtype;
    the CPU table that chapter 14 renders is among them."""
    tables = benchmark_tables(RESULTS)
    assert any(not table.is_gpu for table in tables), "chapter 14 needs a committed CPU table"
    for table in tables:
        for dtype in table.dtypes():
            for method in ("copy", "native", "scratch", "fused"):
                assert [r["size"] for r in table.select(method, dtype)] == table.sizes()
        assert all(r["saved_bytes"] == 0 for r in table.rows if r["method"] in ("copy", "fused"))


# --- mask statistics -------------------------------------------------------------------------------------


def test_mask_statistics_of_the_philox_mask():
    stats = mask_statistics(3, p=0.2, n=20_000)
    assert abs(stats.z_drop) < 5 and abs(stats.z_both) < 5 and abs(stats.z_corr) < 5
    assert stats.drop_fraction == pytest.approx(0.2, abs=0.02)
    assert stats.both_dropped == pytest.approx(0.04, abs=0.01)
    assert math.isfinite(stats.neighbour_corr)
    with pytest.raises(ValueError, match="p must be"):
        mask_statistics(0, p=1.0)


def test_config_dropout_rates_reads_numbers_only_and_names_unknown_models():
    rates = config_dropout_rates(("BERT", "LLaMA"))
    assert rates["BERT"] == {"hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1}
    assert "classifier_dropout" not in rates["BERT"]  # None in the default, not a rate
    assert rates["LLaMA"] == {"attention_dropout": 0.0}
    with pytest.raises(ValueError, match="T5"):
        config_dropout_rates(("T5",))


def test_mask_memory_claims_fail_when_the_facts_change():
    elements = {"attention probabilities": 1, "attention output": 1, "MLP output": 1}
    rates = {"LLaMA": {"attention_dropout": 0.1}, "BERT": {"hidden_dropout_prob": 0.0}}
    assert [claim.holds for claim in mask_memory_claims(elements, rates)] == [False, False, False]
