"""What the benchmark scripts share: paths, run metadata, timing, the printed table, output files."""

import importlib.metadata
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import torch

from symtune.errors import SymtuneError
from symtune.io import atomic_write, save_figure, write_json

RESULTS = Path(__file__).resolve().parent / "results"
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"  # ../shared/data beside the repo
PACKAGES = ("symtune", "torch", "transformers", "peft", "accelerate", "lm_eval", "trl")


def cpu_name() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    names = [line.partition(":")[2].strip() for line in lines if line.startswith("model name")]
    return names[0] if names else platform.processor() or platform.machine()


def package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def run_info(benchmark: str, threads: int, quick: bool) -> dict:
    """Metadata for a results file; call it first, so the load average is the one at start:
    a number far above 0 means other work shared the CPU and the timings are noisy."""
    return {
        "benchmark": benchmark,
        "command": shlex.join(["python", *sys.argv]),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "started_unix": time.time(),
        "quick": quick,
        "threads": threads,
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "versions": {name: package_version(name) for name in PACKAGES},
    }


def use_threads(n: int) -> None:
    """Pin the process to n cores and use n threads. symtune's tune() sizes its thread pool from the
    CPU affinity, so pinning keeps every run of a benchmark on the same count."""
    cores = sorted(os.sched_getaffinity(0))
    if n > len(cores):
        raise SymtuneError(f"--threads {n}: only {len(cores)} cores are available")
    os.sched_setaffinity(0, cores[:n])
    torch.set_num_threads(n)


def timed(fn, *args, **kwargs):
    """(fn's result, wall-clock seconds)."""
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def table(rows: list[dict], columns: list[tuple[str, str, str]]) -> str:
    """A Markdown table; columns: (heading, key, format spec)."""
    lines = ["| " + " | ".join(heading for heading, _, _ in columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join("-" if row.get(key) is None else format(row[key], spec)
                                       for _, key, spec in columns) + " |")
    return "\n".join(lines)


def save(result: dict, figure, summary: str, folder: Path = RESULTS) -> None:
    """folder/NAME.json, NAME.png (unless figure is None) and NAME.md (the summary table with its
    context), each written atomically; NAME is the benchmark's, with -quick for a quick run."""
    name = result["benchmark"] + ("-quick" if result["quick"] else "")
    result["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    result["wall_seconds"] = round(time.time() - result["started_unix"])
    write_json(folder / f"{name}.json", result)
    if figure is not None:
        save_figure(figure, folder / f"{name}.png")
    with atomic_write(folder / f"{name}.md") as f:
        f.write(f"`{result['command']}`, {result['started']}, {result['threads']} threads on {result['cores']} cores "
                f"({result['cpu']}), load average at start {result['load_average_at_start'][0]}, "
                f"at end {result['load_average_at_end'][0]}; {result['wall_seconds']} s in all.\n\n{summary}\n"
                + ("" if figure is None else f"\n![{name}]({name}.png)\n"))
    print(f"wrote {folder / name}.json{'' if figure is None else ', .png'} and .md")
