"""Evaluation results as tables and plots: results.md beside results.json (whose format
symtune.results owns), and PNG plots from one or more results files.

Tables and plots show each condition's unweighted mean over tasks (percent) with the standard
error over seeds, next to the chance rate. Bars for conditions without an x position (the
4-setting grid, paper 1's flipped labels), curves for those with one (percent flipped, k).
"""

import math
import sys
from pathlib import Path

from symtune import results as res
from symtune.errors import SymtuneError
from symtune.io import atomic_write, pyplot, save_figure
from symtune.results import read_results, save_results
from symtune.stats import excludes_zero
from symtune.validate import check_outputs

METRICS = {  # name -> what the tables call it
    "acc": "accuracy, rank classification (summed log-prob)",
    "acc_norm": "accuracy, rank classification (log-prob per token)",
    "acc_calibrated": "accuracy, rank classification (content-free calibrated)",
    "acc_gen": "accuracy, greedy generation + exact match",
    "label_rate": "share of generations that are one of the labels",
}
RANKED = ("acc", "acc_norm", "acc_calibrated")  # the metrics that chance applies to
MAX_TASK_ROWS = 30  # longer task lists (BIG-bench subtasks) are summarised by family


def write_results(results: dict, out) -> None:
    """out/results.json (symtune.results) and its tables, out/results.md."""
    save_results(results, out)
    with atomic_write(Path(out) / "results.md") as f:
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
    found = res.metrics(results)
    return [m for m in METRICS if m in found]


def markdown(results: dict) -> str:
    cfg, conditions, models = results["config"], res.conditions(results), res.models(results)
    heads = [c["label"] for c in conditions]
    chance = [fmt_chance(res.chance(results, models[0], c["name"]) if models else None) for c in conditions]
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
        rows += [[model, *(pct(res.metric_summary(results, model, c["name"], metric)) for c in conditions)]
                 for model in models]
        parts += [f"### {metric}: {METRICS[metric]}", table(["model", *heads], rows)]
    parts += paired_differences(results, heads, present_metrics(results))
    for model in models:
        parts += per_task_table(model, [res.condition_results(results, model, c["name"]) for c in conditions], heads,
                                present_metrics(results))
    return "\n\n".join(parts) + "\n"


def paired_differences(results: dict, heads: list[str], metrics: list[str]) -> list[str]:
    """Each model and pool minus the first model (base), and each of the results' comparisons
    (model, reference), prompt by prompt on the identical prompts both scored: the mean difference
    over tasks and its 95% interval (stats.paired_interval), bold where the interval excludes 0."""
    first, *others = res.models(results)
    pairs = [(model, first) for model in others + list(res.pools(results))] + res.comparisons(results)
    if not pairs:
        return []
    parts = ["### Paired differences on identical prompts (points, 95% interval)",
             "Bootstrap over datasets, their tasks, and each seed's prompts (docs/method.md). "
             "**Bold**: the interval excludes 0."]
    for metric in metrics:
        rows = [[f"{model} − {reference}", *(delta(results, model, reference, c["name"], metric)
                                               for c in res.conditions(results))] for model, reference in pairs]
        parts += [f"{metric}:", table(["difference", *heads], rows)]
    return parts


def delta(results: dict, model: str, base: str, condition: str, metric: str) -> str:
    interval = res.paired_difference(results, model, base, condition, metric)
    if interval is None:
        return "–"
    cell = span(interval)
    return (f"**{cell}**" if excludes_zero(interval) else cell) + f" n={interval['n']}"


def span(interval: dict) -> str:
    """A paired difference and its interval, in points: "+1.2 [-0.5, +2.9]"."""
    return f"{points(interval['mean'])} [{points(interval['lo'])}, {points(interval['hi'])}]"


def outcome(interval: dict, target: float) -> str:
    """What a paired difference establishes at a target half-width (points): "an effect" (the interval
    excludes 0), "a null" tight enough to rule out effects beyond the target, or "not resolved"."""
    if excludes_zero(interval):
        return "an effect"
    return "a null" if half_width(interval) <= target else "not resolved"


def half_width(interval: dict) -> float:
    return 100 * (interval["hi"] - interval["lo"]) / 2


def verdict(interval: dict, target: float) -> str:
    """outcome() in words: a null with its half-width, an unresolved difference with the size that
    would resolve it."""
    kind, half = outcome(interval, target), half_width(interval)
    if kind == "an effect":
        return "resolved: an effect"
    if kind == "a null":
        return f"resolved: a null within ±{half:.1f} points"
    # The half-width shrinks about as 1/sqrt(n) only while datasets grow with the prompts: where the
    # datasets differ, more prompts of the same datasets narrow the interval little.
    # A pool's interval carries the spread between its tuning runs as well, so the runs grow alike.
    scale = (half / target) ** 2
    needed = math.ceil(interval["n"] * scale)
    datasets = math.ceil(interval["n_families"] * scale)
    runs = tuning_runs(interval)
    more_runs = f" and {math.ceil(runs * scale)} tuning runs" if runs > 1 else ""
    return (f"not resolved (half-width {half:.1f} > {target:g} points; about {needed} paired prompts over "
            f"{datasets} datasets{more_runs} would reach it)")


def tuning_runs(interval: dict) -> int:
    """How many tuning runs a difference averages (a pool's; stats.paired_interval's `runs`)."""
    return len(interval.get("runs", [None]))


def verdict_line(model: str, reference: str, label: str, interval: dict, target: float) -> str:
    iv = interval
    return (f"{model} − {reference}, {label}: {100 * iv['mean']:+.1f} [{100 * iv['lo']:+.1f}, {100 * iv['hi']:+.1f}] "
            f"points, {sample_size(iv)}: {verdict(iv, target)}.")


def sample_size(interval: dict) -> str:
    """What a paired difference rests on: "n=456 prompts in 57 tasks of 12 datasets, over 5 tuning runs"."""
    runs = tuning_runs(interval)
    return (f"n={interval['n']} prompts in {interval['n_tasks']} tasks of {interval['n_families']} datasets"
            + (f", over {runs} tuning runs" if runs > 1 else ""))


def points(value: float) -> str:
    # a floating-point residue prints as +0.0; a real value keeps its sign, even where it rounds to 0.0
    return f"{100 * value:+.1f}" if abs(value) > 1e-9 else "+0.0"


def fmt_chance(level: float | None) -> str:
    return f"{100 * level:.1f}" if level is not None else "–"


def per_task_table(model: str, conds: list[dict], heads: list[str], metrics: list[str]) -> list[str]:
    """Per task (per family for long task lists): acc under every condition, or every metric
    when the suite has a single condition. `conds`: the model's res.condition_results of each."""
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
        chance = fmt_chance(next(c[key][name] for c in conds if name in c[key])["chance"])
        rows.append([name, *cells, chance])
    title = "task" if key == "tasks" else "family"
    what = "" if len(conds) == 1 else " acc"
    return [f"### {model}:{what} per {title}", table([title, *heads, "chance"], rows)]


# ---- plots -------------------------------------------------------------------------------


def merge_models(results_list: list[tuple[str, dict]]) -> list[tuple[str, dict, str]]:
    """(name to show, its results, its model there) over all files; a repeated name gets its file's."""
    merged = []
    for path, results in results_list:
        for model in res.models(results):
            name = model if all(model != other for other, *_ in merged) else f"{model} ({Path(path).stem})"
            merged.append((name, results, model))
    return merged


def plot_suite(suite: str, results_list: list[tuple[str, dict]], out: Path, metric: str = "acc") -> Path:
    models = merge_models(results_list)
    conditions = res.conditions(results_list[0][1])
    bars = [c for c in conditions if c["x"] is None]
    curve = [c for c in conditions if c["x"] is not None]
    panels = [p for p in (bars, curve) if p]
    legend_rows = -(-(len(models) + 1) // 3)  # below the panels, three entries a row: bars stay uncovered
    fig, axes = pyplot().subplots(1, len(panels), figsize=(6.5 * len(panels), 4.0 + 0.25 * legend_rows),
                                  squeeze=False, layout="constrained")
    palette = pyplot().colormaps["tab10" if len(models) <= 10 else "tab20"].colors  # no two models share a colour
    for ax, conds in zip(axes[0], panels):
        ax.set_prop_cycle(color=palette)
        (plot_bars if conds is bars else plot_curve)(ax, conds, models, metric)
        ax.set_ylabel(f"{metric} (%)")
        ax.set_ylim(0, 100)
        ax.grid(axis="y", alpha=0.3)
    if suite == "flipped" and curve:
        axes[0][-1].set_xlabel("exemplar labels flipped (%)")
    elif suite == "kcurve":
        axes[0][-1].set_xlabel("exemplars per class (k)")
    fig.legend(*axes[0][0].get_legend_handles_labels(), loc="outside lower center", ncols=3, fontsize=8)
    fig.suptitle(f"{suite}: mean over tasks ± s.e. over seeds")
    return save_figure(fig, out / f"{suite}.png")


def summary(results: dict, model: str, cond: dict, metric: str) -> tuple[float, float]:
    s = res.metric_summary(results, model, cond["name"], metric)
    if s is None:
        return float("nan"), 0.0
    return 100 * s["mean"], 100 * (s["stderr"] or 0.0)


def plot_bars(ax, conds: list[dict], models, metric: str) -> None:
    width = 0.8 / len(models)
    for j, (name, results, model) in enumerate(models):
        values = [summary(results, model, c, metric) for c in conds]
        xs = [i - 0.4 + width * (j + 0.5) for i in range(len(conds))]
        ax.bar(xs, [v for v, _ in values], width, yerr=[e for _, e in values], capsize=3, label=name)
    _, first, model = models[0]
    for i, c in enumerate(conds if metric in RANKED else []):  # chance applies to ranking only
        level = res.chance(first, model, c["name"])
        if level is None:  # no candidate set (generation tasks): no chance rate to draw
            continue
        ax.hlines(100 * level, i - 0.45, i + 0.45, colors="k", linestyles="--", linewidth=1,
                  label="chance" if i == 0 else None)
    ax.set_xticks(range(len(conds)), [c["label"] for c in conds], fontsize=8)


def plot_curve(ax, conds: list[dict], models, metric: str) -> None:
    xs = [c["x"] for c in conds]
    for name, results, model in models:
        values = [summary(results, model, c, metric) for c in conds]
        ax.errorbar(xs, [v for v, _ in values], yerr=[e for _, e in values], marker="o", capsize=3, label=name)
    _, first, model = models[0]
    chance = [(x, res.chance(first, model, c["name"])) for x, c in zip(xs, conds if metric in RANKED else [])]
    chance = [(x, 100 * level) for x, level in chance if level is not None]
    if chance:
        ax.plot(*zip(*chance), "k--", linewidth=1, label="chance")
    ax.set_xticks(xs)


def budget_series(results: dict, condition: str, metric: str) -> dict[str, list[tuple[int, dict]]]:
    """{row: [(steps, interval of its difference from base)]} of the results' curves, starting at
    base itself: step 0, no difference."""
    base = res.models(results)[0]
    series = {}
    for row, steps_models in res.curves(results).items():
        series[row] = [(0, {"mean": 0.0, "lo": 0.0, "hi": 0.0})]
        for steps, model in steps_models:
            interval = res.paired_difference(results, model, base, condition, metric)
            if interval:
                series[row].append((steps, interval))
    return series


def plot_budget(results: dict, out: Path, metric: str = "acc") -> Path:
    """The difference from base (points) against tuning steps: a panel per condition, a line with
    its 95% band per row."""
    conditions = res.conditions(results)
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
    axes[0][0].set_ylabel(f"{metric}: difference from {res.models(results)[0]} (points)")
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
        names = [[c["name"] for c in res.conditions(r)] for _, r in group]
        if any(n != names[0] for n in names):
            raise SymtuneError(f"the {suite} results files have different conditions; plot them separately")
    plots = [plot_suite(suite, group, Path(out), metric) for suite, group in by_suite.items()]
    return plots + [plot_budget(results, Path(out), metric) for _, results in sum(by_suite.values(), [])
                    if res.curves(results)]


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
