"""tune(): symbol-tune a causal LM on prompt/completion mixtures, loss on the completion tokens only.

The same code runs in one CPU process and under `accelerate launch` (DDP, FSDP, DeepSpeed): every
process builds the same global batch of prompts for a step and trains on its share of it.
"""

import contextlib
import ctypes
import json
import os
import shutil
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from symtune import __version__
from symtune.errors import SymtuneError
from symtune.io import read_jsonl, write_jsonl
from symtune.mixture import manifest_tasks
from symtune.models import bf16_native, load_model, load_tokenizer, model_fingerprint, resolve_model
from symtune.train.checkpoint import SAVE_ERRORS, checkpoints, load_checkpoint, save_checkpoint
from symtune.train.data import TrainingData, make_batches, supervised_tokens
from symtune.train.distributed import check_setup, first_error, make_accelerator
from symtune.train.output import model_card, plot_loss
from symtune.train.recipe import DEFAULT_RECIPE, VARLEN_ATTENTION, Recipe, load_recipe
from symtune.train.record import training_record, write_training_record

LOG = "train_log.jsonl"


def use_bf16(setting, device: torch.device) -> bool:
    return bf16_native(device) if setting == "auto" else setting


def weights_dtype(recipe: Recipe, device: torch.device, bf16: bool) -> torch.dtype:
    """bf16 for LoRA's frozen base on a GPU under bf16 autocast, which casts the weights to bf16 for every
    matmul anyway: half the weight memory. Trained weights stay fp32 (peft keeps the adapters fp32), since
    bf16 weights would drop updates smaller than their precision."""
    return torch.bfloat16 if recipe.lora and bf16 and device.type == "cuda" else torch.float32


def context_length(model_path: str) -> int | None:
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(model_path).max_position_embeddings
    except (OSError, ValueError, AttributeError):  # an adapter folder, or a config without the field
        return None


def add_lora(model, recipe: Recipe):
    from peft import LoraConfig, get_peft_model

    targets = recipe.lora_target_modules
    if targets not in (None, "all-linear"):
        targets = [targets] if isinstance(targets, str) else targets
        names = {name.rsplit(".", 1)[-1] for name, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
        missing = [t for t in targets if t not in names]
        if missing:
            raise SymtuneError(f"LoRA target modules not in the model: {', '.join(missing)} "
                               f"(its linear layers: {', '.join(sorted(names))})")
    config = LoraConfig(r=recipe.lora_r, lora_alpha=recipe.lora_alpha, lora_dropout=recipe.lora_dropout,
                        target_modules=targets, task_type="CAUSAL_LM")
    try:
        return get_peft_model(model, config)
    except ValueError as e:  # e.g. peft knows no default target modules for this architecture
        raise SymtuneError(f"cannot add LoRA adapters: {e}; set lora_target_modules (e.g. all-linear)") from None


def compile_layers(model) -> None:
    """torch.compile each decoder layer (the classes HF names in `_no_split_modules`), with dynamic
    shapes since packed rows change width every step. The layers fuse their norms, rotary and
    activation work; the model's top level (masks, LM head hook) stays eager."""
    compilers = [os.environ.get("CXX"), "g++", "clang++"]
    if not any(c and shutil.which(c) for c in compilers):
        raise SymtuneError("compile: true needs a C++ compiler (g++ or clang++, or $CXX) for torch.compile's kernels")
    layer_classes = set(getattr(model, "_no_split_modules", None) or ())
    layers = [m for m in model.modules() if type(m).__name__ in layer_classes]
    if not layers:
        raise SymtuneError(f"compile: no decoder layers found in {type(model).__name__} (set compile: false)")
    for layer in layers:
        layer.compile(dynamic=True)


M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4  # glibc's mallopt parameters (malloc.h)


def keep_freed_memory() -> None:
    """Have glibc keep freed memory for the next allocation instead of handing it back to the OS.
    A CPU step allocates and frees GBs of activations; by default glibc returns much of it (large
    blocks are mmap'd and unmapped, the heap's free top is trimmed) and the next step page-faults
    it all in again (benchmarks/bench_step_memory.py counts the faults). The process keeps its peak
    memory instead. Does nothing without glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    libc.mallopt(M_MMAP_MAX, 0)  # large blocks come from the heap as well
    libc.mallopt(M_TRIM_THRESHOLD, 2**40)  # and the heap never shrinks


def trainable_model(model_path: str, recipe: Recipe, device: torch.device, bf16: bool):
    """The model in training mode as the recipe sets it up: weights' dtype, checkpointing, LoRA, compiled layers."""
    model, _ = load_model(model_path, dtype=weights_dtype(recipe, device, bf16),
                          attn_implementation=recipe.attn_implementation)
    if recipe.gradient_checkpointing:  # non-reentrant: correct with a frozen base (LoRA) and with keyword inputs
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if recipe.lora:
        model = add_lora(model, recipe)
    if recipe.compile:
        compile_layers(model)
    return model.train()


def make_optimizer(model, recipe: Recipe):
    params = [p for p in model.parameters() if p.requires_grad]
    if recipe.optimizer == "adafactor":
        from transformers.optimization import Adafactor

        # The papers' Adafactor (T5X, PaLM) scales each update by its parameter's RMS, so their lr of
        # 3e-3 is a relative step. Unscaled, 3e-3 is an absolute step per weight, a large share of a
        # small model's weights, and tuning diverges.
        return Adafactor(params, lr=recipe.lr, weight_decay=recipe.weight_decay, scale_parameter=True,
                         relative_step=False)
    # fused: one kernel updates every parameter, instead of a loop of small per-tensor kernels whose
    # launches and passes over memory dominate a CPU step
    return torch.optim.AdamW(params, lr=recipe.lr, weight_decay=recipe.weight_decay, fused=True)


def supervised_logits(accelerator, model, batch, bf16: bool) -> torch.Tensor:
    """Logits at the supervised positions only: the LM head sees hidden[select], never the rest."""
    head = accelerator.unwrap_model(model).get_output_embeddings()
    select = batch["select"].to(accelerator.device)
    varlen = {}
    if "cu_seq_lens" in batch:  # flash attention: one row of samples, run per sample between these bounds
        cu = batch["cu_seq_lens"].to(accelerator.device)
        varlen = dict(cu_seq_lens_q=cu, cu_seq_lens_k=cu, max_length_q=batch["max_length"],
                      max_length_k=batch["max_length"])
    hook = head.register_forward_pre_hook(lambda module, args: (args[0][select],))
    try:
        with torch.autocast(accelerator.device.type, dtype=torch.bfloat16, enabled=bf16):
            return model(input_ids=batch["input_ids"].to(accelerator.device),
                         position_ids=batch["position_ids"].to(accelerator.device), use_cache=False, **varlen).logits
    finally:
        hook.remove()


def train_step(accelerator, model, optimizer, scheduler, batches: list[dict], n_targets: int, bf16: bool,
               max_grad_norm: float | None) -> float:
    """One optimizer step over this process's micro-batches, whose gradients accumulate; returns the
    mean loss over all completion tokens of the global batch."""
    loss_sum = 0.0
    for i, batch in enumerate(batches):
        last = i == len(batches) - 1
        with contextlib.nullcontext() if last else accelerator.no_sync(model):  # processes sync once, at the end
            logits = supervised_logits(accelerator, model, batch, bf16)
            loss = F.cross_entropy(logits.float(), batch["targets"].to(logits.device), reduction="sum")
            # processes' gradients are averaged; scaling by their number makes the result the global token mean
            accelerator.backward(loss * accelerator.num_processes / n_targets)
        loss_sum += loss.detach()
    if max_grad_norm:
        accelerator.clip_grad_norm_(model.parameters(), max_grad_norm)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return accelerator.reduce(loss_sum, "sum").item() / n_targets


MODEL_MARKERS = ("config.json", "adapter_config.json")


def has_model(folder: Path) -> bool:
    return any((folder / name).is_file() for name in MODEL_MARKERS)


def ensure_tuned(model: str, data, out, recipe: Recipe, progress: bool = True) -> Path:
    """The tuned model in `out`: found there, resumed from its newest checkpoint, or tuned from the
    start (a run cut off before its first checkpoint starts over). What the demo, the experiment
    script and the studies call, so that a re-run of any of them picks up where it stopped."""
    out = Path(out)
    if has_model(out):
        return out
    resume = bool(checkpoints(out))
    if not resume:
        for leftover in (out / LOG, out / "README.md"):
            leftover.unlink(missing_ok=True)
    return tune(model, data, out, recipe, resume=resume, progress=progress)


def check_out(out: Path, resume: bool) -> None:
    if resume:
        return
    if checkpoints(out) or (out / LOG).exists() or (out / "README.md").exists():
        raise SymtuneError(f"{out} already holds a run: pass --resume to continue it, or choose another --out")


def save_model(accelerator, model, tokenizer, out: Path, recipe: Recipe, card: str, record: dict) -> None:
    """The tuned model (or adapter), its tokenizer and model card, moved into `out` file by file."""
    accelerator.wait_for_everyone()
    merge = recipe.lora and recipe.merge_lora
    state = None if merge else accelerator.get_state_dict(model)  # gathers FSDP / DeepSpeed shards
    error = None
    if accelerator.is_main_process:
        tmp = out / ".final.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            model = accelerator.unwrap_model(model)
            if merge:
                model = model.merge_and_unload()
            model.save_pretrained(tmp, state_dict=state)
            tokenizer.save_pretrained(tmp)
            (tmp / "README.md").write_text(card, encoding="utf-8")
            write_training_record(tmp, record)
            for f in sorted(tmp.iterdir(), key=lambda f: f.name in MODEL_MARKERS):
                os.replace(f, out / f.name)  # the files that make a folder count as a model go last
        except SAVE_ERRORS as e:
            error = f"cannot save the tuned model to {out}: {getattr(e, 'strerror', None) or e}"
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    problem = first_error(accelerator, error, "to save the tuned model")  # the others would wait for process 0
    if problem:
        raise SymtuneError(problem)


def save_tuned(accelerator, net, tokenizer, folder: Path, model: str, recipe: Recipe, log: list[dict],
               training: TrainingData, bf16: bool) -> None:
    """The model as trained so far, with its card and training record, in `folder`."""
    manifests = {path: manifest for path, (_, manifest) in training.mixtures.items()}
    card = model_card(model, manifests, recipe.to_dict(), run_summary(model, recipe, log, training, accelerator, bf16))
    record = training_record(model, {task for manifest in manifests.values() for task in manifest_tasks(manifest)})
    if accelerator.is_main_process:
        folder.mkdir(parents=True, exist_ok=True)
    save_model(accelerator, net, tokenizer, folder, recipe, card, record)


def log_row(step: int, stage: int, loss: float, lr: float, samples, seconds: float) -> dict:
    tokens = sum(len(ids) for ids, _ in samples)
    return {"step": step, "stage": stage, "loss": loss, "lr": lr, "tokens": tokens,
            "supervised_tokens": supervised_tokens(samples), "seconds": round(seconds, 4),
            "tokens_per_s": round(tokens / seconds, 1)}


def run_summary(model: str, recipe: Recipe, log: list[dict], training: TrainingData, accelerator, bf16: bool) -> dict:
    last = [r["loss"] for r in log[-10:]]
    return {
        "base model": model, "steps": len(log), "prompts seen": len(log) * recipe.batch_size,
        "tokens seen": sum(r["tokens"] for r in log), "completion tokens": sum(r["supervised_tokens"] for r in log),
        "final loss (mean of last 10 steps)": round(sum(last) / max(1, len(last)), 4),
        "prompts skipped as longer than max_seq_len": training.skipped, "processes": accelerator.num_processes,
        "device": accelerator.device.type, "bf16 autocast": bf16, "symtune": __version__,
    }


def prepare_accelerator(recipe: Recipe):
    """The run's Accelerator, once the set-up is known to work; on a CPU, glibc keeps freed memory for
    the next step and the node's processes share its cores."""
    # accelerate launch passes --mixed_precision (or its config's) on in this variable; refused before the
    # Accelerator reads it, since its fp16 autocast would be switched off by ours, its loss scaling left on.
    if os.environ.get("ACCELERATE_MIXED_PRECISION", "no").lower() == "fp16":
        raise SymtuneError("fp16 mixed precision is not supported: leave accelerate's mixed_precision at no; "
                           "the recipe key bf16 turns on bf16 autocast where the GPU has bf16, "
                           "else training runs in fp32")
    accelerator = make_accelerator()
    world = accelerator.num_processes
    if recipe.batch_size < world:
        raise SymtuneError(f"batch_size {recipe.batch_size} is smaller than the {world} processes")
    check_setup(accelerator, recipe)
    if accelerator.device.type == "cpu":
        keep_freed_memory()
        if "OMP_NUM_THREADS" not in os.environ:  # the user's count wins
            torch.set_num_threads(max(1, len(os.sched_getaffinity(0)) // int(os.environ.get("LOCAL_WORLD_SIZE", 1))))
    return accelerator


def start_log(accelerator, out: Path, identity: dict, resume: bool) -> tuple[int, list[dict]]:
    """The step to start from (the last checkpoint's when resuming, else 0) and the training log up
    to it; the log file is rewritten to match, dropping steps after the checkpoint."""
    start = load_checkpoint(accelerator, out, identity) if resume else 0
    log = [r for r in read_jsonl(out / LOG) if r["step"] <= start] if resume and (out / LOG).exists() else []
    if accelerator.is_main_process:
        write_jsonl(out / LOG, log)
    return start, log


def tune(model: str, data=None, out="run", recipe: Recipe | str = DEFAULT_RECIPE, resume: bool = False,
         progress: bool = True) -> Path:
    """Tune `model` on the mixture folder `data` (or the recipe's stages); return the output folder."""
    from accelerate.utils import set_seed
    from tqdm import tqdm
    from transformers import get_scheduler

    recipe = recipe if isinstance(recipe, Recipe) else load_recipe(recipe)
    out = Path(out)
    check_out(out, resume)
    accelerator = prepare_accelerator(recipe)
    world, rank = accelerator.num_processes, accelerator.process_index
    bf16 = use_bf16(recipe.bf16, accelerator.device)
    set_seed(recipe.seed)

    with accelerator.main_process_first():  # converts an embedded / GGUF model once
        model_path = resolve_model(model)
    tokenizer = load_tokenizer(model_path)
    training = TrainingData(recipe, data, tokenizer, context_length(model_path) or recipe.max_seq_len)  # before the
    net = trainable_model(model_path, recipe, accelerator.device, bf16)  # weights
    optimizer = make_optimizer(net, recipe)
    scheduler = get_scheduler(recipe.scheduler, optimizer, recipe.warmup_steps, recipe.max_steps)
    net, optimizer = accelerator.prepare(net, optimizer)
    accelerator.register_for_checkpointing(scheduler)

    identity = {"model": model, "model_fingerprint": model_fingerprint(model_path),
                "data": sorted(str(Path(p).resolve()) for p in training.mixtures), "recipe": recipe.to_dict()}
    start, log = start_log(accelerator, out, identity, resume)

    bar = tqdm(total=recipe.max_steps, initial=start, unit="step", dynamic_ncols=True,
               disable=not (accelerator.is_main_process and progress))
    for step in range(start, recipe.max_steps):
        started = time.perf_counter()
        samples = training.global_batch(step)
        batches = make_batches(samples[rank::world], tokenizer.pad_token_id, recipe.micro_batch_tokens,
                               varlen=recipe.attn_implementation in VARLEN_ATTENTION)
        lr = optimizer.param_groups[0]["lr"]
        loss = train_step(accelerator, net, optimizer, scheduler, batches, supervised_tokens(samples), bf16,
                          recipe.max_grad_norm)
        log.append(log_row(step + 1, training.stage_of_step[step], loss, lr, samples, time.perf_counter() - started))
        if accelerator.is_main_process:
            with open(out / LOG, "a", encoding="utf-8") as f:
                f.write(json.dumps(log[-1]) + "\n")
        bar.set_postfix(loss=f"{loss:.4f}", tok_s=f"{log[-1]['tokens_per_s']:.0f}", refresh=False)
        bar.update()
        if step + 1 in recipe.snapshot_steps and step + 1 < recipe.max_steps:
            save_tuned(accelerator, net, tokenizer, out / "snapshots" / f"step-{step + 1:06d}", model, recipe, log,
                       training, bf16)
        if (step + 1) % recipe.save_every == 0 and step + 1 < recipe.max_steps:
            save_checkpoint(accelerator, out, step + 1, identity, recipe.keep_checkpoints)
    bar.close()

    save_tuned(accelerator, net, tokenizer, out, model, recipe, log, training, bf16)
    if accelerator.is_main_process:
        plot_loss(log, out / "loss.png")
    accelerator.wait_for_everyone()
    return out
