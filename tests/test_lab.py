"""README command 1 opens JupyterLab on the whole course: the server it starts serves the
repository's root, so lessons, exercises and solutions are all in reach, and lesson 00 opens."""

import json
import shlex
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "cnnkit-test"


def readme_lab_command():
    """The `jupyter lab ...` part of README.md's first shell block, run from this environment."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("```bash\n", 1)[1].split("```", 1)[0].strip()
    command = shlex.split(block.split("&&")[-1])
    assert command[0] == ".venv/bin/jupyter" and command[1] == "lab", command
    return [str(Path(sys.executable).parent / "jupyter"), *command[1:]]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url):
    request = urllib.request.Request(url, headers={"Authorization": f"token {TOKEN}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, response.read()


def test_readme_command_serves_the_course_and_opens_lesson_00(tmp_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        readme_lab_command() + [f"--port={port}", f"--IdentityProvider.token={TOKEN}",
                                "--no-browser"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**__import__("os").environ, "JUPYTER_RUNTIME_DIR": str(tmp_path)})
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                status, body = get(f"{base}/api/contents")
                break
            except (urllib.error.URLError, ConnectionError):
                assert server.poll() is None, "the server exited"
                assert time.monotonic() < deadline, "the server did not answer within 90 s"
                time.sleep(0.5)
        names = {item["name"] for item in json.loads(body)["content"]}
        assert {"notebooks", "exercises", "solutions"} <= names
        for folder in ("exercises", "solutions"):
            status, body = get(f"{base}/api/contents/{folder}")
            assert status == 200
            assert "01_epochs_iterations.ipynb" in {i["name"] for i in json.loads(body)["content"]}
        status, _ = get(f"{base}/lab/tree/notebooks/00_start_here.ipynb")
        assert status == 200
    finally:
        server.terminate()
        server.wait(timeout=30)
