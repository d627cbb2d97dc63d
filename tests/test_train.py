import dataclasses
import errno
import os
import shutil
import signal
import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml
from accelerate import Accelerator
from conftest import save_tiny_model
from helpers import toy_task
from transformers import AutoModelForCausalLM

from symtune.errors import SymtuneError
from symtune.io import read_jsonl, write_jsonl
from symtune.mixture import MixtureConfig, build_mixture
from symtune.models import load_model
from symtune.train import Recipe, load_recipe, loop, tune
from symtune.train.data import TrainingData, encode, make_batch, make_batches, pack, step_prompts
from symtune.train.loop import supervised_logits

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def mixture(tmp_path_factory):
    """Symbol and natural-label prompts from two toy tasks."""
    out = tmp_path_factory.mktemp("mix")
    build_mixture([toy_task("a", per_class=20), toy_task("b", labels=("x", "y", "z"), per_class=15)], out,
                  MixtureConfig(n=48, seed=0, k_min=1, k_max=2, symbol_fraction=0.5))
    return out


def quick(**overrides) -> Recipe:
    return load_recipe("cpu-small", {"max_steps": 4, "batch_size": 4, "warmup_steps": 1, "save_every": 2,
                                     "bf16": False, **overrides})


def losses(out) -> list[float]:
    return [row["loss"] for row in read_jsonl(Path(out) / "train_log.jsonl")]


# ---- packing and the supervised-only LM head --------------------------------------------------

PAIRS = [("Input: a b c d e f g h i j k\nOutput:", " QXR"), ("x y\nOutput:", " no"),
         ("Input: a much longer prompt than the two others, with so many more words in it that both of them fit "
          "beside each other in one row as wide as this one\nOutput:", " 7291 zz")]


def per_token_loss(model, batch):
    logits = supervised_logits(Accelerator(), model, batch, bf16=False)
    return F.cross_entropy(logits, batch["targets"], reduction="none")


@pytest.mark.parametrize("architecture", ["llama", "gemma3"])
@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_packed_samples_never_see_each_other(tokenizer, tmp_path, architecture, attention):
    """Packing gives every token the loss it has when its sample runs alone (gemma3's sliding window
    of 8 is shorter than the samples, so its position remapping is exercised too)."""
    path = save_tiny_model(tmp_path, tokenizer, architecture)
    model = AutoModelForCausalLM.from_pretrained(path, attn_implementation=attention)
    samples = encode(tokenizer, [p for p, _ in PAIRS], [c for _, c in PAIRS])
    packed = make_batch(samples, tokenizer.pad_token_id)
    assert packed["input_ids"].shape[0] == 2  # the long prompt alone, the two short ones side by side
    alone = [per_token_loss(model, make_batch([s], tokenizer.pad_token_id))
             for s in sorted(samples, key=lambda s: -len(s[0]))]  # packing puts the longest first
    torch.testing.assert_close(per_token_loss(model, packed), torch.cat(alone), rtol=0, atol=1e-5)
    leaky = dict(packed, position_ids=torch.arange(packed["input_ids"].shape[1])[None])  # no restarts: one long text
    assert not torch.allclose(per_token_loss(model, leaky), torch.cat(alone), atol=1e-3)


class FakeFlashAttention:
    """Pure-torch stand-ins for flash-attn's kernels, plugged in under transformers' real FA2 dispatch
    (`_flash_attention_forward`), so that a CPU runs the code path a GPU runs. Each call records which
    keys every query may see, as (row, query position, key position) triples."""

    def __init__(self):
        self.seen = []

    @staticmethod
    def attend(q, k, v, allowed, scale):  # q: (s, h, d), k and v: (s, kv heads, d), allowed: (s, s)
        k, v = (x.repeat_interleave(q.shape[1] // x.shape[1], dim=1) for x in (k, v))
        scores = torch.einsum("qhd,khd->hqk", q, k) * (scale or q.shape[-1] ** -0.5)
        weights = scores.masked_fill(~allowed, float("-inf")).softmax(-1)
        return torch.einsum("hqk,khd->qhd", weights, v)

    @staticmethod
    def causal(n, window_size):
        i, j = torch.arange(n)[:, None], torch.arange(n)[None]
        left = window_size[0] if window_size and window_size[0] >= 0 else n
        return (j <= i) & (i - j <= left)

    def flash_attn_func(self, q, k, v, dropout_p=0.0, softmax_scale=None, causal=False, window_size=(-1, -1)):
        allowed = self.causal(q.shape[1], window_size)
        for row in range(q.shape[0]):
            self.seen += [(row, int(a), int(b)) for a, b in allowed.nonzero()]
        return torch.stack([self.attend(q[r], k[r], v[r], allowed, softmax_scale) for r in range(q.shape[0])])

    def flash_attn_varlen_func(self, q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, dropout_p=0.0,
                               softmax_scale=None, causal=False, window_size=(-1, -1)):
        out = torch.empty_like(q)
        for start, end in zip(cu_seqlens_q.tolist(), cu_seqlens_q[1:].tolist()):
            allowed = self.causal(end - start, window_size)
            self.seen += [(0, start + int(a), start + int(b)) for a, b in allowed.nonzero()]
            out[start:end] = self.attend(q[start:end], k[start:end], v[start:end], allowed, softmax_scale)
        return out

    def install(self, monkeypatch):
        from transformers import modeling_flash_attention_utils as fa

        monkeypatch.setattr(fa, "_loaded_implementation", "flash_attention_2")
        monkeypatch.setattr(fa, "_flash_fn", self.flash_attn_func)
        monkeypatch.setattr(fa, "_flash_varlen_fn", self.flash_attn_varlen_func)
        monkeypatch.setattr(fa, "_process_flash_kwargs_fn",
                            fa._lazy_define_process_function(self.flash_attn_varlen_func))


def sample_of_each_position(batch) -> torch.Tensor:
    """Which sample each (row, position) of a packed batch belongs to: a new one wherever position_ids restart."""
    starts = batch["position_ids"] == 0
    return starts.flatten().cumsum(0).view(starts.shape)


def flash_model(path, monkeypatch):
    """A model whose attention runs through transformers' flash_attention_2 path on FakeFlashAttention."""
    fake = FakeFlashAttention()
    fake.install(monkeypatch)
    model = AutoModelForCausalLM.from_pretrained(path, attn_implementation="sdpa")
    model.config._attn_implementation = "flash_attention_2"  # from_pretrained would look for the flash-attn package
    return model, fake


@pytest.mark.parametrize("architecture", ["llama", "gemma3"])
def test_flash_attention_runs_each_packed_sample_alone(tokenizer, tmp_path, monkeypatch, architecture):
    path = save_tiny_model(tmp_path, tokenizer, architecture)
    samples = encode(tokenizer, [p for p, _ in PAIRS], [c for _, c in PAIRS])
    [batch] = make_batches(samples, tokenizer.pad_token_id, varlen=True)
    reference = AutoModelForCausalLM.from_pretrained(path, attn_implementation="eager")
    alone = [per_token_loss(reference, make_batch([s], tokenizer.pad_token_id))
             for s in sorted(samples, key=lambda s: -len(s[0]))]  # packing puts the longest first
    model, fake = flash_model(path, monkeypatch)
    losses_flash = per_token_loss(model, batch)
    sample = sample_of_each_position(batch)
    assert fake.seen and all(sample[r, q] == sample[r, k] for r, q, k in fake.seen)  # no query sees another prompt
    torch.testing.assert_close(losses_flash, torch.cat(alone), rtol=0, atol=1e-5)
    fake.seen.clear()  # what transformers does with several packed rows: plain causal attention over each row
    rows = make_batch(samples, tokenizer.pad_token_id)
    per_token_loss(model, rows)
    sample = sample_of_each_position(rows)
    assert any(sample[r, q] != sample[r, k] for r, q, k in fake.seen)


def test_flash_attention_tunes_like_sdpa(tiny_model_dir, tmp_path, monkeypatch):
    """End to end through tune(): the packed micro-batches under flash attention give sdpa's losses."""
    mixture = tmp_path / "mix"  # prompts of very different lengths, so that rows hold several of them
    write_jsonl(mixture / "train.jsonl", [{"prompt": f"Input: {'word ' * (i * i % 23)}\nOutput:", "completion": f" {i}"}
                                          for i in range(16)])
    sdpa = tune(str(tiny_model_dir), mixture, tmp_path / "sdpa", quick(max_steps=3), progress=False)
    fake = FakeFlashAttention()
    fake.install(monkeypatch)
    real_load = loop.load_model

    def load_for_flash(path, dtype=None, attn_implementation=None):
        model, tok = real_load(path, dtype=dtype, attn_implementation="sdpa")
        model.config._attn_implementation = attn_implementation
        return model, tok

    monkeypatch.setattr(loop, "load_model", load_for_flash)
    flash = tune(str(tiny_model_dir), mixture, tmp_path / "flash",
                 quick(max_steps=3, attn_implementation="flash_attention_2"), progress=False)
    assert fake.seen and all(q >= k for _, q, k in fake.seen)
    assert losses(flash) == pytest.approx(losses(sdpa), abs=1e-5)


@pytest.mark.parametrize("attention", ["flex_attention", "paged|sdpa", "kernels-community/flash-attn2"])
def test_attention_that_could_mix_packed_prompts_is_refused(attention):
    with pytest.raises(SymtuneError, match="attn_implementation must be one of sdpa, eager, flash_attention_2"):
        quick(attn_implementation=attention)


def test_loss_is_on_completion_tokens_and_matches_plain_transformers(tokenizer, tiny_model_dir):
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    prompt, completion = PAIRS[2]
    [(ids, n_prompt)] = encode(tokenizer, [prompt], [completion])
    assert tokenizer.decode(ids[n_prompt:]) == completion and ids[:n_prompt] == tokenizer(prompt).input_ids
    labels = torch.tensor([[-100] * n_prompt + ids[n_prompt:]])
    expected = model(input_ids=torch.tensor([ids]), labels=labels).loss
    ours = per_token_loss(model, make_batch([(ids, n_prompt)], tokenizer.pad_token_id)).mean()
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-6)


def test_pack_fills_rows_up_to_the_limit():
    samples = [([1] * n, 1) for n in (60, 50, 40, 30, 20)]
    rows = pack(samples, 100)
    assert [[len(ids) for ids, _ in row] for row in rows] == [[60, 40], [50, 30, 20]]
    assert [[len(ids) for ids, _ in row] for row in pack(samples, 60)] == [[60], [50], [40, 20], [30]]


def test_micro_batches_deal_the_packed_rows_into_the_fewest_parts_under_the_budget():
    samples = [(list(range(10, 10 + n)), 2) for n in (60, 50, 40, 30, 20, 10)]  # rows of 60 wide: 60, 50+10, 40+20, 30
    whole = make_batches(samples, pad_id=0)
    assert len(whole) == 1 and whole[0]["input_ids"].shape == (4, 60)
    for budget, parts in ((240, 1), (239, 2), (120, 2), (119, 4), (60, 4), (1, 4)):  # a row alone may exceed it
        batches = make_batches(samples, pad_id=0, max_tokens=budget)
        assert len(batches) == parts
        assert budget < 60 or all(b["input_ids"].numel() <= budget for b in batches)
        assert sum(len(b["targets"]) for b in batches) == sum(len(ids) - 2 for ids, _ in samples)
        assert sum(int((b["input_ids"] != 0).sum()) for b in batches) == sum(len(ids) for ids, _ in samples)


def test_micro_batches_train_like_the_whole_batch(tiny_model_dir, mixture, tmp_path):
    whole = tune(str(tiny_model_dir), mixture, tmp_path / "whole", quick(micro_batch_tokens=1 << 20), progress=False)
    micro = tune(str(tiny_model_dir), mixture, tmp_path / "micro", quick(micro_batch_tokens=8), progress=False)
    assert losses(micro) == pytest.approx(losses(whole), abs=1e-5)
    assert len(set(losses(whole))) == 4  # the steps differ, so a wrong gradient scale would show after step 1


@pytest.mark.parametrize("lora", [False, True])
def test_gradient_checkpointing_checkpoints_the_layers_and_trains_alike(tiny_model_dir, mixture, tmp_path, monkeypatch,
                                                                         lora):
    import transformers.modeling_utils

    real_checkpoint, calls = transformers.modeling_utils.checkpoint, []
    monkeypatch.setattr(transformers.modeling_utils, "checkpoint",
                        lambda *args, **kwargs: calls.append(kwargs) or real_checkpoint(*args, **kwargs))
    plain = tune(str(tiny_model_dir), mixture, tmp_path / "plain", quick(lora=lora, max_steps=3), progress=False)
    assert calls == []
    checkpointed = tune(str(tiny_model_dir), mixture, tmp_path / "ckpt",
                        quick(lora=lora, max_steps=3, gradient_checkpointing=True), progress=False)
    assert len(calls) == 2 * 3 and all(kw == {"use_reentrant": False} for kw in calls)  # 2 layers, 3 steps
    assert losses(checkpointed) == pytest.approx(losses(plain), abs=1e-4)
    assert len(set(losses(plain))) == 3


def test_lora_holds_its_frozen_base_in_bf16_on_a_gpu_and_trains_fp32_adapters(tiny_model_dir):
    gpu, cpu = torch.device("cuda"), torch.device("cpu")
    assert loop.weights_dtype(quick(lora=True), gpu, bf16=True) == torch.bfloat16
    assert loop.weights_dtype(quick(lora=True), gpu, bf16=False) == torch.float32  # fp32 asked for: fp32 weights
    assert loop.weights_dtype(quick(), gpu, bf16=True) == torch.float32  # trained weights stay fp32
    assert loop.weights_dtype(quick(lora=True), cpu, bf16=True) == torch.float32
    model, _ = load_model(str(tiny_model_dir), dtype=torch.bfloat16)
    model = loop.add_lora(model, quick(lora=True))
    trained = {p.dtype for p in model.parameters() if p.requires_grad}
    frozen = {p.dtype for p in model.parameters() if not p.requires_grad}
    assert (trained, frozen) == ({torch.float32}, {torch.bfloat16})


def test_keep_freed_memory_sets_glibc_to_reuse_memory_and_is_a_no_op_without_glibc(monkeypatch):
    calls = []

    class FakeLibc:
        def mallopt(self, param, value):
            calls.append((param, value))
            return 1

    monkeypatch.setattr(loop.ctypes, "CDLL", lambda name: FakeLibc())
    loop.keep_freed_memory()
    assert calls == [(loop.M_MMAP_MAX, 0), (loop.M_TRIM_THRESHOLD, 2**40)]

    def no_glibc(name):
        raise OSError(name)

    monkeypatch.setattr(loop.ctypes, "CDLL", no_glibc)
    loop.keep_freed_memory()  # musl, macOS, Windows: nothing to set, no error


def test_micro_batch_tokens_below_one_is_refused():
    with pytest.raises(SymtuneError, match="micro_batch_tokens must be at least 1"):
        quick(micro_batch_tokens=0)


# ---- data: schedule, stages, ratios -----------------------------------------------------------

def test_step_prompts_follow_the_ratio_and_use_each_prompt_once_per_pass():
    sources = [(list(range(0, 10)), 3.0), (list(range(100, 200)), 1.0)]
    steps = step_prompts(sources, steps=250, batch_size=8, seed="0")
    assert steps == step_prompts(sources, steps=250, batch_size=8, seed="0")
    flat = [i for step in steps for i in step]
    share = sum(i < 10 for i in flat) / len(flat)
    assert 0.72 < share < 0.78
    first_pass = [i for i in flat if i < 10][:10]
    assert sorted(first_pass) == list(range(10))


def test_two_stage_schedule_and_symbol_fraction(tokenizer, mixture, tmp_path):
    natural = tmp_path / "natural"
    build_mixture([toy_task("c")], natural, MixtureConfig(n=20, seed=1, k_max=2, symbol_fraction=0.0))
    recipe = quick(max_steps=6, stages=[{"data": str(mixture), "steps": 2},
                                         {"data": [str(mixture), str(natural)], "ratio": [0, 1]}])
    data = TrainingData(recipe, None, tokenizer, context=2048)
    assert data.stage_of_step == [0, 0, 1, 1, 1, 1]
    first = set(data.mixtures[str(mixture)][0]["symbol"] + data.mixtures[str(mixture)][0]["other"])
    assert set(i for step in data.schedule[:2] for i in step) <= first
    assert not set(i for step in data.schedule[2:] for i in step) & first
    only_symbols = TrainingData(quick(symbol_fraction=1.0), mixture, tokenizer, context=2048)
    symbol_rows = set(only_symbols.mixtures[str(mixture)][0]["symbol"])
    assert set(i for step in only_symbols.schedule for i in step) <= symbol_rows


# ---- recipes ----------------------------------------------------------------------------------

def test_shipped_default_recipe_lists_every_knob_at_its_default():
    text = (REPO / "symtune" / "configs" / "cpu-small.yaml").read_text()
    assert yaml.safe_load(text) == dataclasses.asdict(Recipe())
    for name in ("paper", "two-stage"):
        shipped = yaml.safe_load((REPO / "symtune" / "configs" / f"{name}.yaml").read_text())
        assert set(shipped) == set(Recipe().to_dict())
    paper = load_recipe("paper")
    assert (paper.batch_size, paper.lr, paper.optimizer, paper.max_steps) == (32, 3e-3, "adafactor", 4000)


def test_the_paper_recipes_adafactor_steps_each_weight_relative_to_its_scale(tiny_model_dir):
    """The papers' lr 3e-3 is relative to each parameter's RMS (T5X/PaLM Adafactor): one step moves a
    weight matrix by at most lr of its own RMS (Adafactor clips the update's RMS at 1). Unscaled, the
    step is up to 3e-3 absolute, many times that for weights of RMS 0.02."""
    from symtune.train.loop import make_optimizer

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    with torch.no_grad():  # weights of a trained model's scale: the same for every matrix here
        for p in model.parameters():
            p.normal_(0, 0.02)
    recipe = load_recipe("paper")
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    ids = torch.randint(0, model.config.vocab_size, (2, 16))
    model(input_ids=ids, labels=ids).loss.backward()
    make_optimizer(model, recipe).step()
    rms = lambda t: t.pow(2).mean().sqrt().item()  # noqa: E731
    for name, p in model.named_parameters():
        if p.dim() == 2:
            assert rms(p.detach() - before[name]) <= 1.01 * recipe.lr * rms(before[name]), name


def test_overrides_are_typed_and_unknown_keys_are_named():
    recipe = load_recipe("cpu-small", ["lr=3e-4", "lora=true", "lora_target_modules=[q_proj, v_proj]",
                                       "max_grad_norm=null"])
    assert recipe.lr == 3e-4 and recipe.lora is True and recipe.lora_target_modules == ["q_proj", "v_proj"]
    assert recipe.max_grad_norm is None
    with pytest.raises(SymtuneError, match="unknown recipe key 'learning_rate'"):
        load_recipe("cpu-small", ["learning_rate=1e-3"])
    with pytest.raises(SymtuneError, match="batch_size must be int"):
        load_recipe("cpu-small", ["batch_size=many"])
    with pytest.raises(SymtuneError, match="add up to 300 but max_steps is 50"):
        load_recipe("cpu-small", ["max_steps=50", "stages=[{data: a, steps: 100}, {data: b, steps: 200}]"])


def test_unknown_key_in_a_recipe_file_is_named(tmp_path):
    (tmp_path / "r.yaml").write_text("lr: 1.0e-4\nwarmup: 3\n")
    with pytest.raises(SymtuneError, match="unknown recipe key 'warmup'.*did you mean warmup_steps"):
        load_recipe(str(tmp_path / "r.yaml"))


# ---- tuning end to end ------------------------------------------------------------------------

def test_full_tuning_writes_a_plain_transformers_model_with_card_log_and_curve(tiny_model_dir, mixture, tmp_path):
    out = tune(str(tiny_model_dir), mixture, tmp_path / "run", quick(), progress=False)
    log = read_jsonl(out / "train_log.jsonl")
    assert [row["step"] for row in log] == [1, 2, 3, 4] and all(row["tokens_per_s"] > 0 for row in log)
    tuned = AutoModelForCausalLM.from_pretrained(out)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert not torch.equal(tuned.model.layers[0].mlp.up_proj.weight, base.model.layers[0].mlp.up_proj.weight)
    card = (out / "README.md").read_text()
    assert str(tiny_model_dir) in card and "max_steps: 4" in card and "symtune_version" in card
    assert (out / "loss.png").read_bytes()[:4] == b"\x89PNG" and (out / "tokenizer.json").exists()
    with pytest.raises(SymtuneError, match="already holds a run"):
        tune(str(tiny_model_dir), mixture, out, quick(), progress=False)


def test_lora_saves_an_adapter_or_a_merged_model(tiny_model_dir, mixture, tmp_path):
    adapter = tune(str(tiny_model_dir), mixture, tmp_path / "lora", quick(lora=True, max_steps=2), progress=False)
    assert (adapter / "adapter_model.safetensors").exists() and not (adapter / "model.safetensors").exists()
    merged_from_adapter, _ = load_model(str(adapter))
    plain = AutoModelForCausalLM.from_pretrained(adapter)  # transformers loads the base model and the adapter
    assert plain.config.num_hidden_layers == 2
    merged = tune(str(tiny_model_dir), mixture, tmp_path / "merged", quick(lora=True, merge_lora=True, max_steps=2),
                  progress=False)
    reloaded = AutoModelForCausalLM.from_pretrained(merged)
    torch.testing.assert_close(reloaded.model.layers[1].self_attn.q_proj.weight,
                               merged_from_adapter.model.layers[1].self_attn.q_proj.weight)


@pytest.mark.skipif(not any(shutil.which(c) for c in ("g++", "clang++")), reason="torch.compile needs a C++ compiler")
def test_compiled_layers_train_like_eager_ones(tiny_model_dir, mixture, tmp_path):
    from torch._dynamo.utils import counters

    eager = tune(str(tiny_model_dir), mixture, tmp_path / "eager", quick(lora=True, max_steps=3), progress=False)
    counters.clear()
    compiled = tune(str(tiny_model_dir), mixture, tmp_path / "compiled", quick(lora=True, max_steps=3, compile=True),
                    progress=False)
    assert counters["stats"]["unique_graphs"] >= 1  # dynamo did compile the layers
    assert losses(compiled) == pytest.approx(losses(eager), abs=1e-4)
    assert len(set(losses(eager))) == 3  # the steps train on different prompts, so they could disagree


def test_compile_without_a_compiler_or_decoder_layers_is_refused(tiny_model_dir, monkeypatch):
    model, _ = load_model(str(tiny_model_dir))
    monkeypatch.setattr(loop.shutil, "which", lambda name: None)
    with pytest.raises(SymtuneError, match="needs a C.. compiler"):
        loop.compile_layers(model)
    monkeypatch.undo()
    with pytest.raises(SymtuneError, match="no decoder layers found in Linear"):
        loop.compile_layers(torch.nn.Linear(2, 2))


def test_resume_continues_with_the_losses_of_an_uninterrupted_run(tiny_model_dir, mixture, tmp_path, monkeypatch):
    recipe = quick(max_steps=5)
    tune(str(tiny_model_dir), mixture, tmp_path / "whole", recipe, progress=False)

    real_step, calls = loop.train_step, []

    def killed_after_step_2(*args, **kwargs):
        if len(calls) == 3:
            raise KeyboardInterrupt("killed in step 3")
        calls.append(1)
        return real_step(*args, **kwargs)

    monkeypatch.setattr(loop, "train_step", killed_after_step_2)
    with pytest.raises(KeyboardInterrupt, match="killed in step 3"):
        tune(str(tiny_model_dir), mixture, tmp_path / "cut", recipe, progress=False)
    assert len(losses(tmp_path / "cut")) == 3  # step 3 ran after the checkpoint at step 2; resume redoes it
    monkeypatch.setattr(loop, "train_step", real_step)
    tune(str(tiny_model_dir), mixture, tmp_path / "cut", recipe, resume=True, progress=False)
    assert losses(tmp_path / "cut") == pytest.approx(losses(tmp_path / "whole"), abs=1e-6)


def test_resume_refuses_another_recipe_or_model(tiny_model_dir, tokenizer, mixture, tmp_path):
    out = tune(str(tiny_model_dir), mixture, tmp_path / "run", quick(max_steps=3), progress=False)
    with pytest.raises(SymtuneError, match="recipe differs: lr=0.0001 there, 0.001 here"):
        tune(str(tiny_model_dir), mixture, out, quick(max_steps=3, lr=1e-3), resume=True, progress=False)
    other = save_tiny_model(tmp_path / "other", tokenizer, num_hidden_layers=1)
    with pytest.raises(SymtuneError, match="made from the model"):
        tune(str(other), mixture, out, quick(max_steps=3), resume=True, progress=False)
    with pytest.raises(SymtuneError, match="nothing to resume"):
        tune(str(tiny_model_dir), mixture, tmp_path / "fresh", quick(), resume=True, progress=False)


def test_disk_full_while_saving_keeps_the_previous_checkpoint(tiny_model_dir, mixture, tmp_path, monkeypatch):
    real_save, saves = torch.save, []

    def full_disk_on_second_checkpoint(obj, f, *args, **kwargs):
        saves.append(f)
        if any("step-000004" in str(s) for s in saves):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", full_disk_on_second_checkpoint)
    with pytest.raises(SymtuneError, match="disk full while saving checkpoint step-000004.*step-000002 is intact"):
        tune(str(tiny_model_dir), mixture, tmp_path / "run", quick(max_steps=5), progress=False)
    assert [p.name for p in (tmp_path / "run" / "checkpoints").iterdir()] == ["step-000002"]
    monkeypatch.setattr(torch, "save", real_save)
    tune(str(tiny_model_dir), mixture, tmp_path / "run", quick(max_steps=5), resume=True, progress=False)
    assert len(losses(tmp_path / "run")) == 5


# ---- bad input --------------------------------------------------------------------------------

def test_bad_mixtures_are_refused_clearly(tiny_model_dir, tmp_path):
    def run(data):
        return tune(str(tiny_model_dir), data, tmp_path / "run", quick(), progress=False)

    with pytest.raises(SymtuneError, match="mixture folder not found"):
        run(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SymtuneError, match="has no train.jsonl"):
        run(tmp_path / "empty")
    (tmp_path / "empty" / "train.jsonl").write_text("")
    with pytest.raises(SymtuneError, match="train.jsonl is empty"):
        run(tmp_path / "empty")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "train.jsonl").write_text('{"prompt": "a", "completion": " b"}\n{"prompt": "a",\n')
    with pytest.raises(SymtuneError, match=r"train.jsonl:2: malformed JSON"):
        run(tmp_path / "bad")
    (tmp_path / "bad" / "train.jsonl").write_text('{"prompt": "a", "completion": " b"}\n{"prompt": "a"}\n')
    with pytest.raises(SymtuneError, match="row 2 needs a non-empty string prompt and completion"):
        run(tmp_path / "bad")


def test_prompt_longer_than_the_context_is_refused(tokenizer, mixture, tmp_path):
    short = save_tiny_model(tmp_path / "short", tokenizer, max_position_embeddings=32)
    with pytest.raises(SymtuneError, match=r"row 1 has \d+ tokens, longer than the model's context of 32"):
        tune(str(short), mixture, tmp_path / "run", quick(), progress=False)


def test_missing_lora_target_modules_are_named(tiny_model_dir, mixture, tmp_path):
    with pytest.raises(SymtuneError, match="LoRA target modules not in the model: qkv_proj .*q_proj"):
        tune(str(tiny_model_dir), mixture, tmp_path / "run", quick(lora=True, lora_target_modules=["qkv_proj"]),
             progress=False)


# ---- distributed ------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_two_processes(*args, timeout: int = 300) -> subprocess.CompletedProcess:
    """`accelerate launch --multi_gpu --num_processes 2 ARGS...` (docs/distributed.md): two CPU processes
    over gloo; on a timeout every process is killed."""
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               "--main_process_port", str(free_port()), *map(str, args)]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        pytest.fail(f"the processes still ran after {timeout} s (a process waits for one that stopped?): "
                    f"{stderr[-3000:]}")
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def tune_script(tiny_model_dir, mixture, out, recipe: Recipe, before: str = "") -> str:
    return (f"{before}from symtune.train import load_recipe, tune\n"
            f"tune({str(tiny_model_dir)!r}, {str(mixture)!r}, {str(out)!r}, "
            f"load_recipe('cpu-small', {recipe.to_dict()!r}), progress=False)\n")


@pytest.mark.slow  # two processes start and import torch
def test_two_cpu_processes_match_one_process_on_the_same_global_batch(tiny_model_dir, mixture, tmp_path):
    recipe = quick(max_steps=3, save_every=100)
    tune(str(tiny_model_dir), mixture, tmp_path / "single", recipe, progress=False)
    done = launch_two_processes("-m", "symtune.cli", "tune", "--model", tiny_model_dir, "--data", mixture, "--out",
                                tmp_path / "ddp", "--max-steps", "3", "--set", "batch_size=4", "--set",
                                "warmup_steps=1", "--set", "save_every=100", "--set", "bf16=false")
    assert done.returncode == 0, done.stderr[-3000:]
    assert losses(tmp_path / "ddp") == pytest.approx(losses(tmp_path / "single"), abs=1e-5)
    assert "processes: 2" in (tmp_path / "ddp" / "README.md").read_text()


DISK_FULL_ON_PROCESS_0 = """import errno, os, torch
real_save = torch.save
def full_disk_on_process_0(obj, f, *args, **kwargs):
    if os.environ["RANK"] == "0":
        raise OSError(errno.ENOSPC, "No space left on device")
    return real_save(obj, f, *args, **kwargs)
torch.save = full_disk_on_process_0
"""


@pytest.mark.slow  # two processes start and import torch
def test_a_failed_save_on_one_process_stops_every_process(tiny_model_dir, mixture, tmp_path):
    script = tmp_path / "run.py"
    script.write_text(tune_script(tiny_model_dir, mixture, tmp_path / "ddp", quick(max_steps=3),
                                  DISK_FULL_ON_PROCESS_0))
    # were process 0 to raise alone, process 1 would wait at the next barrier until torchrun's agent killed
    # it (across machines: until the process group's timeout)
    done = launch_two_processes(script)
    assert done.returncode != 0
    assert "SymtuneError: disk full while saving checkpoint step-000002" in done.stderr
    assert "SymtuneError: process 0 failed to save checkpoint step-000002: disk full" in done.stderr


def test_the_process_group_outlasts_a_long_save():
    from symtune.train.distributed import make_accelerator

    assert make_accelerator().init_handler.timeout >= timedelta(hours=1)


def test_tune_command_maps_its_flags_onto_the_recipe(monkeypatch, tmp_path):
    import argparse

    from symtune.train import add_tune_parser

    calls = []
    monkeypatch.setattr(loop, "tune", lambda *args, **kwargs: calls.append((args, kwargs)) or tmp_path)
    parser = argparse.ArgumentParser()
    add_tune_parser(parser.add_subparsers())
    args = parser.parse_args(["tune", "--model", "m", "--data", "mix", "--out", str(tmp_path), "--lora",
                              "--max-steps", "7", "--set", "lr=2e-4", "--resume"])
    args.func(args)
    [((model, data, out, recipe), kwargs)] = calls
    assert (model, data, out, kwargs) == ("m", "mix", str(tmp_path), {"resume": True})
    assert (recipe.lora, recipe.max_steps, recipe.lr, recipe.batch_size) == (True, 7, 2e-4, 8)


# ---- backends' settings, checked before any weights load ----------------------------------------

def backend(kind: str, deepspeed_json: str | None = None, fsdp_version: int = 2):
    """A stand-in for an Accelerator under FSDP or DeepSpeed (which need GPUs), with accelerate's own
    DeepSpeedPlugin reading the JSON file as `accelerate launch` would."""
    import json
    from types import SimpleNamespace

    from accelerate.utils import DeepSpeedPlugin, DistributedType

    plugin = None
    if deepspeed_json:
        plugin = DeepSpeedPlugin(hf_ds_config=json.loads((REPO / "docs" / "accelerate" / deepspeed_json).read_text()))
    return SimpleNamespace(distributed_type=DistributedType[kind], state=SimpleNamespace(deepspeed_plugin=plugin),
                           is_fsdp2=fsdp_version == 2)


def test_adafactor_stops_factoring_on_the_flat_partitions_zero_gives_it():
    """Why Adafactor is refused under ZeRO: DeepSpeed's ZeRO optimizers replace each parameter group
    by one flat 1-D fp32 partition (deepspeed/runtime/zero/stage_1_and_2.py: param_group['params'] =
    [self.single_partition_of_fp32_groups[i]]), and Adafactor factors only 2-D parameters."""
    from transformers.optimization import Adafactor

    torch.manual_seed(0)
    matrix = torch.nn.Parameter(torch.randn(8, 4))
    flat = torch.nn.Parameter(matrix.detach().flatten().clone())
    for p in (matrix, flat):
        optimizer = Adafactor([p], lr=1e-2, scale_parameter=False, relative_step=False)
        p.grad = torch.arange(32.0).view(p.shape) / 32
        optimizer.step()
        assert ("exp_avg_sq_row" in optimizer.state[p]) == (p.dim() == 2)
    assert not torch.allclose(matrix.detach().flatten(), flat.detach())  # another update rule


def test_deepspeed_settings_that_would_run_differently_are_refused_at_start():
    from symtune.train.distributed import check_setup

    with pytest.raises(SymtuneError, match="adafactor cannot run under DeepSpeed ZeRO-2.*use optimizer: adamw"):
        check_setup(backend("DEEPSPEED", "deepspeed-zero2.json"), load_recipe("paper"))
    with pytest.raises(SymtuneError, match="micro_batch_tokens must be null under DeepSpeed"):
        check_setup(backend("DEEPSPEED", "deepspeed-zero2.json"), quick(micro_batch_tokens=512))
    for clip in (None, 0.5):  # the recipe's max_grad_norm is what DeepSpeed clips with (0: not at all)
        accelerator = backend("DEEPSPEED", "deepspeed-zero2.json")
        check_setup(accelerator, quick(max_grad_norm=clip))
        assert accelerator.state.deepspeed_plugin.deepspeed_config["gradient_clipping"] == (clip or 0.0)
    accelerator = backend("DEEPSPEED", "deepspeed-zero2.json")
    accelerator.state.deepspeed_plugin.deepspeed_config["gradient_clipping"] = 1.0
    with pytest.raises(SymtuneError, match="gradient_clipping 1.0 differs from the recipe's max_grad_norm 0.5"):
        check_setup(accelerator, quick(max_grad_norm=0.5))
    check_setup(accelerator, quick(max_grad_norm=1.0))  # the same value is no conflict
    with pytest.raises(SymtuneError, match="adafactor cannot run under FSDP 1"):
        check_setup(backend("FSDP", fsdp_version=1), load_recipe("paper"))
    check_setup(backend("FSDP"), load_recipe("paper"))  # FSDP 2 shards the parameters in their shapes


def test_zero3_needs_gathered_weights_and_no_merged_lora_and_fsdp_no_merged_lora():
    from symtune.train.distributed import check_setup

    check_setup(backend("DEEPSPEED", "deepspeed-zero3.json"), quick(lora=True))  # the shipped ZeRO-3 config saves
    accelerator = backend("DEEPSPEED", "deepspeed-zero3.json")
    del accelerator.state.deepspeed_plugin.deepspeed_config["zero_optimization"][
        "stage3_gather_16bit_weights_on_model_save"]
    with pytest.raises(SymtuneError, match="stage3_gather_16bit_weights_on_model_save: true"):
        check_setup(accelerator, quick())
    with pytest.raises(SymtuneError, match="merge_lora is not supported with sharded weights"):
        check_setup(backend("DEEPSPEED", "deepspeed-zero3.json"), quick(lora=True, merge_lora=True))
    with pytest.raises(SymtuneError, match="merge_lora is not supported with sharded weights"):
        check_setup(backend("FSDP"), quick(lora=True, merge_lora=True))
    check_setup(backend("DEEPSPEED", "deepspeed-zero2.json"), quick(lora=True, merge_lora=True))  # ZeRO-2 gathers


def test_backend_settings_are_refused_before_the_model_loads(tiny_model_dir, mixture, tmp_path, monkeypatch):
    real = loop.make_accelerator

    class UnderFSDP:  # a real CPU accelerator that reports FSDP
        def __init__(self):
            self.accelerator = real()
            self.distributed_type = backend("FSDP").distributed_type

        def __getattr__(self, name):
            return getattr(self.accelerator, name)

    monkeypatch.setattr(loop, "make_accelerator", UnderFSDP)
    monkeypatch.setattr(loop, "load_model", lambda *args, **kwargs: pytest.fail("the model loaded"))
    with pytest.raises(SymtuneError, match="merge_lora is not supported with sharded weights"):
        tune(str(tiny_model_dir), mixture, tmp_path / "run", quick(lora=True, merge_lora=True), progress=False)


# ---- memory ------------------------------------------------------------------------------------

def test_the_memory_estimate_matches_a_measured_step_for_every_knob(tokenizer, tmp_path):
    """symtune.train.memory's formula, which docs/distributed.md's table comes from, against the peak of
    a real tuning step (benchmarks/bench_memory_knobs.py's LiveBytes), within its stated tolerance."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    from bench_memory_knobs import SMALL, measured_rows

    from symtune.train.memory import TOLERANCE

    rows = measured_rows(save_tiny_model(tmp_path, tokenizer, **SMALL), batch=4, length=128)
    assert len(rows) == 8
    for row in rows:
        assert abs(row["estimate_over_measured"] - 1) <= TOLERANCE, row
    by_knob = {(r["lora"], r["gradient_checkpointing"], r["bf16_autocast"]): r["measured_mb"] for r in rows}
    assert by_knob[True, True, False] < by_knob[True, False, False]  # checkpointing saves activation memory
    assert by_knob[True, False, False] < by_knob[False, False, False]  # LoRA saves gradients and AdamW moments


def test_the_memory_table_in_the_docs_is_the_one_the_benchmark_writes():
    sys.path.insert(0, str(REPO / "benchmarks"))
    from bench_memory_knobs import docs_table, gpu_table

    assert docs_table(gpu_table()) in (REPO / "docs" / "distributed.md").read_text()


def test_snapshot_steps_write_the_model_as_trained_so_far(tiny_model_dir, mixture, tmp_path):
    from safetensors.torch import load_file

    out = tune(str(tiny_model_dir), mixture, tmp_path / "run", quick(snapshot_steps=[2]), progress=False)
    snapshot = out / "snapshots" / "step-000002"
    for name in ("model.safetensors", "config.json", "tokenizer.json", "README.md"):
        assert (snapshot / name).is_file()
    ours, at_checkpoint, final = (load_file(f / "model.safetensors")
                                  for f in (snapshot, out / "checkpoints" / "step-000002", out))
    shared = ours.keys() & at_checkpoint.keys()
    assert "model.embed_tokens.weight" in shared and all(torch.equal(ours[k], at_checkpoint[k]) for k in shared)
    assert any(not torch.equal(ours[k], final[k]) for k in shared)  # two more steps moved the final model
    assert not (out / "snapshots" / "step-000004").exists()  # the last step is the model itself
    with pytest.raises(SymtuneError, match="snapshot_steps must be at most 4, got 5"):
        quick(snapshot_steps=[2, 5])


def test_fp16_mixed_precision_is_refused_before_training(tiny_model_dir, mixture, tmp_path, monkeypatch):
    # `accelerate launch --mixed_precision fp16` sets this variable.
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "fp16")
    with pytest.raises(SymtuneError,
                       match="fp16 mixed precision is not supported: leave accelerate's mixed_precision at no"):
        tune(str(tiny_model_dir), mixture, tmp_path / "out", quick())
    assert not (tmp_path / "out" / "train_log.jsonl").exists()
