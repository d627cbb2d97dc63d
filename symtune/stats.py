"""Statistics of evaluation results: means with standard errors, the per-condition aggregates of
a results file, and paired differences between two models with 95% intervals from a bootstrap
over datasets, their tasks and each seed's prompts.

Aggregation: a task's accuracy per seed, its mean and standard error over seeds; the
unweighted mean over tasks per seed, and its mean and standard error over seeds.

Torch-free: report, evaluate and the studies all import it, and it imports nothing of theirs.
"""

import math
import statistics
from collections import defaultdict

import numpy as np

from symtune.suites import Condition, Item
from symtune.tasks.task import family

Z95 = 1.959963984540054  # the standard normal's 97.5% quantile
BOOT = 4000  # bootstrap replicates, with a fixed seed so that a table is reproducible


def mean_se(values: list[float]) -> dict:
    """Mean and standard error (None with fewer than two values)."""
    mean = statistics.fmean(values)
    se = statistics.stdev(values) / len(values) ** 0.5 if len(values) > 1 else None
    return {"mean": mean, "stderr": se}


def mean_or_none(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


def summarize(per_seed: dict[int, dict[str, float]]) -> dict:
    """{metric: {mean, stderr, per_seed}} from {seed: {metric: value}}."""
    metrics = sorted({m for values in per_seed.values() for m in values})
    return {m: {**mean_se([v[m] for v in per_seed.values() if m in v]),
                "per_seed": [v.get(m) for v in per_seed.values()]}
            for m in metrics}


def aggregate(records: list[dict], items: list[Item], conditions: list[Condition]) -> dict:
    """Per condition: per-task numbers, a confusion matrix, per-family and overall means."""
    chance_of = {item.id: 1 / len(item.candidates) for item in items if item.candidates}
    out = {}
    for cond in conditions:
        cells = defaultdict(list)  # (task, seed) -> records
        for r in records:
            if r["condition"] == cond.name:
                cells[r["task"], r["seed"]].append(r)
        tasks = list(dict.fromkeys(task for task, _ in cells))
        seeds = list(dict.fromkeys(seed for _, seed in cells))
        cell_means = {key: {m: statistics.fmean(r["metrics"][m] for r in rs if m in r["metrics"])
                            for m in {m for r in rs for m in r["metrics"]}} for key, rs in cells.items()}
        per_task = {}
        for task in tasks:
            rs = [r for s in seeds for r in cells[task, s]]
            per_task[task] = {
                "n": len(rs), "chance": mean_or_none([chance_of[r["id"]] for r in rs if r["id"] in chance_of]),
                "metrics": summarize({s: cell_means[task, s] for s in seeds}),
                "confusion": confusion(rs),
            }
        groups = defaultdict(list)
        for task in tasks:
            groups[family(task)].append(task)
        out[cond.name] = {
            "tasks": per_task,
            "families": {f: mean_over(members, seeds, cell_means, per_task)
                         for f, members in groups.items() if len(members) > 1},
            "mean": mean_over(tasks, seeds, cell_means, per_task),
        }
    return out


def mean_over(tasks: list[str], seeds: list[int], cell_means: dict, per_task: dict) -> dict:
    """The unweighted mean over tasks, per seed, summarised over seeds."""
    per_seed = {}
    for s in seeds:
        metrics = {m for t in tasks for m in cell_means[t, s]}
        per_seed[s] = {m: statistics.fmean(cell_means[t, s][m] for t in tasks if m in cell_means[t, s])
                       for m in metrics}
    chances = [per_task[t]["chance"] for t in tasks if per_task[t]["chance"] is not None]
    return {"n_tasks": len(tasks), "chance": mean_or_none(chances), "metrics": summarize(per_seed)}


def confusion(records: list[dict]) -> list[list[int]] | None:
    """Counts[true class][predicted class] of rank classification, in the task's label order."""
    ranked = [r for r in records if r["candidates"] and "prediction" in r and r["answer"] >= 0]
    if not ranked or any(len(r["candidates"]) != len(ranked[0]["candidates"]) for r in ranked):
        return None
    size = len(ranked[0]["candidates"])
    counts = [[0] * size for _ in range(size)]
    for r in ranked:
        counts[r["answer"]][r["candidates"].index(r["prediction"])] += 1
    return counts


def mean_records(models: list[list[dict]]) -> list[dict]:
    """One record per prompt that every model scored (matched by id): each metric that all of them
    measured averaged over them, and the fields on which they agree (the prompt's own; a prediction
    only where every model made it). A row tuned with several seeds, compared as one."""
    by_id = [{r["id"]: r for r in records} for records in models]
    merged = []
    for key, first in by_id[0].items():
        records = [scored[key] for scored in by_id if key in scored]
        if len(records) == len(by_id):
            shared = set.intersection(*(set(r["metrics"]) for r in records))
            agreed = {field: value for field, value in first.items() if all(r.get(field) == value for r in records)}
            merged.append({**agreed, "metrics": {m: sum(r["metrics"][m] for r in records) / len(records)
                                                 for m in sorted(shared)}})
    return merged


def paired_cells(ours: list[dict], theirs: list[dict], condition: str, metric: str) -> dict[str, dict]:
    """{task: {seed: [per-prompt difference]}} of one condition: our metric minus theirs on the
    same prompt (records matched by id). A prompt only one side scored is left out."""
    base = {r["id"]: r["metrics"][metric] for r in theirs if r["condition"] == condition and metric in r["metrics"]}
    cells = defaultdict(lambda: defaultdict(list))
    for r in ours:
        if r["condition"] == condition and metric in r["metrics"] and r["id"] in base:
            cells[r["task"]][r["seed"]].append(r["metrics"][metric] - base[r["id"]])
    return {task: dict(seeds) for task, seeds in cells.items()}


def task_means(cells: dict[str, dict]) -> dict[str, tuple[float, int]]:
    """{task: (its mean paired difference over every seed's prompts, how many)}, for the tasks with
    a paired prompt."""
    means = {}
    for task, seeds in cells.items():
        strata = [np.asarray(diffs, dtype=float) for diffs in seeds.values() if diffs]
        if strata:
            size = sum(len(d) for d in strata)
            means[task] = (sum(d.sum() for d in strata) / size, size)
    return means


def paired_mean(cells: dict[str, dict]) -> float | None:
    """paired_interval's estimate without its bootstrap: the unweighted mean over tasks of each
    task's mean paired difference. None when no prompt is paired."""
    means = task_means(cells)
    return float(np.mean([m for m, _ in means.values()])) if means else None


def paired_interval(cells: dict[str, dict], boot: int = BOOT, seed: int = 0) -> dict | None:
    """Mean paired difference over tasks (unweighted, as the tables' means) and its 95% percentile
    interval from a bootstrap that follows how the prompts were drawn: datasets (a task's family;
    class pairs and BIG-bench subtasks share one) with replacement, then the drawn dataset's tasks
    with replacement, then each seed's prompts with replacement. The upper levels carry the
    variation between tasks, so the interval speaks of tasks like these, not only of these
    prompts; the lowest carries the prompts' own noise, which a handful of tasks would otherwise
    hide. None when no prompt is paired."""
    means = task_means(cells)
    if not means:
        return None
    rng = np.random.default_rng(seed)
    sums = defaultdict(list)  # per family: its tasks' replicates
    for task, (_, size) in means.items():
        strata = [np.asarray(diffs, dtype=float) for diffs in cells[task].values() if diffs]
        replicates = sum(d[rng.integers(0, len(d), (boot, len(d)))].sum(1) for d in strata) / size
        sums[family(task)].append(replicates)
    # a family's replicate sums its drawn tasks; the estimate divides by all drawn tasks, so that
    # families of many tasks weigh as much as in the unweighted mean over tasks
    family_sums = np.stack([resample(np.stack(draws), rng).sum(1) for draws in sums.values()])
    family_sizes = np.array([len(draws) for draws in sums.values()], dtype=float)
    picks, columns = draw_indices(rng, len(family_sizes), boot)
    replicates = family_sums[picks, columns].sum(1) / family_sizes[picks].sum(1)
    lo, hi = np.quantile(replicates, [0.025, 0.975])
    return {"mean": paired_mean(cells), "lo": float(lo), "hi": float(hi),
            "n": sum(n for _, n in means.values()), "n_tasks": len(means), "n_families": len(sums)}


def resample(draws: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(boot, members) replicates of a level: member j of replicate b is a member drawn with
    replacement, taken at a random one of its own replicates."""
    return draws[draw_indices(rng, *draws.shape)]


def draw_indices(rng: np.random.Generator, members: int, boot: int) -> tuple[np.ndarray, np.ndarray]:
    return rng.integers(0, members, (boot, members)), rng.integers(0, boot, (boot, members))


def paired_difference(ours: list[dict], theirs: list[dict], condition: str, metric: str) -> dict | None:
    """paired_interval of two models' records (their results' "predictions") in one condition."""
    return paired_interval(paired_cells(ours, theirs, condition, metric))


def excludes_zero(interval: dict, tolerance: float = 1e-9) -> bool:
    """Whether the interval lies clear of 0 by more than a floating-point residue."""
    return interval["lo"] > tolerance or interval["hi"] < -tolerance


def expected_half_width(n: int, disagreement: float) -> float:
    """95% half-width of a paired accuracy difference over n prompts when the two models disagree
    on a share `disagreement` of them: the per-prompt difference is -1, 0 or 1, so its variance is
    at most that share. Variation between tasks widens the bootstrap interval beyond this."""
    return Z95 * math.sqrt(disagreement / n)
