"""Generate the exercise notebooks and pages from one source per chapter.

Each chapter's exercises are written once, in ``exercises/src/NN_name.py`` (cells in the
"percent" format, see below). This tool writes from it:

- ``exercises/student/NN_name.ipynb``: the student notebook, with every solution
  replaced by a blank (``raise NotImplementedError`` or the ``# STUDENT:`` lines),
  no outputs. Students open it in Colab or Studio Lab, or run it from the command line
  with ``jupyter execute exercises/student/NN_name.ipynb`` (nbclient's command, installed
  with the book's packages; it stops at the first blank still to fill).
- ``exercises/solutions/NN_name.ipynb``: the same notebook with the solutions. It is
  committed with outputs (run ``tools/execute_notebooks.py`` on it) and nbval runs it.
  Regenerating keeps the outputs of cells whose source did not change.
- ``exercises/NN_name.md``: the book page, with each exercise in a sphinx-exercise
  ``exercise`` block, its solution in a ``solution`` dropdown, and links that open the
  student notebook in Colab and Studio Lab. The page holds no solution itself: each
  dropdown includes (MyST ``{include}``) its part of
- ``exercises/solutions/NN_name_solutions.md``: every solution of the chapter, one part
  per exercise between ``<!-- BEGIN SOLUTION key -->`` and ``<!-- END SOLUTION key -->``
  (the book's HTML still shows them folded; a student who opens a page's source does not
  see them).
- The table of exercises and minutes in ``exercises/teachers.md`` (between the
  ``BEGIN``/``END GENERATED`` comments).

Both notebooks start with the header of ``tools/notebook_header.py``.

Source format. A line ``# %%`` starts a code cell, ``# %% [markdown]`` a Markdown cell
(its lines start with ``# ``); either may end with a JSON object of options:

- Markdown: ``{"exercise": "top-p", "minutes": 15}`` starts an exercise; the cell's
  first line is its ``## `` heading (the title on the book page). Its minutes appear
  under the heading on the page and in both notebooks.
- Code: ``{"role": "check"}`` is the cell calling the exercise's check (the last
  line is the call); ``{"role": "solution-only"}`` is a demo that uses the exercise's
  finished code: on the page it is in the solution dropdown; both notebooks show it (in
  the student's it raises NotImplementedError until the blanks are filled), since the
  text may refer to it; ``{"role": "try"}`` calls the student's
  code to show what it does (in the student version it raises NotImplementedError
  until the blank is filled). Other code cells are shown as is.

Inside a code cell, the lines between ``### BEGIN SOLUTION`` and ``### END SOLUTION``
are the solution. Lines in that block starting with ``# STUDENT: `` are what the student
version shows instead (without the prefix); when there are none, the student version
gets ``raise NotImplementedError(...)`` at the marker's indentation, or nothing for a
block at the top level (write the blank, e.g. ``answer = ...``, just above it).

Usage, from the repository root::

    python tools/make_exercises.py           # write everything
    python tools/make_exercises.py --check   # exit 1 and list what is out of date
"""

from __future__ import annotations

import argparse
import ast
import copy
import importlib.util
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
SRC, STUDENT, SOLUTIONS = "exercises/src", "exercises/student", "exercises/solutions"
TEACHERS = "exercises/teachers.md"
BEGIN, END, STUDENT_PREFIX = "### BEGIN SOLUTION", "### END SOLUTION", "# STUDENT: "
CELL = re.compile(r"^# %%( \[markdown\])?(?: (\{.*\}))?\s*$")
BLANK = 'raise NotImplementedError("your code here")'
TABLE_BEGIN = "<!-- BEGIN GENERATED: tools/make_exercises.py writes this table -->"
TABLE_END = "<!-- END GENERATED -->"
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


def _header_tool():
    spec = importlib.util.spec_from_file_location("notebook_header", ROOT / "tools" / "notebook_header.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class Cell:
    kind: str                      # "markdown" or "code"
    source: str
    options: dict = field(default_factory=dict)

    @property
    def role(self) -> str:
        return self.options.get("role", "")


@dataclass
class Exercise:
    key: str
    title: str
    minutes: int
    cells: list[Cell]              # the Markdown cell first, then its code cells


@dataclass
class Source:
    path: Path
    cells: list[Cell]

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def title(self) -> str:
        first = self.cells[0].source.splitlines()[0]
        if not first.startswith("# "):
            raise ValueError(f"{self.path}: the first cell must start with a '# Title' line")
        return first[2:].strip()

    def intro(self) -> list[Cell]:
        out = []
        for cell in self.cells:
            if cell.options.get("exercise"):
                break
            out.append(cell)
        return out

    def exercises(self) -> list[Exercise]:
        found: list[Exercise] = []
        for cell in self.cells:
            if cell.options.get("exercise"):
                heading = cell.source.splitlines()[0]
                if not heading.startswith("## "):
                    raise ValueError(f"{self.path}: exercise {cell.options['exercise']!r} must start with '## Title'")
                found.append(Exercise(cell.options["exercise"], heading[3:].strip(),
                                      int(cell.options.get("minutes", 10)), [cell]))
            elif found:
                found[-1].cells.append(cell)
        return found


def parse(path: Path) -> Source:
    """Read a source file into cells."""
    cells: list[Cell] = []
    current: Cell | None = None
    lines: list[str] = []

    def close():
        if current is None:
            return
        body = lines[:]
        while body and not body[-1].strip():
            body.pop()
        if current.kind == "markdown":
            text = []
            for line in body:
                if line.strip() == "#":
                    text.append("")
                elif line.startswith("# "):
                    text.append(line[2:])
                else:
                    raise ValueError(f"{path}: Markdown lines must start with '# ', got {line!r}")
            current.source = "\n".join(text)
        else:
            current.source = "\n".join(body)
        cells.append(current)

    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        match = CELL.match(line)
        if match:
            close()
            options = json.loads(match.group(2)) if match.group(2) else {}
            current, lines = Cell("markdown" if match.group(1) else "code", "", options), []
        elif current is None:
            if line.strip():
                raise ValueError(f"{path}:{number}: text before the first '# %%' line")
        else:
            lines.append(line)
    close()
    return Source(path, cells)


def split_solution(code: str) -> tuple[str, str]:
    """Return (student version, solution version) of a code cell's source."""
    student: list[str] = []
    solution: list[str] = []
    block: list[str] | None = None
    indent = ""
    for line in code.splitlines():
        stripped = line.strip()
        if stripped == BEGIN:
            if block is not None:
                raise ValueError(f"nested {BEGIN!r}")
            block, indent = [], line[: len(line) - len(line.lstrip())]
        elif stripped == END:
            if block is None:
                raise ValueError(f"{END!r} without {BEGIN!r}")
            shown = [l.replace(STUDENT_PREFIX, "", 1) for l in block if l.strip().startswith(STUDENT_PREFIX.strip())]
            student.extend(shown or ([indent + BLANK] if indent else []))
            solution.extend(l for l in block if not l.strip().startswith(STUDENT_PREFIX.strip()))
            block = None
        elif block is not None:
            block.append(line)
        else:
            student.append(line)
            solution.append(line)
    if block is not None:
        raise ValueError(f"{BEGIN!r} without {END!r}")
    return "\n".join(student), "\n".join(solution)


MINUTES = "*About {} minutes.*"


def with_minutes(cell: Cell) -> str:
    """An exercise's Markdown with its minutes under the heading (as the book page shows them)."""
    heading, *rest = cell.source.splitlines()
    return "\n".join([heading, "", MINUTES.format(cell.options.get("minutes", 10)), *rest])


def version_cells(source: Source, version: str) -> list[Cell]:
    """The cells of the 'student' or 'solution' version (code with blanks or with solutions).

    Both versions hold the same cells, demos (``solution-only``) included; an exercise's
    Markdown cell carries its minutes.
    """
    out = []
    for cell in source.cells:
        if cell.kind == "code":
            student, solution = split_solution(cell.source)
            out.append(Cell("code", student if version == "student" else solution, cell.options))
        elif cell.options.get("exercise"):
            out.append(Cell("markdown", with_minutes(cell), cell.options))
        else:
            out.append(cell)
    return out


def _notebook_path(source: Source, version: str) -> Path:
    return ROOT / (STUDENT if version == "student" else SOLUTIONS) / f"{source.name}.ipynb"


def build_notebook(source: Source, version: str) -> nbformat.NotebookNode:
    """The notebook of one version, header first, without outputs."""
    tool = _header_tool()
    url, branch = tool.repository(ROOT / "_config.yml")
    path = _notebook_path(source, version)
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": dict(KERNELSPEC), "language_info": {"name": "python"}}
    # the two header cells exactly as tools/notebook_header.py writes them (its --check then passes)
    cells = tool._new_cells(tool.header_sources(path, url, branch, ROOT), {})
    for i, cell in enumerate(version_cells(source, version)):
        if cell.kind == "markdown":
            new = nbformat.v4.new_markdown_cell(cell.source)
        else:
            new = nbformat.v4.new_code_cell(cell.source)
            if cell.role == "check":
                new.metadata["tags"] = ["exercise-check"]
        new.id = f"cell-{i}"
        cells.append(new)
    nb.cells = cells
    nbformat.validate(nb)
    return nb


def _colab_links(source: Source) -> str:
    tool = _header_tool()
    url, branch = tool.repository(ROOT / "_config.yml")
    owner, repo = url.removeprefix("https://github.com/").split("/")
    fields = dict(owner=owner, repo=repo, branch=branch, path=f"{STUDENT}/{source.name}.ipynb")
    return (f"[Open the student notebook in Colab]({tool.COLAB.format(**fields)}) | "
            f"[Open it in SageMaker Studio Lab]({tool.STUDIO_LAB.format(**fields)})")


def _code_block(code: str) -> str:
    return f"```python\n{code}\n```"


_CHAPTER_LINK = re.compile(r"\[([^\]]+)\]\(\.\./\.\./chapters/(\w+)\.ipynb\)")


def _page_links(text: str) -> str:
    """Links in the sources are relative to the notebooks (exercises/student/); the page is one folder up.

    A link to a chapter becomes a ``{doc}`` reference, which finds the chapter whether it is
    still a Markdown placeholder or already a notebook.
    """
    text = _CHAPTER_LINK.sub(lambda m: f"{{doc}}`{m.group(1)} <../chapters/{m.group(2)}>`", text)
    return text.replace("](../../", "](../")


def _solutions_path(source: Source) -> Path:
    return ROOT / SOLUTIONS / f"{source.name}_solutions.md"


def _solution_markers(key: str) -> tuple[str, str]:
    return f"<!-- BEGIN SOLUTION {key} -->", f"<!-- END SOLUTION {key} -->"


def _solutions_of(exercise: Exercise) -> list[str]:
    solution = []
    for cell in exercise.cells[1:]:
        if cell.kind != "code":
            continue
        student, answer = split_solution(cell.source)
        if cell.role == "solution-only" or answer != student:
            solution.append(_code_block(answer))
    return solution


def build_solutions(source: Source) -> str:
    """The chapter's solutions, one marked part per exercise, for the page's dropdowns to include."""
    parts = [f"<!-- Written by tools/make_exercises.py from {SRC}/{source.name}.py: edit that file. The book's "
             f"page exercises/{source.name}.md includes each part in its solution dropdown. -->"]
    for exercise in source.exercises():
        solution = _solutions_of(exercise)
        if solution:
            begin, end = _solution_markers(exercise.key)
            parts.append(f"{begin}\n\n" + "\n\n".join(solution) + f"\n\n{end}")
    return "\n\n".join(parts) + "\n"


def build_page(source: Source) -> str:
    """The book page: intro, then each exercise with a dropdown that includes its solution."""
    parts = [f"<!-- Written by tools/make_exercises.py from {SRC}/{source.name}.py: edit that file. -->"]
    intro = source.intro()
    for i, cell in enumerate(intro):
        if cell.kind == "markdown":
            text = cell.source
            if i == 0:
                lines = text.splitlines()
                text = "\n".join([lines[0], "", _colab_links(source), *lines[1:]])
            parts.append(text)
        else:
            parts.append(_code_block(cell.source))
    for number, exercise in enumerate(source.exercises(), 1):
        label = f"ex-{source.name[:2]}-{exercise.key}"
        body = ["\n".join(exercise.cells[0].source.splitlines()[1:]).strip()]
        for cell in exercise.cells[1:]:
            student, _ = split_solution(cell.source)
            if cell.kind == "markdown":
                body.append(cell.source)
            elif cell.role != "solution-only":
                body.append(_code_block(student))
        block = "\n\n".join(b for b in body if b)
        number = f"{int(source.name[:2])}.{number}"  # numbered within the chapter, not across the book
        parts.append(f"::::{{exercise}} {number} {exercise.title}\n:label: {label}\n:nonumber:\n\n"
                     f"*About {exercise.minutes} minutes.*"
                     f"\n\n{block}\n::::")
        if _solutions_of(exercise):
            begin, end = _solution_markers(exercise.key)
            include = (f"```{{include}} {SOLUTIONS.removeprefix('exercises/')}/{source.name}_solutions.md\n"
                       f":start-after: {begin}\n:end-before: {end}\n```")
            parts.append(f"::::{{solution}} {label}\n:class: dropdown\n\n{include}\n::::")
    return _page_links("\n\n".join(parts) + "\n")


def teachers_table(sources: list[Source]) -> str:
    rows = ["| Chapter | Exercise | Minutes | Check |", "|---|---|---|---|"]
    for source in sources:
        total = 0
        for exercise in source.exercises():
            checks = [c for c in exercise.cells if c.role == "check"]
            call = checks[0].source.strip().splitlines()[-1] if checks else ""
            name = re.search(r"(check_\w+)", call)
            rows.append(f"| [{source.title.removeprefix('Exercises: ')}]({source.name}.md) | {exercise.title} | "
                        f"{exercise.minutes} | `{name.group(1) if name else '-'}` |")
            total += exercise.minutes
        rows.append(f"| | **all of this chapter** | **{total}** | |")
    return "\n".join(rows)


def sources(root: Path = ROOT) -> list[Source]:
    return [parse(p) for p in sorted((root / SRC).glob("*.py"))]


# ---------------------------------------------------------------------- writing and checking
def _same_cells(a: nbformat.NotebookNode, b: nbformat.NotebookNode) -> bool:
    def key(nb):  # what this tool writes (executing a notebook adds timing metadata of its own)
        return [(c.cell_type, c.source, c.get("id"), c.metadata.get("tags"), c.metadata.get("llmlab"))
                for c in nb.cells]
    return key(a) == key(b) and a.metadata.get("kernelspec", {}).get("name") == b.metadata["kernelspec"]["name"]


def _with_old_outputs(new: nbformat.NotebookNode, path: Path) -> nbformat.NotebookNode:
    """Keep the stored outputs of cells whose source is unchanged (solution notebooks are executed)."""
    if not path.exists():
        return new
    old = nbformat.read(path, as_version=4)
    by_id = {c.get("id"): c for c in old.cells}
    out = copy.deepcopy(new)
    for cell in out.cells:
        previous = by_id.get(cell.get("id"))
        if cell.cell_type == "code" and previous is not None and previous.source == cell.source:
            cell.outputs = previous.get("outputs", [])
            cell.execution_count = previous.get("execution_count")
    if old.metadata.get("language_info"):
        out.metadata["language_info"] = old.metadata["language_info"]
    return out


def _teachers_text(current: str, table: str) -> str:
    if TABLE_BEGIN not in current or TABLE_END not in current:
        raise ValueError(f"{TEACHERS} must contain the lines {TABLE_BEGIN!r} and {TABLE_END!r}")
    head, rest = current.split(TABLE_BEGIN, 1)
    _, tail = rest.split(TABLE_END, 1)
    return f"{head}{TABLE_BEGIN}\n{table}\n{TABLE_END}{tail}"


def run(check: bool) -> list[str]:
    """Write (or, with ``check``, compare) every generated file; return the stale ones."""
    stale: list[str] = []
    all_sources = sources()
    for source in all_sources:
        for version in ("student", "solution"):
            path = _notebook_path(source, version)
            new = build_notebook(source, version)
            old = nbformat.read(path, as_version=4) if path.exists() else None
            if old is not None and _same_cells(old, new) and (version == "solution" or old == new):
                continue
            stale.append(path.relative_to(ROOT).as_posix())
            if not check:
                path.parent.mkdir(parents=True, exist_ok=True)
                nbformat.write(_with_old_outputs(new, path) if version == "solution" else new, path)
        for page, text in ((ROOT / "exercises" / f"{source.name}.md", build_page(source)),
                           (_solutions_path(source), build_solutions(source))):
            if not page.exists() or page.read_text(encoding="utf-8") != text:
                stale.append(page.relative_to(ROOT).as_posix())
                if not check:
                    page.write_text(text, encoding="utf-8")
    teachers = ROOT / TEACHERS
    current = teachers.read_text(encoding="utf-8")
    wanted = _teachers_text(current, teachers_table(all_sources))
    if wanted != current:
        stale.append(TEACHERS)
        if not check:
            teachers.write_text(wanted, encoding="utf-8")
    return stale


# ---------------------------------------------------------------------- running a version (tests)
def run_version(source: Source, version: str) -> dict[str, object]:
    """Execute one version's code cells in a fresh namespace; return each exercise's check result.

    Every code cell must run without error (a student's blank only raises when it is
    called: by the check, which reports it, or by a ``try`` or demo cell); the value of the last line of each ``check`` cell is recorded.
    """
    namespace: dict = {"__name__": f"exercise_{source.name}"}
    results: dict[str, object] = {}
    exercise = None
    for cell in version_cells(source, version):
        if cell.options.get("exercise"):
            exercise = cell.options["exercise"]
        if cell.kind != "code":
            continue
        tree = ast.parse(cell.source)
        last = tree.body.pop() if cell.role == "check" and tree.body and isinstance(tree.body[-1], ast.Expr) else None
        try:
            exec(compile(tree, f"<{source.name}:{version}>", "exec"), namespace)
        except NotImplementedError:
            if not (version == "student" and cell.role in ("try", "solution-only")):
                raise
        if cell.role == "check":
            if last is None:
                raise ValueError(f"{source.name}: the check cell of {exercise!r} must end with the check call")
            results[exercise] = eval(compile(ast.Expression(last.value), "<check>", "eval"), namespace)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a generated file is stale")
    args = parser.parse_args(argv)
    stale = run(check=args.check)
    for path in stale:
        print(f"{'out of date' if args.check else 'written'}: {path}")
    if args.check and stale:
        print("Run: python tools/make_exercises.py   (then execute the changed solution notebooks with "
              "tools/execute_notebooks.py)", file=sys.stderr)
        return 1
    if not stale:
        print(f"{len(sources())} exercise source(s): every generated file is current")
    return 0


if __name__ == "__main__":
    sys.exit(main())
