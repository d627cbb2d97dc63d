"""What both studies do with the trainer: write prompt/completion rows as a mixture folder, tune
a model on it once (a re-run finds the finished model), and keep each step's results on disk so
that an interrupted study resumes where it stopped."""

import shutil
import sys
import time
from pathlib import Path

from symtune import mixture
from symtune.config import parse_override
from symtune.io import read_json, write_json
from symtune.models import load_model, torch_dtype
from symtune.train.recipe import load_recipe


def write_mixture(folder: Path, rows: list[dict], seed: int, options: dict) -> Path:
    """`rows` as a mixture folder the trainer reads."""
    mixture.write_mixture(folder, rows, mixture.rows_manifest(rows, seed, options, "symtune.studies"))
    return folder


STUDY_LR = 1e-3  # full fine-tuning of SmolLM2-135M memorises the study's facts within 100 steps at this rate


def study_recipe(name: str, overrides: list[str], steps: int, stages: list | None = None):
    """The recipe `name` at lr STUDY_LR, run for `steps` steps (split into `stages` if given)
    without intermediate checkpoints; `overrides` ("key=value") win over all of it."""
    values = {"max_steps": steps, "lr": STUDY_LR, "save_every": steps, "warmup_steps": min(10, steps // 10)}
    if stages is not None:
        values["stages"] = stages
    return load_recipe(name, {**values, **dict(map(parse_override, overrides))})


def tuned(model: str, data, out: Path, recipe) -> Path:
    """`model` tuned on `data` (or the recipe's stages) into `out`, unless `out` already holds it."""
    # local: the training loop pulls in torch, which `study --help` does not need
    from symtune.train.loop import ensure_tuned

    return ensure_tuned(model, data, out, recipe, progress=False)


def scoring_setup() -> tuple:
    """(device, dtype) a study scores on: the accelerator where there is one, in bfloat16 where it
    computes it natively; on a CPU fp32, the dtype of the studies' recorded CPU results."""
    import torch  # local, as is batching (which pulls it in): `study --help` does not need them

    from symtune.batching import process_state

    device = process_state().device
    return device, torch_dtype("auto", device) if device.type != "cpu" else torch.float32


def load_scored(spec: str):
    """(model, tokenizer) to score a study with, on scoring_setup()'s device and dtype."""
    device, dtype = scoring_setup()
    model, tokenizer = load_model(spec, dtype=dtype)
    return model.to(device), tokenizer


def scoring_record() -> dict:
    """The device and dtype a study's results were scored in, for its results.json."""
    device, dtype = scoring_setup()
    return {"device": device.type, "dtype": str(dtype).removeprefix("torch.")}


def drop_weights(folder: Path) -> None:
    """Delete a scored model's weights (hundreds of MB per run); its log, loss curve and card stay."""
    for path in [*folder.glob("*.safetensors"), folder / "checkpoints"]:
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def cached(path: Path, compute):
    """The JSON at `path`, computed and written first if it is missing."""
    if not path.is_file():
        write_json(path, compute())
    return read_json(path)


class Clock:
    """Wall time since the study started, for progress lines."""

    def __init__(self):
        self.start = time.perf_counter()

    def seconds(self) -> float:
        return time.perf_counter() - self.start

    def say(self, message: str) -> None:
        print(f"[{self.seconds():7.0f}s] {message}", file=sys.stderr, flush=True)
