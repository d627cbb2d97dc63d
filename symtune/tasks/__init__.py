"""Tasks: the Task model and the sources that produce it."""

from symtune.tasks.task import Example, Task

__all__ = ["Example", "Task"]
