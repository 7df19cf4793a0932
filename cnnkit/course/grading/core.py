"""The grading core every lesson's graders share: the verdict, the student call, the input checks.

A grader is `check_name(student_function)`. It wraps the function with `student(...)`, runs its
checks inside `grade(...)`, and reports one verdict line:

- ✅ PASS, and returns None (so a notebook shows no `Out:` and nbgrader sees no value to score);
- ❌ FAIL with the reason, then raises `GradeFailure` (an AssertionError), so "Run all" stops at
  the first exercise that is not done and nbgrader scores the cell 0;
- ⚠️ GRADER ERROR when the grader itself broke: it raises `GraderError`, which says that the
  fault is cnnkit's, never the student's.

Anything the student's code raises, `SystemExit` and other BaseExceptions included, becomes a
FAIL that names it: a grader never kills the kernel and never ends without a verdict.
"""

from __future__ import annotations

import functools
import numbers

import numpy as np

__all__ = ["GradeFailure", "GraderError", "StudentCrash", "grade", "expect", "student",
           "whole_number",
           "real_number", "array", "pair_of_whole_numbers", "one_of"]


class GradeFailure(AssertionError):
    """An exercise's answer is missing or wrong."""


class GraderError(RuntimeError):
    """A grader failed for a reason of its own: a bug in cnnkit, not in the answer."""


class StudentCrash(Exception):
    """The student's function raised (any BaseException); carries what it raised."""

    def __init__(self, name, error):
        super().__init__(f"{name}: {type(error).__name__}: {error}")
        self.name, self.error = name, error


def grade(title, run_checks):
    """Run `run_checks()` (it returns a summary or raises) and print the one verdict."""
    try:
        summary = run_checks()
    except StudentCrash as crash:
        message = _crash_message(crash.error)
    except GradeFailure as failure:
        message = str(failure)
    except Exception as err:  # noqa: BLE001 - anything else is the grader's own fault
        print(f"⚠️ GRADER ERROR  {title}: the grader itself failed ({type(err).__name__}: {err}). "
              "This is a bug in cnnkit, not in your answer; please report it.")
        raise GraderError(f"{title}: the grader failed: {type(err).__name__}: {err}") from err
    else:
        print(f"✅ PASS  {title}: {summary}")
        return None
    print(f"❌ FAIL  {title}: {message}")
    raise GradeFailure(f"{title}: {message}")


def _crash_message(error):
    if isinstance(error, NotImplementedError):
        return "not implemented yet: replace `raise NotImplementedError()` with your code."
    if isinstance(error, SystemExit):
        return (f"your code called sys.exit({error.code!r}) (or raised SystemExit): return a "
                "value instead of ending the program.")
    if isinstance(error, KeyboardInterrupt):
        return "your code was interrupted before it returned."
    return f"your code raised {type(error).__name__}: {error}"


def expect(ok, message):
    """Fail with `message` unless `ok`."""
    if not ok:
        raise GradeFailure(message)


def student(function, name=None):
    """Wrap the student's `function`: whatever it raises becomes a StudentCrash, and an input
    it changes in place (a NumPy array, or one inside a list, tuple or dict) is a GradeFailure."""
    name = name or getattr(function, "__name__", "your function")
    if not callable(function):
        raise GradeFailure(f"pass your function itself to the grader; got "
                           f"{type(function).__name__} {function!r:.80}.")

    @functools.wraps(function)
    def call(*args, **kwargs):
        before = [(where, value.copy()) for where, value in _arrays_in(args, kwargs)]
        try:
            result = function(*args, **kwargs)
        except BaseException as err:  # noqa: BLE001 - SystemExit too: a verdict, never a dead kernel
            raise StudentCrash(name, err) from None
        for (where, old), (_, new) in zip(before, _arrays_in(args, kwargs)):
            expect(old.shape == new.shape and np.array_equal(old, new, equal_nan=True),
                   f"{name} changed its input {where} in place; work on a copy "
                   "(e.g. `x = x.copy()`) so the caller's data stays as it was.")
        return result

    return call


def _arrays_in(args, kwargs):
    """(where, array) for every NumPy array among the arguments, one level into containers."""
    found = []
    for where, value in [(f"argument {i + 1}", a) for i, a in enumerate(args)] + [
            (f"`{k}`", v) for k, v in kwargs.items()]:
        if isinstance(value, np.ndarray):
            found.append((where, value))
        elif isinstance(value, (list, tuple)):
            found += [(f"{where}[{j}]", v) for j, v in enumerate(value)
                      if isinstance(v, np.ndarray)]
        elif isinstance(value, dict):
            found += [(f"{where}[{k!r}]", v) for k, v in value.items()
                      if isinstance(v, np.ndarray)]
    return found


def whole_number(got, call):
    """`got` as an int; a GradeFailure naming the type expected when it is not a whole number."""
    ok = isinstance(got, (int, np.integer)) and not isinstance(got, (bool, np.bool_))
    if not ok and isinstance(got, np.ndarray) and got.shape == () and got.dtype.kind in "iu":
        ok = True
    hint = " `//` divides and rounds down in one step." if isinstance(got, float) else ""
    expect(ok, f"{call} returned {got!r:.80} of type {type(got).__name__}: return a whole number "
               f"(int).{hint}")
    return int(got)


def real_number(got, call):
    """`got` as a finite float; a GradeFailure naming the type expected otherwise."""
    if isinstance(got, np.ndarray) and got.shape == () or hasattr(got, "item") and np.ndim(got) == 0:
        got = np.asarray(got).item()
    expect(isinstance(got, numbers.Real) and not isinstance(got, (bool, np.bool_)),
           f"{call} returned {got!r:.80} of type {type(got).__name__}: return a number "
           "(int or float).")
    expect(np.isfinite(float(got)), f"{call} returned {got!r}: return a finite number.")
    return float(got)


def array(got, call, shape=None):
    """`got` (a NumPy array, a list or a Keras/backend tensor) as a float64 NumPy array."""
    expect(got is not None, f"{call} returned None: return an array (NumPy or a Keras tensor).")
    if hasattr(got, "numpy") and not isinstance(got, np.ndarray) or type(got).__module__.startswith(
            ("jax", "torch", "tensorflow")):
        try:
            import keras

            got = keras.ops.convert_to_numpy(got)
        except Exception:  # noqa: BLE001 - fall back to NumPy's own conversion below
            pass
    try:
        values = np.asarray(got, dtype="float64")
    except (TypeError, ValueError) as err:
        raise GradeFailure(f"{call} returned {type(got).__name__}, not an array of numbers "
                           f"({err}); return a NumPy array.") from None
    if shape is not None:
        expect(values.shape == tuple(shape), f"{call} returned an array of shape "
               f"{values.shape}; expected shape {tuple(shape)}.")
    return values


def pair_of_whole_numbers(got, call, names):
    """`got` as a tuple of two ints (a list is accepted too: the exercise says a pair)."""
    expect(isinstance(got, (tuple, list)) and len(got) == 2,
           f"return a pair ({names}); {call} returned {got!r:.80} of type {type(got).__name__}.")
    return tuple(whole_number(value, call) for value in got)


def one_of(got, variants, fallback, **tolerance):
    """The hint of the first `variants` entry (value, hint) that `got` matches, else `fallback`."""
    for value, hint in variants:
        try:
            if np.shape(value) == np.shape(got) and np.allclose(got, value, **tolerance):
                return hint
        except (TypeError, ValueError):
            continue
    return fallback
