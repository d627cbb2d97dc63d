"""Tuning recipes: every knob in one dataclass; YAML files (symtune/configs/*.yaml) and `--set key=value` fill it."""

import dataclasses
import typing
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from symtune.config import checked_values, in_range, knob, parse_override, typed
from symtune.errors import SymtuneError
from symtune.io import read_yaml
from symtune.validate import integer

SCHEDULERS = ("constant", "constant_with_warmup", "linear", "cosine", "cosine_with_min_lr", "inverse_sqrt",
              "warmup_stable_decay")
DEFAULT_RECIPE = "cpu-small"  # the recipe a command or study uses when none is named
STAGE_KEYS = ("data", "steps", "ratio")
# attention that keeps packed samples apart: eager and sdpa through the block-diagonal mask transformers
# builds from the restarting position_ids; flash attention through per-sample (varlen) boundaries,
# which symtune passes. Any other implementation could attend across samples, so it is refused.
VARLEN_ATTENTION = ("flash_attention_2", "flash_attention_3")
ATTENTION = ("sdpa", "eager", *VARLEN_ATTENTION)


@dataclass
class Recipe:
    """Every tuning knob, each default and range stated once; the defaults are the `cpu-small` recipe."""

    max_steps: int = knob(300, "optimizer steps over all stages", minimum=1)
    batch_size: int = knob(8, "prompts per optimizer step, over all processes together", minimum=1)
    lr: float = knob(1e-4, "peak learning rate", above=0.0)
    optimizer: str = knob("adamw", "adamw | adafactor")
    weight_decay: float = knob(0.0, "weight decay", minimum=0.0)
    scheduler: str = knob("cosine", "a transformers scheduler name (SCHEDULERS)")
    warmup_steps: int = knob(10, "learning-rate warmup steps", minimum=0)
    max_grad_norm: float | None = knob(1.0, "gradient-norm clipping (None: no clipping)", above=0.0)
    max_seq_len: int = knob(1024, "longest prompt+completion kept, in tokens; longer ones are skipped", minimum=1)
    lora: bool = knob(False, "train a LoRA adapter instead of the full model")
    lora_r: int = knob(16, "LoRA rank", minimum=1)
    lora_alpha: int = knob(32, "LoRA scaling numerator (the update is scaled by lora_alpha / lora_r)", minimum=1)
    lora_dropout: float = knob(0.0, "dropout on the LoRA input", minimum=0.0, maximum=0.99)
    lora_target_modules: str | list | None = knob(None, "None: peft's default for the architecture (q_proj, v_proj "
                                                        "for Llama and Gemma); \"all-linear\"; or a list of names")
    merge_lora: bool = knob(False, "save a merged full model instead of the adapter")
    bf16: bool | str = knob("auto", "bf16 autocast: true, false, or auto (on where the CPU or GPU supports bf16)")
    attn_implementation: str = knob("sdpa", "sdpa, eager, or flash_attention_2 / _3 (GPU: each micro-batch runs as "
                                            "one row of variable-length sequences)")
    micro_batch_tokens: int | None = knob(None, "padded tokens per forward/backward within a step, gradients "
                                                "accumulating: less activation memory (None: the whole batch)",
                                          minimum=1)
    compile: bool = knob(False, "torch.compile each decoder layer: fused element-wise work, after a compile at "
                                "the start")
    gradient_checkpointing: bool = knob(False, "keep each decoder layer's input only, recompute the rest in the "
                                               "backward")
    symbol_fraction: float | None = knob(None, "resample each mixture to this share of kind==\"symbol\" rows (the "
                                               "rest: natural and random-label rows)", minimum=0.0, maximum=1.0)
    stages: list = knob([], "[{data: DIR or [DIR, ...], ratio: [w, ...], steps: N}, ...]")
    seed: int = knob(0, "random seed of the run", minimum=0)
    save_every: int = knob(100, "checkpoint every N steps", minimum=1)
    snapshot_steps: list = knob([], "also write a loadable model folder at these steps (out/snapshots/step-N): a "
                                    "tuning-budget curve from one run")
    keep_checkpoints: int = knob(1, "newest checkpoints kept", minimum=1)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# keys that may change between a run and its resumption
RUN_KEYS = ("save_every", "keep_checkpoints", "compile", "micro_batch_tokens", "gradient_checkpointing",
            "snapshot_steps")


def recipe_path(name_or_path: str) -> Path:
    """A shipped recipe name (cpu-small, paper, ...) or a YAML file."""
    shipped = resources.files("symtune") / "configs" / f"{name_or_path}.yaml"
    if shipped.is_file():
        return Path(str(shipped))
    path = Path(name_or_path)
    if not path.is_file():
        names = sorted(p.name.removesuffix(".yaml") for p in (resources.files("symtune") / "configs").iterdir()
                       if p.name.endswith(".yaml"))
        raise SymtuneError(f"unknown recipe {name_or_path!r}: not a shipped recipe ({', '.join(names)}), not a file")
    return path


def load_recipe(name_or_path: str = DEFAULT_RECIPE, overrides: dict | list[str] = ()) -> Recipe:
    """The recipe of a shipped name or YAML file, with overrides (a dict or "key=value" strings) applied."""
    path = recipe_path(name_or_path)
    values = read_yaml(path) or {}
    if not isinstance(values, dict):
        raise SymtuneError(f"{path}: a recipe is a mapping of key: value")
    values = checked_values(Recipe, values, str(path), "recipe")
    if not isinstance(overrides, dict):
        overrides = dict(map(parse_override, overrides))
    overrides = checked_values(Recipe, overrides, "the overrides", "recipe")
    return checked(Recipe(**{**values, **overrides}))


def checked(recipe: Recipe) -> Recipe:
    """The recipe, its values typed (ints and numeric strings as floats where floats belong) and checked."""
    hints = typing.get_type_hints(Recipe)
    for f in dataclasses.fields(Recipe):
        what = f"recipe key {f.name}"
        setattr(recipe, f.name, in_range(typed(getattr(recipe, f.name), hints[f.name], what), f, what))
    for step in recipe.snapshot_steps:
        integer(step, "each of the recipe's snapshot_steps", minimum=1, maximum=recipe.max_steps)
    if recipe.optimizer not in ("adamw", "adafactor"):
        raise SymtuneError(f"recipe key optimizer must be adamw or adafactor, got {recipe.optimizer!r}")
    if recipe.scheduler not in SCHEDULERS:
        raise SymtuneError(f"recipe key scheduler must be one of {', '.join(SCHEDULERS)}, got {recipe.scheduler!r}")
    if recipe.attn_implementation not in ATTENTION:
        raise SymtuneError(f"recipe key attn_implementation must be one of {', '.join(ATTENTION)} (the ones that keep "
                           f"packed prompts apart), got {recipe.attn_implementation!r}")
    if recipe.bf16 not in (True, False, "auto"):
        raise SymtuneError(f"recipe key bf16 must be true, false or auto, got {recipe.bf16!r}")
    for stage in recipe.stages:
        check_stage(stage)
    stage_steps(recipe)
    return recipe


def check_stage(stage) -> None:
    if not isinstance(stage, dict) or "data" not in stage:
        raise SymtuneError(f"a stage is a mapping with data (and steps, ratio), got {stage!r}")
    unknown = set(stage) - set(STAGE_KEYS)
    if unknown:
        raise SymtuneError(f"unknown stage key {sorted(unknown)[0]!r}; a stage has {', '.join(STAGE_KEYS)}")
    data = stage["data"] if isinstance(stage["data"], list) else [stage["data"]]
    if not data or not all(isinstance(path, str) for path in data):
        raise SymtuneError(f"stage data must be a mixture folder or a list of them, got {stage['data']!r}")
    ratio = stage.get("ratio", [1] * len(data))
    weights_ok = isinstance(ratio, list) and len(ratio) == len(data) and all(
        isinstance(r, (int, float)) and not isinstance(r, bool) and r >= 0 for r in ratio)
    if not weights_ok or not sum(ratio):
        raise SymtuneError(f"stage ratio must be a list of {len(data)} non-negative weights, got {ratio!r}")


def stage_steps(recipe: Recipe) -> list[int]:
    """Steps of each stage: each stage gives its steps; the last one may leave them out and run to max_steps."""
    if not recipe.stages:
        return [recipe.max_steps]
    steps = [stage.get("steps") for stage in recipe.stages]
    if steps[-1] is None:
        steps[-1] = recipe.max_steps - sum(s or 0 for s in steps[:-1])
    if not all(isinstance(s, int) and s >= 1 for s in steps):
        raise SymtuneError(f"every stage needs steps >= 1 (the last may run to max_steps), got {steps}")
    if sum(steps) != recipe.max_steps:
        raise SymtuneError(f"the stages' steps add up to {sum(steps)} but max_steps is {recipe.max_steps}")
    return steps
