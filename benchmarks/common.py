"""What the benchmark scripts share: paths, run metadata, timing, the printed table, output files."""

import importlib.metadata
import os
import platform
import time
from pathlib import Path

import torch

from symtune.errors import SymtuneError
from symtune.io import atomic_write, write_json

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


def run_info(threads: int, quick: bool) -> dict:
    """Metadata for a results file; call it first, so the load average is the one at start:
    a number far above 0 means other work shared the CPU and the timings are noisy."""
    return {
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
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


def print_table(rows: list[dict], columns: list[tuple[str, str, str]]) -> None:
    """columns: (heading, key, format spec) per column."""
    cells = [[heading for heading, _, _ in columns]]
    cells += [[format(row[key], spec) if row[key] is not None else "-" for _, key, spec in columns] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    for r in cells:
        print("  ".join(c.rjust(w) for c, w in zip(r, widths)))


def save(name: str, result: dict, figure) -> None:
    """benchmarks/results/NAME.json and NAME.png, each written atomically."""
    result["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    write_json(RESULTS / f"{name}.json", result)
    with atomic_write(RESULTS / f"{name}.png", "wb") as f:
        figure.savefig(f, format="png", dpi=120, bbox_inches="tight")
    print(f"wrote {RESULTS / name}.json and .png")
