"""Tuning engine: recipes, data packing, the training loop and its checkpoints."""

from symtune.train.cli import add_tune_parser, run_tune
from symtune.train.recipe import Recipe, load_recipe

__all__ = ["Recipe", "add_tune_parser", "load_recipe", "run_tune", "tune"]


def __getattr__(name):  # `tune` imports torch: load it on first use, so the CLI starts fast
    if name == "tune":
        from symtune.train.loop import tune

        return tune
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
