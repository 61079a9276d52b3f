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
