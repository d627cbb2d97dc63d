import math
import random
import statistics

import pytest

from symtune.stats import expected_half_width, mean_se, paired_cells, paired_interval


def records(values: dict) -> list[dict]:
    """Records of one model from {(task, seed): [metric per prompt]}; ids say task, seed and position."""
    return [{"id": f"{task}/{seed}/{i}", "task": task, "seed": seed, "condition": "c", "metrics": {"acc": v}}
            for (task, seed), vs in values.items() for i, v in enumerate(vs)]


def test_paired_cells_match_prompts_by_id_not_by_position():
    ours = records({("a", 0): [1.0, 0.0, 1.0]})
    theirs = list(reversed(records({("a", 0): [0.0, 0.0, 1.0]})))
    assert paired_cells([ours], [theirs], "c", "acc") == {"a": {0: [[1.0], [0.0], [0.0]]}}
    assert paired_cells([ours], [theirs[:1]], "c", "acc") == {"a": {0: [[0.0]]}}  # an unpaired prompt is left out
    assert paired_cells([ours], [theirs], "other", "acc") == {}


def test_tuning_runs_pair_run_by_run_or_with_a_single_run():
    runs = [records({("a", 0): values}) for values in ([1.0, 0.0, 1.0], [0.0, 0.0, 1.0], [1.0, 1.0, 1.0])]
    assert paired_cells(runs[:2], runs[1:], "c", "acc") == {"a": {0: [[1.0, -1.0], [0.0, -1.0], [0.0, 0.0]]}}
    assert paired_cells(runs[:2], runs[2:], "c", "acc") == {"a": {0: [[0.0, -1.0], [-1.0, -1.0], [0.0, 0.0]]}}
    assert paired_cells(runs[2:], runs[:2], "c", "acc") == {"a": {0: [[0.0, 1.0], [1.0, 1.0], [0.0, 0.0]]}}
    assert paired_cells(runs[:2], [runs[2][1:]], "c", "acc") == {"a": {0: [[-1.0, -1.0], [0.0, 0.0]]}}
    assert paired_cells([runs[0][:2], runs[1]], runs[1:], "c", "acc") == {"a": {0: [[1.0, -1.0], [0.0, -1.0]]}}
    with pytest.raises(ValueError, match="cannot pair 2 tuning runs with 3"):
        paired_cells(runs[:2], runs, "c", "acc")


def test_several_tuning_runs_give_their_mean_and_an_interval_that_carries_their_spread():
    # every prompt of a run agrees, the runs disagree: on these prompts alone the interval would be a point
    cells = {f"t{i}": {0: [[0.3, -0.1, 0.1, 0.2, 0.0]] * 30} for i in range(10)}
    interval = paired_interval(cells)
    assert interval["mean"] == pytest.approx(0.1) and interval["runs"] == pytest.approx([0.3, -0.1, 0.1, 0.2, 0.0])
    t_half = 2.776 * statistics.stdev([0.3, -0.1, 0.1, 0.2, 0.0]) / math.sqrt(5)  # t, 4 degrees of freedom
    assert (interval["hi"] - interval["lo"]) / 2 == pytest.approx(t_half, rel=0.15)  # not the plain bootstrap's 0.12
    one_run = {task: {0: [[row[0]] for row in seeds[0]]} for task, seeds in cells.items()}
    assert paired_interval(one_run)["lo"] == pytest.approx(0.3) and paired_interval(one_run)["runs"] == [
        pytest.approx(0.3)]
    flat = {task: {0: [row[0] for row in seeds[0]]} for task, seeds in cells.items()}
    assert paired_interval(flat) == paired_interval(one_run)  # a flat list is one run


def test_the_estimate_is_the_unweighted_mean_over_tasks():
    cells = {"a": {0: [1.0, 1.0, 1.0, 1.0], 1: [0.0, 0.0, 0.0, 0.0]}, "b": {0: [-1.0, 0.0]}}
    interval = paired_interval(cells, boot=200)
    assert interval["mean"] == pytest.approx((0.5 + -0.5) / 2)
    assert (interval["n"], interval["n_tasks"]) == (10, 2)
    assert interval["lo"] <= interval["mean"] <= interval["hi"]
    assert paired_interval({}) is None and paired_interval({"a": {0: []}}) is None


def test_variation_between_tasks_widens_the_interval():
    # each task's prompts agree with each other, so only the tasks vary: a prompt-level bootstrap would say [0, 0]
    cells = {f"t{i}": {0: [0.2 if i % 2 else -0.2] * 50} for i in range(8)}
    interval = paired_interval(cells)
    assert interval["mean"] == pytest.approx(0.0)
    assert interval["lo"] < -0.05 and interval["hi"] > 0.05
    same = {f"t{i}": {0: [0.2] * 50} for i in range(8)}
    assert paired_interval(same)["lo"] == pytest.approx(0.2) and paired_interval(same)["hi"] == pytest.approx(0.2)


def test_one_task_matches_the_normal_interval_of_its_prompts():
    rng = random.Random(0)
    diffs = [rng.choice([-1.0, 0.0, 0.0, 1.0, 1.0]) for _ in range(2000)]
    interval = paired_interval({"a": {0: diffs}}, seed=1)
    half = 1.96 * mean_se(diffs)["stderr"]
    assert (interval["hi"] - interval["lo"]) / 2 == pytest.approx(half, rel=0.1)
    assert interval["mean"] - interval["lo"] == pytest.approx(half, rel=0.15)


def test_expected_half_width_is_the_binomial_bound():
    assert expected_half_width(400, 0.25) == pytest.approx(1.96 * math.sqrt(0.25 / 400), rel=1e-3)
    assert expected_half_width(1600, 0.25) == pytest.approx(expected_half_width(400, 0.25) / 2)


def test_class_pairs_of_one_dataset_vary_together():
    # two datasets, one gains and one loses; each split into many class pairs that agree with each other
    cells = {f"{name}/pair{j}": {0: [gain] * 20} for name, gain in (("up", 0.3), ("down", -0.3)) for j in range(6)}
    by_family = paired_interval(cells)
    as_tasks = paired_interval({name.replace("/", "-"): seeds for name, seeds in cells.items()})
    assert by_family["n_families"] == 2 and as_tasks["n_families"] == 12
    assert by_family["hi"] - by_family["lo"] > 1.5 * (as_tasks["hi"] - as_tasks["lo"])
