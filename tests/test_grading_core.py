"""The grading core: one verdict per call, nothing escapes, and the grader's faults are its own."""

import sys

import numpy as np
import pytest

from cnnkit.course import grading
from cnnkit.course.grading import core


def check_double(double):
    """A grader built as every lesson's graders are: `double(x)` -> 2 * x, as a NumPy array."""
    double = core.student(double)

    def run():
        rng = np.random.default_rng(0)
        x = rng.normal(size=(3, 4))
        got = core.array(double(x), "double(x)", shape=x.shape)
        core.expect(np.allclose(got, 2 * x), "double(x) is not 2 * x.")
        return "2 * x on a random 3x4 array."

    return core.grade("double", run)


def verdict(answer, capsys):
    with pytest.raises(grading.GradeFailure) as failure:
        check_double(answer)
    out = capsys.readouterr().out
    assert out.startswith("❌ FAIL  double: ") and out.count("\n") == 1
    return str(failure.value)


def test_a_pass_prints_one_line_and_returns_none(capsys):
    assert check_double(lambda x: x * 2) is None
    assert capsys.readouterr().out == "✅ PASS  double: 2 * x on a random 3x4 array.\n"


@pytest.mark.parametrize("answer, message", [
    (lambda x: sys.exit(0), "your code called sys.exit(0)"),
    (lambda x: sys.exit(), "your code called sys.exit(None)"),
    (lambda x: (_ for _ in ()).throw(KeyboardInterrupt()), "interrupted before it returned"),
    (lambda x: (_ for _ in ()).throw(GeneratorExit()), "your code raised GeneratorExit"),
    (lambda x: 1 / 0, "your code raised ZeroDivisionError: division by zero"),
    (lambda x: (_ for _ in ()).throw(NotImplementedError()), "not implemented yet"),
    (lambda x: (_ for _ in ()).throw(AssertionError("mine")), "your code raised AssertionError"),
    (lambda x: (_ for _ in ()).throw(grading.GradeFailure("forged")),
     "your code raised GradeFailure: forged"),
])
def test_whatever_the_student_raises_is_a_fail_never_an_escape(answer, message, capsys):
    assert message in verdict(answer, capsys)


def test_an_input_changed_in_place_fails(capsys):
    def doubles_in_place(x):
        x *= 2
        return x

    assert "changed its input argument 1 in place" in verdict(doubles_in_place, capsys)


@pytest.mark.parametrize("answer, message", [
    (lambda x: None, "returned None: return an array"),
    (lambda x: "2x", "returned str, not an array of numbers"),
    (lambda x: {"x": 2 * x}, "returned dict, not an array of numbers"),
    (lambda x: (2 * x)[:2], "returned an array of shape (2, 4); expected shape (3, 4)"),
    (lambda x: x + 2, "double(x) is not 2 * x."),
])
def test_wrong_types_and_values_are_named_before_any_arithmetic(answer, message, capsys):
    assert message in verdict(answer, capsys)


def test_a_keras_tensor_and_a_list_are_accepted(capsys):
    import keras

    check_double(lambda x: keras.ops.convert_to_tensor(2 * x))
    check_double(lambda x: (2 * x).tolist())
    assert capsys.readouterr().out.count("✅ PASS") == 2


def test_a_fault_of_the_grader_is_a_grader_error_not_the_students(capsys):
    def broken_grader(answer):
        answer = core.student(answer)

        def run():
            answer(1.0)
            return {}["missing"]  # the grader's own bug

        return core.grade("broken", run)

    with pytest.raises(grading.GraderError, match="the grader failed: KeyError"):
        broken_grader(lambda x: x)
    out = capsys.readouterr().out
    assert out.startswith("⚠️ GRADER ERROR  broken:") and "not in your answer" in out
    assert "your code raised" not in out
    assert not issubclass(grading.GraderError, AssertionError)


def test_passing_something_other_than_a_function_says_so(capsys):
    with pytest.raises(grading.GradeFailure, match="pass your function itself"):
        grading.check_iterations_per_epoch(32)


@pytest.mark.parametrize("got, ok", [(3, True), (np.int64(3), True), (np.array(3), True),
                                     (3.0, False), (True, False), ("3", False), (None, False)])
def test_whole_number(got, ok):
    if ok:
        assert core.whole_number(got, "f()") == 3
    else:
        with pytest.raises(grading.GradeFailure, match="return a whole number"):
            core.whole_number(got, "f()")


@pytest.mark.parametrize("got, ok", [(2.5, True), (np.float32(2.5), True), (np.array(2.5), True),
                                     ("2.5", False), (None, False), (float("nan"), False),
                                     ([2.5], False), (False, False)])
def test_real_number(got, ok):
    if ok:
        assert core.real_number(got, "f()") == 2.5
    else:
        with pytest.raises(grading.GradeFailure, match="return a (finite )?number"):
            core.real_number(got, "f()")


def test_pair_of_whole_numbers_takes_a_tuple_or_a_list():
    assert core.pair_of_whole_numbers([1, np.int32(2)], "f()", "a, b") == (1, 2)
    assert core.pair_of_whole_numbers((1, 2), "f()", "a, b") == (1, 2)
    for wrong in ((1, 2, 3), 12, (1, 2.0)):
        with pytest.raises(grading.GradeFailure):
            core.pair_of_whole_numbers(wrong, "f()", "a, b")
