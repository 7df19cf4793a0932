"""tools/gpu_course.py's report: a notebook passes only when every cell ran and passed."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from gpu_course import markdown, summarise  # noqa: E402


def cell(notebook, index, outcome="passed", seconds=1.5, asserts=False, stdout=""):
    return {"notebook": notebook, "cell": index, "outcome": outcome, "seconds": seconds,
            "asserts": asserts, "stdout": stdout}


LINES = [cell("notebooks/01.ipynb", 1, seconds=2.25),
         cell("notebooks/01.ipynb", 0, seconds=0.5),
         cell("notebooks/01.ipynb", 2, asserts=True, stdout="test accuracy: 97.10%\nmore\n"),
         cell("notebooks/02.ipynb", 0),
         cell("notebooks/02.ipynb", 1, outcome="failed", asserts=True, stdout="loss 3.2\n"),
         cell("notebooks/02.ipynb", 2, asserts=True, stdout="   \n")]


def test_rows_per_notebook_in_the_given_order():
    rows = summarise(LINES, ["notebooks/02.ipynb", "notebooks/01.ipynb", "notebooks/03.ipynb"])
    assert [r["notebook"] for r in rows] == ["notebooks/02.ipynb", "notebooks/01.ipynb",
                                             "notebooks/03.ipynb"]
    second, first, missing = rows
    assert first == {"notebook": "notebooks/01.ipynb", "passed": True, "cells": 3,
                     "failed_cells": [], "seconds": 4.2,
                     "figures": ["test accuracy: 97.10%\nmore"]}
    # A failed cell fails the notebook; its output is not a figure; blank output is skipped.
    assert second["passed"] is False and second["failed_cells"] == [1]
    assert second["figures"] == [] and second["seconds"] == 4.5
    # A notebook with no cell reported did not run: it fails too.
    assert missing == {"notebook": "notebooks/03.ipynb", "passed": False, "cells": 0,
                       "failed_cells": [], "seconds": 0, "figures": []}


def test_markdown_table_says_pass_fail_and_the_wall_time():
    rows = summarise(LINES, ["notebooks/01.ipynb", "notebooks/02.ipynb", "notebooks/03.ipynb"])
    text = markdown(rows, {"GPU": "NVIDIA H200", "profile": "gpu"}, wall=123.4).splitlines()
    assert "- GPU: NVIDIA H200" in text and "- wall time: 123 s for 3 notebooks; 1 passed" in text
    assert "| notebooks/01.ipynb | pass | 4.2 | test accuracy: 97.10% / more |" in text
    assert "| notebooks/02.ipynb | FAIL (cells [1]) | 4.5 |  |" in text
    assert "| notebooks/03.ipynb | FAIL (did not run) | 0.0 |  |" in text
