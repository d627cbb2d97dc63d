"""Statistics of evaluation results: means with standard errors, and paired differences between
two models with 95% intervals from a bootstrap clustered by task.

Torch-free: report, evaluate and the studies all import it, and it imports nothing of theirs.
"""

import math
import statistics
from collections import defaultdict

import numpy as np

from symtune.tasks.task import family

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
    interval from a bootstrap that follows how the prompts were drawn: datasets (a task's family;
    class pairs and BIG-bench subtasks share one) with replacement, then the drawn dataset's tasks
    with replacement, then each seed's prompts with replacement. The upper levels carry the
    variation between tasks, so the interval speaks of tasks like these, not only of these
    prompts; the lowest carries the prompts' own noise, which a handful of tasks would otherwise
    hide. None when no prompt is paired."""
    rng = np.random.default_rng(seed)
    means, sums = {}, defaultdict(list)  # per task: (mean, n); per family: its tasks' replicates
    for task, seeds in cells.items():
        strata = [np.asarray(diffs, dtype=float) for diffs in seeds.values() if diffs]
        if not strata:
            continue
        size = sum(len(d) for d in strata)
        means[task] = (sum(d.sum() for d in strata) / size, size)
        replicates = sum(d[rng.integers(0, len(d), (boot, len(d)))].sum(1) for d in strata) / size
        sums[family(task)].append(replicates)
    if not means:
        return None
    # a family's replicate sums its drawn tasks; the estimate divides by all drawn tasks, so that
    # families of many tasks weigh as much as in the unweighted mean over tasks
    family_sums = np.stack([resample(np.stack(draws), rng).sum(1) for draws in sums.values()])
    family_sizes = np.array([len(draws) for draws in sums.values()], dtype=float)
    picks, columns = draw_indices(rng, len(family_sizes), boot)
    replicates = family_sums[picks, columns].sum(1) / family_sizes[picks].sum(1)
    lo, hi = np.quantile(replicates, [0.025, 0.975])
    return {"mean": float(np.mean([m for m, _ in means.values()])), "lo": float(lo), "hi": float(hi),
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
