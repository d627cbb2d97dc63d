"""Checkpoints: out/checkpoints/step-NNNNNN, each written whole to a temp folder and then renamed.

A checkpoint is accelerate's saved state (model or adapter weights as safetensors, optimizer,
scheduler, every process's RNG states) plus state.json: the step (which fixes the data position,
see data.py), the base model's fingerprint and the recipe, checked on resume.
"""

import errno
import os
import shutil
from pathlib import Path

from safetensors import SafetensorError

from symtune.errors import SymtuneError
from symtune.io import read_json, write_json
from symtune.train.distributed import first_error
from symtune.train.recipe import RUN_KEYS


def checkpoints(out: Path) -> list[Path]:
    """Finished checkpoints, oldest first (temp folders start with a dot and are ignored)."""
    folder = Path(out) / "checkpoints"
    return sorted(folder.glob("step-*")) if folder.is_dir() else []


# what a failed write raises: OSError, or torch's RuntimeError ("PytorchStreamWriter failed writing
# file") and safetensors' SafetensorError, which carry the disk-full message but no errno
SAVE_ERRORS = (OSError, RuntimeError, SafetensorError, SymtuneError)


def save_checkpoint(accelerator, out: Path, step: int, state: dict, keep: int) -> Path:
    final = Path(out) / "checkpoints" / f"step-{step:06d}"
    tmp = final.with_name(f".{final.name}.tmp")
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
    accelerator.wait_for_everyone()
    error = None
    try:
        accelerator.save_state(tmp)
        if accelerator.is_main_process:
            write_json(tmp / "state.json", {**state, "step": step})
    except SAVE_ERRORS as e:
        previous = checkpoints(out)
        kept = f"; the previous checkpoint {previous[-1]} is intact" if previous else ""
        full = isinstance(e, OSError) and e.errno == errno.ENOSPC or "No space left" in str(e)
        error = (f"{'disk full' if full else 'cannot write'} while saving checkpoint {final.name}"
                 f"{kept}: {getattr(e, 'strerror', None) or e}")
    except BaseException:  # SIGINT / SIGTERM mid-save: no half-written checkpoint folder stays behind
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    problem = first_error(accelerator, error, f"to save checkpoint {final.name}")  # all stop, or none
    if problem:
        if accelerator.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
        raise SymtuneError(problem)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        shutil.rmtree(final, ignore_errors=True)
        os.rename(tmp, final)
        for old in checkpoints(out)[:-keep]:
            shutil.rmtree(old)
    accelerator.wait_for_everyone()
    return final


def mismatch(saved: dict, current: dict) -> str | None:
    """What differs between a checkpoint's state.json and this run, in words; None if resumable."""
    if saved.get("model_fingerprint") != current["model_fingerprint"]:
        return f"it was made from the model {saved.get('model')!r}, this run tunes {current['model']!r}"
    if saved.get("data") != current["data"]:
        return f"it was trained on {saved.get('data')}, this run on {current['data']}"
    old, new = saved.get("recipe", {}), current["recipe"]
    changed = [k for k in sorted(set(old) | set(new)) if k not in RUN_KEYS and old.get(k) != new.get(k)]
    if changed:
        return "its recipe differs: " + ", ".join(f"{k}={old.get(k)!r} there, {new.get(k)!r} here" for k in changed)
    return None


def load_checkpoint(accelerator, out: Path, current: dict) -> int:
    """Restore the newest checkpoint of `out` and return its step."""
    found = checkpoints(out)
    if not found:
        raise SymtuneError(f"nothing to resume: {Path(out) / 'checkpoints'} has no checkpoint")
    saved = read_json(found[-1] / "state.json")
    problem = mismatch(saved, current)
    if problem:
        raise SymtuneError(f"cannot resume from {found[-1]}: {problem}")
    accelerator.load_state(found[-1])
    return saved["step"]
