"""The built book works offline: every page is there, and nothing loads from outside it.

By default the book is built here with the quick profile
(``python tools/build_book.py --profile quick --path-output _build/quick``; HTML in
``_build/quick/_build/html``). To check an existing build instead, point
``DUALENC_BOOK_HTML`` at its HTML folder, e.g. ``DUALENC_BOOK_HTML=_build/html``.

The browser checks need Chromium (Debian: ``apt-get install -y chromium``). When it is missing
the test tries to install it with apt-get, and fails, saying how to install it, when that fails.
"""

from __future__ import annotations

import os
import posixpath
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import check_book_offline as offline  # noqa: E402  (tools/check_book_offline.py)

pytestmark = pytest.mark.slow

EXPERIMENT_PAGES = [f"book/generated/exp{i}.html" for i in range(1, 5)]
VENDORED = ["widgets/require.js", "widgets/embed-amd.js", "widgets/widgets-offline.js"]
BUILD_TIMEOUT_S = 3600


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def html_dir() -> Path:
    given = os.environ.get("DUALENC_BOOK_HTML")
    if given:
        path = Path(given)
        path = path if path.is_absolute() else ROOT / path
        if not (path / "index.html").is_file():
            pytest.fail(f"DUALENC_BOOK_HTML={given}: no index.html in {path}")
        return path.resolve()
    out = ROOT / "_build" / "quick"
    cmd = [sys.executable, str(ROOT / "tools" / "build_book.py"), "--profile", "quick",
           "--path-output", str(out)]
    env = {**os.environ, "DUALENC_RUNS": str(out / "runs")}  # keep the quick runs apart
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env,
                          timeout=BUILD_TIMEOUT_S)
    if proc.returncode != 0:
        pytest.fail(f"book build failed ({' '.join(cmd)}):\n"
                    f"{(proc.stdout + proc.stderr)[-8000:]}")
    return (out / "_build" / "html").resolve()


def _try_install_chromium() -> str:
    """Install Debian's chromium with apt-get; return '' on success, else why not."""
    if not shutil.which("apt-get"):
        return "apt-get is not available"
    prefix: list[str] = []
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        if not shutil.which("sudo"):
            return "not root and no sudo"
        if subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode != 0:
            return "not root and sudo needs a password"
        prefix = ["sudo", "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = prefix + ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]
    proc = subprocess.run(install, capture_output=True, text=True, env=env, timeout=900)
    if proc.returncode != 0:  # maybe the package lists are stale or missing
        subprocess.run(prefix + ["apt-get", "update"], capture_output=True, env=env,
                       timeout=900)
        proc = subprocess.run(install, capture_output=True, text=True, env=env, timeout=900)
    if proc.returncode != 0:
        return f"apt-get install chromium failed: {(proc.stdout + proc.stderr)[-500:]}"
    return ""


@pytest.fixture(scope="module")
def chromium() -> str:
    found = offline.find_chromium()
    if found:
        return found
    why = _try_install_chromium()
    found = offline.find_chromium()
    if not found:
        pytest.fail(f"chromium is not installed and could not be installed ({why or 'no binary'}); "
                    "on Debian/Ubuntu: apt-get install -y chromium, or set CHROMIUM to its path")
    return found


@pytest.fixture(scope="module")
def browser_reports(html_dir, chromium):
    pages = offline.book_pages(html_dir)
    reports = offline.inspect_pages(pages, chromium=chromium, screenshots=True)
    return {p.relative_to(html_dir).as_posix(): r for p, r in zip(pages, reports)}


# --------------------------------------------------------------------------- static checks


def test_every_toc_page_is_built(html_dir):
    sys.path.insert(0, str(ROOT / "tools"))
    import build_book

    missing = [name for name in build_book.toc_files()
               if not (html_dir / f"{name}.html").is_file()]
    assert not missing, f"pages in _toc.yml with no HTML in {html_dir}: {missing}"
    assert (html_dir / "index.html").is_file()


GLUE_TEXT = re.compile(r"\{glue(?::\w+)?\}`([^`]+)`")


def glue_references(text: str, page: str) -> set:
    """(notebook, name) of every {glue:...}`[path::]name[:format]` in `text`, a page's markdown at
    `page` (a path relative to the project root, without suffix); a reference without a path is the
    page's own."""
    out = set()
    for ref in GLUE_TEXT.findall(text):
        target, _, rest = ref.rpartition("::")
        if target:
            target = posixpath.splitext(posixpath.normpath(posixpath.join(posixpath.dirname(page), target)))[0]
        out.add((target or page, rest.split(":")[0]))
    return out


def missing_glue(pages: dict, glued: dict) -> list:
    """The (notebook, name) references of `pages` (page -> markdown) that `glued` (notebook -> the
    names its executed copy glued) lacks, sorted."""
    refs = set().union(*(glue_references(text, page) for page, text in pages.items()))
    return sorted((nb, name) for nb, name in refs if name not in glued.get(nb, set()))


def test_a_misspelt_glue_name_is_found():
    glued = {"notebooks/sweep": {"sw_answer"}}
    good = "The answer is {glue:text}`../notebooks/sweep.ipynb::sw_answer:s`."
    assert missing_glue({"book/intro": good}, glued) == []
    bad = good.replace("sw_answer", "sw_anwser")
    assert missing_glue({"book/intro": bad}, glued) == [("notebooks/sweep", "sw_anwser")]
    assert missing_glue({"notebooks/sweep": "{glue:text}`sw_answer`, {glue:text}`sw_x:.2f`"}, glued) == \
        [("notebooks/sweep", "sw_x")]


def _glued_names(nb) -> set:
    return {o["metadata"]["scrapbook"]["name"] for c in nb.cells for o in c.get("outputs", [])
            if o.get("metadata", {}).get("scrapbook")}


def test_every_glue_name_the_prose_uses_is_glued(html_dir):
    """Every {glue:text} name in book/*.md and in each page's markdown exists in the glue set of the
    build's executed notebooks (the quick profile's, by default): the pages myst-nb executed (in its
    jupyter-cache) and the experiment pages papermill rendered (book/generated)."""
    import nbformat
    from jupyter_cache import get_cache

    glued, pages = {}, {}
    cache = get_cache(str(html_dir.parent / ".jupyter_cache"))
    for record in sorted(cache.list_cache_records(), key=lambda r: r.pk):   # the newest record wins
        key = Path(record.uri).resolve().relative_to(ROOT).with_suffix("").as_posix()
        glued[key] = _glued_names(cache.get_cache_bundle(record.pk).nb)
    for path in sorted((ROOT / "book" / "generated").glob("*.ipynb")):
        glued[path.relative_to(ROOT).with_suffix("").as_posix()] = _glued_names(nbformat.read(path, as_version=4))
    for key in glued:
        nb = nbformat.read(ROOT / f"{key}.ipynb", as_version=4)
        pages[key] = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert {"notebooks/sweep", "book/generated/exp1"} <= set(glued), sorted(glued)
    pages.update({f"book/{p.stem}": p.read_text() for p in (ROOT / "book").glob("*.md")})
    assert missing_glue(pages, glued) == []


@pytest.mark.parametrize("page", EXPERIMENT_PAGES)
def test_experiment_page_holds_its_figures(html_dir, page):
    path = html_dir / page
    assert path.is_file(), f"{page} was not built"
    figures = []
    for src in offline.page_images(path):
        if src.startswith("data:image/"):
            figures.append(src[:40])
        elif src and not src.lower().startswith(offline.EXTERNAL_PREFIXES):
            target = (path.parent / src.split("?")[0]).resolve()
            assert target.is_file(), f"{page}: <img src={src!r}> is missing"
            assert html_dir in target.parents, f"{page}: <img src={src!r}> is outside the book"
            figures.append(src)
        else:
            pytest.fail(f"{page}: <img src={src[:80]!r}> is not local")
    assert figures, f"{page} has no figure (no <img> with a data: or local src)"


def test_no_page_references_anything_outside_the_book(html_dir):
    problems = offline.static_problems(html_dir)
    assert not problems, "\n".join(problems)


def test_vendored_scripts_are_in_the_build(html_dir):
    for rel in VENDORED:
        built = html_dir / "_static" / rel
        source = ROOT / "book_static" / rel
        assert built.is_file(), f"missing _static/{rel}"
        assert built.read_bytes() == source.read_bytes(), f"_static/{rel} differs from book_static"
    assert (html_dir / "_static" / "mathjax" / "tex-chtml.js").is_file(), \
        "MathJax was not copied (sphinx-mathjax-offline)"
    # pages with saved widget state load the local scripts, not myst-nb's CDN defaults
    for page in offline.book_pages(html_dir):
        text = page.read_text(encoding="utf-8")
        if "application/vnd.jupyter.widget-state+json" in text:
            for rel in VENDORED:
                assert f"_static/{rel}" in text, f"{page.name} does not load _static/{rel}"


# Code cells may be shown folded (hide-input / hide-cell) or not at all (remove-input leaves only
# the output in the HTML); a cell div with none of these tags shows its code open.
FOLDED_OR_REMOVED = {"tag_hide-input", "tag_hide-cell", "tag_remove-input"}
CELL_DIV = re.compile(r'<div class="(cell [^"]*)"')


def test_no_code_is_shown_open(html_dir):
    """Reader-first pages: parameters (the template's and papermill's injected ones) and every
    other code cell sit behind the theme's toggle."""
    open_cells = []
    for page in offline.book_pages(html_dir):
        for classes in CELL_DIV.findall(page.read_text(encoding="utf-8")):
            tags = set(classes.split())
            if not tags & FOLDED_OR_REMOVED:
                open_cells.append(f"{page.relative_to(html_dir)}: {classes}")
    assert not open_cells, "code cells shown open:\n" + "\n".join(open_cells)
    parameter_cells = [c for page in offline.book_pages(html_dir)
                       for c in CELL_DIV.findall(page.read_text(encoding="utf-8")) if "parameters" in c]
    assert parameter_cells, "no parameters cell found: has the HTML of a cell changed?"


def test_no_page_shows_a_folder_of_the_build_machine(html_dir):
    """Paths on a page are relative to the project root: a book built here and read elsewhere
    shows no folder of this machine (its checkout, its virtual environment, its home)."""
    machine_paths = {str(ROOT), str(Path(sys.prefix).resolve())}
    if Path.home() != Path("/"):
        machine_paths.add(str(Path.home()) + "/")
    published = [p for p in html_dir.rglob("*") if p.suffix in {".html", ".ipynb", ".md", ".txt"}
                 or p.name == "searchindex.js"]
    found = [f"{p.relative_to(html_dir)}: {path}" for p in published
             for path in sorted(machine_paths) if path in p.read_text(encoding="utf-8", errors="replace")]
    assert not found, "absolute paths of the build machine in the published book:\n" + "\n".join(found)


# --------------------------------------------------------------------------- browser checks


def test_experiment_screenshot_is_not_blank(html_dir, chromium, tmp_path):
    """The plain Chromium command line, network cut off: the page must draw something."""
    from PIL import Image, ImageStat

    shot = tmp_path / "exp1.png"
    with tempfile.TemporaryDirectory(prefix="book-shot-",
                                     ignore_cleanup_errors=True) as profile:
        cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
               "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}",
               "--host-resolver-rules=MAP * ~NOTFOUND", "--virtual-time-budget=10000",
               "--hide-scrollbars", f"--screenshot={shot}", "--window-size=1200,1600",
               (html_dir / EXPERIMENT_PAGES[0]).as_uri()]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert shot.is_file(), f"no screenshot ({proc.returncode}): {proc.stderr[-2000:]}"
    with Image.open(shot) as img:
        grey = img.convert("L")
        assert grey.size == (1200, 1600)
        variance = ImageStat.Stat(grey).var[0]
        # the content column, away from the sidebars
        content = ImageStat.Stat(grey.crop((250, 150, 950, 1600))).var[0]
    assert variance > 200 and content > 200, (
        f"screenshot looks blank (variance {variance:.0f}, content {content:.0f}): {shot}")


def test_every_page_works_offline_in_chromium(browser_reports):
    failures = {page: rep.problems() for page, rep in browser_reports.items() if rep.problems()}
    assert not failures, "\n".join(f"{page}: {p}" for page, probs in failures.items()
                                   for p in probs)


@pytest.mark.parametrize("page", EXPERIMENT_PAGES)
def test_experiment_page_renders_in_chromium(browser_reports, page, tmp_path):
    rep = browser_reports[page]
    assert rep.facts.get("images", 0) >= 1, f"{page}: no image on the page"
    assert not rep.facts.get("brokenImages"), f"{page}: {rep.facts['brokenImages']}"
    assert not rep.external, f"{page}: external requests {rep.external}"
    assert rep.screenshot, f"{page}: no screenshot"
    variance = offline.screenshot_variance(rep.screenshot)
    if variance <= 200:
        (tmp_path / "page.png").write_bytes(rep.screenshot)
        pytest.fail(f"{page}: screenshot looks blank (variance {variance:.0f})")


def test_math_is_typeset_offline(browser_reports):
    rep = browser_reports["book/method.html"]
    assert rep.facts.get("mathjaxLoaded"), "MathJax did not load on book/method.html"
    assert rep.facts.get("typesetMath", 0) > 0, "no typeset math on book/method.html"
    assert rep.facts.get("untypesetMath") == 0


def test_widgets_render_offline(browser_reports):
    pages = {page: rep for page, rep in browser_reports.items()
             if rep.facts.get("widgetState")}
    assert pages, "no page of this build holds saved widget state (notebooks/explorer.ipynb saves it)"
    for page, rep in pages.items():
        assert rep.facts.get("widgetViews", 0) > 0, f"{page}: widget state but no widgets"
        assert not rep.facts.get("widgetErrors"), f"{page}: widgets failed to render"


def test_the_bias_slider_shows_every_level_offline(html_dir, chromium):
    """The explorer's bias slider, driven by the keyboard in Chromium with the network off, shows
    each level of the committed results table in turn (`explorer.bias_curve_views`)."""
    import pandas as pd

    levels = [f"{b:g}" for b in sorted(pd.read_csv(ROOT / "results" / "default.csv")["bias"].unique())]
    seen = offline.slide_through(html_dir / "notebooks" / "explorer.html", steps=len(levels) - 1, chromium=chromium)
    assert all(len(panels) == 1 for panels in seen), f"not one setting panel shown at a time: {seen}"
    assert [panels[0][0] for panels in seen] == levels
    assert len({panels[0][1] for panels in seen}) == 1          # the arm menu stays where it was


RESULTS_PAGE_MAX_PX = 8000      # a short paper: the answer, one figure per question; the rest in the appendix


def test_the_results_page_is_short(html_dir, chromium):
    """At a 1280 px wide window the results page is at most RESULTS_PAGE_MAX_PX tall, and the
    declared test's figure starts within its first two screens (900 px each)."""
    rep = offline.inspect_pages([html_dir / "notebooks" / "sweep.html"], chromium=chromium, screenshots=False,
                                window=(1280, 900))[0]
    assert rep.facts["width"] == 1280
    assert rep.facts["height"] <= RESULTS_PAGE_MAX_PX, f"the results page is {rep.facts['height']} px tall"
    assert rep.facts["firstFigureTop"] is not None and rep.facts["firstFigureTop"] < 2 * 900, rep.facts
