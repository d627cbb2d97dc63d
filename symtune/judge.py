"""Scoring items through the request cache, and judging each one (docs/method.md, Scoring).

Each item is scored by rank classification over its presented labels: `acc` (summed
log-probability), `acc_norm` (per token) and `acc_calibrated` (minus the score after a
content-free prompt, the query replaced by "N/A"). BIG-bench prompts, and all prompts with
`generate`, are also answered by greedy generation and exact match; outputs that are not a label
count as wrong.

symtune.scoring and symtune.generation (and so torch) are imported inside the functions that call
them, so that commands which only build items never load torch.
"""

from functools import partial

from symtune.answers import normalize
from symtune.cache import RequestCache, request_key
from symtune.suites import EvalConfig, Item


def rank_request(item: Item):
    """The item's labels after its prompt; with calibration, also after the content-free query
    (both share the exemplars, which the scorer runs once)."""
    from symtune.scoring import Request  # local: keeps torch out (see the module docstring)

    continuations = [" " + c for c in item.candidates]
    if item.content_free is not None:
        context = item.text[: -len(item.query)]
        return Request(context, continuations, (item.query, item.content_free))
    return Request(item.text, continuations)


def generate_key(item: Item, cfg: EvalConfig) -> str:
    return request_key("generate", item.text, cfg.max_new_tokens)


def score_items(model, tokenizer, items: list[Item], cfg: EvalConfig, cache: RequestCache,
                progress: bool = False) -> list[dict]:
    """One record per item: prediction, scores, and 0/1 metrics."""
    # local: both pull in torch (see the module docstring)
    from symtune.generation import generate_until
    from symtune.scoring import score_requests

    rank, generate = {}, {}
    for item in items:
        if item.candidates:
            request = rank_request(item)
            rank[request_key("rank", *request)] = request
        if item.generation or cfg.generate:
            generate[generate_key(item, cfg)] = item.text
    budget = {"progress": progress} | ({} if cfg.token_budget is None else {"token_budget": cfg.token_budget})
    ranked = cache.run(partial(score_requests, model, tokenizer), rank, **budget)
    generated = cache.run(partial(generate_until, model, tokenizer, max_new_tokens=cfg.max_new_tokens), generate,
                          **budget)
    return [judge(item, ranked, generated, cfg) for item in items]


def argmax(values) -> int:
    return max(range(len(values)), key=values.__getitem__)


def judge(item: Item, ranked: dict, generated: dict, cfg: EvalConfig) -> dict:
    """The item's record. Metrics: acc / acc_norm / acc_calibrated rank the candidates (the
    presented labels, or a BIG-bench task's candidate targets); acc_gen is exact match of the
    greedy generation; label_rate says whether that generation is one of the labels."""
    record = {key: getattr(item, key) for key in ("id", "task", "condition", "seed", "target", "candidates", "answer")}
    metrics = {}
    if item.candidates:
        n = len(item.candidates)
        scores = ranked[request_key("rank", *rank_request(item))]
        logprobs, lengths = scores["logprobs"][:n], scores["num_tokens"][:n]
        pred = argmax(logprobs)
        record.update(prediction=item.candidates[pred], logprobs=logprobs, num_tokens=lengths)
        metrics["acc"] = pred == item.answer
        metrics["acc_norm"] = argmax([lp / t for lp, t in zip(logprobs, lengths)]) == item.answer
        if item.content_free is not None:
            baseline = scores["logprobs"][n:]
            record["logprobs_content_free"] = baseline
            metrics["acc_calibrated"] = argmax([a - b for a, b in zip(logprobs, baseline)]) == item.answer
    if item.generation or cfg.generate:
        output = generated[generate_key(item, cfg)]
        answer = normalize(output, item.pattern)
        record["generation"] = output
        metrics["acc_gen"] = answer is not None and answer == normalize(item.target, item.pattern)
        if not item.generation:
            metrics["label_rate"] = answer in {normalize(c) for c in item.candidates}
    record["metrics"] = {name: float(value) for name, value in metrics.items()}
    return record
