"""The naive reference scorer: one full forward per (context, tail, continuation), the way most
harnesses do it. It is the test oracle for symtune.scoring's shared-prefix scorer (same token
split, same Scores) and the baseline its benchmarks measure it against.
"""

from collections.abc import Sequence

import torch

from symtune.batching import map_batches, pad, pad_id
from symtune.scoring import Request, Scores, encode_request, last_n_mask, target_logprobs


def continuation_scores(logits: torch.Tensor, targets: torch.Tensor,
                        mask: torch.Tensor) -> tuple[list[float], list[bool]]:
    """Summed log-prob and greedy flag over the masked positions of each row; logits[:, t]
    predicts targets[:, t]."""
    token_lp, is_argmax = (t.view(targets.shape) for t in target_logprobs(logits.flatten(0, 1), targets.flatten()))
    return (token_lp * mask).sum(-1).tolist(), (is_argmax | (mask == 0)).all(-1).tolist()


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
    seqs = [(len(c), e.prefix + row) for e in encoded for c, row in zip(e.continuations, e.tailed())]
    flat = map_batches(lambda batch: score_full_sequences(model, batch, pad_id(tokenizer)), seqs,
                       [len(s) for _, s in seqs], token_budget=token_budget, progress=progress, desc="naive scoring")
    results, start = [], 0
    for e in encoded:
        part = flat[start : start + len(e.continuations)]
        results.append(Scores([lp for lp, _ in part], list(map(len, e.continuations)), [g for _, g in part]))
        start += len(part)
    return results
