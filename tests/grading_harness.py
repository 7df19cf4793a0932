"""The one harness every grader test uses: a table per grader, each row a verdict to reproduce.

A `Table` holds a grader, the exercise's solution, other correct constructions, and wrong
answers, each with a phrase its FAIL message must contain. `verdict_cases(tables)` turns tables
into pytest parameters; `assert_verdict` runs one. Every table also gets the untouched exercise
(`raise NotImplementedError()`) as a wrong answer. tests/test_grading_tables.py checks that
every grader has a table with at least one other right answer and eight wrong ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from cnnkit.course import grading

PASS = "✅ PASS"


@dataclass(frozen=True)
class Table:
    check: object
    solution: object
    right: list = field(default_factory=list)
    wrong: list = field(default_factory=list)  # (answer, phrase of its FAIL message)
    # False where the answer is a value, not a function: an untouched exercise then never
    # defines it, and the grade cell fails on the missing name before any grader runs.
    untouched: bool = True

    @property
    def name(self):
        return self.check.__name__.removeprefix("check_")


def not_done(*args, **kwargs):
    raise NotImplementedError()


def verdict_cases(tables):
    """pytest parameters (check, answer, expected) for every row of every table."""
    params = []
    for table in tables:
        rows = [("solution", table.solution, PASS)]
        rows += [(f"right-{getattr(a, '__name__', i)}", a, PASS) for i, a in enumerate(table.right)]
        rows += [(f"wrong-{getattr(a, '__name__', i)}", a, hint)
                 for i, (a, hint) in enumerate(table.wrong)]
        if table.untouched:
            rows.append(("wrong-untouched", not_done, "not implemented yet"))
        params += [pytest.param(table.check, answer, expected, id=f"{table.name}-{label}")
                   for label, answer, expected in rows]
    return params


def assert_verdict(check, answer, expected, capsys):
    """PASS with None returned, or FAIL (GradeFailure) whose message and printout hold `expected`."""
    if expected == PASS:
        assert check(answer) is None
        out = capsys.readouterr().out
        assert out.startswith(PASS) and "❌" not in out, out
        return
    with pytest.raises(grading.GradeFailure) as failure:
        check(answer)
    out = capsys.readouterr().out
    assert out.startswith("❌ FAIL"), out
    assert expected in str(failure.value), (expected, str(failure.value))
    assert expected in out
