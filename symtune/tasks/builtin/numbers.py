"""Number properties: the input is one integer in 2..9999 (2..1000 for magnitude)."""

import math
import random
from collections.abc import Callable

from symtune.tasks.builtin.sampling import Draw, sample_family
from symtune.tasks.task import Task


def _is_prime(n: int) -> bool:
    return n > 1 and all(n % d for d in range(2, math.isqrt(n) + 1))


def _number_where(condition: Callable[[int], bool], high: int = 9999) -> Draw:
    def draw(rng: random.Random) -> str:
        while True:
            n = rng.randint(2, high)
            if condition(n):
                return str(n)

    return draw


TASKS = {
    "number_parity": (
        "Say whether the number is even or odd.",
        {"even": _number_where(lambda n: n % 2 == 0), "odd": _number_where(lambda n: n % 2 == 1)},
    ),
    "number_magnitude": (
        "Say whether the number is small (at most 500) or large (more than 500).",
        {"small": _number_where(lambda n: n <= 500, 1000), "large": _number_where(lambda n: n > 500, 1000)},
    ),
    "number_prime": (
        "Say whether the number is prime or composite.",
        {"prime": _number_where(_is_prime), "composite": _number_where(lambda n: not _is_prime(n))},
    ),
    "number_multiple_of_3": (
        "Say whether the number is a multiple of three.",
        {
            "multiple of three": _number_where(lambda n: n % 3 == 0),
            "not a multiple of three": _number_where(lambda n: n % 3 != 0),
        },
    ),
}


def tasks(seed: int, n_train: int, n_test: int) -> list[Task]:
    return sample_family("numbers", TASKS, seed, n_train, n_test)
