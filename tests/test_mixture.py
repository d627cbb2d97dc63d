import json
import re
from collections import Counter

import pytest
from helpers import toy_task

from symtune.errors import SymtuneError
from symtune.mixture import MixtureConfig, build_mixture
from symtune.symbols import tuning_pool
from symtune.tasks.task import Example, Task


def rows(out):
    return [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]


def tasks():
    return [toy_task("a", per_class=20), toy_task("b", labels=("x", "y", "z"), per_class=15, pair=True)]


def test_same_seed_gives_byte_identical_output(tmp_path):
    build_mixture(tasks(), tmp_path / "1", MixtureConfig(n=200, seed=3))
    build_mixture(tasks(), tmp_path / "2", MixtureConfig(n=200, seed=3))
    build_mixture(tasks(), tmp_path / "3", MixtureConfig(n=200, seed=4))
    first = (tmp_path / "1" / "train.jsonl").read_bytes()
    assert first == (tmp_path / "2" / "train.jsonl").read_bytes()
    assert first != (tmp_path / "3" / "train.jsonl").read_bytes()


def test_rows_carry_task_mapping_format_seed_and_use_the_tuning_pool(tmp_path):
    manifest = build_mixture(tasks(), tmp_path, MixtureConfig(n=300, seed=1))
    members = tuning_pool().members()
    data = rows(tmp_path)
    assert len(data) == 300 and manifest["n"] == 300
    for row in data:
        assert {"id", "task", "kind", "format", "seed", "k", "prompt", "completion", "labels", "mapping"} <= set(row)
        assert row["kind"] == "symbol" and set(row["labels"]) <= members
        assert row["completion"][1:] in row["labels"] and row["completion"].startswith(" ")
        assert 2 <= row["k"] <= 10
        assert "Is it good?" not in row["prompt"]  # no instruction when tuning
    assert sum(v["count"] for v in manifest["tasks"].values()) == 300
    assert len({row["format"] for row in data}) == 10


def test_cap_limits_the_query_pool(tmp_path):
    build_mixture(tasks(), tmp_path, MixtureConfig(n=500, cap=5))
    queries = Counter((row["task"], re.search(r"train \w+ example number \d+", row["prompt"].rsplit("\n\n", 1)[1])[0])
                      for row in rows(tmp_path))
    assert len(queries) == 10  # 5 per task


def test_natural_label_control_and_symbol_fraction(tmp_path):
    build_mixture(tasks(), tmp_path / "nat", MixtureConfig(n=200, symbol_fraction=0.0))
    assert {r["kind"] for r in rows(tmp_path / "nat")} == {"natural"}
    assert all(r["labels"] in (["neg", "pos"], ["x", "y", "z"]) for r in rows(tmp_path / "nat"))
    build_mixture(tasks(), tmp_path / "mix", MixtureConfig(n=2000, symbol_fraction=0.25))
    share = Counter(r["kind"] for r in rows(tmp_path / "mix"))["symbol"] / 2000
    assert 0.2 < share < 0.3


def test_random_label_control(tmp_path):
    manifest = build_mixture(tasks(), tmp_path, MixtureConfig(n=50, random_labels=True))
    assert manifest["kinds"] == {"random": 50}


def test_refuses_eval_only_and_held_out_tasks(tmp_path):
    canary = toy_task("list_functions/c002")
    canary.eval_only = True
    with pytest.raises(SymtuneError, match="evaluation-only"):
        build_mixture([toy_task(), canary], tmp_path, MixtureConfig(n=10))
    with pytest.raises(SymtuneError, match="also an evaluation task"):
        build_mixture(tasks(), tmp_path, MixtureConfig(n=10), eval_tasks=["b"])
    assert not (tmp_path / "train.jsonl").exists()


def test_failure_midway_leaves_no_partial_file(tmp_path):
    with pytest.raises(SymtuneError, match="fewer than"):
        build_mixture([toy_task(per_class=2)], tmp_path, MixtureConfig(n=10, k_min=3))
    assert list(tmp_path.iterdir()) == []


def test_unwritable_output_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SymtuneError, match="cannot write"):
        build_mixture(tasks(), blocker / "mix", MixtureConfig(n=5))


def test_token_budget_and_total(tmp_path, tokenizer):
    manifest = build_mixture(tasks(), tmp_path, MixtureConfig(n=50, max_tokens=120), tokenizer=tokenizer)
    lengths = [len(tokenizer(r["prompt"] + r["completion"]).input_ids) for r in rows(tmp_path)]
    assert max(lengths) <= 120 and manifest["total_tokens"] == sum(lengths)


def test_queries_too_long_for_the_budget_are_skipped_and_counted(tmp_path):
    task = toy_task("long")
    task.train[0] = Example("very long " * 400, task.train[0].label)  # cannot fit 300 tokens with any exemplar
    manifest = build_mixture([task], tmp_path, MixtureConfig(n=40, max_tokens=300, k_min=1, k_max=2))
    assert len(rows(tmp_path)) == 40 and all("very long" not in r["prompt"] for r in rows(tmp_path))
    assert manifest["tasks"]["long"]["skipped_too_long"] >= 1
    all_long = Task("all_long", ["a", "b"], [Example(f"word{i} " * 500, label) for i, label in enumerate("ab" * 3)], [])
    with pytest.raises(SymtuneError, match="no query of any task fits"):
        build_mixture([all_long], tmp_path / "x", MixtureConfig(n=3, max_tokens=300, k_min=1, k_max=1))
