import random

import pytest

from symtune.errors import SymtuneError
from symtune.symbols import eval_pool, get_pool, letter_code, tuning_pool


def test_letter_codes_match_the_paper_boundaries():
    assert [letter_code(n) for n in (1, 26, 27, 702, 703)] == ["A", "Z", "AA", "ZZ", "AAA"]
    assert letter_code(10_000) == "NTP"  # last tuning code
    assert letter_code(10_001) == "NTQ"  # first eval code
    assert letter_code(100_000) == "EQXD"  # last eval code


def test_pool_sizes_are_30k_and_270k():
    assert len(tuning_pool()) == 30_000
    assert len(eval_pool()) == 270_000
    assert len(tuning_pool().members()) == 30_000
    assert len(eval_pool().members()) == 270_000


def test_pools_are_disjoint_and_word_lists_nested():
    assert not tuning_pool().members() & eval_pool().members()
    common = set(tuning_pool().words)
    assert len(common) == 10_000
    assert not common & set(eval_pool().words)
    assert len(eval_pool().words) == 90_000


def test_draws_stay_inside_their_pool_and_use_all_categories():
    for pool in (tuning_pool(), eval_pool()):
        members, rng = pool.members(), random.Random(0)
        drawn = [pool.draw(rng) for _ in range(3000)]
        assert set(drawn) <= members
        assert any(s.isdigit() for s in drawn)
        assert any(s.isupper() for s in drawn)
        assert any(s.islower() for s in drawn)


def test_sample_is_distinct_fresh_per_call_and_avoids_natural_labels():
    rng = random.Random(1)
    pool = tuning_pool()
    first = pool.sample(10, rng)
    assert len(set(first)) == 10
    assert pool.sample(10, rng) != first
    # a pool whose only words are the natural labels must never return them
    tiny = type(pool)("tiny", 0, 0, 1, 1, ("positive", "negative", "other"))
    for _ in range(50):
        assert "positive" not in tiny.sample(3, rng, avoid=["Positive", "negative"])


def test_same_seed_same_symbols():
    assert eval_pool().sample(5, random.Random(7)) == eval_pool().sample(5, random.Random(7))


def test_unknown_pool():
    with pytest.raises(SymtuneError, match="unknown symbol pool"):
        get_pool("train")
