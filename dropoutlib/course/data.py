"""The data sets of the course, all available offline.

- :func:`load_digits`: scikit-learn's 8x8 handwritten digits (it ships with scikit-learn, so nothing is
  downloaded), split into training and test sets and standardized with training statistics only.
- :func:`toy_regression`: a line plus Gaussian noise on ten points, small enough that a wide network
  fits the noise.
- :func:`load_idx`: a larger image data set that the reader already has on disk, in the IDX format of
  MNIST and Fashion-MNIST (nothing is downloaded); :func:`read_idx` parses one IDX file.

All three return a :class:`Split`.
"""

from __future__ import annotations

import functools
import gzip
import math
import os
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import sklearn.datasets
import torch
from sklearn.model_selection import train_test_split

from dropoutlib._validation import check_positive_int, check_real
from dropoutlib.course.seeding import check_seed

__all__ = [
    "IDX_FILES",
    "Split",
    "check_split",
    "load_digits",
    "load_idx",
    "read_idx",
    "standardize",
    "toy_regression",
]


@dataclass(frozen=True, eq=False)
class Split:
    """A training set and a test set, as tensors.

    Attributes:
        x_train: inputs, shape ``(n_train, n_features)``, float32.
        y_train: targets: class indices, shape ``(n_train,)``, int64 (classification), or values,
            shape ``(n_train, 1)``, float32 (regression).
        x_test, y_test: the same for the test set.
        name: a short human-readable name, e.g. ``"digits"``.

    Example:
        >>> data = toy_regression()
        >>> data.n_train, data.n_test, data.n_features
        (10, 200, 1)
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    name: str = ""

    def __post_init__(self) -> None:
        for field in ("x_train", "y_train", "x_test", "y_test"):
            value = getattr(self, field)
            if not isinstance(value, torch.Tensor):
                raise TypeError(f"{field} must be a torch.Tensor, got {type(value).__name__}")
        for part in ("train", "test"):
            x, y = getattr(self, f"x_{part}"), getattr(self, f"y_{part}")
            if x.ndim != 2:
                raise ValueError(f"x_{part} must have shape (n, n_features), got {tuple(x.shape)}")
            if y.shape[:1] != x.shape[:1]:
                raise ValueError(
                    f"x_{part} and y_{part} must have as many rows, "
                    f"got {x.shape[0]} and {y.shape[0] if y.ndim else 'a scalar'}"
                )
        if self.x_train.shape[1] != self.x_test.shape[1]:
            raise ValueError(
                "x_train and x_test must have as many features, "
                f"got {self.x_train.shape[1]} and {self.x_test.shape[1]}"
            )

    @property
    def n_train(self) -> int:
        """Number of training examples."""
        return int(self.x_train.shape[0])

    @property
    def n_test(self) -> int:
        """Number of test examples."""
        return int(self.x_test.shape[0])

    @property
    def n_features(self) -> int:
        """Number of input features (columns of ``x_train``)."""
        return int(self.x_train.shape[1])


def check_split(data: Any, default: Callable[[], Split] | None = None) -> Split:
    """``data`` if it is a :class:`Split`; ``default()`` when ``data`` is None and a default is given.

    The experiments that accept their own data (``data=None``: the chapter's) all check it this way.

    Example:
        >>> split = toy_regression(seed=0)
        >>> check_split(split) is split, check_split(None, lambda: split) is split
        (True, True)
        >>> check_split([1, 2])
        Traceback (most recent call last):
        ...
        TypeError: data must be a dropoutlib.course.data.Split, got list
    """
    if data is None and default is not None:
        return default()
    if not isinstance(data, Split):
        allowed = "a dropoutlib.course.data.Split" + (" or None" if default is not None else "")
        raise TypeError(f"data must be {allowed}, got {type(data).__name__}")
    return data


def standardize(
    train: np.ndarray, test: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    r"""Standardize both sets column by column with the TRAINING set's statistics.

    .. math::

        \mu_j = \frac{1}{n}\sum_i x^{\text{train}}_{ij}, \qquad
        \sigma_j = \sqrt{\frac{1}{n}\sum_i (x^{\text{train}}_{ij} - \mu_j)^2}, \qquad
        z_{ij} = (x_{ij} - \mu_j) / \sigma_j

    for every row of either set, with ``sigma_j = 1`` where a column is constant in the training
    set. The test set is never looked at when computing ``mu`` and ``sigma``: using its own
    statistics would leak information about it into the model's inputs.

    Returns:
        ``(train_z, test_z, mean, std)``; ``mean`` and ``std`` have shape ``(n_features,)``.

    Example:
        >>> tr, te, mean, std = standardize(np.array([[0.0], [2.0]]), np.array([[4.0]]))
        >>> tr.ravel().tolist(), te.ravel().tolist(), mean.tolist(), std.tolist()
        ([-1.0, 1.0], [3.0], [1.0], [1.0])
    """
    mean = train.mean(axis=0)
    std = train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return (train - mean) / std, (test - mean) / std, mean, std


def load_digits(test_fraction: float = 0.3, seed: int = 0, n_train: int | None = None) -> Split:
    """scikit-learn's handwritten digits: 1797 images of 8x8 pixels, 10 classes, split and standardized.

    The split is stratified (each digit is as frequent in both sets) and fixed by ``seed``. With the
    default ``test_fraction=0.3`` the training set has 1257 images and the test set 540. If
    ``n_train`` is given, a stratified, seeded subsample of that many training images is kept (for
    data-size sweeps); the test set is unchanged.

    The 64 pixel intensities (0 to 16) are standardized with the mean and standard deviation of the
    training set actually used (see :func:`standardize`), so the training features have mean 0 and
    standard deviation 1 (or are all 0 for pixels that are constant in training), while the test
    features only approximately so.

    Returns:
        A :class:`Split` with ``x`` of shape ``(n, 64)``, float32, and ``y`` of shape ``(n,)``,
        int64 class indices 0 to 9. ``name="digits"``.

    Example:
        >>> data = load_digits()
        >>> data.n_train, data.n_test, data.n_features
        (1257, 540, 64)
        >>> data.x_train.dtype, data.y_train.dtype
        (torch.float32, torch.int64)
        >>> load_digits(n_train=100).n_train
        100
    """
    test_fraction = check_real(test_fraction, "test_fraction")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got test_fraction={test_fraction!r}")
    seed = check_seed(seed)
    x, y = sklearn.datasets.load_digits(return_X_y=True)
    n_classes = len(np.unique(y))
    n_test = math.ceil(test_fraction * len(y))
    if not n_classes <= n_test <= len(y) - n_classes:
        raise ValueError(
            f"test_fraction={test_fraction!r} leaves {n_test} test and {len(y) - n_test} training "
            f"images; each set needs at least one image per class ({n_classes})"
        )
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=n_test, stratify=y, random_state=seed
    )
    if n_train is not None:
        n_train = check_positive_int(n_train, "n_train")
        if not n_classes <= n_train <= len(y_train):
            raise ValueError(
                f"n_train must be between {n_classes} (one image per class) and {len(y_train)} "
                f"(the whole training set), got n_train={n_train!r}"
            )
        if n_train < len(y_train):
            x_train, _, y_train, _ = train_test_split(
                x_train, y_train, train_size=n_train, stratify=y_train, random_state=seed
            )
    x_train, x_test, _, _ = standardize(x_train, x_test)
    return Split(
        x_train=torch.from_numpy(x_train).to(torch.float32),
        y_train=torch.from_numpy(y_train).to(torch.int64),
        x_test=torch.from_numpy(x_test).to(torch.float32),
        y_test=torch.from_numpy(y_test).to(torch.int64),
        name="digits",
    )


def toy_regression(
    n_train: int = 10,
    n_test: int = 200,
    slope: float = 1.5,
    train_noise: float = 0.5,
    test_noise: float = 0.3,
    seed: int = 0,
) -> Split:
    r"""A noisy line: the 10-point regression on which a wide network overfits without dropout.

    .. math::

        y = a x + \varepsilon, \qquad \varepsilon \sim \mathcal N(0, s^2)

    with slope ``a``. Training inputs: ``n_train`` evenly spaced points on ``[-1, 1]``, noise
    ``s = train_noise``. Test inputs: ``n_test`` evenly spaced points on the same interval (a denser
    grid, so a fitted curve is judged between the training points too), noise ``s = test_noise``.
    The noise is drawn from a ``torch.Generator`` seeded with ``seed`` (the global RNG is untouched).
    The setting follows a blog post's PyTorch demo (slope 1.5, noise 0.5 / 0.3, ten points), whose
    test inputs were the training inputs again.

    Returns:
        A :class:`Split` with all tensors of shape ``(n, 1)``, float32. ``name="toy regression"``.

    Example:
        >>> data = toy_regression(seed=0)
        >>> tuple(data.x_train.shape), tuple(data.y_test.shape)
        ((10, 1), (200, 1))
        >>> data.x_train[[0, -1], 0].tolist()
        [-1.0, 1.0]
        >>> torch.equal(data.y_train, toy_regression(seed=0).y_train)
        True
    """
    n_train = check_positive_int(n_train, "n_train")
    n_test = check_positive_int(n_test, "n_test")
    slope = check_real(slope, "slope")
    train_noise = check_real(train_noise, "train_noise", minimum=0.0)
    test_noise = check_real(test_noise, "test_noise", minimum=0.0)
    generator = torch.Generator().manual_seed(check_seed(seed))

    def sample(n: int, noise: float) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.linspace(-1.0, 1.0, n).unsqueeze(1)
        return x, slope * x + noise * torch.randn(n, 1, generator=generator)

    x_train, y_train = sample(n_train, train_noise)
    x_test, y_test = sample(n_test, test_noise)
    return Split(x_train, y_train, x_test, y_test, name="toy regression")


# --- IDX files (MNIST, Fashion-MNIST) ---------------------------------------------------------------

#: The four files of an MNIST-style data set, by the :class:`Split` field each one fills. Each may
#: also be stored gzip-compressed, with ``.gz`` appended to its name (as they are distributed).
IDX_FILES: dict[str, str] = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}

#: IDX type codes (third byte of the magic number) and the big-endian NumPy type each stands for.
_IDX_TYPES: dict[int, str] = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_GZIP_MAGIC = b"\x1f\x8b"


def _check_path(path: Any, name: str) -> Path:
    if not isinstance(path, str | os.PathLike):
        raise TypeError(
            f"{name} must be a path (str or os.PathLike), got {name}={path!r} ({type(path).__name__})"
        )
    return Path(path)


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    r"""Parse one IDX file, plain or gzip-compressed, into a NumPy array.

    The IDX format (used by MNIST and Fashion-MNIST) is a header followed by the raw values:

    - a 4-byte magic number: two zero bytes, a type code (``0x08`` unsigned byte, ``0x09`` signed
      byte, ``0x0B`` int16, ``0x0C`` int32, ``0x0D`` float32, ``0x0E`` float64) and the number of
      dimensions :math:`d`;
    - :math:`d` sizes :math:`n_1, \dots, n_d`, each a big-endian unsigned 32-bit integer;
    - :math:`\prod_k n_k` values of the given type, big-endian, in row-major (C) order.

    A gzip file is recognized by its first two bytes (``1f 8b``), whatever its name. The file must
    hold exactly the announced number of values: a short or over-long file is an error, not a
    silently reshaped array.

    Returns:
        An array of shape ``(n_1, ..., n_d)`` in the machine's byte order (``uint8`` for images and
        labels of MNIST).

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the bytes are not a well-formed IDX file (the message says what is wrong).

    Example:
        >>> import tempfile
        >>> header = bytes([0, 0, 0x08, 2]) + (2).to_bytes(4, "big") + (3).to_bytes(4, "big")
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     path = Path(folder) / "tiny-idx2-ubyte"
        ...     _ = path.write_bytes(header + bytes(range(6)))
        ...     read_idx(path)
        array([[0, 1, 2],
               [3, 4, 5]], dtype=uint8)
    """
    path = _check_path(path, "path")
    if not path.is_file():
        raise FileNotFoundError(f"no IDX file at {str(path)!r}")
    raw = path.read_bytes()
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as error:  # BadGzipFile is an OSError
            raise ValueError(
                f"{path.name}: looks gzip-compressed but cannot be decompressed ({error})"
            ) from None
    if len(raw) < 4:
        raise ValueError(
            f"{path.name}: {len(raw)} bytes is too short for an IDX file (the magic number alone is 4)"
        )
    zero1, zero2, code, ndim = raw[:4]
    if zero1 != 0 or zero2 != 0:
        raise ValueError(
            f"{path.name}: not an IDX file: its magic number {raw[:4].hex(' ')} should start "
            "with two zero bytes"
        )
    if code not in _IDX_TYPES:
        known = ", ".join(f"0x{c:02X}" for c in _IDX_TYPES)
        raise ValueError(f"{path.name}: unknown IDX type code 0x{code:02X} (known codes: {known})")
    if ndim == 0:
        raise ValueError(f"{path.name}: the magic number announces 0 dimensions")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(
            f"{path.name}: the header announces {ndim} dimensions ({header} header bytes) but the file "
            f"has only {len(raw)} bytes"
        )
    shape = tuple(int.from_bytes(raw[4 + 4 * k : 8 + 4 * k], "big") for k in range(ndim))
    dtype = np.dtype(_IDX_TYPES[code])
    expected = math.prod(shape) * dtype.itemsize
    found = len(raw) - header
    if found != expected:
        problem = "is truncated" if found < expected else "has trailing bytes"
        raise ValueError(
            f"{path.name}: {problem}: shape {shape} of {dtype.name} needs {expected} bytes of data, "
            f"found {found}"
        )
    values = np.frombuffer(raw, dtype=dtype, count=math.prod(shape), offset=header)
    return values.reshape(shape).astype(dtype.newbyteorder("="))


@functools.lru_cache(maxsize=8)
def _read_idx_cached(path: str, modified_ns: int, size: int) -> np.ndarray:
    """:func:`read_idx`, remembered for the file's (path, modification time, size): sweeps reload often."""
    del modified_ns, size  # only part of the cache key: a changed file is read again
    array = read_idx(path)
    array.flags.writeable = False
    return array


def _find_idx(folder: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(
        f"{stem} (or {stem}.gz) is missing from {str(folder)!r}; an MNIST-style folder holds "
        + ", ".join(IDX_FILES.values())
        + " (each plain or .gz)"
    )


def _subsample(
    x: np.ndarray, y: np.ndarray, n: int | None, name: str, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    if n is None:
        return x, y
    n = check_positive_int(n, name)
    n_classes = len(np.unique(y))
    if not n_classes <= n <= len(y):
        raise ValueError(
            f"{name} must be between {n_classes} (one image per class) and {len(y)} (every image "
            f"there is), got {name}={n!r}"
        )
    if n == len(y):
        return x, y
    x_kept, _, y_kept, _ = train_test_split(x, y, train_size=n, stratify=y, random_state=seed)
    return x_kept, y_kept


def load_idx(
    folder: str | os.PathLike[str],
    *,
    n_train: int | None = None,
    n_test: int | None = None,
    seed: int = 0,
    name: str | None = None,
) -> Split:
    r"""An MNIST-style data set from a folder of IDX files, flattened, scaled and standardized.

    The folder must hold the four files of :data:`IDX_FILES` (``train-images-idx3-ubyte`` and the
    others, each plain or ``.gz``), as MNIST and Fashion-MNIST are distributed. Nothing is
    downloaded: the reader points this at files already on disk. Each image of shape
    ``(rows, cols)`` becomes a row of ``rows * cols`` features (784 for 28 x 28); ``uint8`` pixels
    are divided by 255 to lie in :math:`[0, 1]` (other types are kept as they are). If ``n_train``
    or ``n_test`` is given, a stratified subsample of that many images is drawn from the training or
    test file with ``seed`` (each class keeps its share). Finally every pixel is standardized with
    the mean and standard deviation of the *training images kept* (:func:`standardize`): the test
    images never enter those statistics.

    Parsed files are cached (by path, size and modification time), so repeated calls, e.g. one per
    seed of a sweep, read and decompress each file once.

    Args:
        folder: the folder holding the four IDX files.
        n_train, n_test: sizes of the subsamples, or ``None`` for every image.
        seed: seeds the subsamples.
        name: the :class:`Split`'s name (default: the folder's name).

    Returns:
        A :class:`Split`: ``x`` float32 of shape ``(n, rows * cols)``, ``y`` int64 of shape ``(n,)``.

    Example:
        >>> import tempfile
        >>> def idx(dims, values):  # an unsigned-byte IDX file: magic, sizes, values
        ...     sizes = b"".join(d.to_bytes(4, "big") for d in dims)
        ...     return bytes([0, 0, 0x08, len(dims)]) + sizes + bytes(values)
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     for key, n in (("train", 6), ("t10k", 4)):
        ...         images = [(7 * i) % 256 for i in range(n * 4)]
        ...         _ = (Path(folder) / f"{key}-images-idx3-ubyte").write_bytes(idx([n, 2, 2], images))
        ...         _ = (Path(folder) / f"{key}-labels-idx1-ubyte").write_bytes(idx([n], [0, 1] * (n // 2)))
        ...     data = load_idx(folder, name="tiny")
        >>> data.n_train, data.n_test, data.n_features, data.name
        (6, 4, 4, 'tiny')
        >>> bool(data.x_train.mean(dim=0).abs().max() < 1e-6)
        True
    """
    folder = _check_path(folder, "folder")
    if not folder.is_dir():
        raise FileNotFoundError(f"folder must be an existing directory, got folder={str(folder)!r}")
    seed = check_seed(seed)
    if name is not None and not isinstance(name, str):
        raise TypeError(f"name must be a str or None, got name={name!r} ({type(name).__name__})")
    arrays: dict[str, np.ndarray] = {}
    for field, stem in IDX_FILES.items():
        path = _find_idx(folder, stem)
        stat = path.stat()
        arrays[field] = _read_idx_cached(str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    for part in ("train", "test"):
        x, y = arrays[f"x_{part}"], arrays[f"y_{part}"]
        files = f"{IDX_FILES[f'x_{part}']} and {IDX_FILES[f'y_{part}']}"
        if x.ndim < 2:
            raise ValueError(
                f"{IDX_FILES[f'x_{part}']}: images need at least 2 dimensions, got shape {x.shape}"
            )
        if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
            raise ValueError(
                f"{IDX_FILES[f'y_{part}']}: labels must be one integer per image, got shape {y.shape} "
                f"of {y.dtype}"
            )
        if len(x) != len(y):
            raise ValueError(f"{files} disagree: {len(x)} images but {len(y)} labels")
        if len(y) and y.min() < 0:
            raise ValueError(f"{IDX_FILES[f'y_{part}']}: labels must be >= 0, found {int(y.min())}")
    if arrays["x_train"].shape[1:] != arrays["x_test"].shape[1:]:
        raise ValueError(
            f"training and test images differ in shape: {arrays['x_train'].shape[1:]} and "
            f"{arrays['x_test'].shape[1:]}"
        )
    x_train, y_train = _subsample(arrays["x_train"], arrays["y_train"], n_train, "n_train", seed)
    x_test, y_test = _subsample(arrays["x_test"], arrays["y_test"], n_test, "n_test", seed)

    def features(images: np.ndarray) -> np.ndarray:
        flat = images.reshape(len(images), -1).astype(np.float64)
        return flat / 255.0 if images.dtype == np.uint8 else flat

    x_train_z, x_test_z, _, _ = standardize(features(x_train), features(x_test))
    return Split(
        x_train=torch.from_numpy(x_train_z).to(torch.float32),
        y_train=torch.from_numpy(y_train.astype(np.int64)),
        x_test=torch.from_numpy(x_test_z).to(torch.float32),
        y_test=torch.from_numpy(y_test.astype(np.int64)),
        name=folder.name if name is None else name,
    )
