"""scripts/experiment.py: which models a suite scores, and the times beside its table."""

import re
import sys
from pathlib import Path

import pytest
import yaml

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
    summary = verdicts(results, 3.0).splitlines()[0]
    effects, nulls = (sum(f": resolved: {kind}" in line for line in lines) for kind in ("an effect", "a null"))
    assert f"Of these 12 paired differences, {effects} show an effect" in summary
    assert f"{nulls} a null within ±3 points, and {12 - effects - nulls} are not resolved" in summary
    for line in lines:  # an unresolved cell says what size would resolve it
        assert ": resolved:" in line or re.search(r"about \d+ paired prompts over \d+ datasets would reach it\)\.$",
                                                  line)


def test_a_pool_compares_as_the_mean_of_its_seeds_with_their_spread_in_the_interval():
    from experiment import verdicts
    from test_report import fake_results

    from symtune.report import markdown
    from symtune.results import paired_difference, runs

    results = fake_results("grid", models=("base", "s0", "s1", "c0", "c1"))
    results["pools"] = {"s": ["s0", "s1"], "c": ["c0", "c1"]}
    results["comparisons"] = [["s", "c"]]
    assert runs(results, "s") == [results["models"][m]["predictions"] for m in ("s0", "s1")]
    assert runs(results, "s0") == [results["models"]["s0"]["predictions"]]
    cond = "noinstr-symbols"
    by_seed = [paired_difference(results, f"s{i}", f"c{i}", cond, "acc")["mean"] for i in (0, 1)]
    both = paired_difference(results, "s", "c", cond, "acc")
    assert both["mean"] == pytest.approx(sum(by_seed) / 2) and both["n"] == 2 * 4 * 2
    assert both["runs"] == pytest.approx(by_seed)
    against_base = paired_difference(results, "s", "base", cond, "acc")["runs"]
    assert against_base == pytest.approx([paired_difference(results, f"s{i}", "base", cond, "acc")["mean"]
                                          for i in (0, 1)])
    lines = [line for line in verdicts(results, 3.0).splitlines() if line.startswith("- ")]
    assert {line.split(",")[0] for line in lines} == {"- s − base", "- c − base", "- s − c"}  # a seed's own: the table
    seeds = next(line for line in lines if line.startswith("- s − c, ✗✗")).split(" Seed by seed: ")[1]
    assert seeds.startswith(f"{100 * by_seed[0]:+.1f}, {100 * by_seed[1]:+.1f} (")
    assert re.search(r"\(\d of 2 share the pooled sign\)\.$", seeds)
    assert all(" Seed by seed: " in line and " datasets, over 2 tuning runs: " in line for line in lines)  # pools
    table = markdown(results).split("### Paired differences")[1].split("acc_norm:")[0]
    assert all(f"| {row} |" in table for row in ("s0 − base", "s − base", "c − base", "s − c"))


def test_in_short_leads_with_the_comparison_over_the_most_runs_and_each_side_against_base():
    from experiment import in_short
    from test_report import fake_results

    from symtune.report import span
    from symtune.results import paired_difference

    results = fake_results("grid", models=("base", "s0", "s1", "c0", "c1"))
    results["pools"] = {"s": ["s0", "s1"], "c": ["c0", "c1"]}
    results["comparisons"] = [["s0", "c0"], ["s", "c"]]
    text = in_short(results, 3.0, "the grid suite")
    assert text.startswith("In short (the grid suite; acc, points, 95% interval")
    sentences = text.split("): ", 1)[1].split(". ")
    assert [s.split(" (n=")[0] for s in sentences] == ["s − c", "s − base", "c − base"]  # not s0 − c0
    assert all(" datasets, over 2 tuning runs): " in s for s in sentences)
    for cond in results["conditions"]:  # every cell once, under what it establishes
        iv = paired_difference(results, "s", "c", cond["name"], "acc")
        assert sentences[0].count(f"{cond['label']} {span(iv)}") == 1
    kinds = {part.split(" in ")[0] for part in sentences[0].split("): ")[1].rstrip(".").split("; ")}
    assert kinds <= {"an effect", "a null within ±3 points", "not resolved"}
    results["comparisons"] = []
    assert in_short(results, 3.0, "the grid suite") == ""


def test_pools_of_different_sizes_are_not_compared_run_by_run(tmp_path):
    from test_report import fake_results

    from symtune.results import read_results, save_results

    results = fake_results("grid", models=("base", "s0", "s1", "c0", "c1", "c2"))
    results["pools"] = {"s": ["s0", "s1"], "c": ["c0", "c1", "c2"]}
    results["comparisons"] = [["s", "base"], ["s", "c"]]
    save_results(results, tmp_path)
    with pytest.raises(SymtuneError, match=r"'s' \(2 runs\) and 'c' \(3 runs\) cannot be paired run by run"):
        read_results(tmp_path / "results.json")


# ---- the config: every key checked before any work ------------------------------------------

EXPERIMENTS = sorted((Path(__file__).resolve().parents[1] / "scripts" / "experiments").glob("*.yaml"))


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.name)
def test_every_shipped_experiment_config_loads(path):
    from experiment import load_experiment

    exp = load_experiment(path)
    assert exp.name == path.stem and exp.rows and exp.suites


def write_config(tmp_path, text: str) -> Path:
    config = yaml.safe_load((EXPERIMENTS[0].parent / "quick.yaml").read_text())
    config.update(yaml.safe_load(text))
    path = tmp_path / "x.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize("text,needle", [
    ("target_halfwidth: 2", r"unknown experiment key 'target_halfwidth' in .*x.yaml \(did you mean target_half_width"),
    ("rows: {a: {symbol_fractoin: 0.5}}", r"unknown row key 'symbol_fractoin' in .*row 'a' \(did you mean "
                                          r"symbol_fraction\?\)"),
    ("rows: {a: {budget: [10]}}", r"unknown row key 'budget' .*did you mean budgets"),
    ("suites: {grid: {n: 8, max_prompt_token: 512}}", r"unknown suite setting key 'max_prompt_token' in .*suite grid "
                                                      r"\(did you mean max_prompt_tokens\?\)"),
    ("suites: {gird: {n: 8}}", r"unknown suite 'gird' .*did you mean grid"),
    ("suites: {grid: {n: many}}", r"suite grid: suite setting key n must be int, got 'many'"),
    ("suites: {grid: {n: 0}}", r"suite setting key n must be at least 1"),
    ("suites: {grid: {seeds: 0}}", r"seeds must be at least 1"),
    ("suites: {grid: {rows: [nope]}}", r"suite 'grid' names rows the config does not have: nope"),
    ("rows: {a: {random_labels: maybe}}", r"row 'a': row key random_labels must be bool, got 'maybe'"),
    ("rows: {a: {symbol_fraction: 2.0}}", r"row 'a': row key symbol_fraction must be at most 1, got 2"),
    ("rows: {a: {recipe_overrides: [lr_rate=1]}}", r"unknown recipe key 'lr_rate' in the overrides \(did you mean "
                                                   r"lr\?\)"),
    ("target_half_width: wide", r"experiment key target_half_width must be float, got 'wide'"),
    ("name: null", r"experiment key name must be str, got None"),
    ("compare: [[symbol-tuned, natural-label contorl]]",
     r"a comparison names 'natural-label contorl', neither one of the rows' models nor a pool \(did you mean "
     r"natural-label control\?\)"),
    ("compare: [[symbol-tuned]]", r"comparisons hold \[model, reference\] pairs, got \['symbol-tuned'\]"),
    ("pools: {s: [symbol-tuned]}", r"pool 's' must list two or more of the rows' models"),
    ("pools: {s: [symbol-tuned, symbol-tuned @50]}", r"pool 's' must list two or more of the rows' models"),
    ("{rows: {a: {}, b: {}, c: {}}, pools: {s: [a, b], t: [a, b, c]}, compare: [[s, a], [s, t]]}",
     r"'s' \(2 runs\) and 't' \(3 runs\) cannot be paired run by run"),
    ("folds: {f2: [mr]}", r"folds and cross_fit go together"),
    ("{folds: {f2: [mr]}, cross_fit: [symbol-tuned LoRA]}", r"cross_fit names rows the config does not have: "
                                                            r"symbol-tuned LoRA"),
    ("{folds: {f2: mr}, cross_fit: [symbol-tuned]}", r"fold 'f2' must be a list of task names"),
    ("{folds: {f2: [mr, cr]}, cross_fit: [symbol-tuned]}", r"task 'cr' is in both eval_tasks and fold 'f2'"),
    ("{folds: {f2: [mr], f3: [sst2, mr]}, cross_fit: [symbol-tuned]}", r"task 'mr' is in both fold 'f2' and fold 'f3'"),
    ("{folds: {f2: [mr]}, cross_fit: [a], rows: {a: {}, a (f2): {}}}", r"would tune rows the config already has: "
                                                                       r"a \(f2\)"),
])
def test_a_misspelt_or_ill_typed_key_is_refused_before_any_work(tmp_path, monkeypatch, text, needle):
    import experiment

    monkeypatch.setattr(experiment, "split_tasks", lambda *a, **k: pytest.fail("no work may start"))
    with pytest.raises(SymtuneError, match=needle):
        experiment.run(str(write_config(tmp_path, text)))


def test_a_config_missing_a_required_key_is_refused(tmp_path):
    from experiment import load_experiment

    path = tmp_path / "x.yaml"
    path.write_text("name: x\nmodel: m\n")
    with pytest.raises(SymtuneError, match="missing experiment key 'data'"):
        load_experiment(path)


def test_a_suites_settings_become_its_eval_config():
    from symtune.suites import eval_config

    cfg = eval_config({"suite": "grid", "n": 8, "seeds": 5, "calibrate": False}, "x", "suite setting")
    assert (cfg.suite, cfg.n, cfg.seeds, cfg.calibrate, cfg.k) == ("grid", 8, (0, 1, 2, 3, 4), False, 4)
    assert eval_config({"suite": "grid"}, "x", "suite setting").seeds == (0, 1, 2)


def test_plan_counts_the_tokens_tuned_and_scored_and_their_flops(tmp_path, tiny_model_dir, capsys):
    from experiment import parameter_count, plan

    config = tmp_path / "plan.yaml"
    config.write_text(yaml.safe_dump({
        "name": "plan", "model": str(tiny_model_dir), "data": None, "eval_tasks": None, "recipe": "cpu-small",
        "recipe_overrides": ["max_steps=30", "batch_size=4"], "mixture": {"k_min": 1, "k_max": 1},
        "rows": {"short": {}, "long": {"k_min": 4, "k_max": 4, "recipe_overrides": ["max_steps=60"],
                                       "budgets": [20, 60]}},
        "suites": {"grid": {"n": 2}, "flipped": {"n": 2, "rows": ["short"]}}}))
    plan(str(config), peak_tflops=1e-6, sample=64)
    out = capsys.readouterr().out
    number = lambda text: float(text.replace(",", ""))  # noqa: E731
    rows = {name: (int(steps), int(batch), int(per), number(tokens)) for name, steps, batch, per, tokens in
            re.findall(r"  tuning (\w+): (\d+) steps x (\d+) prompts x (\d+) tokens = ([\d,]+) tokens", out)}
    assert [rows[r][:2] for r in ("short", "long")] == [(30, 4), (60, 4)]
    assert rows["long"][2] > 2 * rows["short"][2]  # four exemplars per class against one
    suites = {suite: (int(models), number(tokens)) for suite, models, tokens in
              re.findall(r"  scoring (\w+): (\d+) models x [\d,]+ prompts x \d+ tokens = ([\d,]+) tokens", out)}
    assert {suite: models for suite, (models, _) in suites.items()} == {"grid": 4, "flipped": 2}  # base + named rows
    tuned, scored, flops = map(number, re.search(r"all: ([\d,]+) tokens tuned, ([\d,]+) scored, ([\d.e+]+) FLOPs",
                                                 out).groups())
    assert tuned == pytest.approx(sum(r[3] for r in rows.values()), abs=1)
    assert scored == sum(tokens for _, tokens in suites.values())
    assert flops == pytest.approx(parameter_count(str(tiny_model_dir)) * (6 * tuned + 2 * scored), rel=0.01)
    seconds = float(re.search(r": (\d+) s at 100% MFU", out).group(1))
    assert seconds == pytest.approx(flops / 1e6, rel=0.01)  # a peak of 1e-6 TFLOP/s: 1e6 FLOPs a second


def test_cross_fitting_scores_each_fold_with_the_rows_tuned_without_it(tmp_path, tiny_model_dir, monkeypatch,
                                                                      capsys):
    import json

    import experiment

    from symtune.results import read_results
    from symtune.train.record import tuned_tasks

    words = "red green blue cold warm dry wet soft hard loud".split()
    for task, labels in (("t1", ["a", "b", "c"]), ("t2", ["no", "yes"]), ("t3", ["x", "y"]), ("t4", ["p", "q"])):
        folder = tmp_path / "data" / task
        folder.mkdir(parents=True)
        (folder / "meta.json").write_text(json.dumps({"name": task, "labels": labels, "instruction": "Which?"}))
        for split, n in (("train", 24), ("test", 12)):
            rows = [{"text": f"{words[i % 10]} {words[(3 * i) % 10]} {split} {i}", "label": labels[i % len(labels)]}
                    for i in range(n)]
            (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "docs" / "results").mkdir(parents=True)
    (tmp_path / "docs" / "results" / "README.md").write_text("# Results\n")
    config = tmp_path / "cf.yaml"
    config.write_text(yaml.safe_dump({
        "name": "cf", "model": str(tiny_model_dir), "data": str(tmp_path / "data"), "eval_tasks": ["t1"],
        "recipe": "cpu-small", "recipe_overrides": ["max_steps=2", "batch_size=2", "save_every=1", "compile=false"],
        "mixture": {"k_min": 1, "k_max": 1},
        "rows": {"s": {"budgets": [1, 2]}, "c": {"symbol_fraction": 0.0}, "s1": {"seed": 1},
                 "c1": {"symbol_fraction": 0.0, "seed": 1}},
        "pools": {"S": ["s @2", "s1"], "C": ["c", "c1"]},  # C's c1 is not cross-fit, so C is not pooled there
        "folds": {"f2": ["t2"], "f3": ["t3"]}, "cross_fit": ["s", "c", "s1"], "compare": [["s @2", "c"], ["S", "C"]],
        "suites": {"headline": {"n": 2, "seeds": 1, "k": 1, "calibrate": False, "dtype": "float32"}}},
        sort_keys=False))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(experiment, "DOCS", tmp_path / "docs")
    experiment.run(str(config))

    # each fold's rows were tuned without its task, and on the first fold's
    for row in ("s", "c"):
        for fold, task in (("f2", "t2"), ("f3", "t3")):
            tasks = tuned_tasks(str(tmp_path / "runs" / "cf" / "rows" / f"{row}_({fold})" / "model"))
            assert "t1" in tasks and task not in tasks
    main = read_results(tmp_path / "runs" / "cf" / "headline" / "results.json")
    crossed = read_results(tmp_path / "runs" / "cf" / "headline-cross-fit" / "results.json")
    assert list(crossed["models"]) == ["base", "s (cross-fit)", "c (cross-fit)", "s1 (cross-fit)"]
    assert crossed["pools"] == {"S (cross-fit)": ["s (cross-fit)", "s1 (cross-fit)"]}
    assert crossed["comparisons"] == [["s (cross-fit)", "c (cross-fit)"]]
    assert set(crossed["tasks"]) == {"t1/a-vs-b", "t1/a-vs-c", "t1/b-vs-c", "t2", "t3"}
    answers = {m: {r["id"]: r for r in crossed["models"][m]["predictions"]} for m in crossed["models"]}
    assert len({frozenset(ids) for ids in answers.values()}) == 1  # every prompt answered by every model: paired
    on_t1 = lambda records: {r["id"]: r for r in records if r["task"].startswith("t1/")}  # noqa: E731
    # on the first fold, each row's last budget answers, as in the main table
    assert on_t1(crossed["models"]["s (cross-fit)"]["predictions"]) == on_t1(main["models"]["s @2"]["predictions"])
    assert on_t1(crossed["models"]["c (cross-fit)"]["predictions"]) == on_t1(main["models"]["c"]["predictions"])
    assert {r["task"] for r in crossed["models"]["s (cross-fit)"]["predictions"]} >= {"t2", "t3"}
    section = (tmp_path / "docs" / "results" / "cf.md").read_text()
    assert "Cross-fit over 3 datasets" in section and "f2: t2; f3: t3" in section
    assert "- s (cross-fit) − c (cross-fit)" in section
    assert re.search(r"- S \(cross-fit\) − base, 100% flipped: .+, over 2 tuning runs", section)
    assert "C (cross-fit)" not in section
    assert re.search(r"- s \(cross-fit\) − c \(cross-fit\), 100% flipped: eval_tasks [+-]\d+\.\d \[.+\] "
                     r"\(1 datasets\); f2 [+-]\d+\.\d \[.+\] \(1 datasets\); f3 .+ \(1 datasets\); "
                     r"the folds together [+-]\d+\.\d \[.+\] \(2 datasets\)\.", section)
    experiment.plan(str(config), peak_tflops=None, sample=64)  # the plan counts the fold's runs and scoring
    printed = capsys.readouterr().out
    assert re.findall(r"  tuning (.+?):", printed) == ["s", "c", "s1", "c1", "s (f2)", "c (f2)", "s1 (f2)", "s (f3)",
                                                       "c (f3)", "s1 (f3)"]
    assert re.findall(r"  scoring (.+?): (\d) models", printed) == [("headline", "6"), ("headline, f2", "4"),
                                                                     ("headline, f3", "4")]
