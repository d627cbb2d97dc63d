"""`symtune study`: the sibling studies from the command line. symtune.cli adds this parser.

    symtune study generalization [--quick] --out runs/study-generalization
    symtune study two-stage [--quick] --out runs/study-two-stage
    symtune study report runs/study-*/results.json   # then: python scripts/experiment.py --gather

--quick runs a small version (one seed, fewer steps and test items, no self-augmentation);
flags given explicitly win over it. Tuning runs at lr 1e-3 unless --set lr=... says otherwise.
"""

import shlex
import sys

from symtune.config import add_flags, from_mapping, given
from symtune.models import cache_dir
from symtune.studies import generalization, two_stage
from symtune.studies.report import write_report
from symtune.validate import check_outputs, real

QUICK = {
    "generalization": {"seeds": 1, "steps": 60, "max_items": 12, "icl_tokens": 256, "augmenters": ("oracle",)},
    "two_stage": {"seeds": 1, "steps": 40, "n_eval": 12, "forget_n": 12},
}


COMMON = ("model", "seeds", "steps", "recipe", "overrides", "keep_models")
FLAGS = {"overrides": {"flag": "--set", "metavar": "KEY=VALUE"},
         "augmenters": {"metavar": "NAMES"},
         "ratio": {"type": str, "metavar": "S:N", "sep": ":"}}  # parsed by run_two_stage_command


def make_config(cls, study: str, quick: bool, flags: dict):
    """`cls` from the flags given (None: not given), then the --quick preset, then its defaults."""
    preset = QUICK[study] if quick else {}
    return from_mapping(cls, {**preset, **flags}, "the command line", f"{study} study")


def command_line() -> str:
    return "symtune " + " ".join(map(shlex.quote, sys.argv[1:]))


def add_common(p, out: str) -> None:
    p.add_argument("--out", default=out, help=f"run folder; a re-run resumes where it stopped (default {out})")
    p.add_argument("--quick", action="store_true", help="a small version that runs in minutes")


def add_study_parser(subparsers) -> None:
    study = subparsers.add_parser("study",
                                  help="the sibling studies: generalization (Lampinen) and two-stage (Symbol-LLM)")
    sub = study.add_subparsers(dest="study_command", required=True)

    gen = sub.add_parser("generalization", help="ICL vs fine-tuning vs augmented fine-tuning on nonsense-word data")
    add_common(gen, "runs/study-generalization")
    add_flags(gen, generalization.GeneralizationConfig,
              COMMON + ("size", "splitting", "augmenters", "icl_tokens", "max_items"), **FLAGS)
    gen.set_defaults(func=run_generalization_command)

    two = sub.add_parser("two-stage", help="Symbol-evol SCAN: injection → infusion vs one-stage training")
    add_common(two, "runs/study-two-stage")
    add_flags(two, two_stage.TwoStageConfig, COMMON + ("injection_share", "ratio", "k", "max_actions", "n_eval",
                                                       "natural_tasks", "forget_tasks", "forget_n", "forget_k"),
              **FLAGS)
    two.set_defaults(func=run_two_stage_command)

    rep = sub.add_parser("report", help="the results Markdown (with plots) from the studies' results.json files")
    rep.add_argument("results", nargs="+", help="results.json files of `symtune study generalization / two-stage`")
    rep.add_argument("--out", default="docs/results/studies.md",
                     help="the Markdown file (figures go in a folder beside it); "
                          "docs/results.md gathers docs/results/*.md")
    rep.set_defaults(func=run_report_command, out_is_file=True)


def check_study_paths(args, *task_specs) -> None:
    specs = [s for spec in task_specs if spec for s in spec.split(",")]
    check_outputs({"--out": args.out}, {"model": args.model, "task": specs, "model cache": str(cache_dir())})


def run_generalization_command(args) -> None:
    check_study_paths(args)
    cfg = make_config(generalization.GeneralizationConfig, "generalization", args.quick,
                      given(args, generalization.GeneralizationConfig))
    generalization.run_generalization(cfg, args.out, command_line())


def run_two_stage_command(args) -> None:
    check_study_paths(args, args.natural_tasks, args.forget_tasks)
    flags = given(args, two_stage.TwoStageConfig)
    if "ratio" in flags:
        flags["ratio"] = tuple(real(w, f"--ratio {args.ratio!r}: a weight", minimum=0.0) for w in args.ratio.split(":"))
    cfg = make_config(two_stage.TwoStageConfig, "two_stage", args.quick, flags)
    two_stage.run_two_stage(cfg, args.out, command_line())


def run_report_command(args) -> None:
    check_outputs({"--out": ("file", args.out)}, {"results file": args.results})
    print(f"wrote {write_report(args.results, args.out)}", file=sys.stderr)
