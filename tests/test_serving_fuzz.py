"""Fuzzing every endpoint from the server's own OpenAPI document (/docs.json) with schemathesis, all
checks (no 5xx, every status and body as documented, invalid data refused, valid data accepted where
the document says so). Slow (minutes): `pytest -m slow tests/test_serving_fuzz.py`; needs the `fuzz`
extra (`pip install -e '.[fuzz]'`)."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

pytest.importorskip("bentoml")

from local_server import LocalServer  # noqa: E402

from tests.test_serving import LIMITS, head_dir  # noqa: E402,F401  (the head fixture)

pytestmark = pytest.mark.slow
CONFIG = Path(__file__).with_suffix(".toml")  # what the document cannot say (see the file)


def fuzz(url: str, cwd, max_examples: int = 40, seed: int = 1) -> subprocess.CompletedProcess:
    return subprocess.run(["schemathesis", "--config-file", str(CONFIG), "run", url + "/docs.json", "--checks", "all", "--max-examples",
                           str(max_examples), "--seed", str(seed), "--request-timeout", "60", "--continue-on-failure",
                           "--workers", "1", "--no-color"],
                          capture_output=True, text=True, timeout=1500, cwd=cwd)  # its files go to cwd


@pytest.mark.skipif(shutil.which("schemathesis") is None, reason="pip install 'schemathesis>=4,<5'")
def test_fuzz_all_checks_pass(head_dir, tmp_path):  # noqa: F811
    env = {"TART_CHECKPOINT": head_dir, "TART_EMBEDDER": "minilm-l6", "TART_CONFIG": "",
           "TART_STORE_PATH": str(tmp_path / "tasks.sqlite3"), **LIMITS}
    with LocalServer(env, log_path=tmp_path / "server.log") as server:
        run = fuzz(server.url, tmp_path)
        log = server.log_path.read_text(errors="replace")
    assert run.returncode == 0, run.stdout[-6000:]
    assert not re.findall(r"status=5\d\d", log), "the server answered 5xx; see " + str(server.log_path)
    assert "Traceback" not in log, "the server logged a traceback; see " + str(server.log_path)
