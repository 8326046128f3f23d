"""Sphinx fixes for the HTML book, loaded by _config.yml (``sphinx.local_extensions``).

- Every script tag once per page: sphinx-thebe 0.3 adds its configuration script
  twice under Sphinx 7, and the second copy throws "Identifier 'THEBE_JS_URL' has
  already been declared" in every page's console.
- Alt text for plots: a figure that a notebook cell draws gets, unless the cell gives
  one (cell metadata ``mystnb: image: alt: ...``), the titles the cell's code sets
  (``suptitle`` first, else every ``set_title``/``title`` call and ``title=`` keyword, as in
  ``ax.set(title=...)``), which by the book's style
  state the plot's finding. Without this, Sphinx writes the image's file name as alt text.
- Widget icon fonts next to the pages: the widget bundles set webpack's public path from
  their require.js module URI, and in some pages (chapter 7's explorer) that URI resolves
  relative to the page, so the fonts are fetched from ``<page folder>/@jupyter-widgets/``.
  After the build, the vendored fonts are copied there too, for every folder with pages.
"""

from __future__ import annotations

import re

from docutils import nodes

_TITLE_CALL = re.compile(r"""\.(suptitle|set_title|title)\(\s*(f?)("|')(.+?)\3""")
_TITLE_KEYWORD = re.compile(r"""\b(title)\s*=\s*(f?)("|')(.+?)\3""")  # ax.set(title=...), df.plot(title=...)


def _one_script_tag_each(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, kept = set(), []
    for script in scripts:
        # a body-only script is registered once with filename None and once with "": the same tag
        key = (str(getattr(script, "filename", script) or ""),
               tuple(sorted((getattr(script, "attributes", None) or {}).items())))
        if key not in seen:
            seen.add(key)
            kept.append(script)
    scripts[:] = kept


def titles_in(code: str) -> str:
    """The plot titles a cell's code sets: the suptitle if any, else all titles (f-string fields as "...")."""
    found = [(call, re.sub(r"\{[^}]*\}", "...", text) if f else text)
             for call, f, _, text in _TITLE_CALL.findall(code) + _TITLE_KEYWORD.findall(code)]
    sup = [text for call, text in found if call == "suptitle"]
    return "; ".join(sup or [text for _, text in found])


def _alt_text_from_titles(app, doctree) -> None:
    for cell in doctree.findall(nodes.container):
        if cell.get("nb_element") != "cell_code":
            continue
        code = "\n".join(block.astext() for block in cell.findall(nodes.literal_block)
                         if block.parent.get("nb_element") == "cell_code_source")
        alt = titles_in(code)
        for image in cell.findall(nodes.image):
            if alt and not image.get("alt"):
                image["alt"] = f"Plot: {alt}"


def _widget_fonts_next_to_pages(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    import shutil
    from pathlib import Path

    out = Path(app.outdir)
    fonts = sorted((out / "_static" / "vendor" / "html-manager").glob("*.woff*"))
    folders = {page.parent for page in out.rglob("*.html")
               if not page.relative_to(out).parts[0].startswith("_")}
    for folder in folders:
        target = folder / "@jupyter-widgets"
        target.mkdir(exist_ok=True)
        for font in fonts:
            shutil.copy2(font, target / font.name)


def setup(app):
    app.connect("build-finished", _widget_fonts_next_to_pages)
    app.connect("doctree-read", _alt_text_from_titles)
    # Early: html-page-context stops at the first handler that returns a value (a template name).
    app.connect("html-page-context", _one_script_tag_each, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
