"""Flags of `symtune tune`; symtune.cli adds this parser to its subcommands."""

from symtune.train.recipe import DEFAULT_RECIPE, load_recipe
from symtune.validate import check_outputs, positive_int


def add_tune_parser(subparsers) -> None:
    tune = subparsers.add_parser("tune", help="symbol-tune a causal LM on a mixture (also under `accelerate launch`)")
    tune.add_argument("--model", required=True,
                      help="embedded name (smollm2-135m-instruct, gemma3-270m), model folder, .gguf file or hub id")
    tune.add_argument("--data", help="mixture folder from `symtune data build` (not needed when the recipe has stages)")
    tune.add_argument("--out", required=True, help="output folder: the tuned model, log, loss curve and checkpoints")
    tune.add_argument("--recipe", default=DEFAULT_RECIPE,
                      help=f"shipped recipe (cpu-small, paper, two-stage) or YAML file (default {DEFAULT_RECIPE})")
    tune.add_argument("--lora", action="store_true", help="train a LoRA adapter (same as --set lora=true)")
    tune.add_argument("--max-steps", type=positive_int, help="optimizer steps (same as --set max_steps=N)")
    tune.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                      help="override any recipe key (repeatable)")
    tune.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --out")
    tune.set_defaults(func=run_tune)


def run_tune(args) -> None:
    from symtune.train.loop import tune

    overrides = list(args.set) + (["lora=true"] if args.lora else [])
    if args.max_steps is not None:
        overrides.append(f"max_steps={args.max_steps}")
    recipe = load_recipe(args.recipe, overrides)
    from symtune.models import cache_dir

    stage_data = [d for stage in recipe.stages
                  for d in (stage["data"] if isinstance(stage["data"], list) else [stage["data"]])]
    check_outputs({"--out": args.out}, {"model": args.model, "mixture": [args.data, *stage_data],
                                        "model cache": str(cache_dir())})
    out = tune(args.model, args.data, args.out, recipe, resume=args.resume)
    print(f"tuned model -> {out}")
