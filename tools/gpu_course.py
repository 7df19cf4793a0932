"""Run the whole course under nbval on a GPU machine and write a report (pass or fail, seconds, the
figures each lesson asserts, the GPU and the versions).

Made for a machine with an NVIDIA GPU, JAX and PyTorch but no TensorFlow and no network:

    # here, where the package registry answers: the wheels that machine lacks (Python 3.12)
    python tools/gpu_course.py wheels .gpu-wheels
    # there, in the repository's root:
    python3 tools/gpu_course.py run --wheels .gpu-wheels --out "$OUT"

`run` installs cnnkit and the missing packages from the wheels (never from the network), then
runs every lesson in notebooks/ and every solution in solutions/ under nbval with
CNNKIT_PROFILE=gpu and KERAS_BACKEND=jax, on the offline data. conftest.py writes each cell's
outcome, seconds and printed output to a JSON-lines file (CNNKIT_REPORT); the report takes
from it, per notebook, whether every cell passed, the seconds, and what the cells with an
`assert` printed. On a machine without a GPU, `run --profile smoke` checks the same path.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections import defaultdict
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# What that machine's image lacks (tools/device notes list what it has: JAX, PyTorch, NumPy,
# matplotlib, scikit-learn, scikit-image, pytest, pytest-xdist ...): Keras and the notebook
# runner, each without its dependencies so that nothing the image has is replaced.
MISSING = ["keras", "namex", "optree", "nbval", "nbclient", "nbformat", "fastjsonschema",
           "jsonschema", "jsonschema-specifications", "referencing", "rpds-py", "ipykernel",
           "ipython", "ipython-pygments-lexers", "jedi", "parso", "decorator", "prompt-toolkit",
           "wcwidth", "stack-data", "asttokens", "executing", "pure-eval", "matplotlib-inline",
           "traitlets", "jupyter-client", "jupyter-core", "platformdirs", "pyzmq", "tornado",
           "comm", "debugpy", "nest-asyncio", "nest-asyncio2", "pexpect", "ptyprocess", "pydot"]
VERSIONS = ["keras", "jax", "jaxlib", "torch", "numpy", "nbval"]


def download_wheels(folder: Path, python_version: str) -> int:
    """The MISSING wheels for CPython `python_version` on x86-64 Linux, into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--python-version", python_version, "--platform", "manylinux2014_x86_64",
               "--platform", "manylinux_2_28_x86_64", "-d", str(folder), *MISSING]
    return subprocess.call(command)


def install(wheels: Path) -> None:
    """cnnkit (editable) and the MISSING packages from `wheels` alone."""
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--find-links", str(wheels)]
    subprocess.check_call([*pip, "--no-deps", *MISSING])
    subprocess.check_call([*pip, "--no-build-isolation", "--no-deps", "-e", str(ROOT)])
    # Says what is still missing, if anything, before a notebook fails on it.
    subprocess.call([sys.executable, "-m", "pip", "check"])


def gpu_name() -> str:
    try:
        done = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version",
                               "--format=csv,noheader"], capture_output=True, text=True,
                              timeout=30)
        return done.stdout.strip() or "no GPU (nvidia-smi printed nothing)"
    except (OSError, subprocess.TimeoutExpired):
        return "no GPU (nvidia-smi not found)"


def versions() -> dict:
    found = {"python": platform.python_version()}
    for name in VERSIONS:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    try:
        found["cnnkit commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                                                capture_output=True, text=True).stdout.strip()
    except OSError:
        pass
    return found


def summarise(lines, notebooks) -> list[dict]:
    """One row per notebook from the cells' JSON lines: passed (every cell ran and passed, and
    none is missing), seconds (its cells together) and what its asserting cells printed."""
    cells = defaultdict(list)
    for line in lines:
        cells[line["notebook"]].append(line)
    rows = []
    for notebook in notebooks:
        ran = sorted(cells.get(notebook, []), key=lambda c: c["cell"])
        failed = [c["cell"] for c in ran if c["outcome"] != "passed"]
        figures = [text.strip() for c in ran if c["asserts"] and c["outcome"] == "passed"
                   for text in [c["stdout"]] if text.strip()]
        rows.append({"notebook": notebook, "passed": bool(ran) and not failed,
                     "cells": len(ran), "failed_cells": failed,
                     "seconds": round(sum(c["seconds"] for c in ran), 1), "figures": figures})
    return rows


def markdown(rows, header: dict, wall: float) -> str:
    out = ["# The course under nbval", ""]
    out += [f"- {key}: {value}" for key, value in header.items()]
    passed = sum(r["passed"] for r in rows)
    out += [f"- wall time: {wall:.0f} s for {len(rows)} notebooks; {passed} passed", "",
            "| notebook | result | seconds | what its asserting cells printed |",
            "| --- | --- | ---: | --- |"]
    for r in rows:
        result = "pass" if r["passed"] else (f"FAIL (cells {r['failed_cells']})"
                                             if r["cells"] else "FAIL (did not run)")
        shown = " / ".join(line for text in r["figures"] for line in text.splitlines()[:3])
        out.append(f"| {r['notebook']} | {result} | {r['seconds']:.1f} | "
                   f"{shown[:600].replace('|', '/')} |")
    return "\n".join(out) + "\n"


def run(args) -> int:
    if args.wheels:
        install(Path(args.wheels))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cells_file = out / "cells.jsonl"
    cells_file.unlink(missing_ok=True)
    notebooks = [str(p.relative_to(ROOT)) for p in args.paths] if args.paths else [
        str(p.relative_to(ROOT)) for folder in ("notebooks", "solutions")
        for p in sorted((ROOT / folder).glob("*.ipynb"))]
    env = {**os.environ, "CNNKIT_PROFILE": args.profile, "KERAS_BACKEND": args.backend,
           "CNNKIT_OFFLINE": "1", "CNNKIT_REPORT": str(cells_file.resolve()),
           "MPLBACKEND": "Agg", "PYTHONUNBUFFERED": "1",
           # Each worker's JAX takes its share of the GPU's memory, not 75% each.
           "XLA_PYTHON_CLIENT_MEM_FRACTION": f"{0.9 / max(args.workers, 1):.2f}"}
    command = [sys.executable, "-m", "pytest", "-o", "addopts=", "-p", "no:cacheprovider",
               "--nbval-lax", "--nbval-current-env", f"--nbval-cell-timeout={args.cell_timeout}",
               "-q", "-rf", *(["-n", str(args.workers), "--dist", "loadscope"]
                              if args.workers > 1 else ["-p", "no:xdist"]), *notebooks]
    print(" ".join(command), flush=True)
    start = time.perf_counter()
    code = subprocess.call(command, cwd=ROOT, env=env)
    wall = time.perf_counter() - start
    lines = [json.loads(line) for line in cells_file.read_text().splitlines()] \
        if cells_file.exists() else []
    rows = summarise(lines, notebooks)
    header = {"GPU": gpu_name(), "profile": args.profile, "backend": args.backend,
              "workers": args.workers, **versions()}
    (out / "gpu_course.json").write_text(json.dumps({**header, "wall_s": round(wall, 1),
                                                     "pytest_exit": code, "notebooks": rows},
                                                    indent=1))
    report = markdown(rows, header, wall)
    (out / "gpu_course.md").write_text(report)
    print(report)
    return code if code else (0 if all(r["passed"] for r in rows) else 1)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("wheels", help="download the wheels the GPU machine lacks")
    w.add_argument("folder", type=Path)
    w.add_argument("--python-version", default="3.12")
    r = sub.add_parser("run", help="install from wheels, run the course, write the report")
    r.add_argument("paths", nargs="*", type=lambda p: Path(p).resolve(),
                   help="notebooks (default: notebooks/ and solutions/)")
    r.add_argument("--wheels", help="install cnnkit and the missing packages from this folder")
    r.add_argument("--out", default="gpu-course-report")
    r.add_argument("--profile", default="gpu")
    r.add_argument("--backend", default="jax")
    r.add_argument("--workers", type=int, default=4)
    r.add_argument("--cell-timeout", type=int, default=600)
    args = parser.parse_args(argv)
    if args.command == "wheels":
        return download_wheels(args.folder, args.python_version)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
