"""Training throughput of a head config on this machine: sequences/s and positions/s per step.

    python -m benchmarks.train_throughput --config training/configs/compact.toml --steps 30 --json out.json

Times full training steps (sample tasks, forward, backward, AdamW) at the config's final d and k,
after a few warm-up steps; float32 and, where asked, bf16 autocast in the same run, so the ratio
between them is measured on the same machine state.
"""
from __future__ import annotations

import argparse
import json
import platform
import time

import torch

from tart.head.model import TartReasoningModel
from tart.tasks.synthetic import make_generator, sample_tasks
from tart.training.config import load_config


def time_steps(config, steps: int, warmup: int, bf16: bool) -> dict:
    torch.manual_seed(0)
    model = TartReasoningModel(config.model_config()).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.optim.lr)
    k, d, batch = config.tasks.k.end, config.tasks.d.end, config.optim.batch_size
    gen = make_generator(0)
    lengths = torch.arange(1, k + 1)
    times = []
    for step in range(warmup + steps):
        start = time.perf_counter()
        tasks = sample_tasks(batch, k, k, d=d, n_dims=config.model_config().n_dims, generator=gen)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(tasks.x_context, tasks.y_context, tasks.x_query, lengths, labels=tasks.p_query).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if step >= warmup:
            times.append(time.perf_counter() - start)
    per_step = sorted(times)[len(times) // 2]  # median: robust to a noisy shared machine
    return {"precision": "bf16" if bf16 else "float32", "seconds_per_step": per_step,
            "sequences_per_s": batch / per_step, "positions_per_s": batch * k / per_step}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="training/configs/compact.toml")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--bf16", action="store_true", help="also time bf16 autocast")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    config = load_config(args.config)
    runs = [time_steps(config, args.steps, args.warmup, bf16=False)]
    if args.bf16:
        runs.append(time_steps(config, args.steps, args.warmup, bf16=True))
    report = {"config": args.config, "batch_size": config.optim.batch_size, "k": config.tasks.k.end,
              "torch_threads": torch.get_num_threads(), "machine": platform.processor() or platform.machine(),
              "runs": runs}
    for run in runs:
        print(f"{run['precision']:>8}: {run['seconds_per_step']:.3f} s/step, {run['sequences_per_s']:.1f} sequences/s, "
              f"{run['positions_per_s']:.0f} positions/s")
    if len(runs) == 2:
        report["bf16_speedup"] = runs[0]["seconds_per_step"] / runs[1]["seconds_per_step"]
        print(f"bf16 speed-up: {report['bf16_speedup']:.2f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
