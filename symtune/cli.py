"""`symtune` command line: only wiring; every command calls a plain function of the package."""

import argparse
import signal
import sys
import time
from dataclasses import fields
from pathlib import Path

from symtune import __version__
from symtune.config import add_flags, default_of, did_you_mean, from_mapping, given
from symtune.demo import add_demo_parser
from symtune.errors import SymtuneError
from symtune.evaluate import evaluate
from symtune.lmeval_export import export_suite
from symtune.mixture import MixtureConfig, build_mixture, check_config, print_mixture_summary, read_mixture
from symtune.models import cache_dir, load_tokenizer
from symtune.prompts import Setting, build_eval_prompts
from symtune.report import add_report_parser, markdown, write_results
from symtune.studies.cli import add_study_parser
from symtune.suites import SUITES, EvalConfig, build_items
from symtune.suites import eval_config as suite_config
from symtune.tasks.registry import load_task_list, load_tasks
from symtune.train.cli import add_tune_parser
from symtune.validate import NewFolders, check_outputs, check_own_folder, fraction, nonnegative_int, positive_int

# `symtune data build`'s flags are MixtureConfig's fields, under their established names
MIXTURE_FLAGS = {"avoid_natural": {"flag": "--allow-natural-symbols", "action": "store_false",
                                   "help": "do not reject symbols equal to a natural label name"},
                 "fmt": {"flag": "--format"}}


def field_default(cls, name: str):
    """The default of the dataclass `cls`'s field `name`: a flag that mirrors a config field takes it from there."""
    return default_of(next(f for f in fields(cls) if f.name == name))


def add_data_parsers(sub) -> None:
    data = sub.add_parser("data", help="build and inspect symbol-tuning data").add_subparsers(dest="data_command",
                                                                                             required=True)

    build = data.add_parser("build", help="write a prompt/completion tuning mixture")
    build.add_argument("--tasks", required=True,
                       help="task specs, comma-separated (folder, file?cols, hf:id, preset, builtin[:family])")
    build.add_argument("--out", required=True, help="output folder (train.jsonl + manifest.json)")
    add_flags(build, MixtureConfig, **MIXTURE_FLAGS)
    build.add_argument("--natural", action="store_true", help="the natural-label control (same as --symbol-fraction 0)")
    build.add_argument("--eval-tasks", default="",
                       help="task names or specs held out for evaluation; refused as tuning tasks")
    build.add_argument("--tokenizer", default=None,
                       help="model whose tokenizer counts tokens (enables exact budgets and totals)")
    build.set_defaults(func=run_data_build)

    show = data.add_parser("show", help="render a few prompts for a human to read")
    show.add_argument("source", nargs="?", help="a mixture folder (else use --tasks)")
    show.add_argument("--tasks", help="task specs to render evaluation prompts from")
    show.add_argument("--n", type=positive_int, default=3, help="prompts to show (per task)")
    show.add_argument("--k", type=positive_int, default=field_default(EvalConfig, "k"),
                      help=f"exemplars per class (default {field_default(EvalConfig, 'k')})")
    show.add_argument("--seed", type=nonnegative_int, default=0)
    show.add_argument("--instruction", action="store_true", help="include the task instruction")
    show.add_argument("--natural", action="store_true", help="natural labels instead of symbols")
    show.add_argument("--flip", type=fraction, default=field_default(Setting, "flip"),
                      help="fraction of exemplar labels flipped (paper 2)")
    show.add_argument("--flip-query", action="store_true", help="flip exemplars and query (paper 1)")
    show.add_argument("--format", default=field_default(EvalConfig, "fmt"), help="one fixed prompt format")
    show.set_defaults(func=run_data_show)


def split_specs(specs: str) -> list[str]:
    return [s.strip() for s in specs.split(",") if s.strip()]


def eval_task_names(specs: str, seed: int) -> list[str]:
    """Names of held-out tasks: a local folder or builtin spec gives its task names; anything
    else (a preset or task name) is taken as a name, without touching the network."""
    names = []
    for spec in split_specs(specs):
        local = Path(spec.split("?")[0]).exists() or spec.startswith("builtin")
        names += [t.name for t in load_tasks(spec, seed)] if local else [spec]
    return names


def run_data_build(args) -> None:
    values = given(args, MixtureConfig)
    if args.natural:
        values["symbol_fraction"] = 0.0
    cfg = from_mapping(MixtureConfig, values, "the command line", "mixture")
    check_config(cfg)
    check_outputs({"--out": args.out}, {"task": split_specs(args.tasks),
                                        "evaluation task": split_specs(args.eval_tasks),
                                        "tokenizer": args.tokenizer})
    check_own_folder(args.out, "--out", ("manifest.json",), "symtune data build")
    started = time.perf_counter()
    tasks = load_task_list(split_specs(args.tasks), seed=cfg.seed)
    tokenizer = None
    if args.tokenizer:
        tokenizer = load_tokenizer(args.tokenizer)
    manifest = build_mixture(tasks, args.out, cfg, eval_tasks=eval_task_names(args.eval_tasks, cfg.seed),
                             tokenizer=tokenizer, progress=sys.stderr.isatty())
    print_mixture_summary(manifest, args.out, time.perf_counter() - started)


def run_data_show(args) -> None:
    if args.source:
        rows, _ = read_mixture(args.source)
        for row in rows[: args.n]:
            print(f"=== {row.get('id')} · {row.get('task')} · {row.get('kind')} · {row.get('format')} · "
                  f"mapping {row.get('mapping')}")
            print(row["prompt"] + f"\033[1m{row['completion']}\033[0m" if sys.stdout.isatty()
                  else row["prompt"] + row["completion"])
            print()
        return
    if not args.tasks:
        raise SymtuneError("give a mixture folder or --tasks")
    setting = Setting(instruction=args.instruction, symbols=not args.natural, flip=args.flip,
                      flip_query=args.flip_query)
    for task in load_task_list(split_specs(args.tasks), seed=args.seed):
        for i, prompt in enumerate(build_eval_prompts(task, n=args.n, k=args.k, setting=setting, seed=args.seed,
                                                      fmt=args.format)):
            print(f"=== {task.name} #{i} · {setting.name} · {prompt.format} · mapping {prompt.mapping} · "
                  f"answer {prompt.target!r}")
            print(prompt.text + prompt.completion)
            print()


# `symtune eval`'s flags are EvalConfig's fields; these keep their established names and meanings
EVAL_FLAGS = {
    "suite": {"choices": SUITES},
    "seeds": {"type": positive_int, "metavar": "N",
              "help": "number of seeds, new exemplars and symbols each "
                      f"(default {len(field_default(EvalConfig, 'seeds'))})"},
    "fmt": {"flag": "--format"},
    "calibrate": {"flag": "--calibration"},  # --no-calibration skips the content-free pass
    "dtype": {"choices": ("auto", "float32", "bfloat16")},
}


def add_eval_parser(subparsers) -> None:
    p = subparsers.add_parser("eval", help="in-context-learning evaluation suites (docs/method.md)")
    p.add_argument("--model", action="append", default=[], help="model to evaluate (repeat for several)")
    p.add_argument("--tasks", default=None,
                   help="task specs, comma-separated (the linear suite defaults to builtin:linear)")
    p.add_argument("--out", required=True, help="output folder: results.json, results.md, cache/")
    add_flags(p, EvalConfig, **EVAL_FLAGS)
    p.add_argument("--cache", default=None, help="request cache folder (default OUT/cache)")
    p.add_argument("--export-lmeval", default=None, metavar="DIR",
                   help="also write the suite as lm-evaluation-harness tasks")
    p.set_defaults(func=run_eval)


def eval_config(args) -> EvalConfig:
    return suite_config(given(args, EvalConfig), "the command line")


def run_eval(args) -> None:
    # local: batching pulls in torch, which --export-lmeval alone does not need
    from symtune.batching import process_state

    specs = args.tasks or ("builtin:linear" if args.suite == "linear" else None)
    if not specs:
        raise SymtuneError(f"the {args.suite} suite needs --tasks")
    if not args.model and not args.export_lmeval:
        raise SymtuneError("give at least one --model (or --export-lmeval DIR)")
    check_outputs({"--out": args.out, "--cache": args.cache, "--export-lmeval": args.export_lmeval},
                  {"task": specs.split(","), "model": args.model, "model cache": str(cache_dir())})
    check_own_folder(args.out, "--out", ("results.json", "cache"), "symtune eval")
    cfg = eval_config(args)
    tasks = load_task_list(specs, seed=0)
    if args.export_lmeval:
        conditions, items = build_items(tasks, cfg)
        export_suite(items, conditions, args.export_lmeval, suite=cfg.suite, max_new_tokens=cfg.max_new_tokens)
        print(f"wrote lm-evaluation-harness tasks to {args.export_lmeval}", file=sys.stderr)
    if not args.model:
        return
    results = evaluate(args.model, tasks, cfg, cache_dir=args.cache or Path(args.out) / "cache",
                       task_specs=specs.split(","), progress=sys.stderr.isatty())
    if process_state().is_main_process:
        write_results(results, args.out)
        print(markdown(results))


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: the usage block it prints by default buries the message."""

    def error(self, message):
        raise SymtuneError(f"{message} (see {self.prog} --help)")

    def parse_args(self, args=None, namespace=None):
        """argparse's, with a did-you-mean hint for an unknown option from the options of its command."""
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            command = command_parser(self, parsed)
            known = [o for action in command._actions for o in action.option_strings]
            unknown = next((e for e in extras if e.startswith("-")), extras[0])
            raise SymtuneError(f"unrecognized arguments: {' '.join(extras)}{did_you_mean(unknown, known)} "
                               f"(see {command.prog} --help)")
        return parsed


def command_parser(parser: argparse.ArgumentParser, parsed) -> argparse.ArgumentParser:
    """The (sub)parser of the command `parsed` chose: `symtune data build`'s, say."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and getattr(parsed, action.dest, None) in action.choices:
            return command_parser(action.choices[getattr(parsed, action.dest)], parsed)
    return parser


class Terminated(BaseException):
    """SIGTERM or SIGHUP, raised like KeyboardInterrupt so that temp files are removed on the way out."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def terminate(signum, frame):
    raise Terminated(signum)


def handle_signals() -> dict:
    """Install the SIGTERM/SIGHUP handlers; return the previous ones (main restores them)."""
    previous = {}
    for sig in (signal.SIGTERM, signal.SIGHUP):
        try:
            previous[sig] = signal.signal(sig, terminate)
        except ValueError:  # not the main thread (main() called from a worker): leave signals alone
            pass
    return previous


def output_folders(args) -> list:
    """The folders a command writes into, for NewFolders: --out (its folder when it names a file), --cache,
    --export-lmeval."""
    out = getattr(args, "out", None)
    if out and getattr(args, "out_is_file", False):
        out = Path(out).parent
    return [out, getattr(args, "cache", None), getattr(args, "export_lmeval", None)]


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="symtune", description="Symbol tuning and in-context-learning evaluation for causal LMs.")
    parser.add_argument("--version", action="version", version=f"symtune {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    add_data_parsers(sub)
    add_tune_parser(sub)
    add_eval_parser(sub)
    add_report_parser(sub)
    add_demo_parser(sub)
    add_study_parser(sub)
    return parser


def main(argv=None) -> int:
    previous = handle_signals()
    try:
        args = build_parser().parse_args(argv)
        with NewFolders(output_folders(args)):  # a failed command leaves no new empty folder
            args.func(args)
    except SymtuneError as e:
        print(f"symtune: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("symtune: interrupted", file=sys.stderr)
        return 128 + signal.SIGINT
    except Terminated as e:
        print(f"symtune: stopped by {signal.Signals(e.signum).name}", file=sys.stderr)
        return 128 + e.signum
    finally:
        for sig, handler in previous.items():
            if handler is not None:  # None: the handler was not set from Python; nothing to restore
                signal.signal(sig, handler)
    return 0


if __name__ == "__main__":
    sys.exit(main())
