"""A tuning step's peak memory by knob (full fine-tuning or LoRA, gradient checkpointing, bf16 autocast),
measured on a CPU and set beside symtune.train.memory's estimate; then the estimate for 1B and 8B
models on one 80 GB GPU, the table in docs/distributed.md.

The step is symtune's own (trainable_model, make_optimizer, train_step) on a small random-weight Llama
(the SmolLM2 tokenizer's vocabulary, 4 layers of width 256), fp32 AdamW, 8 prompts of 256 tokens. The
second step is measured, when AdamW's moments exist, by LiveBytes: the most bytes of tensor storage
alive at once (the peak a GPU's allocator would report, less its caching; a CPU process's RSS also
holds the libraries and malloc's free lists, so it is not used).

    .venv/bin/python benchmarks/bench_memory_knobs.py

Writes benchmarks/results/bench_memory_knobs.json and .md.
"""

import argparse
import sys
import tempfile
from pathlib import Path

import torch
from torch.multiprocessing.reductions import StorageWeakRef
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from common import RESULTS, run_info, table, use_threads  # noqa: E402

from symtune.io import atomic_write, write_json  # noqa: E402
from symtune.train.memory import TOLERANCE, estimate_bytes, fits, model_sizes, reference_sizes  # noqa: E402

KNOBS = [(lora, checkpointing, bf16) for lora in (False, True) for checkpointing in (False, True)
         for bf16 in (False, True)]
SMALL = dict(hidden_size=256, intermediate_size=704, num_hidden_layers=4, num_attention_heads=8, num_key_value_heads=4,
             head_dim=32)


class LiveBytes(TorchDispatchMode):
    """The most bytes of tensor storage alive at once while active: the storages of `tensors` (those that
    exist before) plus every storage an operator creates, until it is freed; views share their storage
    and count once. Autograd's backward runs its operators on the calling thread on a CPU, so they count too."""

    def __init__(self, tensors):
        super().__init__()
        self.live = {}
        self.add(tensors)
        self.peak = sum(n for _, n in self.live.values())

    def add(self, tensors) -> None:
        for t in tensors:
            if isinstance(t, torch.Tensor) and t.untyped_storage()._cdata not in self.live:
                storage = t.untyped_storage()
                self.live[storage._cdata] = (StorageWeakRef(storage), storage.nbytes())

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        self.add(tree_leaves(out))
        self.live = {key: (ref, n) for key, (ref, n) in self.live.items() if not ref.expired()}
        self.peak = max(self.peak, sum(n for _, n in self.live.values()))
        return out


def measure(model_dir, lora: bool, checkpointing: bool, bf16: bool, batch: int, length: int) -> int:
    """Peak bytes of one tuning step (the second, when AdamW's moments exist) on the CPU: `batch` prompts
    of `length` tokens, 8 of them supervised."""
    from transformers import get_scheduler

    from symtune.train.data import make_batches
    from symtune.train.distributed import make_accelerator
    from symtune.train.loop import make_optimizer, train_step, trainable_model
    from symtune.train.recipe import load_recipe

    recipe = load_recipe("cpu-small", {"lora": lora, "gradient_checkpointing": checkpointing, "bf16": bf16})
    accelerator = make_accelerator()
    model = trainable_model(str(model_dir), recipe, accelerator.device, bf16)
    optimizer = make_optimizer(model, recipe)
    scheduler = get_scheduler("constant", optimizer)
    model, optimizer = accelerator.prepare(model, optimizer)
    generator = torch.Generator().manual_seed(0)
    samples = [(torch.randint(10, 1000, (length,), generator=generator).tolist(), length - 8) for _ in range(batch)]
    batches = make_batches(samples, pad_id=0)
    targets = sum(len(b["targets"]) for b in batches)
    train_step(accelerator, model, optimizer, scheduler, batches, targets, bf16, recipe.max_grad_norm)
    existing = [*model.parameters(), *(t for state in optimizer.state.values() for t in state.values())]
    with LiveBytes(existing) as live:
        train_step(accelerator, model, optimizer, scheduler, batches, targets, bf16, recipe.max_grad_norm)
    return live.peak


def small_model(folder: Path) -> Path:
    from conftest import save_tiny_model

    from symtune.models import load_tokenizer

    return save_tiny_model(folder, load_tokenizer("smollm2-135m-instruct"), **SMALL)


def measured_rows(model_dir, batch: int = 8, length: int = 256) -> list[dict]:
    """Each knob's measured peak beside estimate_bytes for the same model and tokens."""
    from transformers import AutoConfig

    sizes = model_sizes(AutoConfig.from_pretrained(model_dir))
    rows = []
    for lora, checkpointing, bf16 in KNOBS:
        measured = measure(model_dir, lora, checkpointing, bf16, batch, length)
        estimate = estimate_bytes(sizes, batch * length, lora, checkpointing, bf16, gpu=False, supervised=batch * 8)
        rows.append({"lora": lora, "gradient_checkpointing": checkpointing, "bf16_autocast": bf16,
                     "measured_mb": measured / 2**20, "estimate_mb": estimate["total"] / 2**20,
                     "estimate_over_measured": estimate["total"] / measured, "estimate_by_part": estimate})
    return rows


def gpu_table() -> list[dict]:
    """docs/distributed.md's table: a micro-batch of 16k tokens (e.g. micro_batch_tokens: 16384) and one of
    64k (the paper recipe's 32 prompts of up to 2048 tokens at once)."""
    return gpu_rows(16384) + gpu_rows(65536)


def gpu_rows(tokens: int) -> list[dict]:
    """The estimate for one 80 GB GPU: bf16 autocast, fp32 AdamW, LoRA's base in bf16, one process."""
    rows = []
    for name, sizes in reference_sizes().items():
        for lora in (False, True):
            for checkpointing in (False, True):
                e = estimate_bytes(sizes, tokens, lora, checkpointing, bf16=True, gpu=True)
                rows.append({"model": name, "mode": "LoRA r=16 (q, v)" if lora else "full fine-tuning",
                             "tokens": tokens, "gradient_checkpointing": checkpointing,
                             "weights_gb": e["weights"] / 1e9,
                             "grads_optimizer_gb": (e["grads"] + e["optimizer"]) / 1e9,
                             "activations_gb": e["activations"] / 1e9, "total_gb": e["total"] / 1e9,
                             "fits_80gb": fits(e["total"])})
    return rows


MEASURED_COLUMNS = [("LoRA", "lora", ""), ("checkpointing", "gradient_checkpointing", ""),
                    ("bf16 autocast", "bf16_autocast", ""),
                    ("measured peak (MiB)", "measured_mb", ".1f"), ("estimate (MiB)", "estimate_mb", ".1f"),
                    ("estimate / measured", "estimate_over_measured", ".3f")]
GPU_COLUMNS = [("model", "model", "s"), ("mode", "mode", "s"), ("tokens", "tokens", "d"),
               ("checkpointing", "gradient_checkpointing", ""),
               ("weights (GB)", "weights_gb", ".1f"), ("grads + AdamW (GB)", "grads_optimizer_gb", ".1f"),
               ("activations (GB)", "activations_gb", ".1f"), ("total (GB)", "total_gb", ".1f"),
               ("fits 80 GB", "fits_80gb", "s")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    use_threads(args.threads)
    info = run_info("bench_memory_knobs", args.threads, quick=False)
    with tempfile.TemporaryDirectory() as tmp:
        measured = measured_rows(small_model(Path(tmp)))
    gpu = gpu_table()
    write_json(RESULTS / "bench_memory_knobs.json", {**info, "small_model": SMALL, "batch": 8, "length": 256,
                                                      "measured": measured, "tolerance": TOLERANCE, "gpu_80gb": gpu})
    summary = (f"`{info['command']}`\n\nA tuning step's peak memory, measured on a CPU for a small Llama "
               f"({SMALL}, fp32 AdamW), 8 prompts x 256 tokens, beside symtune.train.memory.estimate_bytes:\n\n"
               f"{table(measured, MEASURED_COLUMNS)}\n\nThe estimate for one 80 GB GPU (one process, bf16 autocast, "
               f"fp32 trained weights and AdamW moments, LoRA's frozen base in bf16, one supervised token in 32; "
               f"'borderline': within the estimate's {TOLERANCE:.0%} tolerance of 80 GB; the CUDA context and the "
               f"allocator's slack come on top):\n\n{table(gpu, GPU_COLUMNS)}\n")
    with atomic_write(RESULTS / "bench_memory_knobs.md") as f:
        f.write(summary)
    write_docs_table(gpu)
    print(summary)


DOCS = Path(__file__).resolve().parents[1] / "docs" / "distributed.md"
BEGIN, END = "<!-- bench_memory_knobs.py: begin -->", "<!-- bench_memory_knobs.py: end -->"


def docs_table(gpu: list[dict]) -> str:
    return f"{BEGIN}\n{table(gpu, GPU_COLUMNS)}\n{END}"


def write_docs_table(gpu: list[dict]) -> None:
    """Replace the table between the markers in docs/distributed.md."""
    text = DOCS.read_text(encoding="utf-8")
    start, end = text.index(BEGIN), text.index(END) + len(END)
    with atomic_write(DOCS) as f:
        f.write(text[:start] + docs_table(gpu) + text[end:])


if __name__ == "__main__":
    main()
