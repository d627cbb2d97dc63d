"""Tuning data: mixtures in, tokenized prompt/completion samples, a seeded per-step schedule, packed batches.

A sample is (token ids, number of prompt tokens); the loss goes on the tokens after the prompt.
Every step's prompts are fixed by the seed and the step number alone, so a resumed run (or one
spread over several processes) sees exactly the prompts of an uninterrupted single-process run.
"""

import math
import random
import sys

import torch

from symtune.errors import SymtuneError
from symtune.mixture import read_mixture
from symtune.train.recipe import Recipe, stage_steps


def encode(tokenizer, prompts: list[str], completions: list[str]) -> list[tuple[list[int], int]]:
    """Tokenize prompt+completion jointly and split where the prompt's own tokens end (as the scorer does)."""
    prompt_ids = tokenizer(prompts).input_ids
    joint_ids = tokenizer([p + c for p, c in zip(prompts, completions)]).input_ids
    samples = []
    for prompt, joint in zip(prompt_ids, joint_ids):
        split = 0
        while split < min(len(prompt), len(joint) - 1) and prompt[split] == joint[split]:
            split += 1
        samples.append((joint, split))
    return samples


class TrainingData:
    """All samples of all mixtures a recipe names, and the prompts of each step."""

    def __init__(self, recipe: Recipe, data, tokenizer, context: int):
        self.max_len = min(recipe.max_seq_len, context)
        if recipe.stages and data is not None:
            raise SymtuneError("the recipe's stages name their own data; drop --data")
        if not recipe.stages and data is None:
            raise SymtuneError("no training data: give a mixture folder (--data) or a recipe with stages")
        stages = recipe.stages or [{"data": data}]
        self.mixtures, self.samples, self.skipped = {}, [], 0
        sources_per_stage = []
        for stage in stages:
            paths = stage["data"] if isinstance(stage["data"], list) else [stage["data"]]
            weights = stage.get("ratio", [1] * len(paths))
            sources = []
            for path, weight in zip(paths, weights):
                sources += self.sources(str(path), weight, recipe.symbol_fraction, tokenizer, context)
            sources_per_stage.append(sources)
        self.schedule, self.stage_of_step = [], []
        for k, (sources, steps) in enumerate(zip(sources_per_stage, stage_steps(recipe))):
            self.schedule += step_prompts(sources, steps, recipe.batch_size, f"{recipe.seed}/stage{k}")
            self.stage_of_step += [k] * steps
        if self.skipped:
            print(f"symtune: skipped {self.skipped} prompts longer than max_seq_len={self.max_len} tokens",
                  file=sys.stderr)

    def sources(self, path: str, weight: float, symbol_fraction, tokenizer, context: int) -> list[tuple[list, float]]:
        """(sample indices, weight) of one mixture: one source, or symbol and other rows when resampled by kind."""
        if path not in self.mixtures:
            rows, manifest = read_mixture(path)
            indices = {"symbol": [], "other": []}
            encoded = encode(tokenizer, [r["prompt"] for r in rows], [r["completion"] for r in rows])
            for line, (row, sample) in enumerate(zip(rows, encoded), 1):
                if len(sample[0]) > context:
                    raise SymtuneError(f"{path}/train.jsonl: row {line} has {len(sample[0])} tokens, longer than the "
                                       f"model's context of {context}; rebuild the mixture with a smaller --max-tokens")
                if len(sample[0]) > self.max_len:
                    self.skipped += 1
                    continue
                indices["symbol" if row.get("kind") == "symbol" else "other"].append(len(self.samples))
                self.samples.append(sample)
            self.mixtures[path] = (indices, manifest)
        indices = self.mixtures[path][0]
        if symbol_fraction is None:
            parts = [(indices["symbol"] + indices["other"], weight)]
        else:
            parts = [(indices["symbol"], weight * symbol_fraction), (indices["other"], weight * (1 - symbol_fraction))]
        for ids, w in parts:
            if w > 0 and not ids:
                raise SymtuneError(f"{path} has no prompts to draw from for weight {w} "
                                   f"(all too long, or no rows of the kind symbol_fraction asks for)")
        return [(ids, w) for ids, w in parts if w > 0]

    def global_batch(self, step: int) -> list[tuple[list[int], int]]:
        return [self.samples[i] for i in self.schedule[step]]


def step_prompts(sources, steps: int, batch_size: int, seed: str) -> list[list[int]]:
    """Sample indices of each step: each slot picks a source by weight, then that source's next
    prompt in a fresh shuffle per pass (without replacement within a pass)."""
    rng = random.Random(seed)
    picks = rng.choices(range(len(sources)), weights=[w for _, w in sources], k=steps * batch_size)
    orders, cursors = [[] for _ in sources], [0] * len(sources)
    flat = []
    for s in picks:
        if cursors[s] == len(orders[s]):
            orders[s], cursors[s] = rng.sample(sources[s][0], len(sources[s][0])), 0
        flat.append(orders[s][cursors[s]])
        cursors[s] += 1
    return [flat[i: i + batch_size] for i in range(0, len(flat), batch_size)]


def pack(samples: list[tuple[list[int], int]], width: int) -> list[list[tuple[list[int], int]]]:
    """Rows of samples, each row at most `width` tokens (first-fit, longest first)."""
    rows, room = [], []
    for sample in sorted(samples, key=lambda s: -len(s[0])):
        for r, free in enumerate(room):
            if len(sample[0]) <= free:
                rows[r].append(sample)
                room[r] -= len(sample[0])
                break
        else:
            rows.append([sample])
            room.append(width - len(sample[0]))
    return rows


def make_batches(samples: list[tuple[list[int], int]], pad_id: int, max_tokens: int | None = None,
                 varlen: bool = False) -> list[dict]:
    """The samples packed into rows (see rows_batch) and dealt round-robin into the fewest
    micro-batches of at most `max_tokens` padded tokens each (a single row may be wider).
    varlen: each micro-batch flattened into one row with its sequence boundaries (varlen_batch)."""
    rows = pack(samples, max(len(ids) for ids, _ in samples))
    width = max(sum(len(ids) for ids, _ in row) for row in rows)
    rows_per_part = max(1, max_tokens // width) if max_tokens else len(rows)
    parts = math.ceil(len(rows) / rows_per_part)
    return [(varlen_batch if varlen else rows_batch)(rows[i::parts], pad_id) for i in range(parts)]


def make_batch(samples: list[tuple[list[int], int]], pad_id: int) -> dict:
    return make_batches(samples, pad_id)[0]


def rows_batch(rows: list[list[tuple[list[int], int]]], pad_id: int) -> dict:
    """Packed rows with position ids restarting at each sample, so that samples never attend to each
    other, and `select`: the positions whose next token is a completion token, with those `targets`.

    Rows are as wide as the longest sample: shorter samples fill the rest of the rows with little
    padding, and attention (quadratic in the row width) costs no more than for unpacked samples."""
    width = max(sum(len(ids) for ids, _ in row) for row in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    position_ids = torch.zeros((len(rows), width), dtype=torch.long)
    select = torch.zeros((len(rows), width), dtype=torch.bool)
    targets = []
    for r, row in enumerate(rows):
        start = 0
        for ids, n_prompt in row:
            end = start + len(ids)
            input_ids[r, start:end] = torch.tensor(ids)
            position_ids[r, start:end] = torch.arange(len(ids))
            select[r, start + n_prompt - 1: end - 1] = True
            targets += ids[n_prompt:]
            start = end
        position_ids[r, start:] = torch.arange(width - start)  # the padding is a sequence of its own
    return {"input_ids": input_ids, "position_ids": position_ids, "select": select,
            "targets": torch.tensor(targets, dtype=torch.long)}


def varlen_batch(rows: list[list[tuple[list[int], int]]], pad_id: int) -> dict:
    """The rows' samples end to end in a single row without padding, plus `cu_seq_lens` (where each
    sample starts, then the total) and `max_length`, the longest sample. Flash attention keeps
    samples apart only this way: transformers runs it per sequence (varlen) when given these
    boundaries; with several rows and no boundaries it attends causally across the whole row."""
    samples = [sample for row in rows for sample in row]
    lengths = torch.tensor([len(ids) for ids, _ in samples])
    batch = rows_batch([samples], pad_id)
    batch["cu_seq_lens"] = torch.cat([torch.zeros(1, dtype=torch.int32), lengths.cumsum(0).to(torch.int32)])
    batch["max_length"] = int(lengths.max())
    return batch


def supervised_tokens(samples) -> int:
    return sum(len(ids) - n_prompt for ids, n_prompt in samples)
