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
    results = {"models": {"base": {"scoring_seconds": 690.4}, "symbol-tuned": {"scoring_seconds": None}}}
    line = wall_times(results, 12.3)
    assert "this run: 12 s" in line
    assert "base 690 s" in line and "symbol-tuned not kept" in line
    assert "not kept:" not in wall_times({"models": {"base": {"scoring_seconds": 690.4}}}, 12.3)
