"""Tasks: the Task model and the sources that produce it."""

from symtune.tasks.bigbench import load_bigbench
from symtune.tasks.hf import PRESETS, load_hf, load_preset
from symtune.tasks.local import load_table, load_task_dir
from symtune.tasks.registry import load_task_list, load_tasks
from symtune.tasks.task import Example, Task

__all__ = [
    "PRESETS",
    "Example",
    "Task",
    "load_bigbench",
    "load_hf",
    "load_preset",
    "load_table",
    "load_task_dir",
    "load_task_list",
    "load_tasks",
]
