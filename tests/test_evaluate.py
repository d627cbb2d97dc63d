import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import toy_task

from symtune.cache import RequestCache
from symtune.cli import add_eval_parser
from symtune.errors import SymtuneError
from symtune.evaluate import check_unseen, evaluate
from symtune.models import load_model
from symtune.prompts import SEPARATOR
from symtune.scoring import score_requests
from symtune.stats import aggregate
from symtune.suites import CONTENT_FREE, EvalConfig, build_items, classification_items, suite_conditions
from symtune.tasks.task import Example, Task

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def tasks():
    return [toy_task("bin"), toy_task("tri", labels=("a", "b", "c"))]


def test_the_grid_is_the_papers_four_settings():
    grid = suite_conditions("grid")
    assert sorted(c.label.split()[0] for c in grid) == sorted(["✓✓", "✗✓", "✓✗", "✗✗"])
    assert {(c.setting.instruction, c.setting.symbols) for c in grid} == {(i, s) for i in (0, 1) for s in (0, 1)}


def test_flipped_suite_has_paper1_and_the_paper2_sweep():
    paper1, *sweep = suite_conditions("flipped")
    assert paper1.setting.flip_query and not paper1.setting.symbols and paper1.x is None
    assert [c.x for c in sweep] == [0, 25, 50, 75, 100]
    assert [c.setting.flip for c in sweep] == [0, 0.25, 0.5, 0.75, 1.0]
    assert all(c.binary_only and not c.setting.flip_query for c in sweep)


def test_kcurve_sweeps_k_in_the_symbol_setting():
    assert [(c.k, c.setting.symbols, c.setting.instruction) for c in suite_conditions("kcurve")] == [
        (k, True, False) for k in (1, 2, 4, 8)]


def test_unknown_suite_is_refused():
    with pytest.raises(SymtuneError, match="unknown suite"):
        suite_conditions("gird")


def test_items_are_seeded_complete_and_identical_on_rebuild():
    cfg = EvalConfig(suite="grid", n=3, k=2, seeds=(0, 1))
    conditions, items = build_items(tasks(), cfg)
    assert len(items) == 4 * 2 * 2 * 3
    assert len({i.id for i in items}) == len(items)
    assert build_items(tasks(), cfg)[1] == items
    other_seed = build_items(tasks(), EvalConfig(suite="grid", n=3, k=2, seeds=(5,)))[1]
    assert {i.text for i in other_seed}.isdisjoint(i.text for i in items)
    for item in items:
        assert item.candidates[item.answer] == item.target


def test_calibration_replaces_only_the_query_input():
    _, items = build_items(tasks(), EvalConfig(suite="grid", n=2, k=2, seeds=(0,)))
    for item in items:
        assert item.text.endswith(SEPARATOR + item.query)
        (query_input,) = re.findall(r"test \w+ example number \d+", item.query)
        assert item.content_free == item.query.replace(query_input, CONTENT_FREE)
    _, plain = build_items(tasks(), EvalConfig(suite="grid", n=2, k=2, seeds=(0,), calibrate=False))
    assert all(item.content_free is None and item.query is None for item in plain)


def test_binary_only_conditions_drop_multiclass_tasks():
    _, items = build_items(tasks(), EvalConfig(suite="flipped", n=2, k=2, seeds=(0,)))
    assert {i.task for i in items} == {"bin"}
    with pytest.raises(SymtuneError, match="binary"):
        build_items([toy_task("tri", labels=("a", "b", "c"))], EvalConfig(suite="flipped", n=2, k=2, seeds=(0,)))


@pytest.mark.parametrize("task, cfg, message", [
    (Task("notest", ["n", "p"], toy_task().train, []), EvalConfig(suite="grid", n=2, k=2), "no test split"),
    (toy_task(per_class=4), EvalConfig(suite="grid", n=2, k=4), "k=4"),
    (toy_task(per_class=6), EvalConfig(suite="kcurve", n=2), "k=8"),
    (toy_task(), EvalConfig(suite="algorithmic", n=2), "classification task"),
    (Task("gen", [], [], [Example("[1]", "[]"), Example("[2]", "[2]")]), EvalConfig(suite="grid", n=2),
     "generation task"),
])
def test_bad_suite_inputs_are_refused_before_any_model_loads(task, cfg, message):
    with pytest.raises(SymtuneError, match=message):
        build_items([task], cfg)


def test_tasks_from_the_tuning_record_are_refused_unless_allowed(tmp_path):
    tuned = ["sst2", "list_functions", "builtin/keyword_topic"]
    (tmp_path / "symtune_training.json").write_text(json.dumps({"tasks": tuned}))
    with pytest.raises(SymtuneError, match="sst2"):
        check_unseen(str(tmp_path), ["cr", "sst2"], allow_seen=False)
    with pytest.raises(SymtuneError, match="list_functions/c002"):  # a subtask of a tuned family
        check_unseen(str(tmp_path), ["list_functions/c002"], allow_seen=False)
    with pytest.raises(SymtuneError, match="builtin/keyword_topic/food-vs-sport"):  # a class pair of a tuned task
        check_unseen(str(tmp_path), ["builtin/keyword_topic/food-vs-sport"], allow_seen=False)
    check_unseen(str(tmp_path), ["builtin/review_sentiment"], allow_seen=False)  # another generated task
    check_unseen(str(tmp_path), ["cr", "sst2"], allow_seen=True)
    check_unseen(str(tmp_path), ["cr"], allow_seen=False)
    check_unseen("not-a-folder", ["sst2"], allow_seen=False)


def counting(fn):
    calls = []

    def wrapped(requests, on_batch=None):
        calls.append(list(requests))
        results = [fn(r) for r in requests]
        for i in range(0, len(results), 2):  # report in batches of two, as a scorer would
            on_batch(list(range(i, min(i + 2, len(results)))), results[i : i + 2])
        return results

    return wrapped, calls


def test_cache_resumes_and_survives_a_cut_off_line(tmp_path):
    requests = {f"k{i}": f"request {i}" for i in range(5)}
    fn, calls = counting(str.upper)
    assert RequestCache(tmp_path, "fp").run(fn, requests) == {k: v.upper() for k, v in requests.items()}
    path = tmp_path / "fp.0.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:3]) + lines[3][:10])  # a crash in the middle of a line
    again = RequestCache(tmp_path, "fp").run(fn, requests)
    assert again == {k: v.upper() for k, v in requests.items()}
    assert calls[1] == ["request 3", "request 4"]  # only the lost requests ran again
    assert len(path.read_text().splitlines()) == 5
    assert all(json.loads(line) for line in path.read_text().splitlines())
    assert RequestCache(tmp_path, "other").run(fn, {"k0": "x"}) == {"k0": "X"}  # keyed by model


def test_cache_keeps_what_each_request_cost(tmp_path):
    requests = {f"k{i}": f"request {i}" for i in range(5)}
    fn, _ = counting(str.upper)
    first = RequestCache(tmp_path, "fp")
    first.run(fn, requests)
    rows = [json.loads(line) for line in (tmp_path / "fp.0.jsonl").read_text().splitlines()]
    assert all(row["seconds"] >= 0 for row in rows)
    again = RequestCache(tmp_path, "fp")
    again.run(fn, {"k1": "request 1", "k2": "request 2"})  # cached: costs what it cost the first time
    assert again.spent() == round(sum(row["seconds"] for row in rows if row["key"] in ("k1", "k2")), 1)
    timeless = tmp_path / "timeless"
    timeless.mkdir()
    (timeless / "fp.0.jsonl").write_text(json.dumps({"key": "k0", "result": "REQUEST 0"}) + "\n")
    with pytest.raises(SymtuneError, match=r"fp\.0\.jsonl:1: damaged cache line"):
        RequestCache(timeless, "fp")


def test_aggregate_means_stderr_chance_and_confusion():
    cfg = EvalConfig(suite="kcurve", n=2, seeds=(0, 1))
    conditions, items = build_items([toy_task("bin", per_class=20)], cfg)
    # acc 1.0 on seed 0 and 0.5 on seed 1 (the second prompt of seed 1 predicts the wrong label)
    records = []
    for item in items:
        wrong = item.seed == 1 and item.id.endswith("/1")
        pred = 1 - item.answer if wrong else item.answer
        records.append({**{k: getattr(item, k) for k in ("id", "task", "condition", "seed", "candidates", "answer")},
                        "prediction": item.candidates[pred], "metrics": {"acc": float(not wrong)}})
    out = aggregate(records, items, conditions)
    task = out["k2"]["tasks"]["bin"]
    assert task["metrics"]["acc"]["per_seed"] == [1.0, 0.5]
    assert task["metrics"]["acc"]["mean"] == 0.75
    assert task["metrics"]["acc"]["stderr"] == pytest.approx(0.25)
    assert task["chance"] == 0.5 and task["n"] == 4
    assert sum(map(sum, task["confusion"])) == 4 and sum(task["confusion"][i][i] for i in range(2)) == 3
    assert out["k2"]["mean"]["metrics"]["acc"]["mean"] == 0.75 and out["k2"]["mean"]["chance"] == 0.5


@pytest.mark.skipif(not (DATA / "list_functions").is_dir(), reason="needs ../shared/data")
def test_bigbench_items_shots_and_candidate_sets():
    from symtune.tasks.registry import load_task_list

    bb = load_task_list(f"{DATA}/list_functions:c002,{DATA}/simp_turing_concept:witness_set")
    _, items = build_items(bb, EvalConfig(suite="algorithmic", n=5, seeds=(0,)))
    lists = [i for i in items if i.task == "list_functions/c002"]
    turing = [i for i in items if i.task.startswith("simp_turing")]
    assert all(i.text.count(SEPARATOR) == 4 and i.pattern for i in lists)  # 4 shots, then the query
    inputs = {ex.text for ex in bb[1].test}
    assert all(i.text in inputs for i in turing)  # inputs already hold their shots
    assert all(i.target in i.candidates for i in items if i.candidates)
    assert all(len(i.candidates) <= 5 for i in turing)  # the targets of the query's concept only


# ---- with a model (the tiny random one from conftest) ------------------------------------

E2E = EvalConfig(suite="grid", n=2, k=2, seeds=(0, 1), generate=True, max_new_tokens=4, token_budget=256,
                 dtype="float32")


def run_e2e(model_dir, cache):
    return evaluate([str(model_dir)], tasks(), E2E, cache_dir=cache)


def test_evaluate_scores_every_prompt_and_resumes_from_the_cache(tiny_model_dir, tmp_path, monkeypatch):
    results = run_e2e(tiny_model_dir, tmp_path)
    model = results["models"][str(tiny_model_dir)]
    records = model["predictions"]
    assert len(records) == 4 * 2 * 2 * 2
    assert all(set(r["metrics"]) == {"acc", "acc_norm", "acc_calibrated", "acc_gen", "label_rate"} for r in records)
    assert set(model["conditions"]) == {c.name for c in suite_conditions("grid")}
    assert results["conditions"][0]["label"] and results["versions"]["torch"]

    # The calibrated request (exemplars run once, two tails) gives the scores of the plain prompt.
    _, items = build_items(tasks(), E2E)
    lm, tokenizer = load_model(str(tiny_model_dir))
    direct = score_requests(lm, tokenizer, [(i.text, [" " + c for c in i.candidates]) for i in items[:6]])
    for record, scores in zip(records, direct):
        assert record["logprobs"] == pytest.approx(scores.logprobs, abs=1e-4)

    def no_model(*args, **kwargs):
        raise AssertionError("the cache should have answered")

    monkeypatch.setattr("symtune.scoring.score_requests", no_model)
    monkeypatch.setattr("symtune.generation.generate_until", no_model)
    again = run_e2e(tiny_model_dir, tmp_path)
    assert again["models"][str(tiny_model_dir)]["predictions"] == records


def test_evaluate_refuses_a_task_the_model_was_tuned_on(tiny_model_dir, tmp_path):
    tuned = tmp_path / "tuned"
    shutil.copytree(tiny_model_dir, tuned)
    (tuned / "symtune_training.json").write_text(json.dumps({"tasks": ["tri"]}))
    with pytest.raises(SymtuneError, match="tuned on tri"):
        run_e2e(tuned, tmp_path / "cache")


SHARDED = """
import json, sys
sys.path.insert(0, {tests!r})
from test_evaluate import run_e2e
from symtune.batching import process_state
results = run_e2e({model!r}, {cache!r})
if process_state().is_main_process:
    json.dump([results["models"][{model!r}]["predictions"], process_state().num_processes,
               results["models"][{model!r}]["scoring_seconds"]], open({out!r}, "w"))
"""


def test_two_processes_give_the_single_process_results(tiny_model_dir, tmp_path):
    script = tmp_path / "sharded.py"
    out = tmp_path / "sharded.json"
    script.write_text(SHARDED.format(tests=str(Path(__file__).parent), model=str(tiny_model_dir),
                                     cache=str(tmp_path / "cache2"), out=str(out)))
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", str(script)]
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(launch, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    records, processes, seconds = json.loads(out.read_text())
    assert processes == 2 and seconds >= 0  # each process's batch times reach every process
    assert len(list((tmp_path / "cache2").glob("*.jsonl"))) == 2  # each process cached its own share
    # The processes run one thread each (OMP_NUM_THREADS=1), and so does the reference: a matmul split
    # over another number of threads may round differently (tune(), run by earlier tests, sets the count).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        reference = run_e2e(tiny_model_dir, tmp_path / "cache1")["models"][str(tiny_model_dir)]["predictions"]
    finally:
        torch.set_num_threads(threads)
    assert records == reference


def test_eval_and_report_commands(tiny_model_dir, tmp_path, capsys):
    import argparse

    from symtune.report import add_report_parser

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    add_eval_parser(sub)
    add_report_parser(sub)
    out = tmp_path / "linear"
    args = parser.parse_args(["eval", "--suite", "linear", "--model", str(tiny_model_dir), "--n", "2", "--seeds", "1",
                              "--out", str(out), "--export-lmeval", str(tmp_path / "lmeval")])
    args.func(args)
    printed = capsys.readouterr().out
    assert "builtin/linear_2d" in printed and "✗✗ noinstr-symbols" in printed
    assert (out / "results.md").read_text() in printed
    assert (tmp_path / "lmeval" / "symtune_linear.yaml").is_file()
    args = parser.parse_args(["report", str(out / "results.json"), "--out", str(tmp_path / "plots")])
    args.func(args)
    assert (tmp_path / "plots" / "linear.png").is_file()
    with pytest.raises(SymtuneError, match="needs --tasks"):
        args = parser.parse_args(["eval", "--suite", "grid", "--model", "m", "--out", str(out)])
        args.func(args)


def test_queries_too_long_in_any_setting_are_passed_over_in_all(capsys):
    task = toy_task("bin", per_class=12, instruction="Decide whether the text is good or bad. " * 4)
    long_text = "a very long review " * 60  # fits with one exemplar per class without the instruction only
    task.test[3] = Example(long_text, task.test[3].label)
    cfg = EvalConfig(suite="grid", n=len(task.test), k=2, seeds=(0,), max_prompt_tokens=450)
    conditions, items = build_items([task], cfg)
    positions = {c.name: [i.position for i in items if i.condition == c.name] for c in conditions}
    assert all(p == positions[conditions[0].name] for p in positions.values())
    assert len(positions[conditions[0].name]) == len(task.test) - 1
    assert not any(long_text in i.text for i in items)
    assert "passed over 1 queries" in capsys.readouterr().err
    without_instruction = next(c for c in conditions if not c.setting.instruction)
    assert any(long_text in i.text for i in classification_items(task, without_instruction, 0, cfg))
    with pytest.raises(SymtuneError, match="no query's prompt fits"):
        build_items([task], EvalConfig(suite="grid", n=4, k=2, seeds=(0,), max_prompt_tokens=20))


def test_the_precision_plan_names_the_smallest_condition_and_its_binomial_half_width():
    from symtune.evaluate import precision_plan
    from symtune.stats import expected_half_width

    cfg = EvalConfig(suite="grid", n=5, k=2, seeds=(0, 1))
    _, items = build_items([toy_task("bin"), toy_task("tri", labels=("a", "b", "c"))], cfg)
    plan = precision_plan(items)
    assert plan.startswith("20 prompts per condition")  # 2 tasks x 5 prompts x 2 seeds
    assert f"±{100 * expected_half_width(20, 0.1):.1f} points where they disagree on 10%" in plan


class Loaded(Exception):
    """Raised by a stand-in load_model once it has seen its arguments."""


def test_eval_hands_its_attention_implementation_to_the_model(tiny_model_dir, tmp_path, monkeypatch):
    import symtune.models
    from symtune.cli import main

    seen = {}

    def load_model(spec, **kwargs):
        seen.update(kwargs)
        raise Loaded(spec)

    monkeypatch.setattr(symtune.models, "load_model", load_model)
    with pytest.raises(Loaded, match=re.escape(str(tiny_model_dir))):
        main(["eval", "--model", str(tiny_model_dir), "--suite", "linear", "--n", "1", "--seeds", "1",
              "--out", str(tmp_path), "--attn-implementation", "eager"])
    assert seen["attn_implementation"] == "eager"
