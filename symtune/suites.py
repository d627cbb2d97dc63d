"""Evaluation suites (docs/method.md, Evaluation settings) and the prompts they score. Torch-free.

A suite is a list of conditions (a prompt Setting and k). Every (condition, task, seed) gives
n items (typed prompts), all built before any model loads, so every model sees the same prompts.

Adding a suite: write a function of k (exemplars per class) that returns its conditions, and
decorate it with @register_suite("name"); `build_items` and `evaluate` then accept
EvalConfig(suite="name"). A suite in its own module is registered when that module is imported
(tests/test_suites.py shows one); the built-in suites are below.
"""

import random
import sys
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from symtune.config import from_mapping, knob
from symtune.errors import SymtuneError
from symtune.prompts import (
    GRID,
    Setting,
    build_eval_prompts,
    build_generation_prompt,
    eval_queries,
    input_text,
    max_k,
    render,
)
from symtune.tasks.task import Task, family
from symtune.validate import integer

FLIP_PERCENTS = (0, 25, 50, 75, 100)  # paper 2 gives its grid only in figures (docs/method.md, Label settings)
K_CURVE = (1, 2, 4, 8)
CONTENT_FREE = "N/A"
SELF_CONTAINED = ("simp_turing_concept",)  # BIG-bench families whose inputs already hold their shots


@dataclass(frozen=True)
class Condition:
    name: str  # key in the results
    label: str  # column heading
    setting: Setting = Setting()
    k: int = 4
    x: float | None = None  # position on a curve (percent flipped, k); None: a bar
    binary_only: bool = False  # flips need two classes; other tasks are left out
    generation: bool = False  # BIG-bench prompts: input -> target by generation


@dataclass
class EvalConfig:
    """Every evaluation knob; `symtune eval` derives its flags from these fields (symtune.config)."""

    suite: str = knob(help="the suite: its conditions (symtune.suites.SUITES)")
    n: int = knob(100, "prompts per task and seed (the paper: at most 100)", minimum=1)
    k: int = knob(4, "exemplars per class (the paper: 4; the kcurve suite sweeps 1, 2, 4, 8)", minimum=1)
    seeds: tuple[int, ...] = knob((0, 1, 2), "prompt seeds, new exemplars and symbols each")
    fmt: str | None = knob(None, "one fixed prompt format (unset: a seeded random one per prompt)")
    calibrate: bool = knob(True, "content-free calibration (acc_calibrated): the query block twice, the exemplars "
                                 "once")
    generate: bool = knob(False, "also greedy generation + exact match on classification prompts")
    max_new_tokens: int = knob(48, "cap on generated tokens (generation stops at the line break; BIG-bench lists "
                                   "take ~3 tokens an element)", minimum=1)
    token_budget: int | None = knob(None, "prompt tokens a batch may hold in its cache, one copy per scored label "
                                          "(a memory bound; unset: sized by device and job)", minimum=1)
    max_prompt_tokens: int | None = knob(None, "drop exemplars so a prompt fits (estimated tokens, "
                                               "model-independent)", minimum=1)
    dtype: str = knob("auto", "model weights' dtype: float32, bfloat16, or auto (bfloat16 where the CPU or GPU "
                              "computes it natively)")
    attn_implementation: str | None = knob(None, "transformers' attention kernel: sdpa, eager, flash_attention_2 "
                                                 "(pip install flash-attn), ... (unset: transformers' own, sdpa)")
    allow_seen: bool = knob(False, "evaluate on tasks the model was tuned on")


def eval_config(values: dict, where: str, kind: str = "eval") -> EvalConfig:
    """An EvalConfig from a mapping (the flags given, a suite's settings in an experiment config)
    whose `seeds` is a count: N is seeds 0..N-1."""
    values = dict(values)
    if "seeds" in values:
        values["seeds"] = tuple(range(integer(values["seeds"], f"{where}: seeds", minimum=1)))
    return from_mapping(EvalConfig, values, where, kind)


@dataclass(frozen=True)
class Item:
    """One prompt to score. `candidates` are the labels ranked (a BIG-bench task's candidate
    targets; empty where there is nothing to rank) and `answer` the right one's index (-1: none)."""

    id: str  # condition/task/seed/index: the same prompt has the same id for every model
    task: str
    condition: str
    seed: int
    generation: bool  # answered by greedy generation (BIG-bench)
    text: str
    target: str
    candidates: list[str]
    answer: int
    format: str
    position: int | None = None  # the query's index in the task's test split (classification)
    exemplars_per_class: float | None = None  # classification: fewer than k where max_prompt_tokens dropped some
    query: str | None = None  # with calibration: the prompt's last block, and that block with the input
    content_free: str | None = None  # replaced by CONTENT_FREE
    pattern: str | None = None  # generation: the regex an answer is normalised with


# ---- the registry ------------------------------------------------------------------------

SUITES: dict[str, Callable[[int], list[Condition]]] = {}  # name -> its conditions for k exemplars per class


def register_suite(name: str):
    """Decorator: make a function of k that returns a suite's conditions the suite `name`."""

    def register(conditions: Callable[[int], list[Condition]]):
        if name in SUITES:
            raise SymtuneError(f"suite {name!r} is already registered")
        SUITES[name] = conditions
        return conditions

    return register


def suite_conditions(suite: str, k: int = 4) -> list[Condition]:
    if suite not in SUITES:
        raise SymtuneError(f"unknown suite {suite!r}; choose one of {', '.join(SUITES)}")
    return SUITES[suite](k)


def grid_label(setting: Setting) -> str:
    """The paper's column names: ✓/✗ instruction, ✓/✗ relevant (natural) labels."""
    return ("✓" if setting.instruction else "✗") + ("✓" if not setting.symbols else "✗")


def grid_condition(setting: Setting, k: int) -> Condition:
    return Condition(setting.name, f"{grid_label(setting)} {setting.name}", setting, k)


def paper1_flipped(k: int) -> Condition:
    return Condition("flipped", "flipped (paper 1)", Setting(symbols=False, flip_query=True), k, binary_only=True)


@register_suite("grid")
def grid(k: int) -> list[Condition]:
    """In the column order of the paper's Table 1: ✓✓ ✗✓ ✓✗ ✗✗."""
    return [grid_condition(s, k) for s in sorted(GRID, key=lambda s: (s.symbols, not s.instruction))]


@register_suite("flipped")
def flipped(k: int) -> list[Condition]:
    sweep = [Condition(f"flip{p}", f"{p}% flipped", Setting(symbols=False, flip=p / 100), k, x=p, binary_only=True)
             for p in FLIP_PERCENTS]
    return [paper1_flipped(k), *sweep]


@register_suite("kcurve")
def kcurve(k: int) -> list[Condition]:
    return [Condition(f"k{j}", f"k={j}", Setting(), j, x=j) for j in K_CURVE]


@register_suite("algorithmic")
def algorithmic(k: int) -> list[Condition]:
    return [Condition("bigbench", f"BIG-bench {k}-shot", k=k, generation=True)]


@register_suite("linear")
def linear(k: int) -> list[Condition]:
    return [grid_condition(s, k) for s in (Setting(symbols=False), Setting())]


@register_suite("headline")
def headline(k: int) -> list[Condition]:
    """The cells where tuning could change how exemplars are used (docs/results.md)."""
    every_flip = Condition("flip100", "100% flipped", Setting(symbols=False, flip=1.0), k, binary_only=True)
    cells = {s.name: grid_condition(s, k) for s in GRID}
    return [every_flip, paper1_flipped(k), cells["noinstr-symbols"], cells["instr-natural"]]


# ---- building the items ------------------------------------------------------------------


def check_task(task: Task, cond: Condition, cfg: EvalConfig) -> None:
    if not task.test:
        raise SymtuneError(f"task {task.name} has no test split to evaluate on")
    if cond.generation != task.is_generation:
        kind = "a generation" if task.is_generation else "a classification"
        raise SymtuneError(f"task {task.name} is {kind} task; the {cfg.suite} suite cannot evaluate it")
    if not task.is_generation and cond.k > max_k(task):
        smallest = min(map(len, task.train_by_label.values()))
        raise SymtuneError(
            f"task {task.name}: k={cond.k} exemplars per class, but a class has only {smallest} train examples"
        )


def classification_items(task: Task, cond: Condition, seed: int, cfg: EvalConfig, skip=frozenset()) -> list[Item]:
    prompts = build_eval_prompts(task, n=cfg.n, k=cond.k, setting=cond.setting, seed=seed, fmt=cfg.fmt,
                                 max_tokens=cfg.max_prompt_tokens, skip=skip)
    items = []
    for i, prompt in enumerate(prompts):
        calibration = {}
        if cfg.calibrate:  # the query's block, and the same block with the input replaced by "N/A"
            calibration = {"query": render(prompt.format, input_text(prompt.query)),
                           "content_free": render(prompt.format, CONTENT_FREE)}
            if not prompt.text.endswith(calibration["query"]):
                raise SymtuneError(f"task {task.name}: the prompt does not end with its query; cannot calibrate")
        items.append(Item(
            id=f"{cond.name}/{task.name}/{seed}/{i}", task=task.name, condition=cond.name, seed=seed, generation=False,
            text=prompt.text, target=prompt.target, candidates=prompt.candidates, answer=prompt.answer,
            format=prompt.format, position=prompt.position,
            exemplars_per_class=prompt.n_exemplars / len(prompt.candidates), **calibration,
        ))
    return items


def too_long_positions(task: Task, conditions: list[Condition], seed: int, cfg: EvalConfig) -> frozenset[int]:
    """Query positions whose prompt does not fit max_prompt_tokens in some condition. Every
    condition passes over all of them, so all conditions score the same queries."""
    skip = frozenset()
    while True:
        passed_over = set()
        for cond in conditions:
            positions = [item.position for item in classification_items(task, cond, seed, cfg, skip)]
            examined = positions[-1] + 1 if len(positions) == cfg.n else len(task.test)  # short: it saw them all
            passed_over |= set(range(examined)) - set(positions)
        if passed_over <= skip:
            break
        skip |= passed_over
    if len(skip) == len(task.test):
        raise SymtuneError(f"task {task.name}: no query's prompt fits {cfg.max_prompt_tokens} tokens even with one "
                           f"exemplar per class; raise --max-prompt-tokens")
    if skip:
        print(f"symtune: {task.name}, seed {seed}: passed over {len(skip)} queries whose prompt does not fit "
              f"{cfg.max_prompt_tokens} tokens even with one exemplar per class", file=sys.stderr)
    return skip


def candidate_sets(task: Task) -> dict:
    """For constrained scoring of a generation task: the distinct targets of the examples that
    share the query's concept (meta["concepts"], e.g. a Turing concept), else of the task."""
    concepts = task.meta.get("concepts") or [None] * len(task.test)
    groups = defaultdict(dict)
    for ex, concept in zip(task.test, concepts):
        groups[concept][ex.label] = None
    return {ex: list(groups[concept]) for ex, concept in zip(task.test, concepts)}


def generation_items(task: Task, cond: Condition, seed: int, cfg: EvalConfig) -> list[Item]:
    shots = 0 if family(task.name) in SELF_CONTAINED else cond.k
    candidates = candidate_sets(task)
    items = []
    for i, query in enumerate(eval_queries(task, cfg.n, seed)):
        prompt = build_generation_prompt(task, query, random.Random(f"{seed}/{task.name}/{i}/exemplars"), k=shots)
        cands = candidates[query] if len(candidates[query]) > 1 else []
        items.append(Item(
            id=f"{cond.name}/{task.name}/{seed}/{i}", task=task.name, condition=cond.name, seed=seed, generation=True,
            text=prompt.text, target=prompt.target, candidates=cands,
            answer=cands.index(prompt.target) if cands else -1, format=prompt.format,
            pattern=task.meta.get("output_regex"),
        ))
    return items


def build_items(tasks: list[Task], cfg: EvalConfig,
                conditions: list[Condition] | None = None) -> tuple[list[Condition], list[Item]]:
    """The conditions (the suite's, unless given) and every prompt to score, in a fixed order.
    Raises on any task the suite cannot evaluate before a model is loaded."""
    conditions = suite_conditions(cfg.suite, cfg.k) if conditions is None else conditions
    chosen = {}  # condition name -> the tasks it evaluates
    for cond in conditions:
        chosen[cond.name] = [t for t in tasks if not cond.binary_only or len(t.labels) == 2]
        if not chosen[cond.name]:
            raise SymtuneError(f"the {cfg.suite} suite needs binary tasks; "
                               f"none of {', '.join(t.name for t in tasks)} is")
        for task in chosen[cond.name]:
            check_task(task, cond, cfg)
    skips = {}
    for task in tasks:
        own = [c for c in conditions if not c.generation and (not c.binary_only or len(task.labels) == 2)]
        for seed in cfg.seeds:
            skips[task.name, seed] = too_long_positions(task, own, seed, cfg) if cfg.max_prompt_tokens else frozenset()
    items = []
    for cond in conditions:
        for task in chosen[cond.name]:
            for seed in cfg.seeds:
                if cond.generation:
                    items += generation_items(task, cond, seed, cfg)
                else:
                    items += classification_items(task, cond, seed, cfg, skip=skips[task.name, seed])
    return conditions, items
