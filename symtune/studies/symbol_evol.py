"""Symbol-evol (Symbol-LLM; docs/method.md, SCAN and Symbol-evol): every prompt renames the output symbols.

For a text-to-symbol task with a declared output vocabulary (symbol -> meaning), each prompt
draws a fresh random string for every symbol, states the definitions, and writes the target
with those strings. The model cannot memorise "jump -> I_JUMP"; it has to read the
definitions. The rows use the symtune mixture format with kind="symbol_evol".
"""

import random
import re
import string

from symtune.errors import SymtuneError
from symtune.tasks.task import Example

ALPHABET = string.ascii_letters + string.digits


def fresh_strings(symbols: list[str], rng: random.Random, length: int = 6,
                  pool: list[str] | None = None) -> dict[str, str]:
    """A distinct random [A-Za-z0-9] string of `length` characters for every symbol, or a
    distinct random pick from `pool` when one is given."""
    if pool is not None:
        if len(set(pool)) < len(symbols):
            raise SymtuneError(f"a pool of {len(set(pool))} strings cannot name {len(symbols)} symbols")
        return dict(zip(symbols, rng.sample(sorted(set(pool)), len(symbols))))
    mapping = {}
    while len(mapping) < len(symbols):
        candidate = "".join(rng.choices(ALPHABET, k=length))
        if candidate not in mapping.values() and candidate not in symbols:
            mapping[symbols[len(mapping)]] = candidate
    return mapping


def rename_symbols(target: str, mapping: dict[str, str]) -> str:
    """`target` with every whole-token occurrence of a symbol replaced by its new string."""
    pattern = "|".join(re.escape(s) for s in sorted(mapping, key=len, reverse=True))
    return re.sub(rf"(?<!\w)(?:{pattern})(?!\w)", lambda m: mapping[m.group(0)], target)


def definitions(mapping: dict[str, str], vocabulary: dict[str, str], rng: random.Random) -> str:
    """The definition block, one "<string> means <meaning>" line per symbol, in random order."""
    lines = [f"{new} means {vocabulary[symbol]}" for symbol, new in mapping.items()]
    rng.shuffle(lines)
    return "Symbols:\n" + "\n".join(lines)


def symbol_evol_rows(
    examples: list[Example], vocabulary: dict[str, str], *, task: str, n: int, seed: int,
    k: int = 0, length: int = 6, exemplars: list[Example] | None = None, pool: list[str] | None = None,
) -> list[dict]:
    """`n` mixture rows. Each row: fresh strings for the whole vocabulary, their definitions,
    `k` solved exemplars and one query, all written with that row's strings.

    `examples` hold the input in `text` and the symbolic target in `label`; `vocabulary` maps
    each output symbol to its meaning (e.g. scan.SCAN_ACTIONS). Query examples are taken in a
    seeded random order, cycling when `n` exceeds their number. Exemplars come from
    `exemplars` if given (e.g. train examples for test queries), else from `examples`; the
    strings come from `pool` if given (see fresh_strings)."""
    if not vocabulary:
        raise SymtuneError("Symbol-evol needs a declared output vocabulary")
    available = len(examples) - 1 if exemplars is None else len(exemplars)  # the query is never its own exemplar
    if not 0 <= k <= available:
        raise SymtuneError(f"Symbol-evol needs k={k} exemplars besides the query, got {available}")
    rng = random.Random(seed)
    order = list(range(len(examples)))
    rng.shuffle(order)
    rows = []
    for i in range(n):
        query = order[i % len(order)]
        others = examples[:query] + examples[query + 1:] if exemplars is None else exemplars
        shots = rng.sample(others, k)
        mapping = fresh_strings(list(vocabulary), rng, length, pool)
        blocks = [definitions(mapping, vocabulary, rng)]
        for shot in shots:
            blocks.append(f"Input: {shot.text}\nOutput: {rename_symbols(shot.label, mapping)}")
        blocks.append(f"Input: {examples[query].text}\nOutput:")
        rows.append({
            "id": f"{i + 1:06d}", "task": task, "kind": "symbol_evol", "format": "input_output",
            "seed": seed, "k": k, "prompt": "\n\n".join(blocks),
            "completion": " " + rename_symbols(examples[query].label, mapping),
            "labels": list(mapping.values()), "mapping": mapping,
        })
    return rows
