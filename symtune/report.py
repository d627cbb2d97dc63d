"""Evaluation results: the JSON file, its Markdown tables, and PNG plots.

Tables and plots show each condition's unweighted mean over tasks (percent) with the standard
error over seeds, next to the chance rate. Bars for conditions without an x position (the
4-setting grid, paper 1's flipped labels), curves for those with one (percent flipped, k).
"""

import sys
from pathlib import Path

from symtune.errors import SymtuneError
from symtune.io import atomic_write, pyplot, read_json, save_figure, write_json
from symtune.stats import excludes_zero, paired_difference
from symtune.suites import SUITES
from symtune.validate import Each, check_outputs, check_schema

METRICS = {  # name -> what the tables call it
    "acc": "accuracy, rank classification (summed log-prob)",
    "acc_norm": "accuracy, rank classification (log-prob per token)",
    "acc_calibrated": "accuracy, rank classification (content-free calibrated)",
    "acc_gen": "accuracy, greedy generation + exact match",
    "label_rate": "share of generations that are one of the labels",
}
RANKED = ("acc", "acc_norm", "acc_calibrated")  # the metrics that chance applies to
MAX_TASK_ROWS = 30  # longer task lists (BIG-bench subtasks) are summarised by family

# What the tables and plots read from a results file (symtune.evaluate writes more).
NUMBER, OPTIONAL = (int, float), (int, float, type(None))
SUMMARY = {"mean": NUMBER, "stderr": OPTIONAL, "per_seed": [OPTIONAL]}
CELL = {"chance": OPTIONAL, "metrics": Each(SUMMARY)}
RESULTS_SCHEMA = {
    "suite": str,
    "config": {"n": int, "k": int, "seeds": [int]},
    "conditions": [{"name": str, "label": str, "k": NUMBER, "x": OPTIONAL}],
    "models": Each({"conditions": Each({"mean": CELL, "tasks": Each(CELL), "families": Each(CELL)})}),
}


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
    return results


def write_results(results: dict, out) -> None:
    out = Path(out)
    write_json(out / "results.json", results)
    with atomic_write(out / "results.md") as f:
        f.write(markdown(results))


def pct(summary: dict | None) -> str:
    if not summary:
        return "–"
    se = summary["stderr"]
    return f"{100 * summary['mean']:.1f}" + (f" ± {100 * se:.1f}" if se is not None else "")


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def present_metrics(results: dict) -> list[str]:
    found = {m for model in results["models"].values() for cond in model["conditions"].values()
             for m in cond["mean"]["metrics"]}
    return [m for m in METRICS if m in found]


def markdown(results: dict) -> str:
    cfg, conditions = results["config"], results["conditions"]
    heads = [c["label"] for c in conditions]
    models = results["models"]
    first = next(iter(models.values()), {"conditions": {}})
    chance = [fmt_chance(first["conditions"].get(c["name"], {}).get("mean")) for c in conditions]
    parts = [
        f"## {results['suite']}: n={cfg['n']} per task and seed, k={cfg['k']}, seeds {list(cfg['seeds'])}",
        "Unweighted mean over tasks (%) ± standard error over seeds.",
    ]
    if any((c.get("exemplars_per_class") or c["k"]) < c["k"] - 1e-9 for c in conditions):
        shown = ", ".join(f"{c['label']}: {c['exemplars_per_class']:.1f}"
                          for c in conditions if c.get("exemplars_per_class"))
        parts.append(f"Exemplars per class actually shown (mean; max_prompt_tokens dropped some): {shown}.")
    for metric in present_metrics(results):
        rows = [["chance", *chance]] if metric in RANKED else []
        rows += [[model, *(pct(m["conditions"][c["name"]]["mean"]["metrics"].get(metric)) for c in conditions)]
                 for model, m in models.items()]
        parts += [f"### {metric}: {METRICS[metric]}", table(["model", *heads], rows)]
    parts += paired_differences(models, conditions, heads, present_metrics(results), results.get("comparisons", ()))
    for model, m in models.items():
        parts += per_task_table(model, [m["conditions"][c["name"]] for c in conditions], heads,
                                present_metrics(results))
    return "\n\n".join(parts) + "\n"


def paired_differences(models: dict, conditions: list[dict], heads: list[str], metrics: list[str],
                       pairs: list[tuple[str, str]] = ()) -> list[str]:
    """Each row minus the first (base), and each of `pairs` (row, reference), prompt by prompt on
    the identical prompts both scored: the mean difference over tasks and its 95% interval
    (stats.paired_interval), bold where the interval excludes 0."""
    first, *others = models
    pairs = [(model, first) for model in others] + list(pairs)
    if not pairs:
        return []
    parts = ["### Paired differences on identical prompts (points, 95% interval)",
             "Bootstrap over datasets, their tasks, and each seed's prompts (docs/method.md). "
             "**Bold**: the interval excludes 0."]
    for metric in metrics:
        rows = [[f"{model} − {reference}", *(delta(models[model], models[reference], c["name"], metric)
                                               for c in conditions)] for model, reference in pairs]
        parts += [f"{metric}:", table(["difference", *heads], rows)]
    return parts


def delta(model: dict, base: dict, condition: str, metric: str) -> str:
    interval = paired_difference(model["predictions"], base["predictions"], condition, metric)
    if interval is None:
        return "–"
    cell = f"{points(interval['mean'])} [{points(interval['lo'])}, {points(interval['hi'])}]"
    return (f"**{cell}**" if excludes_zero(interval) else cell) + f" n={interval['n']}"


def verdict(interval: dict, target: float) -> str:
    """What a paired difference establishes at a target half-width (points): an effect (the interval
    excludes 0), a null tight enough to rule out effects beyond the target, or neither."""
    half = 100 * (interval["hi"] - interval["lo"]) / 2
    if excludes_zero(interval):
        return "resolved: an effect"
    if half <= target:
        return f"resolved: a null within ±{half:.1f} points"
    return f"not resolved (half-width {half:.1f} > {target:g} points)"


def verdict_line(model: str, reference: str, label: str, interval: dict, target: float) -> str:
    iv = interval
    return (f"{model} − {reference}, {label}: {100 * iv['mean']:+.1f} [{100 * iv['lo']:+.1f}, {100 * iv['hi']:+.1f}] "
            f"points, n={iv['n']} prompts in {iv['n_tasks']} tasks of {iv['n_families']} datasets: "
            f"{verdict(iv, target)}.")


def points(value: float) -> str:
    return f"{round(100 * value, 1) + 0.0:+.1f}"  # + 0.0 turns a rounding residue's -0.0 into 0.0


def fmt_chance(summary: dict | None) -> str:
    return f"{100 * summary['chance']:.1f}" if summary and summary["chance"] is not None else "–"


def per_task_table(model: str, conds: list[dict], heads: list[str], metrics: list[str]) -> list[str]:
    """Per task (per family for long task lists): acc under every condition, or every metric
    when the suite has a single condition."""
    key = "tasks" if len({t for c in conds for t in c["tasks"]}) <= MAX_TASK_ROWS else "families"
    names = list(dict.fromkeys(name for c in conds for name in c[key]))
    if len(conds) == 1:
        columns = [(conds[0], metric) for metric in metrics]
        heads = metrics
    else:
        columns = [(c, "acc") for c in conds]
    rows = []
    for name in names:
        cells = [pct(c[key][name]["metrics"].get(metric)) if name in c[key] else "–" for c, metric in columns]
        chance = fmt_chance(next(c[key][name] for c in conds if name in c[key]))
        rows.append([name, *cells, chance])
    title = "task" if key == "tasks" else "family"
    what = "" if len(conds) == 1 else " acc"
    return [f"### {model}:{what} per {title}", table([title, *heads, "chance"], rows)]


# ---- plots -------------------------------------------------------------------------------


def merge_models(results_list: list[tuple[str, dict]]) -> list[tuple[str, dict]]:
    """(model name, its per-condition results) over all files; a repeated name gets its file's."""
    merged = []
    for path, results in results_list:
        for model, m in results["models"].items():
            name = model if all(model != other for other, _ in merged) else f"{model} ({Path(path).stem})"
            merged.append((name, m["conditions"]))
    return merged


def plot_suite(suite: str, results_list: list[tuple[str, dict]], out: Path, metric: str = "acc") -> Path:
    models = merge_models(results_list)
    conditions = results_list[0][1]["conditions"]
    bars = [c for c in conditions if c["x"] is None]
    curve = [c for c in conditions if c["x"] is not None]
    panels = [p for p in (bars, curve) if p]
    fig, axes = pyplot().subplots(1, len(panels), figsize=(6.5 * len(panels), 4.2), squeeze=False)
    for ax, conds in zip(axes[0], panels):
        (plot_bars if conds is bars else plot_curve)(ax, conds, models, metric)
        ax.set_ylabel(f"{metric} (%)")
        ax.set_ylim(0, 100)
        ax.grid(axis="y", alpha=0.3)
    if suite == "flipped" and curve:
        axes[0][-1].set_xlabel("exemplar labels flipped (%)")
    elif suite == "kcurve":
        axes[0][-1].set_xlabel("exemplars per class (k)")
    axes[0][0].legend(fontsize=8)
    fig.suptitle(f"{suite}: mean over tasks ± s.e. over seeds")
    fig.tight_layout()
    return save_figure(fig, out / f"{suite}.png")


def summary(model_conditions: dict, cond: dict, metric: str) -> tuple[float, float]:
    s = model_conditions[cond["name"]]["mean"]["metrics"].get(metric)
    if s is None:
        return float("nan"), 0.0
    return 100 * s["mean"], 100 * (s["stderr"] or 0.0)


def plot_bars(ax, conds: list[dict], models, metric: str) -> None:
    width = 0.8 / len(models)
    for j, (name, mc) in enumerate(models):
        values = [summary(mc, c, metric) for c in conds]
        xs = [i - 0.4 + width * (j + 0.5) for i in range(len(conds))]
        ax.bar(xs, [v for v, _ in values], width, yerr=[e for _, e in values], capsize=3, label=name)
    chance = models[0][1]
    for i, c in enumerate(conds if metric in RANKED else []):  # chance applies to ranking only
        level = chance[c["name"]]["mean"]["chance"]
        if level is None:  # no candidate set (generation tasks): no chance rate to draw
            continue
        ax.hlines(100 * level, i - 0.45, i + 0.45, colors="k", linestyles="--", linewidth=1,
                  label="chance" if i == 0 else None)
    ax.set_xticks(range(len(conds)), [c["label"] for c in conds], fontsize=8)


def plot_curve(ax, conds: list[dict], models, metric: str) -> None:
    xs = [c["x"] for c in conds]
    for name, mc in models:
        values = [summary(mc, c, metric) for c in conds]
        ax.errorbar(xs, [v for v, _ in values], yerr=[e for _, e in values], marker="o", capsize=3, label=name)
    chance = [(x, models[0][1][c["name"]]["mean"]["chance"]) for x, c in zip(xs, conds if metric in RANKED else [])]
    chance = [(x, 100 * level) for x, level in chance if level is not None]
    if chance:
        ax.plot(*zip(*chance), "k--", linewidth=1, label="chance")
    ax.set_xticks(xs)


def budget_series(results: dict, condition: str, metric: str) -> dict[str, list[tuple[int, dict]]]:
    """{row: [(steps, interval of its difference from base)]} of results["curves"] ({row: [[steps,
    model], ...]}), starting at base itself: step 0, no difference."""
    models = results["models"]
    base = next(iter(models))
    series = {}
    for row, steps_models in results["curves"].items():
        series[row] = [(0, {"mean": 0.0, "lo": 0.0, "hi": 0.0})]
        for steps, model in steps_models:
            interval = paired_difference(models[model]["predictions"], models[base]["predictions"], condition, metric)
            if interval:
                series[row].append((steps, interval))
    return series


def plot_budget(results: dict, out: Path, metric: str = "acc") -> Path:
    """The difference from base (points) against tuning steps: a panel per condition, a line with
    its 95% band per row."""
    conditions = results["conditions"]
    fig, axes = pyplot().subplots(1, len(conditions), figsize=(4.2 * len(conditions), 3.8), squeeze=False)
    for ax, cond in zip(axes[0], conditions):
        for row, points_ in budget_series(results, cond["name"], metric).items():
            xs = [steps for steps, _ in points_]
            line, = ax.plot(xs, [100 * iv["mean"] for _, iv in points_], marker="o", label=row)
            ax.fill_between(xs, [100 * iv["lo"] for _, iv in points_], [100 * iv["hi"] for _, iv in points_],
                            alpha=0.2, color=line.get_color())
        ax.axhline(0, color="k", linewidth=0.8)
        ax.set_title(cond["label"], fontsize=9)
        ax.set_xlabel("tuning steps")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(f"{metric}: difference from {next(iter(results['models']))} (points)")
    axes[0][0].legend(fontsize=8)
    fig.suptitle("paired difference from base on identical prompts, 95% bootstrap interval")
    fig.tight_layout()
    return save_figure(fig, out / f"{results['suite']}-budget.png")


def report(paths: list[str], out, metric: str = "acc") -> list[Path]:
    """One PNG per suite found in the results files."""
    by_suite = {}
    for path in paths:
        results = read_results(path)
        by_suite.setdefault(results["suite"], []).append((path, results))
    for suite, group in by_suite.items():
        names = [[c["name"] for c in r["conditions"]] for _, r in group]
        if any(n != names[0] for n in names):
            raise SymtuneError(f"the {suite} results files have different conditions; plot them separately")
    plots = [plot_suite(suite, group, Path(out), metric) for suite, group in by_suite.items()]
    return plots + [plot_budget(results, Path(out), metric) for _, results in sum(by_suite.values(), [])
                    if results.get("curves")]


def add_report_parser(subparsers) -> None:
    p = subparsers.add_parser("report", help="PNG plots from one or more results.json files")
    p.add_argument("results", nargs="+", help="results.json files written by `symtune eval`")
    p.add_argument("--out", required=True, help="folder for the PNG files")
    p.add_argument("--metric", default="acc", choices=list(METRICS))
    p.set_defaults(func=run_report)


def run_report(args) -> None:
    check_outputs({"--out": args.out}, {"results file": args.results})
    for path in report(args.results, args.out, args.metric):
        print(path, file=sys.stderr)
