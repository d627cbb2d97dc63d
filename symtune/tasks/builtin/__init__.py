"""Built-in generated task families, so the whole pipeline runs with no data at all.

Every family is deterministic per seed, draws balanced classes with natural label names, and
never puts the same input in train and test.
"""

from symtune.errors import SymtuneError
from symtune.tasks.builtin import lexical, linear, lists, numbers, strings
from symtune.tasks.task import Task

FAMILIES = {
    "linear": linear.tasks,
    "numbers": numbers.tasks,
    "strings": strings.tasks,
    "lists": lists.tasks,
    "lexical": lexical.tasks,
}


def load_builtin(family: str | None = None, seed: int = 0, n_train: int = 200, n_test: int = 100) -> list[Task]:
    """The tasks of one family (name in FAMILIES), or of all families when family is None."""
    for what, n in (("n_train", n_train), ("n_test", n_test)):
        if not isinstance(n, int) or n < 0:
            raise SymtuneError(f"{what} must be a non-negative integer, got {n!r}")
    if family is not None and family not in FAMILIES:
        raise SymtuneError(f"unknown builtin family {family!r}; known: {', '.join(FAMILIES)}")
    names = list(FAMILIES) if family is None else [family]
    return [task for name in names for task in FAMILIES[name](seed, n_train, n_test)]
