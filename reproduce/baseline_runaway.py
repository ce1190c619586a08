"""A value baseline that runs away, flagged after the fact from a run's ``progress.csv``.

Issue 15's grid found it at batch 1000: the linear feature baseline is fitted on returns
that bootstrap its own V(s_T) at the time limit (``bootstrap_truncation = true``, our
deviation), and with one episode per batch its extrapolation to s_T can feed back into its
targets. The GAE advantages then leave their scale by tens of orders of magnitude while the
returns do not move (Swimmer ``trpo-b1000`` seed 1: advantage std 0.5 -> 3.7e38).

The rule is the critic's divergence rule (:mod:`qprop_tf.divergence`) applied to the
advantages' standard deviation (``advantage_std``, before normalisation): iteration t ran
away when

    advantage_std_t > 100 * median{ advantage_std_k : k < t, not flagged_k }   (5 warm-up)

A healthy advantage std grows with the returns: up to 67x its first 5 iterations' median
on Walker (``trpo-b5000`` seed 0, return ~0 -> 2,000), but slowly, so the running median
follows it. At 100x the rule flags only batch-1000 runs: 5 of the grid's 12 among the 155
committed runs at the end of 2026-11-27's session (README, issue 15), none of the others; at
10x it would flag healthy Walker and Ant runs too.

    python -m reproduce.baseline_runaway --results results [--results /var/tmp/...]

lists every flagged run under the roots.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from qprop_tf.divergence import divergence_flags
from qprop_tf.progress import COLUMNS as C
from reproduce.results import Run, load_runs

FACTOR = 100.0


@dataclass(frozen=True)
class Runaway:
    seed: int
    first_episodes: float  # paper episodes (env steps / 1000) at the first flagged iteration
    flagged: int  # iterations flagged
    early: float  # median advantage std of the first 5 iterations
    largest: float  # largest advantage std of the run

    def text(self) -> str:
        return (f"s{self.seed} ({self.early:.2g} -> {self.largest:.2g} from "
                f"{self.first_episodes:,.0f} ep, {self.flagged} it)")


def runaway(run: Run, factor: float = FACTOR) -> Runaway | None:
    """The run's runaway by the rule above, None if it has none (or no ``advantage_std``)."""
    df = run.progress
    if C.advantage_std not in df.columns or df.empty:
        return None
    std = pd.to_numeric(df[C.advantage_std], errors="coerce").to_numpy(dtype=float)
    flags = divergence_flags(std, factor=factor)
    if not flags.any():
        return None
    first = int(np.argmax(flags))
    return Runaway(seed=run.seed, first_episodes=float(df[C.env_steps].iloc[first]) / 1000,
                   flagged=int(flags.sum()), early=float(np.nanmedian(std[:5])),
                   largest=float(np.nanmax(std)))


def runaways(runs: list[Run], factor: float = FACTOR) -> list[Runaway]:
    """The runs that ran away, by seed."""
    found = (runaway(r, factor) for r in sorted(runs, key=lambda r: r.seed))
    return [r for r in found if r is not None]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m reproduce.baseline_runaway", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", type=Path, action="append", required=True,
                   help="a results root; repeat for more")
    p.add_argument("--factor", type=float, default=FACTOR)
    args = p.parse_args(argv)
    total = 0
    for root in args.results:
        for profile_runs in sorted(root.glob("*/runs")):
            runs = load_runs(root, profile_runs.parent.name, include_unfinished=True).runs
            total += len(runs)
            for r in runs:
                found = runaway(r, args.factor)
                if found is not None:
                    print(f"{profile_runs.parent.name}/{r.domain}/{r.algo}: {found.text()}")
    print(f"{total} runs read")
    return 0


if __name__ == "__main__":
    sys.exit(main())
