"""What a dropout costs: the bytes it keeps for the backward pass, the bytes it moves, its measured speed.

- :func:`saved_bytes` measures what autograd keeps between the passes (the mask, for PyTorch's dropout).
- :func:`bytes_moved` and :func:`roofline_ms` are a model of memory traffic: an element-wise operation
  on a large tensor is limited by memory bandwidth, so its time is at least the bytes it reads and writes
  divided by the bandwidth.
- :func:`mask_statistics` measures how independent the masks of a counter-based generator are.
- :func:`transformer_dropout_elements` counts the elements a transformer layer sends through dropout.
- :func:`benchmark_tables` and :func:`load_benchmark` read the tables that
  ``benchmarks/dropout_speed.py`` writes (``benchmarks/results/dropout_speed-<device>.json``).
- :data:`H100_ANCHOR`, :data:`CPU_ANCHOR` and :data:`FUSED_TARGETS` are the project's reference
  measurements and goals, typed in by hand (they are not re-measured when the book is built).

Example:
    >>> import torch.nn.functional as F
    >>> x = torch.randn(1000, requires_grad=True)
    >>> saved_bytes(lambda t: F.dropout(t, 0.5), x) > 0  # PyTorch keeps a mask for the backward pass
    True
    >>> saved_bytes(lambda t: t * 2, x)  # a product with a constant keeps nothing
    0
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from dropoutlib.fused import philox_uniform

__all__ = [
    "CPU_ANCHOR",
    "FUSED_TARGETS",
    "H100_ANCHOR",
    "METHODS",
    "PASSES",
    "RESULTS",
    "Anchor",
    "BenchmarkTable",
    "FusedTargets",
    "MaskStatistics",
    "benchmark_tables",
    "bytes_moved",
    "load_benchmark",
    "mask_statistics",
    "roofline_ms",
    "saved_bytes",
    "transformer_dropout_elements",
]

METHODS = ("copy", "native", "scratch", "fused")  # the methods benchmarks/dropout_speed.py times
PASSES = ("forward", "backward", "forward_backward")
RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"
"""Where ``benchmarks/dropout_speed.py`` writes its tables, in a clone of the repository."""
_ROW_KEYS = ("method", "size", "dtype", "forward_ms", "forward_backward_ms", "saved_bytes", "forward_vs_copy")
_META_KEYS = ("device", "device_type", "date", "torch")


def saved_bytes(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> int:
    """Bytes of the tensors that autograd saves for backward during one call ``fn(x)``, ``x`` excluded.

    Counted with ``torch.autograd.graph.saved_tensors_hooks``: every tensor packed for backward is
    counted once per time it is saved (``numel * element_size``), except ``x`` itself, which exists
    anyway. ``x`` must require grad for anything to be saved.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got x={type(x).__name__}")
    total = 0

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        nonlocal total
        if tensor.data_ptr() != x.data_ptr():
            total += tensor.numel() * tensor.element_size()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        fn(x)
    return total


# --- the project's anchor measurements (typed in; not measured by the book) ------------------------------


@dataclass(frozen=True)
class Anchor:
    """Speeds the project measured once on one machine, quoted by the book as reference points.

    Attributes:
        device: the machine, in words.
        software: the PyTorch version (and anything else that matters).
        copy_bandwidth: bytes per second that ``x.clone()`` moves (read plus write), ``None`` if not noted.
        forward_vs_copy: forward speed as a fraction of the copy's (copy time / method time), per
            method and dtype; a ``(low, high)`` pair where the project noted a range.
        forward_backward_ms: forward plus backward time in milliseconds, per method, for
            ``size`` elements of ``dtype``.
    """

    device: str
    software: str
    copy_bandwidth: float | None
    forward_vs_copy: dict[str, dict[str, float | tuple[float, float]]]
    forward_backward_ms: dict[str, float] = field(default_factory=dict)
    size: int | None = None
    dtype: str | None = None


H100_ANCHOR = Anchor(
    device="one NVIDIA H100 GPU",
    software="PyTorch 2.11",
    copy_bandwidth=3.0e12,
    forward_vs_copy={"native": {"bfloat16": 0.67, "float32": 0.77}, "scratch": {"any": (0.15, 0.21)}},
    forward_backward_ms={"native": 0.76},
    size=2**27,
    dtype="bfloat16",
)
"""The project's measurements on one H100 (PyTorch 2.11): the GPU numbers the book quotes."""

CPU_ANCHOR = Anchor(
    device="CPU",
    software="PyTorch, CPU build (version not recorded)",
    copy_bandwidth=None,
    forward_vs_copy={"native": {"any": 0.15}, "scratch": {"any": 0.24}},
)
"""The project's measurements on a CPU: native dropout at 0.15x a copy, the from-scratch one at 0.24x."""


@dataclass(frozen=True)
class FusedTargets:
    """What the fused kernel must reach on a GPU to be worth it (the project's goals)."""

    forward_vs_copy: float = 0.9  # forward at least this fraction of a copy's speed
    forward_backward_speedup: float = 1.8  # forward + backward at least this many times faster than native
    saved_bytes_per_element: float = 0.0  # no mask kept


FUSED_TARGETS = FusedTargets()
"""The project's goals for the fused kernel on a GPU."""


# --- a bandwidth model ------------------------------------------------------------------------------------


def _check_count(value: Any, name: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {name}={value!r} ({type(value).__name__})")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {name}={value}")
    return value


def bytes_moved(n: int, itemsize: int, *, mask_itemsize: int = 0, passes: str = "forward") -> int:
    r"""Bytes an element-wise dropout on ``n`` elements reads and writes in memory, at the least.

    With :math:`s` bytes per element and :math:`m` bytes per mask element (0: no mask is stored, the
    mask is regenerated from a seed):

    - forward: read :math:`x`, write :math:`y`, write the mask: :math:`n(2s + m)`;
    - backward: read :math:`\partial L/\partial y` and the mask, write :math:`\partial L/\partial x`:
      :math:`n(2s + m)`;
    - ``"forward_backward"``: both, :math:`n(4s + 2m)`.

    A copy (``x.clone()``) moves what a mask-free forward pass moves, :math:`2ns`.

    Args:
        n: number of elements.
        itemsize: bytes per element of the data (4 for float32, 2 for bfloat16).
        mask_itemsize: bytes per element of the stored mask (1 for a bool mask; 0 for none).
        passes: ``"forward"``, ``"backward"`` or ``"forward_backward"``.

    Example:
        >>> bytes_moved(1000, 2)  # a bfloat16 forward without a mask: read 2000 bytes, write 2000
        4000
        >>> bytes_moved(1000, 2, mask_itemsize=1, passes="forward_backward")
        10000
    """
    n = _check_count(n, "n")
    itemsize = _check_count(itemsize, "itemsize", 1)
    mask_itemsize = _check_count(mask_itemsize, "mask_itemsize")
    if passes not in PASSES:
        raise ValueError(f"passes must be one of {PASSES}, got passes={passes!r}")
    one_pass = n * (2 * itemsize + mask_itemsize)
    return 2 * one_pass if passes == "forward_backward" else one_pass


def roofline_ms(n_bytes: int | float, bandwidth: float) -> float:
    """The least time, in milliseconds, to move ``n_bytes`` at ``bandwidth`` bytes per second.

    Example:
        >>> roofline_ms(3e9, 3e12)  # 3 GB at 3 TB/s
        1.0
    """
    if isinstance(n_bytes, bool) or not isinstance(n_bytes, int | float) or not n_bytes >= 0:
        raise ValueError(f"n_bytes must be a non-negative number, got n_bytes={n_bytes!r}")
    if isinstance(bandwidth, bool) or not isinstance(bandwidth, int | float) or not bandwidth > 0:
        raise ValueError(f"bandwidth must be a positive number of bytes per second, got {bandwidth!r}")
    return n_bytes / bandwidth * 1e3


def transformer_dropout_elements(batch: int, seq_len: int, d_model: int, n_heads: int) -> dict[str, int]:
    """Elements that one transformer layer (GPT-style) sends through dropout in a training step.

    Three dropouts per layer: on the attention probabilities (``batch * n_heads * seq_len**2``), and
    on the two residual branches, after attention and after the MLP (``batch * seq_len * d_model``
    each). Embedding dropout, once per model, is not counted.

    Example:
        >>> transformer_dropout_elements(1, 4, 8, 2)
        {'attention probabilities': 32, 'attention output': 32, 'MLP output': 32}
    """
    batch, seq_len = _check_count(batch, "batch", 1), _check_count(seq_len, "seq_len", 1)
    d_model, n_heads = _check_count(d_model, "d_model", 1), _check_count(n_heads, "n_heads", 1)
    return {
        "attention probabilities": batch * n_heads * seq_len**2,
        "attention output": batch * seq_len * d_model,
        "MLP output": batch * seq_len * d_model,
    }


# --- benchmark tables -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchmarkTable:
    """One file written by ``benchmarks/dropout_speed.py``: where it was measured, and its rows.

    Attributes:
        meta: device, device_type, date, versions, p, repeats and the command that wrote it.
        rows: one dict per method, size and dtype (``forward_ms``, ``forward_backward_ms``,
            ``saved_bytes``, ``forward_vs_copy``, ...).
        path: the file it was read from.
    """

    meta: dict[str, Any]
    rows: list[dict[str, Any]]
    path: Path

    @property
    def is_gpu(self) -> bool:
        """Whether the table was measured on a GPU."""
        return self.meta["device_type"] == "cuda"

    @property
    def label(self) -> str:
        """The device and the date, for titles: ``"CPU: x86_64, 2 torch threads, 2026-11-23"``."""
        return f"{self.meta['device']}, {self.meta['date']}"

    def dtypes(self) -> list[str]:
        """The dtypes measured, in the order they appear."""
        return list(dict.fromkeys(row["dtype"] for row in self.rows))

    def sizes(self) -> list[int]:
        """The sizes (numbers of elements) measured, ascending."""
        return sorted({row["size"] for row in self.rows})

    def select(self, method: str, dtype: str) -> list[dict[str, Any]]:
        """The rows of one method and dtype, by ascending size.

        Example:
            >>> table = BenchmarkTable({"device_type": "cpu"}, [
            ...     {"method": "copy", "dtype": "float32", "size": 8, "forward_ms": 1.0},
            ...     {"method": "copy", "dtype": "float32", "size": 4, "forward_ms": 0.5}], Path("t.json"))
            >>> [row["size"] for row in table.select("copy", "float32")]
            [4, 8]
        """
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got method={method!r}")
        rows = [row for row in self.rows if row["method"] == method and row["dtype"] == dtype]
        return sorted(rows, key=lambda row: row["size"])

    def row(self, method: str, dtype: str, size: int) -> dict[str, Any]:
        """The one row of ``method`` at ``dtype`` and ``size``; ``KeyError`` if it was not measured."""
        for row in self.select(method, dtype):
            if row["size"] == size:
                return row
        raise KeyError(f"{self.path.name} has no row for method={method!r}, dtype={dtype!r}, size={size}")


def load_benchmark(path: str | Path) -> BenchmarkTable:
    """Read one ``dropout_speed-<device>.json`` file, checking that it has the fields the book uses.

    Example:
        >>> import tempfile
        >>> meta = {"device": "CPU", "device_type": "cpu", "date": "2026-01-01", "torch": "2"}
        >>> row = {"method": "copy", "size": 4, "dtype": "float32", "forward_ms": 1.0,
        ...        "forward_backward_ms": 2.0, "saved_bytes": 0, "forward_vs_copy": 1.0}
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     path = Path(folder) / "dropout_speed-cpu.json"
        ...     _ = path.write_text(json.dumps({"meta": meta, "rows": [row]}))
        ...     load_benchmark(path).label
        'CPU, 2026-01-01'
    """
    path = Path(path)
    data = json.loads(path.read_text())
    if not isinstance(data, dict) or not isinstance(data.get("meta"), dict) or not data.get("rows"):
        raise ValueError(f"{path} is not a benchmark table: it needs a 'meta' object and a 'rows' list")
    missing = [key for key in _META_KEYS if key not in data["meta"]]
    if missing:
        raise ValueError(f"{path}: meta lacks {missing}")
    for row in data["rows"]:
        missing = [key for key in _ROW_KEYS if key not in row]
        if missing:
            raise ValueError(f"{path}: a row lacks {missing}: {row}")
        if row["method"] not in METHODS:
            raise ValueError(f"{path}: unknown method {row['method']!r} (expected one of {METHODS})")
        if not math.isfinite(row["forward_ms"]) or row["forward_ms"] <= 0:
            raise ValueError(f"{path}: forward_ms must be a positive time, got {row['forward_ms']!r}")
    return BenchmarkTable(data["meta"], data["rows"], path)


def benchmark_tables(folder: str | Path | None = None) -> list[BenchmarkTable]:
    """Every ``dropout_speed-*.json`` table in ``folder`` (default: the repository's
    ``benchmarks/results``), CPU tables first, then by file name; an empty list if there are none.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     benchmark_tables(folder)
        []
    """
    folder = RESULTS if folder is None else Path(folder)
    if not folder.is_dir():
        return []
    tables = [load_benchmark(path) for path in sorted(folder.glob("dropout_speed-*.json"))]
    return sorted(tables, key=lambda table: (table.is_gpu, table.path.name))


# --- the statistics of a regenerated mask -----------------------------------------------------------------


@dataclass(frozen=True)
class MaskStatistics:
    """How :func:`dropoutlib.fused.fused_dropout`'s mask of ``n`` elements behaves, as z-scores.

    Attributes:
        drop_fraction: share of elements dropped (expected ``p``); ``z_drop`` its z-score.
        both_dropped: share dropped by ``seed`` *and* ``seed + 1`` (expected ``p**2`` if neighbouring
            seeds give independent masks); ``z_both`` its z-score.
        neighbour_corr: correlation of the uniform numbers of elements ``i`` and ``i + 1`` (expected
            0); ``z_corr`` its z-score (``neighbour_corr * sqrt(n)``).
    """

    drop_fraction: float
    z_drop: float
    both_dropped: float
    z_both: float
    neighbour_corr: float
    z_corr: float


def mask_statistics(seed: int, p: float = 0.1, n: int = 100_000) -> MaskStatistics:
    """Drop fraction, overlap with the next seed's mask and neighbour correlation of a Philox mask.

    Example:
        >>> stats = mask_statistics(0, p=0.5, n=10_000)
        >>> abs(stats.z_drop) < 5 and abs(stats.z_both) < 5 and abs(stats.z_corr) < 5
        True
    """
    if isinstance(p, bool) or not isinstance(p, int | float) or not 0 < p < 1:
        raise ValueError(f"p must be a probability strictly between 0 and 1, got p={p!r}")
    n = _check_count(n, "n", 2)
    offsets = torch.arange(n)
    u = philox_uniform(seed, offsets).double()
    u_next_seed = philox_uniform(seed + 1, offsets).double()
    dropped = u < p
    drop = dropped.double().mean().item()
    both = (dropped & (u_next_seed < p)).double().mean().item()
    centred = u - u.mean()
    corr = ((centred[1:] * centred[:-1]).mean() / centred.square().mean()).item()
    return MaskStatistics(
        drop_fraction=drop,
        z_drop=(drop - p) / math.sqrt(p * (1 - p) / n),
        both_dropped=both,
        z_both=(both - p**2) / math.sqrt(p**2 * (1 - p**2) / n),
        neighbour_corr=corr,
        z_corr=corr * math.sqrt(n - 1),
    )
