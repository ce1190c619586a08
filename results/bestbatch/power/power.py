"""How large a difference issue 15's held-out comparison can detect, with 5 seeds a side.

    .venv/bin/python results/bestbatch/power/power.py     # writes README.md beside it

For each domain, the spread of log(episodes to threshold) of the held-out seeds that
crossed, pooled within the two algorithms (their means removed), is the spread of a
lognormal model. Seeds are drawn from it, 5 per side, with TR-c-Q-Prop's median a given
fraction of TRPO's. Each simulated pair is judged exactly as best_batch.md judges the real
one: reproduce.compare's bootstrap CI of the ratio of medians (verdict "A faster" = the CI
lies below 1), and the one-sided Mann-Whitney p < 0.05. No censoring is simulated, so these
powers are upper bounds for Swimmer, where seeds did not cross.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from scipy.stats import mannwhitneyu

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from reproduce.compare import counted_runs, episodes_to_threshold  # noqa: E402
from reproduce.compare_stats import ratio_ci, verdict  # noqa: E402

REPS, N, SEED = 1000, 5, 0
RATIOS = (1 / 3, 1 / 2, 2 / 3, 0.8)
CHOSEN = {"Reacher": ("qprop-c-b1000", "trpo-b1000"), "Hopper": ("qprop-c-b1000", "trpo-b1000"),
          "Swimmer": ("qprop-c-b1000", "trpo-b5000")}


def log_spread(results: Path, domain: str) -> tuple[float, int]:
    """Pooled within-algorithm SD of log episodes over the crossed held-out seeds."""
    algos = set(CHOSEN[domain])
    runs = counted_runs(results, "bestbatch-confirm", algos).runs
    resid, n_groups = [], 0
    for algo in algos:
        x = [float(c.episodes) for r in runs if r.domain == domain and r.algo == algo
             for c in [episodes_to_threshold(r)] if not c.censored]
        if len(x) >= 2:
            lx = np.log(x)
            resid += list(lx - lx.mean())
            n_groups += 1
    dof = len(resid) - n_groups
    return float(np.sqrt(np.sum(np.square(resid)) / dof)), len(resid)


def power(sd: float, ratio: float, rng: np.random.Generator) -> tuple[float, float]:
    none = np.zeros(N, dtype=bool)
    ci_hits = mw_hits = 0
    for _ in range(REPS):
        q = np.exp(rng.normal(np.log(ratio), sd, N))
        t = np.exp(rng.normal(0.0, sd, N))
        ci_hits += verdict(*ratio_ci(q, none, t, none), N, N) == "A faster"
        mw_hits += mannwhitneyu(q, t, alternative="less").pvalue < 0.05
    return ci_hits / REPS, mw_hits / REPS


def main() -> None:
    results = ROOT / "results"
    rng = np.random.default_rng(SEED)
    head = "| Domain | SD of log episodes (seeds) | " + " | ".join(
        f"true ratio {r:.2f}: CI below 1 / MW p < 0.05" for r in RATIOS) + " |"
    lines = [__doc__.strip(), "", f"{REPS} simulated comparisons per cell, seed {SEED}.", "",
             head, "|" + "---|" * (2 + len(RATIOS))]
    for domain in CHOSEN:
        sd, n = log_spread(results, domain)
        cells = [f"{a:.0%} / {b:.0%}" for a, b in (power(sd, r, rng) for r in RATIOS)]
        lines.append(f"| {domain} | {sd:.2f} ({n}) | " + " | ".join(cells) + " |")
    out = Path(__file__).with_name("README.md")
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines[-(2 + len(CHOSEN)):]))


if __name__ == "__main__":
    main()
