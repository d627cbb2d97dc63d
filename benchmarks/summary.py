"""docs/performance.md's tables and the README's headline ratios, from benchmarks/results/.

    .venv/bin/python benchmarks/summary.py

Rewrites the block between the `perf` markers in docs/performance.md and the one between the
`perf-summary` markers in README.md. A full run's file is used where one exists, else the --quick
run's (and the table says so). Nothing here is typed by hand.
"""

import json
import re
from pathlib import Path

from common import RESULTS, table

ROOT = Path(__file__).resolve().parents[1]
README, PERFORMANCE = ROOT / "README.md", ROOT / "docs" / "performance.md"


def latest(name: str) -> tuple[dict, str] | None:
    """(results, file name) of benchmark `name`: the full run, else the quick run."""
    for file in (f"{name}.json", f"{name}-quick.json"):
        if (RESULTS / file).is_file():
            return json.loads((RESULTS / file).read_text()), file
    return None


def provenance(result: dict, file: str) -> str:
    quick = " (**quick run**: few steps or prompts, indicative only)" if "-quick" in file else ""
    load = result["load_average_at_start"][0]
    return (f"`{result['command']}` → [{file}](../benchmarks/results/{file}){quick}; {result['cores']} cores "
            f"({result['cpu']}); load average at start {load}.")


def trl_title(result: dict) -> str:
    peak, layer = result["matmul_peak_flops"], result.get("layer_matmul_flops")
    shapes = (f"; at the model's own layer shapes it reaches {layer / 1e9:.0f} GFLOP/s, the last column's "
              "denominator") if layer else ""
    dtype = "bf16 autocast" if result["bf16_autocast"] else "fp32"
    return (f"**Tuning vs TRL `SFTTrainer`, {dtype}** (same mixture, batch, lr, steps, dtype; MFU against the "
            f"CPU's measured {dtype.split()[0]} matmul peak; its peaks: fp32 {peak['fp32'] / 1e9:.0f}, "
            f"bf16 {peak['bf16'] / 1e9:.0f} GFLOP/s{shapes}):")


def profile_title(result: dict) -> str:
    step = result["unprofiled_step"]
    return (f"**Where a tuning step's time goes** ({result['mode']}, torch.profiler; "
            f"the step took {step['seconds']:.1f} s unprofiled, {step['tokens_per_s']:.0f} tokens/s; "
            f"GFLOP/s: the matmuls' rate inside the step):")


TRL_COLUMNS = [("mode", "mode", ""), ("run", "run", ""), ("tokens/s", "tokens_per_s", ".0f"),
               ("× TRL default", "speedup_vs_trl_default", ".2f"),
               ("× TRL no checkpointing", "speedup_vs_trl_no_checkpointing", ".2f"), ("MFU", "mfu", ".0%"),
               ("final loss", "final_loss", ".3f"), ("MFU at layer shapes", "share_of_layer_matmul_rate", ".0%")]
SECTIONS = [  # (results name, title, the table's rows, its columns: (heading, key, format))
    ("bench_train_speed", "**Tuning vs plain Hugging Face fine-tuning** (fp32, padded batches, full-vocabulary "
     "logits):", lambda r: r["results"], [("config", "config", ""), ("tokens/s", "tokens_per_s", ".0f"),
                                          ("× baseline", "speedup", ".2f"), ("target", "target", ".0f")]),
    ("bench_scoring_naive", "**Shared-prefix scoring vs the naive scorer** (one full forward per prompt and label; "
     "calibrated = the grid's default):",
     lambda r: r["results"], [("labels", "labels", "d"), ("workload", "workload", ""), ("prompts", "n", "d"),
                              ("× naive (CPU time)", "speedup_cpu", ".2f"), ("× naive (wall)", "speedup_wall", ".2f"),
                              ("max abs Δ log-prob", "max_abs_logprob_diff", ".1e")]),
    ("bench_scoring", "**Scoring vs lm-evaluation-harness** (same requests, model, dtype and threads):",
     lambda r: r["results"], [("labels", "labels", "d"), ("dtype", "dtype", ""), ("prompts", "n", "d"),
                              ("symtune ex/s", "symtune_examples_per_s", ".3f"),
                              ("lm-eval ex/s", "lm_eval_examples_per_s", ".3f"), ("ratio", "ratio", ".2f"),
                              ("target", "target_ratio", "d"), ("max abs Δ", "max_abs_logprob_diff", ".1e"),
                              ("same prediction", "identical_predictions", ".0%")]),
    *((name, trl_title, lambda r: r["results"], TRL_COLUMNS) for name in ("bench_tuning", "bench_tuning-fp32")),
    ("bench_token_budget", lambda r: "**Scoring batch width** (seconds per grid prompt at each token budget, the model "
     f"in the dtype `symtune eval` picks on that CPU, {r['dtype']}; the default on a CPU is {r['default_budget']}):",
     lambda r: r["results"], [("workload", "workload", ""), ("token budget", "token_budget", "d"),
                              ("prompts", "prompts", "d"), ("s/prompt", "seconds_per_prompt", ".3f"),
                              ("× widest", "speedup_vs_widest", ".2f"),
                              ("max abs Δ log-prob", "max_abs_logprob_diff", ".1e")]),
    ("bench_step_memory", lambda r: "**A tuning step's memory on a CPU** (symtune full fine-tuning, each configuration "
     f"in a fresh process, {r['mean_tokens_per_step']:.0f} tokens a step; `whole`: one forward and backward a step "
     "with keep_freed_memory(), as `symtune tune` runs on a CPU; 1024 and 512: `micro_batch_tokens`):",
     lambda r: r["results"], [("config", "config", ""), ("tokens/s", "tokens_per_s", ".0f"),
                              ("× glibc default", "speedup_vs_glibc_default", ".2f"),
                              ("page faults per step (median)", "median_page_faults_per_step", ".0f"),
                              ("peak RSS (GB)", "peak_rss_gb", ".2f")]),
    ("profile_tuning-full-compile", profile_title,
     lambda r: r["results"], [("kind of work", "kind", ""), ("CPU seconds", "seconds", ".2f"),
                              ("share", "share", ".0%"), ("GFLOP/s", "gflop_per_s", ".0f")]),
]


def section(name: str, title, rows, columns) -> str:
    found = latest(name)
    if not found:
        return ""
    result, file = found
    title = title(result) if callable(title) else title
    return f"{title}\n\n{table(rows(result), columns)}\n\n{provenance(result, file)}"


# (results name, what it compares, the rows whose ratio counts, the ratio's key) for the README
HEADLINES = [
    ("bench_train_speed", "tuning vs plain Hugging Face fine-tuning (full, LoRA)",
     lambda r: r["config"] in ("full", "lora"), "speedup"),
    ("bench_tuning-fp32", "tuning vs TRL `SFTTrainer` defaults, fp32 (full, LoRA)",
     lambda r: r["run"] == "symtune", "speedup_vs_trl_default"),
    ("bench_tuning", "tuning vs TRL `SFTTrainer` defaults, bf16 autocast (full, LoRA)",
     lambda r: r["run"] == "symtune", "speedup_vs_trl_default"),
    ("bench_scoring", "scoring vs lm-evaluation-harness (3 and 6 labels, fp32 and bf16)", lambda r: True, "ratio"),
    ("bench_scoring_naive", "scoring vs one forward per prompt and label", lambda r: True, "speedup_wall"),
]


def headlines() -> str:
    rows = []
    for name, what, keep, key in HEADLINES:
        found = latest(name)
        if found:
            ratios = [r[key] for r in found[0]["results"] if keep(r)]
            rows.append(f"| {what} | {min(ratios):.2f}–{max(ratios):.2f}× | {found[0]['cpu']} |")
    return "\n".join(["| symtune against | × | CPU |", "|---|---|---|", *rows])


def rewrite(path: Path, marker: str, block: str) -> None:
    start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
    text = path.read_text(encoding="utf-8")
    if start not in text:
        raise SystemExit(f"{path} has no {start} … {end} block")
    new = f"{start}\n{block}\n{end}"
    path.write_text(re.sub(f"{re.escape(start)}.*?{re.escape(end)}", lambda _: new, text, flags=re.S), encoding="utf-8")
    print(f"updated {path}")


def main() -> None:
    rewrite(PERFORMANCE, "perf", "\n\n".join(p for p in (section(*spec) for spec in SECTIONS) if p))
    rewrite(README, "perf-summary", headlines())


if __name__ == "__main__":
    main()
