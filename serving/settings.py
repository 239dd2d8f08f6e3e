"""Server configuration: defaults, then a TOML file, then environment variables (highest priority).

The file is named by `TART_CONFIG` (or `tart serve --config FILE`); its keys are the field names
below, at the top level or under a `[serving]` table. Each field can also be set by the environment
variable `TART_<FIELD NAME IN CAPITALS>`, e.g. `TART_CHECKPOINT`, `TART_EMBEDDER`, `TART_STORE_PATH`,
`TART_MAX_EXAMPLES`, `TART_MAX_TEXTS`, `TART_MAX_TEXT_CHARS`.

Only the operator sets these: nothing in a request can change them, in particular not the store path.
"""
from __future__ import annotations

import dataclasses
import functools
import os
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path

from tart.defaults import DEFAULT_EMBEDDER, DEFAULT_HEAD, EMBED_DTYPES  # no torch: names only


def _default_store_path() -> str:
    from tart.paths import store_path  # the user data folder (platformdirs), or $TART_STORE_PATH

    return str(store_path())


@dataclass(frozen=True)
class Settings:
    # models
    checkpoint: str = DEFAULT_HEAD  # shipped head name or a checkpoint folder (tart.defaults.DEFAULT_HEAD)
    embedder: str = DEFAULT_EMBEDDER  # embedder short name or a local model folder
    n_permutations: int = 4  # default support-set orderings averaged per prediction
    max_permutations: int = 8  # the most a request may ask for
    # task store
    store_path: str = dataclasses.field(default_factory=_default_store_path)
    max_tasks: int = 10_000
    # request limits
    max_examples: int = 256  # labelled examples per request or task
    max_texts: int = 128  # texts to classify per request
    max_text_chars: int = 2_000  # characters per text (examples and queries)
    max_labels: int = 32  # distinct labels per task
    max_label_chars: int = 100
    max_name_chars: int = 100  # task names
    max_body_bytes: int = 2 * 1024 * 1024  # whole HTTP request body
    # traffic and batching
    max_concurrency: int = 64  # requests in flight on the API service; more get 429
    timeout_s: float = 120.0  # a request running longer gets 504
    body_timeout_s: float = 10.0  # a request's whole body must arrive within this, else 408 (it holds no slot meanwhile)
    embed_max_batch_size: int = 64  # texts per embedder forward, across requests
    embed_max_latency_ms: int = 20_000  # queueing budget of one embed call; past it, 503
    embed_threads: int = 0  # torch threads of the embedding worker (0: torch's default)
    head_threads: int = 1  # torch threads of each head computation in the API worker
    head_concurrency: int = 2  # threads of the head's heavy lane (light requests have one of their own)
    light_head_tokens: int = 10_000  # head cost up to which a request runs in the light lane
    head_queue: int = 16  # requests that may wait per head lane; past it, 503 with Retry-After
    stuck_after_s: float = 60.0  # /readyz is unready while a head or embedder job runs longer than this
    # cost budget of one request, checked before any work (see serving/cost.py); past it, 413
    # (measured: a request at both, SmolLM2 and the default head, in <= 10 s on the 2-core VM; docs/serving.md)
    max_embed_tokens: int = 1_536  # tokens the embedder reads for one request
    max_head_tokens: int = 24_576  # tokens the head reads: sequences x (query batches x context + queries)
    # embedder runtime: torch, onnx (float32) or onnx-int8 (ONNX Runtime, the onnx extra; tart.onnx_backend)
    embed_backend: str = "torch"
    embed_dtype: str = "auto"  # embedder weights: auto (tart.models decides from the CPU: bfloat16 only with AMX), bfloat16, float32
    # access
    host: str = "127.0.0.1"  # the address the server listens on (tart serve --host sets it)
    api_keys: str = ""  # comma-separated keys; a request must send one (Authorization: Bearer KEY)
    require_api_key: str = "auto"  # auto: only when `host` is not a loopback address; yes; no

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type in ("int", "float") and value < 0:
                raise ValueError(f"setting {f.name} must be >= 0, got {value!r}")
        for name in ("max_examples", "max_texts", "max_text_chars", "max_labels", "max_label_chars",
                     "max_name_chars", "max_body_bytes", "max_concurrency", "embed_max_batch_size",
                     "embed_max_latency_ms", "n_permutations", "max_permutations", "max_tasks", "head_concurrency",
                     "head_threads", "max_embed_tokens", "max_head_tokens", "stuck_after_s", "body_timeout_s"):
            if getattr(self, name) < 1:
                raise ValueError(f"setting {name} must be >= 1, got {getattr(self, name)!r}")
        if self.max_labels < 2:
            raise ValueError("setting max_labels must be >= 2")
        if self.embed_dtype not in EMBED_DTYPES:
            raise ValueError(f"setting embed_dtype must be {', '.join(EMBED_DTYPES[:-1])} or {EMBED_DTYPES[-1]}, "
                             f"got {self.embed_dtype!r}")
        if self.embed_backend not in ("torch", "onnx", "onnx-int8"):  # tart.onnx_backend.BACKENDS (that imports torch)
            raise ValueError(f"setting embed_backend must be torch, onnx or onnx-int8, got {self.embed_backend!r}")
        if self.require_api_key not in ("auto", "yes", "no"):
            raise ValueError(f"setting require_api_key must be auto, yes or no, got {self.require_api_key!r}")
        if self.keys_required and not self.keys:
            cause = ("require_api_key is 'yes'" if self.require_api_key == "yes"
                     else f"host {self.host!r} is not a loopback address")
            raise ValueError(f"{cause}, so API keys are required: set api_keys (TART_API_KEYS=key1,key2), or "
                             "require_api_key = 'no' to serve without authentication")
        if self.n_permutations > self.max_permutations:
            raise ValueError(f"setting n_permutations ({self.n_permutations}) exceeds max_permutations "
                             f"({self.max_permutations})")


    @property
    def keys(self) -> frozenset[str]:
        return frozenset(k.strip() for k in self.api_keys.split(",") if k.strip())

    @property
    def keys_required(self) -> bool:
        if self.require_api_key == "auto":
            return not is_loopback(self.host)
        return self.require_api_key == "yes"


def is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: assume it is reachable from outside


ENV_PREFIX = "TART_"


def _coerce(name: str, kind: str, value):
    try:
        if kind == "int":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if kind == "float":
            return float(value)
        return str(value)
    except (TypeError, ValueError):
        raise ValueError(f"setting {name} must be {'an integer' if kind == 'int' else 'a number'}, "
                         f"got {value!r}") from None


def load_settings(path: str | os.PathLike | None = None, env: dict | None = None) -> Settings:
    """Settings from defaults < TOML file (`path` or $TART_CONFIG) < TART_* environment variables."""
    env = os.environ if env is None else env
    kinds = {f.name: f.type for f in fields(Settings)}
    values: dict = {}
    path = path or env.get(ENV_PREFIX + "CONFIG")
    if path:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
        data = data.get("serving", data)
        unknown = sorted(set(data) - set(kinds))
        if unknown:
            raise ValueError(f"{path}: unknown setting(s) {unknown}; known: {sorted(kinds)}")
        values.update(data)
    for name in kinds:
        key = ENV_PREFIX + name.upper()
        if env.get(key):
            values[name] = env[key]
    values = {name: _coerce(name, kinds[name], v) for name, v in values.items()}
    if "store_path" in values:
        values["store_path"] = str(Path(values["store_path"]).expanduser())
    return Settings(**values)


@functools.cache
def get_settings() -> Settings:
    """The process's settings, read once (the services and schemas share them)."""
    return load_settings()
