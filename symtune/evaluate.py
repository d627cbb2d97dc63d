"""Running an evaluation suite on models (docs/method.md, Evaluation settings): the orchestration.

The suite's items come from symtune.suites (built before any model loads, so every model sees the
same prompts), are scored and judged by symtune.judge through a symtune.cache request cache, and
aggregated by symtune.stats into the results dict that report.write_results saves as results.json.
"""

import platform
import sys
import time
from collections import Counter
from dataclasses import asdict

from symtune import __version__
from symtune import results as results_file
from symtune.cache import RequestCache
from symtune.errors import SymtuneError
from symtune.judge import score_items
from symtune.stats import aggregate, expected_half_width, mean_or_none
from symtune.suites import Condition, EvalConfig, Item, build_items
from symtune.tasks.task import Task, family
from symtune.train.record import tuned_tasks


def check_unseen(model_spec: str, task_names: list[str], allow_seen: bool) -> None:
    seen = set(tuned_tasks(model_spec))
    overlap = [t for t in task_names if t in seen or family(t) in seen]
    if overlap and not allow_seen:
        raise SymtuneError(
            f"model {model_spec} was tuned on {', '.join(overlap)}: evaluating on a tuning task measures "
            "nothing the paper claims (pass --allow-seen to do it anyway)"
        )


def versions() -> dict:
    # local: the versions are only asked for where the models are loaded anyway
    import accelerate
    import torch
    import transformers

    return {"symtune": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "accelerate": accelerate.__version__}


def evaluate(model_specs: list[str], tasks: list[Task], cfg: EvalConfig, *, cache_dir, task_specs=(),
             progress: bool = False) -> dict:
    """Run a suite on every model; the results dict that report.write_results saves."""
    # local: batching and models pull in torch; building items and checking tasks come first without it
    from symtune.batching import process_state
    from symtune.models import load_model, scoring_fingerprint, torch_dtype

    conditions, items = build_items(tasks, cfg)
    for spec in model_specs:
        check_unseen(spec, [t.name for t in tasks], cfg.allow_seen)
    state = process_state()
    if state.is_main_process and len(model_specs) > 1:
        print(f"symtune: {precision_plan(items)}", file=sys.stderr)
    results = new_results(cfg, conditions, items, tasks, task_specs or [t.source for t in tasks])
    dtype = torch_dtype(cfg.dtype, state.device)
    dtype_name = str(dtype).removeprefix("torch.")
    for spec in model_specs:
        model, tokenizer = load_model(spec, dtype=dtype, attn_implementation=cfg.attn_implementation)
        model.to(state.device).eval()
        fingerprint = scoring_fingerprint(spec, dtype)  # cache key
        cache = RequestCache(cache_dir, fingerprint, state.process_index)
        start = time.perf_counter()
        records = score_items(model, tokenizer, items, cfg, cache, progress)
        seconds = time.perf_counter() - start  # this run's scoring time; cached requests cost none
        run = {"fingerprint": fingerprint, "dtype": dtype_name, "seconds": seconds,
               "scoring_seconds": cache.spent(), "prompts_per_second": len(items) / seconds}
        results_file.add_model(results, spec, run, **model_results(records, items, conditions))
    return results


def precision_plan(items: list[Item]) -> str:
    """What a paired difference's interval will be at this size, said before any scoring."""
    n = min(Counter(item.condition for item in items).values())
    widths = ", ".join(f"±{100 * expected_half_width(n, share):.1f} points where they disagree on {share:.0%}"
                       for share in (0.1, 0.3))
    return (f"{n} prompts per condition: a paired difference between two models has a 95% interval of about "
            f"{widths} of the prompts (wider where tasks differ)")


def new_results(cfg: EvalConfig, conditions: list[Condition], items: list[Item], tasks: list[Task],
                task_specs) -> dict:
    config = {**asdict(cfg), "tasks": list(task_specs)}
    return results_file.new_results(cfg.suite, config, versions(), [condition_json(c, items) for c in conditions],
                                    {t.name: {"labels": t.labels, "source": t.source} for t in tasks})


def model_results(records: list[dict], items: list[Item], conditions: list[Condition]) -> dict:
    return {"conditions": aggregate(records, items, conditions), "predictions": records}


def condition_json(cond: Condition, items: list[Item]) -> dict:
    """The condition, and how many exemplars per class its prompts show on average (fewer than k
    where max_prompt_tokens dropped some)."""
    shown = [item.exemplars_per_class for item in items
             if item.condition == cond.name and item.exemplars_per_class is not None]
    return {**asdict(cond), "setting": {**asdict(cond.setting), "name": cond.setting.name},
            "exemplars_per_class": mean_or_none(shown)}
