"""`symtune demo`: the paper's experiment end to end on one machine.

Evaluate the base model on the 4-setting grid → build a symbol-tuning mixture from tasks that
are disjoint from the evaluation tasks → tune → evaluate the tuned model on the same prompts →
print the before/after table and write plots. Every artifact lands in one run folder, and a
re-run skips the steps whose outputs exist (an interrupted demo resumes).
"""

import sys
import time
from dataclasses import dataclass
from pathlib import Path

from symtune.config import add_flags, from_mapping, given, knob
from symtune.errors import SymtuneError
from symtune.evaluate import evaluate
from symtune.mixture import MixtureConfig, build_mixture, is_built, print_mixture_summary
from symtune.models import cache_dir
from symtune.report import markdown, report, verdict_line, write_results
from symtune.results import RESULTS, conditions, paired_difference
from symtune.suites import EvalConfig
from symtune.tasks.registry import load_task_list
from symtune.train.recipe import DEFAULT_RECIPE, load_recipe
from symtune.validate import check_outputs, check_own_folder

# With no data: tune on rule-based families, evaluate on the lexical ones (natural language,
# where natural labels carry meaning and the four settings differ).
BUILTIN_TUNE = ["builtin:numbers", "builtin:strings", "builtin:lists", "builtin:linear"]
BUILTIN_EVAL = ["builtin:lexical"]
# The demo's question is the paper's key cell: with no instruction and symbol labels, only the
# exemplars carry the mapping. Its prompts are sized so that the tuned − base difference there
# resolves to HEADLINE_TARGET points (a 95% half-width) or the demo says it did not.
HEADLINE_CELL = "noinstr-symbols"
HEADLINE_TARGET = 5.0


def split_tasks(data: str | None, eval_names: list[str] | None, seed: int):
    """(tuning tasks, evaluation tasks): disjoint, evaluation-only tasks never tuned on."""
    if data is None:
        return load_task_list(BUILTIN_TUNE, seed), load_task_list(BUILTIN_EVAL, seed)
    tasks = [t for t in load_task_list(data, seed) if not t.is_generation]
    names = eval_names or [t.name for t in tasks if t.meta.get("role") == "eval"]
    if not names:
        raise SymtuneError(f"{data} holds none of the default evaluation tasks; name some with --eval-tasks")
    unknown = sorted(set(names) - {t.name for t in tasks})
    if unknown:
        raise SymtuneError(f"--eval-tasks names tasks not in {data}: {', '.join(unknown)}")
    held_out = [t for t in tasks if t.name in names]
    tuning = [t for t in tasks if t.name not in names and not t.eval_only and t.meta.get("role") != "eval"]
    if not tuning:
        raise SymtuneError(f"{data} leaves no tasks to tune on")
    return tuning, held_out


@dataclass
class DemoConfig:
    """The demo's knobs. The evaluation sizes are set so the headline cell's interval reaches
    HEADLINE_TARGET within 20 minutes on 2 CPU cores; scale them up on a faster machine."""

    model: str = knob("smollm2-135m-instruct", "embedded name, model folder, .gguf or hub id")
    data: str | None = knob(None, "a folder of task folders (unset: built-in generated tasks)")
    eval_tasks: str | None = knob(None, "names of the held-out tasks in --data, comma-separated (unset: the "
                                        "dev-eval tasks)")
    out: str = knob("runs/demo", "run folder; a re-run resumes where it stopped")
    recipe: str = knob(DEFAULT_RECIPE, "shipped recipe name or YAML file")
    overrides: list[str] = knob([], "override a recipe key: KEY=VALUE (repeatable)")
    steps: int = knob(50, "tuning steps (overrides the recipe's; 0: the recipe's)", minimum=0)
    n: int = knob(100, "evaluation prompts per task, setting and seed", minimum=1)
    k: int = knob(2, "exemplars per class in evaluation prompts (paper: 4; 2 halves a prompt)", minimum=1)
    seeds: int = knob(2, "evaluation seeds", minimum=1)
    seed: int = knob(0, "seed of the tasks and the mixture", minimum=0)
    # 4 (paper: 10) keeps prompts short enough to tune in minutes on a CPU
    k_max: int = knob(4, "most exemplars per class in tuning prompts (paper: 10)", minimum=1)


def run_demo(args) -> None:
    # local: the training loop pulls in torch, which `demo --help` does not need
    from symtune.train.loop import ensure_tuned

    args = from_mapping(DemoConfig, given(args, DemoConfig), "the command line", "demo")
    out = Path(args.out)
    check_outputs({"--out": out}, {"data": args.data, "model": args.model, "model cache": str(cache_dir())})
    check_own_folder(out, "--out", ("cache", "mixture", "model", RESULTS), "symtune demo")
    recipe = load_recipe(args.recipe, args.overrides + ([f"max_steps={args.steps}"] if args.steps else []))
    tuning, held_out = split_tasks(args.data, args.eval_tasks.split(",") if args.eval_tasks else None, args.seed)
    # no content-free pass: it would double the requests, and the headline is plain accuracy
    cfg = EvalConfig(suite="grid", n=args.n, k=args.k, seeds=tuple(range(args.seeds)), calibrate=False)
    say = lambda msg: print(f"\n== {msg}", file=sys.stderr)  # noqa: E731
    started = time.perf_counter()

    say(f"1/4 base model on the grid: {len(held_out)} unseen tasks × 4 settings × {args.n} prompts × "
        f"{args.seeds} seeds")
    evaluate([args.model], held_out, cfg, cache_dir=out / "cache", progress=True)

    say(f"2/4 symbol-tuning mixture from {len(tuning)} tasks")
    mixture = out / "mixture"
    if not is_built(mixture):
        n = recipe.max_steps * recipe.batch_size
        mix = MixtureConfig(n=n, seed=args.seed, k_max=args.k_max, max_tokens=recipe.max_seq_len)
        manifest = build_mixture(tuning, mixture, mix, eval_tasks=[t.name for t in held_out])
        print_mixture_summary(manifest, mixture)

    say(f"3/4 tuning ({recipe.max_steps} steps × {recipe.batch_size} prompts)")
    tuned = ensure_tuned(args.model, mixture, out / "model", recipe)

    say("4/4 tuned model on the same prompts")
    results = evaluate([args.model, str(tuned)], held_out, cfg, cache_dir=out / "cache", progress=True)
    write_results(results, out)
    plots = report([str(out / RESULTS)], out)
    print(markdown(results))
    print(f"\nheadline: {headline(results, args.model, str(tuned))}")
    print(f"\nrun folder: {out}  (results.json, results.md, {', '.join(p.name for p in plots)}, model/, mixture/)")
    print(f"wall time of this run: {(time.perf_counter() - started) / 60:.1f} min (steps found done were not redone)")


def headline(results: dict, base: str, tuned: str) -> str:
    """The verdict on the headline cell: an effect, a null within the target, or not resolved."""
    cond = next(c for c in conditions(results) if c["name"] == HEADLINE_CELL)
    interval = paired_difference(results, tuned, base, HEADLINE_CELL, "acc")
    return verdict_line("tuned", "base", cond["label"], interval, HEADLINE_TARGET)


def add_demo_parser(subparsers) -> None:
    p = subparsers.add_parser("demo", help="base eval → symbol-tune → eval again, on the embedded model")
    add_flags(p, DemoConfig, overrides={"flag": "--set", "metavar": "KEY=VALUE"})
    p.set_defaults(func=run_demo, out=DemoConfig.out)  # the run folder, for the CLI's clean-up on failure
