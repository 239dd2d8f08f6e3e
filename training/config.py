"""Training configuration: a TOML file mapped onto dataclasses, with errors that name the bad key."""
from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from tart.prior import PriorSettings
from tart.reasoning import TartConfig
from tart.tasks import Curriculum


@dataclass
class TaskSettings:
    source: str = "tart"  # "tart": TART's isotropic binary tasks; "prior": the task families of [prior]
    k_min: int = 4  # "prior": each step's k is log-uniform in [k_min, k.end]; its queries see all k points
    n_queries: int = 32  # "prior": query points per task
    alpha: float = 10.0
    alpha_min: float = 0.0  # > 0: each task's alpha is log-uniform in [alpha_min, alpha]
    intercept_std: float = 0.0
    label_noise: float = 0.0
    soft_targets: bool = True  # train on P(y=1|x) instead of a sampled label: same optimum, less noise
    d: Curriculum = field(default_factory=lambda: Curriculum(start=4, end=16, increment=4, interval=1000))
    k: Curriculum = field(default_factory=lambda: Curriculum(start=64, end=64))


@dataclass
class OptimSettings:
    batch_size: int = 64
    lr: float = 3e-4
    min_lr: float = 3e-5
    weight_decay: float = 0.0
    warmup_steps: int = 200
    max_steps: int = 8000
    grad_clip: float = 1.0


@dataclass
class RunSettings:
    log_every: int = 50
    eval_every: int = 500
    save_every: int = 500
    keep_checkpoints: int = 2
    eval_tasks: int = 256  # periodic head-only check during training
    final_eval_tasks: int = 2000  # eval.json written next to the final model
    mixed_precision: str = "no"  # "no" | "bf16" | "fp16", passed to accelerate


@dataclass
class TrainConfig:
    name: str = "tart"
    seed: int = 0
    init_from: str = ""  # a head (shipped name or folder) to start from instead of random weights
    model: dict = field(default_factory=dict)  # TartConfig keyword arguments
    tasks: TaskSettings = field(default_factory=TaskSettings)
    prior: PriorSettings = field(default_factory=PriorSettings)
    optim: OptimSettings = field(default_factory=OptimSettings)
    run: RunSettings = field(default_factory=RunSettings)

    def model_config(self) -> TartConfig:
        return TartConfig(**self.model)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _build(cls, values: dict, where: str):
    if not isinstance(values, dict):
        raise ValueError(f"[{where}] must be a table, got {values!r}")
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(f"unknown key(s) in [{where}]: {', '.join(unknown)}; known: {', '.join(known)}")
    kwargs = {}
    for name, value in values.items():
        default = known[name].default_factory() if known[name].default_factory is not dataclasses.MISSING else known[name].default
        if dataclasses.is_dataclass(default):
            kwargs[name] = _build(type(default), value, f"{where}.{name}" if where else name)
        elif isinstance(default, bool) != isinstance(value, bool) or (
            isinstance(default, (int, float)) and not isinstance(value, (int, float))
        ) or (isinstance(default, str) and not isinstance(value, str)) or (
            isinstance(default, dict) and not isinstance(value, dict)
        ):
            raise ValueError(f"{where}.{name} must be like {default!r}, got {value!r}")
        else:
            kwargs[name] = float(value) if isinstance(default, float) else value
    try:
        return cls(**kwargs)
    except TypeError as err:  # a required key is missing
        raise ValueError(f"[{where}]: {err}") from err


def load_config(path: str | Path) -> TrainConfig:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"training config not found: {path}")
    try:
        values = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"{path} is not valid TOML: {err}") from err
    config = _build(TrainConfig, values, "")
    config.model_config()  # validates the model section now, not after the first step
    if config.optim.batch_size < 1 or config.optim.max_steps < 1 or config.optim.lr <= 0:
        raise ValueError("[optim] batch_size and max_steps must be >= 1 and lr > 0")
    if config.tasks.k.end > config.model_config().max_examples:
        raise ValueError(f"[tasks.k] end ({config.tasks.k.end}) exceeds model.max_examples")
    if config.tasks.d.end > config.model_config().n_dims:
        raise ValueError(f"[tasks.d] end ({config.tasks.d.end}) exceeds model.n_dims")
    if config.tasks.source not in ("tart", "prior"):
        raise ValueError(f"[tasks] source must be 'tart' or 'prior', got {config.tasks.source!r}")
    if config.tasks.source == "prior":
        config.prior.validate()
        if not 4 <= config.tasks.k_min <= config.tasks.k.end:
            raise ValueError(f"[tasks] k_min must be in [4, k.end={config.tasks.k.end}], got {config.tasks.k_min}")
        n_classes = config.model_config().n_classes
        if n_classes > 2 and config.prior.max_classes > n_classes:
            raise ValueError(f"[prior] max_classes ({config.prior.max_classes}) exceeds model.n_classes ({n_classes})")
        if n_classes == 2 and config.prior.max_classes != 2:
            raise ValueError("[prior] max_classes must be 2 for a binary head (model.n_classes = 2)")
    return config
