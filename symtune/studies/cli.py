"""`symtune study`: the sibling studies from the command line. symtune.cli adds this parser.

    symtune study generalization [--quick] --out runs/study-generalization
    symtune study two-stage [--quick] --out runs/study-two-stage
    symtune study report runs/study-*/results.json   # then: python scripts/experiment.py --gather

--quick runs a small version (one seed, fewer steps and test items, no self-augmentation);
flags given explicitly win over it. Tuning runs at lr 1e-3 unless --set lr=... says otherwise.
"""

import shlex
import sys

from symtune.models import cache_dir
from symtune.studies import generalization, two_stage
from symtune.studies.report import write_report
from symtune.validate import check_outputs, fraction, nonnegative_int, positive_int, real

QUICK = {
    "generalization": {"seeds": 1, "steps": 60, "max_items": 12, "icl_tokens": 256, "augmenters": ("oracle",)},
    "two_stage": {"seeds": 1, "steps": 40, "n_eval": 12, "forget_n": 12},
}


def make_config(cls, study: str, quick: bool, **flags):
    """`cls` from the flags given (None: not given), then the --quick preset, then its defaults."""
    preset = QUICK[study] if quick else {}
    return cls(**{**preset, **{key: value for key, value in flags.items() if value is not None}})


def command_line() -> str:
    return "symtune " + " ".join(map(shlex.quote, sys.argv[1:]))


def add_common(p, out: str) -> None:
    p.add_argument("--model", default=None,
                   help="embedded name (default smollm2-135m-instruct), model folder, .gguf or hub id")
    p.add_argument("--out", default=out, help="run folder; a re-run resumes where it stopped")
    p.add_argument("--quick", action="store_true", help="a small version that runs in minutes")
    p.add_argument("--seeds", type=positive_int, default=None,
                   help="study seeds, new data and tuning runs each (default 3)")
    p.add_argument("--steps", type=positive_int, default=None, help="tuning steps of every run")
    p.add_argument("--recipe", default=None, help="shipped recipe name or YAML file (default cpu-small)")
    p.add_argument("--set", action="append", default=None, metavar="KEY=VALUE",
                   help="override a recipe key (repeatable)")
    p.add_argument("--keep-models", action="store_true", default=None,
                   help="keep the tuned weights (deleted once scored)")


def add_study_parser(subparsers) -> None:
    study = subparsers.add_parser("study",
                                  help="the sibling studies: generalization (Lampinen) and two-stage (Symbol-LLM)")
    sub = study.add_subparsers(dest="study_command", required=True)

    gen = sub.add_parser("generalization", help="ICL vs fine-tuning vs augmented fine-tuning on nonsense-word data")
    add_common(gen, "runs/study-generalization")
    gen.add_argument("--size", default=None, help="dataset size: tiny (default), small or paper")
    gen.add_argument("--splitting", default=None, help="sentence splitting: independent (default), cumulative or none")
    gen.add_argument("--augmenters", default=None, help="oracle and/or self, comma-separated (default both)")
    gen.add_argument("--icl-tokens", type=positive_int, default=None, help="document tokens per ICL prompt")
    gen.add_argument("--max-items", type=positive_int, default=None, help="test items per split")
    gen.set_defaults(func=run_generalization_command)

    two = sub.add_parser("two-stage", help="Symbol-evol SCAN: injection → infusion vs one-stage training")
    add_common(two, "runs/study-two-stage")
    two.add_argument("--injection-share", type=fraction, default=None,
                     help="share of the steps in the injection stage (0.5)")
    two.add_argument("--ratio", default=None,
                     help="symbolic:natural weights in the mixed stage (default 1:1, as the paper)")
    two.add_argument("--k", type=nonnegative_int, default=None,
                     help="solved exemplars per Symbol-evol prompt (default 0)")
    two.add_argument("--max-actions", type=positive_int, default=None,
                     help="SCAN commands of at most this many actions (8)")
    two.add_argument("--n-eval", type=positive_int, default=None, help="SCAN test commands per split")
    two.add_argument("--natural-tasks", default=None,
                     help="task specs of the natural-label data (builtin:numbers,builtin:strings)")
    two.add_argument("--forget-tasks", default=None,
                     help="task specs of the forgetting check, never tuned on (builtin:lexical)")
    two.add_argument("--forget-n", type=positive_int, default=None, help="ICL prompts per forgetting task")
    two.add_argument("--forget-k", type=positive_int, default=None, help="exemplars per class in those prompts (2)")
    two.set_defaults(func=run_two_stage_command)

    rep = sub.add_parser("report", help="the results Markdown (with plots) from the studies' results.json files")
    rep.add_argument("results", nargs="+", help="results.json files of `symtune study generalization / two-stage`")
    rep.add_argument("--out", default="docs/results/studies.md",
                     help="the Markdown file (figures go in a folder beside it); "
                          "docs/results.md gathers docs/results/*.md")
    rep.set_defaults(func=run_report_command, out_is_file=True)


def common_flags(args) -> dict:
    return {"model": args.model, "seeds": args.seeds, "steps": args.steps, "recipe": args.recipe,
            "overrides": args.set, "keep_models": args.keep_models}


def check_study_paths(args, *task_specs) -> None:
    specs = [s for spec in task_specs if spec for s in spec.split(",")]
    check_outputs({"--out": args.out}, {"model": args.model, "task": specs, "model cache": str(cache_dir())})


def run_generalization_command(args) -> None:
    check_study_paths(args)
    augmenters = tuple(a.strip() for a in args.augmenters.split(",") if a.strip()) if args.augmenters else None
    cfg = make_config(generalization.GeneralizationConfig, "generalization", args.quick, **common_flags(args),
                      size=args.size, splitting=args.splitting, augmenters=augmenters, icl_tokens=args.icl_tokens,
                      max_items=args.max_items)
    generalization.run_generalization(cfg, args.out, command_line())


def run_two_stage_command(args) -> None:
    check_study_paths(args, args.natural_tasks, args.forget_tasks)
    ratio = None
    if args.ratio is not None:
        ratio = tuple(real(w, f"--ratio {args.ratio!r}: a weight", minimum=0.0) for w in args.ratio.split(":"))
    cfg = make_config(two_stage.TwoStageConfig, "two_stage", args.quick, **common_flags(args),
                      injection_share=args.injection_share, ratio=ratio, k=args.k, max_actions=args.max_actions,
                      n_eval=args.n_eval, natural_tasks=args.natural_tasks, forget_tasks=args.forget_tasks,
                      forget_n=args.forget_n, forget_k=args.forget_k)
    two_stage.run_two_stage(cfg, args.out, command_line())


def run_report_command(args) -> None:
    check_outputs({"--out": ("file", args.out)}, {"results file": args.results})
    print(f"wrote {write_report(args.results, args.out)}", file=sys.stderr)
