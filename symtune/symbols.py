"""The paper's symbol pools (docs/method.md, Symbol pools): ~30k tuning symbols, ~270k disjoint eval symbols.

Each pool has three categories, picked uniformly per label, as in the authors'
`generate_symbols.py`: integers, bijective base-26 letter codes, and English words. The MIT
word lists the authors fetched over HTTP are replaced by wordfreq's English ranking (offline):
the 10k list is its 10,000 most frequent lowercase ASCII words, the 100k list its 100,000 most
frequent, so 10k ⊂ 100k holds as in the original.
"""

import functools
import random
from dataclasses import dataclass

from symtune.errors import SymtuneError


def letter_code(n: int) -> str:
    """Bijective base-26: 1 → A, 26 → Z, 27 → AA, 10,000 → NTP, 10,001 → NTQ."""
    code = ""
    while n > 0:
        n, r = divmod(n - 1, 26)
        code = chr(ord("A") + r) + code
    return code


@functools.cache
def english_words(n: int) -> tuple[str, ...]:
    """The n most frequent lowercase ASCII alphabetic English words (wordfreq 'large' list)."""
    import wordfreq

    words = [w for w in wordfreq.top_n_list("en", 2 * n, wordlist="large")
             if w.isascii() and w.isalpha() and w.islower()]
    if len(words) < n:
        raise SymtuneError(f"wordfreq has only {len(words)} usable English words, need {n}")
    return tuple(words[:n])


@dataclass(frozen=True)
class SymbolPool:
    """Integers in [int_lo, int_hi], letter codes for n in [code_lo, code_hi], and words."""

    name: str
    int_lo: int
    int_hi: int
    code_lo: int
    code_hi: int
    words: tuple[str, ...]

    def __len__(self) -> int:
        return (self.int_hi - self.int_lo + 1) + (self.code_hi - self.code_lo + 1) + len(self.words)

    def draw(self, rng: random.Random) -> str:
        category = rng.randrange(3)
        if category == 0:
            return str(rng.randint(self.int_lo, self.int_hi))
        if category == 1:
            return letter_code(rng.randint(self.code_lo, self.code_hi))
        return rng.choice(self.words)

    def sample(self, n: int, rng: random.Random, avoid=()) -> list[str]:
        """n distinct symbols in random order, none equal (case-insensitively) to `avoid`."""
        avoid = {a.casefold() for a in avoid}
        symbols: list[str] = []
        while len(symbols) < n:
            s = self.draw(rng)
            if s not in symbols and s.casefold() not in avoid:
                symbols.append(s)
        return symbols

    def members(self) -> set[str]:
        """Every symbol of the pool (for tests and audits; ~300k strings)."""
        ints = {str(i) for i in range(self.int_lo, self.int_hi + 1)}
        codes = {letter_code(n) for n in range(self.code_lo, self.code_hi + 1)}
        return ints | codes | set(self.words)


@functools.cache
def tuning_pool() -> SymbolPool:
    return SymbolPool("tune", 0, 9_999, 1, 10_000, english_words(10_000))


@functools.cache
def eval_pool() -> SymbolPool:
    common = set(english_words(10_000))
    rare = tuple(w for w in english_words(100_000) if w not in common)
    return SymbolPool("eval", 10_000, 99_999, 10_001, 100_000, rare)


def get_pool(name: str) -> SymbolPool:
    pools = {"tune": tuning_pool, "eval": eval_pool}
    if name not in pools:
        raise SymtuneError(f"unknown symbol pool {name!r}; choose one of {sorted(pools)}")
    return pools[name]()
