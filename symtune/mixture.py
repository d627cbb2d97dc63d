"""Tuning mixtures: prompt/completion JSONL built from classification tasks (docs/method.md, Mixtures).

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
from symtune.errors import SymtuneError
from symtune.io import atomic_write, read_json, read_jsonl, write_json
from symtune.prompts import PromptTooLong, Setting, build_prompt
from symtune.symbols import tuning_pool
from symtune.tasks.task import Task

KINDS = ("symbol", "natural", "random")
TRAINING_RECORD = "symtune_training.json"  # in a tuned model's folder: {"base_model", "tasks"} it was tuned on


@dataclass
class MixtureConfig:
    n: int = 10_000  # prompts in the mixture
    seed: int = 0
    cap: int = 25_000  # query examples per task (paper: 25k)
    k_min: int = 2  # exemplars per class, drawn per prompt (paper: 2–10)
    k_max: int = 10
    symbol_fraction: float = 1.0  # the rest are natural-label prompts (1.0 = paper; 0.0 = control)
    random_labels: bool = False  # control: symbol prompts with inconsistent labels
    avoid_natural: bool = True  # reject symbols equal to a natural label name of the task
    max_tokens: int | None = None  # prompt + completion budget; exemplars are dropped to fit
    fmt: str | None = None  # one fixed format instead of a random one per prompt


def check_tuning_tasks(tasks: list[Task], eval_tasks: list[str] = ()) -> None:
    """Refuse evaluation-only tasks, tasks evaluated in the same run, and generation tasks."""
    if not tasks:
        raise SymtuneError("no tuning tasks given")
    held_out = set(eval_tasks)
    for task in tasks:
        if task.eval_only:
            raise SymtuneError(f"task {task.name} is evaluation-only (BIG-bench canary); it must never be tuned on")
        if task.meta.get("role") == "eval":
            raise SymtuneError(f"task {task.name} is one of the paper's held-out evaluation datasets; "
                               "it must not be tuned on")
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
    out = Path(out)
    count_tokens = (lambda s: len(tokenizer(s, add_special_tokens=False).input_ids)) if tokenizer else None
    counts, kinds, total_tokens = Counter(), Counter(), 0
    too_long = Counter()
    rows = build_rows(tasks, cfg, count_tokens, too_long)
    if progress:
        from tqdm import tqdm

        rows = tqdm(rows, total=cfg.n, desc="building prompts", unit="prompt")
    with locked(out):  # held until both files are in place: concurrent builds cannot mix their pairs
        with atomic_write(out / "train.jsonl") as f:
            batch = []
            for row in rows:
                counts[row["task"]] += 1
                kinds[row["kind"]] += 1
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
                if tokenizer is not None:
                    batch.append(row["prompt"] + row["completion"])
                    if len(batch) == 1000:
                        total_tokens += sum(map(len, tokenizer(batch, add_special_tokens=False).input_ids))
                        batch = []
            if batch:
                total_tokens += sum(map(len, tokenizer(batch, add_special_tokens=False).input_ids))
        manifest = {  # no timings here: a seed must give byte-identical files
            "symtune_version": __version__,
            "seed": cfg.seed,
            "n": cfg.n,
            "options": asdict(cfg),
            "tasks": {
                t.name: {"count": counts[t.name], "source": t.source, "n_train": len(t.train),
                         "pool": min(cfg.cap, len(t.train)), "skipped_too_long": too_long[t.name]}
                for t in tasks
            },
            "kinds": dict(sorted(kinds.items())),
            "eval_tasks": sorted(eval_tasks),
            "tokenizer": getattr(tokenizer, "name_or_path", None),
            "total_tokens": total_tokens if tokenizer is not None else None,
        }
        write_json(out / "manifest.json", manifest)
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


def read_mixture(path) -> tuple[list[dict], dict]:
    """(rows, manifest) of a mixture folder, with every row checked."""
    path = Path(path)
    if not path.is_dir():
        raise SymtuneError(f"mixture folder not found: {path}")
    if not (path / "manifest.json").is_file() and (path / "meta.json").is_file():
        raise SymtuneError(f"{path} is a task folder, not a mixture: give it as --tasks {path}, or build a mixture "
                           "from it with `symtune data build`")
    if not (path / "train.jsonl").is_file():
        raise SymtuneError(f"{path} is not a mixture: it has no train.jsonl (build one with `symtune data build`)")
    rows = read_jsonl(path / "train.jsonl")
    if not rows:
        raise SymtuneError(f"{path / 'train.jsonl'} is empty")
    for i, row in enumerate(rows, 1):
        prompt, completion = row.get("prompt"), row.get("completion")
        if not (isinstance(prompt, str) and isinstance(completion, str) and prompt and completion):
            raise SymtuneError(f"{path}/train.jsonl: row {i} needs a non-empty string prompt and completion "
                               "(is it a mixture from `symtune data build`?)")
    manifest = read_json(path / "manifest.json") if (path / "manifest.json").is_file() else {}
    if not isinstance(manifest, dict):
        raise SymtuneError(f"{path / 'manifest.json'}: must be a JSON object "
                           "(rebuild the mixture with `symtune data build`)")
    return rows, manifest


def print_mixture_summary(manifest: dict, out: str, seconds: float | None = None) -> None:
    width = max(len(name) for name in manifest["tasks"])
    print(f"{'task':<{width}}  prompts  pool")
    for name, info in manifest["tasks"].items():
        print(f"{name:<{width}}  {info['count']:>7}  {info['pool']:>5}")
    kinds = ", ".join(f"{k} {v}" for k, v in manifest["kinds"].items())
    tokens = f", {manifest['total_tokens']:,} tokens" if manifest["total_tokens"] is not None else ""
    took = f" in {seconds:.1f}s" if seconds is not None else ""
    print(f"{manifest['n']:,} prompts ({kinds}){tokens} from {len(manifest['tasks'])} tasks{took} -> {out}/train.jsonl")
    skipped = sum(info.get("skipped_too_long", 0) for info in manifest["tasks"].values())
    if skipped:
        print(f"skipped {skipped:,} queries whose prompt exceeds max_tokens even with one exemplar per class "
              f"(per task: skipped_too_long in manifest.json)")
