"""The one check every grader test makes: the right answer passes, each typical mistake fails
with the hint that names it, and an untouched exercise fails with "not implemented yet"."""

import pytest

from cnnkit import grading


def not_done(*args, **kwargs):
    raise NotImplementedError()


def assert_verdicts(check, right, wrongs, capsys):
    """`wrongs` is a list of (wrong answer, a phrase its failure message must contain)."""
    assert check(right)
    assert capsys.readouterr().out.startswith("✅ PASS")
    for wrong, hint in wrongs:
        with pytest.raises(grading.GradeFailure) as failure:
            check(wrong)
        assert capsys.readouterr().out.startswith("❌ FAIL"), wrong.__name__
        assert hint in str(failure.value), (wrong.__name__, str(failure.value))
    with pytest.raises(grading.GradeFailure, match="not implemented yet"):
        check(not_done)
