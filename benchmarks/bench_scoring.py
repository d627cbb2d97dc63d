"""Rank-classification speed, side by side: symtune vs lm-evaluation-harness.

Both tools score the same symbol-label ICL prompts (no instruction, k=4 exemplars per class,
labels drawn from the evaluation symbol pool, most of them several tokens long): the summed
log-probability of every label after each prompt. symtune runs each prompt once and scores
all labels against its cached keys/values; lm-evaluation-harness (`HFLM.loglikelihood`)
runs prompt + label once per label. Same model object, dtype and thread count; both take
the log-softmax in fp32. The prompts are dealt into chunks and the tools alternate chunk by
chunk (symtune, lm-eval, symtune, lm-eval, ...), so a change in machine load hits both.

    .venv/bin/python benchmarks/bench_scoring.py            # 200 prompts per cell
    .venv/bin/python benchmarks/bench_scoring.py --quick    # 4 prompts per cell, a smoke run

Cells: 3 and 6 labels, fp32 and bf16 (bf16 only where the CPU runs it natively, as with
AVX512-BF16 or AMX; elsewhere it is emulated, far slower, unless --dtypes asks).
Writes benchmarks/results/bench_scoring[-quick].json and .png. Each finished cell is kept
in a .partial.json beside them, so an interrupted run picks up at the next cell when re-run
with the same settings. Needs the benchmark extras: pip install -e '.[bench]'.
"""

import argparse
import statistics
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch
from common import DATA, RESULTS, run_info, save, table, timed, use_threads
from lm_eval.api.instance import Instance
from lm_eval.models.huggingface import HFLM

from symtune.errors import SymtuneError
from symtune.io import read_json, write_json
from symtune.models import bf16_native, load_model
from symtune.prompts import Setting, build_eval_prompts
from symtune.scoring import score_requests
from symtune.tasks.registry import load_task_list

TASKS = {3: ("financial_phrasebank", "snli"), 6: ("trec", "emotion")}  # labels -> shared-data tasks
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def build_requests(n_labels: int, n: int, k: int) -> list[tuple[str, list[str]]]:
    """n (prompt, [" " + label, ...]) requests, split evenly over the tasks with n_labels labels."""
    missing = [name for name in TASKS[n_labels] if not (DATA / name).is_dir()]
    if missing:
        raise SymtuneError(f"benchmark data not found: {', '.join(str(DATA / m) for m in missing)}")
    tasks = load_task_list([str(DATA / name) for name in TASKS[n_labels]])
    per_task = -(-n // len(tasks))
    prompts = [p for t in tasks for p in build_eval_prompts(t, n=per_task, k=k, setting=Setting(), seed=0)]
    return [(p.text, [" " + c for c in p.candidates]) for p in prompts[:n]]


def lm_eval_scores(lm: HFLM, requests) -> list[list[float]]:
    instances = [Instance("loglikelihood", {}, (context, c), i)
                 for context, conts in requests for i, c in enumerate(conts)]
    flat = iter(logprob for logprob, _ in lm.loglikelihood(instances, disable_tqdm=True))
    return [[next(flat) for _ in conts] for _, conts in requests]


def argmax(values) -> int:
    return max(range(len(values)), key=values.__getitem__)


def compare(model, tokenizer, requests, args) -> dict:
    """Time both tools on the requests, alternating chunk by chunk; speed and agreement."""
    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=args.lmeval_batch_size, softmax_dtype=torch.float32)
    tools = {
        "symtune": lambda reqs: [s.logprobs
                                 for s in score_requests(model, tokenizer, reqs, token_budget=args.token_budget)],
        "lm_eval": lambda reqs: lm_eval_scores(lm, reqs),
    }
    for run in tools.values():
        run(requests[:2])  # warm-up: first-call kernel set-up is not what we measure
    chunks = [requests[i :: args.chunks] for i in range(args.chunks)]
    seconds = {name: [] for name in tools}
    scores = {name: [None] * len(requests) for name in tools}
    for i, chunk in enumerate(chunks):
        for name, run in tools.items():
            out, s = timed(run, chunk)
            seconds[name].append(s)
            scores[name][i :: args.chunks] = out
    pairs = list(zip(scores["symtune"], scores["lm_eval"]))
    prompt_tokens = [len(tokenizer(context).input_ids) for context, _ in requests]
    label_tokens = [len(tokenizer(context + c).input_ids) - n
                    for (context, conts), n in zip(requests, prompt_tokens) for c in conts]
    speed = {name: len(requests) / sum(s) for name, s in seconds.items()}
    return {
        "n": len(requests),
        "mean_prompt_tokens": statistics.mean(prompt_tokens),
        "mean_label_tokens": statistics.mean(label_tokens),
        "multi_token_label_share": sum(t > 1 for t in label_tokens) / len(label_tokens),
        "symtune_examples_per_s": speed["symtune"],
        "lm_eval_examples_per_s": speed["lm_eval"],
        "ratio": speed["symtune"] / speed["lm_eval"],
        "chunk_ratios": [b / a for a, b in zip(seconds["symtune"], seconds["lm_eval"])],
        "chunk_seconds": seconds,
        "max_abs_logprob_diff": max(abs(a - b) for x, y in pairs for a, b in zip(x, y)),
        "identical_predictions": sum(argmax(x) == argmax(y) for x, y in pairs) / len(pairs),
    }


def kept_cells(partial: Path, settings: dict) -> list[dict]:
    """The cells an interrupted run with the same settings finished (none if the settings differ)."""
    kept = read_json(partial) if partial.exists() else {}
    return kept["results"] if kept.get("settings") == settings else []


def plot(rows: list[dict]):
    fig, ax = plt.subplots(figsize=(7, 3.6))
    names = [f"C={r['labels']} {r['dtype']}" for r in rows]
    x = range(len(rows))
    ax.bar([i - 0.2 for i in x], [r["symtune_examples_per_s"] for r in rows], 0.4, label="symtune")
    ax.bar([i + 0.2 for i in x], [r["lm_eval_examples_per_s"] for r in rows], 0.4, label="lm-evaluation-harness")
    for i, r in zip(x, rows):
        ax.annotate(f"{r['ratio']:.1f}x", (i - 0.2, r["symtune_examples_per_s"]), ha="center", va="bottom")
    ax.set_xticks(list(x), names)
    ax.set_ylabel("examples / s")
    ax.set_title("Rank classification, SmolLM2-135M-Instruct, CPU")
    ax.legend()
    return fig


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 prompts per cell, 2 chunks")
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--n", type=int, default=200, help="prompts per cell (labels x dtype)")
    parser.add_argument("--k", type=int, default=4, help="exemplars per class")
    parser.add_argument("--chunks", type=int, default=4, help="alternations of the two tools")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--token-budget", type=int, default=4096, help="symtune: padded prompt tokens per forward")
    parser.add_argument("--lmeval-batch-size", type=int, default=8, help="lm-eval: sequences per forward")
    parser.add_argument("--dtypes", nargs="+", choices=list(DTYPES), help="default: fp32, and bf16 where it is native")
    args = parser.parse_args()
    if args.quick:
        args.n, args.chunks = 4, 2
    info = run_info("bench_scoring", args.threads, args.quick)
    use_threads(args.threads)
    dtypes = args.dtypes or [d for d in DTYPES if d == "fp32" or bf16_native(torch.device("cpu"))]
    if "bf16" not in dtypes:
        print("bf16 cells skipped: this CPU emulates bf16 (ask for them with --dtypes fp32 bf16)")

    settings = {key: getattr(args, key)
                for key in ("model", "n", "k", "chunks", "threads", "token_budget", "lmeval_batch_size")}
    settings["dtypes"] = dtypes
    partial = RESULTS / f"{info['benchmark']}{'-quick' if args.quick else ''}.partial.json"
    rows = kept_cells(partial, settings)
    info["cells_from_an_interrupted_run"] = [f"C={r['labels']} {r['dtype']}" for r in rows]  # not in wall_seconds
    for dtype_name in dtypes:
        pending = [c for c in TASKS if not any(r["labels"] == c and r["dtype"] == dtype_name for r in rows)]
        model, tokenizer = load_model(args.model, dtype=DTYPES[dtype_name]) if pending else (None, None)
        for n_labels in pending:
            tasks = TASKS[n_labels]
            requests = build_requests(n_labels, args.n, args.k)
            row = {"labels": n_labels, "dtype": dtype_name, "tasks": tasks, "target_ratio": n_labels}
            row |= compare(model, tokenizer, requests, args)
            rows.append(row)
            write_json(partial, {"settings": settings, "results": rows})
            print(f"C={n_labels} {dtype_name}: symtune {row['symtune_examples_per_s']:.3f} ex/s, "
                  f"lm-eval {row['lm_eval_examples_per_s']:.3f} ex/s, ratio {row['ratio']:.2f}", flush=True)

    rows.sort(key=lambda r: (list(DTYPES).index(r["dtype"]), r["labels"]))
    summary = table(rows, [
        ("labels", "labels", "d"), ("dtype", "dtype", "s"), ("symtune ex/s", "symtune_examples_per_s", ".3f"),
        ("lm-eval ex/s", "lm_eval_examples_per_s", ".3f"), ("ratio", "ratio", ".2f"), ("target", "target_ratio", "d"),
        ("max abs Δ log-prob", "max_abs_logprob_diff", ".1e"), ("same prediction", "identical_predictions", ".0%"),
    ])
    if info["cells_from_an_interrupted_run"]:
        summary += (f"\n\nCells from an interrupted run with the same settings (their time is not in this run's): "
                    f"{', '.join(info['cells_from_an_interrupted_run'])}.")
    print(summary)
    result = {**info, "model": args.model, "dtypes": dtypes, "k": args.k, "chunks": args.chunks,
              "token_budget": args.token_budget, "lmeval_batch_size": args.lmeval_batch_size, "results": rows}
    save(result, plot(rows), summary)
    partial.unlink()


if __name__ == "__main__":
    main()
