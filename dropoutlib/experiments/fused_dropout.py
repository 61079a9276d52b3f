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
- The chapter's claims, one function per section, each holding the thresholds it uses:
  :func:`kept_claims`, :func:`roofline_claims`, :func:`counter_claims` with :func:`rule_claims` and
  :func:`mask_claims`, :func:`kernel_claims`, :func:`benchmark_claims`.

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

from dropoutlib.course.claims import Claim, above
from dropoutlib.fused import philox_uniform

__all__ = [
    "CONFIGS",
    "CPU_ANCHOR",
    "FUSED_TARGETS",
    "H100_ANCHOR",
    "MASK_BITS",
    "MASK_Z",
    "METHODS",
    "PASSES",
    "RESULTS",
    "Anchor",
    "BenchmarkTable",
    "FusedTargets",
    "MaskStatistics",
    "benchmark_claims",
    "benchmark_tables",
    "bytes_moved",
    "config_dropout_rates",
    "counter_claims",
    "kept_claims",
    "kernel_claims",
    "load_benchmark",
    "mask_claims",
    "mask_memory_claims",
    "mask_statistics",
    "roofline_claims",
    "roofline_ms",
    "rooflines",
    "rule_claims",
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


def bytes_moved(
    n: int, itemsize: int, *, mask_itemsize: int = 0, mask_bits: int | None = None, passes: str = "forward"
) -> int:
    r"""Bytes an element-wise dropout on ``n`` elements reads and writes in memory, at the least.

    With :math:`s` bytes per element and a mask of :math:`M` bytes in all (0: no mask is stored, the
    mask is regenerated from a seed):

    - forward: read :math:`x`, write :math:`y`, write the mask: :math:`2ns + M`;
    - backward: read :math:`\partial L/\partial y` and the mask, write :math:`\partial L/\partial x`:
      :math:`2ns + M`;
    - ``"forward_backward"``: both, :math:`4ns + 2M`.

    :math:`M = nm` for a mask of :math:`m` bytes per element (``mask_itemsize``; 1 for PyTorch's
    bool mask), or :math:`\lceil nb/8 \rceil` for one packed into :math:`b` bits per element
    (``mask_bits``; 1 for a bitmask). A copy (``x.clone()``) moves what a mask-free forward pass
    moves, :math:`2ns`.

    Args:
        n: number of elements.
        itemsize: bytes per element of the data (4 for float32, 2 for bfloat16).
        mask_itemsize: bytes per element of a stored mask (1 for a bool mask; 0 for none).
        mask_bits: bits per element of a packed mask, instead of ``mask_itemsize``.
        passes: ``"forward"``, ``"backward"`` or ``"forward_backward"``.

    Example:
        >>> bytes_moved(1000, 2)  # a bfloat16 forward without a mask: read 2000 bytes, write 2000
        4000
        >>> bytes_moved(1000, 2, mask_itemsize=1, passes="forward_backward")
        10000
        >>> bytes_moved(1000, 2, mask_bits=1, passes="forward_backward")  # 125 bytes of bits, twice
        8250
    """
    n = _check_count(n, "n")
    itemsize = _check_count(itemsize, "itemsize", 1)
    mask_itemsize = _check_count(mask_itemsize, "mask_itemsize")
    if mask_bits is None:
        mask_bytes = n * mask_itemsize
    else:
        mask_bits = _check_count(mask_bits, "mask_bits")
        if mask_itemsize:
            raise ValueError(
                f"give mask_itemsize or mask_bits, not both (got mask_itemsize={mask_itemsize}, "
                f"mask_bits={mask_bits})"
            )
        mask_bytes = -(-n * mask_bits // 8)
    if passes not in PASSES:
        raise ValueError(f"passes must be one of {PASSES}, got passes={passes!r}")
    one_pass = 2 * n * itemsize + mask_bytes
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


#: Hugging Face configurations whose default dropout rates :func:`config_dropout_rates` reads:
#: three recent decoder-only language models (each default modelled on a released 7B model) and
#: two from 2018-2019.
CONFIGS: dict[str, str] = {
    "LLaMA": "LlamaConfig",
    "Mistral": "MistralConfig",
    "Qwen2": "Qwen2Config",
    "BERT": "BertConfig",
    "GPT-2": "GPT2Config",
}
_RECENT = ("LLaMA", "Mistral", "Qwen2")


def config_dropout_rates(names: tuple[str, ...] = tuple(CONFIGS)) -> dict[str, dict[str, float]]:
    """The dropout rates in the default ``transformers`` configuration of each model of :data:`CONFIGS`.

    Every field whose name contains ``drop`` and holds a number (``classifier_dropout=None`` is left
    out). Nothing is downloaded: the defaults ship with the library.

    Example:
        >>> config_dropout_rates(("BERT",))
        {'BERT': {'hidden_dropout_prob': 0.1, 'attention_probs_dropout_prob': 0.1}}
    """
    from dropoutlib.course.zoo import import_torchvision

    unknown = [name for name in names if name not in CONFIGS]
    if unknown:
        raise ValueError(f"names must be among {tuple(CONFIGS)}, got {unknown}")
    import_torchvision()  # transformers imports torchvision, which needs the zoo's workaround here
    import transformers

    rates = {}
    for name in names:
        fields = getattr(transformers, CONFIGS[name])().to_dict()
        rates[name] = {k: float(v) for k, v in fields.items()
                       if "drop" in k and isinstance(v, int | float) and not isinstance(v, bool)}
    return rates


def mask_memory_claims(elements: dict[str, int], rates: dict[str, dict[str, float]]) -> list[Claim]:
    """Where a transformer's dropout masks are, and which models still use dropout.

    ``elements`` is :func:`transformer_dropout_elements` of one layer, ``rates`` is
    :func:`config_dropout_rates`. The attention probabilities hold most of the masked elements;
    the recent language models' default configurations set every dropout rate to 0, while every
    rate of BERT's and GPT-2's is above 0.
    """
    share = elements["attention probabilities"] / sum(elements.values())
    recent = [rate for name in _RECENT if name in rates for rate in rates[name].values()]
    older = [rate for name, values in rates.items() if name not in _RECENT for rate in values.values()]
    return [
        above("the attention probabilities hold most of the masked elements", share, 0.5),
        Claim("the recent models' configurations set every dropout rate to 0",
              bool(recent) and all(rate == 0 for rate in recent), f"rates {sorted(set(recent))}"),
        Claim("BERT's and GPT-2's configurations use dropout",
              bool(older) and all(rate > 0 for rate in older), f"rates {sorted(set(older))}"),
    ]


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

    def at_largest(self, dtype: str) -> dict[str, dict[str, Any]]:
        """The row of every method measured at the largest size, for one dtype, in :data:`METHODS` order.

        Example:
            >>> table = BenchmarkTable({"device_type": "cpu"}, [
            ...     {"method": "copy", "dtype": "float32", "size": 8, "forward_ms": 1.0},
            ...     {"method": "copy", "dtype": "float32", "size": 4, "forward_ms": 0.5}], Path("t.json"))
            >>> table.at_largest("float32")["copy"]["forward_ms"]
            1.0
        """
        largest = self.sizes()[-1]
        rows = {}
        for method in METHODS:
            for row in self.select(method, dtype):
                if row["size"] == largest:
                    rows[method] = row
        return rows


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


# --- the chapter's claims ---------------------------------------------------------------------------------

MASK_Z = 4.0
"""A Philox mask's statistics must lie within this many standard errors of what independent coins give."""


def _equal(statement: str, a: torch.Tensor, b: torch.Tensor) -> Claim:
    """The claim that two tensors are equal bit for bit; the evidence counts the elements that differ."""
    same = a.shape == b.shape and torch.equal(a, b)
    differ = int((a != b).sum()) if a.shape == b.shape else "all"
    return Claim(statement, same, f"{differ} of {b.numel()} elements differ")


def kept_claims(kept: dict[tuple[str, torch.dtype], float]) -> list[Claim]:
    """What autograd keeps between the passes, in bytes per element, measured with :func:`saved_bytes`.

    ``kept`` maps ``(method, dtype)`` to the bytes kept per element, for the methods ``"F.dropout"``,
    ``"dropoutlib.dropout"`` and ``"fused_dropout"``. On the CPU PyTorch's dropout and the
    from-scratch one keep one mask value of the input's dtype per element; the fused one keeps nothing.

    Example:
        >>> kept = {("F.dropout", torch.float32): 4.0, ("dropoutlib.dropout", torch.float32): 4.0,
        ...         ("fused_dropout", torch.float32): 0.0}
        >>> [c.holds for c in kept_claims(kept)]
        [True, True]
    """
    dtypes = list(dict.fromkeys(dtype for _, dtype in kept))
    masks = [
        (kept[name, dtype], torch.empty((), dtype=dtype).element_size())
        for dtype in dtypes
        for name in ("F.dropout", "dropoutlib.dropout")
    ]
    fused = [kept["fused_dropout", dtype] for dtype in dtypes]
    return [
        Claim(
            "PyTorch's and our dropout keep one mask value per element",
            all(value == size for value, size in masks),
            f"{', '.join(f'{value:g}' for value, _ in masks)} bytes per element, "
            f"itemsizes {', '.join(str(size) for _, size in masks)}",
        ),
        Claim(
            "fused_dropout keeps nothing for backward",
            all(value == 0 for value in fused),
            f"{', '.join(f'{value:g}' for value in fused)} bytes per element",
        ),
    ]


#: The masks :func:`rooflines` compares, in bits per element.
MASK_BITS: dict[str, int] = {"mask-free": 0, "with a 1-bit mask": 1, "with a bool mask": 8}


def rooflines(n: int, itemsize: int, bandwidth: float) -> dict[str, float]:
    """Forward plus backward rooflines (ms) of dropout on ``n`` elements, for each mask of :data:`MASK_BITS`.

    Example:
        >>> {k: round(v, 3) for k, v in rooflines(2**27, 2, 3e12).items()}
        {'mask-free': 0.358, 'with a 1-bit mask': 0.369, 'with a bool mask': 0.447}
    """
    return {
        name: roofline_ms(bytes_moved(n, itemsize, mask_bits=bits, passes="forward_backward"), bandwidth)
        for name, bits in MASK_BITS.items()
    }


def roofline_claims(roof: dict[str, float], target_ms: float) -> list[Claim]:
    """Where the goal lies among the rooflines of :data:`H100_ANCHOR`'s forward plus backward.

    ``roof`` is :func:`rooflines` for the anchor's size in bfloat16; ``target_ms`` is
    the goal, native dropout's time divided by :attr:`FusedTargets.forward_backward_speedup`. The
    goal lies below the bool mask's roofline and above the other two: it rules out a one-byte mask,
    not every stored mask.

    Example:
        >>> roof = rooflines(H100_ANCHOR.size, 2, H100_ANCHOR.copy_bandwidth)
        >>> [c.holds for c in roofline_claims(roof, 0.76 / 1.8)]
        [True, True, True]
    """
    free, bit, byte = roof["mask-free"], roof["with a 1-bit mask"], roof["with a bool mask"]
    return [
        Claim("the goal is above the mask-free roofline", free < target_ms, f"{free:.4f} < {target_ms:.4f}"),
        Claim(
            "a 1-bit mask's roofline is below the goal: a packed mask could reach it",
            bit < target_ms,
            f"{bit:.4f} < {target_ms:.4f} ms",
        ),
        Claim(
            "a bool mask's roofline is above the goal: a one-byte mask cannot reach it",
            target_ms < byte,
            f"{target_ms:.4f} < {byte:.4f} ms",
        ),
    ]


def counter_claims(
    seed: int, u_all: torch.Tensor, picked: torch.Tensor, alone: torch.Tensor, shuffled: torch.Tensor
) -> list[Claim]:
    """Counter-based: any element's number computed alone, in any order, regenerated; a new seed differs.

    ``u_all`` is ``philox_uniform(seed, torch.arange(n))``; ``alone`` is ``philox_uniform(seed,
    picked)``, computed without the other elements; ``shuffled`` is a permutation of the ``n`` indices.

    Example:
        >>> u_all = philox_uniform(5, torch.arange(100))
        >>> picked, shuffled = torch.tensor([99, 3]), torch.randperm(100)
        >>> all(c.holds for c in counter_claims(5, u_all, picked, philox_uniform(5, picked), shuffled))
        True
    """
    indices = torch.arange(len(u_all))
    other = philox_uniform(seed + 1, indices)
    same_as_other = int((other == u_all).sum())
    return [
        _equal("a number computed alone equals the one in the full vector", alone, u_all[picked]),
        _equal("any order gives the same numbers", philox_uniform(seed, shuffled), u_all[shuffled]),
        _equal("regenerating gives the same bits", philox_uniform(seed, indices), u_all),
        Claim(
            "a new seed gives new numbers",
            not torch.equal(other, u_all),
            f"{same_as_other} of {len(u_all)} elements equal",
        ),
    ]


def rule_claims(x: torch.Tensor, y: torch.Tensor, u: torch.Tensor, p: float) -> list[Claim]:
    """``y = fused_dropout(x, p, seed=seed)`` keeps element ``i`` exactly when ``u_i >= p``, scaled by 1/q.

    ``u`` is ``philox_uniform(seed, torch.arange(x.numel()))``, the numbers of the same seed.

    Example:
        >>> from dropoutlib.fused import fused_dropout
        >>> x = torch.randn(1000)
        >>> y = fused_dropout(x, 0.3, seed=9)
        >>> [c.holds for c in rule_claims(x, y, philox_uniform(9, torch.arange(1000)), 0.3)]
        [True, True]
    """
    keep = u >= p
    scaled = x[keep] / (1 - p)
    gap = float((y[keep] - scaled).abs().max()) if keep.any() else 0.0
    return [
        _equal("fused_dropout keeps element i exactly when u_i >= p", y != 0, keep),
        Claim(
            "kept values are scaled by 1/q",
            torch.allclose(y[keep], scaled),
            f"largest difference {gap:.2g}",
        ),
    ]


def mask_claims(stats: MaskStatistics) -> list[Claim]:
    """A Philox mask behaves like independent coins: each statistic within :data:`MASK_Z` standard errors.

    The drop fraction (expected ``p``), the share dropped by two neighbouring seeds (expected ``p**2``)
    and the correlation of neighbouring elements' numbers (expected 0), as z-scores.

    Example:
        >>> [c.holds for c in mask_claims(mask_statistics(0, p=0.5, n=10_000))]
        [True, True, True]
    """
    return [
        Claim(
            f"the {name} is what independent coins give",
            abs(z) < MASK_Z,
            f"|z| = {abs(z):.2f} < {MASK_Z:g}",
        )
        for name, z in (
            ("drop fraction", stats.z_drop),
            ("overlap of neighbouring seeds", stats.z_both),
            ("neighbour correlation", stats.z_corr),
        )
    ]


def kernel_claims(
    results: dict[str, tuple[torch.Tensor, torch.Tensor]], y16: dict[str, torch.Tensor]
) -> list[Claim]:
    """The Triton kernel and the torch backend agree: bit for bit in float32, to one ulp in bfloat16.

    Args:
        results: for ``"triton"`` and ``"torch"``, the float32 output of ``fused_dropout`` and the
            input's gradient after ``backward``, same input, gradient and seed.
        y16: for ``"triton"`` and ``"torch"``, the output for the same input in bfloat16, as float32.

    The backward pass drops the elements the forward pass dropped; in bfloat16 both backends drop
    the same elements and the kept values are within one unit in the last place (bfloat16 has an 8-bit
    significand), since Triton's interpreter rounds toward zero where PyTorch rounds to nearest.

    Example:
        >>> from dropoutlib.fused import fused_dropout
        >>> x = torch.randn(100, requires_grad=True)
        >>> y = fused_dropout(x, 0.2, seed=3, backend="torch")
        >>> y.backward(torch.ones(100))
        >>> y16 = fused_dropout(x.detach().bfloat16(), 0.2, seed=3, backend="torch").float()
        >>> same = {"triton": (y.detach(), x.grad), "torch": (y.detach(), x.grad)}
        >>> all(c.holds for c in kernel_claims(same, {"triton": y16, "torch": y16}))
        True
    """
    (y_kernel, grad_kernel), (y_torch, grad_torch) = results["triton"], results["torch"]
    kernel16, torch16 = y16["triton"], y16["torch"]
    ulp = torch.exp2(torch.floor(torch.log2(torch16.abs().clamp_min(1e-30))) - 7)
    gap = (kernel16 - torch16).abs() / ulp
    return [
        _equal("the kernel's forward equals the torch backend's", y_kernel, y_torch),
        _equal("the kernel's backward equals the torch backend's", grad_kernel, grad_torch),
        _equal("the backward drops the elements the forward dropped", grad_kernel == 0, y_kernel == 0),
        _equal("bfloat16: the same elements are dropped", kernel16 == 0, torch16 == 0),
        Claim(
            "bfloat16: kept values are within one ulp",
            bool((gap <= 1).all()),
            f"largest difference {float(gap.max()):.2g} ulp <= 1",
        ),
    ]


def benchmark_claims(tables: list[BenchmarkTable]) -> list[Claim]:
    """What every committed benchmark table must show about the bytes kept, and on a CPU the speed.

    In every table the fused method keeps nothing for backward; on a CPU the native and the
    from-scratch dropout keep a mask. On the first CPU table, at its largest float32 size, the fused
    path's torch backend is slower than native dropout. Without tables (an installed ``dropoutlib``
    has none) the first two claims hold for no rows, and the third is left out.

    Example:
        >>> [c.holds for c in benchmark_claims([])]
        [True, True]
    """
    fused = [row for table in tables for row in table.rows if row["method"] == "fused"]
    masked = [
        row
        for table in tables
        if not table.is_gpu
        for row in table.rows
        if row["method"] in ("native", "scratch")
    ]
    claims = [
        Claim(
            "the fused method keeps nothing in any table",
            all(row["saved_bytes"] == 0 for row in fused),
            f"{sum(row['saved_bytes'] == 0 for row in fused)} of {len(fused)} rows keep 0 bytes",
        ),
        Claim(
            "on the CPU, native and scratch dropout keep a mask",
            all(row["saved_bytes"] > 0 for row in masked),
            f"{sum(row['saved_bytes'] > 0 for row in masked)} of {len(masked)} rows keep bytes",
        ),
    ]
    cpu = [table for table in tables if not table.is_gpu]
    if cpu:
        rows = cpu[0].at_largest("float32")
        claims.append(
            above(
                "on a CPU the fused path is slower than native dropout (ms)",
                rows["fused"]["forward_ms"],
                rows["native"]["forward_ms"],
            )
        )
    return claims
