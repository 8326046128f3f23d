"""Find numbers typed into the book's prose: every one should be glued, cited or a name.

A number in a markdown cell of a chapter or an exercise page is accepted when it is
(a) inside a ``{glue:...}`` role (computed by a cell), (b) in a sentence that cites its
source (an author-year citation, or a named source document of the course), or (c) one
of the kinds on the short allowlist below: years, chapter and section numbers, list and
heading numbers, and the digits inside names ("GPT-2", "FP16", "8-bit", "Q4_1").
Everything else is reported with the sentence it stands in.

Used by ``tests/test_prose_numbers.py``; run it directly for a report::

    .venv/bin/python tools/prose_numbers.py            # counts per page
    .venv/bin/python tools/prose_numbers.py 03 -v      # the flagged sentences of chapter 3
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# ---- what is not prose: removed before numbers are looked for --------------------------
_FENCE = re.compile(r"^(`{3,}|~{3,}).*?^\1", re.S | re.M)          # fenced code blocks
_DISPLAY_MATH = re.compile(r"\$\$.*?\$\$", re.S)
_GLUE = re.compile(r"\{glue(?::\w+)?\}`[^`]*`")                      # computed by a cell: accepted
_ROLE = re.compile(r"\{(?:doc|ref|numref|eq|download|term|cite(?::\w+)?)\}`[^`]*`")  # names of pages
_CODE = re.compile(r"``[^`]+``|`[^`\n]+`")                             # code spans are code
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_TAG = re.compile(r"<[^>\n]+>")
_LINK_TARGET = re.compile(r"\]\([^)]*\)")                              # [text](target): keep the text
_URL = re.compile(r"https?://\S+")
_DIRECTIVE_OPTION = re.compile(r"^:[\w-]+:.*$", re.M)                  # :label: ..., :class: ...
_DIRECTIVE_LINE = re.compile(r"^:{3,}\{[\w-]+\}.*$", re.M)            # ::::{exercise} 5.1 Title
_INLINE_MATH = re.compile(r"(?<![\\$])\$(?!\$)([^$\n]+?)\$")
_ARXIV = re.compile(r"\b(?:arXiv|doi|DOI):\s*\S+")
_REFERENCES = re.compile(r"^#+\s*References\b.*", re.S | re.M)     # the reference list: titles, volumes, ids

# ---- the allowlist ----------------------------------------------------------------------
# A number glued to a name by letters, digits or "_" is part of the name (GPT-2, FP16,
# Q4_1, Llama-3-8B, SmolLM2-135M): the lookarounds below skip it.
_NUMBER = re.compile(r"(?<![\w.\-/^_])(\d[\d,]*(?:\.\d+)?)(?![\w]|\.\d|-(?!\s))")
# a number hyphenated to one of these words names a kind of thing, not a measurement
_NAME_SUFFIX = re.compile(r"-(?:bit|bits|shot|gram|grams|way|D|dimensional|layer|head|block|core|cores|"
                          r"token|tokens|parameter|digit|digits|step|element|byte|bytes|GPU|GPUs|node|"
                          r"dimension|dim|th|st|nd|rd|of-\w+)\b|-[,\s]")  # "16-, 8- and 4-bit"
_YEAR = re.compile(r"^(19[5-9]\d|20[0-3]\d)$")
# chapter and section numbers: "chapter 3", "chapters 4, 9 and 10", "section 2.2", "§3"
_REFERENCE = re.compile(
    r"\b(?:[Cc]hapters?|[Ss]ections?|[Pp]arts?|[Ee]xercises?|[Ff]igures?|[Tt]ables?|[Ee]quations?|§|"
    r"ZeRO[ -][Ss]tages?|[Ss]tages?|[Ll]ectures?|[Ww]eeks?)\s*"
    r"\d+(?:\.\d+)*(?:(?:\s*,\s*|\s+(?:and|to|or)\s+|\s*[-–]\s*)\d+(?:\.\d+)*)*")
_LIST_MARKER = re.compile(r"^\s*(?:[-*]\s+)?\d+(?:\.\d+)*[.)]?\s", re.M)  # "1. ", "2.1 " at a line's start
_HEADING = re.compile(r"^(#+\s+(?:Exercises:\s+)?)\d+(?:\.\d+)*\.?(?=\s)", re.M)
# a chapter's number in a table cell: "| 1. Lifecycle |", or a link to it: "| [1. Lifecycle](01.md) |"
_TABLE_NUMBER = re.compile(r"(?<=\|)\s*\[?\d+(?:\.\d+)*\.(?=\s)")
# versions of software and licences: "Python 3.10", "Apache License 2.0", "CC0 1.0", "CC BY 4.0"
_VERSION = re.compile(r"\b(?:Python|License|CC0|BY|[Vv]ersion|International|Attribution)\s+\(?\d+(?:\.\d+)+")
# an exercise's time estimate, written by its author for planning a class: "*About 10 minutes.*"
_EXERCISE_MINUTES = re.compile(r"^\*About \d+ minutes\.\*$", re.M)
_ORDINAL_NAME = re.compile(r"\b(?:top|Top|rank|Rank|k|n|p)\s*=\s*")     # not used: parameters are numbers too
_CONFIDENCE = re.compile(r"\b(?:90|95|99)%(?=\s+(?:\w+\s+)?(?:confidence\s+|Wilson\s+|bootstrap\s+|credible\s+)?"
                         r"intervals?\b)")
# a sentence citing where its numbers come from
_CITATION = re.compile(
    r"[A-Z][\w'\-]+\*?(?:\s+(?:et al\.?|and [A-Z][\w'\-]+|&\s*[A-Z][\w'\-]+))?,?\s*\(?(?:19|20)\d\d[a-z]?\)?"
    r"|\b(?:the )?(?:NVIDIA talk|course(?:'s)? (?:slides?|notes)|Columbia lecture|seed documents?|model card)\b"
    r"|\bseeds/", re.S)
_SENTENCE_END = re.compile(r"(?<=[.!?:])(?<!\bal\.)(?<!e\.g\.)(?<!i\.e\.)(?<!\bvs\.)(?<!\bcf\.)(?<!\bNo\.)\s+(?=[A-Z*(\"'_{])|\n\s*\n|\n(?=\s*(?:[-*]|\d+\.|\|)\s)")


@dataclass(frozen=True)
class Flag:
    """One typed number: where it is and the sentence around it."""

    page: str
    cell: int
    number: str
    sentence: str

    def __str__(self) -> str:
        return f"{self.page}[{self.cell}] {self.number!r}: {self.sentence}"


def pages() -> list[Path]:
    """The pages the check reads: every chapter (notebook or markdown) and every exercise page."""
    chapters = sorted(p for p in (ROOT / "chapters").glob("*") if p.suffix in {".ipynb", ".md"})
    exercises = sorted((ROOT / "exercises").glob("*.md"))
    return chapters + exercises


def markdown_cells(path: Path) -> list[tuple[int, str]]:
    """(cell index, text) of the prose of a page: markdown cells of a notebook, or a whole .md file."""
    if path.suffix == ".ipynb":
        nb = json.loads(path.read_text(encoding="utf-8"))
        return [(i, "".join(c["source"])) for i, c in enumerate(nb["cells"]) if c["cell_type"] == "markdown"]
    return [(0, path.read_text(encoding="utf-8"))]


def _prose(text: str) -> str:
    for pattern in (_COMMENT, _FENCE, _DISPLAY_MATH, _GLUE, _ROLE, _CODE, _LINK_TARGET, _URL,
                    _DIRECTIVE_OPTION, _DIRECTIVE_LINE, _TAG):
        text = pattern.sub(" ", text)
    return text


def _math_numbers(expr: str) -> list[str]:
    """Numbers inside inline math that look like results rather than notation.

    A formula's small integer constants (``2^{16}``, ``\\sqrt{2}``, ``6ND``) are notation;
    a decimal or a number of three or more digits typed into math is a value.
    """
    out = []
    for m in re.finditer(r"(?<![\w^_{])(\d+(?:\.\d+)?)", expr):
        s = m.group(1)
        if "." in s or len(s) >= 3:
            out.append(s)
    return out


def typed_numbers(text: str) -> list[tuple[str, str]]:
    """(number, sentence) for every number in ``text`` that is neither glued, cited nor allowlisted."""
    prose = _prose(text)
    prose = _REFERENCES.sub(" ", prose)
    prose = _HEADING.sub(r"\1", prose)
    prose = _EXERCISE_MINUTES.sub(" ", prose)
    prose = _TABLE_NUMBER.sub(" ", prose)
    prose = _ARXIV.sub(" ", prose)
    prose = _VERSION.sub(" ", prose)
    prose = _LIST_MARKER.sub(" ", prose)
    found = []
    for sentence in _SENTENCE_END.split(prose):
        sentence = " ".join(sentence.split())
        if not sentence or _CITATION.search(sentence):
            continue
        math = [n for m in _INLINE_MATH.finditer(sentence) for n in _math_numbers(m.group(1))]
        plain = _INLINE_MATH.sub(" ", sentence)
        plain = _REFERENCE.sub(" ", plain)
        plain = _CONFIDENCE.sub(" ", plain)
        for m in _NUMBER.finditer(plain):
            number = m.group(1).rstrip(",")
            if _YEAR.match(number) or _NAME_SUFFIX.match(plain, m.end()):
                continue
            found.append((number, sentence))
        found.extend((n, sentence) for n in math)
    return found


def scan(path: Path) -> list[Flag]:
    """Every typed number of one page."""
    rel = str(path.relative_to(ROOT))
    return [Flag(rel, i, number, sentence)
            for i, text in markdown_cells(path)
            for number, sentence in typed_numbers(text)]


def main(argv: list[str]) -> int:
    verbose = "-v" in argv
    names = [a for a in argv if a != "-v"]
    total = 0
    for path in pages():
        if names and not any(n in path.name for n in names):
            continue
        flags = scan(path)
        total += len(flags)
        print(f"{len(flags):4d}  {path.relative_to(ROOT)}")
        if verbose:
            for f in flags:
                print("      ", f)
    print(f"{total:4d}  in all")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
