"""The book as a reader sees it: every page of the built HTML in a real browser.

Debian's Chromium runs headless (``make test`` installs it when /usr/bin/chromium is
missing) and is driven over the Chrome DevTools Protocol. The book is the one built
once per test session from the stored notebook outputs (``built_book`` in conftest.py),
served from 127.0.0.1. Every HTML page is loaded and checked for:

- no JavaScript error and no console error (a 404 is one);
- no request to any host but the local server (MathJax, require.js and the widget
  manager are vendored in book_assets/vendor/);
- math typeset by MathJax, every image loaded, images with alt text or a caption,
  headings in order;
- every kernel-free panel (``llmlab.widgets.static_explorer``) drawn, and redrawn
  differently when any of its sliders moves; every saved ipywidgets view rendered;
- every internal link and #anchor resolving, and launch links naming the page's notebook;
- no code block, output block or table wider than the text column (no horizontal
  scrolling at 1280 pixels; every overflow of every page is listed).

Without the browser, from the stored notebooks: every figure has labelled axes and every
heatmap a labelled colour bar (the record that ``llmlab.plot.use_style`` stores with
each figure).

Screenshots of each page's first screen and of each panel (before and after a slider
move) go to ``_build/test-artifacts/`` (or $BOOK_TEST_ARTIFACTS).
"""

from __future__ import annotations

import base64
import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

websocket = pytest.importorskip("websocket", reason="websocket-client is in the test extra: pip install -e '.[test]'")

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(os.environ.get("BOOK_TEST_ARTIFACTS", ROOT / "_build" / "test-artifacts"))
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--hide-scrollbars", "--window-size=1280,800",
]
VIEWPORT = dict(width=1280, height=800)


def chromium_path() -> str:
    for candidate in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser")):
        if candidate and Path(candidate).exists():
            return candidate
    pytest.fail("Chromium is missing: `make test` installs it (apt-get install chromium), "
                "or point $CHROMIUM at a Chromium binary")


# ------------------------------------------------ a small DevTools Protocol client


class Browser:
    """Headless Chromium with one tab, driven over the DevTools Protocol (a websocket)."""

    def __init__(self, binary: str, timeout: float = 30):
        self.profile = tempfile.mkdtemp(prefix="chromium-profile-")
        self.proc = subprocess.Popen(
            [binary, *CHROMIUM_FLAGS, f"--user-data-dir={self.profile}", "--remote-debugging-port=0", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = Path(self.profile) / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while not (port_file.exists() and port_file.read_text().count("\n") >= 1):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"Chromium did not start (exit status {self.proc.returncode})")
            time.sleep(0.05)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=timeout) as answer:
            page = next(t for t in json.load(answer) if t["type"] == "page")
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=timeout, suppress_origin=True)
        self.ids = 0
        self.events: list[dict] = []
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable")
        self.send("Emulation.setDeviceMetricsOverride", **VIEWPORT, deviceScaleFactor=1, mobile=False)

    def _receive(self, timeout: float | None = None) -> dict | None:
        self.ws.settimeout(timeout)
        try:
            message = json.loads(self.ws.recv())
        except websocket.WebSocketTimeoutException:
            return None
        if "method" in message:
            self.events.append(message)
        return message

    def send(self, method: str, **params) -> dict:
        self.ids += 1
        self.ws.send(json.dumps({"id": self.ids, "method": method, "params": params}))
        while True:
            message = self._receive(60)
            if message is None:
                raise TimeoutError(f"no answer to {method}")
            if message.get("id") == self.ids:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def evaluate(self, expression: str):
        """The value of a JavaScript expression (promises are awaited)."""
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:80]}...: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for_event(self, method: str, timeout: float = 30) -> None:
        seen = len(self.events)
        deadline = time.monotonic() + timeout
        while not any(e["method"] == method for e in self.events[seen:]):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {method} within {timeout} s")
            self._receive(max(0.01, deadline - time.monotonic()))

    def settle(self, quiet: float = 0.25, limit: float = 5) -> None:
        """Read events until none has come for ``quiet`` seconds (late requests, late errors)."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline and self._receive(quiet) is not None:
            pass

    def goto(self, url: str, redirects: bool = False) -> list[dict]:
        """Load ``url`` (and, when it ``redirects``, the page it sends to); return the events it caused."""
        start = len(self.events)
        self.send("Page.navigate", url=url)
        self.wait_for_event("Page.loadEventFired")
        if redirects and sum(e["method"] == "Page.loadEventFired" for e in self.events[start:]) < 2:
            self.wait_for_event("Page.loadEventFired")
        # MathJax typesets after the load event; wait for its first pass.
        self.evaluate("window.MathJax && MathJax.startup && MathJax.startup.promise"
                      " ? MathJax.startup.promise.then(() => true) : true")
        self.settle()
        return self.events[start:]

    def screenshot(self, path: Path, clip: dict | None = None) -> None:
        params = {"format": "png"}
        if clip:
            params.update(clip={**clip, "scale": 1})
        data = self.send("Page.captureScreenshot", **params)["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        if getattr(self, "ws", None):
            self.ws.close()
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.profile, ignore_errors=True)


def problems(events: list[dict], origin: str) -> tuple[list[str], list[str]]:
    """(errors, outside requests) among the DevTools events of one page load."""
    errors, outside = [], []
    for event in events:
        method, params = event["method"], event.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            errors.append(f"exception: {details.get('exception', {}).get('description') or details.get('text')}")
        elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
            errors.append("console.error: " + " ".join(str(a.get("value", a.get("description"))) for a in params["args"]))
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            errors.append(f"{params['entry']['source']}: {params['entry']['text']} {params['entry'].get('url', '')}")
        elif method == "Network.requestWillBeSent":
            url = params["request"]["url"]
            if not url.startswith((origin + "/", "data:", "blob:", "about:")):
                outside.append(url)
    return errors, outside


# ------------------------------------------------------------------- the run


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


PAGE_SCRIPT = r"""(() => {
  const main = document.querySelector("article") || document.body;
  return {
    title: document.title,
    links: [...document.querySelectorAll("a[href]")].map(a => a.href),
    ids: [...document.querySelectorAll("[id]")].map(e => e.id).concat(
         [...document.querySelectorAll("a[name]")].map(a => a.name)),
    images: [...main.querySelectorAll("img")].map(i => ({
      src: i.getAttribute("src"), loaded: i.complete && i.naturalWidth > 0, alt: i.getAttribute("alt") || "",
      caption: !!(i.closest("figure") && i.closest("figure").querySelector("figcaption"))})),
    headings: [...main.querySelectorAll("h1, h2, h3, h4, h5, h6")].map(h => [+h.tagName[1], h.textContent.trim()]),
    math: document.querySelectorAll("span.math, div.math").length,
    typeset: document.querySelectorAll("mjx-container").length,
    explorers: document.querySelectorAll(".llmlab-explorer").length,
    overflows: (() => {  // blocks that need a horizontal scroll bar: [kind, first line, pixels too wide]
      const first = el => (el.textContent || "").split("\n").map(s => s.trim()).filter(Boolean)[0] || "";
      const kind = el => el.closest(".cell_output") ? "output" : "code";
      const wide = [...main.querySelectorAll("pre")].filter(p => p.scrollWidth > p.clientWidth + 1).map(
        p => [kind(p), first(p).slice(0, 90), p.scrollWidth - p.clientWidth]);
      for (const t of main.querySelectorAll("table")) {
        const room = (t.closest(".cell_output, .pst-scrollable-table-container") || main).clientWidth;
        const width = Math.ceil(t.getBoundingClientRect().width);
        if (width > room + 1) wide.push(["table", first(t).slice(0, 90), width - room]);
      }
      return wide;
    })(),
    widget_views: [...document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]')].map(
      s => { const w = s.parentElement.querySelector(".jupyter-widgets");
             return !!w && w.offsetHeight > 0 && w.textContent.trim().length + w.querySelectorAll("*").length > 0; }),
  };
})()"""

EXPLORER_STATE = r"""((i) => {
  const p = document.querySelectorAll(".llmlab-explorer")[i];
  return {ready: p.getAttribute("data-ready"), bars: p.querySelectorAll("svg rect").length,
          drawn: p.querySelector("svg").innerHTML + "|" + p.querySelector(".llmlab-explorer-text").textContent,
          sliders: [...p.querySelectorAll("input[type=range]")].map(s => [s.getAttribute("data-control"), +s.value, +s.max]),
          frames: +p.getAttribute("data-frames")};
})(%d)"""

MOVE_SLIDER = r"""((i, name, value) => {
  const p = document.querySelectorAll(".llmlab-explorer")[i];
  const s = p.querySelector(`input[data-control="${name}"]`);
  s.value = value; s.dispatchEvent(new Event("input", {bubbles: true}));
  p.scrollIntoView();
  const r = p.getBoundingClientRect();
  return {x: r.left + window.scrollX, y: r.top + window.scrollY, width: r.width, height: r.height};
})(%d, %s, %d)"""


def notebook_entries() -> set[str]:
    from test_book import source_of, toc_entries  # the toc helpers of the book tests

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    return {e for e in toc_entries(toc) if source_of(e).suffix == ".ipynb"}


@pytest.fixture(scope="module")
def browsed(built_book):
    """Load every page of the built book in Chromium once; return what was seen."""
    result, html_dir = built_book
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    if ARTIFACTS.exists():
        shutil.rmtree(ARTIFACTS)
    pages = sorted(p.relative_to(html_dir).as_posix() for p in html_dir.rglob("*.html")
                   if not p.relative_to(html_dir).parts[0].startswith("_"))
    server = Server(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(html_dir)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    origin = f"http://127.0.0.1:{server.server_address[1]}"
    started = time.monotonic()
    browser = Browser(chromium_path())
    seen = {"origin": origin, "html_dir": html_dir, "pages": {}, "explorers": []}
    try:
        for page in pages:
            # a page that only forwards to another (index.html -> the root page) is followed
            redirect = re.search(r'<meta http-equiv="refresh" content="\d+;\s*url=([^"]+)"',
                                 (html_dir / page).read_text(encoding="utf-8"), re.I)
            events = browser.goto(f"{origin}/{page}", redirects=bool(redirect))
            info = browser.evaluate(PAGE_SCRIPT)
            info["redirect"] = redirect.group(1) if redirect else None
            info["errors"], info["outside"] = problems(events, origin)
            name = page.removesuffix(".html").replace("/", "__")
            browser.screenshot(ARTIFACTS / "pages" / f"{name}.png")
            for i in range(info["explorers"]):
                seen["explorers"].append(exercise_explorer(browser, page, i, name))
            seen["pages"][page] = info
    finally:
        browser.close()
        server.shutdown()
    seen["seconds"] = time.monotonic() - started
    (ARTIFACTS / "summary.json").write_text(json.dumps(
        {"seconds": round(seen["seconds"], 1), "pages": sorted(seen["pages"]),
         "explorers": [{k: e[k] for k in ("page", "index", "frames", "moves")} for e in seen["explorers"]]},
        indent=2))
    return seen


def exercise_explorer(browser: Browser, page: str, index: int, name: str) -> dict:
    """Screenshot a panel, move each slider one step, and record whether the drawing changed."""
    start = len(browser.events)
    before = browser.evaluate(EXPLORER_STATE % index)
    record = {"page": page, "index": index, "frames": before["frames"], "ready": before["ready"],
              "bars": before["bars"], "moves": []}
    first = True
    for control, value, maximum in before["sliders"]:
        target = value - 1 if value > 0 else min(value + 1, maximum)
        old = browser.evaluate(EXPLORER_STATE % index)["drawn"]
        if first:
            clip = browser.evaluate(MOVE_SLIDER % (index, json.dumps(control), value))  # scroll, no change
            browser.screenshot(ARTIFACTS / "widgets" / f"{name}-{index}-before.png", clip)
        clip = browser.evaluate(MOVE_SLIDER % (index, json.dumps(control), target))
        new = browser.evaluate(EXPLORER_STATE % index)["drawn"]
        record["moves"].append({"control": control, "from": value, "to": target, "changed": new != old})
        if first:
            browser.screenshot(ARTIFACTS / "widgets" / f"{name}-{index}-after-{control}.png", clip)
            first = False
        browser.evaluate(MOVE_SLIDER % (index, json.dumps(control), value))  # back where it was
    browser.settle(0.1)
    record["errors"] = problems(browser.events[start:], "")[0]
    return record


# ------------------------------------------------------------------- the checks


def test_every_page_loads_without_javascript_or_console_errors(browsed):
    assert len(browsed["pages"]) >= len(notebook_entries()), sorted(browsed["pages"])
    bad = {page: info["errors"] for page, info in browsed["pages"].items() if info["errors"]}
    assert not bad, json.dumps(bad, indent=1)


def test_no_page_requests_anything_from_another_host(browsed):
    bad = {page: info["outside"] for page, info in browsed["pages"].items() if info["outside"]}
    assert not bad, json.dumps(bad, indent=1)


def test_math_is_typeset_offline(browsed):
    with_math = {p: i for p, i in browsed["pages"].items() if i["math"]}
    assert "chapters/05_sampling.html" in with_math, "chapter 5 has math: the check has nothing to look at"
    bad = [p for p, i in with_math.items() if i["typeset"] < i["math"]]
    assert not bad, f"math left as raw TeX on {bad}"


def test_every_image_loads(browsed):
    bad = {p: [im["src"] for im in i["images"] if not im["loaded"]] for p, i in browsed["pages"].items()}
    bad = {p: srcs for p, srcs in bad.items() if srcs}
    assert not bad, json.dumps(bad, indent=1)
    assert any(i["images"] for i in browsed["pages"].values()), "no image in the book: nothing was checked"


def test_every_figure_has_alt_text_or_a_caption(browsed):
    """Sphinx writes the file path as alt text when there is none: that does not count."""
    def described(im):
        alt = im["alt"].strip()
        return im["caption"] or (alt and not re.search(r"\.(png|jpe?g|svg|gif)$", alt, re.I))

    bad = {p: [im["src"] for im in i["images"] if not described(im)] for p, i in browsed["pages"].items()}
    bad = {p: srcs for p, srcs in bad.items() if srcs}
    assert not bad, "images without alt text or caption:\n" + json.dumps(bad, indent=1)


def overflow_report(pages: dict) -> list[str]:
    """One line per page with blocks wider than the text column, then each block's kind and first line."""
    lines = []
    for page, info in sorted(pages.items()):
        wide = info.get("overflows", [])
        if wide:
            counts = {k: sum(w[0] == k for w in wide) for k in ("code", "output", "table")}
            lines.append(f"{page}: " + ", ".join(f"{n} {k}" for k, n in counts.items() if n))
            lines += [f"    {kind} ({extra} px too wide): {first}" for kind, first, extra in wide]
    return lines


def test_no_code_output_or_table_needs_horizontal_scrolling(browsed):
    """In a 1280-pixel window every code cell, printed output and table fits the text column.

    Notebook code lines are kept to 88 characters (book_assets/book.css sizes code so
    that they fit), long printed lines are wrapped, and tables go through
    llmlab.tables.fmt with short headers. Every overflow of every page is listed.
    """
    assert any("overflows" in info for info in browsed["pages"].values())
    report = overflow_report(browsed["pages"])
    assert not report, "blocks that need a horizontal scroll bar:\n" + "\n".join(report)


def test_the_overflow_report_names_the_page_and_the_block():
    pages = {"chapters/a.html": {"overflows": [["code", "x = 1", 40], ["table", "model", 3]]},
             "chapters/b.html": {"overflows": []}}
    assert overflow_report(pages) == ["chapters/a.html: 1 code, 1 table",
                                      "    code (40 px too wide): x = 1",
                                      "    table (3 px too wide): model"]


def stored_figures(path: Path):
    """(cell number, first code line, axis-label record or None) of every PNG a notebook stores."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    from llmlab import plot

    for number, cell in enumerate(c for c in nb["cells"] if c["cell_type"] == "code"):
        source = "".join(cell["source"])
        for out in cell.get("outputs", []):
            if "image/png" in out.get("data", {}):
                record = out.get("metadata", {}).get("image/png", {}).get(plot.LABELS_KEY)
                yield number, source.strip().splitlines()[0][:70] if source.strip() else "", record


def figure_label_report(paths) -> list[str]:
    from llmlab import plot

    bad = []
    for path in paths:
        for number, first, record in stored_figures(path):
            name = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
            bad += [f"{name} code cell {number} ({first}): {problem}"
                    for problem in plot.label_problems(record)]
    return bad


def test_every_figure_has_axis_labels_and_every_heatmap_a_colour_bar():
    """Read from the stored notebooks: llmlab.plot.use_style() records each figure's axis
    labels in its output metadata (llmlab.plot.figure_labels), and the record is checked
    here (llmlab.plot.label_problems). A figure without the record fails too."""
    from test_book import source_of

    paths = [source_of(e) for e in sorted(notebook_entries())]
    assert sum(1 for p in paths for _ in stored_figures(p)) >= 10, "too few figures: nothing was checked"
    bad = figure_label_report(paths)
    assert not bad, "figures a reader cannot read without guessing:\n" + "\n".join(bad)


def test_the_axis_label_check_fails_on_an_unlabelled_figure(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from llmlab import plot

    def record(draw):
        fig, ax = plt.subplots()
        draw(fig, ax)
        fig.canvas.draw()   # tick texts are known once drawn, as when a notebook shows the figure
        labels = plot.figure_labels(fig)
        plt.close(fig)
        return labels

    bare = record(lambda fig, ax: ax.plot([1, 2], [3, 4]))
    assert plot.label_problems(bare) == ["axes 1: the x axis has no label", "axes 1: the y axis has no label"]
    heat = record(lambda fig, ax: (ax.imshow([[0.1, 0.9], [0.5, 0.5]]), ax.set(xlabel="key", ylabel="query")))
    assert plot.label_problems(heat) == ["axes 1: a heatmap without a colour bar"]

    def labelled(fig, ax):
        image = ax.imshow([[0.1, 0.9], [0.5, 0.5]])
        ax.set(xlabel="key position", ylabel="query position")
        fig.colorbar(image, ax=ax, label="attention weight")

    assert plot.label_problems(record(labelled)) == []
    assert plot.label_problems(record(lambda fig, ax: ax.axis("off"))) == []   # a diagram
    assert plot.label_problems(None) and "use_style" in plot.label_problems(None)[0]

    # and the notebook check reports a stored figure without a label, or without a record
    png = {"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"}
    cells = [{"cell_type": "code", "source": "plt.plot(x)", "metadata": {}, "outputs": [
        {"output_type": "display_data", "data": png, "metadata": {"image/png": {plot.LABELS_KEY: bare}}},
        {"output_type": "display_data", "data": png, "metadata": {}}]}]
    path = tmp_path / "unlabelled.ipynb"
    path.write_text(json.dumps({"cells": cells}), encoding="utf-8")
    report = figure_label_report([path])
    assert len(report) == 3 and all("unlabelled.ipynb code cell 0 (plt.plot(x))" in line for line in report)
    assert "no axis-label record" in report[2]


def test_headings_are_in_order(browsed):
    bad = {}
    for page, info in browsed["pages"].items():
        levels = [level for level, _ in info["headings"]]
        jumps = [(a, b, text) for (a, _), (b, text) in zip(info["headings"], info["headings"][1:]) if b > a + 1]
        if levels and (levels[0] != 1 or levels.count(1) != 1 or jumps):
            bad[page] = {"levels": levels, "skips": jumps}
    assert not bad, json.dumps(bad, indent=1)


def test_every_panel_is_drawn_and_every_slider_changes_the_drawing(browsed):
    explorers = browsed["explorers"]
    assert any(e["page"] == "chapters/05_sampling.html" for e in explorers), "the sampling playground is missing"
    for e in explorers:
        where = f"{e['page']} panel {e['index']}"
        assert e["ready"] == "true" and e["bars"] > 0, f"{where} is not drawn"
        assert e["moves"], f"{where} has no slider"
        assert all(m["changed"] for m in e["moves"]), f"{where}: a slider move changed nothing: {e['moves']}"
        assert not e["errors"], f"{where}: {e['errors']}"


def test_saved_ipywidgets_views_render(browsed):
    bad = {p: i["widget_views"] for p, i in browsed["pages"].items() if not all(i["widget_views"])}
    assert not bad, f"blank widget views: {bad}"


def test_every_internal_link_and_anchor_resolves(browsed):
    origin, html_dir = browsed["origin"], browsed["html_dir"]
    ids = {page: set(info["ids"]) for page, info in browsed["pages"].items()}
    broken = []
    for page, info in browsed["pages"].items():
        for link in info["links"]:
            if not link.startswith(origin + "/"):
                continue
            url = urllib.parse.urlsplit(link)
            target = urllib.parse.unquote(url.path).lstrip("/") or "index.html"
            if target.endswith("/"):
                target += "index.html"
            if not (html_dir / target).is_file():
                broken.append(f"{page}: {link} (no such file)")
                continue
            if url.fragment and target.endswith(".html"):
                known = ids.get(target)
                if known is None:  # a page that was not loaded: read its ids from the file
                    known = set(re.findall(r'\bid="([^"]+)"', (html_dir / target).read_text(encoding="utf-8")))
                    ids[target] = known
                if urllib.parse.unquote(url.fragment) not in known:
                    broken.append(f"{page}: {link} (no #{url.fragment})")
    assert not broken, "\n".join(sorted(set(broken)))


def test_launch_links_open_the_page_notebook(browsed):
    from test_book import repository

    owner, repo, branch = repository()
    prefixes = ("https://colab.research.google.com/github/", "https://studiolab.sagemaker.aws/import/github/")
    for entry in sorted(notebook_entries()):
        links = [l for l in browsed["pages"][f"{entry}.html"]["links"] if l.startswith(prefixes)]
        assert len({l.split("/github/")[0] for l in links}) == 2, f"{entry}: launch links {links}"
        for link in links:
            assert link.split("/github/", 1)[1] == f"{owner}/{repo}/blob/{branch}/{entry}.ipynb", (entry, link)


def test_screenshots_were_saved(browsed):
    shots = {p.name for p in (ARTIFACTS / "pages").glob("*.png")}
    assert len(shots) == len(browsed["pages"])
    assert all((ARTIFACTS / "pages" / s).stat().st_size > 5000 for s in shots), "blank screenshots"
    assert len(list((ARTIFACTS / "widgets").glob("*.png"))) == 2 * len(browsed["explorers"])


def test_browser_run_is_quick(browsed):
    assert browsed["seconds"] < 90, f"loading the book took {browsed['seconds']:.0f} s"


# ----------------------------------------------- the panel mechanism, without a browser


def test_explorer_embeds_one_frame_per_slider_combination():
    from llmlab.widgets import Control, explorer_html

    calls = []

    def frame(a, b):
        calls.append((a, b))
        return {"title": f"{a}-{b}", "bars": {"labels": ["x"], "series": [{"name": "s", "color": "#000", "values": [a * b]}]}}

    page = explorer_html([Control("a", "a", [1, 2, 3]), Control("b", "b", [0.5, 4.0], value=4.0)], frame, "t</script>")
    data = json.loads(re.search(r'class="llmlab-explorer-data">(.*?)</script>', page, re.S).group(1).replace("<\\/", "</"))
    assert len(calls) == 6 and len(data["frames"]) == 6 and 'data-frames="6"' in page
    assert data["frames"]["2,1"]["bars"]["series"][0]["values"] == [12.0]
    assert all(f["bars"]["ymax"] == 12.0 for f in data["frames"].values()), "one scale for all frames"
    assert 'value="1"' in page, "the b slider starts at 4.0, its second value"
    assert "t</script>" not in page


def test_a_text_only_control_keeps_one_text_per_value_not_one_frame():
    from llmlab.widgets import Control, explorer_html

    def frame(a, n):
        return {"title": f"{a}", "bars": {"labels": ["x"], "series": [{"name": "s", "color": "#000", "values": [a]}]},
                "text": "abcdef"[:n]}

    controls = [Control("a", "a", [1, 2]), Control("n", "length", [2, 4, 6], value=6, text_only=True)]
    page = explorer_html(controls, frame, "t")
    data = json.loads(re.search(r'class="llmlab-explorer-data">(.*?)</script>', page, re.S).group(1))
    assert sorted(data["frames"]) == ["0", "1"] and 'data-frames="2"' in page
    assert data["frames"]["1"]["texts"] == ["ab", "abcd", "abcdef"] and "text" not in data["frames"]["1"]
    assert [c.get("text_only", False) for c in data["controls"]] == [False, True]
    assert "text_only" not in data["controls"][0], "a panel without one keeps its old payload"
    with pytest.raises(ValueError, match="at most one"):
        explorer_html([controls[0], controls[1], Control("m", "m", [1], text_only=True)], frame, "t")
    with pytest.raises(ValueError, match="text_only"):
        explorer_html([controls[1]], frame, "t")


def test_explorer_rejects_bad_controls():
    from llmlab.widgets import Control

    with pytest.raises(ValueError, match="not one of its values"):
        Control("t", "temperature", [0.5, 1.0], value=2.0)
    with pytest.raises(ValueError, match="at least one value"):
        Control("t", "temperature", [])
    with pytest.raises(ValueError, match="labels"):
        Control("k", "top-k", [0, 5], labels=["off"])
