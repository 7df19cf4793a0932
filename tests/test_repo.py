"""The repository keeps its promises: README commands, lesson layout, notebook hygiene, declared
dependencies."""

import ast
import json
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

from cnnkit.course import setup_cell

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
ALL_NOTEBOOKS = NOTEBOOKS + sorted((ROOT / "solutions").glob("*.ipynb")) + sorted(
    (ROOT / "exercises").glob("*.ipynb"))
# Lesson numbers and names fixed by the course outline (COURSE.md in the steering folder).
COURSE = ["00_start_here", "01_epochs_iterations", "02_building_blocks", "03_optimizers",
          "04_transfer_learning", "05_data_augmentation", "06_classic_cnns", "07_inception",
          "08_resnet", "09_dense_connections", "10_channel_attention", "11_efficient_design",
          "12_reparameterization", "13_segmentation", "14_detection_blocks",
          "15_what_networks_learn", "16_fast_training", "17_scaling_out"]


def readme_commands():
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```(?:bash|sh)\n(.*?)\n```", text, re.DOTALL)


def test_readme_opens_with_the_course_command_and_the_test_command():
    text = (ROOT / "README.md").read_text()
    first_blocks = readme_commands()[:2]
    course, tests = first_blocks
    assert text.index("```") < text.index("\n## "), "the commands come before any section"
    assert "pip install -e \".[lab]\"" in course
    assert "jupyter lab --ServerApp.root_dir=. notebooks/00_start_here.ipynb" in course
    assert "pip install -e \".[test]\"" in tests and "pytest" in tests
    for command in first_blocks:
        assert command.startswith("python3 -m venv .venv && ") and "\n" not in command


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "CNNKIT_PROFILE=smoke" in ci and "README.md" in ci
    assert "rm -rf .venv" in ci  # a fresh environment every run


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_lessons_keep_the_course_numbers(path):
    assert path.stem in COURSE


def cells(path):
    return json.loads(path.read_text())["cells"]


def source(cell):
    return "".join(cell["source"])


@pytest.mark.parametrize("path", ALL_NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_notebook_starts_with_badge_and_setup_cell(path):
    """One set-up cell, identical everywhere, and a badge, both for pyproject.toml's repository
    (`python tools/refresh_notebooks.py --setup-only` writes them)."""
    repository = setup_cell.repository(ROOT)
    first_md = next(c for c in cells(path) if c["cell_type"] == "markdown")
    assert setup_cell.badge(repository, path.parent.name, path.name) in source(first_md)
    assert source(next(c for c in cells(path) if c["cell_type"] == "code")) == (
        setup_cell.render(repository))


def test_the_repository_has_one_home_and_the_cell_follows_it(tmp_path):
    assert setup_cell.repository(ROOT) == "cnnkit-course/cnnkit"
    (tmp_path / "pyproject.toml").write_text('[project.urls]\nRepository = '
                                             '"https://github.com/my-uni/cnn-lab"\n')
    mine = setup_cell.repository(tmp_path)
    assert mine == "my-uni/cnn-lab"
    assert "cnnkit @ git+https://github.com/my-uni/cnn-lab" in setup_cell.render(mine)
    assert setup_cell.badge(mine, "solutions", "01_x.ipynb").endswith(
        "github/my-uni/cnn-lab/blob/main/exercises/01_x.ipynb")
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    with pytest.raises(ValueError, match="needs `Repository"):
        setup_cell.repository(tmp_path)


def test_the_setup_cell_never_upgrades_keras_or_tensorflow_and_runs_without_tensorflow():
    cell = setup_cell.render("o/n")
    install = cell[cell.index("pip"):cell.index("check=True")]
    assert '"--no-deps"' in install and "tensorflow" not in install and "keras" not in install
    assert "version(" not in cell  # importlib.metadata.version raises for a missing package
    compile(cell, "setup", "exec")


STORED = NOTEBOOKS + sorted((ROOT / "solutions").glob("*.ipynb"))  # stored executed
EXERCISES = sorted((ROOT / "exercises").glob("*.ipynb"))  # stored as a learner gets them
# Each stored notebook, and all of them together, must stay quick to clone and to preview.
MAX_NOTEBOOK_BYTES, MAX_STORED_BYTES = 1_500_000, 15_000_000


def draws(path):
    """Whether a notebook makes a figure: matplotlib, or one of cnnkit.course.plots' plot_ functions."""
    return any(re.search(r"\bplt\.|\bplot_\w+\(", source(c))
               for c in cells(path) if c["cell_type"] == "code")


@pytest.mark.parametrize("path", STORED, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_notebook_is_stored_executed_in_the_cpu_profile_with_its_figures(path):
    """tools/refresh_notebooks.py ran every cell in order, kept the outputs but stderr, and
    recorded how; a notebook that draws shows its figures."""
    notebook = json.loads(path.read_text())
    assert path.stat().st_size <= MAX_NOTEBOOK_BYTES
    assert notebook["metadata"]["cnnkit"]["profile"] == "cpu"
    code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    assert [c["execution_count"] for c in code] == list(range(1, len(code) + 1))
    for cell in code:
        # nbval's cell tag marks a checked cell; a comment in the code would be read by learners.
        assert "NBVAL_" not in source(cell), f"use nbval's cell tag: {source(cell)[:60]}"
        assert all(o.get("name") != "stderr" and o["output_type"] != "error"
                   for o in cell["outputs"]), source(cell)[:60]
    images = sum("image/png" in o.get("data", {}) for c in code for o in c["outputs"])
    assert images >= 1 if draws(path) else True, "a notebook that draws stores its figures"


def test_stored_notebooks_together_stay_small():
    assert sum(p.stat().st_size for p in STORED + EXERCISES) <= MAX_STORED_BYTES


@pytest.mark.parametrize("path", EXERCISES, ids=lambda p: p.stem)
def test_exercise_is_stored_without_outputs(path):
    notebook = json.loads(path.read_text())
    assert "cnnkit" not in notebook["metadata"]
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None
            assert "NBVAL_" not in source(cell)


@pytest.mark.parametrize("path", NOTEBOOKS + sorted((ROOT / "solutions").glob("*.ipynb")),
                         ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_notebook_has_assert_checks(path):
    assert any("assert " in source(c) for c in cells(path) if c["cell_type"] == "code")


def imported_modules(code):
    tree = ast.parse(code)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            yield node.module.split(".")[0]


def declared_distributions():
    text = (ROOT / "pyproject.toml").read_text()
    names = re.findall(r'^\s*"([A-Za-z0-9_.\-]+)\s*[<>=!~;\[]', text, re.MULTILINE)
    return {n.lower().replace("_", "-") for n in names}


def test_everything_the_kit_and_its_tests_import_is_declared_in_pyproject():
    sources = [p.read_text() for p in (ROOT / "cnnkit").rglob("*.py")]
    sources += [p.read_text() for p in (ROOT / "tests").glob("*.py")]
    sources += [(ROOT / "conftest.py").read_text()]
    for path in ALL_NOTEBOOKS:
        sources += ["\n".join(line for line in source(c).splitlines() if not line.startswith("%"))
                    for c in cells(path) if c["cell_type"] == "code"]
    modules = {m for code in sources for m in imported_modules(code)}
    local = {"cnnkit", "conftest"} | {p.stem for p in (ROOT / "tests").glob("*.py")} \
        | {p.stem for p in (ROOT / "tools").glob("*.py")}  # tests/test_backends.py runs a tool
    # Every backend is declared: tensorflow, jax and torch are extras of their own.
    optional_backends = set()
    owners = packages_distributions()
    declared = declared_distributions()
    missing = {}
    for module in sorted(modules - local - optional_backends - set(sys.stdlib_module_names)):
        dists = {d.lower().replace("_", "-") for d in owners.get(module, [module])}
        if not dists & declared:
            missing[module] = sorted(dists)
    assert missing == {}, f"imported but not declared in pyproject.toml: {missing}"


def test_tensorflow_is_imported_only_by_cnnkit_data_and_the_backend_switch():
    # Models, training and grading run on the JAX and PyTorch backends too, without TensorFlow.
    importers = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "cnnkit").rglob("*.py")
                       if {"tensorflow", "tensorflow_datasets"} & set(imported_modules(p.read_text())))
    # cnnkit/backend.py imports it only when Keras runs on TensorFlow (and JAX or torch otherwise);
    # cnnkit/data/: classification.py only on its online path (tf.data, tensorflow-datasets) and
    # segmentation.py only inside its Oxford-IIIT Pet loader (masks, which classification.py's
    # image-label loader drops), so its metric and generated shapes need no TensorFlow;
    # cnnkit/course/distribute.py only in the parts that run on tf.distribute (engine "tensorflow");
    # cnnkit/bench.py only to ask a TensorFlow backend for its GPU's name (the peak table's key).
    assert importers == ["cnnkit/backend.py", "cnnkit/bench.py", "cnnkit/course/distribute.py",
                         "cnnkit/data/classification.py", "cnnkit/data/segmentation.py"]
