"""symtune: symbol tuning and in-context-learning evaluation for causal language models."""

__version__ = "0.1.0"
