"""Print README.md's tables: Humanoid TR-c-Q-Prop and TRPO with the authors' action scaling
(``action_scale=unit``, the pilot runs here) against ours (``env``, the ``table1`` campaign's
runs), over the pilots' env steps. Run from the checkout:

    .venv/bin/python results/action_scale/summarise.py

Seed 1 is paired (same seed, same code and settings but the switch); seed 0 shows the spread
between seeds. A campaign run is read from ``results/table1/runs`` once finished, else from
the progress ``make campaign-collect`` parks in ``results/table1/inflight``.
"""

from pathlib import Path

import pandas as pd

HERE = Path(__file__).parent
TABLE1 = HERE.parent / "table1"
ALGOS = {"qprop-c": "TR-c-Q-Prop (batch 5000)", "trpo": "TRPO (batch 25000)"}


def campaign(algo: str, seed: int) -> Path:
    done = TABLE1 / f"runs/Humanoid/{algo}/seed{seed}/progress.csv"
    return done if done.is_file() else TABLE1 / f"inflight/Humanoid/{algo}/seed{seed}/progress.csv"


for algo, title in ALGOS.items():
    pilot_csv = HERE / f"Humanoid/{algo}-unit/seed1/progress.csv"
    if not pilot_csv.is_file():
        continue
    runs = {"unit (authors'), seed 1": pilot_csv, "env (ours), seed 1": campaign(algo, 1),
            "env (ours), seed 0": campaign(algo, 0)}
    last = int(pd.read_csv(pilot_csv).env_steps.iloc[-1])
    print(f"Humanoid {title}, the first {last:,} env steps; average return of the training "
          "batches\n")
    print("| action space, seed | mean, 1st quarter | 2nd | 3rd | 4th | max | mean of the last "
          "10 | policy std at the end | mean corr(A_hat, A_bar) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, path in runs.items():
        d = pd.read_csv(path)
        w = d[d.env_steps <= last]
        quarters = [w[(w.env_steps > a * last) & (w.env_steps <= (a + 0.25) * last)]
                    .average_return.mean() for a in (0, 0.25, 0.5, 0.75)]
        corr = f"{w.corr_adv_abar.mean():.4f}" if "corr_adv_abar" in w and \
            w.corr_adv_abar.notna().any() else "-"
        print(f"| {name} | " + " | ".join(f"{q:.1f}" for q in quarters)
              + f" | {w.average_return.max():.1f} | {w.average_return.tail(10).mean():.1f} | "
              f"{w.policy_std.iloc[-1]:.4f} | {corr} |")
    print()
