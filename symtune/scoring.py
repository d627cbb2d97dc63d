"""Scoring a causal LM on prompts: rank classification with a shared prefix, and generation.

Rank classification (papers.md §6.1.7): the summed log-probability of every token of each
candidate continuation after the prompt. The prompt is run once; its keys/values are copied
to every candidate and all candidates of a batch of prompts are scored in one more call.

A request may also carry several tails, e.g. a query and its content-free stand-in for
calibration: every continuation is then scored after context + tail for each tail, and the
context (the exemplars, most of the prompt) is still run only once.

Token boundary: a continuation is scored as it tokenizes after the prompt, not alone. The
prompt and each candidate are tokenized jointly and split at the prompt's own token count; if
a joint tokenization merges across that boundary, the split moves back to the longest token
prefix that all candidates share.

Work is batched by length under a token budget (sorted, so padding stays small); for the
shared-prefix scorer the budget counts each prompt once per cached copy. Under
`accelerate launch` whole batches are dealt to processes and the results gathered, so every
example is computed in the same batch as in a single-process run.
"""

import functools
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
from tqdm.auto import tqdm

from symtune.errors import SymtuneError


class Request(NamedTuple):
    context: str
    continuations: Sequence[str]
    tails: Sequence[str] = ("",)  # each continuation is scored after context + tail, for every tail


@dataclass
class Scores:
    """Per (tail, continuation), tail-major: index = tail * len(continuations) + continuation."""

    logprobs: list[float]  # summed log-probability of the continuation's tokens
    num_tokens: list[int]  # tokens per continuation, for the length-normalised score
    greedy: list[bool]  # every token of the continuation is the model's argmax


def common_prefix_len(seqs: Sequence[Sequence[int]]) -> int:
    n = 0
    for column in zip(*seqs):
        if any(t != column[0] for t in column):
            break
        n += 1
    return n


def boundary(head: list[int], fulls: list[list[int]]) -> int:
    """Where what follows `head` starts in each of `fulls` (head + something, tokenized jointly):
    at len(head) if every one extends it, else at the longest prefix they all share."""
    if all(len(f) > len(head) and f[: len(head)] == head for f in fulls):
        return len(head)
    return min(common_prefix_len(fulls), min(map(len, fulls)) - 1)


def encode_request(tokenizer, context: str, continuations: Sequence[str], tails: Sequence[str] = ("",)):
    """(shared prefix ids, the ids after it per (tail, continuation), how many of those ids at
    the end belong to the continuation and are scored)."""
    if not continuations:
        raise SymtuneError("a scoring request needs at least one continuation")
    fulls, starts = [], []
    for tail in tails:
        group = [tokenizer(context + tail + c).input_ids for c in continuations]
        start = boundary(tokenizer(context + tail).input_ids, group)
        seen = {}
        for i, ids in enumerate(group):
            j = seen.setdefault(tuple(ids[start:]), i)
            if j != i:
                raise SymtuneError(f"labels {continuations[j]!r} and {continuations[i]!r} collide: "
                                   "they tokenize identically after the prompt")
        fulls += group
        starts += [start] * len(group)
    split = min(boundary(tokenizer(context).input_ids, fulls), min(starts))
    if split < 1:
        raise SymtuneError(f"the context {context[-40:]!r} tokenizes to nothing the candidates share")
    return fulls[0][:split], [f[split:] for f in fulls], [len(f) - s for f, s in zip(fulls, starts)]


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


def last_n_mask(lengths: Sequence[int], scored: Sequence[int], width: int) -> torch.Tensor:
    """1 on the last scored[i] of the first lengths[i] positions of each row."""
    mask = torch.zeros((len(lengths), width), dtype=torch.long)
    for row, (length, n) in enumerate(zip(lengths, scored)):
        mask[row, length - n : length] = 1
    return mask


def continuation_scores(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> tuple[list[float], list[bool]]:
    """Summed log-prob and greedy flag over the masked positions of each row; logits[:, t]
    predicts targets[:, t]."""
    logprobs = torch.log_softmax(logits.float(), dim=-1)
    token_lp = logprobs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    is_argmax = (logprobs.argmax(-1) == targets) | (mask == 0)
    return (token_lp * mask).sum(-1).tolist(), is_argmax.all(-1).tolist()


@torch.inference_mode()
def score_shared_prefix(model, encoded: list, pad_value: int) -> list[Scores]:
    """One batch of encoded requests: the prefixes (left-padded) in one call, then every row
    after them (tail + continuation, right-padded) against the copied cache in a second call."""
    device = model.device
    prefixes = [prefix for prefix, _, _ in encoded]
    n_rows = [len(rows) for _, rows, _ in encoded]
    ids, mask = pad(prefixes, pad_value, left=True)
    ids, mask = ids.to(device), mask.to(device)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    out = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=1)
    repeats = torch.tensor(n_rows, device=device)
    first_logits = out.logits[:, -1].repeat_interleave(repeats, dim=0)  # predicts each row's first token

    rows = [row for _, rs, _ in encoded for row in rs]
    scored = [n for _, _, ns in encoded for n in ns]
    row_ids, row_mask = pad(rows, pad_value)
    row_ids, row_mask = row_ids.to(device), row_mask.to(device)
    owner = torch.arange(len(encoded), device=device).repeat_interleave(repeats)
    cache = out.past_key_values
    cache.batch_select_indices(owner)  # the prefix cache of each row's request, once per row
    logits = first_logits.unsqueeze(1)
    if row_ids.shape[1] > 1:
        rest = model(
            input_ids=row_ids[:, :-1],
            attention_mask=torch.cat([mask[owner], row_mask[:, :-1]], dim=1),
            position_ids=mask.sum(-1)[owner].unsqueeze(1) + torch.arange(row_ids.shape[1] - 1, device=device),
            past_key_values=cache,
            use_cache=True,
        ).logits
        logits = torch.cat([logits, rest], dim=1)
    scored_mask = last_n_mask(list(map(len, rows)), scored, row_ids.shape[1]).to(device)
    sums, greedy = continuation_scores(logits, row_ids, scored_mask)
    results, start = [], 0
    for n in n_rows:
        results.append(Scores(sums[start : start + n], scored[start : start + n], greedy[start : start + n]))
        start += n
    return results


def score_requests(model, tokenizer, requests: Sequence[Request | tuple], *, token_budget: int = 16384,
                   progress: bool = False, on_batch=None) -> list[Scores]:
    """Rank-classification scores for each (context, continuations[, tails]) request.
    token_budget bounds the prefix tokens a batch holds in its cache: one copy per scored row."""
    encoded = [encode_request(tokenizer, *Request(*r)) for r in requests]
    return map_batches(
        lambda batch: score_shared_prefix(model, batch, pad_id(tokenizer)),
        encoded, [len(prefix) * len(rows) for prefix, rows, _ in encoded], token_budget=token_budget,
        progress=progress, desc="scoring", on_batch=on_batch,
    )


@torch.inference_mode()
def score_full_sequences(model, seqs: list[tuple[int, list[int]]], pad_value: int) -> list[tuple[float, bool]]:
    """(log-prob, greedy) of the last n tokens of each (n, token ids) sequence, one forward each."""
    ids, mask = pad([s for _, s in seqs], pad_value)
    logits = model(input_ids=ids.to(model.device), attention_mask=mask.to(model.device)).logits
    # logits[:, t] predicts token t + 1: shift the targets left by one
    targets = torch.cat([ids[:, 1:], ids[:, :1]], dim=1)
    target_mask = last_n_mask([len(s) - 1 for _, s in seqs], [n for n, _ in seqs], ids.shape[1])
    sums, greedy = continuation_scores(logits, targets.to(logits.device), target_mask.to(logits.device))
    return list(zip(sums, greedy))


def score_requests_naive(model, tokenizer, requests: Sequence[Request | tuple], *, token_budget: int = 4096,
                         progress: bool = False) -> list[Scores]:
    """Reference scorer: one full forward per (context, tail, continuation), the way most
    harnesses do it. Same token split as score_requests; used to check it and to benchmark it.
    token_budget bounds the padded tokens of one forward pass (its logits cover every token)."""
    encoded = [encode_request(tokenizer, *Request(*r)) for r in requests]
    seqs = [(n, prefix + row) for prefix, rows, ns in encoded for row, n in zip(rows, ns)]
    flat = map_batches(lambda batch: score_full_sequences(model, batch, pad_id(tokenizer)), seqs,
                       [len(s) for _, s in seqs], token_budget=token_budget, progress=progress, desc="naive scoring")
    results, start = [], 0
    for _, rows, ns in encoded:
        part = flat[start : start + len(rows)]
        results.append(Scores([lp for lp, _ in part], list(ns), [g for _, g in part]))
        start += len(rows)
    return results


@functools.lru_cache(maxsize=8)
def stop_token_ids(tokenizer, stop: str) -> tuple[int, ...]:
    """The tokens whose text contains `stop`: generation ends at any of them. (A stop string
    split over two tokens is only cut afterwards, at max_new_tokens.)"""
    texts = tokenizer.batch_decode([[i] for i in range(len(tokenizer))])
    return tuple(i for i, text in enumerate(texts) if stop in text)


@torch.inference_mode()
def greedy_generate(model, tokenizer, prompts: list[list[int]], stop: str, max_new_tokens: int) -> list[str]:
    ids, mask = pad(prompts, pad_id(tokenizer), left=True)
    eos = [t for t in (*stop_token_ids(tokenizer, stop), tokenizer.eos_token_id) if t is not None]
    out = model.generate(
        input_ids=ids.to(model.device), attention_mask=mask.to(model.device), max_new_tokens=max_new_tokens,
        do_sample=False, temperature=None, top_p=None, top_k=None, eos_token_id=eos, pad_token_id=pad_id(tokenizer),
    )
    texts = tokenizer.batch_decode(out[:, ids.shape[1] :], skip_special_tokens=True)
    return [text.split(stop)[0] for text in texts]


def generate_until(model, tokenizer, contexts: Sequence[str], *, stop: str = "\n", max_new_tokens: int = 32,
                   token_budget: int = 16384, progress: bool = False, on_batch=None) -> list[str]:
    """Greedy continuation of each context, cut at the first `stop`. token_budget bounds the
    padded prompt + new tokens of a batch."""
    encoded = [tokenizer(ctx).input_ids for ctx in contexts]
    return map_batches(
        lambda batch: greedy_generate(model, tokenizer, batch, stop, max_new_tokens),
        encoded, [len(e) + max_new_tokens for e in encoded], token_budget=token_budget, progress=progress,
        desc="generating", on_batch=on_batch,
    )


QUOTES = "'\"`"


def normalize(text: str, pattern: str | None = None) -> str | None:
    """The answer in a generated line, for exact match: the first match of `pattern` (a task's
    output regex) if given, stripped, casefolded and unquoted. None: no answer found."""
    if pattern is not None:
        found = re.search(pattern, text)
        if not found:
            return None
        text = found.group(0)
    text = text.strip().casefold()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in QUOTES:
        text = text[1:-1].strip()
    return text
