"""Shared-prefix rank classification vs the naive scorer (one full forward per prompt and label).

SmolLM2-135M-Instruct (as load_model gives it, fp32 on CPU), evaluation prompts in the symbol setting (no instruction, k=4
exemplars per class) for a 3-class and a 6-class task from ../shared/data. Both scorers get
the same prompts and token budget; the script also checks that their log-probs agree.

    .venv/bin/python benchmarks/bench_scoring_naive.py [--n 16] [--threads 2]

Writes benchmarks/results/bench_scoring_naive.json.
"""

import argparse
import platform
import time
from pathlib import Path

import torch

from symtune.io import write_json
from symtune.models import load_model
from symtune.prompts import Setting, build_eval_prompts
from symtune.scoring import score_requests, score_requests_naive
from symtune.tasks.registry import load_task_list

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
TASKS = {3: "financial_phrasebank", 6: "trec"}  # number of labels -> task


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--n", type=int, default=16, help="prompts per task")
    parser.add_argument("--k", type=int, default=4, help="exemplars per class")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--token-budget", type=int, default=4096)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "bench_scoring_naive.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, tokenizer = load_model(args.model)
    model.eval()

    rows = []
    for n_labels, name in TASKS.items():
        (task,) = load_task_list(str(DATA / name))
        prompts = build_eval_prompts(task, n=args.n, k=args.k, setting=Setting(), seed=0)
        requests = [(p.text, [" " + c for c in p.candidates]) for p in prompts]
        score_requests(model, tokenizer, requests[:2], token_budget=args.token_budget)  # warm-up
        fast, fast_s = timed(score_requests, model, tokenizer, requests, token_budget=args.token_budget)
        naive, naive_s = timed(score_requests_naive, model, tokenizer, requests, token_budget=args.token_budget)
        diff = max(abs(a - b) for f, g in zip(fast, naive) for a, b in zip(f.logprobs, g.logprobs))
        row = {
            "task": name, "labels": n_labels, "k": args.k, "n": len(requests),
            "mean_prompt_tokens": sum(len(tokenizer(p.text).input_ids) for p in prompts) / len(prompts),
            "shared_prefix_examples_per_s": len(requests) / fast_s, "naive_examples_per_s": len(requests) / naive_s,
            "speedup": naive_s / fast_s, "max_abs_logprob_diff": diff,
        }
        rows.append(row)
        print(f"{n_labels} labels ({name}, {row['mean_prompt_tokens']:.0f} prompt tokens): "
              f"shared prefix {row['shared_prefix_examples_per_s']:.2f} ex/s, naive {row['naive_examples_per_s']:.2f} ex/s, "
              f"speedup {row['speedup']:.2f}x, max |dlogprob| {diff:.1e}")
    write_json(args.out, {
        "benchmark": "bench_scoring_naive", "model": args.model, "dtype": str(model.dtype), "threads": args.threads,
        "token_budget": args.token_budget, "machine": platform.machine(), "torch": torch.__version__, "results": rows,
    })


if __name__ == "__main__":
    main()
