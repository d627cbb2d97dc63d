"""`symtune demo`: the paper's experiment end to end on one machine.

Evaluate the base model on the 4-setting grid → build a symbol-tuning mixture from tasks that
are disjoint from the evaluation tasks → tune → evaluate the tuned model on the same prompts →
print the before/after table and write plots. Every artifact lands in one run folder, and a
re-run skips the steps whose outputs exist (an interrupted demo resumes).
"""

import sys
import time
from pathlib import Path

from symtune.errors import SymtuneError
from symtune.evaluate import evaluate
from symtune.mixture import MixtureConfig, build_mixture, print_mixture_summary
from symtune.models import cache_dir
from symtune.report import markdown, report, write_results
from symtune.suites import EvalConfig
from symtune.tasks.registry import load_task_list
from symtune.train.recipe import load_recipe
from symtune.validate import check_outputs, check_own_folder, nonnegative_int, positive_int

# With no data: tune on rule-based families, evaluate on the lexical ones (natural language,
# where natural labels carry meaning and the four settings differ).
BUILTIN_TUNE = ["builtin:numbers", "builtin:strings", "builtin:lists", "builtin:linear"]
BUILTIN_EVAL = ["builtin:lexical"]
# ../shared/data's development-evaluation tasks (its README); the rest of a folder is tuned on.
SHARED_EVAL = ["boolq", "cr", "financial_phrasebank", "poem_sentiment", "sms_spam", "tweet_eval_emotion"]


def split_tasks(data: str | None, eval_names: list[str] | None, seed: int):
    """(tuning tasks, evaluation tasks): disjoint, evaluation-only tasks never tuned on."""
    if data is None:
        return load_task_list(BUILTIN_TUNE, seed), load_task_list(BUILTIN_EVAL, seed)
    tasks = [t for t in load_task_list(data, seed) if not t.is_generation]
    names = eval_names or [t.name for t in tasks if t.name in SHARED_EVAL]
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


def run_demo(args) -> None:
    # local: the training loop pulls in torch, which `demo --help` does not need
    from symtune.train.loop import ensure_tuned

    out = Path(args.out)
    check_outputs({"--out": out}, {"data": args.data, "model": args.model, "model cache": str(cache_dir())})
    check_own_folder(out, "--out", ("cache", "mixture", "model", "results.json"), "symtune demo")
    recipe = load_recipe(args.recipe, args.set + ([f"max_steps={args.steps}"] if args.steps else []))
    tuning, held_out = split_tasks(args.data, args.eval_tasks.split(",") if args.eval_tasks else None, args.seed)
    cfg = EvalConfig(suite="grid", n=args.n, k=args.k, seeds=tuple(range(args.seeds)))
    say = lambda msg: print(f"\n== {msg}", file=sys.stderr)  # noqa: E731
    started = time.perf_counter()

    say(f"1/4 base model on the grid: {len(held_out)} unseen tasks × 4 settings × {args.n} prompts × "
        f"{args.seeds} seeds")
    evaluate([args.model], held_out, cfg, cache_dir=out / "cache", progress=True)

    say(f"2/4 symbol-tuning mixture from {len(tuning)} tasks")
    mixture = out / "mixture"
    if not (mixture / "manifest.json").exists():
        n = recipe.max_steps * recipe.batch_size
        # --k-max 4 (paper: 10) keeps prompts short enough to tune in minutes on a CPU
        mix = MixtureConfig(n=n, seed=args.seed, k_max=args.k_max, max_tokens=recipe.max_seq_len)
        manifest = build_mixture(tuning, mixture, mix, eval_tasks=[t.name for t in held_out])
        print_mixture_summary(manifest, mixture)

    say(f"3/4 tuning ({recipe.max_steps} steps × {recipe.batch_size} prompts)")
    tuned = ensure_tuned(args.model, mixture, out / "model", recipe)

    say("4/4 tuned model on the same prompts")
    results = evaluate([args.model, str(tuned)], held_out, cfg, cache_dir=out / "cache", progress=True)
    write_results(results, out)
    plots = report([str(out / "results.json")], out)
    print(markdown(results))
    print(f"\nrun folder: {out}  (results.json, results.md, {', '.join(p.name for p in plots)}, model/, mixture/)")
    print(f"wall time of this run: {(time.perf_counter() - started) / 60:.1f} min (steps found done were not redone)")


def add_demo_parser(subparsers) -> None:
    p = subparsers.add_parser("demo", help="base eval → symbol-tune → eval again, on the embedded model")
    p.add_argument("--model", default="smollm2-135m-instruct")
    p.add_argument("--data", default=None, help="a folder of task folders (default: built-in generated tasks)")
    p.add_argument("--eval-tasks", default=None,
                   help="names of the held-out tasks in --data (default: the dev-eval tasks)")
    p.add_argument("--out", default="runs/demo", help="run folder; a re-run resumes where it stopped")
    p.add_argument("--recipe", default="cpu-small")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a recipe key")
    # The defaults are sized for a short run on 2 CPU cores without bf16 hardware (fp32); scale them up on
    # a faster machine.
    p.add_argument("--steps", type=nonnegative_int, default=50,
                   help="tuning steps (overrides the recipe's; 0: the recipe's)")
    p.add_argument("--n", type=positive_int, default=10, help="evaluation prompts per task, setting and seed")
    p.add_argument("--k", type=positive_int, default=4, help="exemplars per class in evaluation prompts")
    p.add_argument("--seeds", type=positive_int, default=2)
    p.add_argument("--seed", type=nonnegative_int, default=0, help="seed of the tasks and the mixture")
    p.add_argument("--k-max", type=positive_int, default=4,
                   help="most exemplars per class in tuning prompts (paper: 10)")
    p.set_defaults(func=run_demo)
