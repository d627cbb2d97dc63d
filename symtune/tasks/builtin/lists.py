"""List properties: the input is a list of 4 to 7 integers in 0..99, written like "[3, 41, 7, 0]"."""

import random

from symtune.tasks.builtin.sampling import sample_family
from symtune.tasks.task import Task


def _numbers(rng: random.Random, shortest: int = 4, longest: int = 7) -> list[int]:
    return [rng.randint(0, 99) for _ in range(rng.randint(shortest, longest))]


def _unsorted(rng: random.Random) -> str:
    while True:
        xs = _numbers(rng)
        if xs != sorted(xs):
            return str(xs)


def _with_duplicate(rng: random.Random) -> str:
    xs = rng.sample(range(100), rng.randint(3, 6))
    xs.insert(rng.randint(0, len(xs)), rng.choice(xs))
    return str(xs)


def _with_sum_parity(rng: random.Random, parity: int) -> str:
    while True:
        xs = _numbers(rng)
        if sum(xs) % 2 == parity:
            return str(xs)


def _with_ends(rng: random.Random, first_larger: bool) -> str:
    small, large = sorted(rng.sample(range(100), 2))
    first, last = (large, small) if first_larger else (small, large)
    return str([first, *_numbers(rng, 2, 5), last])


TASKS = {
    "list_sorted": (
        "Say whether the list is sorted in non-decreasing order.",
        {"sorted": lambda rng: str(sorted(_numbers(rng))), "unsorted": _unsorted},
    ),
    "list_duplicate": (
        "Say whether some number appears twice in the list.",
        {"duplicate": _with_duplicate, "distinct": lambda rng: str(rng.sample(range(100), rng.randint(4, 7)))},
    ),
    "list_sum_parity": (
        "Say whether the sum of the list is even or odd.",
        {"even": lambda rng: _with_sum_parity(rng, 0), "odd": lambda rng: _with_sum_parity(rng, 1)},
    ),
    "list_first_last": (
        "Say whether the first or the last number of the list is larger.",
        {"first larger": lambda rng: _with_ends(rng, True), "last larger": lambda rng: _with_ends(rng, False)},
    ),
}


def tasks(seed: int, n_train: int, n_test: int) -> list[Task]:
    return sample_family("lists", TASKS, seed, n_train, n_test)
