"""Training configuration: a TOML file mapped onto dataclasses that pydantic checks (types, ranges,
choices, unknown keys), with errors that name the bad key."""
from __future__ import annotations

import dataclasses
import functools
import tomllib
from dataclasses import field
from pathlib import Path
from typing import Annotated, Literal

import pydantic
from pydantic import Field

from tart.defaults import DEFAULT_SHRINKAGE
from tart.tasks.prior import PriorSettings
from tart.head.model import TartConfig
from tart.tasks.synthetic import Curriculum

# every table of the file: an unknown key is an error, not ignored
table = pydantic.dataclasses.dataclass(config=pydantic.ConfigDict(extra="forbid"))


@table
class TaskSettings:
    source: Literal["tart", "prior"] = "tart"  # "tart": TART's isotropic binary tasks; "prior": the task families of [prior]
    k_min: int = 4  # "prior": each step's k is log-uniform in [k_min, k.end]; its queries see all k points
    n_queries: int = 32  # "prior": query points per task
    alpha: float = 10.0
    alpha_min: float = 0.0  # > 0: each task's alpha is log-uniform in [alpha_min, alpha]
    intercept_std: float = 0.0
    label_noise: float = 0.0
    soft_targets: bool = True  # train on P(y=1|x) instead of a sampled label: same optimum, less noise
    d: Curriculum = field(default_factory=lambda: Curriculum(start=4, end=16, increment=4, interval=1000))
    k: Curriculum = field(default_factory=lambda: Curriculum(start=64, end=64))


@table
class OptimSettings:
    batch_size: Annotated[int, Field(ge=1)] = 64
    lr: Annotated[float, Field(gt=0)] = 3e-4
    min_lr: float = 3e-5
    weight_decay: float = 0.0
    warmup_steps: int = 200
    max_steps: Annotated[int, Field(ge=1)] = 8000
    grad_clip: float = 1.0
    # "margin": a multi-class head's queries scored by the multi-class hinge on their logits (the target's
    # most likely class by a margin of 1) instead of cross-entropy, which a head can lower by calibration
    # alone (issue 25: cross-entropy fell, accuracy did not)
    loss: Literal["cross-entropy", "margin"] = "cross-entropy"


@table
class RunSettings:
    log_every: int = 50
    eval_every: int = 500
    save_every: int = 500
    keep_checkpoints: int = 2
    eval_tasks: int = 256  # periodic head-only check during training
    final_eval_tasks: int = 2000  # eval.json written next to the final model
    mixed_precision: Literal["no", "bf16", "fp16"] = "no"  # passed to accelerate


@table
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


def _message(err: pydantic.ValidationError) -> str:
    """pydantic's report in one line, each bad key named as in the file (optim.lr)."""
    parts = []
    for e in err.errors():
        name, msg = ".".join(map(str, e["loc"])), e["msg"].removeprefix("Value error, ")
        if e["type"] in ("unexpected_keyword_argument", "extra_forbidden"):
            *tables, key = e["loc"]
            known = [f.name for f in dataclasses.fields(functools.reduce(getattr, tables, TrainConfig()))]
            where = f"in [{'.'.join(tables)}]" if tables else "at the top level"
            parts.append(f"unknown key {key!r} {where}; known: {', '.join(known)}")
        elif e["type"] in ("missing", "value_error"):  # the value is the whole table: name it only
            parts.append(f"{name}: {msg}")
        else:
            parts.append(f"{name} = {e['input']!r}: {msg}")
    return "; ".join(parts)


def load_config(path: str | Path) -> TrainConfig:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"training config not found: {path}")
    try:
        config = TrainConfig(**tomllib.loads(path.read_text()))
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"{path} is not valid TOML: {err}") from err
    except pydantic.ValidationError as err:
        raise ValueError(f"{path}: {_message(err)}") from None
    model = config.model_config()  # validates the model section now, not after the first step
    if config.tasks.k.end > model.max_examples:
        raise ValueError(f"[tasks.k] end ({config.tasks.k.end}) exceeds model.max_examples")
    if config.tasks.d.end > model.n_dims:
        raise ValueError(f"[tasks.d] end ({config.tasks.d.end}) exceeds model.n_dims")
    if config.optim.loss == "margin" and (config.tasks.source != "prior" or not model.multiclass):
        raise ValueError('[optim] loss = "margin" needs a multi-class head trained on the prior (model.n_classes > 2)')
    if config.tasks.source == "prior":
        if not 4 <= config.tasks.k_min <= config.tasks.k.end:
            raise ValueError(f"[tasks] k_min must be in [4, k.end={config.tasks.k.end}], got {config.tasks.k_min}")
        if model.n_classes > 2 and config.prior.max_classes > model.n_classes:
            raise ValueError(f"[prior] max_classes ({config.prior.max_classes}) exceeds model.n_classes "
                             f"({model.n_classes})")
        if model.n_classes == 2 and config.prior.max_classes != 2:
            raise ValueError("[prior] max_classes must be 2 for a binary head (model.n_classes = 2)")
        # the head is served with the projection its config names, so it must train with that one
        shrinkage = DEFAULT_SHRINKAGE if model.projection_shrinkage is None else model.projection_shrinkage
        if (config.prior.shrunk_std, config.prior.shrinkage) != (model.shrunk_std, shrinkage):
            raise ValueError(f"[prior] shrunk_std / shrinkage ({config.prior.shrunk_std}, {config.prior.shrinkage}) must "
                             f"match [model] shrunk_std / projection_shrinkage ({model.shrunk_std}, {shrinkage})")
    return config
