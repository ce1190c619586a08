"""The control-variate oracle's figures, from ``python -m reproduce.diagnose``'s CSVs.

    python -m reproduce.plot_oracle --results results

Writes ``<results>/figures/cv_oracle_<Domain>.png/.svg`` from
``<results>/diagnostics/cv_*.csv``: how well A_hat, the critic's Taylor term A_bar and the
critic's full difference predict the true action effect D measured by the CRN oracle.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from reproduce.plot_style import plt, save, sns

ORACLE_PANELS = (
    ("corr_D_adv", "corr(D, A_hat)", "GAE advantage vs the true action effect"),
    ("corr_D_abar", "corr(D, A_bar)", "critic's Taylor term vs the true action effect"),
    ("corr_D_criticadv", "corr(D, Q_w(s,a) - Q_w(s,mu))", "critic's full difference vs D"),
    ("corr_adv_abar_batch", "corr(A_hat, A_bar)", "what the control variate can remove"),
)


def plot_cv_oracle(results: Path, out: Path) -> list[Path]:
    """One figure per domain from the diagnose CSVs: a line per variant (file), with the
    +-1.96/sqrt(n) band of a correlation estimated from n states."""
    files = sorted((results / "diagnostics").glob("cv_*.csv"))
    frames = []
    for f in files:
        df = pd.read_csv(f)
        if df.empty or "corr_D_adv" not in df.columns:
            continue
        parts = f.stem.split("_")  # cv_<Domain>_<algo>[_<tag>]_seed<k>
        df["domain"] = parts[1]
        df["variant"] = " ".join(parts[2:])
        frames.append(df)
    if not frames:
        return []
    data = pd.concat(frames, ignore_index=True)
    written: list[Path] = []
    for dom, dd in data.groupby("domain"):
        fig, axes = plt.subplots(1, len(ORACLE_PANELS), figsize=(5 * len(ORACLE_PANELS), 4),
                                 sharey=True)
        for ax, (col, title, sub) in zip(axes, ORACLE_PANELS, strict=True):
            for variant, dv in dd.groupby("variant"):
                x = dv["env_steps"] / 1000
                n = dv["states"] if col != "corr_adv_abar_batch" else 5000
                half = 1.96 / np.sqrt(n)
                line = ax.plot(x, dv[col], marker="o", label=variant)[0]
                ax.fill_between(x, dv[col] - half, dv[col] + half, alpha=0.15,
                                color=line.get_color())
            ax.axhline(0, color="0.4", lw=0.8)
            ax.set_title(f"{title}\n{sub}", fontsize=10)
            ax.set_xlabel("episodes (1 = 1000 env steps)")
        axes[0].set_ylabel("correlation")
        axes[0].set_ylim(-0.6, 1.0)
        axes[-1].legend(fontsize=8, title="run", loc="upper right")
        fig.suptitle(f"Q-Prop's control variate against a common-random-number oracle on {dom}"
                     " (D = Q(s,a) - Q(s,mu(s)) from simulator branches; band = +-1.96/sqrt(n))",
                     fontsize=11)
        fig.tight_layout()
        written += save(fig, out, f"cv_oracle_{dom}")
    return written


def make_oracle_plots(results: str | Path) -> list[Path]:
    """The control-variate oracle's figures, ``<results>/figures/cv_oracle_<Domain>``."""
    results = Path(results)
    sns.set_theme(style="whitegrid", context="notebook")
    written = plot_cv_oracle(results, results / "figures")
    if not written:
        print(f"reproduce.plot: no oracle CSVs in {results / 'diagnostics'}", file=sys.stderr)
    return written


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m reproduce.plot_oracle", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", default="results")
    args = p.parse_args(argv)
    written = make_oracle_plots(args.results)
    for path in written:
        print(f"wrote {path}")
    return 0 if written else 1


if __name__ == "__main__":
    raise SystemExit(main())
