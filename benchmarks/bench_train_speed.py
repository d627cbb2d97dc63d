"""Tuning speed on this machine: symtune's trainer against plain Hugging Face fine-tuning.

Tunes SmolLM2-135M-Instruct (embedded) on a fixed symbol-tuning mixture built from ../shared/data
and reports tokens per second (prompt + completion tokens, padding not counted) for:
  baseline   plain HF full fine-tuning in fp32: padded batch, model(**batch, labels=...) with -100
             on prompt and padding tokens (full-vocabulary logits at every position), fused AdamW
             (the HF Trainer's default optimizer)
  full       symtune full fine-tuning (its train_step): packed rows, LM head on completion positions
             only, bf16 autocast where the CPU has bf16, fused AdamW
  lora       symtune LoRA (r=16 on q_proj and v_proj, the cpu-small recipe), same settings
All configurations train on the same prompts, step by step in turn, so that a load change on this
shared machine hits them alike. Also reported: tokens per CPU-second (process time), which other
processes on the machine disturb less than wall time.

    .venv/bin/python benchmarks/bench_train_speed.py [--steps 10] [--warmup 1]

Writes benchmarks/results/train_speed.json.
"""

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
TASKS = ["sst2", "mnli", "ag_news", "trec", "qqp", "emotion"]


def build_fixed_mixture(out: Path, n: int, tokenizer) -> Path:
    """Symbol-tuning prompts of 1-4 exemplars per class, at most 512 tokens each."""
    from symtune.mixture import MixtureConfig, build_mixture
    from symtune.tasks.registry import load_task_list

    tasks = load_task_list([str(DATA / name) for name in TASKS])
    build_mixture(tasks, out, MixtureConfig(n=n, seed=0, k_min=1, k_max=4, max_tokens=512), tokenizer=tokenizer)
    return out


def baseline_step(model, optimizer, samples, pad_id: int) -> None:
    width = max(len(ids) for ids, _ in samples)
    input_ids = torch.full((len(samples), width), pad_id)
    attention_mask = torch.zeros((len(samples), width), dtype=torch.long)
    labels = torch.full((len(samples), width), -100)
    for i, (ids, n_prompt) in enumerate(samples):
        input_ids[i, : len(ids)] = torch.tensor(ids)
        attention_mask[i, : len(ids)] = 1
        labels[i, n_prompt: len(ids)] = torch.tensor(ids[n_prompt:])
    model(input_ids=input_ids, attention_mask=attention_mask, labels=labels).loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10, help="measured steps per configuration")
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured first steps")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                        help="torch threads (default: all cores; 1 gives steadier numbers on a busy machine)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "train_speed.json"))
    args = parser.parse_args()
    if not DATA.is_dir():
        sys.exit(f"shared data not found at {DATA}")

    from accelerate import Accelerator
    from transformers import AutoModelForCausalLM, get_scheduler

    from symtune.io import write_json
    from symtune.models import load_tokenizer, resolve_model
    from symtune.train.data import TrainingData, make_batch, supervised_tokens
    from symtune.train.loop import add_lora, make_optimizer, train_step, use_bf16
    from symtune.train.recipe import load_recipe

    torch.set_num_threads(args.threads)
    path = resolve_model("smollm2-135m-instruct")
    tokenizer = load_tokenizer(path)
    steps = args.warmup + args.steps
    recipe = load_recipe("cpu-small", {"max_steps": steps, "batch_size": args.batch_size, "bf16": "auto"})
    with tempfile.TemporaryDirectory() as tmp:
        mixture = build_fixed_mixture(Path(tmp) / "mix", n=steps * args.batch_size, tokenizer=tokenizer)
        data = TrainingData(recipe, mixture, tokenizer, context=8192)
    accelerator = Accelerator(cpu=True)
    bf16 = use_bf16(recipe.bf16, accelerator.device)

    def symtune_config(lora: bool):
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
        model = add_lora(model, recipe) if lora else model
        optimizer = make_optimizer(model.train(), recipe)
        scheduler = get_scheduler("constant", optimizer)

        def step(samples):
            batch = make_batch(samples, tokenizer.pad_token_id)
            train_step(accelerator, model, optimizer, scheduler, batch, supervised_tokens(samples), recipe, bf16)
        return step

    def baseline_config():
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.lr, fused=True)  # the HF Trainer default
        return lambda samples: baseline_step(model, optimizer, samples, tokenizer.pad_token_id)

    configs = {"baseline": baseline_config(), "full": symtune_config(lora=False), "lora": symtune_config(lora=True)}
    timings = {name: {"tokens": 0, "wall": 0.0, "cpu": 0.0, "step_tokens_per_s": []} for name in configs}
    for step in range(steps):
        samples = data.global_batch(step)
        tokens = sum(len(ids) for ids, _ in samples)
        for name, run in configs.items():
            wall, cpu = time.perf_counter(), time.process_time()
            run(samples)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            if step >= args.warmup:
                t = timings[name]
                t["tokens"] += tokens
                t["wall"] += wall
                t["cpu"] += cpu
                t["step_tokens_per_s"].append(round(tokens / wall, 1))
            print(f"step {step + 1}/{steps} {name:>8}: {tokens / wall:7.1f} tokens/s", file=sys.stderr)

    results = {}
    for name, t in timings.items():
        results[name] = {"tokens_per_s": round(t["tokens"] / t["wall"], 1),
                         "tokens_per_cpu_s": round(t["tokens"] / t["cpu"], 1),
                         "median_step_tokens_per_s": statistics.median(t["step_tokens_per_s"]),
                         "tokens": t["tokens"], "seconds": round(t["wall"], 2)}
    for name in ("full", "lora"):
        base = results["baseline"]
        results[name]["speedup"] = round(results[name]["tokens_per_s"] / base["tokens_per_s"], 2)
        results[name]["speedup_cpu_time"] = round(results[name]["tokens_per_cpu_s"] / base["tokens_per_cpu_s"], 2)
    report = {
        "benchmark": "train_speed", "model": "smollm2-135m-instruct", "tasks": TASKS,
        "steps": args.steps, "warmup": args.warmup, "batch_size": args.batch_size, "bf16_autocast": bf16,
        "threads": args.threads, "load_average": os.getloadavg(), "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(), "results": results,
        "command": "python benchmarks/bench_train_speed.py " + " ".join(sys.argv[1:]),
    }
    write_json(args.out, report)
    for name, r in results.items():
        extra = f"  ({r['speedup']}x wall, {r['speedup_cpu_time']}x CPU time)" if "speedup" in r else ""
        print(f"{name:>8}: {r['tokens_per_s']:7.1f} tokens/s, {r['tokens_per_cpu_s']:7.1f} tokens/CPU-s{extra}")
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
