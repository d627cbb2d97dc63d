"""BIG-bench generation tasks ({"input", "target"} examples). They are evaluation-only, always:
BIG-bench's canary asks that its data never appear in training corpora."""

from pathlib import Path

from symtune.errors import SymtuneError
from symtune.io import read_json, read_jsonl
from symtune.tasks.local import default_instruction
from symtune.tasks.task import Example, Task

FAMILY_TABLES = ("subtasks", "n_examples")  # per-subtask tables of a shared-data meta.json


def is_bigbench_dir(path) -> bool:
    """An original BIG-bench task folder (task.json), or a shared-data one (meta.json with the canary)."""
    path = Path(path)
    meta = path / "meta.json"
    return (path / "task.json").is_file() or (meta.is_file() and "canary" in read_json(meta))


def load_bigbench(path, subtasks=None) -> list[Task]:
    """One Task per subtask (or one for a task without subtasks), named "family/subtask".

    Reads an original BIG-bench folder (task.json, or subtask folders each with a task.json) or a
    shared-data folder (meta.json, and one .jsonl file per subtask). Inputs are kept as they are
    (simp_turing_concept inputs already hold their few-shot pairs); a list target counts by its
    first entry; a "concept" field goes to meta["concepts"], one entry per example.
    """
    path = Path(path)
    if not is_bigbench_dir(path):
        raise SymtuneError(f"{path}: not a BIG-bench task folder (no task.json, and no meta.json with a canary)")
    if (path / "task.json").is_file():
        family_meta = {}
        family = read_json(path / "task.json").get("name") or path.name
        files = {sub.name: sub / "task.json" for sub in sorted(path.iterdir()) if (sub / "task.json").is_file()}
        files = files or {"": path / "task.json"}
    else:
        family_meta = read_json(path / "meta.json")
        family = family_meta.get("name") or path.name
        files = {file.stem: file for file in sorted(path.glob("*.jsonl"))}
    for subtask in subtasks or []:
        if subtask not in files:
            names = [name for name in files if name]
            shown = ", ".join(names[:10]) + (f", ... ({len(names)} in all)" if len(names) > 10 else "")
            raise SymtuneError(f"{path}: no subtask {subtask!r}; available: {shown or 'none'}")
    return [read_subtask(path, family, name, files[name], family_meta) for name in subtasks or files]


def read_subtask(path: Path, family: str, subtask: str, file: Path, family_meta: dict) -> Task:
    if file.suffix == ".json":
        data = read_json(file)
        rows = data.get("examples")
        if not isinstance(rows, list):
            raise SymtuneError(f"{file}: a BIG-bench task.json needs an 'examples' list")
        meta = {key: value for key, value in data.items() if key != "examples"}
    else:
        rows = read_jsonl(file)
        meta = {key: value for key, value in family_meta.items() if key not in FAMILY_TABLES}
        meta["subtask_description"] = family_meta.get("subtasks", {}).get(subtask)
    examples = []
    for i, row in enumerate(rows, 1):
        if not isinstance(row, dict) or "input" not in row or "target" not in row:
            raise SymtuneError(
                f"{file}, example {i}: needs 'input' and 'target' (multiple-choice tasks are not supported)"
            )
        target = row["target"]
        if isinstance(target, list):
            target = target[0] if target else ""
        examples.append(Example(str(row["input"]), str(target)))
    if any("concept" in row for row in rows):
        meta["concepts"] = [row.get("concept") for row in rows]
    prefix = (meta.get("task_prefix") or "").strip()
    return Task(
        name=f"{family}/{subtask}" if subtask else family,
        labels=[],
        train=[],
        test=examples,
        instruction=meta.get("instruction") or default_instruction(family) or prefix or None,
        eval_only=True,
        source=f"{path}:{subtask}" if subtask else str(path),
        meta=meta,
    ).validate()
