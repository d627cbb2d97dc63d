"""The results file of `symtune eval` (results.json): its name, schema, writer, reader and accessors.

symtune.evaluate fills the dict (new_results, add_model); symtune.report, the studies and the
scripts read it through the accessors below, not by paths into it. The layout:

    suite, config {n, k, seeds, tasks, ...}, versions, tasks {task: {labels, source}},
    conditions [{name, label, k, x, setting, exemplars_per_class, ...}],
    models {model: {fingerprint, dtype, seconds, scoring_seconds, prompts_per_second,
                    conditions {condition: {mean: CELL, tasks {task: CELL}, families {family: CELL}}},
                    predictions [one record per prompt (symtune.judge)]}},
    comparisons [[model, reference], ...], curves {row: [[steps, model], ...]} and pools
    {name: [model, ...]}: optional, from scripts/experiment.py. A comparison may name a pool: a row
    tuned with several seeds, one run per member (stats.paired_cells pairs two pools run by run).

A CELL is {chance, metrics {metric: {mean, stderr, per_seed}}, and n or n_tasks} (symtune.stats).
"""

from pathlib import Path

from symtune.config import did_you_mean
from symtune.errors import SymtuneError
from symtune.io import read_json, write_json
from symtune.stats import paired_cells, paired_interval
from symtune.suites import SUITES
from symtune.validate import Each, check_schema

RESULTS = "results.json"

# What the readers use of a results file (evaluate writes more); read_results checks it first.
NUMBER, OPTIONAL = (int, float), (int, float, type(None))
SUMMARY = {"mean": NUMBER, "stderr": OPTIONAL, "per_seed": [OPTIONAL]}
CELL = {"chance": OPTIONAL, "metrics": Each(SUMMARY)}
RESULTS_SCHEMA = {
    "suite": str,
    "config": {"n": int, "k": int, "seeds": [int]},
    "conditions": [{"name": str, "label": str, "k": NUMBER, "x": OPTIONAL}],
    "models": Each({"conditions": Each({"mean": CELL, "tasks": Each(CELL), "families": Each(CELL)})}),
}


# ---- writing -----------------------------------------------------------------------------


def new_results(suite: str, config: dict, versions: dict, conditions: list[dict], tasks: dict) -> dict:
    """A results dict with no model yet; add_model adds each model's."""
    return {"suite": suite, "config": config, "versions": versions, "conditions": conditions, "tasks": tasks,
            "models": {}}


def add_model(results: dict, model: str, run: dict, conditions: dict, predictions: list[dict]) -> None:
    """`model`'s entry: `run` (fingerprint, dtype, times), its per-condition aggregates and its records."""
    results["models"][model] = {**run, "conditions": conditions, "predictions": predictions}


def rename_models(results: dict, names: dict[str, str]) -> None:
    """The models renamed ({new name: model}), in the order of `names`; others are dropped."""
    results["models"] = {new: results["models"][old] for new, old in names.items()}


def save_results(results: dict, out) -> Path:
    """out/results.json."""
    path = Path(out) / RESULTS
    write_json(path, results)
    return path


def read_results(path) -> dict:
    """A results file of `symtune eval`, checked against RESULTS_SCHEMA before any of it is used."""
    results = read_json(path)
    if not isinstance(results, dict) or "suite" not in results or "models" not in results:
        raise SymtuneError(f"{path}: not a symtune results file (it needs the fields suite and models)")
    check_schema(results, RESULTS_SCHEMA, str(path))
    if results["suite"] not in SUITES:
        raise SymtuneError(f"{path}: unknown suite {results['suite']!r}; a results file of `symtune eval` has one of "
                           f"{', '.join(SUITES)}")
    if not results["models"]:
        raise SymtuneError(f"{path}: holds no model results")
    for model, m in results["models"].items():
        for cond in results["conditions"]:
            if cond["name"] not in m["conditions"]:
                raise SymtuneError(f"{path}: model {model!r} has no results for condition {cond['name']!r}")
    check_extras(results, str(path))
    return results


def check_extras(results: dict, where: str) -> None:
    """The optional fields comparisons, curves and pools name models of the file (a comparison may
    also name a pool)."""
    check_groups(results.get("pools", {}), results.get("comparisons", []), list(results["models"]),
                 "its models", where)
    curves = results.get("curves", {})
    if not isinstance(curves, dict):
        raise SymtuneError(f"{where}: field 'curves' must be a mapping, got {type(curves).__name__}")
    for row, points in curves.items():
        if not (isinstance(points, list) and all(isinstance(p, list) and len(p) == 2 and isinstance(p[0], int)
                                                 and p[1] in results["models"] for p in points)):
            raise SymtuneError(f"{where}: field 'curves.{row}' must hold [steps, model] pairs of its models")


def check_groups(pools, pairs, names: list[str], what: str, where: str) -> None:
    """Each pool lists two or more of `names` (`what` they are, for the message), and each compared
    pair two of them or of the pools, pools holding as many runs: a misspelt name is refused rather
    than its comparison silently left out. Used on experiment configs and on results files."""
    if not isinstance(pools, dict):
        raise SymtuneError(f"{where}: pools must map each name to a list of models, got {type(pools).__name__}")
    for name, members in pools.items():
        if not (isinstance(members, list) and len(members) >= 2 and all(m in names for m in members)):
            raise SymtuneError(f"{where}: pool {name!r} must list two or more of {what} ({', '.join(names)}), "
                               f"got {members!r:.80}")
    if not isinstance(pairs, list):
        raise SymtuneError(f"{where}: comparisons must be a list of pairs, got {type(pairs).__name__}")
    for pair in pairs:
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(m, str) for m in pair)):
            raise SymtuneError(f"{where}: comparisons hold [model, reference] pairs, got {pair!r:.80}")
        for name in pair:
            if name not in names and name not in pools:
                raise SymtuneError(f"{where}: a comparison names {name!r}, neither one of {what} nor a pool"
                                   f"{did_you_mean(name, names + list(pools))}")
        check_pairable(pair, pools, where)


def check_pairable(pair, groups: dict, where: str) -> None:
    """Two pools compared run by run hold as many runs (a pool against one model is paired with it)."""
    sizes = [len(groups.get(m, [m])) for m in pair]
    if 1 not in sizes and sizes[0] != sizes[1]:
        raise SymtuneError(f"{where}: {pair[0]!r} ({sizes[0]} runs) and {pair[1]!r} ({sizes[1]} runs) cannot be "
                           "paired run by run; compare pools of as many runs, or each run on its own")


# ---- reading -----------------------------------------------------------------------------


def models(results: dict) -> list[str]:
    """The models, in the order they were scored (the first is the base of paired differences)."""
    return list(results["models"])


def model_run(results: dict, model: str) -> dict:
    """What `model`'s entry says of its run: fingerprint, dtype, seconds, scoring_seconds, ..."""
    return {key: value for key, value in results["models"][model].items() if key not in ("conditions", "predictions")}


def conditions(results: dict) -> list[dict]:
    return results["conditions"]


def runs(results: dict, model: str) -> list[list[dict]]:
    """`model`'s per-prompt records (symtune.judge) per tuning run: its own, or each member's of a pool."""
    return [results["models"][m]["predictions"] for m in pools(results).get(model, [model])]


def paired_difference(results: dict, model: str, reference: str, condition: str, metric: str) -> dict | None:
    """`model` − `reference` in one condition, prompt by prompt, with its interval
    (symtune.stats.paired_interval); a pool is its members' runs."""
    return paired_interval(paired_cells(runs(results, model), runs(results, reference), condition, metric))


def condition_results(results: dict, model: str, condition: str) -> dict | None:
    """`model`'s aggregates in `condition` ({mean, tasks, families}), or None where it has none."""
    return results["models"][model]["conditions"].get(condition)


def condition_mean(results: dict, model: str, condition: str) -> dict | None:
    """The CELL of `model`'s unweighted mean over tasks in `condition`, or None where it has none."""
    block = condition_results(results, model, condition)
    return None if block is None else block["mean"]


def metric_summary(results: dict, model: str, condition: str, metric: str) -> dict | None:
    """{mean, stderr, per_seed} of `metric`, mean over tasks, or None where it was not measured."""
    return mean_metric(results["models"][model]["conditions"], condition, metric)


def mean_metric(aggregates: dict, condition: str, metric: str) -> dict | None:
    """metric_summary of one model's aggregates ({condition: {mean, tasks, families}}: a model's
    conditions here, as symtune.stats.aggregate returns them)."""
    block = aggregates.get(condition)
    return None if block is None else block["mean"]["metrics"].get(metric)


def per_seed(results: dict, model: str, condition: str, metric: str) -> list:
    """The mean over tasks of each seed (None where a seed has no value), [] where `metric` was not measured."""
    return (metric_summary(results, model, condition, metric) or {"per_seed": []})["per_seed"]


def chance(results: dict, model: str, condition: str) -> float | None:
    """The chance rate of ranking, mean over tasks; None without a candidate set (generation)."""
    return (condition_mean(results, model, condition) or {}).get("chance")


def metrics(results: dict) -> set[str]:
    """Every metric some model measured in some condition."""
    return {m for model in results["models"].values() for block in model["conditions"].values()
            for m in block["mean"]["metrics"]}


def comparisons(results: dict) -> list[tuple[str, str]]:
    """Pairs (model, reference) to compare besides each model's difference from the first."""
    return [tuple(pair) for pair in results.get("comparisons", [])]


def pools(results: dict) -> dict[str, list[str]]:
    """{name: models} of the rows tuned with several seeds, each compared as one; {} when there are none."""
    return {name: list(members) for name, members in results.get("pools", {}).items()}


def curves(results: dict) -> dict[str, list[tuple[int, str]]]:
    """{row: [(steps, model), ...]} of the rows tuned with budgets; {} when there are none."""
    return {row: [tuple(point) for point in points] for row, points in results.get("curves", {}).items()}
