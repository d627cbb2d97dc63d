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
from symtune.evaluate import EvalConfig, evaluate
from symtune.io import atomic_write, read_jsonl
from symtune.mixture import MixtureConfig, build_mixture
from symtune.report import markdown, report, write_results
from symtune.tasks.registry import load_task_list
from symtune.train.loop import LOG, ensure_tuned
from symtune.train.recipe import load_recipe

DOCS = Path(__file__).resolve().parents[1] / "docs"


def tune_row(cfg: dict, name: str, options: dict, tuning, held_out, out: Path) -> tuple[Path, float]:
    """The row's tuned model and its training seconds (from the step log, so resumed runs count).
    The row's options override the config's mixture settings, and its recipe_overrides follow the config's."""
    options = dict(options)
    recipe = load_recipe(cfg["recipe"], list(cfg.get("recipe_overrides", [])) + list(options.pop("recipe_overrides", [])))
    folder = out / "rows" / name.replace(" ", "_").replace("%", "pct").replace("+", "plus")
    if not (folder / "mixture" / "manifest.json").exists():
        try:
            mix = replace(MixtureConfig(n=recipe.max_steps * recipe.batch_size), **{**cfg.get("mixture", {}), **options})
        except TypeError as e:
            raise SymtuneError(f"row {name!r}: {e}") from None
        build_mixture(tuning, folder / "mixture", mix, eval_tasks=[t.name for t in held_out])
    model = ensure_tuned(cfg["model"], folder / "mixture", folder / "model", recipe)
    return model, sum(row["seconds"] for row in read_jsonl(model / LOG))


def suite_tasks(cfg: dict, suite: str, held_out):
    if suite == "algorithmic":
        return load_task_list(cfg["bigbench"]) if cfg.get("bigbench") else []
    if suite == "flipped":
        return [t for t in held_out if len(t.labels) == 2]
    return held_out


def suite_rows(suite: str, settings: dict, models: dict) -> tuple[dict, dict]:
    """The suite's eval settings and the models it scores: base and every row, or base and the
    rows its `rows:` list names (a slow suite may leave some out)."""
    names = settings.pop("rows", None)
    if names is None:
        return settings, models
    unknown = [name for name in names if name not in models]
    if unknown:
        raise SymtuneError(f"suite {suite!r} names rows the config does not have: {', '.join(unknown)}")
    return settings, {name: m for name, m in models.items() if name == "base" or name in names}


def run(config_path: str) -> None:
    cfg = yaml.safe_load(Path(config_path).read_text())
    out = Path("runs") / cfg["name"]
    tuning, held_out = split_tasks(cfg["data"], cfg["eval_tasks"], seed=0)
    models, walls = {"base": cfg["model"]}, {}
    for name, options in cfg["rows"].items():
        models[name], walls[name] = tune_row(cfg, name, options or {}, tuning, held_out, out)
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
        write_results(results, out / suite)
        metric = "acc_gen" if suite == "algorithmic" else "acc"  # BIG-bench: exact match, the paper's metric
        plots = report([str(out / suite / "results.json")], DOCS / "results" / cfg["name"], metric)
        images = "\n".join(f"![{suite}]({cfg['name']}/{p.name})" for p in plots)
        sections.append(f"{markdown(results)}\n\n{images}\n\n{wall_times(results, time.perf_counter() - started)}")
    write_section(cfg, config_path, tuning, held_out, walls, sections)


def wall_times(results: dict, seconds: float) -> str:
    """This run's evaluation time, and what each row's requests cost when first scored (a re-run
    reads them from the cache)."""
    costs = [f"{row} {m['scoring_seconds']:.0f} s" if m.get("scoring_seconds") is not None else f"{row} not kept"
             for row, m in results["models"].items()]
    why = " (not kept: scored before the cache kept times)" if any(c.endswith("not kept") for c in costs) else ""
    return (f"Evaluation wall time of this run: {seconds:.0f} s (cached requests are not scored again). "
            f"Scoring time of each row's requests when first scored: {', '.join(costs)}{why}.")


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
    for section in sorted((DOCS / "results").glob("*.md")):
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
