"""Real-browser tests of the built site (`make book` writes it to _build/html).

Debian's chromium, driven by playwright, opens every page the way a reader would. Screenshots land in
test-artifacts/ for a person to look at.
"""

from __future__ import annotations

import functools
import http.server
import os
import threading
from pathlib import Path
from urllib.parse import urldefrag, urljoin, urlparse

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "_build" / "html"
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
]

pytestmark = pytest.mark.site


def toc_pages() -> list[str]:
    """Every page of the table of contents, as paths relative to the site root, e.g. 'book/intro'."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    pages = [toc["root"]]
    for part in toc.get("parts", []):
        pages += [chapter["file"] for chapter in part["chapters"]]
    return pages


PAGES = toc_pages()


@pytest.fixture(scope="module")
def site_url():
    if not (SITE / "index.html").exists():
        pytest.fail("the site is not built: run `make book` first (it writes _build/html)")
    handler = functools.partial(QuietHandler, directory=str(SITE))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest's output readable
        pass


@pytest.fixture(scope="module")
def browser():
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"chromium not found at {CHROMIUM}: run tools/ensure_chromium.sh")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, site_url):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    # The tests run offline: anything outside the local server (CDN fonts, MathJax) is refused at once
    # instead of timing out. Errors from those requests are not the site's own.
    context.route(
        "**/*",
        lambda route: route.continue_()
        if route.request.url.startswith(site_url)
        else route.abort(),
    )
    page = context.new_page()
    page.own_errors = []
    page.on("pageerror", lambda error: page.own_errors.append(f"uncaught: {error}"))
    page.on(
        "console",
        lambda msg: page.own_errors.append(f"console: {msg.text} at {msg.location.get('url')}")
        if msg.type == "error" and str(msg.location.get("url", "")).startswith(site_url)
        else None,
    )
    yield page
    context.close()


def screenshot(page, name: str, full_page: bool = False) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=full_page)


@pytest.mark.parametrize("path", PAGES)
def test_page_loads_with_title_links_and_images(page, site_url, path):
    url = urljoin(site_url, f"{path}.html")
    response = page.goto(url, wait_until="load")
    assert response is not None and response.ok, f"{url} answered {response and response.status}"

    heading = page.locator("main h1").first.inner_text().strip().rstrip("#").strip()
    assert heading, f"{path}: the page has no h1 heading"
    title = page.title()
    assert heading.split(maxsplit=1)[-1] in title, f"{path}: title {title!r} lacks {heading!r}"

    broken_images = page.eval_on_selector_all(
        "main img", "imgs => imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)"
    )
    assert not broken_images, f"{path}: images that did not load: {broken_images}"

    hrefs = page.eval_on_selector_all("a[href]", "links => links.map(a => a.href)")
    internal = sorted({h for h in hrefs if h.startswith(site_url)})
    for href in internal:
        target, fragment = urldefrag(href)
        reply = page.request.get(target)
        assert reply.ok, f"{path}: link to {href} is broken ({reply.status})"
        if fragment and target.endswith(".html"):
            html = reply.text()
            assert f'id="{fragment}"' in html, f"{path}: link to {href} names a missing anchor"
    assert not page.own_errors, f"{path}: JavaScript errors from the site's own files: {page.own_errors}"
    screenshot(page, "page-" + path.replace("/", "-"))


def test_chapters_are_numbered_in_parts(page, site_url):
    page.goto(urljoin(site_url, "book/intro.html"))
    captions = page.locator("nav.bd-links p.caption").all_inner_texts()
    assert any("Part I" in c for c in captions), f"no 'Part I' caption in the sidebar: {captions}"
    entries = page.locator("nav.bd-links li.toctree-l1 > a").all_inner_texts()
    numbered = [e for e in entries if e.strip()[:2].rstrip(".").isdigit()]
    assert len(numbered) >= 3, f"chapters are not numbered in the sidebar: {entries}"


def test_search_finds_inverted_dropout(page, site_url):
    page.goto(urljoin(site_url, "search.html?q=inverted+dropout"))
    results = page.locator("#search-results ul.search li")
    results.first.wait_for(timeout=15_000)
    links = results.locator("a").evaluate_all("links => links.map(a => a.href)")
    assert any(urlparse(h).path.startswith("/book/0") for h in links), f"no chapter found: {links}"
    screenshot(page, "search-inverted-dropout")


def test_solution_is_hidden_until_its_dropdown_is_clicked(page, site_url):
    chapters = [p for p in PAGES if Path(p).name[:2].isdigit()]
    assert chapters, "the table of contents has no chapters"
    page.goto(urljoin(site_url, f"{chapters[0]}.html"))
    solution = page.locator("div.solution.dropdown").first
    assert solution.count() == 1, "the first chapter has no solution in a dropdown"
    body = solution.locator(":scope > :not(.admonition-title)").first
    solution.scroll_into_view_if_needed()
    assert not body.is_visible(), "a solution is visible before its dropdown is clicked"
    screenshot(page, "solution-closed")
    solution.locator("button.toggle-button").click()
    body.wait_for(state="visible", timeout=5_000)
    page.wait_for_timeout(600)  # let the dropdown finish its fade-in before the screenshot
    assert body.is_visible(), "clicking the dropdown did not reveal the solution"
    screenshot(page, "solution-open")


def test_notation_page_fixes_p_as_the_drop_probability(page, site_url):
    page.goto(urljoin(site_url, "book/notation.html"))
    text = page.locator("main").inner_text()
    for name in ("PyTorch", "Keras", "TF", "CS231n", "JMLR"):
        assert name in text or name.replace("TF", "TensorFlow") in text, f"notation page lacks {name}"
    assert "probability that a unit is dropped" in text
    page.locator("main mjx-container").first.wait_for(timeout=15_000)  # MathJax, served by the site
    assert page.locator("main span.math:not(:has(mjx-container))").count() == 0, "unrendered formulas"
    screenshot(page, "notation-math")


def test_launch_and_download_buttons_on_chapters(page, site_url):
    chapter = next(p for p in PAGES if Path(p).name[:2].isdigit())
    page.goto(urljoin(site_url, f"{chapter}.html"))
    html = page.content()
    assert "colab.research.google.com" in html, "no Colab launch button"
    assert "mybinder.org" in html, "no Binder launch button"
    assert f"{Path(chapter).name}.ipynb" in html, "no download button for the notebook"
    repo = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    assert repo in html, f"no repository button pointing to {repo}"


CHAPTERS = [p for p in PAGES if Path(p).name[:2].isdigit()]


@pytest.mark.parametrize("path", CHAPTERS)
def test_no_code_block_scrolls_sideways(page, site_url, path):
    """At a 1280-pixel-wide window no code cell or printed output needs a horizontal scroll bar."""
    page.goto(urljoin(site_url, f"{path}.html"), wait_until="load")
    page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
    wide = page.eval_on_selector_all(
        "main div.cell_input pre, main div.cell_output pre",
        "blocks => blocks.filter(b => b.scrollWidth > b.clientWidth + 1)"
        ".map(b => b.innerText.split('\\n').reduce((a, l) => l.length > a.length ? l : a, ''))",
    )
    assert not wide, f"{path}: code that scrolls sideways, longest lines: {wide[:5]}"


@pytest.mark.parametrize("path", CHAPTERS)
def test_every_check_cell_opens_on_click(page, site_url, path):
    """Each section's claim checks sit behind a labelled toggle: hidden at first, shown by one click."""
    page.goto(urljoin(site_url, f"{path}.html"), wait_until="load")
    toggles = page.locator("main details.hide.above-input")
    assert toggles.count() >= 1, f"{path}: no collapsed check cell"
    for i in range(toggles.count()):
        toggle = toggles.nth(i)
        solution = toggle.locator("xpath=ancestor::div[contains(@class, 'solution')]")
        if solution.count() and not toggle.is_visible():  # a check inside a closed solution
            solution.first.locator("button.toggle-button").first.click()
            toggle.wait_for(state="visible", timeout=5_000)
        label = toggle.locator("summary p.collapsed").inner_text().strip()
        assert label and not label.startswith("Show code cell"), f"{path}: toggle {i} has no label"
        code = toggle.locator("div.cell_input pre").first
        assert not code.is_visible(), f"{path}: the code behind {label!r} shows before a click"
        toggle.locator("summary").click()
        code.wait_for(state="visible", timeout=5_000)
    if path == CHAPTERS[0]:
        toggles.first.scroll_into_view_if_needed()
        screenshot(page, "check-cell-open")
