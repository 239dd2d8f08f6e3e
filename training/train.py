"""The training loop (nanoGPT-style, one file): synthetic tasks in, a saved head out.

Runs on CPU, one GPU, or several through `accelerate launch`. Every step samples fresh tasks from a
generator seeded by (seed, step, process), so a resumed run sees exactly the tasks it would have seen:
with the model and optimizer state restored, it continues the same loss curve.
"""
from __future__ import annotations

import csv
import json
import math
import platform
import time
from pathlib import Path

import torch
from accelerate import Accelerator
from tqdm.auto import tqdm

from tart.tasks.prior import check_sources, sample_prior_batch
from tart.head.model import TartReasoningModel
from tart.head.warm_start import warm_start
from tart.evaluate.synthetic import evaluate_synthetic, head_accuracy, plot_synthetic, sample_eval_tasks
from tart.tasks.synthetic import make_generator, sample_tasks
from tart.training.checkpoint import clean_temporary, list_checkpoints, load_checkpoint, save_checkpoint
from tart.training.config import TrainConfig
from tart.training.model_card import write_model_card

EVAL_KS = (8, 16, 32, 64)
LOG_FIELDS = ["step", "loss", "lr", "d", "k", "elapsed_s"]


def learning_rate(step: int, cfg) -> float:
    """Linear warm-up, then cosine decay to min_lr at max_steps."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps)
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * min(1.0, progress)))


def prior_k(gen: torch.Generator, task_cfg) -> int:
    """A step's context size for prior tasks: log-uniform in [k_min, k.end], so every k is trained."""
    lo, hi = math.log(task_cfg.k_min), math.log(task_cfg.k.end + 1)
    return min(task_cfg.k.end, int(math.exp(lo + (hi - lo) * torch.rand(1, generator=gen).item())))


def margin_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Multi-class hinge (Crammer-Singer) over the classes a query may take (masked ones are -inf): its
    target class's logit should beat every other by 1. `target`: (B, q) labels or (B, q, C) probabilities
    (their most likely class). Scaling logits up lowers it only for queries already right by a margin."""
    if logits.dim() != 3:
        raise ValueError("the margin loss needs a multi-class head's logits (B, q, C)")
    label = target.argmax(-1) if target.dim() == 3 else target.long()
    right = logits.gather(-1, label[..., None]).squeeze(-1)
    others = logits.scatter(-1, label[..., None], float("-inf")).amax(-1)
    return torch.relu(1 - (right - others)).mean()


def step_seed(seed: int, step: int, process: int) -> int:
    return (seed * 1_000_003 + step) * 1_009 + process


def _open_log(path: Path, resume_step: int):
    """CSV log; on resume, rows past the checkpoint's step are dropped so the log has no duplicates."""
    rows = []
    if resume_step and path.exists():
        with path.open() as f:
            rows = [r for r in csv.DictReader(f) if int(r["step"]) <= resume_step]
    f = path.open("w", newline="")
    writer = csv.DictWriter(f, fieldnames=LOG_FIELDS)
    writer.writeheader()
    writer.writerows(rows)
    return f, writer


def _tensorboard(path: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional; the CSV log is always written
        return None
    return SummaryWriter(str(path))


def train(config: TrainConfig, output: Path, resume: bool = False, progress: bool = True) -> dict:
    """Train a head as `config` says, writing checkpoints and the final model under `output`."""
    output = Path(output)
    accelerator = Accelerator(mixed_precision=config.run.mixed_precision)
    main = accelerator.is_main_process
    opt_cfg, task_cfg = config.optim, config.tasks
    if opt_cfg.batch_size % accelerator.num_processes:
        raise ValueError(f"batch_size {opt_cfg.batch_size} is not divisible by {accelerator.num_processes} processes")
    local_batch = opt_cfg.batch_size // accelerator.num_processes
    if task_cfg.source == "prior":
        check_sources(config.prior)  # a missing embedding bank stops the run here, not at some later step

    torch.manual_seed(config.seed)
    model = TartReasoningModel(config.model_config())
    if config.init_from:  # fine-tuning: start from a trained head (a smaller one is widened)
        from tart.head.load import load_head

        warm_start(model, load_head(config.init_from), config.init_from)
    model.config.alpha = task_cfg.alpha
    optimizer = torch.optim.AdamW(model.parameters(), lr=opt_cfg.lr, weight_decay=opt_cfg.weight_decay)

    ckpt_root = output / "checkpoints"
    state = {"step": 0, "elapsed_s": 0.0}
    if resume:
        clean_temporary(ckpt_root)
        found = list_checkpoints(ckpt_root)
        if not found:
            raise FileNotFoundError(f"--resume: no checkpoint under {ckpt_root}")
        state = load_checkpoint(found[-1], model, optimizer)
        accelerator.print(f"resumed from {found[-1]} (step {state['step']})")
    elif list_checkpoints(ckpt_root):
        raise FileExistsError(f"{ckpt_root} already has checkpoints: pass --resume, or choose another --output")
    model, optimizer = accelerator.prepare(model, optimizer)
    device = accelerator.device

    if main:
        output.mkdir(parents=True, exist_ok=True)
        (output / "train_config.json").write_text(json.dumps(config.to_dict(), indent=2))
        log_file, log = _open_log(output / "train_log.csv", state["step"])
        tb = _tensorboard(output / "tensorboard")
    model_cfg = config.model_config()
    n_dims = model_cfg.n_dims
    eval_tasks = sample_eval_tasks(config.run.eval_tasks, max(EVAL_KS), 32, task_cfg.d.end, n_dims,
                                   task_cfg.alpha, seed=config.seed + 999)

    start_step, started = state["step"], time.time() - state["elapsed_s"]
    bar = tqdm(total=opt_cfg.max_steps, initial=start_step, desc="train", disable=not (main and progress))
    loss_value = float("nan")
    for step in range(start_step, opt_cfg.max_steps):
        lr = learning_rate(step, opt_cfg)
        for group in optimizer.param_groups:
            group["lr"] = lr
        d, k = task_cfg.d.at(step), task_cfg.k.at(step)
        seed = step_seed(config.seed, step, accelerator.process_index)
        model.train()
        if task_cfg.source == "prior":
            # sampled on the CPU (it fits a projection per task, as inference does), then moved
            gen = make_generator(seed, "cpu")
            k = prior_k(gen, task_cfg)
            batch = sample_prior_batch(local_batch, k, task_cfg.n_queries, n_dims, model_cfg.n_classes,
                                       config.prior, gen)
            target = batch.p_query if task_cfg.soft_targets else batch.y_query
            if not model_cfg.multiclass:
                target = target[..., 1] if task_cfg.soft_targets else target
            target = target.to(device)
            with accelerator.autocast():
                side = {name: getattr(batch, name).to(device) for name in ("x_names", "names_mask", "x_unlabeled")
                        if getattr(batch, name) is not None}  # a side-input head's names / unlabelled points
                out = model(batch.x_context.to(device), batch.y_context.to(device), batch.x_query.to(device),
                            labels=target if opt_cfg.loss == "cross-entropy" else None,  # else scored below
                            class_mask=batch.class_mask.to(device), **side)
        else:
            gen = make_generator(seed, device)
            batch = sample_tasks(local_batch, k, k, d=d, n_dims=n_dims, alpha=task_cfg.alpha,
                                 alpha_min=task_cfg.alpha_min or None,
                                 intercept_std=task_cfg.intercept_std, label_noise=task_cfg.label_noise,
                                 generator=gen)
            target = batch.p_query if task_cfg.soft_targets else batch.y_query
            with accelerator.autocast():
                out = model(batch.x_context, batch.y_context, batch.x_query,
                            context_lengths=torch.arange(1, k + 1, device=device), labels=target)
        loss = out.loss if opt_cfg.loss == "cross-entropy" else margin_loss(out.logits, target)
        accelerator.backward(loss)
        if opt_cfg.grad_clip:
            accelerator.clip_grad_norm_(model.parameters(), opt_cfg.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        loss_value = accelerator.reduce(loss.detach(), reduction="mean").item()
        done = step + 1
        bar.update()
        if not main:
            continue
        elapsed = time.time() - started
        if done % config.run.log_every == 0 or done == opt_cfg.max_steps:
            log.writerow(dict(step=done, loss=f"{loss_value:.6f}", lr=f"{lr:.3e}", d=d, k=k, elapsed_s=f"{elapsed:.1f}"))
            log_file.flush()
            bar.set_postfix(loss=f"{loss_value:.4f}", d=d, lr=f"{lr:.1e}")
            if tb:
                tb.add_scalar("train/loss", loss_value, done)
                tb.add_scalar("train/lr", lr, done)
        if done % config.run.eval_every == 0:
            accs, _ = head_accuracy(accelerator.unwrap_model(model), eval_tasks, EVAL_KS)
            bar.write(f"step {done}: " + " ".join(f"k={k_}:{a:.3f}" for k_, a in accs.items()))
            if tb:
                for k_, a in accs.items():
                    tb.add_scalar(f"eval/acc_k{k_}", a, done)
        if done % config.run.save_every == 0 or done == opt_cfg.max_steps:
            save_checkpoint(ckpt_root, done, accelerator.unwrap_model(model), optimizer,
                            {"elapsed_s": elapsed, "loss": loss_value}, keep=config.run.keep_checkpoints)
    bar.close()
    accelerator.wait_for_everyone()
    summary = {"final_loss": loss_value, "steps": opt_cfg.max_steps,
               "parameters": sum(p.numel() for p in model.parameters())}
    if main:
        log_file.close()
        if tb:
            tb.close()
        summary["wall_time_s"] = time.time() - started
        summary.update(_finish(config, accelerator.unwrap_model(model), output, summary, accelerator, progress))
    return summary


def _finish(config, model, output: Path, summary: dict, accelerator, progress: bool) -> dict:
    """Save the final model (sharded at 15 MB), eval.json, its plot, and the model card."""
    model = model.float().cpu()
    model.save_pretrained(output, safe_serialization=True, max_shard_size="15MB")
    report = {}
    if config.run.final_eval_tasks:
        report = evaluate_synthetic(model, EVAL_KS, n_tasks=config.run.final_eval_tasks, progress=progress,
                                    d=min(16, model.config.n_dims))
        if config.tasks.source == "prior":  # the head on each family it was trained on
            from tart.evaluate.prior_families import evaluate_families

            report["families"] = evaluate_families(model, EVAL_KS, n_tasks=100, progress=progress)["results"]
        (output / "eval.json").write_text(json.dumps(report, indent=2))
        plot_synthetic(report, str(output / "eval.png"))
    machine = {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
               "device": str(accelerator.device), "processes": accelerator.num_processes,
               "torch_threads": torch.get_num_threads()}
    summary = {**summary, "machine": machine}
    (output / "train_summary.json").write_text(json.dumps(summary, indent=2))
    write_model_card(output, config, summary, report)
    return {"machine": machine}
