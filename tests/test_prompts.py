import random
from collections import Counter

import pytest
from helpers import toy_task

from symtune.errors import SymtuneError
from symtune.prompts import (
    FORMATS,
    GRID,
    SEPARATOR,
    Setting,
    build_eval_prompts,
    build_generation_prompt,
    build_prompt,
    input_text,
)
from symtune.symbols import eval_pool, tuning_pool
from symtune.tasks.task import Example, Task


def exemplar_blocks(prompt):
    return prompt.text.split(SEPARATOR)[:-1]


def shown_labels(prompt):
    return [block.rsplit(" ", 1)[1] for block in exemplar_blocks(prompt)]


def test_at_least_ten_formats_each_ending_in_the_label():
    assert len(FORMATS) >= 10
    assert all(t.endswith(" {y}") and "{x}" in t for t in FORMATS.values())


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_k_per_class_no_instruction_and_query_last(fmt):
    task = toy_task()
    query = task.train[0]
    p = build_prompt(task, query, random.Random(0), k=3, fmt=fmt, pool=tuning_pool())
    assert task.instruction not in p.text
    assert Counter(shown_labels(p)) == {s: 3 for s in p.candidates}
    assert p.text.endswith(FORMATS[fmt].split("{x}")[1].removesuffix(" {y}"))
    assert input_text(query) in p.text.split(SEPARATOR)[-1]
    assert p.candidates[p.answer] == p.mapping[query.label] == p.target
    assert p.completion == " " + p.target


def test_query_is_never_among_its_exemplars():
    task = toy_task(per_class=3)
    for seed in range(30):
        query = task.train[seed % len(task.train)]
        p = build_prompt(task, query, random.Random(seed), k=2)
        assert all(input_text(query) not in block for block in exemplar_blocks(p))


def test_mapping_is_consistent_fresh_and_symbols_come_from_the_pool():
    task = toy_task(labels=("a", "b", "c"))
    members = eval_pool().members()
    mappings = set()
    for seed in range(20):
        p = build_prompt(task, task.test[0], random.Random(seed), k=4, setting=Setting(symbols=True))
        assert set(p.candidates) <= members and len(set(p.candidates)) == 3
        for block in exemplar_blocks(p):
            label = next(lab for lab in task.labels if f"train {lab} " in block)
            assert block.endswith(" " + p.mapping[label])
        mappings.add(tuple(p.candidates))
    assert len(mappings) == 20


def test_natural_setting_with_instruction():
    task = toy_task()
    p = build_prompt(task, task.test[0], random.Random(0), k=2, setting=Setting(instruction=True, symbols=False))
    assert p.text.startswith(task.instruction + SEPARATOR)
    assert p.candidates == task.labels


def test_shuffled_order_interleaves_classes():
    task = toy_task()
    orders = {tuple(shown_labels(build_prompt(task, task.test[0], random.Random(s), k=4,
                                              setting=Setting(symbols=False))))
              for s in range(10)}
    assert len(orders) > 5  # not grouped by class in a fixed order


def test_pair_inputs_on_separate_lines():
    task = toy_task(pair=True)
    p = build_prompt(task, task.test[0], random.Random(0), k=1, fmt="input_output")
    assert "Input: test neg example number 0\nsecond part 0\nOutput:" in p.text


def test_paper1_flip_swaps_exemplars_and_query():
    task = toy_task()
    query = task.test[0]  # label "neg"
    p = build_prompt(task, query, random.Random(0), k=3, setting=Setting(symbols=False, flip_query=True))
    assert p.target == "pos"
    for block in exemplar_blocks(p):
        true = "neg" if "train neg" in block else "pos"
        assert block.endswith(" " + ("pos" if true == "neg" else "neg"))


@pytest.mark.parametrize("fraction", [0.0, 0.25, 0.5, 0.75, 1.0])
def test_paper2_flip_fraction_of_exemplars_only(fraction):
    task = toy_task()
    p = build_prompt(task, task.test[0], random.Random(3), k=4, setting=Setting(symbols=False, flip=fraction))
    flipped = sum(("train neg" in b) != b.endswith(" neg") for b in exemplar_blocks(p))
    assert flipped == 2 * round(4 * fraction)
    assert p.target == "neg"  # the query keeps its true label


def test_flips_need_binary_tasks():
    task = toy_task(labels=("a", "b", "c"))
    with pytest.raises(SymtuneError, match="binary"):
        build_prompt(task, task.test[0], random.Random(0), k=2, setting=Setting(flip_query=True))


def test_random_labels_are_inconsistent_with_classes():
    task = toy_task(per_class=40)
    consistent = 0
    for seed in range(20):
        p = build_prompt(task, task.test[0], random.Random(seed), k=8, setting=Setting(random_labels=True))
        by_class = {}
        for block in exemplar_blocks(p):
            by_class.setdefault("train neg" in block, set()).add(block.rsplit(" ", 1)[1])
        consistent += all(len(v) == 1 for v in by_class.values())
    assert consistent < 3


def test_tuning_k_range_is_respected_and_capped_by_class_size():
    task = toy_task(per_class=6)
    ks = {build_prompt(task, task.train[0], random.Random(s), k=(2, 10)).k for s in range(60)}
    assert ks <= set(range(2, 6)) and len(ks) > 1


def test_budget_drops_exemplars_evenly_never_a_whole_class():
    task = toy_task(labels=("a", "b", "c"), per_class=20)
    full = build_prompt(task, task.test[0], random.Random(0), k=6, setting=Setting(symbols=False))
    count = len  # characters as tokens, for a deterministic test
    p = build_prompt(task, task.test[0], random.Random(0), k=6, setting=Setting(symbols=False),
                     max_tokens=len(full.text) // 2, count_tokens=count)
    assert len(p.text) + len(p.completion) <= len(full.text) // 2
    per_class = Counter(shown_labels(p))
    assert set(per_class) == {"a", "b", "c"} and max(per_class.values()) - min(per_class.values()) <= 1
    assert p.text.endswith(full.text.split(SEPARATOR)[-1])  # the query is kept


def test_prompt_that_cannot_fit_is_a_clear_error():
    task = toy_task()
    with pytest.raises(SymtuneError, match="even with one exemplar per class"):
        build_prompt(task, task.test[0], random.Random(0), k=4, max_tokens=10)


def test_class_with_fewer_examples_than_k():
    task = toy_task(per_class=3)
    with pytest.raises(SymtuneError, match="fewer than k=5"):
        build_prompt(task, task.test[0], random.Random(0), k=5)


def test_unknown_format():
    task = toy_task()
    with pytest.raises(SymtuneError, match="unknown prompt format"):
        build_prompt(task, task.test[0], random.Random(0), k=2, fmt="nope")


def test_eval_prompts_are_deterministic_and_share_exemplars_across_settings():
    task = toy_task(per_class=30)
    a = build_eval_prompts(task, n=5, k=4, setting=GRID[0], seed=1)
    b = build_eval_prompts(task, n=5, k=4, setting=GRID[0], seed=1)
    assert [p.text for p in a] == [p.text for p in b]
    natural = build_eval_prompts(task, n=5, k=4, setting=Setting(symbols=False), seed=1)
    symbols = build_eval_prompts(task, n=5, k=4, setting=Setting(symbols=True), seed=1)
    def inputs(p):
        return [line.split(" -> ")[0] for line in p.text.splitlines() if "example number" in line]

    for nat, sym in zip(natural, symbols):
        assert inputs(nat) == inputs(sym) and nat.format == sym.format
        assert nat.candidates == task.labels and nat.candidates != sym.candidates
    other = build_eval_prompts(task, n=5, k=4, setting=GRID[0], seed=2)
    assert [p.text for p in other] != [p.text for p in a]


def test_eval_needs_a_test_split():
    task = toy_task()
    task.test = []
    with pytest.raises(SymtuneError, match="no test split"):
        build_eval_prompts(task, n=3)


def test_generation_prompt_uses_other_examples_as_shots():
    examples = [Example(f"[{i}]", f"[{i}, {i}]") for i in range(10)]
    task = Task("lists/double", [], [], examples, eval_only=True).validate()
    p = build_generation_prompt(task, examples[0], random.Random(0), k=4)
    assert p.text.count("Output:") == 5 and p.target == "[0, 0]"
    assert "Input: [0]\nOutput: [0, 0]" not in p.text
    raw = build_generation_prompt(task, examples[1], random.Random(0), k=0)
    assert raw.text == "[1]" and raw.format == "raw"


def test_class_pairs_make_a_binary_task_per_pair_of_classes():
    from symtune.tasks.task import class_pairs, family

    task = toy_task("tri", labels=("a", "b", "c"))
    pairs = class_pairs(task)
    assert [p.name for p in pairs] == ["tri/a-vs-b", "tri/a-vs-c", "tri/b-vs-c"]
    assert all(family(p.name) == "tri" for p in pairs)
    # each generated task is a dataset of its own, and its class pairs are its
    assert family("builtin/keyword_topic/food-vs-sport") == family("builtin/keyword_topic") == "builtin/keyword_topic"
    assert {ex.label for ex in pairs[1].train} == {"a", "c"} and pairs[1].labels == ["a", "c"]
    assert len(pairs[1].test) == sum(ex.label in "ac" for ex in task.test)
    binary = toy_task("bin")
    assert class_pairs(binary) == [binary]
    five = toy_task("five", labels=tuple("abcde"))
    drawn = [p.name for p in class_pairs(five, most=4)]
    every = [p.name for p in class_pairs(five)]
    assert len(every) == 10 and len(drawn) == 4 and drawn == [n for n in every if n in drawn]  # a subset, in order
    assert drawn == [p.name for p in class_pairs(five, most=4)]  # seeded
    assert [p.name for p in class_pairs(task, most=3)] == [p.name for p in pairs]
