"""Where a tuning step's time goes: one symtune optimizer step under torch.profiler, by kind of work.

Trains SmolLM2-135M-Instruct on the fixed mixture of bench_train_speed.py (8 prompts a step, at
most 512 tokens each) with the cpu-small recipe, compiled or eager, full fine-tuning or LoRA.
After the warm-up steps it times one step, then profiles the same batch again and sums the
operators' own CPU time into matmuls, attention forward and backward, compiled element-wise
kernels, the optimizer and the rest. The matmuls' FLOPs (the profiler's count) over their
time give the rate they reach inside a step, to set beside bench_tuning.py's rate at the
same shapes in a tight loop.

    .venv/bin/python benchmarks/profile_tuning.py [--eager] [--lora] [--warmup 2] [--threads 2]

Writes benchmarks/results/profile_tuning-{full,lora}-{compile,eager}.json, .png and .md.
"""

import argparse
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from bench_train_speed import build_fixed_mixture, symtune_step
from common import run_info, save, table, use_threads
from torch.profiler import ProfilerActivity, profile


def kind(op: str) -> str:
    """The kind of work an operator (a profiler event name) does."""
    op = op.lower()
    if "scaled_dot_product" in op:
        return "attention backward" if "backward" in op else "attention forward"
    if op in ("aten::mm", "aten::addmm", "aten::bmm"):
        return "matmul"
    if "compiledfxgraph" in op:  # inductor's fused element-wise kernels (its matmuls show up as aten::mm)
        return "compiled element-wise"
    if "adamw" in op:
        return "optimizer"
    return "other"


def fixed_steps(args, path: str, tokenizer) -> tuple[list, object]:
    """The fixed mixture's global batches, and symtune's step function for the chosen mode."""
    from symtune.train.data import TrainingData
    from symtune.train.recipe import load_recipe

    steps = args.warmup + 1
    recipe = load_recipe("cpu-small", {"max_steps": steps, "batch_size": args.batch_size, "bf16": "auto"})
    with tempfile.TemporaryDirectory() as tmp:
        mixture = build_fixed_mixture(Path(tmp) / "mix", n=steps * args.batch_size, tokenizer=tokenizer)
        data = TrainingData(recipe, mixture, tokenizer, context=8192)
    batches = [data.global_batch(i) for i in range(steps)]
    return batches, symtune_step(path, tokenizer, recipe, args.lora, args.compile)


def plot(rows: list[dict], title: str):
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.barh([r["kind"] for r in rows][::-1], [r["share"] for r in rows][::-1])
    ax.set_xlabel("share of the step's CPU time")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eager", dest="compile", action="store_false", help="no torch.compile (default: compiled)")
    parser.add_argument("--lora", action="store_true", help="LoRA (the recipe's) instead of full fine-tuning")
    parser.add_argument("--warmup", type=int, default=2, help="unprofiled steps first (compilation falls in them)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    slug = f"{'lora' if args.lora else 'full'}-{'compile' if args.compile else 'eager'}"
    info = run_info(f"profile_tuning-{slug}", args.threads, quick=False)
    use_threads(args.threads)

    from symtune.models import load_tokenizer, resolve_model

    path = resolve_model("smollm2-135m-instruct")
    batches, step = fixed_steps(args, path, load_tokenizer(path))
    for samples in batches[: args.warmup]:
        step(samples)
    start = time.perf_counter()
    step(batches[-1])
    seconds = time.perf_counter() - start
    tokens = sum(len(ids) for ids, _ in batches[-1])
    with profile(activities=[ProfilerActivity.CPU], with_flops=True) as prof:
        step(batches[-1])  # the timed step's batch again, so that the two times compare
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    rows = []
    for label in ("matmul", "attention forward", "attention backward", "compiled element-wise", "optimizer", "other"):
        mine = [e for e in events if kind(e.key) == label]
        own = sum(e.self_cpu_time_total for e in mine) / 1e6
        flops = sum(e.flops or 0 for e in mine)
        rows.append({"kind": label, "seconds": own, "share": own * 1e6 / total,
                     "gflop_per_s": flops / own / 1e9 if label == "matmul" and own else None})
    mode = f"{'LoRA' if args.lora else 'full'}{' + compile' if args.compile else ', eager'}"
    print(f"{mode}: the step took {seconds:.2f} s unprofiled ({tokens / seconds:.0f} tokens/s), "
          f"{total / 1e6:.2f} s of operator time profiled")
    summary = table(rows, [("kind of work", "kind", "s"), ("CPU seconds", "seconds", ".2f"), ("share", "share", ".0%"),
                           ("GFLOP/s", "gflop_per_s", ".0f")])
    print(summary)
    result = {**info, "model": "smollm2-135m-instruct", "mode": mode, "batch_size": args.batch_size,
              "unprofiled_step": {"tokens": tokens, "seconds": seconds, "tokens_per_s": tokens / seconds},
              "profiled_operator_seconds": total / 1e6,
              "results": rows, "top_operators": events.table(sort_by="self_cpu_time_total", row_limit=15)}
    save(result, plot(rows, f"One tuning step, SmolLM2-135M, {mode}"), summary)


if __name__ == "__main__":
    main()
