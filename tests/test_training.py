import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tart.training.checkpoint import list_checkpoints
from tart.training.config import load_config
from tart.training.train import train

TINY = """
name = "tiny"
seed = 3
[model]
n_dims = 8
n_embd = 32
n_layer = 2
n_head = 2
max_examples = 32
[tasks]
d = {{ start = 2, end = 2 }}
k = {{ start = 16, end = 32, increment = 16, interval = 40 }}
[optim]
batch_size = 16
lr = 1e-3
max_steps = {steps}
warmup_steps = 10
[run]
log_every = 10
eval_every = 1000
save_every = 20
eval_tasks = 16
final_eval_tasks = 0
"""


def write_config(tmp_path, steps=120, name="tiny.toml"):
    path = tmp_path / name
    path.write_text(TINY.format(steps=steps))
    return path


def losses(output: Path) -> dict[int, float]:
    with (output / "train_log.csv").open() as f:
        return {int(r["step"]): float(r["loss"]) for r in csv.DictReader(f)}


def test_tiny_run_lowers_the_loss_and_writes_a_loadable_head(tmp_path):
    out = tmp_path / "run"
    summary = train(load_config(write_config(tmp_path)), out, progress=False)
    curve = losses(out)
    early = sum(curve[s] for s in (10, 20, 30)) / 3
    late = sum(curve[s] for s in (100, 110, 120)) / 3
    assert late < early - 0.05, curve
    assert summary["final_loss"] == pytest.approx(curve[120], abs=1e-6)
    for name in ("config.json", "model.safetensors", "README.md", "train_config.json"):
        assert (out / name).exists(), name
    assert [p.name for p in list_checkpoints(out / "checkpoints")] == ["step-0000100", "step-0000120"]


def test_init_from_starts_at_a_trained_head(tmp_path):
    base = tmp_path / "base"
    train(load_config(write_config(tmp_path, steps=20)), base, progress=False)
    text = TINY.format(steps=1).replace('seed = 3', f'seed = 3\ninit_from = "{base}"')
    (tmp_path / "ft.toml").write_text(text.replace("lr = 1e-3", "lr = 1e-12"))  # one step that moves nothing
    train(load_config(tmp_path / "ft.toml"), tmp_path / "ft", progress=False)
    from tart.head.load import load_head

    a, b = load_head(base).state_dict(), load_head(tmp_path / "ft").state_dict()
    assert all(torch.allclose(a[n], b[n], atol=1e-6) for n in a)
    (tmp_path / "bad.toml").write_text(text.replace("n_embd = 32", "n_embd = 64"))
    with pytest.raises(ValueError, match="does not match"):
        train(load_config(tmp_path / "bad.toml"), tmp_path / "bad", progress=False)


def run_cli(config, output, *extra):
    cmd = [sys.executable, "-m", "tart.cli", "train", "--config", str(config), "--output", str(output), "--quiet", *extra]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})


@pytest.mark.slow  # ~50 s
def test_killed_and_resumed_run_matches_an_uninterrupted_one(tmp_path):
    config = write_config(tmp_path, steps=200)
    whole = run_cli(config, tmp_path / "whole")

    part = run_cli(config, tmp_path / "part")
    deadline = time.time() + 120
    while not any(p.name >= "step-0000060" for p in list_checkpoints(tmp_path / "part" / "checkpoints")):
        assert time.time() < deadline and part.poll() is None, "no checkpoint appeared"
        time.sleep(0.05)
    part.send_signal(signal.SIGKILL)  # mid-run, possibly mid-write
    part.wait()
    assert part.returncode == -signal.SIGKILL
    killed_at = list_checkpoints(tmp_path / "part" / "checkpoints")[-1].name
    assert killed_at < "step-0000200"

    resumed = run_cli(config, tmp_path / "part", "--resume")
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()
    assert whole.wait(timeout=300) == 0, whole.stderr.read()
    final_whole = json.loads(whole.stdout.read().strip().splitlines()[-1])["final_loss"]
    final_resumed = json.loads(resumed.stdout.read().strip().splitlines()[-1])["final_loss"]
    assert final_resumed == pytest.approx(final_whole, abs=1e-5)
    whole_curve, resumed_curve = losses(tmp_path / "whole"), losses(tmp_path / "part")
    assert sorted(resumed_curve) == sorted(whole_curve)  # no duplicated or missing rows
    assert all(resumed_curve[s] == pytest.approx(whole_curve[s], abs=1e-5) for s in whole_curve)


def test_fresh_run_refuses_to_overwrite_checkpoints(tmp_path):
    config = load_config(write_config(tmp_path, steps=20))
    train(config, tmp_path / "run", progress=False)
    with pytest.raises(FileExistsError, match="--resume"):
        train(config, tmp_path / "run", progress=False)


def test_resume_without_checkpoints_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        train(load_config(write_config(tmp_path, steps=20)), tmp_path / "empty", resume=True, progress=False)


@pytest.mark.parametrize("text, message", [
    ("[optim]\nlr = 'fast'\n", "optim.lr = 'fast': Input should be a valid number"),
    ("[optim]\nbatchsize = 3\n", "unknown key 'batchsize' in \\[optim\\]; known: batch_size, lr"),
    ("seeed = 3\n", "unknown key 'seeed' at the top level"),
    ("[tasks]\nd = { start = 8, end = 16, step = 2 }\n", "unknown key 'step' in \\[tasks.d\\]"),
    ("[optim]\nmax_steps = 0\n", "optim.max_steps = 0: Input should be greater than or equal to 1"),
    ("[model]\nn_embd = 30\nn_head = 4\n", "divisible"),
    ("[tasks]\nk = { start = 8, end = 128 }\n", "exceeds model.max_examples"),
    ("[tasks]\nd = { start = 8 }\n", "tasks.d"),
    ("not toml [", "not valid TOML"),
    ("[tasks]\nsource = 'tables'\n", "tasks.source = 'tables': Input should be 'tart' or 'prior'"),
    ("[tasks]\nsource = 'prior'\n[prior]\nweights = { trees = 1.0 }\n", "unknown prior family"),
    ("[tasks]\nsource = 'prior'\n[prior]\nweights = 3\n", "prior.weights = 3: Input should be a valid dictionary"),
    ("[model]\nn_classes = 4\n[tasks]\nsource = 'prior'\n[prior]\nmax_classes = 10\n", "exceeds model.n_classes"),
    ("[model]\nn_classes = 4\nshrunk_std = true\n[tasks]\nsource = 'prior'\n[prior]\nmax_classes = 4\n",
     "must match \\[model\\] shrunk_std"),
])
def test_bad_configs(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        load_config(path)


@pytest.mark.parametrize("path", sorted((Path(__file__).parent.parent / "training" / "configs").glob("*.toml")),
                         ids=lambda p: p.name)
def test_shipped_configs_load(path):
    config = load_config(path)
    assert config.name.startswith("tart") and config.to_dict()["optim"]["max_steps"] >= 1


def test_missing_config_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_config(tmp_path / "nope.toml")


PRIOR = """
name = "tiny-prior"
seed = 1
[model]
n_dims = 8
n_embd = 32
n_layer = 1
n_head = 2
max_examples = 32
n_classes = 4
[tasks]
source = "prior"
k_min = 4
n_queries = 8
k = { start = 32, end = 32 }
d = { start = 8, end = 8 }
[prior]
max_classes = 4
dim_max = 48
[optim]
batch_size = 16
lr = 1e-3
max_steps = 60
warmup_steps = 5
[run]
log_every = 10
eval_every = 1000
save_every = 30
eval_tasks = 16
final_eval_tasks = 0
"""


def test_prior_run_trains_a_multiclass_head(tmp_path):
    path = tmp_path / "prior.toml"
    path.write_text(PRIOR)
    summary = train(load_config(path), tmp_path / "out", progress=False)
    assert torch.isfinite(torch.tensor(summary["final_loss"]))
    log = losses(tmp_path / "out")
    assert all(0 < v < 5 for v in log.values())  # cross-entropy over <= 4 classes, no blow-up
    from tart.head.load import load_head

    head = load_head(tmp_path / "out")
    assert head.config.n_classes == 4 and head.read_out.out_features == 4


def test_margin_loss_scores_answers_not_confidence(tmp_path):
    from tart.training.train import margin_loss

    inf = float("-inf")
    logits = torch.tensor([[[3.0, 0.0, inf], [0.0, 0.5, 2.0]]])  # right by 3; wrong by 2 (class 0 is the target)
    assert margin_loss(logits, torch.tensor([[0, 0]])).item() == pytest.approx((0 + 3.0) / 2)
    soft = torch.tensor([[[0.9, 0.1, 0.0], [0.6, 0.4, 0.0]]])  # soft targets: their most likely class
    assert margin_loss(logits, soft).item() == pytest.approx(1.5)
    # scaling up every logit lowers cross-entropy on a right answer; the margin loss is already 0 there
    assert margin_loss(10 * logits[:, :1], torch.tensor([[0]])).item() == 0.0
    path = tmp_path / "prior.toml"
    margin = PRIOR.replace("warmup_steps = 5", 'warmup_steps = 5\nloss = "margin"')
    margin = margin.replace("max_steps = 60", "max_steps = 20")
    path.write_text(margin)
    summary = train(load_config(path), tmp_path / "out", progress=False)
    assert 0 <= summary["final_loss"] < 5
    path.write_text(margin.replace("n_classes = 4", "n_classes = 2").replace("max_classes = 4", "max_classes = 2"))
    with pytest.raises(ValueError, match="margin.*multi-class"):
        load_config(path)


def test_warm_start_widens_a_binary_head_and_refuses_other_shapes():
    from tart.head.load import load_head
    from tart.head.model import TartConfig, TartReasoningModel
    from tart.head.warm_start import warm_start

    compact = load_head("tart-compact")
    wide = TartReasoningModel(TartConfig(n_dims=32, max_examples=128, n_classes=10))
    warm_start(wide, compact, "tart-compact")
    assert torch.equal(wide.blocks[0].attn.qkv.weight, compact.blocks[0].attn.qkv.weight)
    assert torch.equal(wide.read_in.weight[:, :16], compact.read_in.weight[:, :16])
    other = TartReasoningModel(TartConfig(n_dims=32, n_embd=64, n_head=4, n_classes=10))
    with pytest.raises(ValueError, match="can only be widened"):
        warm_start(other, compact, "tart-compact")


def test_warm_start_widens_a_multiclass_heads_input_and_keeps_its_answers():
    """tart-residual (32 inputs) into a 64-input head: on inputs whose extra 32 dims are zero it answers
    exactly as before, so fine-tuning starts from the trained head."""
    from tart.head.load import load_head
    from tart.head.model import TartConfig, TartReasoningModel
    from tart.head.warm_start import warm_start

    source = load_head("tart-residual")
    wide = TartReasoningModel(TartConfig(**{**source.config.to_diff_dict(), "n_dims": 64}))
    warm_start(wide, source, "tart-residual")
    gen = torch.Generator().manual_seed(0)
    x_ctx, x_q = torch.randn(3, 20, 32, generator=gen), torch.randn(3, 5, 32, generator=gen)
    y_ctx = torch.randint(0, 4, (3, 20), generator=gen)
    pad = lambda x: torch.nn.functional.pad(x, (0, 32))
    before = source.predict_proba(x_ctx, y_ctx, x_q)
    assert torch.allclose(wide.predict_proba(pad(x_ctx), y_ctx, pad(x_q)), before, atol=1e-5)
    with pytest.raises(ValueError, match="can only be widened"):  # a multi-class head keeps its slots
        warm_start(TartReasoningModel(TartConfig(**{**source.config.to_diff_dict(), "n_classes": 12})),
                   source, "tart-residual")


def test_widened_label_slots_are_told_apart():
    """warm_start keeps slots 0 / 1 as the binary head's +-code and gives the other slots codes of
    their own (twins would stay twins under training: the prior treats every slot alike)."""
    from tart.head.load import load_head
    from tart.head.model import TartConfig, TartReasoningModel
    from tart.head.warm_start import spread_label_slots, warm_start

    wide = TartReasoningModel(TartConfig(n_dims=32, max_examples=128, n_classes=10))
    warm_start(wide, load_head("tart-compact"), "tart-compact")
    codes = wide.read_in.weight[:, 32:42]
    unit = codes / codes.norm(dim=0, keepdim=True)
    cosine = unit.T @ unit - torch.eye(10)
    assert cosine.max() < 0.9  # no two slots point the same way
    assert torch.allclose(cosine[0, 1], torch.tensor(-1.0))  # the binary pair is kept exact
    assert not spread_label_slots(wide)  # nothing left to spread
    twin = TartReasoningModel(TartConfig(n_dims=8, n_embd=32, n_head=2, n_layer=1, n_classes=4))
    with torch.no_grad():
        twin.read_in.weight[:, 8:12] = twin.read_in.weight[:, 8:9]  # all four slots the same code
    assert spread_label_slots(twin)
    unit = twin.read_in.weight[:, 8:12] / twin.read_in.weight[:, 8:12].norm(dim=0, keepdim=True)
    assert (unit.T @ unit - torch.eye(4)).max() < 0.99


def test_warm_start_adds_a_residual():
    """A same-shape head with a residual starts from a trained multi-class head: its weights, scale 1."""
    from tart.head.load import load_head
    from tart.head.model import TartConfig, TartReasoningModel
    from tart.head.warm_start import warm_start

    source = load_head("tart-prior")
    model = TartReasoningModel(TartConfig(**{**source.config.to_diff_dict(), "residual": "lda"}))
    warm_start(model, source, "tart-prior")
    assert model.residual_scale.item() == 1.0
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in source.state_dict().items())


def test_a_missing_task_bank_stops_a_run_before_its_first_step(tmp_path, monkeypatch):
    """A prior run that may draw `bank` episodes from an embedder whose task bank was never built fails at
    once, saying how to build it, and writes nothing (it used to fail whenever a step first drew it)."""
    monkeypatch.setenv("TART_CACHE_DIR", str(tmp_path / "empty-cache"))
    text = TINY.format(steps=5).replace("[tasks]", '[tasks]\nsource = "prior"')
    text += '[prior]\nweights = { bank = 0.1, gaussian = 0.9 }\nmax_classes = 2\nbank_embedders = ["minilm-l6"]\n'
    (tmp_path / "bank.toml").write_text(text)
    with pytest.raises(FileNotFoundError, match="python -m tart.training.task_bank"):
        train(load_config(tmp_path / "bank.toml"), tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()
