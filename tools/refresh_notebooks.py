"""Re-run lessons and solutions in the cpu profile and store them as a learner should first see
them, with every output; then regenerate exercises (without outputs).

    python tools/refresh_notebooks.py                      # every notebook
    python tools/refresh_notebooks.py notebooks/01_*.ipynb # some
    python tools/refresh_notebooks.py --setup-only         # only rewrite set-up cells and badges

Each notebook runs twice, offline, on the backend of this environment:
- in the smoke profile, as CI's nbval runs it: the cells tagged `nbval-check-output` (nbval's
  cell tag) must print exactly what they print in the cpu profile, or CI would compare the
  stored output with a different one; the tool names every such cell and exits with 1;
- in the cpu profile, whose outputs are stored: figures, tables and one progress line per epoch
  (CNNKIT_PROGRESS=lines), never stderr. The profile, backend, versions and date go into the
  notebook's metadata (`cnnkit`), with the seconds it took and the cells that took over 10 s.
Solution cells (`### BEGIN SOLUTION`) and grader cells (`grading.check_...`) get nbgrader's
metadata, so instructors can run nbgrader on solutions/. Every notebook's first code cell and Colab
badge are rewritten from cnnkit.course.setup_cell and pyproject.toml's Repository first.
"""

import argparse
import copy
import hashlib
import os
import re
import sys
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cnnkit.course import setup_cell  # noqa: E402
from cnnkit.course.exercises import BEGIN, generate  # noqa: E402

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


STORED_PROFILE = "cpu"
PROGRESS = re.compile(r"^(Epoch \d+/\d+|\d+/\d+ (-|\u2501))", re.MULTILINE)  # Keras's lines


def _execute(nb, path: Path, profile: str):
    """Run `nb` in place in a fresh kernel; return each code cell's seconds by index."""
    os.environ.update({"CNNKIT_PROFILE": profile, "CNNKIT_OFFLINE": "1",
                       "CNNKIT_PROGRESS": "lines", "TF_CPP_MIN_LOG_LEVEL": "2",
                       "MPLBACKEND": "module://matplotlib_inline.backend_inline"})
    NotebookClient(nb, timeout=900, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    seconds = {}
    for index, cell in enumerate(nb.cells):
        timing = cell.metadata.pop("execution", None)
        if cell.cell_type == "code" and timing:
            start, end = (datetime.fromisoformat(timing[k].replace("Z", "+00:00"))
                          for k in ("iopub.execute_input", "shell.execute_reply"))
            seconds[index] = (end - start).total_seconds()
    return seconds


def _shown(cell):
    """What nbval compares in a checked cell: stdout (writes joined) and plain-text results."""
    text = "".join(o.text for o in cell.outputs if o.output_type == "stream" and o.name == "stdout")
    results = [o.data.get("text/plain") for o in cell.outputs if o.output_type == "execute_result"]
    return text, results


def _versions():
    found = {}
    for name in ("keras", "tensorflow", "jax", "torch", "numpy"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def refresh(path: Path, execute=True):
    """Re-run one notebook and store it; return the checked cells whose output depends on the
    profile (empty when nbval will agree)."""
    nb = nbformat.read(path, as_version=4)
    set_up(nb, path)
    if not execute:
        nbformat.write(nb, path)
        print(f"set up {path.relative_to(ROOT)}")
        return []
    smoke = copy.deepcopy(nb)
    start = time.perf_counter()
    _execute(smoke, path, "smoke")
    smoke_seconds = time.perf_counter() - start
    start = time.perf_counter()
    seconds = _execute(nb, path, STORED_PROFILE)
    stored_seconds = time.perf_counter() - start
    differing = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        cell.outputs = [o for o in cell.outputs
                        if not (o.output_type == "stream" and o.name == "stderr")]
        if CHECK in cell.metadata.get("tags", []) and _shown(cell) != _shown(smoke.cells[index]):
            differing.append(index)
        if path.parent.name == "solutions":
            _nbgrader(cell, path.name, index)
    if path.parent.name == "solutions":
        for index, cell in enumerate(nb.cells):
            if cell.cell_type == "markdown":
                _nbgrader(cell, path.name, index)
    slow = {i: s for i, s in seconds.items() if s > 10}
    nb.metadata["cnnkit"] = {
        "profile": STORED_PROFILE, "backend": os.environ.get("KERAS_BACKEND", "tensorflow"),
        "versions": _versions(), "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
        "seconds": round(stored_seconds), "smoke_seconds": round(smoke_seconds),
        "cells_over_10_s": {str(i): {"seconds": round(s), "progress": bool(PROGRESS.search(
            "".join(o.get("text", "") for o in nb.cells[i].outputs)))} for i, s in slow.items()},
    }
    nbformat.write(nb, path)
    images = sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code"
                 for o in c.outputs)
    print(f"refreshed {path.relative_to(ROOT)}: {STORED_PROFILE} {stored_seconds:.0f} s, smoke "
          f"{smoke_seconds:.0f} s, {path.stat().st_size / 1e3:.0f} kB, {images} images; cells over "
          f"10 s: {nb.metadata['cnnkit']['cells_over_10_s'] or 'none'}")
    for index in differing:
        print(f"  cell {index} is checked by nbval but prints something else in the smoke profile:"
              f" untag it or print only what every profile shares", file=sys.stderr)
    return differing


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="*", type=Path)
    parser.add_argument("--setup-only", action="store_true",
                        help="rewrite the set-up cells and badges without running anything")
    args = parser.parse_args(argv)
    paths = args.paths or sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted(
        (ROOT / "solutions").glob("*.ipynb"))
    differing, failed = {}, []
    for path in paths:
        try:
            cells = refresh(path.resolve(), execute=not args.setup_only)
        except CellExecutionError as error:  # report it, and go on with the other notebooks
            failed.append(path.name)
            print(f"FAILED {path.name}, left as it was:\n{str(error)[-2000:]}", file=sys.stderr)
            continue
        if cells:
            differing[path.name] = cells
    for name in generate(ROOT / "solutions", ROOT / "exercises"):
        print(f"written exercises/{name}")
    if differing or failed:
        sys.exit(f"failed: {failed}; checked cells that differ between the smoke and "
                 f"{STORED_PROFILE} profiles: {differing}")


if __name__ == "__main__":
    main()
