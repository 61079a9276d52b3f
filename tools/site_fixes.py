"""A local Sphinx extension that keeps the built pages free of JavaScript errors.

Two known problems of the pinned theme stack (jupyter-book 1.0.4, sphinx-thebe 0.3.1,
pydata-sphinx-theme 0.17), both seen by tests/test_site.py in a real browser:

- sphinx-thebe and sphinx-togglebutton add their inline configuration scripts twice per page, so the
  second ``const THEBE_JS_URL`` throws "Identifier has already been declared";
- on a reader's first visit the theme's head script sets the colour mode to "" (empty localStorage) and
  pydata-sphinx-theme logs "Got invalid theme mode". We set it to "auto" before the theme reads it.
"""

from __future__ import annotations

from typing import Any

FIRST_VISIT_MODE = 'if (!document.documentElement.dataset.mode) document.documentElement.dataset.mode = "auto";'


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


def setup(app) -> dict[str, Any]:
    app.add_js_file(None, body=FIRST_VISIT_MODE, priority=100)
    app.connect("html-page-context", dedupe_scripts, priority=999)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
