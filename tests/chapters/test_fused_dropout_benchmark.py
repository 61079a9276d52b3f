"""benchmarks/dropout_speed.py runs from one command and writes a table that says where it was measured."""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "dropout_speed.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("dropout_speed", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def written(bench, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    path = bench.main(["--sizes", "10", "12", "--repeats", "1", "--out", str(out)])
    return path, json.loads(path.read_text())


def test_the_table_records_device_versions_and_date(written):
    path, table = written
    meta = table["meta"]
    assert path.name == "dropout_speed-cpu.json"
    assert meta["device_type"] == "cpu" and meta["device"].startswith("CPU")
    assert meta["torch"].startswith("2.13") and meta["date"].count("-") == 2
    assert meta["command"] == "python benchmarks/dropout_speed.py --sizes 10 12 --repeats 1 --out " + str(
        path.parent
    )


def test_every_method_size_and_dtype_is_measured(written, bench):
    _, table = written
    rows = table["rows"]
    assert {(r["method"], r["size"], r["dtype"]) for r in rows} == {
        (m, n, d) for m in bench.METHODS for n in (2**10, 2**12) for d in ("float32", "bfloat16")
    }
    assert all(r["forward_ms"] > 0 and r["forward_backward_ms"] > 0 for r in rows)
    assert all(r["forward_vs_copy"] == 1.0 for r in rows if r["method"] == "copy")


def test_saved_bytes_show_the_mask_and_its_absence(written):
    _, table = written
    for row in table["rows"]:
        mask = row["size"] * (4 if row["dtype"] == "float32" else 2)  # on the CPU: in the input's dtype
        expected = {"copy": 0, "fused": 0, "native": mask, "scratch": mask}
        assert row["saved_bytes"] == expected[row["method"]], row


def test_the_csv_holds_the_same_rows_with_the_device(written):
    path, table = written
    with path.with_suffix(".csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(table["rows"])
    assert {row["device"] for row in rows} == {table["meta"]["device"]}
    assert [row["method"] for row in rows] == [row["method"] for row in table["rows"]]


@pytest.mark.parametrize("argv", [["--repeats", "0"], ["--sizes", "40"], ["--dtypes", "float8"]])
def test_bad_arguments_stop_with_a_message(bench, argv, capsys):
    with pytest.raises(SystemExit):
        bench.main(argv)
    assert "error" in capsys.readouterr().err


@pytest.fixture
def no_timing(bench, monkeypatch):
    """Fail the test if the benchmark starts timing: the arguments must be checked before that."""

    def run(*args, **kwargs):
        raise AssertionError("the benchmark started timing before refusing its arguments")

    monkeypatch.setattr(bench, "run", run)


def test_the_table_is_named_by_the_real_device_type(bench):
    import torch

    assert bench.slug(torch.device("cpu")) == "cpu"
    for kind in ("mps", "xpu", "meta"):
        assert bench.slug(torch.device(kind)) == kind  # not "cpu": the CPU's table stays as it is
        assert not bench.device_name(torch.device(kind)).startswith("CPU")


def test_an_out_that_is_a_file_is_refused_before_timing(bench, no_timing, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(SystemExit):
        bench.main(["--sizes", "10", "--repeats", "1", "--out", str(blocker)])
    err = capsys.readouterr().err
    assert "--out" in err and str(blocker) in err


def test_an_out_below_a_file_is_refused_before_timing(bench, no_timing, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(SystemExit):
        bench.main(["--sizes", "10", "--repeats", "1", "--out", str(blocker / "results")])
    assert "--out" in capsys.readouterr().err


@pytest.mark.parametrize("device", ["gpu", "cuda:x", "meta"])
def test_a_bad_device_is_refused_before_timing(bench, no_timing, device, capsys):
    with pytest.raises(SystemExit):
        bench.main(["--sizes", "10", "--repeats", "1", "--device", device])
    err = capsys.readouterr().err
    assert "--device" in err and repr(device) in err


def test_an_unavailable_device_is_refused_before_timing(bench, no_timing, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(SystemExit):
        bench.main(["--sizes", "10", "--repeats", "1", "--device", "cuda"])
    err = capsys.readouterr().err
    assert "--device" in err and "'cuda'" in err
