"""Resolve task specs, the strings users give for tasks, to validated Tasks.

The forms of one spec:
  DIR                          a task folder (train.jsonl, optional test.jsonl and meta.json)
  DIR                          a folder of task folders, e.g. ../shared/data: all of them
  DIR[:SUB+SUB]                a BIG-bench folder: its subtasks, or only those named
  FILE.csv|.tsv|.jsonl[?MAP]   a table; MAP keys: text, text_pair, label, labels, name, test, sep
  hf:ID[:CONFIG][?MAP]         a `datasets` dataset; MAP keys: text, text_pair, label, labels, name,
                               split, test_split, instruction, max_examples, revision
  PRESET                       one of the paper's datasets, by name (presets.yaml)
  builtin[:FAMILY]             generated tasks (symtune.tasks.builtin)

MAP is a query string. `labels` is a |-separated list (natural names, in class-id order when the
column holds class ids); `text` and `text_pair` may name several |-separated columns, joined by
newlines. For example:
  reviews.csv?text=sentence&label=y&labels=negative|positive&test=reviews_test.csv
  hf:nyu-mll/glue:rte?text=sentence1&text_pair=sentence2&labels=entailment|not+entailment
Several specs are joined with commas (so a spec cannot contain one).
"""

import difflib
import urllib.parse
from pathlib import Path

from symtune.errors import SymtuneError
from symtune.tasks.bigbench import is_bigbench_dir, load_bigbench
from symtune.tasks.hf import PRESETS, load_hf, load_preset
from symtune.tasks.local import is_task_dir, load_table, load_task_dir
from symtune.tasks.task import Task

TABLE_SUFFIXES = (".csv", ".tsv", ".jsonl")
TABLE_KEYS = ("text", "text_pair", "label", "labels", "name", "test", "sep")
HF_KEYS = ("text", "text_pair", "label", "labels", "name", "split", "test_split", "instruction", "max_examples",
           "revision")
FORMS = ("a task folder, a folder of them, a BIG-bench folder, a .csv/.tsv/.jsonl file, hf:ID[:CONFIG], a preset name, "
         "or builtin[:FAMILY]")


def load_task_list(specs: str | list[str], seed: int = 0) -> list[Task]:
    """The tasks of comma-separated specs (or a list of specs); task names must be unique."""
    if isinstance(specs, str):
        specs = specs.split(",")
    tasks, origin = [], {}
    for spec in filter(None, (s.strip() for s in specs)):
        for task in load_tasks(spec, seed):
            if task.name in origin:
                raise SymtuneError(f"task {task.name!r} is given twice (by {origin[task.name]!r} and {spec!r})")
            origin[task.name] = spec
            tasks.append(task)
    if not tasks:
        raise SymtuneError("no tasks: give at least one task spec")
    return tasks


def load_tasks(spec: str, seed: int = 0) -> list[Task]:
    """The tasks of one spec (see the module docstring for the forms)."""
    if spec == "builtin" or spec.startswith("builtin:"):
        from symtune.tasks.builtin import load_builtin  # written separately; imported on use

        return load_builtin(spec.partition(":")[2] or None, seed)
    if spec.startswith("hf:"):
        head, _, query = spec.removeprefix("hf:").partition("?")
        id, _, config = head.partition(":")
        return [with_source(load_hf(id, config or None, **parse_mapping(query, HF_KEYS, spec), seed=seed), spec)]
    path, _, query = spec.partition("?")
    if query or path.endswith(TABLE_SUFFIXES):
        return [with_source(load_table(path, **parse_mapping(query, TABLE_KEYS, spec)), spec)]
    if Path(spec).is_dir():
        return load_dir(Path(spec))
    folder, _, selection = spec.rpartition(":")
    if folder and Path(folder).is_dir() and is_bigbench_dir(folder):
        return load_bigbench(folder, selection.split("+"))
    if spec in PRESETS:
        return [load_preset(spec, seed)]
    if Path(spec).exists():
        raise SymtuneError(f"task spec {spec!r}: not a task folder or a .csv/.tsv/.jsonl file")
    if "/" in spec or Path(spec).suffix:
        raise SymtuneError(f"task spec {spec!r}: no such folder or file")
    close = difflib.get_close_matches(spec, PRESETS, n=3)
    hint = f" (close presets: {', '.join(close)})" if close else ""
    raise SymtuneError(f"cannot resolve task spec {spec!r}{hint}: expected {FORMS}")


def load_dir(path: Path) -> list[Task]:
    if is_task_dir(path):
        return [load_task_dir(path)]
    if is_bigbench_dir(path):
        return load_bigbench(path)
    children = task_dirs(path)
    if not children:
        raise SymtuneError(f"{path}: not a task folder (train.jsonl), a BIG-bench folder, or a folder of them")
    return [task for child in children for task in load_dir(child)]


def task_dirs(path) -> list[Path]:
    """The subfolders of `path` that hold a task (shared-data format or BIG-bench), sorted."""
    return [sub for sub in sorted(Path(path).iterdir()) if is_task_dir(sub) or is_bigbench_dir(sub)]


def parse_mapping(query: str, allowed: tuple[str, ...], spec: str) -> dict:
    """Keyword arguments from a spec's query string (see the module docstring)."""
    args = {}
    for key, value in urllib.parse.parse_qsl(query, keep_blank_values=True):
        if key not in allowed:
            raise SymtuneError(f"task spec {spec!r}: unknown key {key!r}; accepted: {', '.join(allowed)}")
        if key == "labels" or (key in ("text", "text_pair") and "|" in value):
            value = value.split("|")
        elif key == "max_examples":
            if not value.isdigit():
                raise SymtuneError(f"task spec {spec!r}: max_examples must be a whole number, got {value!r}")
            value = int(value)
        args[key] = value
    return args


def with_source(task: Task, spec: str) -> Task:
    task.source = spec  # the spec carries the column mapping, so it reloads the same task
    return task
