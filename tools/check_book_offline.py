#!/usr/bin/env python
"""Check that a built book works offline: nothing loads from outside its folder.

    python tools/check_book_offline.py _build/html
    python tools/check_book_offline.py _build/html --page notebooks/explorer.html \\
        --screenshots /tmp/shots --full-page

Two checks, also used by tests/test_book_offline.py:

* static: every HTML file is parsed; no ``src``/``srcset``/``poster``/``data`` attribute and no
  ``<link href>`` of a stylesheet, script, preload, icon or font may point outside the book
  (``http://``, ``https://`` or protocol-relative ``//``); inline scripts may not name a CDN;
  every local ``src``/``href`` of a script, stylesheet or image must exist.
* browser: each page is opened in headless Chromium with every host name unresolvable
  (``--host-resolver-rules="MAP * ~NOTFOUND"``), driven over the DevTools protocol. Every
  request the page makes is recorded; any that is not ``file:``/``data:``/``blob:``/``about:``
  fails the check, as does a failed local load, a JavaScript exception, a broken image, math
  left untypeset by MathJax, or widget state that did not render into widgets. A screenshot
  of each page is kept when asked.

Exit status 0 when everything passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

EXTERNAL_PREFIXES = ("http://", "https://", "//")
CDN_MARKERS = ("unpkg.com", "cdn.jsdelivr.net", "cdnjs.cloudflare.com", "fonts.googleapis.com",
               "fonts.gstatic.com", "mybinder.org", "googletagmanager.com")
# console.error messages that are not failures: pydata-sphinx-theme reports an unset theme
# mode on a first visit (empty localStorage) and then falls back to "auto"
BENIGN_CONSOLE_ERRORS = ("Got invalid theme mode",)
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:", "chrome-error:", "devtools:")
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions", "--hide-scrollbars", "--mute-audio",
    "--host-resolver-rules=MAP * ~NOTFOUND",
)

# --------------------------------------------------------------------------- static check


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.refs: list[tuple[str, str, str]] = []  # (tag, attribute, value)
        self.imgs: list[str] = []
        self.scripts: list[tuple[str, str]] = []  # (type, body) of inline scripts
        self._in_script = False
        self._script_type = ""
        self._script_buf: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = {k: (v or "") for k, v in attrs}
        for name in ("src", "poster", "data"):
            if name in a:
                self.refs.append((tag, name, a[name]))
        if "srcset" in a:
            for part in a["srcset"].split(","):
                if part.strip():
                    self.refs.append((tag, "srcset", part.strip().split()[0]))
        if tag == "link" and "href" in a:
            rel = a.get("rel", "").lower()
            if any(r in rel for r in ("stylesheet", "preload", "icon", "modulepreload", "font",
                                      "prefetch", "preconnect", "dns-prefetch")):
                self.refs.append((tag, "href", a["href"]))
        if tag == "img":
            self.imgs.append(a.get("src", ""))
        if tag == "script" and "src" not in a:
            self._in_script = True
            self._script_type = a.get("type", "").lower()
            self._script_buf = []

    def handle_data(self, data):
        if self._in_script:
            self._script_buf.append(data)

    def handle_endtag(self, tag):
        if tag == "script" and self._in_script:
            self._in_script = False
            self.scripts.append((self._script_type, "".join(self._script_buf)))


def parse_html(path: Path) -> _Collector:
    c = _Collector()
    c.feed(path.read_text(encoding="utf-8", errors="replace"))
    c.close()
    return c


def _local_target(html_file: Path, ref: str) -> Path | None:
    parts = urlsplit(ref)
    if parts.scheme or ref.startswith("#") or not parts.path:
        return None
    return (html_file.parent / unquote(parts.path)).resolve()


def static_problems(html_dir: Path) -> list[str]:
    """Every reference in the book's HTML that points outside it, or to a missing file."""
    html_dir = Path(html_dir).resolve()
    problems = []
    for page in book_pages(html_dir, include_special=True):
        rel = page.relative_to(html_dir)
        c = parse_html(page)
        for tag, attr, value in c.refs:
            v = value.strip()
            if "{{" in v or "{%" in v:
                continue  # a template left in by a theme, not a reference
            if v.lower().startswith(EXTERNAL_PREFIXES):
                problems.append(f"{rel}: <{tag} {attr}={v!r}> points outside the book")
                continue
            target = _local_target(page, v)
            if target is not None and not target.exists():
                problems.append(f"{rel}: <{tag} {attr}={v!r}> names a missing file")
        for kind, body in c.scripts:
            if kind not in ("", "text/javascript", "application/javascript", "module"):
                continue  # data, e.g. saved widget state, is not executed
            for marker in CDN_MARKERS:
                if marker in body:
                    problems.append(f"{rel}: an inline <script> names {marker}")
    return problems


def book_pages(html_dir: Path, include_special: bool = False) -> list[Path]:
    """The book's HTML pages (not the theme's templates under _static/ or _sources/)."""
    html_dir = Path(html_dir).resolve()
    skip = set() if include_special else {"genindex.html", "search.html"}
    return sorted(p for p in html_dir.rglob("*.html")
                  if not {"_static", "_sources", "_images"} & set(p.relative_to(html_dir).parts)
                  and p.name not in skip)


def page_images(page: Path) -> list[str]:
    """The ``src`` of every <img> on a page."""
    return parse_html(page).imgs


# --------------------------------------------------------------------------- chromium


def find_chromium() -> str | None:
    env = os.environ.get("CHROMIUM")
    if env and shutil.which(env):
        return shutil.which(env)
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


@dataclass
class PageReport:
    url: str
    requests: list[str] = field(default_factory=list)
    external: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    facts: dict = field(default_factory=dict)
    screenshot: bytes | None = None

    def problems(self) -> list[str]:
        out = [f"external request: {u}" for u in self.external]
        out += [f"failed load: {f}" for f in self.failed]
        out += [f"javascript error: {e}" for e in self.errors]
        f = self.facts
        if f.get("brokenImages"):
            out.append(f"broken images: {f['brokenImages']}")
        if f.get("untypesetMath"):
            out.append(f"{f['untypesetMath']} math element(s) not typeset by MathJax")
        if f.get("mathElements") and not f.get("mathjaxLoaded"):
            out.append("page has math but MathJax did not load")
        if f.get("widgetState") and not f.get("widgetViews"):
            out.append("page has widget state but no widget was rendered")
        if f.get("widgetErrors"):
            out.append(f"{f['widgetErrors']} widget(s) failed to render")
        return out


# evaluated in the page once it has settled
_FACTS_JS = r"""
(() => {
  const imgs = Array.from(document.images);
  const math = document.querySelectorAll('.math');
  let untypeset = 0;
  math.forEach(m => { if (!m.querySelector('mjx-container') && m.tagName !== 'MJX-CONTAINER') untypeset++; });
  return JSON.stringify({
    title: document.title,
    images: imgs.length,
    brokenImages: imgs.filter(i => !i.complete || i.naturalWidth === 0).map(i => (i.getAttribute('src') || '').slice(0, 80)),
    mathElements: math.length,
    mathjaxLoaded: !!(window.MathJax && window.MathJax.version),
    typesetMath: document.querySelectorAll('mjx-container').length,
    untypesetMath: untypeset,
    widgetState: document.querySelectorAll('script[type="application/vnd.jupyter.widget-state+json"]').length,
    widgetViewScripts: document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]').length,
    widgetViews: document.querySelectorAll('.jupyter-widgets').length,
    widgetErrors: document.querySelectorAll('.jupyter-widgets .widget-error, .jupyter-widgets-error-widget').length,
    fontsStatus: document.fonts ? document.fonts.status : null,
    height: document.documentElement.scrollHeight,
    firstFigureTop: (() => { const img = document.querySelector('article img, main img');
                             return img ? img.getBoundingClientRect().top + window.scrollY : null; })(),
    width: window.innerWidth,
  });
})()
"""


class _Cdp:
    """Minimal Chrome DevTools Protocol client over tornado's websocket (a jupyter dependency)."""

    def __init__(self, ws):
        self.ws = ws
        self.next_id = 0
        self.pending: dict[int, asyncio.Future] = {}
        self.events: list[dict] = []
        self.event_waiters: list[tuple[str, asyncio.Future]] = []
        self.reader = asyncio.ensure_future(self._read())

    async def _read(self):
        while True:
            msg = await self.ws.read_message()
            if msg is None:
                break
            data = json.loads(msg)
            if "id" in data and data["id"] in self.pending:
                fut = self.pending.pop(data["id"])
                if not fut.done():
                    fut.set_result(data)
            elif "method" in data:
                self.events.append(data)
                for method, fut in list(self.event_waiters):
                    if method == data["method"] and not fut.done():
                        fut.set_result(data)

    async def call(self, method: str, **params):
        self.next_id += 1
        fut = asyncio.get_event_loop().create_future()
        self.pending[self.next_id] = fut
        await self.ws.write_message(json.dumps({"id": self.next_id, "method": method,
                                                "params": params}))
        data = await asyncio.wait_for(fut, 60)
        if "error" in data:
            raise RuntimeError(f"{method}: {data['error']}")
        return data.get("result", {})

    def wait_event(self, method: str) -> asyncio.Future:
        fut = asyncio.get_event_loop().create_future()
        self.event_waiters.append((method, fut))
        return fut


async def _inspect(ws_url: str, urls: list[str], settle_s: float, timeout_s: float,
                   screenshots: bool | str) -> list[PageReport]:
    from tornado.websocket import websocket_connect

    ws = await websocket_connect(ws_url, max_message_size=256 * 1024 * 1024)
    cdp = _Cdp(ws)
    reports = []
    try:
        for domain in ("Page", "Network", "Runtime", "Log"):
            await cdp.call(f"{domain}.enable")
        await cdp.call("Network.setCacheDisabled", cacheDisabled=True)
        for url in urls:
            report = PageReport(url=url)
            start = len(cdp.events)
            loaded = cdp.wait_event("Page.loadEventFired")
            await cdp.call("Page.navigate", url=url)
            try:
                await asyncio.wait_for(loaded, timeout_s)
            except asyncio.TimeoutError:
                report.errors.append(f"load event not fired within {timeout_s} s")
            # let deferred work finish (MathJax, widget rendering): wait until no new
            # event arrived for `settle_s` seconds, at most timeout_s
            deadline = time.monotonic() + timeout_s
            seen = len(cdp.events)
            quiet_since = time.monotonic()
            while time.monotonic() < deadline:
                await asyncio.sleep(0.25)
                if len(cdp.events) != seen:
                    seen, quiet_since = len(cdp.events), time.monotonic()
                elif time.monotonic() - quiet_since >= settle_s:
                    break
            facts = await cdp.call("Runtime.evaluate", expression=_FACTS_JS, returnByValue=True)
            report.facts = json.loads(facts["result"]["value"])
            if screenshots == "full":
                metrics = await cdp.call("Page.getLayoutMetrics")
                size = metrics.get("cssContentSize") or metrics["contentSize"]
                clip = {"x": 0, "y": 0, "width": size["width"],
                        "height": min(size["height"], 16000), "scale": 1}
                shot = await cdp.call("Page.captureScreenshot", format="png", clip=clip,
                                      captureBeyondViewport=True)
                report.screenshot = base64.b64decode(shot["data"])
            elif screenshots:
                shot = await cdp.call("Page.captureScreenshot", format="png")
                report.screenshot = base64.b64decode(shot["data"])
            request_urls = {}
            for ev in cdp.events[start:]:
                m, p = ev["method"], ev.get("params", {})
                if m == "Network.requestWillBeSent":
                    u = p["request"]["url"]
                    request_urls[p["requestId"]] = u
                    report.requests.append(u)
                    if not u.lower().startswith(LOCAL_SCHEMES):
                        report.external.append(u)
                elif m == "Network.loadingFailed" and not p.get("canceled"):
                    u = request_urls.get(p["requestId"], "?")
                    if u.lower().startswith(LOCAL_SCHEMES):  # external ones counted already
                        report.failed.append(f"{u} ({p.get('errorText')})")
                elif m == "Runtime.exceptionThrown":
                    d = p["exceptionDetails"]
                    text = d.get("exception", {}).get("description") or d.get("text", "")
                    report.errors.append(text.splitlines()[0] if text else str(d)[:200])
                elif m == "Runtime.consoleAPICalled":
                    args = " ".join(str(a.get("value", a.get("description", "")))
                                    for a in p.get("args", []))
                    report.console.append(f"{p.get('type')}: {args[:300]}")
                    if p.get("type") == "error" and not any(
                            b in args for b in BENIGN_CONSOLE_ERRORS):
                        report.errors.append(f"console.error: {args[:300]}")
                elif m == "Log.entryAdded":
                    e = p["entry"]
                    report.console.append(f"{e.get('level')}: {e.get('text', '')[:300]}")
                    if e.get("level") == "error" and e.get("source") != "network":
                        report.errors.append(f"{e.get('source')}: {e.get('text', '')[:300]}")
            reports.append(report)
    finally:
        cdp.reader.cancel()
        ws.close()
    return reports


@contextlib.contextmanager
def devtools_page(chromium: str | None = None, window: tuple[int, int] = (1200, 1600)):
    """Headless Chromium with the network cut off; yields the DevTools websocket URL of its page."""
    chromium = chromium or find_chromium()
    if not chromium:
        raise FileNotFoundError("no chromium found (apt-get install -y chromium)")
    # chromium's helper processes may still be writing to the profile as it is removed
    with tempfile.TemporaryDirectory(prefix="book-offline-",
                                     ignore_cleanup_errors=True) as profile:
        cmd = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
               f"--window-size={window[0]},{window[1]}", "--remote-debugging-port=0",
               "--remote-allow-origins=*", "about:blank"]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            port_file = Path(profile) / "DevToolsActivePort"
            deadline = time.monotonic() + 30
            while not (port_file.is_file() and port_file.read_text().strip()):
                if proc.poll() is not None:
                    err = proc.stderr.read().decode(errors="replace")[-2000:]
                    raise RuntimeError(f"chromium exited ({proc.returncode}): {err}")
                if time.monotonic() > deadline:
                    raise RuntimeError("chromium did not open its DevTools port in 30 s")
                time.sleep(0.1)
            port = int(port_file.read_text().split()[0])
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
                targets = json.load(r)
            yield next(t for t in targets if t.get("type") == "page")["webSocketDebuggerUrl"]
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def inspect_pages(paths: list[Path], chromium: str | None = None, settle_s: float = 1.5,
                  timeout_s: float = 30.0, screenshots: bool | str = True,
                  window: tuple[int, int] = (1200, 1600)) -> list[PageReport]:
    """Open each HTML file in headless Chromium with the network cut off; report on it."""
    with devtools_page(chromium, window) as ws_url:
        urls = [Path(p).resolve().as_uri() for p in paths]
        return asyncio.run(_inspect(ws_url, urls, settle_s, timeout_s, screenshots))


# the bias slider of the explorer page and the setting panel it shows (`explorer.bias_curve_views`)
_SHOWN_PANEL_JS = r"""
(() => {
  const shown = Array.from(document.querySelectorAll('.bias-panel')).filter(p => p.offsetParent !== null);
  return JSON.stringify(shown.map(p => [p.dataset.bias, p.dataset.arm]));
})()
"""
_FOCUS_SLIDER_JS = r"""
(() => {
  const handle = document.querySelector('.widget-hslider .noUi-handle, .widget-slider .noUi-handle');
  if (!handle) return false;
  handle.scrollIntoView({block: 'center'});
  handle.focus();
  return document.activeElement === handle;
})()
"""


async def _slide(ws_url: str, url: str, steps: int, timeout_s: float) -> list:
    from tornado.websocket import websocket_connect

    ws = await websocket_connect(ws_url, max_message_size=256 * 1024 * 1024)
    cdp = _Cdp(ws)

    async def evaluate(expression: str):
        return (await cdp.call("Runtime.evaluate", expression=expression, returnByValue=True))["result"]["value"]

    try:
        for domain in ("Page", "Runtime"):
            await cdp.call(f"{domain}.enable")
        loaded = cdp.wait_event("Page.loadEventFired")
        await cdp.call("Page.navigate", url=url)
        await asyncio.wait_for(loaded, timeout_s)
        deadline = time.monotonic() + timeout_s
        while not json.loads(await evaluate(_SHOWN_PANEL_JS)) or not await evaluate(_FOCUS_SLIDER_JS):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url}: no bias slider and setting panel rendered within {timeout_s} s")
            await asyncio.sleep(0.25)
        seen = [json.loads(await evaluate(_SHOWN_PANEL_JS))]
        for _ in range(steps):
            for kind in ("keyDown", "keyUp"):
                await cdp.call("Input.dispatchKeyEvent", type=kind, key="ArrowRight", code="ArrowRight",
                               windowsVirtualKeyCode=39, nativeVirtualKeyCode=39)
            await asyncio.sleep(0.3)
            seen.append(json.loads(await evaluate(_SHOWN_PANEL_JS)))
        return seen
    finally:
        cdp.reader.cancel()
        ws.close()


def slide_through(page: Path, steps: int, chromium: str | None = None, timeout_s: float = 60.0) -> list:
    """Open `page` offline, press the right arrow on its bias slider `steps` times; the setting
    panels shown ([bias, arm] pairs) before the first press and after each."""
    with devtools_page(chromium) as ws_url:
        return asyncio.run(_slide(ws_url, Path(page).resolve().as_uri(), steps, timeout_s))


def screenshot_variance(png: bytes) -> float:
    """Grey-level variance of a screenshot: ~0 for a blank page."""
    import io

    from PIL import Image, ImageStat

    with Image.open(io.BytesIO(png)) as img:
        return float(ImageStat.Stat(img.convert("L")).var[0])


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("html_dir", type=Path, help="the built book, e.g. _build/html")
    ap.add_argument("--page", action="append", default=[],
                    help="page to open in Chromium, relative to html_dir (default: all pages)")
    ap.add_argument("--screenshots", type=Path, help="write a PNG of each opened page here")
    ap.add_argument("--full-page", action="store_true",
                    help="screenshots of the whole page, not only the 1200x1600 window")
    ap.add_argument("--no-browser", action="store_true", help="only the static check")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every request")
    args = ap.parse_args(argv)
    html_dir = args.html_dir.resolve()
    failed = False

    problems = static_problems(html_dir)
    n_pages = len(book_pages(html_dir, include_special=True))
    print(f"static: {n_pages} HTML files, {len(problems)} problem(s)")
    for p in problems:
        print(f"  {p}")
    failed |= bool(problems)

    if not args.no_browser:
        pages = [html_dir / p for p in args.page] or book_pages(html_dir)
        mode = ("full" if args.full_page else True) if args.screenshots else False
        reports = inspect_pages(pages, screenshots=mode)
        for page, rep in zip(pages, reports):
            rel = page.relative_to(html_dir)
            probs = rep.problems()
            f = rep.facts
            print(f"browser: {rel}: {len(rep.requests)} requests, {len(rep.external)} external; "
                  f"math {f.get('typesetMath')}/{f.get('mathElements')} typeset; "
                  f"images {f.get('images')}; widgets {f.get('widgetViews')} "
                  f"(state scripts {f.get('widgetState')}); "
                  f"{'OK' if not probs else 'FAILED'}")
            for p in probs:
                print(f"  {p}")
            if args.verbose:
                for u in rep.requests:
                    print(f"    request {u}")
                for c in rep.console:
                    print(f"    console {c}")
            if args.screenshots and rep.screenshot:
                out = args.screenshots / (rel.as_posix().replace("/", "__") + ".png")
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(rep.screenshot)
                print(f"  screenshot {out} (variance {screenshot_variance(rep.screenshot):.0f})")
            failed |= bool(probs)
    print("offline check:", "FAILED" if failed else "passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
