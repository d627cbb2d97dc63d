"""A new evaluation suite is one decorated function: this file defines one, as a newcomer would,
and runs it from the registry through build_items, evaluate, the results file and its tables."""

import pytest
from helpers import toy_task

from symtune.cli import main
from symtune.errors import SymtuneError
from symtune.evaluate import evaluate
from symtune.prompts import Setting
from symtune.report import markdown, write_results
from symtune.results import read_results
from symtune.suites import SUITES, Condition, EvalConfig, Item, build_items, register_suite, suite_conditions


@register_suite("tiny-example")
def tiny_example(k: int) -> list[Condition]:
    """Natural labels with k exemplars per class, and symbols with one: a bar and a curve point."""
    return [Condition("natural", "natural labels", Setting(symbols=False), k),
            Condition("symbols-k1", "symbols, k=1", Setting(), 1, x=1)]


CFG = EvalConfig(suite="tiny-example", n=2, k=2, seeds=(0, 1), token_budget=256, dtype="float32")


def tasks():
    return [toy_task("bin"), toy_task("tri", labels=("a", "b", "c"))]


def test_the_registered_suite_is_listed_and_builds_typed_items():
    assert SUITES["tiny-example"] is tiny_example
    assert [c.name for c in suite_conditions("tiny-example", 3)] == ["natural", "symbols-k1"]
    conditions, items = build_items(tasks(), CFG)
    assert [c.k for c in conditions] == [2, 1]
    assert len(items) == 2 * 2 * 2 * 2 and all(isinstance(item, Item) for item in items)
    assert items[0].id == "natural/bin/0/0" and items[0].exemplars_per_class == 2
    assert {item.exemplars_per_class for item in items if item.condition == "symbols-k1"} == {1}
    with pytest.raises(SymtuneError, match="unknown suite 'nope'; choose one of .*tiny-example"):
        suite_conditions("nope")


def test_a_suite_name_is_registered_once():
    with pytest.raises(SymtuneError, match="suite 'tiny-example' is already registered"):
        register_suite("tiny-example")(tiny_example)
    assert SUITES["tiny-example"] is tiny_example


def test_the_new_suite_runs_through_evaluate_and_the_report(tiny_model_dir, tmp_path):
    results = evaluate([str(tiny_model_dir)], tasks(), CFG, cache_dir=tmp_path / "cache")
    model = results["models"][str(tiny_model_dir)]
    assert (results["suite"] == "tiny-example"
            and [c["name"] for c in results["conditions"]] == ["natural", "symbols-k1"])
    assert len(model["predictions"]) == 16
    assert model["conditions"]["symbols-k1"]["tasks"]["tri"]["chance"] == pytest.approx(1 / 3)
    write_results(results, tmp_path)
    text = markdown(read_results(tmp_path / "results.json"))  # the results file of a new suite reads back
    assert text.startswith("## tiny-example: n=2 per task and seed, k=2, seeds [0, 1]")
    assert "| model | natural labels | symbols, k=1 |" in text and "| chance | 41.7 | 41.7 |" in text


def test_the_eval_command_offers_the_new_suite(tiny_model_dir, tmp_path, capsys):
    assert main(["eval", "--model", str(tiny_model_dir), "--suite", "tiny-example", "--tasks", "builtin:linear",
                 "--n", "2", "--k", "1", "--seeds", "1", "--dtype", "float32", "--out", str(tmp_path / "out")]) == 0
    assert "| model | natural labels | symbols, k=1 |" in capsys.readouterr().out
