"""Symbol-LLM's experiment (docs/method.md, Two-stage tuning): inject symbolic knowledge, then infuse it with
natural-language data, against one-stage training.

Symbolic data: SCAN's add-jump training commands as Symbol-evol prompts (fresh random strings
for the six actions in every prompt). Natural data: a natural-label few-shot mixture
(symtune.mixture). Schedules, all with the same total steps:
  injection   symbolic data only (Symbol-LLM's "Base")
  one_stage   symbolic and natural data mixed at `ratio` from the first step
  two_stage   symbolic only for a share of the steps, then the mixture (injection → infusion)
Measured on the pretrained model and each schedule: on SCAN commands never trained, for three
splits, exact match of the greedy output and symbol accuracy (the share of target action strings
the output has at the same position, over the longer of the two, which credits partly right
outputs); and few-shot ICL accuracy on natural-language tasks never trained (forgetting), with
natural and with symbol labels.
  iid             held-out commands without "jump", random strings as in training
  add_jump        commands that use "jump" in context (add-jump's test split)
  unseen_symbols  the iid commands, with nonsense words as the symbol strings (a new kind)
"""

import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from symtune.cache import RequestCache
from symtune.config import knob
from symtune.errors import SymtuneError
from symtune.evaluate import versions
from symtune.io import read_jsonl, write_json
from symtune.judge import score_items
from symtune.mixture import MixtureConfig, build_mixture, is_built
from symtune.models import load_tokenizer, scoring_fingerprint
from symtune.prompts import Setting
from symtune.results import mean_metric
from symtune.stats import aggregate, mean_se
from symtune.studies.nonsense import nonsense_words
from symtune.studies.runs import (
    Clock,
    cached,
    drop_weights,
    load_scored,
    scoring_record,
    study_recipe,
    tuned,
    write_mixture,
)
from symtune.studies.scan import SCAN_ACTIONS, interpret, scan_split
from symtune.studies.symbol_evol import symbol_evol_rows
from symtune.suites import Condition, EvalConfig, build_items
from symtune.tasks.registry import load_task_list
from symtune.tasks.task import Example
from symtune.train.recipe import DEFAULT_RECIPE

SCHEDULES = ("injection", "one_stage", "two_stage")
SCAN_SPLITS = ("iid", "add_jump", "unseen_symbols")


@dataclass
class TwoStageConfig:
    model: str = knob("smollm2-135m-instruct", "embedded name, model folder, .gguf or hub id")
    seeds: int = knob(3, "study seeds, new data and tuning runs each", minimum=1)
    steps: int = knob(150, "tuning steps of every schedule", minimum=1)
    injection_share: float = knob(0.5, "share of the steps in two_stage's injection stage (symbolic data alone)",
                                  minimum=0.0, maximum=1.0)
    ratio: tuple[float, float] = knob((1.0, 1.0), "symbolic:natural weights in the mixed stage (the paper's)")
    recipe: str = knob(DEFAULT_RECIPE, "shipped recipe name or YAML file")
    overrides: list[str] = knob([], "override a recipe key: KEY=VALUE (repeatable)")
    k: int = knob(0, "solved exemplars in each Symbol-evol prompt", minimum=0)
    max_actions: int = knob(8, "SCAN commands of at most this many actions (output length on a CPU)", minimum=1)
    n_eval: int = knob(40, "SCAN test commands per split", minimum=1)
    natural_tasks: str = knob("builtin:numbers,builtin:strings", "task specs of the natural-label data")
    forget_tasks: str = knob("builtin:lexical", "task specs of the forgetting check, never tuned on")
    forget_n: int = knob(40, "ICL prompts per forgetting task", minimum=1)
    forget_k: int = knob(2, "exemplars per class in those prompts", minimum=1)
    keep_models: bool = knob(False, "keep the tuned weights (deleted once scored)")
    token_budget: int = knob(4096, "padded tokens per scoring / generation pass", minimum=1)


def labelled(commands: list[str]) -> list[Example]:
    return [Example(c, " ".join(interpret(c))) for c in commands]


def scan_data(cfg: TwoStageConfig, seed: int) -> tuple[list[Example], dict[str, list[Example]]]:
    """(training examples, test examples per split) from SCAN's add-jump split, commands of at
    most max_actions actions; the iid commands are held out of training."""
    train, test = scan_split("add_jump", seed)
    short = lambda c: len(interpret(c)) <= cfg.max_actions  # noqa: E731
    held_out = [c for c in dict.fromkeys(train) if c != "jump" and short(c)][: cfg.n_eval]
    training = [c for c in train if short(c) and c not in held_out]
    jump = [c for c in test if short(c)][: cfg.n_eval]
    return labelled(training), {"iid": labelled(held_out), "add_jump": labelled(jump),
                                "unseen_symbols": labelled(held_out)}


def scan_prompts(cfg: TwoStageConfig, seed: int, training: list[Example], tests: dict) -> dict[str, list[dict]]:
    """Symbol-evol rows (prompt and target completion) of each test split."""
    unseen = nonsense_words(200, seed=10_000 + seed)  # strings of a kind never trained on
    shots = {"exemplars": training} if cfg.k else {}
    return {split: symbol_evol_rows(examples, SCAN_ACTIONS, task=f"scan_{split}", n=len(examples), seed=seed + i,
                                    k=cfg.k, pool=unseen if split == "unseen_symbols" else None, **shots)
            for i, (split, examples) in enumerate(tests.items())}


SCAN_METRICS = {"exact": "exact match", "symbols": "symbol accuracy"}


def symbol_accuracy(output: list[str], target: list[str]) -> float:
    return sum(o == t for o, t in zip(output, target)) / max(len(output), len(target), 1)


def scan_scores(model, tokenizer, rows: list[dict], token_budget: int) -> dict[str, list]:
    """The greedy outputs (up to the line end) and, per row, exact match (1 or 0) and symbol accuracy."""
    from symtune.generation import generate_until  # local: it pulls in torch; building the study's data does not

    longest = max(len(tokenizer(row["completion"]).input_ids) for row in rows)
    outputs = generate_until(model, tokenizer, [row["prompt"] for row in rows], stop="\n",
                             max_new_tokens=longest + 2, token_budget=token_budget)
    pairs = [(out.split(), row["completion"].split()) for out, row in zip(outputs, rows)]
    return {"exact": [int(o == t) for o, t in pairs], "symbols": [symbol_accuracy(o, t) for o, t in pairs],
            "outputs": outputs}


def forgetting_conditions(k: int) -> list[Condition]:
    return [Condition("natural", "✗✓ natural labels", Setting(symbols=False), k),
            Condition("symbols", "✗✗ symbol labels", Setting(), k)]


def icl_accuracy(model, tokenizer, tasks, cfg: TwoStageConfig, seed: int, cache) -> dict[str, float]:
    """Few-shot rank-classification accuracy, mean over tasks, per forgetting condition."""
    eval_cfg = EvalConfig(suite="grid", n=cfg.forget_n, k=cfg.forget_k, seeds=(seed,), calibrate=False,
                          token_budget=cfg.token_budget)
    conditions, items = build_items(tasks, eval_cfg, forgetting_conditions(cfg.forget_k))
    means = aggregate(score_items(model, tokenizer, items, eval_cfg, cache), items, conditions)
    return {c.name: mean_metric(means, c.name, "acc")["mean"] for c in conditions}


def schedule_stages(cfg: TwoStageConfig, schedule: str, symbolic: Path, natural: Path) -> list[dict]:
    mixed = {"data": [str(symbolic), str(natural)], "ratio": list(cfg.ratio)}
    if schedule == "injection":
        return [{"data": str(symbolic), "steps": cfg.steps}]
    if schedule == "one_stage":
        return [{**mixed, "steps": cfg.steps}]
    injection = round(cfg.steps * cfg.injection_share)
    return [{"data": str(symbolic), "steps": injection}, {**mixed, "steps": cfg.steps - injection}]


def evaluate_model(spec: str, cfg: TwoStageConfig, prompts: dict, forget_tasks, seed: int, cache_dir: Path) -> dict:
    model, tokenizer = load_scored(spec)
    scan = {split: scan_scores(model, tokenizer, rows, cfg.token_budget) for split, rows in prompts.items()}
    cache = RequestCache(cache_dir, scoring_fingerprint(spec, model.dtype))
    return {"scan": scan, "icl": icl_accuracy(model, tokenizer, forget_tasks, cfg, seed, cache)}


def stage_losses(log: list[dict]) -> list[float]:
    """The mean loss of the last 10 steps of each stage."""
    stages = sorted({r["stage"] for r in log})
    return [sum(tail) / len(tail) for tail in ([r["loss"] for r in log if r["stage"] == s][-10:] for s in stages)]


def run_seed(cfg: TwoStageConfig, seed: int, out: Path, clock: Clock) -> dict:
    training, tests = scan_data(cfg, seed)
    prompts = scan_prompts(cfg, seed, training, tests)
    forget_tasks = load_task_list(cfg.forget_tasks, seed)
    rows_needed = cfg.steps * study_recipe(cfg.recipe, cfg.overrides, cfg.steps).batch_size
    symbolic, natural = out / "data-symbolic", out / "data-natural"
    if not is_built(symbolic):
        rows = symbol_evol_rows(training, SCAN_ACTIONS, task="scan_add_jump", n=rows_needed, seed=seed, k=cfg.k)
        write_mixture(symbolic, rows, seed, {"symbol_evol": True, "k": cfg.k, "max_actions": cfg.max_actions})
    if not is_built(natural):
        build_mixture(load_task_list(cfg.natural_tasks, seed), natural,
                      MixtureConfig(n=rows_needed, seed=seed, k_min=1, k_max=2, symbol_fraction=0.0, max_tokens=384),
                      eval_tasks=[t.name for t in forget_tasks], tokenizer=load_tokenizer(cfg.model))

    pretrained = out / "pretrained.json"
    results = {"pretrained": cached(pretrained, lambda: evaluate_model(
        cfg.model, cfg, prompts, forget_tasks, seed, out / "cache"))}
    clock.say(f"seed {seed}: pretrained evaluated")
    losses = {}
    for schedule in SCHEDULES:
        folder = out / schedule

        def tune_and_evaluate():
            recipe = study_recipe(cfg.recipe, [f"seed={seed}", *cfg.overrides], cfg.steps,
                                  stages=schedule_stages(cfg, schedule, symbolic, natural))
            tuned(cfg.model, None, folder / "model", recipe)
            result = evaluate_model(str(folder / "model"), cfg, prompts, forget_tasks, seed, out / "cache")
            if not cfg.keep_models:
                drop_weights(folder / "model")
            return result

        results[schedule] = cached(folder / "scores.json", tune_and_evaluate)
        losses[schedule] = stage_losses(read_jsonl(folder / "model" / "train_log.jsonl"))
        clock.say(f"seed {seed}: {schedule} tuned and evaluated")
    return {"results": results, "losses": losses}


def summarize(per_seed: list[dict]) -> dict:
    """SCAN metrics per split and ICL accuracy per condition, for every model: mean and standard
    error over seeds."""

    models = list(per_seed[0]["results"])
    mean = lambda values: sum(values) / len(values)  # noqa: E731
    scan = {metric: {m: {split: mean_se([mean(s["results"][m]["scan"][split][metric]) for s in per_seed])
                         for split in SCAN_SPLITS} for m in models} for metric in SCAN_METRICS}
    icl = {m: {c: mean_se([s["results"][m]["icl"][c] for s in per_seed]) for c in per_seed[0]["results"][m]["icl"]}
           for m in models}
    return {"models": models, "scan": scan, "icl": icl}


def run_two_stage(cfg: TwoStageConfig, out, command: str = "") -> dict:
    """The whole experiment; writes out/results.json (and resumes from out/ when re-run)."""
    if cfg.seeds < 1 or cfg.n_eval < 1 or not 1 <= round(cfg.steps * cfg.injection_share) < cfg.steps:
        raise SymtuneError("seeds and n_eval must be at least 1, and injection_share must leave both stages "
                           f"at least one of the {cfg.steps} steps")
    if len(cfg.ratio) != 2 or min(cfg.ratio) < 0 or not sum(cfg.ratio):
        raise SymtuneError(f"ratio is two non-negative weights (symbolic, natural), got {cfg.ratio}")
    out, clock = Path(out), Clock()
    per_seed = [run_seed(cfg, seed, out / f"seed{seed}", clock) for seed in range(cfg.seeds)]
    results = {"study": "two_stage", "command": command, "seconds": round(clock.seconds(), 1), "config": asdict(cfg),
               "versions": versions(), "scoring": scoring_record(), **summarize(per_seed),
               "losses": [s["losses"] for s in per_seed]}
    write_json(out / "results.json", results)
    print(f"two-stage study -> {out / 'results.json'}", file=sys.stderr)
    return results
