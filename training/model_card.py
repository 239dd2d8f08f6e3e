"""The model card (README.md) written next to a trained head."""
from __future__ import annotations

import json
from pathlib import Path


def _results_table(report: dict) -> str:
    if not report:
        return "(no synthetic evaluation was run)"
    lines = ["| k | head | logreg (best C per task, on its queries) | logreg (C by CV on the support) | oracle |",
             "|---|---|---|---|---|"]
    for r in report["results"]:
        cv = f"{r['logreg_cv']:.3f}" if "logreg_cv" in r else "–"
        lines.append(f"| {r['k']} | {r['head']:.3f} | {r['logreg']:.3f} | {cv} | {r['oracle']:.3f} |")
    return "\n".join(lines)


def _families_table(report: dict) -> str:
    if not report.get("families"):
        return ""
    lines = ["", "On fresh tasks of each prior family (`tart eval-synthetic --families`: projected as at inference, "
             "one order, no ensemble), against that family's natural baselines and the Bayes rule:", "",
             "| family | k | head | logreg (CV) | LDA (shrunk) | centroid | Bayes |", "|---|---|---|---|---|---|---|"]
    for r in report["families"]:
        lines.append(f"| {r['family']} | {r['k']} | {r['head']:.3f} | {r['logreg']:.3f} | {r['lda']:.3f} "
                     f"| {r['centroid']:.3f} | {r['bayes']:.3f} |")
    return "\n".join(lines)


def _tasks(config) -> str:
    t = config.tasks
    if t.source == "prior":
        p = config.prior
        weights = ", ".join(f"{name} {w:g}" for name, w in p.weights.items())
        return (f"the prior of task families in `tart/tasks/prior.py` ({weights}); 2–{p.max_classes} classes "
                f"({p.p_binary:.0%} binary), inputs of {p.dim_min}–{p.dim_max} dimensions with a decaying spectrum, "
                f"projected by `tart.head.projection` fitted on each task's context as at inference (the `tart` family "
                f"stays TART's raw d = 16 tasks); each step's k log-uniform in [{t.k_min}, {t.k.end}], "
                f"{t.n_queries} queries per task seeing all k points; soft targets: {t.soft_targets}.")
    return (f"w ~ {_alpha(t)}·N(0, I_d), x ~ N(0, I_d), y ~ Bernoulli(sigmoid(w·x));\n  d curriculum {t.d.start} → "
            f"{t.d.end} (+{t.d.increment} every {t.d.interval} steps), k curriculum {t.k.start} → {t.k.end}; "
            f"soft targets: {t.soft_targets}.")


def _bank_provenance(config) -> str:
    """Where a head's real episodes came from: the task bank's manifest, source by source."""
    if config.tasks.source != "prior" or not config.prior.weights.get("bank"):
        return ""
    from tart.training.task_bank import MANIFEST

    info = json.loads(MANIFEST.read_text())
    excluded = set(config.prior.bank_exclude)
    lines = [f"- Real episodes: {config.prior.weights['bank']:g} of the steps draw real labelled tasks from the task bank "
             f"(`python -m tart.training.task_bank`; `training/task_bank_manifest.json`), embedded by "
             f"{', '.join(config.prior.bank_embedders)}, projected as at inference, the real labels as targets:"]
    for source, e in info["sources"].items():
        left_out = " (left out of this run)" if source in excluded else ""
        lines.append(f"  - `{source}`{left_out}: {e['tasks']} tasks, {e['classes']} classes, {e['texts']} texts; {e['licence']}")
    lines.append("  None of the dev suite's sources, nor the sets reserved for independent checks, nor dictionary glosses.")
    return "\n".join(lines) + "\n"


def _alpha(tasks) -> str:
    """The weight scale: fixed, or log-uniform per task."""
    if tasks.alpha_min:
        return f"alpha (log-uniform in [{tasks.alpha_min:g}, {tasks.alpha:g}] per task)"
    return f"{tasks.alpha:g}"


def _residual(m) -> str:
    if m.residual == "none":
        return ""
    return (f"\nIts logits are a {m.residual} classifier's, fitted on the same context in the same input space,"
            "\nplus the Transformer's correction (`TartConfig.residual`, `tart.head.model.class_mean_scores`).")


def write_model_card(output: Path, config, summary: dict, report: dict) -> None:
    m = config.model_config()
    provenance = _bank_provenance(config)
    n_params = summary.get("parameters", "")
    hours = summary.get("wall_time_s", 0) / 3600
    text = f"""---
library_name: tart
tags: [few-shot-classification, in-context-learning, tart]
---
# {config.name}

A TART reasoning head: a {m.n_layer}-layer, {m.n_embd}-wide, {m.n_head}-head causal Transformer
{f"({n_params:,} parameters) " if n_params else ""}trained on {"synthetic tasks and real labelled text tasks" if provenance else "synthetic tasks only"}.
It reads up to {m.max_examples} labelled {m.n_dims}-dimensional points and predicts the labels of
query points ({f"up to {m.n_classes} classes natively" if m.multiclass else "binary"}), with no
gradient step on the user's task.{_residual(m)}

## Training

- Command: `tart train --config training/configs/{config.name.removeprefix("tart-")}.toml`
- Tasks: {_tasks(config)}
{provenance}{f"- Started from the weights of `{config.init_from}` (fine-tuned).{chr(10)}" if config.init_from else ""}- Optimizer: AdamW, lr {config.optim.lr:g} (warm-up {config.optim.warmup_steps}, cosine to {config.optim.min_lr:g}),
  batch {config.optim.batch_size}, {summary.get("steps")} steps, gradient clip {config.optim.grad_clip:g}.
- Wall time: {summary.get("wall_time_s", 0):.0f} s ({hours:.2f} h) on {summary.get("machine", {}).get("processor", "?")}
  ({summary.get("machine", {}).get("device", "?")}, {summary.get("machine", {}).get("torch_threads", "?")} torch threads).
- Final training loss ({config.optim.loss}): {summary.get("final_loss", float("nan")):.4f}. Full settings: `train_config.json`; loss curve: `train_log.csv`
  (beside this card in the run's output folder; for a head shipped in `checkpoints/`, these, `train_summary.json`
  and `eval.png` are kept under `results/training/<name>/`).

## Synthetic evaluation (`eval.json`, `eval.png`)

Accuracy on {report.get("tasks", "?")} fresh tasks (d={report.get("d", "?")}, alpha={report.get("alpha", "?")}),
{report.get("queries_per_task", "?")} query points each; rerun with
`tart eval-synthetic --checkpoint {output.name and "checkpoints/" + output.name} --k 8,16,32,64 --tasks {report.get("tasks", 2000)} --seed {report.get("seed", 1234)}{" --families" if report.get("families") else ""} --json eval.json`.

{_results_table(report)}
{_families_table(report)}

## Use

```python
from transformers import AutoModel
import tart  # registers the "tart" model type

head = AutoModel.from_pretrained("{output}")
probs = head.predict_proba(x_context, y_context, x_query)  # (B, k, {m.n_dims}), (B, k), (B, q, {m.n_dims})
# or, on vectors or texts: tart.classifier.TartClassifier(head="{output.name}").fit(X, y).predict(X_new)
```
"""
    (output / "README.md").write_text(text)
