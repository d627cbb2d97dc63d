"""Tuning speed, side by side: symtune vs TRL's SFTTrainer, and symtune's model FLOPs utilization.

Both tools train the same model on the same prompt/completion mixture with the same global
batch (8 prompts, one forward each step), learning rate and schedule (TRL's: linear decay,
no warm-up), optimizer (AdamW), gradient clipping, dtype (fp32 weights, bf16 autocast) and
LoRA config, loss on the completion tokens only. symtune packs prompts into rows with
block-diagonal attention and runs the LM head on the supervised positions only; it runs twice:
eager, and with the recipe's `compile: true` (each decoder layer through torch.compile, whose
compiling falls in the untimed first step). TRL reads the prompts in symtune's order
(sequential sampling), so both train on the same prompts at every step and the loss curves
must overlay. Each run trains in a fresh process of its own. Otherwise TRL keeps its defaults,
run twice: gradient checkpointing on (its default) and off ("tuned"); no packing (unsafe without
FlashAttention). Full fine-tuning and LoRA.

Speed is non-padding tokens (prompt + completion) per second of optimizer steps, counted
the same way for both; the first step (kernel set-up) is left out. MFU: model FLOPs per
second over this CPU's measured matmul rate (best of large square torch.matmul calls); model
FLOPs count the weights and attention as PaLM's MFU does (flops_per_token). The same FLOP/s are
also given as a share of the rate the CPU reaches at the model's own (narrow) layer shapes.

    .venv/bin/python benchmarks/bench_tuning.py            # 30 steps per run
    .venv/bin/python benchmarks/bench_tuning.py --quick    # a smoke run: 3 small steps, no compile runs

Writes benchmarks/results/bench_tuning[-fp32][-quick].json, .md and .png (loss curves and tokens/s);
-fp32 for a --no-bf16 run, so that the fp32 and bf16 comparisons live side by side.
Needs the benchmark extras: pip install -e '.[bench]'.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch
from common import DATA, run_info, save, table, timed, use_threads
from peft import LoraConfig
from transformers import AutoModelForCausalLM, TrainerCallback

from symtune.errors import SymtuneError
from symtune.io import read_jsonl, write_jsonl
from symtune.mixture import MixtureConfig, build_mixture, read_mixture, write_mixture
from symtune.models import bf16_native, load_tokenizer, resolve_model
from symtune.tasks.registry import load_task_list
from symtune.train import load_recipe, tune
from symtune.train.data import TrainingData

TASKS = ("sst2", "trec", "snli", "ag_news")  # tuning-pool tasks from ../shared/data
RUNS = ("symtune", "symtune+compile", "trl-default", "trl-no-checkpointing")
STYLES = dict(zip(RUNS, ("-", ":", "-", "--")))  # each tool's two runs compute the same losses


def build_rows(tokenizer, n: int, max_tokens: int, workdir: Path, tasks=None) -> list[dict]:
    """n mixture rows (each prompt seen once per run) of `tasks` (default: TASKS from ../shared/data).
    TRL appends EOS to every completion that lacks one; the rows carry it already, so both tools
    supervise the same tokens."""
    if tasks is None:
        missing = [name for name in TASKS if not (DATA / name).is_dir()]
        if missing:
            raise SymtuneError(f"benchmark data not found: {', '.join(str(DATA / m) for m in missing)}")
        tasks = load_task_list([str(DATA / name) for name in TASKS])
    build_mixture(tasks, workdir / "built", MixtureConfig(n=n, seed=0, max_tokens=max_tokens), tokenizer=tokenizer)
    rows, manifest = read_mixture(workdir / "built")
    rows = [row | {"completion": row["completion"] + tokenizer.eos_token} for row in rows]
    write_mixture(workdir / "mixture", rows, manifest | {"total_tokens": None})  # the EOS changed the count
    return rows


def symtune_recipe(args, lora: bool, compile: bool = False):
    return load_recipe("cpu-small", {
        "max_steps": args.steps, "batch_size": args.batch_size, "lr": args.lr, "scheduler": "linear",
        "warmup_steps": 0, "weight_decay": 0.0, "max_grad_norm": 1.0, "lora": lora, "bf16": args.bf16,
        "save_every": args.steps + 1, "seed": 0, "compile": compile,
    })


def in_symtune_order(rows: list[dict], tokenizer, workdir: Path, args) -> list[dict]:
    """The mixture's rows in the order symtune's schedule takes them. TRL reads them in that order
    (sequential sampling), so both tools train on the same prompts at every step and their loss
    curves can be laid over each other."""
    training = TrainingData(symtune_recipe(args, lora=False), workdir / "mixture", tokenizer, context=1 << 20)
    assert not training.skipped and len(training.samples) == len(rows)  # sample i is row i
    return [rows[i] for step in training.schedule for i in step]


def run_symtune(model_path: str, workdir: Path, args, lora: bool, compile: bool = False) -> list[dict]:
    name = f"symtune-{'lora' if lora else 'full'}{'-compile' if compile else ''}"
    out = tune(model_path, workdir / "mixture", workdir / name, symtune_recipe(args, lora, compile), progress=False)
    return [{"step": r["step"], "loss": r["loss"], "tokens": r["tokens"], "seconds": r["seconds"]}
            for r in read_jsonl(out / "train_log.jsonl")]


class StepTimer(TrainerCallback):
    """Wall-clock seconds of each optimizer step (forward, backward, clipping, update)."""

    def __init__(self):
        self.seconds = []

    def on_step_begin(self, args, state, control, **kwargs):
        self.start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.seconds.append(time.perf_counter() - self.start)


def run_trl(model_path: str, tokenizer, rows: list[dict], workdir: Path, args, lora: bool,
            checkpointing: bool) -> list[dict]:
    from datasets import Dataset  # the benchmark extras, imported where they run (gpu_check runs without TRL)
    from trl import SFTConfig, SFTTrainer

    config = SFTConfig(
        output_dir=str(workdir / "trl"), max_steps=args.steps, per_device_train_batch_size=args.batch_size,
        gradient_accumulation_steps=1, learning_rate=args.lr, bf16=args.bf16, gradient_checkpointing=checkpointing,
        train_sampling_strategy="sequential", use_cpu=not torch.cuda.is_available(), seed=0, logging_steps=1,
        include_num_input_tokens_seen="non_padding", save_strategy="no", disable_tqdm=True,
    )
    timer = StepTimer()
    trainer = SFTTrainer(
        model=AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32),
        args=config, processing_class=tokenizer, callbacks=[timer],
        train_dataset=Dataset.from_list([{"prompt": r["prompt"], "completion": r["completion"]} for r in rows]),
        peft_config=lora_config() if lora else None,
    )
    trainer.train()
    logs = [e for e in trainer.state.log_history if "loss" in e]
    seen = [0] + [e["num_input_tokens_seen"] for e in logs]
    return [{"step": e["step"], "loss": e["loss"], "tokens": seen[i + 1] - seen[i], "seconds": s}
            for i, (e, s) in enumerate(zip(logs, timer.seconds))]


def lora_config() -> LoraConfig:
    """The LoRA config of symtune's cpu-small recipe, handed to TRL unchanged."""
    recipe = load_recipe("cpu-small")
    return LoraConfig(r=recipe.lora_r, lora_alpha=recipe.lora_alpha, lora_dropout=recipe.lora_dropout,
                      target_modules=recipe.lora_target_modules, task_type="CAUSAL_LM")


def run_alone(mode: str, run: str, workdir: Path, args) -> list[dict]:
    """One run's log, trained in a fresh process: each tool starts from a clean heap and its own
    process set-up (symtune's keep_freed_memory() does not reach TRL's runs)."""
    command = [sys.executable, __file__, "--only", f"{mode}/{run}", "--workdir", str(workdir), "--model", args.model,
               "--steps", str(args.steps), "--batch-size", str(args.batch_size), "--lr", str(args.lr),
               "--threads", str(args.threads)] + ([] if args.bf16 else ["--no-bf16"])
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise SymtuneError(f"{mode} {run} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.splitlines()[-1])


def run_one(only: str, workdir: Path, args) -> list[dict]:
    mode, run = only.split("/")
    model_path, lora = resolve_model(args.model), mode == "lora"
    if run.startswith("symtune"):
        return run_symtune(model_path, workdir, args, lora, compile=run == "symtune+compile")
    rows = read_jsonl(workdir / "ordered.jsonl")
    return run_trl(model_path, load_tokenizer(model_path), rows, workdir, args, lora,
                   checkpointing=run == "trl-default")


def tokens_per_s(log: list[dict]) -> float:
    measured = log[1:]  # the first step sets up kernels and allocators
    return sum(r["tokens"] for r in measured) / sum(r["seconds"] for r in measured)


def matmul_peak(dtype: torch.dtype, sizes: tuple[int, ...], repeats: int, device: str = "cpu") -> float:
    """Best FLOP/s of square matmuls on `device` (a CPU: at the current thread count)."""
    # A GPU runs a matmul asynchronously: the clock stops once it has finished.
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else lambda: None
    best = 0.0
    for n in sizes:
        a, b = (torch.randn(n, n, dtype=dtype, device=device) for _ in range(2))
        torch.matmul(a, b)
        sync()
        for _ in range(repeats):
            _, seconds = timed(lambda: (torch.matmul(a, b), sync()))
            best = max(best, 2 * n**3 / seconds)
    return best


def layer_matmul_rate(model_path: str, tokens: int, dtype: torch.dtype, repeats: int) -> float:
    """FLOP/s of one decoder layer's own matmuls (tokens x in -> out for each of its linear
    weights, best of `repeats`): what this CPU reaches at the model's shapes, which are far
    narrower than the square peak's."""
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    layer = model.get_decoder().layers[0]
    flops = seconds = 0.0
    for linear in (m for m in layer.modules() if isinstance(m, torch.nn.Linear)):
        x, w = torch.randn(tokens, linear.in_features, dtype=dtype), linear.weight.detach().to(dtype).T.contiguous()
        torch.matmul(x, w)
        flops += 2 * tokens * linear.in_features * linear.out_features
        seconds += min(timed(torch.matmul, x, w)[1] for _ in range(repeats))
    return flops / seconds


def attention_span(tokenizer, rows: list[dict]) -> float:
    """Keys per trained token, averaged over tokens: a sample of t tokens attends over t (PaLM's
    MFU does not discount causal masking), so the mean is sum(t^2) / sum(t)."""
    lengths = [len(tokenizer(r["prompt"] + r["completion"]).input_ids) for r in rows]
    return sum(t * t for t in lengths) / sum(lengths)


def flops_per_token(model_path: str, lora: bool, span: float) -> tuple[float, str]:
    """Model FLOPs per trained token, PaLM's way: 6 N for the weights plus 12 L H Q T for attention
    (T = `span`). N excludes the (tied) embedding / LM head matrix, which symtune applies to the
    supervised positions only. Attention has no weights, so LoRA does not shrink its part."""
    from peft import get_peft_model

    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    config = model.config
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    attention = 12 * config.num_hidden_layers * config.num_attention_heads * head_dim * span
    n_base = sum(p.numel() for p in model.parameters()) - model.get_input_embeddings().weight.numel()
    if not lora:
        return 6 * n_base + attention, f"6 N + 12 L H Q T (T = {span:.0f})"
    n_lora = sum(p.numel() for p in get_peft_model(model, lora_config()).parameters() if p.requires_grad)
    return 4 * n_base + 6 * n_lora + attention, \
        f"4 N + 6 N_lora + 12 L H Q T (T = {span:.0f}; frozen weights get input gradients only)"


def plot(curves: dict, rows: list[dict]):
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    for ax, mode in zip(axes[:2], ("full", "lora")):
        for run in (r["run"] for r in rows if r["mode"] == mode):
            log = curves[f"{mode}/{run}"]
            ax.plot([r["step"] for r in log], [r["loss"] for r in log], STYLES[run], label=run, linewidth=1.2)
        ax.set_title(f"{mode} fine-tuning")
        ax.set_xlabel("step")
        ax.set_ylabel("loss on completion tokens")
        ax.legend()
    axes[2].barh([f"{r['mode']} {r['run']}" for r in rows][::-1], [r["tokens_per_s"] for r in rows][::-1],
                 color=[f"C{RUNS.index(r['run'])}" for r in rows][::-1])  # each run's colour in the loss panels
    axes[2].set_xlabel("tokens / s (non-padding)")
    axes[2].set_title("speed")
    fig.tight_layout()
    return fig


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="3 steps of 4 prompts of at most 192 tokens, no compile runs: under 5 minutes")
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--steps", type=int, default=30, help="optimizer steps per run (the first is not timed)")
    parser.add_argument("--batch-size", type=int, default=8, help="prompts per optimizer step")
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--max-tokens", type=int, default=512, help="prompt + completion tokens, at most")
    parser.add_argument("--no-bf16", dest="bf16", action="store_false", help="fp32 throughout instead of bf16 autocast")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", choices=[f"{m}/{r}" for m in ("full", "lora") for r in RUNS], help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)  # with --only: the parent's mixture
    args = parser.parse_args()
    if args.quick:
        args.steps, args.batch_size, args.max_tokens = 3, 4, 192
    if args.steps < 2:
        raise SymtuneError("--steps must be at least 2 (the first step is not timed)")
    use_threads(args.threads)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.only:
        print(json.dumps(run_one(args.only, args.workdir, args)))
        return
    info = run_info("bench_tuning" if args.bf16 else "bench_tuning-fp32", args.threads, args.quick)

    sizes, repeats = ((1024, 2048), 3) if args.quick else ((1024, 2048, 4096), 5)
    native = bf16_native(torch.device("cpu"))
    # Without AVX512-BF16 / AMX a bf16 matmul is emulated, orders of magnitude slower: one small size shows it.
    peak = {"fp32": matmul_peak(torch.float32, sizes, repeats),
            "bf16": matmul_peak(torch.bfloat16, sizes if native else sizes[:1], repeats if native else 1)}
    print(f"matmul peak, {args.threads} threads: fp32 {peak['fp32'] / 1e9:.0f} GFLOP/s, "
          f"bf16 {peak['bf16'] / 1e9:.0f} GFLOP/s")

    model_path = resolve_model(args.model)
    tokenizer = load_tokenizer(model_path)
    dtype = torch.bfloat16 if args.bf16 else torch.float32
    layer_rate = layer_matmul_rate(model_path, args.batch_size * args.max_tokens, dtype, repeats)
    print(f"matmul rate at the model's layer shapes: {layer_rate / 1e9:.0f} GFLOP/s")
    curves, rows = {}, []
    runs = [r for r in RUNS if not (args.quick and r.endswith("+compile"))]  # compiling alone takes minutes
    with tempfile.TemporaryDirectory(prefix="bench_tuning.") as tmp:
        workdir = Path(tmp)
        mixture = in_symtune_order(build_rows(tokenizer, args.steps * args.batch_size, args.max_tokens, workdir),
                                   tokenizer, workdir, args)
        write_jsonl(workdir / "ordered.jsonl", mixture)
        span = attention_span(tokenizer, mixture)
        for mode in ("full", "lora"):
            flops, accounting = flops_per_token(model_path, mode == "lora", span)
            for run in runs:
                load = round(os.getloadavg()[0], 2)
                log = run_alone(mode, run, workdir, args)
                curves[f"{mode}/{run}"] = log
                speed = tokens_per_s(log)
                rows.append({"mode": mode, "run": run, "tokens_per_s": speed, "load_average_before": load,
                             "threads_used": args.threads,
                             "mean_tokens_per_step": sum(r["tokens"] for r in log) / len(log),
                             "final_loss": sum(r["loss"] for r in log[-5:]) / len(log[-5:]),
                             "model_flops_per_token": flops, "flops_accounting": accounting,
                             "mfu": speed * flops / peak["bf16" if args.bf16 else "fp32"],
                             "share_of_layer_matmul_rate": speed * flops / layer_rate})
                print(f"{mode} {run}: {speed:.0f} tokens/s, final loss {rows[-1]['final_loss']:.3f}", flush=True)
            base = {r["run"]: r["tokens_per_s"] for r in rows if r["mode"] == mode}
            for r in rows[-len(runs):]:
                r["speedup_vs_trl_default"] = r["tokens_per_s"] / base["trl-default"]
                r["speedup_vs_trl_no_checkpointing"] = r["tokens_per_s"] / base["trl-no-checkpointing"]

    summary = table(rows, [
        ("mode", "mode", "s"), ("run", "run", "s"), ("tokens/s", "tokens_per_s", ".0f"),
        ("vs TRL default", "speedup_vs_trl_default", ".2f"),
        ("vs TRL no-ckpt", "speedup_vs_trl_no_checkpointing", ".2f"),
        ("final loss", "final_loss", ".3f"), ("MFU", "mfu", ".1%"),
        ("MFU at layer shapes", "share_of_layer_matmul_rate", ".0%"), ("load before", "load_average_before", ".1f"),
    ])
    print(summary)
    result = {**info, "model": args.model, "tasks": TASKS, "steps": args.steps, "batch_size": args.batch_size,
              "lr": args.lr, "max_tokens": args.max_tokens, "bf16_autocast": args.bf16,
              "targets": {"vs_trl_default": 2.0, "vs_trl_no_checkpointing": 1.5, "mfu": 0.3},
              "bf16_native": native, "matmul_peak_flops": peak, "layer_matmul_flops": layer_rate, "results": rows,
              "loss_curves": curves}
    save(result, plot(curves, rows), summary)


if __name__ == "__main__":
    main()
