"""`tart serve`: start the HTTP API (`bentoml serve tart.serving.service:Tart`) on this machine.

Command-line options become the TART_* environment variables that `tart.serving.settings` reads, so the
server's configuration has one source. The settings, the head checkpoint and the embedder are checked
here first, so a mistake is reported in one line instead of a server that keeps restarting a failing
worker. The process then becomes `bentoml serve` (exec), so Ctrl+C and SIGTERM reach it directly.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import threading
import time
from pathlib import Path

from tart.defaults import DEFAULT_EMBEDDER, EMBED_BACKENDS  # no torch: names only

SERVICE = "tart.serving.service:Tart"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=3000, help="port to listen on (default 3000)")
    p.add_argument("--config", help="TOML settings file (see docs/serving.md); also $TART_CONFIG")
    from tart.defaults import DEFAULT_HEAD  # no torch: names only

    p.add_argument("--checkpoint", help=f"head checkpoint: shipped name or folder (default {DEFAULT_HEAD})")
    p.add_argument("--embedder", help=f"embedder short name or local model folder (default {DEFAULT_EMBEDDER})")
    p.add_argument("--embed-backend", choices=EMBED_BACKENDS,
                   help="embedder runtime (default auto: the fastest faithful one per batch shape; torch; "
                        "onnx, onnx-int8: ONNX Runtime, the onnx extra)")
    p.add_argument("--store", help="SQLite file for registered tasks")


def server_environment(args, base: dict | None = None) -> dict:
    """The environment `bentoml serve` runs with: options as TART_* variables, usage tracking off."""
    env = dict(os.environ if base is None else base)
    for option, variable in (("config", "TART_CONFIG"), ("checkpoint", "TART_CHECKPOINT"),
                             ("embedder", "TART_EMBEDDER"), ("store", "TART_STORE_PATH"),
                             ("embed_backend", "TART_EMBED_BACKEND")):
        value = getattr(args, option, None)
        if value:
            env[variable] = str(Path(value).expanduser().resolve()) if option in ("config", "store") or \
                Path(value).exists() else value
    env["TART_HOST"] = getattr(args, "host", None) or env.get("TART_HOST") or "127.0.0.1"
    env.setdefault("BENTOML_DO_NOT_TRACK", "true")
    env.setdefault("HF_HUB_OFFLINE", "1")
    # BentoML's home and every temporary file under the project's cache (or $TART_CACHE_DIR), not ~/bentoml
    from tart.lm.registry import default_cache_dir

    cache = default_cache_dir(env.get("TART_CACHE_DIR"))
    for variable, folder in (("BENTOML_HOME", cache / "bentoml"), ("TMPDIR", cache / "tmp")):
        if not env.get(variable):
            env[variable] = str(folder)
    return env


SLOW_STEP_S = 2.0  # a start step that takes longer than this says what it is doing


@contextlib.contextmanager
def _saying_if_slow(what: str):
    """Print `tart serve: what...` if the block is still running after SLOW_STEP_S, and its time when done."""
    start = time.monotonic()
    timer = threading.Timer(SLOW_STEP_S, lambda: print(f"tart serve: {what}...", file=sys.stderr, flush=True))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        if time.monotonic() - start > SLOW_STEP_S:
            print(f"tart serve: done in {time.monotonic() - start:.0f} s", file=sys.stderr, flush=True)


def bentoml_serve_argv(host: str, port: int, settings) -> list[str]:
    """The `bentoml serve` command line of the service (`tart serve` and tests' LocalServer alike)."""
    root = Path(__file__).resolve().parent.parent  # the folder that holds serving/ and tart/
    return [sys.executable, "-m", "bentoml", "serve", SERVICE, "--host", host, "--port", str(port),
            "--working-dir", str(root), "--timeout-graceful-shutdown", str(settings.shutdown_timeout_s)]


def prepare_exports(settings, env: dict) -> list[Path]:
    """The one-time ONNX exports the embedding worker's backend needs (auto's included), made here rather
    than in a starting worker, which BentoML would restart while it exports."""
    from tart.lm.onnx import prepare

    return prepare(settings.embedder, settings.embed_backend, cache_dir=env.get("TART_CACHE_DIR"))


def run(args) -> None:
    from tart.head.load import resolve_checkpoint
    from tart.lm.registry import resolve_model_dir
    from tart.serving.settings import load_settings

    if not 0 < args.port < 65536:
        raise ValueError(f"--port must be between 1 and 65535, got {args.port}")
    env = server_environment(args)
    settings = load_settings(env=env)  # raises ValueError / FileNotFoundError with a clear message
    resolve_checkpoint(settings.checkpoint)
    # BentoML restarts a worker that fails to start, forever: catch a bad model name here instead.
    # (For a GGUF model this also makes its one-time safetensors conversion, before the server starts.)
    with _saying_if_slow(f"preparing the embedder {settings.embedder!r} (the first start converts a GGUF model "
                         "to safetensors once, in the user cache: this can take a minute or two)"):
        resolve_model_dir(settings.embedder)
    prepare_exports(settings, env)
    for variable in ("BENTOML_HOME", "TMPDIR"):
        Path(env[variable]).mkdir(parents=True, exist_ok=True)
    argv = bentoml_serve_argv(args.host, args.port, settings)
    print(f"tart serve: http://{args.host}:{args.port} (head {settings.checkpoint}, embedder "
          f"{settings.embedder}, tasks in {settings.store_path}, API keys "
          f"{'required' if settings.keys else 'off'})", file=sys.stderr, flush=True)
    os.execve(sys.executable, argv, env)
