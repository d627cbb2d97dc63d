"""`symtune study`: the sibling studies from the command line. symtune.cli adds this parser.

    symtune study generalization [--quick] --out runs/generalization
    symtune study two-stage [--quick] --out runs/two-stage
    symtune study report runs/generalization/results.json runs/two-stage/results.json --out docs/results-studies.md

--quick runs a small version (one seed, tiny data, few steps: minutes on a laptop CPU); any
flag given explicitly wins over the preset.
"""

import shlex
import sys

from symtune.errors import SymtuneError

PRESETS = {  # flag defaults: (full, quick)
    "generalization": {"size": ("small", "tiny"), "seeds": (3, 1), "steps": (150, 40), "max_items": (40, 12),
                       "icl_tokens": (512, 256)},
    "two_stage": {"seeds": (3, 1), "steps": (150, 40), "n_eval": (40, 12), "forget_n": (40, 12)},
}


def apply_preset(args, study: str) -> None:
    for key, (full, quick) in PRESETS[study].items():
        if getattr(args, key) is None:
            setattr(args, key, quick if args.quick else full)


def command_line() -> str:
    return "symtune " + " ".join(map(shlex.quote, sys.argv[1:]))


def add_common(p, out: str) -> None:
    p.add_argument("--model", default="smollm2-135m-instruct", help="embedded name, model folder, .gguf file or hub id")
    p.add_argument("--out", default=out, help="run folder; a re-run resumes where it stopped")
    p.add_argument("--quick", action="store_true", help="a small version that runs in minutes")
    p.add_argument("--seeds", type=int, default=None, help="study seeds (new data and tuning runs each)")
    p.add_argument("--steps", type=int, default=None, help="tuning steps of every run")
    p.add_argument("--recipe", default="cpu-small", help="shipped recipe name or YAML file")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a recipe key (repeatable)")
    p.add_argument("--keep-models", action="store_true", help="keep the tuned weights (deleted once scored)")


def add_study_parser(subparsers) -> None:
    study = subparsers.add_parser("study", help="the sibling studies: generalization (Lampinen) and two-stage (Symbol-LLM)")
    sub = study.add_subparsers(dest="study_command", required=True)

    gen = sub.add_parser("generalization", help="ICL vs fine-tuning vs augmented fine-tuning on nonsense-word data")
    add_common(gen, "runs/study-generalization")
    gen.add_argument("--size", default=None, help="dataset size: tiny, small or paper (default small; --quick: tiny)")
    gen.add_argument("--splitting", default="independent", help="sentence splitting: independent, cumulative or none")
    gen.add_argument("--augmenters", default="oracle,self", help="oracle and/or self (the model prompted in context)")
    gen.add_argument("--icl-tokens", type=int, default=None, help="document tokens per ICL prompt")
    gen.add_argument("--max-items", type=int, default=None, help="test items per split")
    gen.set_defaults(func=run_generalization_command)

    two = sub.add_parser("two-stage", help="Symbol-evol SCAN: injection → infusion vs one-stage training")
    add_common(two, "runs/study-two-stage")
    two.add_argument("--injection-share", type=float, default=0.5, help="share of the steps in the injection stage")
    two.add_argument("--ratio", default="1:1", help="symbolic:natural weights in the mixed stage (paper: 1:1)")
    two.add_argument("--k", type=int, default=0, help="solved exemplars per Symbol-evol prompt")
    two.add_argument("--max-actions", type=int, default=8, help="SCAN commands of at most this many actions")
    two.add_argument("--n-eval", type=int, default=None, help="SCAN test commands per split")
    two.add_argument("--natural-tasks", default="builtin:numbers,builtin:strings", help="task specs of the natural-label data")
    two.add_argument("--forget-tasks", default="builtin:lexical", help="task specs of the forgetting check (never tuned on)")
    two.add_argument("--forget-n", type=int, default=None, help="ICL prompts per forgetting task")
    two.add_argument("--forget-k", type=int, default=2, help="exemplars per class in those prompts")
    two.set_defaults(func=run_two_stage_command)

    rep = sub.add_parser("report", help="the results Markdown (with plots) from studies' results.json files")
    rep.add_argument("results", nargs="+", help="results.json files of `symtune study generalization / two-stage`")
    rep.add_argument("--out", default="docs/results-studies.md", help="the Markdown file; figures go in a folder beside it")
    rep.set_defaults(func=run_report_command)


def run_generalization_command(args) -> None:
    from symtune.studies.generalization import GeneralizationConfig, run_generalization

    apply_preset(args, "generalization")
    cfg = GeneralizationConfig(
        model=args.model, size=args.size, seeds=args.seeds, steps=args.steps, recipe=args.recipe, overrides=args.set,
        splitting=args.splitting, augmenters=tuple(a.strip() for a in args.augmenters.split(",") if a.strip()),
        icl_tokens=args.icl_tokens, max_items=args.max_items, keep_models=args.keep_models,
    )
    run_generalization(cfg, args.out, command_line())


def run_two_stage_command(args) -> None:
    from symtune.studies.two_stage import TwoStageConfig, run_two_stage

    apply_preset(args, "two_stage")
    try:
        ratio = tuple(float(w) for w in args.ratio.split(":"))
    except ValueError:
        raise SymtuneError(f"--ratio expects two weights like 1:1, got {args.ratio!r}") from None
    cfg = TwoStageConfig(
        model=args.model, seeds=args.seeds, steps=args.steps, injection_share=args.injection_share, ratio=ratio,
        recipe=args.recipe, overrides=args.set, k=args.k, max_actions=args.max_actions, n_eval=args.n_eval,
        natural_tasks=args.natural_tasks, forget_tasks=args.forget_tasks, forget_n=args.forget_n,
        forget_k=args.forget_k, keep_models=args.keep_models,
    )
    run_two_stage(cfg, args.out, command_line())


def run_report_command(args) -> None:
    from symtune.studies.report import write_report

    print(f"wrote {write_report(args.results, args.out)}", file=sys.stderr)
