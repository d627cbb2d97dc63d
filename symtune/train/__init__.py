"""Tuning engine: recipes, data packing, the training loop and its checkpoints."""

from symtune.train.cli import add_tune_parser, run_tune
from symtune.train.loop import tune
from symtune.train.recipe import Recipe, load_recipe

__all__ = ["Recipe", "add_tune_parser", "load_recipe", "run_tune", "tune"]
