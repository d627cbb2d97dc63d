"""Shared-prefix rank classification vs the naive scorer (one full forward per prompt and label).

SmolLM2-135M-Instruct (fp32, CPU), evaluation prompts in the symbol setting (no instruction,
k=4 exemplars per class) for a 3-class and a 6-class task from ../shared/data. Two workloads:
- plain: the labels after the prompt (C continuations);
- calibrated, as `symtune eval` scores the grid by default: the labels after the prompt and
  after its content-free version (2C continuations; the shared scorer runs the exemplars once).
Both scorers get the same requests, each its default token budget; their log-probs are compared.
The two alternate on chunks of prompts, so that a change in machine load hits both alike, and
the speedup is taken from CPU time (one thread by default), which other processes on a shared
machine inflate far less than wall time. Wall-clock examples/s are reported as well.

    .venv/bin/python benchmarks/bench_scoring_naive.py [--n 8] [--chunk 2] [--threads 1]

Writes benchmarks/results/bench_scoring_naive.json.
"""

import argparse
import os
import time
from pathlib import Path

from common import DATA, run_info, use_threads

from symtune.io import write_json
from symtune.judge import rank_request
from symtune.models import load_model
from symtune.naive import score_requests_naive
from symtune.prompts import Setting
from symtune.scoring import Request, score_requests
from symtune.suites import Condition, EvalConfig, build_items
from symtune.tasks.registry import load_task_list

TASKS = {3: "financial_phrasebank", 6: "trec"}  # number of labels -> task


def workloads(task, n: int, k: int) -> dict[str, list[Request]]:
    """The requests `symtune eval` scores for the grid's symbol setting, without and with calibration."""
    _, items = build_items([task], EvalConfig("grid", n=n, k=k, seeds=(0,)),
                           [Condition("symbols", "symbols", Setting(), k)])
    return {"plain": [Request(i.text, [" " + c for c in i.candidates]) for i in items],
            "calibrated": [rank_request(i) for i in items]}


def interleaved(scorers: dict, requests: list, chunk: int) -> tuple[dict, dict, dict]:
    """Each scorer's results, wall seconds and CPU seconds, running them in turn on each chunk."""
    results = {name: [] for name in scorers}
    wall, cpu = dict.fromkeys(scorers, 0.0), dict.fromkeys(scorers, 0.0)
    for start in range(0, len(requests), chunk):
        for name, scorer in scorers.items():
            begin, begin_cpu = time.perf_counter(), time.process_time()
            results[name] += scorer(requests[start : start + chunk])
            wall[name] += time.perf_counter() - begin
            cpu[name] += time.process_time() - begin_cpu
    return results, wall, cpu


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--n", type=int, default=8, help="prompts per task")
    parser.add_argument("--chunk", type=int, default=2, help="prompts per turn of each scorer")
    parser.add_argument("--k", type=int, default=4, help="exemplars per class")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "bench_scoring_naive.json"))
    args = parser.parse_args()
    info = run_info("bench_scoring_naive", args.threads, quick=False)
    use_threads(args.threads)
    model, tokenizer = load_model(args.model)
    scorers = {
        "shared_prefix": lambda reqs: score_requests(model, tokenizer, reqs),
        "naive": lambda reqs: score_requests_naive(model, tokenizer, reqs),
    }

    rows = []
    for n_labels, name in TASKS.items():
        (task,) = load_task_list(str(DATA / name))
        for workload, requests in workloads(task, args.n, args.k).items():
            score_requests(model, tokenizer, requests[:1])  # warm-up
            scores, wall, cpu = interleaved(scorers, requests, args.chunk)
            fast, naive = scores.values()
            n = len(requests)
            row = {
                "task": name, "labels": n_labels, "workload": workload, "k": args.k, "n": n, "chunk": args.chunk,
                "mean_prompt_tokens": sum(len(tokenizer(p.context + p.tails[0]).input_ids) for p in requests) / n,
                "shared_prefix_cpu_s_per_example": cpu["shared_prefix"] / n,
                "naive_cpu_s_per_example": cpu["naive"] / n,
                "speedup_cpu": cpu["naive"] / cpu["shared_prefix"],
                "shared_prefix_examples_per_s": n / wall["shared_prefix"], "naive_examples_per_s": n / wall["naive"],
                "speedup_wall": wall["naive"] / wall["shared_prefix"],
                "max_abs_logprob_diff": max(abs(a - b) for f, g in zip(fast, naive)
                                            for a, b in zip(f.logprobs, g.logprobs)),
            }
            rows.append(row)
            print(f"{n_labels} labels, {workload:<10} ({row['mean_prompt_tokens']:.0f} prompt tokens): CPU s/example "
                  f"shared prefix {row['shared_prefix_cpu_s_per_example']:.2f}, "
                  f"naive {row['naive_cpu_s_per_example']:.2f}: "
                  f"speedup {row['speedup_cpu']:.2f}x (wall {row['speedup_wall']:.2f}x), "
                  f"max |dlogprob| {row['max_abs_logprob_diff']:.1e}", flush=True)
    write_json(args.out, {**info, "model": args.model, "dtype": str(model.dtype), "results": rows,
                          "load_average_at_end": [round(x, 2) for x in os.getloadavg()]})


if __name__ == "__main__":
    main()
