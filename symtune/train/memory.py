"""What a tuning step holds in memory at its peak, from a Llama-style model's sizes: the formula behind
the table in docs/distributed.md (benchmarks/bench_memory_knobs.py prints it), checked in the tests
against a measured step of a small model.

One process, no sharding, symtune's step: fp32 trained weights and AdamW moments (8 bytes per trained
parameter), fp32 gradients, the LM head on the supervised positions only (negligible).
"""

from dataclasses import dataclass

GPU_BYTES = 80 * 10**9
# how far estimate_bytes may stray from a measured step (tests/test_train.py checks it on a small model)
TOLERANCE = 0.15


def fits(total: int, memory: int = GPU_BYTES) -> str:
    """yes, no, or borderline where the estimate's tolerance straddles the memory."""
    if total * (1 + TOLERANCE) <= memory:
        return "yes"
    return "no" if total * (1 - TOLERANCE) > memory else "borderline"


@dataclass
class Sizes:
    params: int
    layers: int
    hidden: int
    intermediate: int
    q_dim: int  # heads x head_dim
    kv_dim: int  # key-value heads x head_dim
    vocab: int


def model_sizes(config) -> Sizes:
    """The sizes of a transformers Llama-style config (Llama, Mistral, Qwen2, Gemma 3 text)."""
    h, i, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    head_dim = getattr(config, "head_dim", None) or h // config.num_attention_heads
    q, kv = config.num_attention_heads * head_dim, config.num_key_value_heads * head_dim
    per_layer = h * (2 * q + 2 * kv) + 3 * h * i + 2 * h
    embeddings = config.vocab_size * h * (1 if config.tie_word_embeddings else 2)
    return Sizes(params=embeddings + layers * per_layer + h, layers=layers, hidden=h, intermediate=i, q_dim=q,
                 kv_dim=kv, vocab=config.vocab_size)


def reference_sizes() -> dict[str, Sizes]:
    """Llama 3.2 1B and Llama 3.1 8B, from their published configs."""
    from transformers import LlamaConfig

    llama1b = LlamaConfig(vocab_size=128256, hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
                          num_attention_heads=32, num_key_value_heads=8, head_dim=64, tie_word_embeddings=True)
    llama8b = LlamaConfig(vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                          num_attention_heads=32, num_key_value_heads=8, head_dim=128, tie_word_embeddings=False)
    return {"Llama-3.2-1B": model_sizes(llama1b), "Llama-3.1-8B": model_sizes(llama8b)}


def lora_params(sizes: Sizes, r: int = 16) -> int:
    """LoRA on q_proj and v_proj (peft's default for Llama): r x (in + out) each, per layer."""
    return sizes.layers * r * ((sizes.hidden + sizes.q_dim) + (sizes.hidden + sizes.kv_dim))


def layer_activation_bytes(sizes: Sizes, lora: bool, bf16: bool) -> int:
    """Bytes one token leaves saved for the backward pass in one decoder layer: what each operator keeps
    to compute its gradients, counted for transformers' Llama layer. The residual stream, the norms and
    the rotary products stay fp32 under autocast; the matmuls' inputs and outputs are bf16 there."""
    h, q, kv, i = sizes.hidden, sizes.q_dim, sizes.kv_dim, sizes.intermediate
    if not lora:  # the layer input and mid-layer residual, each norm's normalized input and output, q and k
        #           after rotary, v, the attention output and its reshaped copy, gate, up, silu(gate), their product
        if not bf16:
            return 4 * (6 * h + 3 * q + 2 * kv + 4 * i)
        return 4 * 6 * h + 2 * (2 * h + 3 * q + 2 * kv + 4 * i)  # + bf16 copies of the norms' outputs
    # LoRA on q and v: a frozen linear layer keeps nothing of its input, so the norms' outputs are kept only
    # for the adapters, the reshaped attention output and the MLP's product not at all
    if not bf16:
        return 4 * (3 * h + 2 * q + 2 * kv + 3 * i)
    return 4 * 2 * h + 2 * (h + 2 * q + 2 * kv + 3 * i)


def estimate_bytes(sizes: Sizes, tokens: int, lora: bool, checkpointing: bool, bf16: bool, gpu: bool = True,
                   supervised: int | None = None, lora_r: int = 16) -> dict:
    """The parts of a tuning step's peak memory, and their total, for `tokens` tokens per micro-batch of
    which `supervised` (default: one in 32) go through the LM head."""
    supervised = tokens // 32 if supervised is None else supervised
    trained = lora_params(sizes, lora_r) if lora else sizes.params
    base_bytes = 2 if lora and bf16 and gpu else 4  # LoRA's frozen base in bf16 on a GPU (loop.weights_dtype)
    weights = sizes.params * base_bytes + (4 * trained if lora else 0)
    grads, optimizer = 4 * trained, 8 * trained
    layer = tokens * layer_activation_bytes(sizes, lora, bf16)
    outside = tokens * 4 * (1 if lora else 3) * sizes.hidden  # the embeddings' output, the final norm
    if checkpointing:  # each layer's input kept, and one layer recomputed in the backward
        activations = outside + tokens * sizes.layers * 4 * sizes.hidden + layer
    else:
        activations = outside + sizes.layers * layer
    # the backward's first allocations, while every activation is still alive: the logits of the supervised
    # positions with their log-softmax and gradient, and (full fine-tuning) the LM head's weight gradient
    head = 3 * 4 * supervised * sizes.vocab + (0 if lora else 4 * sizes.vocab * sizes.hidden)
    # at the peak, in the backward, the gradients are not all there yet: count them whole, an upper bound,
    # only where they outweigh the activations freed meanwhile (LoRA's are small, full fine-tuning's are not)
    # autocast casts fp32 weights to bf16 for each matmul and keeps the copies for the backward
    copies = 2 * sizes.params if bf16 and base_bytes == 4 else 0
    total = weights + optimizer + copies + max(activations + head, grads + head if not lora else 0)
    return {"weights": weights, "grads": grads, "optimizer": optimizer, "activations": activations + head + copies,
            "total": total}
