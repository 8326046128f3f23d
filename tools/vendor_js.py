"""Copy the JavaScript the HTML book loads into book_assets/vendor/, pinned, from npm.

    python tools/vendor_js.py           # (re)write book_assets/vendor/ from the npm registry
    python tools/vendor_js.py --check   # only check that the pinned versions are the ones vendored

The book must render the same offline, on an intranet or from a USB stick, so
nothing it loads may come from a CDN. Three packages are vendored:

- MathJax 3 (``tex-chtml-full.js``, all TeX extensions built in, plus its woff2 fonts):
  Sphinx's ``mathjax_path`` points at it (``_config.yml``).
- require.js and ``@jupyter-widgets/html-manager`` (``embed-amd.js`` and the icon fonts
  its CSS names): myst-nb's ``nb_ipywidgets_js`` points at them; they render saved
  ipywidgets state. The html-manager version is the one whose ``@jupyter-widgets/controls``
  range matches the installed ipywidgets/jupyterlab_widgets (see PACKAGES).

Needs ``npm`` (the registry is the only network access). Writes ``VERSIONS.json``
beside the files; ``tests/test_browser.py`` checks that every page loads only these.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENDOR = ROOT / "book_assets" / "vendor"

# package -> (version, license, {source path inside the package: destination under VENDOR})
# html-manager 1.0.15 depends on @jupyter-widgets/controls ^5.0.13 and base ^6.0.12, the
# same ranges as jupyterlab_widgets 3.0.17 (ipywidgets 8.1.9).
PACKAGES = {
    "mathjax": ("3.2.2", "Apache-2.0", {
        "es5/tex-chtml-full.js": "mathjax/tex-chtml-full.js",
        "es5/output/chtml/fonts/woff-v2": "mathjax/output/chtml/fonts/woff-v2",
        "LICENSE": "mathjax/LICENSE",
    }),
    "requirejs": ("2.3.8", "MIT", {
        "require.js": "require.js",
    }),
    "@jupyter-widgets/html-manager": ("1.0.15", "BSD-3-Clause", {
        "dist/embed-amd.js": "html-manager/embed-amd.js",
        "dist/embed.js.LICENSE.txt": "html-manager/embed.js.LICENSE.txt",
        "dist/*.woff2": "html-manager/",
        "dist/*.woff": "html-manager/",
    }),
}


def npm_pack(package: str, version: str, into: Path) -> Path:
    """Download ``package@version`` from the npm registry and unpack it; return its folder."""
    out = subprocess.run(["npm", "pack", "--silent", f"{package}@{version}"], cwd=into,
                         capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
    folder = into / out.removesuffix(".tgz")
    with tarfile.open(into / out) as tar:
        tar.extractall(folder, filter="data")
    return folder / "package"


def copy(package_root: Path, pattern: str, dest: Path) -> None:
    """Copy one file, one folder, or (pattern with ``*``) every match into the folder ``dest``."""
    matches = sorted(package_root.glob(pattern))
    if not matches:
        raise FileNotFoundError(f"{pattern} is not in {package_root}")
    for src in matches:
        target = dest / src.name if "*" in pattern else dest
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, target)
        else:
            shutil.copy2(src, target)


def vendor() -> None:
    if VENDOR.exists():
        shutil.rmtree(VENDOR)
    VENDOR.mkdir(parents=True)
    with tempfile.TemporaryDirectory() as tmp:
        for package, (version, _, files) in PACKAGES.items():
            root = npm_pack(package, version, Path(tmp))
            declared = json.loads((root / "package.json").read_text())["version"]
            assert declared == version, f"{package}: asked for {version}, npm gave {declared}"
            for src, dest in files.items():
                copy(root, src, VENDOR / dest)
    versions = {p: {"version": v, "license": lic} for p, (v, lic, _) in PACKAGES.items()}
    (VENDOR / "VERSIONS.json").write_text(json.dumps(versions, indent=2) + "\n")
    size = sum(f.stat().st_size for f in VENDOR.rglob("*") if f.is_file())
    print(f"wrote {VENDOR.relative_to(ROOT)}: {size / 1e6:.1f} MB")


def check() -> int:
    path = VENDOR / "VERSIONS.json"
    if not path.exists():
        print(f"{path.relative_to(ROOT)} is missing: run python tools/vendor_js.py", file=sys.stderr)
        return 1
    stored = json.loads(path.read_text())
    wanted = {p: {"version": v, "license": lic} for p, (v, lic, _) in PACKAGES.items()}
    if stored != wanted:
        print(f"vendored {stored} but PACKAGES pins {wanted}: run python tools/vendor_js.py", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="only compare VERSIONS.json with the pins")
    args = parser.parse_args(argv)
    if args.check:
        return check()
    vendor()
    return 0


if __name__ == "__main__":
    sys.exit(main())
