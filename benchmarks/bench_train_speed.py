"""Tuning speed on this machine: symtune's trainer against plain Hugging Face fine-tuning.

Tunes SmolLM2-135M-Instruct (embedded) on a fixed symbol-tuning mixture built from ../shared/data
and reports tokens per second (prompt + completion tokens, padding not counted) for:
  baseline   plain HF full fine-tuning in fp32: padded batch, model(**batch, labels=...) with -100
             on prompt and padding tokens (full-vocabulary logits at every position), fused AdamW
             (the HF Trainer's default optimizer)
  full       symtune full fine-tuning (its train_step): packed rows, LM head on completion positions
             only, bf16 autocast where the CPU has bf16, fused AdamW
  lora       symtune LoRA (r=16 on q_proj and v_proj, the cpu-small recipe), same settings
  +compile   the same with the recipe's `compile: true` (torch.compile of each decoder layer; its
             compilation falls in the unmeasured warm-up step)
All configurations train on the same prompts, step by step in turn, so that a load change on this
shared machine hits them alike. They share one process, so symtune's keep_freed_memory() (glibc
keeps freed memory) holds for the baseline too.

    .venv/bin/python benchmarks/bench_train_speed.py [--steps 10] [--warmup 1] [--threads 2]

Writes benchmarks/results/bench_train_speed.json, .png and .md.
"""

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from common import DATA, run_info, save, table, timed, use_threads  # noqa: E402

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


def symtune_step(path: str, tokenizer, recipe, lora: bool, compile: bool, keep_memory: bool = True):
    """A function that runs one symtune optimizer step (its train_step) on a list of samples, in a
    process set up as `symtune tune` sets it (keep_freed_memory(), unless `keep_memory` is off)."""
    from accelerate import Accelerator
    from transformers import AutoModelForCausalLM, get_scheduler

    from symtune.train.data import make_batches, supervised_tokens
    from symtune.train.loop import add_lora, compile_layers, keep_freed_memory, make_optimizer, train_step, use_bf16

    accelerator = Accelerator(cpu=True)
    if keep_memory:
        keep_freed_memory()
    bf16 = use_bf16(recipe.bf16, accelerator.device)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32,
                                                 attn_implementation=recipe.attn_implementation)
    model = add_lora(model, recipe) if lora else model
    if compile:
        compile_layers(model)
    optimizer = make_optimizer(model.train(), recipe)
    scheduler = get_scheduler("constant", optimizer)

    def step(samples):
        batches = make_batches(samples, tokenizer.pad_token_id, recipe.micro_batch_tokens)
        train_step(accelerator, model, optimizer, scheduler, batches, supervised_tokens(samples), bf16,
                   recipe.max_grad_norm)
    return step


def plot(timings: dict):
    fig, ax = plt.subplots(figsize=(6, 3.4))
    for name, t in timings.items():
        ax.plot(range(1, len(t["step_tokens_per_s"]) + 1), t["step_tokens_per_s"], marker="o", label=name)
    ax.set_xlabel("measured step")
    ax.set_ylabel("tokens/s")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10, help="measured steps per configuration")
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured first steps")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    info = run_info("bench_train_speed", args.threads, quick=False)
    use_threads(args.threads)

    from transformers import AutoModelForCausalLM

    from symtune.models import load_tokenizer, resolve_model
    from symtune.train.data import TrainingData
    from symtune.train.loop import use_bf16
    from symtune.train.recipe import load_recipe

    path = resolve_model("smollm2-135m-instruct")
    tokenizer = load_tokenizer(path)
    steps = args.warmup + args.steps
    recipe = load_recipe("cpu-small", {"max_steps": steps, "batch_size": args.batch_size, "bf16": "auto"})
    with tempfile.TemporaryDirectory() as tmp:
        mixture = build_fixed_mixture(Path(tmp) / "mix", n=steps * args.batch_size, tokenizer=tokenizer)
        data = TrainingData(recipe, mixture, tokenizer, context=8192)

    def symtune_config(lora: bool, compile: bool = False):
        return symtune_step(path, tokenizer, recipe, lora, compile)

    def baseline_config():
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.lr, fused=True)  # the HF Trainer default
        return lambda samples: baseline_step(model, optimizer, samples, tokenizer.pad_token_id)

    configs = {"baseline": baseline_config(), "full": symtune_config(lora=False),
               "full+compile": symtune_config(lora=False, compile=True), "lora": symtune_config(lora=True),
               "lora+compile": symtune_config(lora=True, compile=True)}
    timings = {name: {"tokens": 0, "wall": 0.0, "step_tokens_per_s": []} for name in configs}
    for step in range(steps):
        samples = data.global_batch(step)
        tokens = sum(len(ids) for ids, _ in samples)
        for name, run in configs.items():
            _, wall = timed(run, samples)
            if step >= args.warmup:
                timings[name]["tokens"] += tokens
                timings[name]["wall"] += wall
                timings[name]["step_tokens_per_s"].append(round(tokens / wall, 1))
            print(f"step {step + 1}/{steps} {name:>8}: {tokens / wall:7.1f} tokens/s", file=sys.stderr)

    base = timings["baseline"]["tokens"] / timings["baseline"]["wall"]
    rows = [{"config": name, "tokens_per_s": t["tokens"] / t["wall"],
             "median_step_tokens_per_s": statistics.median(t["step_tokens_per_s"]),
             "speedup": None if name == "baseline" else t["tokens"] / t["wall"] / base,
             "target": {"full": 2.0, "lora": 4.0}.get(name.removesuffix("+compile")), "tokens": t["tokens"],
             "seconds": round(t["wall"], 2)}
            for name, t in timings.items()]
    result = {**info, "model": "smollm2-135m-instruct", "tasks": TASKS, "steps": args.steps, "warmup": args.warmup,
              "batch_size": args.batch_size, "bf16_autocast": use_bf16(recipe.bf16, torch.device("cpu")),
              "attn_implementation": recipe.attn_implementation,
              "lora_target_modules": recipe.lora_target_modules, "results": rows,
              "step_tokens_per_s": {name: t["step_tokens_per_s"] for name, t in timings.items()}}
    save(result, plot(timings), table(rows, COLUMNS))


COLUMNS = [("config", "config", ""), ("tokens/s", "tokens_per_s", ".0f"), ("× baseline", "speedup", ".2f"),
           ("target", "target", ".0f")]


if __name__ == "__main__":
    main()
