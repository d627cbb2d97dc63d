"""How often the paired interval of a pool (a row tuned with several seeds) covers the true
difference, on simulated differences whose truth is known; writes docs/interval_coverage.md.

    python scripts/interval_coverage.py [--sims 200]

Each simulated experiment has 12 datasets of 4 tasks, and per task `prompts` prompts scored by
`runs` tuning runs. A prompt's difference is +1, 0 or -1; the chance of +1 moves with the dataset
(sd `dataset sd`) and with the tuning run (sd `run sd`), and its expectation over datasets and
runs is 0. The interval is symtune.stats.paired_interval's, and, for contrast, the same bootstrap
with the runs drawn plainly (no t scaling of their spread).
"""

import argparse
import contextlib
import sys
from pathlib import Path
from unittest import mock

import numpy as np

from symtune.io import atomic_write
from symtune.stats import paired_interval

OUT = Path(__file__).resolve().parents[1] / "docs" / "interval_coverage.md"
# (runs, run sd, dataset sd, prompts per task): the spread between runs dominating, then prompts' noise
REGIMES = [(3, 0.10, 0.0, 100), (5, 0.10, 0.0, 100), (5, 0.05, 0.03, 8)]
P_MINUS = 0.3  # chance of -1; the chance of +1 is 0.3 plus the dataset's and the run's shifts


def simulate(rng, runs: int, run_sd: float, dataset_sd: float, prompts: int) -> dict:
    run_shift = rng.normal(0, run_sd, runs)
    cells = {}
    for d in range(12):
        p_plus = np.clip(P_MINUS + rng.normal(0, dataset_sd) + run_shift, 0.0, 1 - P_MINUS)
        for t in range(4):
            u = rng.random((prompts, runs))
            cells[f"d{d}/t{t}"] = {0: ((u < p_plus).astype(float) - ((u >= p_plus) & (u < p_plus + P_MINUS)))}
    return cells


def coverage(sims: int, regime: tuple, plain: bool) -> tuple[float, float]:
    rng, hits, widths = np.random.default_rng(0), 0, []
    with mock.patch("symtune.stats.run_scale", lambda runs: 1.0) if plain else contextlib.nullcontext():
        for k in range(sims):
            iv = paired_interval(simulate(rng, *regime), boot=1000, seed=k)
            hits += iv["lo"] <= 0.0 <= iv["hi"]
            widths.append(100 * (iv["hi"] - iv["lo"]) / 2)
    return hits / sims, float(np.mean(widths))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sims", type=int, default=200, help="simulated experiments per regime")
    sims = parser.parse_args().sims
    if sims < 1:
        parser.error("--sims must be at least 1")
    rows = []
    for regime in REGIMES:
        cells = [f"{share:.0%} (±{half:.1f})" for share, half in (coverage(sims, regime, p) for p in (False, True))]
        rows.append(f"| {' | '.join(map(str, regime))} | {' | '.join(cells)} |")
        print(rows[-1], file=sys.stderr)
    se = 100 * (0.95 * 0.05 / sims) ** 0.5
    header = ["| runs | run sd | dataset sd | prompts per task | symtune (runs' spread t-scaled) | drawn plainly |",
              "|---|---|---|---|---|---|"]
    text = "\n\n".join([
        "# Coverage of a pool's paired interval",
        f"Written by `python scripts/interval_coverage.py --sims {sims}`; the simulation is in its docstring. "
        f"Each cell: the share of {sims} simulated experiments whose 95% interval covers the true difference "
        f"(0), and the mean half-width in points. A share's standard error at 95% is about {se:.1f} points.",
        "\n".join(header + rows)]) + "\n"
    with atomic_write(OUT) as f:
        f.write(text)
    print(f"wrote {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
