"""A local Sphinx extension that keeps the built pages free of JavaScript errors.

Two known problems of the pinned theme stack (jupyter-book 1.0.4, sphinx-thebe 0.3.1,
pydata-sphinx-theme 0.17), both seen by tests/site/test_site.py in a real browser:

- sphinx-thebe and sphinx-togglebutton add their inline configuration scripts twice per page, so the
  second ``const THEBE_JS_URL`` throws "Identifier has already been declared";
- on a reader's first visit the theme's head script sets the colour mode to "" (empty localStorage) and
  pydata-sphinx-theme logs "Got invalid theme mode". We set it to "auto" before the theme reads it.

It also serves MathJax from the site itself (the pinned ``django-static-mathjax`` wheel carries MathJax
3.2.2), so formulas render in a local build read offline, not only where a CDN can be reached.
"""

from __future__ import annotations

import shutil
from importlib.resources import files
from pathlib import Path
from typing import Any

FIRST_VISIT_MODE = (
    'if (!document.documentElement.dataset.mode) document.documentElement.dataset.mode = "auto";'
)


def _script_key(script: Any) -> tuple:
    """Scripts that render to the same tag (an inline script's filename may be None or '')."""
    attributes = tuple(sorted((k, str(v)) for k, v in script.attributes.items()))
    return script.filename or "", attributes


def dedupe_scripts(app, pagename, templatename, context, doctree) -> None:
    seen, unique = set(), []
    for script in context.get("script_files", []):
        key = _script_key(script)
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"][:] = unique


MATHJAX_DIR = "mathjax"  # under _static/
MATHJAX_PARTS = ["tex-chtml.js", "input/tex/extensions", "output/chtml/fonts/woff-v2", "ui", "a11y"]


def copy_mathjax(app, exception) -> None:
    """Copy the parts of MathJax that the tex-chtml component loads into _static/mathjax/."""
    if exception is not None or app.builder.format != "html":
        return
    source = Path(str(files("mathjax"))) / "static" / "mathjax" / "es5"
    target = Path(app.outdir) / "_static" / MATHJAX_DIR
    for part in MATHJAX_PARTS:
        if (source / part).is_dir():
            shutil.copytree(source / part, target / part, dirs_exist_ok=True)
        else:
            (target / part).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / part, target / part)


def setup(app) -> dict[str, Any]:
    app.config.mathjax_path = f"{MATHJAX_DIR}/tex-chtml.js"
    app.connect("build-finished", copy_mathjax)
    app.add_js_file(None, body=FIRST_VISIT_MODE, priority=100)
    app.connect("html-page-context", dedupe_scripts, priority=999)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
