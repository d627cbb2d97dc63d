"""The one model of a task that every source produces and every later stage consumes."""

import itertools
import random
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property

from symtune.errors import SymtuneError

BUILTIN = "builtin"  # generated tasks are named builtin/<task>


def family(task_name: str) -> str:
    """The dataset a task comes from: BIG-bench subtasks and class pairs are named family/part and
    share one; a generated task (builtin/<task>, a rule of its own) is its own dataset."""
    parts = task_name.split("/")
    return "/".join(parts[:2]) if parts[0] == BUILTIN else parts[0]


@dataclass(frozen=True)
class Example:
    """One input with its answer. `label` is a natural label name (classification) or the
    target string (generation tasks). `text_pair` holds the second input of pair tasks."""

    text: str
    label: str
    text_pair: str | None = None


@dataclass
class Task:
    name: str
    labels: list[str]  # natural label names in a fixed order; empty for generation tasks
    train: list[Example]
    test: list[Example]
    instruction: str | None = None
    eval_only: bool = False  # BIG-bench canary tasks: never allowed in tuning data
    source: str = ""  # the spec it was loaded from, for manifests
    meta: dict = field(default_factory=dict)

    @property
    def is_generation(self) -> bool:
        return not self.labels

    def by_label(self, split: str = "train") -> dict[str, list[Example]]:
        groups = {label: [] for label in self.labels}
        for ex in getattr(self, split):
            groups[ex.label].append(ex)
        return groups

    @cached_property
    def train_by_label(self) -> dict[str, list[Example]]:
        """by_label("train"), computed once: prompt building samples from it many times."""
        return self.by_label("train")

    def validate(self) -> "Task":
        """Raise SymtuneError on anything later stages cannot use; return self."""
        if not self.name:
            raise SymtuneError("a task needs a name")
        if len(set(self.labels)) != len(self.labels):
            raise SymtuneError(f"task {self.name}: duplicate label names {self.labels}")
        if self.labels and len(self.labels) < 2:
            raise SymtuneError(f"task {self.name}: needs at least 2 classes, has {self.labels}")
        if not self.train and not self.test:
            raise SymtuneError(f"task {self.name}: no examples")
        known = set(self.labels)
        for split in ("train", "test"):
            for i, ex in enumerate(getattr(self, split)):
                where = f"task {self.name}, {split} example {i + 1}"
                if not isinstance(ex.text, str) or not ex.text.strip():
                    raise SymtuneError(f"{where}: empty text")
                if ex.text_pair is not None and (not isinstance(ex.text_pair, str) or not ex.text_pair.strip()):
                    raise SymtuneError(f"{where}: empty text_pair")
                if not isinstance(ex.label, str):
                    raise SymtuneError(f"{where}: label must be a string, got {ex.label!r}")
                if known and ex.label not in known:
                    raise SymtuneError(f"{where}: label {ex.label!r} is not one of {self.labels}")
        if self.labels and self.train:
            present = Counter(ex.label for ex in self.train)
            if len(present) < 2:
                raise SymtuneError(
                    f"task {self.name}: the train split has only one class ({next(iter(present))!r})"
                )
        return self


def class_pairs(task: Task, most: int | None = None) -> list[Task]:
    """A binary task per pair of the task's classes (itself if it is binary), named
    task/a-vs-b: flipped-label prompts need two classes, and pairs bring multi-class data in.
    With `most`, a seeded draw of at most that many pairs, in their order."""
    if len(task.labels) <= 2:
        return [task]
    pairs = list(itertools.combinations(task.labels, 2))
    if most is not None and len(pairs) > most:
        pairs = [pairs[i] for i in sorted(random.Random(0).sample(range(len(pairs)), most))]
    keep = lambda examples, a, b: [ex for ex in examples if ex.label in (a, b)]  # noqa: E731
    return [Task(f"{task.name}/{a}-vs-{b}", [a, b], keep(task.train, a, b), keep(task.test, a, b), task.instruction,
                 task.eval_only, task.source, task.meta) for a, b in pairs]
