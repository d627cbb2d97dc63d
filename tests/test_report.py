import json
import random

import pytest
import yaml
from helpers import toy_task

from symtune.errors import SymtuneError
from symtune.evaluate import model_results, new_results
from symtune.io import read_jsonl, write_json
from symtune.lmeval_export import export_suite
from symtune.report import delta, markdown, points, report, write_results
from symtune.stats import paired_cells, paired_interval
from symtune.suites import EvalConfig, build_items
from symtune.tasks.task import Example, Task


def fake_results(suite, models=("base", "tuned"), n=4, seeds=(0, 1)):
    """A results dict as `evaluate` writes it, with random predictions instead of a model."""
    cfg = EvalConfig(suite=suite, n=n, k=2, seeds=seeds)
    tasks = [toy_task("bin"), toy_task("tri", labels=("a", "b", "c"))]
    conditions, items = build_items(tasks, cfg)
    results = new_results(cfg, conditions, items, tasks, ["toy"])
    for m, model in enumerate(models):
        rng = random.Random(m)
        records = []
        for item in items:
            pred = rng.randrange(len(item.candidates))
            records.append({**{k: getattr(item, k)
                               for k in ("id", "task", "condition", "seed", "candidates", "answer")},
                            "prediction": item.candidates[pred],
                            "metrics": {"acc": float(pred == item.answer), "acc_norm": 0.0}})
        results["models"][model] = model_results(records, items, conditions)
    return results


def test_markdown_has_chance_and_a_row_per_model():
    text = markdown(fake_results("grid"))
    table = text.split("### acc:")[1].split("###")[0].strip().splitlines()[2:]  # after the title
    assert table[0].startswith("| model | ") and "✗✗" in table[0]
    assert table[2].startswith("| chance | 41.7 |")  # mean of 1/2 and 1/3
    assert [row.split(" | ")[0] for row in table[3:]] == ["| base", "| tuned"]
    assert "### base: acc per task" in text and "| tri |" in text


def test_kcurve_reports_the_exemplars_a_token_budget_dropped():
    cfg = EvalConfig(suite="kcurve", n=4, seeds=(0,), max_prompt_tokens=200)
    tasks = [toy_task("bin", per_class=16)]
    conditions, items = build_items(tasks, cfg)
    shown = {c["name"]: c["exemplars_per_class"]
             for c in new_results(cfg, conditions, items, tasks, ["toy"])["conditions"]}
    assert shown["k1"] == 1 and shown["k2"] == 2 and shown["k8"] < 8
    results = fake_results("kcurve")  # no budget: every prompt shows its k, and the tables say nothing
    assert "actually shown" not in markdown(results)
    results["conditions"] = new_results(cfg, conditions, items, tasks, ["toy"])["conditions"]
    assert f"k=8: {shown['k8']:.1f}." in markdown(results)


def test_write_results_roundtrips(tmp_path):
    results = fake_results("kcurve")
    write_results(results, tmp_path)
    assert json.loads((tmp_path / "results.json").read_text()) == json.loads(json.dumps(results))
    assert (tmp_path / "results.md").read_text() == markdown(results)


@pytest.mark.parametrize("suite", ["grid", "flipped", "kcurve"])
def test_report_draws_one_png_per_suite(tmp_path, suite):
    write_json(tmp_path / "a.json", fake_results(suite, models=("base",)))
    write_json(tmp_path / "b.json", fake_results(suite, models=("tuned",)))
    (png,) = report([tmp_path / "a.json", tmp_path / "b.json"], tmp_path / "plots")
    assert png.name == f"{suite}.png" and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_refuses_other_files(tmp_path):
    write_json(tmp_path / "x.json", {"hello": 1})
    with pytest.raises(SymtuneError, match="not a symtune results file"):
        report([tmp_path / "x.json"], tmp_path)


def test_lmeval_export_writes_prompts_and_task_yaml(tmp_path):
    cfg = EvalConfig(suite="grid", n=3, k=2, seeds=(0, 1))
    conditions, items = build_items([toy_task("bin"), toy_task("tri", labels=("a", "b", "c"))], cfg)
    names = export_suite(items, conditions, tmp_path, suite="grid")
    assert len(names) == 4 * 2
    group = yaml.safe_load((tmp_path / "symtune_grid.yaml").read_text())
    assert group["task"] == names
    for name in names:
        config = yaml.safe_load((tmp_path / f"{name}.yaml").read_text())
        assert config["output_type"] == "multiple_choice" and config["target_delimiter"] == " "
        docs = read_jsonl(config["dataset_kwargs"]["data_files"]["test"])
        assert len(docs) == 3 * 2
        assert all(0 <= d["answer"] < len(d["choices"]) for d in docs)
    expected = {(i.text, tuple(i.candidates), i.answer) for i in items}
    exported = {(d["text"], tuple(d["choices"]), d["answer"])
                for n in names for d in read_jsonl(tmp_path / "prompts" / f"{n}.jsonl")}
    assert exported == expected


GENERATION_TASK = Task("lists", [], [], [Example(f"[{i}, {i + 1}]", f"[{i}]") for i in range(8)])


@pytest.mark.parametrize("suite, task", [("flipped", toy_task("bin")), ("algorithmic", GENERATION_TASK)])
def test_lmeval_can_load_the_exported_tasks(tmp_path, suite, task):
    tasks = pytest.importorskip("lm_eval.tasks")
    conditions, items = build_items([task], EvalConfig(suite=suite, n=2, k=2, seeds=(0,)))
    names = export_suite(items, conditions, tmp_path, suite=suite)
    loaded = tasks.TaskManager(include_path=str(tmp_path), include_defaults=False).load(f"symtune_{suite}")
    assert sorted(loaded["tasks"]) == sorted(names)
    for task in loaded["tasks"].values():
        docs = list(task.test_docs())
        assert len(docs) == 2
        assert task.doc_to_text(docs[0]) == docs[0]["text"]
        if suite == "algorithmic":
            assert task.OUTPUT_TYPE == "generate_until" and task.doc_to_target(docs[0]) == docs[0]["target"]
        else:
            assert (task.doc_to_choice(docs[0]) == docs[0]["choices"]
                    and task.doc_to_target(docs[0]) == docs[0]["answer"])


def test_lmeval_reproduces_symtune_scores_on_the_exported_tasks(tmp_path, tiny_model_dir):
    lm_eval = pytest.importorskip("lm_eval")
    from lm_eval.tasks import TaskManager

    from symtune.evaluate import evaluate

    cfg = EvalConfig(suite="flipped", n=3, k=2, seeds=(0,), calibrate=False, dtype="float32")
    task = toy_task("bin")
    conditions, items = build_items([task], cfg)
    export_suite(items, conditions, tmp_path / "lmeval", suite="flipped")
    ours = {r["id"]: r for r in evaluate([str(tiny_model_dir)], [task], cfg, cache_dir=tmp_path / "cache")
            ["models"][str(tiny_model_dir)]["predictions"]}
    out = lm_eval.simple_evaluate(
        model="hf", model_args=f"pretrained={tiny_model_dir},dtype=float32", tasks=["symtune_flipped"], device="cpu",
        task_manager=TaskManager(include_path=str(tmp_path / "lmeval"), include_defaults=False), log_samples=True,
    )
    samples = [s for group in out["samples"].values() for s in group]
    assert len(samples) == len(items)
    for sample in samples:
        theirs = [ll for ll, _ in sample["filtered_resps"]]
        assert theirs == pytest.approx(ours[sample["doc"]["id"]]["logprobs"], abs=1e-4)


@pytest.mark.parametrize("metric, lines", [("acc", 4), ("acc_gen", 0)])
def test_bar_plots_draw_chance_for_ranking_metrics_only(metric, lines):
    from symtune.io import pyplot
    from symtune.report import merge_models, plot_bars

    results = fake_results("grid")
    _, ax = pyplot().subplots()
    plot_bars(ax, results["conditions"], merge_models([("x", results)]), metric)
    assert sum(len(c.get_segments()) for c in ax.collections if c.get_linestyle()[0][1]) == lines


def test_paired_differences_pair_identical_prompts_with_an_interval():
    results = fake_results("grid")
    base, tuned = (results["models"][m]["predictions"] for m in ("base", "tuned"))
    cells = paired_cells([tuned], [base], "noinstr-symbols", "acc")
    interval = paired_interval(cells)
    text = markdown(results).split("### Paired differences on identical prompts")[1].split("###")[0]
    row = text.split("acc:")[1].split("| tuned − base |")[1].splitlines()[0]
    cell = row.strip(" |").split(" | ")[-1]
    assert cell.removeprefix("**").split("]")[0] == (f"{100 * interval['mean']:+.1f} [{100 * interval['lo']:+.1f}, "
                                                     f"{100 * interval['hi']:+.1f}")
    assert cell.endswith(f" n={interval['n']}") and interval["n"] == 2 * 4 * 2  # 2 tasks x 4 prompts x 2 seeds
    assert "Paired differences" in markdown(fake_results("grid", seeds=(0,)))  # one seed pairs prompts all the same
    assert "Paired differences" not in markdown(fake_results("grid", models=("base",)))
    three = fake_results("grid", models=("base", "tuned", "control"))
    three["comparisons"] = [["tuned", "control"]]  # a pair besides each row's difference from base
    rows = markdown(three).split("### Paired differences")[1].split("acc_norm:")[0]
    assert [line.split(" | ")[0] for line in rows.splitlines() if line.startswith("| ") and "−" in line] == [
        "| tuned − base", "| control − base", "| tuned − control"]


def test_a_difference_whose_interval_excludes_zero_is_bold_and_a_residue_is_not_negative():
    def model(values):
        return {"predictions": [{"id": i, "task": f"t{i % 3}", "seed": 0, "condition": "c", "metrics": {"acc": v}}
                                for i, v in enumerate(values)]}
    def between(ours, theirs):
        return delta({"models": {"a": ours, "b": theirs}}, "a", "b", "c", "acc")
    assert between(model([1.0] * 9), model([0.0] * 9)) == "**+100.0 [+100.0, +100.0]** n=9"
    assert between(model([0.1 + 0.2] * 9), model([0.3] * 9)) == "+0.0 [+0.0, +0.0] n=9"  # not -0.0
    assert between(model([1.0] * 9), {"predictions": []}) == "–"
    assert points(-0.0004) == "-0.0" and points(0.0004) == "+0.0" and points(-1e-17) == "+0.0"


def test_a_budget_curve_plots_each_rows_difference_from_base_against_steps(tmp_path):
    results = fake_results("grid", models=("base", "tuned @2", "tuned @4"))
    results["curves"] = {"tuned": [[2, "tuned @2"], [4, "tuned @4"]]}
    write_results(results, tmp_path)
    plots = report([str(tmp_path / "results.json")], tmp_path / "plots")
    assert [p.name for p in plots] == ["grid.png", "grid-budget.png"] and plots[1].stat().st_size > 0
    from symtune.report import budget_series

    (row, series), = budget_series(results, "noinstr-symbols", "acc").items()
    assert row == "tuned" and [steps for steps, _ in series] == [0, 2, 4] and series[0][1]["mean"] == 0.0
    ours, base = results["models"]["tuned @4"]["predictions"], results["models"]["base"]["predictions"]
    assert series[2][1] == paired_interval(paired_cells([ours], [base], "noinstr-symbols", "acc"))


def test_a_legend_of_long_row_names_is_not_cut_off_at_the_image_edges(tmp_path):
    from matplotlib.image import imread

    models = ["base"] + [f"natural-label control (seed {s}) (cross-fit)" for s in range(8)]
    write_results(fake_results("grid", models=models), tmp_path)
    image = imread(report([str(tmp_path / "results.json")], tmp_path / "plots")[0])[..., :3]
    edges = [image[:, 0], image[:, -1], image[0], image[-1]]
    assert all((edge > 0.99).all() for edge in edges)  # white: nothing drawn reaches an edge


def test_verdict_names_an_effect_a_tight_null_or_the_size_that_would_resolve():
    from symtune.report import verdict

    assert verdict({"mean": 0.05, "lo": 0.01, "hi": 0.09, "n": 400}, 3.0) == "resolved: an effect"
    assert verdict({"mean": 0.0, "lo": -0.02, "hi": 0.02, "n": 400}, 3.0) == "resolved: a null within ±2.0 points"
    # half-width 5 points at n=400: n grows by (5/3)^2 to reach 3 points
    assert verdict({"mean": 0.02, "lo": -0.03, "hi": 0.07, "n": 400, "n_families": 3}, 3.0) == (
        "not resolved (half-width 5.0 > 3 points; about 1112 paired prompts over 9 datasets would reach it)")
    pooled = {"mean": 0.02, "lo": -0.03, "hi": 0.07, "n": 400, "n_families": 3, "runs": [0.01, 0.02, 0.03]}
    assert verdict(pooled, 3.0).endswith("over 9 datasets and 9 tuning runs would reach it)")
