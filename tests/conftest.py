import os
from pathlib import Path

# Tests never reach the hub, and write caches inside the repository (git-ignored), nowhere else.
_REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TART_CACHE_DIR", str(_REPO / ".cache" / "tart"))
os.environ.setdefault("BENTOML_HOME", str(_REPO / ".cache" / "bentoml"))
os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
# the task store's default is the user data folder: tests use a temporary one
os.environ.setdefault("TART_STORE_PATH", os.path.join(__import__("tempfile").mkdtemp(prefix="tart-tests-"), "tasks.sqlite3"))
# Embedder weights in float32 unless a test asks otherwise: several tests compare embeddings to 1e-5
# (bfloat16, the default where the CPU has it, is tested in tests/test_serving_dtype.py).
os.environ.setdefault("TART_EMBED_DTYPE", "float32")


# The slowest test of the default run, marked slow here because it lives in a file other work owns
# (move the marker into the file when you next edit it). `python -m pytest -m slow` runs them.
SLOW = {
    "tests/test_training.py::test_killed_and_resumed_run_matches_an_uninterrupted_one",  # ~50 s
}


def pytest_collection_modifyitems(config, items):
    import pytest

    for item in items:
        if item.nodeid in SLOW:
            item.add_marker(pytest.mark.slow)
