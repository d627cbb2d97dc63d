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
import tempfile
import time
from dataclasses import dataclass, fields, replace
from pathlib import Path

import torch
import yaml

from symtune.config import check_keys, did_you_mean, from_mapping, knob
from symtune.demo import split_tasks
from symtune.errors import SymtuneError
from symtune.evaluate import evaluate, model_results, new_results
from symtune.io import atomic_write, read_jsonl, read_yaml
from symtune.mixture import MixtureConfig, build_mixture, check_config, is_built
from symtune.models import load_tokenizer, resolve_model
from symtune.report import markdown, outcome, report, sample_size, span, tuning_runs, verdict_line, write_results
from symtune.results import (
    RESULTS,
    add_model,
    check_groups,
    comparisons,
    conditions,
    curves,
    model_run,
    models,
    paired_difference,
    pools,
    rename_models,
    runs,
)
from symtune.stats import paired_cells, paired_interval
from symtune.suites import SUITES, EvalConfig, build_items, eval_config
from symtune.tasks.registry import load_task_list
from symtune.tasks.task import class_pairs, family
from symtune.train.loop import LOG, ensure_tuned
from symtune.train.recipe import load_recipe

DOCS = Path(__file__).resolve().parents[1] / "docs"
MFUS = (1.0, 0.4, 0.2)  # --plan's: 100% is the bound no run beats


@dataclass
class Experiment:
    """An experiment YAML (scripts/experiments/*.yaml), every key checked before any work."""

    name: str = knob(help="the run folder runs/NAME and the section docs/results/NAME.md")
    model: str = knob(help="the base model every row tunes")
    data: str | None = knob(help="a folder of task folders (null: built-in generated tasks)")
    eval_tasks: list[str] | None = knob(help="the held-out tasks in data (null: its dev-eval tasks)")
    recipe: str = knob(help="shipped recipe name or YAML file")
    rows: dict = knob(help="{row name: its options}: MixtureConfig fields, budgets, recipe_overrides")
    suites: dict = knob(help="{suite: its settings}: EvalConfig fields (seeds: how many), rows")
    recipe_overrides: list[str] = knob([], "recipe KEY=VALUE overrides of every row")
    mixture: dict = knob({}, "MixtureConfig fields of every row's mixture")
    bigbench: list[str] = knob([], "BIG-bench task specs the algorithmic suite evaluates")
    pools: dict = knob({}, "{name: [rows]}: one row tuned with several seeds, compared as one: the mean of its "
                           "runs' paired differences, their spread in the interval")
    compare: list[list[str]] = knob([], "pairs of rows or pools whose paired differences each suite's verdicts give")
    target_half_width: float = knob(3.0, "a null is resolved when its interval's half-width is at most this "
                                         "(accuracy points)", above=0.0)
    cache: str | None = knob(None, "request cache folder (unset: runs/NAME/cache; another config's to share it)")
    folds: dict = knob({}, "{fold: [tasks]}: cross-fitting, more evaluation tasks than one run can hold out. The "
                           "`cross_fit` rows are tuned again without each fold's tasks and score them")
    cross_fit: list[str] = knob([], "the rows tuned again per fold; each row's last budget answers on eval_tasks")


@dataclass
class RowOptions:
    """A row's options besides its MixtureConfig fields."""

    budgets: list[int] = knob([], "score snapshots of one run at these steps (the last: max_steps)")
    recipe_overrides: list[str] = knob([], "recipe KEY=VALUE overrides after the config's")


MAX_PAIRS = 15  # class-pair tasks per dataset: dbpedia's 91 would outweigh the rest, at 6x the scoring
MIXTURE_KEYS = tuple(f.name for f in fields(MixtureConfig))
SUITE_KEYS = tuple(f.name for f in fields(EvalConfig) if f.name != "suite") + ("rows",)


def load_experiment(path) -> Experiment:
    """The experiment config at `path`, each row's options and each suite's settings checked."""
    where = str(path)
    exp = from_mapping(Experiment, read_yaml(path) or {}, where, "experiment")
    from_mapping(MixtureConfig, exp.mixture, f"{where}, mixture", "mixture")
    scored = []
    for name, options in exp.rows.items():
        scored += row_models(name, row_recipe(exp, name, options or {}, where)[1])
    check_groups(exp.pools, exp.compare, scored, "the rows' models", where)
    check_folds(exp, where)
    for suite, settings in exp.suites.items():
        if suite not in SUITES:
            raise SymtuneError(f"unknown suite {suite!r} in {where}{did_you_mean(suite, SUITES)}")
        settings = dict(settings or {})
        check_keys(settings, SUITE_KEYS, "suite setting", f"{where}, suite {suite}")
        unknown = [row for row in settings.pop("rows", None) or [] if row not in exp.rows]
        if unknown:
            raise SymtuneError(f"{where}: suite {suite!r} names rows the config does not have: {', '.join(unknown)}")
        eval_config({"suite": suite, **settings}, f"{where}, suite {suite}", "suite setting")
    return exp


def check_folds(exp: Experiment, where: str) -> None:
    """Folds need cross_fit rows and the reverse; the rows exist and every fold's tasks are its own."""
    if bool(exp.folds) != bool(exp.cross_fit):
        raise SymtuneError(f"{where}: folds and cross_fit go together (the rows tuned again per fold)")
    unknown = [row for row in exp.cross_fit if row not in exp.rows]
    if unknown:
        raise SymtuneError(f"{where}: cross_fit names rows the config does not have: {', '.join(unknown)}")
    if exp.folds and not exp.eval_tasks:
        raise SymtuneError(f"{where}: with folds, name eval_tasks (the first fold's tasks)")
    seen = {task: "eval_tasks" for task in exp.eval_tasks or []}
    for fold, tasks in exp.folds.items():
        if not (isinstance(tasks, list) and tasks and all(isinstance(t, str) for t in tasks)):
            raise SymtuneError(f"{where}: fold {fold!r} must be a list of task names")
        taken = [fold_row(row, fold) for row in exp.cross_fit if fold_row(row, fold) in exp.rows]
        if taken:
            raise SymtuneError(f"{where}: fold {fold!r} would tune rows the config already has: {', '.join(taken)}")
        for task in tasks:
            if task in seen:
                raise SymtuneError(f"{where}: task {task!r} is in both {seen[task]} and fold {fold!r}; "
                                   "each task is evaluated in one fold")
            seen[task] = f"fold {fold!r}"


def split_folds(exp: Experiment):
    """(tuning tasks, held-out tasks) of the config's rows, and {fold: (its tuning tasks, its tasks)}."""
    tuning, held_out = split_tasks(exp.data, exp.eval_tasks, seed=0)
    return tuning, held_out, {fold: split_tasks(exp.data, tasks, seed=0) for fold, tasks in exp.folds.items()}


def fold_row(row: str, fold: str) -> str:
    return f"{row} ({fold})"


def tuning_jobs(exp: Experiment, tuning, held_out, splits) -> list[tuple]:
    """(fold or None, row, run name, options, tuning tasks, held-out tasks) of every run the config
    tunes: its rows, then each cross_fit row again per fold, as one model (no budgets)."""
    jobs = [(None, name, name, options or {}, tuning, held_out) for name, options in exp.rows.items()]
    for fold, (fold_tuning, fold_held) in splits.items():
        jobs += [(fold, row, fold_row(row, fold), {k: v for k, v in (exp.rows[row] or {}).items() if k != "budgets"},
                  fold_tuning, fold_held) for row in exp.cross_fit]
    return jobs


def row_recipe(exp: Experiment, name: str, options: dict, where: str = "the config"):
    """The row's recipe, budgets and checked mixture options: the row's options override the config's
    mixture settings, and its recipe_overrides follow the config's."""
    where = f"{where}, row {name!r}"
    check_keys(options, MIXTURE_KEYS + tuple(f.name for f in fields(RowOptions)), "row", where)
    extra = from_mapping(RowOptions, {k: v for k, v in options.items() if k not in MIXTURE_KEYS}, where, "row")
    mixture = {**exp.mixture, **{k: v for k, v in options.items() if k in MIXTURE_KEYS}}
    check_config(from_mapping(MixtureConfig, mixture, where, "row"))
    budgets = sorted(extra.budgets)
    overrides = exp.recipe_overrides + extra.recipe_overrides
    if budgets:
        overrides += [f"max_steps={budgets[-1]}", f"snapshot_steps={budgets[:-1]}"]
    return load_recipe(exp.recipe, overrides), budgets, mixture


def tune_row(exp: Experiment, name: str, options: dict, tuning, held_out, out: Path) -> tuple[dict, float]:
    """The row's tuned models ({name: folder}; with `budgets`, {"name @steps": folder} for each,
    snapshots of one run) and its training seconds (from the step log, so resumed runs count)."""
    recipe, budgets, mixture = row_recipe(exp, name, options)
    folder = out / "rows" / name.replace(" ", "_").replace("%", "pct").replace("+", "plus")
    if not is_built(folder / "mixture"):
        mix = replace(MixtureConfig(n=recipe.max_steps * recipe.batch_size), **mixture)
        build_mixture(tuning, folder / "mixture", mix, eval_tasks=[t.name for t in held_out])
    model = ensure_tuned(exp.model, folder / "mixture", folder / "model", recipe)
    seconds = sum(row["seconds"] for row in read_jsonl(model / LOG))
    folders = [model / "snapshots" / f"step-{b:06d}" if b < budgets[-1] else model for b in budgets] or [model]
    return dict(zip(row_models(name, budgets), folders)), seconds


def row_models(name: str, budgets: list[int]) -> list[str]:
    """The names a row's models go by: the row's, or "name @steps" for each of its budgets."""
    return [f"{name} @{b}" for b in budgets] or [name]


def suite_tasks(exp: Experiment, suite: str, held_out):
    if suite == "algorithmic":
        return load_task_list(exp.bigbench) if exp.bigbench else []
    if suite == "flipped":
        return [t for t in held_out if len(t.labels) == 2]
    if suite == "headline":  # every pair of classes: flipped labels need two, and more tasks narrow the interval
        return [pair for t in held_out for pair in class_pairs(t, most=MAX_PAIRS)]
    return held_out


def row_of(model: str) -> str:
    """The row a model belongs to: a budget's model ("row @steps") is its row's."""
    return model.split(" @")[0]


def suite_rows(suite: str, settings: dict, models: dict) -> tuple[dict, dict]:
    """The suite's eval settings and the models it scores: base and every row, or base and the
    rows its `rows:` list names (a slow suite may leave some out)."""
    names = settings.pop("rows", None)
    if names is None:
        return settings, models
    unknown = [name for name in names if name not in models and name not in map(row_of, models)]
    if unknown:
        raise SymtuneError(f"suite {suite!r} names rows the config does not have: {', '.join(unknown)}")
    return settings, {name: m for name, m in models.items() if name == "base" or name in names or row_of(name) in names}


def run(config_path: str) -> None:
    exp = load_experiment(config_path)  # every key checked before any work
    out = Path("runs") / exp.name
    tuning, held_out, splits = split_folds(exp)  # every fold's tasks found before any work
    models, walls = {"base": exp.model}, {}
    fold_models = {fold: {} for fold in splits}  # {fold: {row: its model tuned without the fold's tasks}}
    for fold, row, name, options, row_tuning, row_held in tuning_jobs(exp, tuning, held_out, splits):
        tuned, walls[name] = tune_row(exp, name, options, row_tuning, row_held, out)
        if fold is None:
            models.update(tuned)
        else:
            fold_models[fold][row] = tuned[name]
    sections, leads, cache = [], [], exp.cache or out / "cache"  # a config may share another's request cache
    for suite, settings in exp.suites.items():
        tasks = suite_tasks(exp, suite, held_out)
        if not tasks:
            continue
        started = time.perf_counter()
        settings, suite_models = suite_rows(suite, dict(settings or {}), models)
        ecfg = eval_config({"suite": suite, **settings}, f"{config_path}, suite {suite}", "suite setting")
        results = evaluate([str(m) for m in suite_models.values()], tasks, ecfg, cache_dir=cache, progress=True)
        rename_models(results, {row: str(m) for row, m in suite_models.items()})  # rows by name
        results["pools"] = {name: rows for name, rows in exp.pools.items() if set(rows) <= set(suite_models)}
        scored = set(suite_models) | set(results["pools"])
        results["comparisons"] = [pair for pair in exp.compare if set(pair) <= scored]
        results["curves"] = budget_curves(suite_models)
        write_results(results, out / suite)
        metric = "acc_gen" if suite == "algorithmic" else "acc"  # BIG-bench: exact match, the paper's metric
        plots = report([str(out / suite / RESULTS)], DOCS / "results" / exp.name, metric)
        images = "\n".join(f"![{suite}]({exp.name}/{p.name})" for p in plots)
        verdict = verdicts(results, exp.target_half_width)
        sections.append(f"{verdict}{markdown(results)}\n\n{images}\n\n"
                        f"{wall_times(results, time.perf_counter() - started)}")
        widest, table = results, f"the {suite} suite"
        if crosses(exp, suite, suite_models):
            started = time.perf_counter()
            crossed = cross_fit(exp, suite, ecfg, results, tasks, splits, fold_models, cache)
            write_results(crossed, out / f"{suite}-cross-fit")
            plots = report([str(out / f"{suite}-cross-fit" / RESULTS)], DOCS / "results" / exp.name / "cross-fit")
            images = "\n".join(f"![{suite}, cross-fit]({exp.name}/cross-fit/{p.name})" for p in plots)
            parts = {"eval_tasks": held_out, **{fold: fold_held for fold, (_, fold_held) in splits.items()}}
            if len(splits) > 1:  # the datasets no run of the main table saw: a replication on new data alone
                parts["the folds together"] = [t for _, fold_held in splits.values() for t in fold_held]
            sections.append(f"{cross_fit_intro(exp, held_out, splits)}\n\n{verdicts(crossed, exp.target_half_width)}"
                            f"{fold_by_fold(crossed, parts)}{markdown(crossed)}\n\n{images}\n\n"
                            f"{wall_times(crossed, time.perf_counter() - started)}")
            widest, table = crossed, f"the {suite} suite, cross-fit"
        leads.append(in_short(widest, exp.target_half_width, table))
    write_section(exp, config_path, tuning, held_out, walls, [lead for lead in leads if lead], sections)


def crosses(exp: Experiment, suite: str, suite_models: dict) -> bool:
    """Whether the suite is cross-fit: the config has folds and the suite scores every cross_fit row
    (the algorithmic suite's BIG-bench tasks belong to no fold)."""
    return bool(exp.folds) and suite != "algorithmic" and set(exp.cross_fit) <= set(map(row_of, suite_models))


def cross_fit(exp: Experiment, suite: str, ecfg: EvalConfig, results: dict, tasks, splits, fold_models,
              cache) -> dict:
    """The suite over every fold's tasks: base, and each cross_fit row as "row (cross-fit)", whose answers
    on the suite's `tasks` (from eval_tasks) are its last budget's in `results`, and on each fold's tasks
    those of the row tuned without them. No model answers on a task it was tuned on, and every answer is
    paired with base's and the other rows' on the same prompt. A pool of `results` whose every run is
    cross-fit is pooled here too, as "pool (cross-fit)"."""
    last = {row: row_models(row, row_recipe(exp, row, exp.rows[row] or {})[1])[-1] for row in exp.cross_fit}
    names = {"base": "base", **{f"{row} (cross-fit)": model for row, model in last.items()}}
    records = {name: list(results["models"][model]["predictions"]) for name, model in names.items()}
    seconds = {name: model_run(results, model)["scoring_seconds"] for name, model in names.items()}
    every = list(tasks)  # the suite's own list stays as it is
    for fold, (_, fold_held) in splits.items():
        fold_tasks = suite_tasks(exp, suite, fold_held)
        specs = [exp.model] + [str(fold_models[fold][row]) for row in exp.cross_fit]
        part = evaluate(specs, fold_tasks, ecfg, cache_dir=cache, progress=True)
        for name, spec in zip(names, specs):
            records[name] += part["models"][spec]["predictions"]
            seconds[name] += model_run(part, spec)["scoring_seconds"]
        every += fold_tasks
    conditions, items = build_items(every, ecfg)
    crossed = new_results(ecfg, conditions, items, every, [t.source for t in every])
    for name, answers in records.items():
        add_model(crossed, name, {"scoring_seconds": seconds[name]}, **model_results(answers, items, conditions))
    cross = {model: name for name, model in names.items()}
    # a pool only once every one of its runs is cross-fit: fewer runs would make it another pool
    pooled = {pool: members for pool, members in pools(results).items() if set(members) <= cross.keys()}
    crossed["pools"] = {f"{pool} (cross-fit)": [cross[m] for m in members] for pool, members in pooled.items()}
    cross.update({pool: f"{pool} (cross-fit)" for pool in pooled})
    crossed["comparisons"] = [[cross[a], cross[b]] for a, b in exp.compare if a in cross and b in cross]
    return crossed


def fold_by_fold(crossed: dict, parts: dict) -> str:
    """Each comparison on each part's datasets alone ({part: its tasks}: each fold's, and the folds'
    together): how much of the cross-fit difference rests on one fold, whose rows are one tuning run."""
    names = {part: {t.name for t in tasks} for part, tasks in parts.items()}
    lines = []
    for model, reference in comparisons(crossed):
        for cond in conditions(crossed):
            cells = paired_cells(runs(crossed, model), runs(crossed, reference), cond["name"], "acc")
            found = []
            for part, datasets in names.items():
                iv = paired_interval({task: c for task, c in cells.items() if family(task) in datasets})
                if iv is not None:
                    found.append(f"{part} {span(iv)} ({iv['n_families']} datasets)")
            lines.append(f"- {model} − {reference}, {cond['label']}: {'; '.join(found)}.")
    return ("Fold by fold (acc, points, 95% interval; a row is one tuning run per fold):\n\n" + "\n".join(lines)
            + "\n\n") if lines else ""


def cross_fit_intro(exp: Experiment, held_out, splits) -> str:
    folds = "; ".join(f"{fold}: {', '.join(t.name for t in fold_held)}" for fold, (_, fold_held) in splits.items())
    return (f"Cross-fit over {len(held_out) + sum(len(h) for _, h in splits.values())} datasets. "
            f"{', '.join(exp.cross_fit)} answer on the {len(held_out)} tasks above as tuned there, and on each "
            f"fold's tasks as tuned again without them ({folds}); base answers on all. A row is one tuning run per "
            "fold, so these intervals draw datasets, tasks and prompts but not runs; where several seeds' rows are "
            "cross-fit, each seed's comparison stands on its own line, and a pool above is pooled here once all of "
            "its runs are cross-fit (its interval then draws the runs too).")


def plan(config_path: str, peak_tflops: float | None, sample: int = 512) -> None:
    """What a config costs before a GPU lease is spent on it: each row's training tokens (from a sample
    of its own mixture) at 6 FLOPs per parameter and token, and each suite's scoring tokens (its
    prompts and candidate labels, every model it scores) at 2; with the device's measured bf16 peak,
    the seconds they take at several MFUs. Nothing is tuned or scored."""
    exp = load_experiment(config_path)
    tuning, held_out, splits = split_folds(exp)
    tokenizer, parameters = load_tokenizer(exp.model), parameter_count(exp.model)
    count = lambda texts: sum(map(len, tokenizer(texts, add_special_tokens=False).input_ids)) if texts else 0  # noqa: E731
    print(f"{exp.name}: {exp.model}, {parameters / 1e6:.1f}M parameters; tokens per prompt from {sample} prompts "
          "of each row's mixture")
    trained, models = 0, {"base": exp.model}
    for fold, _, name, options, row_tuning, row_held in tuning_jobs(exp, tuning, held_out, splits):
        recipe, budgets, mixture = row_recipe(exp, name, options)
        if fold is None:
            models.update({m: m for m in row_models(name, budgets)})
        with tempfile.TemporaryDirectory() as tmp:
            mix = replace(MixtureConfig(n=sample), **mixture)
            manifest = build_mixture(row_tuning, tmp, mix, [t.name for t in row_held], tokenizer)
        per_prompt = manifest["total_tokens"] / sample
        tokens = recipe.max_steps * recipe.batch_size * per_prompt
        trained += tokens
        print(f"  tuning {name}: {recipe.max_steps} steps x {recipe.batch_size} prompts x {per_prompt:.0f} tokens = "
              f"{tokens:,.0f} tokens")
    scored = 0
    for suite, settings in exp.suites.items():
        tasks = suite_tasks(exp, suite, held_out)
        if not tasks:
            continue
        settings, suite_models = suite_rows(suite, dict(settings or {}), models)
        ecfg = eval_config({"suite": suite, **settings}, config_path, "suite setting")
        parts = [(suite, tasks, len(suite_models))]
        if crosses(exp, suite, suite_models):
            parts += [(f"{suite}, {fold}", suite_tasks(exp, suite, fold_held), 1 + len(exp.cross_fit))
                      for fold, (_, fold_held) in splits.items()]
        for part, part_tasks, n_models in parts:
            _, items = build_items(part_tasks, ecfg)
            # a generation item's target stands in for the tokens it generates
            tokens = count([i.text for i in items]) + count([c for i in items for c in i.candidates or [i.target]])
            scored += n_models * tokens
            print(f"  scoring {part}: {n_models} models x {len(items):,} prompts x {tokens / len(items):.0f} "
                  f"tokens = {n_models * tokens:,} tokens")
    flops = parameters * (6 * trained + 2 * scored)
    print(f"all: {trained:,.0f} tokens tuned, {scored:,} scored, {flops:.2e} FLOPs", end="")
    if peak_tflops:
        print(": " + ", ".join(f"{flops / (mfu * peak_tflops * 1e12):.0f} s at {mfu:.0%} MFU" for mfu in MFUS)
              + f" of {peak_tflops:g} TFLOP/s", end="")
    print()


def parameter_count(model: str) -> int:
    from transformers import AutoConfig, AutoModelForCausalLM

    with torch.device("meta"):  # shapes only: no weights are read or allocated
        return AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(resolve_model(model))).num_parameters()


def budget_curves(models: dict) -> dict:
    """{row: [[steps, model], ...]} of the rows tuned with budgets."""
    curves = {}
    for name in models:
        row, at, steps = name.partition(" @")
        if at:
            curves.setdefault(row, []).append([int(steps), name])
    return curves


def verdicts(results: dict, target: float) -> str:
    """A line per headline difference (against base: each row's last budget, or the pool that holds
    it; then the config's comparisons) per condition, in accuracy: resolved effect, tight null, or
    unresolved."""
    ends = {points[-1][1] for points in curves(results).values()}
    on_curve = {name for points in curves(results).values() for _, name in points}
    pooled = {m for members in pools(results).values() for m in members}
    base, *rows = models(results)
    pairs = ([(m, base) for m in rows if (m in ends or m not in on_curve) and m not in pooled]
             + [(pool, base) for pool in pools(results)] + comparisons(results))
    lines, found = [], []
    for model, reference in pairs:
        for cond in conditions(results):
            iv = paired_difference(results, model, reference, cond["name"], "acc")
            if iv is None:
                continue
            lines.append(f"- {verdict_line(model, reference, cond['label'], iv, target)}{seed_by_seed(iv)}")
            found.append(outcome(iv, target))
    if not lines:
        return ""
    counts = {kind: found.count(kind) for kind in ("an effect", "a null")}
    unresolved = len(lines) - sum(counts.values())
    summary = (f"Of these {len(lines)} paired differences, {counts['an effect']} show an effect (the interval "
               f"excludes 0), {counts['a null']} a null within ±{target:g} points, and {unresolved} are not resolved "
               "at this size.")
    return (f"What the paired differences establish (acc, 95% interval). {summary}\n\n" + "\n".join(lines)
            + "\n\n")


def in_short(results: dict, target: float, table: str) -> str:
    """The section's opening sentences: what its widest comparison establishes, cell by cell, and where
    each of its two sides stands against base. The widest is the comparison that averages the most
    tuning runs (the config's first among equals); `table` says which table it comes from."""
    conds, (base, *_) = conditions(results), models(results)

    def cells(pair):
        return [(c["label"], iv) for c in conds if (iv := paired_difference(results, *pair, c["name"], "acc"))]

    found = {tuple(pair): found_cells for pair in comparisons(results) if (found_cells := cells(pair))}
    if not found:
        return ""
    lead = max(found, key=lambda pair: tuning_runs(found[pair][0][1]))
    sides = [(side, base) for side in lead if side != base]
    return (f"In short ({table}; acc, points, 95% interval, paired on identical prompts): "
            + " ".join(outcomes(pair, found.get(pair) or cells(pair), target) for pair in [lead, *sides]))


def outcomes(pair: tuple, cells: list, target: float) -> str:
    """One sentence: a difference's cells grouped by what they establish, with their size."""
    sizes = {sample_size(iv) for _, iv in cells}
    size = f" ({sizes.pop()})" if len(sizes) == 1 else ""  # the conditions of a suite share their prompts
    groups = {}
    for label, iv in cells:
        kind = outcome(iv, target)
        kind = f"a null within ±{target:g} points" if kind == "a null" else kind
        groups.setdefault(kind, []).append(f"{label} {span(iv)}" + ("" if size else f" n={iv['n']}"))
    said = "; ".join(f"{kind} in {', '.join(found)}" for kind, found in groups.items())
    return f"{pair[0]} − {pair[1]}{size}: {said}."


def seed_by_seed(interval: dict) -> str:
    """For a pool's line: each tuning run's own difference and how many share the pooled sign; ""
    for a single run's."""
    means, pooled = interval["runs"], interval["mean"]
    if len(means) < 2:
        return ""
    agree = sum((mean > 0) == (pooled > 0) and mean != 0 for mean in means)
    return (f" Seed by seed: {', '.join(f'{100 * m:+.1f}' for m in means)} ({agree} of {len(means)} share the pooled "
            "sign).")


def wall_times(results: dict, seconds: float) -> str:
    """This run's evaluation time, and what each row's requests cost when first scored (a re-run
    reads them from the cache)."""
    costs = [f"{row} {model_run(results, row)['scoring_seconds']:.0f} s" for row in models(results)]
    return (f"Evaluation wall time of this run: {seconds:.0f} s (cached requests are not scored again). "
            f"Scoring time of each row's requests when first scored: {', '.join(costs)}.")


def write_section(exp, config_path, tuning, held_out, walls, leads, sections) -> None:
    head = [
        f"# {exp.name}: {exp.model}",
        f"Command: `python scripts/experiment.py {config_path}` (config: [{config_path}](../../{config_path})).",
        *leads,
        f"Tuned on {len(tuning)} tasks: {', '.join(t.name for t in tuning)}.",
        f"Evaluated on {len(held_out)} unseen tasks: {', '.join(t.name for t in held_out)}.",
        f"Recipe `{exp.recipe}` with {' '.join(exp.recipe_overrides) or 'no overrides'}.",
        "Rows (mixture settings and recipe overrides of each): "
        + "; ".join(f"{name} `{yaml.safe_dump(options or {}, default_flow_style=True).strip()}`"
                    for name, options in exp.rows.items()) + ".",
        "Training time per row: "
        + ", ".join(f"{name} {seconds / 60:.1f} min" for name, seconds in walls.items()) + ".",
    ]
    path = DOCS / "results" / f"{exp.name}.md"
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
    parser.add_argument("--plan", action="store_true", help="only print the tokens tuned and scored, and their FLOPs")
    parser.add_argument("--peak-tflops", type=float, help="with --plan: the device's measured bf16 peak, for "
                                                          "the seconds the plan takes at several MFUs")
    args = parser.parse_args()
    if args.peak_tflops is not None and not (args.plan and args.peak_tflops > 0):
        parser.error("--peak-tflops goes with --plan and is above 0")
    if args.gather:
        gather()
    elif args.plan and args.config:
        plan(args.config, args.peak_tflops)
    elif args.config:
        run(args.config)
    else:
        parser.error("give an experiment config, or --gather")
