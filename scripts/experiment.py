"""Run one experiment config end to end and write its section of docs/results.md.

    python scripts/experiment.py scripts/experiments/smollm2-shared.yaml
    python scripts/experiment.py --gather   # after `symtune study report ... --out docs/results/studies.md`

For each row of the config: build its mixture, tune the model (skipped when done, resumed
when interrupted). Then every suite evaluates the base model and all rows (or the rows its
`rows:` list names) on identical prompts (a request cache makes re-runs cheap), and the
tables, plots, command and wall times go to docs/results/<name>.md, which docs/results.md
gathers. Every number there comes from this script.
"""

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import yaml

from symtune.demo import split_tasks
from symtune.errors import SymtuneError
from symtune.evaluate import evaluate
from symtune.io import atomic_write, read_jsonl
from symtune.mixture import MixtureConfig, build_mixture
from symtune.report import markdown, report, write_results
from symtune.stats import excludes_zero, paired_difference
from symtune.suites import EvalConfig
from symtune.tasks.registry import load_task_list
from symtune.tasks.task import class_pairs
from symtune.train.loop import LOG, ensure_tuned
from symtune.train.recipe import load_recipe

DOCS = Path(__file__).resolve().parents[1] / "docs"


def tune_row(cfg: dict, name: str, options: dict, tuning, held_out, out: Path) -> tuple[dict, float]:
    """The row's tuned models ({name: folder}; with `budgets`, {"name @steps": folder} for each,
    snapshots of one run) and its training seconds (from the step log, so resumed runs count).
    The row's options override the config's mixture settings, and its recipe_overrides follow the config's."""
    options = dict(options)
    budgets = sorted(options.pop("budgets", []))
    overrides = list(cfg.get("recipe_overrides", [])) + list(options.pop("recipe_overrides", []))
    if budgets:
        overrides += [f"max_steps={budgets[-1]}", f"snapshot_steps={budgets[:-1]}"]
    recipe = load_recipe(cfg["recipe"], overrides)
    folder = out / "rows" / name.replace(" ", "_").replace("%", "pct").replace("+", "plus")
    if not (folder / "mixture" / "manifest.json").exists():
        try:
            mix = replace(MixtureConfig(n=recipe.max_steps * recipe.batch_size),
                          **{**cfg.get("mixture", {}), **options})
        except TypeError as e:
            raise SymtuneError(f"row {name!r}: {e}") from None
        build_mixture(tuning, folder / "mixture", mix, eval_tasks=[t.name for t in held_out])
    model = ensure_tuned(cfg["model"], folder / "mixture", folder / "model", recipe)
    seconds = sum(row["seconds"] for row in read_jsonl(model / LOG))
    if not budgets:
        return {name: model}, seconds
    return {f"{name} @{b}": model / "snapshots" / f"step-{b:06d}" if b < budgets[-1] else model
            for b in budgets}, seconds


def suite_tasks(cfg: dict, suite: str, held_out):
    if suite == "algorithmic":
        return load_task_list(cfg["bigbench"]) if cfg.get("bigbench") else []
    if suite == "flipped":
        return [t for t in held_out if len(t.labels) == 2]
    if suite == "headline":  # every pair of classes: flipped labels need two, and more tasks narrow the interval
        return [pair for t in held_out for pair in class_pairs(t)]
    return held_out


def suite_rows(suite: str, settings: dict, models: dict) -> tuple[dict, dict]:
    """The suite's eval settings and the models it scores: base and every row, or base and the
    rows its `rows:` list names (a slow suite may leave some out)."""
    names = settings.pop("rows", None)
    if names is None:
        return settings, models
    row = lambda model: model.split(" @")[0]  # noqa: E731  (a budget's model belongs to its row)
    unknown = [name for name in names if name not in models and name not in map(row, models)]
    if unknown:
        raise SymtuneError(f"suite {suite!r} names rows the config does not have: {', '.join(unknown)}")
    return settings, {name: m for name, m in models.items() if name == "base" or name in names or row(name) in names}


def run(config_path: str) -> None:
    cfg = yaml.safe_load(Path(config_path).read_text())
    out = Path("runs") / cfg["name"]
    tuning, held_out = split_tasks(cfg["data"], cfg["eval_tasks"], seed=0)
    models, walls = {"base": cfg["model"]}, {}
    for name, options in cfg["rows"].items():
        tuned, walls[name] = tune_row(cfg, name, options or {}, tuning, held_out, out)
        models.update(tuned)
    sections, cache = [], cfg.get("cache", out / "cache")  # a config may share another's request cache
    for suite, settings in cfg["suites"].items():
        tasks = suite_tasks(cfg, suite, held_out)
        if not tasks:
            continue
        started = time.perf_counter()
        settings, suite_models = suite_rows(suite, dict(settings), models)
        ecfg = EvalConfig(suite=suite, **{**settings, "seeds": tuple(range(settings.get("seeds", 3)))})
        results = evaluate([str(m) for m in suite_models.values()], tasks, ecfg, cache_dir=cache, progress=True)
        results["models"] = {row: results["models"][str(m)] for row, m in suite_models.items()}  # rows by name
        results["comparisons"] = [pair for pair in cfg.get("compare", []) if set(pair) <= set(suite_models)]
        results["curves"] = budget_curves(suite_models)
        write_results(results, out / suite)
        metric = "acc_gen" if suite == "algorithmic" else "acc"  # BIG-bench: exact match, the paper's metric
        plots = report([str(out / suite / "results.json")], DOCS / "results" / cfg["name"], metric)
        images = "\n".join(f"![{suite}]({cfg['name']}/{p.name})" for p in plots)
        verdict = verdicts(results, cfg.get("target_half_width", 3.0))
        sections.append(f"{verdict}{markdown(results)}\n\n{images}\n\n"
                        f"{wall_times(results, time.perf_counter() - started)}")
    write_section(cfg, config_path, tuning, held_out, walls, sections)


def budget_curves(models: dict) -> dict:
    """{row: [[steps, model], ...]} of the rows tuned with budgets."""
    curves = {}
    for name in models:
        row, at, steps = name.partition(" @")
        if at:
            curves.setdefault(row, []).append([int(steps), name])
    return curves


def verdicts(results: dict, target: float) -> str:
    """A line per headline difference (each row's last budget against base, and the config's
    comparisons) per condition, in accuracy: resolved effect, tight null, or unresolved."""
    ends = {points[-1][1] for points in results["curves"].values()}
    on_curve = {name for points in results["curves"].values() for _, name in points}
    base, *rows = results["models"]
    pairs = [(m, base) for m in rows if m in ends or m not in on_curve] + [tuple(p) for p in results["comparisons"]]
    lines = []
    for model, reference in pairs:
        for cond in results["conditions"]:
            iv = paired_difference(results["models"][model]["predictions"], results["models"][reference]["predictions"],
                                   cond["name"], "acc")
            if iv is None:
                continue
            half = 100 * (iv["hi"] - iv["lo"]) / 2
            verdict = ("resolved: an effect" if excludes_zero(iv) else
                       "resolved: a null within ±%.1f points" % half if half <= target else
                       f"not resolved (half-width {half:.1f} > {target:g} points)")
            lines.append(f"- {model} − {reference}, {cond['label']}: {100 * iv['mean']:+.1f} "
                         f"[{100 * iv['lo']:+.1f}, {100 * iv['hi']:+.1f}] points, n={iv['n']} prompts in "
                         f"{iv['n_tasks']} tasks of {iv['n_families']} datasets: {verdict}.")
    if not lines:
        return ""
    return "What the paired differences establish (acc, 95% interval):\n\n" + "\n".join(lines) + "\n\n"


def wall_times(results: dict, seconds: float) -> str:
    """This run's evaluation time, and what each row's requests cost when first scored (a re-run
    reads them from the cache)."""
    costs = [f"{row} {m['scoring_seconds']:.0f} s" for row, m in results["models"].items()]
    return (f"Evaluation wall time of this run: {seconds:.0f} s (cached requests are not scored again). "
            f"Scoring time of each row's requests when first scored: {', '.join(costs)}.")


def write_section(cfg, config_path, tuning, held_out, walls, sections) -> None:
    head = [
        f"# {cfg['name']}: {cfg['model']}",
        f"Command: `python scripts/experiment.py {config_path}` (config: [{config_path}](../../{config_path})).",
        f"Tuned on {len(tuning)} tasks: {', '.join(t.name for t in tuning)}.",
        f"Evaluated on {len(held_out)} unseen tasks: {', '.join(t.name for t in held_out)}.",
        f"Recipe `{cfg['recipe']}` with {' '.join(cfg.get('recipe_overrides', [])) or 'no overrides'}.",
        "Rows (mixture settings and recipe overrides of each): "
        + "; ".join(f"{name} `{yaml.safe_dump(options or {}, default_flow_style=True).strip()}`"
                    for name, options in cfg["rows"].items()) + ".",
        "Training time per row: "
        + ", ".join(f"{name} {seconds / 60:.1f} min" for name, seconds in walls.items()) + ".",
    ]
    path = DOCS / "results" / f"{cfg['name']}.md"
    with atomic_write(path) as f:
        f.write("\n\n".join(head + sections) + "\n")
    gather()
    print(f"wrote {path} and {DOCS / 'results.md'}", file=sys.stderr)


def gather() -> None:
    """docs/results.md: the intro of docs/results/README.md, then every experiment's section."""
    parts = [(DOCS / "results" / "README.md").read_text(encoding="utf-8")]
    for section in sorted((DOCS / "results").glob("*.md"), key=lambda p: (p.name != "headline.md", p.name)):
        if section.name != "README.md":
            text = section.read_text(encoding="utf-8").replace("](", "](results/").replace("](results/../../", "](../")
            parts.append(text.replace("\n# ", "\n## ").replace("# ", "## ", 1))
    with atomic_write(DOCS / "results.md") as f:
        f.write("\n\n".join(parts))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", nargs="?", help="experiment YAML (scripts/experiments/*.yaml)")
    parser.add_argument("--gather", action="store_true", help="only rebuild docs/results.md from docs/results/*.md")
    args = parser.parse_args()
    if args.gather:
        gather()
    elif args.config:
        run(args.config)
    else:
        parser.error("give an experiment config, or --gather")
