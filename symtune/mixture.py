"""Tuning mixtures: prompt/completion JSONL built from classification tasks (docs/method.md, Mixtures).

This module owns the mixture folder's format: ROWS (train.jsonl, one row per prompt: at least
prompt and completion, as build_rows writes them) and MANIFEST (manifest.json, make_manifest's
fields). write_mixture writes the pair, read_mixture reads and checks it.

Queries are pooled over tasks (each capped at `cap` train examples, the paper's 25k) and drawn
uniformly from the pool, so tasks weigh by their capped size, as in the paper. Every row is
built from its own seeded random stream, so a seed gives byte-identical output.
"""

import contextlib
import fcntl
import json
import os
import random
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from symtune import __version__
from symtune.config import knob
from symtune.errors import SymtuneError
from symtune.io import atomic_write, read_json, read_jsonl, write_json
from symtune.prompts import PromptTooLong, Setting, build_prompt
from symtune.symbols import tuning_pool
from symtune.tasks.task import Task
from symtune.validate import Each, check_schema

KINDS = ("symbol", "natural", "random")
ROWS = "train.jsonl"
MANIFEST = "manifest.json"
MANIFEST_SCHEMA = {  # every field make_manifest writes (a task of build_mixture's has more)
    "symtune_version": str, "seed": int, "n": int, "options": dict,
    "tasks": Each({"count": int, "source": str}), "kinds": Each(int), "eval_tasks": [str],
    "tokenizer": (str, type(None)), "total_tokens": (int, type(None)),
}


@dataclass
class MixtureConfig:
    n: int = knob(10_000, "number of prompts", minimum=1)
    seed: int = knob(0, "seed of the query draw, exemplars, symbols and formats", minimum=0)
    cap: int = knob(25_000, "query examples per task (paper: 25k)", minimum=1)
    k_min: int = knob(2, "fewest exemplars per class, drawn per prompt (paper: 2)", minimum=1)
    k_max: int = knob(10, "most exemplars per class (paper: 10)", minimum=1)
    symbol_fraction: float = knob(1.0, "share of symbol prompts; the rest use natural labels (1.0: the paper; 0.0: "
                                       "the natural-label control)", minimum=0.0, maximum=1.0)
    random_labels: bool = knob(False, "the random-label control: inconsistent labels within a prompt")
    avoid_natural: bool = knob(True, "reject symbols equal to a natural label name of the task")
    max_tokens: int | None = knob(None, "token budget per prompt (prompt + completion); exemplars are dropped to fit",
                                  minimum=1)
    fmt: str | None = knob(None, "one fixed prompt format (unset: a random one per prompt)")


def check_tuning_tasks(tasks: list[Task], eval_tasks: list[str] = ()) -> None:
    """Refuse evaluation-only tasks, tasks evaluated in the same run, and generation tasks."""
    if not tasks:
        raise SymtuneError("no tuning tasks given")
    held_out = set(eval_tasks)
    for task in tasks:
        if task.eval_only:
            raise SymtuneError(f"task {task.name} is evaluation-only (BIG-bench canary); it must never be tuned on")
        if task.meta.get("role") == "eval":
            raise SymtuneError(f"task {task.name} is a held-out evaluation dataset (the paper's, or "
                               "../shared/data's dev-eval); it must not be tuned on")
        if task.name in held_out:
            raise SymtuneError(f"task {task.name} is also an evaluation task of this run; "
                               "tune and evaluate on disjoint tasks")
        if task.is_generation:
            raise SymtuneError(f"task {task.name} is a generation task; symbol tuning needs classification tasks")
        if not task.train:
            raise SymtuneError(f"task {task.name} has no train examples (is its train file empty?); "
                               "tuning draws its queries and exemplars from them")
        task.validate()


def query_pool(tasks: list[Task], cfg: MixtureConfig) -> list[tuple[int, int]]:
    """(task index, train index) for up to `cap` seeded-random train examples of each task."""
    pool = []
    for t, task in enumerate(tasks):
        indices = list(range(len(task.train)))
        random.Random(f"{cfg.seed}/{task.name}/cap").shuffle(indices)
        pool += [(t, i) for i in indices[: cfg.cap]]
    return pool


def row_kind(rng: random.Random, cfg: MixtureConfig) -> str:
    if rng.random() >= cfg.symbol_fraction:
        return "natural"
    return "random" if cfg.random_labels else "symbol"


def query_stream(pool: list, n: int, seed: int):
    """(task, example) pairs drawn without replacement until the pool runs out, then again."""
    if not pool:  # sampling from nothing would yield nothing, forever
        raise SymtuneError("no query examples to draw from: every task's train split is empty")
    order = random.Random(f"{seed}/order")
    while True:
        yield from order.sample(pool, min(len(pool), n))


def build_rows(tasks: list[Task], cfg: MixtureConfig, count_tokens=None, too_long: Counter | None = None):
    """Yield the mixture's rows, one seeded random stream per row. Queries whose prompt cannot fit
    max_tokens even with one exemplar per class are skipped and counted per task in `too_long`."""
    pool = query_pool(tasks, cfg)
    queries = query_stream(pool, cfg.n, cfg.seed)
    settings = {"symbol": Setting(), "natural": Setting(symbols=False), "random": Setting(random_labels=True)}
    too_long = Counter() if too_long is None else too_long
    for i in range(cfg.n):
        for attempt in range(len(pool) + 1):
            t, j = next(queries)
            task, rng = tasks[t], random.Random(f"{cfg.seed}/row/{i}" + (f"/{attempt}" if attempt else ""))
            kind = row_kind(rng, cfg)
            try:
                prompt = build_prompt(
                    task, task.train[j], rng, k=(cfg.k_min, cfg.k_max), setting=settings[kind], fmt=cfg.fmt,
                    pool=tuning_pool(), avoid_natural=cfg.avoid_natural, max_tokens=cfg.max_tokens,
                    count_tokens=count_tokens,
                )
                break
            except PromptTooLong:
                too_long[task.name] += 1
        else:
            raise SymtuneError(f"no query of any task fits in max_tokens={cfg.max_tokens} tokens even with one "
                               "exemplar per class; raise the limit")
        yield {
            "id": f"{i:07d}", "task": task.name, "kind": kind, "format": prompt.format, "seed": cfg.seed,
            "k": prompt.k, "n_exemplars": prompt.n_exemplars, "prompt": prompt.text, "completion": prompt.completion,
            "labels": prompt.candidates, "mapping": prompt.mapping,
        }


def check_config(cfg: MixtureConfig) -> None:
    """The options' ranges and how they combine; the CLI checks each number as it parses it."""
    if not 0.0 <= cfg.symbol_fraction <= 1.0:
        raise SymtuneError(f"symbol_fraction must be in [0, 1], got {cfg.symbol_fraction}")
    if not 1 <= cfg.k_min <= cfg.k_max:
        raise SymtuneError(f"need 1 <= k_min <= k_max, got {cfg.k_min}..{cfg.k_max}")
    if cfg.n < 1 or cfg.cap < 1:
        raise SymtuneError(f"n and cap must be at least 1, got n={cfg.n}, cap={cfg.cap}")


def build_mixture(tasks: list[Task], out: str | Path, cfg: MixtureConfig = MixtureConfig(), eval_tasks: list[str] = (),
                  tokenizer=None, progress: bool = False) -> dict:
    """Write out/train.jsonl and out/manifest.json; return the manifest."""
    check_config(cfg)
    check_tuning_tasks(tasks, eval_tasks)
    count_tokens = (lambda s: len(tokenizer(s, add_special_tokens=False).input_ids)) if tokenizer else None
    counts, kinds, too_long, tokens = Counter(), Counter(), Counter(), Counter()
    rows = counted(build_rows(tasks, cfg, count_tokens, too_long), counts, kinds, tokenizer, tokens)
    if progress:
        from tqdm import tqdm

        rows = tqdm(rows, total=cfg.n, desc="building prompts", unit="prompt")

    def manifest():  # no timings here: a seed must give byte-identical files
        return make_manifest(
            seed=cfg.seed, n=cfg.n, options=asdict(cfg), kinds=kinds, eval_tasks=eval_tasks,
            tasks={t.name: {"count": counts[t.name], "source": t.source, "n_train": len(t.train),
                            "pool": min(cfg.cap, len(t.train)), "skipped_too_long": too_long[t.name]}
                   for t in tasks},
            tokenizer=getattr(tokenizer, "name_or_path", None),
            total_tokens=tokens["total"] if tokenizer is not None else None)

    return write_mixture(out, rows, manifest)


def counted(rows, counts: Counter, kinds: Counter, tokenizer, tokens: Counter):
    """`rows`, counting them per task in `counts`, per kind in `kinds` and, with a tokenizer, their
    tokens in tokens["total"] (tokenized 1000 rows at a time)."""
    batch = []
    for row in rows:
        counts[row["task"]] += 1
        kinds[row["kind"]] += 1
        yield row
        if tokenizer is not None:
            batch.append(row["prompt"] + row["completion"])
            if len(batch) == 1000:
                tokens["total"] += sum(map(len, tokenizer(batch, add_special_tokens=False).input_ids))
                batch = []
    if batch:
        tokens["total"] += sum(map(len, tokenizer(batch, add_special_tokens=False).input_ids))


def make_manifest(*, seed: int, n: int, options: dict, tasks: dict, kinds: dict, eval_tasks=(),
                  tokenizer: str | None = None, total_tokens: int | None = None) -> dict:
    """A mixture's manifest: `tasks` {name: {count, source, ...}}, `kinds` {kind: rows}."""
    return {
        "symtune_version": __version__, "seed": seed, "n": n, "options": options, "tasks": tasks,
        "kinds": dict(sorted(kinds.items())),
        "eval_tasks": sorted(eval_tasks), "tokenizer": tokenizer, "total_tokens": total_tokens,
    }


def write_mixture(out, rows, manifest) -> dict:
    """out/train.jsonl from `rows` (any iterable), then out/manifest.json from `manifest` (a dict,
    or a function called after the last row, that may count them); returns the manifest. The
    folder stays locked until both files are in place: concurrent writers cannot mix their pairs."""
    out = Path(out)
    with locked(out):
        with atomic_write(out / ROWS) as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        manifest = manifest() if callable(manifest) else manifest
        write_json(out / MANIFEST, manifest)
    return manifest


@contextlib.contextmanager
def locked(folder: Path):
    """An exclusive lock on the folder itself (no lock file to leave behind)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder, os.O_RDONLY)
    except OSError as e:
        raise SymtuneError(f"cannot write to {folder}: {e.strerror or e}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def rows_manifest(rows: list[dict], seed: int, options: dict, source: str) -> dict:
    """The manifest of rows made elsewhere (the studies'): tasks and kinds counted from the rows."""
    counts = Counter(row["task"] for row in rows)
    return make_manifest(seed=seed, n=len(rows), options=options,
                         tasks={task: {"count": n, "source": source} for task, n in counts.items()},
                         kinds=Counter(row["kind"] for row in rows))


def read_mixture(path) -> tuple[list[dict], dict]:
    """(rows, manifest) of a mixture folder, every row and the manifest checked. A folder of rows
    alone (hand-written: the benchmarks, tests) is a mixture whose manifest is {}."""
    path = Path(path)
    if not path.is_dir():
        raise SymtuneError(f"mixture folder not found: {path}")
    if not (path / MANIFEST).is_file() and (path / "meta.json").is_file():
        raise SymtuneError(f"{path} is a task folder, not a mixture: give it as --tasks {path}, or build a mixture "
                           "from it with `symtune data build`")
    if not (path / ROWS).is_file():
        raise SymtuneError(f"{path} is not a mixture: it has no {ROWS} (build one with `symtune data build`)")
    rows = read_jsonl(path / ROWS)
    if not rows:
        raise SymtuneError(f"{path / ROWS} is empty")
    for i, row in enumerate(rows, 1):
        prompt, completion = row.get("prompt"), row.get("completion")
        if not (isinstance(prompt, str) and isinstance(completion, str) and prompt and completion):
            raise SymtuneError(f"{path}/{ROWS}: row {i} needs a non-empty string prompt and completion "
                               "(is it a mixture from `symtune data build`?)")
    if not (path / MANIFEST).is_file():
        return rows, {}
    manifest = read_json(path / MANIFEST)
    check_schema(manifest, MANIFEST_SCHEMA, f"{path / MANIFEST} (rebuild the mixture with `symtune data build`)")
    return rows, manifest


def is_built(folder) -> bool:
    """Whether `folder` holds a whole mixture: write_mixture writes its manifest last."""
    return (Path(folder) / MANIFEST).is_file()


def manifest_tasks(manifest: dict) -> list[str]:
    """The names of the tasks a mixture was built from (none for a mixture without a manifest)."""
    return list(manifest.get("tasks", {}))


def print_mixture_summary(manifest: dict, out: str, seconds: float | None = None) -> None:
    width = max(len(name) for name in manifest["tasks"])
    print(f"{'task':<{width}}  prompts  pool")
    for name, info in manifest["tasks"].items():
        print(f"{name:<{width}}  {info['count']:>7}  {info['pool']:>5}")
    kinds = ", ".join(f"{k} {v}" for k, v in manifest["kinds"].items())
    tokens = f", {manifest['total_tokens']:,} tokens" if manifest["total_tokens"] is not None else ""
    took = f" in {seconds:.1f}s" if seconds is not None else ""
    print(f"{manifest['n']:,} prompts ({kinds}){tokens} from {len(manifest['tasks'])} tasks{took} -> {out}/{ROWS}")
    skipped = sum(info.get("skipped_too_long", 0) for info in manifest["tasks"].values())
    if skipped:
        print(f"skipped {skipped:,} queries whose prompt exceeds max_tokens even with one exemplar per class "
              f"(per task: skipped_too_long in {MANIFEST})")
