"""Statistics of evaluation results: means with standard errors, and paired differences between
two models with 95% intervals from a bootstrap clustered by task.

Torch-free: report, evaluate and the studies all import it, and it imports nothing of theirs.
"""

import math
import statistics
from collections import defaultdict

import numpy as np

Z95 = 1.959963984540054  # the standard normal's 97.5% quantile
BOOT = 4000  # bootstrap replicates: the percentile interval's ends move by well under 0.1 point beyond this


def mean_se(values: list[float]) -> dict:
    """Mean and standard error (None with fewer than two values)."""
    mean = statistics.fmean(values)
    se = statistics.stdev(values) / len(values) ** 0.5 if len(values) > 1 else None
    return {"mean": mean, "stderr": se}


def paired_cells(ours: list[dict], theirs: list[dict], condition: str, metric: str) -> dict[str, dict]:
    """{task: {seed: [per-prompt difference]}} of one condition: our metric minus theirs on the
    same prompt (records matched by id). A prompt only one side scored is left out."""
    base = {r["id"]: r["metrics"][metric] for r in theirs if r["condition"] == condition and metric in r["metrics"]}
    cells = defaultdict(lambda: defaultdict(list))
    for r in ours:
        if r["condition"] == condition and metric in r["metrics"] and r["id"] in base:
            cells[r["task"]][r["seed"]].append(r["metrics"][metric] - base[r["id"]])
    return {task: dict(seeds) for task, seeds in cells.items()}


def paired_interval(cells: dict[str, dict], boot: int = BOOT, seed: int = 0) -> dict | None:
    """Mean paired difference over tasks (unweighted, as the tables' means) and its 95% percentile
    interval from a two-level bootstrap: draw tasks with replacement, then within each drawn task
    draw each seed's prompts with replacement. The outer level carries the variation between
    tasks, so the interval speaks of tasks like these, not only of these prompts; the inner level
    carries the prompts' own noise, which a handful of tasks would otherwise hide. None when no
    prompt is paired."""
    rng = np.random.default_rng(seed)
    task_means, task_draws, n = [], [], 0
    for seeds in cells.values():
        strata = [np.asarray(diffs, dtype=float) for diffs in seeds.values() if diffs]
        if not strata:
            continue
        size = sum(len(d) for d in strata)
        n += size
        task_means.append(sum(d.sum() for d in strata) / size)
        # one inner draw per replicate: each seed's prompts resampled, pooled into the task's mean
        task_draws.append(sum(d[rng.integers(0, len(d), (boot, len(d)))].sum(1) for d in strata) / size)
    if not task_means:
        return None
    draws, tasks = np.stack(task_draws), len(task_means)
    # outer level: each replicate draws tasks with replacement, each slot with its own inner draw
    replicates = draws[rng.integers(0, tasks, (boot, tasks)), rng.integers(0, boot, (boot, tasks))].mean(1)
    lo, hi = np.quantile(replicates, [0.025, 0.975])
    return {"mean": float(np.mean(task_means)), "lo": float(lo), "hi": float(hi), "n": n, "n_tasks": tasks}


def excludes_zero(interval: dict, tolerance: float = 1e-9) -> bool:
    """Whether the interval lies clear of 0 by more than a floating-point residue."""
    return interval["lo"] > tolerance or interval["hi"] < -tolerance


def expected_half_width(n: int, disagreement: float) -> float:
    """95% half-width of a paired accuracy difference over n prompts when the two models disagree
    on a share `disagreement` of them: the per-prompt difference is -1, 0 or 1, so its variance is
    at most that share. Variation between tasks widens the bootstrap interval beyond this."""
    return Z95 * math.sqrt(disagreement / n)
