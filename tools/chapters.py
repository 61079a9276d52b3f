"""Sync chapter sources with their notebooks, execute them, and check that the two agree.

Each chapter has a MyST Markdown source ``chapters/NN-slug.md`` (what authors edit) paired by jupytext
with ``book/NN-slug.ipynb`` (what the site, Colab and nbval use). Usage::

    python tools/chapters.py run chapters/01-overfitting.md   # sync one chapter and execute it in place
    python tools/chapters.py run                              # every chapter
    python tools/chapters.py check                            # fail if a source and its notebook differ
    python tools/chapters.py time                             # execute each notebook, print a timing table
    python tools/chapters.py glue-diff [--rev REV]            # glued values that differ from those at REV
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import jupytext
import nbformat
from jupytext.combine import combine_inputs_with_outputs
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = ROOT / "chapters"
BOOK = ROOT / "book"
TIMEOUT_S = 300
#: The book's numbers are computed with PyTorch's AVX2 kernels (and oneDNN's AVX2 code) on every x86
#: machine. With AVX-512 some results differ in the last bits, and a training that amplifies rounding
#: (chapter 13's eight-block residual MLP) turns those bits into other test losses, so a notebook
#: executed on one machine would not validate on another. MKL, torch's BLAS, picks its own code path
#: by CPU (AVX2 on one machine, AVX-512 on another): MKL_CBWR=AVX2 asks for its AVX2 path with
#: conditional numerical reproducibility. Measured on an Intel machine with AVX-512 and AMX, against
#: notebooks executed on another machine: 178 of 486 notebook cells differed without MKL_CBWR, 55 with
#: it (the rest differ through other kernels); the notebooks were then re-executed with all three set.
#: Set before torch is first imported, by every execution of a notebook (here) and of the tests (the
#: root conftest.py); the benchmarks are left alone.
PINNED_CPU_KERNELS = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "AVX2"}


def pin_cpu_kernels() -> None:
    """Ask torch, oneDNN and MKL for their AVX2 code in this process and the kernels it starts."""
    for name, value in PINNED_CPU_KERNELS.items():
        os.environ.setdefault(name, value)


def chapter_sources() -> list[Path]:
    """Every chapter source, in book order."""
    return sorted(CHAPTERS.glob("[0-9][0-9]-*.md"))


def notebook_for(source: Path) -> Path:
    """The notebook paired with a chapter source."""
    return BOOK / f"{source.stem}.ipynb"


def execute(nb: nbformat.NotebookNode) -> float:
    """Execute ``nb`` in place in a fresh kernel, with ``book/`` as working directory; return seconds."""
    pin_cpu_kernels()
    client = NotebookClient(
        nb,
        timeout=TIMEOUT_S,
        kernel_name="python3",
        record_timing=False,  # no per-cell timestamps: a re-run changes only what really changed
        resources={"metadata": {"path": str(BOOK)}},
    )
    start = time.perf_counter()
    client.execute()
    return time.perf_counter() - start


def run(source: Path) -> float:
    """Write the notebook paired with ``source`` from it, execute it, save it; return seconds."""
    nb = jupytext.read(source)
    target = notebook_for(source)
    if target.exists():  # keep the cell ids of the existing notebook so diffs stay small
        nb = combine_inputs_with_outputs(nb, nbformat.read(target, as_version=4), fmt="md:myst")
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
            cell.metadata.pop("execution", None)
    seconds = execute(nb)
    nb.metadata.pop("widgets", None)  # widget state is per-session noise; the static figure stands in
    nbformat.write(nb, target)
    return seconds


def cell_signature(cell: nbformat.NotebookNode) -> tuple[str, str, tuple[str, ...], str]:
    """What must agree between a source and its notebook: type, source text, tags and MyST-NB
    options (such as a check's toggle label, which the site shows) of a cell."""
    metadata = cell.get("metadata", {})
    options = json.dumps(metadata.get("mystnb", {}), sort_keys=True)
    return cell.cell_type, cell.source.strip(), tuple(metadata.get("tags", [])), options


def differences(source: Path) -> list[str]:
    """Human-readable differences between a chapter source and its notebook (empty when in sync)."""
    target = notebook_for(source)
    if not target.exists():
        return [f"{target.relative_to(ROOT)} is missing: run `make chapter CH={source.name}`"]
    md = [cell_signature(c) for c in jupytext.read(source).cells]
    nb = [cell_signature(c) for c in nbformat.read(target, as_version=4).cells]
    problems = []
    if len(md) != len(nb):
        problems.append(f"{source.name}: {len(md)} cells in the source, {len(nb)} in the notebook")
    for index, (a, b) in enumerate(zip(md, nb, strict=False)):
        if a != b:
            first_line = a[1].splitlines()[0] if a[1] else "(empty)"
            problems.append(f"{source.name}: cell {index} differs (source starts {first_line!r})")
    return problems


GLUE_MIME = "application/papermill.record/text/plain"  # where MyST-NB stores a glued value's text


def glued_values(nb: dict) -> dict[str, str]:
    """``{name: text}`` of every value a notebook (as parsed JSON) glues for its prose."""
    return {
        output["metadata"]["scrapbook"]["name"]: "".join(output["data"].get(GLUE_MIME, ""))
        for cell in nb["cells"]
        for output in cell.get("outputs", [])
        if "scrapbook" in output.get("metadata", {})
    }


def glue_differences(source: Path, rev: str = "HEAD") -> list[str]:
    """The glued values of ``source``'s notebook that differ from (or are new since) git revision ``rev``.

    Prose quotes numbers only through glue, so this lists every number a reader sees change.
    """
    target = notebook_for(source)
    name = target.relative_to(ROOT).as_posix()
    shown = subprocess.run(["git", "show", f"{rev}:{name}"], cwd=ROOT, capture_output=True, text=True)
    old = glued_values(json.loads(shown.stdout)) if shown.returncode == 0 else {}
    new = glued_values(json.loads(target.read_text()))
    return [f"{source.stem}: {key}: {old.get(key)!r} -> {new.get(key)!r}"
            for key in sorted(old.keys() | new.keys()) if old.get(key) != new.get(key)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("command", choices=["run", "check", "time", "glue-diff"])
    parser.add_argument("sources", nargs="*", type=Path, help="chapter sources (default: all)")
    parser.add_argument("--rev", default="HEAD", help="glue-diff: the git revision to compare with")
    args = parser.parse_args(argv)
    sources = [s.resolve() for s in args.sources] or chapter_sources()
    if args.command == "glue-diff":
        changed = [line for s in sources for line in glue_differences(s, args.rev)]
        print("\n".join(changed) or f"{len(sources)} chapters glue the same values as {args.rev}")
        return 1 if changed else 0
    if args.command == "check":
        problems = [p for s in sources for p in differences(s)]
        print("\n".join(problems) or f"{len(sources)} chapters in sync with their notebooks")
        return 1 if problems else 0
    rows, total = [], 0.0
    for source in sources:
        if args.command == "run":
            seconds = run(source)
        else:
            seconds = execute(nbformat.read(notebook_for(source), as_version=4))
        total += seconds
        rows.append(f"| {source.stem} | {seconds:.1f} s |")
        print(f"{source.stem}: executed in {seconds:.1f} s", file=sys.stderr)
    print("| chapter | execution time |\n| --- | --- |\n" + "\n".join(rows))
    print(f"| all {len(sources)} chapters | {total:.1f} s |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
