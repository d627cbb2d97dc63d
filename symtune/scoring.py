"""Scoring a causal LM on prompts: rank classification with a shared prefix.

Rank classification (docs/method.md, Scoring): the summed log-probability of every token of each
candidate continuation after the prompt. A request may also carry several tails, e.g. a query
and its content-free stand-in for calibration: every continuation is then scored after
context + tail for each tail.

The context (the exemplars, most of the prompt) is run once. Then all tails and continuations
of a request go into one more call as a tree after the cached context: one row holding each
tail and, after it, each continuation, where a 4D attention mask lets a tail see the context
and itself, and a continuation the context, its tail and itself. Nothing is run twice and no
cache is copied. Sliding-window layers (Gemma) get the tree too: their cache keeps every
slot and their mask measures the window in positions, not slots. Models whose attention
cannot take such masks (flash attention; a sliding window without per-layer masks) get a copy
of the context's cache per (tail, continuation) row instead.

Token boundary: a continuation is scored as it tokenizes after the prompt, not alone. The
prompt and each candidate are tokenized jointly and split at the prompt's own token count; if
a joint tokenization merges across that boundary, the split moves back to the longest token
prefix that all candidates share.

Work is batched by length under a token budget (symtune.batching, which also deals batches to
processes under `accelerate launch`). For the tree, the contexts are right-padded and run
without a mask, so the attention kernel takes its fast causal path; the padding this leaves
before the tree is masked in the second call. Generation is in symtune.generation, the naive
reference scorer (the tests' oracle) in symtune.naive.
"""

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
from transformers import DynamicCache
from transformers.modeling_outputs import CausalLMOutputWithPast

from symtune.batching import map_batches, pad, pad_id
from symtune.errors import SymtuneError

# transformers renamed the key/value cache argument and output field from past_key_values to cache
# (the old name warns, and goes in 5.40); use whichever this version has.
CACHE = "cache" if "cache" in CausalLMOutputWithPast.__dataclass_fields__ else "past_key_values"


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


class Encoded(NamedTuple):
    prefix: list[int]  # shared by every tail and continuation
    tails: list[list[int]]  # per tail: its tokens after the prefix (may be none)
    continuations: list[list[int]]  # per (tail, continuation), tail-major: the scored tokens

    def tailed(self) -> list[list[int]]:
        """Each continuation with its tail in front."""
        per_tail = len(self.continuations) // len(self.tails)
        return [self.tails[i // per_tail] + c for i, c in enumerate(self.continuations)]


def encode_request(tokenizer, context: str, continuations: Sequence[str], tails: Sequence[str] = ("",)) -> Encoded:
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
        fulls.append(group)
        starts.append(start)
    split = min(boundary(tokenizer(context).input_ids, [f for g in fulls for f in g]), min(starts))
    if split < 1:
        raise SymtuneError(f"the context {context[-40:]!r} tokenizes to nothing the candidates share")
    # Within a tail's group every sequence agrees up to its start, so the tail's tokens are those of its first.
    return Encoded(fulls[0][0][:split], [g[0][split:start] for g, start in zip(fulls, starts)],
                   [f[start:] for g, start in zip(fulls, starts) for f in g])


def last_n_mask(lengths: Sequence[int], scored: Sequence[int], width: int) -> torch.Tensor:
    """1 on the last scored[i] of the first lengths[i] positions of each row."""
    mask = torch.zeros((len(lengths), width), dtype=torch.long)
    for row, (length, n) in enumerate(zip(lengths, scored)):
        mask[row, length - n : length] = 1
    return mask


def target_logprobs(logits: torch.Tensor, targets: torch.Tensor, rows: torch.Tensor | None = None,
                    chunk: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-prob of targets[i] under logits[rows[i]] (rows: each row in turn by default) and whether
    it is the argmax. The fp32 log-softmax runs on a chunk of rows at a time (and skips chunks no
    target reads): over a whole batch's [positions x vocabulary] logits it runs to gigabytes for
    requests with many labels."""
    rows = torch.arange(len(logits), device=logits.device) if rows is None else rows
    logprobs = torch.empty(len(targets), device=logits.device)
    is_argmax = torch.empty(len(targets), dtype=torch.bool, device=logits.device)
    for start in range(0, len(logits), chunk):
        mine = ((rows >= start) & (rows < start + chunk)).nonzero().squeeze(-1)
        if len(mine):
            part = torch.log_softmax(logits[start : start + chunk].float(), dim=-1)
            logprobs[mine] = part[rows[mine] - start, targets[mine]]
            is_argmax[mine] = part.argmax(-1)[rows[mine] - start] == targets[mine]
    return logprobs, is_argmax


def positions_after(mask: torch.Tensor, new_mask: torch.Tensor) -> torch.Tensor:
    """Position ids of new (left- or right-padded) tokens that follow the cached ones in `mask`."""
    return mask.sum(-1, keepdim=True) + (new_mask.cumsum(-1) - 1).clamp(min=0)


def sliding_window(model) -> int | None:
    """The window of the model's sliding-attention layers, or None if every layer sees all earlier tokens."""
    config = model.config.get_text_config()
    types = getattr(config, "layer_types", None)
    sliding = "sliding_attention" in types if types is not None else getattr(config, "sliding_window", None) is not None
    return config.sliding_window if sliding else None


def tree_attention(model) -> bool:
    """Whether the model takes the 4D attention masks of the tree layout: the attention
    implementation reads a custom mask (sdpa, eager), and a sliding window, if any, is a layer
    type (transformers then takes one mask per layer type, see tree_masks)."""
    config = model.config.get_text_config()
    types = getattr(config, "layer_types", None)
    known = (set(types) <= {"full_attention", "sliding_attention"} if types is not None
             else sliding_window(model) is None)
    return known and model.config._attn_implementation in ("sdpa", "eager")


@contextlib.contextmanager
def head_on(model, rows: torch.Tensor, slots: torch.Tensor):
    """Within it, a call with logits_to_keep=0 runs the LM head on hidden[rows, slots] alone: its
    logits are [1, len(rows), vocabulary], one per scored position. Keeping the union of the
    positions that some row scores instead costs rows x positions x vocabulary (gigabytes for a
    262k vocabulary). The head's own forward still runs, so what the model does after it (Gemma's
    final logit soft-capping) applies; the gathered input is contiguous, so a frozen head does
    not copy its weights either."""
    handle = model.get_output_embeddings().register_forward_pre_hook(
        lambda _, args: (args[0][rows, slots][None], *args[1:]))
    try:
        yield
    finally:
        handle.remove()


def run_prefixes(model, prefixes: list[list[int]], pad_value: int, right: bool):
    """(cache, padding mask, each row's last logits) of a batch of prefixes. Right padding keeps
    every real token's causal context free of padding, so no mask is needed and the attention
    kernel skips the upper triangle; the pads then sit in the middle of the rows extended later."""
    ids, mask = (t.to(model.device) for t in pad(prefixes, pad_value, left=not right))
    rows = torch.arange(len(ids), device=ids.device)
    with head_on(model, rows, mask.sum(-1) - 1 if right else torch.full_like(rows, ids.shape[1] - 1)):
        if right:
            # A cache without a config keeps every slot of sliding layers too: the tree's mask picks the window.
            out = model(input_ids=ids, use_cache=True, logits_to_keep=0, **{CACHE: DynamicCache()})
        else:
            out = model(input_ids=ids, attention_mask=mask, position_ids=positions_after(mask[:, :0], mask),
                        use_cache=True, logits_to_keep=0)
    return getattr(out, CACHE), mask, out.logits[0]


def summed_scores(predicting: torch.Tensor, sources: list[int], targets: list[int], owner: list[int]):
    """(summed log-prob, greedy) per continuation: scored token j is targets[j], predicted by
    predicting[sources[j]], and belongs to continuation owner[j]."""
    device = predicting.device
    token_lp, is_argmax = target_logprobs(predicting, torch.tensor(targets, device=device),
                                          torch.tensor(sources, device=device))
    owner = torch.tensor(owner, device=device)
    n = int(owner[-1]) + 1
    sums = torch.zeros(n, device=device).index_add_(0, owner, token_lp)
    misses = torch.zeros(n, device=device).index_add_(0, owner, (~is_argmax).float())
    return sums.tolist(), (misses == 0).tolist()


class Tree(NamedTuple):
    ids: list[list[int]]  # per request: each tail, then each of its continuations but the last token
    positions: list[list[int]]  # of those tokens, counted from the end of the prefix
    segments: list[list[tuple[int, int, int, int]]]  # per request: (start, end, tail start, tail end) of each run
    sources: list[int]  # per scored token: the tree slot whose logits predict it (-1: the prefix's last)
    targets: list[int]  # per scored token: its id


def tree_layout(e: Encoded) -> Tree:
    """One request's tails and continuations as one row after its prefix: a tail attends to the
    prefix and itself, a continuation to the prefix, its tail and itself."""
    ids, positions, segments, sources, targets = [], [], [], [], []
    per_tail = len(e.continuations) // len(e.tails)
    for t, tail in enumerate(e.tails):
        a = len(ids)
        ids += tail
        positions += range(len(tail))
        segments.append((a, len(ids), a, a))
        for c in e.continuations[t * per_tail : (t + 1) * per_tail]:
            s = len(ids)
            ids += c[:-1]
            positions += range(len(tail), len(tail) + len(c) - 1)
            segments.append((s, len(ids), a, a + len(tail)))
            sources += [a + len(tail) - 1 if tail else -1] + list(range(s, s + len(c) - 1))
            targets += c
    return Tree(ids, positions, segments, sources, targets)


def tree_mask(trees: list[Tree], mask: torch.Tensor, width: int) -> torch.Tensor:
    """[rows, 1, width, cached + width] boolean 4D mask: the cached prefix where not padding, then the tree."""
    attend = torch.zeros((len(trees), width, width), dtype=torch.bool)
    for r, tree in enumerate(trees):
        for start, end, tail_start, tail_end in tree.segments:
            attend[r, start:end, tail_start:tail_end] = True
            attend[r, start:end, start:end] = torch.ones(end - start, end - start, dtype=torch.bool).tril()
    return torch.cat([mask.bool().cpu()[:, None, :].expand(-1, width, -1), attend], dim=-1)[:, None]


def tree_masks(model, trees: list[Tree], mask: torch.Tensor, positions: torch.Tensor):
    """The tree's attention mask, or one per layer type where some layers slide: those see only
    keys fewer than `window` positions back (transformers' rule), counted in positions, since
    the tree's slots are not in position order. Eager attention adds the mask to its scores."""
    attend = tree_mask(trees, mask, positions.shape[1])
    window = sliding_window(model)
    masks = {"full_attention": attend}
    if window is not None:
        cached = torch.arange(mask.shape[1]).expand(len(trees), -1)
        keys = torch.cat([cached, positions], dim=-1)
        masks["sliding_attention"] = attend & (positions[:, None, :, None] - keys[:, None, None, :] < window)
    if model.config._attn_implementation == "eager":
        dtype = model.dtype
        masks = {kind: torch.zeros(m.shape, dtype=dtype).masked_fill(~m, torch.finfo(dtype).min)
                 for kind, m in masks.items()}
    return masks if window is not None else masks["full_attention"]


def score_tree(model, encoded: list[Encoded], cache, mask, last, pad_value: int):
    """(summed log-prob, greedy) per continuation: every request's tails and continuations in one
    call after its cached prefix, laid out as a tree (tree_layout), so no cache is copied."""
    device = model.device
    trees = [tree_layout(e) for e in encoded]
    # Only the (row, slot) pairs that predict a scored token go through the LM head (not the tails):
    # pair k's logits come after the prefixes' last ones, at len(trees) + k.
    pairs = [(r, i) for r, t in enumerate(trees) for i in sorted({i for i in t.sources if i >= 0})]
    index = {pair: len(trees) + k for k, pair in enumerate(pairs)}
    sources = [index[r, i] if i >= 0 else r for r, t in enumerate(trees) for i in t.sources]
    predicting = last
    if pairs:
        ids, _ = pad([t.ids for t in trees], pad_value)
        positions = pad([t.positions for t in trees], 0)[0] + mask.sum(-1, keepdim=True).cpu()
        masks = tree_masks(model, trees, mask, positions)
        masks = {k: m.to(device) for k, m in masks.items()} if isinstance(masks, dict) else masks.to(device)
        rows, slots = torch.tensor(pairs, device=device).T
        with head_on(model, rows, slots):
            logits = model(input_ids=ids.to(device), position_ids=positions.to(device), attention_mask=masks,
                           use_cache=True, logits_to_keep=0, **{CACHE: cache}).logits
        predicting = torch.cat([last, logits[0]])
    owner = [j for j, c in enumerate(c for e in encoded for c in e.continuations) for _ in c]
    return summed_scores(predicting, sources, [i for t in trees for i in t.targets], owner)


def score_copies(model, encoded: list[Encoded], cache, mask, last, pad_value: int):
    """(summed log-prob, greedy) per continuation: the prefix cache copied once per (tail,
    continuation) row, each row (tail + continuation) run against it, right-padded."""
    device = model.device
    rows = [row for e in encoded for row in e.tailed()]
    owner = torch.tensor([r for r, e in enumerate(encoded) for _ in e.continuations], device=device)
    cache.batch_select_indices(owner)
    mask, last = mask[owner], last[owner]
    ids, row_mask = (t.to(device) for t in pad(rows, pad_value))
    # Row r's token j is predicted by the prefix's last logits (j = 0) or by the row's own token j - 1.
    scored = last_n_mask(list(map(len, rows)), [len(c) for e in encoded for c in e.continuations], ids.shape[1])
    scored = scored.nonzero().tolist()  # (row, j), row-major: the continuations' tokens in order
    pairs = [(r, j - 1) for r, j in scored if j > 0]
    index = {pair: len(rows) + k for k, pair in enumerate(pairs)}
    predicting = last
    if pairs:
        at, slots = torch.tensor(pairs, device=device).T
        with head_on(model, at, slots):
            logits = model(input_ids=ids[:, :-1], attention_mask=torch.cat([mask, row_mask[:, :-1]], 1),
                           position_ids=positions_after(mask, row_mask[:, :-1]), use_cache=True, **{CACHE: cache},
                           logits_to_keep=0).logits
        predicting = torch.cat([last, logits[0]])
    sources = [index[r, j - 1] if j > 0 else r for r, j in scored]
    return summed_scores(predicting, sources, [rows[r][j] for r, j in scored], [r for r, _ in scored])


@torch.inference_mode()
def score_shared_prefix(model, encoded: list[Encoded], pad_value: int) -> list[Scores]:
    """One batch of encoded requests: the prefixes in one call, then every tail and continuation
    against their cached keys/values in a second: as a tree where the model allows it (no copies,
    one row per request), else with a copy of the cache per (tail, continuation) row."""
    tree = tree_attention(model)
    cache, mask, last = run_prefixes(model, [e.prefix for e in encoded], pad_value, right=tree)
    sums, greedy = (score_tree if tree else score_copies)(model, encoded, cache, mask, last, pad_value)
    results, start = [], 0
    for e in encoded:
        n = len(e.continuations)
        results.append(Scores(sums[start : start + n], [len(c) for c in e.continuations], greedy[start : start + n]))
        start += n
    return results


def bytes_per_token(model) -> int:
    """An upper bound on the GPU memory one token of a ranking batch takes while it runs: its
    keys and values in every layer's cache, one layer's activations (the residual stream, a few
    copies, and the MLP's hidden layer), and one row of logits, should every token be scored."""
    config = model.config.get_text_config()
    heads = config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    intermediate = getattr(config, "intermediate_size", None) or 4 * config.hidden_size
    elements = (2 * config.num_hidden_layers * kv_heads * head_dim + 4 * config.hidden_size + 3 * intermediate
                + config.vocab_size)
    return elements * model.dtype.itemsize


# Of the GPU memory free once the model is loaded, the share a ranking batch may plan on: the
# estimate leaves out the attention kernels' workspace and the allocator's fragmentation.
FREE_MEMORY_SHARE = 0.5
CPU_BUDGET = 2048


def ranking_budget(model) -> int:
    """Default tokens per ranking batch. A ranking batch is one wide forward, and on a CPU a
    narrow one runs faster: a layer's activations stay in cache (benchmarks/bench_token_budget.py
    measures it). A GPU wants wide batches: as many tokens as its free memory holds (at least
    the CPU's budget; a request wider than the budget still runs alone)."""
    device = model.device
    if device.type == "cpu":
        return CPU_BUDGET
    if device.type != "cuda":
        return 16384
    free, _ = torch.cuda.mem_get_info(device)
    return max(CPU_BUDGET, int(free * FREE_MEMORY_SHARE) // bytes_per_token(model))


def score_requests(model, tokenizer, requests: Sequence[Request | tuple], *, token_budget: int | None = None,
                   progress: bool = False, on_batch=None) -> list[Scores]:
    """Rank-classification scores for each (context, continuations[, tails]) request.
    token_budget bounds the tokens a batch holds in its cache: prefix and tree once per request,
    or, where the cache is copied, prefix and tail once per scored row (None: ranking_budget)."""
    token_budget = token_budget or ranking_budget(model)
    encoded = [encode_request(tokenizer, *Request(*r)) for r in requests]
    if tree_attention(model):
        lengths = [len(e.prefix) + sum(map(len, e.tails)) + sum(map(len, e.continuations)) for e in encoded]
    else:
        lengths = [(len(e.prefix) + max(map(len, e.tails))) * len(e.continuations) for e in encoded]
    return map_batches(lambda batch: score_shared_prefix(model, batch, pad_id(tokenizer)), encoded, lengths,
                       token_budget=token_budget, progress=progress, desc="scoring", on_batch=on_batch)
