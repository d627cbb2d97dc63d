"""Export an evaluation suite as lm-evaluation-harness tasks, to cross-check symtune's numbers.

One task per (condition, task): a JSONL of the pre-rendered prompts (all seeds) and a YAML
that reads it, plus a group YAML for the suite. Run with
`lm_eval --model hf --model_args pretrained=MODEL --include_path DIR --tasks symtune_SUITE`.
Classification prompts become `multiple_choice` tasks (acc; lm-eval's acc_norm divides by
bytes, symtune's by tokens); BIG-bench prompts `generate_until` tasks (exact_match).
"""

import re
from collections import defaultdict
from pathlib import Path

import yaml

from symtune.io import atomic_write, write_jsonl
from symtune.suites import Condition, Item


def task_name(suite: str, condition: str, task: str) -> str:
    return "symtune_" + re.sub(r"[^A-Za-z0-9_]+", "_", f"{suite}_{condition}_{task}")


def task_config(name: str, data_file: Path, generation: bool, max_new_tokens: int) -> dict:
    config = {
        "task": name,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(data_file)}},
        "test_split": "test",
        "doc_to_text": "text",
        "target_delimiter": " ",
        "metadata": {"version": 1.0},
    }
    if generation:
        return config | {
            "output_type": "generate_until",
            "doc_to_target": "target",
            "generation_kwargs": {"until": ["\n"], "do_sample": False, "max_gen_toks": max_new_tokens},
            "filter_list": [{"name": "strip",
                             "filter": [{"function": "remove_whitespace"}, {"function": "take_first"}]}],
            "metric_list": [{"metric": "exact_match", "aggregation": "mean", "higher_is_better": True,
                             "ignore_case": True}],
        }
    return config | {
        "output_type": "multiple_choice",
        "doc_to_choice": "choices",
        "doc_to_target": "answer",
        "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True}],
    }


def write_yaml(path: Path, data: dict) -> None:
    with atomic_write(path) as f:
        yaml.safe_dump(data, f, sort_keys=False, allow_unicode=True)


def export_suite(items: list[Item], conditions: list[Condition], out, *, suite: str,
                 max_new_tokens: int = 48) -> list[str]:
    """Write the tasks of `items` (suites.build_items) under `out`; the task names."""
    out = Path(out).resolve()
    groups = defaultdict(list)
    for item in items:
        groups[item.condition, item.task].append(item)
    names = []
    for (condition, task), rows in groups.items():
        name = task_name(suite, condition, task)
        generation = rows[0].generation
        docs = [{"id": r.id, "seed": r.seed, "text": r.text,
                 **({"target": r.target} if generation else {"choices": r.candidates, "answer": r.answer})}
                for r in rows]
        write_jsonl(out / "prompts" / f"{name}.jsonl", docs)
        write_yaml(out / f"{name}.yaml",
                   task_config(name, out / "prompts" / f"{name}.jsonl", generation, max_new_tokens))
        names.append(name)
    metric = "exact_match" if any(c.generation for c in conditions) else "acc"
    write_yaml(out / f"symtune_{suite}.yaml", {
        "group": f"symtune_{suite}",
        "task": names,
        "aggregate_metric_list": [{"metric": metric, "aggregation": "mean", "weight_by_size": False}],
        "metadata": {"version": 1.0},
    })
    return names
