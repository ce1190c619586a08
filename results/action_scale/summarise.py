"""Print README.md's table: Humanoid TR-c-Q-Prop with the authors' action scaling
(``action_scale=unit``, the pilot run here) against ours (``env``, the ``table1`` campaign's
runs), over the pilot's env steps. Run from the checkout:

    .venv/bin/python results/action_scale/summarise.py

Seed 1 is paired (same seed, same code and settings but the switch); seed 0 shows the spread
between seeds. The campaign's seed 1 is read from ``results/table1/runs`` once finished, else
from the progress ``make campaign-collect`` parks in ``results/table1/inflight``.
"""

from pathlib import Path

import pandas as pd

HERE = Path(__file__).parent
TABLE1 = HERE.parent / "table1"


def campaign(seed: int) -> Path:
    done = TABLE1 / f"runs/Humanoid/qprop-c/seed{seed}/progress.csv"
    return done if done.is_file() else TABLE1 / f"inflight/Humanoid/qprop-c/seed{seed}/progress.csv"


RUNS = {"unit (authors'), seed 1": HERE / "Humanoid/qprop-c-unit/seed1/progress.csv",
        "env (ours), seed 1": campaign(1), "env (ours), seed 0": campaign(0)}
pilot = pd.read_csv(RUNS["unit (authors'), seed 1"])
last = int(pilot.env_steps.iloc[-1])
print(f"Humanoid TR-c-Q-Prop (batch 5000), the first {last:,} env steps; average return of "
      "the training batches\n")
print("| action space, seed | mean, 1st quarter | 2nd | 3rd | 4th | max | mean of the last 10 "
      "| policy std at the end | mean corr(A_hat, A_bar) |")
print("|---|---|---|---|---|---|---|---|---|")
for name, path in RUNS.items():
    d = pd.read_csv(path)
    if d.env_steps.iloc[-1] < last:
        print(f"| {name} | (only {int(d.env_steps.iloc[-1]):,} steps so far) |||||||| ")
        continue
    w = d[d.env_steps <= last]
    quarters = [w[(w.env_steps > a * last) & (w.env_steps <= (a + 0.25) * last)]
                .average_return.mean() for a in (0, 0.25, 0.5, 0.75)]
    print(f"| {name} | " + " | ".join(f"{q:.1f}" for q in quarters)
          + f" | {w.average_return.max():.1f} | {w.average_return.tail(10).mean():.1f} | "
          f"{w.policy_std.iloc[-1]:.4f} | {w.corr_adv_abar.mean():.4f} |")
