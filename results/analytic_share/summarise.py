"""Print README.md's table from the replays' progress.csv, and check each replay against the
run it replays (when that run is at hand). Run from the checkout:

    .venv/bin/python results/analytic_share/summarise.py [campaign root]

Walker's replays are of the campaign's ``stable-walker`` runs (root default
/var/tmp/qprop-campaign); Hopper's, Swimmer's and Reacher's runs use the committed ``table1``
runs' config and seed.
"""

import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).parent
CHECKOUT = HERE.parent.parent
ROOT = Path(sys.argv[1] if len(sys.argv) > 1 else "/var/tmp/qprop-campaign")
REPLAYED = {  # (domain, algo) -> the progress.csv the replay repeats
    ("Walker", "qprop-c"): ROOT / "stable-walker/runs/Walker/qprop-c/seed0/progress.csv",
    ("Walker", "qprop-c-scaled"):
        ROOT / "stable-walker/runs/Walker/qprop-c-scaled/seed0/progress.csv",
    ("Hopper", "qprop-c"): CHECKOUT / "results/table1/runs/Hopper/qprop-c/seed0/progress.csv",
    ("Swimmer", "qprop-c"): CHECKOUT / "results/table1/runs/Swimmer/qprop-c/seed0/progress.csv",
    ("Reacher", "qprop-c"): CHECKOUT / "results/table1/runs/Reacher/qprop-c/seed0/progress.csv",
}
TIMING = {"time", "iteration_time", "sample_time", "update_time", "steps_per_second",
          "max_rss_mb", "cpu_time", "critic_time"}
for (domain, algo), ref in REPLAYED.items():
    n = pd.read_csv(HERE / domain / algo / "seed0" / "progress.csv")
    print(f"{domain} {algo} seed 0 ({len(n)} iterations)")
    if ref.is_file():
        o = pd.read_csv(ref)
        k = min(len(o), len(n))
        cols = [c for c in o.columns if c not in TIMING and c in n.columns]
        diff = [c for c in cols if not o[c].iloc[:k].equals(n[c].iloc[:k])]
        print(f"  against {ref}: {k} iterations x {len(cols)} columns, differing: {diff}")
    for lo, hi in ((0, 20), (20, 50), (50, len(n))):
        s = n.iloc[lo:hi]
        share = s.analytic_step_share
        print(f"  it {lo}-{hi - 1}: share {share.median():.2f} [{share.quantile(.25):.2f}-"
              f"{share.quantile(.75):.2f}], |g_Q|/|g| "
              f"{(s.analytic_grad_norm / s.grad_norm).median():.2f}, corr(A_hat, A_bar) "
              f"{s.corr_adv_abar.median():.3f}, var after/before "
              f"{(s.signal_var_after / s.signal_var_before).median():.3f}, policy std at the "
              f"end {s.policy_std.iloc[-1]:.3f}, mean return {s.average_return.mean():.0f}")
