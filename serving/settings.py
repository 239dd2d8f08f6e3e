"""Server configuration: defaults, then a TOML file, then environment variables (highest priority).

The file is named by `TART_CONFIG` (or `tart serve --config FILE`); its keys are the field names
below, at the top level or under a `[serving]` table. Each field can also be set by the environment
variable `TART_<FIELD NAME IN CAPITALS>`, e.g. `TART_CHECKPOINT`, `TART_EMBEDDER`, `TART_STORE_PATH`,
`TART_MAX_EXAMPLES`, `TART_MAX_TEXTS`, `TART_MAX_TEXT_CHARS`; an empty variable counts as unset.
pydantic-settings reads the variables and pydantic checks every value (types, ranges, choices).

Only the operator sets these: nothing in a request can change them, in particular not the store path.
"""
from __future__ import annotations

import functools
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsConfigDict

from tart.defaults import DEFAULT_EMBEDDER, DEFAULT_HEAD, DEFAULT_N_PERMUTATIONS, EMBED_BACKENDS, EMBED_DTYPES  # no torch: names only

Count = Annotated[int, Field(ge=0)]
Positive = Annotated[int, Field(ge=1)]


def _default_store_path() -> str:
    from tart.paths import store_path  # the user data folder (platformdirs), or $TART_STORE_PATH

    return str(store_path())


class Settings(BaseSettings):
    """The server's settings. `Settings(...)` alone is the defaults and its arguments; `load_settings` adds
    the file and the environment."""

    model_config = SettingsConfigDict(env_prefix="TART_", env_ignore_empty=True, extra="forbid", frozen=True)

    # models
    checkpoint: str = DEFAULT_HEAD  # shipped head name or a checkpoint folder (tart.defaults.DEFAULT_HEAD)
    embedder: str = DEFAULT_EMBEDDER  # embedder short name or a local model folder
    n_permutations: Positive = DEFAULT_N_PERMUTATIONS  # default support-set orderings averaged per prediction
    max_permutations: Positive = 8  # the most a request may ask for
    # task store
    store_path: Annotated[str, AfterValidator(lambda p: str(Path(p).expanduser()))] = Field(
        default_factory=_default_store_path)
    max_tasks: Positive = 10_000
    # request limits
    max_examples: Positive = 256  # labelled examples per request or task
    max_texts: Positive = 128  # texts to classify per request
    max_text_chars: Positive = 2_000  # characters per text (examples and queries)
    max_labels: Annotated[int, Field(ge=2)] = 32  # distinct labels per task
    max_label_chars: Positive = 100
    max_name_chars: Positive = 100  # task names
    max_body_bytes: Positive = 2 * 1024 * 1024  # whole HTTP request body
    # traffic and batching
    # requests in flight on the API service; more get 429. The head lanes refuse (503) past their own
    # capacity: light 1 + head_queue, heavy head_concurrency + head_queue (serving/headpool.py); with
    # head_queue left unset it equals max_concurrency, so this is the limit that bites
    max_concurrency: Positive = 64
    timeout_s: Annotated[float, Field(ge=0)] = 120.0  # a request running longer gets 504
    # on SIGTERM the server stops taking requests and cancels those still running after this many seconds
    # (uvicorn's graceful shutdown; without a bound, a clean stop waited for a 96 s request)
    shutdown_timeout_s: Count = 5
    body_timeout_s: Annotated[float, Field(ge=1)] = 10.0  # a request's whole body must arrive within this, else 408 (it holds no slot meanwhile)
    embed_max_batch_size: Positive = 64  # texts per embedder forward, across requests
    embed_max_latency_ms: Positive = 20_000  # queueing budget of one embed call; past it, 503
    embed_threads: Count = 0  # torch threads of the embedding worker (0: torch's default)
    head_threads: Positive = 1  # torch threads of each head computation in the API worker
    head_concurrency: Positive = 2  # threads of the head's heavy lane (light requests have one of their own)
    light_head_tokens: Count = 10_000  # head cost up to which a request runs in the light lane
    # requests that may wait per head lane; past it, 503 with Retry-After. Unset: max_concurrency (a fixed
    # 16 refused 48 % of requests at 32 clients, half of max_concurrency: docs/serving.md); set lower to shed load earlier
    head_queue: Count = None
    stuck_after_s: Annotated[float, Field(ge=1)] = 60.0  # /readyz is unready while a head or embedder job runs longer than this
    # cost budget of one request, checked before any work (see serving/cost.py); past it, 413
    # (measured: a request at both, SmolLM2 and the default head, in <= 10 s on the 2-core VM; docs/serving.md)
    max_embed_tokens: Positive = 1_536  # tokens the embedder reads for one request
    max_head_tokens: Positive = 24_576  # tokens the head reads: sequences x (query batches x context + queries)
    # and in time: a request whose tokens would take longer than this at the speeds the server measured on
    # its host when it started (serving/cost.py, logged) gets 413 too; 0: no time bound, the token caps alone
    max_request_s: Annotated[float, Field(ge=0)] = 10.0
    # embedder runtime: auto (per batch, the fastest faithful one for its shape: tart.defaults.EMBED_BACKEND_TABLE;
    # torch without the onnx extra), or one forced: torch, onnx (float32) or onnx-int8 (ONNX Runtime; tart.lm.onnx)
    embed_backend: Literal[EMBED_BACKENDS] = "auto"
    embed_dtype: Literal[EMBED_DTYPES] = "auto"  # embedder weights: auto (tart.lm.dtype decides from the CPU: bfloat16 with AVX-512 BF16 or AMX), bfloat16, float32
    # access
    host: str = "127.0.0.1"  # the address the server listens on (tart serve --host sets it)
    api_keys: str = ""  # comma-separated keys; a request must send one (Authorization: Bearer KEY)
    require_api_key: Literal["auto", "yes", "no"] = "auto"  # auto: only when `host` is not a loopback address

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, **_):
        return (init_settings,)  # the file and the environment are chosen by load_settings, not found implicitly

    @model_validator(mode="before")
    @classmethod
    def _head_queue_follows_concurrency(cls, values):
        if isinstance(values, dict) and values.get("head_queue") is None:
            try:
                values = {**values, "head_queue": int(values.get("max_concurrency",
                                                                  cls.model_fields["max_concurrency"].default))}
            except (TypeError, ValueError):  # a bad max_concurrency: its own error names it, once
                values = {**values, "head_queue": 0}
        return values

    @model_validator(mode="after")
    def _consistent(self):
        if self.keys_required and not self.keys:
            cause = ("require_api_key is 'yes'" if self.require_api_key == "yes"
                     else f"host {self.host!r} is not a loopback address")
            raise ValueError(f"{cause}, so API keys are required: set api_keys (TART_API_KEYS=key1,key2), or "
                             "require_api_key = 'no' to serve without authentication")
        if self.n_permutations > self.max_permutations:
            raise ValueError(f"setting n_permutations ({self.n_permutations}) exceeds max_permutations "
                             f"({self.max_permutations})")
        return self

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


class _EnvSource(EnvSettingsSource):
    """pydantic-settings' environment source (TART_ prefix, empty = unset) over a given mapping, so that
    `tart serve` can check the environment it is about to start the server with, and tests pass a dict."""

    def __init__(self, settings_cls, environ: Mapping[str, str]):
        self.environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self):  # what the base class reads from os.environ (names in any case, as there)
        return {k.lower(): v for k, v in self.environ.items() if not (self.env_ignore_empty and v == "")}


def _message(err: ValidationError, path) -> str:
    """One line naming each bad setting and its value (pydantic's own report spans several lines)."""
    parts = []
    for e in err.errors():
        name = ".".join(map(str, e["loc"]))
        if e["type"] == "extra_forbidden":  # only the file can name an unknown setting
            parts.append(f"{path}: unknown setting {name!r}; known: {', '.join(Settings.model_fields)}")
        elif name:
            parts.append(f"setting {name} = {e['input']!r}: {e['msg'][0].lower()}{e['msg'][1:]}")
        else:  # the cross-field rules above
            parts.append(e["msg"].removeprefix("Value error, "))
    return "; ".join(parts)


def load_settings(path: str | os.PathLike | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Settings from defaults < TOML file (`path` or $TART_CONFIG) < TART_* environment variables (`env`, by
    default os.environ). A bad or unknown setting raises ValueError naming it; a missing file, FileNotFoundError."""
    env = os.environ if env is None else env
    path = path or env.get("TART_CONFIG")
    values = {}
    if path:
        with open(path, "rb") as fh:
            values = tomllib.load(fh)
        values = values.get("serving", values)
    values.update(_EnvSource(Settings, env)())
    try:
        return Settings(**values)
    except ValidationError as err:
        raise ValueError(_message(err, path)) from None


@functools.cache
def get_settings() -> Settings:
    """The process's settings, read once (the services and schemas share them)."""
    return load_settings()
