"""A tuning step's memory on a CPU: tokens/s, page faults and peak memory, by allocator setting and micro-batch size.

Full fine-tuning (or LoRA) of SmolLM2-135M-Instruct with symtune's train_step on bench_train_speed's
fixed mixture (8 prompts of up to 512 tokens per step). Configurations:
  glibc default  the whole step's packed rows in one forward and backward, glibc's malloc as is
  whole          the same with symtune's keep_freed_memory() (what `symtune tune` does on a CPU)
  1024, 512      the same, with `micro_batch_tokens` 1024 or 512: the rows split into the fewest
                 micro-batches of at most that many padded tokens, whose gradients accumulate
Each configuration runs in a process of its own (malloc's heap is per process, and it is what
this measures), on the same prompts, in two rounds, the second in reverse order, so that a slow
spell on this shared machine does not fall on one configuration alone. Minor page faults count
the memory a step takes fresh from the OS, peak RSS the process's most memory (getrusage). The
first step of each process is not timed.

    .venv/bin/python benchmarks/bench_step_memory.py [--steps 4] [--lora] [--threads 2]

Writes benchmarks/results/bench_step_memory[-lora].json, .png and .md.
"""

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_train_speed import build_fixed_mixture, plot, symtune_step
from common import run_info, save, table, timed, use_threads

CONFIGS = {"glibc default": (None, False), "whole": (None, True), "1024": (1024, True), "512": (512, True)}


def run_alone(label: str, args) -> dict:
    """One configuration measured in a fresh process."""
    command = [sys.executable, __file__, "--only", label, "--steps", str(args.steps), "--batch-size",
               str(args.batch_size), "--threads", str(args.threads)] + ["--lora"] * args.lora
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.splitlines()[-1])


def minor_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def measure(args, micro_batch_tokens: int | None, keep_memory: bool) -> dict:
    """Tokens, seconds and page faults of the measured steps of one configuration."""
    from symtune.models import load_tokenizer, resolve_model
    from symtune.train.data import TrainingData
    from symtune.train.recipe import load_recipe

    path = resolve_model("smollm2-135m-instruct")
    tokenizer = load_tokenizer(path)
    steps = args.steps + 1
    recipe = load_recipe("cpu-small", {"max_steps": steps, "batch_size": args.batch_size, "bf16": "auto",
                                       "micro_batch_tokens": micro_batch_tokens})
    with tempfile.TemporaryDirectory() as tmp:
        mixture = build_fixed_mixture(Path(tmp) / "mix", n=steps * args.batch_size, tokenizer=tokenizer)
        data = TrainingData(recipe, mixture, tokenizer, context=8192)
    run = symtune_step(path, tokenizer, recipe, args.lora, compile=False, keep_memory=keep_memory)
    t = {"tokens": 0, "wall": 0.0, "faults": [], "step_tokens_per_s": []}
    for step in range(steps):
        samples = data.global_batch(step)
        tokens = sum(len(ids) for ids, _ in samples)
        before = minor_faults()
        _, wall = timed(run, samples)
        if step:  # the first step sets up kernels and grows the heap
            t["tokens"] += tokens
            t["wall"] += wall
            t["faults"].append(minor_faults() - before)
            t["step_tokens_per_s"].append(round(tokens / wall, 1))
    t["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux counts KiB
    return t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4, help="measured steps per configuration and round")
    parser.add_argument("--lora", action="store_true", help="LoRA (the cpu-small recipe's) instead of full fine-tuning")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", choices=CONFIGS, help=argparse.SUPPRESS)  # one configuration, JSON to stdout
    args = parser.parse_args()
    name = "bench_step_memory" + ("-lora" if args.lora else "")
    use_threads(args.threads)
    if args.only:
        print(json.dumps(measure(args, *CONFIGS[args.only])))
        return
    info = run_info(name, args.threads, quick=False)
    timings = {label: {"tokens": 0, "wall": 0.0, "faults": [], "step_tokens_per_s": [], "peak_rss_gb": 0.0}
               for label in CONFIGS}
    for label in list(CONFIGS) + list(CONFIGS)[::-1]:
        t = run_alone(label, args)
        for key in ("tokens", "wall", "faults", "step_tokens_per_s"):
            timings[label][key] += t[key]
        timings[label]["peak_rss_gb"] = max(timings[label]["peak_rss_gb"], t["peak_rss_gb"])
        print(f"{label:>13}: {t['tokens'] / t['wall']:6.1f} tokens/s", file=sys.stderr)

    default = timings["glibc default"]["tokens"] / timings["glibc default"]["wall"]
    rows = [{"config": label, "micro_batch_tokens": CONFIGS[label][0],
             "keep_freed_memory": CONFIGS[label][1], "tokens_per_s": t["tokens"] / t["wall"],
             "speedup_vs_glibc_default": t["tokens"] / t["wall"] / default,
             "median_page_faults_per_step": statistics.median(t["faults"]), "peak_rss_gb": t["peak_rss_gb"],
             "seconds": round(t["wall"], 2)}
            for label, t in timings.items()]
    result = {**info, "model": "smollm2-135m-instruct", "lora": args.lora, "steps": args.steps,
              "batch_size": args.batch_size, "mean_tokens_per_step": timings["whole"]["tokens"] / args.steps / 2,
              "results": rows, "page_faults": {label: t["faults"] for label, t in timings.items()},
              "step_tokens_per_s": {label: t["step_tokens_per_s"] for label, t in timings.items()}}
    save(result, plot(timings), table(rows, COLUMNS))


COLUMNS = [("config", "config", "s"), ("tokens/s", "tokens_per_s", ".0f"),
           ("× glibc default", "speedup_vs_glibc_default", ".2f"),
           ("page faults per step (median)", "median_page_faults_per_step", ".0f"),
           ("peak RSS (GB)", "peak_rss_gb", ".2f")]


if __name__ == "__main__":
    main()
