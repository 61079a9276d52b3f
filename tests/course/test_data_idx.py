"""load_idx and read_idx on tiny IDX files written by the tests (nothing is downloaded)."""

from __future__ import annotations

import dataclasses
import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from dropoutlib.course.data import IDX_FILES, load_idx, read_idx


def idx_bytes(array: np.ndarray, code: int = 0x08) -> bytes:
    """An IDX file: two zero bytes, the type code, the number of dimensions, the sizes, the values."""
    big_endian = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[code]
    header = bytes([0, 0, code, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return header + array.astype(big_endian).tobytes()


def write_mnist_like(folder: Path, *, compress: bool, n_train: int = 30, n_test: int = 12, side: int = 4):
    """Four IDX files of random 'images' with three classes, optionally gzip-compressed."""
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (n_train, side, side), dtype=np.uint8),
        "y_train": np.arange(n_train, dtype=np.uint8) % 3,
        "x_test": rng.integers(0, 256, (n_test, side, side), dtype=np.uint8),
        "y_test": np.arange(n_test, dtype=np.uint8) % 3,
    }
    folder.mkdir(parents=True, exist_ok=True)
    for field, stem in IDX_FILES.items():
        raw = idx_bytes(arrays[field])
        if compress:
            (folder / f"{stem}.gz").write_bytes(gzip.compress(raw))
        else:
            (folder / stem).write_bytes(raw)
    return arrays


@pytest.mark.parametrize("code", [0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E])
def test_read_idx_round_trips_every_type(tmp_path, code):
    values = np.arange(24).reshape(2, 3, 4) - (5 if code != 0x08 else 0)
    path = tmp_path / "values.idx"
    path.write_bytes(idx_bytes(values, code))
    array = read_idx(path)
    assert array.shape == (2, 3, 4)
    assert np.array_equal(array, values)
    assert array.dtype.isnative


def test_read_idx_reads_gzip_by_content_not_by_name(tmp_path):
    values = np.arange(6, dtype=np.uint8).reshape(2, 3)
    path = tmp_path / "no-extension"
    path.write_bytes(gzip.compress(idx_bytes(values)))
    assert np.array_equal(read_idx(path), values)
    assert np.array_equal(read_idx(str(path)), values)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"\x00\x00", "too short"),
        (b"\x01\x00\x08\x01" + (3).to_bytes(4, "big") + b"abc", "should start with two zero bytes"),
        (b"\x00\x00\x07\x01" + (3).to_bytes(4, "big") + b"abc", "unknown IDX type code 0x07"),
        (b"\x00\x00\x08\x00", "0 dimensions"),
        (b"\x00\x00\x08\x03" + (3).to_bytes(4, "big"), "announces 3 dimensions"),
        (b"\x00\x00\x08\x01" + (5).to_bytes(4, "big") + b"abc", "is truncated: shape \\(5,\\)"),
        (b"\x00\x00\x08\x01" + (2).to_bytes(4, "big") + b"abc", "has trailing bytes"),
        (b"\x1f\x8b" + b"not really gzip", "cannot be decompressed"),
    ],
)
def test_read_idx_rejects_malformed_files_with_a_clear_message(tmp_path, raw, message):
    path = tmp_path / "broken-idx"
    path.write_bytes(raw)
    with pytest.raises(ValueError, match=message):
        read_idx(path)


def test_read_idx_missing_file_and_bad_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="no IDX file"):
        read_idx(tmp_path / "nothing")
    with pytest.raises(TypeError, match="path must be a path"):
        read_idx(3)


@pytest.mark.parametrize("compress", [False, True])
def test_load_idx_flattens_scales_and_standardizes_with_training_statistics(tmp_path, compress):
    arrays = write_mnist_like(tmp_path / "set", compress=compress)
    data = load_idx(tmp_path / "set")
    assert (data.n_train, data.n_test, data.n_features) == (30, 12, 16)
    assert data.name == "set"
    assert data.x_train.dtype == torch.float32 and data.y_train.dtype == torch.int64
    assert torch.equal(data.y_train, torch.from_numpy(arrays["y_train"].astype(np.int64)))
    scaled = arrays["x_train"].reshape(30, 16) / 255.0
    mean, std = scaled.mean(axis=0), scaled.std(axis=0)
    expected_test = (arrays["x_test"].reshape(12, 16) / 255.0 - mean) / std
    assert np.allclose(data.x_test.numpy(), expected_test, atol=1e-5)
    assert np.allclose(data.x_train.numpy().mean(axis=0), 0.0, atol=1e-5)
    assert np.allclose(data.x_train.numpy().std(axis=0), 1.0, atol=1e-4)


def test_plain_and_gzip_folders_give_the_same_split(tmp_path):
    write_mnist_like(tmp_path / "plain", compress=False)
    write_mnist_like(tmp_path / "packed", compress=True)
    a, b = load_idx(tmp_path / "plain"), load_idx(tmp_path / "packed")
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)


def test_load_idx_subsamples_stratified_and_seeded(tmp_path):
    write_mnist_like(tmp_path / "set", compress=True)
    data = load_idx(tmp_path / "set", n_train=9, n_test=6, seed=1, name="tiny")
    assert (data.n_train, data.n_test, data.name) == (9, 6, "tiny")
    assert torch.bincount(data.y_train).tolist() == [3, 3, 3]
    assert torch.bincount(data.y_test).tolist() == [2, 2, 2]
    again = load_idx(tmp_path / "set", n_train=9, n_test=6, seed=1)
    other = load_idx(tmp_path / "set", n_train=9, n_test=6, seed=2)
    assert torch.equal(data.x_train, again.x_train)
    assert not torch.equal(data.x_train, other.x_train)
    assert np.allclose(data.x_train.numpy().mean(axis=0), 0.0, atol=1e-5)


def test_load_idx_reads_a_changed_file_again(tmp_path):
    write_mnist_like(tmp_path / "set", compress=False, n_train=30)
    assert load_idx(tmp_path / "set").n_train == 30
    write_mnist_like(tmp_path / "set", compress=False, n_train=24)
    assert load_idx(tmp_path / "set").n_train == 24


def test_load_idx_names_what_is_missing_or_inconsistent(tmp_path):
    with pytest.raises(FileNotFoundError, match="existing directory"):
        load_idx(tmp_path / "absent")
    write_mnist_like(tmp_path / "set", compress=False)
    (tmp_path / "set" / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte \\(or t10k-labels-idx1-ubyte.gz\\)"):
        load_idx(tmp_path / "set")
    (tmp_path / "set" / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(5, dtype=np.uint8)))
    with pytest.raises(ValueError, match="12 images but 5 labels"):
        load_idx(tmp_path / "set")
    (tmp_path / "set" / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros((12, 2), dtype=np.uint8)))
    with pytest.raises(ValueError, match="one integer per image"):
        load_idx(tmp_path / "set")
    (tmp_path / "set" / "t10k-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01garbage")
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte: is truncated"):
        load_idx(tmp_path / "set")


def test_load_idx_rejects_bad_arguments(tmp_path):
    write_mnist_like(tmp_path / "set", compress=False)
    with pytest.raises(ValueError, match="n_train must be between 3 .* and 30"):
        load_idx(tmp_path / "set", n_train=31)
    with pytest.raises(ValueError, match="n_test must be between 3"):
        load_idx(tmp_path / "set", n_test=2)
    with pytest.raises(TypeError, match="folder must be a path"):
        load_idx(None)
    with pytest.raises(ValueError, match="seed must be an integer"):
        load_idx(tmp_path / "set", seed=-1)
    with pytest.raises(TypeError, match="name must be a str"):
        load_idx(tmp_path / "set", name=3)


def test_the_chapters_switch_runs_a_study_on_idx_files(tmp_path):
    from dropoutlib.course.batched import Recipe
    from dropoutlib.experiments.when_it_helps import BASELINE, Study, idx_data, size_sweep

    write_mnist_like(tmp_path / "set", compress=True)
    study = Study(idx_data(tmp_path / "set", n_test=9))
    tiny = dataclasses.replace(BASELINE, hidden=(8,), recipe=Recipe(epochs=3))
    grid = size_sweep(study, [6, 12], [0, 1], base=tiny)
    assert grid["test_acc"].shape == (2, 2, 2)
    assert study.split(0, 12).n_features == 16 and study.split(0, 12).n_test == 9


def test_the_switch_fails_early_on_a_broken_folder(tmp_path):
    from dropoutlib.experiments.when_it_helps import idx_data

    write_mnist_like(tmp_path / "set", compress=False)
    (tmp_path / "set" / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03")
    with pytest.raises(ValueError, match="train-images-idx3-ubyte: the header announces 3 dimensions"):
        idx_data(tmp_path / "set")


def _corrupted_gzip(kind: str) -> bytes:
    """A gzip IDX file spoiled in one way: a bad deflate block, a cut-off stream, a wrong checksum."""
    values = np.arange(256 * 40, dtype=np.uint32).astype(np.uint8)
    data = bytearray(gzip.compress(idx_bytes(values)))
    if kind == "deflate block":
        data[10] ^= 0xFF  # the first byte of the deflate stream: an invalid block type
    elif kind == "truncated":
        del data[len(data) // 2 :]
    elif kind == "checksum":
        data[-8] ^= 0xFF  # the CRC-32 of the trailer
    return bytes(data)


@pytest.mark.parametrize("kind", ["deflate block", "truncated", "checksum"])
def test_read_idx_turns_a_corrupt_gzip_file_into_a_value_error_naming_it(tmp_path, kind):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(_corrupted_gzip(kind))
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte\.gz.*cannot be decompressed"):
        read_idx(path)
