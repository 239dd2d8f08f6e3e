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
# ('auto' picks bfloat16 only where it runs faster here; tested in tests/test_serving_dtype.py).
os.environ.setdefault("TART_EMBED_DTYPE", "float32")
# ... and in torch: the default backend, auto, runs MiniLM's short texts in int8, whose vectors follow the
# batch they were embedded in (cosine >= 0.993), while many tests compare vectors across calls, processes
# and the service to 1e-5. tests/test_embed_auto.py tests auto itself (real exports, made once per cache).
os.environ.setdefault("TART_EMBED_BACKEND", "torch")
