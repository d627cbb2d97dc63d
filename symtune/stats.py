"""Statistics of evaluation results: means with standard errors, the per-condition aggregates of
a results file, and paired differences between two models (or two rows tuned with several seeds)
with 95% intervals from a bootstrap over datasets, their tasks, each seed's prompts and the
tuning runs.

Aggregation: a task's accuracy per seed, its mean and standard error over seeds; the
unweighted mean over tasks per seed, and its mean and standard error over seeds.

Torch-free: report, evaluate and the studies all import it, and it imports nothing of theirs.
"""

import math
import statistics
from collections import defaultdict

import numpy as np
from scipy.stats import t as student_t

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


def paired_cells(ours: list[list[dict]], theirs: list[list[dict]], condition: str, metric: str) -> dict[str, dict]:
    """{task: {seed: [each prompt's differences, one per tuning run]}} of one condition: our metric
    minus theirs on the same prompt (records matched by id). Each side is a list of runs, a model's
    records each: one, or one per seed of a row tuned with several. Run i of ours pairs with run i
    of theirs, or with theirs' only run (and the other way round). A prompt that not every run
    scored is left out."""
    if len(ours) != len(theirs) and 1 not in (len(ours), len(theirs)):
        raise ValueError(f"cannot pair {len(ours)} tuning runs with {len(theirs)}")
    size = max(len(ours), len(theirs))
    a = [scores(records, condition, metric) for records in ours] * (size // len(ours))
    b = [scores(records, condition, metric) for records in theirs] * (size // len(theirs))
    cells = defaultdict(lambda: defaultdict(list))
    for r in ours[0]:
        key = r["id"]
        if r["condition"] == condition and all(key in run for run in a + b):
            cells[r["task"]][r["seed"]].append([x[key] - y[key] for x, y in zip(a, b)])
    return {task: dict(seeds) for task, seeds in cells.items()}


def scores(records: list[dict], condition: str, metric: str) -> dict:
    """{prompt id: metric} of one model's records in one condition."""
    return {r["id"]: r["metrics"][metric] for r in records if r["condition"] == condition and metric in r["metrics"]}


def by_runs(diffs) -> np.ndarray:
    """A stratum's paired differences as (prompts, runs): a flat list is a single run's."""
    d = np.asarray(diffs, dtype=float)
    return d.reshape(len(d), -1)


def paired_interval(cells: dict[str, dict], boot: int = BOOT, seed: int = 0) -> dict | None:
    """Mean paired difference over tasks (unweighted, as the tables' means) and its 95% percentile
    interval from a bootstrap that follows how the prompts were drawn: datasets (a task's family;
    class pairs and BIG-bench subtasks share one) with replacement, then the drawn dataset's tasks
    with replacement, then each seed's prompts with replacement. The upper levels carry the
    variation between tasks, so the interval speaks of tasks like these, not only of these
    prompts; the lowest carries the prompts' own noise, which a handful of tasks would otherwise
    hide. Where the differences come in several tuning runs (paired_cells), the estimate is their
    mean, and each replicate also draws the runs with replacement, on the same prompts, so that
    the interval carries the spread between tuning runs too; `runs` holds each run's estimate.
    None when no prompt is paired."""
    rng = np.random.default_rng(seed)
    means, sums = {}, defaultdict(list)  # per task: (mean per run, n); per family: its tasks' (boot, runs) replicates
    for task, seeds in cells.items():
        strata = [by_runs(diffs) for diffs in seeds.values() if len(diffs)]
        if not strata:
            continue
        size = sum(len(d) for d in strata)
        means[task] = (sum(d.sum(0) for d in strata) / size, size)
        replicates = sum(d[rng.integers(0, len(d), (boot, len(d)))].sum(1) for d in strata) / size
        sums[family(task)].append(replicates)
    if not means:
        return None
    # a family's replicate sums its drawn tasks; the estimate divides by all drawn tasks, so that
    # families of many tasks weigh as much as in the unweighted mean over tasks
    family_sums = np.stack([resample(np.stack(draws), rng).sum(1) for draws in sums.values()])
    family_sizes = np.array([len(draws) for draws in sums.values()], dtype=float)
    picks, columns = draw_indices(rng, len(family_sizes), boot)
    replicates = family_sums[picks, columns].sum(1) / family_sizes[picks].sum(1, keepdims=True)
    centre, runs = replicates.mean(1), replicates.shape[1]
    if runs > 1:  # the runs too, with replacement, on the replicate's own prompts
        drawn = np.take_along_axis(replicates, rng.integers(0, runs, (boot, runs)), 1).mean(1)
        centre += run_scale(runs) * (drawn - centre)
    lo, hi = np.quantile(centre, [0.025, 0.975])
    per_run = np.mean([m for m, _ in means.values()], axis=0)
    return {"mean": float(per_run.mean()), "lo": float(lo), "hi": float(hi), "runs": per_run.tolist(),
            "n": sum(n for _, n in means.values()), "n_tasks": len(means), "n_families": len(sums)}


def run_scale(runs: int) -> float:
    """What a bootstrap over a few tuning runs' deviations is scaled by so that it spans what a t
    interval over them would: it sees their plug-in spread, (runs - 1) / runs of the unbiased
    variance, with normal tails where runs - 1 degrees of freedom have a t distribution's."""
    return math.sqrt(runs / (runs - 1)) * float(student_t.ppf(0.975, runs - 1)) / Z95


def resample(draws: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(boot, members, runs) replicates of a level from (members, boot, runs): member j of
    replicate b is a member drawn with replacement, taken at a random one of its own replicates."""
    return draws[draw_indices(rng, *draws.shape[:2])]


def draw_indices(rng: np.random.Generator, members: int, boot: int) -> tuple[np.ndarray, np.ndarray]:
    return rng.integers(0, members, (boot, members)), rng.integers(0, boot, (boot, members))


def excludes_zero(interval: dict, tolerance: float = 1e-9) -> bool:
    """Whether the interval lies clear of 0 by more than a floating-point residue."""
    return interval["lo"] > tolerance or interval["hi"] < -tolerance


def expected_half_width(n: int, disagreement: float) -> float:
    """95% half-width of a paired accuracy difference over n prompts when the two models disagree
    on a share `disagreement` of them: the per-prompt difference is -1, 0 or 1, so its variance is
    at most that share. Variation between tasks widens the bootstrap interval beyond this."""
    return Z95 * math.sqrt(disagreement / n)
