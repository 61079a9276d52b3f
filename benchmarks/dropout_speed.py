"""What dropout costs: a plain copy, PyTorch's dropout, dropoutlib's from-scratch one and the fused one.

For each size (number of elements) and dtype, on the device at hand, the script times

- ``copy``: ``x.clone()``, the memory-bandwidth limit of an operation that reads and writes every element;
- ``native``: ``torch.nn.functional.dropout``;
- ``scratch``: :func:`dropoutlib.dropout` (a Bernoulli mask drawn, stored and multiplied in);
- ``fused``: :func:`dropoutlib.fused.fused_dropout` (the mask recomputed from a seed; Triton kernel on a
  GPU when Triton is installed, the torch backend otherwise);

forward alone and forward plus backward, and records the bytes each saves for the backward pass (what
autograd keeps between the passes: the mask) and, on a GPU, the peak memory of forward plus backward.
The effective bandwidth of a forward pass is given as a fraction of the copy's: the copy's time divided
by the method's (both read and write each element once; the mask is extra traffic).

Usage (one command; writes ``benchmarks/results/dropout_speed-<device>.json`` and ``.csv``, where
``<device>`` is the GPU's model on CUDA and the device type otherwise: ``cpu``, ``mps``, ...; ``--device``
and ``--out`` are checked before anything is timed)::

    python benchmarks/dropout_speed.py                    # sizes 2^20 .. 2^27, float32 and bfloat16
    python benchmarks/dropout_speed.py --sizes 20 22 --repeats 3 --out /tmp/results

The JSON holds ``meta`` (device name, versions, date, command) and ``rows``; the CSV holds the rows with
the device and date on every line.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

import dropoutlib
from dropoutlib.experiments.fused_dropout import saved_bytes
from dropoutlib.fused import fused_dropout, triton_available

METHODS = ("copy", "native", "scratch", "fused")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
P = 0.1
RESULTS = Path(__file__).resolve().parent / "results"


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "cpu":
        return f"CPU: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads"
    return f"{device.type} device {device} on {platform.machine()}"


def slug(device: torch.device) -> str:
    """The table's name: the GPU's model on CUDA, else the device type (``cpu``, ``mps``, ``xpu``, ...)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device).lower().replace("nvidia ", "").replace(" ", "-")
    return device.type


def check_device(parser: argparse.ArgumentParser, spec: str) -> torch.device:
    """``--device`` as a ``torch.device`` that can hold a tensor, refused (before any timing) otherwise."""
    try:
        device = torch.device(spec)
    except (RuntimeError, ValueError) as error:
        parser.error(
            f"--device must name a torch device such as cpu or cuda:0, got --device {spec!r} ({error})"
        )
    if device.type == "meta":
        parser.error(f"--device {spec!r} computes nothing (meta tensors have no data): nothing to time")
    try:
        torch.empty(1, device=device)
    except (RuntimeError, AssertionError) as error:
        parser.error(f"--device {spec!r} is not available here: {error}")
    return device


def check_out(parser: argparse.ArgumentParser, out: Path) -> Path:
    """Create the ``--out`` folder now, so that a path that cannot hold the tables fails before the run."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        parser.error(f"--out must be a folder that can be created, got --out {str(out)!r} ({error})")
    probe = out / ".dropout_speed-write-test"
    try:
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        parser.error(f"--out {str(out)!r} is not writable ({error})")
    return out


def forward_fn(method: str) -> Callable[[torch.Tensor], torch.Tensor]:
    return {
        "copy": lambda x: x.clone(),
        "native": lambda x: F.dropout(x, P, training=True),
        "scratch": lambda x: dropoutlib.dropout(x, P),
        "fused": lambda x: fused_dropout(x, P),
    }[method]


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_ms(fn: Callable[[], object], device: torch.device, repeats: int) -> float:
    """The median wall time of ``fn`` in milliseconds over ``repeats`` calls, after warm-up calls.

    A slow call (the fused path's torch backend on a CPU takes seconds at 2^27 elements) gets fewer
    repeats, about two seconds' worth, but at least one.
    """
    start = time.perf_counter()
    fn()
    synchronize(device)
    first = time.perf_counter() - start
    for _ in range(2 if first < 0.5 else 0):
        fn()
        synchronize(device)
    times = []
    for _ in range(max(1, min(repeats, int(2.0 / max(first, 1e-9))))):
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def measure(method: str, n: int, dtype: torch.dtype, device: torch.device, repeats: int) -> dict:
    x = torch.randn(n, device=device, dtype=dtype)
    forward = forward_fn(method)
    fwd = time_ms(lambda: forward(x), device, repeats)
    xg = x.clone().requires_grad_()
    grad = torch.ones_like(x)

    def forward_backward() -> None:
        forward(xg).backward(grad)
        xg.grad = None

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
    fwd_bwd = time_ms(forward_backward, device, repeats)
    peak = torch.cuda.max_memory_allocated(device) - base if device.type == "cuda" else None
    return {
        "method": method,
        "size": n,
        "dtype": str(dtype).removeprefix("torch."),
        "forward_ms": round(fwd, 4),
        "forward_backward_ms": round(fwd_bwd, 4),
        "saved_bytes": saved_bytes(forward, xg),
        "peak_bytes": peak,
    }


def run(sizes: list[int], dtypes: list[str], device: torch.device, repeats: int) -> list[dict]:
    rows = []
    for name in dtypes:
        for exponent in sizes:
            n = 2**exponent
            group = [measure(m, n, DTYPES[name], device, repeats) for m in METHODS]
            copy_ms = group[0]["forward_ms"]
            for row in group:
                row["forward_vs_copy"] = round(copy_ms / row["forward_ms"], 4)
                bytes_moved = 2 * n * DTYPES[name].itemsize
                row["forward_gb_per_s"] = round(bytes_moved / row["forward_ms"] / 1e6, 3)
                print(
                    f"2^{exponent:<3}{name:>9}{row['method']:>9}{row['forward_ms']:11.3f} ms"
                    f"{row['forward_backward_ms']:11.3f} ms{row['forward_vs_copy']:8.3f}x copy"
                    f"{row['saved_bytes'] / n:6.2f} B/elem saved",
                    flush=True,
                )
            rows += group
    return rows


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(range(20, 28)), help="exponents of 2")
    parser.add_argument("--dtypes", nargs="+", default=list(DTYPES), choices=list(DTYPES))
    parser.add_argument("--repeats", type=int, default=5, help="timed calls (fewer if slow)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the JSON and CSV files")
    given = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(given)
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")
    if any(not 1 <= s <= 31 for s in args.sizes):
        parser.error(f"--sizes are exponents of 2 between 1 and 31, got {args.sizes}")
    device = check_device(parser, args.device)  # both checked before anything is timed
    check_out(parser, args.out)
    meta = {
        "device": device_name(device),
        "device_type": device.type,
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d"),
        "torch": torch.__version__,
        "triton": _triton_version(),
        "fused_backend": "triton" if device.type == "cuda" and triton_available() else "torch",
        "python": platform.python_version(),
        "p": P,
        "repeats": args.repeats,
        "command": " ".join(["python", "benchmarks/dropout_speed.py", *given]),
    }
    print(" | ".join(f"{key} {meta[key]}" for key in ("device", "torch", "triton", "fused_backend")))
    rows = run(args.sizes, args.dtypes, device, args.repeats)
    path = args.out / f"dropout_speed-{slug(device)}.json"
    path.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    with path.with_suffix(".csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["device", "date", "torch", "triton", *rows[0]])
        writer.writeheader()
        for row in rows:
            writer.writerow({k: meta[k] for k in ("device", "date", "torch", "triton")} | row)
    print(f"wrote {path} and {path.with_suffix('.csv').name}")
    return path


def _triton_version() -> str | None:
    if not triton_available():
        return None
    import triton

    return triton.__version__


if __name__ == "__main__":
    main()
