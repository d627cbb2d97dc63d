"""String properties: the input is a random string of lowercase letters (some with digits)."""

import random
import string

from symtune.tasks.builtin.sampling import sample_family
from symtune.tasks.task import Task

VOWELS = "aeiou"
CONSONANTS = "".join(c for c in string.ascii_lowercase if c not in VOWELS)


def _letters(rng: random.Random, shortest: int, longest: int) -> str:
    return "".join(rng.choices(string.ascii_lowercase, k=rng.randint(shortest, longest)))


def _with_digits(rng: random.Random) -> str:
    chars = list(_letters(rng, 4, 8))
    for i in rng.sample(range(len(chars)), rng.randint(1, 2)):
        chars[i] = rng.choice(string.digits)
    return "".join(chars)


def _palindrome(rng: random.Random) -> str:
    half = _letters(rng, 2, 4)
    return half + _letters(rng, 0, 1) + half[::-1]  # 4..9 letters, like _not_palindrome


def _not_palindrome(rng: random.Random) -> str:
    while True:
        s = _letters(rng, 4, 9)
        if s != s[::-1]:
            return s


TASKS = {
    "string_vowel_start": (
        "Say whether the word starts with a vowel or a consonant.",
        {
            "vowel": lambda rng: rng.choice(VOWELS) + _letters(rng, 2, 7),
            "consonant": lambda rng: rng.choice(CONSONANTS) + _letters(rng, 2, 7),
        },
    ),
    "string_digit": (
        "Say whether the string contains a digit.",
        {"digit": _with_digits, "no digit": lambda rng: _letters(rng, 4, 8)},
    ),
    "string_palindrome": (
        "Say whether the string reads the same backwards as forwards.",
        {"palindrome": _palindrome, "not palindrome": _not_palindrome},
    ),
    "string_case": (
        "Say whether the word is written in uppercase or lowercase letters.",
        {"uppercase": lambda rng: _letters(rng, 3, 8).upper(), "lowercase": lambda rng: _letters(rng, 3, 8)},
    ),
    "string_length": (
        "Say whether the word is short (at most 6 letters) or long (more than 6).",
        {"short": lambda rng: _letters(rng, 2, 6), "long": lambda rng: _letters(rng, 7, 12)},
    ),
}


def tasks(seed: int, n_train: int, n_test: int) -> list[Task]:
    return sample_family("strings", TASKS, seed, n_train, n_test)
