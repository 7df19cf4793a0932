"""Exercises come from solutions/ and fail until the learner writes the answer.

That every solution passes its graders, and every untouched exercise fails each of them, is
checked by nbgrader itself in tests/test_nbgrader.py, which autogrades every solution but only
two untouched releases; every untouched exercise is graded here, in this process.
"""

import contextlib
import io
from pathlib import Path

import nbformat
import pytest

from cnnkit.course.exercises import generate, make_exercise
from cnnkit.course.grading.core import GradeFailure

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))
EXERCISES = sorted((ROOT / "exercises").glob("*.ipynb"))


def test_every_lesson_with_a_solution_has_its_exercise_and_nothing_else():
    assert SOLUTIONS, "no solutions found"
    assert sorted(p.name for p in (ROOT / "exercises").glob("*.ipynb")) == [
        p.name for p in SOLUTIONS]


def test_exercises_equal_what_the_generator_writes_now():
    stale = generate(ROOT / "solutions", ROOT / "exercises", check=True)
    assert stale == [], "run `python -m cnnkit.course.exercises` and commit exercises/"


def grader_cells(nb):
    return [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.stem)
def test_solutions_carry_nbgrader_metadata(path):
    nb = nbformat.read(path, as_version=4)
    solution = [c for c in nb.cells if "### BEGIN SOLUTION" in c.source]
    assert solution, "a solution notebook needs at least one answer"
    assert all(c.metadata["nbgrader"]["solution"] for c in solution)
    graders = grader_cells(nb)
    assert graders and all("grading.check_" in c.source for c in graders)
    assert all(c.metadata["nbgrader"]["locked"] for c in graders)
    ids = [c.metadata["nbgrader"]["grade_id"] for c in nb.cells if "nbgrader" in c.metadata]
    assert len(ids) == len(set(ids))


def _role(cell):
    meta = cell.metadata.get("nbgrader", {})
    return "grade" if meta.get("grade") else "answer" if meta.get("solution") else None


def graded_in_process(nb, name):
    """Run an exercise's grading without a kernel: its set-up cells (those before the first
    answer), then in order each answer cell (a released one raises NotImplementedError where a
    value is asked for: the learner's to remove) and each grade cell. The lesson's own cells
    between them are not run. Returns (grade cell, what it printed, the GradeFailure or None)."""
    cells = [c for c in nb.cells if c.cell_type == "code"]
    first_answer = next(i for i, c in enumerate(cells) if _role(c) == "answer")
    namespace = {"__name__": "__main__"}
    with contextlib.redirect_stdout(io.StringIO()):
        for cell in cells[:first_answer]:
            assert not cell.source.lstrip().startswith(("%", "!")), "a magic: run it in a kernel"
            exec(compile(cell.source, f"{name} set-up", "exec"), namespace)
    verdicts = []
    for cell in cells[first_answer:]:
        if _role(cell) == "answer":
            try:
                with contextlib.redirect_stdout(io.StringIO()):
                    exec(compile(cell.source, f"{name} answer", "exec"), namespace)
            except NotImplementedError:
                pass
        elif _role(cell) == "grade":
            out, failure = io.StringIO(), None
            try:
                with contextlib.redirect_stdout(out):
                    exec(compile(cell.source, f"{name} grade", "exec"), namespace)
            except GradeFailure as raised:
                failure = raised
            verdicts.append((cell.source.strip(), out.getvalue(), failure))
    assert len(verdicts) == len(grader_cells(nb)) > 0
    return verdicts


@pytest.mark.parametrize("path", EXERCISES, ids=lambda p: p.stem)
def test_an_untouched_exercise_fails_each_grade_cell_as_not_implemented(path):
    """What bob's untouched release gets from nbgrader (tests/test_nbgrader.py autogrades two
    of them), for every exercise and in this process: each grade cell prints one FAIL saying
    "not implemented yet" and raises GradeFailure (an AssertionError, so "Run all" stops).
    Some solutions' answers need the lesson's cells between (lesson 03's report reads its
    trajectory), so the solutions are graded in a kernel, by nbgrader; the control below
    grades one that needs none."""
    for source, printed, failure in graded_in_process(nbformat.read(path, as_version=4),
                                                      path.name):
        assert failure is not None and "not implemented yet" in str(failure), (source, printed)
        assert printed.count("❌ FAIL") == 1 and "not implemented yet" in printed, (
            source, printed)


def test_graded_in_process_passes_a_solution():
    """The control: lesson 02's solution (answers that need no lesson cell between) passes
    each grade cell graded the same way, so the test above fails on answered exercises."""
    path = ROOT / "solutions" / "02_building_blocks.ipynb"
    verdicts = graded_in_process(nbformat.read(path, as_version=4), path.name)
    assert [(failure, printed[:6]) for _, printed, failure in verdicts] == [
        (None, "✅ PASS")] * 3


def code_nb(*sources, markdown=()):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(m) for m in markdown] + [
        nbformat.v4.new_code_cell(s) for s in sources]
    return nb


def test_solution_block_becomes_not_implemented_at_its_own_indentation():
    nb = code_nb("def f(x):\n    y = 2\n    ### BEGIN SOLUTION\n    return x * y\n"
                 "    ### END SOLUTION\n\nprint(f)")
    nb.cells[0].outputs = [nbformat.v4.new_output("stream", name="stdout", text="old")]
    nb.cells[0].execution_count = 3
    cell = make_exercise(nb).cells[0]
    assert cell.source == ("def f(x):\n    y = 2\n    # YOUR CODE HERE\n"
                           "    raise NotImplementedError()\n\nprint(f)")
    assert cell.outputs == [] and cell.execution_count is None
    assert "return x * y" in nb.cells[0].source  # the solution itself is left untouched


def test_several_blocks_and_markdown_answers():
    nb = code_nb("### BEGIN SOLUTION\na = 1\n### END SOLUTION\nb = 2\n"
                 "### BEGIN SOLUTION\nc = 3\n### END SOLUTION",
                 markdown=["Why?\n\n### BEGIN SOLUTION\nBecause.\n### END SOLUTION"])
    exercise = make_exercise(nb)
    assert exercise.cells[0].source == "Why?\n\nYOUR ANSWER HERE"
    assert exercise.cells[1].source.count("raise NotImplementedError()") == 2
    assert "b = 2" in exercise.cells[1].source and "a = 1" not in exercise.cells[1].source


@pytest.mark.parametrize("cell", ["### BEGIN SOLUTION\nx = 1",
                                  "### BEGIN SOLUTION\nx = 1\n### BEGIN SOLUTION\ny = 2\n"
                                  "### END SOLUTION"])
def test_unbalanced_markers_are_an_error_so_no_answer_leaks(cell):
    with pytest.raises(ValueError, match="without '### END SOLUTION'"):
        make_exercise(code_nb(cell))


def test_hidden_tests_leave_the_exercise_as_nbgrader_leaves_them():
    nb = code_nb("grading.check_f(f)\n### BEGIN HIDDEN TESTS\nassert f(3) == 9\n"
                 "### END HIDDEN TESTS\n")
    assert make_exercise(nb).cells[0].source == "grading.check_f(f)"
    assert "assert f(3) == 9" in nb.cells[0].source
    with pytest.raises(ValueError, match="without '### END HIDDEN TESTS'"):
        make_exercise(code_nb("grading.check_f(f)\n### BEGIN HIDDEN TESTS\nassert f(3) == 9"))
