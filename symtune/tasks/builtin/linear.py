"""N-dimensional linear classification: Algorithm 1 of Wei et al. 2023b (docs/method.md, Linear classification).

Each task draws a coefficient vector `a` and a pivot `p` with integer coordinates in 1..1000
and sets the threshold t = <a, p>. A point x is "above" when <x, a> > t and "below" otherwise
(the paper's SUL labels Bar and Foo). The input is x as comma-separated integers.

Deviations from the paper, which samples k exemplars per class and queries at random:
- both splits are balanced (rejection sampling per class), so chance is 50%;
- a pivot near a corner of the cube leaves one side almost empty (the paper does not say what
  it did then); such rules are redrawn until a pilot sample puts MIN_SIDE of its points on
  each side, which also keeps the rejection sampling cheap.
"""

import random

from symtune.errors import SymtuneError
from symtune.tasks.builtin.sampling import sample_task, task_rng
from symtune.tasks.task import BUILTIN, Task

LOW, HIGH = 1, 1000
DEFAULT_DIMS = (2, 4, 8)
PILOT_POINTS = 200
MIN_SIDE = 0.25


def tasks(seed: int, n_train: int, n_test: int, dims: tuple[int, ...] = DEFAULT_DIMS) -> list[Task]:
    return [linear_task(d, seed, n_train, n_test) for d in dims]


def linear_task(dims: int, seed: int, n_train: int, n_test: int) -> Task:
    if not isinstance(dims, int) or dims < 1:
        raise SymtuneError(f"linear classification needs a positive number of dimensions, got {dims!r}")
    name = f"{BUILTIN}/linear_{dims}d"
    rng = task_rng(seed, name)
    coefficients, pivot = _balanced_rule(rng, dims)
    threshold = _dot(coefficients, pivot)

    def draw_side(label: str):
        def draw(rng: random.Random) -> str:
            while True:
                x = _point(rng, dims)
                if ("above" if _dot(x, coefficients) > threshold else "below") == label:
                    return ", ".join(map(str, x))

        return draw

    instruction = f"Say whether the point with {dims} integer coordinates lies above or below a fixed hidden plane."
    meta = {"coefficients": coefficients, "pivot": pivot, "threshold": threshold}
    draws = {label: draw_side(label) for label in ("below", "above")}
    return sample_task(name, instruction, draws, rng, n_train, n_test, "linear", meta)


def _balanced_rule(rng: random.Random, dims: int) -> tuple[list[int], list[int]]:
    while True:
        coefficients, pivot = _point(rng, dims), _point(rng, dims)
        threshold = _dot(coefficients, pivot)
        above = sum(_dot(_point(rng, dims), coefficients) > threshold for _ in range(PILOT_POINTS))
        if MIN_SIDE <= above / PILOT_POINTS <= 1 - MIN_SIDE:
            return coefficients, pivot


def _point(rng: random.Random, dims: int) -> list[int]:
    return [rng.randint(LOW, HIGH) for _ in range(dims)]


def _dot(x: list[int], y: list[int]) -> int:
    return sum(a * b for a, b in zip(x, y))
