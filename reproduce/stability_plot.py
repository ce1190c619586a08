"""The figure of ``reproduce.stability``: per seed, the critic's TD loss and the batch return
of the authors' critic and of the fixes, the diverged stretches shaded."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from qprop_tf.progress import COLUMNS as C
from reproduce.plot_diagnostics import shade_divergence
from reproduce.plot_style import label, palette, plt, save, sns
from reproduce.results import Run
from reproduce.spec import EPISODE_STEPS, threshold


def plot_stability(runs: list[Run], domain: str, baseline: str, shown: list[str],
                   out: Path) -> list[Path]:
    """``stability_<domain>``: one column per seed, TD loss (log) above the return; the
    baseline and each shown variant in its own colour; [] without runs."""
    if not runs:
        return []
    sns.set_theme(style="whitegrid", context="notebook")
    order = [a for a in [baseline, *shown] if any(r.algo == a for r in runs)]
    colors = palette(order)
    seeds = sorted({r.seed for r in runs})
    fig, axes = plt.subplots(2, len(seeds), figsize=(3.6 * len(seeds) + 1, 6.6),
                             squeeze=False, sharex="col")
    for j, seed in enumerate(seeds):
        top, bottom = axes[0, j], axes[1, j]
        here = [r for r in runs if r.seed == seed]
        for algo in order:
            for r in here:
                if r.algo != algo:
                    continue
                df = r.progress
                x = df[C.env_steps].to_numpy(float) / EPISODE_STEPS
                loss = df[C.critic_loss].to_numpy(float) if C.critic_loss in df else x * np.nan
                ok = np.isfinite(loss) & (loss > 0)
                top.plot(x[ok], loss[ok], color=colors[algo], lw=1.2)
                bottom.plot(x, df[r.metric].to_numpy(float), color=colors[algo], lw=1.2)
        shade_divergence([top, bottom], here, colors, caption=False)
        bottom.axhline(threshold(domain), color="0.3", lw=0.8, ls="--")
        top.set_yscale("log")
        top.set_title(f"seed {seed}", fontsize=11)
        bottom.set_xlabel("episodes (1 = 1000 env steps)", fontsize=9)
        if j == 0:
            top.set_ylabel("critic TD loss (log)")
            bottom.set_ylabel("batch return")
    handles = [plt.Line2D([], [], color=colors[a], lw=2) for a in order]
    fig.legend(handles, [label(a) for a in order], loc="lower center", ncol=len(order),
               fontsize=10, frameon=False, bbox_to_anchor=(0.5, -0.02))
    fig.suptitle(f"{domain}: the critic's TD loss and the return, per seed (shaded: the "
                 "critic diverged; dashed: threshold)", fontsize=12)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return save(fig, out, f"stability_{domain}")
