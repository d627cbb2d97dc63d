"""Tuning recipes: every knob in one dataclass; YAML files (symtune/configs/*.yaml) and `--set key=value` fill it."""

import dataclasses
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from symtune.config import checked_values, parse_override, typed
from symtune.errors import SymtuneError
from symtune.io import read_yaml
from symtune.validate import integer, real

SCHEDULERS = ("constant", "constant_with_warmup", "linear", "cosine", "cosine_with_min_lr", "inverse_sqrt",
              "warmup_stable_decay")
STAGE_KEYS = ("data", "steps", "ratio")
# attention that keeps packed samples apart: eager and sdpa through the block-diagonal mask transformers
# builds from the restarting position_ids; flash attention through per-sample (varlen) boundaries,
# which symtune passes. Any other implementation could attend across samples, so it is refused.
VARLEN_ATTENTION = ("flash_attention_2", "flash_attention_3")
ATTENTION = ("sdpa", "eager", *VARLEN_ATTENTION)


@dataclass
class Recipe:
    """Defaults are the `cpu-small` recipe."""

    max_steps: int = 300  # optimizer steps over all stages
    batch_size: int = 8  # prompts per optimizer step, over all processes together
    lr: float = 1e-4
    optimizer: str = "adamw"  # adamw | adafactor
    weight_decay: float = 0.0
    scheduler: str = "cosine"  # a transformers scheduler name (SCHEDULERS)
    warmup_steps: int = 10
    max_grad_norm: float | None = 1.0
    max_seq_len: int = 1024  # longest prompt+completion kept, in tokens; longer ones are skipped
    lora: bool = False
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    lora_target_modules: str | list | None = None  # None: peft's default for the architecture (q_proj, v_proj
    #                                                  for Llama and Gemma); "all-linear"; or a list of names
    merge_lora: bool = False  # save a merged full model instead of the adapter
    bf16: bool | str = "auto"  # bf16 autocast: true, false, or auto (on where the CPU or GPU supports bf16)
    attn_implementation: str = "sdpa"  # sdpa, eager, or flash_attention_2 / _3 (GPU: each micro-batch runs as one
    #                                    row of variable-length sequences)
    micro_batch_tokens: int | None = None  # padded tokens per forward/backward within a step, gradients
    #                                        accumulating: less activation memory (None: the whole batch)
    compile: bool = False  # torch.compile each decoder layer: fused element-wise work, a minute or two to compile
    gradient_checkpointing: bool = False  # keep each decoder layer's input only, recompute the rest in the backward
    symbol_fraction: float | None = None  # resample each mixture to this share of kind=="symbol" rows (the rest:
    #                                       natural and random-label rows)
    stages: list = field(default_factory=list)  # [{data: DIR or [DIR, ...], ratio: [w, ...], steps: N}, ...]
    seed: int = 0
    save_every: int = 100  # checkpoint every N steps
    snapshot_steps: list = field(default_factory=list)  # also write a loadable model folder at these steps
    #                                                     (out/snapshots/step-N): a tuning-budget curve from one run
    keep_checkpoints: int = 1  # newest checkpoints kept

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


def load_recipe(name_or_path: str = "cpu-small", overrides: dict | list[str] = ()) -> Recipe:
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
        setattr(recipe, f.name, typed(getattr(recipe, f.name), hints[f.name], f"recipe key {f.name}"))
    check_numbers(recipe)
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


# the range of every numeric key (the shared validators also refuse nan and inf)
POSITIVE_INTS = ("max_steps", "batch_size", "max_seq_len", "save_every", "keep_checkpoints", "lora_r", "lora_alpha",
                 "micro_batch_tokens")
FLOAT_RANGES = {"lr": {"above": 0.0}, "weight_decay": {"minimum": 0.0}, "max_grad_norm": {"above": 0.0},
                "lora_dropout": {"minimum": 0.0, "maximum": 0.99}, "symbol_fraction": {"minimum": 0.0, "maximum": 1.0}}


def check_numbers(recipe: Recipe) -> None:
    for key in POSITIVE_INTS:
        if getattr(recipe, key) is not None:
            integer(getattr(recipe, key), f"recipe key {key}", minimum=1)
    integer(recipe.warmup_steps, "recipe key warmup_steps", minimum=0)
    integer(recipe.seed, "recipe key seed", minimum=0)
    for step in recipe.snapshot_steps:
        integer(step, "each of the recipe's snapshot_steps", minimum=1, maximum=recipe.max_steps)
    for key, bounds in FLOAT_RANGES.items():
        if getattr(recipe, key) is not None:
            real(getattr(recipe, key), f"recipe key {key}", **bounds)


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
