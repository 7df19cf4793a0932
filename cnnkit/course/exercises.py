"""Writes `exercises/` from `solutions/`: the solutions are the one source, never edit exercises.

In a solution notebook, code between `### BEGIN SOLUTION` and `### END SOLUTION` is the answer
(nbgrader's markers, so instructors can also run nbgrader on `solutions/`). The exercise keeps
everything else and puts `raise NotImplementedError()` where the answer was; in markdown, the
answer becomes "YOUR ANSWER HERE". Checks an instructor keeps from students go between
`### BEGIN HIDDEN TESTS` and `### END HIDDEN TESTS` in a grade cell: the exercise drops them,
markers included, as nbgrader's release does, and nbgrader's autograder runs them. Outputs are
dropped, since a learner has not run anything yet.

    python -m cnnkit.course.exercises            # rewrite exercises/ from solutions/
    python -m cnnkit.course.exercises --check    # exit 1 if exercises/ is out of date
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
from pathlib import Path

import nbformat

__all__ = ["make_exercise", "generate", "BEGIN", "END", "BEGIN_HIDDEN", "END_HIDDEN"]

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
_BLOCK = re.compile(rf"^([ \t]*){re.escape(BEGIN)}[^\n]*\n.*?^[ \t]*{re.escape(END)}[^\n]*$",
                    re.MULTILINE | re.DOTALL)
_HIDDEN = re.compile(rf"^[ \t]*{re.escape(BEGIN_HIDDEN)}[^\n]*\n.*?^[ \t]*"
                     rf"{re.escape(END_HIDDEN)}[^\n]*(\n|\Z)", re.MULTILINE | re.DOTALL)


def _strip_code(source: str) -> str:
    source = _HIDDEN.sub("", source).rstrip("\n") if BEGIN_HIDDEN in source else source
    return _BLOCK.sub(lambda m: f"{m.group(1)}# YOUR CODE HERE\n{m.group(1)}"
                                "raise NotImplementedError()", source)


def _strip_markdown(source: str) -> str:
    return _BLOCK.sub("YOUR ANSWER HERE", source)


def make_exercise(solution: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The exercise notebook for one solution notebook."""
    exercise = copy.deepcopy(solution)
    exercise.metadata.pop("cnnkit", None)  # how the solution was run: an exercise never was
    for cell in exercise.cells:
        for begin, end in ((BEGIN, END), (BEGIN_HIDDEN, END_HIDDEN)):
            if cell.source.count(begin) != cell.source.count(end):
                raise ValueError(f"a cell has {begin!r} without {end!r}, or the reverse:\n"
                                 f"{cell.source[:200]}")
        if cell.cell_type == "code":
            cell.source = _strip_code(cell.source)
            cell.outputs = []
            cell.execution_count = None
        elif cell.cell_type == "markdown":
            cell.source = _strip_markdown(cell.source)
    return exercise


def generate(solutions_dir="solutions", exercises_dir="exercises", check=False) -> list[str]:
    """Write (or with check=True, compare) every exercise; return the names that differ."""
    solutions_dir, exercises_dir = Path(solutions_dir), Path(exercises_dir)
    stale = []
    for path in sorted(solutions_dir.glob("*.ipynb")):
        exercise = make_exercise(nbformat.read(path, as_version=4))
        text = nbformat.writes(exercise) + "\n"
        target = exercises_dir / path.name
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            stale.append(path.name)
            if not check:
                exercises_dir.mkdir(exist_ok=True)
                target.write_text(text, encoding="utf-8")
    sources = {p.name for p in solutions_dir.glob("*.ipynb")}
    orphans = sorted(p.name for p in exercises_dir.glob("*.ipynb") if p.name not in sources)
    for name in orphans:
        stale.append(name)
        if not check:
            (exercises_dir / name).unlink()
    return stale


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m cnnkit.course.exercises", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--solutions", default="solutions")
    parser.add_argument("--exercises", default="exercises")
    parser.add_argument("--check", action="store_true", help="only report stale exercises")
    args = parser.parse_args(argv)
    stale = generate(args.solutions, args.exercises, check=args.check)
    verb = "out of date" if args.check else "written"
    for name in stale:
        print(f"{verb}: {args.exercises}/{name}")
    return 1 if (args.check and stale) else 0


if __name__ == "__main__":
    sys.exit(main())
