"""scripts/experiment.py: which models a suite scores."""

import sys
from pathlib import Path

import pytest

from symtune.errors import SymtuneError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from experiment import suite_rows  # noqa: E402

MODELS = {"base": "smollm2", "symbol-tuned": "runs/x/symbol", "control": "runs/x/control"}


def test_a_suite_scores_base_and_every_row_unless_it_names_some():
    assert suite_rows("grid", {"n": 8}, MODELS) == ({"n": 8}, MODELS)
    settings, models = suite_rows("kcurve", {"n": 8, "rows": ["control"]}, MODELS)
    assert settings == {"n": 8}
    assert models == {"base": "smollm2", "control": "runs/x/control"}


def test_a_suite_naming_a_row_the_config_lacks_is_refused():
    with pytest.raises(SymtuneError, match="symbol-tuned LoRA"):
        suite_rows("kcurve", {"rows": ["symbol-tuned LoRA"]}, MODELS)
