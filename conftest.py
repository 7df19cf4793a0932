"""Shared pytest set-up for the unit tests and for the notebooks that nbval runs.

- Tests run in the smoke profile unless CNNKIT_PROFILE says otherwise.
- TensorFlow writes timestamped C++ log lines to stderr (absl prints some before any Python
  setting can hide them). They are not part of a lesson, so stderr never takes part in nbval's
  output comparison; the notebooks also store no stderr (tools/refresh_notebooks.py drops it).
"""

import json
import os

import pytest

os.environ.setdefault("CNNKIT_PROFILE", "smoke")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")

try:
    from nbval.plugin import IPyNbCell
except ImportError:  # nbval is only needed to run the notebooks
    IPyNbCell = None


def _without_stderr(outputs):
    return [o for o in outputs if not (o.get("output_type") == "stream" and o.get("name") == "stderr")]


if IPyNbCell is not None:
    _compare_outputs = IPyNbCell.compare_outputs

    def _compare_outputs_without_stderr(self, test, ref, skip_compare=None):
        return _compare_outputs(self, _without_stderr(test), _without_stderr(ref), skip_compare)

    IPyNbCell.compare_outputs = _compare_outputs_without_stderr


# The longest scopes (what pytest-xdist's loadscope sends to one worker) start first, so that
# none of them is left running alone on one core at the end while the other core idles. Measured
# in the smoke profile on 2 cores: nbgrader's course 226 s, the ported weights about 120 s
# (TensorFlow); on JAX (two workers, 2026-12-03) lessons 07 117 s, 13 92 s, 11 87 s, 12 55 s,
# 09 49 s, and the others under 45 s. Lessons 14, 17, 15 and 16 came later: measured on JAX
# under a shared machine's load, 14 took 64 s of CPU, 17 37 s (its parts start processes) and
# 15 24 s, so 14 goes first and 17 after 13.
LONGEST_FIRST = ("tests/test_nbgrader.py", "tests/test_weights.py", "notebooks/14_",
                 "notebooks/07_", "notebooks/13_", "notebooks/17_", "notebooks/16_",
                 "notebooks/11_", "notebooks/15_", "notebooks/12_", "notebooks/09_",
                 "notebooks/06_")


def pytest_collection_modifyitems(config, items):
    def rank(item):
        return next((i for i, prefix in enumerate(LONGEST_FIRST)
                     if item.nodeid.startswith(prefix)), len(LONGEST_FIRST))

    items.sort(key=rank)  # stable: every scope keeps its own order and stays in one piece


# CNNKIT_REPORT=FILE: every notebook cell nbval runs is appended to FILE as a line of JSON, with
# its outcome, seconds and what it printed; tools/gpu_course.py reads it for its report (the
# figures a lesson asserts are what its cells with an `assert` print).
REPORT_ENV = "CNNKIT_REPORT"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    path = os.environ.get(REPORT_ENV)
    if not path or IPyNbCell is None or not isinstance(item, IPyNbCell) or call.when != "call":
        return
    report = outcome.get_result()
    printed = "".join(o.get("text", "") for o in (item.test_outputs or [])
                      if o.get("output_type") == "stream" and o.get("name") == "stdout")
    line = {"notebook": item.fspath.relto(item.config.rootdir), "cell": item.cell_num,
            "asserts": "assert " in item.cell.source, "outcome": report.outcome,
            "seconds": round(report.duration, 3), "stdout": printed[-4000:]}
    with open(path, "a", encoding="utf-8") as report_file:  # one write per line: workers append
        report_file.write(json.dumps(line) + "\n")
