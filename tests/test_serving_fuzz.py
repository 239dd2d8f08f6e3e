"""Fuzzing every endpoint from the server's own OpenAPI document (/docs.json) with schemathesis:
no generated request may get a 5xx. Slow (about a minute): `pytest -m slow tests/test_serving_fuzz.py`."""
from __future__ import annotations

import re
import shutil
import subprocess

import pytest

pytest.importorskip("bentoml")

from tart.serving.launch import LocalServer  # noqa: E402
from tests.test_serving import LIMITS, head_dir  # noqa: E402,F401  (the head fixture)

pytestmark = pytest.mark.slow


@pytest.mark.skipif(shutil.which("schemathesis") is None, reason="pip install 'schemathesis>=4,<5'")
def test_fuzz_finds_no_server_error(head_dir, tmp_path):  # noqa: F811
    env = {"TART_CHECKPOINT": head_dir, "TART_EMBEDDER": "minilm-l6", "TART_CONFIG": "",
           "TART_STORE_PATH": str(tmp_path / "tasks.sqlite3"), **LIMITS}
    with LocalServer(env, log_path=tmp_path / "server.log") as server:
        run = subprocess.run(["schemathesis", "run", server.url + "/docs.json", "--checks", "not_a_server_error",
                              "--max-examples", "60", "--seed", "1", "--request-timeout", "60",
                              "--continue-on-failure"], capture_output=True, text=True, timeout=900,
                             cwd=tmp_path)  # its own files go there, not into the repository
        log = server.log_path.read_text(errors="replace")
    assert run.returncode == 0, run.stdout[-5000:]
    assert not re.findall(r"status=5\d\d", log), "the server answered 5xx; see " + str(server.log_path)
