"""scripts/experiment.py: which models a suite scores, and the times beside its table."""

import sys
from pathlib import Path

import pytest

from symtune.errors import SymtuneError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from experiment import suite_rows, wall_times  # noqa: E402

MODELS = {"base": "smollm2", "symbol-tuned": "runs/x/symbol", "control": "runs/x/control"}


def test_a_suite_scores_base_and_every_row_unless_it_names_some():
    assert suite_rows("grid", {"n": 8}, MODELS) == ({"n": 8}, MODELS)
    settings, models = suite_rows("kcurve", {"n": 8, "rows": ["control"]}, MODELS)
    assert settings == {"n": 8}
    assert models == {"base": "smollm2", "control": "runs/x/control"}


def test_a_suite_naming_a_row_the_config_lacks_is_refused():
    with pytest.raises(SymtuneError, match="symbol-tuned LoRA"):
        suite_rows("kcurve", {"rows": ["symbol-tuned LoRA"]}, MODELS)


def test_the_times_say_what_scoring_cost_even_when_the_run_read_the_cache():
    results = {"models": {"base": {"scoring_seconds": 690.4}, "symbol-tuned": {"scoring_seconds": 12.0}}}
    line = wall_times(results, 12.3)
    assert "this run: 12 s" in line
    assert "base 690 s, symbol-tuned 12 s." in line


def test_a_suite_naming_a_row_scores_all_of_its_budgets():
    models = {**MODELS, "symbol-tuned @50": "a", "symbol-tuned @100": "b"}
    _, chosen = suite_rows("headline", {"rows": ["symbol-tuned"]},
                           {k: v for k, v in models.items() if k != "symbol-tuned"})
    assert list(chosen) == ["base", "symbol-tuned @50", "symbol-tuned @100"]


def test_budget_curves_and_verdicts_name_each_rows_last_budget_and_the_comparisons():
    from experiment import budget_curves, verdicts
    from test_report import fake_results

    assert (budget_curves({"base": "x", "s @50": "a", "s @100": "b", "c": "d"})
            == {"s": [[50, "s @50"], [100, "s @100"]]})
    results = fake_results("grid", models=("base", "s @50", "s @100", "c"))
    results["curves"] = budget_curves(results["models"])
    results["comparisons"] = [["s @100", "c"]]
    lines = verdicts(results, 3.0).strip().splitlines()[2:]
    assert {line.split(",")[0] for line in lines} == {"- s @100 − base", "- c − base", "- s @100 − c"}
    assert len(lines) == 3 * 4 and all(line.endswith(".") for line in lines)  # 3 differences x 4 grid cells
    assert all("not resolved" in line or "resolved" in line for line in lines)
