"""Batching and distribution: work grouped by length under a token budget (sorted, so padding
stays small), padded into tensors, and under `accelerate launch` whole batches dealt to processes
and the results gathered, so every example is computed in the same batch as in a single-process
run. The scorers and generation run their work through map_batches.
"""

import os
from collections.abc import Callable, Sequence

import torch
from tqdm.auto import tqdm


def length_batches(lengths: Sequence[int], token_budget: int) -> list[list[int]]:
    """Indices grouped longest first so that len(batch) * longest <= token_budget (or one item)."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches = []
    for i in order:
        if batches and (len(batches[-1]) + 1) * lengths[batches[-1][0]] <= token_budget:
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches


def process_state():
    """accelerate's view of the processes. Without CUDA, processes started by torchrun (or
    `accelerate launch --multi_gpu`) are joined over gloo on the CPU."""
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1)


def map_batches(fn: Callable[[list], list], items: list, lengths: Sequence[int], *, token_budget: int,
                progress: bool = False, desc: str | None = None,
                on_batch: Callable[[list[int], list], None] | None = None) -> list:
    """fn over length batches of items, in order of items. Under several processes
    (accelerate) each takes every n-th batch and the results are gathered on all of them.
    `on_batch(indices, results)` sees each finished batch of this process (for caching)."""
    from accelerate.utils import gather_object

    state = process_state()
    mine = length_batches(lengths, token_budget)[state.process_index :: state.num_processes]
    done = []
    with tqdm(total=sum(map(len, mine)), desc=desc, disable=not progress or not state.is_local_main_process) as bar:
        for batch in mine:
            results = fn([items[i] for i in batch])
            if on_batch:
                on_batch(batch, results)
            done += zip(batch, results)
            bar.update(len(batch))
    if state.num_processes > 1:
        done = gather_object(done)
    out = [None] * len(items)
    for i, result in done:
        out[i] = result
    return out


def pad(seqs: Sequence[Sequence[int]], value: int, left: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, attention mask) padded to the longest sequence."""
    width = max(map(len, seqs))
    ids = torch.full((len(seqs), width), value, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, seq in enumerate(seqs):
        span = slice(width - len(seq), width) if left else slice(0, len(seq))
        ids[row, span] = torch.tensor(seq, dtype=torch.long)
        mask[row, span] = 1
    return ids, mask


def pad_id(tokenizer) -> int:
    for token_id in (tokenizer.pad_token_id, tokenizer.eos_token_id, 0):
        if token_id is not None:
            return token_id
