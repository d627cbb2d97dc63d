"""Greedy generation: each prompt continued until a stop string, batched by length."""

import contextlib
from collections.abc import Sequence

import torch
from transformers import StoppingCriteria, StoppingCriteriaList, StopStringCriteria

from symtune.batching import map_batches, pad, pad_id


class StopInGenerated(StoppingCriteria):
    """transformers' stop-string criterion (which also finds a stop string split over tokens) on
    the generated tokens alone: otherwise the prompt's end and the first new token can spell it
    together (a prompt ending in a line break, stop "\\n\\n") and a row stops at once."""

    def __init__(self, tokenizer, stop: str, prompt_width: int):
        self.criterion, self.start = StopStringCriteria(tokenizer, [stop]), prompt_width

    def __call__(self, input_ids: torch.Tensor, scores, **kwargs) -> torch.Tensor:
        return self.criterion(input_ids[:, self.start :], scores)


@contextlib.contextmanager
def contiguous_head_input(model):
    """`generate` feeds the LM head hidden[:, -1:], a strided slice. With a frozen bf16 head (a
    merged LoRA model) torch's CPU matmul then falls off its fast kernel: for Gemma-3's 262k-token
    head, seconds and GBs per batch instead of milliseconds. A contiguous copy is tiny."""
    handle = model.get_output_embeddings().register_forward_pre_hook(lambda _, args: (args[0].contiguous(), *args[1:]))
    try:
        yield
    finally:
        handle.remove()


@torch.inference_mode()
def greedy_generate(model, tokenizer, prompts: list[list[int]], stop: str, max_new_tokens: int) -> list[str]:
    ids, mask = pad(prompts, pad_id(tokenizer), left=True)
    stopping = StoppingCriteriaList([StopInGenerated(tokenizer, stop, ids.shape[1])])
    with contiguous_head_input(model):
        out = model.generate(
            input_ids=ids.to(model.device), attention_mask=mask.to(model.device), max_new_tokens=max_new_tokens,
            do_sample=False, temperature=None, top_p=None, top_k=None, stopping_criteria=stopping,
            eos_token_id=tokenizer.eos_token_id, pad_token_id=pad_id(tokenizer),
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
