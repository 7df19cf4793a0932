"""nbgrader, run as an instructor runs it: the README's commands on a course made from solutions/.

One course, one assignment ("lab") holding every solution notebook, three students (alice goes
through nbgrader's exchange as this machine's user; the others' files are dropped into submitted/):
- alice submits the solutions: full marks on every notebook, and no cell errs;
- bob submits two notebooks of the release untouched: 0 on each of their grade cells, each saying
  "not implemented yet", and 0 for the notebooks he left out (nbgrader's rule); that every
  untouched exercise fails each grade cell so is checked without a kernel, in
  tests/test_exercises.py (all 17 here were 15 more kernels: this fixture took 435 s of CI
  before, 374 s after, on machines whose speed drifts by some 10%, 2026-12-03);
- carol submits one typical wrong answer per graded function: 0 on that cell, with the grader's
  reason in its output.
`nbgrader validate` passes every solution and fails every untouched release. No grade cell has
stderr output: the kernel runs with TensorFlow's logging as a user has it (TF_CPP_MIN_LOG_LEVEL
unset), on this machine without a GPU.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest

from cnnkit.course.exercises import BEGIN, END

pytest.importorskip("nbgrader", reason="nbgrader is in the test extra: pip install -e '.[test]'")

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))
VALIDATED = [SOLUTIONS[0], SOLUTIONS[-1]]  # by `nbgrader validate` (the first and the newest)
# bob's submission: answers that are functions and a value (02's prediction), and the newest
UNTOUCHED = [ROOT / "solutions" / "02_building_blocks.ipynb", SOLUTIONS[-1]]
BIN = Path(sys.executable).parent  # nbgrader from the environment that has cnnkit and its kernel

# One typical mistake per graded function: (text of the solution, what carol wrote instead).
WRONG = {
    "iterations_per_epoch": ("return math.ceil(n_samples / batch_size)",
                             "return n_samples // batch_size"),
    "epochs_for_iterations": ("return iterations / math.ceil(n_samples / batch_size)",
                              "return iterations * batch_size / n_samples"),
    "train_for_iterations": ("order, position = rng.permutation(len(x)), 0",
                             "order, position = np.arange(len(x)), 0"),
    "receptive_field": ("field += (kernel - 1) * dilation * jump", "field += (kernel - 1) * jump"),
    "conv_params": ("(c_in // groups)", "c_in"),
    "report": ('"final_loss": float(rosenbrock(*path[-1]))',
               '"final_loss": float(rosenbrock(*path[-2]))'),
    "design": ('design = {"alpha": 0.5, "resolution": 224}',
               'design = {"alpha": 0.75, "resolution": 224}'),
    "bottleneck_block": ("if strides != 1 or x.shape[-1] != filters:", "if strides != 1:"),
    "predicted_shapes": ("(11, 11, 32)", "(10, 10, 32)"),
    "momentum_step": ("velocity = momentum * velocity - learning_rate * g\n"
                      "    return w + velocity, velocity",
                      "velocity = momentum * velocity + g\n"
                      "    return w - learning_rate * velocity, velocity"),
    "rmsprop_step": ("rho * mean_square + (1 - rho) * g ** 2", "rho * mean_square + g ** 2"),
    "freeze_all_but_last": ("layer.trainable = i >= first_trainable",
                            "layer.trainable = i > first_trainable"),
    "fold_bias_into_bn": ("return moving_mean - bias", "return moving_mean + bias"),
    "new_classifier": ("base.trainable = False", "base.trainable = True"),
    "random_crop": ("image.shape[0] - height + 1", "image.shape[0] - height"),
    "pca_color_shift": ("eigenvectors @ (alpha * eigenvalues)",
                        "eigenvectors.T @ (alpha * eigenvalues)"),
    "ten_crop_views": ("crop[:, ::-1]", "crop[::-1]"),
    "conv_output_size": ("(n + 2 * padding - kernel)", "(n + padding - kernel)"),
    "stack_vs_large_kernel": ("field = 1 + 2 * n_convs", "field = 3 * n_convs"),
    "dense_params_after_flatten": ("* channels * units + units", "* channels * units"),
    "inception_module_params": ("n1x1 + n3x3 + n5x5 + pool_proj", "n1x1 + n3x3 + n5x5"),
    "factorized_params": ("2 * n * c * c", "n * c * c"),
    "separable_params": ("mid = c_in * depth_multiplier", "mid = c_in"),
    "residual_block": ("return layers.ReLU()(layers.Add()([shortcut, y]))",
                       "return layers.Add()([shortcut, y])"),
    "bottleneck_params": ("(width // groups)", "width"),
    "dense_block_channels": ("range(1, layers + 1)", "range(layers)"),
    "dense_layer_params": ("return 2 * c_in + c_in * width + 2 * width + 3 * 3 * width * k",
                           "return c_in * width + 3 * 3 * width * k"),
    "transition_output": ("return height // 2, width // 2,", "return height, width,"),
    "se_params": ("channels * hidden + hidden + hidden * channels + channels",
                  "channels * hidden + hidden * channels"),
    "squeeze_excite_numpy": ("z = x.mean(axis=(1, 2))", "z = x.max(axis=(1, 2))"),
    "sk_select": ("e.sum(axis=1, keepdims=True)", "e.sum(axis=-1, keepdims=True)"),
    "channel_shuffle": ("reshape(*rest, groups, channels // groups)",
                        "reshape(*rest, channels // groups, groups)"),
    "ghost_module_params": ("+ 2 * (intrinsic + ghosts)", ""),
    "round_filters": ("return rounded + 8 if rounded < 0.9 * value else rounded",
                      "return rounded"),
    "fuse_conv_bn": ("beta - mean * scale", "beta - mean"),
    "pad_to_3x3": ("((1, 1), (1, 1), (0, 0), (0, 0))", "((0, 2), (0, 2), (0, 0), (0, 0))"),
    "identity_as_3x3": ("kernel[1, 1, np.arange(channels), np.arange(channels)] = 1.0",
                        "kernel[1, 1] = 1.0"),
    "transposed_output_size": ('if padding == "same":', 'if padding == "full":'),
    "center_crop": ("top, left = (x.shape[1] - h) // 2, (x.shape[2] - w) // 2",
                    "top, left = 0, 0"),
    "iou_per_class": ("iou = np.full(classes, np.nan)", "iou = np.zeros(classes)"),
    "encode_box": ("np.log(gw / pw), np.log(gh / ph)", "gw / pw, gh / ph"),
    "decode_box": ("pw * np.exp(deltas[:, 2]), ph * np.exp(deltas[:, 3])",
                   "pw * deltas[:, 2], ph * deltas[:, 3]"),
    "iou": ("inter = np.maximum(width, 0) * np.maximum(height, 0)", "inter = width * height"),
    "global_batch_and_steps": ("global_batch = per_replica_batch * replicas",
                               "global_batch = per_replica_batch"),
    "lr_at": ("target = base_lr * global_batch / base_batch", "target = base_lr"),
    "grad_cam": ("heat = np.maximum(weighted, 0)", "heat = weighted"),
    "whitening_weights": ("values, vectors = values[::-1], vectors[:, ::-1]",
                          "values, vectors = values, vectors"),
    "lr_factor": ("return 0.2 + 0.8 * step / warmup", "return step / warmup"),
    "precision_recall": ("tp / len(truths)", "tp / len(boxes)"),
    "average_precision": ("p = np.maximum.accumulate(p[::-1])[::-1]", "p = p"),
}

CONFIG = """\
c = get_config()  # noqa: F821
c.CourseDirectory.course_id = "cnnkit"
c.CourseDirectory.root = {root!r}
c.Exchange.root = {exchange!r}
c.ExecutePreprocessor.timeout = 300
"""

# A kernel that fails to start is the machine's fault, not a verdict: jupyter_client picks a free
# TCP port, frees it and lets the kernel bind it, and under CI's parallel kernels (autograde,
# validate, nbval on the other worker) another process can take it first. nbgrader 0.9.6 declares
# `execute_retries` but never reads it, so the test runs such a command again; autograde then
# grades only the submissions it could not grade.
KERNEL_START_FAILED = ("Kernel died before replying to kernel_info", "Kernel didn't respond in")


def nbgrader(*args, cwd, check=True, tries=3):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    # As after `source .venv/bin/activate`: nbgrader runs alembic from PATH to set up its database.
    env.update(CNNKIT_PROFILE="smoke", CNNKIT_OFFLINE="1",
               PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    for _ in range(tries):
        done = subprocess.run([str(BIN / "nbgrader"), *args], cwd=cwd, env=env, text=True,
                              capture_output=True, timeout=1800)
        if not any(m in done.stdout + done.stderr for m in KERNEL_START_FAILED):
            break
    if check:
        assert done.returncode == 0, f"nbgrader {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done


def answered(release, solution, wrong=False):
    """The release notebook with each answer cell as the solution wrote it (or carol's mistake)."""
    nb, sol = nbformat.read(release, as_version=4), nbformat.read(solution, as_version=4)
    answers = {c.metadata["nbgrader"]["grade_id"]: c.source for c in sol.cells
               if c.metadata.get("nbgrader", {}).get("solution")}
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id not in answers:
            continue
        source = re.sub(rf"[ \t]*({re.escape(BEGIN)}|{re.escape(END)})[^\n]*\n?", "",
                        answers[grade_id])
        if wrong and cell.cell_type == "code":
            # the function it defines, or else the value it assigns last (a prediction, a report)
            defined = re.search(r"def (\w+)\(", source)
            name = defined.group(1) if defined else re.findall(r"^(\w+) = ", source, re.M)[-1]
            old, new = WRONG[name]
            assert old in source, f"carol's mistake for {name} no longer matches the solution"
            source = source.replace(old, new)
        cell.source = source
    return nb


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """A course graded end to end by the README's commands; returns its folders."""
    tmp = tmp_path_factory.mktemp("nbgrader")
    root, exchange = tmp / "course", tmp / "exchange"
    (root / "source" / "lab").mkdir(parents=True)
    exchange.mkdir()
    (root / "nbgrader_config.py").write_text(CONFIG.format(root=str(root),
                                                           exchange=str(exchange)))
    for path in SOLUTIONS:
        shutil.copy(path, root / "source" / "lab" / path.name)
    nbgrader("generate_assignment", "lab", cwd=root)
    nbgrader("release_assignment", "lab", cwd=root)
    # alice is this machine's user: she fetches and submits through the exchange, and the
    # instructor collects. bob's and carol's files go straight into submitted/, as files
    # downloaded from a learning-management system do.
    from nbgrader.utils import get_username

    students = {"alice": get_username(), "bob": "bob", "carol": "carol"}
    for student, student_id in students.items():
        home = tmp / student
        home.mkdir()
        (home / "nbgrader_config.py").write_text(CONFIG.format(root=str(home),
                                                               exchange=str(exchange)))
        nbgrader("fetch_assignment", "lab", cwd=home)
        for path in SOLUTIONS:
            mine = home / "lab" / path.name
            if student != "bob":
                nbformat.write(answered(mine, path, wrong=student == "carol"), mine)
        if student == "alice":
            nbgrader("submit", "lab", cwd=home)
        else:
            kept = UNTOUCHED if student == "bob" else SOLUTIONS
            shutil.copytree(home / "lab", root / "submitted" / student_id / "lab",
                            ignore=lambda _, names: [n for n in names if n.endswith(".ipynb")
                                                     and n not in {p.name for p in kept}])
    nbgrader("collect", "lab", cwd=root)
    # Validation reads notebooks only, so it runs beside the autograder: one `nbgrader validate`
    # over two solutions, one over the same two untouched releases. Validating runs each
    # notebook, like autograding; two are enough to show the command's verdicts (autograde
    # grades every notebook), and all 17 twice cost CI about two minutes.
    def validate(folder):
        return nbgrader("validate", *(str(folder / p.name) for p in VALIDATED), cwd=root,
                        check=False)

    with ThreadPoolExecutor(2) as pool:
        validations = pool.submit(lambda: {"solution": validate(root / "source" / "lab"),
                                           "release": validate(root / "release" / "lab")})
        nbgrader("autograde", "lab", "--create", cwd=root)
        validated = validations.result()
    nbgrader("generate_feedback", "lab", cwd=root)
    nbgrader("export", cwd=root)
    return {"root": root, "validated": validated, "ids": students}


def autograded(course, student):
    """The notebooks nbgrader executed for `student`, by name."""
    folder = course["root"] / "autograded" / course["ids"][student] / "lab"
    return {p.stem: nbformat.read(p, as_version=4) for p in sorted(folder.glob("*.ipynb"))}


def grade_cells(nb):
    return [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]


def checks_output(cell):
    return "nbval-check-output" in cell.metadata.get("tags", [])


def shown(cell):
    """What a checked cell shows: its stdout, consecutive writes joined as a reader sees them,
    and its plain-text results (stderr is never compared)."""
    shown = []
    for o in cell.outputs:
        if o.output_type == "stream" and o.name == "stdout":
            if shown and shown[-1][0] == "stdout":
                shown[-1] = ("stdout", shown[-1][1] + o.text)
            else:
                shown.append(("stdout", o.text))
        elif o.output_type == "execute_result":
            shown.append(("result", o.data.get("text/plain")))
    return shown


def printed(cell):
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


def scores(course, student):
    from nbgrader.api import Gradebook

    student = course["ids"][student]
    with Gradebook(f"sqlite:///{course['root'] / 'gradebook.db'}") as gradebook:
        submission = gradebook.find_submission("lab", student)
        return {nb.name: ({g.name: g.score for g in nb.grades}, nb.score, nb.max_score)
                for nb in submission.notebooks}


def test_the_release_is_exercises(course):
    for path in SOLUTIONS:
        release = nbformat.read(course["root"] / "release" / "lab" / path.name, as_version=4)
        exercise = nbformat.read(ROOT / "exercises" / path.name, as_version=4)
        assert [(c.cell_type, c.source) for c in release.cells] == [
            (c.cell_type, c.source) for c in exercise.cells], path.name


def test_solutions_get_full_marks_and_no_cell_errs(course):
    got = scores(course, "alice")
    assert sorted(got) == [p.stem for p in SOLUTIONS]
    for name, (_, score, max_score) in got.items():
        assert max_score > 0 and score == max_score, (name, got[name])
        nb = autograded(course, "alice")[name]
        for cell in nb.cells:
            assert not [o for o in getattr(cell, "outputs", []) if o.output_type == "error"], (
                name, cell.source[:200])
        for cell in grade_cells(nb):
            assert printed(cell).startswith("✅ PASS"), (name, cell.source)
        # nbval's checked cells: the same output as stored (nbval itself runs notebooks/ only).
        stored = nbformat.read(ROOT / "solutions" / f"{name}.ipynb", as_version=4)
        checked = [c for c in stored.cells if c.cell_type == "code" and checks_output(c)]
        ran = {c.source: c for c in nb.cells if c.cell_type == "code"}
        for cell in checked:
            assert shown(ran[cell.source]) == shown(cell), (name, cell.source[:200])


def test_untouched_releases_get_zero_on_every_grade_cell(course):
    got = scores(course, "bob")
    assert sorted(got) == [p.stem for p in SOLUTIONS]  # those left out are there too, with 0
    for name, (cells, score, _) in got.items():
        assert score == 0 and set(cells.values()) == {0}, (name, cells)
    assert sorted(autograded(course, "bob")) == sorted(p.stem for p in UNTOUCHED)
    for name, nb in autograded(course, "bob").items():
        for cell in grade_cells(nb):
            assert "❌ FAIL" in printed(cell) and "not implemented yet" in printed(cell), name


def test_each_wrong_answer_scores_zero_with_the_graders_reason(course):
    for name, (cells, score, _) in scores(course, "carol").items():
        assert score == 0 and set(cells.values()) == {0}, (name, cells)
        nb = autograded(course, "carol")[name]
        for cell in grade_cells(nb):
            verdict = re.search(r"❌ FAIL  (\w+): (.+)", printed(cell))
            assert verdict, (name, cell.source, printed(cell))
            call = rf"grading\.check_{verdict.group(1)}\(\w+\)"  # the answer's own name
            assert re.fullmatch(call, cell.source.strip()), (name, cell.source)
            reason = verdict.group(2)
            assert "not implemented" not in reason and "your code raised" not in reason, reason


def test_no_grade_cell_prints_to_stderr(course):
    for student in ("alice", "bob", "carol"):
        for name, nb in autograded(course, student).items():
            for cell in grade_cells(nb):
                stderr = [o.text for o in cell.outputs if o.get("name") == "stderr"]
                assert not stderr, (student, name, cell.source, stderr)


def test_validate_passes_solutions_and_fails_untouched_releases(course):
    solution, release = course["validated"]["solution"], course["validated"]["release"]
    n = len(VALIDATED)
    assert solution.stdout.count("Success! Your notebook passes all the tests.") == n, (
        solution.stdout[-2000:])
    assert "VALIDATION FAILED" not in solution.stdout.upper()
    assert release.stdout.upper().count("VALIDATION FAILED") == n, release.stdout[-2000:]
    assert "Success!" not in release.stdout


def test_feedback_and_export(course):
    root = course["root"]
    for student in course["ids"].values():
        submitted = UNTOUCHED if student == "bob" else SOLUTIONS
        assert sorted(p.stem for p in (root / "feedback" / student / "lab").glob("*.html")) == [
            p.stem for p in submitted]
    with open(root / "grades.csv", newline="") as f:
        rows = {row["student_id"]: row for row in csv.DictReader(f)}
    points = sum(len(grade_cells(nbformat.read(p, as_version=4))) for p in SOLUTIONS)
    alice = course["ids"]["alice"]
    assert float(rows[alice]["score"]) == float(rows[alice]["max_score"]) == points
    assert float(rows["bob"]["score"]) == float(rows["carol"]["score"]) == 0
