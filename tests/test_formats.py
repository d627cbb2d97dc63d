"""Each on-disk format's owner reads back what it writes, and names the file and field of a damaged one."""

import json

import pytest
from test_hostile import results_file

from symtune.errors import SymtuneError
from symtune.io import write_json
from symtune.mixture import MANIFEST, ROWS, make_manifest, read_mixture, rows_manifest, write_mixture
from symtune.results import RESULTS, curves, metric_summary, per_seed, read_results, save_results
from symtune.train.record import (
    TRAINING_RECORD,
    read_training_record,
    training_record,
    tuned_tasks,
    write_training_record,
)

ROW = {"task": "t", "kind": "symbol", "prompt": "Input: a\nOutput:", "completion": " b"}


def test_a_mixture_reads_back_and_a_damaged_manifest_is_named(tmp_path):
    manifest = rows_manifest([ROW, ROW], seed=3, options={}, source="test")
    assert write_mixture(tmp_path, [ROW, ROW], manifest) == manifest
    assert read_mixture(tmp_path) == ([ROW, ROW], manifest)
    assert manifest["tasks"] == {"t": {"count": 2, "source": "test"}} and manifest["kinds"] == {"symbol": 2}
    for damage, needle in [(lambda m: m.pop("tasks"), "missing field 'tasks'"),
                           (lambda m: m["tasks"]["t"].update(count="2"), "field 'tasks.t.count' must be a whole"),
                           (lambda m: m.update(eval_tasks="x"), "eval_tasks must be a list")]:
        broken = json.loads(json.dumps(manifest))
        damage(broken)
        write_json(tmp_path / MANIFEST, broken)
        with pytest.raises(SymtuneError, match=f"{MANIFEST}.*{needle}"):
            read_mixture(tmp_path)
    (tmp_path / MANIFEST).write_text("[1]")
    with pytest.raises(SymtuneError, match=f"{MANIFEST}.*the top level must be a mapping"):
        read_mixture(tmp_path)


def test_rows_alone_are_a_mixture_without_a_manifest(tmp_path):
    write_mixture(tmp_path, [ROW], make_manifest(seed=0, n=1, options={}, tasks={}, kinds={}))
    (tmp_path / MANIFEST).unlink()
    assert read_mixture(tmp_path) == ([ROW], {})
    (tmp_path / ROWS).write_text(json.dumps({"prompt": "a"}) + "\n")
    with pytest.raises(SymtuneError, match=f"{ROWS}: row 1 needs a non-empty string prompt and completion"):
        read_mixture(tmp_path)


def test_the_training_record_reads_back_and_a_damaged_one_is_named(tmp_path):
    assert tuned_tasks(str(tmp_path)) == [] and read_training_record(tmp_path) is None
    write_training_record(tmp_path, training_record("base", {"b", "a"}))
    assert read_training_record(tmp_path) == {"base_model": "base", "tasks": ["a", "b"]}
    assert tuned_tasks(str(tmp_path)) == ["a", "b"]
    for content, needle in [({"base_model": "base"}, "missing field 'tasks'"),
                            ({"tasks": ["a", 1]}, r"field 'tasks\[1\]' must be a string"),
                            ([], "the top level must be a mapping")]:
        write_json(tmp_path / TRAINING_RECORD, content)
        with pytest.raises(SymtuneError, match=f"{TRAINING_RECORD}: damaged training record: {needle}"):
            tuned_tasks(str(tmp_path))
    (tmp_path / TRAINING_RECORD).write_text("{")
    with pytest.raises(SymtuneError, match=f"{TRAINING_RECORD}: malformed JSON"):
        tuned_tasks(str(tmp_path))


def test_the_results_file_reads_back_through_its_accessors(tmp_path):
    results = results_file()
    path = save_results(results, tmp_path)
    assert path == tmp_path / RESULTS and read_results(path) == results
    assert metric_summary(results, "m", "c", "acc")["mean"] == 0.5 and per_seed(results, "m", "c", "acc") == [0.4, 0.6]
    assert metric_summary(results, "m", "c", "acc_gen") is None and per_seed(results, "m", "c", "acc_gen") == []
    assert curves(results) == {}


@pytest.mark.parametrize("extra, needle", [
    ({"comparisons": [["m", "n"]]}, "a comparison names 'n', neither one of its models nor a pool"),
    ({"comparisons": [["m"]]}, "comparisons hold \\[model, reference\\] pairs"),
    ({"comparisons": [["m", ["n"]]]}, "comparisons hold \\[model, reference\\] pairs"),
    ({"pools": {"p": ["m"]}}, "pool 'p' must list two or more of its models"),
    ({"pools": {"p": ["m", "n"]}}, "pool 'p' must list two or more of its models \\(m\\)"),
    ({"pools": ["m", "n"]}, "pools must map each name to a list of models, got list"),
    ({"comparisons": {}}, "comparisons must be a list of pairs, got dict"),
    ({"curves": []}, "field 'curves' must be a mapping"),
    ({"curves": {"r": [["2", "m"]]}}, r"field 'curves.r' must hold \[steps, model\] pairs"),
])
def test_a_results_file_with_damaged_comparisons_curves_or_pools_is_named(tmp_path, extra, needle):
    write_json(tmp_path / RESULTS, results_file() | extra)
    with pytest.raises(SymtuneError, match=f"{RESULTS}: {needle}"):
        read_results(tmp_path / RESULTS)
