"""How wide a scoring batch should be on this machine: seconds per prompt at several token budgets.

`symtune eval` ranks a batch of prompts in one forward pass, as many prompts as fit the token
budget. A wide batch spreads per-call overhead; a narrow one keeps a layer's activations in the
CPU's cache. This script scores the same requests at each budget, with the model in the dtype
`symtune eval` picks on this machine, and reports seconds per prompt, the speedup over the
widest budget, and the largest log-prob difference from it (batch shapes change rounding only).
The budgets take turns, in reverse order every other round, so a drift in load hits all alike.
Workloads: the grid's calibrated prompts on ../shared/data's dev-eval tasks (capped at 1024
tokens, as the experiments do) and the demo's (the built-in lexical tasks).

    .venv/bin/python benchmarks/bench_token_budget.py [--n 2] [--rounds 1] [--threads 2]
    .venv/bin/python benchmarks/bench_token_budget.py --quick    # one prompt per task and setting

Writes benchmarks/results/bench_token_budget[-quick].json, .md and .png.
"""

import argparse
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch
from common import DATA, run_info, save, table, use_threads

from symtune.demo import split_tasks
from symtune.judge import rank_request
from symtune.models import load_model, torch_dtype
from symtune.scoring import CPU_BUDGET, score_requests
from symtune.suites import EvalConfig, build_items


def workloads(n: int) -> dict[str, list]:
    """The grid requests `symtune eval` scores: dev-eval tasks (as the experiments) and the demo's."""
    grid = EvalConfig(suite="grid", n=n, seeds=(0,), max_prompt_tokens=1024)
    return {name: [rank_request(item) for item in build_items(tasks, grid)[1]]
            for name, tasks in (("dev-eval tasks", split_tasks(str(DATA), None, 0)[1]),
                                ("demo tasks", split_tasks(None, None, 0)[1]))}


def seconds_per_budget(model, tokenizer, requests: list, budgets: list[int], rounds: int) -> tuple[dict, dict]:
    """({budget: total seconds}, {budget: log-probs of the last round})."""
    seconds, logprobs = dict.fromkeys(budgets, 0.0), {}
    for r in range(rounds):
        for budget in budgets if r % 2 == 0 else budgets[::-1]:
            start = time.perf_counter()
            scores = score_requests(model, tokenizer, requests, token_budget=budget)
            seconds[budget] += time.perf_counter() - start
            logprobs[budget] = [lp for s in scores for lp in s.logprobs]
    return seconds, logprobs


def plot(rows: list[dict]):
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for name in dict.fromkeys(r["workload"] for r in rows):
        mine = [r for r in rows if r["workload"] == name]
        ax.plot([r["token_budget"] for r in mine], [r["seconds_per_prompt"] for r in mine], "o-", label=name)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("token budget (tokens per ranking batch)")
    ax.set_ylabel("seconds per prompt")
    ax.legend()
    fig.tight_layout()
    return fig


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--n", type=int, default=2, help="prompts per task and grid setting")
    parser.add_argument("--budgets", default="1024,2048,4096,16384", help="token budgets, comma-separated")
    parser.add_argument("--rounds", type=int, default=1, help="passes over the budgets")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="one prompt per task and setting")
    args = parser.parse_args()
    info = run_info("bench_token_budget", args.threads, args.quick)
    use_threads(args.threads)
    budgets = sorted(int(b) for b in args.budgets.split(","))
    dtype = torch_dtype("auto", torch.device("cpu"))
    model, tokenizer = load_model(args.model, dtype=dtype)
    rows = []
    for name, requests in workloads(1 if args.quick else args.n).items():
        score_requests(model, tokenizer, requests[:2])  # warm-up
        seconds, logprobs = seconds_per_budget(model, tokenizer, requests, budgets, args.rounds)
        widest = budgets[-1]
        for budget in budgets:
            rows.append({"workload": name, "token_budget": budget, "prompts": len(requests),
                         "seconds_per_prompt": seconds[budget] / (args.rounds * len(requests)),
                         "speedup_vs_widest": seconds[widest] / seconds[budget],
                         "max_abs_logprob_diff": max(abs(a - b) for a, b in zip(logprobs[budget], logprobs[widest]))})
            print(f"{name}, budget {budget}: {rows[-1]['seconds_per_prompt']:.3f} s/prompt, "
                  f"{rows[-1]['speedup_vs_widest']:.2f}x the widest", flush=True)
    summary = table(rows, [("workload", "workload", ""), ("token budget", "token_budget", "d"),
                           ("prompts", "prompts", "d"), ("s/prompt", "seconds_per_prompt", ".3f"),
                           ("× widest", "speedup_vs_widest", ".2f"),
                           ("max abs Δ log-prob", "max_abs_logprob_diff", ".1e")])
    print(summary)
    save({**info, "model": args.model, "dtype": str(dtype).removeprefix("torch."), "budgets": budgets,
          "rounds": args.rounds, "default_budget": CPU_BUDGET, "results": rows},
         plot(rows), summary)


if __name__ == "__main__":
    main()
