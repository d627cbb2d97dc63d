"""The sibling studies of symbol tuning: Lampinen et al. 2025 (ICL vs fine-tuning, augmented
fine-tuning) and Symbol-LLM (Symbol-evol on SCAN, two-stage tuning). This package holds
their data generators."""
