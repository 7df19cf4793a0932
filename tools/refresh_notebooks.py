"""Re-run lessons and solutions and store only the outputs that nbval checks; then regenerate exercises.

    python tools/refresh_notebooks.py                      # every notebook
    python tools/refresh_notebooks.py notebooks/01_*.ipynb # some
    python tools/refresh_notebooks.py --setup-only         # only rewrite set-up cells and badges

Each notebook runs in the smoke profile on the offline data (the same outputs on every machine).
Only cells tagged `nbval-check-output` (nbval's cell tag) keep their outputs, and never stderr: everything else is
cleared, so the stored notebooks stay small and show no stale timings or TensorFlow log lines.
Solution cells (`### BEGIN SOLUTION`) and grader cells (`grading.check_...`) get nbgrader's
metadata, so instructors can run nbgrader on solutions/. Every notebook's first code cell and Colab
badge are rewritten from cnnkit.setup_cell and pyproject.toml's Repository first.
"""

import argparse
import hashlib
import os
import re
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cnnkit import setup_cell  # noqa: E402
from cnnkit.exercises import BEGIN, generate  # noqa: E402

CHECK = "nbval-check-output"  # nbval's cell tag: compare this cell's output


def _nbgrader(cell, notebook_name, index):
    grade_id = f"{Path(notebook_name).stem}-cell{index}-" + hashlib.sha1(
        cell.source.encode()).hexdigest()[:6]
    if BEGIN in cell.source:
        meta = {"solution": True, "grade": False, "locked": False}
    elif cell.cell_type == "code" and "grading.check_" in cell.source:
        meta = {"solution": False, "grade": True, "locked": True, "points": 1}
    else:
        cell.metadata.pop("nbgrader", None)
        return
    cell.metadata["nbgrader"] = {**meta, "grade_id": grade_id, "schema_version": 3}


def set_up(nb, path: Path):
    """Write the one set-up cell and the Colab badge (for the slug in pyproject.toml) into `nb`."""
    repository = setup_cell.repository(ROOT)
    next(c for c in nb.cells if c.cell_type == "code").source = setup_cell.render(repository)
    first = next(c for c in nb.cells if c.cell_type == "markdown")
    first.source = re.sub(r"https://colab\.research\.google\.com/github/[^)\s]+",
                          setup_cell.badge(repository, path.parent.name, path.name), first.source,
                          count=1)


def refresh(path: Path, execute=True):
    nb = nbformat.read(path, as_version=4)
    set_up(nb, path)
    if not execute:
        nbformat.write(nb, path)
        print(f"set up {path.relative_to(ROOT)}")
        return
    env = {"CNNKIT_PROFILE": "smoke", "CNNKIT_OFFLINE": "1", "TF_CPP_MIN_LOG_LEVEL": "2",
           "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
    os.environ.update(env)
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if CHECK in cell.metadata.get("tags", []):
            cell.outputs = [o for o in cell.outputs
                            if not (o.output_type == "stream" and o.name == "stderr")]
        else:
            cell.outputs = []
            cell.execution_count = None
        cell.metadata.pop("execution", None)
        if path.parent.name == "solutions":
            _nbgrader(cell, path.name, index)
    if path.parent.name == "solutions":
        for index, cell in enumerate(nb.cells):
            if cell.cell_type == "markdown":
                _nbgrader(cell, path.name, index)
    nbformat.write(nb, path)
    print(f"refreshed {path.relative_to(ROOT)}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="*", type=Path)
    parser.add_argument("--setup-only", action="store_true",
                        help="rewrite the set-up cells and badges without running anything")
    args = parser.parse_args(argv)
    paths = args.paths or sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted(
        (ROOT / "solutions").glob("*.ipynb"))
    for path in paths:
        refresh(path.resolve(), execute=not args.setup_only)
    for name in generate(ROOT / "solutions", ROOT / "exercises"):
        print(f"written exercises/{name}")


if __name__ == "__main__":
    main()
