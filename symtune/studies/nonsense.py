"""Pronounceable nonsense words that no pretrained model can know (Lampinen et al. 2025).

Words are built from English-like syllables (a legal onset, a vowel, a legal coda), one or two
syllables, 4–5 letters. Any string that wordfreq knows as English is rejected, so the words
carry no prior meaning.
"""

import random

from wordfreq import zipf_frequency

from symtune.errors import SymtuneError

ONSETS = (
    "b bl br ch d dr f fl fr g gl gr h j k kl kr l m n p pl pr r s sh sk sl sm sn sp st sw "
    "t th tr tw v w y z"
).split()
VOWELS = "a e i o u".split()
NUCLEI = VOWELS * 2 + "ai ee oa oo ou".split()  # plain vowels twice as likely as digraphs
MEDIAL_ONSETS = "b d f g k l m n p r s t v z".split()  # one consonant between two syllables
CODAS = "b d f g k l m n p t x ck ff ft ld lk lp lt mp nd nk nt pt rb rd rk rm rn rp rt sk sp st".split()
SIMPLE_CODAS = "b d f g k l m n p t x".split()


def _candidate(rng: random.Random) -> str:
    word = rng.choice([""] + ONSETS) + rng.choice(NUCLEI)
    if rng.random() < 0.5:
        return word + rng.choice(CODAS)  # one syllable: "femp", "glon"
    word += rng.choice(MEDIAL_ONSETS)
    if rng.random() < 0.5:
        return word + rng.choice(VOWELS + ["y"])  # open second syllable: "ro-ny"
    return word + rng.choice(VOWELS) + rng.choice(SIMPLE_CODAS)  # closed: "ha-put"


def nonsense_words(n: int, seed: int) -> list[str]:
    """`n` distinct 4–5-letter nonsense words, the same for the same seed; the list for a
    smaller `n` is a prefix of the list for a larger one."""
    rng = random.Random(seed)
    words, seen = [], set()
    for _ in range(200 * n + 1000):
        if len(words) == n:
            break
        word = _candidate(rng)
        # "-ed" words would read as past participles, which the relation templates build
        if 4 <= len(word) <= 5 and not word.endswith("ed") and word not in seen:
            seen.add(word)
            if zipf_frequency(word, "en") == 0:
                words.append(word)
    if len(words) < n:
        raise SymtuneError(f"could not build {n} distinct nonsense words (got {len(words)})")
    return words
