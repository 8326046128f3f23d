"""How long does each chapter take to execute? Repository tooling, not part of llmlab.

Usage::

    python tools/chapter_times.py                    # read the last `make book` build's record
    python tools/chapter_times.py --execute          # execute every chapter now (minutes)
    python tools/chapter_times.py --execute 01 08    # only the chapters whose file name has 01 or 08

The build record is Sphinx's environment pickle (``_build/.doctrees/environment.pickle``),
where myst-nb keeps each notebook's execution data; executing runs the notebooks in
memory with nbclient (the files on disk are not changed). Both need the repository's
``chapters/`` folder and its build, which an installed ``llmlab`` does not have: that is
why this lives in ``tools/`` and not in ``llmlab.bench``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = ROOT / "chapters"
ENVIRONMENT = ROOT / "_build" / ".doctrees" / "environment.pickle"


def times_from_build(environment: str | Path = ENVIRONMENT) -> dict[str, float]:
    """Seconds each notebook took in the last executing ``make book`` build ({} if there is none)."""
    import pickle

    if not isinstance(environment, (str, Path)):
        raise TypeError(f"environment must be a path (str or pathlib.Path), got {type(environment).__name__}")
    environment = Path(environment)
    if not environment.exists():
        return {}
    try:
        with open(environment, "rb") as f:
            env = pickle.load(f)
    except Exception:  # an unreadable or incompatible pickle: no record, not an error
        return {}
    out = {}
    for doc, meta in getattr(env, "nb_metadata", {}).items():
        data = meta.get("exec_data") or {}
        runtime = data.get("runtime") if isinstance(data, dict) else getattr(data, "runtime", None)
        if runtime is not None:
            out[doc] = float(runtime)
    return dict(sorted(out.items()))


def select_chapters(names: str | list[str] | None = None, chapters: str | Path = CHAPTERS) -> list[Path]:
    """The chapter notebooks in ``chapters`` whose file name contains one of ``names``; all when
    ``names`` is None or empty. One str is one name (``"01"``), never its characters."""
    if isinstance(names, str):
        names = [names]
    if names is not None:
        if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) and n for n in names):
            raise TypeError(f"names must be a str or a list of non-empty str (parts of file names), got {names!r}")
    paths = sorted(Path(chapters).glob("*.ipynb"))
    if names:
        chosen = [p for p in paths if any(n in p.name for n in names)]
        if not chosen:
            raise ValueError(f"no chapter notebook matches {list(names)}; chapters: {[p.name for p in paths]}")
        return chosen
    return paths


def execute_chapters(names: str | list[str] | None = None, timeout: int = 600,
                     chapters: str | Path = CHAPTERS) -> dict[str, float]:
    """Execute the chapters :func:`select_chapters` picks, in memory; wall-clock seconds each."""
    import nbformat
    from nbclient import NotebookClient

    if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 1:
        raise ValueError(f"timeout must be a whole number of seconds >= 1, got {timeout!r}")
    out = {}
    for path in select_chapters(names, chapters):
        nb = nbformat.read(path, as_version=4)
        start = time.perf_counter()
        NotebookClient(nb, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
        out[f"chapters/{path.stem}"] = time.perf_counter() - start
    return out


def report(times: dict[str, float], source: str) -> str:
    """The printed table: one line per notebook, seconds."""
    if not times:
        return "chapter execution times: no record (run `make book`, or pass --execute)"
    return "\n".join([f"chapter execution times ({source}):"]
                     + [f"  {doc:40s} {sec:7.1f} s" for doc, sec in times.items()])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python tools/chapter_times.py", description=__doc__.split("\n")[0])
    parser.add_argument("--execute", nargs="*", default=None, metavar="NAME",
                        help="execute the chapters now (all, or those whose file name contains NAME)")
    parser.add_argument("--timeout", type=int, default=600, help="seconds a cell may run")
    args = parser.parse_args(argv)
    if args.execute is None:
        print(report(times_from_build(), "last make book build"))
    else:
        print(report(execute_chapters(args.execute or None, args.timeout), "executed now"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
