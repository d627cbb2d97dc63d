import re
from collections import Counter

import pytest

from symtune.errors import SymtuneError
from symtune.tasks.builtin import FAMILIES, lexical, linear, load_builtin


@pytest.fixture(scope="module")
def tasks():
    return load_builtin(seed=0, n_train=60, n_test=30)


def _ints(text):
    return [int(v) for v in text.strip("[]").split(", ")]


def _is_prime(n):
    return n > 1 and all(n % d for d in range(2, n))


def _sorted(xs):
    return all(a <= b for a, b in zip(xs, xs[1:]))


# Each rule written again here, independently of the generators.
RULES = {
    "builtin/number_parity": lambda t: ["even", "odd"][int(t) % 2],
    "builtin/number_magnitude": lambda t: "large" if int(t) > 500 else "small",
    "builtin/number_prime": lambda t: "prime" if _is_prime(int(t)) else "composite",
    "builtin/number_multiple_of_3": lambda t: "multiple of three" if int(t) % 3 == 0 else "not a multiple of three",
    "builtin/string_vowel_start": lambda t: "vowel" if t[0] in "aeiou" else "consonant",
    "builtin/string_digit": lambda t: "digit" if any(c.isdigit() for c in t) else "no digit",
    "builtin/string_palindrome": lambda t: "palindrome" if t == t[::-1] else "not palindrome",
    "builtin/string_case": lambda t: "uppercase" if t.isupper() else "lowercase",
    "builtin/string_length": lambda t: "long" if len(t) > 6 else "short",
    "builtin/list_sorted": lambda t: "sorted" if _sorted(_ints(t)) else "unsorted",
    "builtin/list_duplicate": lambda t: "distinct" if len(set(_ints(t))) == len(_ints(t)) else "duplicate",
    "builtin/list_sum_parity": lambda t: ["even", "odd"][sum(_ints(t)) % 2],
    "builtin/list_first_last": lambda t: "first larger" if _ints(t)[0] > _ints(t)[-1] else "last larger",
}
COLOUR_WORDS = {"red", "blue", "green", "yellow", "purple", "pink", "black", "white", "grey", "gray",
                "brown", "orange", "violet", "golden", "silver", "beige", "crimson", "navy"}


def test_all_families_give_the_expected_tasks(tasks):
    assert list(dict.fromkeys(t.source for t in tasks)) == [f"builtin:{f}" for f in FAMILIES]
    assert len(tasks) == 20 and len({t.name for t in tasks}) == 20
    for task in tasks:
        assert task.name.startswith("builtin/")
        assert task.instruction and task.instruction.endswith(".")
        assert len(task.train) == 60 and len(task.test) == 30
        task.validate()


def test_same_seed_same_tasks_and_other_seed_other_examples(tasks):
    assert load_builtin(seed=0, n_train=60, n_test=30) == tasks
    other = load_builtin(seed=1, n_train=60, n_test=30)
    for a, b in zip(tasks, other):
        assert a.name == b.name and a.labels == b.labels
        assert a.train != b.train and a.test != b.test


def test_a_family_is_the_same_alone_as_among_all(tasks):
    assert load_builtin("lists", seed=0, n_train=60, n_test=30) == [t for t in tasks if t.source == "builtin:lists"]


def test_rules_hold_for_every_example(tasks):
    ruled = [t for t in tasks if t.source not in ("builtin:linear", "builtin:lexical")]
    assert {t.name for t in ruled} == set(RULES)
    for task in ruled:
        for ex in task.train + task.test:
            assert RULES[task.name](ex.text) == ex.label, (task.name, ex)


def test_linear_follows_algorithm_1(tasks):
    linear_tasks = [t for t in tasks if t.source == "builtin:linear"]
    assert [t.name for t in linear_tasks] == ["builtin/linear_2d", "builtin/linear_4d", "builtin/linear_8d"]
    for task, dims in zip(linear_tasks, (2, 4, 8)):
        a, p, t = task.meta["coefficients"], task.meta["pivot"], task.meta["threshold"]
        assert len(a) == len(p) == dims and t == sum(x * y for x, y in zip(a, p))
        assert task.labels == ["below", "above"]
        for ex in task.train + task.test:
            x = _ints(ex.text)
            assert len(x) == dims and all(1 <= v <= 1000 for v in x)
            assert ex.label == ("above" if sum(u * v for u, v in zip(x, a)) > t else "below")


def test_linear_dimensions_are_configurable():
    (task,) = linear.tasks(seed=3, n_train=10, n_test=4, dims=(16,))
    assert task.name == "builtin/linear_16d"
    assert all(len(_ints(ex.text)) == 16 for ex in task.train)
    with pytest.raises(SymtuneError, match="dimensions"):
        linear.tasks(seed=3, n_train=10, n_test=4, dims=(0,))


def _mentions(text, words):
    return any(re.search(rf"\b{re.escape(w)}\b", text.lower()) for w in words)


def test_lexical_inputs_carry_their_class_word_and_never_a_label(tasks):
    word_lists = {
        "builtin/review_sentiment": lexical.SENTIMENT,
        "builtin/keyword_topic": lexical.TOPICS,
        "builtin/animal_or_object": lexical.THINGS,
        "builtin/colour_word": lexical.COLOURS,
    }
    for task in (t for t in tasks if t.source == "builtin:lexical"):
        for ex in task.train + task.test:
            assert not _mentions(ex.text, task.labels), (task.name, ex)
            for label, words in word_lists[task.name].items():
                assert _mentions(ex.text, words) == (label == ex.label), (task.name, ex, label)
            if task.name == "builtin/colour_word":
                assert _mentions(ex.text, COLOUR_WORDS) == (ex.label == "colour"), ex


def test_splits_are_disjoint_varied_and_balanced(tasks):
    for task in tasks:
        train, test = {ex.text for ex in task.train}, {ex.text for ex in task.test}
        assert len(train) == len(task.train) and len(test) == len(task.test), task.name
        assert not train & test, task.name
        for split in (task.train, task.test):
            counts = Counter(ex.label for ex in split)
            assert set(counts) == set(task.labels), task.name
            assert max(counts.values()) - min(counts.values()) <= 1, (task.name, counts)
        # shuffled, not in class order
        assert [ex.label for ex in task.train] != [task.labels[i % len(task.labels)] for i in range(len(task.train))]


def test_bad_requests_raise_one_clear_error():
    with pytest.raises(SymtuneError, match="known: linear, numbers, strings, lists, lexical"):
        load_builtin("nonsense")
    with pytest.raises(SymtuneError, match="n_test"):
        load_builtin("numbers", n_test=-1)
    with pytest.raises(SymtuneError, match="distinct"):
        load_builtin("numbers", n_train=2000, n_test=0)  # number_magnitude has only 999 inputs


def test_default_sizes_are_200_train_and_100_test_per_task():
    tasks = load_builtin()
    assert tasks and all((len(t.train), len(t.test)) == (200, 100) for t in tasks)
