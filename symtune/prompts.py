"""Few-shot prompts: formats, exemplar sampling, label presentation (natural, symbols, flips).

One place decides what a prompt looks like (docs/method.md, Prompts and Label settings):
- a format is an input/label template; the label always follows the template's prefix after
  one space, so the completion to score or train on is " " + label;
- exemplars are separated by a blank line and shuffled, so classes interleave;
- pair inputs go on two lines; the instruction, when present, is the first paragraph;
- exemplars come from the train split and never equal the query.
"""

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from symtune.errors import SymtuneError
from symtune.symbols import SymbolPool, eval_pool
from symtune.tasks.task import Example, Task

# The ten input/label templates of the public reproduction (docs/method.md, Prompts).
FORMATS = {
    "input_output": "Input: {x}\nOutput: {y}",
    "input_target": "Input: {x}\nTarget: {y}",
    "input_symbol": "Input: {x}\nSymbol: {y}",
    "input_label": "Input: {x}\nLabel: {y}",
    "question_answer": "Question: {x}\nAnswer: {y}",
    "student_teacher": "Student: {x}\nTeacher: {y}",
    "x_y": "X = {x}\nY = {y}",
    "q_a": "Q: {x}\nA: {y}",
    "arrow": "{x} -> {y}",
    "sentences_mapped": "Sentences: {x}\nMapped To: {y}",
}
SEPARATOR = "\n\n"


@dataclass(frozen=True)
class Setting:
    """What the labels of an evaluation or tuning prompt look like."""

    instruction: bool = False
    symbols: bool = True  # False: the task's natural label names
    flip: float = 0.0  # paper 2: fraction of exemplar labels flipped in each class (binary tasks)
    flip_query: bool = False  # paper 1: flip exemplars and query alike (binary tasks)
    random_labels: bool = False  # control: each exemplar shows a random one of the labels

    @property
    def name(self) -> str:
        parts = ["instr" if self.instruction else "noinstr", "symbols" if self.symbols else "natural"]
        if self.flip:
            parts.append(f"flip{round(self.flip * 100)}")
        if self.flip_query:
            parts.append("flipped")
        if self.random_labels:
            parts.append("random")
        return "-".join(parts)


GRID = [Setting(instruction=i, symbols=s) for i in (True, False) for s in (False, True)]


@dataclass
class Prompt:
    text: str  # up to and including the label prefix; the model continues with " " + target
    target: str
    candidates: list[str]  # the presented label strings, in the task's label order
    answer: int  # index of target in candidates (-1 for generation tasks)
    mapping: dict[str, str] = field(default_factory=dict)  # natural label -> presented string
    format: str = ""
    k: int = 0  # exemplars per class asked for
    n_exemplars: int = 0  # exemplars shown (fewer if the token budget dropped some)
    query: Example | None = None  # evaluation prompts: the query and its position in the seeded order
    position: int = -1

    @property
    def completion(self) -> str:
        return " " + self.target



class PromptTooLong(SymtuneError):
    """A prompt that does not fit its token budget even with one exemplar per class."""


def input_text(ex: Example) -> str:
    return ex.text if ex.text_pair is None else f"{ex.text}\n{ex.text_pair}"


def split_format(fmt: str) -> tuple[str, str]:
    """A format as (query template, label suffix): render(x, y) = query.format(x) + ' ' + y."""
    if fmt not in FORMATS:
        raise SymtuneError(f"unknown prompt format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return FORMATS[fmt].removesuffix(" {y}"), " {y}"


def render(fmt: str, x: str, y: str | None = None) -> str:
    query, _ = split_format(fmt)
    block = query.replace("{x}", x)  # str.format would choke on braces inside the text
    return block if y is None else f"{block} {y}"


def present_labels(task: Task, setting: Setting, rng: random.Random, pool: SymbolPool | None,
                   avoid_natural: bool = True) -> list[str]:
    """The label string shown for each natural label: the label itself or a fresh symbol."""
    if not setting.symbols:
        return list(task.labels)
    pool = pool or eval_pool()
    return pool.sample(len(task.labels), rng, avoid=task.labels if avoid_natural else ())


def sample_exemplars(task: Task, query: Example, k: int, rng: random.Random) -> list[tuple[int, Example]]:
    """k train examples per class (as (class index, example)), none equal to the query."""
    chosen = []
    for c, label in enumerate(task.labels):
        group = task.train_by_label[label]
        query_input = input_text(query)
        picks = [ex for ex in rng.sample(group, min(len(group), k + 1)) if input_text(ex) != query_input][:k]
        if len(picks) < k:
            raise SymtuneError(
                f"task {task.name}: class {label!r} has {len(picks)} usable train examples, fewer than k={k}"
            )
        chosen += [(c, ex) for ex in picks]
    rng.shuffle(chosen)
    return chosen


def max_k(task: Task) -> int:
    """The largest k every class can supply while leaving out one query."""
    return min(len(group) for group in task.train_by_label.values()) - 1


def shown_class(c: int, n_classes: int, flipped: bool) -> int:
    if not flipped:
        return c
    if n_classes != 2:
        raise SymtuneError("flipped labels need a binary task")
    return 1 - c


def exemplar_labels(exemplars, setting: Setting, n_classes: int, rng: random.Random) -> list[int]:
    """Which presented label each exemplar shows, after flips or randomisation."""
    if setting.random_labels:
        return [rng.randrange(n_classes) for _ in exemplars]
    shown = [shown_class(c, n_classes, setting.flip_query) for c, _ in exemplars]
    if setting.flip:
        for c in range(n_classes):
            members = [i for i, (cls, _) in enumerate(exemplars) if cls == c]
            for i in rng.sample(members, round(setting.flip * len(members))):
                shown[i] = shown_class(c, n_classes, True)
    return shown


def approx_tokens(text: str) -> int:
    """Token estimate without a tokenizer: ~3 characters a token, on the safe side."""
    return math.ceil(len(text) / 3)


def drop_one(keep: list[int], classes: list[int], tokens: int, max_tokens: int) -> None:
    """Drop an exemplar of the class with most left; never a class's last exemplar."""
    per_class = {}
    for i in keep:
        per_class.setdefault(classes[i], []).append(i)
    largest = max(per_class.values(), key=len)
    if len(largest) == 1:
        raise PromptTooLong(
            f"prompt does not fit in {max_tokens} tokens even with one exemplar per class "
            f"({tokens} tokens); shorten the inputs or raise the limit"
        )
    keep.remove(largest[-1])


def fit_to_budget(blocks: list[str], classes: list[int], assemble: Callable[[list[int]], str], max_tokens: int,
                  count: Callable[[str], int]) -> list[int]:
    """Indices of the exemplar blocks to keep so that assemble(kept) fits in max_tokens.
    Per-block counts give a cheap estimate first; the assembled text is then counted exactly."""
    keep = list(range(len(blocks)))
    sizes = [count(b + SEPARATOR) for b in blocks]
    overhead = count(assemble([]))
    while (estimate := overhead + sum(sizes[i] for i in keep)) > max_tokens:
        drop_one(keep, classes, estimate, max_tokens)
    while (exact := count(assemble(keep))) > max_tokens:
        drop_one(keep, classes, exact, max_tokens)
    return keep


def build_prompt(
    task: Task,
    query: Example,
    rng: random.Random,
    *,
    k: int | tuple[int, int] = 4,
    setting: Setting = Setting(),
    fmt: str | None = None,
    pool: SymbolPool | None = None,
    label_rng: random.Random | None = None,
    avoid_natural: bool = True,
    max_tokens: int | None = None,
    count_tokens: Callable[[str], int] | None = None,
) -> Prompt:
    """One few-shot classification prompt for `query`.

    `k` is exemplars per class, or a (low, high) range drawn per prompt (tuning: 2–10, capped
    by the smallest class). `rng` drives format and exemplars; `label_rng` (default: rng)
    drives symbols and flips, so settings can share exemplars and differ only in labels.
    """
    if task.is_generation:
        raise SymtuneError(f"task {task.name} is a generation task; use build_generation_prompt")
    label_rng = label_rng or rng
    fmt = fmt or rng.choice(list(FORMATS))
    if isinstance(k, tuple):
        low, high = k
        if max_k(task) < low:
            raise SymtuneError(f"task {task.name}: a class has fewer than {low + 1} train examples")
        k = rng.randint(low, min(high, max_k(task)))
    exemplars = sample_exemplars(task, query, k, rng)
    strings = present_labels(task, setting, label_rng, pool, avoid_natural)
    n_classes = len(task.labels)
    shown = exemplar_labels(exemplars, setting, n_classes, label_rng)
    answer = shown_class(task.labels.index(query.label), n_classes, setting.flip_query)

    blocks = [render(fmt, input_text(ex), strings[s]) for (_, ex), s in zip(exemplars, shown)]
    head = f"{task.instruction}{SEPARATOR}" if setting.instruction and task.instruction else ""
    if setting.instruction and not task.instruction:
        raise SymtuneError(f"task {task.name} has no instruction; evaluate it without one")
    tail = render(fmt, input_text(query))

    def assemble(kept) -> str:
        return head + "".join(blocks[i] + SEPARATOR for i in kept) + tail

    keep = range(len(blocks))
    if max_tokens is not None:
        keep = fit_to_budget(blocks, [c for c, _ in exemplars], lambda kept: assemble(kept) + " " + strings[answer],
                             max_tokens, count_tokens or approx_tokens)
    text = assemble(keep)
    return Prompt(
        text=text,
        target=strings[answer],
        candidates=strings,
        answer=answer,
        mapping=dict(zip(task.labels, strings)),
        format=fmt,
        k=k,
        n_exemplars=len(keep),
    )


def build_generation_prompt(task: Task, query: Example, rng: random.Random, *, k: int = 4,
                            fmt: str = "input_output") -> Prompt:
    """k-shot prompt for an input → target task; exemplars are other examples of the task.
    With k=0 the query's own text is the prompt (BIG-bench inputs that carry their shots)."""
    if k == 0:
        return Prompt(text=query.text, target=query.label, candidates=[], answer=-1, format="raw")
    pool = [ex for ex in (task.train or task.test) if ex != query]
    if len(pool) < k:
        raise SymtuneError(f"task {task.name}: {len(pool)} examples besides the query, fewer than k={k}")
    shots = rng.sample(pool, k)
    text = "".join(render(fmt, input_text(ex), ex.label) + SEPARATOR for ex in shots)
    return Prompt(text=text + render(fmt, input_text(query)), target=query.label, candidates=[], answer=-1, format=fmt,
                  k=k, n_exemplars=k)


def eval_queries(task: Task, n: int | None, seed: int) -> list[Example]:
    """The first n test examples in a seeded order (all of them if fewer, or if n is None)."""
    if not task.test:
        raise SymtuneError(f"task {task.name} has no test split to evaluate on")
    order = list(task.test)
    random.Random(f"{seed}/{task.name}/queries").shuffle(order)
    return order[:n]


def build_eval_prompts(
    task: Task,
    *,
    n: int = 100,
    k: int = 4,
    setting: Setting = Setting(),
    seed: int = 0,
    fmt: str | None = None,
    pool: SymbolPool | None = None,
    max_tokens: int | None = None,
    count_tokens: Callable[[str], int] | None = None,
    skip: frozenset[int] = frozenset(),
) -> list[Prompt]:
    """n seeded prompts for a task: the queries of a seeded order, passing over the positions in
    `skip` and any query whose prompt does not fit max_tokens even with one exemplar per class.
    The same (seed, task, position) gives the same query, format and exemplars in every setting
    and for every model; only the presented labels differ."""
    prompts = []
    for i, query in enumerate(eval_queries(task, None, seed)):
        if len(prompts) == n:
            break
        if i in skip:
            continue
        rng = random.Random(f"{seed}/{task.name}/{i}/exemplars")
        label_rng = random.Random(f"{seed}/{task.name}/{i}/labels")
        try:
            prompt = build_prompt(task, query, rng, k=k, setting=setting, fmt=fmt, pool=pool, label_rng=label_rng,
                                  max_tokens=max_tokens, count_tokens=count_tokens)
        except PromptTooLong:
            continue
        prompts.append(replace(prompt, query=query, position=i))
    return prompts
