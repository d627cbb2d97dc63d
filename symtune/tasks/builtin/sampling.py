"""The sampler every built-in family shares: seeded per task, classes in turn, no input twice."""

import random
from collections.abc import Callable

from symtune.errors import SymtuneError
from symtune.tasks.task import BUILTIN, Example, Task

Draw = Callable[[random.Random], str]  # draws one input text of a fixed class
MAX_TRIES = 1000  # draws allowed to find one input not seen before


def task_rng(seed: int, name: str) -> random.Random:
    # A string seed is hashed with SHA-512: the stream is the same on every run and platform,
    # and each task's stream does not depend on which other tasks are generated.
    return random.Random(f"{seed}-{name}")


def sample_task(
    name: str,
    instruction: str,
    draws: dict[str, Draw],
    rng: random.Random,
    n_train: int,
    n_test: int,
    family: str,
    meta: dict | None = None,
) -> Task:
    """Draw n_train + n_test examples, cycling through the classes (the keys of `draws`) so
    each split is balanced to within one example. No input is drawn twice, so train and test
    never share one."""
    labels = list(draws)
    seen = set()
    examples = []
    for i in range(n_train + n_test):
        label = labels[i % len(labels)]
        for _ in range(MAX_TRIES):
            text = draws[label](rng)
            if text not in seen:
                break
        else:
            raise SymtuneError(
                f"builtin task {name}: ran out of distinct {label!r} inputs after "
                f"{len(examples)} examples; ask for fewer (n_train + n_test)"
            )
        seen.add(text)
        examples.append(Example(text, label))
    train, test = examples[:n_train], examples[n_train:]
    rng.shuffle(train)
    rng.shuffle(test)
    task = Task(name, labels, train, test, instruction=instruction, source=f"builtin:{family}", meta=meta or {})
    return task.validate()


def sample_family(
    family: str, specs: dict[str, tuple[str, dict[str, Draw]]], seed: int, n_train: int, n_test: int
) -> list[Task]:
    """One task per entry of `specs`: short name -> (instruction, {label: draw})."""
    tasks = []
    for short_name, (instruction, draws) in specs.items():
        name = f"{BUILTIN}/{short_name}"
        tasks.append(sample_task(name, instruction, draws, task_rng(seed, name), n_train, n_test, family))
    return tasks
