"""Print the table of README.md from the two replays' progress.csv, and check them against
the campaign's runs (if their root is there). Run from the checkout:
    .venv/bin/python results/stable-walker/replay/summarise.py [campaign root]"""

import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).parent / "Walker"
ROOT = Path(sys.argv[1] if len(sys.argv) > 1 else "/var/tmp/qprop-campaign")
TIMING = {"time", "iteration_time", "sample_time", "update_time", "steps_per_second",
          "max_rss_mb", "cpu_time", "critic_time"}
for algo in ("qprop-c", "qprop-c-scaled"):
    n = pd.read_csv(HERE / algo / "seed0" / "progress.csv")
    ref = ROOT / "stable-walker" / "runs" / "Walker" / algo / "seed0" / "progress.csv"
    if ref.is_file():
        o = pd.read_csv(ref)
        k = min(len(o), len(n))
        cols = [c for c in o.columns if c not in TIMING and c in n.columns]
        diff = [c for c in cols if not o[c].iloc[:k].equals(n[c].iloc[:k])]
        print(f"{algo}: {k} iterations x {len(cols)} columns against {ref}: differ {diff}")
    for lo, hi in ((0, 20), (20, 50), (50, len(n))):
        s = n.iloc[lo:hi]
        share = s.analytic_step_share
        print(f"  it {lo}-{hi - 1}: share {share.median():.2f} [{share.quantile(.25):.2f}-"
              f"{share.quantile(.75):.2f}], |g_Q|/|g| "
              f"{(s.analytic_grad_norm / s.grad_norm).median():.2f}, policy std at the end "
              f"{s.policy_std.iloc[-1]:.3f}, mean return {s.average_return.mean():.0f}")
