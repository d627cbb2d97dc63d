import math

import pytest
import torch
from conftest import save_tiny_model
from transformers import AutoModelForCausalLM

from symtune.answers import normalize
from symtune.batching import length_batches
from symtune.errors import SymtuneError
from symtune.generation import generate_until
from symtune.naive import score_requests_naive
from symtune.scoring import Request, encode_request, score_requests, target_logprobs, tree_attention

# Prompts of different lengths (so batches pad), 2-4 candidates, multi-token symbols.
REQUESTS = [
    ("Input: good movie\nOutput: 7291\n\nInput: bad film\nOutput: QXR\n\nInput: fine\nOutput:", [" 7291", " QXR"]),
    ("Q: is it raining?\nA:", [" yes", " no", " maybe"]),
    ("Input: a much longer context, with many more words in it than the others have\nOutput:",
     [" 12345", " ABCD", " lantern", " x"]),
    ("X = [1, 2]\nY =", [" [1, 2, 9]", " []"]),
    ("Student: hi\nTeacher:", [" Foo", " Bar"]),
]


@pytest.fixture(scope="module", params=["llama", "llama-eager", "gemma3", "gemma3-eager", "mistral"])
def model(request, tokenizer, tmp_path_factory):
    # Large random weights make the logits peaked: near-uniform ones would hide a masking error.
    # llama scores as a tree (4D masks: boolean for sdpa, additive for eager); so does gemma3, whose
    # sliding-window layer (window 8, shorter than every prompt here) gets a mask of its own;
    # mistral slides in every layer without layer types, and copies the cache instead.
    arch, _, attention = request.param.partition("-")
    path = save_tiny_model(tmp_path_factory.mktemp(arch), tokenizer, arch, initializer_range=0.5)
    model = AutoModelForCausalLM.from_pretrained(path, attn_implementation=attention or "sdpa").eval()
    assert tree_attention(model) == (arch != "mistral")
    return model


def assert_same_scores(a, b, tol=1e-4):
    for x, y in zip(a, b, strict=True):
        assert x.num_tokens == y.num_tokens
        assert x.greedy == y.greedy
        assert max(abs(p - q) for p, q in zip(x.logprobs, y.logprobs)) < tol


def test_shared_prefix_equals_one_forward_per_continuation(model, tokenizer):
    naive = score_requests_naive(model, tokenizer, REQUESTS)
    assert_same_scores(score_requests(model, tokenizer, REQUESTS, token_budget=10_000), naive)  # one padded batch
    assert_same_scores(score_requests(model, tokenizer, REQUESTS, token_budget=1), naive)  # one prompt per batch
    assert {n for s in naive for n in s.num_tokens} >= {1, 2, 5}  # single- and multi-token labels were scored
    assert all(lp < 0 for s in naive for lp in s.logprobs)


def test_ranking_batches_default_to_a_narrow_budget_on_a_cpu(model, tokenizer, monkeypatch):
    import symtune.batching as batching
    import symtune.scoring as scoring

    budgets = []
    monkeypatch.setattr(batching, "length_batches", lambda lengths, budget: budgets.append(budget) or [[0]])
    score_requests(model, tokenizer, REQUESTS[:1])
    assert budgets == [scoring.ranking_budget(model)] == [scoring.CPU_BUDGET]


def test_a_gpu_ranking_budget_grows_with_free_memory_and_shrinks_with_the_model(model, monkeypatch):
    import symtune.scoring as scoring

    free = {"bytes": 0}
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (free["bytes"], 80 << 30))
    monkeypatch.setattr(type(model), "device", property(lambda self: torch.device("cuda", 0)))
    per_token = scoring.bytes_per_token(model)
    budgets = {}
    for gib in (1, 4, 40):
        free["bytes"] = gib << 30
        budgets[gib] = scoring.ranking_budget(model)
    assert budgets[40] == int((40 << 30) * scoring.FREE_MEMORY_SHARE) // per_token > budgets[4] > budgets[1]
    free["bytes"] = 1 << 20  # a full GPU still scores, one narrow batch at a time
    assert scoring.ranking_budget(model) == scoring.CPU_BUDGET
    # The logits row dominates a large vocabulary's tokens: the budget shrinks with it.
    vocab = model.config.get_text_config().vocab_size
    monkeypatch.setattr(model.config.get_text_config(), "vocab_size", vocab * 100)
    assert scoring.bytes_per_token(model) > per_token + vocab * 99 * model.dtype.itemsize - 1


def test_continuations_are_tokenized_after_the_prompt(tokenizer):
    context, conts = REQUESTS[0]
    prefix, tails, ids = encode_request(tokenizer, context, conts)
    assert prefix == tokenizer(context).input_ids and tails == [[]]
    assert [prefix + c for c in ids] == [tokenizer(context + c).input_ids for c in conts]


def test_tails_share_the_context_and_score_only_the_continuations(model, tokenizer):
    context, conts = REQUESTS[0][0].rsplit("Input:", 1)[0], REQUESTS[0][1]
    tails = ["Input: fine\nOutput:", "Input: N/A\nOutput:"]
    (shared,) = score_requests(model, tokenizer, [Request(context, conts, tails)])
    separate = score_requests(model, tokenizer, [(context + tail, conts) for tail in tails])
    assert_same_scores([shared], score_requests_naive(model, tokenizer, [Request(context, conts, tails)]))
    assert shared.num_tokens == [n for s in separate for n in s.num_tokens]
    assert shared.logprobs == pytest.approx([lp for s in separate for lp in s.logprobs], abs=1e-4)


def test_tails_of_different_lengths_batch_together(model, tokenizer):
    # Tails are padded between the prefix and the continuations; an empty tail scores right after the prefix.
    tails = ["", "\nInput: N/A\nOutput:", " and a much longer tail, so that the others pad"]
    requests = [Request(context, conts, tails[i % 3 :] + tails[: i % 3]) for i, (context, conts) in enumerate(REQUESTS)]
    naive = score_requests_naive(model, tokenizer, requests)
    assert_same_scores(score_requests(model, tokenizer, requests, token_budget=100_000), naive)
    assert_same_scores(score_requests(model, tokenizer, requests, token_budget=1), naive)


def test_the_lm_head_sees_only_positions_that_predict_a_label(model, tokenizer):
    # A long tail (a boolq passage) must not put rows x tail x vocabulary logits in memory.
    tail = "Input: " + "a long passage to read " * 20 + "\nOutput:"
    request = Request(REQUESTS[0][0].rsplit("Input:", 1)[0], REQUESTS[0][1], [tail, "Input: N/A\nOutput:"])
    widths = []
    hook = model.get_output_embeddings().register_forward_hook(lambda m, args, out: widths.append(out.shape[-2]))
    try:
        (scores,) = score_requests(model, tokenizer, [request])
    finally:
        hook.remove()
    assert_same_scores([scores], score_requests_naive(model, tokenizer, [request]))
    assert max(widths) <= max(scores.num_tokens) * len(scores.num_tokens)


def scored_positions(model, encoded) -> int:
    """Positions whose logits predict a scored token: each prefix's last, then in a tree each
    non-empty tail's last and every continuation token but the last; with a cache copy per
    (tail, continuation) row, each row's tokens that predict a token of its continuation."""
    if tree_attention(model):
        return sum(1 + sum(map(bool, e.tails)) + sum(len(c) - 1 for c in e.continuations) for e in encoded)
    return sum(1 + sum(len(c) - (len(row) == len(c)) for row, c in zip(e.tailed(), e.continuations)) for e in encoded)


def test_the_lm_head_runs_on_exactly_the_scored_positions(model, tokenizer):
    # Keeping every position that some row of a batch scores puts rows x positions x vocabulary
    # logits in memory: gigabytes on a GPU for a 262k vocabulary.
    tails = ["", "\nInput: N/A\nOutput:", " and a much longer tail, so that the others pad"]
    requests = [Request(context, conts, tails[i % 3 :]) for i, (context, conts) in enumerate(REQUESTS)]
    inputs = []
    # A forward hook sees the input the head ran on (after scoring's own pre-hook).
    hook = model.get_output_embeddings().register_forward_hook(lambda m, args, out: inputs.append(args[0].shape))
    try:
        scores = score_requests(model, tokenizer, requests, token_budget=100_000)  # one batch
    finally:
        hook.remove()
    assert_same_scores(scores, score_requests_naive(model, tokenizer, requests))
    encoded = [encode_request(tokenizer, *r) for r in requests]
    assert len(inputs) == 2  # the prefixes' call and the tree's (or the copies')
    assert sum(math.prod(shape[:-1]) for shape in inputs) == scored_positions(model, encoded)


def test_the_lm_head_input_folds_without_a_copy_even_with_frozen_weights(model, tokenizer):
    # With frozen weights (a merged LoRA model) torch's matmul copies the whole LM head for a
    # strided input: 4x slower Gemma scoring (262k vocabulary).
    flags = [p.requires_grad for p in model.parameters()]
    model.requires_grad_(False)
    inputs = []
    hook = model.get_output_embeddings().register_forward_hook(lambda m, args, out: inputs.append(args[0]))
    try:
        score_requests(model, tokenizer, REQUESTS)
    finally:
        hook.remove()
        for p, flag in zip(model.parameters(), flags):
            p.requires_grad_(flag)
    # torch folds [batch, positions, hidden] into one matrix (no copy) only when its strides are compact
    assert inputs and all(x.stride(i) == x.stride(i + 1) * x.shape[i + 1] for x in inputs for i in range(x.dim() - 1))


def test_a_merge_across_the_boundary_moves_the_split_back(model, tokenizer):
    # "wor" + "ld" tokenize as one word, so the context's last token is not shared with the joint text.
    context, conts = "Say hello wor", ["ld", "k", "ds"]
    prefix, _, ids = encode_request(tokenizer, context, conts)
    assert len(prefix) < len(tokenizer(context).input_ids)
    assert [prefix + c for c in ids] == [tokenizer(context + c).input_ids for c in conts]
    request = [(context, conts)]
    assert_same_scores(score_requests(model, tokenizer, request), score_requests_naive(model, tokenizer, request))


def test_labels_that_tokenize_identically_are_refused(tokenizer):
    with pytest.raises(SymtuneError, match="collide"):
        encode_request(tokenizer, "Q: x\nA:", [" yes", " no", " yes"])


def test_length_batches_respect_the_budget_and_cover_every_item():
    lengths = [5, 17, 3, 9, 9, 30, 1, 2]
    batches = length_batches(lengths, 20)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert all(len(b) == 1 or len(b) * max(lengths[i] for i in b) <= 20 for b in batches)
    assert [lengths[b[0]] for b in batches] == sorted((lengths[b[0]] for b in batches), reverse=True)
    assert len(batches) < len(lengths)  # short items were grouped


def test_greedy_generation_is_batch_independent_and_flagged_greedy(model, tokenizer):
    contexts = [ctx for ctx, _ in REQUESTS]
    batched = generate_until(model, tokenizer, contexts, max_new_tokens=3)
    assert batched == [generate_until(model, tokenizer, [c], max_new_tokens=3)[0] for c in contexts]
    # Random weights generate token runs that may tokenize differently once decoded: keep those that do not.
    kept = [(c, g) for c, g in zip(contexts, batched) if g.strip()
            and encode_request(tokenizer, c, [g])[0] == tokenizer(c).input_ids
            and len(encode_request(tokenizer, c, [g]).continuations[0]) == 3]
    assert kept
    scores = score_requests(model, tokenizer, [(c, [g, " zzz qq"]) for c, g in kept])
    assert [s.greedy for s in scores] == [[True, False]] * len(kept)


def test_generation_feeds_the_lm_head_contiguous_inputs(model, tokenizer):
    # A strided input to a frozen bf16 head takes torch off its fast matmul (seconds per batch for Gemma).
    seen = []
    handle = model.get_output_embeddings().register_forward_hook(
        lambda _, args, out: seen.append(args[0].is_contiguous()))
    try:
        generate_until(model, tokenizer, [ctx for ctx, _ in REQUESTS], max_new_tokens=3)
    finally:
        handle.remove()
    assert seen and all(seen)
    assert not model.get_output_embeddings()._forward_pre_hooks  # the fix does not outlive the call


def test_generation_stops_before_the_stop_string(model, tokenizer):
    context = REQUESTS[1][0]
    full = generate_until(model, tokenizer, [context], stop="\x00", max_new_tokens=6)[0]
    stop = full.strip()[-1]
    cut = generate_until(model, tokenizer, [context], stop=stop, max_new_tokens=6)[0]
    assert cut == full[: full.index(stop)] and len(cut) < len(full)


def decoding_steps(model, fn) -> int:
    """How many times fn() runs the model: one per generated token."""
    calls = []
    handle = model.register_forward_hook(lambda *_: calls.append(1))
    try:
        fn()
    finally:
        handle.remove()
    return len(calls)


def greedy_tokens(model, tokenizer, context: str, n: int) -> list[int]:
    ids = torch.tensor([tokenizer(context).input_ids])
    with torch.inference_mode():
        out = model.generate(input_ids=ids, max_new_tokens=n, min_new_tokens=n, do_sample=False, temperature=None,
                             top_p=None, top_k=None, pad_token_id=tokenizer.pad_token_id)
    return out[0, ids.shape[1] :].tolist()


def test_generation_stops_at_a_stop_string_split_over_tokens(model, tokenizer):
    # Stopping only at tokens that hold the whole stop string runs on to max_new_tokens.
    for context, _ in REQUESTS:
        new = greedy_tokens(model, tokenizer, context, 8)
        texts = [tokenizer.decode(new[:i]) for i in range(len(new) + 1)]
        # A two-character stop string across the boundary after token k, seen nowhere before it.
        found = [(k, texts[k + 1][len(texts[k]) - 1 : len(texts[k]) + 1]) for k in range(1, len(new) - 1)
                 if texts[k] and texts[k + 1].startswith(texts[k]) and len(texts[k + 1]) > len(texts[k])]
        found = [(k, stop) for k, stop in found if texts[-1].find(stop) == len(texts[k]) - 1]
        if found:
            break
    assert found, "no greedy output with a stop string split over two tokens"
    k, stop = found[0]
    outputs = []
    steps = decoding_steps(model, lambda: outputs.extend(generate_until(model, tokenizer, [context], stop=stop,
                                                                        max_new_tokens=8)))
    assert steps == k + 1  # the token that completes the stop string is the last one generated
    assert outputs == [texts[-1][: texts[-1].index(stop)]]


def test_a_stop_string_is_sought_in_the_generated_text_alone(model, tokenizer):
    # The prompt's last character and the first new token's first spell the stop string together:
    # that must not stop a row before the generated text holds it.
    context = REQUESTS[1][0]
    new = greedy_tokens(model, tokenizer, context, 4)
    stop = context[-1] + tokenizer.decode(new[:1])[0]
    expected = next((i for i in range(1, 5) if stop in tokenizer.decode(new[:i])), 4)
    assert expected > 1
    assert decoding_steps(model, lambda: generate_until(model, tokenizer, [context], stop=stop,
                                                        max_new_tokens=4)) == expected


@pytest.mark.parametrize("text, pattern, expected", [
    ("  Positive ", None, "positive"),
    (' "QXR"', None, "qxr"),
    (" [1, 2] and more", r"\[(?:\d+, )*(?:\d+)?\]", "[1, 2]"),
    (" '0110' because", "('.*?')", "0110"),
    (" ''", "('.*?')", ""),
    (" no quotes", "('.*?')", None),  # no answer at all is not the empty answer
])
def test_normalize(text, pattern, expected):
    assert normalize(text, pattern) == expected



@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_target_logprobs_in_chunks_match_a_whole_log_softmax(dtype):
    torch.manual_seed(0)
    logits = (torch.randn(10, 50) * 4).to(dtype)
    rows, targets = torch.tensor([0, 3, 3, 9, 5, 7]), torch.tensor([1, 2, 40, 0, 49, 7])
    targets[2] = logits[3].argmax()  # one target that is the argmax of its row
    reference = torch.log_softmax(logits.float(), dim=-1)
    lp, is_argmax = target_logprobs(logits, targets, rows, chunk=3)
    torch.testing.assert_close(lp, reference[rows, targets], rtol=0, atol=1e-5)
    assert is_argmax.tolist() == (reference[rows].argmax(-1) == targets).tolist()
    assert is_argmax[2] and not is_argmax.all()
