"""The benchmarks compare like with like: on a tiny model, lm-eval's scores line up with symtune's
request by request, and TRL and symtune count the same tokens. Skipped without the bench extras."""

import sys
from argparse import Namespace
from pathlib import Path

import pytest
import torch
from conftest import save_tiny_model
from transformers import AutoModelForCausalLM

from symtune.io import write_json, write_jsonl
from symtune.scoring import score_requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

REQUESTS = [
    ("Input: good movie\nOutput: 7291\n\nInput: bad film\nOutput: QXR\n\nInput: fine\nOutput:",
     [" 7291", " QXR", " lantern"]),
    ("Q: is it raining?\nA:", [" 12345", " ABCD"]),
]


def test_lm_eval_scores_line_up_with_symtune(tiny_model_dir, tokenizer):
    pytest.importorskip("lm_eval")
    from bench_scoring import lm_eval_scores
    from lm_eval.models.huggingface import HFLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    ours = [s.logprobs for s in score_requests(model, tokenizer, REQUESTS)]
    theirs = lm_eval_scores(HFLM(pretrained=model, tokenizer=tokenizer, batch_size=2), REQUESTS)
    assert [len(x) for x in theirs] == [len(conts) for _, conts in REQUESTS]
    assert max(abs(a - b) for x, y in zip(ours, theirs) for a, b in zip(x, y)) < 1e-4


def test_an_interrupted_scoring_benchmark_keeps_only_cells_with_its_settings(tmp_path):
    pytest.importorskip("lm_eval")
    from bench_scoring import kept_cells

    settings = {"model": "smollm2-135m-instruct", "n": 200, "k": 4}
    write_json(tmp_path / "partial.json", {"settings": settings, "results": [{"labels": 3, "dtype": "fp32"}]})
    assert kept_cells(tmp_path / "partial.json", settings) == [{"labels": 3, "dtype": "fp32"}]
    assert kept_cells(tmp_path / "partial.json", {**settings, "n": 100}) == []
    assert kept_cells(tmp_path / "missing.json", settings) == []


@pytest.mark.parametrize("lora", [False, True])
def test_symtune_and_trl_train_on_the_same_tokens_with_the_same_losses(tmp_path, tokenizer, lora):
    pytest.importorskip("trl")
    from bench_tuning import in_symtune_order, run_symtune, run_trl

    model = str(save_tiny_model(tmp_path / "model", tokenizer))
    rows = [{"prompt": f"Input: example {i} {'word ' * i}\nOutput:", "completion": f" {i * 37}{tokenizer.eos_token}"}
            for i in range(6)]
    write_jsonl(tmp_path / "mixture" / "train.jsonl", rows)
    args = Namespace(steps=3, batch_size=2, lr=1e-2, bf16=False)
    ordered = in_symtune_order(rows, tokenizer, tmp_path, args)
    assert sorted(r["prompt"] for r in ordered) == sorted(r["prompt"] for r in rows)
    ours = run_symtune(model, tmp_path, args, lora=lora)
    theirs = run_trl(model, tokenizer, ordered, tmp_path, args, lora=lora, checkpointing=True)
    assert [r["tokens"] for r in ours] == [r["tokens"] for r in theirs]
    assert sum(r["tokens"] for r in ours) == sum(len(tokenizer(r["prompt"] + r["completion"]).input_ids) for r in rows)
    assert [r["loss"] for r in ours] == pytest.approx([r["loss"] for r in theirs], rel=1e-3)
    assert all(r["seconds"] > 0 for r in ours + theirs)


def test_mfu_counts_weights_and_attention_as_palm(tmp_path, tokenizer):
    pytest.importorskip("trl")
    from bench_tuning import attention_span, flops_per_token

    rows = [{"prompt": "Input: a\nOutput:", "completion": " 1"},
            {"prompt": "Input: a b c d e f\nOutput:", "completion": " 2"}]
    lengths = [len(tokenizer(r["prompt"] + r["completion"]).input_ids) for r in rows]
    span = attention_span(tokenizer, rows)
    assert span == pytest.approx(sum(t * t for t in lengths) / sum(lengths)) and min(lengths) < span < max(lengths)
    model_dir = str(save_tiny_model(tmp_path / "model", tokenizer))
    config = AutoModelForCausalLM.from_pretrained(model_dir).config
    full, _ = flops_per_token(model_dir, lora=False, span=span)
    full_no_attention, _ = flops_per_token(model_dir, lora=False, span=0)
    assert full - full_no_attention == pytest.approx(12 * config.num_hidden_layers * config.hidden_size * span)
    assert flops_per_token(model_dir, lora=True, span=span)[0] < full


def test_layer_matmul_rate_times_each_linear_shape_of_a_decoder_layer(tmp_path, tokenizer, monkeypatch):
    pytest.importorskip("trl")
    import bench_tuning

    model_dir = str(save_tiny_model(tmp_path / "model", tokenizer))
    layer = AutoModelForCausalLM.from_pretrained(model_dir).get_decoder().layers[0]
    linears = [m for m in layer.modules() if m.__class__.__name__ == "Linear"]
    monkeypatch.setattr(bench_tuning, "timed", lambda fn, *args: (fn(*args), 1e-3))
    rate = bench_tuning.layer_matmul_rate(model_dir, tokens=16, dtype=torch.float32, repeats=2)
    assert len(linears) >= 4  # q, k, v, o and the MLP
    assert rate == pytest.approx(sum(2 * 16 * m.in_features * m.out_features for m in linears) / (len(linears) * 1e-3))


def test_the_profile_sorts_operators_into_kinds_of_work():
    from profile_tuning import kind

    assert kind("aten::_scaled_dot_product_flash_attention_for_cpu_backward") == "attention backward"
    assert kind("aten::_scaled_dot_product_flash_attention_for_cpu") == "attention forward"
    assert [kind(op) for op in ("aten::mm", "aten::addmm", "aten::matmul")] == ["matmul", "matmul", "other"]
    assert kind("## Call CompiledFxGraph fyhgkf6b ##") == "compiled element-wise"
    assert kind("aten::_fused_adamw_") == "optimizer"


def test_the_token_budget_benchmark_times_every_budget_on_the_same_scores(tiny_model_dir, tokenizer):
    from bench_token_budget import seconds_per_budget

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    seconds, logprobs = seconds_per_budget(model, tokenizer, REQUESTS, [1, 64, 4096], rounds=2)
    assert list(seconds) == [1, 64, 4096] and all(s > 0 for s in seconds.values())
    assert len(logprobs[1]) == sum(len(conts) for _, conts in REQUESTS)
    assert max(abs(a - b) for a, b in zip(logprobs[1], logprobs[4096])) < 1e-4


def test_the_gpu_check_runs_on_the_cpu_with_tiny_models(tmp_path, tokenizer):
    # The GPU check has no GPU here; its --cpu --tiny mode runs every check's code so that it cannot rot.
    import json
    import subprocess

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"
    done = subprocess.run([sys.executable, str(script), "--cpu", "--tiny", "--out", str(tmp_path)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = {r["check"]: r for r in json.loads((tmp_path / "gpu_check-cpu-tiny.json").read_text())["results"]}
    assert {"scoring gemma3 bfloat16 copy", "packing sdpa", "tuning step 256-token rows, checkpointing",
            "resume (no FSDP on the CPU)", "evaluation grid", "MFU symtune"} <= set(rows)
    assert all(r["passed"] or r["skipped"] for r in rows.values())
    assert rows["packing sdpa"]["passed"] and rows["evaluation grid"]["dtypes"] == ["bfloat16"]
    assert rows["packing flash_attention_2"]["skipped"] == "flash attention needs a CUDA GPU"
    assert (rows["scoring gemma3 float32 tree"]["shortest_prompt"]
            > rows["scoring gemma3 float32 tree"]["sliding_window"])
    assert rows["resume (no FSDP on the CPU)"]["losses"] == rows["resume (no FSDP on the CPU)"]["uninterrupted"]
    assert ((tmp_path / "gpu_check-cpu-tiny.md").read_text().count("| pass |")
            == sum(r["passed"] is True for r in rows.values()))


def test_the_performance_tables_and_ratios_are_the_ones_summary_writes():
    import summary

    performance = summary.PERFORMANCE.read_text(encoding="utf-8")
    assert all(summary.section(*spec) in performance for spec in summary.SECTIONS)
    ratios = summary.headlines()
    assert ratios.count("\n") >= 4 and ratios in summary.README.read_text(encoding="utf-8")
