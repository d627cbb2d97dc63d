import json
from pathlib import Path

import pytest

from symtune.cli import main
from symtune.demo import split_tasks
from symtune.errors import SymtuneError

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def test_builtin_split_is_disjoint():
    tuning, held_out = split_tasks(None, None, seed=0)
    assert tuning and held_out
    assert not {t.name for t in tuning} & {t.name for t in held_out}


@pytest.mark.skipif(not SHARED.exists(), reason="needs ../shared/data")
def test_shared_split_tunes_on_the_pool_and_never_on_bigbench():
    tuning, held_out = split_tasks(str(SHARED), None, seed=0)
    assert {t.name for t in held_out} == {"boolq", "cr", "financial_phrasebank", "poem_sentiment", "sms_spam",
                                           "tweet_eval_emotion"}
    assert len(tuning) == 21 and not any(t.eval_only or t.is_generation for t in tuning)
    with pytest.raises(SymtuneError, match="not in"):
        split_tasks(str(SHARED), ["nope"], seed=0)


@pytest.mark.skipif(not SHARED.exists(), reason="needs ../shared/data")
def test_naming_other_eval_tasks_still_never_tunes_on_the_dev_eval_tasks():
    # the data's meta.json files carry no role: the dev-eval names come from presets.yaml
    tuning, held_out = split_tasks(str(SHARED), ["sst2", "trec"], seed=0)
    assert [t.name for t in held_out] == ["sst2", "trec"]
    assert len(tuning) == 19 and not {t.name for t in tuning} & {"boolq", "cr", "financial_phrasebank",
                                                                 "poem_sentiment", "sms_spam", "tweet_eval_emotion"}


def test_demo_end_to_end_on_a_tiny_model(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["demo", "--model", str(tiny_model_dir), "--out", str(out), "--steps", "2", "--n", "2", "--seeds", "1",
            "--set", "batch_size=2", "--set", "max_seq_len=512"]
    assert main(argv) == 0
    results = json.loads((out / "results.json").read_text())
    assert set(results["models"]) == {str(tiny_model_dir), str(out / "model")}
    assert (out / "model" / "config.json").exists() or (out / "model" / "adapter_config.json").exists()
    assert list(out.glob("*.png"))
    printed = capsys.readouterr().out
    assert "✗✗" in printed and "wall time of this run:" in printed
    headline = next(line for line in printed.splitlines() if line.startswith("headline: "))
    assert "tuned − base, ✗✗ noinstr-symbols:" in headline and "n=8 prompts" in headline  # 4 tasks x 2 x 1 seed
    assert "resolved" in headline  # a verdict, whichever it is
    assert results["config"]["calibrate"] is False  # the demo scores plain accuracy only
    assert main(argv) == 0  # a re-run resumes from the finished artifacts


def test_tuned_model_refuses_evaluation_on_its_tuning_tasks(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["demo", "--model", str(tiny_model_dir), "--out", str(out), "--steps", "1", "--n", "1", "--seeds", "1",
                 "--set", "batch_size=2", "--set", "max_seq_len=512"]) == 0
    capsys.readouterr()
    code = main(["eval", "--model", str(out / "model"), "--suite", "grid", "--tasks", "builtin:numbers",
                 "--n", "1", "--seeds", "1", "--out", str(tmp_path / "eval")])
    assert code == 2 and "was tuned on" in capsys.readouterr().err
