"""The names the README and the API page show, where they show them; and an import that stays light."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch

import dropoutlib
import dropoutlib.diagnostics
import dropoutlib.functional
import dropoutlib.nn

HEAVY = ("sklearn", "tqdm", "matplotlib", "pandas", "scipy", "IPython", "myst_nb")
LAYERS = ["Dropout", "StandardDropout", "SpatialDropout", "DropConnectLinear", "GaussianDropout",
          "AlphaDropout", "DropPath", "DropBlock2d", "FusedDropout"]
FUNCTIONS = ["dropout", "standard_dropout", "spatial_dropout", "fused_dropout", "mc_predict", "diagnose"]


def modules_added_by(statement: str) -> set[str]:
    """The top-level packages that ``statement`` imports in a fresh interpreter beyond ``import torch``."""
    code = textwrap.dedent(f"""
        import sys
        import torch
        before = set(sys.modules)
        {statement}
        print(" ".join(sorted({{m.split(".")[0] for m in set(sys.modules) - before}})))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_import_dropoutlib_pulls_in_nothing_heavier_than_torch():
    added = modules_added_by("import dropoutlib")
    assert "dropoutlib" in added
    assert not added & set(HEAVY), f"import dropoutlib also imports {sorted(added & set(HEAVY))}"


def test_the_light_import_check_can_fail():
    """The same measurement sees the heavy packages that the course side imports."""
    assert {"sklearn"} <= modules_added_by("import dropoutlib.course")


@pytest.mark.parametrize("name", LAYERS + FUNCTIONS)
def test_public_names_at_the_top_level(name):
    assert name in dropoutlib.__all__ and callable(getattr(dropoutlib, name))


def test_the_layers_are_modules_and_the_paths_agree():
    for name in LAYERS:
        assert issubclass(getattr(dropoutlib, name), torch.nn.Module)
        if name != "FusedDropout":
            assert getattr(dropoutlib.nn, name) is getattr(dropoutlib, name)
    assert dropoutlib.diagnostics.diagnose is dropoutlib.diagnose
    for name in ("dropout", "spatial_dropout", "fused_dropout", "drop_path", "dropblock",
                 "gaussian_dropout", "alpha_dropout", "dropconnect_linear"):
        assert callable(getattr(dropoutlib.functional, name)), name


def test_the_top_level_holds_the_library_only():
    """Course names (mlp, fit, load_digits, ...) live in dropoutlib.course, not in the library's API."""
    for name in ("mlp", "fit", "evaluate", "load_digits", "toy_regression", "seed_everything"):
        assert not hasattr(dropoutlib, name), name
    assert set(dropoutlib.__all__) <= set(dir(dropoutlib))
